"""Run a function in a new user + mount namespace (the differential suite's --userns mode).

The child maps ids 0..65535 onto themselves (the parent, root in the initial namespace, writes the maps), so the
layers the harness built as root keep their owners, while everything that needs privilege in the initial
namespace is refused inside, as for a rootless container engine: trusted.* xattrs (kernel overlayfs then needs
`userxattr`), device nodes other than 0/0 whiteouts, and FUSE and overlay mounts are user-namespace mounts.
"""
import ctypes
import os
import pickle
import traceback

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
ID_MAP = "0 0 65536\n"


def _read_all(fd):
    chunks = []
    while True:
        b = os.read(fd, 1 << 16)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def call(fn, *args):
    """fn(*args) in a forked child inside new user and mount namespaces; returns its (picklable) result or raises
    RuntimeError with the child's traceback."""
    r_ready, w_ready = os.pipe()
    r_maps, w_maps = os.pipe()
    r_res, w_res = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 0
        try:
            os.close(r_ready)
            os.close(w_maps)
            os.close(r_res)
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
                e = ctypes.get_errno()
                raise OSError(e, "unshare(CLONE_NEWUSER|CLONE_NEWNS): " + os.strerror(e))
            os.write(w_ready, b"u")
            os.close(w_ready)
            if os.read(r_maps, 1) != b"m":
                raise RuntimeError("the parent did not write the id maps")
            res = ("ok", fn(*args))
        except BaseException as e:  # noqa: B036 -- report anything to the parent
            res = ("err", "%s\n%s" % (e, traceback.format_exc()))
            status = 1
        try:
            data = pickle.dumps(res)
            while data:
                data = data[os.write(w_res, data):]
        finally:
            os._exit(status)
    os.close(w_ready)
    os.close(r_maps)
    os.close(w_res)
    try:
        if os.read(r_ready, 1) == b"u":
            # Root in the initial namespace may write any map; no setgroups restriction is needed then.
            for name in ("uid_map", "gid_map"):
                with open("/proc/%d/%s" % (pid, name), "w") as f:
                    f.write(ID_MAP)
            os.write(w_maps, b"m")
        data = _read_all(r_res)
    finally:
        for fd in (r_ready, w_maps, r_res):
            os.close(fd)
        os.waitpid(pid, 0)
    if not data:
        raise RuntimeError("the user-namespace child died without a result")
    kind, value = pickle.loads(data)
    if kind != "ok":
        raise RuntimeError("in the user namespace: " + value)
    return value


def available():
    """None when user namespaces can be made here, else why not."""
    try:
        return call(lambda: None)
    except (RuntimeError, OSError) as e:
        return str(e).splitlines()[0]
