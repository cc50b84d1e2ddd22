"""Hostile layouts (from the project's hostile-input review): a layout directory prepared by
someone else must never make ocilearn read, write or delete outside it, hang, or exhaust
memory."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from contextlib import contextmanager

import pytest

from ocilearn.core.errors import InvalidDocument, LayoutError, UnsupportedAlgorithm
from ocilearn.image import mediatypes as mt
from ocilearn.image.digest import Digest
from ocilearn.image.layout import ImageLayout
from ocilearn.image.model import Descriptor, Index, dumps


@contextmanager
def deadline(seconds: int):
    """Turn a hang into a test failure."""

    def boom(*_):
        raise AssertionError(f"hung for more than {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def image(tmp_path):
    lay = ImageLayout.init(tmp_path / "l")
    cfg = lay.put_json(mt.OCI_CONFIG, b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
    man = lay.put_json(mt.OCI_MANIFEST, dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": cfg.to_dict(), "layers": []}))
    lay.add_ref("latest", man)
    return lay, man


def test_gc_refuses_a_symlinked_blob_store_and_deletes_nothing_outside(tmp_path):
    lay, _ = image(tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    fake = hashlib.sha256(b"victim").hexdigest()
    (victim / fake).write_text("victim")
    store = lay.path / "blobs" / "sha256"
    for f in store.iterdir():
        (victim / f.name).write_bytes(f.read_bytes())
        f.unlink()
    store.rmdir()
    store.symlink_to(victim)
    with pytest.raises(LayoutError, match="is a symlink"):
        lay.gc()
    assert (victim / fake).read_text() == "victim"
    report = lay.fsck()
    assert not report.ok and any("symlink" in why for _, why in report.corrupt)
    with pytest.raises(LayoutError, match="is a symlink"):
        lay.put_blob(b"new")
    assert sorted(p.name for p in victim.iterdir()) == sorted([fake, *[p.name for p in victim.iterdir() if p.name != fake]])
    assert len(list(victim.iterdir())) == 3  # fake + config + manifest: nothing written there


def test_put_blob_refuses_a_symlinked_algorithm_dir(tmp_path):
    lay, _ = image(tmp_path)
    victim = tmp_path / "victim512"
    victim.mkdir()
    (lay.path / "blobs" / "sha512").symlink_to(victim)
    with pytest.raises(LayoutError, match="sha512: is a symlink"):
        lay.put_blob(b"data", algorithm="sha512")
    assert list(victim.iterdir()) == []


def test_a_blob_that_is_a_symlink_is_not_followed(tmp_path):
    lay, man = image(tmp_path)
    secret = tmp_path / "secret"
    secret.write_bytes(lay.read_blob(man))  # even with the right bytes behind it
    path = lay.blob_path(man.digest)
    path.unlink()
    path.symlink_to(secret)
    with pytest.raises(LayoutError, match="is a symlink"):
        lay.read_blob(man)
    assert not lay.has_blob(man.digest)


@pytest.mark.parametrize("what", ["oci-layout", "index.json", "blob"])
def test_fifos_and_devices_are_refused_without_hanging(tmp_path, what):
    lay, man = image(tmp_path)
    target = {"oci-layout": lay.path / "oci-layout", "index.json": lay.path / "index.json", "blob": lay.blob_path(man.digest)}[what]
    target.unlink()
    os.mkfifo(target)
    with deadline(10), pytest.raises(LayoutError, match="not a regular file"):
        ImageLayout.open(lay.path).resolve("latest")


def test_oci_layout_pointing_at_dev_zero_is_refused_at_once(tmp_path):
    lay, _ = image(tmp_path)
    (lay.path / "oci-layout").unlink()
    (lay.path / "oci-layout").symlink_to("/dev/zero")
    with deadline(10), pytest.raises(LayoutError, match="symlink"):
        ImageLayout.open(lay.path)


def test_oversized_index_json_is_refused_before_parsing(tmp_path):
    lay, _ = image(tmp_path)
    (lay.path / "index.json").write_bytes(b'{"schemaVersion":2,"manifests":[]' + b" " * (5 << 20) + b"}")
    with pytest.raises(InvalidDocument, match="4194304-byte limit"):
        lay.index()


def test_deeply_nested_json_is_an_invalid_document(tmp_path):
    lay, _ = image(tmp_path)
    (lay.path / "index.json").write_bytes(b'{"schemaVersion":2,"manifests":[],"x":' + b"[" * 100000 + b"]" * 100000 + b"}")
    with pytest.raises(InvalidDocument, match="nested too deeply"):
        lay.index()


def test_duplicate_keys_are_refused(tmp_path):
    with pytest.raises(InvalidDocument, match="'schemaVersion' appears twice"):
        Index.from_json(b'{"schemaVersion":2,"schemaVersion":1,"manifests":[]}', "dup.json")


def test_a_long_chain_of_nested_indexes_stops_at_the_limit(tmp_path):
    lay, man = image(tmp_path)
    top = man
    for _ in range(40):  # index -> index -> ... -> manifest, no platforms
        top = lay.put_json(mt.OCI_INDEX, dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [top.to_dict()]}))
    lay.add_ref("deep", top)
    with pytest.raises(InvalidDocument, match="nested deeper than 16"):
        lay.resolve("deep")
    assert lay.resolve("latest").digest == man.digest


def test_an_unregistered_algorithm_never_becomes_a_path(tmp_path):
    lay, _ = image(tmp_path)
    d = Digest("foo", "a" * 100000)
    with pytest.raises(UnsupportedAlgorithm):
        lay.blob_path(d)
    desc = Descriptor(mt.OCI_LAYER_GZIP, d, 3)
    with pytest.raises(UnsupportedAlgorithm):
        lay.read_blob(desc)
    idx = json.loads((lay.path / "index.json").read_bytes())
    idx["manifests"].append(desc.to_dict() | {"mediaType": mt.OCI_MANIFEST})
    (lay.path / "index.json").write_bytes(json.dumps(idx).encode())
    report = lay.fsck()
    assert not report.ok and any("not supported" in why for _, why in report.corrupt)
