"""Rootless unpack: what an ordinary user cannot apply, and what is recorded instead.

An unprivileged user cannot ``chown`` a file to another owner, ``mknod`` a device, or set
``security.*`` and ``trusted.*`` extended attributes (xattr(7): ``trusted.*`` needs
``CAP_SYS_ADMIN``; ``security.capability`` needs ``CAP_SETFCAP``, the other ``security.*``
names the owning LSM's privilege). ``umoci unpack --rootless`` still succeeds, and so
does :func:`ocilearn.layer.apply.apply_layer` with ``rootless=True``:

- the owner the image asked for is kept in the ``user.rootlesscontainers`` xattr, the
  protobuf ``Resource {uint32 uid = 1; uint32 gid = 2;}`` of github.com/rootless-containers/proto
  (:func:`rootless_xattr`, byte for byte what umoci writes); an xattr of that name carried
  by the layer itself is dropped (it would forge the owner — umoci drops it too);
- ``security.*`` and ``trusted.*`` xattrs are dropped, each named in a warning and in
  ``LayerResult.skipped`` (:func:`rootless_xattrs`);
- device nodes are skipped and listed in ``LayerResult.skipped`` (umoci creates empty
  regular files in their place; runc mounts a tmpfs on ``/dev`` anyway);
- directories lacking ``u+rwx`` are made writable while extracting, then restored
  (:meth:`ocilearn.core.fsutil.Root.make_writable`).
"""

from __future__ import annotations

__all__ = ["ROOTLESS_XATTR", "NOOP_ID", "rootless_xattr", "parse_rootless_xattr", "rootless_xattrs"]

ROOTLESS_XATTR = "user.rootlesscontainers"
NOOP_ID = 0xFFFFFFFF  # rootlesscontainers.proto "NoopID": leave this id as it is
_PRIVILEGED = ("security.", "trusted.")


def rootless_xattr(uid: int, gid: int) -> bytes | None:
    """The ``user.rootlesscontainers`` value umoci writes for an owner it could not chown
    to: the protobuf ``Resource {uint32 uid = 1; uint32 gid = 2;}``, where 0 (the
    unprivileged user itself) is written as ``NoopID`` 4294967295. ``None`` when both
    are 0 (umoci writes no xattr then).

    Example: ``rootless_xattr(1000, 1000) == b"\\x08\\xe8\\x07\\x10\\xe8\\x07"``
    (field 1 varint 1000, field 2 varint 1000; protobuf encoding "Base 128 Varints").
    """
    if uid == 0 and gid == 0:
        return None
    return b"\x08" + _varint(uid or NOOP_ID) + b"\x10" + _varint(gid or NOOP_ID)


def parse_rootless_xattr(value: bytes) -> tuple[int, int]:
    """Inverse of :func:`rootless_xattr`: ``(uid, gid)`` with NoopID (or a missing field)
    read back as 0.

    Raises: ValueError for bytes that are not such a protobuf message."""
    vals = {1: 0, 2: 0}
    i = 0
    while i < len(value):
        key = value[i]
        if key & 7 != 0:
            raise ValueError(f"user.rootlesscontainers: field {key >> 3} is not a varint (wire type {key & 7})")
        n, i = _read_varint(value, i + 1)
        vals[key >> 3] = 0 if n == NOOP_ID else n
    return vals[1], vals[2]


def rootless_xattrs(xattrs: dict[str, bytes], uid: int, gid: int) -> tuple[dict[str, bytes], list[tuple[str, str]]]:
    """What a rootless unpack sets for an entry owned by ``uid``:``gid`` with ``xattrs``:
    ``({name: bytes} to set, [(name, why dropped)])``. ``security.*`` and ``trusted.*``
    are dropped (an ordinary user may not set them), so is a ``user.rootlesscontainers``
    carried by the layer; :func:`rootless_xattr` of the owner is added."""
    keep: dict[str, bytes] = {}
    dropped: list[tuple[str, str]] = []
    for name, value in xattrs.items():
        if name == ROOTLESS_XATTR:
            dropped.append((name, "not applied: rootless, the owner is recorded from the entry's uid/gid; the layer's own "
                                  "value would forge it (umoci ignores it too)"))
        elif name.startswith(_PRIVILEGED):
            dropped.append((name, "not applied: rootless, an ordinary user may not set security.* or trusted.* "
                                  "attributes (xattr(7), capabilities(7) CAP_SETFCAP, CAP_SYS_ADMIN)"))
        else:
            keep[name] = value
    owner = rootless_xattr(uid, gid)
    if owner is not None:
        keep[ROOTLESS_XATTR] = owner
    return keep, dropped


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(value: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if i >= len(value) or shift > 63:
            raise ValueError("user.rootlesscontainers: truncated varint")
        b = value[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i
