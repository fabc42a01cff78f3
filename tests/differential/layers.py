"""Scenario DSL: layer entry constructors, the layer builder and the Scenario record.

A scenario's `layers` are listed BOTTOM FIRST (like the layers of a container image); the runner
passes them to overlayfs as lowerdir=TOP:...:BOTTOM.  Entries are created in order; missing parent
directories are created with mode 0755.  After building, every entry gets a fixed, distinct mtime
(with a non-zero nanosecond part) unless it names one, so copy-up time preservation is checked.

Entry constructors (paths are relative, str or bytes):
  file(path, content=b"", mode=0o644, uid=0, gid=0, mtime=None, xattrs=None)
  sparse(path, size, chunks={offset: bytes}, mode=0o644)       file with holes
  dir(path, mode=0o755, uid=0, gid=0, xattrs=None)
  opaque(path, mode=0o755)            dir with trusted.overlay.opaque=y
  symlink(path, target)               hardlink(path, existing_path)
  whiteout(path)                      char device 0/0
  fifo(path, mode=0o644)              socket(path)        device(path, "c"|"b", major, minor)
  xattr(path, name, value)            set on an existing entry
"""
import os
import stat

T_LOWER_NS = 1_500_000_000_123_456_789   # base mtime for lower entries
T_UPPER_NS = 1_550_000_000_987_654_321   # base mtime for pre-populated upper entries
LAYER_STEP_NS = 10_000_000_000_000       # per layer
ENTRY_STEP_NS = 1_000_000_007            # per entry within a layer

# explicit times for utime operations in scenarios (old, distinct from the layer times)
T1 = 1_234_567_890_111_222_333
T2 = 1_345_678_901_444_555_666


def _b(p):
    return os.fsencode(p) if isinstance(p, str) else p


def _c(c):
    return c.encode() if isinstance(c, str) else c


def file(path, content=b"", mode=0o644, uid=0, gid=0, mtime=None, xattrs=None):
    return {"t": "file", "path": _b(path), "content": _c(content), "mode": mode, "uid": uid,
            "gid": gid, "mtime": mtime, "xattrs": xattrs or {}}


def sparse(path, size, chunks, mode=0o644, mtime=None):
    return {"t": "sparse", "path": _b(path), "size": size, "chunks": chunks, "mode": mode,
            "uid": 0, "gid": 0, "mtime": mtime, "xattrs": {}}


def dir(path, mode=0o755, uid=0, gid=0, xattrs=None, mtime=None):
    return {"t": "dir", "path": _b(path), "mode": mode, "uid": uid, "gid": gid,
            "mtime": mtime, "xattrs": xattrs or {}}


def opaque(path, mode=0o755, uid=0, gid=0):
    return dir(path, mode, uid, gid, xattrs={"trusted.overlay.opaque": b"y"})


def symlink(path, target, uid=0, gid=0, mtime=None):
    return {"t": "symlink", "path": _b(path), "target": _b(target), "uid": uid, "gid": gid,
            "mtime": mtime, "xattrs": {}}


def hardlink(path, target):
    return {"t": "hardlink", "path": _b(path), "target": _b(target)}


def whiteout(path):
    return {"t": "whiteout", "path": _b(path)}


def fifo(path, mode=0o644, uid=0, gid=0):
    return {"t": "fifo", "path": _b(path), "mode": mode, "uid": uid, "gid": gid, "mtime": None,
            "xattrs": {}}


def socket(path, mode=0o755):
    return {"t": "socket", "path": _b(path), "mode": mode, "uid": 0, "gid": 0, "mtime": None,
            "xattrs": {}}


def device(path, kind, major, minor, mode=0o600, uid=0, gid=0):
    return {"t": "device", "path": _b(path), "kind": kind, "major": major, "minor": minor,
            "mode": mode, "uid": uid, "gid": gid, "mtime": None, "xattrs": {}}


def xattr(path, name, value):
    return {"t": "xattr", "path": _b(path), "name": name, "value": _c(value)}


class Scenario:
    """A named differential test case.

    layers: list of entry lists, bottom layer first.  upper: entries pre-populated in the upper dir
    (same for both sides; tests reading an existing upper).  ops: operation tuples run inside the
    mount (see opexec.py); the pseudo-op ("remount",) unmounts and mounts again with the same dirs.
    kernel_opts: extra kernel overlayfs options (e.g. "index=on"); compare_upper=False skips the
    upper-dir comparison (used with index=on, whose upper legitimately differs).
    """

    def __init__(self, name, doc, layers, ops, upper=None, kernel_opts="", compare_upper=True,
                 compare_merged=True, seed=None):
        self.name = name
        self.doc = doc
        self.layers = layers
        self.ops = ops
        self.upper = upper or []
        self.kernel_opts = kernel_opts
        self.compare_upper = compare_upper
        self.compare_merged = compare_merged
        self.seed = seed


class Registry:
    """Collects scenarios of one module: `S = Registry()`, then `S.add(name, doc, layers, ops, ...)`."""

    def __init__(self):
        self.items = []

    def add(self, name, doc, layers, ops, **kw):
        self.items.append(Scenario(name, doc, layers, ops, **kw))


def _mkparents(root, rel):
    parent = os.path.dirname(rel)
    if parent:
        os.makedirs(os.path.join(root, parent), mode=0o755, exist_ok=True)


# True in the harness's --userns mode: overlay xattrs in built layers are written as user.overlay.* (what kernel
# overlayfs mounted with `userxattr` reads; trusted.* cannot even be read in a user namespace).
USERXATTR = False


def _apply_meta(p, e):
    if e["t"] != "symlink":
        os.chmod(p, e["mode"])
    os.lchown(p, e.get("uid", 0), e.get("gid", 0))
    for name, value in sorted(e.get("xattrs", {}).items()):
        if USERXATTR and name.startswith("trusted.overlay."):
            name = "user.overlay." + name[len("trusted.overlay."):]
        os.setxattr(p, name, _c(value), follow_symlinks=False)


def build(root, entries, layer_index=0, base_ns=T_LOWER_NS):
    """Create `entries` under the existing directory `root`, then assign deterministic mtimes."""
    root = _b(root)
    explicit = {}
    for e in entries:
        rel = e["path"]
        p = os.path.join(root, rel)
        _mkparents(root, rel)
        t = e["t"]
        if t in ("file", "sparse"):
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                if t == "file":
                    os.write(fd, e["content"])
                else:
                    for off, data in sorted(e["chunks"].items()):
                        os.pwrite(fd, _c(data), off)
                    os.ftruncate(fd, e["size"])
            finally:
                os.close(fd)
            _apply_meta(p, e)
        elif t == "dir":
            if not os.path.isdir(p):
                os.mkdir(p)
            _apply_meta(p, e)
        elif t == "symlink":
            os.symlink(e["target"], p)
            _apply_meta(p, e)
        elif t == "hardlink":
            os.link(os.path.join(root, e["target"]), p)
        elif t == "whiteout":
            os.mknod(p, stat.S_IFCHR | 0o600, os.makedev(0, 0))
        elif t == "fifo":
            os.mkfifo(p, 0o600)
            _apply_meta(p, e)
        elif t == "socket":
            os.mknod(p, stat.S_IFSOCK | 0o600)
            _apply_meta(p, e)
        elif t == "device":
            kind = stat.S_IFCHR if e["kind"] == "c" else stat.S_IFBLK
            os.mknod(p, kind | 0o600, os.makedev(e["major"], e["minor"]))
            _apply_meta(p, e)
        elif t == "xattr":
            os.setxattr(p, e["name"], e["value"], follow_symlinks=False)
        else:
            raise ValueError("unknown entry type %r" % t)
        if e.get("mtime") is not None:
            explicit[rel] = e["mtime"]
    set_times(root, explicit, base_ns + layer_index * LAYER_STEP_NS)


def set_times(root, explicit, base_ns):
    """Give every entry under root (root included) a distinct deterministic mtime/atime,
    children before parents so directory times are not disturbed afterwards."""
    rels = []
    for dirpath, dirnames, filenames in os.walk(root):
        relp = os.path.relpath(dirpath, root)
        for n in dirnames + filenames:
            rels.append(os.path.normpath(os.path.join(relp, n)))
    rels.sort()
    order = {r: i for i, r in enumerate(rels)}
    for r in sorted(rels, key=lambda r: (-r.count(b"/"), r)):
        t = explicit.get(r, base_ns + (order[r] + 1) * ENTRY_STEP_NS)
        os.utime(os.path.join(root, r), ns=(t, t), follow_symlinks=False)
    os.utime(root, ns=(base_ns, base_ns))
