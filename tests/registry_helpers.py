"""Real registries and small HTTP servers for the registry/transfer tests.

* :func:`start_registry` runs Debian's ``docker-registry`` (distribution 2.8) through
  ``scripts/start-registry.sh`` on 127.0.0.1 (ports 5010–5014 for tests): plain HTTP,
  htpasswd Basic over TLS (a CA made here with ``openssl``), or token auth.
* :class:`TokenServer` is a Docker-token-spec server: it signs ES256 JWTs with a key it
  generates (``openssl``), with the certificate in the ``x5c`` header; the registry trusts
  that certificate through ``rootcertbundle``.
* :class:`FaultProxy` sits between a client and a registry and injects faults: a reset in
  the middle of a blob, 429 with Retry-After, 500s, a corrupted blob, a redirect to
  another host (127.0.0.2), an HTML page instead of a manifest.
* :class:`Stub` is a tiny scripted registry (``http.server``) that logs every request.

Everything binds loopback only.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import io
import json
import os
import re
import socket
import subprocess
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "start-registry.sh"


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise AssertionError(f"command failed ({p.returncode}): {' '.join(map(str, cmd))}\n{p.stdout}\n{p.stderr}")
    return p


# ------------------------------------------------------------------ real registry


@dataclass
class Registry:
    port: int
    storage: Path
    rundir: Path
    scheme: str = "http"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/v2/") -> str:
        return f"{self.scheme}://{self.host}{path}"

    def log(self) -> str:
        p = self.rundir / str(self.port) / "registry.log"
        return p.read_text() if p.exists() else ""

    def stop(self) -> None:
        subprocess.run([str(SCRIPT), "stop", str(self.port)], env=_env(self.rundir), capture_output=True, text=True)


def _env(rundir: Path) -> dict:
    env = dict(os.environ)
    env["OCILEARN_REGISTRY_RUNDIR"] = str(rundir)
    return env


def start_registry(port: int, base: Path, *, htpasswd: Path | None = None, tls: tuple[Path, Path] | None = None,
                   token: tuple[str, str, str, Path] | None = None) -> Registry:
    """Start a registry on 127.0.0.1:``port`` with state under ``base``."""
    storage, rundir = base / f"storage-{port}", base / "run"
    cmd = [str(SCRIPT), "start", str(port), str(storage)]
    if htpasswd:
        cmd += ["--htpasswd", str(htpasswd)]
    if tls:
        cmd += ["--tls", str(tls[0]), str(tls[1])]
    if token:
        cmd += ["--token", token[0], token[1], token[2], str(token[3])]
    sh(cmd, env=_env(rundir))
    return Registry(port, storage, rundir, "https" if tls else "http")


def start_registry_any(ports: list[int], base: Path, **kw) -> Registry:
    """:func:`start_registry` on the first of ``ports`` that is free (another test run on
    this machine may hold one)."""
    errors = []
    for port in ports:
        try:
            return start_registry(port, base, **kw)
        except AssertionError as e:
            if "already answers" not in str(e):
                raise
            errors.append(f"{port}: busy")
    raise AssertionError(f"no free registry port among {ports}: {', '.join(errors)}")


def make_ca(d: Path) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost, made with openssl.
    Returns paths: ca, ca_key, cert, key."""
    d.mkdir(parents=True, exist_ok=True)
    ca, ca_key, key, csr, cert, ext = (d / n for n in ("ca.pem", "ca.key", "server.key", "server.csr", "server.pem", "ext.cnf"))
    sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-subj", "/CN=ocilearn test CA", "-keyout", str(ca_key), "-out", str(ca)])
    sh(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr)])
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    sh(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-extfile", str(ext), "-out", str(cert)])
    return {"ca": ca, "ca_key": ca_key, "cert": cert, "key": key}


def htpasswd_file(path: Path, user: str, password: str) -> Path:
    out = sh(["htpasswd", "-Bbn", user, password]).stdout
    path.write_text(out)
    return path


# ------------------------------------------------------------------ token server


def _b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _der_to_raw(sig: bytes) -> bytes:
    """ECDSA DER signature → JOSE r||s (32 bytes each)."""
    assert sig[0] == 0x30
    i = 2 if sig[1] < 0x80 else 2 + (sig[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert sig[i] == 0x02
        n = sig[i + 1]
        v = sig[i + 2: i + 2 + n]
        out += v.lstrip(b"\x00").rjust(32, b"\x00")
        i += 2 + n
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class TokenServer:
    """A Docker token server (distribution docs/spec/auth/token.md) on 127.0.0.1.

    ``users``: name → password (Basic on the token request); anonymous requests get
    ``anonymous_actions`` (e.g. ``["pull"]``) on any repository. ``requests`` records each
    token request: method, query/form pairs, the user. ``expires_in`` seconds.
    """

    def __init__(self, d: Path, service: str, users: dict[str, str], anonymous_actions: list[str] | None = None,
                 expires_in: int = 300, require_post: bool = False) -> None:
        self.dir = d
        d.mkdir(parents=True, exist_ok=True)
        self.key, self.cert = d / "token.key", d / "token.pem"
        sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=ocilearn token issuer", "-keyout", str(self.key), "-out", str(self.cert)])
        p = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"], capture_output=True, check=True)
        self.cert_der = p.stdout
        self.service, self.users, self.issuer = service, users, "ocilearn-token-issuer"
        self.anonymous_actions = anonymous_actions or []
        self.expires_in, self.require_post = expires_in, require_post
        self.requests: list[dict] = []
        self.refresh_tokens: dict[str, str] = {}  # OAuth2 refresh token -> user
        self.issued = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _answer(self, params: list[tuple[str, str]], method: str) -> None:
                user = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    u, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                    if outer.users.get(u) != pw:
                        outer.requests.append({"method": method, "params": params, "user": u, "denied": True})
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = u
                if method == "POST":
                    form = dict(params)
                    if form.get("grant_type") == "refresh_token":
                        user = outer.refresh_tokens.get(form.get("refresh_token", ""))
                        if user is None:
                            self.send_response(401)
                            self.end_headers()
                            return
                    if form.get("grant_type") == "password":
                        if outer.users.get(form.get("username", "")) != form.get("password"):
                            self.send_response(401)
                            self.end_headers()
                            return
                        user = form["username"]
                    scopes = form.get("scope", "").split()
                else:
                    if outer.require_post:
                        self.send_response(405)
                        self.end_headers()
                        return
                    scopes = [v for k, v in params if k == "scope"]
                outer.requests.append({"method": method, "params": params, "user": user, "scopes": scopes})
                access = []
                for s in scopes:
                    typ, _, rest = s.partition(":")
                    name, _, actions = rest.rpartition(":")
                    allowed = actions.split(",") if user else [a for a in actions.split(",") if a in outer.anonymous_actions]
                    access.append({"type": typ, "name": name, "actions": allowed})
                body = json.dumps({"token": outer.sign(user or "", access), "expires_in": outer.expires_in}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                q = parse_qsl(urlsplit(self.path).query, keep_blank_values=True)
                self._answer(q, "GET")

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                self._answer(parse_qsl(self.rfile.read(n).decode(), keep_blank_values=True), "POST")

        self.server = _Server(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.realm = f"http://127.0.0.1:{self.port}/token"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def sign(self, subject: str, access: list[dict]) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + self.expires_in, "nbf": now - 5,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}".encode()
        p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input, capture_output=True, check=True)
        self.issued += 1
        return f"{signing_input.decode()}.{_b64url(_der_to_raw(p.stdout))}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------ fault proxy


@dataclass
class Fault:
    """One fault: requests whose method and path match get ``action`` (``times`` times).

    actions: ``reset`` (half the body, then the connection is cut), ``429`` (Retry-After:
    ``retry_after``), ``500``, ``corrupt`` (a byte flipped), ``redirect`` (307 to the
    other-host blob server), ``html`` (200 text/html page), ``nodigest`` (drop the
    Docker-Content-Digest header)."""

    action: str
    path: str = ".*"
    method: str = "GET"
    times: int = 1
    retry_after: str = "1"
    hits: int = 0


@dataclass
class Logged:
    method: str
    path: str
    headers: dict
    status: int = 0
    host: str = ""


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of ``upstream`` (``host:port``, plain HTTP)
    that injects :class:`Fault` s. ``other`` is a server on 127.0.0.2 that serves blobs
    redirected there and records whether an ``Authorization`` header arrived."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.log: list[Logged] = []
        self.other_log: list[Logged] = []
        self._stash: dict[str, bytes] = {}
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _upstream(self, method: str, body: bytes | None):
                c = http.client.HTTPConnection(outer.upstream, timeout=30)
                hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                c.request(method, self.path, body=body, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                c.close()
                return r.status, [(k, v) for k, v in r.getheaders() if k.lower() not in ("connection", "transfer-encoding")], data

            def _handle(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                entry = Logged(method, self.path, dict(self.headers))
                outer.log.append(entry)
                fault = outer._match(method, self.path)
                if fault and fault.action in ("429", "500"):
                    entry.status = int(fault.action)
                    self.send_response(entry.status)
                    if fault.action == "429":
                        self.send_header("Retry-After", fault.retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault and fault.action == "html":
                    page = b"<html><body><h1>Welcome to the hotel wifi</h1><p>Please log in.</p></body></html>"
                    entry.status = 200
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    if method != "HEAD":
                        self.wfile.write(page)
                    return
                status, headers, data = self._upstream(method, body)
                entry.status = status
                if fault and fault.action == "redirect" and status == 200:
                    key = uuid.uuid4().hex
                    outer._stash[key] = data
                    self.send_response(307)
                    self.send_header("Location", f"http://127.0.0.2:{outer.other_port}/blob/{key}?X-Amz-Signature=s3cr3tsig&X-Amz-Expires=60")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    entry.status = 307
                    return
                if fault and fault.action == "corrupt" and data:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                if fault and fault.action == "nodigest":
                    headers = [(k, v) for k, v in headers if k.lower() != "docker-content-digest"]
                self.send_response(status)
                for k, v in headers:
                    if k.lower() == "content-length":
                        continue
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if method == "HEAD":
                    return
                if fault and fault.action == "reset" and len(data) > 1:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    time.sleep(0.5)  # let the client receive the first half before the reset
                    # an abrupt close: RST instead of FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.close_connection = True
                    self.connection.close()
                    return
                self.wfile.write(data)

            def do_GET(self):
                self._handle("GET")

            def do_HEAD(self):
                self._handle("HEAD")

            def do_PUT(self):
                self._handle("PUT")

            def do_POST(self):
                self._handle("POST")

            def do_PATCH(self):
                self._handle("PATCH")

        class Other(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                entry = Logged("GET", self.path, dict(self.headers), host=self.headers.get("Host", ""))
                outer.other_log.append(entry)
                if self.headers.get("Authorization"):
                    msg = (b"<?xml version=\"1.0\"?><Error><Code>InvalidArgument</Code><Message>Only one auth mechanism "
                           b"allowed</Message></Error>")
                    entry.status = 400
                    self.send_response(400)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                key = self.path.split("/blob/")[-1].split("?")[0]
                data = outer._stash.get(key)
                entry.status = 200 if data is not None else 404
                self.send_response(entry.status)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

        self.server = _Server(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.other = _Server(("127.0.0.2", 0), Other)
        self.other_port = self.other.server_address[1]
        for s in (self.server, self.other):
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _match(self, method: str, path: str) -> Fault | None:
        for f in self.faults:
            if f.hits < f.times and f.method == method and re.search(f.path, path):
                f.hits += 1
                return f
        return None

    def close(self) -> None:
        for s in (self.server, self.other):
            s.shutdown()
            s.server_close()


# ------------------------------------------------------------------ scripted stub


class Stub:
    """A scripted HTTP server on ``bind`` (127.0.0.1 by default): ``routes`` maps
    ``(method, path)`` (path without query) to a function ``handler(req) -> (status,
    headers, body)`` or to a fixed tuple; ``log`` records (method, full path, headers)."""

    def __init__(self, routes: dict | None = None, bind: str = "127.0.0.1") -> None:
        self.routes: dict = routes or {}
        self.log: list[Logged] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _do(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(n) if n else b""
                outer.log.append(Logged(method, self.path, dict(self.headers)))
                route = outer.routes.get((method, urlsplit(self.path).path))
                if route is None:
                    status, headers, body = 404, {"Content-Type": "application/json"}, b'{"errors":[{"code":"NOT_FOUND"}]}'
                elif callable(route):
                    status, headers, body = route(self)
                else:
                    status, headers, body = route
                outer.log[-1].status = status
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(body)

            def do_GET(self):
                self._do("GET")

            def do_HEAD(self):
                self._do("HEAD")

            def do_POST(self):
                self._do("POST")

        self.server = _Server((bind, 0), H)
        self.port = self.server.server_address[1]
        self.host = f"{bind}:{self.port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def sha256(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def tiny_image(name: str = "hello.txt", data: bytes = b"hello from a stub registry\n") -> dict[str, bytes]:
    """A real one-layer image made in memory for stub registries: ``{"layer": tar.gz,
    "config": bytes, "manifest": bytes}``, with the config's diff ID and the manifest's
    digests and sizes computed from the bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    tar = buf.getvalue()
    layer = gzip.compress(tar, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(layer), "size": len(layer)}],
    }).encode()
    return {"layer": layer, "config": config, "manifest": manifest}


@dataclass
class SkopeoResult:
    manifest_digest: str
    blobs: set[str] = field(default_factory=set)


def layout_blobs(path: Path) -> set[str]:
    """Every blob digest in an OCI layout (``sha256:<hex>``), temp files excluded."""
    root = path / "blobs" / "sha256"
    return {f"sha256:{p.name}" for p in root.iterdir() if not p.name.startswith(".")} if root.is_dir() else set()


def top_digest(path: Path, ref: str | None = None) -> str:
    idx = json.loads((path / "index.json").read_text())
    for m in idx["manifests"]:
        if ref is None or (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") == ref:
            return m["digest"]
    raise AssertionError(f"{path}: no ref {ref}")


def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False
