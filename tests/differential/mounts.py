"""Mounting and unmounting kernel overlayfs and a FUSE overlay daemon, with robust cleanup."""
import os
import signal
import subprocess
import time


class MountError(Exception):
    pass


def _unescape(s):
    # /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 4 <= len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mountpoints():
    with open("/proc/self/mountinfo") as f:
        return [_unescape(line.split()[4]) for line in f]


def is_mounted(path):
    return os.path.realpath(path) in mountpoints()


def mounted_under(root):
    root = os.path.realpath(root).rstrip("/") + "/"
    return [m for m in mountpoints() if m.startswith(root)]


def _run(cmd, timeout=60):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def kernel_mount(lowers, upper, work, mnt, extra=""):
    """lowers: top first."""
    opts = "lowerdir=%s,upperdir=%s,workdir=%s" % (":".join(lowers), upper, work)
    if extra:
        opts += "," + extra
    r = _run(["mount", "-t", "overlay", "overlay", "-o", opts, mnt])
    if r.returncode != 0:
        raise MountError("mount -t overlay failed (%d): %s" % (r.returncode,
                                                                r.stdout.decode(errors="replace")))


def fuse_mount(binary, lowers, upper, work, mnt, extra=""):
    opts = "lowerdir=%s,upperdir=%s,workdir=%s" % (":".join(lowers), upper, work)
    if extra:
        opts += "," + extra
    try:
        r = _run([binary, "-o", opts, mnt], timeout=30)
    except subprocess.TimeoutExpired:
        raise MountError("%s did not return within 30 s (it must return once mounted)" % binary)
    if r.returncode != 0:
        raise MountError("%s failed (%d): %s" % (binary, r.returncode,
                                                 r.stdout.decode(errors="replace")))
    deadline = time.time() + 10
    while not is_mounted(mnt):
        if time.time() > deadline:
            raise MountError("%s returned but %s is not mounted" % (binary, mnt))
        time.sleep(0.02)


def daemon_pids(mnt):
    """Processes whose command line has `mnt` as an argument (the FUSE daemon we started)."""
    pids = []
    target = os.fsencode(os.path.realpath(mnt))
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                args = f.read().split(b"\0")
            with open("/proc/%s/stat" % d, "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z" and target in args:
            pids.append(int(d))
    return pids


def unmount(mnt, pids=(), log=None):
    """Unmount `mnt` (retrying, then lazily), then wait for the daemon `pids` to exit (they get
    SIGTERM, then SIGKILL, if they linger).  Returns True if the plain unmount worked."""
    ok = True
    if is_mounted(mnt):
        ok = False
        for attempt in range(20):
            r = _run(["umount", mnt])
            if r.returncode == 0 or not is_mounted(mnt):
                ok = True
                break
            time.sleep(0.1 * (attempt + 1))
        if not ok:
            if log:
                log("umount %s failed: %s; using umount -l" % (mnt, r.stdout.decode(errors="replace")))
            _run(["umount", "-l", mnt])
    for pid in pids:
        _wait_pid(pid, log)
    return ok


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _wait_pid(pid, log):
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            if log:
                log("daemon pid %d still running after unmount; sending %s" % (pid, sig.name))
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        deadline = time.time() + 10
        while time.time() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.01)


class Mount:
    """One mounted union: kernel overlayfs (binary None) or a FUSE daemon (binary path)."""

    def __init__(self, binary, lowers, upper, work, mnt, kernel_opts="", fuse_opts="", log=None):
        self.binary, self.lowers, self.upper, self.work, self.mnt = binary, lowers, upper, work, mnt
        self.kernel_opts, self.fuse_opts, self.log = kernel_opts, fuse_opts, log
        self.pids = []

    def mount(self):
        if self.binary is None:
            kernel_mount(self.lowers, self.upper, self.work, self.mnt, self.kernel_opts)
        else:
            fuse_mount(self.binary, self.lowers, self.upper, self.work, self.mnt, self.fuse_opts)
            self.pids = daemon_pids(self.mnt)

    def umount(self):
        ok = unmount(self.mnt, self.pids, self.log)
        self.pids = []
        return ok
