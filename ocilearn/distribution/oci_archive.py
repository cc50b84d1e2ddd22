"""The ``oci-archive:PATH[:REF]`` transport: a tar of an OCI image layout (image-spec
image-layout.md), what ``skopeo copy … oci-archive:PATH`` and
``podman save --format oci-archive`` write (containers-transports(5)).

Read: the tar is checked (only ``oci-layout``, ``index.json`` and regular files under
``blobs/``; no links, devices or ``..``), extracted into a private temporary directory and
read as an ``oci:`` layout, every blob verified; the directory is removed on close.
Write: the image goes into a staging layout next to PATH; when the copy finishes, the tar
is written beside PATH, fsynced and renamed over it, so PATH is either absent, the old
archive, or the complete new one.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from ..core import explain
from ..core.errors import ArchiveError
from ..image.layout import ImageLayout
from ..image.model import Descriptor
from .oci_layout import LayoutDest, LayoutSource
from .transport import Destination, Document, Source, naming_full_disk

_TOP = ("oci-layout", "index.json")


def _member_ok(info: tarfile.TarInfo) -> bool:
    name = posixpath.normpath(info.name.lstrip("/").removeprefix("./")) if info.name not in (".", "./") else "."
    if name == "." or name == "blobs" or (name.startswith("blobs/") and info.isdir()):
        return info.isdir() and ".." not in name.split("/")
    if not info.isfile() or ".." in name.split("/"):
        return False
    return name in _TOP or "index.json" == name or (name.startswith("blobs/") and name.count("/") == 2)


class OciArchiveSource(Source):
    """Reads an image from an ``oci-archive:`` tar (see the module docstring)."""

    def __init__(self, path: Path, ref: str | None) -> None:
        self.path = Path(path)
        self.name = f"oci-archive:{path}" + (f":{ref}" if ref else "")
        self._dir = Path(tempfile.mkdtemp(prefix="ocilearn-oci-archive-"))
        try:
            try:
                tar = tarfile.open(self.path, "r:")
            except (OSError, tarfile.TarError) as e:
                raise ArchiveError(f"{self.name}: not a readable tar: {e}") from e
            with tar:
                for info in tar:
                    if not _member_ok(info):
                        raise ArchiveError(f"{self.name}: tar member {info.name!r} is not part of an image layout "
                                           "(only oci-layout, index.json and regular files under blobs/ are allowed)")
                    name = posixpath.normpath(info.name.lstrip("/"))
                    target = self._dir / name
                    if info.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(info)
                    assert src is not None
                    with src, open(target, "xb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
            explain.step("oci-archive", "extract", f"{self.path} -> {self._dir}", f"tar -xf {self.path} -C {self._dir}")
            self._layout = LayoutSource(ImageLayout.open(self._dir), ref)
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self._layout.name = self.name

    def top(self) -> Document:
        return self._layout.top()

    def fetch(self, desc: Descriptor) -> Document:
        return self._layout.fetch(desc)

    def open_blob(self, desc: Descriptor, progress: Callable[[int], None]) -> BinaryIO:
        return self._layout.open_blob(desc, progress)

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


class OciArchiveDest(Destination):
    """Writes an ``oci-archive:`` tar (see the module docstring)."""

    def __init__(self, path: Path, ref: str | None) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise ArchiveError(f"oci-archive:{path}: is a directory; an oci-archive is a tar file")
        self.name = f"oci-archive:{path}" + (f":{ref}" if ref else "")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._stage = Path(tempfile.mkdtemp(prefix=".tmp-oci-archive-", dir=self.path.parent))
        try:
            self._layout = LayoutDest(self._stage / "layout", ref)
        except BaseException:
            shutil.rmtree(self._stage, ignore_errors=True)
            raise

    def has_blob(self, desc: Descriptor) -> bool:
        return self._layout.has_blob(desc)

    def put_blob(self, desc: Descriptor, opener: Callable[[], BinaryIO], source: Source) -> None:
        self._layout.put_blob(desc, opener, source)

    def put_manifest(self, doc: Document) -> None:
        self._layout.put_manifest(doc)

    def finish(self, top: Document) -> None:
        self._layout.finish(top)
        self._layout.close()
        root = self._stage / "layout"
        tmp = self._stage / "archive.tar"
        with naming_full_disk(tmp, f"the archive for {self.path}", ArchiveError), \
                tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            def add(rel: str) -> None:
                p = root / rel
                info = tar.gettarinfo(str(p), arcname=rel)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                if info.isfile():
                    with open(p, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)

            add("oci-layout")
            add("index.json")
            add("blobs")
            for alg in sorted(os.listdir(root / "blobs")):
                add(f"blobs/{alg}")
                for name in sorted(os.listdir(root / "blobs" / alg)):
                    if not name.startswith("."):  # a writer's temp files are not part of the layout
                        add(f"blobs/{alg}/{name}")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        explain.step("oci-archive", "write", f"{self.path}", f"skopeo copy … oci-archive:{self.path}")

    def close(self) -> None:
        self._layout.close()
        shutil.rmtree(self._stage, ignore_errors=True)


__all__ = ["OciArchiveSource", "OciArchiveDest"]
