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
