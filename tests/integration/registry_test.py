#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration tests of `strata pull` from a registry: Debian's docker-registry (distribution) run
here on 127.0.0.1: plain HTTP anonymous, htpasswd basic auth, TLS with a CA made here (--cert-dir,
--tls-verify=false), and bearer tokens from a small token server in this file (JWTs signed with
`openssl dgst`, the certificate in the x5c header). Images built here with umoci and pushed with skopeo
(OCI and Docker schema2). No network beyond 127.0.0.1.

Run (root): python3 registry_test.py --strata PATH [-k PATTERN]. Exit 77 when not root or
docker-registry/htpasswd/umoci/skopeo are missing; 1 instead when STRATA_REQUIRE_MOUNT=1.
"""
import argparse
import base64
import http.server
import ssl
import threading
import urllib.parse
import uuid
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import harness  # noqa: E402  (tests/integration/harness.py)
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "differential"))
import strata_test  # noqa: E402
import treedump  # noqa: E402
from strata_test import BASE, TOP, WHITE, make_image, make_multi_platform, run  # noqa: E402

STRATA = None
USER, PASSWORD = "tester", "s3cret-pw"


def have_facilities():
    if os.geteuid() != 0:
        return "not root"
    for tool in ("docker-registry", "htpasswd", "umoci", "skopeo", "openssl"):
        if not shutil.which(tool):
            return "no " + tool
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """One docker-registry process in its own process group, storage in a temporary directory."""

    def __init__(self, workdir, htpasswd=None, tls=None, token=None):
        self.dir = tempfile.mkdtemp(prefix="registry-", dir=workdir)
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        cfg = ["version: 0.1", "log:", "  level: info", "storage:", "  filesystem:",
               "    rootdirectory: %s" % os.path.join(self.dir, "data"), "http:", "  addr: %s" % self.addr]
        if tls:
            cfg += ["  tls:", "    certificate: %s" % tls[0], "    key: %s" % tls[1]]
        if htpasswd:
            cfg += ["auth:", "  htpasswd:", "    realm: strata-test", "    path: %s" % htpasswd]
        if token:
            cfg += ["auth:", "  token:", "    realm: %s" % token.realm, "    service: %s" % TokenServer.SERVICE,
                    "    issuer: %s" % TokenServer.ISSUER, "    rootcertbundle: %s" % token.cert]
        self.scheme = "https" if tls else "http"
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.config = os.path.join(self.dir, "config.yml")
        with open(self.config, "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen(["docker-registry", "serve", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen("%s://%s/v2/" % (self.scheme, self.addr), timeout=2,
                                       context=ctx if tls else None)
                break
            except urllib.error.HTTPError:
                break  # 401: up, wants credentials
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("docker-registry did not start: " + open(self.log.name).read())
                time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self.log.close()

    def push(self, layout, tag, repo, fmt=None, creds=None):
        args = ["skopeo", "copy", "--quiet", "oci:%s:%s" % (layout, tag), "docker://%s/%s" % (self.addr, repo),
                "--dest-tls-verify=false"]
        if fmt:
            args += ["--format", fmt]
        if creds:
            args += ["--dest-creds", creds]
        run(*args)

    def digest(self, repo, creds=None):
        args = ["skopeo", "inspect", "--raw", "--tls-verify=false", "docker://%s/%s" % (self.addr, repo)]
        if creds:
            args += ["--creds", creds]
        raw = run(*args).stdout.encode()
        return "sha256:" + hashlib.sha256(raw).hexdigest()


class SlowProxy:
    """A TCP relay to `target` that sends the answers on at about `rate` bytes/s, so that a test can
    catch a pull in the middle of a blob. stop() also cuts the connections in flight (the registry
    going away)."""

    def __init__(self, target, rate):
        host, port = target.rsplit(":", 1)
        self.target, self.rate = (host, int(port)), rate
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.stopped = False
        self.conns = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(self.target)
            self.conns += [c, u]
            threading.Thread(target=self.relay, args=(c, u, 0), daemon=True).start()
            threading.Thread(target=self.relay, args=(u, c, self.rate), daemon=True).start()

    @staticmethod
    def relay(src, dst, rate):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """The distribution token flow's other half: GET /token?service=..&scope=.. answers a JWT (RS256,
    signed with `openssl dgst`, its certificate in x5c) granting the requested actions to USER (with
    the right password) and only `pull` on public/* to anonymous callers; a wrong password is 401."""
    SERVICE = "strata-test-registry"
    ISSUER = "strata-test-issuer"

    def __init__(self, workdir):
        self.key = os.path.join(workdir, "token.key")
        self.cert = os.path.join(workdir, "token.crt")
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out", self.cert,
            "-days", "2", "-subj", "/CN=strata-token-signer")
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"], capture_output=True,
                             check=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                u = urllib.parse.urlparse(self.path)
                q = urllib.parse.parse_qs(u.query)
                user = None
                h = self.headers.get("Authorization", "")
                if h.startswith("Basic "):
                    user, _, pw = base64.b64decode(h[6:]).decode().partition(":")
                    if (user, pw) != (USER, PASSWORD):
                        self.send_response(401)
                        self.end_headers()
                        return
                server.requests.append({"user": user, "service": q.get("service"), "scope": q.get("scope")})
                if u.path != "/token" or q.get("service") != [TokenServer.SERVICE]:
                    self.send_response(400)
                    self.end_headers()
                    return
                access = []
                for sc in q.get("scope", []):
                    typ, name, actions = sc.split(":")[0], ":".join(sc.split(":")[1:-1]), sc.split(":")[-1]
                    acts = actions.split(",")
                    if user is None:
                        acts = ["pull"] if "pull" in acts and name.startswith("public/") else []
                    access.append({"type": typ, "name": name, "actions": acts})
                body = json.dumps({"token": server.sign(user or "", access)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = "http://127.0.0.1:%d/token" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def sign(self, sub, access):
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": self.ISSUER, "sub": sub, "aud": self.SERVICE, "exp": now + 600, "nbf": now - 60,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input.encode(),
                             capture_output=True, check=True).stdout
        return signing_input + "." + b64url(sig)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def make_tls(workdir):
    """A CA (ca/ca.crt, the --cert-dir) and a server certificate for 127.0.0.1 signed by it."""
    cadir = os.path.join(workdir, "ca")
    os.makedirs(cadir)
    ca_key, ca_crt = os.path.join(workdir, "ca.key"), os.path.join(cadir, "ca.crt")
    key, csr, crt = (os.path.join(workdir, n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(workdir, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_crt, "-days", "2",
        "-subj", "/CN=strata-test-ca")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-out", crt,
        "-days", "2", "-extfile", ext)
    return cadir, (crt, key)


WORK = None
PLAIN = None
AUTH = None
TLS = None
BEARER = None
TOKENS = None
CADIR = None
LAYOUT = None


def setUpModule():
    global WORK, PLAIN, AUTH, TLS, BEARER, TOKENS, CADIR, LAYOUT
    WORK = tempfile.mkdtemp(prefix="strata-registry-test-")
    LAYOUT = os.path.join(WORK, "img")
    make_image(LAYOUT, "v1", [BASE, TOP, WHITE])
    htpasswd = os.path.join(WORK, "htpasswd")
    run("htpasswd", "-Bbc", htpasswd, USER, PASSWORD)
    PLAIN = Registry(WORK)
    AUTH = Registry(WORK, htpasswd=htpasswd)
    PLAIN.push(LAYOUT, "v1", "test/img:v1")
    PLAIN.push(LAYOUT, "v1", "test/docker:v1", fmt="v2s2")
    AUTH.push(LAYOUT, "v1", "private/img:v1", creds="%s:%s" % (USER, PASSWORD))
    CADIR, pair = make_tls(WORK)
    TLS = Registry(WORK, tls=pair)
    TLS.push(LAYOUT, "v1", "test/img:v1")
    TOKENS = TokenServer(WORK)
    BEARER = Registry(WORK, token=TOKENS)
    for repo in ("private/img:v1", "public/img:v1"):
        BEARER.push(LAYOUT, "v1", repo, creds="%s:%s" % (USER, PASSWORD))


def tearDownModule():
    global PLAIN, AUTH, TLS, BEARER, TOKENS
    for r in (PLAIN, AUTH, TLS, BEARER):
        if r:
            r.stop()
    PLAIN = AUTH = TLS = BEARER = None
    if TOKENS:
        TOKENS.stop()
        TOKENS = None
    if WORK:
        shutil.rmtree(WORK, ignore_errors=True)


class RegistryCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="case-", dir=WORK)
        self.root = os.path.join(self.tmp, "root")
        # No auth file of the host's may leak in: HOME and XDG_RUNTIME_DIR point at empty directories.
        self.env = dict(os.environ, STRATA_ROOT=self.root, HOME=self.tmp, XDG_RUNTIME_DIR=self.tmp)
        self.env.pop("REGISTRY_AUTH_FILE", None)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def strata(self, *args, check=True, root=None, env=None):
        e = dict(env or self.env)
        if root:
            e["STRATA_ROOT"] = root
        return run(STRATA, *args, check=check, env=e)

    def inspect(self, image, root=None):
        return json.loads(self.strata("inspect", image, root=root).stdout)[0]

    def layer_dumps(self, root):
        d = os.path.join(root, "layers")
        return {x: treedump.dump_text(os.path.join(d, x, "diff")) for x in os.listdir(d) if not x.startswith(".")}

    def oci_reference_root(self):
        """The same image pulled with the oci: transport into a second store."""
        other = os.path.join(self.tmp, "oci-root")
        self.strata("pull", "-q", "oci:%s:v1" % LAYOUT, root=other)
        return other


class Anonymous(RegistryCase):
    def test_pull_compare_repull(self):
        ref = "%s/test/img:v1" % PLAIN.addr
        r = self.strata("pull", "--tls-verify=false", ref)
        self.assertEqual(len([l for l in r.stdout.splitlines() if ": pulled " in l]), 3, r.stdout)
        want = PLAIN.digest("test/img:v1")
        self.assertIn("Digest: " + want, r.stdout)
        got = self.inspect(ref)
        self.assertIn("%s/test/img@%s" % (PLAIN.addr, want), got["RepoDigests"])
        self.assertEqual(got["RepoTags"], [ref])
        other = self.oci_reference_root()
        self.assertEqual(got["RootFS"], self.inspect("localhost/img:v1", root=other)["RootFS"])
        self.assertEqual(self.layer_dumps(self.root), self.layer_dumps(other))
        r = self.strata("pull", "--tls-verify=false", "docker://" + ref)
        self.assertEqual(len([l for l in r.stdout.splitlines() if l.endswith(": already exists")]), 3, r.stdout)

    def test_docker_schema2(self):
        ref = "%s/test/docker:v1" % PLAIN.addr
        self.strata("pull", "-q", "--tls-verify=false", ref)
        got = self.inspect(ref)
        self.assertEqual(got["Manifest"]["MediaType"], "application/vnd.docker.distribution.manifest.v2+json")
        self.assertEqual(got["Manifest"]["Digest"], PLAIN.digest("test/docker:v1"))
        other = self.oci_reference_root()
        self.assertEqual(got["RootFS"], self.inspect("localhost/img:v1", root=other)["RootFS"])
        self.assertEqual(self.layer_dumps(self.root), self.layer_dumps(other))

    def test_digest_reference(self):
        dg = PLAIN.digest("test/img:v1")
        ref = "%s/test/img@%s" % (PLAIN.addr, dg)
        r = self.strata("pull", "--tls-verify=false", ref)
        self.assertIn("Digest: " + dg, r.stdout)
        self.assertEqual(self.inspect(ref)["Manifest"]["Digest"], dg)
        self.assertIn("<none>", self.strata("images").stdout)
        r = self.strata("pull", "--tls-verify=false", "%s/test/img@sha256:%s" % (PLAIN.addr, "0" * 64), check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(r.stderr.startswith("strata: "), r.stderr)

    def test_index_and_manifest_list(self):
        lay = os.path.join(self.tmp, "multi")
        make_multi_platform(lay)
        run("skopeo", "copy", "--quiet", "--all", "oci:%s:multi" % lay, "docker://%s/test/multi:oci" % PLAIN.addr,
            "--dest-tls-verify=false")
        run("skopeo", "copy", "--quiet", "--all", "--format", "v2s2", "oci:%s:multi" % lay,
            "docker://%s/test/multi:list" % PLAIN.addr, "--dest-tls-verify=false")
        for tag, mt in (("oci", "application/vnd.oci.image.manifest.v1+json"),
                        ("list", "application/vnd.docker.distribution.manifest.v2+json")):
            ref = "%s/test/multi:%s" % (PLAIN.addr, tag)
            self.strata("pull", "-q", "--tls-verify=false", "--platform", "linux/arm64", ref)
            got = self.inspect(ref)
            self.assertEqual(got["Manifest"]["MediaType"], mt)
            # RepoDigests names the index the tag points at, as docker does.
            self.assertIn("%s/test/multi@%s" % (PLAIN.addr, PLAIN.digest("test/multi:" + tag)), got["RepoDigests"])
            r = self.strata("pull", "--tls-verify=false", "--platform", "linux/s390x", ref, check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("linux/s390x", r.stderr)

    def test_missing_tag_and_repo(self):
        for ref in ("test/img:nosuch", "test/nosuch:v1"):
            r = self.strata("pull", "--tls-verify=false", "%s/%s" % (PLAIN.addr, ref), check=False)
            self.assertNotEqual(r.returncode, 0, ref)
            self.assertIn("HTTP 404", r.stderr)
            self.assertIn("MANIFEST_UNKNOWN", r.stderr)

    def test_tls_verify_default_refuses_plain_http(self):
        r = self.strata("pull", "%s/test/img:v1" % PLAIN.addr, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(PLAIN.addr, r.stderr)

    def test_resume_partial_blob(self):
        """A partial ingest of the largest layer (as a killed pull leaves it) is resumed with Range."""
        other = self.oci_reference_root()
        manifest = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false",
                                  "docker://%s/test/img:v1" % PLAIN.addr).stdout)
        big = max(manifest["layers"], key=lambda l: l["size"])
        hexd = big["digest"].split(":")[1]
        with open(os.path.join(other, "oci", "blobs", "sha256", hexd), "rb") as f:
            data = f.read()
        ingest = os.path.join(self.root, "ingest")
        self.strata("images")  # creates the store
        os.makedirs(ingest, exist_ok=True)
        half = len(data) // 2
        with open(os.path.join(ingest, hexd + ".partial"), "wb") as f:
            f.write(data[:half])
        with open(os.path.join(ingest, hexd + ".json"), "w") as f:
            json.dump({"digest": big["digest"], "offset": half, "size": len(data)}, f)
        with open(PLAIN.log.name) as f:
            f.seek(0, os.SEEK_END)
            self.strata("pull", "-q", "--tls-verify=false", "%s/test/img:v1" % PLAIN.addr)
            time.sleep(0.2)
            log = f.read()
        # distribution logs each response; the resumed blob was a partial one (206 to the Range request).
        self.assertTrue([l for l in log.splitlines() if hexd in l and "http.response.status=206" in l], log)
        self.assertEqual(self.layer_dumps(self.root), self.layer_dumps(other))
        self.assertFalse(os.path.exists(os.path.join(ingest, hexd + ".partial")))

    def test_kill_9_mid_layer_then_resume(self):
        """A pull killed -9 inside a 64 MiB layer leaves nothing of the image visible; the next pull
        resumes the blob with a Range request (206 in the registry's log)."""
        self.interrupt_then_resume("kill")

    def test_registry_going_away_mid_layer_then_resume(self):
        """The registry vanishing inside a layer fails the pull with a clear message and keeps the partial
        blob; the next pull resumes it with a Range request."""
        self.interrupt_then_resume("registry")

    def interrupt_then_resume(self, how):
        lay = os.path.join(self.tmp, "big")
        make_image(lay, "v1", [{"big.bin": os.urandom(64 << 20)}])  # random: gzip cannot shrink it
        PLAIN.push(lay, "v1", "test/big:v1")
        manifest = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false",
                                  "docker://%s/test/big:v1" % PLAIN.addr).stdout)
        hexd = manifest["layers"][-1]["digest"].split(":")[1]
        ingest = os.path.join(self.root, "ingest")
        record = os.path.join(ingest, hexd + ".json")
        proxy = SlowProxy(PLAIN.addr, 8 << 20)
        try:
            p = subprocess.Popen([STRATA, "pull", "--tls-verify=false", "%s/test/big:v1" % proxy.addr],
                                 env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 60
            while True:
                # Killed once a checkpoint recorded a few MiB: what a resume can start from.
                try:
                    if json.load(open(record))["offset"] >= (4 << 20):
                        break
                except (OSError, ValueError, KeyError):
                    pass
                if p.poll() is not None:
                    self.fail("the pull ended before it could be killed: %r, ingest/: %r" %
                              (p.stderr.read(), os.listdir(ingest) if os.path.isdir(ingest) else None))
                self.assertLess(time.monotonic(), deadline, "no ingest record appeared")
                time.sleep(0.01)
            if how == "kill":
                p.kill()
                p.wait()
            else:
                proxy.stop()
                self.assertNotEqual(p.wait(timeout=60), 0)
                err = p.stderr.read().decode()
                self.assertIn("partial download is kept", err)
                self.assertIn(hexd, err)
            p.stderr.close()
        finally:
            proxy.stop()
        self.assertGreater(os.path.getsize(os.path.join(ingest, hexd + ".partial")), 4 << 20)
        self.assertEqual(json.loads(self.strata("images", "--format", "json").stdout), [])
        blobs = os.path.join(self.root, "oci", "blobs", "sha256")
        self.assertEqual(os.listdir(blobs) if os.path.isdir(blobs) else [], [])
        layers = os.path.join(self.root, "layers")
        self.assertEqual([x for x in os.listdir(layers) if not x.startswith(".")] if os.path.isdir(layers) else [], [])
        ref = "%s/test/big:v1" % PLAIN.addr
        with open(PLAIN.log.name) as f:
            f.seek(0, os.SEEK_END)
            self.strata("pull", "-q", "--tls-verify=false", ref)
            time.sleep(0.2)
            log = f.read()
        self.assertTrue([l for l in log.splitlines() if hexd in l and "http.response.status=206" in l], log)
        self.assertFalse(os.path.exists(os.path.join(ingest, hexd + ".partial")))
        with open(os.path.join(blobs, hexd), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), hexd)
        self.assertEqual(self.inspect(ref)["RepoTags"], [ref])

    def test_jobs_give_the_same_store(self):
        ref = "%s/test/img:v1" % PLAIN.addr
        roots = {}
        for jobs in ("1", "4"):
            roots[jobs] = os.path.join(self.tmp, "jobs" + jobs)
            self.strata("pull", "--jobs", jobs, "--tls-verify=false", ref, root=roots[jobs])

        def blobs(root):
            return sorted(os.listdir(os.path.join(root, "oci", "blobs", "sha256")))

        self.assertEqual(blobs(roots["1"]), blobs(roots["4"]))
        self.assertEqual(self.layer_dumps(roots["1"]), self.layer_dumps(roots["4"]))
        a, b = self.inspect(ref, root=roots["1"]), self.inspect(ref, root=roots["4"])
        self.assertEqual(a, b)
        r = self.strata("pull", "--jobs", "0", ref, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--jobs", r.stderr)


class BasicAuth(RegistryCase):
    def test_creds(self):
        ref = "%s/private/img:v1" % AUTH.addr
        r = self.strata("pull", "--tls-verify=false", ref, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("authentication required", r.stderr)
        r = self.strata("pull", "--tls-verify=false", "--creds", USER + ":wrong", ref, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("rejected", r.stderr)
        self.assertIn(USER, r.stderr)
        self.assertFalse(os.path.isdir(os.path.join(self.root, "layers")) and
                         [x for x in os.listdir(os.path.join(self.root, "layers")) if not x.startswith(".")])
        r = self.strata("pull", "--tls-verify=false", "--creds", "%s:%s" % (USER, PASSWORD), ref)
        self.assertEqual(len([l for l in r.stdout.splitlines() if ": pulled " in l]), 3, r.stdout)
        self.assertEqual(self.layer_dumps(self.root), self.layer_dumps(self.oci_reference_root()))

    def test_auth_files(self):
        ref = "%s/private/img:v1" % AUTH.addr
        auth = base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
        docker = os.path.join(self.tmp, ".docker")
        os.makedirs(docker)
        with open(os.path.join(docker, "config.json"), "w") as f:
            json.dump({"auths": {"http://" + AUTH.addr: {"auth": auth}}}, f)
        self.strata("pull", "-q", "--tls-verify=false", ref)
        # $REGISTRY_AUTH_FILE comes first: a wrong password there is used (and rejected).
        bad = os.path.join(self.tmp, "auth.json")
        with open(bad, "w") as f:
            json.dump({"auths": {AUTH.addr: {"auth": base64.b64encode(b"tester:nope").decode()}}}, f)
        r = self.strata("pull", "--tls-verify=false", ref, check=False, env=dict(self.env, REGISTRY_AUTH_FILE=bad))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("rejected", r.stderr)


class Tls(RegistryCase):
    def test_cert_dir_and_verification(self):
        ref = "%s/test/img:v1" % TLS.addr
        r = self.strata("pull", ref, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("certificate", r.stderr.lower())
        self.strata("pull", "-q", "--cert-dir", CADIR, ref)
        self.assertEqual(self.layer_dumps(self.root), self.layer_dumps(self.oci_reference_root()))
        # Unverified TLS (not a fallback to http: the registry only speaks TLS).
        other = os.path.join(self.tmp, "unverified")
        self.strata("pull", "-q", "--tls-verify=false", ref, root=other)
        self.assertEqual(self.layer_dumps(other), self.layer_dumps(self.root))
        r = self.strata("pull", "--cert-dir", os.path.join(self.tmp, "nosuch"), ref, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nosuch", r.stderr)


class Bearer(RegistryCase):
    def test_token_flow(self):
        start = len(TOKENS.requests)
        r = self.strata("pull", "--tls-verify=false", "--creds", "%s:%s" % (USER, PASSWORD),
                        "%s/private/img:v1" % BEARER.addr)
        self.assertEqual(len([l for l in r.stdout.splitlines() if ": pulled " in l]), 3, r.stdout)
        self.assertEqual(self.layer_dumps(self.root), self.layer_dumps(self.oci_reference_root()))
        reqs = TOKENS.requests[start:]
        self.assertTrue(reqs, "no token was requested")
        self.assertTrue(all(q["user"] == USER for q in reqs), reqs)
        self.assertIn(["repository:private/img:pull"], [q["scope"] for q in reqs])

    def test_anonymous_token_and_refusals(self):
        self.strata("pull", "-q", "--tls-verify=false", "%s/public/img:v1" % BEARER.addr)
        r = self.strata("pull", "--tls-verify=false", "%s/private/img:v1" % BEARER.addr, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("authentication required", r.stderr)
        r = self.strata("pull", "--tls-verify=false", "--creds", USER + ":wrong", "%s/private/img:v1" % BEARER.addr,
                        check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("rejected", r.stderr)


class Push(RegistryCase):
    """strata push to the registries above, checked with skopeo and umoci."""

    def pulled(self):
        """The test image in this case's store, pulled from the oci: layout (localhost/img:v1)."""
        self.strata("pull", "-q", "oci:%s:v1" % LAYOUT)
        return "localhost/img:v1"

    def umoci_tree(self, ref):
        bundle = tempfile.mkdtemp(dir=self.tmp)
        os.rmdir(bundle)
        run("umoci", "unpack", "--image", ref, bundle)
        return treedump.dump_text(os.path.join(bundle, "rootfs"))

    def store_manifest_digest(self, image):
        return self.inspect(image)["Manifest"]["Digest"]

    def test_push_inspect_copy_unpack_repush(self):
        img = self.pulled()
        dest = "%s/pushed/img:v1" % PLAIN.addr
        r = self.strata("push", "--tls-verify=false", img, "docker://" + dest)
        pushed = [l for l in r.stdout.splitlines() if ": pushed " in l]
        self.assertEqual(len(pushed), 4, r.stdout)  # 3 layers and the config
        digest = self.store_manifest_digest(img)
        self.assertIn("Digest: " + digest, r.stdout)
        self.assertEqual(PLAIN.digest("pushed/img:v1"), digest)  # the same bytes
        got = json.loads(run("skopeo", "inspect", "--tls-verify=false", "docker://" + dest).stdout)
        self.assertEqual(len(got["Layers"]), 3)
        cfg = json.loads(run("skopeo", "inspect", "--config", "--tls-verify=false", "docker://" + dest).stdout)
        want = json.loads(run("skopeo", "inspect", "--config", "oci:%s:v1" % LAYOUT).stdout)
        self.assertEqual(cfg, want)
        self.assertEqual(len(cfg["history"]), 3)
        self.assertEqual(cfg["rootfs"]["diff_ids"], self.inspect(img)["RootFS"]["Layers"])
        copy = os.path.join(self.tmp, "copy")
        run("skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://" + dest, "oci:%s:v1" % copy)
        self.assertEqual(self.umoci_tree("%s:v1" % copy), self.umoci_tree("%s:v1" % LAYOUT))
        r = self.strata("push", "--tls-verify=false", img, "docker://" + dest)
        exists = [l for l in r.stdout.splitlines() if l.endswith(": already exists")]
        self.assertEqual(len(exists), 4, r.stdout)
        self.assertNotIn(": pushed ", r.stdout)
        # Another tag in another repository of the same registry: blobs uploaded again there.
        r = self.strata("push", "--tls-verify=false", "-q", "--jobs", "1", img, "%s/other/name:v2" % PLAIN.addr)
        self.assertEqual(r.stdout.strip(), "Digest: " + digest)
        self.assertEqual(PLAIN.digest("other/name:v2"), digest)

    def test_default_destination_is_the_name(self):
        ref = "%s/test/img:v1" % PLAIN.addr
        self.strata("pull", "-q", "--tls-verify=false", ref)
        r = self.strata("push", "--tls-verify=false", ref)
        self.assertEqual(len([l for l in r.stdout.splitlines() if l.endswith(": already exists")]), 4, r.stdout)
        self.assertIn(ref, r.stdout)

    def test_docker_schema2_keeps_its_digest(self):
        src = "%s/test/docker:v1" % PLAIN.addr
        self.strata("pull", "-q", "--tls-verify=false", src)
        self.strata("push", "-q", "--tls-verify=false", src, "%s/pushed/docker:v1" % PLAIN.addr)
        self.assertEqual(PLAIN.digest("pushed/docker:v1"), PLAIN.digest("test/docker:v1"))
        raw = run("skopeo", "inspect", "--raw", "--tls-verify=false",
                  "docker://%s/pushed/docker:v1" % PLAIN.addr).stdout
        self.assertEqual(json.loads(raw)["mediaType"], "application/vnd.docker.distribution.manifest.v2+json")

    def test_basic_auth(self):
        img = self.pulled()
        dest = "%s/private/pushed:v1" % AUTH.addr
        r = self.strata("push", "--tls-verify=false", img, dest, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("authentication required", r.stderr)
        self.assertIn(AUTH.addr, r.stderr)
        r = self.strata("push", "--tls-verify=false", "--creds", USER + ":wrong", img, dest, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("rejected", r.stderr)
        self.assertIn(USER, r.stderr)
        self.strata("push", "-q", "--tls-verify=false", "--creds", "%s:%s" % (USER, PASSWORD), img, dest)
        self.assertEqual(AUTH.digest("private/pushed:v1", creds="%s:%s" % (USER, PASSWORD)),
                         self.store_manifest_digest(img))

    def test_auth_file(self):
        img = self.pulled()
        docker = os.path.join(self.tmp, ".docker")
        os.makedirs(docker)
        with open(os.path.join(docker, "config.json"), "w") as f:
            json.dump({"auths": {AUTH.addr: {"auth": base64.b64encode(
                ("%s:%s" % (USER, PASSWORD)).encode()).decode()}}}, f)
        self.strata("push", "-q", "--tls-verify=false", img, "%s/private/fromfile:v1" % AUTH.addr)

    def test_bearer_token(self):
        img = self.pulled()
        start = len(TOKENS.requests)
        self.strata("push", "-q", "--tls-verify=false", "--creds", "%s:%s" % (USER, PASSWORD), img,
                    "%s/private/pushed:v1" % BEARER.addr)
        scopes = [q["scope"] for q in TOKENS.requests[start:]]
        self.assertIn(["repository:private/pushed:pull,push"], scopes)
        self.assertEqual(BEARER.digest("private/pushed:v1", creds="%s:%s" % (USER, PASSWORD)),
                         self.store_manifest_digest(img))
        # Anonymous callers get no push right from the token server: a clear auth error, non-zero.
        r = self.strata("push", "--tls-verify=false", img, "%s/public/anon:v1" % BEARER.addr, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("authentication required", r.stderr)
        r = self.strata("push", "--tls-verify=false", "--creds", USER + ":wrong", img,
                        "%s/private/pushed:v2" % BEARER.addr, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("rejected", r.stderr)

    def test_tls(self):
        img = self.pulled()
        r = self.strata("push", img, "%s/pushed/tls:v1" % TLS.addr, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("certificate", r.stderr.lower())
        self.strata("push", "-q", "--cert-dir", CADIR, img, "%s/pushed/tls:v1" % TLS.addr)
        self.assertEqual(TLS.digest("pushed/tls:v1"), self.store_manifest_digest(img))

    def test_oci_layout_destination(self):
        img = self.pulled()
        out = os.path.join(self.tmp, "out")
        r = self.strata("push", img, "oci:%s:t1" % out)
        self.assertEqual(len([l for l in r.stdout.splitlines() if ": pushed " in l]), 4, r.stdout)
        got = json.loads(run("skopeo", "inspect", "oci:%s:t1" % out).stdout)
        self.assertEqual(got["Digest"], self.store_manifest_digest(img))
        self.assertEqual(self.umoci_tree("%s:t1" % out), self.umoci_tree("%s:v1" % LAYOUT))
        r = self.strata("push", img, "oci:%s:t2" % out)
        self.assertEqual(len([l for l in r.stdout.splitlines() if l.endswith(": already exists")]), 4, r.stdout)
        self.assertEqual(sorted(run("umoci", "ls", "--layout", out).stdout.split()), ["t1", "t2"])
        # The layout pushed on to a registry with skopeo: an interoperable layout.
        run("skopeo", "copy", "--quiet", "oci:%s:t2" % out, "docker://%s/pushed/via-layout:t2" % PLAIN.addr,
            "--dest-tls-verify=false")
        self.assertEqual(PLAIN.digest("pushed/via-layout:t2"), self.store_manifest_digest(img))

    def index_in_store(self, drop_child=False):
        """An OCI index ref in the store, written there by skopeo (pull keeps one platform only); with
        drop_child, a second index whose arm64 entry names a manifest the store lacks."""
        lay = os.path.join(self.tmp, "multi")
        make_multi_platform(lay)
        self.strata("images")  # creates the store
        store_oci = os.path.join(self.root, "oci")
        run("skopeo", "copy", "--quiet", "--all", "oci:%s:multi" % lay, "oci:%s:localhost/multi:1" % store_oci)
        if not drop_child:
            return "localhost/multi:1"
        blobs = os.path.join(store_oci, "blobs", "sha256")
        idx = json.load(open(os.path.join(store_oci, "index.json")))
        entry = [m for m in idx["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] ==
                 "localhost/multi:1"][0]
        sub = json.load(open(os.path.join(blobs, entry["digest"][7:])))
        sub["manifests"][0] = dict(sub["manifests"][0], digest="sha256:" + "1" * 64)
        body = json.dumps(sub).encode()
        dig = hashlib.sha256(body).hexdigest()
        open(os.path.join(blobs, dig), "wb").write(body)
        idx["manifests"].append(dict(entry, digest="sha256:" + dig, size=len(body),
                                     annotations={"org.opencontainers.image.ref.name": "localhost/partial:1"}))
        json.dump(idx, open(os.path.join(store_oci, "index.json"), "w"))
        return "localhost/partial:1"

    def test_index(self):
        img = self.index_in_store()
        self.strata("push", "-q", "--tls-verify=false", img, "%s/pushed/multi:1" % PLAIN.addr)
        raw = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false",
                             "docker://%s/pushed/multi:1" % PLAIN.addr).stdout)
        self.assertEqual(raw["mediaType"], "application/vnd.oci.image.index.v1+json")
        self.strata("pull", "-q", "--tls-verify=false", "--platform", "linux/arm64", "%s/pushed/multi:1" % PLAIN.addr,
                    root=os.path.join(self.tmp, "again"))

    def test_index_with_a_missing_platform_refused(self):
        img = self.index_in_store(drop_child=True)
        r = self.strata("push", "--tls-verify=false", img, "%s/pushed/partial:1" % PLAIN.addr, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("sha256:" + "1" * 64, r.stderr)
        self.assertIn("linux/arm64", r.stderr)
        self.assertIn("not in the store", r.stderr)
        r = run("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://%s/pushed/partial:1" % PLAIN.addr,
                check=False)
        self.assertNotEqual(r.returncode, 0)  # nothing was tagged

    def test_bad_destinations(self):
        img = self.pulled()
        for dest, msg in (("oci-archive:/tmp/x.tar", "DEST"), ("docker://Bad/Name", "parse reference")):
            r = self.strata("push", img, dest, check=False)
            self.assertNotEqual(r.returncode, 0, dest)
            self.assertIn(msg, r.stderr)
        r = self.strata("push", "nosuch:1", "oci:%s" % os.path.join(self.tmp, "o"), check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nosuch", r.stderr)
        r = self.strata("push", "--creds", "a:b", img, "oci:%s" % os.path.join(self.tmp, "o"), check=False)
        self.assertEqual(r.returncode, 2)
        r = self.strata("push", "--tls-verify=false", img, "127.0.0.1:1/x/y:z", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("127.0.0.1:1", r.stderr)


def main():
    global STRATA
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata", required=True)
    ap.add_argument("-k", dest="pattern", action="append")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    STRATA = os.path.abspath(a.strata)
    strata_test.STRATA = STRATA
    return harness.run(__name__, "registry tests", have_facilities(), a.pattern, a.v, cleanup=tearDownModule)


if __name__ == "__main__":
    sys.exit(main())
