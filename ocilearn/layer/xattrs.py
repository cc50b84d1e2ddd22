"""Extended attributes: which of a layer entry's xattrs reach the rootfs, and how.

image-spec layer.md "File Attributes" lists extended attributes among what a changeset
records; in the tar they are PAX records ``SCHILY.xattr.NAME`` (as GNU tar, bsdtar and Go's
archive/tar write them). They are applied with their *exact bytes*: ``security.capability``
(file capabilities, capabilities(7) "File capabilities"; set after the chown, which would
clear it), ``user.*``, POSIX ACLs ``system.posix_acl_*`` (acl(5)), ``trusted.*`` as root.

Never taken from an image — host-specific, see :data:`HOST_SPECIFIC`:

============================  ==================================================================
``security.selinux``          SELinux label (umoci ignores it too)
``security.SMACK64*``         Smack labels
``security.apparmor``         AppArmor label
``system.nfs4_acl``,          NFSv4 ACLs (umoci ignores ``system.nfs4_acl`` too)
``system.nfs4_dacl``,
``system.nfs4_sacl``
``trusted.overlay.*``,        overlayfs's own metadata
``user.overlay.*``
============================  ==================================================================

Each one skipped is named in a warning that says why, and listed in
``LayerResult.skipped``. This is umoci's rule, with the other LSM labels and all of
overlayfs's names added. umoci 0.4.7 skips ``security.selinux``, ``system.nfs4_acl`` and
five ``trusted.overlay.*`` names (oci/layer/tar_generate.go ``ignoreXattrs``: "host-specific
and/or would be a bad idea to unpack"); umoci 0.6 keeps ``security.selinux`` and
``system.nfs4_acl`` as forbidden (oci/layer/xattr.go ``specialXattrs``) and warns
"ignoring forbidden xattr" (oci/layer/tar_extract.go). A label is the host policy's
business and the runtime sets the container's (runtime-spec config.md
``process.selinuxLabel``, ``linux.mountLabel``, ``process.apparmorProfile``); overlayfs
names would change what an overlay mount of this rootfs shows. ``security.ima`` and
``security.evm`` are applied: their signatures are meant to travel with the file.

A directory entry over an existing directory replaces its attributes (layer.md
"Changeset over existing files": "the existing path's attributes MUST be replaced by those
of the entry"): xattrs the entry does not carry are removed first, host-specific ones
excepted — umoci's ``Lclearxattrs`` with the same mask.

Rootless, what an ordinary user cannot set is dropped before trying
(:func:`ocilearn.layer.rootless.rootless_xattrs`); as root, an xattr the kernel refuses
(``EPERM``, ``EINVAL`` …) fails the layer, as in umoci. A filesystem without xattrs of that namespace
(``EOPNOTSUPP``) and an invalid POSIX ACL are skipped with a warning.
"""

from __future__ import annotations

import errno
import os

from ..core.errors import LayerError

__all__ = ["HOST_SPECIFIC", "host_specific", "image_xattrs", "set_xattrs", "clear_xattrs"]

#: name, or prefix (ending in ``.`` or ``*``) -> why an image never sets it
HOST_SPECIFIC: dict[str, str] = {
    "security.selinux": "an SELinux label belongs to the host's policy; the runtime labels the container "
                        "(runtime-spec config.md process.selinuxLabel, linux.mountLabel); umoci ignores it too",
    "security.SMACK64*": "a Smack label belongs to the host's Smack policy (kernel Documentation/admin-guide/LSM/Smack.rst)",
    "security.apparmor": "an AppArmor label belongs to the host's policy; the runtime applies the container's profile "
                         "(runtime-spec config.md process.apparmorProfile)",
    "system.nfs4_acl": "an NFSv4 ACL belongs to the NFS server it was read from, its principals to that server's "
                       "domain (nfs4_acl(5)); umoci ignores it too",
    "system.nfs4_dacl": "an NFSv4 ACL belongs to the NFS server it was read from (nfs4_acl(5))",
    "system.nfs4_sacl": "an NFSv4 ACL belongs to the NFS server it was read from (nfs4_acl(5))",
    "trusted.overlay.": "overlayfs keeps its own metadata under this name (opaque directories, redirects, metacopy, "
                        "origin file handles; kernel Documentation/filesystems/overlayfs.rst): from an image it would "
                        "change what an overlay mount of this rootfs shows",
    "user.overlay.": "overlayfs keeps its own metadata under this name when mounted with userxattr (rootless overlay; "
                     "kernel Documentation/filesystems/overlayfs.rst): from an image it would change what an overlay "
                     "mount of this rootfs shows",
}

_ACL_XATTRS = ("system.posix_acl_access", "system.posix_acl_default")


def host_specific(name: str) -> str | None:
    """Why the xattr ``name`` is never taken from an image, or ``None`` when it is applied."""
    for pattern, why in HOST_SPECIFIC.items():
        if name == pattern or (pattern.endswith((".", "*")) and name.startswith(pattern.rstrip("*"))):
            return why
    return None


def image_xattrs(xattrs: dict[str, bytes]) -> tuple[dict[str, bytes], list[tuple[str, str]]]:
    """Split an entry's xattrs into ``({name: bytes} to apply, [(name, why skipped)])``:
    the host-specific names (:data:`HOST_SPECIFIC`) are skipped."""
    keep: dict[str, bytes] = {}
    skipped: list[tuple[str, str]] = []
    for name, value in xattrs.items():
        why = host_specific(name)
        if why is None:
            keep[name] = value
        else:
            skipped.append((name, f"not applied: host-specific: {why}"))
    return keep, skipped


def set_xattrs(target: str, xattrs: dict[str, bytes], *, rootless: bool, where: str) -> list[tuple[str, str]]:
    """``setxattr(2)`` each of ``xattrs`` with its exact bytes on ``target`` (a path such as
    ``/proc/self/fd/N`` of the entry; symlinks are never given here).

    Returns: ``[(name, why not set)]`` for the failures that are tolerated: ``EOPNOTSUPP``
    (the filesystem has no xattrs of that namespace), an invalid POSIX ACL (the kernel
    answers ``EOPNOTSUPP``/``EINVAL`` for it too), and rootless ``EPERM`` (as
    ``umoci unpack --rootless``).

    Raises: LayerError naming ``where`` and the xattr, for any other failure (as root,
    an ``EPERM`` too: an image's xattrs are applied or the layer fails)."""
    skipped = []
    for name, value in xattrs.items():
        try:
            os.setxattr(target, name, value)
        except OSError as e:
            why = _tolerated(e, name, value, rootless)
            if why is None:
                raise LayerError(f"{where}: cannot set xattr {name!r} ({len(value)} bytes): {e.strerror}") from None
            skipped.append((name, why))
    return skipped


def _tolerated(e: OSError, name: str, value: bytes, rootless: bool) -> str | None:
    if name in _ACL_XATTRS and e.errno in (errno.EOPNOTSUPP, errno.EINVAL) and not _valid_acl(value):
        return (f"is not a valid POSIX ACL ({len(value)} bytes; expected a version-2 header of 4 bytes and 8-byte "
                "entries, acl(5)); dropped")
    if e.errno == errno.EOPNOTSUPP:
        return "not applied: the filesystem does not support it (EOPNOTSUPP)"
    if rootless and e.errno == errno.EPERM:
        return "not applied: rootless, and setxattr(2) needs a privilege for it (EPERM; dropped like umoci --rootless)"
    return None


def _valid_acl(value: bytes) -> bool:
    """The Linux POSIX ACL xattr layout: le32 version 2, then (le16 tag, le16 perm, le32 id)
    entries (include/uapi/linux/posix_acl_xattr.h)."""
    return len(value) >= 4 and (len(value) - 4) % 8 == 0 and int.from_bytes(value[:4], "little") == 2


def clear_xattrs(target: str, keep: dict[str, bytes], *, rootless: bool, where: str) -> list[tuple[str, str]]:
    """Remove the xattrs of ``target`` that are not in ``keep`` and not host-specific:
    a directory kept under a new directory entry gets exactly the entry's xattrs (layer.md
    "Changeset over existing files").

    Returns: ``[(name, why it stays)]`` for a rootless ``EPERM``.
    Raises: LayerError for any other failure."""
    try:
        names = os.listxattr(target)
    except OSError as e:
        if e.errno == errno.EOPNOTSUPP:
            return []
        raise LayerError(f"{where}: cannot list xattrs: {e.strerror}") from None
    left = []
    for name in names:
        if name in keep or host_specific(name) is not None:
            continue
        try:
            os.removexattr(target, name)
        except OSError as e:
            if e.errno == errno.ENODATA:
                continue
            if rootless and e.errno == errno.EPERM:
                left.append((name, "of the lower layer kept: rootless, removexattr(2) needs a privilege for it (EPERM)"))
                continue
            raise LayerError(f"{where}: cannot remove the lower layer's xattr {name!r}: {e.strerror}") from None
    return left
