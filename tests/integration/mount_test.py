#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration tests: real stratafs mounts, torn down even when a test fails.

Run: python3 mount_test.py --stratafs PATH [-k PATTERN]. Exit 77 when the facilities are missing (not root,
no /dev/fuse, no overlay in /proc/filesystems); the CI script refuses a skip.
"""
import argparse
import ctypes
import errno
import mmap
import os
import shutil
import signal
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
libc = ctypes.CDLL(None, use_errno=True)


def have_facilities():
    if os.geteuid() != 0:
        return "not root"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    with open("/proc/filesystems") as f:
        if "overlay" not in f.read():
            return "no overlay filesystem"
    return None


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
        with open(STRATAFS, "rb") as f:
            sanitized = b"__asan_init" in f.read()
        if not sanitized:  # ASan's shadow memory and quarantine are not the daemon's
            self.assertLess(rss_kb, 100 * 1024)


def main():
    global STRATAFS
    ap = argparse.ArgumentParser()
    ap.add_argument("--stratafs", required=True)
    ap.add_argument("-k", dest="pattern", action="append")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    STRATAFS = os.path.abspath(a.stratafs)
    return harness.run(__name__, "mount tests", have_facilities(), a.pattern, a.v)


if __name__ == "__main__":
    sys.exit(main())
