"""The oci-archive: transport (a tar of an image layout), read and written, cross-checked
with skopeo (the reference peer): what skopeo writes ocilearn reads, and the reverse, with
the same manifest, config and layer digests."""

from __future__ import annotations

import json
import tarfile

import pytest
from conftest import built_image, require_tool, run

from ocilearn.core.errors import ArchiveError
from ocilearn.distribution import copy as transfer
from ocilearn.image.layout import ImageLayout

BUSYBOX = "sha256:3063d847deaaedea1de7a313e9e38508643d028f52fe8c3c6b002fd9a9a56eb6"
LAYER = "sha256:3db1b4243825b57b84c5a6499229446c6d0cb351d7de177ca882008ae819c41e"
CONFIG = "sha256:650a03fbde977a66237da06bcd5e27a9ccf5c661d833128d18f038a64620c3fe"


def skopeo_inspect(skopeo: str, where: str) -> dict:
    return json.loads(run([skopeo, "inspect", where]).stdout)


def test_read_what_skopeo_writes(tmp_path):
    skopeo = require_tool("skopeo")
    tar = tmp_path / "bb.tar"
    run([skopeo, "copy", "-q", "--preserve-digests", f"oci:{built_image('busybox')}:latest", f"oci-archive:{tar}:localhost/app:latest"])
    r = transfer.copy(f"oci-archive:{tar}:localhost/app:latest", f"oci:{tmp_path / 'lay'}:latest")
    assert str(r.digest) == BUSYBOX
    lay = ImageLayout(tmp_path / "lay")
    assert str(lay.refs()["latest"].digest) == BUSYBOX
    img = lay.resolve("latest")
    assert str(img.manifest.config.digest) == CONFIG
    assert [str(x.digest) for x in img.manifest.layers] == [LAYER]
    assert lay.fsck().ok


def test_skopeo_reads_what_ocilearn_writes(tmp_path):
    skopeo = require_tool("skopeo")
    tar = tmp_path / "out.tar"
    r = transfer.copy(f"oci:{built_image('busybox')}:latest", f"oci-archive:{tar}:localhost/app:latest")
    assert str(r.digest) == BUSYBOX
    with tarfile.open(tar) as t:
        names = set(t.getnames())
    assert {"oci-layout", "index.json", f"blobs/sha256/{BUSYBOX[7:]}", f"blobs/sha256/{CONFIG[7:]}", f"blobs/sha256/{LAYER[7:]}"} <= names
    assert not [n for n in names if "/." in n or n.startswith(".")]
    info = skopeo_inspect(skopeo, f"oci-archive:{tar}:localhost/app:latest")
    assert info["Digest"] == BUSYBOX
    assert info["Layers"] == [LAYER]
    # and skopeo copies it out to a layout with the same digests
    run([skopeo, "copy", "-q", "--preserve-digests", f"oci-archive:{tar}:localhost/app:latest", f"oci:{tmp_path / 'sk'}:x"])
    idx = json.loads((tmp_path / "sk" / "index.json").read_text())
    assert [m["digest"] for m in idx["manifests"]] == [BUSYBOX]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # staging removed


def test_archive_with_a_link_member_refused(tmp_path):
    tar = tmp_path / "evil.tar"
    with tarfile.open(tar, "w") as t:
        info = tarfile.TarInfo("blobs/sha256/" + "ab" * 32)
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        t.addfile(info)
    with pytest.raises(ArchiveError, match="is not part of an image layout"):
        transfer.copy(f"oci-archive:{tar}", f"oci:{tmp_path / 'lay'}:x")


def test_archive_errors_name_the_archive_not_the_extraction_directory(tmp_path):
    """A truncated tar, a missing ref and an oversized index.json are ArchiveErrors that
    name ``oci-archive:PATH``; the private extraction directory is removed."""
    import glob
    import io
    import tempfile

    good = tmp_path / "a.tar"
    transfer.copy(f"oci:{built_image('busybox')}:latest", f"oci-archive:{good}:latest")
    before = set(glob.glob(f"{tempfile.gettempdir()}/ocilearn-oci-archive-*"))
    trunc = tmp_path / "trunc.tar"
    trunc.write_bytes(good.read_bytes()[:700])
    with pytest.raises(ArchiveError, match=rf"^oci-archive:{trunc}: truncated or corrupt tar"):
        transfer.copy(f"oci-archive:{trunc}", f"oci:{tmp_path / 'o1'}:x")
    with pytest.raises(ArchiveError, match=rf"^oci-archive:{good}:nosuch: no ref named 'nosuch'"):
        transfer.copy(f"oci-archive:{good}:nosuch", f"oci:{tmp_path / 'o2'}:x")
    big = tmp_path / "big.tar"
    with tarfile.open(big, "w") as t:
        info = tarfile.TarInfo("index.json")
        info.size = 5 * 1024 * 1024
        t.addfile(info, io.BytesIO(b" " * info.size))
    with pytest.raises(ArchiveError, match=rf"^oci-archive:{big}: tar member 'index.json' is 5242880 bytes"):
        transfer.copy(f"oci-archive:{big}", f"oci:{tmp_path / 'o3'}:x")
    assert set(glob.glob(f"{tempfile.gettempdir()}/ocilearn-oci-archive-*")) == before
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o3").exists()
