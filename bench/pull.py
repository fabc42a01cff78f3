#!/usr/bin/env python3
"""strata pull benchmark: `strata pull` against `skopeo copy` + `umoci unpack`.

Usage (as root): python3 bench/pull.py [--strata PATH] [--runs N] [--quick] [--tmpdir DIR]
                                       [--markdown OUT.md] [--timeout SECONDS]

Builds a 5-layer image (~300 MB; ~30 MB with --quick) with umoci once (cached in --tmpdir)
plus a variant with its largest layer doubled, serves both from Debian's docker-registry on
127.0.0.1 and times, interleaved over --runs with caches dropped and fresh destinations:
strata pull; skopeo copy + umoci unpack; a strata re-pull with every layer present; and the
peak RSS of each. Prints Markdown medians and strata/(skopeo+umoci) (< 1: strata faster).
Standard library only. See bench/README.md.
"""

import argparse
import collections
import datetime
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

IMAGE_VERSION = 1  # bump when the generated image changes (invalidates the cache)
MiB = 1 << 20
# per layer: small files (count), big random files (MiB each); "big" = the largest layer
FULL = dict(l1_files=12000, l2_big=[40, 40, 40], l3_files=6000, l3_mid=10, l3_mid_mib=2,
            l4_big=[70], l5_files=2000)
QUICK = dict(l1_files=1200, l2_big=[4, 4, 4], l3_files=600, l3_mid=10, l3_mid_mib=0.2,
             l4_big=[7], l5_files=200)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def check(cmd, timeout=600, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, **kw)
    if r.returncode:
        raise BenchError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stdout.strip()[-800:]}")
    return r.stdout


# ru_maxrss of an exec'd child starts at the peak RSS of the process that forked it (the kernel
# carries the old mm's high-water mark over exec), so a command spawned from this (big) Python
# process would report at least this process's peak. Each command is therefore forked by a small
# wrapper (python3 -I -S, ~6 MiB, shown as the "floor" in the report) that times it, reaps it with
# os.wait4 and reports "maxrss_kib exit_code seconds" on a pipe.
WRAPPER = """import os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try: os.execvp(sys.argv[2], sys.argv[2:])
    finally: os._exit(127)
_, st, ru = os.wait4(pid, 0)
t = time.perf_counter() - t0
os.write(int(sys.argv[1]), b"%d %d %.6f" % (ru.ru_maxrss, os.waitstatus_to_exitcode(st), t))
"""


def measure(cmd, timeout, logfile):
    """Run cmd in its own process group; return (seconds, peak RSS KiB, output)."""
    r, w = os.pipe()
    with open(logfile, "w+") as out:
        try:
            p = subprocess.Popen([sys.executable, "-I", "-S", "-c", WRAPPER, str(w), *cmd],
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 pass_fds=(w,), start_new_session=True)
        finally:
            os.close(w)
        try:
            p.wait(timeout=timeout)
        except BaseException as e:
            killpg(p)
            os.close(r)
            if isinstance(e, subprocess.TimeoutExpired):
                raise BenchError(f"timed out after {timeout:g} s: {' '.join(cmd)}")
            raise
        res = os.read(r, 200).split()
        os.close(r)
        out.seek(0)
        text = out.read()  # the log is rewritten by every command
    if p.returncode or len(res) != 3 or int(res[1]):
        raise BenchError(f"{' '.join(cmd)} failed ({res[1].decode() if res else p.returncode}): "
                         f"{text.strip()[-800:]}")
    return float(res[2]), int(res[0]), text


def killpg(p, sig=signal.SIGKILL):
    try:
        os.killpg(p.pid, sig)
        p.wait(timeout=10)
    except ProcessLookupError:
        p.wait()
    except subprocess.TimeoutExpired:
        killpg(p)


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def rm_rf(path):
    if os.path.lexists(path):
        shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------------------- image

class Content:
    """Deterministic file contents: text-like (compressible) and random slices, big files."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        words = [bytes(self.rng.choice(b"abcdefghijklmnopqrstuvwxyz_") for _ in
                       range(self.rng.randrange(2, 12))) for _ in range(2000)]
        lines, n = [], 0
        while n < 1 << 20:
            ln = b"    " * self.rng.randrange(0, 4) + b" ".join(
                self.rng.choice(words) for _ in range(self.rng.randrange(1, 12))) + b"\n"
            lines.append(ln)
            n += len(ln)
        self.text = b"".join(lines)
        self.rand = self.rng.randbytes(1 << 20)
        self.written = 0

    def small(self, path, mode=0o644):
        r = self.rng.random()  # 45% < 1 KiB, 40% < 8 KiB, 13% < 32 KiB, 2% < 256 KiB
        n = self.rng.randrange(*next(b for p, b in ((.45, (0, 1024)), (.85, (1024, 8192)),
                                                     (.98, (8192, 32768)), (1, (32768, 262144)))
                                     if r < p))
        src = self.rand if self.rng.random() < 0.3 else self.text  # ~30% binary-like
        off = self.rng.randrange(0, len(src) - n)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(src[off:off + n])
        os.chmod(path, mode)
        self.written += n

    def tree(self, root, count, prefix, exts):
        dirs = max(1, count // 40)
        for i in range(count):
            d = f"{prefix}/d{i % dirs:03d}"
            name = f"{root}/{d}/f{i:05d}{exts[i % len(exts)]}"
            self.small(name, 0o755 if i % 17 == 0 else 0o644)
            if i % 97 == 5:
                os.symlink(f"f{i:05d}{exts[i % len(exts)]}", f"{root}/{d}/l{i:05d}")
            if i % 211 == 9:
                os.link(name, f"{root}/{d}/h{i:05d}")

    def big(self, path, mib):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        n = int(mib * MiB)
        with open(path, "wb") as f:
            for k in range(0, n, MiB):
                f.write(self.rng.randbytes(min(MiB, n - k)))  # incompressible
        self.written += n


def fill_layer(n, root, P, twice):
    c = Content(1000 + n)
    if n == 1:  # an OS-like tree of many small files
        c.tree(root, P["l1_files"], "usr/share", (".txt", ".py", ".conf", ".h", ""))
        for i in range(50):
            c.small(f"{root}/etc/conf{i:02d}.conf")
    elif n == 2:  # a runtime: a few large incompressible files (doubled in the variant)
        for i, m in enumerate(P["l2_big"]):
            c.big(f"{root}/opt/runtime/lib{i}.so", m * (2 if twice else 1))
    elif n == 3:  # libraries: small files and some medium binaries
        c.tree(root, P["l3_files"], "usr/lib/python3/site-packages", (".py", ".pyc", ".so"))
        for i in range(P["l3_mid"]):
            c.big(f"{root}/usr/lib/x86_64-linux-gnu/libbig{i}.so", P["l3_mid_mib"])
    elif n == 4:  # a data file
        for i, m in enumerate(P["l4_big"]):
            c.big(f"{root}/srv/data/model{i}.bin", m)
    else:  # the application: small files, changes and deletions of lower files (whiteouts)
        c.tree(root, P["l5_files"], "app", (".js", ".json", ".css", ".html"))
        for i in range(0, P["l1_files"], 50):
            p = f"{root}/usr/share/d{i % max(1, P['l1_files'] // 40):03d}/f{i:05d}"
            for e in (".txt", ".py", ".conf", ".h", ""):
                if os.path.exists(p + e):
                    os.unlink(p + e)
        for i in range(20):
            c.small(f"{root}/etc/conf{i:02d}.conf")
    return c.written


def build_image(dest, P):
    """OCI layout dest/oci with tags 1 (5 layers) and 2x (layer 2 twice as large)."""
    lay = os.path.join(dest, "oci")
    check(["umoci", "init", "--layout", lay])
    check(["umoci", "new", "--image", f"{lay}:base"])
    info = {"1": {"written": 0}, "2x": {"written": 0}}
    for tag, first in (("1", 1), ("2x", 2)):
        b = os.path.join(dest, "bundle-" + tag)
        check(["umoci", "unpack", "--image", f"{lay}:{'base' if tag == '1' else 'l1'}", b])
        for n in range(first, 6):
            t0 = time.perf_counter()
            info[tag]["written"] += fill_layer(n, os.path.join(b, "rootfs"), P, tag == "2x")
            check(["umoci", "repack", "--refresh-bundle", "--history.created_by",
                   f"bench layer {n}", "--image", f"{lay}:{tag}", b])
            if n == 1:
                check(["umoci", "tag", "--image", f"{lay}:1", "l1"])
                info["2x"]["written"] = info["1"]["written"]
            log(f"  image {tag}: layer {n} in {time.perf_counter() - t0:.1f} s")
        rm_rf(b)
    check(["umoci", "gc", "--layout", lay])
    with open(os.path.join(lay, "index.json")) as f:
        for m in json.load(f)["manifests"]:
            tag = m.get("annotations", {}).get("org.opencontainers.image.ref.name")
            if tag in info:
                with open(os.path.join(lay, "blobs", *m["digest"].split(":"))) as g:
                    info[tag]["layers"] = [l["size"] for l in json.load(g)["layers"]]
    return info


def cached_image(root, P, profile):
    """(layout, info, build seconds): built into root/image-PROFILE unless already there."""
    final, key = os.path.join(root, "image-" + profile), dict(version=IMAGE_VERSION, params=P)
    try:
        with open(os.path.join(final, "stamp.json")) as f:
            st = json.load(f)
        if st["key"] == key:
            log(f"image: reusing {final}")
            return os.path.join(final, "oci"), st["info"], 0.0
    except (OSError, ValueError, KeyError):
        pass
    tmp, t0 = final + ".tmp", time.perf_counter()
    rm_rf(final)
    rm_rf(tmp)
    os.makedirs(tmp)
    log(f"image: building in {tmp}")
    info = build_image(tmp, P)
    with open(os.path.join(tmp, "stamp.json"), "w") as f:
        json.dump(dict(key=key, info=info), f)
    os.rename(tmp, final)
    log(f"image: built in {time.perf_counter() - t0:.1f} s")
    return os.path.join(final, "oci"), info, time.perf_counter() - t0


# ----------------------------------------------------------------------------- registry

class Registry:
    """docker-registry on 127.0.0.1:FREE_PORT (plain HTTP) in its own process group."""

    def __init__(self, root):
        os.makedirs(root, exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.addr = "127.0.0.1:%d" % s.getsockname()[1]
        cfg = os.path.join(root, "config.yml")
        with open(cfg, "w") as f:
            f.write("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                    f"    rootdirectory: {os.path.join(root, 'data')}\n"
                    f"http:\n  addr: {self.addr}\n")
        self.logf = open(os.path.join(root, "log"), "w")
        self.proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=self.logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                return urllib.request.urlopen(f"http://{self.addr}/v2/", timeout=2).close()
            except urllib.error.HTTPError:
                return  # up, wants credentials
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise BenchError("docker-registry did not start: " +
                                     open(self.logf.name).read()[-800:])
                time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            killpg(self.proc, signal.SIGTERM)
        self.logf.close()


# ----------------------------------------------------------------------------- report

def fmt_time(s):
    if s is None:
        return "—"
    return f"{s:.{1 if s >= 10 else 2}f} s" if s >= 1 else f"{s * 1e3:.{0 if s >= 0.1 else 1}f} ms"


def fmt_mib(kib):
    return "—" if kib is None else f"{kib / 1024:.0f} MiB" if kib >= 10240 else f"{kib / 1024:.1f} MiB"


def median(xs):
    return statistics.median(xs) if xs else None


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def version(cmd):
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=10)
        return r.stdout.strip().splitlines()[0]
    except Exception:
        return "?"


def machine():
    cpu = mem = "?"
    with open("/proc/cpuinfo") as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    with open("/proc/meminfo") as f:
        mem = f"{int(f.readline().split()[1]) / (1 << 20):.1f} GiB"
    return f"Linux {platform.release()}, {os.cpu_count()} CPUs ({cpu}), {mem} RAM"


def report(a, info, R, errors, load0, wall, build_s, strata):
    mb = lambda b: f"{b / 1e6:.0f} MB" if b >= 1e7 else f"{b / 1e6:.1f} MB"
    i1, i2 = info["1"], info["2x"]
    s, sk, um = median(R["strata"]), median(R["skopeo"]), median(R["umoci"])
    both = median(R["both"])
    rp = median(R["repull"])
    L = ["# strata pull benchmark", "",
         f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
         f"- machine: {machine()}; data in {a.tmpdir}",
         f"- image `bench/img:1`: {len(i1['layers'])} layers, {mb(sum(i1['layers']))} compressed "
         f"({', '.join(mb(x) for x in i1['layers'])}), {mb(i1['written'])} of file data; "
         f"profile {'quick' if a.quick else 'full'}",
         f"- strata: {strata} ({version([strata, '--version'])}); "
         f"{version(['skopeo', '--version'])}; {version(['umoci', '--version'])}; "
         f"registry: {version(['docker-registry', '--version'])} on 127.0.0.1 (plain HTTP)",
         f"- runs: {a.runs}, strata and skopeo+umoci interleaved (order alternating), "
         "`sync` + `drop_caches` before every timed command, fresh destination each run; "
         "values are medians",
         f"- load average (1/5/15 min) at start: {load0}, at end: {loadavg()}" +
         (" (**busy machine: noisy numbers**)" if float(load0.split()[0]) > 0.5 else ""),
         f"- wall time: {wall:.0f} s " +
         (f"(building the image: {build_s:.0f} s)" if build_s else "(image from the cache)"), "",
         "Ratio: strata / (skopeo copy + umoci unpack); **< 1 means strata is faster** "
         "(the issue's target: <= 0.5).", "",
         "| measurement | strata pull | skopeo copy | umoci unpack | skopeo + umoci | ratio |",
         "|---|---:|---:|---:|---:|---:|",
         f"| pull `bench/img:1` into an empty store (cold caches) | {fmt_time(s)} | "
         f"{fmt_time(sk)} | {fmt_time(um)} | {fmt_time(both)} | "
         f"{f'{s / both:.2f}' if s and both else '—'} |",
         f"| re-pull, every layer present (target < 100 ms) | {fmt_time(rp)}"
         f"{'' if rp is None else ' (met)' if rp < 0.1 else ' (**not met**)'} | | | | |",
         f"| re-pull after drop_caches | {fmt_time(median(R['repull_cold']))} | | | | |",
         "", "Peak memory: ru_maxrss of the command's process from wait4, run by a small fork+exec "
         f"wrapper whose own RSS is the floor of every number (`true` measures "
         f"{fmt_mib(median(R['floor']))}).", "",
         "| image | largest layer (compressed) | strata pull | skopeo copy | umoci unpack |",
         "|---|---:|---:|---:|---:|",
         f"| `bench/img:1` | {mb(max(i1['layers']))} | {fmt_mib(median(R['rss_strata']))} | "
         f"{fmt_mib(median(R['rss_skopeo']))} | {fmt_mib(median(R['rss_umoci']))} |",
         f"| `bench/img:2x` (layer 2 doubled) | {mb(max(i2['layers']))} | "
         f"{fmt_mib(median(R['rss_strata_2x']))} | | |"]
    if errors:
        L += ["", "Failures:", ""] + [f"- {e}" for e in errors]
    return "\n".join(L) + "\n"


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strata", default="/work/main/build/strata", help="the strata binary")
    ap.add_argument("--runs", type=int, default=3, help="interleaved runs (default 3)")
    ap.add_argument("--quick", action="store_true", help="~10x smaller image: a smoke run")
    ap.add_argument("--tmpdir", default="/var/tmp/strata-pull-bench",
                    help="image cache, registry storage and destinations (a disk filesystem)")
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per command")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("pull.py must run as root (drop_caches, umoci unpack with owners)")
    a.strata, a.tmpdir = os.path.abspath(a.strata), os.path.realpath(a.tmpdir)
    if not os.access(a.strata, os.X_OK):
        sys.exit(f"--strata {a.strata}: not executable")
    for tool in ("docker-registry", "skopeo", "umoci"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (apt-get install {tool})")
    if a.runs < 1:
        sys.exit("--runs must be >= 1")
    profile = "quick" if a.quick else "full"

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    load0, t_start = loadavg(), time.perf_counter()
    os.makedirs(a.tmpdir, exist_ok=True)
    work = os.path.join(a.tmpdir, f"run-{os.getpid()}")
    R, errors, reg = collections.defaultdict(list), [], None
    try:
        layout, info, build_s = cached_image(a.tmpdir, QUICK if a.quick else FULL, profile)
        reg = Registry(os.path.join(a.tmpdir, "registry-" + profile))
        for tag in ("1", "2x"):
            check(["skopeo", "copy", "--quiet", f"oci:{layout}:{tag}",
                   f"docker://{reg.addr}/bench/img:{tag}", "--dest-tls-verify=false"],
                  timeout=a.timeout)
        log(f"registry {reg.addr}: pushed bench/img:1 and bench/img:2x")
        ref = f"{reg.addr}/bench/img:1"
        nlayers = len(info["1"]["layers"])
        os.makedirs(work)
        logf = os.path.join(work, "cmd.log")
        R["floor"] = [measure(["true"], 30, logf)[1]]

        def add(**kv):
            for k, v in kv.items():
                R[k].append(v)

        def strata_pull(store, r):
            return measure([a.strata, "--root", store, "pull", "--tls-verify=false", r],
                           a.timeout, logf)

        def run_strata(run):
            store = os.path.join(work, "store")
            drop_caches()
            t, rss, _ = strata_pull(store, ref)
            t2, _, out = strata_pull(store, ref)  # every layer present, caches warm
            if out.count("already exists") < nlayers:
                errors.append(f"run {run}: the re-pull did not report all {nlayers} layers "
                              f"as already present: {out.strip()[-300:]}")
            drop_caches()
            t3, _, _ = strata_pull(store, ref)
            add(strata=t, rss_strata=rss, repull=t2, repull_cold=t3)
            log(f"[run {run}] strata pull {fmt_time(t)} (peak {fmt_mib(rss)}), "
                f"re-pull {fmt_time(t2)}, re-pull after drop_caches {fmt_time(t3)}")
            rm_rf(store)

        def run_skopeo_umoci(run):
            dest, bundle = os.path.join(work, "oci"), os.path.join(work, "bundle")
            drop_caches()
            t1, rss1, _ = measure(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                                   f"docker://{ref}", f"oci:{dest}:img"], a.timeout, logf)
            t2, rss2, _ = measure(["umoci", "unpack", "--image", f"{dest}:img", bundle],
                                  a.timeout, logf)
            add(skopeo=t1, umoci=t2, both=t1 + t2, rss_skopeo=rss1, rss_umoci=rss2)
            log(f"[run {run}] skopeo copy {fmt_time(t1)} + umoci unpack {fmt_time(t2)} = "
                f"{fmt_time(t1 + t2)} (peaks {fmt_mib(rss1)}, {fmt_mib(rss2)})")
            rm_rf(dest)
            rm_rf(bundle)

        sides = [run_strata, run_skopeo_umoci]
        for run in range(1, a.runs + 1):
            for fn in (sides if run % 2 else sides[::-1]):
                try:
                    fn(run)
                except BenchError as e:
                    errors.append(f"run {run}: {e}")
                    log(f"[run {run}] FAILED: {e}")
        try:  # peak memory with a layer twice as large
            store = os.path.join(work, "store-2x")
            drop_caches()
            t, rss, _ = strata_pull(store, f"{reg.addr}/bench/img:2x")
            add(rss_strata_2x=rss)
            log(f"strata pull bench/img:2x {fmt_time(t)} (peak {fmt_mib(rss)})")
            rm_rf(store)
        except BenchError as e:
            errors.append(f"img:2x: {e}")
            log(f"img:2x FAILED: {e}")
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        return 130
    finally:
        if reg:
            reg.stop()
        rm_rf(work)
    wall = time.perf_counter() - t_start
    md = report(a, info, R, errors, load0, wall, build_s, a.strata)
    print(md)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(md)
    log(f"total wall time {wall:.0f} s")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
