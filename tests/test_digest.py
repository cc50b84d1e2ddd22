"""ocilearn.image.digest: grammar (descriptor.md "Digests"), computing, streaming verification."""

from __future__ import annotations

import hashlib
import io
import subprocess

import pytest

from ocilearn.core.errors import DigestMismatch, InvalidDigest, SizeMismatch, UnsupportedAlgorithm
from ocilearn.image.digest import Digest, VerifyingReader, is_valid, new_hasher, verify_bytes

HELLO_SHA256 = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"  # sha256("hello\n")


def test_of_matches_sha256sum(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"hello\n")
    out = subprocess.run(["sha256sum", str(p)], capture_output=True, text=True, check=True).stdout.split()[0]
    assert out == HELLO_SHA256
    assert str(Digest.of(b"hello\n")) == f"sha256:{HELLO_SHA256}"
    assert Digest.of_file(p) == Digest("sha256", HELLO_SHA256)
    assert Digest.of(b"hello\n").short == HELLO_SHA256[:12]


def test_sha512_computed_and_parsed(tmp_path):
    d = Digest.of(b"hello\n", "sha512")
    assert d.algorithm == "sha512" and d.encoded == hashlib.sha512(b"hello\n").hexdigest()
    assert Digest.parse(str(d)) == d
    p = tmp_path / "big"
    p.write_bytes(b"x" * (3 * 1024 * 1024 + 7))  # crosses the 1 MiB read chunk
    assert Digest.of_file(p, "sha512").encoded == hashlib.sha512(p.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "bad",
    [
        "sha256:../../../../tmp/ocilearn-victim/x",
        "sha256:" + "a" * 63,
        "sha256:" + "A" * 64,
        "sha256:abc/../def",
        "sha256:" + "a" * 62 + "%2F",
        "sha256:" + "a" * 63 + "?",
        "sha512:" + "a" * 64,
        "SHA256:" + "a" * 64,
        "sha256",
        ":" + "a" * 64,
        "sha256:",
        "sha256+:abc",
        "",
        None,
        12,
    ],
)
def test_invalid_digest_strings_are_rejected(bad):
    with pytest.raises(InvalidDigest) as e:
        Digest.parse(bad)
    assert "descriptor.md" in str(e.value) or "digest" in str(e.value)
    assert not is_valid(bad)


def test_unregistered_algorithm_parses_but_cannot_hash():
    d = Digest.parse("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8")
    assert d.algorithm == "multihash+base58"
    with pytest.raises(UnsupportedAlgorithm):
        d.hasher()
    with pytest.raises(UnsupportedAlgorithm):
        new_hasher("md5")


def test_verifying_reader_accepts_exact_content():
    r = VerifyingReader(io.BytesIO(b"hello\n"), Digest("sha256", HELLO_SHA256), 6, source="test blob")
    assert r.read_all() == b"hello\n"
    assert r.verified


def test_verifying_reader_digest_mismatch_names_both_digests():
    wrong = Digest.of(b"other")
    r = VerifyingReader(io.BytesIO(b"hello\n"), wrong, 6, source="blob X")
    with pytest.raises(DigestMismatch) as e:
        r.read_all()
    msg = str(e.value)
    assert str(wrong) in msg and HELLO_SHA256 in msg and "blob X" in msg
    assert e.value.expected == wrong and e.value.actual == Digest("sha256", HELLO_SHA256)


def test_verifying_reader_too_long_fails_early_and_too_short_at_end():
    d = Digest("sha256", HELLO_SHA256)
    r = VerifyingReader(io.BytesIO(b"hello\n" + b"x" * 100), d, 6)
    with pytest.raises(SizeMismatch) as e:
        r.read(1 << 20)
        r.read(1 << 20)
    assert e.value.expected == 6 and e.value.actual == 7  # stopped one byte past the size
    r2 = VerifyingReader(io.BytesIO(b"hell"), d, 6)
    with pytest.raises(SizeMismatch) as e2:
        r2.read_all()
    assert (e2.value.expected, e2.value.actual) == (6, 4)


def test_verify_bytes():
    verify_bytes(b"hello\n", f"sha256:{HELLO_SHA256}", 6)
    with pytest.raises(SizeMismatch):
        verify_bytes(b"hello\n", f"sha256:{HELLO_SHA256}", 5)
    with pytest.raises(DigestMismatch):
        verify_bytes(b"hellO\n", f"sha256:{HELLO_SHA256}", 6)
