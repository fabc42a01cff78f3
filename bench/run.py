#!/usr/bin/env python3
"""strata benchmark: stratafs against kernel overlayfs and fuse-overlayfs.

Usage (as root):
  python3 bench/run.py --stratafs PATH [--fuse-overlayfs PATH] [--runs N] [--quick]
                       [--only WORKLOAD,...] [--tmpdir DIR] [--fs image|dir]
                       [--markdown OUT.md] [--json OUT.json] [--keep-layers]
                       [--no-io-uring] [--timeout SECONDS]

Builds three lower layers once, then for every run and every workload mounts each
implementation over the same lowers with a fresh upper/work (one mount per workload per
implementation), runs the workload interleaved across the implementations (order rotated
every run) and reports the median time of each workload per implementation, plus the
time ratios stratafs/kernel and stratafs/fuse-overlayfs (< 1: stratafs is faster).
The implementations: kernel overlayfs, fuse-overlayfs, stratafs, and stratafs -o io_uring
(FUSE over io_uring; when the kernel has the fuse module parameter enable_uring, which is
set to Y for the run and restored afterwards; --no-io-uring leaves it out).
By default (--fs image) everything the benchmark writes lives on a fresh journaled ext4
made in a sparse image file in --tmpdir and attached to a loop device (direct I/O).

Only the standard library is used; per-file loops run in a small C helper (helper.c, built
here with cc) that times its own loop. Shell tools (find, tar, rm) are timed with
time.perf_counter around the command. See bench/README.md.
"""

import argparse
import datetime
import fcntl
import glob
import io
import json
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LAYOUT_VERSION = 4  # bump when the generated data changes (invalidates --keep-layers caches)

PROFILES = {
    # ~20x smaller: a smoke run of every workload in well under a minute
    "quick": dict(tree_files=1000, tree_top=4, tree_sub=5, bigdir=500, big_mib=64,
                  untar_files=1000, untar_dirs=10, csu=500, rand_reads=1000,
                  walk_files=5000, walk_top=5, walk_sub=10,
                  image_gib=4, need_gib=0.5),
    "full": dict(tree_files=20000, tree_top=20, tree_sub=15, bigdir=10000, big_mib=1024,
                 untar_files=20000, untar_dirs=200, csu=10000, rand_reads=20000,
                 walk_files=100000, walk_top=10, walk_sub=100,
                 image_gib=16, need_gib=4),
}

KERNEL, FUSEOVL, STRATA, STRATA_URING = "kernel", "fuse-overlayfs", "stratafs", "stratafs-uring"
LABEL = {KERNEL: "kernel overlayfs", FUSEOVL: "fuse-overlayfs", STRATA: "stratafs",
         STRATA_URING: "stratafs (io_uring)"}
STRATAFS_IMPLS = (STRATA, STRATA_URING)
# the fuse module offers FUSE over io_uring to daemons only when this is Y (Linux 6.14+)
URING_PARAM = "/sys/module/fuse/parameters/enable_uring"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ----------------------------------------------------------------------------- processes

def run_checked(cmd, timeout=120, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, **kw)
    if r.returncode != 0:
        raise BenchError(f"{shlex.join(map(str, cmd))} failed ({r.returncode}): "
                         f"{(r.stderr or r.stdout).strip()[:500]}")
    return r.stdout


class Timeout(BenchError):
    pass


def timed(cmd, timeout):
    """Run cmd in its own process group; return (seconds, stdout). Killed on timeout/^C."""
    text = shlex.join(map(str, cmd))
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except BaseException as e:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        PENDING_CHILDREN.append(p)
        if isinstance(e, subprocess.TimeoutExpired):
            raise Timeout(f"timed out after {timeout:g} s: {text}")
        raise
    t = time.perf_counter() - t0
    if p.returncode != 0:
        raise BenchError(f"{text} failed ({p.returncode}): {err.strip()[:500]}")
    return t, out


def sh(script):
    """A shell pipeline that fails when any part fails."""
    return ["bash", "-o", "pipefail", "-c", script]


PENDING_CHILDREN = []  # killed children that may still sit in a FUSE request


def reap_children():
    while PENDING_CHILDREN:
        p = PENDING_CHILDREN.pop()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log(f"warning: pid {p.pid} did not exit after SIGKILL")


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


# ----------------------------------------------------------------------------- helper

class Helper:
    def __init__(self, path, timeout):
        self.path, self.timeout = path, timeout

    def __call__(self, *args):
        _, out = timed([self.path, *map(str, args)], self.timeout)
        res = {}
        for line in out.splitlines():
            k, _, v = line.partition("=")
            res[k] = float(v) if "." in v else int(v)
        return res


def build_helper(outdir):
    src = os.path.join(HERE, "helper.c")
    exe = os.path.join(outdir, "strata-bench-helper")
    cc = os.environ.get("CC", "cc")
    run_checked([cc, "-O2", "-Wall", "-o", exe, src])
    return exe


# ----------------------------------------------------------------------------- data

def pick_size(rng):
    r = rng.random()
    if r < 0.45:
        return rng.randrange(0, 1024)
    if r < 0.85:
        return rng.randrange(1024, 8192)
    if r < 0.98:
        return rng.randrange(8192, 32768)
    return rng.randrange(32768, 131072)


class Writer:
    def __init__(self, root, seed):
        self.root = root
        self.rng = random.Random(seed)
        self.blob = self.rng.randbytes(256 * 1024)
        self.made = set()

    def mkdir(self, rel):
        if rel not in self.made:
            os.makedirs(os.path.join(self.root, rel), exist_ok=True)
            self.made.add(rel)

    def file(self, rel, size=None):
        self.mkdir(os.path.dirname(rel))
        if size is None:
            size = pick_size(self.rng)
        off = self.rng.randrange(0, len(self.blob) - size) if size else 0
        fd = os.open(os.path.join(self.root, rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            if size:
                os.write(fd, self.blob[off:off + size])
        finally:
            os.close(fd)


def build_main_layers(dest, P):
    """Three lowers l1 (top) .. l3 (bottom) with tree/, bigdir/ and big.bin.

    tree/: P.tree_files visible regular files in tree_top*tree_sub leaf dirs spread over
    the layers (a quarter of the top dirs only in the bottom layer, the rest merged from
    all three), plus files shadowed by a higher layer, files hidden by whiteouts (char
    0/0), an opaque directory and symlinks. Returns the expected merged-view counts.
    """
    rng = random.Random(20240601)
    L = [os.path.join(dest, n) for n in ("l1", "l2", "l3")]
    W = [Writer(l, 7 + i) for i, l in enumerate(L)]
    for w in W:
        w.mkdir("tree")
        w.mkdir("bigdir")
    top, sub, n = P["tree_top"], P["tree_sub"], P["tree_files"]
    nleaf = top * sub
    exts = (".txt", ".py", ".so", ".h", ".json", "")
    dirs = {"tree"}
    files = other = 0
    leaf_names = []
    for t in range(top):
        dirs.add(f"tree/d{t:02d}")
        for s in range(sub):
            leaf_names.append(f"tree/d{t:02d}/s{s:02d}")
    dirs.update(leaf_names)
    for i in range(n - 20):  # + 20 in the opaque directory below = n visible files
        leaf = leaf_names[i % nleaf]
        t = (i % nleaf) // sub
        rel = f"{leaf}/f{i:05d}{exts[i % len(exts)]}"
        if t < max(1, top // 4):
            layer = 2
        else:
            r = rng.random()
            layer = 2 if r < 0.5 else (1 if r < 0.8 else 0)
        W[layer].file(rel)
        files += 1
        if layer > 0 and i % 50 == 7:  # shadowed by a newer version in the layer above
            W[layer - 1].file(rel)
        if layer == 1 and i % 40 == 3:  # a whiteout above hides a deleted bottom file
            gone = f"{leaf}/gone{i:05d}"
            W[2].file(gone)
            W[1].mkdir(leaf)
            os.mknod(os.path.join(L[1], gone), 0o600 | 0o020000, os.makedev(0, 0))
        if layer == 0 and i % 20 == 1:  # symlink in the top layer
            W[0].mkdir(leaf)
            os.symlink(f"f{i:05d}{exts[i % len(exts)]}", os.path.join(L[0], f"{leaf}/lnk{i:05d}"))
            other += 1
    # opaque directory: the middle layer replaces the bottom one's contents
    for j in range(50):
        W[2].file(f"tree/opq/old{j:02d}")
    W[1].mkdir("tree/opq")
    os.setxattr(os.path.join(L[1], "tree/opq"), "trusted.overlay.opaque", b"y")
    for j in range(20):
        W[1].file(f"tree/opq/new{j:02d}")
    dirs.add("tree/opq")
    files += 20
    # the big merged directory
    nb = P["bigdir"]
    for i in range(nb):
        W[i % 3].file(f"bigdir/e{i:05d}", size=0)
    # the big file (bottom layer), incompressible, every MiB different
    block = bytearray(rng.randbytes(1 << 20))
    with open(os.path.join(L[2], "big.bin"), "wb") as f:
        for i in range(P["big_mib"]):
            block[0:8] = i.to_bytes(8, "little")
            f.write(block)
    return dict(lowers=L, tree_files=files, tree_dirs=len(dirs), tree_other=other,
                bigdir=nb, big_bytes=P["big_mib"] << 20,
                find_files=files + nb + 1)


def build_tar(dest, P):
    path = os.path.join(dest, "untar.tar")
    rng = random.Random(99)
    blob = rng.randbytes(256 * 1024)
    nd, n = P["untar_dirs"], P["untar_files"]
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
        def add_dir(name):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1700000000
            tf.addfile(ti)
        add_dir("pkg")
        for k in range(nd):
            add_dir(f"pkg/d{k:03d}")
        for i in range(n):
            size = pick_size(rng)
            off = rng.randrange(0, len(blob) - size) if size else 0
            ti = tarfile.TarInfo(f"pkg/d{i % nd:03d}/f{i:05d}.dat")
            ti.size, ti.mode, ti.mtime = size, 0o644, 1700000000
            tf.addfile(ti, io.BytesIO(blob[off:off + size]))
    return dict(tar=path, untar_files=n, untar_dirs=nd + 1)


def build_walk_layers(dest, P):
    """Three lowers with walk_files empty files in walk_top*walk_sub merged leaf dirs."""
    L = [os.path.join(dest, n) for n in ("w1", "w2", "w3")]
    top, sub, n = P["walk_top"], P["walk_sub"], P["walk_files"]
    leaves = [f"t{t:02d}/s{s:03d}" for t in range(top) for s in range(sub)]
    for l in L:
        for leaf in leaves:
            os.makedirs(os.path.join(l, leaf))
    for i in range(n):
        fd = os.open(os.path.join(L[i % 3], leaves[i % len(leaves)], f"f{i:06d}"),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
    return dict(walk_lowers=L, walk_files=n, walk_entries=1 + top + len(leaves) + n)


def cached_build(root, name, P, fn):
    """Build into root/name unless a complete build with the same parameters is there."""
    final = os.path.join(root, name)
    stamp = os.path.join(final, "stamp.json")
    key = dict(version=LAYOUT_VERSION, params=P)
    try:
        with open(stamp) as f:
            st = json.load(f)
        if st["key"] == key:
            log(f"  {name}: reusing {final}")
            # the paths in info name the directory the cache had when it was built: in a
            # reused --fs image it is mounted on a new directory every time
            return json.loads(json.dumps(st["info"]).replace(
                json.dumps(st.get("dir", final))[1:-1], json.dumps(final)[1:-1]))
    except (OSError, ValueError, KeyError):
        pass
    if os.path.exists(final):
        shutil.rmtree(final)
    tmp = final + ".tmp"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    t0 = time.perf_counter()
    info = fn(tmp, P)
    info = json.loads(json.dumps(info).replace(json.dumps(tmp)[1:-1], json.dumps(final)[1:-1]))
    with open(os.path.join(tmp, "stamp.json"), "w") as f:
        json.dump(dict(key=key, dir=final, info=info), f)
    os.rename(tmp, final)
    log(f"  {name}: built in {time.perf_counter() - t0:.1f} s")
    return info


# ----------------------------------------------------------------------------- mounts

def _unescape(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mountinfo():
    """[(mountpoint, 'major:minor', fstype)] of this mount namespace."""
    res = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            a, _, b = line.partition(" - ")
            p = a.split()
            res.append((_unescape(p[4]), p[2], b.split()[0]))
    return res


def mount_entry(path):
    found = None
    for mp, dev, fs in mountinfo():
        if mp == path:
            found = (dev, fs)
    return found


def proc_stats(pid):
    """(open fds, VmRSS KiB, VmHWM KiB, threads) of a process."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    rss = hwm = thr = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
            elif line.startswith("Threads:"):
                thr = int(line.split()[1])
    return dict(fds=fds, rss_kib=rss, hwm_kib=hwm, threads=thr)


def find_daemon_pid(mnt, exe):
    """The process serving mnt: its command line names the mountpoint."""
    want = os.fsencode(mnt)
    real_exe = os.path.realpath(exe) if exe else None
    cands = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if any(a == want or a.rstrip(b"/") == want for a in args):
            try:
                pexe = os.path.realpath(f"/proc/{d}/exe")
            except OSError:
                pexe = None
            cands.append((pexe != real_exe, int(d)))
    if not cands:
        return None
    return sorted(cands)[0][1]


def control_call(sock, cmd, timeout=5):
    """One request on a stratafs control socket: a command line out, one JSON line back."""
    dirfd = None
    path = sock
    if len(os.fsencode(sock)) > 100:  # sun_path holds 108 bytes: connect through the directory
        dirfd = os.open(os.path.dirname(sock), os.O_PATH | os.O_DIRECTORY)
        path = f"/proc/self/fd/{dirfd}/{os.path.basename(sock)}"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(cmd.encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                d = s.recv(65536)
                if not d:
                    break
                buf += d
    finally:
        if dirfd is not None:
            os.close(dirfd)
    return json.loads(buf)


def read_uring_param():
    with open(URING_PARAM) as f:
        return f.read().strip()


ACTIVE_MOUNTS = []


class Mount:
    def __init__(self, impl, exe, lowers, upper, work, mnt, timeout):
        self.impl, self.exe, self.mnt = impl, exe, mnt
        self.upper, self.work = upper, work
        self.pid = self.dev = None
        self.proc = None  # a daemon that stayed in the foreground
        self.io_uring = None  # stratafs-uring: the control socket said the rings are in use
        opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
        if impl == STRATA_URING:
            # the control socket stays at its default, WORKDIR/strata-control.sock
            opts += ",io_uring"
        for d in (upper, work, mnt):
            os.makedirs(d, exist_ok=True)
        if mount_entry(mnt):
            raise BenchError(f"{mnt} is already a mountpoint")
        ACTIVE_MOUNTS.append(self)
        if impl == KERNEL:
            run_checked(["mount", "-t", "overlay", "overlay", "-o", opts, mnt], timeout=timeout)
        else:
            self._start_daemon([exe, "-o", opts, mnt], timeout)
        ent = mount_entry(mnt)
        if not ent:
            raise BenchError(f"{impl}: {mnt} is not mounted after the mount command")
        self.dev = ent[0]
        if impl != KERNEL:
            self.pid = find_daemon_pid(mnt, exe)
        if impl == STRATA_URING:
            self._check_uring(os.path.join(work, "strata-control.sock"))
        if impl != KERNEL and self.pid is None:
            log(f"warning: {impl}: cannot find the daemon process of {mnt}")

    def _check_uring(self, sock):
        """Fail unless the daemon serves this mount over io_uring: with /dev/fuse (the
        fallback of -o io_uring) the numbers would be mislabelled."""
        try:
            os.stat(self.mnt)  # waits for INIT: the rings register once it is answered
        except OSError as e:
            raise BenchError(f"{LABEL[self.impl]}: stat {self.mnt}: {e}")
        deadline = time.monotonic() + 5
        while True:
            try:
                st = control_call(sock, "stats")
                last = json.dumps(st)
            except (OSError, ValueError) as e:
                st, last = {}, f"{type(e).__name__}: {e}"
            if st.get("io_uring") is True:
                break
            if time.monotonic() > deadline:
                try:
                    param = f"{URING_PARAM} is {read_uring_param()}"
                except OSError as e:
                    param = f"{URING_PARAM}: {e.strerror}"
                raise BenchError(
                    f"{LABEL[self.impl]}: {self.mnt} is not served over io_uring (stratafs "
                    f"-o io_uring fell back to /dev/fuse?); {param}; control socket {sock} "
                    f"answered stats with: {last[:400]}")
            time.sleep(0.02)
        self.io_uring = True
        pid = st.get("pid")
        if isinstance(pid, int) and pid > 0:
            if self.pid is not None and self.pid != pid:
                log(f"warning: {self.impl}: daemon of {self.mnt} is pid {pid} by its control "
                    f"socket, {self.pid} by /proc/*/cmdline; using {pid}")
            self.pid = pid

    def _start_daemon(self, cmd, timeout):
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            rc = p.poll()
            if rc is not None:
                out = p.stdout.read().decode(errors="replace").strip()
                if rc != 0:
                    raise BenchError(f"{shlex.join(cmd)} exited {rc}: {out[:500]}")
                break
            if mount_entry(self.mnt):
                # mounted; a daemon that returns once mounted exits right away
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc = p  # stays in the foreground: we own it
                break
            if time.monotonic() > deadline:
                os.killpg(p.pid, signal.SIGKILL)
                raise BenchError(f"{shlex.join(cmd)}: not mounted after {timeout} s")
            time.sleep(0.01)

    def abort(self):
        """Abort the FUSE connection (unblocks processes stuck in requests)."""
        if self.impl != KERNEL and self.dev:
            minor = self.dev.split(":")[1]
            try:
                with open(f"/sys/fs/fuse/connections/{minor}/abort", "w") as f:
                    f.write("1")
            except OSError:
                pass

    def unmount(self):
        if self not in ACTIVE_MOUNTS:
            return
        ok = False
        for i in range(10):
            if not mount_entry(self.mnt):
                ok = True
                break
            r = subprocess.run(["umount", self.mnt], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
            if r.returncode == 0:
                ok = True
                break
            time.sleep(0.2 * (i + 1))
        if not ok:
            log(f"warning: umount {self.mnt} failed; aborting and detaching (umount -l)")
            self.abort()
            subprocess.run(["umount", "-l", self.mnt], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        self._wait_daemon()
        reap_children()
        ACTIVE_MOUNTS.remove(self)

    def _wait_daemon(self):
        if self.proc is not None:
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            return
        if not self.pid:
            return
        deadline = time.monotonic() + 20
        sig = None
        while os.path.exists(f"/proc/{self.pid}"):
            try:
                with open(f"/proc/{self.pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break
            except OSError:
                break
            if time.monotonic() > deadline:
                if sig == signal.SIGKILL:
                    log(f"warning: daemon {self.pid} does not die")
                    break
                sig = signal.SIGTERM if sig is None else signal.SIGKILL
                log(f"warning: {self.impl} daemon {self.pid} still running after unmount; "
                    f"sending {sig.name}")
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + 5
            time.sleep(0.02)


def rm_rf(*paths):
    paths = [p for p in paths if os.path.lexists(p)]
    if paths:
        subprocess.run(["rm", "-rf", "--one-file-system", *paths], check=False)


# ----------------------------------------------------------------------------- data filesystem

def fs_of(path):
    """(mountpoint, 'major:minor', fstype) of the filesystem holding path."""
    best = None
    for mp, dev, t in mountinfo():
        if (path.rstrip("/") + "/").startswith(mp.rstrip("/") + "/") and \
                (best is None or len(mp) >= len(best[0])):
            best = (mp, dev, t)
    return best


def blockdev_name(majmin):
    """'vda', 'loop3', 'dm-0'... for 'major:minor', or None."""
    p = f"/sys/dev/block/{majmin}"
    return os.path.basename(os.path.realpath(p)) if os.path.exists(p) else None


def ext4_journaled(majmin):
    """True/False for an ext3/ext4 on block device majmin (jbd2 lists journaled ones)."""
    name = blockdev_name(majmin)
    if not name:
        return None
    return bool(glob.glob(f"/proc/fs/jbd2/{glob.escape(name)}-*"))


def describe_fs(path):
    """'ext4, no journal', 'ext4, journaled', 'xfs'... for the filesystem holding path."""
    ent = fs_of(path)
    if not ent:
        return "?"
    _, dev, t = ent
    if t in ("ext3", "ext4"):
        j = ext4_journaled(dev)
        if j is not None:
            return f"{t}, {'journaled' if j else 'no journal'}"
    return t


class ImageFS:
    """A journaled ext4 in a sparse image file, attached to a loop device with direct I/O
    (the backing file's page cache would cache everything a second time) and mounted.

    Why not the directory itself: on ext4 without a journal (the root filesystem of the
    VMs this was written on) inode allocation skips inodes deleted in the last seconds
    (ext4 find_inode_bit -> recently_deleted, only without a journal), so 10,000 creates
    right after another implementation's 10,000 unlinks scan past them: create times
    depended on the order of the implementations.

    keep: the image is kept (and reused: it is only made anew when missing, of another
    size or unmountable); otherwise it is deleted by close(). An flock on the image keeps
    two invocations from mounting it at once.
    """

    def __init__(self, image, mnt, size_gib, keep):
        self.image, self.mnt, self.size_gib, self.keep = image, mnt, size_gib, keep
        self.dev = None
        self.fd = None
        self.owned = False  # set once no one else uses the image: close() may detach it
        self.fresh = True
        self.dio = False
        self.journaled = None
        self.making = False  # truncated or mkfs started: not a usable image until complete
        self.complete = False

    def _where(self):
        return f"--fs image ({self.image} on a loop device)"

    def setup(self):
        try:
            for tool in ("losetup", "mkfs.ext4", "mount", "umount"):
                if not shutil.which(tool):
                    raise BenchError(f"{tool} not found in PATH")
            existed = os.path.exists(self.image)
            self.fd = os.open(self.image, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BenchError(f"{self.image} is in use by another run.py")
            users = run_checked(["losetup", "-j", self.image]).strip()
            if users:
                raise BenchError(f"{self.image} is still attached to a loop device (a run "
                                 f"that was killed?): {users}; unmount it and `losetup -d` it")
            self.owned = True
            size = self.size_gib << 30
            if not existed or os.fstat(self.fd).st_size != size:
                if existed:
                    log(f"{self.image}: not {self.size_gib} GiB, making it anew")
                self.making = True
                os.ftruncate(self.fd, 0)
                os.ftruncate(self.fd, size)  # sparse
                existed = False
            self.dev = run_checked(["losetup", "--direct-io=on", "--find", "--show",
                                    self.image]).strip()
            name = os.path.basename(self.dev)
            try:
                with open(f"/sys/block/{name}/loop/dio") as f:
                    self.dio = f.read().strip() == "1"
            except OSError:
                self.dio = False
            if not self.dio:
                log(f"warning: {self.dev}: direct I/O is off (the backing filesystem refused "
                    "it?); the image's data is cached twice")
            os.makedirs(self.mnt, exist_ok=True)
            self.fresh = not existed
            if existed:
                r = subprocess.run(["mount", "-t", "ext4", self.dev, self.mnt],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                if r.returncode != 0:
                    log(f"{self.image}: cannot mount it ({r.stdout.strip()}), making it anew")
                    self.fresh = True
            if self.fresh:
                # -j: a journal whatever mke2fs.conf says; inode tables and journal zeroed
                # now (cheap on a loop device) so that no ext4lazyinit thread writes in the
                # background during the measurements
                self.making = True
                run_checked(["mkfs.ext4", "-q", "-F", "-j", "-E",
                             "lazy_itable_init=0,lazy_journal_init=0", self.dev], timeout=600)
                run_checked(["mount", "-t", "ext4", self.dev, self.mnt])
            ent = mount_entry(self.mnt)
            if not ent or ent[1] != "ext4":
                raise BenchError(f"{self.mnt}: not mounted after mount {self.dev}")
            self.journaled = ext4_journaled(ent[0])
            if self.journaled is False:
                raise BenchError(f"{self.dev}: mkfs.ext4 -j made an ext4 without a journal")
            self.complete = True
        except (BenchError, OSError, subprocess.TimeoutExpired) as e:
            raise BenchError(f"cannot set up {self._where()}: {e}; `--fs dir` puts the data "
                             "straight into --tmpdir instead") from None

    def describe(self, tmpdir):
        how = "fresh" if self.fresh else "reused (--keep-layers)"
        dio = "direct I/O" if self.dio else "buffered I/O: direct I/O refused"
        return (f"{how} journaled ext4 in a {self.size_gib} GiB sparse image on a loop device "
                f"({dio}) in {tmpdir} ({describe_fs(tmpdir)}); --fs image")

    def close(self):
        """Unmount, detach and (unless kept) delete; also after a partial setup."""
        if self.owned:
            for i in range(10):
                if not mount_entry(self.mnt):
                    break
                r = subprocess.run(["umount", self.mnt], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
                if r.returncode == 0:
                    break
                time.sleep(0.2 * (i + 1))
            else:
                # something below it is still busy: detach the tree; the loop device goes
                # away (autoclear) when the filesystem is finally released
                log(f"warning: umount {self.mnt} failed: {r.stderr.strip()}; umount -l")
                subprocess.run(["umount", "-l", self.mnt], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            # the device losetup attached; also one whose --show output an interrupt lost
            try:
                out = run_checked(["losetup", "-j", self.image])
            except (BenchError, OSError, subprocess.TimeoutExpired) as e:
                log(f"warning: losetup -j {self.image}: {e}")
                out = self.dev + ":" if self.dev else ""
            for line in out.splitlines():
                dev = line.split(":", 1)[0].strip()
                if dev:
                    r = subprocess.run(["losetup", "-d", dev], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True)
                    if r.returncode != 0:
                        log(f"warning: losetup -d {dev}: {r.stderr.strip()}")
            self.dev = None
            if not self.keep or (self.making and not self.complete):  # mkfs interrupted...
                try:
                    os.unlink(self.image)
                except FileNotFoundError:
                    pass
            self.owned = False
        if self.fd is not None:
            os.close(self.fd)  # releases the flock
            self.fd = None


# ----------------------------------------------------------------------------- workloads

class Ctx:
    def __init__(self, mnt, mount, data, P, helper, timeout):
        self.mnt, self.mount, self.d, self.P = mnt, mount, data, P
        self.helper, self.timeout = helper, timeout
        self.extra = {}

    def p(self, *rel):
        return os.path.join(self.mnt, *rel)


def expect(what, got, want):
    if got != want:
        raise BenchError(f"check failed: {what}: got {got}, expected {want}")


def wl_seq_read(c):
    r = c.helper("seqread", c.p("big.bin"), 1 << 20)
    expect("bytes read", r["bytes"], c.d["big_bytes"])
    return {"seq_read_1g": r["elapsed"]}


def wl_seq_read_cold(c):
    r = c.helper("seqread", c.p("big.bin"), 1 << 20)
    expect("bytes read", r["bytes"], c.d["big_bytes"])
    return {"seq_read_1g_cold": r["elapsed"]}


def wl_seq_write(c):
    r = c.helper("seqwrite", c.p("new.bin"), c.P["big_mib"], 1 << 20)
    expect("bytes written", r["bytes"], c.P["big_mib"] << 20)
    return {"seq_write_1g": r["elapsed"]}


def wl_rand_read(c):
    r = c.helper("randread", c.p("big.bin"), c.P["rand_reads"], 4096, 42)
    return {"rand_read_4k": r["elapsed"]}


def wl_csu(c):
    d = c.p("csu")
    os.mkdir(d)
    n = c.P["csu"]
    cr = c.helper("create", d, n)
    st = c.helper("stat", d, n)
    un = c.helper("unlink", d, n)
    expect("entries left after unlink", len(os.listdir(d)), 0)
    return {"create_10k": cr["elapsed"], "stat_10k": st["elapsed"], "unlink_10k": un["elapsed"]}


def wl_statwalk(c):
    cold = c.helper("walk", c.p("tree"))
    warm = c.helper("walk", c.p("tree"))
    for r in (cold, warm):
        expect("regular files", r["files"], c.d["tree_files"])
        expect("directories", r["dirs"], c.d["tree_dirs"])
        expect("other entries", r["other"], c.d["tree_other"])
    return {"statwalk_cold": cold["elapsed"], "statwalk_warm": warm["elapsed"]}


def wl_find(c):
    t, out = timed(sh(f"find {shlex.quote(c.mnt)} -type f | wc -l"), c.timeout)
    expect("find -type f", int(out), c.d["find_files"])
    return {"find": t}


def wl_readdir(c):
    r = c.helper("readdir", c.p("bigdir"))
    expect("entries", r["count"], c.d["bigdir"])
    return {"readdir_10k": r["elapsed"]}


def wl_untar(c):
    d = c.p("untar")
    os.mkdir(d)
    t, _ = timed(["tar", "-xf", c.d["tar"], "-C", d], c.timeout)
    r = c.helper("walk", d)
    expect("extracted files", r["files"], c.d["untar_files"])
    expect("extracted dirs", r["dirs"], c.d["untar_dirs"] + 1)
    return {"untar_20k": t}


def wl_copyup(c):
    r = c.helper("copyup", c.p("big.bin"))
    with open(c.p("big.bin"), "rb") as f:
        expect("first byte after write", f.read(1), b"X")
    expect("size after copy-up", os.stat(c.p("big.bin")).st_size, c.d["big_bytes"])
    return {"copyup_1g": r["elapsed"]}


def wl_rm_rf(c):
    t, _ = timed(["rm", "-rf", c.p("tree")], c.timeout)
    expect("tree exists after rm -rf", os.path.lexists(c.p("tree")), False)
    return {"rm_rf_lower": t}


def wl_chmod_r(c):
    # A copy-up per file (a Dockerfile's `RUN chmod -R` / `chown -R` over a base image's tree).
    t, _ = timed(["chmod", "-R", "g+w", c.p("tree")], c.timeout)
    _, left = timed(sh(f"find {shlex.quote(c.p('tree'))} ! -perm -g+w | wc -l"), c.timeout)
    expect("entries without g+w after chmod -R", int(left), 0)
    return {"chmod_r_lower": t}


def wl_fd_rss(c):
    pid = c.mount.pid
    before = proc_stats(pid) if pid else None
    t, out = timed(sh(f"find {shlex.quote(c.mnt)} | wc -l"), c.timeout)
    after = proc_stats(pid) if pid else None
    expect("find entries", int(out), c.d["walk_entries"])
    if pid:
        c.extra = dict(before=before, after=after)
    return {"fd_rss_walk": t}


class Workload:
    def __init__(self, name, fn, metrics, size, cold=False, warm=(), impls=None,
                 lowers="main"):
        self.name, self.fn, self.metrics, self.size = name, fn, metrics, size
        self.cold, self.warm, self.impls, self.lowers = cold, warm, impls, lowers


def workloads(d, P):
    mib = f"{P['big_mib']} MiB" if P["big_mib"] < 1024 else f"{P['big_mib'] >> 10} GiB"
    n_tree = d["tree_files"] + d["tree_dirs"] + d["tree_other"]
    csu = f"{P['csu']:,} files"
    return [
        Workload("seq_read_1g", wl_seq_read, ["seq_read_1g"],
                 {"seq_read_1g": f"{mib}, lower cached"}, warm=("big",)),
        Workload("seq_read_1g_cold", wl_seq_read_cold, ["seq_read_1g_cold"],
                 {"seq_read_1g_cold": f"{mib}, caches dropped"}, cold=True),
        Workload("seq_write_1g", wl_seq_write, ["seq_write_1g"],
                 {"seq_write_1g": f"{mib} + fsync"}),
        Workload("rand_read_4k", wl_rand_read, ["rand_read_4k"],
                 {"rand_read_4k": f"{P['rand_reads']:,} x 4 KiB in {mib}"}, warm=("big",)),
        Workload("create_stat_unlink", wl_csu, ["create_10k", "stat_10k", "unlink_10k"],
                 {"create_10k": csu, "stat_10k": csu, "unlink_10k": csu}),
        Workload("statwalk", wl_statwalk, ["statwalk_cold", "statwalk_warm"],
                 {"statwalk_cold": f"{n_tree:,} entries", "statwalk_warm": f"{n_tree:,} entries"},
                 cold=True),
        Workload("find", wl_find, ["find"], {"find": f"{d['find_files']:,} files"},
                 warm=("meta",)),
        Workload("readdir_10k", wl_readdir, ["readdir_10k"],
                 {"readdir_10k": f"{d['bigdir']:,} entries"}, warm=("meta",)),
        Workload("untar_20k", wl_untar, ["untar_20k"],
                 {"untar_20k": f"{d.get('untar_files', P['untar_files']):,} files"},
                 warm=("tar",)),
        Workload("copyup_1g", wl_copyup, ["copyup_1g"], {"copyup_1g": mib}, warm=("big",)),
        Workload("rm_rf_lower", wl_rm_rf, ["rm_rf_lower"], {"rm_rf_lower": f"{n_tree:,} entries"},
                 warm=("meta",)),
        Workload("chmod_r_lower", wl_chmod_r, ["chmod_r_lower"],
                 {"chmod_r_lower": f"{n_tree:,} entries"}, warm=("meta",)),
        Workload("fd_rss_walk", wl_fd_rss, ["fd_rss_walk"],
                 {"fd_rss_walk": f"{d.get('walk_entries', P['walk_files']):,} entries"},
                 warm=("walk",), lowers="walk"),
    ]


def prewarm(kinds, d, helper):
    """Bring what a 'warm' workload reads into the host page cache (untimed)."""
    for k in kinds:
        if k == "big":
            helper("seqread", os.path.join(d["lowers"][2], "big.bin"), 1 << 20)
        elif k == "meta":
            for l in d["lowers"]:
                helper("walk", l)
        elif k == "tar":
            helper("seqread", d["tar"], 1 << 20)
        elif k == "walk":
            for l in d["walk_lowers"]:
                helper("walk", l)


# ----------------------------------------------------------------------------- report

def fmt_time(s):
    if s is None:
        return "—"
    if s >= 100:
        return f"{s:.0f} s"
    if s >= 10:
        return f"{s:.1f} s"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 0.1:
        return f"{s * 1e3:.0f} ms"
    if s >= 0.01:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e3:.2f} ms"


def median(xs):
    return statistics.median(xs) if xs else None


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


LOADAVG_START = loadavg()


def machine_info(args, impls, profile, data):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / (1 << 20):.1f} GiB"
    except OSError:
        pass
    def version(exe):
        try:
            r = subprocess.run([exe, "--version"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=5)
            lines = [l.strip() for l in r.stdout.splitlines() if l.strip()]
            base = os.path.basename(exe).lower()
            for line in lines:  # prefer "NAME: version X" over libfuse's own lines
                if line.lower().startswith(base) and "version" in line.lower():
                    return line
            for line in lines:
                if "version" in line.lower() and "fuse" not in line.lower():
                    return line
            return r.stdout.strip().splitlines()[0] if r.stdout.strip() else "?"
        except Exception:
            return "?"
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "tmpdir": f"{args.tmpdir} ({describe_fs(args.tmpdir)})",
        "fs": args.fs,
        "data": data,
        "profile": profile,
        "runs": args.runs,
        "loadavg_start": LOADAVG_START,
        "loadavg_end": loadavg(),
    }
    for name, exe in impls:
        if name == STRATA_URING:
            info[name] = f"{exe} -o io_uring ({version(exe)})"
        elif name != KERNEL:
            info[name] = f"{exe} ({version(exe)})"
    return info


# (implementation, peer, column): the time ratios, columns whose two implementations ran
RATIOS = [(STRATA, KERNEL, "stratafs/kernel"),
          (STRATA, FUSEOVL, "stratafs/fuse-overlayfs"),
          (STRATA_URING, KERNEL, "io_uring/kernel"),
          (STRATA_URING, FUSEOVL, "io_uring/fuse-overlayfs")]


def ratio_columns(names):
    return [r for r in RATIOS if r[0] in names and r[1] in names]


def summarize(impls, wls, results):
    """{metric: {impl: median}} and {metric: {ratio column: value}} (None when missing)."""
    names = [n for n, _ in impls]
    medians, ratios = {}, {}
    for wl in wls:
        for m in wl.metrics:
            med = {n: median(results.get(m, {}).get(n, [])) for n in names
                   if not (wl.impls and n not in wl.impls)}
            medians[m] = med
            ratios[m] = {col: (round(med[a] / med[b], 4)
                               if med.get(a) is not None and med.get(b) else None)
                         for a, b, col in ratio_columns(names)}
    return dict(medians=medians, ratios=ratios)


def report(info, impls, wls, results, extras, errors, wall):
    names = [n for n, _ in impls]
    have_f = FUSEOVL in names
    L = []
    L.append("# strata benchmark")
    L.append("")
    L.append(f"- date: {info['date']}")
    L.append(f"- machine: Linux {info['kernel']}, {info['cpus']} CPUs ({info['cpu']}), "
             f"{info['memory']} RAM")
    L.append(f"- data (layers, uppers, workdirs, mountpoints): {info['data']}")
    L.append(f"- profile: {info['profile']}; runs: {info['runs']} "
             f"(each value is the median over the runs; implementations interleaved, "
             f"order rotated every run)")
    for n in names:
        if n != KERNEL:
            note = info.get("io_uring") if n == STRATA_URING else None
            L.append(f"- {LABEL[n]}: {info[n]}" + (f"; {note}" if note else ""))
    if not have_f:
        L.append("- fuse-overlayfs: not found, column skipped")
    if STRATA_URING not in names and info.get("io_uring"):
        L.append(f"- {LABEL[STRATA_URING]}: {info['io_uring']}")
    busy = float(info["loadavg_start"].split()[0]) > 0.5
    L.append(f"- load average (1/5/15 min) at start: {info['loadavg_start']}, at end: "
             f"{info['loadavg_end']}" +
             (" (**the machine was busy with other work: noisy numbers**)" if busy else ""))
    L.append(f"- wall time of this benchmark: {wall:.0f} s "
             f"(of which building the layers: {info['build_seconds']:.0f} s)")
    L.append("")
    cols = ratio_columns(names)
    L.append("Time ratios: stratafs median / peer median; **< 1 means stratafs is faster**." +
             (" `io_uring/...`: the same for stratafs (io_uring)." if STRATA_URING in names
              else ""))
    L.append("")
    hdr = ["workload", "size"] + [LABEL[n] for n in names] + [col for _, _, col in cols]
    L.append("| " + " | ".join(hdr) + " |")
    L.append("|" + "|".join(["---", "---"] + ["---:"] * (len(hdr) - 2)) + "|")
    for wl in wls:
        for m in wl.metrics:
            row = [m, wl.size[m]]
            med = {}
            for n in names:
                vals = results.get(m, {}).get(n, [])
                nfail = sum(1 for e in errors if e["metric_group"] == wl.name and e["impl"] == n)
                med[n] = median(vals)
                if wl.impls and n not in wl.impls:
                    row.append("n/a")
                    continue
                cell = fmt_time(med[n]) if vals else "FAIL"
                if nfail and vals:
                    cell += f" ({len(vals)}/{len(vals) + nfail} ok)"
                row.append(cell)
            for a, b, _ in cols:
                s, p = med.get(a), med.get(b)
                row.append(f"{s / p:.2f}" if s is not None and p else "—")
            L.append("| " + " | ".join(row) + " |")
    # fd / RSS
    if extras:
        L.append("")
        size = next((w.size["fd_rss_walk"] for w in wls if w.name == "fd_rss_walk"), "")
        L.append(f"Daemon resources in `fd_rss_walk` (`find MNT` over a tree of {size}; "
                 "medians over runs): open fds from /proc/PID/fd, VmRSS / VmHWM (peak) and "
                 "threads from /proc/PID/status.")
        L.append("")
        L.append("| daemon | fds after mount | fds after find | VmRSS after mount | "
                 "VmRSS after find | VmHWM | threads |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        for n in names:
            ex = extras.get(n)
            if not ex:
                continue
            def med_of(when, key):
                v = [e[when][key] for e in ex if e[when].get(key) is not None]
                return median(v)
            def mib(k):
                return f"{k / 1024:.1f} MiB" if k is not None else "?"
            fb, fa = med_of("before", "fds"), med_of("after", "fds")
            L.append(f"| {LABEL[n]} | {fb:.0f} | {fa:.0f} | {mib(med_of('before', 'rss_kib'))} | "
                     f"{mib(med_of('after', 'rss_kib'))} | {mib(med_of('after', 'hwm_kib'))} | "
                     f"{med_of('after', 'threads'):.0f} |")
    if errors:
        L.append("")
        L.append("Failures:")
        L.append("")
        for e in errors:
            L.append(f"- run {e['run']} {e['metric_group']} on {e['impl']}: {e['error']}")
    return "\n".join(L) + "\n"


# ----------------------------------------------------------------------------- main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stratafs", required=True, help="path of the stratafs daemon")
    ap.add_argument("--fuse-overlayfs", help="path of fuse-overlayfs (default: from PATH)")
    ap.add_argument("--runs", type=int, help="runs per workload (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="~20x smaller sizes: a smoke run")
    ap.add_argument("--only", help="comma-separated workloads or metrics to run")
    ap.add_argument("--tmpdir", default="/var/tmp",
                    help="where the image (--fs image) or the layers, uppers and mountpoints "
                         "themselves (--fs dir) go (a disk filesystem, not tmpfs; default "
                         "/var/tmp)")
    ap.add_argument("--fs", choices=("image", "dir"), default="image",
                    help="image (default): put all data on a fresh journaled ext4 in a sparse "
                         "image file in TMPDIR on a loop device (direct I/O); dir: straight "
                         "into TMPDIR, whatever filesystem it is")
    ap.add_argument("--markdown", help="also write the result table to this file")
    ap.add_argument("--json", help="write raw per-run results to this file")
    ap.add_argument("--keep-layers", action="store_true",
                    help="keep the image TMPDIR/strata-bench-PROFILE.img (--fs dir: the "
                         "directory TMPDIR/strata-bench-layers-PROFILE) with the lower layers "
                         "for the next invocation (reused when unchanged)")
    ap.add_argument("--no-io-uring", action="store_true",
                    help="leave out the fourth implementation, stratafs -o io_uring (FUSE "
                         "over io_uring; by default included when the kernel has "
                         f"{URING_PARAM}, which is set to Y for the run and restored at exit)")
    ap.add_argument("--timeout", type=float, default=600,
                    help="seconds allowed for one workload command (default 600)")
    a = ap.parse_args()
    if a.runs is None:
        a.runs = 1 if a.quick else 3
    if a.runs < 1:
        ap.error("--runs must be >= 1")
    a.tmpdir = os.path.realpath(a.tmpdir)
    return a


def resolve_exe(p):
    if p is None:
        return None
    if os.sep not in p:
        p = shutil.which(p) or p
    p = os.path.abspath(p)
    return p if os.path.isfile(p) and os.access(p, os.X_OK) else None


def main():
    args = parse_args()
    if os.geteuid() != 0:
        sys.exit("run.py must run as root (mount -t overlay, drop_caches)")
    strata = resolve_exe(args.stratafs)
    if not strata:
        sys.exit(f"--stratafs {args.stratafs}: not an executable file")
    fo_arg = args.fuse_overlayfs or shutil.which("fuse-overlayfs")
    fo = resolve_exe(fo_arg) if fo_arg else None
    impls = [(KERNEL, None)]
    if fo:
        impls.append((FUSEOVL, fo))
    else:
        log(f"fuse-overlayfs not found ({args.fuse_overlayfs or 'not in PATH'}): "
            "skipping the fuse-overlayfs column")
    impls.append((STRATA, strata))
    # stratafs -o io_uring: its own column; the module parameter is set in the try below,
    # whose finally restores it
    uring_note = None
    if args.no_io_uring:
        uring_note = "left out (--no-io-uring)"
    elif not os.path.exists(URING_PARAM):
        uring_note = f"left out: the kernel has no FUSE over io_uring (no {URING_PARAM})"
        log(f"note: {LABEL[STRATA_URING]} {uring_note}")
    else:
        impls.append((STRATA_URING, strata))
    uring_old = None  # the parameter's value before we wrote Y (None: not written)
    profile = "quick" if args.quick else "full"
    P = PROFILES[profile]

    # selection (names are valid before the data exist)
    all_wls = workloads(dict(tree_files=0, tree_dirs=0, tree_other=0, find_files=0, bigdir=0),
                        P)
    valid = {w.name for w in all_wls} | {m for w in all_wls for m in w.metrics}
    sel = None
    if args.only:
        sel = {s.strip() for s in args.only.split(",") if s.strip()}
        bad = sel - valid
        if bad:
            sys.exit(f"--only: unknown {', '.join(sorted(bad))}; known: {', '.join(sorted(valid))}")
    def selected(w):
        return sel is None or w.name in sel or any(m in sel for m in w.metrics)
    names_sel = [w.name for w in all_wls if selected(w)]

    os.makedirs(args.tmpdir, exist_ok=True)
    layers_name = f"strata-bench-layers-{profile}"
    image_path = os.path.join(args.tmpdir, f"strata-bench-{profile}.img")
    need = int(P["need_gib"] * 2**30)
    if args.fs == "image" and args.keep_layers and os.path.exists(image_path):
        need -= os.stat(image_path).st_blocks * 512
    st = os.statvfs(args.tmpdir)
    if st.f_bavail * st.f_frsize < need:
        log(f"warning: {st.f_bavail * st.f_frsize / 2**30:.1f} GiB free in {args.tmpdir}, "
            f"the {profile} profile needs about {need / 2**30:.1f} GiB more"
            + (" (the image is sparse: running out of space there makes I/O errors "
               "inside it)" if args.fs == "image" else ""))

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    global LOADAVG_START
    LOADAVG_START = loadavg()
    if float(LOADAVG_START.split()[0]) > 0.5:
        log(f"warning: load average is {LOADAVG_START}: other work on this machine will "
            "disturb the measurements")
    t_start = time.perf_counter()
    results, extras, errors, raw = {}, {}, [], []
    interrupted = False
    fatal = None
    # outer: this invocation's directory in TMPDIR. --fs dir: it is base, the data goes
    # there. --fs image: it holds the mountpoint of the image (and the image itself unless
    # it is kept), base is a directory inside the image.
    outer = base = img = None
    try:
        if (STRATA_URING, strata) in impls:
            try:
                old = read_uring_param()
                if old != "Y":
                    uring_old = old  # before the write: an interrupt during it restores too
                    with open(URING_PARAM, "w") as f:
                        f.write("Y")
                    if read_uring_param() != "Y":
                        raise OSError(f"it reads {read_uring_param()} after writing Y")
                    log(f"{URING_PARAM}: was {old}, set to Y for this run (restored at exit)")
                uring_note = f"fuse module parameter enable_uring was {old} at start" + (
                    ", set to Y for the run and restored at exit" if old != "Y" else "")
            except OSError as e:
                uring_note = f"left out: cannot set {URING_PARAM} to Y: {e}"
                log(f"note: {LABEL[STRATA_URING]} {uring_note}")
                impls.remove((STRATA_URING, strata))
        outer = base = tempfile.mkdtemp(prefix="strata-bench-", dir=args.tmpdir)
        if args.fs == "image":
            img = ImageFS(image_path if args.keep_layers else os.path.join(outer, "fs.img"),
                          os.path.join(outer, "fs"), P["image_gib"], args.keep_layers)
            img.setup()
            data_root = img.mnt
            for e in os.listdir(data_root):  # left behind in a kept image by a killed run
                if e not in ("lost+found", layers_name):
                    rm_rf(os.path.join(data_root, e))
            base = os.path.join(data_root, "strata-bench-run")
            os.mkdir(base)
            data = img.describe(args.tmpdir)
        else:
            data_root = args.tmpdir
            data = f"{args.tmpdir} ({describe_fs(args.tmpdir)}); --fs dir"
        log(f"data: {data}")
        if args.fs == "dir" and describe_fs(args.tmpdir) == "ext4, no journal":
            log(f"warning: {args.tmpdir} is ext4 without a journal: inode allocation skips "
                "recently deleted inodes, so create times depend on which implementation "
                "unlinked files just before (--fs image avoids this)")
        layer_root = (os.path.join(data_root, layers_name) if args.keep_layers
                      else os.path.join(base, "layers"))
        os.makedirs(layer_root, exist_ok=True)
        helper = Helper(build_helper(base), args.timeout)
        log(f"building lower layers in {layer_root} ({profile} profile)")
        d = dict(cached_build(layer_root, "main", P, build_main_layers))
        if "untar_20k" in names_sel:
            d.update(cached_build(layer_root, "tar", P, build_tar))
        if "fd_rss_walk" in names_sel:
            d.update(cached_build(layer_root, "walk", P, build_walk_layers))
        os.sync()
        t_built = time.perf_counter()
        wls = [w for w in workloads(d, P) if w.name in names_sel]
        for w in wls:
            if w.name == "fd_rss_walk":
                w.impls = None  # timed on all; fds/RSS only where there is a daemon
        log(f"layers ready in {t_built - t_start:.1f} s; {args.runs} run(s) of "
            f"{', '.join(w.name for w in wls)} on {', '.join(n for n, _ in impls)}")

        for run in range(args.runs):
            k = run % len(impls)
            order = impls[k:] + impls[:k]
            for wl in wls:
                for name, exe in order:
                    rd = os.path.join(base, "run", name)
                    upper, work, mnt = (os.path.join(rd, x) for x in ("upper", "work", "mnt"))
                    lowers = d["lowers"] if wl.lowers == "main" else d["walk_lowers"]
                    m = None
                    try:
                        prewarm(wl.warm, d, helper)
                        m = Mount(name, exe, lowers, upper, work, mnt, timeout=60)
                        os.sync()
                        if wl.cold:
                            drop_caches()
                        c = Ctx(mnt, m, d, P, helper, args.timeout)
                        res = wl.fn(c)
                        for metric, t in res.items():
                            results.setdefault(metric, {}).setdefault(name, []).append(t)
                        if c.extra:
                            extras.setdefault(name, []).append(c.extra)
                        rec = dict(run=run + 1, workload=wl.name, impl=name, times=res,
                                   extra=c.extra or None)
                        if m.io_uring is not None:
                            rec["io_uring"] = m.io_uring  # checked on the control socket
                        raw.append(rec)
                        log(f"[run {run + 1}/{args.runs}] {wl.name:<18} {name:<15} " +
                            "  ".join(f"{mm}={fmt_time(t)}" for mm, t in res.items()) +
                            (f"  fds={c.extra['after']['fds']} "
                             f"rss={c.extra['after']['rss_kib'] / 1024:.1f}MiB"
                             if c.extra else ""))
                    except BenchError as e:
                        if isinstance(e, Timeout) and m is not None:
                            m.abort()
                        errors.append(dict(run=run + 1, metric_group=wl.name, impl=name,
                                           error=str(e)))
                        log(f"[run {run + 1}/{args.runs}] {wl.name:<18} {name:<15} FAILED: {e}")
                    finally:
                        for am in [x for x in ACTIVE_MOUNTS if x.mnt == mnt]:
                            am.unmount()  # also a half-started one
                        rm_rf(rd)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: unmounting and cleaning up")
    except BenchError as e:  # outside a workload: setting up the image, building helper.c
        fatal = str(e)
    finally:
        # a second ^C must not leave a loop device or mounts behind; the commands below
        # inherit SIG_IGN too
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for m in list(ACTIVE_MOUNTS):  # the overlay/FUSE mounts first: they sit on the image
            try:
                m.abort() if interrupted else None
                m.unmount()
            except Exception as e:  # keep cleaning up
                log(f"warning: cleanup of {m.mnt}: {e}")
        reap_children()
        if uring_old is not None:  # after the unmounts: no io_uring mount is left
            try:
                with open(URING_PARAM, "w") as f:
                    f.write(uring_old)
                log(f"{URING_PARAM}: restored to {uring_old}")
            except OSError as e:
                log(f"warning: cannot restore {URING_PARAM} to {uring_old}: {e}")
        still = [mp for mp, _, _ in mountinfo() if outer and
                 mp.startswith(outer + "/") and not (img and mp == img.mnt)]
        if still:
            log(f"warning: still mounted: {still}")
        if img:
            if not still and img.keep and base != outer:
                rm_rf(base)  # a kept image keeps only the layers; otherwise it goes anyway
            try:
                img.close()  # umount -l if something below is still mounted
            except Exception as e:
                log(f"warning: cleanup of {img.image}: {e}")
        if outer and not [mp for mp, _, _ in mountinfo() if mp.startswith(outer + "/")]:
            rm_rf(outer)
        elif outer:
            log(f"warning: still mounted, not removing {outer}")
    if interrupted:
        sys.exit(130)
    if fatal:
        sys.exit(f"run.py: {fatal}")

    wall = time.perf_counter() - t_start
    info = machine_info(args, impls, profile, data)
    info["build_seconds"] = round(t_built - t_start, 1)
    info["io_uring"] = uring_note
    md = report(info, impls, wls, results, extras, errors, wall)
    print(md)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(info=info, implementations={n: LABEL[n] for n, _ in impls},
                           summary=summarize(impls, wls, results), results=raw,
                           errors=errors, wall_seconds=wall), f, indent=1)
    log(f"total wall time {wall:.0f} s (layers {t_built - t_start:.0f} s); data: {data}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
