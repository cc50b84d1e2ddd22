"""The ``oci:PATH[:REF]`` transport: an OCI image layout (image-spec image-layout.md) as a
copy :class:`~ocilearn.distribution.transport.Source` and
:class:`~ocilearn.distribution.transport.Destination`. The ref name is resolved by
:func:`ocilearn.image.layout.resolve_ref`, the same function unpack, inspect and graph use.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import BinaryIO, Callable

from ..core import explain
from ..core.errors import VerificationError
from ..core.streams import CountingReader
from ..image.layout import MAX_DOCUMENT, ImageLayout, resolve_ref
from ..image.model import Descriptor, parse_document
from .transport import Destination, Document, Source, naming_full_disk


class LayoutSource(Source):
    """Reads an image from an OCI layout (``oci:PATH[:REF]``); every blob is verified
    against its descriptor as it is read."""

    def __init__(self, layout: ImageLayout, ref: str | None) -> None:
        self.layout, self.ref = layout, ref
        self.name = f"oci:{layout.path}" + (f":{ref}" if ref else "")

    def top(self) -> Document:
        return self.fetch(resolve_ref(self.layout, self.ref))

    def fetch(self, desc: Descriptor) -> Document:
        raw = self.layout.read_blob(desc, limit=MAX_DOCUMENT)
        doc = parse_document(raw, desc.media_type, f"{self.layout.path}: {desc.digest}")
        return Document(raw, desc, doc)

    def open_blob(self, desc: Descriptor, progress: Callable[[int], None]) -> BinaryIO:
        return CountingReader(self.layout.open_blob(desc), progress=progress)  # type: ignore[return-value]


class LayoutDest(Destination):
    """Writes into an OCI layout (created if needed): blobs through
    :meth:`~ocilearn.image.layout.ImageLayout.put_blob` (verified, atomic), the ref last."""

    def __init__(self, path: Path, ref: str | None) -> None:
        self.layout = ImageLayout.init(path)
        self.ref = ref
        self.name = f"oci:{path}" + (f":{ref}" if ref else "")
        # the layout's writer lock, from the first blob to the ref: `layout gc` waits
        self._writing = contextlib.ExitStack()
        self._writing.enter_context(self.layout.writing())

    def has_blob(self, desc: Descriptor) -> bool:
        if not self.layout.has_blob(desc.digest):
            return False
        try:
            self.layout.verify_blob(desc)
            return True
        except VerificationError:
            # a corrupt blob (e.g. a disk fault): remove it so it is fetched again
            self.layout.delete_blob(desc.digest)
            explain.step("layout", "drop corrupt blob", str(desc.digest), f"rm {self.layout.blob_path(desc.digest)}")
            return False

    def put_blob(self, desc: Descriptor, opener: Callable[[], BinaryIO], source: Source) -> None:
        with naming_full_disk(self.layout.blob_path(desc.digest), f"blob {desc.digest} ({desc.size} bytes)"), opener() as f:
            self.layout.put_blob(f, desc.digest, desc.size)

    def put_manifest(self, doc: Document) -> None:
        d = doc.descriptor
        with naming_full_disk(self.layout.blob_path(d.digest), f"{d.media_type} {d.digest} ({d.size} bytes)"):
            self.layout.put_blob(doc.raw, d.digest, d.size)

    def finish(self, top: Document) -> None:
        d = top.descriptor
        entry = Descriptor(d.media_type, d.digest, d.size, platform=d.platform)
        with naming_full_disk(self.layout.path / "index.json", f"the entry for {d.digest}"):
            if self.ref:
                self.layout.add_ref(self.ref, entry)
            else:
                self.layout.add_manifest(entry)

    def close(self) -> None:
        self._writing.close()


__all__ = ["LayoutSource", "LayoutDest"]
