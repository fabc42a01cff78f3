# SPDX-License-Identifier: Apache-2.0
"""The common end of the integration test scripts: skip rules, the control socket, and the unittest run with its
closing line."""
import atexit
import json
import os
import shutil
import socket
import sys
import tempfile
import unittest


def user_reachable(*binaries):
    """Copies of `binaries` an unprivileged test user can execute: the build tree may sit below a
    directory it cannot enter (a clone under /root). Removed at exit."""
    d = tempfile.mkdtemp(prefix="strata-bin-")
    os.chmod(d, 0o755)
    atexit.register(shutil.rmtree, d, True)
    out = []
    for b in binaries:
        p = os.path.join(d, os.path.basename(b))
        shutil.copy(b, p)
        os.chmod(p, 0o755)
        out.append(p)
    return out


class ControlConn:
    """One connection to a stratafs control socket; any path length (through /proc/self/fd like the daemon)."""

    def __init__(self, path, timeout=60):
        d = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)
        try:
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.settimeout(timeout)
            self.s.connect("/proc/self/fd/%d/%s" % (d, os.path.basename(path)))
        finally:
            os.close(d)
        self.f = self.s.makefile("rb")

    def call(self, cmd):
        self.s.sendall(cmd.encode() + b"\n")
        line = self.f.readline()
        if not line:
            raise ConnectionError("control socket closed the connection after " + cmd)
        return json.loads(line)

    def close(self):
        self.f.close()
        self.s.close()


def control_stats(sock):
    """The `stats` answer of a stratafs control socket."""
    c = ControlConn(sock)
    try:
        return c.call("stats")
    finally:
        c.close()


def run(module, what, skip_reason, patterns=None, verbose=False, cleanup=None):
    """Run the unittest cases of `module`; returns the exit status.

    A missing facility (skip_reason is not None) skips with 77, or fails with 1 when STRATA_REQUIRE_MOUNT=1 (CI:
    the mount tests must run there). The last line is "N passed, N failed". `cleanup` runs even if the run dies.
    """
    if skip_reason:
        if os.environ.get("STRATA_REQUIRE_MOUNT") == "1":
            print("FAIL: %s required but cannot run: %s" % (what, skip_reason))
            return 1
        print("SKIP: " + skip_reason)
        return 77
    loader = unittest.TestLoader()
    if patterns:
        loader.testNamePatterns = ["*%s*" % p for p in patterns]
    suite = loader.loadTestsFromModule(sys.modules[module])
    try:
        res = unittest.TextTestRunner(verbosity=2 if verbose else 1).run(suite)
    finally:
        if cleanup:
            cleanup()
    failed = len(res.failures) + len(res.errors)
    print("%d passed, %d failed" % (res.testsRun - failed - len(res.skipped), failed))
    return 0 if res.wasSuccessful() else 1
