"""Content digests: parse, compute and verify (image-spec descriptor.md "Digests").

A digest is ``algorithm ":" encoded``, for example
``sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b``.
The grammar is checked *before* a digest is ever used to build a file path
(``blobs/sha256/<hex>``) or a URL (``/v2/<name>/blobs/<digest>``), so a hostile
document cannot smuggle ``../`` or ``/`` into either (CVE-2024-3727).

The reference commands for this module are ``sha256sum FILE`` and
``skopeo inspect --raw``.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from typing import BinaryIO

from ..core.errors import DigestMismatch, InvalidDigest, SizeMismatch, UnsupportedAlgorithm

# descriptor.md: algorithm-component ::= [a-z0-9]+ ; algorithm-separator ::= [+._-]
_ALGORITHM = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*\Z")
# descriptor.md: encoded ::= [a-zA-Z0-9=_-]+
_ENCODED = re.compile(r"[a-zA-Z0-9=_-]+\Z")
# Registered algorithms: lowercase hex of a fixed length.
REGISTERED = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[a-f0-9]+\Z")

CHUNK = 1 << 20  # bytes read at a time when hashing files


@dataclass(frozen=True, order=True)
class Digest:
    """A validated content digest.

    Attributes:
        algorithm: e.g. ``"sha256"``; matches descriptor.md's algorithm grammar.
        encoded: e.g. 64 lowercase hex characters for sha256.

    Build one with :meth:`parse` (validates) or :meth:`of` (computes). ``str(d)`` gives
    the ``algorithm:encoded`` form; ``d.short`` the first 12 hex characters, as tools show.
    """

    algorithm: str
    encoded: str

    def __post_init__(self) -> None:
        validate_parts(self.algorithm, self.encoded, f"{self.algorithm}:{self.encoded}")

    @classmethod
    def parse(cls, value: object) -> "Digest":
        """Parse and validate ``"algorithm:encoded"``.

        Raises:
            InvalidDigest: not a string, no ``:``, a bad algorithm or encoding, or for
                sha256/sha512 anything but lowercase hex of exactly 64/128 characters.
        """
        if isinstance(value, Digest):
            return value
        if not isinstance(value, str):
            raise InvalidDigest(f"digest must be a string, got {type(value).__name__}: {value!r}")
        algorithm, sep, encoded = value.partition(":")
        if not sep:
            raise InvalidDigest(f"invalid digest {value!r}: expected 'algorithm:encoded' (descriptor.md 'Digests')")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> "Digest":
        """The digest of ``data`` (bytes) with ``algorithm`` (``sha256`` or ``sha512``)."""
        h = new_hasher(algorithm)
        h.update(data)
        return cls(algorithm, h.hexdigest())

    @classmethod
    def of_file(cls, path, algorithm: str = "sha256") -> "Digest":
        """The digest of a file's bytes, read in 1 MiB chunks (like ``sha256sum``)."""
        h = new_hasher(algorithm)
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        return cls(algorithm, h.hexdigest())

    def hasher(self):
        """A fresh ``hashlib`` object for this digest's algorithm.

        Raises:
            UnsupportedAlgorithm: for an algorithm other than sha256/sha512.
        """
        return new_hasher(self.algorithm)

    @property
    def short(self) -> str:
        """The first 12 characters of the encoded part, as ``docker images`` shows them."""
        return self.encoded[:12]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"

    def __repr__(self) -> str:
        return f"Digest('{self}')"


def validate_parts(algorithm: str, encoded: str, shown: str = "") -> None:
    """Check the two parts of a digest string ``algorithm:encoded`` (image-spec
    descriptor.md "Digests" grammar and "Registered algorithms").

    Args:
        algorithm: e.g. ``"sha256"``; must match ``[a-z0-9]+([+._-][a-z0-9]+)*``.
        encoded: the hex (or other) part; ``[a-zA-Z0-9=_-]+``, and for a registered
            algorithm exactly its length in lowercase hex (64 for sha256, 128 for sha512).
        shown: the whole string as the caller saw it, for the message.

    Raises:
        InvalidDigest: naming the digest and the rule it breaks. Nothing that fails here
        ever becomes a file name or a URL.
    """
    shown = shown or f"{algorithm}:{encoded}"
    if not isinstance(algorithm, str) or not _ALGORITHM.match(algorithm):
        raise InvalidDigest(
            f"invalid digest {shown!r}: algorithm must match [a-z0-9]+([+._-][a-z0-9]+)* (descriptor.md 'Digests')"
        )
    if not isinstance(encoded, str) or not _ENCODED.match(encoded):
        raise InvalidDigest(f"invalid digest {shown!r}: encoded part must match [a-zA-Z0-9=_-]+ (descriptor.md 'Digests')")
    want = REGISTERED.get(algorithm)
    if want is not None and (len(encoded) != want or not _HEX.match(encoded)):
        found = f"{len(encoded)} characters" if len(encoded) != want else f"{want} characters that are not all lowercase hex"
        raise InvalidDigest(
            f"invalid digest {shown!r}: {algorithm} needs exactly {want} lowercase hex characters, "
            f"got {found} (descriptor.md 'Registered algorithms')"
        )


def new_hasher(algorithm: str):
    """A ``hashlib`` object for ``sha256`` or ``sha512``.

    Raises:
        UnsupportedAlgorithm: any other algorithm.
    """
    if algorithm not in REGISTERED:
        raise UnsupportedAlgorithm(f"digest algorithm {algorithm!r} is not supported (use sha256 or sha512)")
    return hashlib.new(algorithm)


def is_valid(value: object) -> bool:
    """True when ``value`` parses as a :class:`Digest`."""
    try:
        Digest.parse(value)
    except InvalidDigest:
        return False
    return True


class VerifyingReader(io.RawIOBase):
    """A read-only stream that hashes and counts what passes through it.

    Wraps ``raw`` (any object with ``read(n)``). When ``raw`` reaches end-of-file, or when
    :meth:`verify` is called, the bytes seen are compared with ``expected`` (a
    :class:`Digest`) and ``size`` (bytes; ``None`` = unknown). Reading more than ``size``
    bytes fails at once, so a lying server cannot make us buffer without end.

    Raises (from ``read``/``verify``):
        SizeMismatch: more bytes than ``size``, or fewer at end-of-file.
        DigestMismatch: the bytes hash to another digest.

    Source: image-spec descriptor.md "Verification".
    """

    def __init__(self, raw: BinaryIO, expected: Digest, size: int | None = None, source: str = "") -> None:
        super().__init__()
        self._raw = raw
        self.expected = Digest.parse(expected)
        self.size = size
        self.source = source or str(self.expected)
        self._hash = self.expected.hasher()
        self.count = 0
        self.verified = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        view = memoryview(b)
        want = len(view)
        if self.size is not None:
            # read one byte past the promised size so an oversized blob is noticed
            want = min(want, max(self.size - self.count, 0) + 1)
        data = self._raw.read(want)
        if not data:
            self.verify()
            return 0
        n = len(data)
        self.count += n
        if self.size is not None and self.count > self.size:
            raise SizeMismatch(self.size, self.count, self.source, at_least=True)
        self._hash.update(data)
        view[:n] = data
        return n

    def read_all(self) -> bytes:
        """Read to end-of-file and verify; returns the bytes."""
        out = bytearray()
        while chunk := self.read(CHUNK):
            out += chunk
        self.verify()
        return bytes(out)

    def drain(self) -> None:
        """Read and discard the rest of the stream, then verify."""
        while self.read(CHUNK):
            pass
        self.verify()

    def verify(self) -> Digest:
        """Check size and digest of everything read so far; returns the digest.

        Raises:
            SizeMismatch, DigestMismatch: see the class docstring.
        """
        if self.verified:
            return self.expected
        if self.size is not None and self.count != self.size:
            raise SizeMismatch(self.size, self.count, self.source)
        actual = Digest(self.expected.algorithm, self._hash.hexdigest())
        if actual != self.expected:
            raise DigestMismatch(self.expected, actual, self.source)
        self.verified = True
        return actual

    def close(self) -> None:
        try:
            close = getattr(self._raw, "close", None)
            if close:
                close()
        finally:
            super().close()


def verify_bytes(data: bytes, expected: Digest | str, size: int | None = None, source: str = "") -> None:
    """Check ``data`` against a digest and (optionally) a size in bytes.

    Raises:
        SizeMismatch, DigestMismatch: with ``source`` named in the message.
    """
    expected = Digest.parse(expected)
    if size is not None and len(data) != size:
        raise SizeMismatch(size, len(data), source or str(expected))
    actual = Digest.of(data, expected.algorithm)
    if actual != expected:
        raise DigestMismatch(expected, actual, source or str(expected))


