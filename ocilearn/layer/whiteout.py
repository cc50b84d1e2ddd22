"""Whiteouts and opaque whiteouts: how a layer deletes what the layers below it left.

image-spec layer.md, "Whiteouts": a file named ``.wh.NAME`` in a directory means that
``NAME`` of the *lower* layers is deleted; the marker itself is never created. "Whiteout
files MUST only apply to resources in lower/parent layers": what this same layer puts at
that path stays. "Opaque Whiteout": a file named ``.wh..wh..opq`` in a directory hides
*all* of its lower children, sub-directories and their descendants included; it is
applied "first … regardless of the ordering in which the whiteout file was encountered",
so what this layer puts in the directory stays too.

The two public functions are the whole idea::

    apply_whiteout(root, "etc/.wh.motd", own)             # rm -rf rootfs/etc/motd
    apply_opaque_whiteout(root, "bin/.wh..wh..opq", own)   # rm -rf rootfs/bin/* (lower ones)

``own`` (:class:`OwnPaths`) is what the layer being applied has written so far; both
functions spare it. Below them, in private helpers, the hardening:

- Every call is relative to a directory file descriptor resolved *inside* the rootfs
  (:class:`ocilearn.core.fsutil.Root`: ``openat2`` ``RESOLVE_IN_ROOT`` or an ``O_NOFOLLOW``
  walk), and the last component is never followed: a whiteout under a symlink to ``/``
  deletes inside the rootfs, never on the host (the class of CVE-2021-29136 in umoci).
- This layer's paths are keyed by the kernel's name for their directory
  (``/proc/self/fd/N``), so ``lnk/new`` written through ``lnk -> real`` is recognised as
  ``real/new`` and a whiteout of ``real`` keeps it.
- Trees are removed and searched without recursion, at any depth; rootless, a directory
  lacking ``u+rwx`` is granted it for the time of the layer (:meth:`Root.make_writable`).
- A whiteout of a missing path is a no-op; a degenerate one (``.wh.`` alone, ``.wh..``,
  ``.wh...``: it names no sibling) is ignored with a warning.
"""

from __future__ import annotations

import os
import stat
from typing import Callable

from ..core import explain
from ..core.errors import LayerError
from ..core.fsutil import Root, remove_tree_at
from .tar import default_warn

__all__ = ["WHITEOUT_PREFIX", "OPAQUE_WHITEOUT", "OwnPaths", "apply_whiteout", "apply_opaque_whiteout", "whiteout_of"]

WHITEOUT_PREFIX = ".wh."  # layer.md "Whiteouts"
OPAQUE_WHITEOUT = ".wh..wh..opq"  # layer.md "Opaque Whiteout"


def whiteout_of(path: str) -> tuple[str, str] | None:
    """What a cleaned entry path means as a marker: ``("opaque", directory)`` for
    ``DIR/.wh..wh..opq``, ``("whiteout", DIR/NAME)`` for ``DIR/.wh.NAME``, ``None`` for
    an ordinary entry. The opaque marker is matched exactly, before the generic prefix
    (it also starts with ``.wh.``)."""
    parent, _, base = path.rpartition("/")
    if base == OPAQUE_WHITEOUT:
        return "opaque", parent
    if base.startswith(WHITEOUT_PREFIX):
        name = base[len(WHITEOUT_PREFIX):]
        return "whiteout", f"{parent}/{name}" if parent else name
    return None


def apply_whiteout(root: Root, path: str, own: OwnPaths | None = None, *,
                   warn: Callable[[str], None] = default_warn) -> str | None:
    """Apply the whiteout entry ``path`` (``DIR/.wh.NAME``): delete ``DIR/NAME`` — file,
    symlink or whole tree — as the lower layers left it (image-spec layer.md "Whiteouts").

    Args:
        root: the rootfs being built.
        path: the whiteout entry's cleaned path, e.g. ``"etc/.wh.motd"``.
        own: what this layer has written so far (kept); ``None`` = nothing yet.
        warn: called with a message for a degenerate whiteout.

    Returns: the in-root path deleted (``"etc/motd"``), or ``None`` when there was nothing
    of a lower layer to delete (missing path, or only this layer's own entry).

    Raises: LayerError (a directory moved while it was being cleared), OSError.
    """
    own = OwnPaths.of(root, own)
    parent, _, marker = path.rpartition("/")
    name = marker[len(WHITEOUT_PREFIX):]
    if name in ("", ".", ".."):
        warn(f"{own.source}: degenerate whiteout {path!r} ignored: a whiteout must name one sibling (layer.md \"Whiteouts\")")
        return None
    dfd = _lower_directory(own, parent)
    if dfd is None or not _remove_lower(own, dfd, name):
        return None
    target = f"{parent}/{name}" if parent else name
    explain.step("layer", "whiteout", f"delete /{target}", f"rm -rf rootfs/{target}")
    return target


def apply_opaque_whiteout(root: Root, path: str, own: OwnPaths | None = None) -> str | None:
    """Apply the opaque whiteout entry ``path`` (``DIR/.wh..wh..opq``): remove every child
    of ``DIR`` that lower layers put there, keep what this layer put there (image-spec
    layer.md "Opaque Whiteout": it hides "all children … including sub-directories and
    all descendants" of the lower layers, and is applied before the layer's own entries
    whatever their order).

    Args:
        root: the rootfs being built.
        path: the marker's cleaned path, e.g. ``"bin/.wh..wh..opq"``.
        own: what this layer has written so far (kept); ``None`` = nothing yet.

    Returns: the directory made opaque (``"bin"``), or ``None`` when it does not exist.

    Raises: LayerError (a directory moved while it was being cleared), OSError.
    """
    own = OwnPaths.of(root, own)
    directory = path.rpartition("/")[0]
    dfd = _lower_directory(own, directory)
    if dfd is None:
        return None
    _clear_lower(own, dfd, ".", own.key(dfd))
    explain.step("layer", "opaque whiteout", f"hide lower contents of /{directory}", f"rm -rf rootfs/{directory}/* (lower layers' entries)")
    return directory


# ----------------------------------------------------------------- this layer's own paths


class OwnPaths:
    """The paths the layer being applied has created so far, so its whiteouts spare them.

    Paths are *keys*: in-root paths as the kernel resolves their directory (see
    :meth:`key`), without a leading ``/``; ``""`` is the root.

    Attributes:
        root: the :class:`~ocilearn.core.fsutil.Root` being built.
        created: keys of the entries this layer created.
        ancestors: keys of the directories above them (``""`` included).
        dir_attrs: ``{key: (mode, atime_ns, mtime_ns)}`` of this layer's directories, set
            when the layer ends (after their children); a removed directory's are dropped.
        source: a name for messages.
    """

    def __init__(self, root: Root, source: str = "layer") -> None:
        self.root, self.source = root, source
        self.created: set[str] = set()
        self.ancestors: set[str] = {""}
        self.dir_attrs: dict[str, tuple[int, int, int]] = {}
        self._rootpath = os.readlink(f"/proc/self/fd/{root.fd}")
        self._prefix = self._rootpath.rstrip("/") + "/"

    @classmethod
    def of(cls, root: Root, own: OwnPaths | None) -> OwnPaths:
        """``own``, or a new empty one for ``root``."""
        if own is None:
            return cls(root)
        if own.root is not root:
            raise ValueError("own paths belong to another rootfs")
        return own

    def add(self, key: str) -> None:
        """Record that this layer made ``key``."""
        self.created.add(key)
        p = key.rpartition("/")[0]
        while p not in self.ancestors:
            self.ancestors.add(p)
            p = p.rpartition("/")[0]

    def owns(self, key: str) -> bool:
        """True for an entry this layer made, or a directory above one."""
        return key in self.created or key in self.ancestors

    def key(self, dfd: int, name: str = "") -> str:
        """The key of ``name`` in the directory ``dfd`` (of ``dfd`` itself without a
        name). The same directory reached through an in-layer symlink alias gets the same
        key, so a whiteout cannot delete what this layer wrote through the alias. The
        kernel's name for the directory (:meth:`~ocilearn.core.fsutil.Root.fd_path`).

        Raises: LayerError when the directory is no longer inside the rootfs."""
        d = self._dirpath(dfd)
        return f"{d}/{name}" if d and name else d or name

    def _dirpath(self, dfd: int) -> str:
        if dfd == self.root.fd:
            return ""
        p = self.root.fd_path(dfd)
        if p == self._rootpath:
            return ""
        if p.startswith(self._prefix):
            return p[len(self._prefix):]
        raise LayerError(f"{self.source}: a directory of the rootfs moved or was deleted while applying ({p!r})")

    def remove(self, pfd: int, name: str, key: str) -> None:
        """Remove ``name`` in the directory ``pfd`` (key ``key``) and everything below it,
        without recursion and without following symlinks
        (:func:`ocilearn.core.fsutil.remove_tree_at`); pending attributes of directories
        removed are forgotten. Removing a directory or a symlink drops the rootfs's whole
        directory-fd cache: a cached fd may be that directory reached through any alias."""
        st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=pfd)
            if stat.S_ISLNK(st.st_mode):
                self.root.invalidate(keep=pfd)
            return

        def gone(sub: str) -> None:
            k = f"{key}/{sub}" if sub else key
            self.dir_attrs.pop(k, None)
            self.root.saved.pop(k, None)

        try:
            remove_tree_at(pfd, name, on_dir_removed=gone)
        finally:
            self.root.invalidate(keep=pfd)


# ----------------------------------------------------------------- in-root removal


def _lower_directory(own: OwnPaths, rel: str) -> int | None:
    """The fd of the directory ``rel`` resolved inside the rootfs, made writable when
    rootless; ``None`` when it does not exist (then there is nothing to delete)."""
    try:
        dfd = own.root.dir_fd(rel)
    except (FileNotFoundError, NotADirectoryError):
        return None
    own.root.ensure_writable(dfd, own.key(dfd))
    return dfd


def _remove_lower(own: OwnPaths, pfd: int, name: str) -> bool:
    """Remove what lower layers put at ``name`` in ``pfd``, keeping this layer's entries
    (a directory this layer made or wrote below is cleared of lower entries instead).
    True when something was removed."""
    key = own.key(pfd, name)
    try:
        st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if own.owns(key):
        if stat.S_ISDIR(st.st_mode):
            _clear_lower(own, pfd, name, key)
        return False
    own.remove(pfd, name, key)
    return True


def _open_dir(own: OwnPaths, pfd: int, name: str, key: str) -> int:
    """A readable fd of the directory ``name`` (never through a symlink); rootless, it is
    first granted ``u+rwx`` if it lacks it (restored when the layer ends)."""
    if own.root.rootless and os.stat(name, dir_fd=pfd, follow_symlinks=False).st_mode & 0o700 != 0o700:
        path_fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            own.root.make_writable(path_fd, key)
        finally:
            os.close(path_fd)
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)


def _clear_lower(own: OwnPaths, pfd: int, name: str, key: str) -> None:
    """Remove the lower layers' entries below the directory ``name`` (key ``key``),
    keeping this layer's: descends into directories this layer made or wrote below.
    Iterative — an explicit stack, down by name and back up by ``..``, checking that
    ``..`` is the directory it came from — so any depth works."""
    fd = _open_dir(own, pfd, name, key)
    keys = [key]  # key of the directory fd is in, per level
    ids: list[tuple[int, int]] = []  # (st_dev, st_ino) of each directory above fd
    pending = [os.listdir(fd)]
    try:
        while True:
            if pending[-1]:
                child = pending[-1].pop()
                ckey = f"{keys[-1]}/{child}" if keys[-1] else child
                try:
                    st = os.stat(child, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if not own.owns(ckey):
                    own.remove(fd, child, ckey)
                elif stat.S_ISDIR(st.st_mode):
                    nfd = _open_dir(own, fd, child, ckey)
                    here = os.fstat(fd)
                    os.close(fd)
                    fd = nfd
                    ids.append((here.st_dev, here.st_ino))
                    keys.append(ckey)
                    pending.append(os.listdir(fd))
                continue
            pending.pop()
            keys.pop()
            if not pending:
                break
            up = os.open("..", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = up
            ust = os.fstat(fd)
            if (ust.st_dev, ust.st_ino) != ids.pop():
                raise LayerError(f"{own.source}: /{keys[-1]} moved while applying the layer")
    finally:
        os.close(fd)
