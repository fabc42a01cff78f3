#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration tests of `strata commit`: images built here with umoci, no network.

A container is changed through its stratafs mount (add, modify, delete, rm -rf of a lower directory then
recreated -> opaque, hard links, symlink, fifo, xattr, chmod) and committed; the new image must show the
container's view at commit time through `umoci unpack`, `strata mount` and kernel overlayfs over its layers/.
Also: SOURCE_DATE_EPOCH determinism, no change -> empty_layer, -c changes, --format docker, --squash
(mounted and not), --pause with a writer running (and resumed when the commit fails), untagged images,
and errors (unknown container, missing upper, unknown image, a full disk) leaving nothing half-written.

Run: python3 commit_test.py --strata PATH --stratafs PATH [-k PATTERN]. Exit 77 when the facilities are
missing (not root, no /dev/fuse, no umoci); 1 instead when STRATA_REQUIRE_MOUNT=1.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import harness  # noqa: E402  (tests/integration/harness.py)
from strata_test import is_mounted, make_image, run  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "differential"))
import treedump  # noqa: E402

STRATA = None
STRATAFS = None

BASE = {"etc/os-release": b"NAME=base\n", "etc/motd": b"hello\n", "bin/tool.sh": b"#!/bin/sh\necho hi\n",
        "usr/share/doc/a": b"a" * 3000, "usr/share/doc/b": b"b", "usr/share/doc/sub/c": b"c",
        "var/lib/data": b"data", "opt/keep": b"keep", "lnk": ("link", "etc/motd")}
SECOND = {"usr/share/extra": b"extra\n", "etc/motd": b"hello again\n"}


def have_facilities():
    if os.geteuid() != 0:
        return "not root"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    for tool in ("umoci", "fusermount3"):
        if not shutil.which(tool):
            return "no " + tool
    return None


def dump(path):
    # mtimes in whole seconds: a layer tar keeps seconds (and the clamp makes that deterministic).
    return treedump.dump_text(path, mtime_precision=10**9)


class CommitCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="strata-commit-")
        self.root = os.path.join(self.tmp, "root")
        self.env = dict(os.environ, STRATA_ROOT=self.root, STRATA_STRATAFS=STRATAFS)
        self.env.pop("SOURCE_DATE_EPOCH", None)
        self.mounts = []
        self.cleanups = []
        lay = os.path.join(self.tmp, "img")
        make_image(lay, "v1", [BASE, SECOND])
        self.strata("pull", "-q", "oci:%s:v1" % lay)

    def tearDown(self):
        for c in reversed(self.cleanups):
            c()
        for m in self.mounts:
            if is_mounted(m):
                subprocess.run(["fusermount3", "-u", m], capture_output=True)
            if is_mounted(m):
                subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def strata(self, *args, check=True, env=None):
        return run(STRATA, *args, check=check, env=env or self.env)

    def mount(self, image, name):
        mp = self.strata("mount", "--name", name, image).stdout.strip()
        self.mounts.append(mp)
        return mp

    def commit(self, *args, check=True, env=None):
        r = self.strata("commit", *args, check=check, env=env)
        if check:
            ident = r.stdout.strip().splitlines()[-1]
            self.assertRegex(ident, r"^sha256:[0-9a-f]{64}$")
            return ident
        return r

    def inspect(self, image):
        return json.loads(self.strata("inspect", image).stdout)[0]

    def manifest(self, image):
        d = self.inspect(image)["Manifest"]["Digest"]
        return json.load(open(os.path.join(self.root, "oci", "blobs", "sha256", d[7:])))

    def blobs(self):
        return sorted(os.listdir(os.path.join(self.root, "oci", "blobs", "sha256")))

    def leftovers(self):
        out = []
        for d in ("ingest", "layers", "oci"):
            p = os.path.join(self.root, d)
            out += [d + "/" + n for n in os.listdir(p) if n.startswith(".tmp-")]
        return out

    def umoci_rootfs(self, ref):
        bundle = tempfile.mkdtemp(dir=self.tmp)
        os.rmdir(bundle)
        run("umoci", "unpack", "--image", "%s:%s" % (os.path.join(self.root, "oci"), ref), bundle)
        return os.path.join(bundle, "rootfs")

    def change(self, mp):
        """Every kind of change, made through the mount."""
        with open(os.path.join(mp, "etc/motd"), "ab") as f:  # modify a lower file
            f.write(b"more\n")
        os.unlink(os.path.join(mp, "etc/os-release"))  # delete a lower file
        shutil.rmtree(os.path.join(mp, "usr/share/doc"))  # rm -rf a lower dir, then recreate: opaque
        os.makedirs(os.path.join(mp, "usr/share/doc/new"))
        with open(os.path.join(mp, "usr/share/doc/new/file"), "wb") as f:
            f.write(b"new doc\n")
        os.makedirs(os.path.join(mp, "app"))
        with open(os.path.join(mp, "app/main"), "wb") as f:
            f.write(random.Random(1).randbytes(200000))
        os.link(os.path.join(mp, "app/main"), os.path.join(mp, "app/main-hard"))  # hard link (new file)
        os.link(os.path.join(mp, "opt/keep"), os.path.join(mp, "opt/keep-hard"))  # hard link to a lower file
        os.symlink("../etc/motd", os.path.join(mp, "app/motd-link"))
        os.mkfifo(os.path.join(mp, "app/fifo"), 0o600)
        os.setxattr(os.path.join(mp, "app/main"), "user.note", b"committed")
        os.chmod(os.path.join(mp, "bin/tool.sh"), 0o700)  # chmod of a lower file
        os.unlink(os.path.join(mp, "lnk"))
        os.symlink("etc/other", os.path.join(mp, "lnk"))  # replaced symlink
        os.unlink(os.path.join(mp, "var/lib/data"))
        os.rmdir(os.path.join(mp, "var/lib"))  # a whole lower dir gone


class Commit(CommitCase):
    def test_view_equals_umoci_strata_and_kernel_overlay(self):
        mp = self.mount("img:v1", "c1")
        self.change(mp)
        want = dump(mp)
        before = self.inspect("img:v1")
        ident = self.commit("-m", "my change", "-a", "Me <me@x>", "c1", "new:v1")
        img = self.inspect("new:v1")
        self.assertEqual(img["Id"], ident)
        self.assertEqual(img["RepoTags"], ["localhost/new:v1"])
        self.assertEqual(img["RootFS"]["Layers"][:-1], before["RootFS"]["Layers"])
        self.assertEqual(len(img["RootFS"]["Layers"]), len(before["RootFS"]["Layers"]) + 1)
        h = img["History"][-1]
        self.assertEqual((h["comment"], h["author"], h["created_by"]), ("my change", "Me <me@x>", "strata commit"))
        self.assertNotIn("empty_layer", h)
        # The layer holds the change: whiteouts, the opaque marker, a tar hard link.
        m = self.manifest("new:v1")
        self.assertEqual(m["mediaType"], "application/vnd.oci.image.manifest.v1+json")
        blob = os.path.join(self.root, "oci", "blobs", "sha256", m["layers"][-1]["digest"][7:])
        names = run("tar", "tvzf", blob).stdout
        for n in ("etc/.wh.os-release", "usr/share/doc/.wh..wh..opq", "var/.wh.lib", "app/main-hard link to app/main"):
            self.assertIn(n, names)
        lines = [ln.split()[-1] for ln in run("tar", "tzf", blob).stdout.split()]
        doc = lines.index("usr/share/doc/")
        self.assertEqual(lines[doc + 1], "usr/share/doc/.wh..wh..opq")
        # (a) umoci unpack of the store's layout
        self.assertEqual(want, dump(self.umoci_rootfs("localhost/new:v1")))
        # (b) strata mount of the new image, at once (its layer is in layers/ already)
        self.assertEqual(want, dump(self.mount("new:v1", "c2")))
        # (c) kernel overlayfs over the new image's layers/
        lowers = [os.path.join(self.root, "layers", d[7:], "diff") for d in reversed(img["RootFS"]["Layers"])]
        kmp = os.path.join(self.tmp, "kernel")
        os.mkdir(kmp)
        r = run("mount", "-t", "overlay", "overlay", "-o", "lowerdir=" + ":".join(lowers), kmp, check=False)
        if r.returncode != 0:
            self.skipTest("kernel overlayfs unavailable: " + r.stderr)
        self.mounts.append(kmp)
        self.assertEqual(want, dump(kmp))
        self.assertEqual(self.leftovers(), [])

    def test_push_then_skopeo_and_umoci_see_the_commit(self):
        """commit -> push to a docker-registry -> skopeo inspect (config, history) and skopeo copy + umoci
        unpack give the view the container had."""
        if not shutil.which("docker-registry") or not shutil.which("skopeo"):
            if os.environ.get("STRATA_REQUIRE_MOUNT") == "1":
                self.fail("docker-registry and skopeo are required in CI")
            self.skipTest("no docker-registry or skopeo")
        from registry_test import Registry  # noqa: E402  (same directory)
        reg = Registry(self.tmp)
        self.cleanups.append(reg.stop)
        mp = self.mount("img:v1", "c1")
        self.change(mp)
        want = dump(mp)
        self.commit("-m", "pushed change", "-a", "Me <me@x>", "-c", "ENV A=b", "c1", "new:v1")
        dest = "docker://%s/team/new:v1" % reg.addr
        self.strata("push", "-q", "--tls-verify=false", "new:v1", dest)
        cfg = json.loads(run("skopeo", "inspect", "--config", "--tls-verify=false", dest).stdout)
        self.assertEqual(cfg["history"][-1]["comment"], "pushed change")
        self.assertEqual(cfg["history"][-1]["author"], "Me <me@x>")
        self.assertIn("A=b", cfg["config"]["Env"])
        self.assertEqual(cfg["rootfs"]["diff_ids"], self.inspect("new:v1")["RootFS"]["Layers"])
        copy = os.path.join(self.tmp, "copy")
        run("skopeo", "copy", "--quiet", "--src-tls-verify=false", dest, "oci:%s:v1" % copy)
        bundle = os.path.join(self.tmp, "bundle")
        run("umoci", "unpack", "--image", "%s:v1" % copy, bundle)
        self.assertEqual(want, dump(os.path.join(bundle, "rootfs")))

    def test_source_date_epoch_gives_the_same_id(self):
        mp = self.mount("img:v1", "c1")
        self.change(mp)
        env = dict(self.env, SOURCE_DATE_EPOCH="1700000000")
        a = self.commit("c1", "det:a", env=env)
        b = self.commit("c1", "det:b", env=env)
        self.assertEqual(a, b)
        self.assertEqual(self.inspect("det:a")["Created"], "2023-11-14T22:13:20Z")
        c = self.commit("c1", "det:c")
        self.assertNotEqual(a, c)
        # Another container with the same change: the same layer (content, not container, decides).
        mp2 = self.mount("img:v1", "c2")
        self.change(mp2)
        la = self.inspect("det:a")["RootFS"]["Layers"][-1]
        self.commit("c2", "det:d", env=env)
        self.assertEqual(self.inspect("det:d")["RootFS"]["Layers"][-1], la)

    def test_no_change_is_an_empty_layer_entry(self):
        self.mount("img:v1", "c1")
        before = self.inspect("img:v1")
        self.commit("-c", "ENV X=1", "c1", "same:v1")
        img = self.inspect("same:v1")
        self.assertEqual(img["RootFS"]["Layers"], before["RootFS"]["Layers"])
        self.assertEqual(img["History"][-1]["empty_layer"], True)
        self.assertEqual(len(self.manifest("same:v1")["layers"]), len(before["RootFS"]["Layers"]))
        self.assertIn("X=1", img["Config"]["Env"])

    def test_changes_land_in_inspect_and_bad_ones_fail(self):
        mp = self.mount("img:v1", "c1")
        open(os.path.join(mp, "f"), "w").write("x")
        self.commit("-c", "ENV A=b C=\"d e\"", "-c", 'CMD ["sh"]', "-c", "ENTRYPOINT /init", "-c", "EXPOSE 80 53/udp",
                    "-c", "LABEL k=v", "-c", "USER app", "-c", "VOLUME /data", "-c", "WORKDIR /srv",
                    "-c", "STOPSIGNAL SIGINT", "c1", "cfg")
        c = self.inspect("cfg:latest")["Config"]
        self.assertEqual(c["Env"], ["A=b", "C=d e"])
        self.assertEqual(c["Cmd"], ["sh"])
        self.assertEqual(c["Entrypoint"], ["/bin/sh", "-c", "/init"])
        self.assertEqual(c["ExposedPorts"], {"80/tcp": {}, "53/udp": {}})
        self.assertEqual(c["Labels"], {"k": "v"})
        self.assertEqual((c["User"], c["WorkingDir"], c["StopSignal"]), ("app", "/srv", "SIGINT"))
        self.assertEqual(c["Volumes"], {"/data": {}})
        blobs = self.blobs()
        for bad in ("RUN make", "COPY a b", "EXPOSE 99999", "FROM x"):
            r = self.commit("-c", bad, "c1", "bad", check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(bad.split()[0], r.stderr)
        self.assertEqual(self.blobs(), blobs)
        self.assertEqual(self.leftovers(), [])
        self.assertNotEqual(self.strata("inspect", "bad", check=False).returncode, 0)

    def test_format_docker(self):
        mp = self.mount("img:v1", "c1")
        open(os.path.join(mp, "f"), "w").write("x")
        self.commit("--format", "docker", "c1", "dock:v1")
        m = self.manifest("dock:v1")
        self.assertEqual(m["mediaType"], "application/vnd.docker.distribution.manifest.v2+json")
        self.assertEqual(m["config"]["mediaType"], "application/vnd.docker.container.image.v1+json")
        for layer in m["layers"]:
            self.assertEqual(layer["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip")
        self.assertEqual(dump(mp), dump(self.mount("dock:v1", "c2")))
        # (umoci and skopeo 1.9 read only OCI manifests from a layout; push tests cover docker ones there.)
        r = self.commit("--format", "docker", "--compression", "zstd", "c1", "dz", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("zstd", r.stderr)

    def test_zstd_and_uncompressed_layers_mount(self):
        mp = self.mount("img:v1", "c1")
        self.change(mp)
        want = dump(mp)
        for comp in ("zstd", "none"):
            self.commit("--compression", comp, "c1", "comp:" + comp)
            self.assertEqual(want, dump(self.mount("comp:" + comp, "m-" + comp)))
        types = [self.manifest("comp:" + c)["layers"][-1]["mediaType"] for c in ("zstd", "none")]
        self.assertEqual(types, ["application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.oci.image.layer.v1.tar"])

    def test_squash_mounted_and_not(self):
        mp = self.mount("img:v1", "c1")
        self.change(mp)
        want = dump(mp)
        self.commit("--squash", "c1", "sq:mounted")
        img = self.inspect("sq:mounted")
        self.assertEqual(len(img["RootFS"]["Layers"]), 1)
        self.assertEqual(len(self.manifest("sq:mounted")["layers"]), 1)
        self.assertEqual(want, dump(self.umoci_rootfs("localhost/sq:mounted")))
        self.assertEqual(want, dump(self.mount("sq:mounted", "c2")))
        self.strata("umount", "c1")
        self.assertFalse(is_mounted(mp))
        self.commit("--squash", "c1", "sq:unmounted")
        self.assertEqual(self.inspect("sq:unmounted")["RootFS"], img["RootFS"])
        self.assertEqual(want, dump(self.umoci_rootfs("localhost/sq:unmounted")))
        self.assertEqual([n for n in os.listdir(os.path.join(self.root, "containers", "c1"))
                          if n.startswith(".squash")], [])

    def test_untagged_image_by_id(self):
        mp = self.mount("img:v1", "c1")
        open(os.path.join(mp, "f"), "w").write("x")
        ident = self.commit("c1")
        img = self.inspect(ident[7:19])
        self.assertEqual(img["Id"], ident)
        self.assertEqual(img["RepoTags"], [])
        self.assertTrue(os.path.exists(os.path.join(self.mount(ident[7:19], "c2"), "f")))

    def test_commit_of_an_unmounted_container(self):
        mp = self.mount("img:v1", "c1")
        self.change(mp)
        want = dump(mp)
        self.strata("umount", "c1")
        r = self.commit("--pause", "c1", "cold:v1", check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("not mounted", r.stderr)
        self.assertEqual(want, dump(self.mount("cold:v1", "c2")))


class Pause(CommitCase):
    def writer(self, mp, stop, counter):
        i = 0
        while not stop.is_set():
            with open(os.path.join(mp, "w%06d" % i), "wb") as f:
                f.write(b"z" * 65536)
            i += 1
            counter[0] = i

    def start_writer(self, mp):
        stop = threading.Event()
        counter = [0]
        t = threading.Thread(target=self.writer, args=(mp, stop, counter), daemon=True)
        t.start()

        def finish():
            stop.set()
            t.join(30)
        self.cleanups.append(finish)
        while counter[0] < 20:
            time.sleep(0.01)
        return counter

    def wait_progress(self, counter):
        seen = counter[0]
        for _ in range(1000):
            if counter[0] > seen + 5:
                return True
            time.sleep(0.01)
        return False

    def test_pause_with_a_writer_running(self):
        mp = self.mount("img:v1", "c1")
        sock = os.path.join(self.root, "containers", "c1", "work", "strata-control.sock")
        if not os.path.exists(sock):
            self.skipTest("this stratafs has no control socket")
        counter = self.start_writer(mp)
        self.commit("--pause", "c1", "paused:v1")
        self.assertTrue(self.wait_progress(counter), "the writer did not resume")
        rootfs = self.umoci_rootfs("localhost/paused:v1")
        sizes = {os.path.getsize(os.path.join(rootfs, n)) for n in os.listdir(rootfs) if n.startswith("w")}
        self.assertTrue(sizes <= {0, 65536}, sizes)

    def test_resumed_when_the_commit_fails(self):
        mp = self.mount("img:v1", "c1")
        sock = os.path.join(self.root, "containers", "c1", "work", "strata-control.sock")
        if not os.path.exists(sock):
            self.skipTest("this stratafs has no control socket")
        counter = self.start_writer(mp)
        ingest = os.path.join(self.root, "ingest")
        if run("chattr", "+i", ingest, check=False).returncode != 0:
            self.skipTest("chattr +i unsupported here")
        self.cleanups.append(lambda: run("chattr", "-i", ingest, check=False))
        r = self.commit("--pause", "c1", "fails:v1", check=False)
        run("chattr", "-i", ingest)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ingest", r.stderr)
        self.assertTrue(self.wait_progress(counter), "the writer did not resume after a failed commit")


class Errors(CommitCase):
    def test_copy_ups_cut_short_by_a_crash_are_refused(self):
        mp = self.mount("img:v1", "c1")
        open(os.path.join(mp, "f"), "w").write("x")
        self.strata("umount", "c1")
        # What a machine crash leaves (stratafs(1), CRASH SAFETY): a record of a copy-up whose data may not be
        # on disk. The upper must not be committed before a mount repairs it.
        work = os.path.join(self.root, "containers", "c1", "work")
        log = os.path.join(work, "strata-unsynced")
        self.assertTrue(os.path.isdir(log), os.listdir(work))
        os.symlink("another-boot/1/f", os.path.join(log, "#strata.1.1"))
        blobs = self.blobs()
        r = self.commit("c1", "x", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cut short by a crash", r.stderr)
        self.assertIn(log, r.stderr)
        self.assertEqual(self.blobs(), blobs)
        os.unlink(os.path.join(log, "#strata.1.1"))
        self.commit("c1", "x")

    def test_unknown_container_missing_upper_unknown_image(self):
        r = self.commit("nosuch", "x", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no such container: nosuch", r.stderr)
        mp = self.mount("img:v1", "c1")
        open(os.path.join(mp, "f"), "w").write("x")
        self.strata("umount", "c1")
        upper = os.path.join(self.root, "containers", "c1", "upper")
        os.rename(upper, upper + ".gone")
        r = self.commit("c1", "x", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("upper", r.stderr)
        self.assertIn(upper, r.stderr)
        os.rename(upper + ".gone", upper)
        # The parent image gone from the store (its config blob removed).
        cfg = self.inspect("img:v1")["Id"][7:]
        os.unlink(os.path.join(self.root, "oci", "blobs", "sha256", cfg))
        blobs = self.blobs()
        r = self.commit("c1", "x", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("image", r.stderr)
        self.assertEqual(self.blobs(), blobs)
        self.assertEqual(self.leftovers(), [])

    def test_disk_full_leaves_nothing_half_written(self):
        store = os.path.join(self.tmp, "small")
        os.mkdir(store)
        if run("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", store, check=False).returncode != 0:
            self.skipTest("cannot mount a tmpfs")
        self.mounts.append(store)
        env = dict(self.env, STRATA_ROOT=store)
        lay = os.path.join(self.tmp, "img")
        run(STRATA, "pull", "-q", "oci:%s:v1" % lay, env=env)
        mp = run(STRATA, "mount", "--name", "full", "img:v1", env=env).stdout.strip()
        self.mounts.insert(0, mp)
        with open(os.path.join(mp, "big"), "wb") as f:
            f.write(os.urandom(9 << 20))  # upper 9 MiB; the commit needs ~9 MiB blob + 9 MiB layers/ copy
        blobs = sorted(os.listdir(os.path.join(store, "oci", "blobs", "sha256")))
        layers = sorted(os.listdir(os.path.join(store, "layers")))
        index = open(os.path.join(store, "oci", "index.json")).read()
        r = run(STRATA, "commit", "full", "toobig:v1", check=False, env=env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("No space left on device", r.stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(store, "oci", "blobs", "sha256"))), blobs)
        self.assertEqual(sorted(os.listdir(os.path.join(store, "layers"))), layers)
        self.assertEqual(os.listdir(os.path.join(store, "ingest")), [])
        self.assertEqual(open(os.path.join(store, "oci", "index.json")).read(), index)


def main():
    global STRATA, STRATAFS
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata", required=True)
    ap.add_argument("--stratafs", required=True)
    ap.add_argument("-k", dest="pattern", action="append")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    STRATA = os.path.abspath(a.strata)
    STRATAFS = os.path.abspath(a.stratafs)
    return harness.run(__name__, "commit tests", have_facilities(), a.pattern, a.v)


if __name__ == "__main__":
    sys.exit(main())
