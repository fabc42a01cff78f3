#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration test: copy-ups are in the upper at once, made durable in the background, repaired after a crash.

A copy-up of a regular file is renamed into the upper before its data is on disk and fsynced by a daemon
thread; until then WORKDIR/strata-unsynced holds a record of it (src/copyup/unsynced.h). These tests kill
the daemon inside that window and mount again: after a daemon crash the data is in the page cache and is
kept; after a machine crash (simulated: the record names another boot) the lower layer's content comes back.

Run: python3 durability_test.py --stratafs PATH. Exit 77 when the facilities are missing (see mount_test.py);
the CI script refuses a skip.
"""
import os
import signal
import sys
import time

import harness  # noqa: E402  (tests/integration/harness.py)
import mount_test  # noqa: E402  (MountCase, the facility check)
from mount_test import MountCase

SIZE = 256 << 20  # its fsync outlasts the test's next steps (about 0.1 s on these disks)
RECORDS = "strata-unsynced"


class Durability(MountCase):
    def setUp(self):
        super().setUp()
        with open(self.p("l1", "big"), "wb") as f:
            f.write(b"L" * SIZE)

    def records(self):
        return os.listdir(self.p("w", RECORDS))

    def write_head(self, m, data, fsync=False):
        fd = os.open(os.path.join(m, "big"), os.O_WRONLY)
        try:
            os.pwrite(fd, data, 0)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def kill_daemon(self, m):
        """SIGKILL the daemon right after a copy-up; returns the records it left (retried: it must leave one)."""
        pid = mount_test.daemon_pid(m)
        self.assertIsNotNone(pid)
        os.kill(pid, signal.SIGKILL)
        for _ in range(200):
            if not mount_test.running(pid):
                break
            time.sleep(0.01)
        mount_test.umount(m)
        self.mounts.remove(m)
        return self.records()

    def test_copy_up_is_in_the_upper_at_once(self):
        m = self.mount()
        self.write_head(m, b"NEW!")
        # The upper is the view right away (podman reads it directly), not after the background fsync.
        st = os.stat(self.p("u", "big"))
        self.assertEqual(st.st_size, SIZE)
        with open(self.p("u", "big"), "rb") as f:
            self.assertEqual(f.read(4), b"NEW!")
        stats = harness.control_stats(self.p("w", "strata-control.sock"))
        self.assertEqual(stats["copy_ups_deferred"], 1)

    def test_fsync_waits_for_the_copy_up(self):
        m = self.mount()
        self.write_head(m, b"NEW!", fsync=True)
        # fsync(2) on the file made the copy-up durable first, and dropped its record.
        self.assertEqual(self.records(), [])
        self.assertGreaterEqual(harness.control_stats(self.p("w", "strata-control.sock"))["copy_up_waits"], 1)

    def test_rename_waits_for_the_copy_up(self):
        m = self.mount()
        self.write_head(m, b"NEW!")
        os.rename(os.path.join(m, "big"), os.path.join(m, "moved"))
        # A record names the path it was made under: the rename waited for it to go.
        self.assertEqual(self.records(), [])
        with open(self.p("u", "moved"), "rb") as f:
            self.assertEqual(f.read(4), b"NEW!")

    def test_daemon_crash_keeps_the_writes(self):
        m = self.mount()
        self.write_head(m, b"NEW!")
        left = self.kill_daemon(m)
        self.assertEqual(len(left), 1, "no copy-up record left by a daemon killed inside the window")
        m = self.mount()
        # The same boot: the page cache held the data; the mount fsynced it and dropped the record.
        self.assertEqual(self.records(), [])
        with open(os.path.join(m, "big"), "rb") as f:
            self.assertEqual(f.read(4), b"NEW!")
        self.assertEqual(os.stat(os.path.join(m, "big")).st_size, SIZE)

    def test_machine_crash_restores_the_lower_content(self):
        m = self.mount()
        self.write_head(m, b"NEW!")
        left = self.kill_daemon(m)
        self.assertEqual(len(left), 1, "no copy-up record left by a daemon killed inside the window")
        # What the next boot finds: the record names a boot that is over.
        rec = self.p("w", RECORDS, left[0])
        target = os.readlink(rec)
        os.unlink(rec)
        os.symlink("00000000-0000-0000-0000-000000000000" + target[target.index("/"):], rec)
        m = self.mount()
        self.assertEqual(self.records(), [])
        # The copy-up is as it made the file (the lower's content); the write, never fsynced, is gone.
        with open(os.path.join(m, "big"), "rb") as f:
            self.assertEqual(f.read(4), b"LLLL")
        with open(self.p("u", "big"), "rb") as f:
            self.assertEqual(f.read(4), b"LLLL")


def main():
    _, run = mount_test.script_main(__name__, "durability tests")
    return run()


if __name__ == "__main__":
    sys.exit(main())
