#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration tests of listing prefetch (src/fuse/prefetch.h) on real stratafs mounts.

Run: python3 prefetch_test.py --stratafs PATH [-k PATTERN]. Exit 77 when the facilities are
missing (see mount_test.py); the CI script refuses a skip.
"""
import os
import subprocess
import sys
import time
import harness  # noqa: E402  (tests/integration/harness.py)
import mount_test  # noqa: E402  (MountCase, the facility check)
from mount_test import MountCase, mkfile


def stats(case):
    return harness.control_stats(case.p("w", "strata-control.sock"))


def settled(case, key, at_least, timeout=10):
    """Stats once `key` reached `at_least` (the prefetch thread works behind the replies), or at the timeout."""
    deadline = time.monotonic() + timeout
    s = stats(case)
    while s[key] < at_least and time.monotonic() < deadline:
        time.sleep(0.02)
        s = stats(case)
    return s


def prefetch_thread_cpus(pid):
    """The CPUs the daemon's prefetch thread may run on."""
    sets = cpus_of(threads_named(pid, "stratafs-pref"))
    if not sets:
        raise AssertionError("no stratafs-pref thread in %d" % pid)
    return sets[0]


def threads_named(pid, name):
    """The thread ids of `pid` whose name is `name` (threads that exit meanwhile are left out)."""
    out = []
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                if f.read().strip() == name:
                    out.append(int(t))
        except FileNotFoundError:
            pass
    return out


def cpus_of(tids):
    out = []
    for t in tids:
        try:
            out.append(os.sched_getaffinity(t))
        except ProcessLookupError:
            pass  # exited meanwhile
    return out


def worker_cpus(pid):
    """The CPU sets of the daemon's FUSE workers."""
    return cpus_of(threads_named(pid, "stratafs-fuse"))


class Prefetch(MountCase):
    def tree(self, top=8, sub=4, files=3):
        """top x sub directories spread over l0 and l1 (merged), files in each; returns the relative paths."""
        paths = []
        for i in range(top):
            for j in range(sub):
                for k in range(files):
                    rel = os.path.join("d%02d" % i, "s%d" % j, "f%d" % k)
                    mkfile(self.p("l%d" % ((i + j + k) % 2), rel), b"%d" % k)
                    paths.append(rel)
        return sorted(paths)

    def walk(self, m):
        out = []
        for root, _, files in os.walk(m):
            out += [os.path.relpath(os.path.join(root, f), m) for f in files]
        return sorted(out)

    def test_a_walk_uses_the_prefetched_listings(self):
        expect = self.tree()
        m = self.mount()
        # A walk that pauses before each directory, as one doing work per directory does: the prefetch thread
        # is then ahead of it even in a sanitizer build, where it is several times slower.
        found = []
        for root, dirs, files in os.walk(m):
            dirs.sort()
            found += [os.path.relpath(os.path.join(root, f), m) for f in files]
            time.sleep(0.02)
        self.assertEqual(sorted(found), expect)
        s = settled(self, "listings_prefetch_used", 1)
        # 8 + 32 subdirectories are named by listings read from their start: each is taken ahead of the walk
        # and then read by it.
        self.assertGreater(s["listings_prefetched"], 30, s)
        self.assertGreater(s["listings_prefetch_used"], 30, s)
        self.assertLessEqual(s["listings_prefetch_used"], s["listings_prefetched"], s)

    def test_changes_after_a_prefetch_are_listed(self):
        # A prefetched listing is taken before these changes: the next reader must see them anyway.
        self.tree(top=4, sub=3, files=2)
        m = self.mount()
        self.assertEqual(sorted(os.listdir(m)), ["d00", "d01", "d02", "d03"])
        settled(self, "listings_prefetched", 4)
        mkfile(os.path.join(m, "d00", "new"), b"n")
        os.unlink(os.path.join(m, "d01", "s0", "f0"))  # a lower file: a whiteout
        subprocess.run(["rm", "-rf", os.path.join(m, "d02", "s1")], check=True)
        os.rename(os.path.join(m, "d03", "s0", "f1"), os.path.join(m, "d03", "moved"))
        self.assertEqual(sorted(os.listdir(os.path.join(m, "d00"))), ["new", "s0", "s1", "s2"])
        self.assertEqual(sorted(os.listdir(os.path.join(m, "d01", "s0"))), ["f1"])
        self.assertEqual(sorted(os.listdir(os.path.join(m, "d02"))), ["s0", "s2"])
        self.assertEqual(sorted(os.listdir(os.path.join(m, "d03"))), ["moved", "s0", "s1", "s2"])
        self.assertEqual(sorted(os.listdir(os.path.join(m, "d03", "s0"))), ["f0"])
        # The same view as kernel overlayfs over the same layers and changes.
        k = self.kmount()
        mkfile(os.path.join(k, "d00", "new"), b"n")
        os.unlink(os.path.join(k, "d01", "s0", "f0"))
        subprocess.run(["rm", "-rf", os.path.join(k, "d02", "s1")], check=True)
        os.rename(os.path.join(k, "d03", "s0", "f1"), os.path.join(k, "d03", "moved"))
        self.assertEqual(self.walk(m), self.walk(k))

    def test_listing_without_entering_is_bounded(self):
        # 40 directories of 40 subdirectories each, listed but never entered: without the credit rule the
        # daemon would take all 1,600 subdirectory listings; with it, at most its starting credit (256) plus
        # one per listing read from its start (41, the root's too).
        for i in range(40):
            for j in range(40):
                os.makedirs(self.p("l1", "p%02d" % i, "c%02d" % j))
        m = self.mount()
        for i in range(40):
            self.assertEqual(len(os.listdir(os.path.join(m, "p%02d" % i))), 40)
        time.sleep(0.5)  # let the prefetch thread run dry
        s = stats(self)
        self.assertGreater(s["listings_prefetched"], 0, s)
        self.assertLessEqual(s["listings_prefetched"], 256 + 41, s)
        self.assertEqual(s["listings_prefetch_used"], 0, s)
        # The daemon still lists them all correctly.
        self.assertEqual(sum(len(os.listdir(os.path.join(m, "p%02d" % i, "c00"))) for i in range(40)), 0)

    def test_the_prefetch_thread_keeps_off_the_callers_cpu(self):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            self.skipTest("one CPU: the thread has nowhere else to go")
        expect = self.tree(top=20, sub=4, files=1)
        m = self.mount()
        # Two walks over different halves of the tree, pinned to different CPUs: the thread follows. Each
        # walker stays alive after its walk: the thread, working behind it, may look it up only then.
        walker = ("import os, sys, time\n"
                  "n = sum(len(f) for d in sys.argv[1:] for _, _, f in os.walk(d))\n"
                  "print(n, flush=True)\n"
                  "time.sleep(60)\n")
        for cpu, half in ((cpus[0], "d0"), (cpus[-1], "d1")):
            # Named from the layers: a listing of the mount by this process would make it a caller too.
            dirs = [os.path.join(m, "d%02d" % i) for i in range(20) if ("d%02d" % i).startswith(half)]
            w = subprocess.Popen(["taskset", "-c", str(cpu), sys.executable, "-c", walker, *dirs],
                                 stdout=subprocess.PIPE, text=True)
            try:
                self.assertEqual(int(w.stdout.readline()), len([p for p in expect if p.startswith(half)]))
                pid = mount_test.daemon_pid(m)
                deadline = time.monotonic() + 10
                allowed = prefetch_thread_cpus(pid)
                while cpu in allowed and time.monotonic() < deadline:
                    time.sleep(0.02)
                    allowed = prefetch_thread_cpus(pid)
                self.assertNotIn(cpu, allowed)
                self.assertTrue(allowed)
            finally:
                w.kill()
                w.wait()

    def test_workers_serving_a_walk_run_on_the_walkers_cpu(self):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            self.skipTest("one CPU: nowhere else to go")
        self.tree(top=10, sub=4, files=1)
        m = self.mount()
        subprocess.run(["taskset", "-c", str(cpus[-1]), "find", m, "-type", "f"], capture_output=True, check=True)
        placed = worker_cpus(mount_test.daemon_pid(m))
        self.assertIn({cpus[-1]}, placed, placed)
        # With prefetch=0 the scheduler places the workers.
        for d in ("u2", "w2", "m2"):
            os.mkdir(self.p(d))
        m2 = self.mount(opts="prefetch=0", upper="u2", work="w2", mnt="m2")
        subprocess.run(["taskset", "-c", str(cpus[-1]), "find", m2, "-type", "f"], capture_output=True, check=True)
        self.assertNotIn({cpus[-1]}, worker_cpus(mount_test.daemon_pid(m2)))

    def test_prefetch_off(self):
        expect = self.tree(top=4, sub=2, files=1)
        m = self.mount(opts="prefetch=0")
        self.assertEqual(self.walk(m), expect)
        s = stats(self)
        self.assertEqual(s["listings_prefetched"], 0, s)
        self.assertEqual(s["listings_prefetch_used"], 0, s)

    def test_rmdir_of_a_prefetched_directory_and_unmount(self):
        # The prefetch thread holds references to directories it took: removing them and unmounting with
        # those references held must work (nodes outlive their names, the thread is joined at the end).
        for j in range(20):
            os.makedirs(self.p("l0", "top", "s%02d" % j, "x"))
        m = self.mount()
        self.assertEqual(len(os.listdir(os.path.join(m, "top"))), 20)
        settled(self, "listings_prefetched", 20)
        subprocess.run(["rm", "-rf", os.path.join(m, "top")], check=True)
        self.assertFalse(os.path.exists(os.path.join(m, "top")))
        pid = mount_test.daemon_pid(m)
        self.unmount(m)
        deadline = time.monotonic() + 10
        while pid and mount_test.running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(pid and mount_test.running(pid), "the daemon did not exit after the unmount")


def main():
    _, run = mount_test.script_main(__name__, "prefetch tests")
    return run()


if __name__ == "__main__":
    sys.exit(main())
