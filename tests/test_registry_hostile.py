"""Regression tests for the hostile-input report's registry, archive and reference findings
(#8 unbounded bodies, #14 raw urllib3 errors, #17 no overall deadline, #21 docker-archive
type confusion, #24 port range and secrets in references, #27 size + 1 retried, #13 deep
JSON from a registry).

Every server here is a raw TCP server on 127.0.0.1, port 0, that counts the bytes it
managed to send before the client hung up; deadlines and stall windows are set small so
each test takes about a second.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import tarfile
import threading
import time

import pytest
from registry_helpers import tiny_image as helpers_tiny_image

from ocilearn import cli
from ocilearn.core.errors import (
    ArchiveError,
    AuthError,
    InvalidDocument,
    InvalidReference,
    RegistryError,
    SizeMismatch,
)
from ocilearn.distribution import copy as transfer
from ocilearn.distribution.client import MAX_ERROR_BODY, MAX_PING_BODY, BlobStream, RegistryClient
from ocilearn.image.digest import Digest
from ocilearn.image.model import Descriptor
from ocilearn.image.reference import parse as parse_reference

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ENDLESS = 256 << 20  # bytes an "endless" body stops at, so a regression costs 256 MiB, not the machine
BOUNDED = 32 << 20  # what the server may push into socket buffers before it sees the close


def sha256(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def tiny_image() -> dict:
    return helpers_tiny_image("f.txt", b"hostile registry test\n")


class Conn:
    """One accepted connection: ``send`` counts what really went out."""

    def __init__(self, server: "RawServer", sock: socket.socket) -> None:
        self.server, self.sock = server, sock

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        with self.server.lock:
            self.server.sent += len(data)
        return True

    def head(self, status: str, headers: dict[str, str]) -> bool:
        lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers.items()] + ["Connection: close", "", ""]
        head = "\r\n".join(lines).encode()
        with self.server.lock:
            self.server.head_bytes += len(head)
        return self.send(head)

    def simple(self, status: str, body: bytes, ctype: str = "application/json", extra: dict | None = None) -> None:
        self.head(status, {"Content-Type": ctype, "Content-Length": str(len(body)), **(extra or {})})
        self.send(body)

    def chunked_forever(self, status: str = "200 OK", ctype: str = "application/json") -> None:
        self.head(status, {"Content-Type": ctype, "Transfer-Encoding": "chunked"})
        piece = b"A" * 65536
        frame = b"%x\r\n" % len(piece) + piece + b"\r\n"
        sent = 0
        while sent < ENDLESS and self.send(frame):
            sent += len(piece)
        self.send(b"0\r\n\r\n")

    def trickle(self, data: bytes, every: float) -> None:
        for i in range(len(data)):
            if not self.send(data[i:i + 1]):
                return
            time.sleep(every)


class RawServer:
    """A raw HTTP/1.1 server on 127.0.0.1:0. ``routes`` maps a path prefix to
    ``fn(conn, method, path)``; one request per connection."""

    def __init__(self, routes: dict) -> None:
        self.routes = routes
        self.sent = 0  # bytes sent (headers and bodies)
        self.head_bytes = 0  # of which status lines and headers
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.finished = threading.Event()  # set when a handler returns
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s: socket.socket) -> None:
        try:
            s.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                got = s.recv(4096)
                if not got:
                    return
                data += got
            method, path, _ = data.split(b"\r\n", 1)[0].decode().split(" ", 2)
            self.requests.append((method, path))
            for prefix, fn in sorted(self.routes.items(), key=lambda kv: -len(kv[0])):
                if path.startswith(prefix):
                    fn(Conn(self, s), method, path)
                    break
            else:
                Conn(self, s).simple("404 Not Found", b'{"errors":[{"code":"NOT_FOUND","message":"no route"}]}')
        except OSError:
            pass
        finally:
            s.close()
            self.finished.set()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def raw():
    servers = []

    def make(routes):
        s = RawServer(routes)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def ok_ping(conn, method, path):
    conn.simple("200 OK", b"{}")


def client(host: str, **kw) -> RegistryClient:
    kw.setdefault("use_stored_credentials", False)
    kw.setdefault("backoff", 0.01)
    return RegistryClient(host, **kw)


def wait_sent(srv: RawServer) -> int:
    """The bytes the server had sent when its handler ended (it ends when the client
    closes the connection)."""
    assert srv.finished.wait(10), "the server never saw the client close the connection"
    return srv.sent


# ------------------------------------------------------------------ #8 unbounded bodies


def test_endless_ping_body_is_read_up_to_64k_then_closed(raw):
    srv = raw({"/v2/": lambda c, m, p: c.chunked_forever()})
    started = time.monotonic()
    resp = client(srv.host).ping()
    assert resp.status_code == 200
    assert len(resp.content) == MAX_PING_BODY == 64 * 1024
    sent = wait_sent(srv)
    assert MAX_PING_BODY <= sent < BOUNDED, sent
    assert time.monotonic() - started < 5


def test_endless_error_body_is_capped(raw):
    srv = raw({"/v2/": ok_ping, "/v2/a/manifests/": lambda c, m, p: c.chunked_forever("404 Not Found", "text/html")})
    with pytest.raises(RegistryError, match=rf"GET manifest answered HTTP 404: text/html body of {MAX_ERROR_BODY}\+ bytes"):
        client(srv.host).get_manifest("a", "latest")
    assert MAX_ERROR_BODY <= wait_sent(srv) < BOUNDED


def test_huge_token_answer_is_refused_at_1mib(raw):
    def ping(conn, method, path):
        conn.simple("401 Unauthorized", b"{}", extra={"WWW-Authenticate": f'Bearer realm="http://{srv.host}/token",service="x"'})

    srv = raw({"/v2/": ping, "/token": lambda c, m, p: c.chunked_forever()})
    with pytest.raises(AuthError, match=r"token server http://127\.0\.0\.1:\d+/token: answer is over the 1 MiB limit"):
        client(srv.host).get_manifest("a", "latest")
    assert srv.requests[-1][1].startswith("/token?service=x&scope=repository%3Aa%3Apull")
    assert (1 << 20) <= wait_sent(srv) < BOUNDED


# ------------------------------------------------------------------ #14 raw urllib3 errors


def _lying_manifest(extra: int):
    img = tiny_image()

    def fn(conn, method, path):
        conn.head("200 OK", {"Content-Type": OCI_MANIFEST, "Content-Length": str(len(img["manifest"]) + extra)})
        conn.send(img["manifest"])  # then close: 1000 bytes short

    return img, fn


def test_content_length_lie_on_a_manifest_is_a_registry_error(raw):
    img, fn = _lying_manifest(1000)
    srv = raw({"/v2/": ok_ping, "/v2/a/manifests/": fn})
    n = len(img["manifest"])
    with pytest.raises(RegistryError, match=rf"a:latest: manifest: the body broke off: connection closed "
                                            rf"early \({n} bytes read, 1000 more expected by Content-Length\)"):
        client(srv.host).get_manifest("a", "latest")


def test_read_timeout_while_a_manifest_streams_is_a_registry_error(raw):
    img = tiny_image()

    def fn(conn, method, path):
        conn.head("200 OK", {"Content-Type": OCI_MANIFEST, "Content-Length": str(len(img["manifest"]))})
        conn.send(img["manifest"][:10])
        time.sleep(3)  # silence longer than the client's read timeout

    srv = raw({"/v2/": ok_ping, "/v2/a/manifests/": fn})
    started = time.monotonic()
    with pytest.raises(RegistryError, match=r"a:latest: manifest: the body broke off: read timed out"):
        client(srv.host, timeout=(2, 0.3)).get_manifest("a", "latest")
    assert time.monotonic() - started < 2.5  # read timeout 0.3 s; the server is silent for 3 s


def test_cli_copy_prints_one_line_not_a_traceback(raw, tmp_path, capsys):
    img, fn = _lying_manifest(1000)
    srv = raw({"/v2/": ok_ping, "/v2/a/manifests/": fn})
    rc = cli.run(["copy", "-q", f"docker://{srv.host}/a:latest", f"oci:{tmp_path / 'l'}:x"])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("ocilearn: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "1000 more expected by Content-Length" in err
    index = tmp_path / "l" / "index.json"
    assert not index.exists() or json.loads(index.read_text())["manifests"] == []  # no ref made


def test_blob_whose_body_keeps_breaking_is_a_registry_error_naming_the_cause(raw):
    img = tiny_image()
    layer = img["layer"]

    def blob(conn, method, path):
        conn.head("200 OK", {"Content-Type": "application/octet-stream", "Content-Length": str(len(layer))})
        conn.send(layer[:20])  # then close every time, ignoring Range

    srv = raw({"/v2/": ok_ping, "/v2/a/blobs/": blob})
    desc = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", Digest.parse(sha256(layer)), len(layer))
    with pytest.raises(RegistryError, match=r"blob sha256:\w+: download broke 2 times; last at byte 20: connection closed early"), \
            BlobStream(client(srv.host, retries=1), "a", desc) as s:
        while s.read(1 << 16):
            pass
    assert [p for m, p in srv.requests if "/blobs/" in p] == [f"/v2/a/blobs/{desc.digest}"] * 2


# ------------------------------------------------------------------ #17 deadlines


def test_trickled_manifest_is_cut_at_the_deadline(raw):
    img = tiny_image()

    def fn(conn, method, path):
        conn.head("200 OK", {"Content-Type": OCI_MANIFEST, "Content-Length": str(len(img["manifest"]))})
        conn.trickle(img["manifest"], 0.1)  # under the read timeout, ~50 s in all

    srv = raw({"/v2/": ok_ping, "/v2/a/manifests/": fn})
    started = time.monotonic()
    with pytest.raises(RegistryError, match=r"a:latest: manifest: not received within the 1 s deadline"):
        client(srv.host, deadline=1.0).get_manifest("a", "latest")
    took = time.monotonic() - started
    assert 0.9 < took < 4, took
    body_sent = wait_sent(srv) - srv.head_bytes
    assert 3 <= body_sent <= 15, body_sent  # ~10 bytes in 1 s at 10 bytes/s, then the server saw the close


def test_trickled_headers_are_cut_at_the_deadline(raw):
    def fn(conn, method, path):
        conn.trickle(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"a" * 5000 + b"\r\n\r\n{}", 0.05)

    srv = raw({"/v2/": fn})
    started = time.monotonic()
    with pytest.raises(RegistryError, match=r"GET http://127\.0\.0\.1:\d+/v2/: no complete answer within the 1 s deadline"):
        client(srv.host, deadline=1.0, timeout=(2, 10)).ping()
    took = time.monotonic() - started
    assert 0.9 < took < 4, took
    assert wait_sent(srv) < 100  # 1 s of 20 bytes/s, then the server saw the close


def test_trickled_token_is_cut_at_the_deadline(raw):
    def ping(conn, method, path):
        conn.simple("401 Unauthorized", b"{}", extra={"WWW-Authenticate": f'Bearer realm="http://{srv.host}/token",service="x"'})

    def token(conn, method, path):
        body = json.dumps({"token": "T" * 200}).encode()
        conn.head("200 OK", {"Content-Type": "application/json", "Content-Length": str(len(body))})
        conn.trickle(body, 0.05)

    srv = raw({"/v2/": ping, "/token": token})
    started = time.monotonic()
    with pytest.raises(RegistryError, match=r"token server http://127\.0\.0\.1:\d+/token: not received within the 1 s deadline"):
        client(srv.host, deadline=1.0).get_manifest("a", "latest")
    assert time.monotonic() - started < 4  # the token alone takes 10 s to trickle


def test_trickled_blob_breaks_the_throughput_rule(raw):
    img = tiny_image()
    layer = img["layer"]

    def blob(conn, method, path):
        conn.head("200 OK", {"Content-Type": "application/octet-stream", "Content-Length": str(len(layer))})
        conn.trickle(layer, 0.05)  # 20 bytes/s

    srv = raw({"/v2/": ok_ping, "/v2/a/blobs/": blob})
    desc = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", Digest.parse(sha256(layer)), len(layer))
    c = client(srv.host, retries=1, blob_stall_seconds=0.5, blob_stall_bytes=100)
    started = time.monotonic()
    got = b""
    with pytest.raises(RegistryError, match=r"download broke 2 times; last at byte \d+: stalled: \d+ bytes in 0\.5 s, "
                                            r"under the minimum of 100 bytes per 0\.5 s"), BlobStream(c, "a", desc) as s:
        while data := s.read(1 << 16):
            got += data
    took = time.monotonic() - started
    assert 0.9 < took < 4, took
    assert got == layer[:len(got)] and len(got) < len(layer)  # what arrived is kept, in order


def test_silent_blob_server_is_cut_after_the_stall_window(raw):
    layer = tiny_image()["layer"]

    def blob(conn, method, path):
        conn.head("200 OK", {"Content-Type": "application/octet-stream", "Content-Length": str(len(layer))})
        time.sleep(5)

    srv = raw({"/v2/": ok_ping, "/v2/a/blobs/": blob})
    desc = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", Digest.parse(sha256(layer)), len(layer))
    c = client(srv.host, retries=0, blob_stall_seconds=0.5, timeout=(2, 60))
    started = time.monotonic()
    with pytest.raises(RegistryError, match=r"download broke 1 times; last at byte 0: read timed out"), BlobStream(c, "a", desc) as s:
        s.read(1 << 16)
    assert time.monotonic() - started < 3  # the server is silent for 5 s


def test_slow_reader_is_not_a_stalled_download(raw):
    """Only time spent waiting for the network counts: a consumer that pauses between
    reads longer than the window (a slow disk) does not trip the rule."""
    blob = bytes(range(256)) * 20

    def fn(conn, method, path):
        conn.simple("200 OK", blob, "application/octet-stream")

    srv = raw({"/v2/": ok_ping, "/v2/a/blobs/": fn})
    desc = Descriptor("application/octet-stream", Digest.parse(sha256(blob)), len(blob))
    c = client(srv.host, retries=0, blob_stall_seconds=0.2, blob_stall_bytes=1 << 20)
    out = b""
    with BlobStream(c, "a", desc) as s:
        while data := s.read(1000):
            out += data
            time.sleep(0.25)
    assert out == blob and s.resumes == 0


# ------------------------------------------------------------------ #27 size + 1


def test_descriptor_one_byte_larger_than_a_complete_blob_is_a_size_mismatch(raw):
    layer = tiny_image()["layer"]

    def fn(conn, method, path):
        conn.simple("200 OK", layer, "application/octet-stream")

    srv = raw({"/v2/": ok_ping, "/v2/a/blobs/": fn})
    desc = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", Digest.parse(sha256(layer)), len(layer) + 1)
    started = time.monotonic()
    with pytest.raises(SizeMismatch, match=rf"descriptor says {len(layer) + 1} bytes, got {len(layer)}"), \
            BlobStream(client(srv.host, backoff=0.5), "a", desc) as s:
        while s.read(1 << 16):
            pass
    assert [p for m, p in srv.requests if "/blobs/" in p] == [f"/v2/a/blobs/{desc.digest}"]  # no retries
    assert time.monotonic() - started < 2  # a retry would also show in the request log above


# ------------------------------------------------------------------ #13 deep JSON from a registry


def test_deeply_nested_manifest_from_a_registry_is_an_invalid_document(raw):
    body = b'{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST.encode() + b'","annotations":{"x":' + b"[" * 200000 + b"]" * 200000 + b"}}"

    def fn(conn, method, path):
        conn.simple("200 OK", body, OCI_MANIFEST)

    srv = raw({"/v2/": ok_ping, "/v2/a/manifests/": fn})
    with pytest.raises(InvalidDocument, match="nested too deeply"):
        client(srv.host).get_manifest("a", "latest")


# ------------------------------------------------------------------ #14 the CLI never shows a traceback


def test_cli_copy_turns_an_unmapped_library_exception_into_one_line(monkeypatch, tmp_path, capsys):
    import urllib3

    def boom(*a, **kw):
        raise urllib3.exceptions.ProtocolError("Connection broken: InvalidChunkLength(got length b'zz', 0 bytes read)")

    monkeypatch.setattr(transfer, "copy", boom)
    rc = cli.run(["copy", "-q", "docker://127.0.0.1:1/a:latest", f"oci:{tmp_path / 'l'}:x"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("ocilearn: error: copy docker://127.0.0.1:1/a:latest -> oci:")
    assert "urllib3.exceptions.ProtocolError: Connection broken: InvalidChunkLength" in err and "--debug" in err
    with pytest.raises(urllib3.exceptions.ProtocolError):  # --debug: the real exception, for a bug report
        cli.run(["--debug", "copy", "-q", "docker://127.0.0.1:1/a:latest", f"oci:{tmp_path / 'l'}:x"])


# ------------------------------------------------------------------ #24 references


@pytest.mark.parametrize("port", ["99999", "65536", "0", "1" * 5000])
def test_registry_port_out_of_range_is_an_invalid_reference(port):
    with pytest.raises(InvalidReference, match=rf"registry port {port} is out of range \(1-65535\)"):
        parse_reference(f"127.0.0.1:{port}/a:latest")
    assert parse_reference("127.0.0.1:65535/a").registry == "127.0.0.1:65535"


def test_password_typed_into_a_reference_is_never_echoed(tmp_path, capsys):
    with pytest.raises(InvalidReference) as ei:
        parse_reference("user:hunter2@127.0.0.1:5000/a:latest")
    assert "hunter2" not in str(ei.value) and "user" not in str(ei.value).split("@")[0].replace("<redacted>", "")
    assert "'<redacted>@127.0.0.1:5000/a:latest'" in str(ei.value) and "--creds" in str(ei.value)
    # a digest's '@' comes after the repository: still fine
    assert str(parse_reference("127.0.0.1:5000/a@sha256:" + "a" * 64).digest) == "sha256:" + "a" * 64
    for argv in (["copy", "docker://user:hunter2@127.0.0.1:5000/a:latest", f"oci:{tmp_path}/l:x"],
                 ["copy", "docker://127.0.0.1:99999/a:latest", f"oci:{tmp_path}/l:x"]):
        rc = cli.run(argv)
        err = capsys.readouterr().err
        assert rc == 1 and err.startswith("ocilearn: error: invalid reference") and err.count("\n") == 1, err
        assert "hunter2" not in err and "Traceback" not in err


# ------------------------------------------------------------------ #21 docker-archive manifest.json types


def _archive(tmp_path, manifest_json: bytes, extra: dict[str, bytes] | None = None):
    p = tmp_path / "a.tar"
    with tarfile.open(p, "w") as t:
        for name, data in {"manifest.json": manifest_json, **(extra or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return p


_CFG = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()


@pytest.mark.parametrize(("manifest_json", "message"), [
    (b"[" * 100000 + b"]" * 100000, r"manifest\.json: JSON nested too deeply to parse"),
    (json.dumps([{"Config": "c.json", "Layers": [5]}]).encode(), r"manifest\.json entry 0: 'Layers' must be a list of strings, got \[5\]"),
    (json.dumps([{"Config": "c.json", "RepoTags": 5, "Layers": []}]).encode(), r"entry 0: 'RepoTags' must be a list of strings, got 5"),
    (json.dumps([{"Config": ["c.json"], "Layers": []}]).encode(), r"entry 0: 'Config' must be a string"),
    (json.dumps([{"Config": "c.json", "Layers": []}, 7]).encode(), r"manifest\.json entry 1 is a int, not a JSON object"),
])
def test_hostile_manifest_json_is_an_archive_error(tmp_path, manifest_json, message):
    p = _archive(tmp_path, manifest_json, {"c.json": _CFG})
    with pytest.raises(ArchiveError, match=message):
        transfer.copy(f"docker-archive:{p}", f"oci:{tmp_path / 'l'}:x")
    assert not (tmp_path / "l").exists() or json.loads((tmp_path / "l" / "index.json").read_text())["manifests"] == []


def test_truncated_archive_is_an_archive_error(tmp_path):
    whole = _archive(tmp_path, json.dumps([{"Config": "c.json", "Layers": []}]).encode(), {"c.json": _CFG, "pad": bytes(5000)}).read_bytes()
    (tmp_path / "cut.tar").write_bytes(whole[:1700])  # inside the last member's data
    with pytest.raises(ArchiveError, match=r"cut\.tar: damaged tar archive \(ReadError: unexpected end of data\)"):
        transfer.copy(f"docker-archive:{tmp_path / 'cut.tar'}", f"oci:{tmp_path / 'l'}:x")


# ------------------------------------------------------------------ #30 tags/list pagination


def test_tags_link_loop_is_refused_after_one_round(raw):
    page = json.dumps({"name": "a", "tags": [f"t{i}" for i in range(1000)]}).encode()

    def fn(conn, method, path):
        conn.simple("200 OK", page, extra={"Link": '</v2/a/tags/list?n=1000>; rel="next"'})

    srv = raw({"/v2/": ok_ping, "/v2/a/tags/list": fn})
    with pytest.raises(RegistryError, match=r"points back to a page already read \(http://127\.0\.0\.1:\d+/v2/a/tags/list\?n=1000\): a pagination loop"):
        client(srv.host).tags("a")
    assert [p for m, p in srv.requests if "tags" in p] == ["/v2/a/tags/list", "/v2/a/tags/list?n=1000"]


def test_endless_distinct_pages_stop_at_the_page_cap(raw):
    def fn(conn, method, path):
        n = int(path.partition("last=")[2] or 0)
        conn.simple("200 OK", json.dumps({"tags": [f"t{n}"]}).encode(), extra={"Link": f'</v2/a/tags/list?last={n + 1}>; rel="next"'})

    srv = raw({"/v2/": ok_ping, "/v2/a/tags/list": fn})
    with pytest.raises(RegistryError, match=r"tags/list: more than 5 pages; stopped"):
        client(srv.host).tags("a", max_pages=5)
    assert len([p for m, p in srv.requests if "tags" in p]) == 5


@pytest.mark.parametrize(("body", "ctype", "link", "message"), [
    (b"<html>login</html>", "text/html", None, r"tags/list answered with no JSON object \(text/html, 18 bytes\)"),
    (b'{"tags": [1, 2]}', "application/json", None, r"'tags' is not a list of strings"),
    (b'{"tags": ["a"]}', "application/json", '<http://127.0.0.2:1/v2/a/tags/list?last=a>; rel="next"',
     r"the Link to the next page leaves the registry \(http://127\.0\.0\.2:1/v2/a/tags/list\?last=a\); refused"),
])
def test_bad_tag_pages_are_registry_errors(raw, body, ctype, link, message):
    def fn(conn, method, path):
        conn.simple("200 OK", body, ctype, extra={"Link": link} if link else None)

    srv = raw({"/v2/": ok_ping, "/v2/a/tags/list": fn})
    with pytest.raises(RegistryError, match=message):
        client(srv.host).tags("a")


def test_tag_pages_are_followed_to_the_end(raw):
    def fn(conn, method, path):
        n = int(path.partition("last=")[2] or 0)
        extra = {"Link": f'</v2/a/tags/list?last={n + 1}>; rel="next"'} if n < 2 else None
        conn.simple("200 OK", json.dumps({"tags": [f"t{n}a", f"t{n}b"]}).encode(), extra=extra)

    srv = raw({"/v2/": ok_ping, "/v2/a/tags/list": fn})
    assert client(srv.host).tags("a") == ["t0a", "t0b", "t1a", "t1b", "t2a", "t2b"]


# ------------------------------------------------------------------ #14 more malformed answers


def _manifest_route(kind: str):
    def fn(conn, method, path):
        if kind == "two-lengths":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n0123456")
        elif kind == "bad-chunk":
            conn.head("200 OK", {"Content-Type": OCI_MANIFEST, "Transfer-Encoding": "chunked"})
            conn.send(b"zz\r\nabc\r\n")
        elif kind == "bad-redirect":
            conn.simple("307 Temporary Redirect", b"", extra={"Location": "http://[::1/x"})
        elif kind == "redirect-bad-port":
            conn.simple("307 Temporary Redirect", b"", extra={"Location": "http://127.0.0.1:99999/x"})
        elif kind == "bad-realm":
            conn.simple("401 Unauthorized", b"{}", extra={"WWW-Authenticate": 'Bearer realm="http://[::1/token",service="x"'})

    return fn


@pytest.mark.parametrize(("kind", "error", "message"), [
    ("two-lengths", RegistryError, r"GET http://127\.0\.0\.1:\d+/v2/a/manifests/latest: InvalidHeader: Content-Length contained multiple unmatching values"),
    ("bad-chunk", RegistryError, r"a:latest: manifest: the body broke off: the chunked body is malformed or was cut short"),
    ("bad-redirect", RegistryError, r"GET http://127\.0\.0\.1:\d+/v2/a/manifests/latest: ValueError: Invalid IPv6 URL"),
    ("redirect-bad-port", RegistryError, r"redirect to an invalid URL 'http://127\.0\.0\.1:99999/x' refused"),
    ("bad-realm", AuthError, r"Bearer challenge has no usable realm"),
])
def test_malformed_http_answers_are_ocilearn_errors(raw, kind, error, message):
    srv = raw({"/v2/": ok_ping, "/v2/a/manifests/": _manifest_route(kind)})
    with pytest.raises(error, match=message):
        client(srv.host, retries=0).get_manifest("a", "latest")


def test_huge_config_is_refused_before_reading_when_writing_a_docker_archive(tmp_path):
    from ocilearn.image.layout import ImageLayout

    lay = ImageLayout.init(tmp_path / "src")
    big = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x":"' + b"y" * (5 << 20) + b'"}'
    cfg_digest, cfg_size = lay.put_blob(big)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [],
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": str(cfg_digest), "size": cfg_size}}).encode()
    lay.add_ref("x", lay.put_json(OCI_MANIFEST, manifest))
    with pytest.raises(ArchiveError, match=rf"config {cfg_digest} is {cfg_size} bytes, over the 4194304-byte limit"):
        transfer.copy(f"oci:{tmp_path / 'src'}:x", f"docker-archive:{tmp_path / 'out.tar'}:a:x")
    assert not (tmp_path / "out.tar").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-archive-")] == []  # stage removed


def test_cli_copy_deadline_option_cuts_a_trickling_registry(raw, tmp_path, capsys):
    img = tiny_image()

    def fn(conn, method, path):
        conn.head("200 OK", {"Content-Type": OCI_MANIFEST, "Content-Length": str(len(img["manifest"]))})
        conn.trickle(img["manifest"], 0.1)

    srv = raw({"/v2/": ok_ping, "/v2/a/manifests/": fn})
    started = time.monotonic()
    rc = cli.run(["copy", "-q", "--deadline", "1", f"docker://{srv.host}/a:latest", f"oci:{tmp_path / 'l'}:x"])
    err = capsys.readouterr().err
    assert rc == 1 and time.monotonic() - started < 4
    assert err.startswith("ocilearn: error: ") and "a:latest: manifest: not received within the 1 s deadline" in err, err
    assert cli.run(["copy", "--deadline", "0", f"docker://{srv.host}/a:latest", f"oci:{tmp_path / 'l'}:x"]) == 2  # refused by click
