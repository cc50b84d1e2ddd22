"""Messages a user can act on: a registry that rate-limits (429) or is unavailable (503) on
``GET /v2/`` says so with its Retry-After; a full disk names the file being written."""

from __future__ import annotations

import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import built_image

from ocilearn.core.errors import ArchiveError, LayoutError, RegistryError
from ocilearn.distribution import copy as transfer
from ocilearn.distribution.client import RegistryClient

LAYER = "sha256:3db1b4243825b57b84c5a6499229446c6d0cb351d7de177ca882008ae819c41e"


@pytest.fixture
def status_server():
    """A loopback HTTP server answering every request with ``state['status']`` and its headers."""
    state: dict = {"status": 429, "headers": {}, "hits": 0}

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            state["hits"] += 1
            self.send_response(state["status"])
            for k, v in state["headers"].items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{srv.server_address[1]}", state
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("status, headers, want", [
    (429, {"Retry-After": "7"}, "the registry is rate limited (429 Too Many Requests); it asks to retry after 7 s"),
    (503, {}, "the registry is unavailable (503 Service Unavailable); no Retry-After given"),
    (503, {"Retry-After": "3"}, "the registry is unavailable (503 Service Unavailable); it asks to retry after 3 s"),
])
def test_ping_429_503_say_so(status_server, status, headers, want):
    host, state = status_server
    state["status"], state["headers"] = status, headers
    c = RegistryClient(host, retries=0, backoff=0.01, max_retry_after=30, use_stored_credentials=False, tls_verify=False)
    with pytest.raises(RegistryError) as ei:
        c.ping()
    msg = str(ei.value)
    assert want in msg
    assert "not a registry" not in msg
    assert state["hits"] == 2  # the ping and its one retried GET


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 256 KiB tmpfs mounted for the test, unmounted after (needs root)."""
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs needs root (the suite runs as root under make test)")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_full_disk_names_the_blob_file(small_tmpfs):
    dest = small_tmpfs / "lay"
    with pytest.raises(LayoutError) as ei:
        transfer.copy(f"oci:{built_image('busybox')}:latest", f"oci:{dest}:latest", workers=1)
    msg = str(ei.value)
    assert msg.startswith(f"{dest}/blobs/sha256/{LAYER[7:]}: No space left on device while writing blob {LAYER}")
    assert sorted(p.name for p in (dest / "blobs" / "sha256").iterdir() if p.name.startswith(".tmp")) == []
    assert (dest / "index.json").exists() and "latest" not in (dest / "index.json").read_text()


@pytest.mark.parametrize("transport, error", [("oci-archive", LayoutError), ("docker-archive", ArchiveError)])
def test_full_disk_archive_names_the_file_and_leaves_nothing(small_tmpfs, transport, error):
    dest = small_tmpfs / "out.tar"
    with pytest.raises(error) as ei:
        transfer.copy(f"oci:{built_image('busybox')}:latest", f"{transport}:{dest}", workers=1)
    msg = str(ei.value)
    assert msg.startswith(str(small_tmpfs) + "/.tmp-")  # the staging file being written
    assert "No space left on device while writing" in msg and LAYER in msg
    assert list(small_tmpfs.iterdir()) == []  # staging removed, no partial archive
