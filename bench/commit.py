#!/usr/bin/env python3
"""strata commit benchmark: `strata commit` against `umoci repack` of the same change.

Usage (as root): python3 bench/commit.py [--strata PATH] [--stratafs PATH] [--runs N] [--quick]
                                         [--tmpdir DIR]

Builds (umoci) an image of 20,000 small files (2,000 with --quick) and pulls it into a fresh strata
store. Two changes, each made --runs times on fresh containers / fresh bundles:
  1-file    one new 4 KiB file
  200 MB    20 new files of 10 MB (random, incompressible: the worst case for gzip) (20 MB --quick)
For strata the change is written through a `strata mount` and `strata commit` is timed; for umoci
the same change is written into a fresh `umoci unpack` bundle and `umoci repack` is timed. Both
produce a gzip layer, config, manifest and a tag in an OCI layout. Caches are warm (the change was
just written). Prints a Markdown table of medians and the ratio strata/umoci (< 1: strata faster).
Standard library only.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MB = 1000 * 1000


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def check(cmd, env=None):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if r.returncode:
        raise SystemExit("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stdout[-800:]))
    return r.stdout


def timed(cmd, env=None):
    """(wall seconds, CPU seconds user+sys of the command and its children)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise SystemExit("%s failed (%d): %s" % (" ".join(cmd), p.returncode, out[-800:]))
    return wall, ru.ru_utime + ru.ru_stime


def make_change(root, kind, run, files_200):
    if kind == "1-file":
        with open(os.path.join(root, "change-%d" % run), "wb") as f:
            f.write(os.urandom(4096))
        return
    d = os.path.join(root, "big-%d" % run)
    os.makedirs(d)
    for i in range(files_200):
        with open(os.path.join(d, "f%02d" % i), "wb") as f:
            f.write(os.urandom(10 * MB))


def fmt(s):
    return "%.1f ms" % (s * 1000) if s < 1 else "%.2f s" % s


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata", default=os.path.join(here, "..", "build", "strata"))
    ap.add_argument("--stratafs", default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tmpdir", default=None)
    a = ap.parse_args()
    strata = os.path.abspath(a.strata)
    stratafs = os.path.abspath(a.stratafs or os.path.join(os.path.dirname(strata), "stratafs"))
    nfiles = 2000 if a.quick else 20000
    files_200 = 2 if a.quick else 20
    work = tempfile.mkdtemp(prefix="strata-commit-bench-", dir=a.tmpdir)
    env = dict(os.environ, STRATA_ROOT=os.path.join(work, "store"), STRATA_STRATAFS=stratafs)
    env.pop("SOURCE_DATE_EPOCH", None)
    mounts = []
    try:
        log("building a %d-file image with umoci" % nfiles)
        lay = os.path.join(work, "layout")
        check(["umoci", "init", "--layout", lay])
        check(["umoci", "new", "--image", lay + ":base"])
        b = os.path.join(work, "bundle")
        check(["umoci", "unpack", "--image", lay + ":base", b])
        rootfs = os.path.join(b, "rootfs")
        for i in range(nfiles):
            d = os.path.join(rootfs, "usr", "d%03d" % (i // 100))
            if i % 100 == 0:
                os.makedirs(d)
            with open(os.path.join(d, "f%03d" % (i % 100)), "wb") as f:
                f.write(b"x" * (i % 2000))
        check(["umoci", "repack", "--image", lay + ":base", b])
        shutil.rmtree(b)
        check([strata, "pull", "-q", "oci:%s:base" % lay], env)
        results = {}
        for kind in ("1-file", "200 MB"):
            st, um = [], []
            for run in range(a.runs):
                name = "c-%s-%d" % (kind[0], run)
                mp = check([strata, "mount", "--name", name, "localhost/layout:base"], env).strip()
                mounts.append(mp)
                make_change(mp, kind, run, files_200)
                st.append(timed([strata, "commit", name, "bench/%s:%d" % (kind[0], run)], env))
                check(["fusermount3", "-u", mp])
                mounts.remove(mp)
                bundle = os.path.join(work, "ub-%s-%d" % (kind[0], run))
                tag = "u-%s-%d" % (kind[0], run)
                check(["umoci", "tag", "--image", lay + ":base", tag])
                check(["umoci", "unpack", "--image", "%s:%s" % (lay, tag), bundle])
                make_change(os.path.join(bundle, "rootfs"), kind, run, files_200)
                um.append(timed(["umoci", "repack", "--image", "%s:%s" % (lay, tag), bundle]))
                shutil.rmtree(bundle)
                log("%s run %d: strata commit %s (cpu %s), umoci repack %s (cpu %s)"
                    % (kind, run, fmt(st[-1][0]), fmt(st[-1][1]), fmt(um[-1][0]), fmt(um[-1][1])))
            results[kind] = [statistics.median(x[i] for x in v) for v in (st, um) for i in (0, 1)]
        print("| change (image of %d files) | strata commit | umoci repack | ratio | CPU: strata | CPU: umoci |"
              % nfiles)
        print("|---|---:|---:|---:|---:|---:|")
        for kind, (sw, sc, uw, uc) in results.items():
            label = kind if kind == "1-file" else "%d MB (%d files of 10 MB)" % (files_200 * 10, files_200)
            print("| %s | %s | %s | %.2f | %s | %s |" % (label, fmt(sw), fmt(uw), sw / uw, fmt(sc), fmt(uc)))
        print("\nmedians of %d runs; CPU = user + system time of the command (all threads)" % a.runs)
    finally:
        for m in mounts:
            subprocess.run(["fusermount3", "-u", m], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
