"""The registry client's HTTP layer (ocilearn.distribution.httpconn, on http.client):
kept-alive connections reused across requests and threads, an idle connection the server
closed replaced without an error, repeated headers joined, Link headers parsed."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from registry_helpers import tiny_image

from ocilearn.distribution.client import RegistryClient
from ocilearn.distribution.httpconn import Headers, HTTPPool, parse_links

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def keepalive_server():
    """An HTTP/1.1 server on loopback that keeps connections open and records, per
    request, the client's port (one port = one TCP connection)."""
    img = tiny_image("f.txt", b"keep-alive test\n")
    seen: list[tuple[int, str]] = []

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            seen.append((self.client_address[1], self.path))
            if self.path == "/v2/":
                body, ctype = b"{}", "application/json"
            elif "/manifests/" in self.path:
                body, ctype = img["manifest"], OCI_MANIFEST
            else:
                body, ctype = b'{"errors":[{"code":"NOT_FOUND","message":"x"}]}', "application/json"
                self.send_response(404)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{srv.server_address[1]}", seen, img
    srv.shutdown()
    srv.server_close()


def test_one_connection_serves_sequential_requests(keepalive_server):
    host, seen, img = keepalive_server
    c = RegistryClient(host, use_stored_credentials=False)
    for _ in range(3):
        assert c.get_manifest("a", "latest").raw == img["manifest"]
    assert [p for _, p in seen] == ["/v2/"] + ["/v2/a/manifests/latest"] * 3
    assert len({port for port, _ in seen}) == 1  # ping and three manifests over one TCP connection


def test_threads_share_the_pool_without_mixing_answers(keepalive_server):
    host, seen, img = keepalive_server
    c = RegistryClient(host, use_stored_credentials=False)
    c.ping()
    got: list[bytes] = []
    errors: list[BaseException] = []

    def work():
        try:
            for _ in range(5):
                got.append(c.get_manifest("a", "latest").raw)
        except BaseException as e:  # noqa: B036 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and got == [img["manifest"]] * 20
    assert len({port for port, _ in seen}) <= 4 + 1  # at most one connection per thread (+ the ping's, reused)


def test_an_idle_connection_the_server_closed_is_replaced():
    """A server that answers one request per connection without saying
    ``Connection: close``, then closes it: the next request goes out on a new connection,
    with no error and no retry counted as a failure."""
    body = b"{}"
    ports: list[int] = []
    lsock = socket.create_server(("127.0.0.1", 0))
    port = lsock.getsockname()[1]

    def serve():
        while True:
            try:
                s, addr = lsock.accept()
            except OSError:
                return
            with s:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                if data:
                    ports.append(addr[1])
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n" + body)

    threading.Thread(target=serve, daemon=True).start()
    try:
        pool = HTTPPool("test")
        for _ in range(3):
            with pool.request("GET", f"http://127.0.0.1:{port}/v2/", timeout=(5, 5)) as r:
                assert (r.status_code, r.read1(100), r.read1(100)) == (200, body, b"")
        assert len(ports) == 3 and len(set(ports)) == 3
    finally:
        lsock.close()


def test_repeated_headers_are_joined_and_read_in_any_case():
    h = Headers([("WWW-Authenticate", 'Bearer realm="https://a/token"'), ("www-authenticate", 'Basic realm="r"'),
                 ("Content-Length", "5")])
    assert h.get("Www-Authenticate") == 'Bearer realm="https://a/token", Basic realm="r"'
    assert h["content-length"] == "5" and "CONTENT-LENGTH" in h and h.get("Location") is None


def test_link_header_is_parsed_like_rfc_8288():
    links = parse_links('</v2/a/tags/list?n=2&last=b>; rel="next", <https://x/y,z>; rel=prev; title="a, b"')
    assert links["next"] == {"url": "/v2/a/tags/list?n=2&last=b", "rel": "next"}
    assert links["prev"] == {"url": "https://x/y,z", "rel": "prev", "title": "a, b"}
    assert parse_links("") == {}


def test_exchange_log_names_every_request(keepalive_server):
    host, seen, img = keepalive_server
    c = RegistryClient(host, use_stored_credentials=False)
    c.get_manifest("a", "latest")
    assert [(e.method, e.status, e.note) for e in c.exchanges] == [("GET", 200, "ping"), ("GET", 200, "manifest")]
    assert c.exchanges[1].bytes == len(img["manifest"]) and json.loads(img["manifest"])["schemaVersion"] == 2
