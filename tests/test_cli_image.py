"""`ocilearn inspect | graph | layout fsck|gc|refs`, compared with skopeo and umoci."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from conftest import REPO, built_image, require_tool, run

from ocilearn.cli import run as cli
from ocilearn.image import embedded
from ocilearn.image.layout import ImageLayout

OCILEARN = str(REPO / ".venv" / "bin" / "ocilearn")


def ocl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([OCILEARN, *args], capture_output=True)


@pytest.mark.parametrize("name, ref", [("busybox", "latest"), ("multiarch", "latest"), ("debian", "bookworm"), ("debian-zstd", "bookworm")])
def test_inspect_equals_skopeo_inspect(name, ref):
    require_tool("skopeo")
    target = f"oci:{built_image(name)}:{ref}"
    ours = ocl("inspect", target)
    assert ours.returncode == 0, ours.stderr
    theirs = json.loads(run(["skopeo", "inspect", target]).stdout)
    assert json.loads(ours.stdout) == theirs


def test_inspect_platform_raw_and_config():
    require_tool("skopeo")
    target = f"oci:{built_image('multiarch')}:latest"
    arm = json.loads(ocl("inspect", "--platform", "linux/arm64/v8", target).stdout)
    theirs = json.loads(run(["skopeo", "inspect", "--override-arch", "arm64", "--override-variant", "v8", target]).stdout)
    assert arm == theirs and arm["Architecture"] == "arm64"
    raw = ocl("inspect", "--raw", target).stdout
    assert raw == run(["skopeo", "inspect", "--raw", target], text=False).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == arm["Digest"]
    cfg_raw = ocl("inspect", "--config", "--raw", "--platform", "linux/arm64", target).stdout
    assert cfg_raw == run(["skopeo", "inspect", "--config", "--raw", "--override-arch", "arm64", target], text=False).stdout
    cfg = json.loads(ocl("inspect", "--config", target).stdout)
    assert cfg == json.loads(run(["skopeo", "inspect", "--config", target]).stdout)
    assert cfg["architecture"] == "amd64" and cfg["config"]["User"] == "app"


def test_graph_writes_svg_and_text(tmp_path):
    require_tool("dot")
    img = embedded.open().resolve("latest")
    out = tmp_path / "g.svg"
    p = ocl("graph", f"oci:{embedded.layout_path()}:latest", "-o", str(out))
    assert p.returncode == 0, p.stderr
    svg = out.read_text()
    assert "<svg" in svg and f"sha256:{img.digest.short}" in svg and f"sha256:{img.manifest.layers[0].digest.short}" in svg
    assert b"5 nodes, 4 edges" in p.stdout  # index entry, manifest, config, two layers
    text = ocl("graph", f"oci:{embedded.layout_path()}").stdout.decode()
    assert f"manifest sha256:{img.digest.short}" in text


def test_layout_refs_like_umoci_ls(tmp_path):
    require_tool("umoci")
    lay = ImageLayout.open(built_image("debian"))
    out = ocl("layout", "refs", str(lay.path)).stdout.decode().splitlines()
    names = [line.split("\t")[0] for line in out]
    assert names == run(["umoci", "ls", "--layout", str(lay.path)]).stdout.split() == ["bookworm"]
    assert out[0].split("\t")[1] == str(lay.refs()["bookworm"].digest)


def test_layout_fsck_exit_status_and_gc(tmp_path):
    lay = embedded.copy_to(tmp_path / "e")
    ok = ocl("layout", "fsck", str(lay.path))
    assert ok.returncode == 0 and b"checked 4 reachable blobs: OK" in ok.stdout  # manifest, config, two layers
    orphan, _ = lay.put_blob(b"orphan")
    dry = ocl("layout", "gc", "--dry-run", str(lay.path))
    assert dry.returncode == 0 and f"would remove {orphan}".encode() in dry.stdout and lay.has_blob(orphan)
    gc = ocl("layout", "gc", str(lay.path))
    assert gc.returncode == 0 and f"removed {orphan}".encode() in gc.stdout and not lay.has_blob(orphan)
    # corrupt the layer: fsck exits 1 and names the digest
    layer = lay.resolve("latest").manifest.layers[0]
    p = lay.blob_path(layer.digest)
    data = bytearray(p.read_bytes())
    data[100] ^= 0xFF
    p.write_bytes(bytes(data))
    bad = ocl("layout", "fsck", str(lay.path))
    assert bad.returncode == 1 and f"corrupt  {layer.digest}".encode() in bad.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["inspect", "oci:/nonexistent/layout:latest"], "no such image layout directory"),
        (["inspect", "/no/transport"], "expected an image layout reference oci:PATH[:REF]"),
        (["inspect", "oci:{emb}:nope"], "no ref named 'nope'"),
        (["inspect", "--platform", "linux/s390x", "oci:{multi}:latest"], "no manifest for platform linux/s390x"),
        (["inspect", "--platform", "linux", "oci:{emb}:latest"], "expected OS/ARCH[/VARIANT]"),
        (["layout", "fsck", "/nonexistent"], "no such image layout directory"),
    ],
)
def test_bad_input_one_line_error_no_traceback(args, message):
    args = [a.format(emb=embedded.layout_path(), multi=built_image("multiarch")) for a in args]
    p = ocl(*args)
    err = p.stderr.decode()
    assert p.returncode == 1 and p.stdout == b""
    assert err.startswith("ocilearn: error: ") and message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    debug = ocl("--debug", *args)
    assert debug.returncode != 0 and "Traceback" in debug.stderr.decode()


def test_in_process_run(capsys):
    assert cli(["inspect", f"oci:{embedded.layout_path()}:latest"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["Digest"] == embedded.provenance()["manifest_digest"] and info["Os"] == "linux"


# ---------------------------------------------------------------- empty and odd paths


@pytest.mark.parametrize("sub", [["layout", "gc"], ["layout", "gc", "--dry-run"], ["layout", "fsck"], ["layout", "refs"]])
@pytest.mark.parametrize("arg", ["", " ", "oci:", "oci: "])
def test_layout_commands_refuse_an_empty_path_instead_of_the_current_directory(tmp_path, monkeypatch, capfd, sub, arg):
    """``layout gc ""`` used to act on the current directory; here the current directory
    *is* a layout with an unreferenced blob, which must survive."""
    lay = ImageLayout.init(tmp_path)
    digest, _ = lay.put_blob(b"unreferenced")
    monkeypatch.chdir(tmp_path)
    assert cli([*sub, arg]) == 1
    err = capfd.readouterr().err
    assert err.startswith("ocilearn: error: PATH argument") and err.count("\n") == 1
    assert " is empty" in err or " is only whitespace" in err
    assert lay.has_blob(digest)


@pytest.mark.parametrize("cmd", ["inspect", "graph"])
def test_inspect_and_graph_refuse_an_empty_layout_path(tmp_path, monkeypatch, capfd, cmd):
    monkeypatch.chdir(tmp_path)
    embedded.copy_to(tmp_path / "l")
    assert cli([cmd, "oci:"]) == 1
    assert "the layout PATH is empty" in capfd.readouterr().err
