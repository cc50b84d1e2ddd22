"""ocilearn.image.model: strict parsing, and every JSON document ocilearn writes validates against
the official image-spec JSON schemas (../shared/fixtures/image-spec-schema)."""

from __future__ import annotations

import json

import pytest
from conftest import built_image, oci_schema_validator

from ocilearn.core.errors import AmbiguousDocument, InvalidDigest, InvalidDocument
from ocilearn.image import build as ib
from ocilearn.image import embedded
from ocilearn.image import mediatypes as mt
from ocilearn.image.digest import Digest
from ocilearn.image.layout import ImageLayout
from ocilearn.image.model import Descriptor, ImageConfig, Index, Manifest, Platform, dumps, parse_document


def _errors(kind: str, doc) -> list[str]:
    obj = json.loads(doc) if isinstance(doc, (bytes, str)) else doc
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in oci_schema_validator(kind).iter_errors(obj)]


def _all_documents(layout: ImageLayout):
    """(kind, bytes) of index.json, oci-layout and every reachable JSON blob."""
    yield "layout", (layout.path / "oci-layout").read_bytes()
    yield "index", (layout.path / "index.json").read_bytes()
    for desc, _parent in layout.walk():
        if desc.kind in ("manifest", "index", "config"):
            yield desc.kind, layout.read_blob(desc)


def test_schema_validator_is_real():
    """The validator rejects what the schemas forbid (so a pass below means something)."""
    assert _errors("manifest", {"schemaVersion": 2, "config": {"mediaType": "x", "size": -1}, "layers": []})
    assert _errors("index", {"schemaVersion": 2, "manifests": [{"mediaType": mt.OCI_MANIFEST, "size": 1, "digest": "sha256:" + "a" * 64, "platform": {"os": "linux"}}]})
    assert _errors("layout", {"imageLayoutVersion": 1})


def test_written_layout_index_and_refs_validate(tmp_path):
    lay = ImageLayout.init(tmp_path / "l")
    assert _errors("layout", (lay.path / "oci-layout").read_bytes()) == []
    assert _errors("index", (lay.path / "index.json").read_bytes()) == []
    desc = ib.build_image(tmp_path / "l", [[ib.file("hello.txt", "hi\n")]], ref="v1", architecture="arm64", variant="v8",
                          cmd=["/hello"], env=["A=b"], labels={"k": "v"}, exposed_ports=["53/udp"], user="1000:1000",
                          annotations={"org.opencontainers.image.title": "t"})
    idx = ib.write_index(lay, [desc], ref="multi", annotations={"a": "b"})
    lay.add_ref("by-index", idx)
    docs = list(_all_documents(lay))
    assert {k for k, _ in docs} == {"layout", "index", "manifest", "config"}
    for kind, raw in docs:
        assert _errors(kind, raw) == [], (kind, raw)
    # what we wrote says what we meant
    m = json.loads(lay.read_blob(desc))
    assert m["mediaType"] == mt.OCI_MANIFEST and m["layers"][0]["mediaType"] == mt.OCI_LAYER_GZIP
    cfg = json.loads(lay.read_blob(lay.resolve("v1").manifest.config))
    assert cfg["architecture"] == "arm64" and cfg["variant"] == "v8"
    assert cfg["config"]["ExposedPorts"] == {"53/udp": {}} and cfg["rootfs"]["type"] == "layers"


def test_embedded_image_documents_validate():
    for kind, raw in _all_documents(embedded.open()):
        assert _errors(kind, raw) == [], kind


@pytest.mark.parametrize("name, documents", [("busybox", 2), ("multiarch", 5), ("debian", 2), ("debian-zstd", 2)])
def test_model_round_trip_of_real_documents_validates(name, documents):
    """Parse documents umoci/buildah/skopeo wrote, serialise them again with to_dict():
    the result validates and keeps every field the model knows."""
    lay = ImageLayout.open(built_image(name))
    seen = 0
    for desc, _ in lay.walk():
        raw = lay.read_blob(desc) if desc.kind in ("manifest", "index", "config") else None
        if raw is None:
            continue
        if desc.kind == "config":
            doc = ImageConfig.from_json(raw)
        else:
            doc = parse_document(raw, desc.media_type, str(desc.digest))
        fresh = dumps(doc.to_dict())
        assert _errors(desc.kind, fresh) == []
        orig, again = json.loads(raw), json.loads(fresh)
        if desc.kind == "config":
            assert again["rootfs"] == orig["rootfs"] and again.get("config") == orig.get("config")
        else:
            key = "manifests" if desc.kind == "index" else "layers"
            assert again[key] == orig[key]
        seen += 1
    assert seen == documents  # manifests + indexes + configs reachable


def test_descriptor_all_fields_validate_and_round_trip():
    data = b'{"hello":"world"}'
    d = Descriptor(
        media_type=mt.OCI_MANIFEST,
        digest=Digest.of(data),
        size=len(data),
        urls=("https://example.invalid/blob",),
        annotations={"org.opencontainers.image.ref.name": "x"},
        data=data,
        platform=Platform("linux", "arm", "v7", os_version="10.0", os_features=("f1",)),
        artifact_type="application/vnd.example+json",
    )
    obj = d.to_dict()
    assert _errors("descriptor", obj) == []
    assert Descriptor.from_json(obj) == d
    assert obj["platform"] == {"architecture": "arm", "os": "linux", "os.version": "10.0", "os.features": ["f1"], "variant": "v7"}


@pytest.mark.parametrize(
    "doc, field",
    [
        ({"schemaVersion": 2, "layers": []}, "config"),
        ({"schemaVersion": 2, "config": {"mediaType": mt.OCI_CONFIG, "size": "12", "digest": "sha256:" + "a" * 64}, "layers": []}, "size"),
        ({"schemaVersion": 2, "config": {"mediaType": mt.OCI_CONFIG, "size": 12, "digest": "sha256:" + "a" * 64}, "layers": {}}, "layers"),
        ({"schemaVersion": "2", "config": {}, "layers": []}, "schemaVersion"),
        ({"schemaVersion": 2, "config": {"mediaType": mt.OCI_CONFIG, "size": True, "digest": "sha256:" + "a" * 64}, "layers": []}, "size"),
    ],
)
def test_manifest_strict_errors_name_source_and_field(doc, field):
    with pytest.raises(InvalidDocument) as e:
        Manifest.from_json(json.dumps(doc).encode(), "blobs/sha256/abc")
    assert "blobs/sha256/abc" in str(e.value) and field in str(e.value)


def test_bad_digest_in_descriptor_is_invalid_digest_naming_the_field():
    doc = {"schemaVersion": 2, "manifests": [{"mediaType": mt.OCI_MANIFEST, "size": 2, "digest": "sha256:../../etc/passwd"}]}
    with pytest.raises(InvalidDigest) as e:
        Index.from_json(json.dumps(doc), "index.json")
    assert "index.json" in str(e.value) and "manifests[0]" in str(e.value)


def test_config_requires_rootfs_layers():
    with pytest.raises(InvalidDocument, match="rootfs"):
        ImageConfig.from_json({"architecture": "amd64", "os": "linux"}, "cfg")
    with pytest.raises(InvalidDocument, match="rootfs.type"):
        ImageConfig.from_json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "x", "diff_ids": []}}, "cfg")


def test_mediatype_disagreeing_with_descriptor_is_refused():
    m = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": {"mediaType": mt.OCI_CONFIG, "size": 2, "digest": "sha256:" + "a" * 64}, "layers": []}
    with pytest.raises(AmbiguousDocument):
        parse_document(json.dumps(m).encode(), mt.OCI_INDEX, "x")
