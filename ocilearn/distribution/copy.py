"""Copy images between a registry, an OCI image layout and a docker-archive tar.

:func:`copy` is what ``skopeo copy SRC DST`` does, with skopeo's transport syntax:

``docker://REF``, ``oci:PATH[:REF]``, ``oci-archive:PATH[:REF]`` and
``docker-archive:PATH[:REF]``, parsed by :mod:`ocilearn.distribution.endpoints`. This module
knows only the :class:`~ocilearn.distribution.transport.Source` /
:class:`~ocilearn.distribution.transport.Destination` interface, not the transports.

The order of work follows image-spec's graph: the top document is fetched and verified;
an image index either selects one platform's manifest (``platform``; image-index.md) or,
with ``all_platforms``, copies every child; for each manifest the config and layers are
copied first (in parallel threads, skipping blobs the destination already has and that
verify), then the manifest, then the index, then the ref or tag — children before parents,
so a destination never names something it does not hold. A killed copy leaves at most
unreferenced blobs, never a broken ref.

By default bytes and digests are preserved (``skopeo copy --preserve-digests``).
``format="oci"`` converts Docker schema2 manifests, manifest lists and config/layer media
types to their OCI equivalents (as skopeo does by default for ``oci:``): the document
bytes change, so the manifest (and index) digests change, while the config and layer blobs
stay the same bytes with the same digests.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..core import explain
from ..core.errors import BlobNotFound, InvalidDocument, OcilearnError, TransportError
from ..image import mediatypes as mt
from ..image.digest import Digest
from ..image.layout import host_platform, select_platform
from ..image.model import Descriptor, Index, Manifest, Platform, dumps, parse_document
from ..image.reference import parse as parse_reference
from .client import ExchangeLog, RegistryClient
from .endpoints import Endpoint, open_destination, open_source, parse_transport
from .transport import Destination, Document, Source

DEFAULT_WORKERS = 4


# ------------------------------------------------------------------ progress


class Progress:
    """Progress bars with ``tqdm.auto`` (a terminal bar, or a widget in Jupyter): one for
    the total bytes and one per blob being transferred. Silent when ``quiet``."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._total = None
        self._lock = threading.Lock()
        self._slots: list[bool] = []

    def start(self, total_bytes: int, n_blobs: int) -> None:
        if self.quiet or total_bytes <= 0:
            return
        from tqdm.auto import tqdm

        self._total = tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024,
                           desc=f"copying {n_blobs} blobs", position=0, leave=True)

    @contextlib.contextmanager
    def blob(self, desc: Descriptor):
        if self.quiet or self._total is None:
            yield lambda n: None
            return
        from tqdm.auto import tqdm

        with self._lock:
            slot = next((i for i, busy in enumerate(self._slots) if not busy), len(self._slots))
            if slot == len(self._slots):
                self._slots.append(True)
            self._slots[slot] = True
        bar = tqdm(total=desc.size, unit="B", unit_scale=True, unit_divisor=1024, desc=f"{desc.kind} {desc.digest.short}",
                   position=slot + 1, leave=False)

        def update(n: int) -> None:
            bar.update(n)
            if self._total is not None:
                self._total.update(n)

        try:
            yield update
        finally:
            bar.close()
            with self._lock:
                self._slots[slot] = False

    def close(self) -> None:
        if self._total is not None:
            self._total.close()


# ------------------------------------------------------------------ conversion


def to_oci(doc: Document, children: dict[Digest, Descriptor] | None = None) -> Document:
    """Convert a Docker schema2 manifest or manifest list to OCI media types (what
    ``skopeo copy --format oci`` does). Config and layer blobs are untouched; the new
    document's bytes — hence its digest — differ. ``children`` maps old child manifest
    digests to their converted descriptors (for an index). OCI documents come back as is.

    The new document is serialised from the model in the OCI field order (the order of
    image-spec's Go structs, which skopeo uses), compact, so the result is byte-identical
    to skopeo's conversion.
    """
    from dataclasses import replace

    children = children or {}
    d = doc.document
    old = doc.descriptor

    def conv(x: Descriptor) -> Descriptor:
        return replace(x, media_type=mt.DOCKER_TO_OCI.get(x.media_type, x.media_type))

    if isinstance(d, Manifest):
        docker = d.media_type in mt.DOCKER_TO_OCI or old.media_type == mt.DOCKER_MANIFEST
        new_doc: Manifest | Index = replace(d, media_type=mt.OCI_MANIFEST, config=conv(d.config),
                                            layers=tuple(conv(x) for x in d.layers), raw=None)
        changed = docker or new_doc.to_dict() != d.to_dict()
        new_type = mt.OCI_MANIFEST
    else:
        docker = d.media_type in mt.DOCKER_TO_OCI or old.media_type == mt.DOCKER_MANIFEST_LIST
        kids = []
        for x in d.manifests:
            n = children.get(x.digest)
            kids.append(replace(x, media_type=n.media_type, digest=n.digest, size=n.size) if n is not None else x)
        new_doc = replace(d, media_type=mt.OCI_INDEX, manifests=tuple(kids), raw=None)
        changed = docker or new_doc.to_dict() != d.to_dict()
        new_type = mt.OCI_INDEX
    if not changed:
        return doc
    raw = dumps(new_doc.to_dict())
    desc = Descriptor(new_type, Digest.of(raw), len(raw), platform=old.platform, annotations=old.annotations)
    explain.step("convert", "docker schema2 -> OCI", f"{old.digest.short} -> {desc.digest.short}: media types rewritten, so the "
                 "document's bytes and digest change (config and layers keep theirs)", "skopeo copy --format oci …")
    return Document(raw, desc, parse_document(raw, new_type, f"converted {old.digest}"))


# ------------------------------------------------------------------ result


@dataclass
class CopyResult:
    """What :func:`copy` did.

    Attributes:
        digest: digest of the top document written (manifest, or index with ``--all``).
        media_type: its media type.
        size: its size in bytes.
        platform: the platform chosen from an index, or ``None``.
        copied: digests of blobs transferred.
        skipped: digests of blobs the destination already had (verified).
        bytes: bytes of blobs transferred.
        seconds: wall time.
        exchanges: every HTTP exchange (source and destination registries), redacted.
        manifests: descriptors of every manifest/index written, children first.
    """

    digest: Digest
    media_type: str
    size: int
    platform: Platform | None = None
    copied: list[Digest] = field(default_factory=list)
    skipped: list[Digest] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    exchanges: ExchangeLog = field(default_factory=ExchangeLog)
    manifests: list[Descriptor] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"copied {len(self.copied)} blobs ({self.bytes} bytes), skipped {len(self.skipped)} already present; "
                f"wrote {self.media_type} {self.digest} in {self.seconds:.2f} s")


# ------------------------------------------------------------------ the copy


class _Copier:
    def __init__(self, src: Source, dst: Destination, *, platform: Platform | None, all_platforms: bool, fmt: str | None,
                 workers: int, progress: Progress, result: CopyResult) -> None:
        self.src, self.dst, self.platform, self.all = src, dst, platform, all_platforms
        self.fmt, self.workers, self.progress, self.result = fmt, workers, progress, result
        self._lock = threading.Lock()

    def copy_blobs(self, blobs: list[Descriptor]) -> None:
        unique: dict[Digest, Descriptor] = {}
        for d in blobs:
            if d.urls and d.media_type in mt.NONDISTRIBUTABLE_TYPES:
                continue  # foreign layer: fetched from its URLs by whoever needs it (skopeo's default too)
            unique.setdefault(d.digest, d)
        todo = []
        for d in unique.values():
            if self.dst.has_blob(d):
                self.result.skipped.append(d.digest)
                explain.step("transfer", "skip blob", f"{d.digest} ({d.size} bytes) already in {self.dst.name}, verified")
            else:
                todo.append(d)
        if not todo:
            return
        self.progress.start(sum(d.size for d in todo), len(todo))

        def one(d: Descriptor) -> None:
            with self.progress.blob(d) as update:
                self.dst.put_blob(d, lambda: self.src.open_blob(d, update), self.src)
            with self._lock:
                self.result.copied.append(d.digest)
                self.result.bytes += d.size
            explain.step("transfer", "copy blob", f"{d.kind} {d.digest} ({d.size} bytes) {self.src.name} -> {self.dst.name}")

        try:
            if self.workers <= 1 or len(todo) == 1:
                for d in todo:
                    one(d)
            else:
                with ThreadPoolExecutor(max_workers=min(self.workers, len(todo)), thread_name_prefix="ocilearn-blob") as pool:
                    # each task runs in a copy of this context, so explain.recording() sees its steps
                    futures = [pool.submit(contextvars.copy_context().run, one, d) for d in todo]
                    errors = []
                    for f in futures:
                        try:
                            f.result()
                        except BaseException as e:  # noqa: B036 - collected and re-raised below
                            errors.append(e)
                    if errors:
                        raise errors[0]
        finally:
            self.progress.close()

    def copy_manifest(self, doc: Document) -> Document:
        m = doc.document
        assert isinstance(m, Manifest)
        self.copy_blobs([m.config, *m.layers])
        if self.fmt == "oci":
            doc = to_oci(doc)
        self.dst.put_manifest(doc)
        self.result.manifests.append(doc.descriptor)
        return doc

    def copy_index(self, doc: Document, depth: int = 0) -> Document:
        if depth > 8:
            raise InvalidDocument(f"{self.src.name}: indexes nested deeper than 8")
        idx = doc.document
        assert isinstance(idx, Index)
        converted: dict[Digest, Descriptor] = {}
        other = []
        for child in idx.manifests:
            if mt.is_manifest(child.media_type) or mt.is_index(child.media_type):
                sub = self.src.fetch(child)
                out = self.copy_index(sub, depth + 1) if isinstance(sub.document, Index) else self.copy_manifest(sub)
                converted[child.digest] = out.descriptor
            else:
                other.append(child)
        if other:
            self.copy_blobs(other)
        if self.fmt == "oci":
            doc = to_oci(doc, converted)
        self.dst.put_manifest(doc)
        self.result.manifests.append(doc.descriptor)
        return doc

    def candidates(self, doc: Document, depth: int = 0) -> list[Descriptor]:
        """Manifests of an index; nested indexes without a platform are opened."""
        out: list[Descriptor] = []
        assert isinstance(doc.document, Index)
        for d in doc.document.manifests:
            if mt.is_index(d.media_type) and d.platform is None and depth < 8:
                out += self.candidates(self.src.fetch(d), depth + 1)
            elif mt.is_manifest(d.media_type) or mt.is_index(d.media_type):
                out.append(d)
        return out

    def run(self, top: Document | None = None) -> Document:
        """Copy the image whose top document is ``top`` (default: the source's)."""
        top = top if top is not None else self.src.top()
        explain.step("transfer", "top document", f"{top.descriptor.media_type} {top.descriptor.digest} ({top.descriptor.size} bytes)")
        if isinstance(top.document, Index):
            if self.all:
                return self.copy_index(top)
            want = self.platform or host_platform()
            seen = 0
            while isinstance(top.document, Index):
                seen += 1
                if seen > 8:
                    raise InvalidDocument(f"{self.src.name}: indexes nested deeper than 8")
                chosen = select_platform(self.candidates(top), want, f"{self.src.name}: index {top.descriptor.digest}")
                explain.step("transfer", "choose platform", f"{want} -> {chosen.digest} ({chosen.platform})",
                             f"skopeo copy --override-arch {want.architecture} …")
                self.result.platform = chosen.platform
                top = self.src.fetch(chosen)
            return self.copy_manifest(top)
        return self.copy_manifest(top)


def copy(src: str, dst: str, *, src_creds: Any = None, dest_creds: Any = None, authfile: str | os.PathLike | None = None,
         src_tls_verify: bool = True, dest_tls_verify: bool = True, src_ca_bundle=None, dest_ca_bundle=None,
         platform: Platform | str | None = None, all_platforms: bool = False, format: str | None = None,
         quiet: bool = True, workers: int = DEFAULT_WORKERS, chunk_size: int | None = None,
         src_client: RegistryClient | None = None, dest_client: RegistryClient | None = None,
         archive_form: str = "legacy", client_options: dict | None = None) -> CopyResult:
    """Copy an image from ``src`` to ``dst`` (``skopeo copy SRC DST``).

    Args:
        src, dst: transport strings: ``docker://REF``, ``oci:PATH[:REF]``,
            ``oci-archive:PATH[:REF]``, ``docker-archive:PATH[:REF]`` (PATH and REF split
            at the first ``:``; see :mod:`ocilearn.distribution.endpoints`).
        src_creds, dest_creds: ``"USER:PASS"`` or :class:`~ocilearn.distribution.auth.Credentials`
            (default: looked up in auth files).
        authfile: a containers ``auth.json`` / Docker ``config.json`` to use.
        src_tls_verify, dest_tls_verify: verify TLS certificates (False also allows
            plain HTTP, like skopeo).
        src_ca_bundle, dest_ca_bundle: PEM CA bundle paths to trust.
        platform: the platform to select from an index (``"linux/arm64"`` or a
            :class:`~ocilearn.image.model.Platform`); default this machine's.
        all_platforms: copy every manifest of an index and the index itself (``--all``).
        format: ``None`` (keep bytes and digests) or ``"oci"`` (convert Docker types).
        quiet: no progress bars.
        workers: blobs transferred in parallel (threads).
        chunk_size: push blobs larger than this in ``PATCH`` chunks of this many bytes.
        src_client, dest_client: ready :class:`~ocilearn.distribution.client.RegistryClient` s to use
            (e.g. to read their exchange logs).
        archive_form: for a ``docker-archive:`` destination, ``"legacy"`` (skopeo's) or
            ``"docker25"`` (also an OCI layout inside the tar, as Docker 25 saves).
        client_options: more keyword arguments for the registry clients made here, e.g.
            ``{"deadline": 30.0}`` (seconds per document exchange),
            ``{"blob_stall_seconds": 60.0, "blob_stall_bytes": 1024}`` or ``{"retries": 2}``
            (see :class:`~ocilearn.distribution.client.RegistryClient`).

    Returns:
        :class:`CopyResult`.

    Raises:
        TransportError, InvalidReference, InvalidRefName: bad SRC/DST, ``workers`` < 1 —
        all checked before anything is fetched or created;
        AmbiguousReference: a layout ref name on two different manifests; RegistryError, AuthError: the
        registry refused; PlatformNotFound: no manifest for the platform;
        DigestMismatch, SizeMismatch: content not as promised (nothing unverified is kept);
        LayoutError, ArchiveError: a bad layout or archive.
    """
    started = time.monotonic()
    # every argument is checked before a source or destination is opened, so a bad one
    # costs no download and leaves nothing behind
    s_ep, d_ep = parse_transport(src), parse_transport(dst)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise TransportError(f"workers (--jobs) {workers!r}: expected a whole number of at least 1")
    if all_platforms and d_ep.transport == "docker-archive":
        raise TransportError("docker-archive: holds single-platform images; drop --all and choose a platform")
    if format not in (None, "oci", "v2s2"):
        raise TransportError(f"--format {format!r}: expected 'oci' (or nothing, to keep the bytes)")
    if isinstance(platform, str):
        platform = Platform.parse(platform)
    source = open_source(s_ep, creds=src_creds, authfile=authfile, tls_verify=src_tls_verify, ca_bundle=src_ca_bundle, client=src_client,
                         client_options=client_options)
    explain.step("transfer", "copy", f"{source.name} -> {d_ep}",
                 f"skopeo copy{' --all' if all_platforms else ''}{' --format oci' if format == 'oci' else ' --preserve-digests'} {src} {dst}")
    src_c = getattr(source, "client", None)
    src_mark = len(src_c.exchanges) if src_c is not None else 0  # a client passed in may have history: keep only this copy's
    try:
        # the source's ref is resolved (a missing or ambiguous ref name, a registry 404)
        # before the destination exists, so a refused copy creates nothing
        first = source.top()
        dest = open_destination(d_ep, creds=dest_creds, authfile=authfile, tls_verify=dest_tls_verify, ca_bundle=dest_ca_bundle,
                                client=dest_client, chunk_size=chunk_size, archive_form=archive_form, client_options=client_options)
    except BaseException:
        source.close()
        raise
    dst_c = getattr(dest, "client", None)
    clients: list[tuple[RegistryClient, int]] = [(src_c, src_mark)] if src_c is not None else []
    if dst_c is not None and dst_c is not src_c:
        clients.append((dst_c, len(dst_c.exchanges)))
    result = CopyResult(Digest.of(b""), "", 0)
    try:
        copier = _Copier(source, dest, platform=platform, all_platforms=all_platforms, fmt="oci" if format == "oci" else None,
                         workers=workers, progress=Progress(quiet), result=result)
        top = copier.run(first)
        dest.finish(top)
    finally:
        for c, mark in clients:
            result.exchanges.extend(c.exchanges[mark:])
        source.close()
        dest.close()
    result.digest, result.media_type, result.size = top.descriptor.digest, top.descriptor.media_type, top.descriptor.size
    result.seconds = time.monotonic() - started
    return result


def pull(ref: str, layout_dir: str | os.PathLike, tag: str | None = None, **kw: Any) -> CopyResult:
    """Pull ``ref`` (``127.0.0.1:5000/busybox:latest``) into the layout at ``layout_dir``
    under ref name ``tag`` (default: the reference's tag). Shorthand for
    ``copy("docker://REF", "oci:DIR:TAG", **kw)``."""
    r = parse_reference(ref)
    return copy(f"docker://{r}", f"oci:{layout_dir}:{tag or r.tag or 'latest'}", **kw)


def push(layout_dir: str | os.PathLike, ref: str, tag: str | None = None, **kw: Any) -> CopyResult:
    """Push the image named ``tag`` in the layout to ``ref``. Shorthand for
    ``copy("oci:DIR:TAG", "docker://REF", all_platforms=True, **kw)``."""
    kw.setdefault("all_platforms", True)
    return copy(f"oci:{layout_dir}" + (f":{tag}" if tag else ""), f"docker://{parse_reference(ref)}", **kw)


def load(path: str | os.PathLike, layout_dir: str | os.PathLike, tag: str | None = None, ref: str | None = None) -> CopyResult:
    """Import an image of a docker-archive into an OCI layout (``docker load``-like;
    ``skopeo copy docker-archive:PATH oci:DIR:TAG``)."""
    return copy(f"docker-archive:{path}" + (f":{ref}" if ref else ""), f"oci:{layout_dir}" + (f":{tag}" if tag else ""))


__all__ = ["copy", "load", "Source", "Destination", "Document", "open_source", "open_destination", "pull", "push", "parse_transport", "Endpoint", "CopyResult", "to_oci", "BlobNotFound", "OcilearnError"]
