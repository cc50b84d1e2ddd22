"""docker-archive (``docker save``) read and write, compared with skopeo's reading of the
same archives: same image config, same layer contents (diff IDs)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest
from conftest import built_image, require_tool, run, shared_path
from registry_helpers import top_digest

from ocilearn.core.errors import ArchiveError
from ocilearn.distribution import copy as transfer
from ocilearn.distribution.docker_archive import DockerArchive
from ocilearn.image.layout import ImageLayout


def uncompressed_digest(data: bytes) -> str:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif data[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard

        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True).read()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_summary(layout_dir, ref: str, platform: str | None = None) -> tuple[str, list[str]]:
    """(config digest, diff IDs of the layers as stored) of the image ``ref``."""
    lay = ImageLayout(layout_dir)
    if platform:
        m = json.loads(lay.read_blob(lay.resolve(ref, platform).descriptor))
    else:
        entry = next(d for d in lay.index().manifests if d.ref_name == ref)
        m = json.loads(lay.read_blob(entry))
    diffs = [uncompressed_digest(lay.read_blob(x["digest"])) for x in m["layers"]]
    return m["config"]["digest"], diffs


def compare_with_skopeo(archive: str, tmp_path, ref: str | None = None) -> dict:
    src = f"docker-archive:{archive}" + (f":{ref}" if ref else "")
    r = transfer.copy(src, f"oci:{tmp_path / 'ours'}:x")
    run([require_tool("skopeo"), "copy", "-q", "--preserve-digests", src, f"oci:{tmp_path / 'skopeo'}:x"])
    ours, theirs = image_summary(tmp_path / "ours", "x"), image_summary(tmp_path / "skopeo", "x")
    assert ours == theirs
    lay = ImageLayout(tmp_path / "ours")
    assert lay.fsck().ok
    cfg = json.loads(lay.read_blob(ours[0]))
    assert cfg["rootfs"]["diff_ids"] == ours[1]
    return {"result": r, "config": ours[0], "diff_ids": ours[1], "manifest": json.loads(lay.read_blob(r.digest))}


def test_busybox_docker_archive_imports_like_skopeo(tmp_path):
    out = compare_with_skopeo(str(built_image("busybox-docker-archive.tar")), tmp_path)
    assert out["config"] == "sha256:650a03fbde977a66237da06bcd5e27a9ccf5c661d833128d18f038a64620c3fe"
    assert out["diff_ids"] == ["sha256:3920edbb71cc692380042175d3681dc0a16a718771e628ce4627b728ec926ec5"]
    # the layer is stored as it is in the archive (uncompressed, its digest = its diff ID)
    assert out["manifest"]["layers"] == [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": 2134016,
                                          "digest": "sha256:3920edbb71cc692380042175d3681dc0a16a718771e628ce4627b728ec926ec5"}]


@pytest.mark.parametrize("name, ref", [
    ("tarball/test_image_1.tar", None),
    ("tarball/test_image_2.tar", None),
    ("tarball/test_load_manifest.tar", None),
    ("tarball/test_bundle.tar", "@0"),
    ("tarball/test_bundle.tar", "@1"),
    ("mutate/whiteout_image.tar", None),
    ("mutate/overwritten_file.tar", None),
    ("mutate/source_image_with_empty_layer_history.tar", None),
    ("mutate/whiteout_dir.tar", None),
])
def test_go_containerregistry_archives_import_like_skopeo(tmp_path, name, ref):
    archive = shared_path("fixtures", "go-containerregistry", *name.split("/"))
    out = compare_with_skopeo(str(archive), tmp_path, ref)
    if name == "mutate/whiteout_dir.tar":
        # gzip layers are kept compressed (the media type says so); their contents equal skopeo's
        assert {x["mediaType"] for x in out["manifest"]["layers"]} == {"application/vnd.oci.image.layer.v1.tar+gzip"}


def test_archive_choice_by_tag_and_parent_chains(tmp_path):
    """RepoTags without a tag (``test_image_2``) match ``test_image_2:latest``, as Docker
    reads them (skopeo 1.9 does not find it); test_link.tar's second image (two layers,
    a ``Parent``) imports with its diff IDs checked (skopeo 1.9 fails on it: size 0)."""
    bundle = shared_path("fixtures", "go-containerregistry", "tarball", "test_bundle.tar")
    a = transfer.copy(f"docker-archive:{bundle}:test_image_2", f"oci:{tmp_path / 'a'}:x")
    b = transfer.copy(f"docker-archive:{bundle}:@0", f"oci:{tmp_path / 'b'}:x")
    assert a.digest == b.digest
    link = shared_path("fixtures", "go-containerregistry", "tarball", "test_link.tar")
    r = transfer.copy(f"docker-archive:{link}:bazel/v1/tarball:test_image_3", f"oci:{tmp_path / 'c'}:x")
    cfg, diffs = image_summary(tmp_path / "c", "x")
    assert len(diffs) == 2 and json.loads(ImageLayout(tmp_path / "c").read_blob(cfg))["rootfs"]["diff_ids"] == diffs
    assert ImageLayout(tmp_path / "c").fsck().ok and len(r.copied) == 3


def test_docker25_oci_in_tar_keeps_its_manifest(tmp_path):
    archive = shared_path("fixtures", "go-containerregistry", "tarball", "hello-world-v25.tar")
    out = compare_with_skopeo(str(archive), tmp_path)
    # index.json there lists no manifest; the manifest blob for manifest.json's config is used as is
    assert str(out["result"].digest) == "sha256:411caf340c828657e915a83ed561a79d2b8150dabad4dc079d881cbfe6f86afe"
    assert out["config"] == "sha256:ee301c921b8aadc002973b2e0c3da17d701dcd994b606769a7e6eaa100b81d44"


def test_docker25_with_index_uses_the_indexed_manifest(tmp_path):
    """A Docker 25 archive whose index.json does list the image (the usual case)."""
    src = built_image("busybox")
    p = tmp_path / "d25.tar"
    with tarfile.open(p, "w") as t:
        for f in sorted(src.rglob("*")):
            if f.is_file() and f.name != "index.json":
                t.add(f, f.relative_to(src).as_posix())
        idx = json.loads((src / "index.json").read_text())
        idx["manifests"][0]["annotations"]["io.containerd.image.name"] = "docker.io/library/busybox:latest"
        data = json.dumps(idx).encode()
        info = tarfile.TarInfo("index.json")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
        mj = json.dumps([{"Config": "blobs/sha256/650a03fbde977a66237da06bcd5e27a9ccf5c661d833128d18f038a64620c3fe",
                          "RepoTags": ["busybox:latest"], "Layers": []}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(mj)
        t.addfile(info, io.BytesIO(mj))
    r = transfer.copy(f"docker-archive:{p}:busybox:latest", f"oci:{tmp_path / 'o'}:latest")
    assert str(r.digest) == "sha256:3063d847deaaedea1de7a313e9e38508643d028f52fe8c3c6b002fd9a9a56eb6"
    assert ImageLayout(tmp_path / "o").fsck().ok


def test_write_docker_archive_read_back_by_skopeo(tmp_path):
    for name, ref in (("busybox", "latest"), ("debian-zstd", "bookworm")):
        arc = tmp_path / f"{name}.tar"
        transfer.copy(f"oci:{built_image(name)}:{ref}", f"docker-archive:{arc}:{name}:{ref}")
        names = [m.name for m in tarfile.open(arc).getmembers()]
        assert "manifest.json" in names and "repositories" in names
        back = tmp_path / f"sk-{name}"
        run([require_tool("skopeo"), "copy", "-q", "--preserve-digests", f"docker-archive:{arc}", f"oci:{back}:x"])
        src_cfg, src_diffs = image_summary(built_image(name), ref)
        assert image_summary(back, "x") == (src_cfg, src_diffs)
        mj = json.loads(tarfile.open(arc).extractfile("manifest.json").read())
        assert mj[0]["RepoTags"] == [f"docker.io/library/{name}:{ref}"]
        assert mj[0]["Layers"] == [f"{d.split(':')[1]}.tar" for d in src_diffs]
        # and ocilearn reads its own archive back to the same config and contents
        transfer.copy(f"docker-archive:{arc}", f"oci:{tmp_path / f'oc-{name}'}:x")
        assert image_summary(tmp_path / f"oc-{name}", "x") == (src_cfg, src_diffs)
    # a multi-platform index needs a platform choice; --all is refused
    from ocilearn.core.errors import TransportError

    with pytest.raises(TransportError, match="single-platform"):
        transfer.copy(f"oci:{built_image('multiarch')}:latest", f"docker-archive:{tmp_path / 'm.tar'}", all_platforms=True)
    transfer.copy(f"oci:{built_image('multiarch')}:latest", f"docker-archive:{tmp_path / 'm.tar'}", platform="linux/arm64")
    assert DockerArchive(tmp_path / "m.tar").image().descriptor.platform.architecture == "arm64"


def test_bad_archives_fail_clearly(tmp_path):
    with pytest.raises(ArchiveError, match="no manifest.json"):
        DockerArchive(shared_path("fixtures", "go-containerregistry", "tarball", "no_manifest.tar"))
    with pytest.raises(ArchiveError, match="JSON list"):
        DockerArchive(shared_path("fixtures", "go-containerregistry", "tarball", "null_manifest.tar"))
    with pytest.raises(ArchiveError, match="not a readable tar"):
        (tmp_path / "x.tar").write_bytes(b"not a tar at all" * 100)
        DockerArchive(tmp_path / "x.tar")
    # a layer whose contents are not the config's diff ID
    src = built_image("busybox-docker-archive.tar")
    bad = tmp_path / "bad.tar"
    with tarfile.open(src) as a, tarfile.open(bad, "w") as b:
        for m in a.getmembers():
            f = a.extractfile(m) if m.isfile() else None
            if m.name.endswith(".tar") and m.isfile():
                data = bytearray(f.read())
                data[600] ^= 0xFF
                m.size = len(data)
                b.addfile(m, io.BytesIO(bytes(data)))
            else:
                b.addfile(m, f)
    with pytest.raises(ArchiveError, match="diff_id"):
        transfer.copy(f"docker-archive:{bad}", f"oci:{tmp_path / 'o'}:x")
    # members that climb out of the archive are refused
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as t:
        for name, data in (("../escape.json", b"{}"), ("manifest.json", b"[]")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    with pytest.raises(ArchiveError, match="outside the archive"):
        DockerArchive(evil)
    # several images and no choice
    with pytest.raises(ArchiveError, match="holds 2 images"):
        transfer.copy(f"docker-archive:{shared_path('fixtures', 'go-containerregistry', 'tarball', 'test_bundle.tar')}",
                      f"oci:{tmp_path / 'o2'}:x")


def test_registry_to_archive_and_back(plain_registry, tmp_path):
    arc = tmp_path / "bb.tar"
    transfer.copy(f"docker://{plain_registry.host}/busybox:latest", f"docker-archive:{arc}:busybox:latest")
    r = transfer.copy(f"docker-archive:{arc}:busybox:latest", f"docker://{plain_registry.host}/from-archive:latest")
    back = tmp_path / "back"
    run([require_tool("skopeo"), "copy", "-q", "--preserve-digests", "--src-tls-verify=false",
         f"docker://{plain_registry.host}/from-archive:latest", f"oci:{back}:x"])
    assert top_digest(back, "x") == str(r.digest)
    assert image_summary(back, "x") == image_summary(built_image("busybox"), "latest")


def test_write_docker25_form(tmp_path):
    """``archive_form="docker25"``: the tar is a docker-archive *and* an OCI layout (as
    Docker 25 saves): skopeo reads it, ocilearn reads back the indexed manifest, and the
    extracted tar passes ocilearn's layout fsck."""
    arc = tmp_path / "d25.tar"
    from ocilearn.cli import run as cli

    assert cli(["copy", "-q", "--archive-form", "docker25", f"oci:{built_image('multiarch')}:latest",
                "--override-arch", "arm64", f"docker-archive:{arc}:busybox:arm64"]) == 0
    src = image_summary(built_image("multiarch"), "latest", "linux/arm64")
    with tarfile.open(arc) as t:
        index = json.loads(t.extractfile("index.json").read())
        mj = json.loads(t.extractfile("manifest.json").read())
        # only relative names of plain files and directories (what tarfile's "data" filter
        # would let through; Debian 12's Python 3.11.2 predates extraction filters, PEP 706)
        members = t.getmembers()
        assert all((m.isfile() or m.isdir()) and not m.name.startswith("/") and ".." not in m.name.split("/") for m in members)
        t.extractall(tmp_path / "x", members=members)
    entry = index["manifests"][0]
    assert entry["annotations"] == {"io.containerd.image.name": "docker.io/library/busybox:arm64",
                                    "org.opencontainers.image.ref.name": "arm64"}
    assert mj[0]["Layers"] == [f"blobs/sha256/{d.split(':')[1]}" for d in src[1]]  # uncompressed: digest = diff ID
    assert ImageLayout(tmp_path / "x").fsck().ok
    assert image_summary(tmp_path / "x", "arm64") == src
    r = transfer.copy(f"docker-archive:{arc}:busybox:arm64", f"oci:{tmp_path / 'o'}:x")
    assert str(r.digest) == entry["digest"]
    run([require_tool("skopeo"), "copy", "-q", "--preserve-digests", f"docker-archive:{arc}", f"oci:{tmp_path / 's'}:x"])
    assert image_summary(tmp_path / "s", "x") == src
