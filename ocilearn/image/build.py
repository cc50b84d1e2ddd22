"""ocilearn's own image writer: deterministic layers, image config, manifest, index.

What ``umoci repack`` + ``umoci config`` do, in a few readable steps:

1. a list of :class:`Entry` (or a directory tree, :func:`entries_from_tree`) becomes a
   layer tar (:func:`layer_tar`): entries sorted by path, no duplicates (image-spec
   layer.md "Distributable Format": "MUST NOT include duplicate entries"),
   one fixed mtime, numeric owners (uid/gid 0 unless told), no user/group names, PAX
   format (long names and non-ASCII names get PAX records);
2. the tar is compressed (:func:`compress`: gzip with mtime 0 and no file name, or zstd)
   and stored as a blob; its *diff ID* is the sha256 of the uncompressed tar
   (config.md "Layer DiffID"), the descriptor's digest that of the compressed bytes;
3. an image config (config.md) lists the diff IDs, the run parameters (Entrypoint, Cmd,
   Env, WorkingDir, User, ExposedPorts, Labels …) and one history entry per layer;
4. a manifest (manifest.md) points at the config and the layers; a ref name in
   index.json (image-layout.md) or an image index (image-index.md) points at manifests.

Same input → same bytes → same digests: the embedded workshop image is rebuilt this way
and must come out identical (tests/test_embedded.py).

Every blob goes through :meth:`ImageLayout.put_blob` (atomic, verified); refs through
:meth:`ImageLayout.add_ref` (locked).
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..core import explain
from ..core.errors import LayerError
from . import mediatypes as mt
from .digest import Digest
from .layout import ImageLayout
from .model import ContainerConfig, Descriptor, History, ImageConfig, Index, Manifest, Platform, dumps

#: default timestamp of every entry and of ``created``: 2025-01-01T00:00:00Z (seconds)
DEFAULT_EPOCH = 1735689600

_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "char": tarfile.CHRTYPE,
    "block": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


@dataclass(frozen=True)
class Entry:
    """One member of a layer tar.

    Attributes:
        path: path inside the rootfs, relative, ``/``-separated, e.g. ``"bin/busybox"``
            (a leading ``/`` or ``./`` is removed; ``..`` components are refused).
        type: ``file``, ``dir``, ``symlink``, ``hardlink``, ``char``, ``block`` or ``fifo``.
        mode: permission bits incl. setuid/setgid/sticky (``0o7777`` mask), e.g. ``0o755``.
        uid, gid: numeric owner (default 0:0).
        data: content of a ``file`` (bytes).
        linkname: target of a ``symlink`` (any string) or ``hardlink`` (a path in the layer).
        devmajor, devminor: device numbers of ``char``/``block``.
        xattrs: extended attributes, written as PAX ``SCHILY.xattr.<name>`` records.
    """

    path: str
    type: str = "file"
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    data: bytes = b""
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def name(self) -> str:
        """The normalised member name (no leading ``/`` or ``./``, no trailing ``/``)."""
        return normalise_path(self.path)


def normalise_path(path: str) -> str:
    """``/a//b/./c/`` → ``a/b/c``. Raises :class:`LayerError` for ``..`` or an empty path."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise LayerError(f"layer entry path {path!r}: must name something inside the rootfs, without '..'")
    return "/".join(parts)


def file(path: str, data: bytes | str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Entry:
    """A regular file entry (``str`` data is UTF-8 encoded)."""
    return Entry(path, "file", mode, uid, gid, data.encode() if isinstance(data, str) else data)


def directory(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    """A directory entry."""
    return Entry(path, "dir", mode, uid, gid)


def symlink(path: str, target: str, uid: int = 0, gid: int = 0) -> Entry:
    """A symbolic link ``path -> target`` (mode 0777, as on Linux)."""
    return Entry(path, "symlink", 0o777, uid, gid, linkname=target)


def entries_from_tree(root: str | os.PathLike, *, keep_owners: bool = False, uid: int = 0, gid: int = 0) -> list[Entry]:
    """Read a directory tree into entries (the root itself is not an entry).

    Files, directories, symlinks, fifos and device nodes are taken with their permission
    bits; a second name of an inode already seen (``st_nlink > 1``) becomes a ``hardlink``
    to the first name in sorted order. Owners are ``uid:gid`` (default 0:0) unless
    ``keep_owners`` (then the files' own numeric owners). Times are not read: the writer
    sets one fixed mtime. Sockets are skipped (tar cannot hold them).
    """
    root = Path(root)
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            found.append((p.relative_to(root).as_posix(), p))
    # the order the tar will have (per path component), so the first name of an inode
    # is the one written as a file and the later names can link to it
    found.sort(key=lambda item: item[0].split("/"))
    out: list[Entry] = []
    seen_inodes: dict[tuple[int, int], str] = {}
    for rel, p in found:
        st = p.lstat()
        o_uid, o_gid = (st.st_uid, st.st_gid) if keep_owners else (uid, gid)
        perm = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            out.append(Entry(rel, "symlink", 0o777, o_uid, o_gid, linkname=os.readlink(p)))
        elif stat.S_ISDIR(st.st_mode):
            out.append(Entry(rel, "dir", perm, o_uid, o_gid))
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in seen_inodes:
                out.append(Entry(rel, "hardlink", perm, o_uid, o_gid, linkname=seen_inodes[key]))
            else:
                seen_inodes[key] = rel
                out.append(Entry(rel, "file", perm, o_uid, o_gid, p.read_bytes()))
        elif stat.S_ISFIFO(st.st_mode):
            out.append(Entry(rel, "fifo", perm, o_uid, o_gid))
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            kind = "char" if stat.S_ISCHR(st.st_mode) else "block"
            out.append(Entry(rel, kind, perm, o_uid, o_gid, devmajor=os.major(st.st_rdev), devminor=os.minor(st.st_rdev)))
    return out


def layer_tar(entries: Iterable[Entry], *, mtime: int = DEFAULT_EPOCH, add_parents: bool = True) -> bytes:
    """Serialise entries as a deterministic layer tar (uncompressed bytes).

    Rules: members sorted by path (a directory sorts right before its contents); every
    mtime = ``mtime`` (seconds since the epoch); numeric uid/gid with empty user/group
    names; PAX format; missing parent directories added (mode 0755, 0:0) when
    ``add_parents``; each path at most once.

    Raises:
        LayerError: a path given twice (layer.md forbids duplicates), a ``..``
            path, an unknown type, or a hardlink to a path not earlier in the layer.
    """
    by_name: dict[str, Entry] = {}
    for e in entries:
        name = e.name
        if e.type not in _TYPES:
            raise LayerError(f"layer entry {name!r}: unknown type {e.type!r} (expected one of {', '.join(_TYPES)})")
        if name in by_name:
            raise LayerError(
                f"layer entry {name!r} given twice: a layer MUST NOT contain duplicate entries "
                "(image-spec layer.md 'Distributable Format')"
            )
        by_name[name] = e
    if add_parents:
        for name in list(by_name):
            parts = name.split("/")
            for i in range(1, len(parts)):
                parent = "/".join(parts[:i])
                if parent not in by_name:
                    by_name[parent] = Entry(parent, "dir", 0o755)
    # sort key: path components, so "a/b" < "a-b" is decided per component and a
    # directory always precedes its children
    names = sorted(by_name, key=lambda n: n.split("/"))
    buf = io.BytesIO()
    written: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            e = by_name[name]
            info = tarfile.TarInfo(name)
            info.type = _TYPES[e.type]
            info.mode = e.mode & 0o7777
            info.uid, info.gid = e.uid, e.gid
            info.uname = info.gname = ""
            info.mtime = mtime
            if e.xattrs:
                info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in sorted(e.xattrs.items())}
            if e.type in ("symlink", "hardlink"):
                target = e.linkname
                if e.type == "hardlink":
                    target = normalise_path(target)
                    if target not in written:
                        raise LayerError(f"layer entry {name!r}: hardlink to {target!r}, which is not an earlier file of this layer")
                info.linkname = target
            if e.type in ("char", "block"):
                info.devmajor, info.devminor = e.devmajor, e.devminor
            if e.type == "file":
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:
                tar.addfile(info)
            written.add(name)
    data = buf.getvalue()
    explain.step(
        "layer", "write tar", f"{len(names)} entries, {len(data)} bytes, mtime {mtime}",
        f"tar --sort=name --mtime=@{mtime} --numeric-owner --owner=0 --group=0 --format=pax -cf layer.tar -C rootfs .",
    )
    return data


def compress(data: bytes, compression: str = "gzip") -> bytes:
    """Compress a layer tar reproducibly: ``gzip`` (level 9, header mtime 0, no file
    name; like ``gzip -n``), ``zstd`` (level 3) or ``none``.

    Raises:
        LayerError: unknown compression.
    """
    if compression == "gzip":
        return gzip.compress(data, compresslevel=9, mtime=0)
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=3).compress(data)
    if compression == "none":
        return data
    raise LayerError(f"unknown layer compression {compression!r} (expected gzip, zstd or none)")


_LAYER_TYPE = {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD, "none": mt.OCI_LAYER_TAR}


@dataclass(frozen=True)
class Layer:
    """A stored layer: its descriptor (digest/size of the compressed blob) and its diff ID
    (digest of the uncompressed tar, config.md "Layer DiffID"; sha256 unless asked)."""

    descriptor: Descriptor
    diff_id: Digest


def add_layer(
    layout: ImageLayout,
    layer: bytes | Iterable[Entry],
    *,
    compression: str = "gzip",
    mtime: int = DEFAULT_EPOCH,
    algorithm: str = "sha256",
    diff_id_algorithm: str | None = None,
) -> Layer:
    """Store one layer: ``layer`` is an uncompressed tar (bytes) or entries for
    :func:`layer_tar`. The blob is addressed by ``algorithm`` and the diff ID computed
    with ``diff_id_algorithm`` (default: the same), each ``sha256`` or ``sha512``
    (descriptor.md "Registered algorithms"). Returns a :class:`Layer`.

    Raises:
        UnsupportedAlgorithm: another algorithm."""
    tar = layer if isinstance(layer, (bytes, bytearray)) else layer_tar(layer, mtime=mtime)
    diff_id = Digest.of(bytes(tar), diff_id_algorithm or algorithm)
    blob = compress(bytes(tar), compression)
    digest, size = layout.put_blob(blob, algorithm=algorithm)
    explain.step("layer", "store layer", f"{digest} ({size} bytes {compression}), diff_id {diff_id}",
                 f"{compression} -n < layer.tar | {diff_id.algorithm}sum")
    return Layer(Descriptor(_LAYER_TYPE[compression], digest, size), diff_id)


def rfc3339(epoch: int) -> str:
    """``1735689600`` → ``"2025-01-01T00:00:00Z"`` (UTC, seconds)."""
    import datetime

    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_config(
    diff_ids: Sequence[Digest],
    *,
    architecture: str = "amd64",
    os: str = "linux",
    variant: str | None = None,
    entrypoint: Sequence[str] | None = None,
    cmd: Sequence[str] | None = None,
    env: Sequence[str] | None = None,
    working_dir: str | None = None,
    user: str | None = None,
    exposed_ports: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    stop_signal: str | None = None,
    created: int = DEFAULT_EPOCH,
    author: str | None = None,
    history: Sequence[str] | None = None,
) -> ImageConfig:
    """An :class:`~ocilearn.image.model.ImageConfig` (image-spec config.md).

    Args:
        diff_ids: one per layer, base first.
        exposed_ports: e.g. ``["8080/tcp"]`` (stored as the spec's ``{"8080/tcp": {}}``).
        created: seconds since the epoch, written as RFC 3339 in ``created`` and history.
        history: one ``created_by`` string per layer (default: ``"ocilearn imagebuild"``).
    """
    hist = history or ["ocilearn imagebuild"] * len(diff_ids)
    if len(hist) != len(diff_ids):
        raise LayerError(f"image config: {len(hist)} history entries for {len(diff_ids)} layers")
    ts = rfc3339(created)
    return ImageConfig(
        architecture=architecture,
        os=os,
        variant=variant,
        diff_ids=tuple(diff_ids),
        created=ts,
        author=author,
        config=ContainerConfig(
            user=user,
            exposed_ports={p: {} for p in exposed_ports} if exposed_ports else None,
            env=tuple(env) if env is not None else None,
            entrypoint=tuple(entrypoint) if entrypoint is not None else None,
            cmd=tuple(cmd) if cmd is not None else None,
            working_dir=working_dir,
            labels=dict(labels) if labels else None,
            stop_signal=stop_signal,
        ),
        history=tuple(History(created=ts, created_by=h, author=author) for h in hist),
    )


def write_image(
    layout: ImageLayout,
    layers: Sequence[Layer],
    config: ImageConfig,
    *,
    ref: str | None = None,
    annotations: Mapping[str, str] | None = None,
    algorithm: str = "sha256",
    config_algorithm: str | None = None,
) -> Descriptor:
    """Store the config and a manifest for ``layers`` and, with ``ref``, tag it in
    index.json. Returns the manifest's descriptor (with the config's platform). The
    manifest is addressed by ``algorithm``, the config by ``config_algorithm`` (default:
    the same); ``sha256`` or ``sha512``.

    Raises:
        LayerError: the config's diff IDs do not match the layers.
    """
    if tuple(config.diff_ids) != tuple(layer.diff_id for layer in layers):
        raise LayerError("image config: rootfs.diff_ids do not match the layers given (config.md 'rootfs')")
    with layout.writing():
        cfg_desc = layout.put_json(mt.OCI_CONFIG, config.to_json(), algorithm=config_algorithm or algorithm)
        manifest = Manifest(
            config=cfg_desc,
            layers=tuple(layer.descriptor for layer in layers),
            media_type=mt.OCI_MANIFEST,
            annotations=dict(annotations) if annotations else None,
        )
        platform = Platform(config.os, config.architecture, config.variant)
        desc = layout.put_json(mt.OCI_MANIFEST, manifest.to_json(), algorithm=algorithm, platform=platform)
        explain.step("image", "write manifest", f"{desc.digest} ({desc.size} bytes): config {cfg_desc.digest}, {len(layers)} layers", "umoci config --image LAYOUT:REF …")
        if ref is not None:
            layout.add_ref(ref, desc)
    return desc


def write_index(layout: ImageLayout, manifests: Sequence[Descriptor], *, ref: str | None = None, annotations: Mapping[str, str] | None = None) -> Descriptor:
    """Store an image index (image-index.md) listing ``manifests`` (each should carry a
    ``platform``) and, with ``ref``, tag it. Returns the index's descriptor."""
    index = Index(manifests=tuple(manifests), media_type=mt.OCI_INDEX, annotations=dict(annotations) if annotations else None)
    with layout.writing():
        desc = layout.put_json(mt.OCI_INDEX, dumps(index.to_dict()))
        explain.step("image", "write index", f"{desc.digest}: {len(manifests)} manifests", "buildah manifest create/add/push --all --format oci")
        if ref is not None:
            layout.add_ref(ref, desc)
    return desc


def build_image(
    path: str | os.PathLike,
    layers: Sequence[Iterable[Entry] | bytes],
    *,
    ref: str = "latest",
    compression: str = "gzip",
    mtime: int = DEFAULT_EPOCH,
    annotations: Mapping[str, str] | None = None,
    **config_kw,
) -> Descriptor:
    """One call: layers (entries or tars) → layout at ``path`` (created if needed) with
    the image tagged ``ref``. ``config_kw`` go to :func:`make_config` (``created``
    defaults to ``mtime``). Returns the manifest descriptor."""
    layout = ImageLayout.init(path)
    with layout.writing():  # gc waits until the ref names the new blobs
        stored = [add_layer(layout, entry_list, compression=compression, mtime=mtime) for entry_list in layers]
        config_kw.setdefault("created", mtime)
        config = make_config([s.diff_id for s in stored], **config_kw)
        return write_image(layout, stored, config, ref=ref, annotations=annotations)
