"""The registry client's HTTP layer against a hostile server on loopback (raw TCP servers
on 127.0.0.1; tests/test_registry_hostile.py's RawServer for some).

- A kept-alive connection that the server closes after reading a request, without a
  response, must not make the client send a non-idempotent request (POST, PATCH) a second
  time: RFC 9112 section 9.3.1 ("a user agent MUST NOT automatically retry a request with
  a non-idempotent method"), as urllib3 under requests did not either.
- Interim 1xx answers are skipped before the final one (RFC 9110 section 15.2).
- A blob response head trickled byte by byte is cut at the document deadline."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import test_registry_hostile
from test_registry_hostile import OCI_MANIFEST, client, ok_ping, sha256, tiny_image, wait_sent

from ocilearn.core.errors import RegistryError
from ocilearn.distribution.httpconn import ConnectionFailed, HTTPPool
from ocilearn.image.digest import Digest
from ocilearn.image.model import Descriptor

raw = test_registry_hostile.raw  # the fixture of RawServers, one definition for both files


def _read_request(s: socket.socket, buf: bytes) -> tuple[str | None, bytes, bytes]:
    """One request from ``s`` (head + Content-Length body): (method, body, leftover)."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return None, b"", b""
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    n = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            n = int(v)
    while len(rest) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return lines[0].split(" ", 1)[0], rest[:n], rest[n:]


def _request_server(answer):
    """A server on 127.0.0.1 (a thread) that reads each request whole and sends
    ``answer(connection number, method, body)`` back; ``None`` closes the connection
    unanswered. Returns (base URL, listening socket: close it to stop, a list that gets one
    entry per accepted connection)."""
    lsock = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def serve():
        while True:
            try:
                s, _ = lsock.accept()
            except OSError:
                return
            accepted.append(len(accepted) + 1)
            with s:
                buf = b""
                while True:
                    method, body, buf = _read_request(s, buf)
                    if method is None:
                        break
                    reply = answer(accepted[-1], method, body)
                    if reply is None:
                        break
                    s.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{lsock.getsockname()[1]}", lsock, accepted


@pytest.fixture
def drop_after_read():
    """Answers GET with 200 (kept alive); reads any other request whole, then closes the
    connection with no response. Records (connection number, method, body)."""
    seen: list[tuple[int, str, bytes]] = []

    def answer(n, method, body):
        seen.append((n, method, body))
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}" if method == "GET" else None  # else processed, then gone

    base, lsock, _ = _request_server(answer)
    yield base, seen
    lsock.close()


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_non_idempotent_request_is_not_sent_twice_on_a_stale_connection(drop_after_read, method):
    base, seen = drop_after_read
    pool = HTTPPool("test")
    with pool.request("GET", f"{base}/v2/", timeout=(5, 5)) as r:
        assert (r.status_code, r.read1(10)) == (200, b"{}")
    with pytest.raises(ConnectionFailed, match="RemoteDisconnected"):
        pool.request(method, f"{base}/v2/a/blobs/uploads/", data=b"layer-bytes", timeout=(5, 5),
                     headers={"Content-Length": "11"})
    assert seen == [(1, "GET", b""), (1, method, b"layer-bytes")]  # the body went out once


def test_an_idempotent_request_is_retried_once_on_a_new_connection(drop_after_read):
    """PUT is idempotent (RFC 9110 section 9.2.2): a kept-alive connection found closed is
    retried once, on a new connection; the server dropping that one too is an error."""
    base, seen = drop_after_read
    pool = HTTPPool("test")
    with pool.request("GET", f"{base}/v2/", timeout=(5, 5)) as r:
        assert r.status_code == 200 and r.read1(10) == b"{}"
    with pytest.raises(ConnectionFailed, match="RemoteDisconnected"):
        pool.request("PUT", f"{base}/v2/a/blobs/uploads/x?digest=sha256:00", data=b"abc", timeout=(5, 5),
                     headers={"Content-Length": "3"})
    assert seen == [(1, "GET", b""), (1, "PUT", b"abc"), (2, "PUT", b"abc")]


def test_an_interim_103_answer_does_not_leave_its_final_response_for_the_next_request():
    """http.client skips only ``100 Continue``; the pool's response class skips every
    interim 1xx (RFC 9110 section 15.2), so each request gets its own final ``200`` and
    nothing is left on the socket: the kept-alive connection serves the next request, which
    reads its own answer, not a leftover."""
    base, lsock, conns = _request_server(lambda n, method, body: b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                                                                 b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
    try:
        pool = HTTPPool("test")
        url = f"{base}/v2/"
        for _ in range(2):
            with pool.request("GET", url, timeout=(5, 5)) as r:
                assert (r.status_code, r.read1(100)) == (200, b"first")
                assert r.read1(100) == b""
        assert len(conns) == 1  # the 200 was read whole: the connection was reused
    finally:
        lsock.close()


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
