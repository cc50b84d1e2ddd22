"""Transport strings (ocilearn.distribution.endpoints) and ref resolution in copy: every
argument checked before a byte is fetched; ``oci:PATH:REF`` split at the first colon as
skopeo and umoci do; a ref name on two manifests refused by copy as by unpack."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import REPO, built_image

from ocilearn.core.errors import AmbiguousReference, InvalidRefName, LayoutError, TransportError
from ocilearn.distribution import copy as transfer
from ocilearn.distribution.endpoints import parse_transport
from ocilearn.image.layout import ImageLayout, parse_oci_ref, resolve_ref
from ocilearn.image.model import REF_NAME

BUSYBOX = "sha256:3063d847deaaedea1de7a313e9e38508643d028f52fe8c3c6b002fd9a9a56eb6"


@pytest.fixture
def counting_server():
    """An HTTP server on loopback that records every request (and answers 404)."""
    seen: list[str] = []

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            seen.append(self.path)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"127.0.0.1:{srv.server_address[1]}", seen
    srv.shutdown()
    srv.server_close()


def oc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ocilearn", *args], capture_output=True, text=True, cwd=cwd,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_first_colon_split_like_skopeo():
    assert parse_oci_ref("oci:/a/b:localhost/app:latest") == ("/a/b", "localhost/app:latest")
    assert parse_oci_ref("oci:/a/b:sha256:" + "ab" * 32) == ("/a/b", "sha256:" + "ab" * 32)
    assert parse_oci_ref("oci:/a/b") == ("/a/b", None)
    ep = parse_transport("oci-archive:/tmp/x.tar:localhost/app:latest")
    assert (ep.transport, ep.path, ep.ref) == ("oci-archive", Path("/tmp/x.tar"), "localhost/app:latest")


@pytest.mark.parametrize("text", ["oci:/tmp/d:", "oci-archive:/tmp/d.tar:"])
def test_empty_ref_is_an_error_not_a_directory_named_colon(text, tmp_path):
    with pytest.raises(LayoutError, match="empty ref name"):
        parse_transport(text)
    p = oc("copy", f"oci:{built_image('busybox')}:latest", f"oci:{tmp_path / 'd'}:")
    assert p.returncode != 0
    assert "empty ref name" in p.stderr
    assert sorted(tmp_path.iterdir()) == []  # neither d nor "d:" was created


def test_bad_ref_name_refused_before_any_request(counting_server, tmp_path):
    host, seen = counting_server
    dest = tmp_path / "d"
    with pytest.raises(InvalidRefName, match="tägé✓"):
        transfer.copy(f"docker://{host}/busybox:latest", f"oci:{dest}:tägé✓", src_tls_verify=False)
    assert seen == []  # not even GET /v2/
    assert not dest.exists()
    p = oc("copy", "--src-tls-verify=false", f"docker://{host}/busybox:latest", f"oci:{dest}:tägé✓")
    assert p.returncode == 1, p.stderr
    assert "invalid ref name 'tägé✓'" in p.stderr
    assert seen == [] and not dest.exists()


def test_jobs_zero_refused(counting_server, tmp_path):
    host, seen = counting_server
    p = oc("copy", "-j", "0", "--src-tls-verify=false", f"docker://{host}/busybox:latest", f"oci:{tmp_path / 'd'}:latest")
    assert p.returncode == 2, p.stderr  # click's usage error
    assert "0 is not in the range x>=1" in p.stderr
    with pytest.raises(TransportError, match="at least 1"):
        transfer.copy(f"docker://{host}/busybox:latest", f"oci:{tmp_path / 'd'}:latest", workers=0)
    assert seen == [] and not (tmp_path / "d").exists()


def test_ref_name_with_colon_and_slash_round_trips(tmp_path):
    dst = tmp_path / "lay"
    r = transfer.copy(f"oci:{built_image('busybox')}:latest", f"oci:{dst}:localhost/app:latest")
    assert str(r.digest) == BUSYBOX
    assert {k: str(v.digest) for k, v in ImageLayout(dst).refs().items()} == {"localhost/app:latest": BUSYBOX}
    r2 = transfer.copy(f"oci:{dst}:localhost/app:latest", f"oci:{tmp_path / 'again'}:v1")
    assert str(r2.digest) == BUSYBOX


def test_copy_refuses_a_ref_name_on_two_manifests(tmp_path):
    lay_dir = tmp_path / "lay"
    shutil.copytree(built_image("busybox"), lay_dir)
    index = json.loads((lay_dir / "index.json").read_text())
    entry = index["manifests"][0]
    # a second entry under the same ref name, pointing at another manifest (the config blob
    # stands in: resolution must refuse before reading it)
    other = dict(entry, digest="sha256:650a03fbde977a66237da06bcd5e27a9ccf5c661d833128d18f038a64620c3fe", size=1)
    other["annotations"] = {REF_NAME: entry["annotations"][REF_NAME]}
    index["manifests"].append(other)
    (lay_dir / "index.json").write_text(json.dumps(index))
    ref = entry["annotations"][REF_NAME]
    with pytest.raises(AmbiguousReference, match=f"ref '{ref}' names 2 different manifests"):
        resolve_ref(ImageLayout(lay_dir), ref)
    with pytest.raises(AmbiguousReference, match=f"ref '{ref}' names 2 different manifests"):
        transfer.copy(f"oci:{lay_dir}:{ref}", f"oci:{tmp_path / 'out'}:x")
    assert not (tmp_path / "out").exists()  # the source's ref is resolved before the destination is made
    p = oc("copy", f"oci:{lay_dir}:{ref}", f"oci:{tmp_path / 'out2'}:x")
    assert p.returncode == 1 and "names 2 different manifests" in p.stderr
    assert not (tmp_path / "out2").exists()


def test_first_colon_split_agrees_with_skopeo_and_umoci(tmp_path):
    """A ref name written by skopeo as ``localhost/app:latest`` is opened by that name by
    skopeo, umoci and ocilearn alike."""
    from conftest import require_tool, run

    skopeo, umoci = require_tool("skopeo"), require_tool("umoci")
    lay = tmp_path / "lay"
    run([skopeo, "copy", "-q", "--preserve-digests", f"oci:{built_image('busybox')}:latest", f"oci:{lay}:localhost/app:latest"])
    assert run([umoci, "ls", "--layout", str(lay)]).stdout.split() == ["localhost/app:latest"]
    assert json.loads(run([skopeo, "inspect", f"oci:{lay}:localhost/app:latest"]).stdout)["Digest"] == BUSYBOX
    assert str(resolve_ref(ImageLayout(lay), parse_oci_ref(f"oci:{lay}:localhost/app:latest")[1]).digest) == BUSYBOX
    p = oc("inspect", f"oci:{lay}:localhost/app:latest")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["Digest"] == BUSYBOX


@pytest.mark.parametrize("text, transport", [("docker://busybox:latest", "docker"), ("docker-archive:/tmp/x.tar", "docker-archive"),
                                             ("oci-archive:/tmp/x.tar:latest", "oci-archive")])
def test_a_layout_path_naming_another_transport_says_copy_it_first(text, transport):
    """unpack, inspect and graph take a layout (PATH[:REF]); `docker://busybox:latest` was
    read as the directory 'docker' and the ref '//busybox:latest' ("invalid ref name")."""
    with pytest.raises(LayoutError, match=f"through the {transport} transport; .*copy the image into one first, "
                                          f"e.g. ocilearn copy {re.escape(text)} oci:DIR:latest"):
        parse_oci_ref(text)
    assert parse_oci_ref("oci:docker-archive:x") == ("docker-archive", "x")  # a directory of that name
    assert parse_transport("oci:docker-archive:x").path == Path("docker-archive")
