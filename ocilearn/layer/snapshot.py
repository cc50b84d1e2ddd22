"""Snapshots of a rootfs and their differences: what each layer added, changed and deleted.

:func:`snapshot` records a tree entry by entry (type, mode, owner, size, content digest,
symlink target, hardlink group, xattrs, device numbers) — what the tests compare between
ocilearn and ``umoci unpack``. :func:`diff_snapshots` is the changeset between two of them
(image-spec layer.md "Determining Changes": added, modified, deleted).
:func:`rootfs_after_each_layer` applies an image's layers one by one and snapshots the
tree after each (notebook 02).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..core.streams import CHUNK
from .apply import apply_layer
from .tar import LayerWarning

__all__ = ["FileInfo", "snapshot", "diff_snapshots", "rootfs_after_each_layer"]


@dataclass(frozen=True)
class FileInfo:
    """One rootfs entry as :func:`snapshot` records it.

    ``type``: file dir symlink char block fifo socket; ``mode``: ``& 0o7777``; ``size`` in
    bytes (files); ``sha256`` of content (files; ``"unreadable"`` when it cannot be read);
    ``link``: symlink target; ``hardlinks``: the sorted paths sharing the inode when
    nlink > 1; ``xattrs``: tuple of ``(name, bytes)``; ``rdev``: (major, minor) of a device.
    """

    type: str
    mode: int
    uid: int
    gid: int
    size: int = 0
    sha256: str = ""
    link: str = ""
    hardlinks: tuple[str, ...] = ()
    xattrs: tuple[tuple[str, bytes], ...] = ()
    rdev: tuple[int, int] | None = None


def snapshot(rootfs: str | os.PathLike, *, content: bool = True, xattrs: bool = True) -> dict[str, FileInfo]:
    """Walk a rootfs (without following symlinks) into ``{"/path": FileInfo}``; ``"/"`` is
    the root itself. ``content``: hash file contents; ``xattrs``: read extended attributes."""
    rootfs = os.fspath(rootfs)
    stats = _walk(rootfs)
    groups: dict[tuple[int, int], list[str]] = {}
    for rel, (_full, st) in stats.items():
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            groups.setdefault((st.st_dev, st.st_ino), []).append(rel)
    return {rel: _info(full, st, groups, content=content, xattrs=xattrs) for rel, (full, st) in stats.items()}


def diff_snapshots(before: dict[str, FileInfo], after: dict[str, FileInfo]) -> dict[str, list[str]]:
    """What changed between two :func:`snapshot` s: ``{"added": [...], "changed": [...],
    "deleted": [...]}`` (sorted paths)."""
    return {
        "added": sorted(p for p in after if p not in before),
        "changed": sorted(p for p in after if p in before and after[p] != before[p]),
        "deleted": sorted(p for p in before if p not in after),
    }


def rootfs_after_each_layer(layout, ref: str | None = None, platform=None,
                            work: str | os.PathLike | None = None) -> list[tuple[str, dict[str, FileInfo], dict[str, list[str]]]]:
    """Apply an image's layers one by one into ``work/rootfs`` (a temp dir by default)
    and snapshot the tree after each: ``[(title, snapshot, changes), …]`` where
    ``changes`` is :func:`diff_snapshots` against the layer below (what the layer
    added, changed and deleted). Rootless when not root; warnings are not shown.

    Args:
        layout: an :class:`~ocilearn.image.layout.ImageLayout` or its directory.
        ref, platform: which image (as ``ImageLayout.resolve`` takes them).
    """
    from ..image.layout import ImageLayout

    lay = layout if isinstance(layout, ImageLayout) else ImageLayout.open(layout)
    img = lay.resolve(ref, platform)
    cfg = lay.image_config(img)
    base = Path(work) if work is not None else Path(tempfile.mkdtemp(prefix="ocilearn-layers-"))
    rootfs = base / "rootfs"
    rootfs.mkdir(parents=True, exist_ok=True)
    out = []
    before = snapshot(rootfs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LayerWarning)
        for i, (d, did) in enumerate(zip(img.manifest.layers, cfg.diff_ids, strict=True)):
            with lay.open_blob(d) as f:
                apply_layer(rootfs, f, d.media_type, diff_id=did, source=f"layer {i} {d.digest}")
            after = snapshot(rootfs)
            out.append((f"after layer {i} ({d.digest.short}, {d.size} bytes)", after, diff_snapshots(before, after)))
            before = after
    return out


def _walk(rootfs: str) -> dict[str, tuple[str, os.stat_result]]:
    """``{"/rel": (full path, lstat)}`` of every entry of ``rootfs``, the root as ``"/"``."""
    out = {"/": (rootfs, os.lstat(rootfs))}
    for dirpath, dirnames, filenames in os.walk(rootfs):
        rel_dir = "/" + os.path.relpath(dirpath, rootfs).lstrip(".")
        rel_dir = "/" if rel_dir in ("/", "") else rel_dir
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            out[rel_dir.rstrip("/") + "/" + name] = (full, os.lstat(full))
    return out


def _kind(mode: int) -> str:
    for kind, test in (("dir", stat.S_ISDIR), ("file", stat.S_ISREG), ("symlink", stat.S_ISLNK), ("char", stat.S_ISCHR),
                       ("block", stat.S_ISBLK), ("fifo", stat.S_ISFIFO)):
        if test(mode):
            return kind
    return "socket"


def _info(full: str, st: os.stat_result, groups, *, content: bool, xattrs: bool) -> FileInfo:
    kind = _kind(st.st_mode)
    return FileInfo(
        type=kind, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid,
        size=st.st_size if kind == "file" else 0,
        sha256=_sha256(full) if kind == "file" and content else "",
        link=os.readlink(full) if kind == "symlink" else "",
        hardlinks=tuple(sorted(groups.get((st.st_dev, st.st_ino), ()))) if kind != "dir" and st.st_nlink > 1 else (),
        xattrs=_xattrs(full) if xattrs and kind != "symlink" else (),
        rdev=(os.major(st.st_rdev), os.minor(st.st_rdev)) if kind in ("char", "block") else None,
    )


def _sha256(full: str) -> str:
    h = hashlib.sha256()
    try:
        with open(full, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    except PermissionError:
        return "unreadable"
    return h.hexdigest()


def _xattrs(full: str) -> tuple[tuple[str, bytes], ...]:
    try:
        return tuple(sorted((k, os.getxattr(full, k, follow_symlinks=False)) for k in os.listxattr(full, follow_symlinks=False)))
    except OSError:
        return ()
