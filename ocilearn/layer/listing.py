"""A layer's entries, read without applying them: what ``tar -tvf BLOB`` shows, whiteouts marked.

:func:`list_layer` reads a layer blob once (digest, size and diff ID verified when given)
and returns one :class:`LayerEntry` per tar member; :meth:`LayerEntry.tar_line` prints it
like ``tar -tv``. :func:`entry_of` is the one place a tar header becomes an entry: the
name is cleaned (``../x`` → ``x``), the type named, whiteouts recognised (image-spec
layer.md "Whiteouts", "Opaque Whiteout") and the numbers checked.
"""

from __future__ import annotations

import stat
import tarfile
import time
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

from ..core import explain
from ..core.errors import LayerError
from ..core.fsutil import clean_path
from ..image.digest import Digest
from .tar import default_warn, open_layer
from .whiteout import whiteout_of

__all__ = ["LayerEntry", "list_layer", "entry_of"]

_TIME_LIMIT = (2**63 - 1) // 10**9  # seconds: the largest timespec that fits int64 nanoseconds
_ID_MAX = 2**32 - 1  # uid_t/gid_t are 32-bit; (uid_t)-1 means "leave unchanged" to chown(2)
_TYPE_CHAR = {"file": "-", "dir": "d", "symlink": "l", "hardlink": "h", "char": "c", "block": "b", "fifo": "p", "whiteout": "w", "opaque": "o"}


@dataclass(frozen=True)
class LayerEntry:
    """One tar entry of a layer.

    Attributes:
        name: the name as stored in the tar; ``path``: cleaned, relative to the rootfs.
        type: ``file dir symlink hardlink char block fifo whiteout opaque``.
        mode: permission bits incl. setuid/setgid/sticky (``& 0o7777``); uid, gid;
        size: bytes of content (files); mtime: seconds since the epoch;
        linkname: symlink target or hardlink target; ``target``: for a whiteout, the
        path it deletes (for an opaque whiteout, the directory whose lower contents it
        hides); devmajor/devminor; xattrs: ``{name: bytes}`` (PAX ``SCHILY.xattr.*``).
    """

    name: str
    path: str
    type: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime: float
    linkname: str = ""
    target: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict = field(default_factory=dict, hash=False, compare=False)

    def tar_line(self) -> str:
        """One line like ``tar -tvf``: mode string, uid/gid, size, date, name, marks."""
        kind = _TYPE_CHAR[self.type]
        perm = stat.filemode(self.mode | (stat.S_IFDIR if self.type == "dir" else stat.S_IFREG))[1:]
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(self.mtime))
        size = f"{self.devmajor},{self.devminor}" if self.type in ("char", "block") else str(self.size)
        line = f"{kind}{perm} {self.uid}/{self.gid} {size:>9} {when} {_quote(self.name)}"
        if self.type == "symlink":
            line += f" -> {_quote(self.linkname)}"
        elif self.type == "hardlink":
            line += f" link to {_quote(self.linkname)}"
        elif self.type == "whiteout":
            line += f"   [whiteout: deletes /{_quote(self.target)}]"
        elif self.type == "opaque":
            line += f"   [opaque whiteout: hides lower contents of /{_quote(self.target)}]"
        if self.xattrs:
            line += "   [xattrs: " + ", ".join(_quote(k) for k in sorted(self.xattrs)) + "]"
        return line


def list_layer(blob: BinaryIO, media_type: str | None = None, *, digest=None, size=None, diff_id=None,
               source: str = "layer") -> list[LayerEntry]:
    """List a layer's entries without applying it (like ``tar -tvf``), whiteouts marked.

    The blob digest/size and ``diff_id`` are verified when given (descriptor.md,
    config.md ``rootfs.diff_ids``).

    Returns: list of :class:`LayerEntry` in tar order.

    Raises: LayerError, DigestMismatch, SizeMismatch.
    """
    algorithm = Digest.parse(diff_id).algorithm if diff_id is not None else "sha256"
    with open_layer(blob, media_type, digest=digest, size=size, diff_id_algorithm=algorithm, source=source) as layer:
        out = [entry_of(m, source) for m in layer.members()]
        dig, _n = layer.finish(diff_id)
    explain.step("layer", "list", f"{source}: {len(out)} entries, diff ID {dig}", f"tar -tv{'z' if layer.compression == 'gzip' else ''}f BLOB")
    return out


def entry_of(m: tarfile.TarInfo, source: str = "layer", warn: Callable[[str], None] = default_warn) -> LayerEntry:
    """A :class:`LayerEntry` of the tar header ``m``, its names and numbers checked: a NUL
    byte in the name or link target is a :class:`LayerError`; uid/gid/device
    numbers must fit 32 bits and sizes be ≥ 0, else :class:`LayerError`; an mtime that is
    not a finite number is an error, a finite one is clamped to ±9 223 372 035 s (what fits
    a timespec in int64 nanoseconds), with a warning."""
    if "\0" in m.name or "\0" in m.linkname:  # a PAX path or linkpath may hold one; no path can
        what = "name" if "\0" in m.name else "link target"
        raise LayerError(f"{source}: entry {m.name!r}: its {what} holds a NUL byte, which no path may (path_resolution(7))")
    path = clean_path(m.name)
    kind = _kind(m, source)
    target = ""
    marker = whiteout_of(path)
    if marker is not None:
        kind, target = marker
    _check_numbers(m, source)
    mtime = _mtime(m, source, warn)
    return LayerEntry(
        name=m.name, path=path, type=kind, mode=m.mode & 0o7777, uid=m.uid, gid=m.gid,
        size=m.size if kind == "file" else 0, mtime=mtime, linkname=m.linkname, target=target,
        devmajor=m.devmajor, devminor=m.devminor, xattrs=_xattrs_of(m),
    )


def _kind(m: tarfile.TarInfo, source: str) -> str:
    if m.isreg():  # REGTYPE, AREGTYPE, CONTTYPE, GNU sparse
        return "file"
    for kind, test in (("dir", m.isdir), ("symlink", m.issym), ("hardlink", m.islnk), ("char", m.ischr),
                       ("block", m.isblk), ("fifo", m.isfifo)):
        if test():
            return kind
    raise LayerError(f"{source}: tar entry {m.name!r}: unsupported type {m.type!r}")


def _check_numbers(m: tarfile.TarInfo, source: str) -> None:
    uid, gid, major, minor, size = m.uid, m.gid, m.devmajor, m.devminor, m.size
    if (type(uid) is int and type(gid) is int and type(major) is int and type(minor) is int and type(size) is int
            and 0 <= uid <= _ID_MAX and 0 <= gid <= _ID_MAX and 0 <= major <= _ID_MAX and 0 <= minor <= _ID_MAX
            and size >= 0):
        return  # the usual case, in one test; otherwise name what is wrong
    for what in ("uid", "gid", "devmajor", "devminor"):
        v = getattr(m, what)
        if not isinstance(v, int) or not 0 <= v <= _ID_MAX:
            raise LayerError(f"{source}: entry {m.name!r}: {what} {v!r} is out of range (0..{_ID_MAX})")
    if not isinstance(m.size, int) or m.size < 0:
        raise LayerError(f"{source}: entry {m.name!r}: size {m.size!r} is negative")


def _mtime(m: tarfile.TarInfo, source: str, warn: Callable[[str], None]) -> float:
    try:
        mtime = float(m.mtime)
    except (TypeError, ValueError, OverflowError):
        mtime = float("nan")
    if mtime != mtime or mtime in (float("inf"), float("-inf")):
        raise LayerError(f"{source}: entry {m.name!r}: mtime {m.mtime!r} is not a finite number of seconds")
    if not -_TIME_LIMIT <= mtime <= _TIME_LIMIT:
        warn(f"{source}: entry {m.name!r}: mtime {mtime:g} s clamped to ±{_TIME_LIMIT} s")
        mtime = max(-_TIME_LIMIT, min(_TIME_LIMIT, mtime))
    return mtime


def _xattrs_of(m: tarfile.TarInfo) -> dict[str, bytes]:
    """The PAX ``SCHILY.xattr.NAME`` records (GNU tar, bsdtar and Go's archive/tar write
    them) as ``{NAME: bytes}``. tarfile decodes a value that is not UTF-8 with
    ``surrogateescape``, so encoding it back gives the exact bytes stored."""
    out = {}
    for k, v in m.pax_headers.items():
        if k.startswith("SCHILY.xattr."):
            out[k[len("SCHILY.xattr."):]] = v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v
    return out


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _quote(name: str) -> str:
    """A name as ``tar -tv`` prints it: backslash escapes for ``\\``, newline, CR, tab,
    and ``\\ooo`` (octal bytes) for every other unprintable character — GNU tar's default
    ``--quoting-style=escape`` — so an entry name cannot send terminal escape sequences or
    forge listing lines."""
    if name.isprintable() and "\\" not in name:
        return name
    out = []
    for ch in name:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable() and not ("\udc80" <= ch <= "\udcff"):
            out.append(ch)
        else:
            out.append("".join(f"\\{b:03o}" for b in ch.encode("utf-8", "surrogateescape")))
    return "".join(out)
