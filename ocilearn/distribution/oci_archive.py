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
from ..core.errors import ArchiveError, OcilearnError
from ..image.layout import MAX_DOCUMENT, ImageLayout
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
            try:
                with tar:
                    self._extract(tar)
            except tarfile.TarError as e:
                raise ArchiveError(f"{self.name}: truncated or corrupt tar: {e}") from e
            explain.step("oci-archive", "extract", f"{self.path} -> {self._dir}", f"tar -xf {self.path} -C {self._dir}")
            try:
                self._layout = LayoutSource(ImageLayout.open(self._dir), ref)
            except OcilearnError as e:  # name the archive, not the private directory it was extracted to
                raise ArchiveError(str(e).replace(str(self._dir), self.name)) from e
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self._layout.name = self.name

    def _extract(self, tar: tarfile.TarFile) -> None:
        """Extract the checked members into the private directory; raises ArchiveError for
        a member that is not part of an image layout, appears twice, or is too big."""
        for info in tar:
            if not _member_ok(info):
                raise ArchiveError(f"{self.name}: tar member {info.name!r} is not part of an image layout "
                                   "(only oci-layout, index.json and regular files under blobs/ are allowed)")
            name = posixpath.normpath(info.name.lstrip("/"))
            if name in _TOP and info.size > MAX_DOCUMENT:
                raise ArchiveError(f"{self.name}: tar member {info.name!r} is {info.size} bytes; at most {MAX_DOCUMENT} are read")
            target = self._dir / name
            try:
                if info.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(info)
                assert src is not None
                with src, open(target, "xb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            except (FileExistsError, IsADirectoryError, NotADirectoryError):
                raise ArchiveError(f"{self.name}: tar member {info.name!r} appears twice (or as both a file and a "
                                   "directory); an image layout has one of each") from None

    def top(self) -> Document:
        try:
            return self._layout.top()
        except OcilearnError as e:  # name the archive, not the private directory it was extracted to
            raise ArchiveError(str(e).replace(str(self._dir), self.name)) from e

    def fetch(self, desc: Descriptor) -> Document:
        try:
            return self._layout.fetch(desc)
        except OcilearnError as e:
            raise ArchiveError(str(e).replace(str(self._dir), self.name)) from e

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
