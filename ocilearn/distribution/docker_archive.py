"""docker-archive: the ``docker save`` / ``docker load`` tar format, read and written.

Two forms exist:

* **legacy** (Docker ≤ 24, ``skopeo copy … docker-archive:``)::

      manifest.json      [{"Config": "<hex>.json", "RepoTags": ["busybox:latest"],
                           "Layers": ["<id>/layer.tar", …]}]
      <hex>.json         the image config (its sha256 is the image ID)
      <id>/layer.tar     each layer, usually an uncompressed tar (may be a symlink
                         inside the archive to ``../<diffid>.tar``; gzip also seen)
      repositories       {"busybox": {"latest": "<id>"}} (legacy, optional)

  There is no manifest: one is made (OCI media types, config and layers as stored, each
  layer's digest = sha256 of its bytes). Each layer's *uncompressed* digest must equal the
  config's ``rootfs.diff_ids`` entry (image-spec config.md "Layer DiffID"); this is checked.

* **Docker 25 (OCI-in-tar)**: the same tar also holds an OCI image layout
  (``oci-layout``, ``index.json``, ``blobs/sha256/…``); the manifest in ``blobs/`` is used
  as is, so digests are preserved.

Writing produces the legacy form as skopeo does: ``<config-hex>.json``, layers
decompressed as ``<diffid-hex>.tar``, ``manifest.json`` and ``repositories``.

Reference commands: ``docker save``/``docker load``;
``skopeo copy docker-archive:FILE oci:DIR:TAG`` and back.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import shutil
import tarfile
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from ..core import explain
from ..core.errors import ArchiveError, InvalidDocument, OcilearnError
from ..core.streams import ByteReader, CountingReader, HashingReader, open_decompressed, sniff_compression
from ..image import mediatypes as mt
from ..image.digest import CHUNK, Digest, VerifyingReader, new_hasher
from ..image.layout import MAX_DOCUMENT
from ..image.model import Descriptor, ImageConfig, Index, Manifest, dumps, parse_document
from ..image.reference import parse as parse_reference
from .transport import Destination, Document, Source, naming_full_disk


def _decompressed(f: BinaryIO, compression: str, source: str) -> BinaryIO:
    """The uncompressed bytes of ``f``: the same decoders and the same gzip rule as layers
    (:func:`ocilearn.core.streams.open_decompressed`)."""
    return open_decompressed(f, compression, source=source, error=ArchiveError,
                             warn=lambda msg: warnings.warn(msg, stacklevel=2))


class _Slice(ByteReader):
    """``size`` bytes of a file from ``offset``, with its own file handle (thread-safe)."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        super().__init__()
        self._f = open(path, "rb")
        self._f.seek(offset)
        self._left = size

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._f.read(n)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._f.close()
        super().close()


@dataclass
class ArchiveImage:
    """One image inside a docker-archive.

    Attributes:
        repo_tags: the ``RepoTags`` (may be empty).
        manifest: the manifest bytes (made for the legacy form, stored for Docker 25).
        descriptor: the manifest's descriptor.
        blobs: digest → tar member name of each blob.
    """

    repo_tags: list[str]
    manifest: bytes
    descriptor: Descriptor
    blobs: dict[Digest, str]


class DockerArchive:
    """A docker-archive tar opened for reading.

    Args:
        path: the tar file.

    Raises:
        ArchiveError: not a tar, no ``manifest.json`` (nor OCI layout), a malformed
            ``manifest.json``, a member outside the archive (``../``), a missing file.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self._tar = tarfile.open(self.path, "r:")
        except (OSError, tarfile.TarError) as e:
            raise ArchiveError(f"{self.path}: not a readable tar archive ({e})") from None
        self.members: dict[str, tarfile.TarInfo] = {}
        try:
            listing = self._tar.getmembers()
        except (tarfile.TarError, EOFError, OSError, ValueError, OverflowError) as e:
            self._tar.close()
            raise ArchiveError(f"{self.path}: damaged tar archive ({type(e).__name__}: {e})") from None
        for m in listing:
            name = posixpath.normpath(m.name.lstrip("/"))
            if name.startswith("../") or name == "..":
                raise ArchiveError(f"{self.path}: member {m.name!r} points outside the archive")
            self.members[name] = m
        self.is_oci = "index.json" in self.members and "oci-layout" in self.members
        self._manifest_json = self._read_json("manifest.json", required=not self.is_oci)
        if "manifest.json" in self.members and not isinstance(self._manifest_json, list):
            raise ArchiveError(f"{self.path}: manifest.json must be a JSON list of images, got {type(self._manifest_json).__name__}")
        self._check_entries()

    def _check_entries(self) -> None:
        """Type-check manifest.json as Docker's loader does (it unmarshals into
        ``[]{Config string; RepoTags []string; Layers []string}``), so a hostile archive
        gets an ArchiveError naming the entry and field, never a Python TypeError."""
        for i, e in enumerate(self._manifest_json or []):
            if not isinstance(e, dict):
                raise ArchiveError(f"{self.path}: manifest.json entry {i} is a {type(e).__name__}, not a JSON object")
            for key, kind in (("Config", "a string"), ("RepoTags", "a list of strings"), ("Layers", "a list of strings")):
                v = e.get(key)
                ok = v is None or (isinstance(v, str) if key == "Config" else
                                   isinstance(v, list) and all(isinstance(x, str) for x in v))
                if not ok:
                    raise ArchiveError(f"{self.path}: manifest.json entry {i}: {key!r} must be {kind}, got {json.dumps(v)[:80]}")

    def close(self) -> None:
        self._tar.close()

    # -- members -----------------------------------------------------------

    def member(self, name: str, _depth: int = 0) -> tarfile.TarInfo:
        """The regular-file member ``name``, following symlinks/hard links inside the archive.

        Raises:
            ArchiveError: ``name`` is not a string, is missing, is not a regular file, or
                is a link that leaves the archive.
        """
        if not isinstance(name, str):
            raise ArchiveError(f"{self.path}: member name {name!r} is not a string")
        key = posixpath.normpath(name.lstrip("/"))
        m = self.members.get(key)
        if m is None:
            raise ArchiveError(f"{self.path}: no file {name!r} in the archive")
        if (m.issym() or m.islnk()) and _depth < 16:
            target = m.linkname if m.islnk() else posixpath.join(posixpath.dirname(key), m.linkname)
            target = posixpath.normpath(target.lstrip("/"))
            if target.startswith("../"):
                raise ArchiveError(f"{self.path}: link {name!r} -> {m.linkname!r} points outside the archive")
            return self.member(target, _depth + 1)
        if not m.isfile():
            raise ArchiveError(f"{self.path}: {name!r} is not a regular file")
        return m

    def open_member(self, name: str) -> BinaryIO:
        m = self.member(name)
        return _Slice(self.path, m.offset_data, m.size)  # type: ignore[return-value]

    def read_member(self, name: str, limit: int = MAX_DOCUMENT) -> bytes:
        m = self.member(name)
        if m.size > limit:
            raise ArchiveError(f"{self.path}: {name} is {m.size} bytes, over the {limit}-byte limit")
        with self.open_member(name) as f:
            return f.read()

    def _read_json(self, name: str, required: bool):
        if name not in self.members:
            if required:
                raise ArchiveError(f"{self.path}: no manifest.json: not a docker-archive (docker save) tar")
            return None
        raw = self.read_member(name)
        try:
            return json.loads(raw)
        except ValueError:
            raise ArchiveError(f"{self.path}: {name} is not valid JSON") from None
        except RecursionError:
            raise ArchiveError(f"{self.path}: {name}: JSON nested too deeply to parse") from None

    # -- images ------------------------------------------------------------------

    def entries(self) -> list[dict]:
        """The ``manifest.json`` entries (``Config``, ``RepoTags``, ``Layers``)."""
        return [e for e in (self._manifest_json or []) if isinstance(e, dict)]

    def _choose(self, ref: str | None) -> int:
        entries = self.entries()
        if not entries:
            raise ArchiveError(f"{self.path}: manifest.json lists no images")
        if ref is None:
            if len(entries) != 1:
                raise ArchiveError(f"{self.path}: holds {len(entries)} images; name one (docker-archive:PATH:REF or :@N)")
            return 0
        if ref.startswith("@"):
            try:
                i = int(ref[1:])
            except ValueError:
                raise ArchiveError(f"{self.path}: bad image index {ref!r} (expected @N)") from None
            if not 0 <= i < len(entries):
                raise ArchiveError(f"{self.path}: image index {ref} out of range (0..{len(entries) - 1})")
            return i
        want = str(parse_reference(ref))
        for i, e in enumerate(entries):
            for t in e.get("RepoTags") or []:
                with contextlib.suppress(OcilearnError):
                    if str(parse_reference(t)) == want:
                        return i
        tags = [t for e in entries for t in (e.get("RepoTags") or [])]
        raise ArchiveError(f"{self.path}: no image tagged {ref!r} (tags: {', '.join(tags) or 'none'})")

    def image(self, ref: str | None = None) -> ArchiveImage:
        """The image named ``ref`` (a RepoTag, ``@N``, or ``None`` for the only one).

        Raises:
            ArchiveError: no such image; a layer whose uncompressed digest is not the
                config's diff ID; a count mismatch between layers and diff IDs.
        """
        if self.is_oci:
            try:
                oci_entries = list(Index.from_json(self.read_member("index.json"), f"{self.path}: index.json").manifests)
            except RecursionError:
                raise ArchiveError(f"{self.path}: index.json: JSON nested too deeply to parse") from None
            except InvalidDocument:
                oci_entries = []  # e.g. "manifests": null; manifest.json still describes the image
            if oci_entries:
                return self._oci_image(ref, oci_entries)
        i = self._choose(ref)
        e = self.entries()[i]
        cfg_name, layers = e.get("Config"), e.get("Layers")
        if not isinstance(cfg_name, str) or not isinstance(layers, list):
            raise ArchiveError(f"{self.path}: manifest.json entry {i} needs 'Config' (string) and 'Layers' (list)")
        cfg_raw = self.read_member(cfg_name)
        try:
            config = ImageConfig.from_json(cfg_raw, f"{self.path}: {cfg_name}")
        except InvalidDocument as e2:
            raise ArchiveError(str(e2)) from None
        except RecursionError:
            raise ArchiveError(f"{self.path}: {cfg_name}: JSON nested too deeply to parse") from None
        diff_ids = list(config.diff_ids)
        if len(diff_ids) != len(layers):
            raise ArchiveError(f"{self.path}: {len(layers)} layers listed but the config has {len(diff_ids)} diff_ids")
        blobs: dict[Digest, str] = {}
        cfg_digest = Digest.of(cfg_raw)
        blobs[cfg_digest] = cfg_name
        if self.is_oci:
            found = self._find_manifest(cfg_digest, len(layers), e)
            if found is not None:
                return found
        layer_descs = []
        for name, diff in zip(layers, diff_ids, strict=True):
            digest, size, comp, uncompressed = self._hash_layer(name)
            if uncompressed != diff:
                raise ArchiveError(f"{self.path}: layer {name}: uncompressed digest {uncompressed} is not the config's "
                                   f"diff_id {diff} (image-spec config.md 'rootfs')")
            mtype = {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD}.get(comp, mt.OCI_LAYER_TAR)
            layer_descs.append(Descriptor(mtype, digest, size))
            blobs[digest] = name
        manifest = Manifest(config=Descriptor(mt.OCI_CONFIG, cfg_digest, len(cfg_raw)), layers=tuple(layer_descs),
                            media_type=mt.OCI_MANIFEST)
        raw = manifest.to_json()
        desc = Descriptor(mt.OCI_MANIFEST, Digest.of(raw), len(raw), platform=config.platform)
        explain.step("archive", "read image", f"{self.path} image {i}: config {cfg_digest.short}, {len(layers)} layers; "
                     f"manifest made: {desc.digest}", f"skopeo copy docker-archive:{self.path} oci:DIR:TAG")
        return ArchiveImage(list(e.get("RepoTags") or []), raw, desc, blobs)

    def _hash_layer(self, name: str) -> tuple[Digest, int, str, Digest]:
        """(digest of the stored bytes, size, compression, digest of the uncompressed tar)."""
        m = self.member(name)
        with self.open_member(name) as f:
            head = f.read(4)
        comp = sniff_compression(head)
        inner = new_hasher("sha256")
        with self.open_member(name) as raw:
            stored = HashingReader(raw, "sha256")
            if comp == "none":
                while chunk := stored.read(CHUNK):
                    inner.update(chunk)
            else:
                with _decompressed(stored, comp, f"{self.path}: {name}") as d:  # type: ignore[arg-type]
                    while chunk := d.read(CHUNK):
                        inner.update(chunk)
                stored.drain()
        return Digest("sha256", stored.hexdigest), m.size, comp, Digest("sha256", inner.hexdigest())

    def _oci_blobs(self) -> dict[Digest, str]:
        blobs: dict[Digest, str] = {}
        for name in self.members:
            parts = name.split("/")
            if len(parts) == 3 and parts[0] == "blobs":
                with contextlib.suppress(OcilearnError):
                    blobs[Digest(parts[1], parts[2])] = name
        return blobs

    def _find_manifest(self, cfg_digest: Digest, n_layers: int, entry: dict) -> ArchiveImage | None:
        """In an OCI-in-tar archive whose index.json lists nothing, the manifest blob whose
        config is ``cfg_digest`` (so its bytes and digest are kept)."""
        blobs = self._oci_blobs()
        for digest, name in blobs.items():
            m = self.members[name]
            if m.size > MAX_DOCUMENT or m.size < 20:
                continue
            raw = self.read_member(name)
            if not raw.lstrip().startswith(b"{"):
                continue
            try:
                doc = parse_document(raw, None, f"{self.path}: {name}")
            except (OcilearnError, RecursionError):
                continue
            if isinstance(doc, Manifest) and doc.config.digest == cfg_digest and len(doc.layers) == n_layers:
                if Digest.of(raw, digest.algorithm) != digest:
                    raise ArchiveError(f"{self.path}: {name} does not match its digest")
                mtype = doc.media_type or mt.OCI_MANIFEST
                return ArchiveImage(list(entry.get("RepoTags") or []), raw, Descriptor(mtype, digest, len(raw)), blobs)
        return None

    def _oci_image(self, ref: str | None, entries: list[Descriptor]) -> ArchiveImage:
        chosen: Descriptor | None = None
        if ref is None:
            if len(entries) != 1:
                raise ArchiveError(f"{self.path}: holds {len(entries)} images; name one")
            chosen = entries[0]
        elif ref.startswith("@"):
            n = ref[1:]
            if not (n.isascii() and n.isdigit() and int(n) < len(entries)):
                raise ArchiveError(f"{self.path}: image index {ref!r} is not in @0..@{len(entries) - 1}")
            chosen = entries[int(n)]
        else:
            want = str(parse_reference(ref))
            for d in entries:
                names = [(d.annotations or {}).get(k) for k in ("io.containerd.image.name", "org.opencontainers.image.ref.name")]
                if any(n and _same_ref(n, want) for n in names):
                    chosen = d
            if chosen is None:
                # fall back to manifest.json's RepoTags
                for i, e in enumerate(self.entries()):
                    if any(_same_ref(t, want) for t in (e.get("RepoTags") or [])) and i < len(entries):
                        chosen = entries[i]
            if chosen is None:
                raise ArchiveError(f"{self.path}: no image named {ref!r}")
        blobs = self._oci_blobs()
        desc = chosen
        raw = self.read_member(blobs.get(desc.digest, f"blobs/{desc.digest.algorithm}/{desc.digest.encoded}"))
        doc = _parse(raw, desc.media_type, f"{self.path}: {desc.digest}")
        Digest.parse(desc.digest)
        if Digest.of(raw, desc.digest.algorithm) != desc.digest:
            raise ArchiveError(f"{self.path}: manifest blob {desc.digest} does not match its digest")
        tags = []
        for e in self.entries():
            tags += e.get("RepoTags") or []
        if isinstance(doc, Index) and len(doc.manifests) > 0:
            pass  # the caller chooses a platform (see ArchiveSource.fetch)
        return ArchiveImage(tags, raw, Descriptor(desc.media_type, desc.digest, desc.size, platform=desc.platform), blobs)


def _parse(raw: bytes, media_type: str | None, source: str) -> Manifest | Index:
    """:func:`~ocilearn.image.model.parse_document`, with JSON too deeply nested for Python's
    parser reported as an :class:`ArchiveError` (Python's json raises it past about 1,000 levels) instead of a
    ``RecursionError``."""
    try:
        return parse_document(raw, media_type, source)
    except RecursionError:
        raise ArchiveError(f"{source}: JSON nested too deeply to parse") from None


def _same_ref(a: str, b: str) -> bool:
    try:
        return str(parse_reference(a)) == str(parse_reference(b))
    except OcilearnError:
        return False


def _diff_ids(cfg_raw: bytes) -> list[Digest]:
    try:
        obj = json.loads(cfg_raw)
        return [Digest.parse(d) for d in obj["rootfs"]["diff_ids"]]
    except (ValueError, KeyError, TypeError):
        raise ArchiveError("image config has no rootfs.diff_ids list") from None


# ------------------------------------------------------------------ copy source / destination


class ArchiveSource(Source):
    """A :class:`~ocilearn.distribution.transport.Source` reading a docker-archive."""

    def __init__(self, path: Path, ref: str | None) -> None:
        self.archive = DockerArchive(path)
        self.image = self.archive.image(ref)
        self.name = f"docker-archive:{path}" + (f":{ref}" if ref else "")

    def top(self) -> Document:
        doc = _parse(self.image.manifest, self.image.descriptor.media_type, f"{self.name}: manifest")
        return Document(self.image.manifest, self.image.descriptor, doc)

    def fetch(self, desc: Descriptor) -> Document:
        name = self.image.blobs.get(desc.digest)
        if name is None:
            raise ArchiveError(f"{self.name}: no blob {desc.digest} in the archive")
        raw = self.archive.read_member(name)
        if Digest.of(raw, desc.digest.algorithm) != desc.digest or len(raw) != desc.size:
            raise ArchiveError(f"{self.name}: blob {desc.digest} does not match its descriptor")
        return Document(raw, desc, _parse(raw, desc.media_type, f"{self.name}: {desc.digest}"))

    def open_blob(self, desc: Descriptor, progress: Callable[[int], None]) -> BinaryIO:
        name = self.image.blobs.get(desc.digest)
        if name is None:
            raise ArchiveError(f"{self.name}: no blob {desc.digest} in the archive")
        return CountingReader(VerifyingReader(self.archive.open_member(name), desc.digest, desc.size, f"{self.name}: {name}"), progress=progress)  # type: ignore[return-value]

    def close(self) -> None:
        self.archive.close()


class ArchiveDest(Destination):
    """A :class:`~ocilearn.distribution.transport.Destination` writing a docker-archive: ``form="legacy"``
    as skopeo writes it, or ``"docker25"`` (Docker 25's ``docker save``: also an OCI
    layout, layers uncompressed). The archive appears atomically when the copy finishes."""

    def __init__(self, path: Path, ref: str | None, form: str = "legacy") -> None:
        if form not in ("legacy", "docker25"):
            raise ArchiveError(f"docker-archive form {form!r}: expected 'legacy' or 'docker25'")
        self.form = form
        self.path = Path(path)
        self.ref = ref
        if ref and ref.startswith("@"):
            raise ArchiveError(f"docker-archive:{path}:{ref}: a destination needs a tag, not an index")
        self.tag = str(parse_reference(ref)) if ref else None
        self.name = f"docker-archive:{path}" + (f":{ref}" if ref else "")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._stage = Path(tempfile.mkdtemp(prefix=".tmp-archive-", dir=self.path.parent))
        self._diff: dict[Digest, Digest] = {}
        self._config: bytes | None = None
        self._done = False

    def has_blob(self, desc: Descriptor) -> bool:
        return False

    def put_blob(self, desc: Descriptor, opener: Callable[[], BinaryIO], source: Source) -> None:
        with naming_full_disk(self._stage / desc.digest.encoded, f"blob {desc.digest} for {self.path}", ArchiveError), opener() as f:
            v = VerifyingReader(f, desc.digest, desc.size, f"{source.name}: {desc.digest}")
            if desc.kind == "config" or not mt.is_layer(desc.media_type):
                if desc.kind == "config" and desc.size > MAX_DOCUMENT:
                    # finish() reads the config whole: refuse a huge one before reading it
                    raise ArchiveError(f"{source.name}: config {desc.digest} is {desc.size} bytes, over the "
                                       f"{MAX_DOCUMENT}-byte limit for a JSON document")
                tmp = self._stage / f"blob-{desc.digest.encoded}"
                with open(tmp, "wb") as out:  # streamed: a blob is never held whole in memory
                    while chunk := v.read(CHUNK):
                        out.write(chunk)
                v.verify()
                os.replace(tmp, self._stage / desc.digest.encoded)
                return
            head = v.read(4)
            comp = sniff_compression(head)
            chained = CountingReader(v, head, close_raw=False)
            h = new_hasher("sha256")
            tmp = self._stage / f"layer-{desc.digest.encoded}"
            with open(tmp, "wb") as out, _decompressed(chained, comp, f"{source.name}: {desc.digest}") as d:  # type: ignore[arg-type]
                while chunk := d.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
            v.drain()
            diff = Digest("sha256", h.hexdigest())
            os.replace(tmp, self._stage / f"{diff.encoded}.tar")
            self._diff[desc.digest] = diff

    def put_manifest(self, doc: Document) -> None:
        pass

    def finish(self, top: Document) -> None:
        m = top.document
        if not isinstance(m, Manifest):
            raise ArchiveError(f"{self.name}: can only hold an image manifest, not an index (choose a platform)")
        cfg = (self._stage / m.config.digest.encoded).read_bytes()
        diff_ids = _diff_ids(cfg)
        layer_names = []
        for d, want in zip(m.layers, diff_ids, strict=False):
            got = self._diff.get(d.digest)
            if got != want:
                raise ArchiveError(f"{self.name}: layer {d.digest}: uncompressed digest {got} is not the config's diff_id {want}")
            layer_names.append(f"{got.encoded}.tar")
        if len(diff_ids) != len(m.layers):
            raise ArchiveError(f"{self.name}: {len(m.layers)} layers but {len(diff_ids)} diff_ids in the config")
        extra: list[tuple[str, bytes]] = []
        if self.form == "docker25":
            # Docker 25's `docker save`: the same files named as an OCI layout's blobs, plus
            # index.json/oci-layout; layers uncompressed, so their digest is their diff ID
            staged = {name: self._stage / name for name in layer_names}
            layer_names = [f"blobs/sha256/{n[:-4]}" for n in layer_names]
            for old_name, new_name in zip(list(staged), layer_names, strict=True):
                staged[new_name] = staged.pop(old_name)
            cfg_name = f"blobs/sha256/{m.config.digest.encoded}"
            oci_manifest = Manifest(
                config=Descriptor(mt.OCI_CONFIG, m.config.digest, m.config.size),
                layers=tuple(Descriptor(mt.OCI_LAYER_TAR, d, staged[f"blobs/sha256/{d.encoded}"].stat().st_size) for d in diff_ids),
                media_type=mt.OCI_MANIFEST,
            ).to_json()
            md = Digest.of(oci_manifest)
            ann = {"io.containerd.image.name": self.tag, "org.opencontainers.image.ref.name": parse_reference(self.tag).tag or "latest"} if self.tag else None
            index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                     "manifests": [Descriptor(mt.OCI_MANIFEST, md, len(oci_manifest), annotations=ann).to_dict()]}
            extra = [(f"blobs/sha256/{md.encoded}", oci_manifest), ("index.json", dumps(index)),
                     ("oci-layout", dumps({"imageLayoutVersion": "1.0.0"}))]
        else:
            staged = {name: self._stage / name for name in layer_names}
            cfg_name = f"{m.config.digest.encoded}.json"
        entry = {"Config": cfg_name, "RepoTags": [self.tag] if self.tag else [], "Layers": layer_names}
        tmp = self._stage / "archive.tar"
        with naming_full_disk(tmp, f"the archive for {self.path}", ArchiveError), \
                tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            def add(name: str, path: Path | None = None, data: bytes | None = None) -> None:
                info = tarfile.TarInfo(name)
                info.mode = 0o444
                info.mtime = 0
                if data is not None:
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                else:
                    assert path is not None
                    info.size = path.stat().st_size
                    with open(path, "rb") as f:
                        tar.addfile(info, f)

            seen = set()
            for name in layer_names:
                if name not in seen:
                    add(name, staged[name])
                    seen.add(name)
            add(cfg_name, data=cfg)
            for name, data in extra:
                add(name, data=data)
            add("manifest.json", data=dumps([entry]))
            if self.tag:
                r = parse_reference(self.tag)
                add("repositories", data=dumps({r.name: {r.tag or "latest": m.config.digest.encoded}}))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._done = True
        explain.step("archive", "write", f"{self.path}: {len(layer_names)} layers, config {m.config.digest.short}",
                     f"skopeo copy oci:DIR:TAG docker-archive:{self.path}:{self.tag or ''}")

    def close(self) -> None:
        shutil.rmtree(self._stage, ignore_errors=True)


__all__ = ["DockerArchive", "ArchiveImage", "ArchiveSource", "ArchiveDest"]
