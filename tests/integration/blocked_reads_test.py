#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration test: reads that wait for a slow lower layer never hold up the rest of the mount.

The bottom lower layer is tests/helpers/blockfs, whose reads wait until a release file exists. Readers through
stratafs then hold its workers in READ for as long as the test wants; other requests must still be answered
(src/fuse/loop.cc: a READ defers its stand-in, and the stand-in must come all the same).

Run: python3 blocked_reads_test.py --stratafs PATH --blockfs PATH. Exit 77 when the facilities are missing
(see mount_test.py); the CI script refuses a skip.
"""
import os
import subprocess
import sys
import threading
import time

import harness  # noqa: E402  (tests/integration/harness.py)
import mount_test  # noqa: E402  (MountCase, the facility check)
from mount_test import MountCase, mkfile

BLOCKFS = None


class BlockedReads(MountCase):
    def setUp(self):
        super().setUp()
        self.release = self.p("release")
        os.mkdir(self.p("b"))
        self.blockfs = subprocess.Popen([BLOCKFS, self.p("b"), self.release], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not mount_test.is_mounted(self.p("b")) and time.monotonic() < deadline:
            if self.blockfs.poll() is not None:
                self.fail("blockfs exited: %s" % self.blockfs.stderr.read().decode(errors="replace"))
            time.sleep(0.02)
        self.assertTrue(mount_test.is_mounted(self.p("b")))
        self.readers = []

    def tearDown(self):
        with open(self.release, "w"):
            pass  # nothing may stay blocked
        for t in self.readers:
            t.join(timeout=30)
        for m in reversed(self.mounts):  # stratafs first: it has blockfs files open
            mount_test.umount(m)
        mount_test.umount(self.p("b"))
        if self.blockfs.poll() is None:
            self.blockfs.terminate()
            try:
                self.blockfs.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.blockfs.kill()
                self.blockfs.wait()
        if mount_test.is_mounted(self.p("b")):  # its daemon is gone: the mount is dead, detach it
            subprocess.run(["umount", "-l", self.p("b")], capture_output=True)
        self.mounts = []
        super().tearDown()

    def run_ok(self, args):
        r = subprocess.run(args, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, "%s: %s" % (args, r.stderr))
        return r.stdout

    def test_requests_go_on_while_workers_wait_in_reads(self):
        mkfile(self.p("l0", "dir", "other"), b"other")
        m = self.mount(lowers=("l0", "b"))
        # One open file, then reads only: every worker waiting on the device takes a READ and stays in it, so
        # only the stand-in a READ defers can answer what comes next.
        fd = os.open(os.path.join(m, "f"), os.O_RDONLY)
        results = []
        n = max(4, 2 * (os.cpu_count() or 1))
        for i in range(n):
            t = threading.Thread(target=lambda off: results.append(len(os.pread(fd, 4096, off))),
                                 args=(i * ((1 << 20) // n) // 4096 * 4096,), daemon=True)
            t.start()
            self.readers.append(t)
        time.sleep(0.5)
        self.assertEqual(results, [], "a read returned before the release")
        # Lookups, reads of other files, listings and changes are answered meanwhile.
        self.assertEqual(self.run_ok(["cat", os.path.join(m, "dir", "other")]), "other")
        self.assertEqual(sorted(self.run_ok(["ls", m]).split()), ["dir", "f"])
        self.run_ok(["touch", os.path.join(m, "dir", "new")])
        self.run_ok(["stat", os.path.join(m, "dir", "new")])
        self.assertEqual(results, [], "the readers were released early")
        with open(self.release, "w"):
            pass
        for t in self.readers:
            t.join(timeout=30)
        os.close(fd)
        self.assertEqual(results, [4096] * n)


def main():
    global BLOCKFS
    paths, run = mount_test.script_main(__name__, "blocked-read tests", ["--blockfs"])
    BLOCKFS = paths["--blockfs"]
    return run()


if __name__ == "__main__":
    sys.exit(main())
