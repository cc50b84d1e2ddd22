"""Read a layer blob as a tar stream, within bounds (image-spec layer.md, descriptor.md).

A layer blob is read once, through one pipeline::

    blob ─► verify (digest, size) ─► decompress ─┊─► hash (diff ID) ─┊─► tar members
    └──────────── thread 1 ────────────────────┘  └──── thread 2 ───┘  └─ caller ─┘

:func:`open_layer` builds it and returns a :class:`LayerStream`; ``members()`` yields the
tar headers, ``data(member)`` a member's bytes, ``finish(diff_id)`` reads what the tar
reader left and checks the blob digest and the diff ID. :func:`diff_id_of` is that
pipeline without the tar.

Compression
    Chosen by the blob's *magic bytes* (:func:`ocilearn.core.streams.sniff_compression`):
    ``1f 8b`` gzip, ``28 b5 2f fd`` zstd, otherwise a plain tar. The media type is only a
    hint: when it disagrees a :class:`LayerWarning` is issued and the bytes win (an
    uncompressed layer labelled ``+gzip`` unpacks; umoci and containerd also go by the
    bytes). Both OCI and Docker schema2 layer media types are accepted.

Trailing bytes and frames
    The blob digest and size are verified over *every* byte of the blob, and the diff ID
    over the *entire* decompressed stream: after the tar reader stops at the end-of-archive
    blocks the rest is drained and hashed. gzip: several members are concatenated (RFC
    1952 §2.2); after the last member, NUL padding and other trailing bytes are ignored
    with a warning (as umoci and ``gzip -d`` do; safe, because those bytes are covered by
    the blob digest). zstd: all frames are decoded and skippable frames are skipped (RFC
    8878 §3.1); a decoder stopping early would be caught by the diff ID. A tar that ends
    without its end-of-archive blocks after a complete last member (umoci 0.4.7 ``insert``
    writes such, umoci issue #436) is accepted with a warning, as umoci and Go's
    archive/tar do; a member whose data is cut short is an error.

Bounded resources (a layer is untrusted input)
    - Memory does not grow with the compression ratio (a decompression bomb): gzip is
      inflated at most 1 MiB per call, zstd through a stream reader of 1 MiB reads, and
      the tar reader pulls 1 MiB at a time.
    - Extended headers are checked *before* Python's tarfile reads them (it reads each one
      whole, and follows chains of them recursively): a PAX ``x``/``g`` or GNU ``L``/``K``
      header larger than :data:`MAX_EXTENDED_HEADER`, more than :data:`MAX_HEADER_CHAIN`
      in front of one member, more than :data:`MAX_EXTENDED_TOTAL` bytes of them in one
      layer, more than :data:`MAX_GLOBAL_HEADERS` bytes of global records, or a sparse map
      of more than :data:`MAX_SPARSE_CHUNKS` chunks is a :class:`~ocilearn.core.errors.LayerError`.
    - Sizes are never trusted: every member's data is *read* (what a whiteout carries is
      read and dropped), so a header claiming more than the stream holds fails at the
      stream's end ("tar data ends early") instead of a "seek" over data that does not
      exist. The time spent is bounded by the bytes really present.
    - Not a tar at all (empty, garbage, bad checksum) is a LayerError, never tarfile's
      ReadError.
"""

from __future__ import annotations

import io
import tarfile
import warnings
import weakref
import zlib
from typing import BinaryIO, Callable, Iterator

from ..core import explain
from ..core.errors import DigestMismatch, LayerError
from ..core.streams import CHUNK, CountingReader, HashingReader, ReadAhead, open_decompressed, sniff_compression
from ..image import mediatypes as mt
from ..image.digest import REGISTERED, Digest, VerifyingReader

__all__ = [
    "LayerWarning",
    "LayerStream",
    "open_layer",
    "diff_id_of",
    "detect_compression",
    "MAX_EXTENDED_HEADER",
    "MAX_GLOBAL_HEADERS",
    "MAX_HEADER_CHAIN",
    "MAX_EXTENDED_TOTAL",
    "MAX_SPARSE_CHUNKS",
]

# Limits on what a tar header may make the reader hold or do (module docstring).
MAX_EXTENDED_HEADER = 1 << 20  # bytes of one PAX (x/g) or GNU long name/link (L/K) header
MAX_GLOBAL_HEADERS = 1 << 20  # bytes of all PAX global (g) records kept for the stream
MAX_HEADER_CHAIN = 16  # extended headers in front of one member
MAX_EXTENDED_TOTAL = 64 << 20  # bytes of all extended headers of one layer (bounds the CPU spent parsing them)
MAX_SPARSE_CHUNKS = 1 << 18  # (offset, size) pairs in one sparse file's map


class LayerWarning(UserWarning):
    """Something tolerated while reading or applying a layer (mismatched compression,
    trailing bytes, duplicate entries, degenerate whiteouts, skipped devices, extended
    attributes not applied)."""


def default_warn(msg: str) -> None:
    """The ``warn`` callback used when a caller gives none: a :class:`LayerWarning`."""
    warnings.warn(msg, LayerWarning, stacklevel=3)


def detect_compression(head: bytes) -> str:
    """``"gzip"``, ``"zstd"`` or ``"none"`` from a blob's first bytes (≥ 4 bytes): the
    bytes decide, as :func:`ocilearn.core.streams.sniff_compression` says."""
    return sniff_compression(head)


# ----------------------------------------------------------------- the read pipeline


class LayerStream:
    """A layer blob opened by :func:`open_layer`; use as a context manager.

    Attributes:
        compression: ``gzip``, ``zstd`` or ``none`` (from the magic bytes).
        source: the name used in messages.
    """

    def __init__(self, blob: VerifyingReader | CountingReader, counted: CountingReader, decompressed: BinaryIO,
                 diff_id_algorithm: str, compression: str, source: str, warn: Callable[[str], None]) -> None:
        self._blob, self._counted = blob, counted
        self.compression, self.source, self._warn = compression, source, warn
        # Three threads share the work, each a stage of the pipeline with a bounded queue
        # (8 chunks of 1 MiB) between them: one reads the blob, hashes it (its digest) and
        # inflates it; one hashes the tar stream (the diff ID); the caller's thread parses
        # the tar and writes the files. sha256, inflate and the writes all release the
        # GIL, so the kernel spreads the stages over the cores; with the diff ID hashed by
        # the first stage, or by the writer, that thread was the critical path for large
        # files. For many small files the writer is the critical path: the two helpers
        # run at a lower priority (nice +5) so that they do not take its core
        # (BENCHMARKS.md "Unpack").
        stages: list[ReadAhead] = []
        # the stages stop at close(), or when this object is dropped without it (an
        # interrupt between open_layer() and the caller's `with`)
        self._stop_stages = weakref.finalize(self, _close_all, stages)
        try:
            self._inflated = ReadAhead(decompressed, wrap_error=_decoder_error, name="ocilearn-layer-read", nice=5)
            stages.append(self._inflated)
            self._hashing = HashingReader(self._inflated, diff_id_algorithm)
            self._prefetch = ReadAhead(self._hashing, name="ocilearn-layer-hash", nice=5)
            stages.append(self._prefetch)
        except BaseException:  # KeyboardInterrupt while the threads start: stop those already running
            self._stop_stages()
            raise
        # tarfile reads the stream in its seekable mode ("r:") through a buffered reader
        # that can only move forward (_ForwardOnly): tarfile's own streaming wrapper
        # ("r|") copies its buffer on every header read, ≈ 20 % of a small-file writer's
        # CPU (BENCHMARKS.md "Unpack").
        self._tar_stream = io.BufferedReader(_ForwardOnly(self._prefetch), CHUNK)
        self._tarfile: tarfile.TarFile | None = None

    def __enter__(self) -> "LayerStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the pipeline's threads (the blob stream stays the caller's)."""
        self._stop_stages()

    @property
    def blob_bytes(self) -> int:
        """Bytes of the blob (compressed) read so far."""
        return self._counted.count

    def members(self) -> Iterator[tarfile.TarInfo]:
        """The tar members in order (see :func:`_members`); after each one is handed out
        and the caller is done with it, the rest of its data is read and dropped."""
        tf = _open_tar(self._tar_stream, self.source)
        self._tarfile = tf
        with tf:
            yield from _members(tf, self.source, self._warn)

    def data(self, m: tarfile.TarInfo) -> Iterator[tuple[int, bytes]]:
        """``m``'s content as ``(offset in the file, bytes)`` pieces, at most 1 MiB each.
        A sparse member (GNU old, PAX 0.0/0.1/1.0) gives only its stored chunks, at their
        offsets: the holes are not generated, so the time follows the data stored, not
        the size claimed.

        Raises: LayerError (data cut short, or an invalid sparse map)."""
        if self._tarfile is None:
            raise RuntimeError("LayerStream.data() reads a member handed out by members()")
        fo = self._tarfile.fileobj
        pos = fo.tell()
        if pos != m.offset_data:
            if pos > m.offset_data:  # the buffered reader could seek back within its buffer: never re-read
                raise LayerError(f"{self.source}: entry {m.name!r}: its data would start at byte {m.offset_data}, "
                                 f"before the end of its headers ({pos})")
            fo.seek(m.offset_data)
        for offset, size in _chunks(m, self.source):
            yield from _read_exactly(fo, offset, size, m, self.source)

    def finish(self, diff_id: Digest | str | None = None) -> tuple[Digest, int]:
        """Read what the tar reader left (end blocks, padding), then verify the blob
        (digest, size) and the diff ID.

        Returns: ``(diff ID computed, uncompressed bytes)``.
        Raises: DigestMismatch, SizeMismatch (config.md ``rootfs.diff_ids``; descriptor.md)."""
        while self._tar_stream.read(CHUNK):
            pass
        try:
            while self._blob.read(CHUNK):
                pass
        except zlib.error:
            pass
        if isinstance(self._blob, VerifyingReader):
            self._blob.verify()
        actual = Digest(self._hashing.algorithm, self._hashing.hexdigest)
        want = Digest.parse(diff_id) if diff_id is not None else None
        if want is not None and want.algorithm != actual.algorithm:
            raise LayerError(f"{self.source}: diff ID {want} uses {want.algorithm} but the layer was hashed with {actual.algorithm}")
        if want is not None and actual != want:
            raise DigestMismatch(want, actual, f"diff ID of {self.source} ({actual.algorithm} of the uncompressed tar, config.md rootfs.diff_ids)")
        return actual, self._hashing.count


class _ForwardOnly(io.RawIOBase):
    """A stream that tells its position and seeks forward only (by reading and dropping
    what it skips): what :class:`tarfile.TarFile` needs of a file in its seekable mode,
    since it only seeks to where the next header starts. Seeking backwards raises
    :class:`io.UnsupportedOperation`; seeking past the end stops at the end (the next
    read then gives ``b""``, which tarfile reports as "unexpected end of data")."""

    def __init__(self, raw: ReadAhead) -> None:
        super().__init__()
        self._raw, self._pos = raw, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self._raw.readinto(b)
        self._pos += n
        return n

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            pos += self._pos
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("a layer's tar stream cannot seek from its end")
        if pos < self._pos:
            raise io.UnsupportedOperation(f"a layer's tar stream cannot seek backwards (from byte {self._pos} to {pos})")
        while self._pos < pos:
            data = self._raw.read(min(CHUNK, pos - self._pos))
            if not data:
                break
            self._pos += len(data)
        return self._pos


def _close_all(stages: list[ReadAhead]) -> None:
    for stage in reversed(stages):  # the last stage first: it reads from the one before
        stage.close()


def _decoder_error(e: Exception) -> Exception:
    return LayerError(f"cannot decompress the layer: {type(e).__name__}: {e}")


def open_layer(
    blob: BinaryIO,
    media_type: str | None = None,
    *,
    digest: Digest | str | None = None,
    size: int | None = None,
    diff_id_algorithm: str = "sha256",
    source: str = "layer",
    warn: Callable[[str], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> LayerStream:
    """Set up the read pipeline ``blob → verify → decompress → hash (diff ID) → tar``.

    Args:
        blob: binary stream of the layer blob as stored (compressed or not).
        media_type: the descriptor's media type (a hint; ``None`` = unknown).
        digest, size: verify the blob against them at its end (descriptor.md "Verification").
        diff_id_algorithm: the hash of the uncompressed stream (``sha256`` or ``sha512``:
            the algorithm of the diff ID the image config names, config.md).
        warn: called with each tolerated oddity (default: a :class:`LayerWarning`).
        progress: called with each count of *blob* bytes read.

    Returns: a :class:`LayerStream`.

    Raises:
        LayerError: the media type is not a layer media type (image-spec media-types.md).
    """
    warn = warn or default_warn
    if diff_id_algorithm not in REGISTERED:
        raise LayerError(f"{source}: diff ID algorithm {diff_id_algorithm!r} is not supported (image-spec descriptor.md: sha256, sha512)")
    if media_type is not None and not mt.is_layer(media_type):
        raise LayerError(f"{source}: media type {media_type!r} is not a layer media type (image-spec media-types.md)")
    raw: BinaryIO = blob
    if digest is not None:
        raw = VerifyingReader(blob, Digest.parse(digest), size, source=source)  # type: ignore[assignment]
    head = b""
    while len(head) < 4:
        more = raw.read(4 - len(head))
        if not more:
            break
        head += more
    counted = CountingReader(raw, head, progress, close_raw=False)
    kind = sniff_compression(head)
    hint = mt.layer_compression(media_type) if media_type else None
    if hint is not None and hint != kind:
        warn(f"{source}: media type {media_type} announces {hint} but the bytes are {kind} (magic {head.hex()}); "
             f"using {kind}: the bytes decide, the media type is a hint")
    dec = open_decompressed(counted, kind, source=source, warn=warn, error=LayerError)  # type: ignore[arg-type]
    return LayerStream(raw if digest is not None else counted, counted, dec, diff_id_algorithm, kind, source, warn)  # type: ignore[arg-type]


def diff_id_of(blob: BinaryIO, media_type: str | None = None, *, algorithm: str = "sha256", source: str = "layer") -> Digest:
    """Recompute a layer's diff ID: the digest (``algorithm``) of its whole uncompressed
    stream (config.md ``rootfs.diff_ids``). Like ``gzip -dc BLOB | sha256sum``."""
    with open_layer(blob, media_type, diff_id_algorithm=algorithm, source=source) as layer:
        dig, n = layer.finish()
    explain.step("layer", "diff ID", f"{source}: {algorithm} over {n} uncompressed bytes = {dig}", f"gzip -dc BLOB | {algorithm}sum")
    return dig


# ----------------------------------------------------------------- bounded tar headers


class _TarLimit(tarfile.TarError):
    """A tar header asks for more than the limits above (turned into LayerError)."""


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile.TarInfo whose extended-header handlers refuse oversized or endless input
    *before* tarfile reads it (CPython's ``_proc_*`` hooks, the extension point
    ``TarInfo._proc_member`` dispatches to)."""

    @classmethod
    def frombuf(cls, buf, encoding, errors):
        """``tarfile.TarInfo.frombuf``: see :meth:`_frombuf`."""
        return cls._frombuf(buf, encoding, errors)

    @classmethod
    def _frombuf(cls, buf, encoding, errors, *, dircheck=True):
        """CPython's header decoder (``TarInfo.frombuf`` in 3.11.2; ``_frombuf`` with
        ``dircheck`` — off for the header after a GNU long name — in the releases that have
        it, which call it directly; the same steps) with the checksum summed over the bytes
        at C speed: tarfile's ``calc_chksums`` unpacks all 512 bytes twice, into signed and
        unsigned numbers, for every header (≈ 8 % of a small-file unpack's writer thread,
        BENCHMARKS.md "Unpack"). The signed sum (old Sun and NeXT tars, GNU tar's list.c)
        is still accepted when the unsigned one does not match. A tarfile that decodes
        headers by yet another name runs its own decoder: the same result, slower."""
        if len(buf) == 0:
            raise tarfile.EmptyHeaderError("empty header")
        if len(buf) != tarfile.BLOCKSIZE:
            raise tarfile.TruncatedHeaderError("truncated header")
        if buf.count(tarfile.NUL) == tarfile.BLOCKSIZE:
            raise tarfile.EOFHeaderError("end of file header")
        nti, nts = tarfile.nti, tarfile.nts
        chksum = nti(buf[148:156])
        # the checksum field counts as 8 spaces (256)
        if chksum != 256 + sum(buf) - sum(buf[148:156]) and chksum not in tarfile.calc_chksums(buf):
            raise tarfile.InvalidHeaderError("bad checksum")
        obj = cls()
        obj.name = nts(buf[0:100], encoding, errors)
        obj.mode = nti(buf[100:108])
        obj.uid = nti(buf[108:116])
        obj.gid = nti(buf[116:124])
        obj.size = nti(buf[124:136])
        obj.mtime = nti(buf[136:148])
        obj.chksum = chksum
        obj.type = buf[156:157]
        obj.linkname = nts(buf[157:257], encoding, errors)
        obj.uname = nts(buf[265:297], encoding, errors)
        obj.gname = nts(buf[297:329], encoding, errors)
        obj.devmajor = nti(buf[329:337])
        obj.devminor = nti(buf[337:345])
        prefix = nts(buf[345:500], encoding, errors)
        if dircheck and obj.type == tarfile.AREGTYPE and obj.name.endswith("/"):
            obj.type = tarfile.DIRTYPE  # old V7 tar: a directory is a regular file with a trailing slash
        if obj.type == tarfile.GNUTYPE_SPARSE:  # old GNU sparse: up to 4 (offset, size) pairs here
            pos = 386
            structs = []
            for _ in range(4):
                try:
                    offset = nti(buf[pos:pos + 12])
                    numbytes = nti(buf[pos + 12:pos + 24])
                except ValueError:
                    break
                structs.append((offset, numbytes))
                pos += 24
            obj._sparse_structs = (structs, bool(buf[482]), nti(buf[483:495]))
        if obj.isdir():
            obj.name = obj.name.rstrip("/")
        if prefix and obj.type not in tarfile.GNU_TYPES:
            obj.name = prefix + "/" + obj.name  # a ustar long name
        return obj

    def _chain(self, tf) -> None:
        n = getattr(tf, "_ocilearn_chain", 0) + 1
        tf._ocilearn_chain = n
        if n > MAX_HEADER_CHAIN:
            raise _TarLimit(f"more than {MAX_HEADER_CHAIN} extended headers in a row (at byte {self.offset})")
        if not 0 <= self.size <= MAX_EXTENDED_HEADER:
            kind = {tarfile.GNUTYPE_LONGNAME: "GNU long name", tarfile.GNUTYPE_LONGLINK: "GNU long link name",
                    tarfile.XGLTYPE: "PAX global"}.get(self.type, "PAX extended")
            raise _TarLimit(f"{kind} header at byte {self.offset} claims {self.size} bytes (limit {MAX_EXTENDED_HEADER})")
        total = getattr(tf, "_ocilearn_ext_total", 0) + self.size
        tf._ocilearn_ext_total = total
        if total > MAX_EXTENDED_TOTAL:
            raise _TarLimit(f"extended headers of this layer exceed {MAX_EXTENDED_TOTAL} bytes in all (at byte {self.offset})")

    def _proc_gnulong(self, tf):
        self._chain(tf)
        return super()._proc_gnulong(tf)

    def _proc_pax(self, tf):
        self._chain(tf)
        out = super()._proc_pax(tf)
        if sum(len(k) + len(v) for k, v in tf.pax_headers.items()) > MAX_GLOBAL_HEADERS:
            raise _TarLimit(f"PAX global headers hold more than {MAX_GLOBAL_HEADERS} bytes")
        return out

    def _proc_sparse(self, tf):
        """Old GNU sparse member ('S'): the map continues in extension blocks; bounded."""
        structs, isextended, origsize = self._sparse_structs
        del self._sparse_structs
        structs = [(o, n) for o, n in structs if n]
        while isextended:
            buf = tf.fileobj.read(tarfile.BLOCKSIZE)
            if len(buf) < tarfile.BLOCKSIZE:
                raise _TarLimit(f"GNU sparse member at byte {self.offset}: the sparse map is truncated")
            structs.extend(_gnu_sparse_block(buf))
            if len(structs) > MAX_SPARSE_CHUNKS:
                raise _TarLimit(f"GNU sparse member at byte {self.offset}: more than {MAX_SPARSE_CHUNKS} chunks")
            isextended = bool(buf[504])
        self.sparse = structs
        self.offset_data = tf.fileobj.tell()
        tf.offset = self.offset_data + self._block(self.size)
        self.size = origsize
        return self

    def _proc_gnusparse_10(self, next, pax_headers, tf):
        """PAX sparse 1.0: the map is decimal lines at the start of the data; bounded."""
        numbers = _pax_sparse_map(tf.fileobj, next.name)
        next.offset_data = tf.fileobj.tell()
        next.sparse = list(zip(numbers[::2], numbers[1::2], strict=True))


def _gnu_sparse_block(buf: bytes) -> list[tuple[int, int]]:
    """The (offset, size) pairs of one old-GNU sparse extension block (21 pairs of 12-byte
    numbers, GNU tar manual "Old GNU Format"); empty pairs dropped."""
    out = []
    for pos in range(0, 21 * 24, 24):
        try:
            o, n = tarfile.nti(buf[pos : pos + 12]), tarfile.nti(buf[pos + 12 : pos + 24])
        except ValueError:
            break
        if n:
            out.append((o, n))
    return out


def _pax_sparse_map(fo, name: str) -> list[int]:
    """The numbers of a PAX 1.0 sparse map (a count, then offset/size pairs, one decimal
    per line, GNU tar manual "PAX Format, Versions 1.0"), read block by block, bounded."""
    buf = b""
    numbers: list[int] = []
    want = None
    limit = 2 * MAX_SPARSE_CHUNKS * 21 + tarfile.BLOCKSIZE
    read = 0
    while want is None or len(numbers) < want:
        if b"\n" not in buf:
            more = fo.read(tarfile.BLOCKSIZE)
            read += len(more)
            if not more or read > limit:
                raise _TarLimit(f"PAX sparse map of {name!r} is truncated or too long")
            buf += more
            continue
        line, buf = buf.split(b"\n", 1)
        if not line.isdigit() or len(line) > 20:
            raise _TarLimit(f"PAX sparse map of {name!r}: {line[:30]!r} is not a number")
        if want is None:
            if int(line) > MAX_SPARSE_CHUNKS:
                raise _TarLimit(f"PAX sparse map of {name!r} claims {int(line)} chunks (limit {MAX_SPARSE_CHUNKS})")
            want = 2 * int(line)
        else:
            numbers.append(int(line))
    return numbers


# ----------------------------------------------------------------- members and their data


def _open_tar(stream: BinaryIO, source: str) -> tarfile.TarFile:
    """``tarfile.open`` of the decompressed stream, its errors as :class:`LayerError`.
    ``stream`` seeks forward only (:class:`_ForwardOnly`), which is all tarfile's
    seekable mode does when members are read in order and never extracted by name."""
    try:
        return tarfile.open(fileobj=stream, mode="r:", errorlevel=2, tarinfo=_BoundedTarInfo)
    except _TarLimit as e:
        raise LayerError(f"{source}: refused tar header: {e}") from None
    except tarfile.ReadError as e:
        if str(e) == "empty file":
            raise LayerError(f"{source}: the layer is empty (0 bytes after decompression): not a tar archive") from None
        raise LayerError(f"{source}: not a tar archive ({e})") from None
    except (tarfile.TarError, ValueError, OverflowError, IndexError, RecursionError) as e:
        raise LayerError(f"{source}: not a valid tar stream ({type(e).__name__}: {e})") from None


def _members(tf: tarfile.TarFile, source: str, warn: Callable[[str], None]) -> Iterator[tarfile.TarInfo]:
    """Iterate a streamed tar, tolerating a missing end-of-archive after a complete member.

    After the caller is done with a member, what is left of its data is read through
    :func:`_skip_data` (bounded; a member cut short is an error, in listings too)."""
    it = iter(tf)
    while True:
        tf._ocilearn_chain = 0  # type: ignore[attr-defined]
        try:
            m = next(it)
        except StopIteration:
            return
        except tarfile.ReadError as e:
            if str(e) == "unexpected end of data" and tf.offset > 0:
                warn(f"{source}: tar stream ends without end-of-archive blocks after its last complete entry "
                     "(accepted like umoci and Go archive/tar; umoci issue #436)")
                return
            raise LayerError(f"{source}: not a valid tar stream ({e})") from None
        except _TarLimit as e:
            raise LayerError(f"{source}: refused tar header: {e}") from None
        except tarfile.TarError as e:
            raise LayerError(f"{source}: not a valid tar stream ({e})") from None
        except (ValueError, OverflowError, IndexError, RecursionError) as e:  # tarfile's own parsers
            raise LayerError(f"{source}: not a valid tar stream ({type(e).__name__}: {e})") from None
        tf.members.clear()  # streaming: do not keep every TarInfo in memory
        yield m
        _skip_data(tf, m, source)


def _data_end(m: tarfile.TarInfo) -> int:
    """Stream offset where member ``m``'s stored data ends (sparse: the sum of its chunks)."""
    if not m.isreg():
        return m.offset_data
    stored = sum(n for _o, n in m.sparse) if m.sparse is not None else m.size
    return m.offset_data + stored


def _skip_data(tf: tarfile.TarFile, m: tarfile.TarInfo, source: str) -> None:
    """Read (and drop) what is left of ``m``'s data, in bounded chunks, so that a size
    header larger than the stream fails at the stream's end instead of letting tarfile
    'seek' forward over data that does not exist (a whiteout claiming 2**44 bytes would
    otherwise take hours). Also checks that tarfile's idea of the next header agrees
    (less than one block of padding away)."""
    fo = tf.fileobj
    end = _data_end(m)
    pos = fo.tell()
    while pos < end:
        chunk = fo.read(min(CHUNK, end - pos))
        if not chunk:
            raise LayerError(f"{source}: entry {m.name!r}: tar data ends early ({end - pos} of {end - m.offset_data} bytes missing)")
        pos += len(chunk)
    if not 0 <= tf.offset - pos < tarfile.BLOCKSIZE:
        raise LayerError(f"{source}: entry {m.name!r}: its size headers disagree (data ends at byte {end}, next header at {tf.offset})")


def _chunks(m: tarfile.TarInfo, source: str) -> list[tuple[int, int]]:
    """``[(offset in the file, bytes stored)]`` of member ``m``: one piece, or its sparse
    map checked (in order, inside the file's size, at most :data:`MAX_SPARSE_CHUNKS`)."""
    if m.sparse is None:
        return [(0, m.size)]
    if len(m.sparse) > MAX_SPARSE_CHUNKS:
        raise LayerError(f"{source}: sparse file {m.name!r} has {len(m.sparse)} chunks (limit {MAX_SPARSE_CHUNKS})")
    at = 0
    for off, n in m.sparse:
        if not (isinstance(off, int) and isinstance(n, int)) or off < at or n < 0 or off + n > m.size:
            raise LayerError(f"{source}: sparse file {m.name!r}: invalid sparse map entry ({off}, {n}) for a file of {m.size} bytes")
        at = off + n
    return [(off, n) for off, n in m.sparse if n]


def _read_exactly(fo, offset: int, size: int, m: tarfile.TarInfo, source: str) -> Iterator[tuple[int, bytes]]:
    """``size`` bytes from the tar stream ``fo`` as ``(file offset, bytes)`` pieces."""
    left = size
    while left > 0:
        chunk = fo.read(min(CHUNK, left))
        if not chunk:
            raise LayerError(f"{source}: entry {m.name!r}: tar data ends early ({left} of {size} bytes missing)")
        yield offset + size - left, chunk
        left -= len(chunk)
