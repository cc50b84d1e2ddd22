"""Unpack an image from an OCI image layout into an OCI runtime bundle (what ``umoci unpack`` does).

::

    BUNDLE/
      config.json    runtime config (ocilearn.bundle.convert; runtime-spec config.md)
      rootfs/        every layer applied in order (ocilearn.layer.apply; image-spec layer.md)
      ocilearn.json  what was unpacked: image, manifest and config digests, diff IDs,
                     chain IDs, rootless or not, what was skipped (like umoci.json)

Usage: ``unpack("images/busybox:latest", "bundle", rootless=True)`` or
``ocilearn unpack --image images/busybox:latest bundle [--rootless]``.

Guarantees
    - Every blob is verified (manifest, config, each layer's digest and size over all its
      bytes) and every diff ID is recomputed over the uncompressed stream and checked
      against the config's ``rootfs.diff_ids`` (image-spec config.md).
    - All or nothing: the bundle is built in a temporary directory *beside* ``BUNDLE``
      (same filesystem) and renamed into place only when complete; on any error the
      temporary directory is removed (chmod-ing restrictive directories first). An
      existing ``BUNDLE`` is refused unless it is an empty directory, or a bundle and
      ``force=True`` (a directory holding anything else, a file or a symlink never is);
      it is replaced only after the new one is complete (and put back if that last
      rename fails). Removal is
      iterative (any depth; a 1000-level tree used to overflow the stack), and an error
      while cleaning up never hides the error that caused it: it is attached as a note.
    - Killed unpacks: a process killed with SIGKILL cannot clean up, so its
      ``.BUNDLE.ocilearn-*`` temporary directory stays beside ``BUNDLE``. Each unpack holds
      an ``flock(2)`` on its temporary directory while it works, and the next unpack of
      any bundle in the same parent directory (with or without ``force``) first removes
      every ``.NAME.ocilearn-*`` directory older than a minute whose lock it can take — the kernel releases a
      dead process's locks, so only leftovers go; a concurrent unpack's are kept.
    - A layer blob that is not a regular file (a FIFO would block ``open`` forever) is a
      :class:`~ocilearn.core.errors.LayoutError`; the blob is opened with ``O_NONBLOCK``.
    - Durability: config.json and ocilearn.json are written with fsync + rename. The
      rootfs is flushed to disk (``syncfs(2)``) before the final rename only with
      ``sync=True`` (CLI ``--sync``): like umoci, the default leaves file data to the page
      cache — a flush of the ~130 MB debian rootfs costs seconds on this machine's disk,
      and ``syncfs`` also flushes every other process's dirty data on that filesystem. A
      crash before the kernel writes back can then leave empty files in a bundle.

Deliberate differences from ``umoci unpack`` 0.4.7 (tests/test_unpack_umoci.py checks that
these are the *only* ones, entry by entry, on the debian test image, as root and rootless)
    1. Rootless device nodes are skipped and listed (``UnpackResult.skipped``,
       ``ocilearn.json``); umoci writes empty regular files in their place. Nothing can use
       a regular file as a device, and runc mounts a tmpfs on ``/dev``.
    2. ``process.terminal`` is false (umoci: true, which makes ``runc run -d``/``create``
       fail without a console socket), so ``TERM=xterm`` is not added to ``process.env``.
    3. Rootless: ``process.user`` becomes 0:0 when the image's user is not root (only the
       caller's uid is mapped); umoci keeps e.g. 1000:1000 and runc then cannot start it.
    4. Annotations for absent fields are omitted; umoci writes
       ``org.opencontainers.image.exposedPorts``/``stopSignal`` as ``""``.
    5. Bundle metadata: ``ocilearn.json`` (below) instead of ``umoci.json`` and the mtree.
    6. ``hostname`` is ``ocilearn`` (umoci: ``umoci-default``); umoci's rootless config also
       bind-mounts the host's ``/etc/resolv.conf``, ocilearn's (like ``runc spec --rootless``)
       does not. Directory mtimes of lower-layer directories changed by a later layer are
       not restored (mtimes are not compared).

``ocilearn.json`` instead of umoci's ``umoci.json`` + ``sha256_<digest>.mtree``: ocilearn has
no ``repack``, so no mtree manifest is needed; the JSON keeps what a learner (notebook 03)
or a later tool wants to know about the bundle's origin.
"""

from __future__ import annotations

import ctypes
import fcntl
import io
import json
import os
import re
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import explain
from ..core.errors import BundleError, LayerError
from ..core.fsutil import Root, atomic_write, remove_tree_at
from ..image.digest import Digest
from ..image.layout import ImageLayout, check_path_argument, parse_oci_ref
from ..image.model import Platform, chain_ids, dumps
from ..layer.apply import LayerResult, apply_layer
from . import convert as conv

__all__ = ["UnpackResult", "unpack", "remove_tree", "remove_stale_temps"]


@dataclass
class UnpackResult:
    """What :func:`unpack` made.

    Attributes:
        bundle: the bundle directory (Path); ``manifest`` / ``config_digest``: digests;
        platform: of the image; ``layers``: one :class:`~ocilearn.layer.apply.LayerResult` per
        layer; ``chain_ids``; ``config``: the config.json written (dict); ``rootless``;
        ``skipped``: ``[(path, reason)]`` over all layers; ``seconds``: wall time.
    """

    bundle: Path
    manifest: Digest
    config_digest: Digest
    platform: Platform
    layers: list[LayerResult] = field(default_factory=list)
    chain_ids: list[Digest] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    rootless: bool = False
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rootfs(self) -> Path:
        return self.bundle / "rootfs"


def remove_tree(path: str | os.PathLike) -> None:
    """``rm -rf`` that also works on rootless rootfs trees with ``0o000``/``0o555``
    directories (grants ``u+rwx`` where needed) and on trees of any depth (no recursion:
    :func:`ocilearn.core.fsutil.remove_tree_at`). Never follows symlinks below ``path``; a
    missing ``path`` is not an error.

    Raises:
        BundleError: ``path`` is empty or only whitespace (it would mean the current
            directory).
    """
    path = os.path.abspath(check_path_argument(path, "path to remove", BundleError))
    parent, name = os.path.split(path)
    try:
        pfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        remove_tree_at(pfd, name)
    finally:
        os.close(pfd)


def _lock_dir(path: Path) -> int:
    """An fd of directory ``path`` holding an exclusive flock(2) (released when the fd is
    closed or the process dies)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


STALE_AFTER = 60.0  # seconds: a temp directory younger than this is never swept


_TEMP_NAME = re.compile(r"\.(?P<bundle>.+)\.ocilearn-[a-z0-9_]{8}")  # tempfile.mkdtemp's 8-character suffix


def remove_stale_temps(bundle: str | os.PathLike) -> list[Path]:
    """Remove the ``.NAME.ocilearn-XXXXXXXX`` directories that killed unpacks of *any*
    bundle left in ``bundle``'s parent directory (each unpack calls this first): those owned by this user, older than
    ``STALE_AFTER`` seconds, whose flock(2) can be taken (no live unpack holds it).
    Returns the paths removed. A directory another unpack is working in, or another
    user's, is kept; an image layout's ``.NAME.ocilearn-init-*`` is not this pattern.

    Raises:
        BundleError: ``bundle`` is empty or only whitespace.
    """
    bundle = check_path_argument(bundle, "bundle path", BundleError).absolute()
    removed = []
    try:
        names = os.listdir(bundle.parent)
    except FileNotFoundError:
        return removed
    for name in names:
        m = _TEMP_NAME.fullmatch(name)
        if not m:
            continue
        p = bundle.parent / name
        try:
            st = os.lstat(p)
            # only our own directories, and not ones made in the last minute: a concurrent
            # unpack creates its directory a moment before it can lock it
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or time.time() - st.st_ctime < STALE_AFTER:
                continue
            fd = _lock_dir(p)
        except (BlockingIOError, FileNotFoundError, NotADirectoryError, PermissionError):
            continue  # in use by a live unpack, gone, or not ours
        try:
            remove_tree(p)
            removed.append(p)
            explain.step("unpack", "clean", f"removed {p.name}, left by a killed unpack of {m['bundle']}", f"rm -rf {p}")
        finally:
            os.close(fd)
    return removed


# what a bundle holds (runtime-spec bundle.md: config.json and the root filesystem; the
# metadata ocilearn and umoci write beside them): all that --force may replace
_BUNDLE_NAMES = frozenset({"config.json", "rootfs", "ocilearn.json", "umoci.json"})


def _check_replaceable(bundle: Path, force: bool) -> None:
    """Refuse to unpack over what is at ``bundle``, unless it is nothing, an empty
    directory (nothing to lose; umoci unpacks into one too), or — with ``force`` — a
    bundle: a directory holding only what a bundle holds (:data:`_BUNDLE_NAMES`, umoci's
    ``sha256_*.mtree``). A file, a symlink, or a directory of anything else (notes, an
    image layout, the image being unpacked) is never replaced.

    Raises: BundleError naming ``bundle`` and why."""
    try:
        st = os.lstat(bundle)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
        raise BundleError(f"{bundle}: already exists and is {kind}; not replaced (remove it, or give another bundle path)")
    try:
        names = os.listdir(bundle)
    except PermissionError:  # another user's bundle (a bundle directory is 0700)
        raise BundleError(f"{bundle}: already exists and this user cannot read it (another user's?); "
                          "give another bundle path") from None
    if not names:
        return
    if not force:
        raise BundleError(f"{bundle}: already exists; remove it, or replace it with --force (force=True)")
    foreign = sorted(n for n in names if n not in _BUNDLE_NAMES and not (n.startswith("sha256_") and n.endswith(".mtree")))
    if foreign:
        shown = ", ".join(repr(n) for n in foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise BundleError(f"{bundle}: is not a bundle (it holds {shown}); --force replaces only a bundle "
                          "(config.json, rootfs/, ocilearn.json, umoci's umoci.json and sha256_*.mtree): not replaced")


def _contains_cwd(path: Path) -> bool:
    """True when the current directory is ``path`` or below it (symlinks resolved)."""
    try:
        cwd = Path(os.getcwd())
    except FileNotFoundError:
        return False
    return cwd.is_relative_to(os.path.realpath(path))


_libc = ctypes.CDLL(None, use_errno=True)


def _syncfs(fd: int) -> None:
    """syncfs(2): flush the filesystem holding ``fd``."""
    if _libc.syncfs(fd) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), "syncfs")


def unpack(
    image: str | os.PathLike,
    bundle: str | os.PathLike,
    *,
    ref: str | None = None,
    platform: Platform | str | None = None,
    rootless: bool | None = None,
    force: bool = False,
    terminal: bool = False,
    progress: bool = False,
    sync: bool = False,
) -> UnpackResult:
    """Unpack an image into a runtime bundle (``umoci unpack --image IMAGE BUNDLE``).

    Args:
        image: ``PATH[:REF]`` of an OCI image layout (``oci:`` prefix allowed), or a path
            with ``ref`` given separately; ``ref`` ``None`` = the only entry.
        bundle: directory to create (its parent must exist).
        platform: ``os/arch[/variant]`` for image indexes (default: this machine's).
        rootless: ``None`` = rootless when not root (see :func:`ocilearn.layer.apply_layer`
            and :func:`ocilearn.bundle.convert.make_rootless`).
        force: replace an existing bundle (only once the new one is complete); only a
            directory holding nothing but a bundle's files is replaced.
        terminal: ``process.terminal`` in config.json (default false; see convert).
        progress: show a tqdm bar over the compressed bytes.
        sync: ``syncfs`` the rootfs before the final rename (default False, like umoci).

    Returns: :class:`UnpackResult`.

    Raises:
        BundleError: ``bundle`` is empty or only whitespace (``""`` would mean the current
            directory; umoci refuses it too), something is at the bundle path (without ``force``:
            anything but an empty directory; with it: anything but a bundle) or its
            parent is missing.
        LayoutError: ``image`` names an empty layout path.
        LayoutError/RefNotFound/PlatformNotFound, DigestMismatch, SizeMismatch,
        LayerError, UnsafePath, ConfigError: from the steps; no bundle is left behind.
    """
    t0 = time.monotonic()
    bundle = Path(os.path.normpath(check_path_argument(bundle, "bundle path", BundleError).absolute()))
    if bundle == bundle.parent:
        raise BundleError(f"bundle path {bundle}: is the root directory; give a directory to create")
    if force and os.path.lexists(bundle) and _contains_cwd(bundle):
        raise BundleError(f"bundle path {bundle}: is the current directory or contains it; refusing to replace it (--force)")
    check_path_argument(image, "image layout path")
    if ref is None:
        path, ref = parse_oci_ref(os.fspath(image))
    else:
        path = os.fspath(image)
    check_path_argument(path, "image layout path")
    rootless = (os.geteuid() != 0) if rootless is None else rootless
    _check_replaceable(bundle, force)
    if not bundle.parent.is_dir():
        raise BundleError(f"{bundle}: parent directory {bundle.parent} does not exist")

    layout = ImageLayout.open(path)
    image_ref = f"{path}:{ref}" if ref else path
    resolved = layout.resolve(ref, platform)
    manifest = resolved.manifest
    ic = layout.image_config(resolved)
    if len(ic.diff_ids) != len(manifest.layers):
        raise LayerError(
            f"{path}: manifest {resolved.digest} has {len(manifest.layers)} layers but its config lists "
            f"{len(ic.diff_ids)} diff IDs (config.md rootfs.diff_ids: one per layer)"
        )
    explain.step("unpack", "resolve", f"{image_ref} → manifest {resolved.digest}, config {manifest.config.digest}, {len(manifest.layers)} layers",
                 f"umoci unpack --image {image_ref} {bundle}" + (" --rootless" if rootless else ""))

    remove_stale_temps(bundle)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{bundle.name}.ocilearn-", dir=bundle.parent))
    except OSError as e:  # not the temporary name: the directory the user can fix
        raise BundleError(f"{bundle}: cannot create the bundle in {bundle.parent}: {e.strerror}") from None
    result = UnpackResult(bundle, resolved.digest, manifest.config.digest, ic.platform, rootless=rootless)
    bar = None
    lock = -1
    try:
        lock = _lock_dir(tmp)
        os.chmod(tmp, 0o700)
        rootfs = tmp / "rootfs"
        os.mkdir(rootfs, 0o755)
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=sum(d.size for d in manifest.layers), unit="B", unit_scale=True, desc=f"unpack {bundle.name}")
        with Root(rootfs, rootless=rootless) as root:
            for i, (desc, diff_id) in enumerate(zip(manifest.layers, ic.diff_ids, strict=True)):
                source = f"layer {i} {desc.digest}"
                if desc.data is not None:
                    f = io.BytesIO(desc.data)
                else:
                    f = layout.open_blob_file(desc.digest, "layer blob")  # apply_layer verifies digest and size
                with f:
                    lr = apply_layer(root, f, desc.media_type, digest=desc.digest, size=desc.size, diff_id=diff_id,
                                     rootless=rootless, source=source, progress=bar.update if bar else None)
                result.layers.append(lr)
                result.skipped.extend(lr.skipped)
            result.chain_ids = chain_ids(ic.diff_ids)
            result.config = conv.convert(ic, root, rootless=rootless, terminal=terminal)
        atomic_write(tmp / "config.json", json.dumps(result.config, indent=2).encode() + b"\n", 0o644)
        meta = {
            "ocilearn": 1,
            "image": os.path.abspath(path),
            "ref": ref,
            "manifest": str(resolved.digest),
            "config": str(manifest.config.digest),
            "platform": str(ic.platform),
            "diff_ids": [str(d) for d in ic.diff_ids],
            "chain_ids": [str(c) for c in result.chain_ids],
            "rootless": rootless,
            "skipped": [list(s) for s in result.skipped],
        }
        atomic_write(tmp / "ocilearn.json", dumps(meta), 0o644)
        explain.step("unpack", "write", f"{bundle}/config.json and ocilearn.json", "umoci unpack (config.json, umoci.json)")
        if sync:
            fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
            try:
                _syncfs(fd)
            finally:
                os.close(fd)
        trash = None
        if os.path.lexists(bundle):
            _check_replaceable(bundle, force)  # again: something may have been put there meanwhile
            trash = bundle.parent / f".{bundle.name}.ocilearn-old-{os.getpid()}"
            os.rename(bundle, trash)
        try:
            os.rename(tmp, bundle)
        except BaseException:
            if trash is not None:
                os.rename(trash, bundle)  # put the old bundle back
            raise
        fd = os.open(bundle.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if trash is not None:
            try:
                remove_tree(trash)
            except OSError as ce:  # the new bundle is in place; a leftover is cleaned next time
                import warnings

                warnings.warn(f"{bundle}: the replaced bundle {trash.name} could not be removed ({ce})", stacklevel=2)
        explain.step("unpack", "rename", f"{tmp.name} → {bundle} (atomic: no half bundle)", "mv")
    except BaseException as e:
        try:
            remove_tree(tmp)
        except Exception as ce:  # never hide the original error behind the cleanup's
            e.add_note(f"ocilearn: could not remove the temporary directory {tmp}: {type(ce).__name__}: {ce}")
        raise
    finally:
        if lock >= 0:
            os.close(lock)
        if bar is not None:
            bar.close()
    result.seconds = time.monotonic() - t0
    return result
