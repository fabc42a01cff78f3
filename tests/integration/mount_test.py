#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration tests: real stratafs mounts, torn down even when a test fails.

Run: python3 mount_test.py --stratafs PATH [-k PATTERN]. Exit 77 when the facilities are missing (not root,
no /dev/fuse, no overlay in /proc/filesystems); the CI script refuses a skip.
"""
import argparse
import ctypes
import errno
import json
import mmap
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

import harness  # noqa: E402  (tests/integration/harness.py)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "differential"))
import treedump  # noqa: E402

STRATAFS = None
FUSE_OPTS = ""  # --fuse-opts: added to every stratafs mount (the suite runs again with io_uring)
URING_PARAM = "/sys/module/fuse/parameters/enable_uring"
libc = ctypes.CDLL(None, use_errno=True)


def have_facilities():
    if os.geteuid() != 0:
        return "not root"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    with open("/proc/filesystems") as f:
        if "overlay" not in f.read():
            return "no overlay filesystem"
    if "io_uring" in FUSE_OPTS and not os.path.exists(URING_PARAM):
        return "the kernel has no FUSE over io_uring (no %s)" % URING_PARAM
    return None


def running(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return "zombie" not in f.read()
    except FileNotFoundError:
        return False


def set_uring_param(on):
    """Sets the fuse module's enable_uring; returns the previous value."""
    with open(URING_PARAM) as f:
        old = f.read().strip() == "Y"
    with open(URING_PARAM, "w") as f:
        f.write("Y" if on else "N")
    return old


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def umount(path):
    if not is_mounted(path):
        return
    r = subprocess.run(["fusermount3", "-u", path], capture_output=True)
    if r.returncode != 0:
        subprocess.run(["umount", path], capture_output=True)
    if is_mounted(path):
        subprocess.run(["umount", "-l", path], capture_output=True)


def threads_of(pid):
    """The daemon's FUSE workers (fuse/loop.cc names them)."""
    n = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                n += f.read().strip() == "stratafs-fuse"
        except FileNotFoundError:
            pass  # a thread that just exited
    return n


def daemon_pid(mnt):
    mnt = os.path.realpath(mnt).encode()
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"stratafs") and mnt in [os.path.realpath(a) for a in args[1:]
                                                             if a and not a.startswith(b"-")]:
            return int(p)
    return None


def mkfile(path, data=b"", mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


class MountCase(unittest.TestCase):
    """A temp dir with lower layers l0 (top), l1, l2, upper u, work w and mountpoint m."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="strata-it-")
        self.p = lambda *a: os.path.join(self.tmp, *a)
        for d in ("l0", "l1", "l2", "u", "w", "m", "ku", "kw", "km"):
            os.mkdir(self.p(d))
        self.mounts = []

    def tearDown(self):
        for m in reversed(self.mounts):
            umount(m)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def mount(self, lowers=("l0", "l1", "l2"), upper="u", work="w", mnt="m", extra=(), opts=""):
        o = "lowerdir=" + ":".join(self.p(l) for l in lowers)
        if upper:
            o += ",upperdir=%s,workdir=%s" % (self.p(upper), self.p(work))
        if opts:
            o += "," + opts
        if FUSE_OPTS:
            o += "," + FUSE_OPTS
        r = subprocess.run([STRATAFS, "-o", o, *extra, self.p(mnt)], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.mounts.append(self.p(mnt))
        self.assertTrue(is_mounted(self.p(mnt)), "stratafs returned before the mount was ready")
        return self.p(mnt)

    def kmount(self, lowers=("l0", "l1", "l2"), upper="ku", work="kw", mnt="km"):
        o = "lowerdir=" + ":".join(self.p(l) for l in lowers)
        if upper:
            o += ",upperdir=%s,workdir=%s" % (self.p(upper), self.p(work))
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", o, self.p(mnt)], check=True)
        self.mounts.append(self.p(mnt))
        return self.p(mnt)

    def unmount(self, mnt):
        umount(mnt)
        self.mounts.remove(mnt)
        self.assertFalse(is_mounted(mnt))


class CommandLine(MountCase):
    def test_help_and_version(self):
        r = subprocess.run([STRATAFS, "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertIn("lowerdir=", r.stdout)
        r = subprocess.run([STRATAFS, "--version"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^stratafs \d+\.\d+")

    def test_bad_arguments_name_the_problem(self):
        r = subprocess.run([STRATAFS, self.p("m")], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("lowerdir", r.stderr)
        r = subprocess.run([STRATAFS, "-o", "lowerdir=%s" % self.p("nope"), self.p("m")], capture_output=True,
                           text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(self.p("nope"), r.stderr)
        self.assertFalse(is_mounted(self.p("m")))
        r = subprocess.run([STRATAFS, "-o", "lowerdir=%s,uidmapping=0:1000" % self.p("l0"), self.p("m")],
                           capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("uidmapping", r.stderr)
        self.assertFalse(is_mounted(self.p("m")))

    def test_podman_style_options(self):
        mkfile(self.p("l1", "f"), b"hello")
        # podman: an empty option and volatile; SELinux context; unknown options only warn.
        o = "lowerdir=%s:%s,upperdir=%s,workdir=%s,,volatile,context=\"system_u:object_r:container_file_t:s0\"," \
            "rw,dev,suid,lazytime,frobnicate" % (self.p("l0"), self.p("l1"), self.p("u"), self.p("w"))
        r = subprocess.run([STRATAFS, "-o", o, self.p("m")], capture_output=True, text=True, timeout=30)
        self.mounts.append(self.p("m"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("frobnicate", r.stderr)
        with open(self.p("m", "f"), "rb") as f:
            self.assertEqual(f.read(), b"hello")

    def test_escaped_colon_in_lowerdir(self):
        os.mkdir(self.p("a:b"))
        mkfile(self.p("a:b", "x"), b"colon")
        o = "lowerdir=%s" % self.p("a:b").replace(":", "\\:")
        r = subprocess.run([STRATAFS, "-o", o, self.p("m")], capture_output=True, text=True, timeout=30)
        self.mounts.append(self.p("m"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.listdir(self.p("m")), ["x"])

    def test_mount_fuse3_style_source_argument(self):
        mkfile(self.p("l0", "f"), b"1")
        r = subprocess.run([STRATAFS, "overlay", self.p("m"), "-o", "lowerdir=%s" % self.p("l0")],
                           capture_output=True, text=True, timeout=30)
        self.mounts.append(self.p("m"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(self.p("m", "f")))

    def test_sigterm_unmounts_cleanly(self):
        m = self.mount()
        pid = daemon_pid(m)
        self.assertIsNotNone(pid)
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not is_mounted(m):
                break
            time.sleep(0.05)
        self.assertFalse(is_mounted(m))
        self.mounts.remove(m)

    def test_sigterm_unmounts_a_mount_given_by_relative_paths(self):
        # The daemon detaches into "/": the mountpoint it unmounts and the socket it removes must not be
        # relative to the directory it was started in.
        mkfile(self.p("l0", "f"), b"1")
        o = "lowerdir=l0,upperdir=u,workdir=w"
        if FUSE_OPTS:
            o += "," + FUSE_OPTS
        r = subprocess.run([STRATAFS, "-o", o, "m"], cwd=self.tmp, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = self.p("m")
        self.mounts.append(m)
        self.assertTrue(os.path.exists(self.p("m", "f")))
        self.assertTrue(os.path.exists(self.p("w", "strata-control.sock")))
        os.kill(harness.control_stats(self.p("w", "strata-control.sock"))["pid"], signal.SIGTERM)
        for _ in range(100):
            if not is_mounted(m):
                break
            time.sleep(0.05)
        self.assertFalse(is_mounted(m), "still mounted after SIGTERM")
        self.mounts.remove(m)
        for _ in range(100):
            if not os.path.exists(self.p("w", "strata-control.sock")):
                break
            time.sleep(0.05)
        self.assertFalse(os.path.exists(self.p("w", "strata-control.sock")), "control socket left behind")

    def test_umount_command(self):
        m = self.mount()
        subprocess.run(["umount", m], check=True)
        self.mounts.remove(m)
        self.assertFalse(is_mounted(m))


class ReadOnly(MountCase):
    def test_no_upper_is_read_only(self):
        mkfile(self.p("l1", "f"), b"data")
        m = self.mount(upper=None)
        with open(os.path.join(m, "f"), "rb") as f:
            self.assertEqual(f.read(), b"data")
        for op in (lambda: open(os.path.join(m, "g"), "w"),
                   lambda: open(os.path.join(m, "f"), "r+"),
                   lambda: os.mkdir(os.path.join(m, "d")),
                   lambda: os.unlink(os.path.join(m, "f"))):
            with self.assertRaises(OSError) as cm:
                op()
            self.assertEqual(cm.exception.errno, errno.EROFS)


class Semantics(MountCase):
    def test_whiteout_formats_read(self):
        mkfile(self.p("l2", "a"), b"a")
        mkfile(self.p("l2", "b"), b"b")
        mkfile(self.p("l2", "c"), b"c")
        mkfile(self.p("l2", "d", "inner"), b"i")
        mkfile(self.p("l2", "e", "inner"), b"i")
        os.mknod(self.p("l1", "a"), stat.S_IFCHR | 0o600, 0)       # kernel whiteout
        mkfile(self.p("l1", ".wh.b"))                               # fuse-overlayfs / OCI whiteout
        os.mkdir(self.p("l1", "d"))
        mkfile(self.p("l1", "d", ".wh..wh..opq"))                   # OCI opaque marker
        os.mkdir(self.p("l1", "e"))
        os.setxattr(self.p("l1", "e"), "user.overlay.opaque", b"y")  # rootless opaque
        os.mkdir(self.p("l1", "x"))
        os.setxattr(self.p("l1", "x"), "trusted.overlay.opaque", b"x")  # may hold xattr whiteouts
        mkfile(self.p("l1", "x", "gone"))
        os.setxattr(self.p("l1", "x", "gone"), "trusted.overlay.whiteout", b"")
        mkfile(self.p("l2", "x", "gone"), b"hidden")
        mkfile(self.p("l2", "x", "kept"), b"k")
        m = self.mount()
        self.assertEqual(sorted(os.listdir(m)), ["c", "d", "e", "x"])
        self.assertEqual(os.listdir(os.path.join(m, "d")), [])
        self.assertEqual(os.listdir(os.path.join(m, "e")), [])
        self.assertEqual(os.listdir(os.path.join(m, "x")), ["kept"])
        for name in ("a", "b", ".wh.b", "x/gone"):
            self.assertFalse(os.path.lexists(os.path.join(m, name)), name)

    def test_wh_names_cannot_be_created(self):
        m = self.mount()
        with self.assertRaises(OSError) as cm:
            open(os.path.join(m, ".wh.foo"), "w")
        self.assertEqual(cm.exception.errno, errno.EINVAL)

    def test_mknod_whiteout_refused(self):
        m = self.mount()
        with self.assertRaises(OSError) as cm:
            os.mknod(os.path.join(m, "w"), stat.S_IFCHR | 0o600, 0)
        self.assertEqual(cm.exception.errno, errno.EPERM)
        os.mknod(os.path.join(m, "fifo"), stat.S_IFIFO | 0o600)
        os.mknod(os.path.join(m, "null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
        self.assertEqual(sorted(os.listdir(m)), ["fifo", "null"])

    def test_private_xattrs_hidden(self):
        os.mkdir(self.p("l1", "d"))
        os.setxattr(self.p("l1", "d"), "user.visible", b"1")
        m = self.mount()
        os.rmdir(os.path.join(m, "d"))
        os.mkdir(os.path.join(m, "d"))  # becomes opaque in the upper
        self.assertIn("trusted.overlay.opaque", os.listxattr(self.p("u", "d")))
        self.assertNotIn("trusted.overlay.opaque", os.listxattr(os.path.join(m, "d")))
        # Set through the mount, an overlay-namespace name is stored escaped (as Linux 6.7+ does) and is not
        # mistaken for the union's own marker.
        os.mkdir(os.path.join(m, "e"))
        os.setxattr(os.path.join(m, "e"), "trusted.overlay.opaque", b"n")
        self.assertEqual(os.getxattr(self.p("u", "e"), "trusted.overlay.overlay.opaque"), b"n")
        self.assertEqual(os.getxattr(os.path.join(m, "e"), "trusted.overlay.opaque"), b"n")
        with self.assertRaises(OSError):
            os.setxattr(os.path.join(m, "d"), "trusted.strata.x", b"y")

    def test_open_unlinked_file_and_mmap(self):
        mkfile(self.p("l1", "f"), b"x" * 8192)
        m = self.mount()
        fd = os.open(os.path.join(m, "f"), os.O_RDWR)
        try:
            os.unlink(os.path.join(m, "f"))
            self.assertFalse(os.path.exists(os.path.join(m, "f")))
            os.pwrite(fd, b"yy", 10)
            self.assertEqual(os.pread(fd, 4, 9), b"xyyx")
            self.assertEqual(os.fstat(fd).st_size, 8192)
            mm = mmap.mmap(fd, 8192, mmap.MAP_SHARED)
            mm[0:5] = b"hello"
            mm.flush()
            mm.close()
            self.assertEqual(os.pread(fd, 5, 0), b"hello")
        finally:
            os.close(fd)
        self.assertTrue(stat.S_ISCHR(os.lstat(self.p("u", "f")).st_mode))

    def test_shared_mmap_write_persists(self):
        mkfile(self.p("l1", "f"), b"\0" * 4096)
        m = self.mount()
        with open(os.path.join(m, "f"), "r+b") as f:
            mm = mmap.mmap(f.fileno(), 4096)
            mm[100:104] = b"abcd"
            mm.close()
        self.unmount(m)
        with open(self.p("u", "f"), "rb") as f:
            self.assertEqual(f.read()[100:104], b"abcd")
        with open(self.p("l1", "f"), "rb") as f:
            self.assertEqual(f.read()[100:104], b"\0\0\0\0")

    def test_seek_data_hole_and_copy_file_range(self):
        path = self.p("l1", "sparse")
        with open(path, "wb") as f:
            f.seek(1 << 20)
            f.write(b"data")
        m = self.mount()
        fd = os.open(os.path.join(m, "sparse"), os.O_RDONLY)
        try:
            self.assertEqual(os.lseek(fd, 0, os.SEEK_DATA), 1 << 20)
            self.assertEqual(os.lseek(fd, 0, os.SEEK_HOLE), 0)
            out = os.open(os.path.join(m, "copy"), os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                n = os.copy_file_range(fd, out, 4, (1 << 20), 0)
                self.assertEqual(n, 4)
            finally:
                os.close(out)
        finally:
            os.close(fd)
        with open(os.path.join(m, "copy"), "rb") as f:
            self.assertEqual(f.read(), b"data")
        # copy-up keeps holes
        with open(os.path.join(m, "sparse"), "r+b") as f:
            f.write(b"!")
        self.assertLess(os.stat(self.p("u", "sparse")).st_blocks * 512, 1 << 20)

    def test_fallocate(self):
        m = self.mount()
        fd = os.open(os.path.join(m, "f"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.posix_fallocate(fd, 0, 1 << 16)
            self.assertEqual(os.fstat(fd).st_size, 1 << 16)
        finally:
            os.close(fd)

    def test_read_only_open_sees_copy_up(self):
        mkfile(self.p("l1", "f"), b"old")
        m = self.mount()
        with open(os.path.join(m, "f"), "rb", buffering=0) as r:
            with open(os.path.join(m, "f"), "r+b") as w:
                w.write(b"new")
            self.assertEqual(r.read(), b"new")

    def test_hard_links_in_lower_share_inode(self):
        mkfile(self.p("l1", "a"), b"same")
        os.link(self.p("l1", "a"), self.p("l1", "b"))
        m = self.mount()
        sa, sb = os.stat(os.path.join(m, "a")), os.stat(os.path.join(m, "b"))
        self.assertEqual(sa.st_ino, sb.st_ino)
        self.assertEqual(sa.st_nlink, 2)
        os.link(os.path.join(m, "a"), os.path.join(m, "c"))
        self.assertEqual(os.stat(os.path.join(m, "c")).st_ino, sa.st_ino)

    def test_inode_numbers_stable_across_copy_up(self):
        mkfile(self.p("l1", "f"), b"1")
        m = self.mount()
        before = os.stat(os.path.join(m, "f")).st_ino
        with open(os.path.join(m, "f"), "ab") as f:
            f.write(b"2")
        self.assertEqual(os.stat(os.path.join(m, "f")).st_ino, before)

    def test_concurrent_clients(self):
        for i in range(50):
            mkfile(self.p("l1", "d%d" % (i % 5), "f%d" % i), b"%d" % i)
        m = self.mount()
        script = (
            "import os,sys\n"
            "m,k=sys.argv[1],int(sys.argv[2])\n"
            "for r in range(20):\n"
            "  for i in range(50):\n"
            "    p=os.path.join(m,'d%d'%(i%5),'f%d'%i)\n"
            "    open(p,'rb').read()\n"
            "    q=os.path.join(m,'d%d'%(i%5),'n%d_%d'%(k,i))\n"
            "    open(q,'wb').write(b'x'*k)\n"
            "    os.rename(q,q+'.r'); os.unlink(q+'.r')\n"
            "  os.listdir(os.path.join(m,'d%d'%(r%5)))\n")
        procs = [subprocess.Popen([sys.executable, "-c", script, m, str(k)]) for k in range(1, 7)]
        for pr in procs:
            self.assertEqual(pr.wait(timeout=300), 0)
        self.assertEqual(sorted(os.listdir(os.path.join(m, "d0"))), sorted("f%d" % i for i in range(0, 50, 5)))
        self.assertIsNotNone(daemon_pid(m), "daemon died")


class KernelInterop(MountCase):
    """The same upper must mount with kernel overlayfs and with stratafs, showing the same tree."""

    def populate(self):
        mkfile(self.p("l2", "keep"), b"k")
        mkfile(self.p("l2", "del"), b"d")
        mkfile(self.p("l2", "dir", "a"), b"a")
        mkfile(self.p("l2", "dir", "b"), b"b")
        mkfile(self.p("l1", "mod"), b"m", 0o600)
        mkfile(self.p("l1", "deldir", "x"), b"x")
        mkfile(self.p("l0", "sub", "y"), b"y")

    def change(self, m):
        os.unlink(os.path.join(m, "del"))
        with open(os.path.join(m, "mod"), "ab") as f:
            f.write(b"+more")
        os.chmod(os.path.join(m, "mod"), 0o640)
        shutil.rmtree(os.path.join(m, "deldir"))
        os.mkdir(os.path.join(m, "deldir"))
        mkfile(os.path.join(m, "deldir", "fresh"), b"f")
        os.unlink(os.path.join(m, "dir", "a"))
        os.symlink("keep", os.path.join(m, "link"))
        os.rename(os.path.join(m, "sub", "y"), os.path.join(m, "y2"))
        os.setxattr(os.path.join(m, "keep"), "user.tag", b"v")
        os.mkdir(os.path.join(m, "newdir"))
        mkfile(os.path.join(m, "newdir", "n"), b"n")

    def test_stratafs_upper_mounts_with_kernel(self):
        self.populate()
        m = self.mount()
        self.change(m)
        view = treedump.dump_text(m, dir_mtime=False)
        self.unmount(m)
        km = self.kmount(upper="u", work="w")
        self.assertEqual(treedump.dump_text(km, dir_mtime=False), view)

    def test_kernel_upper_mounts_with_stratafs(self):
        self.populate()
        km = self.kmount()
        self.change(km)
        view = treedump.dump_text(km, dir_mtime=False)
        self.unmount(km)
        m = self.mount(upper="ku", work="kw")
        self.assertEqual(treedump.dump_text(m, dir_mtime=False), view)


# A client in its own process, to be killed -9 while it holds a pause.
PAUSER = """
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"pause\\n")
sys.stdout.write(s.makefile("rb").readline().decode())
sys.stdout.flush()
time.sleep(3600)
"""


class Control(MountCase):
    """The control socket: pause holds writes (not reads) until resume or until the pausing client is gone."""

    def setUp(self):
        super().setUp()
        self.procs = []
        self.conns = []

    def tearDown(self):
        for c in self.conns:
            c.close()  # releases any pause before the unmount
        for pr in self.procs:
            if pr.poll() is None:
                pr.kill()
            pr.wait()
        super().tearDown()

    def sock(self):
        return self.p("w", "strata-control.sock")

    def conn(self, path=None):
        c = harness.ControlConn(path or self.sock())
        self.conns.append(c)
        return c

    def spawn(self, args, **kw):
        pr = subprocess.Popen(args, **kw)
        self.procs.append(pr)
        return pr

    def read_while_paused(self, args):
        """Run a reader; if it hangs, release every pause first (a process stuck in the kernel on a held
        directory cannot be killed) so that the failure is reported instead of hanging the suite."""
        pr = subprocess.Popen(args, stdout=subprocess.PIPE)
        try:
            out, _ = pr.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            for c in self.conns:
                c.close()
            self.conns = []
            pr.kill()
            pr.communicate()
            self.fail("%s blocked while the mount was paused" % args)
        self.assertEqual(pr.returncode, 0, args)
        return out

    def unmount_and_wait(self, m):
        """Unmount and wait for the daemon to exit (it removes its socket after the session ends)."""
        pid = daemon_pid(m)
        self.unmount(m)
        for _ in range(600):
            if pid is None or not os.path.exists("/proc/%d" % pid):
                return
            time.sleep(0.05)
        self.fail("daemon %d still running after unmount" % pid)

    def assert_blocked(self, pr, what):
        time.sleep(1)
        self.assertIsNone(pr.poll(), what + " finished while the mount was paused")

    def test_pause_holds_writes_not_reads(self):
        mkfile(self.p("l1", "f"), b"lower")
        mkfile(self.p("l1", "d", "g"), b"g")
        mkfile(self.p("l1", "e", "h"), b"h")
        m = self.mount()
        st = os.lstat(self.sock())
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        c = self.conn()
        self.assertEqual(c.call("pause"), {"ok": True, "paused": True, "pauses": 1})
        dd = self.spawn(["dd", "if=/dev/zero", "of=" + os.path.join(m, "d", "new"), "bs=64k", "count=16",
                         "status=none"])
        self.assert_blocked(dd, "dd")
        # Reads go on: listings and file contents. Not in d: the blocked create holds d's lock in the kernel, so
        # uncached lookups and listings of d itself wait for the resume (see stratafs(1), CONTROL SOCKET).
        self.assertEqual(sorted(self.read_while_paused(["ls", m]).split()), [b"d", b"e", b"f"])
        self.assertEqual(self.read_while_paused(["ls", os.path.join(m, "e")]), b"h\n")
        self.assertEqual(self.read_while_paused(["cat", os.path.join(m, "f"), os.path.join(m, "e", "h")]),
                         b"lowerh")
        stats = self.conn().call("stats")
        self.assertTrue(stats["paused"])
        self.assertEqual(stats["in_flight"], 0)
        self.assertGreaterEqual(stats["blocked_writers"], 1)
        self.assertFalse(os.path.lexists(self.p("u", "d", "new")), "a held write reached the upper")
        self.assertIsNone(dd.poll())
        self.assertEqual(c.call("resume"), {"ok": True, "paused": False})
        self.assertEqual(dd.wait(timeout=60), 0)
        self.assertEqual(os.path.getsize(os.path.join(m, "d", "new")), 1 << 20)
        self.assertEqual(os.path.getsize(self.p("u", "d", "new")), 1 << 20)

    def test_pause_holds_more_writers_than_waiting_workers(self):
        # More held writers than workers waiting on /dev/fuse (one per CPU, fuse/loop.h): each held writer
        # takes a worker, and a stand-in must take its place on the device, or the reads below would hang.
        if "io_uring" in FUSE_OPTS:
            self.skipTest("over io_uring a CPU's ring threads (io_uring_threads) bound the held writers "
                          "(stratafs(1), CONTROL SOCKET)")
        n = max(4, 2 * (os.cpu_count() or 1))
        mkfile(self.p("l1", "f"), b"lower")
        for i in range(n):
            os.makedirs(self.p("l1", "d%d" % i))
        m = self.mount(opts="idle_threads=1")  # spare workers beyond one parked exit again
        os.stat(m)
        pid = daemon_pid(m)
        before = threads_of(pid)
        c = self.conn()
        self.assertTrue(c.call("pause")["ok"])
        writers = [self.spawn(["dd", "if=/dev/zero", "of=" + os.path.join(m, "d%d" % i, "new"), "bs=4k",
                               "count=1", "status=none"]) for i in range(n)]
        deadline = time.monotonic() + 30
        while self.conn().call("stats")["blocked_writers"] < n and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.conn().call("stats")["blocked_writers"], n)
        during = threads_of(pid)
        self.assertGreaterEqual(during, n + 1, "held writers got no stand-in waiting on the device")
        self.assertEqual(self.read_while_paused(["cat", os.path.join(m, "f")]), b"lower")
        self.assertEqual(len(self.read_while_paused(["ls", m]).split()), n + 1)
        for w in writers:
            self.assertIsNone(w.poll(), "a write finished while the mount was paused")
        self.assertEqual(c.call("resume"), {"ok": True, "paused": False})
        for w in writers:
            self.assertEqual(w.wait(timeout=60), 0)
        for i in range(n):
            self.assertEqual(os.path.getsize(self.p("u", "d%d" % i, "new")), 4096)
        # Back to the waiting workers and one parked: the stand-ins that are not needed any more leave.
        deadline = time.monotonic() + 10
        while threads_of(pid) > before + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertLessEqual(threads_of(pid), before + 1)

    def test_killed_pauser_resumes(self):
        mkfile(self.p("l1", "f"), b"0123456789")
        m = self.mount()
        pauser = self.spawn([sys.executable, "-c", PAUSER, self.sock()], stdout=subprocess.PIPE)
        self.assertEqual(json.loads(pauser.stdout.readline())["ok"], True)
        # Writing into a lower file: the open for writing (copy-up) is held.
        dd = self.spawn(["dd", "if=/dev/zero", "of=" + os.path.join(m, "f"), "bs=1", "count=3", "conv=notrunc",
                         "status=none"])
        self.assert_blocked(dd, "dd")
        self.assertTrue(self.conn().call("stats")["paused"])
        pauser.kill()  # SIGKILL: no chance to say resume
        self.assertEqual(dd.wait(timeout=60), 0)
        with open(os.path.join(m, "f"), "rb") as f:
            self.assertEqual(f.read(), b"\0\0\0" + b"3456789")
        self.assertFalse(self.conn().call("stats")["paused"])

    def test_two_pausers_hold_until_both_release(self):
        m = self.mount()
        a, b = self.conn(), self.conn()
        self.assertTrue(a.call("pause")["ok"])
        self.assertEqual(b.call("pause")["pauses"], 2)
        dd = self.spawn(["dd", "if=/dev/zero", "of=" + os.path.join(m, "x"), "bs=4k", "count=1", "status=none"])
        self.assertEqual(a.call("resume"), {"ok": True, "paused": True})
        self.assert_blocked(dd, "dd")
        r = a.call("resume")
        self.assertFalse(r["ok"])
        self.assertIn("holds no pause", r["error"])
        b.close()
        self.conns.remove(b)
        self.assertEqual(dd.wait(timeout=60), 0)

    def test_stats_sync_version(self):
        mkfile(self.p("l1", "f"), b"x")
        m = self.mount()
        with open(os.path.join(m, "f"), "ab") as f:
            f.write(b"y")  # one copy-up
        os.listdir(m)
        c = self.conn()
        # A worker leaves the gate just after its reply: the last write may still count for a moment.
        for _ in range(200):
            s = c.call("stats")
            if s["in_flight"] == 0:
                break
            time.sleep(0.01)
        self.assertTrue(s["ok"])
        self.assertFalse(s["paused"])
        self.assertEqual(s["pauses"], 0)
        self.assertEqual(s["in_flight"], 0)
        self.assertEqual(s["blocked_writers"], 0)
        self.assertTrue(s["writable"])
        self.assertEqual(s["layers"], 4)
        self.assertGreaterEqual(s["nodes"], 2)
        self.assertEqual(s["copy_ups"], 1)
        self.assertGreater(s["fuse_requests"], 0)
        self.assertGreaterEqual(s["fd_cache_fds"], 0)
        self.assertGreaterEqual(s["uptime_s"], 0)
        self.assertEqual(s["pid"], daemon_pid(m))
        self.assertEqual(c.call("sync"), {"ok": True})
        v = c.call("version")
        self.assertEqual(v["protocol"], 1)
        r = subprocess.run([STRATAFS, "--version"], capture_output=True, text=True)
        self.assertIn(v["version"], r.stdout)
        self.assertEqual(c.call("ping"), {"ok": True})
        self.assertFalse(c.call("frobnicate")["ok"])

    def test_socket_lifecycle(self):
        # A socket file left by a crashed daemon is replaced.
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(self.sock())
        stale.close()
        m = self.mount()
        self.assertTrue(self.conn().call("ping")["ok"])
        self.unmount_and_wait(m)
        self.assertFalse(os.path.lexists(self.sock()), "socket left behind at unmount")
        # control=none: no socket; a read-only mount: none unless asked for.
        m = self.mount(opts="control=none")
        self.assertFalse(os.path.lexists(self.sock()))
        self.unmount(m)
        m = self.mount(upper=None, opts="workdir=" + self.p("w"))
        self.assertFalse(os.path.lexists(self.sock()))
        self.assertEqual(daemon_pid(m) is not None, True)
        self.unmount(m)

    def test_long_socket_path(self):
        d = self.p("ctl")
        while len(d) < 200:
            d = os.path.join(d, "a-long-directory-name-for-the-socket")
        os.makedirs(d)
        path = os.path.join(d, "stratafs.sock")
        self.assertGreater(len(path), 108)
        m = self.mount(opts="control=" + path)
        c = self.conn(path)
        self.assertTrue(c.call("pause")["ok"])
        dd = self.spawn(["dd", "if=/dev/zero", "of=" + os.path.join(m, "x"), "bs=4k", "count=1", "status=none"])
        self.assert_blocked(dd, "dd")
        self.assertTrue(c.call("resume")["ok"])
        self.assertEqual(dd.wait(timeout=60), 0)
        self.unmount_and_wait(m)
        self.assertFalse(os.path.lexists(path))

    def test_sigterm_while_paused_exits(self):
        m = self.mount()
        c = self.conn()
        self.assertTrue(c.call("pause")["ok"])
        dd = self.spawn(["dd", "if=/dev/zero", "of=" + os.path.join(m, "x"), "bs=4k", "count=1", "status=none"],
                        stderr=subprocess.DEVNULL)
        self.assert_blocked(dd, "dd")
        pid = daemon_pid(m)
        os.kill(pid, signal.SIGTERM)
        # The held worker is let go (its request fails) so that the daemon can exit; nothing waits forever.
        for _ in range(600):
            if not os.path.exists("/proc/%d" % pid):
                break
            time.sleep(0.05)
        self.assertFalse(os.path.exists("/proc/%d" % pid), "daemon still running after SIGTERM while paused")
        dd.wait(timeout=60)
        self.assertFalse(os.path.lexists(self.sock()))


class Resources(MountCase):
    def test_find_over_100k_files_bounded_fds_and_rss(self):
        # 100,000 files in 5,000 directories, spread over two layers: more directories than the fd cache holds,
        # so an unbounded cache would show here.
        for layer, base in (("l1", 0), ("l2", 2500)):
            for d in range(2500):
                dp = self.p(layer, "t", "d%04d" % (base + d))
                os.makedirs(dp)
                for i in range(20):
                    open(os.path.join(dp, "f%03d" % i), "wb").close()
        m = self.mount()
        pid = daemon_pid(m)
        r = subprocess.run(["find", m], capture_output=True, check=True)
        self.assertEqual(r.stdout.count(b"\n"), 100000 + 5000 + 2)
        nfds = len(os.listdir("/proc/%d/fd" % pid))
        with open("/proc/%d/status" % pid) as f:
            rss_kb = int([l for l in f if l.startswith("VmRSS:")][0].split()[1])
        print("\n    after find over 100k files: %d fds, RSS %.1f MiB" % (nfds, rss_kb / 1024.0), file=sys.stderr)
        self.assertLess(nfds, 1024 + 64)  # the fd cache bounds directory fds (1024) plus a few of the daemon's
        with open("/proc/%d/status" % pid) as f:
            fdsize = int([l for l in f if l.startswith("FDSize:")][0].split()[1])
        with open("/proc/%d/limits" % pid) as f:
            soft = [l.split()[3] for l in f if l.startswith("Max open files")][0]
        # The table was grown before the walk (after the daemon's fork), for the fd cache and as many open
        # files again: growing it during the walk would stall a request for an RCU grace period per doubling.
        self.assertGreaterEqual(fdsize, min(3072, int(soft)) if soft != "unlimited" else 3072)
        with open(STRATAFS, "rb") as f:
            sanitized = b"__asan_init" in f.read()
        if not sanitized:  # ASan's shadow memory and quarantine are not the daemon's
            self.assertLess(rss_kb, 100 * 1024)


class IoUring(MountCase):
    """-o io_uring: requests through per-CPU rings when the kernel offers them, /dev/fuse otherwise."""

    def setUp(self):
        if not os.path.exists(URING_PARAM):
            self.skipTest("the kernel has no FUSE over io_uring")
        super().setUp()
        self.old_param = set_uring_param(True)

    def tearDown(self):
        super().tearDown()
        set_uring_param(self.old_param)

    def exercise(self, m):
        """Every kind of request a ring carries, checked by its result."""
        with open(os.path.join(m, "new"), "wb") as f:
            f.write(os.urandom(3 << 20))  # writes of up to the 1 MiB maximum
        with open(os.path.join(m, "new"), "rb") as f:
            data = f.read()
        self.assertEqual(len(data), 3 << 20)
        with open(self.p("u", "new"), "rb") as f:
            self.assertEqual(f.read(), data)
        os.mkdir(os.path.join(m, "d"))
        for i in range(200):
            mkfile(os.path.join(m, "d", "f%03d" % i), b"x" * i)
        self.assertEqual(sorted(os.listdir(os.path.join(m, "d"))), ["f%03d" % i for i in range(200)])
        os.rename(os.path.join(m, "d", "f000"), os.path.join(m, "g"))
        os.symlink("g", os.path.join(m, "s"))
        self.assertEqual(os.readlink(os.path.join(m, "s")), "g")
        os.setxattr(os.path.join(m, "g"), "user.k", b"v")
        self.assertEqual(os.getxattr(os.path.join(m, "g"), "user.k"), b"v")
        with open(os.path.join(m, "a"), "rb") as f:  # a lower file
            self.assertEqual(f.read(), b"lower")
        os.unlink(os.path.join(m, "a"))
        self.assertFalse(os.path.exists(os.path.join(m, "a")))
        self.assertTrue(os.path.exists(self.p("u", ".wh.a")) or
                        stat.S_ISCHR(os.lstat(self.p("u", "a")).st_mode))

    def test_rings_serve_requests(self):
        mkfile(self.p("l0", "a"), b"lower")
        m = self.mount(opts="io_uring")
        pid = daemon_pid(m)
        self.exercise(m)
        st = harness.control_stats(self.p("w", "strata-control.sock"))
        self.assertTrue(st["io_uring"], st)
        self.assertGreater(st["fuse_requests"], 200)
        self.unmount(m)
        deadline = time.time() + 10  # the ring threads end with the session
        while running(pid) and time.time() < deadline:
            time.sleep(0.05)
        self.assertFalse(running(pid), "the daemon is still running 10 s after the unmount")

    def test_falls_back_to_dev_fuse_when_the_kernel_does_not_offer_it(self):
        set_uring_param(False)
        mkfile(self.p("l0", "a"), b"lower")
        m = self.mount(opts="io_uring")
        self.exercise(m)
        self.assertFalse(harness.control_stats(self.p("w", "strata-control.sock"))["io_uring"])


def script_main(module, what, paths=()):
    """main() of a test script built on MountCase: --stratafs, the executables named in `paths` (options
    such as "--blockfs", returned as absolute paths by name), -k PATTERN, -v."""
    global STRATAFS
    ap = argparse.ArgumentParser()
    ap.add_argument("--stratafs", required=True)
    for p in paths:
        ap.add_argument(p, required=True)
    ap.add_argument("-k", dest="pattern", action="append")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    STRATAFS = os.path.abspath(a.stratafs)
    got = {p: os.path.abspath(getattr(a, p.lstrip("-").replace("-", "_"))) for p in paths}
    return got, lambda: harness.run(module, what, have_facilities(), a.pattern, a.v)


def main():
    global STRATAFS, FUSE_OPTS
    ap = argparse.ArgumentParser()
    ap.add_argument("--stratafs", required=True)
    ap.add_argument("--fuse-opts", default="", help="extra -o options for every stratafs mount")
    ap.add_argument("-k", dest="pattern", action="append")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    STRATAFS = os.path.abspath(a.stratafs)
    FUSE_OPTS = a.fuse_opts
    skip = have_facilities()
    old = None
    if skip is None and "io_uring" in FUSE_OPTS:
        old = set_uring_param(True)  # the kernel offers io_uring to daemons only with it
    try:
        return harness.run(__name__, "mount tests", skip, a.pattern, a.v)
    finally:
        if old is not None:
            set_uring_param(old)


if __name__ == "__main__":
    sys.exit(main())
