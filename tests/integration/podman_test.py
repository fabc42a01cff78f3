#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""podman with stratafs as its overlay mount_program, as root and as an ordinary user.

The image is built here (umoci + busybox-static, two layers: the second deletes a file and re-creates a
directory, so podman hands stratafs lowers with `.wh.` whiteouts; one file belongs to uid/gid 1000). Each mode
checks: the container's root is a fuse.stratafs mount, it sees the image right (whiteout applied, owners kept),
writes persist across `podman start`, and `podman commit` gives an image whose content is what the container
wrote. Podman needs runc here and a containers.conf lowering its default ulimits (NOTES.md "Containers").

Run: python3 podman_test.py --stratafs PATH [-k PATTERN]. Exit 77 when podman, runc, umoci or busybox-static is
missing, or not root (the test creates its unprivileged user); 1 instead when STRATA_REQUIRE_MOUNT=1.
"""
import argparse
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import unittest

import harness  # noqa: E402  (tests/integration/harness.py)

STRATAFS = None
USER = "strata-podman"
SUBIDS = "300000-365535"
BUSYBOX = "/bin/busybox"
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
"""
# What the image holds after both layers, as `ls -ln`-style facts the container prints.
SCRIPT_SEE = ("cat /etc/motd; echo $(ls /etc); stat -c '%u:%g %a' /home/user/owned /home/user; "
              "echo $(ls /opt/d); grep fuse.stratafs /proc/self/mountinfo | grep -c '^[0-9]* [0-9]* [0-9:]* / / '")


def have_facilities():
    if os.geteuid() != 0:
        return "not root (the test creates an unprivileged user)"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    for tool in ("podman", "runc", "umoci", "useradd", "newuidmap"):
        if not shutil.which(tool):
            return "no " + tool
    if not os.path.exists(BUSYBOX):
        return "no " + BUSYBOX + " (busybox-static)"
    return None


def run(args, check=True, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def build_image(layout):
    """Two layers: a busybox rootfs with /etc/motd, /etc/gone, /opt/d/{a,b}, /home/user/owned (1000:1000);
    then /etc/gone deleted and /opt/d replaced by a directory holding only `c` (opaque)."""
    run(["umoci", "init", "--layout", layout])
    run(["umoci", "new", "--image", layout + ":t"])
    work = tempfile.mkdtemp(dir=os.path.dirname(layout))
    bundle = os.path.join(work, "b")
    run(["umoci", "unpack", "--image", layout + ":t", bundle])
    root = os.path.join(bundle, "rootfs")
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy(BUSYBOX, os.path.join(root, "bin", "busybox"))
    for applet in ("sh", "cat", "ls", "stat", "grep", "head", "echo", "rm", "mkdir", "id", "wc"):
        os.symlink("busybox", os.path.join(root, "bin", applet))
    for d in ("etc", "opt/d", "home/user", "tmp"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    files = {"etc/motd": "hello from layer 1\n", "etc/gone": "x\n", "opt/d/a": "a\n", "opt/d/b": "b\n",
             "home/user/owned": "mine\n"}
    for rel, data in files.items():
        with open(os.path.join(root, rel), "w") as f:
            f.write(data)
    os.chown(os.path.join(root, "home/user/owned"), 1000, 1000)
    os.chown(os.path.join(root, "home/user"), 1000, 1000)
    os.chmod(os.path.join(root, "home/user"), 0o750)
    run(["umoci", "repack", "--image", layout + ":t", bundle])
    shutil.rmtree(bundle)
    run(["umoci", "unpack", "--image", layout + ":t", bundle])
    os.unlink(os.path.join(root, "etc/gone"))
    shutil.rmtree(os.path.join(root, "opt/d"))
    os.makedirs(os.path.join(root, "opt/d"))
    with open(os.path.join(root, "opt/d/c"), "w") as f:
        f.write("c\n")
    run(["umoci", "repack", "--image", layout + ":t", bundle])
    run(["umoci", "config", "--image", layout + ":t", "--config.cmd", "/bin/sh"])
    shutil.rmtree(work)


class PodmanMixin:
    """The podman scenario, run by a subclass that says how to run podman (as root or as USER)."""

    def podman(self, *args, check=True):
        raise NotImplementedError

    def check_view(self, out):
        lines = out.splitlines()
        self.assertEqual(len(lines), 6, out)
        self.assertEqual(lines[0], "hello from layer 1")
        self.assertIn("motd", lines[1].split())
        self.assertNotIn("gone", lines[1].split(), "the whiteout of /etc/gone is not applied")
        self.assertEqual(lines[2:4], ["1000:1000 644", "1000:1000 750"], "owners or modes lost")
        # /opt/d was re-created in layer 2 (opaque): only c, not the a and b of layer 1.
        self.assertEqual(lines[4], "c")
        self.assertEqual(lines[5], "1", "the container's root is not a stratafs mount:\n" + out)

    def test_run_start_commit(self):
        p = self.podman("pull", "oci:" + self.layout + ":t").stdout.strip().splitlines()[-1]
        image = p
        out = self.podman("run", "--rm", "--network", "none", image, "sh", "-c", SCRIPT_SEE).stdout
        self.check_view(out)

        self.podman("create", "--network", "none", "--name", "c1", image, "sh", "-c",
                    "echo run >> /data; cat /data; echo changed > /etc/motd; rm -f /opt/d/c; "
                    "mkdir -p /new; echo n > /new/f; echo more >> /home/user/owned")
        self.assertEqual(self.podman("start", "-a", "c1").stdout, "run\n")
        self.assertEqual(self.podman("start", "-a", "c1").stdout, "run\nrun\n", "writes did not persist")

        self.podman("commit", "c1", "localhost/committed:1")
        out = self.podman("run", "--rm", "--network", "none", "localhost/committed:1", "sh", "-c",
                          "cat /data /etc/motd /new/f /home/user/owned; ls -A /opt/d | wc -l; "
                          "stat -c '%u:%g' /home/user/owned; ls /etc").stdout
        self.assertEqual(out.splitlines()[:8], ["run", "run", "changed", "n", "mine", "more", "more", "0"], out)
        self.assertIn("1000:1000", out)
        self.assertNotIn("gone", out)


def image_safe_tmpdir(parent=None):
    """A fresh private directory whose path is a valid image reference: podman names an image pulled from
    `oci:PATH:t` after PATH, and mkdtemp's random part may hold `_` runs the reference grammar refuses
    ("strata-podman-_g7s..." failed a CI run)."""
    parent = parent or tempfile.gettempdir()
    while True:
        path = os.path.join(parent, "strata-podman-" + secrets.token_hex(6))
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def podman_cmd(daemon, root, runroot, conf):
    return ["podman", "--root", root, "--runroot", runroot, "--storage-driver", "overlay",
            "--storage-opt", "overlay.mount_program=" + daemon], dict(os.environ, CONTAINERS_CONF=conf)


class PodmanRootTest(PodmanMixin, unittest.TestCase):
    def setUp(self):
        self.tmp = image_safe_tmpdir()
        self.layout = os.path.join(self.tmp, "img")
        build_image(self.layout)
        conf = os.path.join(self.tmp, "containers.conf")
        with open(conf, "w") as f:
            f.write(CONTAINERS_CONF)
        self.cmd, self.env = podman_cmd(STRATAFS, os.path.join(self.tmp, "root"), os.path.join(self.tmp, "run"), conf)

    def tearDown(self):
        self.podman("rm", "-af", check=False)
        self.podman("system", "reset", "-f", check=False)
        run(["umount", "-R", os.path.join(self.tmp, "root")], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def podman(self, *args, check=True):
        return run(self.cmd + list(args), check=check, env=self.env)


class PodmanRootlessTest(PodmanMixin, unittest.TestCase):
    """podman as USER: it runs stratafs inside its user namespace (whiteouts there are `.wh.` files or 0/0
    devices, whatever the kernel lets the namespace create)."""

    def setUp(self):
        ensure_user()
        home = pwd.getpwnam(USER).pw_dir
        self.tmp = image_safe_tmpdir(home)
        self.layout = os.path.join(self.tmp, "img")
        build_image(self.layout)
        conf = os.path.join(self.tmp, "containers.conf")
        with open(conf, "w") as f:
            f.write(CONTAINERS_CONF)
        pw = pwd.getpwnam(USER)
        # A copy the user can reach (the build tree may sit below a directory it cannot enter).
        shutil.copy(STRATAFS, os.path.join(self.tmp, "stratafs"))
        run(["chown", "-R", "%d:%d" % (pw.pw_uid, pw.pw_gid), self.tmp])
        cmd, _ = podman_cmd(os.path.join(self.tmp, "stratafs"), os.path.join(self.tmp, "root"), "/tmp/strata-podman-run-%d" % pw.pw_uid, conf)
        self.env = {"HOME": home, "USER": USER, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CONTAINERS_CONF": conf}
        self.cmd = ["runuser", "-u", USER, "--"] + ["env"] + ["%s=%s" % kv for kv in self.env.items()] + cmd

    def tearDown(self):
        self.podman("rm", "-af", check=False)
        self.podman("system", "reset", "-f", check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def podman(self, *args, check=True):
        return run(self.cmd + list(args), check=check, cwd="/")


def ensure_user():
    """USER with a subordinate id range, and /dev/fuse usable by it (0666, the usual distribution default;
    it is 0600 on these machines)."""
    try:
        pwd.getpwnam(USER)
    except KeyError:
        run(["useradd", "--create-home", "--shell", "/bin/sh", USER])
    with open("/etc/subuid") as f:
        has = any(line.startswith(USER + ":") for line in f)
    if not has:
        run(["usermod", "--add-subuids", SUBIDS, "--add-subgids", SUBIDS, USER])
    os.chmod("/dev/fuse", 0o666)


def main():
    global STRATAFS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stratafs", required=True)
    ap.add_argument("-k", action="append", dest="patterns")
    ap.add_argument("-v", action="store_true")
    args = ap.parse_args()
    STRATAFS = os.path.realpath(args.stratafs)
    return harness.run(__name__, "the podman tests", have_facilities(), args.patterns, args.v)


if __name__ == "__main__":
    sys.exit(main())
