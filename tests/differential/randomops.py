"""Seeded random operation sequences over a small namespace spread across 3 lower layers.

make_scenario(seed, nops) builds 3 random lower layers (files, dirs, symlinks, whiteouts, opaque
dirs over a fixed set of names, so names collide across layers with differing types) and `nops`
random operations (create, write, append, truncate, unlink, mkdir, rmdir, rename, renameat2, link,
symlink, chmod, chown, utime, set/get/list/removexattr, readdir, stat, lstat, readlink, read) plus
a recursive listing every 25 operations.  Only deterministic operations are used: explicit times,
no "now" utime, symlink targets that stay inside the mount, sorted listings, no inode numbers.
"""
import random

from layers import Scenario, T1, T2, dir, file, opaque, symlink, whiteout

# names in parent-first order; "dir-capable" names may also hold children
NAMES = ["a", "b", "c", "d1", "d2", "d1/a", "d1/b", "d1/s", "d1/s/a", "d1/s/b",
         "d2/a", "d2/s", "d2/s/a", "d2/s/t"]
DIRISH = {"d1", "d2", "d1/s", "d2/s"}
EXTRA = ["n", "d1/n", "d2/s/n", "d1/s/n", "d3", "d3/a"]
PATHS = NAMES + EXTRA
DIRS_FOR_LIST = ["", "d1", "d2", "d1/s", "d2/s", "d3"]
LINK_TARGETS = ["a", "b", "s", "s/a", "nowhere", "d1/a"]
MODES = [0o600, 0o644, 0o755, 0o700, 0o640, 0o4755]
CONTENTS = [b"", b"x", b"hello\n", b"0123456789" * 10, b"\0\1\2\3" * 300]


def _parent(p):
    return p.rsplit("/", 1)[0] if "/" in p else ""


FILEISH = [p for p in PATHS if p not in DIRISH and p != "d3"]
DIRS = sorted(DIRISH) + ["d3"]


def _pick_kind(rng, li, dirish):
    """Kind of a name in layer li; dir-like names are mostly dirs, file-like mostly files."""
    r = rng.random()
    if li == 0 and dirish:
        return "dir" if r < 0.9 else (None if r < 0.95 else "file")
    if r < 0.45:
        return None
    table = ([(0.30, "dir"), (0.08, "opaque"), (0.07, "whiteout"), (0.07, "file"),
              (0.03, "symlink")] if dirish else
             [(0.35, "file"), (0.07, "symlink"), (0.08, "whiteout"), (0.05, "dir")])
    r -= 0.45
    for w, k in table:
        if r < w:
            break
        r -= w
    if li == 0 and k in ("whiteout", "opaque"):
        k = "dir" if dirish else "file"
    return k


def make_layers(rng):
    result = []
    for li in range(3):
        kinds = {}
        entries = []
        for n in NAMES:
            par = _parent(n)
            if par and kinds.get(par) not in ("dir", "opaque"):
                continue
            k = _pick_kind(rng, li, n in DIRISH)
            if k is None:
                continue
            kinds[n] = k
            if k == "file":
                entries.append(file(n, b"L%d:%s\n" % (li, n.encode()) * rng.randint(0, 3),
                                    mode=rng.choice([0o644, 0o600, 0o755]),
                                    xattrs={"user.L%d" % li: b"v"} if rng.random() < 0.2
                                    else None))
            elif k == "dir":
                entries.append(dir(n, mode=rng.choice([0o755, 0o750, 0o700])))
            elif k == "opaque":
                entries.append(opaque(n))
            elif k == "symlink":
                entries.append(symlink(n, rng.choice(LINK_TARGETS)))
            else:
                entries.append(whiteout(n))
        result.append(entries)
    return result


def make_ops(rng, nops):
    def P():  # any path
        return rng.choice(PATHS)

    def F():  # mostly file-like names
        return rng.choice(FILEISH) if rng.random() < 0.85 else P()

    def D():  # mostly directory-like names
        return rng.choice(DIRS) if rng.random() < 0.8 else P()

    def R():  # rename pairs, mostly of the same kind
        r = rng.random()
        if r < 0.55:
            return F(), rng.choice(FILEISH)
        if r < 0.8:
            return D(), rng.choice(DIRS + EXTRA)
        return P(), P()

    gens = [
        (8, lambda: ("write_file", F(), rng.choice(CONTENTS))),
        (4, lambda: ("append", F(), rng.choice(CONTENTS[1:]))),
        (3, lambda: ("create", F(), rng.choice(CONTENTS), rng.choice([0o644, 0o600]))),
        (4, lambda: ("truncate", F(), rng.choice([0, 1, 5, 4096]))),
        (8, lambda: ("unlink", F())),
        (7, lambda: ("mkdir", D(), rng.choice([0o755, 0o700]))),
        (6, lambda: ("rmdir", D())),
        (9, lambda: ("rename",) + R()),
        (2, lambda: ("renameat2",) + R() + ("NOREPLACE",)),
        (2, lambda: ("renameat2",) + R() + ("EXCHANGE",)),
        (3, lambda: ("link", F(), F())),
        (3, lambda: ("symlink", rng.choice(LINK_TARGETS), F())),
        (3, lambda: ("chmod", P(), rng.choice(MODES))),
        (2, lambda: ("lchown", P(), rng.choice([0, 1000, 65534]), rng.choice([0, 100]))),
        (2, lambda: ("utime", P(), T1, rng.choice([T1, T2]))),
        (3, lambda: ("lsetxattr", P(), rng.choice(["user.k1", "user.k2"]),
                     rng.choice([b"", b"v1", b"value-2"]))),
        (1, lambda: ("removexattr", P(), rng.choice(["user.k1", "user.k2", "user.L0"]))),
        (2, lambda: ("llistxattr", P())),
        (1, lambda: ("lgetxattr", P(), rng.choice(["user.k1", "user.L1"]))),
        (5, lambda: ("listdir", rng.choice(DIRS_FOR_LIST) or ".")),
        (5, lambda: ("lstat", P())),
        (2, lambda: ("stat", P())),
        (2, lambda: ("readlink", F())),
        (4, lambda: ("read_file", F())),
    ]
    total = sum(w for w, _ in gens)
    ops = []
    for i in range(nops):
        if i and i % 25 == 0:
            ops.append(("tree", "."))
            continue
        r = rng.uniform(0, total)
        for w, g in gens:
            r -= w
            if r <= 0:
                ops.append(g())
                break
        else:
            ops.append(gens[-1][1]())
    ops.append(("tree", "."))
    return ops


def make_scenario(seed, nops):
    rng = random.Random(seed)
    lay = make_layers(rng)
    ops = make_ops(rng, nops)
    return Scenario("random-%d" % seed, "random sequence of %d ops (seed %d)" % (nops, seed),
                    lay, ops, seed=seed)
