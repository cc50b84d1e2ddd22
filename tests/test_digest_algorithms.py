"""Digest algorithms end to end: an image whose manifest, config and one layer (blob and
diff ID) are sha512-addressed, built with ocilearn.image.build, then copied layout to
layout, unpacked, fsck-ed and inspected. Every digest is computed with the algorithm its
descriptor or config names (image-spec descriptor.md "Registered algorithms", config.md
"Layer DiffID", "Layer ChainID")."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

from ocilearn.bundle.unpack import unpack
from ocilearn.core.errors import OcilearnError
from ocilearn.image import build as B
from ocilearn.image.digest import Digest
from ocilearn.image.layout import ImageLayout
from ocilearn.image.model import chain_ids

ENV = dict(os.environ, PYTHONPATH=str(REPO))


def cli(*args):
    return subprocess.run([sys.executable, "-m", "ocilearn", *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)


@pytest.fixture
def sha512_image(tmp_path):
    lay = ImageLayout.init(tmp_path / "src")
    tar0 = B.layer_tar([B.directory("etc"), B.file("etc/hostname", b"box\n")])
    tar1 = B.layer_tar([B.file("etc/motd", b"sha512 layer\n", 0o600)])
    with lay.writing():
        l0 = B.add_layer(lay, tar0)  # sha256 blob and diff ID
        l1 = B.add_layer(lay, tar1, algorithm="sha512")  # sha512 blob and diff ID
        cfg = B.make_config([l0.diff_id, l1.diff_id], cmd=["/bin/sh"])
        desc = B.write_image(lay, [l0, l1], cfg, ref="latest", algorithm="sha512", config_algorithm="sha256")
    return {"path": tmp_path / "src", "desc": desc, "layers": (l0, l1), "tars": (tar0, tar1)}


def test_build_addresses_each_blob_with_the_algorithm_asked(sha512_image):
    l0, l1 = sha512_image["layers"]
    tar0, tar1 = sha512_image["tars"]
    desc = sha512_image["desc"]
    assert str(l0.diff_id) == "sha256:" + hashlib.sha256(tar0).hexdigest()
    assert str(l1.diff_id) == "sha512:" + hashlib.sha512(tar1).hexdigest()
    blob1 = (sha512_image["path"] / "blobs/sha512" / l1.descriptor.digest.encoded).read_bytes()
    assert str(l1.descriptor.digest) == "sha512:" + hashlib.sha512(blob1).hexdigest() and gzip.decompress(blob1) == tar1
    man = (sha512_image["path"] / "blobs/sha512" / desc.digest.encoded).read_bytes()
    assert str(desc.digest) == "sha512:" + hashlib.sha512(man).hexdigest() and len(man) == desc.size
    idx = json.loads((sha512_image["path"] / "index.json").read_text())
    assert idx["manifests"][0]["digest"] == str(desc.digest)


def test_chain_id_uses_the_diff_ids_algorithm(sha512_image):
    l0, l1 = sha512_image["layers"]
    c = chain_ids([l0.diff_id, l1.diff_id])
    assert c[0] == l0.diff_id
    assert str(c[1]) == "sha512:" + hashlib.sha512(f"{l0.diff_id} {l1.diff_id}".encode()).hexdigest()


def test_copy_fsck_inspect_unpack_a_sha512_image(sha512_image, tmp_path):
    src, desc = sha512_image["path"], sha512_image["desc"]
    r = cli("copy", f"oci:{src}:latest", f"oci:{tmp_path / 'dst'}:v1")
    assert r.returncode == 0, r.stderr
    dst = ImageLayout.open(tmp_path / "dst")
    assert dst.refs()["v1"].digest == desc.digest
    assert (tmp_path / "dst/blobs/sha512" / desc.digest.encoded).read_bytes() == (src / "blobs/sha512" / desc.digest.encoded).read_bytes()
    r = cli("layout", "fsck", str(tmp_path / "dst"))
    assert r.returncode == 0 and "checked 4 reachable blobs: OK" in r.stdout, r.stdout + r.stderr
    r = cli("inspect", f"oci:{tmp_path / 'dst'}:v1")
    assert r.returncode == 0, r.stderr
    assert str(desc.digest) in r.stdout and str(sha512_image["layers"][1].descriptor.digest) in r.stdout
    res = unpack(f"{tmp_path / 'dst'}:v1", tmp_path / "bundle", rootless=False)
    assert (res.rootfs / "etc/hostname").read_bytes() == b"box\n"
    assert (res.rootfs / "etc/motd").read_bytes() == b"sha512 layer\n" and (res.rootfs / "etc/motd").stat().st_mode & 0o777 == 0o600
    meta = json.loads((tmp_path / "bundle/ocilearn.json").read_text())
    assert meta["chain_ids"] == [str(c) for c in chain_ids([s.diff_id for s in sha512_image["layers"]])]
    assert meta["chain_ids"][1].startswith("sha512:")


def test_a_flipped_byte_in_a_sha512_blob_is_named_with_its_algorithm(sha512_image):
    l1 = sha512_image["layers"][1]
    p = sha512_image["path"] / "blobs/sha512" / l1.descriptor.digest.encoded
    data = bytearray(p.read_bytes())
    data[-1] ^= 1
    os.chmod(p, 0o644)
    p.write_bytes(bytes(data))
    r = cli("layout", "fsck", str(sha512_image["path"]))
    assert r.returncode == 1 and f"corrupt  {l1.descriptor.digest}" in r.stdout, r.stdout
    with pytest.raises(OcilearnError, match="sha512"):
        unpack(f"{sha512_image['path']}:latest", sha512_image["path"].parent / "b2", rootless=False)


def test_a_wrong_sha512_diff_id_is_named_with_its_algorithm(tmp_path):
    lay = ImageLayout.init(tmp_path / "l")
    tar = B.layer_tar([B.file("a", b"a")])
    with lay.writing():
        layer = B.add_layer(lay, tar, algorithm="sha512")
        wrong = B.Layer(layer.descriptor, Digest.of(tar + b"x", "sha512"))
        cfg = B.make_config([wrong.diff_id], cmd=["x"])
        B.write_image(lay, [wrong], cfg, ref="latest", algorithm="sha512")
    with pytest.raises(OcilearnError, match=r"sha512") as e:
        unpack(f"{tmp_path / 'l'}:latest", tmp_path / "b", rootless=False)
    assert str(wrong.diff_id) in str(e.value) or wrong.diff_id.short in str(e.value)


def test_a_changed_sha512_manifest_and_an_unknown_algorithm_are_named(sha512_image):
    desc = sha512_image["desc"]
    lay = ImageLayout.open(sha512_image["path"])
    p = lay.blob_path(desc.digest)
    data = bytearray(p.read_bytes())
    data[5] ^= 1
    os.chmod(p, 0o644)
    p.write_bytes(bytes(data))
    got = "sha512:" + hashlib.sha512(bytes(data)).hexdigest()
    with pytest.raises(OcilearnError, match=f"expected {desc.digest}, got {got}"):
        lay.resolve("latest")
    with pytest.raises(OcilearnError, match="digest algorithm 'md5' is not supported"):
        B.add_layer(lay, b"x", algorithm="md5")
