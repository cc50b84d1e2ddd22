"""ocilearn.image.build: deterministic layer tars (never duplicate entries: layer.md 'Distributable Format'),
reproducible gzip, config/manifest/index written through the layout."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile

import pytest
from conftest import require_tool, run

from ocilearn.core.errors import LayerError
from ocilearn.image import build as ib
from ocilearn.image import mediatypes as mt
from ocilearn.image.digest import Digest
from ocilearn.image.layout import ImageLayout


@pytest.fixture
def tree(tmp_path):
    r = tmp_path / "tree"
    (r / "usr" / "bin").mkdir(parents=True)
    (r / "etc").mkdir()
    (r / "a-b").mkdir()
    (r / "a" / "b").mkdir(parents=True)
    (r / "usr" / "bin" / "tool").write_bytes(b"#!/bin/sh\necho tool\n")
    os.chmod(r / "usr" / "bin" / "tool", 0o4755)
    (r / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    os.link(r / "etc" / "hosts", r / "z-hardlink")  # first name in tar order: etc/hosts
    os.link(r / "etc" / "hosts", r / "a" / "b" / "also-hosts")  # sorts before etc/: becomes the file
    os.symlink("../etc/hosts", r / "usr" / "hosts-link")
    os.mkfifo(r / "fifo", 0o600)
    (r / "name with spaces – ü.txt").write_text("unicode\n")
    long_dir = r / ("d" * 60) / ("e" * 60)
    long_dir.mkdir(parents=True)
    (long_dir / ("f" * 110)).write_text("long\n")
    os.chmod(r / "etc", 0o750)
    return r


def test_layer_from_a_tree_has_unique_sorted_members(tree):
    entries = ib.entries_from_tree(tree)
    data = ib.layer_tar(entries, mtime=1234567890)
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        members = t.getmembers()
    names = [m.name for m in members]
    assert len(names) == len(set(names)) == 16
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert names.index("a") < names.index("a/b") < names.index("a-b")  # a directory right before its children
    first = names.index("a/b/also-hosts")
    for link in ("etc/hosts", "z-hardlink"):
        m = members[names.index(link)]
        assert m.islnk() and m.linkname == "a/b/also-hosts" and names.index(link) > first
    by = {m.name: m for m in members}
    assert by["usr/bin/tool"].mode == 0o4755 and by["etc"].mode == 0o750 and by["fifo"].isfifo()
    assert by["usr/hosts-link"].issym() and by["usr/hosts-link"].linkname == "../etc/hosts"
    assert {m.mtime for m in members} == {1234567890} and {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    assert "name with spaces – ü.txt" in by and any(len(n) > 200 for n in names)
    # GNU tar reads it back to the same tree
    require_tool("tar")
    listing = subprocess.run(["tar", "-tvf", "-"], input=data, capture_output=True, check=True).stdout.decode()
    assert "a/b/also-hosts" in listing and "link to a/b/also-hosts" in listing


def test_writer_refuses_duplicates():
    with pytest.raises(LayerError, match="given twice: a layer MUST NOT contain duplicate entries"):
        ib.layer_tar([ib.file("f", "first"), ib.file("f", "second")])
    with pytest.raises(LayerError, match="duplicate"):
        ib.layer_tar([ib.directory("d", 0o700), ib.directory("/d/", 0o755)])
    with pytest.raises(LayerError, match="given twice"):
        ib.layer_tar([ib.file("g", "x"), ib.symlink("./g", "f")])
    with pytest.raises(LayerError, match=r"\.\."):
        ib.layer_tar([ib.file("../escape", "x")])
    with pytest.raises(LayerError, match="not an earlier file"):
        ib.layer_tar([ib.Entry("a", "hardlink", linkname="b"), ib.file("b", "x")])


def test_parents_added_and_bytes_deterministic():
    entries = [ib.file("x/y/z.txt", "z"), ib.symlink("x/l", "y")]
    a, b = ib.layer_tar(entries), ib.layer_tar(list(reversed(entries)))
    assert a == b
    with tarfile.open(fileobj=io.BytesIO(a)) as t:
        assert [(m.name, m.isdir(), m.mode) for m in t.getmembers()] == [
            ("x", True, 0o755), ("x/l", False, 0o777), ("x/y", True, 0o755), ("x/y/z.txt", False, 0o644)]
    assert ib.layer_tar(entries, mtime=1) != a
    gz = ib.compress(a)
    assert gz == ib.compress(a) and gz[4:8] == b"\0\0\0\0" and not gz[3] & 0x08  # mtime 0, no FNAME
    assert gzip.decompress(gz) == a
    import zstandard

    assert zstandard.ZstdDecompressor().decompress(ib.compress(a, "zstd")) == a
    with pytest.raises(LayerError, match="unknown layer compression"):
        ib.compress(a, "bzip2")


def test_image_written_through_layout_is_consistent(tmp_path):
    lay = ImageLayout.init(tmp_path / "l")
    layers = [ib.add_layer(lay, [ib.file("one", "1")]), ib.add_layer(lay, [ib.file("two", "2")], compression="zstd"),
              ib.add_layer(lay, ib.layer_tar([ib.file("three", "3")]), compression="none")]
    cfg = ib.make_config([x.diff_id for x in layers], cmd=["/one"], history=["l1", "l2", "l3"], created=0)
    desc = ib.write_image(lay, layers, cfg, ref="v1")
    img = lay.resolve("v1")
    assert img.digest == desc.digest
    assert [d.media_type for d in img.manifest.layers] == [mt.OCI_LAYER_GZIP, mt.OCI_LAYER_ZSTD, mt.OCI_LAYER_TAR]
    got = lay.image_config(img)
    assert got.created == "1970-01-01T00:00:00Z" and [h.created_by for h in got.history] == ["l1", "l2", "l3"]
    # diff IDs are the sha256 of the uncompressed tars
    assert got.diff_ids[0] == Digest.of(gzip.decompress(lay.read_blob(img.manifest.layers[0])))
    assert got.diff_ids[2] == img.manifest.layers[2].digest
    assert lay.fsck().ok
    with pytest.raises(LayerError, match="diff_ids"):
        ib.write_image(lay, layers[:2], cfg)
    with pytest.raises(LayerError, match="history"):
        ib.make_config([layers[0].diff_id], history=["a", "b"])


def test_umoci_unpacks_a_tree_we_packed_with_owners(tmp_path, tree):
    require_tool("umoci")
    if os.geteuid() == 0:
        os.chown(tree / "etc" / "hosts", 1000, 1001)
    ib.build_image(tmp_path / "l", [ib.entries_from_tree(tree, keep_owners=True)], ref="t")
    cmd = ["umoci", "unpack", "--image", f"{tmp_path / 'l'}:t", str(tmp_path / "b")]
    if os.geteuid() != 0:
        cmd.insert(2, "--rootless")
    run(cmd)
    r = tmp_path / "b" / "rootfs"
    assert (r / "usr" / "bin" / "tool").read_bytes() == b"#!/bin/sh\necho tool\n"
    assert (r / "usr" / "bin" / "tool").stat().st_mode & 0o7777 == 0o4755
    assert os.readlink(r / "usr" / "hosts-link") == "../etc/hosts"
    st = (r / "etc" / "hosts").stat()
    assert st.st_ino == (r / "a" / "b" / "also-hosts").stat().st_ino == (r / "z-hardlink").stat().st_ino
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1000, 1001)
