#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration test: `strata pull`, `mount` and `commit` run by an ordinary user, with the store in
~/.local/share/strata (no --root, no $STRATA_ROOT).

An image built here as root with umoci holds files of other owners (0:0 setuid, 1000:1000 in a 0750 directory,
2000:3000, a 0000 file, a symlink, a device). The user pulls it (the device is skipped with a warning; owners are
recorded as user.fuseoverlayfs.override_stat), mounts it (stat through the mount shows the image's owners and
modes), changes it (a new file, chmod, chown — recorded by stratafs under xattr_permissions), and commits. Then,
as root, `umoci unpack` of the committed image must give the original owners and modes for what did not change
and the right ones for what did; a mount of the committed image by the user shows the same.

Run as root: python3 rootless_store_test.py --strata PATH --stratafs PATH [-k PATTERN] [-v]. It creates the user
strata-rootless (see rootless_test.py) and makes /dev/fuse mode 0666. Exit 77 when a facility is missing (not
root, no /dev/fuse, no umoci, runuser, useradd or fusermount3); with STRATA_REQUIRE_MOUNT=1 (CI) that is a
failure instead.
"""
import argparse
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

import harness  # noqa: E402  (tests/integration/harness.py)
from rootless_test import is_mounted, run_as_user, setup_user, xattrs  # noqa: E402

STRATA = None
STRATAFS = None
RECORD = "user.fuseoverlayfs.override_stat"


def have_facilities():
    if os.geteuid() != 0:
        return "not root (the test creates a user and changes /dev/fuse)"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    for tool in ("umoci", "runuser", "useradd", "usermod", "fusermount3", "getfattr"):
        if not shutil.which(tool):
            return "%s is not installed" % tool
    return None


def run(*args):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def build_image(layout, uid, gid):
    """One layer of files of several owners (as root, so umoci records them), tagged v1; uid:gid (the test
    user's) owns srv/own."""
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", layout + ":v1")
    bundle = layout + "-bundle"
    run("umoci", "unpack", "--image", layout + ":v1", bundle)
    r = os.path.join(bundle, "rootfs")

    def put(rel, data, mode, uid, gid):
        p = os.path.join(r, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        os.chown(p, uid, gid)
        os.chmod(p, mode)

    def mkdir(rel, mode, uid, gid):
        p = os.path.join(r, rel)
        os.makedirs(p, exist_ok=True)
        os.chown(p, uid, gid)
        os.chmod(p, mode)

    mkdir("etc", 0o755, 0, 0)
    mkdir("bin", 0o755, 0, 0)
    mkdir("home", 0o755, 0, 0)
    mkdir("home/app", 0o750, 1000, 1000)
    mkdir("srv", 0o2775, 2000, 3000)
    mkdir("dev", 0o755, 0, 0)
    put("bin/su", b"#!/bin/sh\n", 0o4755, 0, 0)
    put("etc/motd", b"hello\n", 0o644, 0, 0)
    put("etc/gshadow", b"secret\n", 0o000, 0, 42)
    put("home/app/data", b"app data\n", 0o640, 1000, 1000)
    put("srv/x", b"x\n", 0o600, 2000, 3000)
    put("srv/own", b"mine\n", 0o644, uid, gid)
    mkdir("tmp", 0o1777, 0, 0)
    os.symlink("etc/motd", os.path.join(r, "motd-link"))
    os.lchown(os.path.join(r, "motd-link"), 0, 0)
    os.mknod(os.path.join(r, "dev/null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    run("umoci", "repack", "--image", layout + ":v1", bundle)
    shutil.rmtree(bundle)


# What the image says: path -> "UID:GID MODE" (stat's %u:%g %a).
IMAGE = {"bin/su": "0:0 4755", "etc": "0:0 755", "etc/motd": "0:0 644", "etc/gshadow": "0:42 0",
         "home/app": "1000:1000 750", "srv": "2000:3000 2775", "srv/x": "2000:3000 600", "tmp": "0:0 1777"}


class RootlessStoreCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.uid, cls.gid, _ = setup_user()
        os.chmod("/dev/fuse", 0o666)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="strata-rls-")
        os.chmod(self.tmp, 0o755)
        self.home = os.path.join(self.tmp, "home")
        os.mkdir(self.home)
        os.chown(self.home, self.uid, self.gid)
        self.store = os.path.join(self.home, ".local", "share", "strata")
        self.layout = os.path.join(self.tmp, "img")
        build_image(self.layout, self.uid, self.gid)
        run("chmod", "-R", "a+rX", self.layout)  # umoci writes index.json 0600
        self.mounts = []

    def tearDown(self):
        for m in self.mounts:
            if is_mounted(m):
                subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def as_user(self, script):
        # The default store of an ordinary user: $HOME/.local/share/strata.
        return run_as_user("unset STRATA_ROOT XDG_DATA_HOME STRATA_STRATAFS\n" + script,
                           env={"HOME": self.home, "PATH": os.environ.get("PATH", "/usr/bin:/bin")})

    def stat_lines(self, root, paths):
        r = self.as_user("cd %s && stat -c '%%n %%u:%%g %%a' %s" % (root, " ".join(paths)))
        return dict(line.split(" ", 1) for line in r.stdout.splitlines())

    def test_pull_mount_commit_keep_owners(self):
        s = "%s --stratafs %s" % (STRATA, STRATAFS)
        r = self.as_user("%s pull oci:%s:v1" % (s, self.layout))
        self.assertIn("'dev/null': device skipped", r.stderr)
        self.assertTrue(os.path.isdir(os.path.join(self.store, "layers")), "store not in ~/.local/share/strata")
        layers = [os.path.join(self.store, "layers", d, "diff") for d in os.listdir(os.path.join(self.store, "layers"))
                  if not d.startswith(".")]
        self.assertEqual(len(layers), 1)
        diff = layers[0]
        # The layer as unpacked: the user's files, the image's owners in records, the root marked.
        st = os.lstat(os.path.join(diff, "bin/su"))
        self.assertEqual((st.st_uid, st.st_mode & 0o7777), (self.uid, 0o4755))
        self.assertEqual(xattrs(os.path.join(diff, "bin/su"))[RECORD], "0:0:4755")
        self.assertEqual(os.lstat(os.path.join(diff, "etc/gshadow")).st_mode & 0o7777, 0o600)  # readable by its owner
        self.assertIn(RECORD, xattrs(diff))
        self.assertNotIn(RECORD, xattrs(os.path.join(diff, "motd-link")))
        self.assertEqual(os.lstat(os.path.join(diff, "motd-link")).st_uid, self.uid)  # the documented limit

        mp = self.as_user("%s mount --name c localhost/img:v1" % s).stdout.strip()
        self.mounts.append(mp)
        self.assertTrue(mp.startswith(self.store + "/containers/c/"), mp)
        me = "%d:%d" % (self.uid, self.gid)
        self.assertEqual(self.stat_lines(mp, sorted(IMAGE) + ["srv/own"]), dict(IMAGE, **{"srv/own": me + " 644"}))
        # The kernel checks the modes the mount shows (stratafs adds default_permissions unprivileged): in the
        # initial user namespace the user is "other" to the image's files; it changes what is its own.
        r = self.as_user("""
cd {mp}
echo new > newfile
mkdir -m 750 newdir
echo mine > tmp/mine
chmod 600 srv/own
chown 5:6 etc/motd 2>/dev/null && echo chown-allowed || echo chown-refused
echo more >> etc/motd 2>/dev/null && echo write-allowed || echo write-refused
cat home/app/data 2>/dev/null && echo read-allowed || echo read-refused
""".format(mp=mp))
        self.assertEqual(r.stdout.split(), ["chown-refused", "write-refused", "read-refused"])
        changed = dict(IMAGE, **{"newfile": me + " 644", "newdir": me + " 750", "tmp/mine": me + " 644",
                                 "srv/own": me + " 600"})
        self.assertEqual(self.stat_lines(mp, sorted(changed)), changed)
        # stratafs keeps the owners in the upper the same way (copy-up of the parents included).
        upper = os.path.join(self.store, "containers", "c", "upper")
        self.assertEqual(xattrs(os.path.join(upper, "srv"))[RECORD], "2000:3000:2775")
        self.assertEqual(xattrs(os.path.join(upper, "tmp"))[RECORD], "0:0:1777")
        self.assertEqual(xattrs(os.path.join(upper, "srv/own"))[RECORD], me + ":600")

        out = self.as_user("%s commit c localhost/out:v2" % s).stdout.strip().splitlines()[-1]
        self.assertRegex(out, r"^sha256:[0-9a-f]{64}$")
        self.as_user("%s umount c" % s)

        # As root: umoci applies the committed image with real owners.
        oci = os.path.join(self.tmp, "oci-copy")
        shutil.copytree(os.path.join(self.store, "oci"), oci, symlinks=True)
        bundle = os.path.join(self.tmp, "bundle")
        run("umoci", "unpack", "--image", oci + ":localhost/out:v2", bundle)
        rootfs = os.path.join(bundle, "rootfs")
        got = {}
        for rel in changed:
            st = os.lstat(os.path.join(rootfs, rel))
            got[rel] = "%d:%d %o" % (st.st_uid, st.st_gid, st.st_mode & 0o7777)
        self.assertEqual(got, changed)
        st = os.lstat(os.path.join(rootfs, "home/app/data"))
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (1000, 1000, 0o640))
        self.assertEqual(os.lstat(os.path.join(rootfs, "motd-link")).st_uid, 0)
        with open(os.path.join(rootfs, "etc/gshadow"), "rb") as f:
            self.assertEqual(f.read(), b"secret\n")
        # No owner record leaked into the image.
        for rel in ("etc/motd", "newfile", "home/app", "bin/su"):
            self.assertNotIn(RECORD, xattrs(os.path.join(rootfs, rel)), rel)

        # The committed layer in layers/ keeps the records too: a mount of the new image shows them.
        mp2 = self.as_user("%s mount --name c2 localhost/out:v2" % s).stdout.strip()
        self.mounts.append(mp2)
        self.assertEqual(self.stat_lines(mp2, sorted(changed)), changed)
        self.as_user("%s umount c2" % s)

    def test_chown_recorded_in_a_mapped_user_namespace(self):
        # Where the user's subordinate ids are mapped (what rootless podman and `podman unshare` set up), the
        # namespace's root may change any file of the image: chown and chmod are recorded, and committed.
        _, _, subid = setup_user()
        s = "%s --stratafs %s" % (STRATA, STRATAFS)
        self.as_user("%s pull -q oci:%s:v1" % (s, self.layout))
        userns = ["--user", "--mount", "--map-root-user", "--map-users=%d,1,65535" % subid,
                  "--map-groups=%d,1,65535" % subid]
        script = """
unset XDG_DATA_HOME STRATA_STRATAFS
export STRATA_ROOT={store}
mp=$({s} mount --name ns localhost/img:v1)
chown 5:6 $mp/etc/motd
chmod 4711 $mp/bin/su
echo more >> $mp/home/app/data
cd $mp && stat -c '%n %u:%g %a' etc/motd bin/su home/app/data && cd /
{s} commit -q ns localhost/ns:v1 >/dev/null
{s} umount ns
""".format(store=self.store, s=s)
        r = run_as_user(script, userns, env={"HOME": self.home, "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        # Inside, the image's ids are the namespace's: the view shows them as they are.
        self.assertEqual(r.stdout.splitlines(), ["etc/motd 5:6 644", "bin/su 0:0 4711", "home/app/data 1000:1000 640"])
        oci = os.path.join(self.tmp, "oci-copy")
        shutil.copytree(os.path.join(self.store, "oci"), oci, symlinks=True)
        bundle = os.path.join(self.tmp, "bundle")
        run("umoci", "unpack", "--image", oci + ":localhost/ns:v1", bundle)
        got = {}
        for rel in ("etc/motd", "bin/su", "home/app/data", "home/app", "etc"):
            st = os.lstat(os.path.join(bundle, "rootfs", rel))
            got[rel] = "%d:%d %o" % (st.st_uid, st.st_gid, st.st_mode & 0o7777)
        self.assertEqual(got, {"etc/motd": "5:6 644", "bin/su": "0:0 4711", "home/app/data": "1000:1000 640",
                               "home/app": "1000:1000 750", "etc": "0:0 755"})


def main():
    global STRATA, STRATAFS
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata", required=True)
    ap.add_argument("--stratafs", required=True)
    ap.add_argument("-k", dest="pattern", action="append")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    STRATA, STRATAFS = harness.user_reachable(os.path.abspath(a.strata), os.path.abspath(a.stratafs))
    return harness.run(__name__, "rootless store tests", have_facilities(), a.pattern, a.v)


if __name__ == "__main__":
    sys.exit(main())
