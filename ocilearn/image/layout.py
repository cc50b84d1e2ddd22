"""The OCI Image Layout: a directory that stores an image (image-spec image-layout.md).

::

    DIR/
      oci-layout          {"imageLayoutVersion": "1.0.0"}
      index.json          an image index; its entries carry ref names (tags)
      blobs/sha256/<hex>  content-addressed blobs: manifests, configs, layers

This is what ``skopeo copy docker://… oci:DIR:TAG`` writes and ``umoci`` reads.
:class:`ImageLayout` is the content store plus the refs plus resolution of a ref (and a
platform) to one image manifest, and ``fsck`` / ``gc`` to check and tidy it.

Safety rules kept here:
- a digest is validated before it becomes a path (CVE-2024-3727);
- a blob becomes visible only complete and verified: written to a temp file in the same
  directory, fsync'd, checked, then renamed (and the directory fsync'd);
- index.json is replaced the same way, under an ``flock`` on the layout directory, so two
  writers adding refs at once never lose one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from ..core import explain, syscalls
from ..core.errors import (
    AmbiguousReference,
    BlobNotFound,
    DigestMismatch,
    InvalidDocument,
    InvalidRefName,
    LayoutError,
    OcilearnError,
    PlatformNotFound,
    RefNotFound,
    SizeMismatch,
)
from ..core.fsutil import TMP_PREFIX, atomic_write, fsync_dir, locked_temp, write_failed
from . import mediatypes as mt
from .digest import CHUNK, Digest, VerifyingReader, new_hasher
from .model import REF_NAME, Descriptor, ImageConfig, Index, Manifest, Platform, dumps, parse_document

#: bytes of a blob written before its writeback to disk is started (see put_blob)
WRITEBACK_EVERY = 8 << 20

LAYOUT_VERSION = "1.0.0"
MAX_DOCUMENT = 4 * 1024 * 1024  # bytes; manifests/indexes/configs larger than this are refused
MAX_NESTING = 16  # image indexes opened while resolving one ref

# image-layout.md "index.json": ref ::= component ("/" component)* ;
# component ::= alphanum (separator alphanum)* ; alphanum ::= [A-Za-z0-9]+ ;
# separator ::= [-._:@+] | "--"
_REF_NAME = re.compile(r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*\Z")


def validate_ref_name(name: str) -> str:
    """Check a ref name against image-layout.md's grammar; returns it.

    Raises:
        InvalidRefName: e.g. empty, spaces, leading or trailing separators.
    """
    if not isinstance(name, str) or not _REF_NAME.match(name):
        raise InvalidRefName(
            f"invalid ref name {name!r}: expected components of [A-Za-z0-9] joined by one of - . _ : @ + "
            "(or --), separated by / (image-layout.md 'index.json')"
        )
    return name


def host_platform() -> Platform:
    """The platform of this machine as OCI names it (``linux/amd64``, ``linux/arm64/v8`` …)."""
    machine = os.uname().machine
    arch, variant = {
        "x86_64": ("amd64", None),
        "aarch64": ("arm64", "v8"),
        "armv7l": ("arm", "v7"),
        "armv6l": ("arm", "v6"),
        "i686": ("386", None),
        "ppc64le": ("ppc64le", None),
        "s390x": ("s390x", None),
        "riscv64": ("riscv64", None),
    }.get(machine, (machine, None))
    return Platform("linux", arch, variant)


# ------------------------------------------------------------------ path arguments


def check_path_argument(value: object, what: str, error: type[OcilearnError] = LayoutError) -> Path:
    """A path argument made a :class:`~pathlib.Path`, refusing the empty string and
    whitespace-only strings.

    ``Path("")`` is ``Path(".")``: an empty path silently means the current directory, so a
    forgotten or mistyped argument (``ocilearn unpack --force --image IMG ""``) would act on
    it. umoci refuses an empty bundle path the same way. ``what`` names the argument in the
    message (e.g. ``"bundle path"``, ``"layout path"``); ``error`` is the exception class
    raised.

    Raises:
        error: ``value`` is empty, only whitespace, contains a NUL byte, or is not a
            ``str``/``bytes``/``os.PathLike``.
    """
    if isinstance(value, Path):
        return value  # a Path cannot be empty: Path("") is already ".", written on purpose
    try:
        text = os.fspath(value)  # type: ignore[arg-type]
    except TypeError:
        raise error(f"{what}: expected a path, got {type(value).__name__}") from None
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text.strip():
        shown = "empty" if not text else f"only whitespace ({text!r})"
        raise error(f"{what} is {shown}: refusing it (an empty path would mean the current directory)")
    if "\0" in text:
        raise error(f"{what} {text!r} contains a NUL byte")
    return Path(text)


# ------------------------------------------------------------------ atomic files


@dataclass(frozen=True)
class TempFile:
    """A ``.tmp-*`` file in a layout: a blob or index.json being written, or left by a
    writer that was killed (``in_use`` False: no live process holds its ``flock``).

    Attributes:
        path: the file (:class:`pathlib.Path`); size: bytes; in_use: a live writer holds it.
    """

    path: Path
    size: int
    in_use: bool


def _temp_in_use(path: Path) -> bool | None:
    """True when a live writer holds the temp file's flock; None when it is gone or cannot
    be opened (another user's)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # gone, or another user's file
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's lock
    return False


def list_temp_files(directory: Path) -> list[TempFile]:
    """The ``.tmp-*`` regular files directly in ``directory`` with size and whether a live
    writer holds them (a non-blocking ``flock`` probe; nothing is changed)."""
    out = []
    try:
        names = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return out
    for name in names:
        if not name.startswith(TMP_PREFIX):
            continue
        p = Path(directory) / name
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        in_use = _temp_in_use(p)
        if in_use is not None:
            out.append(TempFile(p, st.st_size, in_use))
    return out


def sweep_temp_files(directory: Path) -> list[TempFile]:
    """Remove the ``.tmp-*`` files in ``directory`` that no live writer holds: each is
    opened, its ``flock`` taken without waiting (a live writer's is refused), checked to be
    the same inode as the name, then unlinked. Returns what was removed (with sizes).

    The same rule as umoci's directory engine, which removes only the temp directories
    whose lock it can take: the kernel drops a killed process's locks, so only leftovers go.
    """
    removed = []
    for t in list_temp_files(directory):
        if t.in_use:
            continue
        try:
            fd = os.open(t.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            st, now = os.fstat(fd), os.lstat(t.path)
            if (st.st_dev, st.st_ino) != (now.st_dev, now.st_ino):
                continue
            os.unlink(t.path)
            removed.append(TempFile(t.path, st.st_size, False))
        except (BlockingIOError, FileNotFoundError):
            continue
        finally:
            os.close(fd)
    if removed:
        explain.step("layout", "remove temp files", f"{len(removed)} left by killed writers in {directory} "
                     f"({sum(t.size for t in removed)} bytes)", f"rm {directory}/{TMP_PREFIX}*")
    return removed


def read_regular(path: Path, limit: int, what: str = "file") -> bytes:
    """Read a small file that must be a *regular* file, at most ``limit`` bytes.

    Opened with ``O_NOFOLLOW|O_NONBLOCK``: a symlink, a FIFO (which would block), a device
    (``/dev/zero`` would never end) or anything over ``limit`` is refused rather than read.

    Raises:
        FileNotFoundError: the file does not exist.
        LayoutError: not a regular file, or a symlink.
        InvalidDocument: larger than ``limit`` bytes.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise LayoutError(f"{path}: is a symlink; a layout's {what} must be a regular file") from None
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise LayoutError(f"{path}: is not a regular file (mode {stat.filemode(st.st_mode)}); refusing to read it as the {what}")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise InvalidDocument(f"{path}: over the {limit}-byte limit for the {what}")
    return data


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class ResolvedImage:
    """One image found in a layout.

    Attributes:
        descriptor: the manifest's :class:`Descriptor` (digest, size, platform if known).
        manifest: the parsed :class:`Manifest`.
        path: the descriptors walked from index.json down to the manifest (index entry,
            nested indexes …, manifest), for showing how resolution went.
    """

    descriptor: Descriptor
    manifest: Manifest
    path: tuple[Descriptor, ...] = ()

    @property
    def digest(self) -> Digest:
        return self.descriptor.digest


@dataclass
class FsckReport:
    """What :meth:`ImageLayout.fsck` found. Nothing is changed by fsck.

    Attributes:
        checked: number of reachable blobs verified.
        missing: list of (descriptor, parent) pairs whose blob is absent.
        corrupt: list of (descriptor, reason) for blobs of wrong size/digest or unparsable.
        dangling: digests of blobs stored but not reachable from index.json.
        errors: other problems (bad index.json …) as strings.
        temps: the ``.tmp-*`` files (:class:`TempFile`: path, size, in use by a live
            writer or left by a killed one) in the layout and its blob directories.
    """

    checked: int = 0
    missing: list[tuple[Descriptor, str]] = field(default_factory=list)
    corrupt: list[tuple[Descriptor, str]] = field(default_factory=list)
    dangling: list[Digest] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    temps: list[TempFile] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no reachable blob is missing or corrupt (dangling blobs and temp files
        are garbage, not damage: reported, and removed by ``gc``)."""
        return not (self.missing or self.corrupt or self.errors)

    @property
    def garbage_bytes(self) -> int:
        """Bytes in temp files left by killed writers (not those of live writers)."""
        return sum(t.size for t in self.temps if not t.in_use)

    def __str__(self) -> str:
        head = f"checked {self.checked} reachable blobs: " + ("OK" if self.ok else "PROBLEMS")
        left = [t for t in self.temps if not t.in_use]
        if left:
            head += f"; {len(left)} temp files ({self.garbage_bytes} bytes) left by killed writers"
        lines = [head]
        lines += [f"missing  {d.digest} ({d.kind}, {d.size} bytes) referenced by {p}" for d, p in self.missing]
        lines += [f"corrupt  {d.digest} ({d.kind}): {why}" for d, why in self.corrupt]
        lines += [f"dangling {d} (not reachable from index.json; `ocilearn layout gc` removes it)" for d in self.dangling]
        lines += [f"temp     {t.path} ({t.size} bytes): " + ("being written by a live process" if t.in_use else
                  "left by a killed writer; `ocilearn layout gc` removes it") for t in self.temps]
        lines += [f"error    {e}" for e in self.errors]
        return "\n".join(lines)


@dataclass
class GcReport:
    """What :meth:`ImageLayout.gc` removed (or would remove, with ``dry_run``).

    Attributes:
        removed: digests of the unreachable blobs; removed_bytes: their total size.
        temps: the temp files (:class:`TempFile`) left by killed writers.
        dry_run: nothing was removed, only listed.
    """

    removed: list[Digest] = field(default_factory=list)
    removed_bytes: int = 0
    temps: list[TempFile] = field(default_factory=list)
    dry_run: bool = False

    @property
    def temp_bytes(self) -> int:
        return sum(t.size for t in self.temps)

    def __str__(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        lines = [f"{verb} {d}" for d in self.removed]
        lines += [f"{verb} {t.path} ({t.size} bytes, left by a killed writer)" for t in self.temps]
        lines.append(f"{verb} {len(self.removed)} unreachable blobs ({self.removed_bytes} bytes) and "
                     f"{len(self.temps)} temp files ({self.temp_bytes} bytes)")
        return "\n".join(lines)


# ------------------------------------------------------------------ platform choice

_ARM_VARIANTS = ("v5", "v6", "v7")


def _norm_variant(arch: str, variant: str | None) -> str | None:
    if arch == "arm64" and variant in (None, "", "v8"):
        return "v8"
    return variant or None


def platform_rank(want: Platform, have: Platform | None) -> int | None:
    """How well ``have`` serves ``want``: 0 best, larger worse, ``None`` not at all.

    image-index.md ``platform``; arm64 without a variant is v8 (as containerd's
    platforms package normalises it); an arm host of
    variant vN accepts vN, then lower variants, then an entry with no variant last; a
    requested variant never gets a newer one. An entry with no ``platform`` at all
    (image-index.md: the property is OPTIONAL; go-containerregistry writes a nested index
    of one such image) is the very last resort, after every matching platform, as
    containers/image (skopeo) chooses.
    """
    if have is None:
        return 1000
    if have.os != want.os or have.architecture != want.architecture:
        return None
    if want.os_version and have.os_version and want.os_version != have.os_version:
        return None
    w = _norm_variant(want.architecture, want.variant)
    h = _norm_variant(have.architecture, have.variant)
    if w is None:
        # no variant asked for: prefer the newest arm variant, else any
        if want.architecture == "arm" and h in _ARM_VARIANTS:
            return 1 + (len(_ARM_VARIANTS) - 1 - _ARM_VARIANTS.index(h))
        return 0 if h is None else 1
    if h == w:
        return 0
    if want.architecture == "arm" and w in _ARM_VARIANTS and h in _ARM_VARIANTS:
        lower = _ARM_VARIANTS.index(h) < _ARM_VARIANTS.index(w)
        return 1 + (_ARM_VARIANTS.index(w) - _ARM_VARIANTS.index(h)) if lower else None
    if h is None:
        return 10  # last resort: an entry that does not say
    return None




def select_platform(candidates: list[Descriptor], want: Platform, source: str) -> Descriptor:
    """Choose the manifest descriptor for ``want`` among ``candidates`` (from an index).

    Ranking per :func:`platform_rank`; list order breaks ties (image-index.md: "the first
    matching entry SHOULD be used").

    Raises:
        PlatformNotFound: no compatible entry (an explicit arm variant of ``v8`` or
            above is not an arm variant and matches nothing); the message lists what is there.
    """
    if want.architecture == "arm" and want.variant and want.variant not in _ARM_VARIANTS:
        raise PlatformNotFound(
            f"{source}: platform {want}: {want.variant!r} is not a 32-bit arm variant (expected one of "
            f"{', '.join(_ARM_VARIANTS)}; for 64-bit use arm64)"
        )
    best: tuple[int, int, Descriptor] | None = None
    for pos, d in enumerate(candidates):
        r = platform_rank(want, d.platform)
        if r is not None and (best is None or (r, pos) < best[:2]):
            best = (r, pos, d)
    if best is None:
        have = ", ".join(str(d.platform) if d.platform else "(no platform)" for d in candidates) or "nothing"
        raise PlatformNotFound(f"{source}: no manifest for platform {want}; the index has: {have}")
    return best[2]


# ------------------------------------------------------------------ the layout

_EMPTY_INDEX = dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []})
_OCI_LAYOUT = dumps({"imageLayoutVersion": LAYOUT_VERSION})
_LAYOUT_NAMES = {"blobs", "index.json", "oci-layout"}


def _half_created(names: set[str]) -> bool:
    """A directory listing that a stopped layout creation can leave: only ``blobs``,
    ``index.json``, ``oci-layout`` and ``.tmp-*`` names, without both files."""
    return (not {"index.json", "oci-layout"} <= names) and all(n in _LAYOUT_NAMES or n.startswith(TMP_PREFIX) for n in names)


@contextlib.contextmanager
def _flock_dir(path: Path, how: int, what: str = "") -> Iterator[int]:
    """Hold ``flock(how)`` on directory ``path`` (an fd of its own) for the block."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, how)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def _sweep_init_temps(parent: Path, prefix: str) -> None:
    """Remove ``PREFIX*`` directories in ``parent`` left by killed layout creators: only
    this user's, and only those whose ``flock`` can be taken (a live creator holds its
    own). A directory removed by ``rmdir`` has no links left, so a creator that locks it
    too late notices (``st_nlink`` 0) — the same rule as :func:`_locked_temp`."""
    try:
        names = [n for n in os.listdir(parent) if n.startswith(prefix)]
    except OSError:
        return
    for name in names:
        d = parent / name
        try:
            st = os.lstat(d)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                continue
            fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(d)
            explain.step("layout", "remove temp dir", f"{d} (left by a killed layout creation)", f"rm -r {d}")
        except OSError:
            continue
        finally:
            os.close(fd)


class ImageLayout:
    """An OCI image layout on disk (image-spec image-layout.md).

    Create with :meth:`init` or open with :meth:`open` (or the constructor, which opens).

    Attributes:
        path: the layout directory (:class:`pathlib.Path`).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = check_path_argument(path, "image layout path")
        self._check()
        self._writers = 0  # nesting depth of writing() in this object
        self._writer_fd = -1  # the blobs/ directory, holding a shared flock while writing
        self._writer_mutex = threading.Lock()

    # -- create / open -------------------------------------------------

    @classmethod
    def init(cls, path: str | os.PathLike, *, exist_ok: bool = True) -> "ImageLayout":
        """Create an empty layout at ``path`` (like ``umoci init --layout``), or open the
        existing one when ``exist_ok``.

        Safe against kill -9 and against concurrent first writers:

        - a new layout is built in a temporary directory beside ``path``
          (``.NAME.ocilearn-init-*``: ``blobs/sha256``, ``index.json``, ``oci-layout``, each
          written with fsync + rename) and renamed into place; of several processes creating
          it at once one rename wins and the others open the winner's layout. A killed
          creator leaves only its temporary directory, which the next ``init`` of that name
          removes (when no live process holds its ``flock``);
        - an existing empty directory is filled in place under the layout's lock
          (``flock`` on the directory), ``index.json`` before ``oci-layout``; a directory
          holding only ``blobs/``, ``index.json``, ``oci-layout`` and ``.tmp-*`` files (what
          a killed fill leaves, or a layout missing one of the two files) is completed;
        - parent directories are created as needed.

        Raises:
            LayoutError: ``path`` is empty, exists and is not a directory, or is a directory
                that is neither empty, a layout, nor a half-created one; or a layout exists
                and ``exist_ok`` is false.
            WriteFailed: a write error (e.g. ``ENOSPC``), naming the file.
        """
        p = check_path_argument(path, "image layout path")
        if not os.path.lexists(p):
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise write_failed(e, p.parent) from e
            if cls._create_by_rename(p):
                explain.step("layout", "init", str(p), f"umoci init --layout {p}")
                return cls(p)
        if not p.is_dir():
            raise LayoutError(f"{p}: exists and is not a directory")
        with _flock_dir(p, fcntl.LOCK_EX):
            names = set(os.listdir(p))
            if {"oci-layout", "index.json"} <= names:
                if not exist_ok:
                    raise LayoutError(f"{p}: an image layout already exists")
                return cls(p)
            if names and not _half_created(names):
                raise LayoutError(f"{p}: exists and is not an empty directory or an image layout")
            sweep_temp_files(p)  # under the layout lock every top-level temp file is dead
            blobs = p / "blobs" / "sha256"
            try:
                blobs.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise write_failed(e, blobs) from e
            if "index.json" not in names:
                atomic_write(p / "index.json", _EMPTY_INDEX)
            atomic_write(p / "oci-layout", _OCI_LAYOUT)
        explain.step("layout", "init", str(p), f"umoci init --layout {p}")
        return cls(p)

    @staticmethod
    def _create_by_rename(p: Path) -> bool:
        """Build a complete empty layout in a locked temporary directory beside ``p`` and
        rename it to ``p``. False when ``p`` appeared meanwhile (another creator won).

        rename(2) replaces an *empty* directory, so one made by ``mkdir`` in the meantime is
        taken over; a non-empty one (another creator's layout) makes it fail with
        ``ENOTEMPTY``/``EEXIST``.
        """
        prefix = f".{p.name}.ocilearn-init-"
        _sweep_init_temps(p.parent, prefix)
        while True:
            try:
                tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=p.parent))
            except OSError as e:
                raise write_failed(e, p.parent / f"{prefix}*") from e
            try:
                fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # another creator's sweep removed it before we could lock it: make another
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink:
                break
            os.close(fd)  # swept by another creator before it was locked: make another
        try:
            os.chmod(tmp, 0o755)
            try:
                (tmp / "blobs" / "sha256").mkdir(parents=True)
            except OSError as e:
                raise write_failed(e, tmp / "blobs") from e
            atomic_write(tmp / "index.json", _EMPTY_INDEX)
            atomic_write(tmp / "oci-layout", _OCI_LAYOUT)
            os.fsync(fd)
            try:
                os.rename(tmp, p)
            except OSError as e:
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise write_failed(e, p) from e
                shutil.rmtree(tmp, ignore_errors=True)
                return False
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            os.close(fd)
        fsync_dir(p.parent)
        return True

    @classmethod
    def open(cls, path: str | os.PathLike) -> "ImageLayout":
        """Open an existing layout; see :meth:`__init__` for the checks."""
        return cls(path)

    def _check(self) -> None:
        p = self.path
        if not p.is_dir():
            raise LayoutError(f"{p}: no such image layout directory")
        marker = p / "oci-layout"
        try:
            raw = read_regular(marker, 4096, "oci-layout file")
        except FileNotFoundError:
            names = set(os.listdir(p))
            if names and _half_created(names):
                raise LayoutError(
                    f"{p}: a half-created image layout (no 'oci-layout' file yet: its creator was stopped); "
                    "the next copy into it, or ImageLayout.init, completes it"
                ) from None
            raise LayoutError(f"{p}: not an OCI image layout (no 'oci-layout' file; image-layout.md)") from None
        try:
            obj = json.loads(raw)
            version = obj["imageLayoutVersion"]
        except (ValueError, KeyError, TypeError, RecursionError):
            raise LayoutError(f"{marker}: malformed; expected {{\"imageLayoutVersion\": \"1.0.0\"}}") from None
        if not isinstance(version, str) or not re.fullmatch(r"1\.0\.\d+", version):
            raise LayoutError(f"{marker}: imageLayoutVersion {version!r} is not supported (expected 1.0.x)")
        index = p / "index.json"
        if not os.path.lexists(index):
            raise LayoutError(f"{p}: image layout has no index.json (image-layout.md: it MUST exist)")
        if not stat.S_ISREG(os.lstat(index).st_mode):
            raise LayoutError(f"{index}: is not a regular file; refusing to read it as the index.json")

    def __repr__(self) -> str:
        return f"ImageLayout('{self.path}')"

    def _repr_mimebundle_(self, include=None, exclude=None):
        """In Jupyter a layout draws itself as its graph (index → manifests → blobs)."""
        from ..views.graph import ImageGraph

        return ImageGraph(self)._repr_mimebundle_(include, exclude)

    # -- the writer lock ----------------------------------------------------

    @contextlib.contextmanager
    def writing(self) -> Iterator["ImageLayout"]:
        """Hold the layout's writer lock for a series of writes (a whole copy: from the
        first blob to the new ref), so that :meth:`gc` cannot remove a blob that was put
        but is not referenced yet, nor a temp file being written.

        The lock is a *shared* ``flock(2)`` on the ``blobs`` directory: any number of
        writers (threads or processes) hold it together; :meth:`gc` takes it *exclusive*
        and so waits for every writer to finish, and writers wait for a running gc. Nested
        ``with layout.writing()`` blocks (and the writes inside :meth:`put_blob`,
        :meth:`add_ref` …, which take it themselves) share one lock per object. The kernel
        drops the lock of a killed process.

        Entering also removes the temp files that killed writers left in the blob
        directories (:func:`sweep_temp_files`), so a resumed copy leaves none behind.

        Raises:
            LayoutError: ``blobs`` is a symlink or not a directory.
        """
        with self._writer_mutex:
            if self._writers == 0:
                blobs = self.path / "blobs"
                try:
                    os.mkdir(blobs, 0o755)
                except FileExistsError:
                    pass
                except OSError as e:
                    raise write_failed(e, blobs) from e
                try:
                    fd = os.open(blobs, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
                except OSError as e:
                    raise LayoutError(f"{blobs}: is a symlink or not a directory; refusing to use it as the layout's blob store") from e
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH)
                except BaseException:
                    os.close(fd)
                    raise
                self._writer_fd = fd
                for algdir in self._algorithm_dirs():
                    sweep_temp_files(algdir)
            self._writers += 1
        try:
            yield self
        finally:
            with self._writer_mutex:
                self._writers -= 1
                if self._writers == 0:
                    os.close(self._writer_fd)
                    self._writer_fd = -1

    def _algorithm_dirs(self) -> list[Path]:
        """The real directories ``blobs/<algorithm>`` (symlinks skipped)."""
        root = self.path / "blobs"
        try:
            names = sorted(os.listdir(root))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [root / n for n in names if stat.S_ISDIR(os.lstat(root / n).st_mode)]

    def temp_files(self) -> list[TempFile]:
        """Every ``.tmp-*`` file of the layout (top level and ``blobs/<algorithm>/``), with
        size and whether a live writer holds it. Nothing is changed."""
        out = list_temp_files(self.path)
        for algdir in self._algorithm_dirs():
            out += list_temp_files(algdir)
        return out

    # -- blobs -----------------------------------------------------------

    def _blob_dir(self, algorithm: str, create: bool = False) -> Path:
        """``blobs/<algorithm>``, checked to be real directories inside the layout (not
        symlinks: a layout whose ``blobs/sha256`` points elsewhere would make ``gc`` delete
        and ``put_blob`` write outside it). ``create`` makes missing ones.

        Raises:
            LayoutError: ``blobs`` or ``blobs/<algorithm>`` is a symlink or not a directory.
            UnsupportedAlgorithm: an algorithm ocilearn cannot verify (never used as a path).
        """
        new_hasher(algorithm)  # refuses unregistered algorithms before any path is built
        d = self.path / "blobs"
        for part in (d, d / algorithm):
            try:
                st = os.lstat(part)
            except FileNotFoundError:
                if not create:
                    return d / algorithm
                os.mkdir(part, 0o755)
                continue
            if not stat.S_ISDIR(st.st_mode):
                kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
                raise LayoutError(f"{part}: is {kind}; refusing to use it as the layout's blob store")
        return d / algorithm

    def blob_path(self, digest: Digest | str) -> Path:
        """``blobs/<algorithm>/<encoded>`` for a validated digest (never outside the layout).

        Raises:
            InvalidDigest, UnsupportedAlgorithm, LayoutError (see :meth:`_blob_dir`).
        """
        d = Digest.parse(digest)
        return self._blob_dir(d.algorithm) / d.encoded

    def has_blob(self, digest: Digest | str) -> bool:
        """True when the blob file exists (not verified: see :meth:`verify_blob`)."""
        try:
            return stat.S_ISREG(os.lstat(self.blob_path(digest)).st_mode)
        except FileNotFoundError:
            return False

    def blob_size(self, digest: Digest | str) -> int:
        """Size of a stored blob in bytes.

        Raises:
            BlobNotFound.
        """
        try:
            return os.lstat(self.blob_path(digest)).st_size
        except FileNotFoundError:
            raise BlobNotFound(f"{self.path}: blob {digest} not found") from None

    def open_blob_file(self, digest: Digest | str, what: str = "blob") -> BinaryIO:
        """Open a stored blob's file *without* verifying it — for a caller that hashes the
        stream itself (``apply_layer`` checks the digest while it inflates); everyone else
        uses :meth:`open_blob`.

        Only a regular file is ever opened: its type is checked with lstat first (a device
        node or FIFO planted in ``blobs/`` is never opened, a symlink never followed), then
        opened ``O_NOFOLLOW|O_NONBLOCK`` and checked to be the same inode.

        ``what`` names the blob in errors (e.g. ``"layer blob"``).

        Raises:
            BlobNotFound; LayoutError (a symlink, not a regular file, or swapped meanwhile).
        """
        digest = Digest.parse(digest)
        path = self.blob_path(digest)
        try:
            before = os.lstat(path)
            if not stat.S_ISREG(before.st_mode):
                kind = "a symlink, not a regular file (blobs must be regular files)" if stat.S_ISLNK(before.st_mode) else f"not a regular file (mode {stat.filemode(before.st_mode)})"
                raise LayoutError(f"{path}: {what} {digest} is {kind}")
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise BlobNotFound(f"{self.path}: {what} {digest} not found (expected at {path})") from None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise LayoutError(f"{path}: {what} {digest} is a symlink, not a regular file (blobs must be regular files)") from None
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
            os.close(fd)
            raise LayoutError(f"{path}: {what} {digest} changed while it was opened; refused")
        return os.fdopen(fd, "rb")

    def open_blob(self, desc: Descriptor | Digest | str, size: int | None = None) -> VerifyingReader:
        """Open a blob for reading through a :class:`~ocilearn.image.digest.VerifyingReader`:
        its size and digest are checked when the stream reaches its end.

        Args:
            desc: a :class:`Descriptor` (its size is checked too) or a digest.
            size: expected size in bytes when ``desc`` is a digest.

        Raises:
            BlobNotFound; later, while reading: SizeMismatch, DigestMismatch.
        """
        if isinstance(desc, Descriptor):
            digest, size = desc.digest, desc.size
        else:
            digest = Digest.parse(desc)
        f = self.open_blob_file(digest)
        return VerifyingReader(f, digest, size, source=f"{self.path}: blob {digest}")

    def read_blob(self, desc: Descriptor | Digest | str, size: int | None = None, limit: int | None = None) -> bytes:
        """Read a whole blob, verified. ``limit`` (bytes) refuses larger blobs before reading.

        Raises:
            BlobNotFound, SizeMismatch, DigestMismatch, InvalidDocument (over ``limit``).
        """
        if isinstance(desc, Descriptor) and desc.data is not None:
            return desc.data
        want = desc.size if isinstance(desc, Descriptor) else size
        if limit is not None:
            actual = self.blob_size(desc.digest if isinstance(desc, Descriptor) else desc)
            if actual > limit or (want is not None and want > limit):
                raise InvalidDocument(f"{self.path}: blob {getattr(desc, 'digest', desc)} is {max(actual, want or 0)} bytes, over the {limit}-byte limit")
        with self.open_blob(desc, size) as r:
            return r.read_all()

    def put_blob(self, data: bytes | BinaryIO, expected: Digest | str | None = None, size: int | None = None, *, algorithm: str = "sha256") -> tuple[Digest, int]:
        """Store a blob atomically and return ``(digest, size)``.

        ``data`` is bytes or a readable binary stream. With ``expected`` (and ``size``),
        the content is verified while it streams and nothing is stored on mismatch.
        A blob already present is not rewritten (content addressing); the stream is
        still read and verified.

        Raises:
            DigestMismatch, SizeMismatch: the content is not what was expected.
        """
        if expected is not None:
            exp = Digest.parse(expected)
            algorithm = exp.algorithm
        else:
            exp = None
        hasher = new_hasher(algorithm)
        with self.writing():
            d = self._blob_dir(algorithm, create=True)
            target = d / (exp.encoded if exp else "(new blob)")
            try:
                fd, tmp = locked_temp(d)
            except OSError as e:
                raise write_failed(e, target) from e
            try:
                count = 0
                with os.fdopen(fd, "wb") as f:  # its flock is held until this file is closed
                    if isinstance(data, (bytes, bytearray, memoryview)):
                        chunks: Iterable[bytes] = [bytes(data)]
                    else:
                        chunks = iter(lambda: data.read(CHUNK), b"")
                    try:
                        started = 0  # bytes whose writeback has been started
                        for chunk in chunks:
                            count += len(chunk)
                            if size is not None and count > size:
                                raise SizeMismatch(size, count, f"blob {exp or '(new)'}", at_least=True)
                            hasher.update(chunk)
                            f.write(chunk)
                            if count - started >= WRITEBACK_EVERY:
                                # start writing the big blob to disk while the rest streams in,
                                # so the fsync below waits for the tail only (sync_file_range(2))
                                f.flush()
                                syscalls.start_writeback(f.fileno(), started, count - started)
                                started = count
                        f.flush()
                        os.fsync(f.fileno())
                    except OSError as e:
                        raise write_failed(e, target) from e
                    digest = Digest(algorithm, hasher.hexdigest())
                    if size is not None and count != size:
                        raise SizeMismatch(size, count, f"blob {exp or digest}")
                    if exp is not None and digest != exp:
                        raise DigestMismatch(exp, digest, f"blob written to {self.path}")
                    final = d / digest.encoded
                    if os.path.lexists(final) and stat.S_ISREG(os.lstat(final).st_mode):
                        os.unlink(tmp)
                    else:
                        try:
                            os.fchmod(f.fileno(), 0o644)
                            os.replace(tmp, final)  # before close: the temp stays locked until it is the blob
                        except OSError as e:
                            raise write_failed(e, final) from e
                fsync_dir(d)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        explain.step("layout", "put blob", f"{digest} ({count} bytes)", f"{algorithm}sum; mv tmp {self.path}/blobs/{algorithm}/{digest.encoded}")
        return digest, count

    def put_json(self, media_type: str, content: bytes, *, algorithm: str = "sha256", **kw) -> Descriptor:
        """Store a JSON document (manifest, index, config), addressed by ``algorithm``
        (``sha256`` or ``sha512``, descriptor.md "Registered algorithms"), and return its
        descriptor."""
        digest, size = self.put_blob(content, algorithm=algorithm)
        return Descriptor(media_type=media_type, digest=digest, size=size, **kw)

    def delete_blob(self, digest: Digest | str) -> bool:
        """Remove one blob; True if it existed. (Refs pointing at it are not checked:
        use :meth:`gc` to remove only unreachable blobs.)"""
        try:
            os.unlink(self.blob_path(digest))
        except FileNotFoundError:
            return False
        return True

    def verify_blob(self, desc: Descriptor) -> None:
        """Read a blob to its end and check size and digest.

        Raises:
            BlobNotFound, SizeMismatch, DigestMismatch.
        """
        with self.open_blob(desc) as r:
            r.drain()

    def blobs(self) -> Iterator[Digest]:
        """Every stored blob's digest (files under ``blobs/<alg>/``; temp files skipped).

        Raises:
            LayoutError: ``blobs`` or one of its algorithm directories is a symlink.
        """
        root = self.path / "blobs"
        if not os.path.lexists(root):
            return
        if os.path.islink(root):
            raise LayoutError(f"{root}: is a symlink; refusing to use it as the layout's blob store")
        for algdir in sorted(root.iterdir()):
            if os.path.islink(algdir):
                raise LayoutError(f"{algdir}: is a symlink; refusing to use it as the layout's blob store")
            if not algdir.is_dir():
                continue
            for f in sorted(algdir.iterdir()):
                if f.name.startswith(TMP_PREFIX):
                    continue
                try:
                    yield Digest(algdir.name, f.name)
                except OcilearnError:
                    continue

    # -- documents --------------------------------------------------------

    def index(self) -> Index:
        """The parsed top-level ``index.json``.

        Raises:
            InvalidDocument: malformed index.json (named in the message).
        """
        p = self.path / "index.json"
        return Index.from_json(read_regular(p, MAX_DOCUMENT, "index.json"), str(p))

    def read_document(self, desc: Descriptor) -> Manifest | Index:
        """Read, verify and parse the manifest or index that ``desc`` points to."""
        raw = self.read_blob(desc, limit=MAX_DOCUMENT)
        return parse_document(raw, desc.media_type, f"{self.path}: {desc.kind} {desc.digest}")

    def read_manifest(self, desc: Descriptor) -> Manifest:
        doc = self.read_document(desc)
        if not isinstance(doc, Manifest):
            raise InvalidDocument(f"{self.path}: {desc.digest} is an image index, not a manifest")
        return doc

    def read_config(self, desc: Descriptor) -> ImageConfig:
        """Read, verify and parse an image config blob."""
        raw = self.read_blob(desc, limit=MAX_DOCUMENT)
        return ImageConfig.from_json(raw, f"{self.path}: config {desc.digest}")

    # -- refs ---------------------------------------------------------------

    def refs(self) -> dict[str, Descriptor]:
        """Ref name → descriptor, from the ``org.opencontainers.image.ref.name``
        annotations of index.json (entries without one are not listed).

        If a name appears twice with different digests, the name maps to the first one;
        :meth:`resolve` refuses such a name as ambiguous.
        """
        out: dict[str, Descriptor] = {}
        for d in self.index().manifests:
            name = d.ref_name
            if name is not None and name not in out:
                out[name] = d
        return out

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The index lock: an exclusive ``flock(2)`` on the layout directory, held while
        index.json is read, changed and replaced (and by ``init`` and ``gc``)."""
        with _flock_dir(self.path, fcntl.LOCK_EX):
            yield

    def _write_index(self, index: Index) -> None:
        atomic_write(self.path / "index.json", dumps(index.to_dict()))

    def add_ref(self, name: str, desc: Descriptor) -> None:
        """Point ref ``name`` at ``desc`` in index.json (replacing an entry of that name),
        atomically and under the layout lock. The blob must already be stored.

        Raises:
            InvalidRefName, BlobNotFound.
        """
        validate_ref_name(name)
        ann = dict(desc.annotations or {})
        ann[REF_NAME] = name
        entry = desc.with_annotations(ann)
        with self.writing(), self._locked():
            # checked under the locks: gc cannot remove the blob between check and write
            if desc.data is None and not self.has_blob(desc.digest):
                raise BlobNotFound(f"{self.path}: cannot tag {name!r}: blob {desc.digest} is not in the layout")
            idx = self.index()
            kept = tuple(d for d in idx.manifests if d.ref_name != name)
            self._write_index(replace(idx, manifests=kept + (entry,), raw=None))
        explain.step("layout", "add ref", f"{name} -> {desc.digest}", f"jq '.manifests += [...]' {self.path}/index.json")

    def add_manifest(self, desc: Descriptor) -> None:
        """Add an untagged entry to index.json (if that digest is not listed yet).

        Raises:
            BlobNotFound: the blob is not stored.
        """
        with self.writing(), self._locked():
            if desc.data is None and not self.has_blob(desc.digest):
                raise BlobNotFound(f"{self.path}: cannot add {desc.digest} to index.json: the blob is not in the layout")
            idx = self.index()
            if any(d.digest == desc.digest and d.ref_name is None for d in idx.manifests):
                return
            self._write_index(replace(idx, manifests=idx.manifests + (desc,), raw=None))

    def remove_ref(self, name: str) -> Descriptor:
        """Remove ref ``name`` from index.json; returns the removed descriptor. The blobs
        stay until :meth:`gc`.

        Raises:
            RefNotFound.
        """
        with self._locked():
            idx = self.index()
            gone = [d for d in idx.manifests if d.ref_name == name]
            if not gone:
                raise RefNotFound(f"{self.path}: no ref named {name!r} (have: {', '.join(self.refs()) or 'none'})")
            self._write_index(replace(idx, manifests=tuple(d for d in idx.manifests if d.ref_name != name), raw=None))
        return gone[0]

    # -- resolution --------------------------------------------------------------

    def _entry(self, ref: str | None) -> Descriptor:
        return resolve_ref(self, ref)

    def resolve(self, ref: str | None = None, platform: Platform | str | None = None) -> ResolvedImage:
        """Find the image manifest for a ref name (or a digest), choosing a platform in
        image indexes, through nested indexes.

        Args:
            ref: a ref name (``latest``), a digest (``sha256:…``), or ``None`` when
                index.json has exactly one entry.
            platform: a :class:`Platform` or ``"os/arch[/variant]"``; default: this
                machine's (:func:`host_platform`). Only used when an index is met.

        Returns:
            :class:`ResolvedImage`.

        Raises:
            RefNotFound, AmbiguousReference, PlatformNotFound, BlobNotFound, InvalidDocument,
            DigestMismatch/SizeMismatch (a corrupt manifest or index).
        """
        want = Platform.parse(platform) if isinstance(platform, str) else (platform or host_platform())
        desc = self._entry(ref)
        path: list[Descriptor] = [desc]
        seen: set[Digest] = set()
        opened = [0]  # index documents opened so far, nested ones included
        while True:
            if desc.digest in seen:
                raise InvalidDocument(f"{self.path}: index loop at {desc.digest}")
            seen.add(desc.digest)
            doc = self.read_document(desc)
            if isinstance(doc, Manifest):
                return ResolvedImage(replace(desc, annotations=desc.annotations), doc, tuple(path))
            opened[0] += 1
            if opened[0] > MAX_NESTING:
                raise InvalidDocument(f"{self.path}: indexes nested deeper than {MAX_NESTING} at {desc.digest}")
            candidates = self._flatten(doc, desc, seen=set(seen), opened=opened)
            chosen = select_platform(candidates, want, f"{self.path}: index {desc.digest}")
            path.append(chosen)
            desc = chosen

    def _flatten(self, index: Index, desc: Descriptor, seen: set[Digest], opened: list[int]) -> list[Descriptor]:
        """Candidate manifests of an index; nested indexes without a platform are opened
        and their entries take part in the choice (go-containerregistry writes such).
        ``opened`` counts every index opened; more than MAX_NESTING is an error."""
        out: list[Descriptor] = []
        for d in index.manifests:
            if mt.is_index(d.media_type) and d.platform is None and d.digest not in seen:
                seen.add(d.digest)
                opened[0] += 1
                if opened[0] > MAX_NESTING:
                    raise InvalidDocument(f"{self.path}: indexes nested deeper than {MAX_NESTING} at {d.digest}")
                out.extend(self._flatten(self.read_document(d), d, seen, opened))  # type: ignore[arg-type]
            elif mt.is_manifest(d.media_type) or mt.is_index(d.media_type):
                out.append(d)
        return out

    def image_config(self, image: ResolvedImage) -> ImageConfig:
        """The parsed, verified image config of a resolved image."""
        return self.read_config(image.manifest.config)

    # -- walking, fsck, gc -----------------------------------------------------------

    def walk(self, report: FsckReport | None = None) -> Iterator[tuple[Descriptor, str]]:
        """Every descriptor reachable from index.json, once each: ``(descriptor, parent)``
        where parent is ``"index.json"`` or the parent's digest. Nested indexes, manifests,
        configs, layers and ``subject`` links are followed; loops are cut.

        Documents that cannot be read are recorded in ``report`` (if given) and not
        descended into; without a report the error propagates.
        """
        try:
            top = self.index()
        except InvalidDocument as e:
            if report is None:
                raise
            report.errors.append(str(e))
            return
        seen: set[Digest] = set()
        stack: list[tuple[Descriptor, str]] = [(d, "index.json") for d in reversed(top.manifests)]
        if top.subject:
            stack.append((top.subject, "index.json (subject)"))
        while stack:
            desc, parent = stack.pop()
            if desc.digest in seen:
                continue
            seen.add(desc.digest)
            yield desc, parent
            if desc.kind not in ("manifest", "index"):
                continue
            try:
                if desc.data is None and not self.has_blob(desc.digest):
                    continue
                doc = self.read_document(desc)
            except OcilearnError as e:
                if report is None:
                    raise
                report.corrupt.append((desc, str(e)))
                continue
            if doc.subject is not None:
                stack.append((doc.subject, f"{desc.digest} (subject)"))
            for k in reversed(doc.children()):
                stack.append((k, str(desc.digest)))

    def fsck(self) -> FsckReport:
        """Check the layout without changing it: every reachable blob present, of the
        descriptor's size and digest, documents parsable; blobs not reachable are
        listed as dangling.

        Temp files (``.tmp-*``) are listed with their size and whether a live writer
        holds them (``report.temps``); those of killed writers are garbage for :meth:`gc`.

        Returns:
            :class:`FsckReport` (``report.ok`` is False on missing/corrupt blobs).
        """
        report = FsckReport()
        reachable: set[Digest] = set()
        for desc, parent in self.walk(report):
            reachable.add(desc.digest)
            try:
                present = self.has_blob(desc.digest)
            except OcilearnError as e:  # unsupported algorithm, symlinked blob store
                report.corrupt.append((desc, str(e)))
                continue
            if desc.data is not None and not present:
                report.checked += 1
                continue
            if not present:
                # a subject may legitimately live elsewhere (referrers); layers with urls too
                if parent.endswith("(subject)") or desc.urls or desc.media_type in mt.NONDISTRIBUTABLE_TYPES:
                    continue
                report.missing.append((desc, parent))
                continue
            if desc.kind in ("manifest", "index"):
                report.checked += 1
                # read_document in walk() verified it already unless it failed there
                continue
            try:
                self.verify_blob(desc)
                report.checked += 1
            except OcilearnError as e:
                report.corrupt.append((desc, str(e)))
        try:
            report.dangling = [d for d in self.blobs() if d not in reachable]
        except LayoutError as e:
            report.errors.append(str(e))
        report.temps = self.temp_files()
        explain.step("layout", "fsck", f"{report.checked} blobs checked, {len(report.missing)} missing, {len(report.corrupt)} corrupt, {len(report.dangling)} dangling", f"umoci gc --layout {self.path} (after checking)")
        return report

    @contextlib.contextmanager
    def _exclusive(self, wait: bool, on_wait: Callable[[], None] | None) -> Iterator[None]:
        """The writer lock taken exclusive (no writer at work), then the index lock."""
        if self._writers:
            raise LayoutError(f"{self.path}: gc inside a writing() block of the same layout object would wait for itself")
        blobs = self.path / "blobs"
        with contextlib.suppress(FileExistsError):
            os.mkdir(blobs, 0o755)
        try:
            fd = os.open(blobs, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as e:
            raise LayoutError(f"{blobs}: is a symlink or not a directory; refusing to use it as the layout's blob store") from e
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise LayoutError(f"{self.path}: a writer (copy, put_blob) is at work in this layout; try gc again later") from None
                explain.step("layout", "gc waits", f"for the writers of {self.path} to finish (flock on blobs/)", "flock")
                if on_wait is not None:
                    on_wait()
                fcntl.flock(fd, fcntl.LOCK_EX)
            with self._locked():
                yield
        finally:
            os.close(fd)

    def gc(self, dry_run: bool = False, *, wait: bool = True, on_wait: Callable[[], None] | None = None) -> GcReport:
        """Remove blobs not reachable from index.json (like ``umoci gc``), and the temp
        files of killed writers. Refuses to run when a reachable document cannot be read (it
        could not know what that document references).

        gc takes the writer lock (see :meth:`writing`) exclusive: it waits while a copy or
        another writer is at work (``wait=False``: refuses instead; ``on_wait`` is called
        once before waiting, e.g. to print a message), so a blob put but not yet referenced
        and a temp file being written are never removed. Then it holds the index lock.

        Also refuses when index.json or an image index lists an entry whose media type is
        neither a manifest nor an index (image-index.md "manifests"): such a blob may well be a
        manifest under a wrong type, and deleting what it references would lose data.

        Returns:
            :class:`GcReport`: removed digests and bytes, temp files and bytes.

        Raises:
            LayoutError: the layout has unreadable documents, or index entries of an
                unknown media type (fix or remove those refs first); a writer is at work and
                ``wait`` is false.
        """
        with self._exclusive(wait, on_wait):
            report = FsckReport()
            walked = list(self.walk(report))
            reachable = {d.digest for d, _ in walked}
            if report.errors or any(d.kind in ("manifest", "index") for d, _ in report.corrupt):
                raise LayoutError(f"{self.path}: refusing to gc: unreadable documents:\n{report}")
            indexes = {"index.json"} | {str(d.digest) for d, _ in walked if d.kind == "index"}
            odd = [d for d, parent in walked if parent in indexes and d.kind not in ("manifest", "index")]
            if odd:
                raise LayoutError(
                    f"{self.path}: refusing to gc: index entries of media type "
                    + ", ".join(f"{d.media_type!r} ({d.digest})" for d in odd)
                    + " are neither manifests nor indexes; what they reference is unknown"
                )
            out = GcReport(dry_run=dry_run)
            out.removed = [d for d in self.blobs() if d not in reachable]
            for d in out.removed:
                with contextlib.suppress(OSError):
                    out.removed_bytes += os.lstat(self.blob_path(d)).st_size
            if dry_run:
                out.temps = [t for t in self.temp_files() if not t.in_use]
            else:
                for d in out.removed:
                    self.delete_blob(d)
                out.temps = sweep_temp_files(self.path)
                for algdir in self._algorithm_dirs():
                    out.temps += sweep_temp_files(algdir)
        explain.step("layout", "gc", f"removed {len(out.removed)} unreachable blobs ({out.removed_bytes} bytes), "
                     f"{len(out.temps)} temp files ({out.temp_bytes} bytes)", f"umoci gc --layout {self.path}")
        return out

# skopeo's other transport names (containers-transports(5)), as a user may give them where a
# layout path is wanted; a directory named like one is still reached as ./docker or oci:docker
_OTHER_TRANSPORT = re.compile(r"(docker(?=://)|docker-archive|oci-archive|docker-daemon|containers-storage):")


def parse_oci_ref(text: str, transport: str = "oci", *, prefixed: bool = False) -> tuple[str, str | None]:
    """Split ``oci:PATH[:REF]`` (or ``PATH[:REF]``) at the FIRST ``:``, as skopeo's and
    umoci's ``oci:`` transports do, so that a ref name may itself hold colons
    (``localhost/app:latest``, ``sha256:…``). A path holding ``:`` cannot be named this way
    (skopeo has the same limit). ``transport`` (``oci`` or ``oci-archive``) only names the
    transport in messages; ``prefixed``: ``text`` followed a transport name already (what
    comes after ``oci:`` in a copy endpoint), so it is not checked for another one.

    Returns ``(path, ref or None)``; the ref, when given, is checked against the ref name
    grammar of image-layout.md ("index.json", ``org.opencontainers.image.ref.name``)
    before anything is read or written.

    Raises:
        LayoutError: an empty ref after the ``:`` (``oci:DIR:``), or a name of another
            transport (``docker://…``, ``docker-archive:…``): copy it into a layout first.
        InvalidRefName: a ref outside the grammar (``tägé✓``, spaces, a leading ``-``).
    """
    if text.startswith("oci:"):
        text = text[4:]
    elif not prefixed and (other := _OTHER_TRANSPORT.match(text)):
        raise LayoutError(f"{text}: names an image through the {other.group(1)} transport; this takes a local OCI image "
                          f"layout (oci:PATH[:REF] or PATH[:REF]): copy the image into one first, e.g. "
                          f"ocilearn copy {text} oci:DIR:latest")
    path, sep, ref = text.partition(":")
    if not sep:
        return text, None
    if not ref:
        raise LayoutError(f"{transport}:{text}: empty ref name after ':' (drop the ':' or name a ref, e.g. "
                          f"{transport}:{path}:latest)")
    return path, validate_ref_name(ref)


def resolve_ref(layout: ImageLayout, ref: str | None) -> Descriptor:
    """The one place a ref name (or digest) is turned into an index.json descriptor; used
    by copy, unpack, inspect and the graph.

    Args:
        layout: an open :class:`ImageLayout`.
        ref: a ref name (``org.opencontainers.image.ref.name``, image-layout.md
            "index.json"), a digest (``sha256:…``: an entry of index.json or a manifest or
            index nested below one), or ``None`` when index.json has exactly one entry.

    Returns:
        the :class:`Descriptor` (image manifest or image index); the caller picks a
        platform in an index (:meth:`ImageLayout.resolve`, or copy's own walk).

    Raises:
        AmbiguousReference: ``None`` and several entries, or a ref name on entries with
            different digests (image-layout.md lets a ref name be given once; a silent
            choice would copy or run the wrong image).
        RefNotFound: no entry with that ref name or digest.
    """
    entries = layout.index().manifests
    names = sorted({d.ref_name for d in entries if d.ref_name})
    if ref is None:
        if len(entries) == 1:
            return entries[0]
        raise AmbiguousReference(
            f"{layout.path}: index.json has {len(entries)} entries; name one (refs: {', '.join(names) or 'none'})"
        )
    matches = [d for d in entries if d.ref_name == ref]
    if len({d.digest for d in matches}) > 1:
        raise AmbiguousReference(
            f"{layout.path}: ref {ref!r} names {len(matches)} different manifests in index.json: "
            + ", ".join(str(d.digest) for d in matches)
        )
    if matches:
        return matches[0]
    if ref.startswith(("sha256:", "sha512:")):
        digest = Digest.parse(ref)
        for d in entries:
            if d.digest == digest:
                return d
        # a digest of a nested manifest: find its descriptor by walking
        for d, _parent in layout.walk():
            if d.digest == digest and d.kind in ("manifest", "index"):
                return d
        raise RefNotFound(f"{layout.path}: no manifest or index with digest {digest}")
    raise RefNotFound(f"{layout.path}: no ref named {ref!r} in index.json (refs: {', '.join(names) or 'none'})")
