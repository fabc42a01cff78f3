#!/usr/bin/env python3
"""Canonical, comparable dump of a directory tree (overlay lowers, uppers, merged views).

One line per entry, sorted by path (byte order), root first as ".":

    PATH TYPE mode=0644 uid=0 gid=0 [size=N sha256=HEX] [target=...] [rdev=MAJ:MIN]
         [nlink=N] [link=L1] [mtime=NS|now] [xattr NAME=VALUE ...]

- TYPE is one of file dir symlink fifo socket chr blk whiteout.
- size/sha256 only for regular files; nlink only for non-directories; directory sizes, directory
  nlink, atime and ctime are never dumped.
- Hard links: non-directories with nlink > 1, or sharing (st_dev, st_ino) with another dumped entry,
  get a link group id L1, L2, ... assigned in path order, so groups compare but inode numbers don't.
- Whiteouts (char device 0/0) are dumped as bare "PATH whiteout" (no mode/owner/time/nlink) and kept
  out of hard-link grouping: kernel overlayfs hard-links all its whiteouts to one shared inode.
- mtime: of non-directories (directories too with dir_mtime=True), in ns divided by `mtime_precision`.
  Values >= `now_ns` are printed as "now": they were set by the clock during the test, not by the
  scenario, so both sides can be compared without depending on timing. Use mtime=False to drop them.
- upper=True normalises an upper directory: drops trusted.overlay.* / user.overlay.* xattrs except
  the opaque markers, and every trusted.strata.* / user.strata.* xattr (implementation-private).

Usable as a module (dump(), dump_text()) or a command: python3 treedump.py [--upper] [--no-mtime] DIR
"""
import argparse
import hashlib
import os
import stat
import sys

KEEP_OVERLAY_XATTRS = {b"trusted.overlay.opaque", b"user.overlay.opaque"}
PRIVATE_PREFIXES = (b"trusted.overlay.", b"user.overlay.", b"trusted.strata.", b"user.strata.")


def esc(b):
    """Printable, unambiguous rendering of a byte string (names, targets, xattr values)."""
    if isinstance(b, str):
        b = os.fsencode(b)
    out = []
    for c in b:
        if c == 0x5C:
            out.append("\\\\")
        elif 0x21 <= c < 0x7F:
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    return "".join(out)


def is_whiteout(st):
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def type_name(st):
    m = st.st_mode
    if stat.S_ISREG(m):
        return "file"
    if stat.S_ISDIR(m):
        return "dir"
    if stat.S_ISLNK(m):
        return "symlink"
    if stat.S_ISFIFO(m):
        return "fifo"
    if stat.S_ISSOCK(m):
        return "socket"
    if stat.S_ISCHR(m):
        return "whiteout" if st.st_rdev == 0 else "chr"
    if stat.S_ISBLK(m):
        return "blk"
    return "unknown"


def file_sha256(path):
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            h.update(chunk)
    finally:
        os.close(fd)
    return h.hexdigest()


def keep_xattr(name, upper, ignore=()):
    if ignore and name.startswith(ignore):
        return False
    if not upper:
        return True
    if name in KEEP_OVERLAY_XATTRS:
        return True
    return not name.startswith(PRIVATE_PREFIXES)


def read_xattrs(path, upper, ignore=()):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        return ["<listxattr:%s>" % os.strerror(e.errno)]
    out = []
    for n in sorted(os.fsencode(x) for x in names):
        if not keep_xattr(n, upper, ignore):
            continue
        try:
            v = os.getxattr(path, n, follow_symlinks=False)
            out.append("%s=%s" % (esc(n), esc(v)))
        except OSError as e:
            out.append("%s=<%s>" % (esc(n), os.strerror(e.errno)))
    return out


def walk(root):
    """Yield (relpath_bytes, abspath_bytes) for root and everything under it, no symlink following."""
    root = os.fsencode(root)
    yield b".", root
    stack = [b""]
    while stack:
        rel = stack.pop()
        d = os.path.join(root, rel) if rel else root
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            r = os.path.join(rel, n) if rel else n
            p = os.path.join(root, r)
            yield r, p
            try:
                if stat.S_ISDIR(os.lstat(p).st_mode):
                    stack.append(r)
            except OSError:
                pass


def fmt_mtime(ns, precision, now_ns):
    if now_ns is not None and ns >= now_ns:
        return "now"
    return str(ns // precision)


def dump(root, upper=False, mtime=True, mtime_precision=1, now_ns=None, dir_mtime=False,
         hash_content=True, ignore_xattrs=()):
    """Return the canonical dump of `root` as a list of lines (see module docstring).
    ignore_xattrs: extra xattr name prefixes (str or bytes) to leave out."""
    ignore = tuple(os.fsencode(p) for p in ignore_xattrs)
    entries = []
    for rel, path in walk(root):
        try:
            st = os.lstat(path)
        except OSError as e:
            entries.append((rel, None, e))
            continue
        entries.append((rel, st, path))
    entries.sort(key=lambda e: e[0])

    # hard-link groups: count (dev, ino) occurrences among non-dir, non-whiteout entries
    seen = {}
    for rel, st, _ in entries:
        if st is None or stat.S_ISDIR(st.st_mode) or is_whiteout(st):
            continue
        seen[(st.st_dev, st.st_ino)] = seen.get((st.st_dev, st.st_ino), 0) + 1
    groups = {}

    lines = []
    for rel, st, path in entries:
        name = esc(rel)
        if st is None:
            lines.append("%s <lstat:%s>" % (name, os.strerror(path.errno)))
            continue
        t = type_name(st)
        if t == "whiteout":
            lines.append("%s whiteout" % name)
            continue
        f = [name, t, "mode=%04o" % stat.S_IMODE(st.st_mode), "uid=%d" % st.st_uid,
             "gid=%d" % st.st_gid]
        if t == "file":
            f.append("size=%d" % st.st_size)
            if hash_content:
                try:
                    f.append("sha256=%s" % file_sha256(path))
                except OSError as e:
                    f.append("sha256=<%s>" % os.strerror(e.errno))
        elif t == "symlink":
            try:
                f.append("target=%s" % esc(os.readlink(path)))
            except OSError as e:
                f.append("target=<%s>" % os.strerror(e.errno))
        elif t in ("chr", "blk"):
            f.append("rdev=%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)))
        if t != "dir":
            f.append("nlink=%d" % st.st_nlink)
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 or seen.get(key, 0) > 1:
                if key not in groups:
                    groups[key] = "L%d" % (len(groups) + 1)
                f.append("link=%s" % groups[key])
        if mtime and (t != "dir" or dir_mtime):
            f.append("mtime=%s" % fmt_mtime(st.st_mtime_ns, mtime_precision, now_ns))
        xs = read_xattrs(path, upper, ignore)
        if xs:
            f.append("xattr")
            f.extend(xs)
        lines.append(" ".join(f))
    return lines


def dump_text(root, **kw):
    return "\n".join(dump(root, **kw)) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description="canonical dump of a directory tree")
    ap.add_argument("dir")
    ap.add_argument("--upper", action="store_true", help="normalise as an overlay upper dir")
    ap.add_argument("--no-mtime", action="store_true")
    ap.add_argument("--dir-mtime", action="store_true")
    ap.add_argument("--mtime-precision", type=int, default=1, help="ns per unit (1 = ns)")
    ap.add_argument("--now-ns", type=int, default=None, help="mtimes >= this print as 'now'")
    ap.add_argument("--ignore-xattr", action="append", default=[], metavar="PREFIX")
    a = ap.parse_args(argv)
    sys.stdout.write(dump_text(a.dir, upper=a.upper, mtime=not a.no_mtime,
                               mtime_precision=a.mtime_precision, now_ns=a.now_ns,
                               dir_mtime=a.dir_mtime, ignore_xattrs=a.ignore_xattr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
