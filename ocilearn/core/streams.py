"""Streams every step reads blobs through — one rule for each:

- :func:`sniff_compression`: what a blob's first bytes say it is (gzip, zstd or plain).
  The bytes decide, not the media type: image-spec media-types.md lets a registry serve a
  layer whose media type and bytes disagree, and umoci and containerd go by the bytes too.
- :class:`CountingReader`: counts (and reports) the bytes read; puts back bytes already
  read from the front of the stream (the "head" that was sniffed).
- :class:`GzipReader`: gzip with several members (RFC 1952 §2.2: "a gzip file consists of a
  series of members"), NUL padding and trailing garbage tolerated with a warning, bounded
  memory whatever the compression ratio.
- :func:`open_decompressed`: the right decoder for a sniffed compression.
- :class:`HashingReader`: a digest and byte count of what passes through.
- :class:`ReadAhead`: reads a stream ahead in a helper thread, so that receiving,
  inflating and hashing (which release the GIL) overlap with the caller's writes.

All of them are binary, file-like readers (``read(n)``, ``readinto(b)``, ``close()``).
"""

from __future__ import annotations

import contextvars
import hashlib
import io
import os
import queue
import threading
import zlib
from typing import BinaryIO, Callable

try:  # ISA-L's inflate (the ``isal`` package) decodes deflate about 2x faster than zlib;
    # it has the same decompressobj interface (max_length, unconsumed_tail, unused_data,
    # eof), so GzipReader's checks are the same with either. Optional: without it, zlib.
    from isal import isal_zlib as _inflate
    _INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error, _inflate.error)
except ImportError:  # pragma: no cover - depends on the environment
    _inflate = zlib  # type: ignore[assignment]
    _INFLATE_ERRORS = (zlib.error,)

from .errors import OcilearnError

CHUNK = 1 << 20  # bytes per read
GZIP_MAGIC = b"\x1f\x8b"  # RFC 1952 §2.3.1 ID1 ID2
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # RFC 8878 §3.1.1 Magic_Number (little-endian 0xFD2FB528)


def sniff_compression(head: bytes) -> str:
    """``"gzip"``, ``"zstd"`` or ``"none"`` from a blob's first bytes (4 are enough).

    Source: RFC 1952 §2.3.1 (gzip ID1 ID2), RFC 8878 §3.1.1 (zstd magic number)."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


class ByteReader(io.RawIOBase):
    """A readable raw stream whose subclasses implement only ``read(n)``: ``readinto``
    (what :class:`io.BufferedReader` and :mod:`tarfile` call) copies from it."""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class CountingReader(ByteReader):
    """Reads ``raw``, first giving back ``head`` (bytes already read from its front);
    ``count`` is the number of bytes read so far and ``progress(n)`` is called with each
    count. ``close()`` closes ``raw`` unless ``close_raw`` is false (a stream the caller
    owns)."""

    def __init__(self, raw: BinaryIO, head: bytes = b"", progress: Callable[[int], None] | None = None,
                 *, close_raw: bool = True) -> None:
        super().__init__()
        self.raw, self.head, self.progress, self.count = raw, head, progress, 0
        self._close_raw = close_raw

    def read(self, n: int | None = -1) -> bytes:
        if self.head:
            if n is None or n < 0:
                out, self.head = self.head + self.raw.read(), b""
            else:
                out, self.head = self.head[:n], self.head[n:]
        else:
            out = self.raw.read(CHUNK if n is None or n < 0 else n)
        if out:
            self.count += len(out)
            if self.progress:
                self.progress(len(out))
        return out

    def close(self) -> None:
        if not self.closed and self._close_raw:
            self.raw.close()
        super().close()


class GzipReader(ByteReader):
    """The uncompressed bytes of a gzip stream of one or more members.

    After the last member, NUL padding and trailing garbage are tolerated (as ``gzip -d``
    and umoci do) and reported through ``warn(message)``; the blob digest still covers
    them. Memory is bounded whatever the compression ratio (a gzip bomb): each
    ``decompress`` call is limited to ``CHUNK`` bytes of output (``max_length``) and the
    input zlib did not consume yet stays in ``unconsumed_tail`` (zlib module docs).

    Raises:
        ``error`` (an OcilearnError subclass, given by the caller) naming ``source``: corrupt
        data, or a stream that ends inside a member.
    """

    def __init__(self, raw, source: str, warn: Callable[[str], None], error: type[OcilearnError] = OcilearnError) -> None:
        super().__init__()
        self.raw, self.source, self.warn, self.error = raw, source, warn, error
        self.d = _inflate.decompressobj(31)
        self.members = 1
        self.buf = b""
        self.pos = 0
        self.inbuf = b""  # compressed bytes not yet given to zlib (or its unconsumed_tail)
        self.more = False  # the last decompress() hit max_length: zlib may hold more output
        self.after = False  # the current member ended; looking at what follows
        self.pending = b""
        self.padding = 0
        self.garbage = 0
        self.done = False

    def _after_member(self, data: bytes) -> bytes:
        """Look at the bytes after a member's end: a new member, NUL padding or garbage.
        Returns the compressed bytes of a new member to decode (b"" when none)."""
        if self.garbage:
            self.garbage += len(data)
            return b""
        data = self.pending + data
        self.pending = b""
        stripped = data.lstrip(b"\0")
        self.padding += len(data) - len(stripped)
        data = stripped
        if not data:
            return b""
        if len(data) < 2 and data == GZIP_MAGIC[: len(data)]:
            self.pending = data
            return b""
        if data.startswith(GZIP_MAGIC) and not self.padding:
            self.d = _inflate.decompressobj(31)
            self.members += 1
            self.after = False
            return data
        self.garbage = len(data)
        return b""

    def _produce(self) -> bytes:
        """Up to ``CHUNK`` decompressed bytes; b"" only at the end of the stream."""
        while True:
            if not self.inbuf and not self.more:
                chunk = self.raw.read(CHUNK)
                if not chunk:
                    self._end()
                    return b""
                if self.after:
                    self.inbuf = self._after_member(chunk)
                    continue
                self.inbuf = chunk
            try:
                out = self.d.decompress(self.inbuf, CHUNK)
            except _INFLATE_ERRORS as e:
                raise self.error(f"{self.source}: corrupt gzip data in member {self.members} ({e})") from None
            self.more = len(out) >= CHUNK
            if self.d.eof:
                self.more = False
                self.after = True
                rest = self.d.unused_data
                self.inbuf = self._after_member(rest) if rest else b""
            else:
                self.inbuf = self.d.unconsumed_tail
            if out:
                return out

    def _end(self) -> None:
        self.done = True
        if not self.after:
            raise self.error(f"{self.source}: gzip stream is truncated (no end of member {self.members})")
        if self.pending:
            self.garbage += len(self.pending)
        if self.padding:
            self.warn(f"{self.source}: {self.padding} NUL bytes of padding after the gzip stream (ignored, covered by the blob digest)")
        if self.garbage:
            self.warn(f"{self.source}: {self.garbage} bytes of trailing garbage after the gzip stream (ignored like umoci and gzip -d; covered by the blob digest)")

    def read(self, n: int | None = -1) -> bytes:
        if self.pos >= len(self.buf) and not self.done:
            self.buf, self.pos = self._produce(), 0
        if n is None or n < 0:
            n = len(self.buf) - self.pos
        out = self.buf[self.pos : self.pos + n]
        self.pos += len(out)
        return out


def open_decompressed(raw: BinaryIO, compression: str, *, source: str, warn: Callable[[str], None],
                      error: type[OcilearnError] = OcilearnError) -> BinaryIO:
    """A reader of the uncompressed bytes of ``raw`` for a ``compression`` from
    :func:`sniff_compression`: :class:`GzipReader` for gzip, zstandard's stream reader
    across all frames for zstd (RFC 8878 §3.1: a stream is a sequence of frames), ``raw``
    itself for ``"none"``. Closing the result does not close ``raw``.

    Raises:
        ValueError: an unknown ``compression`` name.
    """
    if compression == "gzip":
        return GzipReader(raw, source, warn, error)  # type: ignore[return-value]
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, read_size=CHUNK, read_across_frames=True, closefd=False)  # type: ignore[return-value]
    if compression == "none":
        return raw
    raise ValueError(f"unknown compression {compression!r}")


class HashingReader(ByteReader):
    """Hashes (``algorithm``, a :mod:`hashlib` name such as ``"sha256"``) and counts the
    bytes read through it; ``hexdigest`` and ``count`` tell the result so far. ``drain()``
    reads to the end and returns how many bytes that was."""

    def __init__(self, raw, algorithm: str = "sha256") -> None:
        super().__init__()
        self.raw, self.algorithm = raw, algorithm
        self.hash = hashlib.new(algorithm)
        self.count = 0

    def read(self, n: int | None = -1) -> bytes:
        data = self.raw.read(CHUNK if n is None or n < 0 else n)
        if data:
            self.hash.update(data)
            self.count += len(data)
        return data

    def drain(self) -> int:
        left = 0
        while data := self.read(CHUNK):
            left += len(data)
        return left

    @property
    def hexdigest(self) -> str:
        return self.hash.hexdigest()


class ReadAhead(ByteReader):
    """Runs ``source.read`` in a helper thread, at most ``depth`` chunks of ``CHUNK`` bytes
    ahead (bounded memory), so that network reads, inflating and hashing — all of which
    release the GIL — overlap with what the reader does with the bytes.

    The thread runs in a copy of the caller's :mod:`contextvars` context (narration keeps
    recording). An exception in the thread is re-raised in the reader; ``wrap_error`` may
    turn an unexpected one (a zlib or zstd error) into a library error first.
    ``close()`` stops the thread, and closes ``source`` when ``close_source`` is true.
    ``nice`` > 0 lowers the thread's scheduling priority by that much (nice(7)), so that
    when the cores are contended the reader — the critical path when it is slow, as a
    writer of many small files is — runs first, and the helper takes the idle time.
    """

    _END = object()

    def __init__(self, source, depth: int = 8, *, wrap_error: Callable[[Exception], Exception] | None = None,
                 close_source: bool = False, name: str = "ocilearn-read-ahead", nice: int = 0) -> None:
        super().__init__()
        self._source, self._wrap, self._close_source, self._nice = source, wrap_error, close_source, nice
        self._q: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._buf = b""
        self._pos = 0
        self._eof = False
        ctx = contextvars.copy_context()
        self._thread = threading.Thread(target=ctx.run, args=(self._run,), name=name, daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        if self._nice:  # this thread only: on Linux a TID is a valid PRIO_PROCESS target (setpriority(2))
            try:
                tid = threading.get_native_id()
                os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + self._nice)
            except OSError:
                pass  # a lower priority is only a scheduling hint
        try:
            while not self._stop.is_set():
                chunk = self._source.read(CHUNK)
                if not chunk:
                    self._put(self._END)
                    return
                if not self._put(chunk):
                    return
        except Exception as e:  # handed to the reader
            self._put(self._wrap(e) if self._wrap and not isinstance(e, OcilearnError | OSError) else e)
        except BaseException as e:  # KeyboardInterrupt or SystemExit raised in a callback here: the
            self._put(e)            # reader gets it too, instead of waiting for an end that never comes

    def _fill(self) -> bool:
        if self._pos < len(self._buf):
            return True
        if self._eof:
            return False
        while True:  # wait for the thread, but not past close(): a stage reading from
            try:     # this one (a pipeline of ReadAheads) is then told end of stream
                item = self._q.get(timeout=0.1)
                break
            except queue.Empty:
                if self._stop.is_set():
                    self._eof = True
                    return False
        if item is self._END:
            self._eof = True
            self._thread.join()
            return False
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        self._buf, self._pos = item, 0
        return True

    def read(self, n: int | None = -1) -> bytes:
        if not self._fill():
            return b""
        if n is None or n < 0:
            n = len(self._buf) - self._pos
        if self._pos == 0 and n >= len(self._buf):
            out, self._buf = self._buf, b""
            return out
        out = self._buf[self._pos : self._pos + n]
        self._pos += len(out)
        return out

    def readinto(self, b) -> int:
        if not self._fill():
            return 0
        n = min(len(b), len(self._buf) - self._pos)
        with memoryview(self._buf) as view:  # one copy, into b (a slice of bytes would copy twice)
            b[:n] = view[self._pos : self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._stop.set()
            if self._close_source:
                self._thread.join(timeout=5)
                self._source.close()
        super().close()


__all__ = ["CHUNK", "GZIP_MAGIC", "ZSTD_MAGIC", "sniff_compression", "ByteReader", "CountingReader", "GzipReader",
           "open_decompressed", "HashingReader", "ReadAhead"]
