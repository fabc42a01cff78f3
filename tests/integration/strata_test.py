#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration tests of `strata`: images built here with umoci (and skopeo), no network.

pull (oci:, oci-archive:, docker-archive:, index + --platform, zstd), re-pull, shared layers, images,
inspect, mount (the merged view against `umoci unpack` of the same image), umount, ps, corrupt blobs.

Run: python3 strata_test.py --strata PATH --stratafs PATH [-k PATTERN]. Exit 77 when the facilities are
missing (not root, no /dev/fuse, no umoci); 1 instead when STRATA_REQUIRE_MOUNT=1.
"""
import argparse
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest

import harness  # noqa: E402  (tests/integration/harness.py)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "differential"))
import treedump  # noqa: E402

STRATA = None
STRATAFS = None


def have_facilities():
    if os.geteuid() != 0:
        return "not root"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    for tool in ("umoci", "skopeo", "fusermount3"):
        if not shutil.which(tool):
            return "no " + tool
    return None


def run(*args, check=True, **kw):
    r = subprocess.run(list(args), capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def write(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def make_image(layout, tag, layers):
    """An image of `layers` (each a dict of relative path -> bytes | ("link", target) | ("dir",) |
    ("whiteout",)) in the OCI layout `layout`, built with umoci."""
    if not os.path.exists(os.path.join(layout, "index.json")):
        run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", "%s:%s" % (layout, tag))
    add_layers(layout, tag, layers)


def add_layers(layout, tag, layers):
    """Each layer: umoci unpack, change the rootfs, umoci repack (one new layer per repack)."""
    for layer in layers:
        bundle = tempfile.mkdtemp(dir=os.path.dirname(layout))
        os.rmdir(bundle)
        run("umoci", "unpack", "--image", "%s:%s" % (layout, tag), bundle)
        rootfs = os.path.join(bundle, "rootfs")
        for rel, what in layer.items():
            p = os.path.join(rootfs, rel)
            if os.path.lexists(p) and not (isinstance(what, tuple) and what[0] == "dir"):
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p)
                else:
                    os.unlink(p)
            if isinstance(what, bytes):
                write(p, what, 0o755 if rel.endswith(".sh") else 0o644)
            elif what[0] == "link":
                os.makedirs(os.path.dirname(p), exist_ok=True)
                os.symlink(what[1], p)
            elif what[0] == "hardlink":
                os.link(os.path.join(rootfs, what[1]), p)
            elif what[0] == "dir":
                os.makedirs(p, exist_ok=True)
                os.chmod(p, 0o750)
            elif what[0] == "chr":  # ("chr", major, minor)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                os.mknod(p, stat.S_IFCHR | 0o640, os.makedev(what[1], what[2]))
            elif what[0] == "owned":  # ("owned", data, uid, gid, xattrs)
                write(p, what[1], 0o640)
                os.chown(p, what[2], what[3])
                for k, v in what[4].items():
                    os.setxattr(p, k, v)
            # ("whiteout",): removed above; repack writes the whiteout
        run("umoci", "repack", "--image", "%s:%s" % (layout, tag), bundle)
        shutil.rmtree(bundle)


def make_multi_platform(layout):
    """An image tagged "multi" in `layout`: an OCI index naming one manifest twice, for linux/arm64/v8 and
    linux/amd64 (the same content: which one is picked shows only in the platform recorded)."""
    make_image(layout, "v1", [{"f": b"1"}])
    idx_path = os.path.join(layout, "index.json")
    idx = json.load(open(idx_path))
    desc = dict(idx["manifests"][0])
    desc.pop("annotations", None)
    desc["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    sub = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": [dict(desc, platform={"os": "linux", "architecture": "arm64", "variant": "v8"}),
                         dict(desc, platform={"os": "linux", "architecture": "amd64"})]}
    body = json.dumps(sub).encode()
    dig = hashlib.sha256(body).hexdigest()
    open(os.path.join(layout, "blobs", "sha256", dig), "wb").write(body)
    idx["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + dig,
                             "size": len(body), "annotations": {"org.opencontainers.image.ref.name": "multi"}})
    json.dump(idx, open(idx_path, "w"))

BASE = {"etc/os-release": b"NAME=strata-test\n", "bin/tool.sh": b"#!/bin/sh\necho hi\n",
        "usr/lib/big": os.urandom(300 * 1024), "usr/lib/link": ("link", "big"),
        "usr/lib/hard": ("hardlink", "usr/lib/big"), "var/empty": ("dir",),
        "dev/null": ("chr", 1, 3), "home/user/notes": ("owned", b"mine\n", 1000, 1000, {"user.tag": b"v"})}
TOP = {"etc/motd": b"welcome\n", "usr/lib/big": b"replaced\n", "opt/app/data": b"x" * 5000}
WHITE = {"etc/os-release": ("whiteout",)}


class StrataCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="strata-test-")
        self.root = os.path.join(self.tmp, "root")
        self.env = dict(os.environ, STRATA_ROOT=self.root, STRATA_STRATAFS=STRATAFS)
        self.mounts = []

    def tearDown(self):
        for m in self.mounts:
            if is_mounted(m):
                subprocess.run(["fusermount3", "-u", m], capture_output=True)
            if is_mounted(m):
                subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def strata(self, *args, check=True):
        return run(STRATA, *args, check=check, env=self.env)

    def layout(self, name="img"):
        return os.path.join(self.tmp, name)

    def blobs(self):
        d = os.path.join(self.root, "oci", "blobs", "sha256")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def layers(self):
        d = os.path.join(self.root, "layers")
        return sorted(x for x in os.listdir(d) if not x.startswith(".")) if os.path.isdir(d) else []

    def umoci_rootfs(self, ref):
        bundle = tempfile.mkdtemp(dir=self.tmp)
        os.rmdir(bundle)
        run("umoci", "unpack", "--image", ref, bundle)
        return os.path.join(bundle, "rootfs")

    def mount_and_compare(self, image, oci_ref, name):
        mp = self.strata("mount", "--name", name, image).stdout.strip()
        self.mounts.append(mp)
        self.assertTrue(is_mounted(mp), mp)
        want = treedump.dump_text(self.umoci_rootfs(oci_ref))
        got = treedump.dump_text(mp)
        self.assertEqual(want, got)
        return mp


class Pull(StrataCase):
    def test_pull_repull_images_inspect(self):
        lay = self.layout()
        make_image(lay, "v1", [BASE, TOP, WHITE])
        r = self.strata("pull", "oci:%s:v1" % lay)
        pulled = [l for l in r.stdout.splitlines() if ": pulled " in l]
        self.assertEqual(len(pulled), 3, r.stdout)
        self.assertEqual(len(self.layers()), 3)
        t0 = time.monotonic()
        r = self.strata("pull", "oci:%s:v1" % lay)
        elapsed = time.monotonic() - t0
        exists = [l for l in r.stdout.splitlines() if l.endswith(": already exists")]
        self.assertEqual(len(exists), 3, r.stdout)
        self.assertLess(elapsed, 1.0)
        # images: table and json
        table = self.strata("images").stdout.splitlines()
        self.assertTrue(table[0].startswith("REPOSITORY"), table)
        self.assertTrue(any(l.split()[:2] == ["localhost/img", "v1"] for l in table[1:]), table)
        js = json.loads(self.strata("images", "--format", "json").stdout)
        self.assertEqual([(i["Repository"], i["Tag"]) for i in js], [("localhost/img", "v1")])
        # inspect: diff_ids equal the config's, and Id is the config digest
        ins = json.loads(self.strata("inspect", "localhost/img:v1").stdout)[0]
        cfg_digest = json.loads(run("umoci", "stat", "--image", "%s:v1" % lay, "--json").stdout)
        self.assertEqual(ins["RootFS"]["Type"], "layers")
        self.assertEqual(len(ins["RootFS"]["Layers"]), 3)
        self.assertEqual(["sha256:" + x for x in self.layers()], sorted(ins["RootFS"]["Layers"]))
        self.assertEqual(len(ins["History"]), len(cfg_digest["history"]))
        self.assertEqual(ins["RepoTags"], ["localhost/img:v1"])
        self.assertTrue(ins["Id"].startswith("sha256:"))
        self.assertEqual(self.strata("inspect", ins["Id"][7:19]).stdout, self.strata("inspect", "img:v1").stdout)
        self.assertNotEqual(self.strata("inspect", "nosuch", check=False).returncode, 0)
        # skopeo and umoci read the store's layout
        store_oci = os.path.join(self.root, "oci")
        run("skopeo", "inspect", "oci:%s:localhost/img:v1" % store_oci)
        self.assertIn("localhost/img:v1", run("umoci", "ls", "--layout", store_oci).stdout.split())
        stat = json.loads(run("umoci", "stat", "--json", "--image", "%s:localhost/img:v1" % store_oci).stdout)
        self.assertTrue(stat.get("history"), stat)

    def test_shared_base_layer_stored_once(self):
        lay = self.layout()
        make_image(lay, "a", [BASE])
        run("umoci", "tag", "--image", "%s:a" % lay, "b")
        add_layers(lay, "a", [TOP])
        add_layers(lay, "b", [{"srv/b": b"b\n"}])
        self.strata("pull", "oci:%s:a" % lay)
        r = self.strata("pull", "oci:%s:b" % lay)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].endswith(": already exists"), r.stdout)
        self.assertIn(": pulled ", lines[1])
        self.assertEqual(len(self.layers()), 3)
        names = sorted(i["Repository"] + ":" + i["Tag"] for i in json.loads(self.strata("images", "--format", "json").stdout))
        self.assertEqual(names, ["localhost/img:a", "localhost/img:b"])

    def test_name_and_no_tag(self):
        lay = self.layout()
        make_image(lay, "only", [{"f": b"1"}])
        self.strata("pull", "--quiet", "--name", "example.com/x/y:z", "oci:%s" % lay)
        self.assertEqual(self.strata("inspect", "example.com/x/y:z").returncode, 0)
        make_image(lay, "second", [{"g": b"2"}])
        r = self.strata("pull", "oci:%s" % lay, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("oci:DIR:TAG", r.stderr)
        r = self.strata("pull", "oci:%s:nosuch" % lay, check=False)
        self.assertIn("nosuch", r.stderr)

    def test_corrupt_blob_fails_and_adds_nothing(self):
        lay = self.layout()
        make_image(lay, "v1", [BASE, TOP])
        manifest = json.loads(run("umoci", "stat", "--image", "%s:v1" % lay, "--json").stdout)  # noqa: F841
        idx = json.load(open(os.path.join(lay, "index.json")))
        mdig = idx["manifests"][0]["digest"].split(":")[1]
        m = json.load(open(os.path.join(lay, "blobs", "sha256", mdig)))
        layer = m["layers"][0]["digest"].split(":")[1]
        path = os.path.join(lay, "blobs", "sha256", layer)
        data = bytearray(open(path, "rb").read())
        data[len(data) // 2] ^= 0x01
        open(path, "wb").write(bytes(data))
        # --jobs 1: the corrupt first layer stops the pull before the second starts, so nothing at
        # all enters the store. In parallel the good layer may be committed (verified, complete: a
        # re-run keeps it) or stopped with its partial kept for a resume; the corrupt one never.
        for jobs in ("1", "3"):
            r = self.strata("pull", "--jobs", jobs, "oci:%s:v1" % lay, check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertTrue(r.stderr.startswith("strata: "), r.stderr)
            self.assertIn(layer, r.stderr)
            self.assertEqual(json.loads(self.strata("images", "--format", "json").stdout), [])
            ingest = os.path.join(self.root, "ingest")
            partials = [x for x in os.listdir(ingest) if x.endswith(".partial")]
            if jobs == "1":
                self.assertEqual(self.blobs(), [])
                self.assertEqual(self.layers(), [])
                self.assertEqual(partials, [])
            else:
                self.assertNotIn(layer, self.blobs())
                self.assertNotIn(layer + ".partial", partials)
                for b in self.blobs():
                    data = open(os.path.join(self.root, "oci", "blobs", "sha256", b), "rb").read()
                    self.assertEqual(hashlib.sha256(data).hexdigest(), b)
                self.assertLessEqual(len(self.layers()), 1)

    def test_diff_id_mismatch_named(self):
        lay = self.layout()
        make_image(lay, "v1", [BASE])
        blobs = os.path.join(lay, "blobs", "sha256")
        idx_path = os.path.join(lay, "index.json")
        idx = json.load(open(idx_path))
        m = json.load(open(os.path.join(blobs, idx["manifests"][0]["digest"][7:])))
        cfg = json.load(open(os.path.join(blobs, m["config"]["digest"][7:])))
        cfg["rootfs"]["diff_ids"][0] = "sha256:" + "0" * 64

        def put(obj):
            body = json.dumps(obj).encode()
            dig = hashlib.sha256(body).hexdigest()
            open(os.path.join(blobs, dig), "wb").write(body)
            return "sha256:" + dig, len(body)

        m["config"]["digest"], m["config"]["size"] = put(cfg)
        idx["manifests"][0]["digest"], idx["manifests"][0]["size"] = put(m)
        json.dump(idx, open(idx_path, "w"))
        r = self.strata("pull", "oci:%s:v1" % lay, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(m["layers"][0]["digest"], r.stderr)
        self.assertIn("diff_id", r.stderr)
        self.assertEqual(self.blobs(), [])
        self.assertEqual(self.layers(), [])
        self.assertEqual([x for x in os.listdir(os.path.join(self.root, "layers"))], [])

    def test_corrupt_config_named(self):
        lay = self.layout()
        make_image(lay, "v1", [{"f": b"1"}])
        idx = json.load(open(os.path.join(lay, "index.json")))
        mdig = idx["manifests"][0]["digest"].split(":")[1]
        m = json.load(open(os.path.join(lay, "blobs", "sha256", mdig)))
        cfg = m["config"]["digest"].split(":")[1]
        p = os.path.join(lay, "blobs", "sha256", cfg)
        data = open(p, "rb").read().replace(b'"os"', b'"Os"')
        open(p, "wb").write(data)
        r = self.strata("pull", "oci:%s:v1" % lay, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(cfg, r.stderr)
        self.assertEqual(self.blobs(), [])

    def test_bad_references(self):
        for ref in ("docker://Foo/Bar", "docker://alpine:", "oci:", "oci:dir:", "nosuch://x", "alpine@sha256:12"):
            r = self.strata("pull", ref, check=False)
            self.assertNotEqual(r.returncode, 0, ref)
            self.assertTrue(r.stderr.startswith("strata: "), r.stderr)
        # A registry that is not there (port 1 on loopback; the tests never leave 127.0.0.1).
        r = self.strata("pull", "docker://127.0.0.1:1/x/y:z", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("127.0.0.1:1", r.stderr)
        self.assertEqual(self.strata("pull", "--help").returncode, 0)
        self.assertNotEqual(self.strata("frobnicate", check=False).returncode, 0)
        self.assertIn("strata", self.strata("--version").stdout)

    def test_index_platform(self):
        lay = self.layout()
        make_multi_platform(lay)
        self.strata("pull", "oci:%s:multi" % lay)
        self.strata("pull", "--platform", "linux/arm64", "--name", "localhost/arm:1", "oci:%s:multi" % lay)
        r = self.strata("pull", "--platform", "linux/s390x", "oci:%s:multi" % lay, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("linux/s390x", r.stderr)
        self.assertIn("linux/amd64", r.stderr)

    def test_oci_archive_and_zstd(self):
        lay = self.layout()
        make_image(lay, "v1", [BASE, TOP])
        z = self.layout("zimg")
        run("skopeo", "copy", "--dest-compress-format", "zstd", "oci:%s:v1" % lay, "oci:%s:v1" % z)
        m = json.load(open(os.path.join(z, "blobs", "sha256",
                                        json.load(open(os.path.join(z, "index.json")))["manifests"][0]["digest"][7:])))
        self.assertTrue(all(l["mediaType"].endswith("+zstd") for l in m["layers"]), m)
        self.strata("pull", "oci:%s:v1" % z)
        tar = os.path.join(self.tmp, "arch.tar")
        run("tar", "-C", lay, "-cf", tar, ".")
        r = self.strata("pull", "oci-archive:%s:v1" % tar)
        # Same diff_ids as the zstd image: every layer is already there.
        self.assertEqual(len([l for l in r.stdout.splitlines() if l.endswith("already exists")]), 2, r.stdout)
        self.assertEqual(len(self.layers()), 2)
        self.assertEqual(self.strata("inspect", "localhost/arch:v1").returncode, 0)
        self.mount_and_compare("localhost/zimg:v1", "%s:v1" % lay, "z")
        self.assertEqual(os.listdir(os.path.join(self.root, "ingest")), [])

    def test_docker_archive(self):
        lay = self.layout()
        make_image(lay, "v1", [BASE, TOP, WHITE])
        tar = os.path.join(self.tmp, "docker.tar")
        run("skopeo", "copy", "oci:%s:v1" % lay, "docker-archive:%s:example/app:2.0" % tar)
        r = self.strata("pull", "docker-archive:%s" % tar)
        self.assertEqual(len([l for l in r.stdout.splitlines() if ": pulled " in l]), 3, r.stdout)
        ins = json.loads(self.strata("inspect", "example/app:2.0").stdout)[0]
        self.assertEqual(ins["RepoTags"], ["docker.io/example/app:2.0"])  # skopeo writes the normalised name
        self.assertEqual(len(ins["RootFS"]["Layers"]), 3)
        self.mount_and_compare("example/app:2.0", "%s:v1" % lay, "d")


class Mount(StrataCase):
    def test_mount_ps_umount(self):
        lay = self.layout()
        make_image(lay, "v1", [BASE, TOP, WHITE])
        self.strata("pull", "-q", "oci:%s:v1" % lay)
        mp = self.mount_and_compare("img:v1", "%s:v1" % lay, "web")
        state = json.load(open(os.path.join(self.root, "containers", "web", "state.json")))
        self.assertEqual(state["mountpoint"], mp)
        self.assertEqual(state["image"], "localhost/img:v1")
        self.assertEqual(len(state["layers"]), 3)
        self.assertGreater(state.get("pid", 0), 0)
        # topmost layer first
        ins = json.loads(self.strata("inspect", "img:v1").stdout)[0]
        self.assertIn(ins["RootFS"]["Layers"][-1][7:], state["layers"][0])
        write(os.path.join(mp, "new"), b"upper\n")
        ps = json.loads(self.strata("ps", "--format", "json").stdout)
        self.assertEqual([(c["Name"], c["Mounted"]) for c in ps], [("web", True)])
        self.assertIn("web", self.strata("ps").stdout)
        self.strata("umount", "web")
        self.assertFalse(is_mounted(mp))
        self.assertTrue(os.path.exists(os.path.join(self.root, "containers", "web", "upper", "new")))
        ps = json.loads(self.strata("ps", "--format", "json").stdout)
        self.assertEqual([(c["Name"], c["Mounted"]) for c in ps], [("web", False)])
        self.assertNotEqual(self.strata("umount", "web", check=False).returncode, 0)
        r = self.strata("mount", "--name", "web", "img:v1", check=False)
        self.assertIn("exists", r.stderr)

    def test_mount_generated_name_and_mountpoint(self):
        lay = self.layout()
        make_image(lay, "v1", [BASE])
        self.strata("pull", "-q", "oci:%s:v1" % lay)
        target = os.path.join(self.tmp, "mnt")
        mp = self.strata("mount", "img:v1", target).stdout.strip()
        self.mounts.append(mp)
        self.assertEqual(mp, os.path.realpath(target))
        self.assertTrue(os.path.exists(os.path.join(mp, "etc", "os-release")))
        ps = json.loads(self.strata("ps", "--format", "json").stdout)
        self.assertEqual(len(ps), 1)
        self.assertTrue(ps[0]["Name"].startswith("strata-"))
        self.strata("umount", ps[0]["Name"])
        self.assertFalse(is_mounted(mp))
        self.assertNotEqual(self.strata("mount", "nosuch", check=False).returncode, 0)


    def test_mount_uses_io_uring_when_the_kernel_offers_it(self):
        param = "/sys/module/fuse/parameters/enable_uring"
        if not os.path.exists(param):
            self.skipTest("the kernel has no FUSE over io_uring")
        lay = self.layout()
        make_image(lay, "v1", [BASE, TOP, WHITE])
        self.strata("pull", "-q", "oci:%s:v1" % lay)
        with open(param) as f:
            old = f.read().strip()
        try:
            for on in (True, False):
                with open(param, "w") as f:
                    f.write("Y" if on else "N")
                name = "ring" if on else "plain"
                mp = self.mount_and_compare("img:v1", "%s:v1" % lay, name)
                sock = os.path.join(self.root, "containers", name, "work", "strata-control.sock")
                st = harness.control_stats(sock)
                self.assertEqual(st["io_uring"], on, st)
                self.strata("umount", name)
                self.assertFalse(is_mounted(mp))
        finally:
            with open(param, "w") as f:
                f.write(old)


class RmiGc(StrataCase):
    """rmi removes names only; gc frees what no name and no container (mounted or not) uses."""

    def images(self):
        return sorted(i["Repository"] + ":" + i["Tag"] for i in json.loads(self.strata("images", "--format", "json").stdout))

    def image_ids(self, name):
        ins = json.loads(self.strata("inspect", name).stdout)[0]
        return ins["Id"], [d[7:] for d in ins["RootFS"]["Layers"]], ins["Manifest"]["Digest"][7:]

    def test_rmi_by_name_and_by_id(self):
        lay = self.layout()
        make_image(lay, "v1", [BASE])
        self.strata("pull", "-q", "oci:%s:v1" % lay)
        self.strata("pull", "-q", "--name", "example.com/other:2", "oci:%s:v1" % lay)
        image_id, _, _ = self.image_ids("img:v1")
        r = self.strata("rmi", "img:v1")
        self.assertEqual(r.stdout, "Untagged: localhost/img:v1\n")  # another name is left: not deleted
        self.assertEqual(self.images(), ["example.com/other:2"])
        self.strata("pull", "-q", "oci:%s:v1" % lay)
        r = self.strata("rmi", image_id[7:19])
        self.assertEqual(sorted(r.stdout.splitlines()),
                         sorted(["Untagged: localhost/img:v1", "Untagged: example.com/other:2", "Deleted: " + image_id]))
        self.assertEqual(self.images(), [])
        before = self.blobs()
        self.assertTrue(before)  # rmi leaves the blobs to gc
        r = self.strata("rmi", "img:v1", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("img:v1", r.stderr)
        self.assertNotEqual(self.strata("rmi", check=False).returncode, 0)

    def test_gc_dry_run_then_gc(self):
        lay = self.layout()
        make_image(lay, "a", [BASE])
        make_image(lay, "b", [{"only-b": b"b\n"}])
        self.strata("pull", "-q", "oci:%s:a" % lay)
        self.strata("pull", "-q", "oci:%s:b" % lay)
        _, a_layers, _ = self.image_ids("img:a")
        _, b_layers, b_manifest = self.image_ids("img:b")
        r = self.strata("gc")
        self.assertEqual(r.stdout.splitlines(), ["Total reclaimed space: 0B"])
        self.strata("rmi", "img:b")
        blobs, layers = self.blobs(), self.layers()
        r = self.strata("gc", "--dry-run")
        self.assertEqual((self.blobs(), self.layers()), (blobs, layers))  # nothing deleted
        self.assertIn("Would delete layer sha256:" + b_layers[0], r.stdout)
        self.assertIn("Would delete blob sha256:" + b_manifest, r.stdout)
        self.assertIn("Total reclaimable space: ", r.stdout)
        r = self.strata("gc")
        self.assertIn("Deleted layer sha256:" + b_layers[0], r.stdout)
        self.assertIn("Deleted blob sha256:" + b_manifest, r.stdout)
        self.assertRegex(r.stdout.splitlines()[-1], r"^Total reclaimed space: [0-9.]+[kM]?B$")
        self.assertEqual(self.layers(), sorted(a_layers))
        self.assertEqual(len(self.blobs()), 3)  # a's manifest, config, layer blob
        self.mount_and_compare("img:a", "%s:a" % lay, "after-gc")  # a is intact

    def test_container_keeps_its_image(self):
        lay = self.layout()
        make_image(lay, "v1", [BASE, TOP])
        self.strata("pull", "-q", "oci:%s:v1" % lay)
        image_id, layers, manifest = self.image_ids("img:v1")
        mp = self.mount_and_compare("img:v1", "%s:v1" % lay, "web")
        r = self.strata("rmi", "img:v1", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("web", r.stderr)
        self.assertIn("--force", r.stderr)
        self.assertEqual(self.images(), ["localhost/img:v1"])
        r = self.strata("rmi", "--force", "img:v1")
        self.assertIn("Untagged: localhost/img:v1", r.stdout)
        self.assertEqual(self.images(), [])
        r = self.strata("gc")
        # The manifest goes; the layers, their blobs and the config stay for the container.
        self.assertIn("Deleted blob sha256:" + manifest, r.stdout)
        self.assertNotIn("Deleted layer", r.stdout)
        self.assertEqual(self.layers(), sorted(layers))
        self.assertIn(image_id[7:], self.blobs())
        self.assertEqual(len(self.blobs()), 3)  # config + 2 layer blobs
        self.assertEqual(treedump.dump_text(mp), treedump.dump_text(self.umoci_rootfs("%s:v1" % lay)))
        # Unmounted, the container still holds them.
        self.strata("umount", "web")
        self.assertNotIn("Deleted", self.strata("gc").stdout)
        self.assertEqual(self.layers(), sorted(layers))
        # Gone (removed by hand: there is no rm yet), everything is freed.
        shutil.rmtree(os.path.join(self.root, "containers", "web"))
        r = self.strata("gc")
        self.assertEqual(len([l for l in r.stdout.splitlines() if l.startswith("Deleted layer")]), 2, r.stdout)
        self.assertEqual((self.blobs(), self.layers()), ([], []))

    def test_gc_refuses_a_corrupt_container_state(self):
        lay = self.layout()
        make_image(lay, "v1", [BASE])
        self.strata("pull", "-q", "oci:%s:v1" % lay)
        self.strata("rmi", "img:v1")
        os.makedirs(os.path.join(self.root, "containers", "bad"))
        open(os.path.join(self.root, "containers", "bad", "state.json"), "w").write("{not json")
        blobs = self.blobs()
        r = self.strata("gc", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("bad", r.stderr)
        self.assertEqual(self.blobs(), blobs)


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
    return harness.run(__name__, "strata tests", have_facilities(), a.pattern, a.v)


if __name__ == "__main__":
    sys.exit(main())
