"""The OCI data model as frozen dataclasses, parsed strictly.

- :class:`Descriptor` — image-spec descriptor.md
- :class:`Platform` — image-spec image-index.md ``platform``
- :class:`Manifest` — image-spec manifest.md (also Docker schema2 manifests)
- :class:`Index` — image-spec image-index.md (also Docker manifest lists)
- :class:`ImageConfig` / :class:`ContainerConfig` — image-spec config.md

``X.from_json(data, source=...)`` takes ``bytes``/``str``/``dict``; wrong types, missing
required fields and ambiguous documents raise :class:`~ocilearn.core.errors.InvalidDocument`
(or :class:`~ocilearn.core.errors.AmbiguousDocument`) naming ``source`` (a file or a digest)
and the field. Unknown fields are ignored, as the spec requires of readers
(manifest.md: "MUST NOT generate an error if they encounter an unknown property").
``to_dict()`` / ``to_json()`` write them back; the output validates against the official
JSON schemas. Parsed documents keep the exact bytes they came from in ``raw`` (so a
digest is always computed over the bytes that were verified).
"""

from __future__ import annotations

import base64
import binascii
import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..core.errors import AmbiguousDocument, InvalidDigest, InvalidDocument
from . import mediatypes as mt
from .digest import Digest, verify_bytes

REF_NAME = "org.opencontainers.image.ref.name"


# --------------------------------------------------------------------------- helpers


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _DuplicateKey(k)
            seen.add(k)
    return obj


def _load(data: bytes | str | Mapping, source: str) -> dict:
    if isinstance(data, Mapping):
        return dict(data)
    try:
        obj = json.loads(data, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as e:
        raise InvalidDocument(
            f"{source}: key {e.args[0]!r} appears twice in one object; refused, since two parsers could "
            "read different values (RFC 8259 §4: names SHOULD be unique)"
        ) from None
    except RecursionError:
        raise InvalidDocument(f"{source}: JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidDocument(f"{source}: not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise InvalidDocument(f"{source}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _type_name(t) -> str:
    if isinstance(t, tuple):
        return " or ".join(_type_name(x) for x in t)
    return {str: "string", int: "integer", list: "array", dict: "object", bool: "boolean"}.get(t, t.__name__)


def _get(obj: dict, key: str, typ, source: str, *, required: bool = False, default=None):
    if key not in obj or (obj[key] is None and not required):
        if required:
            raise InvalidDocument(f"{source}: required field {key!r} is missing")
        return default
    value = obj[key]
    # bool is a subclass of int: never accept it where a number is wanted
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise InvalidDocument(f"{source}: field {key!r} must be {_type_name(typ)}, got {json.dumps(value)[:80]}")
    return value


def _str_map(obj: dict, key: str, source: str) -> dict[str, str] | None:
    value = _get(obj, key, dict, source)
    if value is None:
        return None
    for k, v in value.items():
        if not isinstance(v, str):
            raise InvalidDocument(f"{source}: {key}[{k!r}] must be a string, got {json.dumps(v)[:80]}")
    return dict(value)


def _str_list(obj: dict, key: str, source: str, *, keep_null: bool = False) -> list[str] | None:
    if key in obj and obj[key] is None:
        return None
    value = _get(obj, key, list, source)
    if value is None:
        return None
    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise InvalidDocument(f"{source}: {key}[{i}] must be a string, got {json.dumps(v)[:80]}")
    return list(value)


def _digest(obj: dict, key: str, source: str) -> Digest:
    raw = _get(obj, key, str, source, required=True)
    try:
        return Digest.parse(raw)
    except InvalidDigest as e:
        raise InvalidDigest(f"{source}: field {key!r}: {e}") from None


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def dumps(obj: dict) -> bytes:
    """Serialise a JSON document as ocilearn writes it: compact, UTF-8, key order kept."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


# --------------------------------------------------------------------------- Platform


@dataclass(frozen=True)
class Platform:
    """The platform an image runs on (image-spec image-index.md ``platform``).

    Attributes: ``os`` and ``architecture`` (GOOS/GOARCH values, e.g. ``linux``/``arm64``),
    ``variant`` (e.g. ``v8``, ``v7``), ``os_version``, ``os_features`` (list of str).
    """

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] | None = None

    @classmethod
    def from_json(cls, data, source: str = "platform") -> "Platform":
        obj = _load(data, source)
        feats = _str_list(obj, "os.features", source)
        return cls(
            os=_get(obj, "os", str, source, required=True),
            architecture=_get(obj, "architecture", str, source, required=True),
            variant=_get(obj, "variant", str, source),
            os_version=_get(obj, "os.version", str, source),
            os_features=tuple(feats) if feats is not None else None,
        )

    @classmethod
    def parse(cls, text: str) -> "Platform":
        """Parse ``os/arch[/variant]`` (as ``--platform`` takes it), e.g. ``linux/arm/v7``.

        Raises:
            InvalidDocument: not two or three non-empty parts.
        """
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidDocument(f"platform {text!r}: expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm/v7")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def to_dict(self) -> dict:
        return _drop_none(
            {
                "architecture": self.architecture,
                "os": self.os,
                "os.version": self.os_version,
                "os.features": list(self.os_features) if self.os_features is not None else None,
                "variant": self.variant,
            }
        )

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


# --------------------------------------------------------------------------- Descriptor


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor (image-spec descriptor.md): what a blob is, where, how big.

    Attributes:
        media_type: the blob's media type (str).
        digest: its :class:`~ocilearn.image.digest.Digest`.
        size: its length in bytes (int ≥ 0).
        urls: optional list of URLs it may be fetched from (non-distributable layers).
        annotations: optional ``dict[str, str]``.
        data: optional embedded content (already base64-decoded and verified).
        platform: optional :class:`Platform` (in an index).
        artifact_type: optional ``artifactType``.
    """

    media_type: str
    digest: Digest
    size: int
    urls: tuple[str, ...] | None = None
    annotations: Mapping[str, str] | None = field(default=None, hash=False)
    data: bytes | None = None
    platform: Platform | None = None
    artifact_type: str | None = None

    @classmethod
    def from_json(cls, data, source: str = "descriptor") -> "Descriptor":
        """Parse a descriptor object.

        Raises:
            InvalidDocument: missing ``mediaType``/``digest``/``size``, wrong types, negative
                size, ``data`` that is not base64 or does not match digest and size.
            InvalidDigest: a digest that breaks descriptor.md's grammar (it would end up in a file path or URL).
        """
        obj = _load(data, source)
        size = _get(obj, "size", int, source, required=True)
        if size < 0:
            raise InvalidDocument(f"{source}: field 'size' must be >= 0, got {size}")
        digest = _digest(obj, "digest", source)
        urls = _str_list(obj, "urls", source)
        embedded = _get(obj, "data", str, source)
        blob = None
        if embedded is not None:
            try:
                blob = base64.b64decode(embedded, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidDocument(f"{source}: field 'data' is not valid base64") from None
            verify_bytes(blob, digest, size, f"{source} (embedded data)")
        plat = obj.get("platform")
        return cls(
            media_type=_get(obj, "mediaType", str, source, required=True),
            digest=digest,
            size=size,
            urls=tuple(urls) if urls is not None else None,
            annotations=_str_map(obj, "annotations", source),
            data=blob,
            platform=Platform.from_json(plat, f"{source}.platform") if plat is not None else None,
            artifact_type=_get(obj, "artifactType", str, source),
        )

    @classmethod
    def for_bytes(cls, media_type: str, content: bytes, **kw) -> "Descriptor":
        """A descriptor for ``content``: sha256 digest and size computed."""
        return cls(media_type=media_type, digest=Digest.of(content), size=len(content), **kw)

    def to_dict(self) -> dict:
        return _drop_none(
            {
                "mediaType": self.media_type,
                "digest": str(self.digest),
                "size": self.size,
                "urls": list(self.urls) if self.urls is not None else None,
                "annotations": dict(self.annotations) if self.annotations is not None else None,
                "data": base64.b64encode(self.data).decode() if self.data is not None else None,
                "platform": self.platform.to_dict() if self.platform is not None else None,
                "artifactType": self.artifact_type,
            }
        )

    @property
    def ref_name(self) -> str | None:
        """The ``org.opencontainers.image.ref.name`` annotation (a tag in index.json)."""
        return (self.annotations or {}).get(REF_NAME)

    @property
    def kind(self) -> str:
        """index, manifest, config, layer or blob (from the media type)."""
        return mt.kind(self.media_type)

    def with_annotations(self, annotations: Mapping[str, str] | None) -> "Descriptor":
        from dataclasses import replace

        return replace(self, annotations=dict(annotations) if annotations else None)


def _descriptors(obj: dict, key: str, source: str, *, required: bool) -> tuple[Descriptor, ...]:
    value = _get(obj, key, list, source, required=required)
    if value is None:
        return ()
    out = []
    for i, d in enumerate(value):
        if not isinstance(d, dict):
            raise InvalidDocument(f"{source}: {key}[{i}] must be an object (a descriptor)")
        out.append(Descriptor.from_json(d, f"{source}: {key}[{i}]"))
    return tuple(out)


def _schema_version(obj: dict, source: str) -> None:
    v = _get(obj, "schemaVersion", int, source, required=True)
    if v != 2:
        raise InvalidDocument(f"{source}: schemaVersion must be 2, got {v} (schema 1 manifests are not supported)")


# --------------------------------------------------------------------------- Manifest


@dataclass(frozen=True)
class Manifest:
    """An image manifest (image-spec manifest.md) or a Docker schema2 manifest.

    Attributes:
        config: :class:`Descriptor` of the image config (or of an artifact's config).
        layers: tuple of layer :class:`Descriptor` s, base first.
        media_type: the document's ``mediaType`` field, or ``None`` when absent
            (umoci writes none; the descriptor pointing here then says the type).
        artifact_type, subject, annotations: as in the spec.
        raw: the exact bytes parsed (``None`` when built in memory).
    """

    config: Descriptor
    layers: tuple[Descriptor, ...] = ()
    media_type: str | None = mt.OCI_MANIFEST
    artifact_type: str | None = None
    subject: Descriptor | None = None
    annotations: Mapping[str, str] | None = field(default=None, hash=False)
    raw: bytes | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_json(cls, data, source: str = "manifest", descriptor_type: str | None = None) -> "Manifest":
        """Parse a manifest.

        Args:
            data: bytes (kept in ``raw``), str or dict.
            source: named in errors (a path or digest).
            descriptor_type: the media type of the descriptor that pointed here, if any.

        Raises:
            InvalidDocument: see the module docstring.
            AmbiguousDocument: ``manifests`` present too (CVE-2021-41190), or ``mediaType``
                not a manifest type / not the descriptor's type.
        """
        obj = _load(data, source)
        _schema_version(obj, source)
        media_type = _get(obj, "mediaType", str, source)
        if "manifests" in obj:
            raise AmbiguousDocument(
                f"{source}: document has 'manifests' as well as manifest fields; it could be read as an "
                "index or as a manifest (CVE-2021-41190): refused"
            )
        _check_type(media_type, descriptor_type, mt.MANIFEST_TYPES, "manifest", source)
        subj = obj.get("subject")
        return cls(
            config=Descriptor.from_json(_get(obj, "config", dict, source, required=True), f"{source}: config"),
            layers=_descriptors(obj, "layers", source, required=True),
            media_type=media_type,
            artifact_type=_get(obj, "artifactType", str, source),
            subject=Descriptor.from_json(subj, f"{source}: subject") if subj is not None else None,
            annotations=_str_map(obj, "annotations", source),
            raw=data if isinstance(data, bytes) else None,
        )

    def to_dict(self) -> dict:
        return _drop_none(
            {
                "schemaVersion": 2,
                "mediaType": self.media_type,
                "artifactType": self.artifact_type,
                "config": self.config.to_dict(),
                "layers": [d.to_dict() for d in self.layers],
                "subject": self.subject.to_dict() if self.subject else None,
                "annotations": dict(self.annotations) if self.annotations is not None else None,
            }
        )

    def to_json(self) -> bytes:
        """The bytes to store: ``raw`` when parsed from bytes, else a fresh serialisation."""
        return self.raw if self.raw is not None else dumps(self.to_dict())

    def children(self) -> tuple[Descriptor, ...]:
        """config first, then the layers (the blobs this manifest references)."""
        return (self.config, *self.layers)


# --------------------------------------------------------------------------- Index


@dataclass(frozen=True)
class Index:
    """An image index (image-spec image-index.md) or a Docker manifest list; also the
    layout's ``index.json``.

    Attributes:
        manifests: tuple of :class:`Descriptor`, each usually with a ``platform``.
        media_type, artifact_type, subject, annotations, raw: as for :class:`Manifest`.
    """

    manifests: tuple[Descriptor, ...] = ()
    media_type: str | None = mt.OCI_INDEX
    artifact_type: str | None = None
    subject: Descriptor | None = None
    annotations: Mapping[str, str] | None = field(default=None, hash=False)
    raw: bytes | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_json(cls, data, source: str = "index", descriptor_type: str | None = None) -> "Index":
        """Parse an image index. Raises like :meth:`Manifest.from_json` (``layers`` or
        ``config`` present → :class:`~ocilearn.core.errors.AmbiguousDocument`)."""
        obj = _load(data, source)
        _schema_version(obj, source)
        media_type = _get(obj, "mediaType", str, source)
        if "layers" in obj or "config" in obj:
            raise AmbiguousDocument(
                f"{source}: document has 'layers'/'config' as well as index fields; it could be read as a "
                "manifest or as an index (CVE-2021-41190): refused"
            )
        _check_type(media_type, descriptor_type, mt.INDEX_TYPES, "index", source)
        subj = obj.get("subject")
        return cls(
            manifests=_descriptors(obj, "manifests", source, required=True),
            media_type=media_type,
            artifact_type=_get(obj, "artifactType", str, source),
            subject=Descriptor.from_json(subj, f"{source}: subject") if subj is not None else None,
            annotations=_str_map(obj, "annotations", source),
            raw=data if isinstance(data, bytes) else None,
        )

    def to_dict(self) -> dict:
        return _drop_none(
            {
                "schemaVersion": 2,
                "mediaType": self.media_type,
                "artifactType": self.artifact_type,
                "manifests": [d.to_dict() for d in self.manifests],
                "subject": self.subject.to_dict() if self.subject else None,
                "annotations": dict(self.annotations) if self.annotations is not None else None,
            }
        )

    def to_json(self) -> bytes:
        return self.raw if self.raw is not None else dumps(self.to_dict())

    def children(self) -> tuple[Descriptor, ...]:
        return self.manifests


def _check_type(media_type, descriptor_type, allowed, what, source) -> None:
    if media_type is not None and media_type not in allowed:
        raise AmbiguousDocument(f"{source}: mediaType {media_type!r} is not an {what} type (expected one of {sorted(allowed)})")
    if media_type is not None and descriptor_type is not None and media_type != descriptor_type:
        if descriptor_type in allowed:
            # Same kind, other vendor (an OCI descriptor over a Docker schema2 manifest, as
            # go-containerregistry writes in layouts): no manifest/index confusion is
            # possible, so the document's own mediaType is used, with a warning.
            warnings.warn(f"{source}: descriptor says {descriptor_type!r}, document says {media_type!r}; using the document's", stacklevel=3)
            return
        raise AmbiguousDocument(
            f"{source}: the document says mediaType {media_type!r} but its descriptor says {descriptor_type!r} "
            "(image-spec descriptor.md: they must agree)"
        )
    if media_type is None and descriptor_type is not None and descriptor_type not in allowed:
        raise AmbiguousDocument(f"{source}: descriptor media type {descriptor_type!r} is not an {what} type")


def parse_document(data: bytes, media_type: str | None, source: str) -> Manifest | Index:
    """Parse a manifest-or-index document whose kind comes from its own ``mediaType`` or,
    when that is absent, from ``media_type`` (the descriptor's or the HTTP Content-Type).

    A document without ``mediaType`` that has both ``manifests`` and ``layers``/``config``
    is refused whatever the descriptor says (image-index.md / manifest.md: a document is one or the other).

    Raises:
        InvalidDocument, AmbiguousDocument.
    """
    obj = _load(data, source)
    own = obj.get("mediaType")
    if "manifests" in obj and ("layers" in obj or "config" in obj):
        raise AmbiguousDocument(
            f"{source}: document has both 'manifests' and 'layers'/'config'; it could be an index or a manifest "
            "(CVE-2021-41190): refused"
        )
    kind = own if isinstance(own, str) else media_type
    if kind in mt.INDEX_TYPES:
        return Index.from_json(data, source, media_type)
    if kind in mt.MANIFEST_TYPES:
        return Manifest.from_json(data, source, media_type)
    if kind is None:
        # no type anywhere: only a document whose shape says it can be parsed
        if "manifests" in obj:
            return Index.from_json(data, source)
        if "config" in obj or "layers" in obj:
            return Manifest.from_json(data, source)
    raise InvalidDocument(f"{source}: media type {kind!r} is neither an image manifest nor an image index")


# --------------------------------------------------------------------------- ImageConfig


@dataclass(frozen=True)
class ContainerConfig:
    """The ``config`` object of an image config (config.md "Properties"): execution
    parameters a runtime should use. ``None`` means "absent or null"; ``[]`` means an
    explicit empty list (they differ for Entrypoint/Cmd: conversion.md, Docker's Entrypoint/Cmd rules)."""

    user: str | None = None
    exposed_ports: Mapping[str, Any] | None = field(default=None, hash=False)
    env: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    volumes: Mapping[str, Any] | None = field(default=None, hash=False)
    working_dir: str | None = None
    labels: Mapping[str, str] | None = field(default=None, hash=False)
    stop_signal: str | None = None
    args_escaped: bool | None = None

    @classmethod
    def from_json(cls, data, source: str = "config") -> "ContainerConfig":
        obj = _load(data, source)

        def tup(key):
            v = _str_list(obj, key, source)
            return tuple(v) if v is not None else None

        return cls(
            user=_get(obj, "User", str, source),
            exposed_ports=_get(obj, "ExposedPorts", dict, source),
            env=tup("Env"),
            entrypoint=tup("Entrypoint"),
            cmd=tup("Cmd"),
            volumes=_get(obj, "Volumes", dict, source),
            working_dir=_get(obj, "WorkingDir", str, source),
            labels=_str_map(obj, "Labels", source),
            stop_signal=_get(obj, "StopSignal", str, source),
            args_escaped=_get(obj, "ArgsEscaped", bool, source),
        )

    def to_dict(self) -> dict:
        def lst(v):
            return list(v) if v is not None else None

        return _drop_none(
            {
                "User": self.user,
                "ExposedPorts": dict(self.exposed_ports) if self.exposed_ports is not None else None,
                "Env": lst(self.env),
                "Entrypoint": lst(self.entrypoint),
                "Cmd": lst(self.cmd),
                "Volumes": dict(self.volumes) if self.volumes is not None else None,
                "WorkingDir": self.working_dir,
                "Labels": dict(self.labels) if self.labels is not None else None,
                "StopSignal": self.stop_signal,
                "ArgsEscaped": self.args_escaped,
            }
        )


@dataclass(frozen=True)
class History:
    """One ``history`` entry of an image config (config.md)."""

    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool = False

    def to_dict(self) -> dict:
        return _drop_none(
            {
                "created": self.created,
                "created_by": self.created_by,
                "author": self.author,
                "comment": self.comment,
                "empty_layer": self.empty_layer or None,
            }
        )


@dataclass(frozen=True)
class ImageConfig:
    """An image config (image-spec config.md; Docker's config has the same core fields).

    Attributes:
        architecture, os: required strings; ``variant``, ``os_version``, ``os_features``.
        created: RFC 3339 string or None; ``author``.
        config: :class:`ContainerConfig` or ``None`` when the ``config`` key is absent/null.
        diff_ids: tuple of :class:`Digest` — sha256 of each *uncompressed* layer tar.
        history: tuple of :class:`History`.
        raw: exact bytes parsed.
    """

    architecture: str
    os: str
    diff_ids: tuple[Digest, ...] = ()
    config: ContainerConfig | None = None
    created: str | None = None
    author: str | None = None
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] | None = None
    history: tuple[History, ...] = ()
    raw: bytes | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_json(cls, data, source: str = "image config") -> "ImageConfig":
        """Parse an image config.

        Raises:
            InvalidDocument: missing ``architecture``, ``os`` or ``rootfs``; ``rootfs.type``
                not ``layers``; wrong field types.
            InvalidDigest: a diff ID that is not a valid digest.
        """
        obj = _load(data, source)
        rootfs = _get(obj, "rootfs", dict, source, required=True)
        rtype = _get(rootfs, "type", str, f"{source}: rootfs", required=True)
        if rtype != "layers":
            raise InvalidDocument(f"{source}: rootfs.type must be 'layers', got {rtype!r}")
        diff_ids = []
        for i, d in enumerate(_get(rootfs, "diff_ids", list, f"{source}: rootfs", required=True)):
            try:
                diff_ids.append(Digest.parse(d))
            except InvalidDigest as e:
                raise InvalidDigest(f"{source}: rootfs.diff_ids[{i}]: {e}") from None
        history = []
        for i, h in enumerate(_get(obj, "history", list, source) or []):
            s = f"{source}: history[{i}]"
            if not isinstance(h, dict):
                raise InvalidDocument(f"{s} must be an object")
            history.append(
                History(
                    created=_get(h, "created", str, s),
                    created_by=_get(h, "created_by", str, s),
                    author=_get(h, "author", str, s),
                    comment=_get(h, "comment", str, s),
                    empty_layer=bool(_get(h, "empty_layer", bool, s, default=False)),
                )
            )
        cfg = obj.get("config")
        feats = _str_list(obj, "os.features", source)
        return cls(
            architecture=_get(obj, "architecture", str, source, required=True),
            os=_get(obj, "os", str, source, required=True),
            diff_ids=tuple(diff_ids),
            config=ContainerConfig.from_json(cfg, f"{source}: config") if cfg is not None else None,
            created=_get(obj, "created", str, source),
            author=_get(obj, "author", str, source),
            variant=_get(obj, "variant", str, source),
            os_version=_get(obj, "os.version", str, source),
            os_features=tuple(feats) if feats is not None else None,
            history=tuple(history),
            raw=data if isinstance(data, bytes) else None,
        )

    def to_dict(self) -> dict:
        return _drop_none(
            {
                "created": self.created,
                "author": self.author,
                "architecture": self.architecture,
                "os": self.os,
                "os.version": self.os_version,
                "os.features": list(self.os_features) if self.os_features is not None else None,
                "variant": self.variant,
                "config": self.config.to_dict() if self.config is not None else None,
                "rootfs": {"type": "layers", "diff_ids": [str(d) for d in self.diff_ids]},
                "history": [h.to_dict() for h in self.history] or None,
            }
        )

    def to_json(self) -> bytes:
        return self.raw if self.raw is not None else dumps(self.to_dict())

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant, self.os_version, self.os_features)


def chain_ids(diff_ids: Iterable[Digest | str]) -> list[Digest]:
    """ChainIDs of a layer stack (image-spec config.md "Layer ChainID"):
    ``ChainID(L0) = DiffID(L0)``; ``ChainID(L0|…|Ln) = Digest(ChainID(L0|…|Ln-1) + " " + DiffID(Ln))``,
    where ``Digest`` is the algorithm of ``DiffID(Ln)`` (sha256 for sha256 diff IDs, sha512
    for sha512 ones: config.md names no other). ``diff_ids`` are Digests or their strings
    (as in the image config's ``rootfs.diff_ids``). Returns one :class:`Digest` per layer.
    Raises InvalidDigest for a string that is not a digest."""
    out: list[Digest] = []
    for d in map(Digest.parse, diff_ids):
        out.append(d if not out else Digest.of(f"{out[-1]} {d}".encode(), d.algorithm))
    return out
