"""The transport interface of image-spec copies: a :class:`Source` an image is read from and
a :class:`Destination` it is written to; every transport (``oci:``, ``oci-archive:``,
``docker://``, ``docker-archive:``) implements these and nothing else, and
:mod:`ocilearn.distribution.copy` knows only these.

A :class:`Document` is a manifest or image index with its exact bytes (image-spec
manifest.md, image-index.md) and the descriptor that names it (descriptor.md).
"""

from __future__ import annotations

import abc
import contextlib
import errno
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from ..core.errors import LayoutError, OcilearnError
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


@contextlib.contextmanager
def naming_full_disk(path: Path, what: str, error: type[OcilearnError] = LayoutError) -> Iterator[None]:
    """Turn ENOSPC / EDQUOT (write(2), "No space left on device" / "Disk quota exceeded")
    into a one-line error naming the file being written; other errors pass unchanged."""
    try:
        yield
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise error(f"{path}: {e.strerror} while writing {what}; free space on that file system and copy again") from e


__all__ = ["Document", "Source", "Destination", "naming_full_disk"]
