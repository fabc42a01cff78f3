# SPDX-License-Identifier: Apache-2.0
"""The common end of the integration test scripts: skip rules and the unittest run with its closing line."""
import atexit
import os
import shutil
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
