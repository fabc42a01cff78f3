#!/usr/bin/env python3
"""Differential test runner: the same scenario on kernel overlayfs and on a FUSE overlay daemon.

    python3 difftest.py --fuse-bin PATH [--fuse-name NAME] [--scenario GLOB] [--random-seeds N]
                        [--random-ops M] [--seed S] [--keep] [-v]

For each scenario: build its lower layers once (never modified: dumped before and after), then for
each side (kernel overlayfs, then the FUSE binary) take a fresh upper/work, mount, run the
operations in a child process whose cwd is the mountpoint (opexec.py), dump the merged view,
unmount, dump the upper.  Then compare call results, merged dumps and upper dumps; print unified
diffs on mismatch.  `--fuse-bin kernel` runs kernel overlayfs on both sides (determinism self-check).

Exit status: 0 all passed, 1 any failure, 77 skipped (not root, no /dev/fuse, no overlay), 2 usage.
"""
import argparse
import difflib
import fnmatch
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import layers  # noqa: E402
import mounts  # noqa: E402
import randomops  # noqa: E402
import scenarios  # noqa: E402
import treedump  # noqa: E402
import userns  # noqa: E402

OPEXEC = os.path.join(HERE, "opexec.py")
REMOUNT = ("remount",)
MODE_ARG = {"chmod": 2, "fchmod": 2, "mkdir": 2, "mknod": 3, "open": 4, "create": 3,
            "write_file": 4}


def fmt_arg(a, is_mode=False):
    if isinstance(a, bytes) and len(a) > 40:
        return "<%d bytes>" % len(a)
    if isinstance(a, str) and len(a) > 60:
        return repr(a[:20] + "...") + "<%d chars>" % len(a)
    if is_mode and isinstance(a, int):
        return "0o%o" % a
    return repr(a)


def fmt_call(op, result):
    mi = MODE_ARG.get(op[0])
    args = ", ".join(fmt_arg(a, i == mi) for i, a in enumerate(op))
    return "(%s) -> %s" % (args, result)


def clip(line, n=600):
    return line if len(line) <= n else line[:n] + "...(%d chars)" % len(line)


# In a user namespace the kernel has no file handles ("upper fs does not support file handles, falling back to
# index=off"): it cannot keep hard links across copy-up (index) nor report a copied-up file's origin inode number,
# so two names of one inode may show different st_ino. stratafs keeps them one inode there too, which the kernel
# without a user namespace agrees with; these scenarios test exactly that, so --userns leaves them out.
USERNS_KERNEL_LIMITED = {"copyup-on-link", "hardlink-create"}


def userns_comparable(sc):
    return "index=on" not in sc.kernel_opts and sc.name not in USERNS_KERNEL_LIMITED


def skip_reason():
    if os.geteuid() != 0:
        return "not root"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"

    def has_overlay():
        with open("/proc/filesystems") as f:
            return any(line.split()[-1] == "overlay" for line in f if line.strip())
    if not has_overlay():
        subprocess.run(["modprobe", "overlay"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        if not has_overlay():
            return "overlay is not in /proc/filesystems"
    return None


class Side:
    """What one implementation produced for one scenario."""

    def __init__(self, label):
        self.label = label
        self.calls = []
        self.merged = []
        self.upper = []
        self.error = None


class Runner:
    def __init__(self, args):
        self.a = args
        self.now_ns = time.time_ns() - 10_000_000_000
        self.kernel2 = args.fuse_bin == "kernel"
        self.fuse_name = args.fuse_name or ("kernel-selfcheck" if self.kernel2
                                            else os.path.basename(args.fuse_bin))
        self.ops_run = 0
        self.uring = False  # -o io_uring: the first mount checks the rings are in use
        self.uring_checked = False

    def log(self, msg):
        print(msg, flush=True)

    def dump(self, root, upper=False):
        return treedump.dump(root, upper=upper, mtime=not self.a.no_mtime,
                             mtime_precision=self.a.mtime_precision, now_ns=self.now_ns,
                             dir_mtime=self.a.dir_mtime,
                             ignore_xattrs=self.a.ignore_upper_xattr if upper else ())

    def run_child(self, mnt, ops, state):
        """Run ops in a child with cwd=mnt; `state` (saved inode numbers) carries across remounts."""
        req = pickle.dumps({"ops": ops, "now_ns": self.now_ns, "inos": state})
        try:
            r = subprocess.run([sys.executable, OPEXEC], cwd=mnt, input=req,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=self.a.op_timeout)
        except subprocess.TimeoutExpired:
            return None, "operations timed out after %d s" % self.a.op_timeout
        if r.returncode != 0:
            return None, "executor failed (%d): %s" % (r.returncode,
                                                        r.stderr.decode(errors="replace")[-2000:])
        out = pickle.loads(r.stdout)
        state.update(out["inos"])
        return out["results"], None

    def run_side(self, sc, label, binary, base, lowers):
        if not self.a.userns:
            return self.run_side_here(sc, label, binary, base, lowers)

        def in_ns():
            before = self.ops_run
            s = self.run_side_here(sc, label, binary, base, lowers)
            return s, self.ops_run - before
        side, ops = userns.call(in_ns)
        self.ops_run += ops
        return side

    def run_side_here(self, sc, label, binary, base, lowers):
        side = Side(label)
        d = os.path.join(base, label)
        upper, work, mnt = (os.path.join(d, x) for x in ("upper", "work", "mnt"))
        for p in (upper, work, mnt):
            os.makedirs(p, mode=0o755)
        layers.build(upper, sc.upper, base_ns=layers.T_UPPER_NS)
        kopts = sc.kernel_opts if binary is None else ""
        if binary is None and self.a.userns:
            kopts = ",".join(o for o in (kopts, "userxattr") if o)
        m = mounts.Mount(binary, lowers, upper, work, mnt, kernel_opts=kopts,
                         fuse_opts=self.a.fuse_opts, log=self.log)
        try:
            m.mount()
            if binary is not None and self.uring and not self.uring_checked:
                self.check_uring(work)
            segments, cur, state = [], [], {}
            for op in sc.ops:
                if tuple(op) == REMOUNT:
                    segments.append(cur)
                    segments.append(REMOUNT)
                    cur = []
                else:
                    cur.append(op)
            segments.append(cur)
            for seg in segments:
                if seg is REMOUNT:
                    m.umount()
                    m.mount()
                    side.calls.append(fmt_call(REMOUNT, "OK"))
                    continue
                if not seg:
                    continue
                res, err = self.run_child(mnt, seg, state)
                if err:
                    side.error = err
                    return side
                if label == "kernel":
                    self.ops_run += len(seg)
                side.calls.extend(fmt_call(op, r) for op, r in zip(seg, res))
            if sc.compare_merged:
                side.merged = self.dump(mnt)
        except mounts.MountError as e:
            side.error = str(e)
        finally:
            if not m.umount():
                side.error = side.error or "unmount of %s needed umount -l" % mnt
        if sc.compare_upper:
            side.upper = self.dump(upper, upper=True)
        return side

    def check_uring(self, work):
        """With -o io_uring the suite must really run over the rings: ask the daemon once."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        try:
            s.connect(os.path.join(work, "strata-control.sock"))
            s.sendall(b"stats\n")
            st = json.loads(s.makefile("rb").readline())
        finally:
            s.close()
        if not st.get("io_uring"):
            raise mounts.MountError("-o io_uring asked for, but the daemon serves /dev/fuse: %s" % st)
        self.uring_checked = True

    def diff(self, what, a, b, la, lb):
        lines = list(difflib.unified_diff(a, b, "%s (%s)" % (what, la), "%s (%s)" % (what, lb),
                                          lineterm="", n=2))
        limit = self.a.max_diff_lines
        lines = [clip(x) for x in lines]
        if len(lines) > limit:
            lines = lines[:limit] + ["... (%d more diff lines)" % (len(lines) - limit)]
        return lines

    def run_scenario(self, sc):
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in sc.name)[:40]
        base = tempfile.mkdtemp(prefix="difftest-%s-" % safe, dir=self.a.tmpdir)
        problems = []
        try:
            lower_dirs = []
            for i, entries in enumerate(sc.layers):
                ld = os.path.join(base, "lower%d" % i)
                os.mkdir(ld, 0o755)
                layers.build(ld, entries, layer_index=i)
                lower_dirs.append(ld)
            top_first = list(reversed(lower_dirs))
            before = [self.dump(ld) for ld in lower_dirs]
            ref = self.run_side(sc, "kernel", None, base, top_first)
            other = self.run_side(sc, self.fuse_name, None if self.kernel2 else self.a.fuse_bin,
                                  base, top_first)
            after = [self.dump(ld) for ld in lower_dirs]
            la, lb = ref.label, other.label
            for s in (ref, other):
                if s.error:
                    problems.append("%s: ERROR: %s" % (s.label, s.error))
            if ref.calls != other.calls:
                n = next((i for i, (x, y) in enumerate(zip(ref.calls, other.calls)) if x != y),
                         min(len(ref.calls), len(other.calls)))
                hdr = "call results differ; first divergence at call #%d:" % (n + 1)
                if n < len(ref.calls):
                    hdr += "\n    %s: %s" % (la, clip(ref.calls[n]))
                if n < len(other.calls):
                    hdr += "\n    %s: %s" % (lb, clip(other.calls[n]))
                problems.append(hdr)
                problems.extend(self.diff("calls", ref.calls, other.calls, la, lb))
            if ref.merged != other.merged:
                problems.append("merged views differ:")
                problems.extend(self.diff("merged", ref.merged, other.merged, la, lb))
            if ref.upper != other.upper:
                problems.append("upper dirs differ:")
                problems.extend(self.diff("upper", ref.upper, other.upper, la, lb))
            for i, (x, y) in enumerate(zip(before, after)):
                if x != y:
                    problems.append("LOWER LAYER %d WAS MODIFIED:" % i)
                    problems.extend(self.diff("lower%d" % i, x, y, "before", "after"))
            if self.a.verbose > 1:
                for c in ref.calls:
                    self.log("    " + c)
        except Exception as e:  # harness-level failure of this scenario: report, keep going
            import traceback
            problems.append("HARNESS EXCEPTION: %s\n%s" % (e, traceback.format_exc()))
        finally:
            left = mounts.mounted_under(base)
            for mp in left:
                self.log("cleanup: lazily unmounting leftover %s" % mp)
                mounts.unmount(mp, mounts.daemon_pids(mp), self.log)
            if mounts.mounted_under(base):
                self.log("cleanup: %s still has mounts; not removing it" % base)
            elif self.a.keep:
                self.log("kept %s" % base)
            else:
                shutil.rmtree(base, ignore_errors=True)
        return problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fuse-bin", required=True,
                    help="FUSE overlay daemon (fuse-overlayfs CLI), or 'kernel' for a self-check")
    ap.add_argument("--fuse-name", help="implementation name used in the output")
    ap.add_argument("--fuse-opts", default="", help="extra -o options for the FUSE daemon")
    ap.add_argument("--scenario", action="append",
                    help="run only scenarios matching this glob (repeatable); random ones are "
                         "named random-SEED")
    ap.add_argument("--random-seeds", type=int, default=10, help="random sequences (default 10)")
    ap.add_argument("--random-ops", type=int, default=200, help="ops per sequence (default 200)")
    ap.add_argument("--seed", type=int, action="append",
                    help="run only the random sequence with this seed (repeatable)")
    ap.add_argument("--tmpdir", default="/tmp")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs (unmounted)")
    ap.add_argument("--no-mtime", action="store_true", help="do not compare mtimes")
    ap.add_argument("--dir-mtime", action="store_true", help="also compare directory mtimes")
    ap.add_argument("--mtime-precision", type=int, default=1, help="ns per unit compared")
    ap.add_argument("--op-timeout", type=int, default=120)
    ap.add_argument("--ignore-upper-xattr", action="append", default=[], metavar="PREFIX",
                    help="also drop upper xattrs with this prefix (e.g. user.fuseoverlayfs.)")
    ap.add_argument("--max-diff-lines", type=int, default=80)
    ap.add_argument("--userns", action="store_true",
                    help="run both sides inside a user namespace (ids 0-65535 mapped; kernel with userxattr)")
    ap.add_argument("--list", action="store_true", help="list scenarios and exit")
    ap.add_argument("-v", "--verbose", action="count", default=0)
    a = ap.parse_args(argv)

    named = scenarios.all_scenarios()
    names = [s.name for s in named]
    dups = {n for n in names if names.count(n) > 1}
    if dups:
        print("duplicate scenario names: %s" % sorted(dups))
        return 2
    if a.seed:
        seeds = a.seed
        if not a.scenario:
            named = []
    else:
        seeds = list(range(1, a.random_seeds + 1))
    rand = [randomops.make_scenario(s, a.random_ops) for s in seeds]
    todo = named + rand
    if a.scenario:
        todo = [s for s in todo if any(fnmatch.fnmatchcase(s.name, g) for g in a.scenario)]
    left_out = []
    if a.userns:
        left_out = [s.name for s in todo if not userns_comparable(s)]
        todo = [s for s in todo if userns_comparable(s)]
    if a.list:
        for s in todo:
            print("%-40s %s" % (s.name, s.doc))
        print("%d scenarios" % len(todo))
        return 0
    if a.fuse_bin != "kernel" and not os.access(a.fuse_bin, os.X_OK):
        found = shutil.which(a.fuse_bin)
        if not found:
            print("--fuse-bin %s: not an executable" % a.fuse_bin)
            return 2
        a.fuse_bin = found
    if a.fuse_bin != "kernel":
        a.fuse_bin = os.path.abspath(a.fuse_bin)
    why = skip_reason()
    if not why and a.userns:
        why = userns.available()
        layers.USERXATTR = True
    if why:
        if os.environ.get("STRATA_REQUIRE_MOUNT") == "1":
            print("FAIL: mount tests required (STRATA_REQUIRE_MOUNT=1) but cannot run: %s" % why)
            return 1
        print("SKIP: %s" % why)
        return 77

    uring_old = None
    if "io_uring" in a.fuse_opts.split(","):
        # The kernel offers io_uring to daemons only with the fuse module parameter set.
        try:
            with open(URING_PARAM) as f:
                uring_old = f.read().strip()
            with open(URING_PARAM, "w") as f:
                f.write("Y")
        except OSError as e:
            why = "no FUSE over io_uring here (%s)" % e
            if os.environ.get("STRATA_REQUIRE_MOUNT") == "1":
                print("FAIL: mount tests required (STRATA_REQUIRE_MOUNT=1) but cannot run: %s" % why)
                return 1
            print("SKIP: %s" % why)
            return 77
    try:
        return run_all(a, todo, left_out)
    finally:
        if uring_old is not None:
            with open(URING_PARAM, "w") as f:
                f.write(uring_old)


URING_PARAM = "/sys/module/fuse/parameters/enable_uring"


def run_all(a, todo, left_out):
    r = Runner(a)
    r.uring = "io_uring" in a.fuse_opts.split(",")
    print("differential test: kernel overlayfs vs %s (%s), %d scenarios%s" %
          (r.fuse_name, a.fuse_bin, len(todo), ", both in a user namespace" if a.userns else ""), flush=True)
    if left_out:
        print("left out in a user namespace (the kernel has no file handles there): " + " ".join(left_out))
    t0 = time.time()
    passed, failed = 0, []
    for sc in todo:
        t = time.time()
        problems = r.run_scenario(sc)
        dt = time.time() - t
        if problems:
            failed.append(sc)
            print("FAIL %s (%.2fs)%s -- %s" % (sc.name, dt, "" if sc.seed is None else
                                               " seed=%d" % sc.seed, sc.doc), flush=True)
            for p in problems:
                print("    " + p.replace("\n", "\n    "))
            if sc.seed is not None:
                print("    rerun: python3 %s --fuse-bin %s --seed %d --random-ops %d" %
                      (os.path.relpath(__file__), a.fuse_bin, sc.seed, a.random_ops))
        else:
            passed += 1
            if a.verbose:
                print("PASS %s (%.2fs)" % (sc.name, dt), flush=True)
    print("%d operations run in %.1fs against %s" % (r.ops_run, time.time() - t0, r.fuse_name))
    if failed:
        print("failed: " + " ".join(s.name for s in failed))
    print("%d passed, %d failed" % (passed, len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
