#!/usr/bin/env python3
"""Operation executor: runs INSIDE the mount (cwd = mountpoint) in a child process.

Reads a pickled {"ops": [...], "now_ns": N} from stdin, runs every operation with paths relative
to the cwd only, and writes a pickled list of result strings to stdout: "OK", a value, or an errno
name such as "EXDEV".  Every operation is a tuple (NAME, ARGS...); handles ("h1", ...) name file
descriptors opened by earlier "open"/"opendir" operations of the same run.

Operations (path arguments are relative):
  open H PATH FLAGS [MODE]       FLAGS like "O_RDWR|O_CREAT"          close H
  read H N / pread H N OFF / write H DATA / pwrite H DATA OFF / lseek H OFF WHENCE("SEEK_DATA"...)
  fsync H / fdatasync H / ftruncate H N / fstat H / fchmod H MODE
  fallocate H MODE OFF LEN       MODE "" or e.g. "KEEP_SIZE|PUNCH_HOLE"
  copy_file_range HSRC HDST COUNT OFFSRC OFFDST
  mmap_write H OFF DATA (MAP_SHARED + msync) / mmap_read H OFF N
  fdlistdir H                    rewind + list an open directory handle
  create PATH [DATA] [MODE]      O_CREAT|O_EXCL|O_WRONLY + write + close
  write_file PATH DATA [FLAGS] [MODE]   (default O_WRONLY|O_CREAT|O_TRUNC)
  append PATH DATA / read_file PATH
  mkdir PATH [MODE] / rmdir PATH / unlink PATH / rename A B / renameat2 A B "NOREPLACE"|"EXCHANGE"
  link A B / symlink TARGET PATH / readlink PATH
  chmod PATH MODE / chown PATH UID GID / lchown PATH UID GID / truncate PATH N
  utime PATH ATIME_NS MTIME_NS [FOLLOW]
  setxattr PATH NAME VALUE [FLAGS "CREATE"|"REPLACE"] / getxattr / listxattr / removexattr
  lsetxattr / lgetxattr / llistxattr  (no symlink following)
  mknod PATH KIND MODE [MAJOR MINOR]   KIND: fifo sock chr blk reg
  statfs PATH / listdir PATH / scandir PATH / tree PATH / stat PATH / lstat PATH / mtime PATH
  same_ino A B / ino_save KEY PATH / ino_check KEY PATH / access PATH MODE / exists PATH
"""
import ctypes
import errno
import hashlib
import mmap
import os
import pickle
import stat
import sys

_libc = ctypes.CDLL(None, use_errno=True)
RENAME_FLAGS = {"NOREPLACE": 1, "EXCHANGE": 2, "WHITEOUT": 4}
FALLOC_FLAGS = {"KEEP_SIZE": 1, "PUNCH_HOLE": 2, "ZERO_RANGE": 16}
AT_FDCWD = -100

FDS = {}
INOS = {}
NOW_NS = None


def _b(p):
    return os.fsencode(p) if isinstance(p, str) else p


def _c(c):
    return c.encode() if isinstance(c, str) else c


def flags_of(s):
    v = 0
    for part in s.split("|"):
        part = part.strip()
        if part:
            v |= getattr(os, part)
    return v


def short(data):
    """Render read data: literal if short, else length + sha256 prefix."""
    if len(data) <= 64:
        return repr(data)
    return "<%d bytes sha256:%s>" % (len(data), hashlib.sha256(data).hexdigest()[:16])


def short_str(s):
    if len(s) <= 80:
        return repr(s)
    b = os.fsencode(s)
    return "<%d chars sha256:%s>" % (len(s), hashlib.sha256(b).hexdigest()[:16])


def tname(m):
    for test, n in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"),
                    (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "chr"),
                    (stat.S_ISBLK, "blk")):
        if test(m):
            return n
    return "unknown"


def summary(st):
    t = tname(st.st_mode)
    s = "%s mode=%04o uid=%d gid=%d" % (t, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    if t != "dir":
        s += " size=%d nlink=%d" % (st.st_size, st.st_nlink)
    if t in ("chr", "blk"):
        s += " rdev=%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    return s


def mtime_str(ns):
    return "now" if NOW_NS is not None and ns >= NOW_NS else str(ns)


def renameat2(a, b, flags):
    f = 0
    for part in flags.split("|"):
        f |= RENAME_FLAGS[part]
    r = _libc.renameat2(AT_FDCWD, _b(a), AT_FDCWD, _b(b), ctypes.c_uint(f))
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return "OK"


def fallocate(h, mode, off, length):
    m = 0
    for part in mode.split("|"):
        if part:
            m |= FALLOC_FLAGS[part]
    r = _libc.fallocate(FDS[h], ctypes.c_int(m), ctypes.c_longlong(off), ctypes.c_longlong(length))
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return "OK"


def op_open(h, path, flags, mode=0o644):
    FDS[h] = os.open(path, flags_of(flags), mode)
    return "OK"


def op_close(h):
    os.close(FDS.pop(h))
    return "OK"


def op_mmap_write(h, off, data):
    fd = FDS[h]
    size = os.fstat(fd).st_size
    m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    try:
        m[off:off + len(data)] = _c(data)
        m.flush()
    finally:
        m.close()
    return "OK"


def op_mmap_read(h, off, n):
    fd = FDS[h]
    size = os.fstat(fd).st_size
    m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
    try:
        return short(m[off:off + n])
    finally:
        m.close()


def op_create(path, data=b"", mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, _c(data))
    finally:
        os.close(fd)
    return "OK"


def op_write_file(path, data, flags="O_WRONLY|O_CREAT|O_TRUNC", mode=0o644):
    fd = os.open(path, flags_of(flags), mode)
    try:
        n = os.write(fd, _c(data))
    finally:
        os.close(fd)
    return str(n)


def op_read_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            c = os.read(fd, 1 << 20)
            if not c:
                break
            chunks.append(c)
    finally:
        os.close(fd)
    return short(b"".join(chunks))


def op_mknod(path, kind, mode, major=0, minor=0):
    k = {"fifo": stat.S_IFIFO, "sock": stat.S_IFSOCK, "chr": stat.S_IFCHR, "blk": stat.S_IFBLK,
         "reg": stat.S_IFREG}[kind]
    os.mknod(path, k | mode, os.makedev(major, minor))
    return "OK"


def op_statfs(path):
    s = os.statvfs(path)
    return "bsize>0=%s blocks>0=%s namemax=%d" % (s.f_bsize > 0, s.f_blocks > 0, s.f_namemax)


def op_scandir(path):
    out = []
    with os.scandir(path) as it:
        for e in it:
            t = "dir" if e.is_dir(follow_symlinks=False) else (
                "symlink" if e.is_symlink() else ("file" if e.is_file(follow_symlinks=False)
                                                  else "other"))
            out.append("%s:%s" % (e.name, t))
    return repr(sorted(out))


def op_tree(path):
    """Recursive listing: relative path + lstat summary, sorted (a cheap mid-sequence snapshot)."""
    out = []
    for dp, dns, fns in os.walk(path):
        for n in dns + fns:
            p = os.path.join(dp, n)
            try:
                out.append("%s %s" % (os.path.relpath(p, path), summary(os.lstat(p))))
            except OSError as e:
                out.append("%s %s" % (p, errno.errorcode.get(e.errno)))
    return "\n    " + "\n    ".join(sorted(out)) if out else "(empty)"


def op_same_ino(a, b):
    sa, sb = os.lstat(a), os.lstat(b)
    return "same" if (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino) else "different"


def op_ino_save(key, path):
    INOS[key] = os.lstat(path).st_ino  # st_ino only: st_dev changes across a remount
    return "OK"


def op_ino_check(key, path):
    return "same" if INOS[key] == os.lstat(path).st_ino else "different"


def op_setxattr(path, name, value, flags="", follow=True):
    f = {"": 0, "CREATE": os.XATTR_CREATE, "REPLACE": os.XATTR_REPLACE}[flags]
    os.setxattr(path, name, _c(value), f, follow_symlinks=follow)
    return "OK"


def op_fdlistdir(h):
    fd = FDS[h]
    os.lseek(fd, 0, os.SEEK_SET)
    return repr(sorted(os.listdir(fd)))


OPS = {
    "open": op_open,
    "opendir": lambda h, path: op_open(h, path, "O_RDONLY|O_DIRECTORY"),
    "close": op_close,
    "read": lambda h, n: short(os.read(FDS[h], n)),
    "pread": lambda h, n, off: short(os.pread(FDS[h], n, off)),
    "write": lambda h, data: str(os.write(FDS[h], _c(data))),
    "pwrite": lambda h, data, off: str(os.pwrite(FDS[h], _c(data), off)),
    "lseek": lambda h, off, whence: str(os.lseek(FDS[h], off, getattr(os, whence))),
    "fsync": lambda h: os.fsync(FDS[h]) or "OK",
    "fdatasync": lambda h: os.fdatasync(FDS[h]) or "OK",
    "ftruncate": lambda h, n: os.ftruncate(FDS[h], n) or "OK",
    "fstat": lambda h: summary(os.fstat(FDS[h])),
    "fchmod": lambda h, mode: os.fchmod(FDS[h], mode) or "OK",
    "fallocate": fallocate,
    "copy_file_range": lambda a, b, n, oa, ob: str(os.copy_file_range(FDS[a], FDS[b], n, oa, ob)),
    "mmap_write": op_mmap_write,
    "mmap_read": op_mmap_read,
    "fdlistdir": op_fdlistdir,
    "create": op_create,
    "write_file": op_write_file,
    "append": lambda path, data: op_write_file(path, data, "O_WRONLY|O_APPEND"),
    "read_file": op_read_file,
    "mkdir": lambda path, mode=0o755: os.mkdir(path, mode) or "OK",
    "rmdir": lambda path: os.rmdir(path) or "OK",
    "unlink": lambda path: os.unlink(path) or "OK",
    "rename": lambda a, b: os.rename(a, b) or "OK",
    "renameat2": renameat2,
    "link": lambda a, b: os.link(a, b, follow_symlinks=False) or "OK",
    "symlink": lambda target, path: os.symlink(target, path) or "OK",
    "readlink": lambda path: short_str(os.readlink(path)),
    "chmod": lambda path, mode: os.chmod(path, mode) or "OK",
    "chown": lambda path, uid, gid: os.chown(path, uid, gid) or "OK",
    "lchown": lambda path, uid, gid: os.lchown(path, uid, gid) or "OK",
    "truncate": lambda path, n: os.truncate(path, n) or "OK",
    "utime": lambda path, a, m, follow=False: os.utime(path, ns=(a, m),
                                                         follow_symlinks=follow) or "OK",
    "setxattr": op_setxattr,
    "lsetxattr": lambda path, name, value, flags="": op_setxattr(path, name, value, flags, False),
    "getxattr": lambda path, name: short(os.getxattr(path, name)),
    "lgetxattr": lambda path, name: short(os.getxattr(path, name, follow_symlinks=False)),
    "listxattr": lambda path: repr(sorted(os.listxattr(path))),
    "llistxattr": lambda path: repr(sorted(os.listxattr(path, follow_symlinks=False))),
    "removexattr": lambda path, name: os.removexattr(path, name) or "OK",
    "mknod": op_mknod,
    "statfs": op_statfs,
    "listdir": lambda path: repr(sorted(os.listdir(path))),
    "listdir_count": lambda path: str(len(os.listdir(path))),
    "scandir": op_scandir,
    "tree": op_tree,
    "stat": lambda path: summary(os.stat(path)),
    "lstat": lambda path: summary(os.lstat(path)),
    "mtime": lambda path: mtime_str(os.lstat(path).st_mtime_ns),
    "same_ino": op_same_ino,
    "ino_save": op_ino_save,
    "ino_check": op_ino_check,
    "access": lambda path, mode: str(os.access(path, mode)),
    "exists": lambda path: str(os.path.lexists(path)),
}


def run_op(op):
    fn = OPS.get(op[0])
    if fn is None:
        return "BADOP"
    try:
        r = fn(*op[1:])
        return "OK" if r is None else r
    except OSError as e:
        return errno.errorcode.get(e.errno, "E%d" % e.errno)
    except KeyError as e:  # a handle whose open failed earlier
        return "NOHANDLE:%s" % (e,)
    except Exception as e:  # a harness bug or an impossible result: make it visible
        return "EXC:%s:%s" % (type(e).__name__, e)


def main():
    global NOW_NS
    req = pickle.load(sys.stdin.buffer)
    NOW_NS = req.get("now_ns")
    INOS.update(req.get("inos", {}))
    os.umask(0o022)
    results = [run_op(op) for op in req["ops"]]
    for fd in FDS.values():
        try:
            os.close(fd)
        except OSError:
            pass
    sys.stdout.buffer.write(pickle.dumps({"results": results, "inos": INOS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
