"""The registry client's HTTP layer against a hostile server on loopback.

A kept-alive connection that the server closes after reading a request, without a
response, must not make the client send a non-idempotent request (POST, PATCH) a second
time: RFC 9112 section 9.3.1 ("a user agent MUST NOT automatically retry a request with a
non-idempotent method"), as urllib3 under requests did not either."""

from __future__ import annotations

import socket
import threading

import pytest

from ocilearn.distribution.httpconn import ConnectionFailed, HTTPPool


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


@pytest.fixture
def drop_after_read():
    """Answers GET with 200 (kept alive); reads any other request whole, then closes the
    connection with no response. Records (connection number, method, body)."""
    seen: list[tuple[int, str, bytes]] = []
    lsock = socket.create_server(("127.0.0.1", 0))

    def serve():
        n = 0
        while True:
            try:
                s, _ = lsock.accept()
            except OSError:
                return
            n += 1
            with s:
                buf = b""
                while True:
                    method, body, buf = _read_request(s, buf)
                    if method is None:
                        break
                    seen.append((n, method, body))
                    if method != "GET":
                        break  # processed, then the connection is gone
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{lsock.getsockname()[1]}", seen
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
    """http.client skips only ``100 Continue``; a ``103 Early Hints`` comes back as the
    response. Its final ``200`` is still on the socket: the connection must not go back to
    the pool, or the next request reads that 200 as its answer (RFC 9110 section 15.2)."""
    lsock = socket.create_server(("127.0.0.1", 0))
    conns: list[int] = []

    def serve():
        while True:
            try:
                s, _ = lsock.accept()
            except OSError:
                return
            conns.append(1)
            with s:
                buf = b""
                while True:
                    method, _, buf = _read_request(s, buf)
                    if method is None:
                        break
                    s.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                              b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")

    threading.Thread(target=serve, daemon=True).start()
    try:
        pool = HTTPPool("test")
        url = f"http://127.0.0.1:{lsock.getsockname()[1]}/v2/"
        with pool.request("GET", url, timeout=(5, 5)) as r:
            assert r.status_code == 103
        with pool.request("GET", url, timeout=(5, 5)) as r:
            assert r.status_code == 103  # a fresh answer, not the 200 left from the first
        assert len(conns) == 2
    finally:
        lsock.close()
