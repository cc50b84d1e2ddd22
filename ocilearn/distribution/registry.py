"""The ``docker://REF`` transport: a registry (distribution-spec "Pull", "Push") as a copy
:class:`~ocilearn.distribution.transport.Source` and
:class:`~ocilearn.distribution.transport.Destination`, over the HTTP client of
:mod:`ocilearn.distribution.client`.
"""

from __future__ import annotations

from typing import BinaryIO, Callable

from ..core.errors import VerificationError
from ..core.streams import ReadAhead
from ..image.model import Descriptor
from ..image.reference import Reference
from .client import RegistryClient
from .transport import Destination, Document, Source


class RegistrySource(Source):
    """Reads an image from a registry (``docker://REF``): manifests by tag/digest, blobs
    streamed with resume (:class:`~ocilearn.distribution.client.BlobStream`), read ahead when large."""

    def __init__(self, client: RegistryClient, ref: Reference) -> None:
        self.client, self.ref = client, ref
        self.name = f"docker://{ref}"

    def top(self) -> Document:
        f = self.client.get_manifest(self.ref.repository, self.ref.reference)
        return Document(f.raw, f.descriptor, f.document)

    def fetch(self, desc: Descriptor) -> Document:
        f = self.client.get_manifest(self.ref.repository, desc.digest)
        if len(f.raw) != desc.size:
            raise VerificationError(f"{self.name}: {desc.digest} is {len(f.raw)} bytes, its descriptor says {desc.size}")
        return Document(f.raw, Descriptor(desc.media_type, desc.digest, desc.size, platform=desc.platform,
                                          annotations=desc.annotations), f.document)

    def open_blob(self, desc: Descriptor, progress: Callable[[int], None]) -> BinaryIO:
        reader = self.client.blob_reader(self.ref.repository, desc, progress)
        if desc.size >= PREFETCH_MIN:
            return ReadAhead(reader, close_source=True, name="ocilearn-prefetch")  # type: ignore[return-value]
        return reader  # type: ignore[return-value]


PREFETCH_MIN = 1 << 20  # bytes: blobs this large are read ahead in a thread


class RegistryDest(Destination):
    """Pushes to a registry (``docker://REF``): HEAD each blob, mount it from the source
    repository when both are on this registry, else upload (monolithic, or chunked when
    ``chunk_size`` is set); manifests by digest, then the tag."""

    def __init__(self, client: RegistryClient, ref: Reference, chunk_size: int | None = None) -> None:
        self.client, self.ref, self.chunk_size = client, ref, chunk_size
        self.name = f"docker://{ref}"

    def has_blob(self, desc: Descriptor) -> bool:
        return self.client.blob_exists(self.ref.repository, desc.digest)

    def put_blob(self, desc: Descriptor, opener: Callable[[], BinaryIO], source: Source) -> None:
        if (isinstance(source, RegistrySource) and source.ref.registry == self.ref.registry
                and source.ref.repository != self.ref.repository):
            if self.client.mount_blob(self.ref.repository, desc.digest, source.ref.repository):
                return
        self.client.upload_blob(self.ref.repository, desc.digest, desc.size, opener, chunk_size=self.chunk_size)

    def put_manifest(self, doc: Document) -> None:
        self.client.put_manifest(self.ref.repository, str(doc.descriptor.digest), doc.raw, doc.descriptor.media_type)

    def finish(self, top: Document) -> None:
        if self.ref.tag and self.ref.digest is None:
            self.client.put_manifest(self.ref.repository, self.ref.tag, top.raw, top.descriptor.media_type)


__all__ = ["RegistrySource", "RegistryDest", "PREFETCH_MIN"]
