"""Apply one image layer to a rootfs (image-spec layer.md "Applying Changesets").

A layer is a tar archive (a *changeset*), optionally compressed. Applied in order over the
layers below, the layers give the image's filesystem. :func:`apply_layer` does that for
real, safely, as root or as an ordinary user::

    from ocilearn.layer.apply import apply_layer
    with open(blob_path, "rb") as f:
        result = apply_layer("rootfs", f, media_type=desc.media_type,
                             digest=desc.digest, size=desc.size, diff_id=config.diff_ids[0])
    result.diff_id        # digest of the uncompressed tar, verified

Equivalents: ``tar -xzf BLOB -C rootfs`` (but whiteouts and safety are ours),
``umoci unpack`` (which does this for every layer).

Changeset semantics (layer.md)
    - Add/modify ("Changeset over existing files"): an entry replaces what was at its path
      (unlink, then create), except that a directory over a directory is kept and only its
      attributes change (mode, owner, mtime, and its xattrs are replaced).
    - Whiteouts and opaque whiteouts: :mod:`ocilearn.layer.whiteout` — they delete from
      lower layers only, never this layer's entries, whatever the tar order.
    - An entry below a lower-layer *non-directory* (``f/child`` over the file ``f``)
      replaces it with a directory (umoci ≥ 0.5 and overlayfs do the same).
    - Duplicate paths in one layer (layer.md "Distributable Format": MUST NOT happen):
      the last entry wins, with a warning.
    - Hardlinks point to files of this or a lower layer, resolved inside the rootfs; a
      hardlink to a missing path or to a directory is an error.
    - Symlink targets are stored verbatim (``/bin/busybox`` stays absolute).
    - Directory modes and mtimes are set after their children (at the end of the layer).
    - Modes keep setuid/setgid/sticky; buildah's type bits in the mode field are masked
      (``& 0o7777``). Ownership (as root), xattrs (:mod:`ocilearn.layer.xattrs`), fifos,
      device nodes, PAX/GNU long names, GNU/PAX sparse files (holes kept), non-UTF-8 names
      (bytes kept via ``surrogateescape``).

Safety
    Every path is resolved inside the rootfs by :class:`ocilearn.core.fsutil.Root` (openat2
    ``RESOLVE_IN_ROOT`` or an equivalent ``O_NOFOLLOW`` walk): names are cleaned (``../x``
    → ``x``, ``/x`` → ``x``), in-root symlinks are followed *as if the rootfs were /*, the
    last component is never followed. An entry that names the root itself may only update
    the root's attributes and only when it is a directory; any other type raises
    :class:`~ocilearn.core.errors.UnsafePath` — the rootfs is never replaced (a symlink
    named ``.`` replaced it in umoci, CVE-2021-29136). Reading the tar is bounded
    (:mod:`ocilearn.layer.tar`).

Rootless: :mod:`ocilearn.layer.rootless`.

Deliberate differences from ``umoci unpack`` 0.4.7 (the tests compare trees entry by entry)
    1. Rootless device nodes are *skipped and listed* (``LayerResult.skipped``); umoci
       creates empty regular files in their place. runc mounts a tmpfs on ``/dev`` anyway.
    2. Directory mtimes: ocilearn sets each directory entry's mtime at the end of its
       layer; lower-layer directories whose contents a layer changed get the time of the
       unpack. (mtimes are not part of the comparison.)
    3. Host-specific xattrs: umoci skips ``security.selinux`` and ``system.nfs4_acl``;
       ocilearn also skips the other LSM labels and overlayfs's names
       (:data:`ocilearn.layer.xattrs.HOST_SPECIFIC`).
    Everything else — paths, types, modes, uid/gid, sizes, contents, symlink targets,
    hardlink groups, xattrs, the ``user.rootlesscontainers`` encoding — matches.
"""

from __future__ import annotations

import os
import stat
import tarfile
import warnings
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

from ..core import explain
from ..core.errors import LayerError, UnsafePath
from ..core.fsutil import Root, clean_path
from ..image.digest import Digest
from .listing import LayerEntry, entry_of
from .rootless import rootless_xattrs
from .tar import LayerStream, LayerWarning, open_layer
from .whiteout import OwnPaths, apply_opaque_whiteout, apply_whiteout
from .xattrs import clear_xattrs, image_xattrs, set_xattrs

__all__ = ["LayerResult", "apply_layer"]


@dataclass
class LayerResult:
    """What :func:`apply_layer` did.

    Attributes:
        diff_id: digest of the uncompressed tar (verified if one was expected).
        compression: ``gzip``, ``zstd`` or ``none`` (from the magic bytes).
        blob_bytes / tar_bytes: sizes read, compressed and uncompressed (bytes).
        entries: number of tar entries; ``whiteouts``: paths deleted by whiteouts (lower
        layers only); ``opaque``: directories made opaque.
        skipped: ``[(path, what)]`` not applied: rootless device nodes
            (``"char device 1,3"``), extended attributes (``"xattr security.selinux"``).
        warnings: every tolerated oddity, in order (each says why).
    """

    diff_id: Digest | None = None
    compression: str = "none"
    blob_bytes: int = 0
    tar_bytes: int = 0
    entries: int = 0
    whiteouts: list[str] = field(default_factory=list)
    opaque: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def apply_layer(
    rootfs: str | os.PathLike | Root,
    blob: BinaryIO,
    media_type: str | None = None,
    *,
    digest: Digest | str | None = None,
    size: int | None = None,
    diff_id: Digest | str | None = None,
    rootless: bool | None = None,
    source: str = "layer",
    progress: Callable[[int], None] | None = None,
) -> LayerResult:
    """Apply one layer (a tar changeset, possibly gzip/zstd) onto ``rootfs``.

    Args:
        rootfs: the rootfs directory (or an open :class:`~ocilearn.core.fsutil.Root`).
        blob: binary stream of the blob as stored.
        media_type: descriptor media type (a hint: the magic bytes decide).
        digest, size: the descriptor's; the whole blob is verified against them.
        diff_id: expected digest of the uncompressed tar (config ``rootfs.diff_ids``);
            the layer is hashed with its algorithm (sha256 or sha512).
        rootless: ``None`` = rootless when not root. Rootless means no chown (the owner is
            kept in ``user.rootlesscontainers``), no mknod (devices skipped and listed),
            ``security.*``/``trusted.*`` xattrs dropped and named in a warning, and
            directories lacking ``u+rwx`` made writable while extracting then restored
            (:mod:`ocilearn.layer.rootless`).
        source: a name for messages (e.g. the layer digest).
        progress: called with each count of blob bytes read (for progress bars).

    Returns: :class:`LayerResult`.

    Raises:
        UnsafePath: an entry that would replace the rootfs itself.
        LayerError: unreadable or truncated tar/gzip/zstd, hardlink to a missing file,
            a header beyond the limits of :mod:`ocilearn.layer.tar`, an xattr refused as root.
        DigestMismatch / SizeMismatch: blob or diff ID verification failed. The rootfs may
            then hold part of the layer: :func:`ocilearn.bundle.unpack.unpack` discards it.

    Source: image-spec layer.md; equivalent ``tar -xzf BLOB -C rootfs`` + whiteouts.
    """
    rootless = os.geteuid() != 0 if rootless is None else rootless
    result = LayerResult()

    def warn(msg: str) -> None:
        result.warnings.append(msg)
        warnings.warn(msg, LayerWarning, stacklevel=4)

    own_root = not isinstance(rootfs, Root)
    root = Root(rootfs, rootless=rootless) if own_root else rootfs
    root.rootless = rootless  # type: ignore[union-attr]
    algorithm = Digest.parse(diff_id).algorithm if diff_id is not None else "sha256"
    try:
        with open_layer(blob, media_type, digest=digest, size=size, diff_id_algorithm=algorithm, source=source,
                        warn=warn, progress=progress) as layer:
            result.compression = layer.compression
            explain.step("layer", "apply", f"{source}: {layer.compression} layer onto {root.path}" + (" (rootless)" if rootless else ""),
                         f"tar -x{'z' if layer.compression == 'gzip' else ''}f BLOB -C {root.path}"
                         + (" --zstd" if layer.compression == "zstd" else ""))
            applier = _Applier(root, layer, result, warn)  # type: ignore[arg-type]
            for m in layer.members():
                result.entries += 1
                applier.apply(m)
            root.restore(applier.own.dir_attrs)  # type: ignore[union-attr]
            result.diff_id, result.tar_bytes = layer.finish(diff_id)
            result.blob_bytes = layer.blob_bytes
        explain.step("layer", "verified", f"{source}: {result.entries} entries, {result.tar_bytes} tar bytes, diff ID {result.diff_id}",
                     f"{result.diff_id.algorithm}sum (of the uncompressed tar)")
        return result
    finally:
        if own_root:
            root.close()  # type: ignore[union-attr]


class _Applier:
    """Creates each entry of one layer in the rootfs (``apply``), per its type."""

    def __init__(self, root: Root, layer: LayerStream, result: LayerResult, warn: Callable[[str], None]) -> None:
        self.root, self.layer, self.result, self.warn = root, layer, result, warn
        self.rootless, self.source = root.rootless, layer.source
        self.own = OwnPaths(root, layer.source)
        self.euid = os.geteuid()

    def apply(self, m: tarfile.TarInfo) -> None:
        """Apply the tar member ``m``; OS and tar errors become a LayerError naming it."""
        try:
            self._apply(entry_of(m, self.source, self.warn), m)
        except (UnsafePath, LayerError):
            raise
        except OSError as ex:
            raise LayerError(f"{self.source}: cannot apply entry {m.name!r}: {ex}") from ex
        except (tarfile.TarError, EOFError) as ex:
            raise LayerError(f"{self.source}: entry {m.name!r}: tar data is truncated or corrupt ({ex})") from None

    def _apply(self, e: LayerEntry, m: tarfile.TarInfo) -> None:
        if e.type == "whiteout":
            if (deleted := apply_whiteout(self.root, e.path, self.own, warn=self.warn)) is not None:
                self.result.whiteouts.append(deleted)
            return
        if e.type == "opaque":
            if (directory := apply_opaque_whiteout(self.root, e.path, self.own)) is not None:
                self.result.opaque.append(directory)
            return
        if e.path == "":
            self._root_entry(e)
            return
        pfd, base = self.root.parent_of(e.path, create=True, mode=0o755)
        key = self.own.key(pfd, base)
        self.root.ensure_writable(pfd, self.own.key(pfd))  # both: one readlink per cached directory (Root.fd_path)
        make = {"dir": self._directory, "file": self._file, "symlink": self._symlink, "hardlink": self._hardlink,
                "fifo": self._fifo, "char": self._device, "block": self._device}[e.type]
        if make(e, m, pfd, base, key):
            self.own.add(key)

    # -- one method per entry type: each returns True when it created the entry ----------

    def _root_entry(self, e: LayerEntry) -> None:
        """An entry naming the rootfs itself (``.``, ``/``, ``a/..``): a directory updates the
        root's owner, mode and mtime; anything else would replace the rootfs."""
        if e.type != "dir":
            raise UnsafePath(f"{self.source}: entry {e.name!r} ({e.type}) names the rootfs itself; only a directory may "
                             "(its attributes apply to the root; a symlink named '.' replaced the rootfs in umoci, CVE-2021-29136)")
        if not self.rootless:
            os.chown(f"/proc/self/fd/{self.root.fd}", e.uid, e.gid)
        mtime_ns = int(e.mtime * 1e9)
        self.own.dir_attrs[""] = (e.mode, mtime_ns, mtime_ns)

    def _directory(self, e: LayerEntry, m, pfd: int, base: str, key: str) -> bool:
        existing = False
        try:  # optimistic: most entries are new; only on EEXIST look at what is there
            os.mkdir(base, 0o700, dir_fd=pfd)
        except FileExistsError:
            existing = self._make_room(pfd, base, key, want_dir=True)
            if not existing:
                os.mkdir(base, 0o700, dir_fd=pfd)
        fd = os.open(base, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            self.root.ensure_writable(fd, key)
            self.root.saved.pop(key, None)
            if not self.rootless:
                os.chown(base, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
            self._xattrs(e, f"/proc/self/fd/{fd}", existing=existing)
            # kept u+rwx until the layer ends: its children are still to come
            writable = self.rootless or e.mode & 0o700 != 0o700
            os.chmod(f"/proc/self/fd/{fd}", (e.mode | 0o700) if writable else e.mode)
        finally:
            os.close(fd)
        mtime_ns = int(e.mtime * 1e9)
        self.own.dir_attrs[key] = (e.mode, mtime_ns, mtime_ns)
        return True

    def _file(self, e: LayerEntry, m: tarfile.TarInfo, pfd: int, base: str, key: str) -> bool:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = self._create(pfd, base, key, lambda: os.open(base, flags, 0o600, dir_fd=pfd))
        try:
            for offset, chunk in self.layer.data(m):
                _pwrite_all(fd, chunk, offset)
            if m.sparse is not None:
                os.ftruncate(fd, m.size)  # the holes after the last chunk
            if not self.rootless:
                os.fchown(fd, e.uid, e.gid)
            self._xattrs(e, f"/proc/self/fd/{fd}")  # after the chown, which clears security.capability
            os.fchmod(fd, e.mode)
            mtime_ns = int(e.mtime * 1e9)
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)
        return True

    def _symlink(self, e: LayerEntry, m, pfd: int, base: str, key: str) -> bool:
        self._create(pfd, base, key, lambda: os.symlink(e.linkname, base, dir_fd=pfd))
        if not self.rootless:
            os.chown(base, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
        mtime_ns = int(e.mtime * 1e9)
        os.utime(base, ns=(mtime_ns, mtime_ns), dir_fd=pfd, follow_symlinks=False)
        return True

    def _hardlink(self, e: LayerEntry, m, pfd: int, base: str, key: str) -> bool:
        """A second name for a file already in the rootfs, its target resolved inside it."""
        target = clean_path(e.linkname)
        if target == e.path:
            return False
        try:
            if not target:
                raise IsADirectoryError(target)
            tfd, tbase = self.root.parent_of(target)
            tst = os.stat(tbase, dir_fd=tfd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            raise LayerError(f"{self.source}: hardlink {e.name!r} points to {e.linkname!r}, which does not exist in the rootfs "
                             f"(resolved inside it as /{target})") from None
        except IsADirectoryError:
            raise UnsafePath(f"{self.source}: hardlink {e.name!r} points to the rootfs itself") from None
        if stat.S_ISDIR(tst.st_mode):
            raise LayerError(f"{self.source}: hardlink {e.name!r} points to a directory (/{target}); hardlinks to directories are not allowed")
        tfd = os.dup(tfd)  # the cached fd may be dropped if making room invalidates the cache
        try:
            self._create(pfd, base, key, lambda: os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False))
        finally:
            os.close(tfd)
        return True

    def _fifo(self, e: LayerEntry, m, pfd: int, base: str, key: str) -> bool:
        self._create(pfd, base, key, lambda: os.mkfifo(base, 0o600, dir_fd=pfd))
        self._special_attrs(e, pfd, base)
        return True

    def _device(self, e: LayerEntry, m, pfd: int, base: str, key: str) -> bool:
        if self.rootless or self.euid != 0:
            self._make_room(pfd, base, key, want_dir=False)  # the device still replaces what was there
            self.result.skipped.append((e.path, f"{e.type} device {e.devmajor},{e.devminor}"))
            self.warn(f"{self.source}: rootless: {e.type} device /{e.path} ({e.devmajor},{e.devminor}) skipped (mknod needs CAP_MKNOD)")
            return False
        kind = stat.S_IFCHR if e.type == "char" else stat.S_IFBLK
        self._create(pfd, base, key, lambda: os.mknod(base, kind | 0o600, os.makedev(e.devmajor, e.devminor), dir_fd=pfd))
        self._special_attrs(e, pfd, base)
        return True

    # -- shared steps -----------------------------------------------------------------------

    def _make_room(self, pfd: int, base: str, key: str, want_dir: bool) -> bool:
        """layer.md "Changeset over existing files": remove what is at ``base``, unless it
        is a directory and a directory is wanted (then True: it is kept)."""
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        is_dir = stat.S_ISDIR(st.st_mode)
        if key in self.own.created and not (want_dir and is_dir):
            self.warn(f"{self.source}: duplicate entry {key!r} in one layer; the last one wins "
                      "(layer.md \"Distributable Format\": a layer MUST NOT have duplicate paths)")
        if want_dir and is_dir:
            return True
        self.own.remove(pfd, base, key)
        return False

    def _create(self, pfd: int, base: str, key: str, make):
        """Create with ``make()`` (O_EXCL-like: never through an existing name); when the
        name exists, make room (remove what is there) and create again."""
        try:
            return make()
        except FileExistsError:
            self._make_room(pfd, base, key, want_dir=False)
            return make()

    def _special_attrs(self, e: LayerEntry, pfd: int, base: str) -> None:
        """Owner, xattrs, mode and mtime of a fifo or device node (through an O_PATH fd:
        opening a fifo for real would block)."""
        fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            p = f"/proc/self/fd/{fd}"
            if not self.rootless:
                os.chown(p, e.uid, e.gid)
            self._xattrs(e, p)
            os.chmod(p, e.mode)
            mtime_ns = int(e.mtime * 1e9)
            os.utime(base, ns=(mtime_ns, mtime_ns), dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(fd)

    def _xattrs(self, e: LayerEntry, target: str, *, existing: bool = False) -> None:
        """The entry's xattrs on ``target``: host-specific names skipped, rootless ones
        dropped or recorded (:mod:`ocilearn.layer.xattrs`, :mod:`ocilearn.layer.rootless`);
        each one not applied is warned about and listed in ``LayerResult.skipped``."""
        items, skipped = image_xattrs(e.xattrs)
        if self.rootless:
            items, dropped = rootless_xattrs(items, e.uid, e.gid)
            skipped += dropped
        where = f"{self.source}: /{e.path}"
        if existing:
            skipped += clear_xattrs(target, items, rootless=self.rootless, where=where)
        skipped += set_xattrs(target, items, rootless=self.rootless, where=where)
        for name, why in skipped:
            self.result.skipped.append((e.path, f"xattr {name}"))
            self.warn(f"{where}: xattr {name!r} {why}")


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n
