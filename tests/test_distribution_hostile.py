"""A hostile registry against the HTTP layer on http.client: interim 1xx answers and a
blob response head trickled byte by byte. Raw TCP servers on 127.0.0.1, port 0
(tests/test_registry_hostile.py's RawServer)."""

from __future__ import annotations

import time

import pytest
from test_registry_hostile import OCI_MANIFEST, RawServer, client, ok_ping, sha256, tiny_image, wait_sent

from ocilearn.core.errors import RegistryError
from ocilearn.image.digest import Digest
from ocilearn.image.model import Descriptor


@pytest.fixture
def raw():
    servers: list[RawServer] = []

    def make(routes):
        s = RawServer(routes)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


@pytest.mark.parametrize("interim", [b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n",
                                     b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nX-A: 1\r\n\r\n"])
def test_interim_1xx_answers_are_skipped_before_the_manifest(raw, interim):
    # RFC 9110 section 15.2: a client parses and ignores 1xx answers; http.client alone
    # returned the 103 as the final answer ("GET manifest answered HTTP 103")
    m = tiny_image()["manifest"]

    def man(conn, method, path):
        conn.send(interim)
        conn.simple("200 OK", m, OCI_MANIFEST)

    srv = raw({"/v2/": ok_ping, "/v2/a/manifests/": man})
    got = client(srv.host).get_manifest("a", "latest")
    assert got.raw == m
    assert str(got.digest) == sha256(m)


def test_trickled_blob_response_head_is_cut_at_the_deadline(raw):
    # the per-read timeout never fires at 20 bytes/s and the throughput rule watches only
    # the body: the head used to be read for as long as the server kept trickling
    def blob(conn, method, path):
        conn.trickle(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 5000, 0.05)

    srv = raw({"/v2/": ok_ping, "/v2/a/blobs/": blob})
    body = b"x" * 100
    desc = Descriptor("application/octet-stream", Digest.parse(sha256(body)), len(body))
    c = client(srv.host, deadline=1.0, timeout=(2, 10), blob_stall_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(RegistryError, match=rf"^127\.0\.0\.1:\d+: GET blob {sha256(body)}: no complete answer within the 1 s deadline"):
        c.blob_reader("a", desc).read(10)
    assert time.monotonic() - started < 4
    assert wait_sent(srv) < 200  # the server saw the close after about 1 s of 20 bytes/s


def _keepalive_then_close_server(seen: list[str]):
    """Answers the first request on a connection (kept alive), then reads the next one
    and closes without answering; every request line is recorded in ``seen``."""
    import socket
    import threading

    srv = socket.create_server(("127.0.0.1", 0))

    def serve(s):
        with s:
            s.settimeout(5)
            buf = b""
            n = 0
            while True:
                while b"\r\n\r\n" not in buf:
                    got = s.recv(65536)
                    if not got:
                        return
                    buf += got
                head, buf = buf.split(b"\r\n\r\n", 1)
                seen.append(head.split(b"\r\n", 1)[0].decode())
                n += 1
                if n > 1:
                    return  # closes without an answer
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    def accept():
        while True:
            try:
                s, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(s,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return srv


@pytest.mark.parametrize("method, resent", [("PATCH", False), ("POST", False), ("PUT", True), ("GET", True)])
def test_a_broken_kept_alive_connection_resends_only_idempotent_requests(method, resent):
    # RFC 9110 section 9.2.2: a chunk PATCH or an upload POST the server may already have
    # acted on is never sent a second time by the connection pool
    from ocilearn.distribution.httpconn import ConnectionFailed, HTTPPool

    seen: list[str] = []
    srv = _keepalive_then_close_server(seen)
    url = f"http://127.0.0.1:{srv.getsockname()[1]}"
    pool = HTTPPool("test")
    try:
        r = pool.request("GET", url + "/v2/")
        assert r.read1() == b"{}" and r.read1() == b""
        r.close()
        if resent:  # sent again on a new connection, which answers it
            again = pool.request(method, url + "/v2/a/blobs/uploads/x", data=b"chunk", headers={"Content-Length": "5"})
            assert again.status_code == 200
            again.close()
        else:
            with pytest.raises(ConnectionFailed):
                pool.request(method, url + "/v2/a/blobs/uploads/x", data=b"chunk", headers={"Content-Length": "5"})
        sent = [line for line in seen if line.startswith(method + " /v2/a/")]
        assert sent == [f"{method} /v2/a/blobs/uploads/x HTTP/1.1"] * (2 if resent else 1)
    finally:
        pool.close()
        srv.close()
