"""The transport interface of image-spec copies: a :class:`Source` an image is read from and
a :class:`Destination` it is written to; every transport (``oci:``, ``oci-archive:``,
``docker://``, ``docker-archive:``) implements these and nothing else, and
:mod:`ocilearn.distribution.copy` knows only these.

A :class:`Document` is a manifest or image index with its exact bytes (image-spec
manifest.md, image-index.md) and the descriptor that names it (descriptor.md).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import BinaryIO, Callable

from ..image.model import Descriptor, Index, Manifest


@dataclass
class Document:
    """A manifest or index with its exact bytes and descriptor."""

    raw: bytes
    descriptor: Descriptor
    document: Manifest | Index


class Source(abc.ABC):
    """Where an image comes from. Subclasses implement :meth:`top`, :meth:`fetch`,
    :meth:`open_blob`."""

    name = ""

    @abc.abstractmethod
    def top(self) -> Document:
        ...

    @abc.abstractmethod
    def fetch(self, desc: Descriptor) -> Document:
        ...

    @abc.abstractmethod
    def open_blob(self, desc: Descriptor, progress: Callable[[int], None]) -> BinaryIO:
        ...

    def close(self) -> None:  # noqa: B027 - optional hook: most endpoints hold nothing to release
        """Release what the endpoint holds (connections, files); nothing by default."""


class Destination(abc.ABC):
    """Where an image goes. ``has_blob`` (present and verified), ``put_blob``,
    ``put_manifest`` (children before parents), ``finish`` (the ref or tag)."""

    name = ""

    @abc.abstractmethod
    def has_blob(self, desc: Descriptor) -> bool:
        ...

    @abc.abstractmethod
    def put_blob(self, desc: Descriptor, opener: Callable[[], BinaryIO], source: Source) -> None:
        ...

    @abc.abstractmethod
    def put_manifest(self, doc: Document) -> None:
        ...

    @abc.abstractmethod
    def finish(self, top: Document) -> None:
        ...

    def close(self) -> None:  # noqa: B027 - optional hook: most endpoints hold nothing to release
        """Release what the endpoint holds (connections, files); nothing by default."""


__all__ = ["Document", "Source", "Destination"]
