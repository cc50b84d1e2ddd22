"""layer/tar.py: the read pipeline (verify, decompress, diff ID) and bounded tar reading.

Memory and hang cases run in a child interpreter with an address-space limit and a
timeout (:func:`layer_helpers.run_child`), so a regression fails fast instead of exhausting
the machine or hanging the suite."""

from __future__ import annotations

import io
import os
import struct
import tarfile
import textwrap
import warnings

import pytest
import zstandard
from layer_helpers import D, F, apply, gz, run_child, tar_bytes

from ocilearn.core.errors import DigestMismatch, LayerError, SizeMismatch
from ocilearn.image import mediatypes as mt
from ocilearn.image.digest import Digest
from ocilearn.layer.apply import apply_layer
from ocilearn.layer.listing import list_layer
from ocilearn.layer.tar import diff_id_of

# ------------------------------------------------------------------ digests


def test_diff_id_mismatch_and_blob_digest_mismatch(tmp_path):
    t = tar_bytes([F("a", b"1")])
    with pytest.raises(DigestMismatch, match="diff ID"):
        apply(tmp_path, t, diff_id=Digest.of(b"other"))
    blob = gz(t)
    with pytest.raises(DigestMismatch):
        apply_layer(tmp_path / "x" if (tmp_path / "x").mkdir() is None else None, io.BytesIO(blob), mt.OCI_LAYER_GZIP,
                      digest=Digest.of(blob + b"!"), size=len(blob))
    with pytest.raises(SizeMismatch):
        apply_layer(tmp_path / "x", io.BytesIO(blob), mt.OCI_LAYER_GZIP, digest=Digest.of(blob), size=len(blob) - 1)


def test_diff_ids_and_chain_ids_of_debian(tmp_path):
    from conftest import built_image

    from ocilearn.image.layout import ImageLayout
    from ocilearn.image.model import chain_ids

    lay = ImageLayout.open(built_image("debian"))
    img = lay.resolve("bookworm")
    cfg = lay.image_config(img)
    small = img.manifest.layers[1:]
    for d, did in zip(small, cfg.diff_ids[1:], strict=True):
        with lay.open_blob(d) as f:
            assert diff_id_of(f, d.media_type) == did
    assert chain_ids(cfg.diff_ids)[0] == cfg.diff_ids[0]
    assert chain_ids(cfg.diff_ids)[1] == Digest.of(f"{cfg.diff_ids[0]} {cfg.diff_ids[1]}".encode())



# ------------------------------------------------------------------ compression, trailing bytes, frames (RFC 1952 §2.2, RFC 8878 §3.1)


def _tar_t():
    return tar_bytes([D("etc"), F("etc/a", b"a" * 3000), F("etc/b", b"b" * 5000), F("z", os.urandom(20000))])


@pytest.mark.parametrize("variant", ["A-nul-padding", "B-garbage", "C-two-members"])
def test_gzip_trailing_bytes_and_multi_member_gzip(tmp_path, variant):
    t = _tar_t()
    if variant == "A-nul-padding":
        blob = gz(t) + b"\0" * 17
    elif variant == "B-garbage":
        blob = gz(t) + b"garbage"
    else:
        blob = gz(t[:3000]) + gz(t[3000:])
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        res = apply_layer(tmp_path, io.BytesIO(blob), mt.OCI_LAYER_GZIP, digest=Digest.of(blob), size=len(blob), diff_id=Digest.of(t))
    assert res.diff_id == Digest.of(t) and res.blob_bytes == len(blob)
    assert (tmp_path / "etc/b").read_bytes() == b"b" * 5000
    if variant == "A-nul-padding":
        assert any("17 NUL bytes" in w for w in res.warnings)
    elif variant == "B-garbage":
        assert any("7 bytes of trailing garbage" in w for w in res.warnings)  # documented policy: warn, ignore
    else:
        assert not res.warnings


def test_tar_padding_after_the_end_marker_is_hashed(tmp_path):
    t = _tar_t() + b"\0" * 4096  # extra zero blocks beyond the end-of-archive marker
    res = apply(tmp_path, t, diff_id=Digest.of(t))
    assert res[0].diff_id == Digest.of(t)


def test_truncated_gzip_is_an_error(tmp_path):
    blob = gz(_tar_t())[:-20]
    with pytest.raises(LayerError, match="truncated"):
        apply_layer(tmp_path, io.BytesIO(blob), mt.OCI_LAYER_GZIP)


def _skippable(payload: bytes, n=0) -> bytes:
    return struct.pack("<II", 0x184D2A50 + n, len(payload)) + payload


def test_zstd_several_frames_and_skippable_frames(tmp_path):
    t = _tar_t()
    c = zstandard.ZstdCompressor()
    blob = c.compress(t[:4096]) + _skippable(b'{"zstd:chunked":"manifest"}') + c.compress(t[4096:]) + _skippable(b"end", 15)
    res = apply_layer(tmp_path, io.BytesIO(blob), mt.OCI_LAYER_ZSTD, digest=Digest.of(blob), size=len(blob), diff_id=Digest.of(t))
    assert res.compression == "zstd" and res.diff_id == Digest.of(t)
    assert (tmp_path / "z").stat().st_size == 20000 and (tmp_path / "etc/a").read_bytes() == b"a" * 3000
    # a reader limited to the first frame would give a short stream: caught by the diff ID
    short = c.compress(t[:4096])
    with pytest.raises((DigestMismatch, LayerError)):
        apply_layer(tmp_path / "s" if (tmp_path / "s").mkdir() is None else None, io.BytesIO(short), mt.OCI_LAYER_ZSTD, diff_id=Digest.of(t))


def test_compression_by_magic_bytes_media_type_is_a_hint(tmp_path):
    t = _tar_t()
    cases = [
        (t, mt.OCI_LAYER_TAR, False),                                   # (a)
        (t, mt.OCI_LAYER_GZIP, True),                                   # (b) plain tar labelled +gzip
        (gz(t), mt.DOCKER_LAYER_GZIP, False),                           # (c) docker schema2 type
        (zstandard.ZstdCompressor().compress(t), mt.OCI_LAYER_GZIP, True),  # (d) zstd labelled +gzip
        (gz(t), mt.OCI_LAYER_TAR, True),                                # the reverse
    ]
    for i, (blob, mtype, warned) in enumerate(cases):
        root = tmp_path / str(i)
        root.mkdir()
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            res = apply_layer(root, io.BytesIO(blob), mtype, digest=Digest.of(blob), size=len(blob), diff_id=Digest.of(t))
        assert res.diff_id == Digest.of(t)
        assert any("the bytes decide" in w for w in res.warnings) == warned, (i, res.warnings)
        assert (root / "etc/a").read_bytes() == b"a" * 3000
    with pytest.raises(LayerError, match="not a layer media type"):
        apply_layer(tmp_path, io.BytesIO(t), mt.OCI_CONFIG)


def test_quirk_layer_without_tar_trailer_is_accepted_with_warning(tmp_path):
    from conftest import shared_path

    from ocilearn.image.layout import ImageLayout

    lay = ImageLayout.open(shared_path("images", "quirks", "umoci-insert-no-trailer"))
    img = lay.resolve("latest")
    cfg = lay.image_config(img)
    d = img.manifest.layers[0]
    with lay.open_blob(d) as f, warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        res = apply_layer(tmp_path, f, d.media_type, diff_id=cfg.diff_ids[0])
    assert (tmp_path / "hello.txt").read_bytes() == b"inserted by umoci insert\n"
    assert any("end-of-archive" in w for w in res.warnings)
    # a member whose data is cut short stays an error
    t = tar_bytes([F("big", b"x" * 5000)])
    with pytest.raises(LayerError):
        apply(tmp_path / "cut" if (tmp_path / "cut").mkdir() is None else None, t[:1500])



# ------------------------------------------------------------------ sizes are read, never trusted


def test_member_claiming_2_pow_44_bytes_fails_at_the_stream_end():
    """A 1.5 KB layer whose whiteout header claims 2**44 bytes hung apply_layer (tarfile
    'seeked' over the missing data in 10 KB reads); list_layer did the same for any file."""
    what, _ = run_child("""
        import tempfile
        t = tarfile.TarInfo(".wh.foo"); t.size = 1 << 44
        blob = t.tobuf(tarfile.GNU_FORMAT) + bytes(1024)
        out = []
        try:
            apply_layer(tempfile.mkdtemp(), io.BytesIO(blob))
        except LayerError as e:
            out.append("apply:" + str(e))
        t = tarfile.TarInfo("huge"); t.size = 1 << 44
        try:
            list_layer(io.BytesIO(t.tobuf(tarfile.GNU_FORMAT) + bytes(1024)))
        except LayerError as e:
            out.append("list:" + str(e))
        done(" | ".join(out))
    """, timeout=20)
    assert "apply:layer: entry '.wh.foo': tar data ends early (17592186043392 of 17592186044416 bytes missing)" in what
    assert "list:layer: entry 'huge': tar data ends early" in what


def test_a_truncated_member_is_an_error_in_listings_too():
    """list_layer said OK for TarInfo('huge', size=1<<30) without data; apply errored."""
    t = tarfile.TarInfo("huge")
    t.size = 1 << 30
    blob = t.tobuf(tarfile.GNU_FORMAT) + b"abc"
    with pytest.raises(LayerError, match=r"'huge': tar data ends early \(1073741821 of 1073741824 bytes missing\)"):
        list_layer(io.BytesIO(blob))
    # a complete tar lists fine, and a member cut in its data is an error in both
    good = tar_bytes([F("a", b"x" * 3000), F("b", b"y")])
    assert [e.path for e in list_layer(io.BytesIO(good))] == ["a", "b"]
    with pytest.raises(LayerError, match="ends early"):
        list_layer(io.BytesIO(good[:1800]))



# ------------------------------------------------------------------ decompression bombs


_BOMB = """
N = {n}
hdr = tarfile.TarInfo("big"); hdr.size = N
def raw_chunks():
    yield hdr.tobuf(tarfile.GNU_FORMAT)
    z = bytes(1 << 20)
    for _ in range(N >> 20):
        yield z
    yield bytes(1024)
"""


def test_gzip_bomb_decompresses_in_bounded_memory():
    """A 256 KiB gzip of 256 MiB of zeros: the old reader inflated a whole 1 MiB chunk of
    input at once (~1 GB of output per MiB; 2 MB → 3.1 GB RSS). Now ≤ 1 MiB per call."""
    what, grew = run_child(_BOMB.format(n=256 << 20) + textwrap.dedent("""
        c = zlib.compressobj(9, zlib.DEFLATED, 31)
        blob = b"".join(c.compress(x) for x in raw_chunks()) + c.flush()
        assert len(blob) < 400_000, len(blob)
        es = list_layer(io.BytesIO(blob))
        done(f"{es[0].path} {es[0].size} compressed={len(blob)}")
    """), timeout=30)
    assert what.startswith("big 268435456 compressed=")
    assert grew < 100_000, f"peak RSS grew by {grew} KiB"


def test_zstd_bomb_decompresses_in_bounded_memory():
    what, grew = run_child(_BOMB.format(n=256 << 20) + textwrap.dedent("""
        import zstandard
        c = zstandard.ZstdCompressor(level=3).compressobj()
        blob = b"".join(c.compress(x) for x in raw_chunks()) + c.flush()
        es = list_layer(io.BytesIO(blob))
        done(f"{es[0].path} {es[0].size} compressed={len(blob)}")
    """), timeout=30)
    assert what.startswith("big 268435456 compressed=")
    assert grew < 100_000, f"peak RSS grew by {grew} KiB"



# ------------------------------------------------------------------ extended headers


@pytest.mark.parametrize("kind", ["x", "L", "g"])
def test_extended_header_claiming_256_mib_is_refused_before_reading(kind):
    """A PAX ('x', 'g') or GNU long-name ('L') header claiming 3 GB made tarfile read it
    whole (7.2 GB RSS) and then raise a raw ReadError. Here: 256 MiB of real (gzip'd)
    header data; refused at the header, without reading it."""
    what, grew = run_child(f"""
        N = 256 << 20
        t = tarfile.TarInfo("././@LongLink" if {kind!r} == "L" else "././@PaxHeader")
        t.type = {{"x": tarfile.XHDTYPE, "g": tarfile.XGLTYPE, "L": tarfile.GNUTYPE_LONGNAME}}[{kind!r}]
        t.size = N
        c = zlib.compressobj(9, zlib.DEFLATED, 31)
        parts = [c.compress(t.tobuf(tarfile.GNU_FORMAT))]
        z = b"9" * (1 << 20)
        parts += [c.compress(z) for _ in range(N >> 20)]
        parts.append(c.compress(bytes(2048)) + c.flush())
        blob = b"".join(parts)
        try:
            list_layer(io.BytesIO(blob)); done("ok")
        except LayerError as e:
            done(str(e))
    """, timeout=30)
    name = {"x": "PAX extended", "g": "PAX global", "L": "GNU long name"}[kind]
    assert what == f"layer: refused tar header: {name} header at byte 0 claims 268435456 bytes (limit 1048576)"
    assert grew < 100_000, f"peak RSS grew by {grew} KiB"


def test_endless_chain_of_long_name_headers_is_refused():
    """Each GNU 'L' header makes tarfile recurse into the next: 2000 of them → RecursionError."""
    one = tarfile.TarInfo("././@LongLink")
    one.type, one.size = tarfile.GNUTYPE_LONGNAME, 3
    blob = (one.tobuf(tarfile.GNU_FORMAT) + b"abc".ljust(512, b"\0")) * 2000 + bytes(1024)
    with pytest.raises(LayerError, match=r"refused tar header: more than 16 extended headers in a row \(at byte 16384\)"):
        list_layer(io.BytesIO(blob))


def test_long_names_and_big_pax_records_within_the_limits_still_work(tmp_path):
    long_dir = "/".join(["d" * 200] * 20)  # a 4019-byte name: GNU 'L' and PAX 'path'
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        es = list_layer(io.BytesIO(tar_bytes([F(long_dir + "/f", b"long")], fmt=fmt)))
        assert es[0].path == long_dir + "/f"
    es = list_layer(io.BytesIO(tar_bytes([F("p", b"pax", **{"SCHILY.xattr.user.k": "v" * 900_000})])))
    assert es[0].xattrs == {"user.k": b"v" * 900_000}



# ------------------------------------------------------------------ not a tar


@pytest.mark.parametrize("blob,message", [
    (b"", "the layer is empty (0 bytes after decompression): not a tar archive"),
    (b"x", "not a tar archive"),
    (b"\x01" * 512, "not a tar archive"),
])
def test_garbage_is_a_layer_error(tmp_path, blob, message):
    for fn in (lambda: list_layer(io.BytesIO(blob)), lambda: apply_layer(tmp_path, io.BytesIO(blob))):
        with pytest.raises(LayerError) as ei:
            fn()
        assert message in str(ei.value) and not isinstance(ei.value, tarfile.TarError)


def test_bad_checksum_is_a_layer_error():
    t = bytearray(tar_bytes([F("a", b"x")]))
    t[148:156] = b"0000000\0"  # header checksum
    with pytest.raises(LayerError, match="not a tar archive .*checksum"):
        list_layer(io.BytesIO(bytes(t)))


def test_a_header_summed_with_signed_bytes_is_accepted(tmp_path):
    """Old Sun and NeXT tars summed the header as signed chars (GNU tar accepts both):
    a name with a byte >= 0x80 gives the two sums apart, and either one is valid."""
    name = b"caf\xe9"
    t = bytearray(tar_bytes([F("placeholder", b"data")]))
    t[0:100] = name.ljust(100, b"\0")
    t[148:156] = b" " * 8
    signed = sum(b - 256 if b > 127 else b for b in t[:512])
    unsigned = sum(t[:512])
    assert signed != unsigned
    for total in (signed, unsigned):
        t[148:156] = b"%06o\0 " % total
        (tmp_path / str(total)).mkdir()
        (res,) = apply(tmp_path / str(total), bytes(t))
        assert res.entries == 1
        assert (tmp_path / str(total) / os.fsdecode(name)).read_bytes() == b"data"
    t[148:156] = b"%06o\0 " % (unsigned + 1)
    with pytest.raises(LayerError, match="bad checksum"):
        list_layer(io.BytesIO(bytes(t)))



def test_diff_id_is_computed_with_the_algorithm_the_config_names(tmp_path):
    """config.md rootfs.diff_ids are digests (descriptor.md): a sha512 diff ID is checked
    with sha512, not refused and not compared with a sha256."""
    t = tar_bytes([F("a", b"1")])
    want = Digest.of(t, "sha512")
    (res,) = apply(tmp_path, t, diff_id=want)
    assert res.diff_id == want
    assert [e.path for e in list_layer(io.BytesIO(gz(t)), diff_id=want)] == ["a"]
    assert diff_id_of(io.BytesIO(gz(t)), algorithm="sha512") == want
    with pytest.raises(DigestMismatch, match="sha512 of the uncompressed tar"):
        apply(tmp_path, t, diff_id=Digest.of(b"other", "sha512"))


def test_extended_headers_have_a_total_budget_per_layer(tmp_path, monkeypatch):
    """Each extended header is capped at 1 MiB, but many of them cost CPU: the layer's
    total is capped too (MAX_EXTENDED_TOTAL; made small here so the test is fast)."""
    import io
    import tarfile

    from ocilearn.core.errors import LayerError
    from ocilearn.layer import tar as layer_tar

    def layer_bytes(n: int) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for i in range(n):
                info = tarfile.TarInfo(f"f{i}")
                info.pax_headers = {"comment": "x" * 3000}
                info.size = 1
                tf.addfile(info, io.BytesIO(b"a"))
        return buf.getvalue()

    monkeypatch.setattr(layer_tar, "MAX_EXTENDED_TOTAL", 20_000)
    ok = tmp_path / "ok"
    ok.mkdir()
    apply_layer(ok, io.BytesIO(layer_bytes(5)))  # ~15 kB of headers: within
    assert sorted(p.name for p in ok.iterdir()) == [f"f{i}" for i in range(5)]
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(LayerError, match="extended headers of this layer exceed 20000 bytes"):
        apply_layer(bad, io.BytesIO(layer_bytes(10)))


def _random_layer(mib: int) -> bytes:
    """A gzip layer of ``mib`` files f0, f1, … of 1 MiB of random bytes each: more than the
    pipeline's queues hold, so its threads are still busy when a test stops it."""
    return gz(tar_bytes([F(f"f{i}", os.urandom(1 << 20)) for i in range(mib)]))


def _pipeline_threads() -> list[str]:
    import threading

    return sorted(t.name for t in threading.enumerate() if t.name.startswith("ocilearn-layer-"))


def _wait_no_pipeline_threads(seconds: float = 2.0) -> list[str]:
    import time

    end = time.monotonic() + seconds
    while _pipeline_threads() and time.monotonic() < end:
        time.sleep(0.02)
    return _pipeline_threads()


def test_closing_a_layer_early_ends_every_pipeline_thread():
    """A layer abandoned after its first member (an error while applying it, a caller that
    stops) ends the pipeline's threads (read + inflate, diff ID hashing) at close(), even
    with their queues full and a stage waiting on the one before it: a notebook kernel
    unpacks many times and must not collect stuck threads."""
    from ocilearn.layer.tar import open_layer

    blob = _random_layer(40)  # 40 MiB: more than the queues hold
    assert _wait_no_pipeline_threads() == []
    layer = open_layer(io.BytesIO(blob), mt.OCI_LAYER_GZIP)
    first = next(layer.members())
    assert first.name == "f0"
    assert _pipeline_threads() == ["ocilearn-layer-hash", "ocilearn-layer-read"]
    layer.close()
    assert _wait_no_pipeline_threads() == []


def test_closing_a_layer_while_its_source_is_slow_ends_every_pipeline_thread():
    """close() while the first stage is still waiting for blob bytes (a slow registry, a
    stalled disk): once that read returns, both stages end; the hashing stage, waiting for
    the first one's next chunk, is told end of stream instead of waiting forever."""
    import threading

    from ocilearn.layer.tar import open_layer

    blob = gz(tar_bytes([F(f"f{i}", os.urandom(1 << 12) * 64) for i in range(20)]))
    gate = threading.Event()

    class Slow(io.RawIOBase):
        pos = 0

        def readable(self):
            return True

        def readinto(self, b):
            if self.pos >= len(blob) // 3:
                gate.wait()
                return 0
            n = min(len(b), 4096, len(blob) // 3 - self.pos)
            b[:n] = blob[self.pos : self.pos + n]
            self.pos += n
            return n

    layer = open_layer(Slow(), mt.OCI_LAYER_GZIP)  # read() returns what is there, like a socket
    assert next(layer.members()).name == "f0"
    layer.close()
    gate.set()
    assert _wait_no_pipeline_threads() == []


def test_a_layer_that_fails_midway_leaves_no_pipeline_thread(tmp_path):
    """A gzip stream corrupted in its middle: reading fails with a LayerError naming the
    corrupt gzip data, and no pipeline thread is left running."""
    from ocilearn.layer.tar import open_layer

    blob = bytearray(gz(tar_bytes([F(f"f{i}", os.urandom(1 << 12) * 256) for i in range(30)])))
    middle = len(blob) // 2
    blob[middle : middle + 64] = b"\xff" * 64
    with pytest.raises(LayerError, match="layer: corrupt gzip data in member 1"):
        with open_layer(io.BytesIO(bytes(blob)), mt.OCI_LAYER_GZIP) as layer:
            for m in layer.members():
                for _ in layer.data(m):
                    pass
            layer.finish()
    assert _wait_no_pipeline_threads() == []


def test_pipeline_helpers_run_at_a_lower_priority():
    """The two helper stages run at nice +5 relative to the caller (read from
    /proc/self/task/TID/stat, field 19), so a writer of many small files keeps its core."""
    import threading

    from ocilearn.layer.tar import open_layer

    def nice_of(tid: int) -> int:
        stat = open(f"/proc/self/task/{tid}/stat").read()
        return int(stat.rpartition(")")[2].split()[16])  # field 19; fields 3.. follow the ")"

    blob = _random_layer(20)
    with open_layer(io.BytesIO(blob), mt.OCI_LAYER_GZIP) as layer:
        assert next(layer.members()).name == "f0"
        helpers = {t.name: t.native_id for t in threading.enumerate() if t.name.startswith("ocilearn-layer-")}
        assert sorted(helpers) == ["ocilearn-layer-hash", "ocilearn-layer-read"]
        mine = nice_of(threading.get_native_id())
        assert {name: nice_of(tid) - mine for name, tid in helpers.items()} == {
            "ocilearn-layer-hash": 5, "ocilearn-layer-read": 5}
    assert _wait_no_pipeline_threads() == []


def test_an_interrupt_while_the_pipeline_starts_leaves_no_thread(monkeypatch):
    """A KeyboardInterrupt after the first stage started and before open_layer() returned
    (Ctrl-C in a notebook) stops that stage: nothing is left holding the blob and its queue."""
    from ocilearn.layer import tar

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(tar, "HashingReader", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tar.open_layer(io.BytesIO(_random_layer(20)), mt.OCI_LAYER_GZIP)
    assert _wait_no_pipeline_threads() == []


def test_an_interrupt_in_the_first_stage_reaches_the_reader():
    """A progress callback that raises KeyboardInterrupt runs in the first stage's thread: the
    reader gets the KeyboardInterrupt instead of waiting forever for the stage's end."""
    from ocilearn.layer.tar import open_layer

    calls = []

    def progress(n):
        calls.append(n)
        if len(calls) == 3:
            raise KeyboardInterrupt

    blob = _random_layer(20)
    with pytest.raises(KeyboardInterrupt):
        with open_layer(io.BytesIO(blob), mt.OCI_LAYER_GZIP, progress=progress) as layer:
            for m in layer.members():
                for _ in layer.data(m):
                    pass
    assert _wait_no_pipeline_threads() == []


def test_a_layer_dropped_without_close_ends_its_threads():
    """A LayerStream that nobody closes (an interrupt between open_layer() and `with`) stops
    its stages when it is garbage collected."""
    import gc

    from ocilearn.layer.tar import open_layer

    layer = open_layer(io.BytesIO(_random_layer(20)), mt.OCI_LAYER_GZIP)
    assert _pipeline_threads() == ["ocilearn-layer-hash", "ocilearn-layer-read"]
    del layer
    gc.collect()
    assert _wait_no_pipeline_threads() == []


def test_the_tar_stream_seeks_forward_only_and_stops_at_its_end():
    """tarfile reads a layer in its seekable mode through _ForwardOnly: it tells its
    position, seeks forward by reading, never backwards, and not past the end."""
    import io as _io

    from ocilearn.core.streams import ReadAhead
    from ocilearn.layer.tar import _ForwardOnly

    data = bytes(range(256)) * 40  # 10240 bytes
    stage = ReadAhead(_io.BytesIO(data))
    try:
        f = _io.BufferedReader(_ForwardOnly(stage), 4096)
        assert f.read(10) == data[:10] and f.tell() == 10
        assert f.seek(5000) == 5000 and f.read(3) == data[5000:5003]
        assert f.seek(2, _io.SEEK_CUR) == 5005
        with pytest.raises(_io.UnsupportedOperation, match="backwards"):
            f.raw.seek(100)
        assert f.seek(9000) == 9000 and f.read(4) == data[9000:9004]
        assert f.seek(50000) == 10240 and f.read(1) == b""
    finally:
        stage.close()
