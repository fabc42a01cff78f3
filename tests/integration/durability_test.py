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
import subprocess
import sys
import time

import harness  # noqa: E402  (tests/integration/harness.py)
import mount_test  # noqa: E402  (MountCase, the facility check)
from mount_test import MountCase

SIZE = 256 << 20  # its fsync outlasts the test's next steps (about 0.1 s on these disks)
RECORDS = "strata-unsynced"


class Durability(MountCase):
    """The layers on a fresh ext4 of their own: with a journal (metadata reaches the disk in order, which the
    crash records rely on), or without one (JOURNAL = False: copy-ups are then fsynced before their rename)."""

    JOURNAL = True

    def setUp(self):
        super().setUp()
        img, fs = self.p("fs.img"), self.p("fs")
        os.mkdir(fs)
        with open(img, "wb") as f:
            f.truncate(1 << 30)
        mkfs = ["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0"]
        if not self.JOURNAL:
            mkfs += ["-O", "^has_journal"]
        subprocess.run(mkfs + [img], check=True, capture_output=True)
        subprocess.run(["mount", "-o", "loop", img, fs], check=True, capture_output=True)
        self.fs = fs
        self.p = lambda *a: os.path.join(fs, *a)
        for d in ("l0", "l1", "l2", "u", "w", "m"):
            os.mkdir(self.p(d))
        with open(self.p("l1", "big"), "wb") as f:
            f.write(b"L" * SIZE)

    def tearDown(self):
        pids = [mount_test.daemon_pid(m) for m in self.mounts]
        for m in reversed(self.mounts):
            mount_test.umount(m)
        self.mounts = []
        for pid in pids:
            self.wait_gone(pid)  # its fds keep the image's filesystem busy
        for _ in range(50):
            if subprocess.run(["umount", self.fs], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "-l", self.fs], capture_output=True)
        super().tearDown()

    @staticmethod
    def alive(pid):
        """Any thread of pid still running: a killed daemon's thread in an fsync (uninterruptible) outlives the
        others, and holds the process's fds (its control socket among them) until the fsync returns."""
        try:
            tasks = os.listdir("/proc/%d/task" % pid)
        except FileNotFoundError:
            return False
        for t in tasks:
            try:
                with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                        return True
            except (FileNotFoundError, ProcessLookupError):
                pass
        return False

    def wait_gone(self, pid, timeout=60):
        deadline = time.monotonic() + timeout
        while pid and self.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        return not (pid and self.alive(pid))

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
        self.assertTrue(self.wait_gone(pid), "the killed daemon does not go away")
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


class NoJournal(Durability):
    JOURNAL = False

    def test_copy_up_is_fsynced_before_its_rename(self):
        m = self.mount()
        self.write_head(m, b"NEW!")
        # No crash records here (nothing keeps them ahead of the rename on disk): durable before it returns.
        stats = harness.control_stats(self.p("w", "strata-control.sock"))
        self.assertEqual(stats["copy_ups"], 1)
        self.assertEqual(stats["copy_ups_deferred"], 0)
        self.assertEqual(self.records(), [])
        with open(self.p("u", "big"), "rb") as f:
            self.assertEqual(f.read(4), b"NEW!")


# The window tests need the journal; the no-journal class runs only its own test.
for _name in [n for n in dir(Durability) if n.startswith("test_")]:
    setattr(NoJournal, _name, None)


def main():
    _, run = mount_test.script_main(__name__, "durability tests")
    return run()


if __name__ == "__main__":
    sys.exit(main())
