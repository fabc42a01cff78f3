#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration tests: stratafs run by an ordinary user and inside user namespaces, and fuse-overlayfs's ownership
options (uidmapping, gidmapping, squash_*, xattr_permissions), compared with kernel overlayfs (userxattr) and
with fuse-overlayfs where both apply.

Run as root: python3 rootless_test.py --stratafs PATH [-k PATTERN] [-v]. The test creates its unprivileged user
(strata-rootless, with subordinate id ranges) if missing and makes /dev/fuse usable by it (mode 0666, the usual
distribution default). Exit 77 when a facility is missing (not root, no /dev/fuse, no overlay, no unshare or
runuser); with STRATA_REQUIRE_MOUNT=1 (CI) that is a failure instead.
"""
import argparse
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

import harness  # noqa: E402  (tests/integration/harness.py)

HERE = os.path.dirname(os.path.abspath(__file__))
TREEDUMP = os.path.join(HERE, "..", "differential", "treedump.py")
STRATAFS = None
USER = "strata-rootless"
SUBIDS = "300000-365535"  # added to the user's ranges when missing (useradd's automatic range may overlap others)


def have_facilities():
    if os.geteuid() != 0:
        return "not root (the test creates a user and changes /dev/fuse)"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    with open("/proc/filesystems") as f:
        if "overlay" not in f.read():
            return "no overlay filesystem"
    for tool in ("unshare", "runuser", "useradd", "usermod", "fusermount3", "getfattr"):
        if not shutil.which(tool):
            return "%s is not installed" % tool
    return None


def setup_user():
    """The unprivileged user (created when missing) with a subordinate id range; returns (uid, gid, subid base)."""
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True)
        pw = pwd.getpwnam(USER)
    base = None
    for db in ("/etc/subuid", "/etc/subgid"):
        ranges = []
        if os.path.exists(db):
            with open(db) as f:
                ranges = [line.strip().split(":") for line in f if line.startswith(USER + ":")]
        big = [r for r in ranges if len(r) == 3 and int(r[2]) >= 65536]
        if not big:
            flag = "--add-subuids" if db.endswith("subuid") else "--add-subgids"
            subprocess.run(["usermod", flag, SUBIDS, USER], check=True)
            big = [[USER, SUBIDS.split("-")[0], "65536"]]
        if db.endswith("subuid"):
            base = int(big[0][1])
    return pw.pw_uid, pw.pw_gid, base


def run_as_user(script, userns=None, env=None, check=True):
    """`sh -e -c script` as USER, optionally inside `unshare` with the given arguments (a list)."""
    cmd = ["runuser", "-u", USER, "--"]
    if userns is not None:
        cmd += ["unshare"] + userns
    cmd += ["env"] + ["%s=%s" % kv for kv in (env or {}).items()] + ["sh", "-e", "-c", script]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError("as %s (%s) failed (%d):\n%s\nstdout:\n%s\nstderr:\n%s"
                             % (USER, userns, r.returncode, script, r.stdout, r.stderr))
    return r


def xattrs(path):
    r = subprocess.run(["getfattr", "-h", "-d", "-m", "-", "--absolute-names", path], capture_output=True,
                       text=True)
    out = {}
    for line in r.stdout.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k] = v.strip('"')
    return out


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def is_whiteout_dev(path):
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def walk(root):
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            yield os.path.join(d, n)


USERNS = ["--user", "--mount", "--map-root-user"]  # `unshare -Urm`


class RootlessCase(unittest.TestCase):
    """l (lower, the user's), l2 (a lower with another owner), u, w, m, plus spare work/mount dirs."""

    @classmethod
    def setUpClass(cls):
        cls.uid, cls.gid, cls.subid = setup_user()
        os.chmod("/dev/fuse", 0o666)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="strata-rl-")
        os.chmod(self.tmp, 0o755)
        self.p = lambda *a: os.path.join(self.tmp, *a)
        for d in ("l", "u", "w", "m", "w2", "m2", "kw", "km"):
            os.mkdir(self.p(d))
        with open(self.p("l", "a"), "w") as f:
            f.write("a\n")
        os.makedirs(self.p("l", "d"))
        with open(self.p("l", "d", "x"), "w") as f:
            f.write("x\n")
        with open(self.p("l", "keep"), "w") as f:
            f.write("keep\n")
        with open(self.p("l", "hl1"), "w") as f:
            f.write("linked\n")
        os.link(self.p("l", "hl1"), self.p("l", "hl2"))
        for path in [self.tmp + "/" + d for d in ("l", "u", "w", "m", "w2", "m2", "kw", "km")] + list(walk(self.p("l"))):
            os.lchown(path, self.uid, self.gid)
        with open(self.p("l", "rootonly"), "w") as f:  # another owner's file: root's, 0644
            f.write("root\n")
        self.s = os.path.abspath(STRATAFS)
        self.opts = "lowerdir=%s,upperdir=%s,workdir=%s" % (self.p("l"), self.p("u"), self.p("w"))

    def tearDown(self):
        for m in ("m", "m2", "km"):
            if is_mounted(self.p(m)):
                subprocess.run(["umount", "-l", self.p(m)], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def no_trusted_xattrs(self):
        for path in [self.p("u"), self.p("w")] + list(walk(self.p("u"))) + list(walk(self.p("w"))):
            bad = [k for k in xattrs(path) if k.startswith("trusted.")]
            self.assertEqual(bad, [], path)

    def views_in_userns(self, fuse_opts=""):
        """Inside one `unshare -Urm`: stratafs's view of u, then kernel overlayfs's (userxattr); both dumps."""
        lower = self.p("l")
        script = """
{s} -o lowerdir={l},upperdir={u},workdir={w2}{fo} {m2}
python3 {td} {m2} > {t}/view-stratafs
umount {m2}
mount -t overlay overlay -o lowerdir={l},upperdir={u},workdir={kw},userxattr {km}
python3 {td} {km} > {t}/view-kernel
umount {km}
""".format(s=self.s, l=lower, u=self.p("u"), w2=self.p("w2"), m2=self.p("m2"), kw=self.p("kw"), km=self.p("km"),
           td=TREEDUMP, t=self.tmp, fo=("," + fuse_opts) if fuse_opts else "")
        os.chmod(self.tmp, 0o777)  # the dumps are written by the user
        run_as_user(script, USERNS)
        with open(self.p("view-stratafs")) as a, open(self.p("view-kernel")) as b:
            return a.read(), b.read()

    CHANGES = """
rm {m}/a
rm -r {m}/d
mkdir {m}/d
echo n > {m}/d/n
echo more >> {m}/keep
echo hi > {m}/created
"""

    def check_upper_after_changes(self, wh_files=False):
        u = self.p("u")
        if wh_files:
            self.assertFalse(os.path.lexists(os.path.join(u, "a")))
            st = os.lstat(os.path.join(u, ".wh.a"))
            self.assertTrue(stat.S_ISREG(st.st_mode) and st.st_size == 0)
            self.assertFalse(os.path.lexists(os.path.join(u, ".wh.d")), "a directory replaced the whiteout")
        else:
            self.assertTrue(is_whiteout_dev(os.path.join(u, "a")), "kernel-form whiteout where mknod 0/0 works")
        self.assertEqual(xattrs(os.path.join(u, "d")).get("user.overlay.opaque"), "y")
        self.assertEqual(sorted(os.listdir(os.path.join(u, "d"))), ["n"])
        with open(os.path.join(u, "keep")) as f:
            self.assertEqual(f.read(), "keep\nmore\n")
        for name in ("keep", "created", "d"):
            st = os.lstat(os.path.join(u, name))
            self.assertEqual((st.st_uid, st.st_gid), (self.uid, self.gid), name)
        self.no_trusted_xattrs()

    def test_ordinary_user_writes_kernel_forms_and_user_xattrs(self):
        r = run_as_user("""
{s} -o {o} {m}
grep -q "{m} fuse.stratafs .*default_permissions" /proc/self/mounts
""".format(s=self.s, o=self.opts, m=self.p("m")) + self.CHANGES.format(m=self.p("m")) + """
if echo x >> {m}/rootonly 2>/dev/null; then echo WROTE-ROOTS-FILE; fi
fusermount3 -u {m}
""".format(m=self.p("m")))
        # default_permissions (added for an unprivileged daemon): root's 0644 file is not the user's to write.
        self.assertNotIn("WROTE-ROOTS-FILE", r.stdout)
        with open(self.p("l", "rootonly")) as f:
            self.assertEqual(f.read(), "root\n")
        self.check_upper_after_changes()
        mine, kernel = self.views_in_userns()
        self.assertEqual(mine, kernel)
        names = [line.split()[0] for line in mine.splitlines()]
        self.assertNotIn("a", names)
        self.assertIn("created", names)

    def test_wh_file_whiteouts_where_device_ones_are_not_wanted(self):
        # fuse-overlayfs's switch, the path used where mknod of 0/0 is refused (older kernels, some filesystems).
        run_as_user("{s} -o {o} {m}\n".format(s=self.s, o=self.opts, m=self.p("m"))
                    + self.CHANGES.format(m=self.p("m")) + "fusermount3 -u {m}\n".format(m=self.p("m")),
                    env={"FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT": "1"})
        self.check_upper_after_changes(wh_files=True)
        # Read back by stratafs (no switch now) and by fuse-overlayfs: the same view, `.wh.` names never shown.
        r = run_as_user("""
{s} -o {o} {m}
ls -A {m}; echo --; ls -A {m}/d; echo --; cat {m}/keep
echo back > {m}/a
fusermount3 -u {m}
""".format(s=self.s, o=self.opts, m=self.p("m")))
        self.assertEqual(r.stdout, "created\nd\nhl1\nhl2\nkeep\nrootonly\n--\nn\n--\nkeep\nmore\n")
        self.assertFalse(os.path.lexists(self.p("u", ".wh.a")), "re-creating a removed name drops its whiteout")
        if shutil.which("fuse-overlayfs"):
            r = run_as_user("fuse-overlayfs -o lowerdir={l},upperdir={u},workdir={w2} {m2} 2>/dev/null\n"
                            "ls -A {m2}; echo --; ls -A {m2}/d; cat {m2}/a\nfusermount3 -u {m2}\n"
                            .format(l=self.p("l"), u=self.p("u"), w2=self.p("w2"), m2=self.p("m2")))
            self.assertEqual(r.stdout, "a\ncreated\nd\nhl1\nhl2\nkeep\nrootonly\n--\nn\nback\n")

    def test_user_namespace_root_uses_user_xattrs(self):
        # Root inside `unshare -Ur` is refused trusted.* like any user: the engine must notice by itself.
        run_as_user("{s} -o {o} {m}\n".format(s=self.s, o=self.opts, m=self.p("m"))
                    + self.CHANGES.format(m=self.p("m")) + "umount {m}\n".format(m=self.p("m")), USERNS)
        self.check_upper_after_changes()
        mine, kernel = self.views_in_userns()
        self.assertEqual(mine, kernel)
        # A lower hard link goes through the index, its link count kept in user.strata.nlink (not trusted.*).
        r = run_as_user("{s} -o {o} {m}\nrm {m}/hl1\necho again >> {m}/hl2\nstat -c %h {m}/hl2\numount {m}\n"
                        .format(s=self.s, o=self.opts, m=self.p("m")), USERNS)
        self.assertEqual(r.stdout, "1\n")
        idx = os.listdir(self.p("w", "strata-index"))
        self.assertEqual(len(idx), 1)
        self.assertIn("user.strata.nlink", xattrs(self.p("w", "strata-index", idx[0])))
        self.no_trusted_xattrs()

    def test_uidmapping_as_root_matches_fuse_overlayfs(self):
        if not shutil.which("fuse-overlayfs"):
            self.skipTest("fuse-overlayfs is not installed")
        os.lchown(self.p("l", "keep"), 5, 6)
        os.lchown(self.p("l", "d"), 3, 3)
        os.lchown(self.p("l", "a"), 70000, 70000)
        opts = "uidmapping=0:1000:10:%d:2000:1,gidmapping=0:3000:10:%d:4000:1" % (self.uid, self.gid)
        results = {}
        for name, cmd, upper, work, mnt in (
                ("stratafs", self.s, "u", "w", "m"),
                ("fuse-overlayfs", "fuse-overlayfs", "kw", "w2", "m2")):
            o = "lowerdir=%s,upperdir=%s,workdir=%s,%s" % (self.p("l"), self.p(upper), self.p(work), opts)
            subprocess.run([cmd, "-o", o, self.p(mnt)], check=True, capture_output=True)
            m = self.p(mnt)
            out = []
            for n in ("", "a", "keep", "d", "d/x", "rootonly"):
                st = os.lstat(os.path.join(m, n))
                out.append("%s %d:%d" % (n, st.st_uid, st.st_gid))
            with open(os.path.join(m, "new"), "w"):
                pass
            os.chown(os.path.join(m, "new"), 1003, 3004)   # view ids -> disk 3:4
            os.chown(os.path.join(m, "keep"), 1007, -1)    # copy-up, then disk uid 7
            os.mkdir(os.path.join(m, "d", "sub"))          # root creates: 0 is unmapped in the view -> overflow
            for n in ("new", "keep", "d/sub"):
                st = os.lstat(os.path.join(m, n))
                out.append("%s %d:%d" % (n, st.st_uid, st.st_gid))
            subprocess.run(["fusermount3", "-u", m], check=True)
            for n in ("new", "keep", "d/sub"):
                st = os.lstat(os.path.join(self.p(upper), n))
                out.append("upper %s %d:%d" % (n, st.st_uid, st.st_gid))
            results[name] = out
        self.assertEqual(results["stratafs"], results["fuse-overlayfs"])
        self.assertIn("keep 1005:3006", results["stratafs"])  # disk 5:6 through the ranges
        self.assertIn("upper new 3:4", results["stratafs"])
        self.assertIn("a 65534:65534", results["stratafs"])   # outside every range

    def test_squash_options(self):
        os.lchown(self.p("l", "keep"), 5, 6)
        for opts, want, after in (("squash_to_root", "0:0", "0:0"), ("squash_to_uid=9", "9:6", "9:12"),
                                  ("squash_to_gid=8", "5:8", "11:8"), ("squash_to_root,squash_to_gid=8", "0:8", "0:8")):
            # A fresh upper and workdir each time (the previous daemon may still be exiting).
            work = tempfile.mkdtemp(dir=self.tmp)
            o = "lowerdir=%s,upperdir=%s,workdir=%s,%s" % (self.p("l"), self.p("u"), work, opts)
            subprocess.run([self.s, "-o", o, self.p("m")], check=True)
            try:
                st = os.lstat(self.p("m", "keep"))
                self.assertEqual("%d:%d" % (st.st_uid, st.st_gid), want, opts)
                os.chown(self.p("m", "keep"), 11, 12)  # accepted; what the view shows stays squashed
                st = os.lstat(self.p("m", "keep"))
                self.assertEqual("%d:%d" % (st.st_uid, st.st_gid), after, opts)
            finally:
                subprocess.run(["fusermount3", "-u", self.p("m")], check=True)
            shutil.rmtree(self.p("u"))
            os.mkdir(self.p("u"))

    def mapped_userns(self):
        # Root is the user; ids 1..65535 are the user's subordinate range (newuidmap).
        return ["--user", "--mount", "--map-root-user", "--map-users=%d,1,65535" % self.subid,
                "--map-groups=%d,1,65535" % self.subid]

    def test_uidmapping_inside_a_mapped_user_namespace(self):
        os.chmod(self.tmp, 0o777)
        # Inside: lowers owned by namespace ids 0, 5 and 60000; the mount shows disk 0..99 as 1000..1099.
        script = """
chown 5:5 {l}/keep; chown 60000:60000 {l}/a; chown -h 0:0 {l}/d
for prog in "{s}" fuse-overlayfs; do
  rm -rf {u} {w}; mkdir {u} {w}
  $prog -o lowerdir={l},upperdir={u},workdir={w},uidmapping=0:1000:100,gidmapping=0:1000:100 {m} 2>/dev/null
  stat -c '%n %u:%g' {m}/keep {m}/a {m}/d
  touch {m}/new; chown 1020:1030 {m}/new; echo more >> {m}/keep
  stat -c '%n %u:%g' {m}/new {m}/keep
  umount {m}
  stat -c '%n %u:%g' {u}/new {u}/keep
  echo ==
done
""".format(s=self.s, l=self.p("l"), u=self.p("u"), w=self.p("w"), m=self.p("m"))
        r = run_as_user(script, self.mapped_userns())
        mine, peer, _ = r.stdout.split("==\n")
        self.assertEqual(mine, peer)
        m = self.p("m")
        self.assertIn("%s/keep 1005:1005\n" % m, mine)
        self.assertIn("%s/a 65534:65534\n" % m, mine)
        self.assertIn("%s/new 1020:1030\n" % m, mine)
        self.assertIn("%s/new 20:30\n" % self.p("u"), mine)  # chown went to the namespace ids 20:30
        st = os.lstat(self.p("u", "new"))
        self.assertEqual((st.st_uid, st.st_gid), (self.subid + 19, self.subid + 29))  # host view of ns 20:30

    def test_xattr_permissions(self):
        os.chmod(self.tmp, 0o777)
        script = """
chown 7:7 {l}/keep
{s} -o {o},xattr_permissions=2 {m}
touch {m}/f; chown 5:6 {m}/f; chmod 600 {m}/f
mkdir -m 700 {m}/dir; chown 8:9 {m}/dir
echo more >> {m}/keep
stat -c '%n %u:%g %a' {m}/f {m}/dir {m}/keep
getfattr -d -m - {m}/f | grep -c override_stat || true
umount {m}
stat -c '%n %u:%g %a' {u}/f {u}/dir {u}/keep
echo ==
{s} -o {o},xattr_permissions=2 {m}
stat -c '%n %u:%g %a' {m}/f {m}/dir {m}/keep
umount {m}
echo ==
fuse-overlayfs -o lowerdir={l},upperdir={u},workdir={w2},xattr_permissions=2 {m2} 2>/dev/null
stat -c '%n %u:%g %a' {m2}/f {m2}/dir {m2}/keep | sed 's|{m2}|{m}|'
umount {m2}
""".format(s=self.s, o=self.opts, l=self.p("l"), u=self.p("u"), m=self.p("m"), w2=self.p("w2"), m2=self.p("m2"))
        r = run_as_user(script, self.mapped_userns())
        first, again, peer = r.stdout.split("==\n")
        m, u = self.p("m"), self.p("u")
        self.assertEqual(first.splitlines()[:4], ["%s/f 5:6 600" % m, "%s/dir 8:9 700" % m, "%s/keep 7:7 644" % m,
                                                 "0"])  # the override xattr is not shown through the mount
        # The real owner is the daemon's (namespace root); the real mode stays usable by it.
        self.assertEqual(first.splitlines()[4:], ["%s/f 0:0 644" % u, "%s/dir 0:0 700" % u, "%s/keep 0:0 644" % u])
        self.assertEqual(xattrs(self.p("u", "f"))["user.fuseoverlayfs.override_stat"], "5:6:600")
        self.assertEqual(xattrs(self.p("u", "keep"))["user.fuseoverlayfs.override_stat"], "7:7:644")
        self.assertIn("user.fuseoverlayfs.override_stat", xattrs(self.p("u")))  # fuse-overlayfs's layer marker
        self.assertEqual(again, "\n".join(first.splitlines()[:3]) + "\n")
        if shutil.which("fuse-overlayfs"):
            self.assertEqual(peer, again)  # fuse-overlayfs reads the same owners from the upper


def main():
    global STRATAFS
    ap = argparse.ArgumentParser()
    ap.add_argument("--stratafs", required=True)
    ap.add_argument("-k", dest="pattern", action="append")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    STRATAFS, = harness.user_reachable(os.path.abspath(a.stratafs))
    return harness.run(__name__, "rootless tests", have_facilities(), a.pattern, a.v)


if __name__ == "__main__":
    sys.exit(main())
