"""Hostile layers from the security report (/work/brief/hostile-report.md): each test is
built from the report's reproduction and names its finding number.

Memory and hang findings run in a child interpreter with an address-space limit
(``RLIMIT_AS``) and a timeout, so a regression fails fast instead of exhausting the
machine or hanging the suite. The child prints its peak RSS growth (``ru_maxrss``)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
import textwrap
import warnings

import pytest
from conftest import REPO
from layer_helpers import D, F, S, apply, tar_bytes, tree

from ocilearn.core import fsutil
from ocilearn.core.errors import LayerError
from ocilearn.layer.apply import apply_layer
from ocilearn.layer.listing import list_layer
from ocilearn.layer.tar import LayerWarning

AS_LIMIT = 1 << 30  # bytes of address space for the child (threads reserve stacks too)

_PRELUDE = """
import io, os, resource, sys, tarfile, zlib
sys.path.insert(0, {tests!r})
from ocilearn.core import fsutil
from ocilearn.layer.apply import apply_layer
from ocilearn.layer.listing import list_layer
from ocilearn.layer.tar import LayerWarning
from ocilearn.core.errors import LayerError
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
def done(what):
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    print("RESULT", what, "RSS_GREW_KB", grew, flush=True)
"""


def run_child(body: str, timeout: float = 20) -> tuple[str, int]:
    """Run ``body`` in a fresh interpreter (RLIMIT_AS = 1 GiB, ``timeout`` seconds);
    returns (the text after RESULT, peak RSS growth in KiB)."""
    import resource

    code = _PRELUDE.format(tests=str(REPO / "tests")) + textwrap.dedent(body)

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))

    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                           preexec_fn=limit, cwd=REPO)
    except subprocess.TimeoutExpired:
        pytest.fail(f"child did not finish within {timeout} s (the hang is back)")
    line = next((x for x in p.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert p.returncode == 0 and line, f"child failed rc={p.returncode}\nstdout={p.stdout}\nstderr={p.stderr[-3000:]}"
    what, _, grew = line[len("RESULT "):].rpartition(" RSS_GREW_KB ")
    return what, int(grew)


# ------------------------------------------------------------------ #5 huge size on skipped data


def test_h05_whiteout_claiming_2_pow_44_bytes_fails_fast():
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


def test_h20_list_layer_fails_on_a_truncated_member():
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


def _pax_sparse(realsize: int, mapstr: str, data: bytes = b"") -> bytes:
    t = tarfile.TarInfo("GNUSparseFile.0/s")
    t.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "s", "GNU.sparse.realsize": str(realsize)}
    blk = mapstr.encode()
    blk += b"\0" * (-len(blk) % 512)
    t.size = len(blk) + len(data)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        tf.addfile(t, io.BytesIO(blk + data))
    return buf.getvalue()


def test_h05b_huge_sparse_file_is_written_from_its_map(tmp_path):
    """realsize 2**40 with one 4-byte chunk: written by seeking, not by generating 1 TiB
    of zeros (2**33 took 19 s, 2**62 never ended)."""
    apply_layer(tmp_path, io.BytesIO(_pax_sparse(2**40, "1\n0\n4\n", b"abcd")))
    st = os.stat(tmp_path / "s")
    assert st.st_size == 2**40 and st.st_blocks <= 64
    with open(tmp_path / "s", "rb") as f:
        assert f.read(4) == b"abcd"
        f.seek(2**40 - 4)
        assert f.read() == b"\0" * 4


def test_h05b_sparse_realsize_2_pow_62_and_absurd_map_are_errors(tmp_path):
    blobs = [_pax_sparse(2**62, "1\n0\n4\n", b"abcd"), _pax_sparse(10, "1000000000\n0\n4\n", b"abcd"),
             _pax_sparse(10, "1\n8\n4\n", b"abcd")]
    what, _ = run_child(f"""
        out = []
        for blob in {blobs!r}:
            try:
                apply_layer({str(tmp_path)!r}, io.BytesIO(blob)); out.append("ok")
            except LayerError as e:
                out.append(str(e))
        done(" | ".join(out))
    """, timeout=20)
    big, many, past_end = what.split(" | ")
    assert big.startswith("layer: cannot apply entry 's': [Errno 27] File too large")
    assert many == "layer: refused tar header: PAX sparse map of 'GNUSparseFile.0/s' claims 1000000000 chunks (limit 262144)"
    assert past_end == "layer: sparse file 's': invalid sparse map entry (8, 4) for a file of 10 bytes"


# ------------------------------------------------------------------ #6 decompression bombs


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


def test_h06_gzip_bomb_decompresses_in_bounded_memory():
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


def test_h06_zstd_bomb_decompresses_in_bounded_memory():
    what, grew = run_child(_BOMB.format(n=256 << 20) + textwrap.dedent("""
        import zstandard
        c = zstandard.ZstdCompressor(level=3).compressobj()
        blob = b"".join(c.compress(x) for x in raw_chunks()) + c.flush()
        es = list_layer(io.BytesIO(blob))
        done(f"{es[0].path} {es[0].size} compressed={len(blob)}")
    """), timeout=30)
    assert what.startswith("big 268435456 compressed=")
    assert grew < 100_000, f"peak RSS grew by {grew} KiB"


# ------------------------------------------------------------------ #7 huge extended headers


@pytest.mark.parametrize("kind", ["x", "L", "g"])
def test_h07_extended_header_claiming_256_mib_is_refused_before_reading(kind):
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


def test_h07_endless_chain_of_long_name_headers_is_refused():
    """Each GNU 'L' header makes tarfile recurse into the next: 2000 of them → RecursionError."""
    one = tarfile.TarInfo("././@LongLink")
    one.type, one.size = tarfile.GNUTYPE_LONGNAME, 3
    blob = (one.tobuf(tarfile.GNU_FORMAT) + b"abc".ljust(512, b"\0")) * 2000 + bytes(1024)
    with pytest.raises(LayerError, match=r"refused tar header: more than 16 extended headers in a row \(at byte 16384\)"):
        list_layer(io.BytesIO(blob))


def test_h07_long_names_and_big_pax_records_within_the_limits_still_work(tmp_path):
    long_dir = "/".join(["d" * 200] * 20)  # a 4019-byte name: GNU 'L' and PAX 'path'
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        es = list_layer(io.BytesIO(tar_bytes([F(long_dir + "/f", b"long")], fmt=fmt)))
        assert es[0].path == long_dir + "/f"
    es = list_layer(io.BytesIO(tar_bytes([F("p", b"pax", **{"SCHILY.xattr.user.k": "v" * 900_000})])))
    assert es[0].xattrs == {"user.k": b"v" * 900_000}


# ------------------------------------------------------------------ #12 garbage


@pytest.mark.parametrize("blob,message", [
    (b"", "the layer is empty (0 bytes after decompression): not a tar archive"),
    (b"x", "not a tar archive"),
    (b"\x01" * 512, "not a tar archive"),
])
def test_h12_garbage_is_a_layer_error(tmp_path, blob, message):
    for fn in (lambda: list_layer(io.BytesIO(blob)), lambda: apply_layer(tmp_path, io.BytesIO(blob))):
        with pytest.raises(LayerError) as ei:
            fn()
        assert message in str(ei.value) and not isinstance(ei.value, tarfile.TarError)


def test_h12_bad_checksum_is_a_layer_error():
    t = bytearray(tar_bytes([F("a", b"x")]))
    t[148:156] = b"0000000\0"  # header checksum
    with pytest.raises(LayerError, match="not a tar archive .*checksum"):
        list_layer(io.BytesIO(bytes(t)))


# ------------------------------------------------------------------ #15 numbers


def _pax(name: str, data: bytes, headers: dict) -> bytes:
    """A PAX 'x' header with ``headers`` verbatim (tarfile's writer would check them) + a file."""
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    x = tarfile.TarInfo._create_pax_generic_header(headers, tarfile.XHDTYPE, "utf-8")
    return x + ti.tobuf(tarfile.USTAR_FORMAT) + data.ljust(512, b"\0") + bytes(1024)


@pytest.mark.parametrize("headers,message", [
    ({"uid": str(2**40)}, "uid 1099511627776 is out of range (0..4294967295)"),
    ({"gid": "-5"}, "gid -5 is out of range"),
    ({"mtime": "nan"}, "mtime nan is not a finite number of seconds"),
    ({"mtime": "inf"}, "mtime inf is not a finite number of seconds"),
])
def test_h15_out_of_range_numbers_are_layer_errors(tmp_path, headers, message):
    blob = _pax("u", b"x", headers)
    for fn in (lambda: list_layer(io.BytesIO(blob)), lambda: apply_layer(tmp_path, io.BytesIO(blob))):
        with pytest.raises(LayerError, match=f"entry 'u': {message}".replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
            fn()


def test_h15_huge_finite_mtime_is_clamped(tmp_path):
    with pytest.warns(LayerWarning, match=r"mtime 1e\+300 s clamped to ±9223372036 s"):
        (res,) = apply(tmp_path, _pax("m", b"x", {"mtime": "1e300"}))
    assert (tmp_path / "m").read_bytes() == b"x"
    assert os.stat(tmp_path / "m").st_mtime > 1e9  # the file system's latest time, not an error
    with pytest.warns(LayerWarning):
        (e,) = list_layer(io.BytesIO(_pax("m", b"x", {"mtime": "-1e300"})))
    assert e.mtime == -9223372036.0 and e.tar_line().startswith("-rw-r--r-- 0/0")


# ------------------------------------------------------------------ #11 deep trees


DEEP = 1500  # levels: Python's recursion limit is 1000


@pytest.fixture
def deep_tmp(tmp_path):
    """tmp_path, emptied with remove_tree_at afterwards (pytest's own cleanup of old
    temp dirs uses the recursive shutil.rmtree, which a 1500-level tree would break)."""
    yield tmp_path
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in os.listdir(fd):
            fsutil.remove_tree_at(fd, name)
    finally:
        os.close(fd)


def _deep_layer(n: int = DEEP) -> bytes:
    return tar_bytes([F("/".join(["d"] * n) + "/f", b"deep")])


@pytest.mark.parametrize("top", [
    [F(".wh.d")],                       # whiteout of the top
    [F("d/.wh..wh..opq")],              # opaque marker at the top
    [F("d", b"file over the tree")],    # a file replacing the top
])
def test_h11_whiteout_opaque_or_replace_of_a_1500_level_tree(deep_tmp, top):
    """The recursive _rmtree/_clear_dir raised RecursionError at ~1000 levels."""
    apply(deep_tmp, _deep_layer())
    assert os.path.isfile(deep_tmp / "/".join(["d"] * DEEP) / "f")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LayerWarning)
        apply(deep_tmp, tar_bytes(top))
    names = os.listdir(deep_tmp)
    if top[0][1] == "d/.wh..wh..opq":
        assert names == ["d"] and os.listdir(deep_tmp / "d") == []
    elif top[0][1] == "d":
        assert names == ["d"] and (deep_tmp / "d").read_bytes() == b"file over the tree"
    else:
        assert names == []


def test_h11_opaque_marker_keeps_a_deep_tree_of_its_own_layer(deep_tmp):
    """_clear_dir descends into this layer's own deep tree without recursion and keeps it."""
    apply(deep_tmp, tar_bytes([F("d/old", b"lower")]))
    deep = "/".join(["d"] * DEEP)
    apply(deep_tmp, tar_bytes([F(deep + "/new", b"mine"), F("d/.wh..wh..opq")]))
    assert not (deep_tmp / "d/old").exists() and (deep_tmp / deep / "new").read_bytes() == b"mine"


def test_h11_remove_tree_at_any_depth_and_restrictive_modes(deep_tmp):
    top = deep_tmp / "t"
    os.mkdir(top)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(DEEP):  # os.makedirs itself recurses
        os.mkdir("x", dir_fd=fd)
        nfd = os.open("x", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    os.close(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    os.close(fd)
    os.symlink("/etc", top / "x" / "to-etc")  # never followed
    os.chmod(top / "x" / "x", 0o000)
    removed = []
    fd = os.open(deep_tmp, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fsutil.remove_tree_at(fd, "t", on_dir_removed=removed.append)
    finally:
        os.close(fd)
    assert not top.exists() and os.path.isdir("/etc")
    assert len(removed) == DEEP + 1 and removed[-1] == "" and removed[-2] == "x"
    assert removed[0] == "/".join(["x"] * DEEP)


# ------------------------------------------------------------------ #16 symlink aliases in one layer


L0_REAL = [D("real"), F("real/old", b"o")]


@pytest.mark.parametrize("layer1,expected", [
    ([S("lnk", "real"), F("lnk/new", b"n"), F(".wh.real")],
     {"lnk": "symlink:real", "real": "dir", "real/new": "file:n"}),
    ([S("lnk", "real"), F("lnk/new", b"n"), F("real/.wh..wh..opq")],
     {"lnk": "symlink:real", "real": "dir", "real/new": "file:n"}),
    ([S("lnk", "real"), F("lnk/new", b"n"), F(".wh.real"), D("real"), F("lnk/b", b"2")],
     {"lnk": "symlink:real", "real": "dir", "real/new": "file:n", "real/b": "file:2"}),
    ([S("lnk", "real"), D("lnk/sub"), F("real/sub/x", b"x"), F("lnk/.wh.old")],
     {"lnk": "symlink:real", "real": "dir", "real/sub": "dir", "real/sub/x": "file:x"}),
])
def test_h16_whiteout_never_deletes_what_this_layer_wrote_through_a_symlink(tmp_path, layer1, expected):
    """C05 through an alias: the same layer wrote real/new as lnk/new, then whited out
    real (or made it opaque); the lower real/old goes, real/new stays."""
    apply(tmp_path, tar_bytes(L0_REAL), tar_bytes(layer1))
    assert tree(tmp_path) == expected


def test_h16_stale_dir_fd_cache_after_replacing_a_directory_reached_by_alias(tmp_path):
    """Root cached lnk's fd of the old 'real'; replacing 'real' left it stale → ENOENT."""
    layer = [D("real"), S("lnk", "real"), F("lnk/a", b"1"), F("real", b"f"), D("real"), F("lnk/b", b"2")]
    with pytest.warns(LayerWarning, match="duplicate entry 'real'"):
        apply(tmp_path, tar_bytes(layer))
    assert tree(tmp_path) == {"lnk": "symlink:real", "real": "dir", "real/b": "file:2"}


# ------------------------------------------------------------------ #20 ACL message


def test_h20_invalid_posix_acl_is_named_as_such_not_blamed_on_the_filesystem(tmp_path):
    acl = "system.posix_acl_access"
    with pytest.warns(LayerWarning, match=r"xattr 'system.posix_acl_access' is not a valid POSIX ACL \(7 bytes"):
        (res,) = apply(tmp_path, tar_bytes([F("a", b"x", **{f"SCHILY.xattr.{acl}": "garbage"})]))
    assert res.skipped == [("a", f"xattr {acl}")] and (tmp_path / "a").read_bytes() == b"x"
    # a well-formed one (user::rw- user:100:rw- group::r-- mask::rw- other::r--) is applied
    good = "\x02\0\0\0" + "".join(f"{chr(tag)}\0{chr(perm)}\0{chr(uid)}\0\0\0" for tag, perm, uid in
                                  [(1, 6, 0), (2, 6, 100), (4, 4, 0), (0x10, 6, 0), (0x20, 4, 0)])
    (res,) = apply(tmp_path, tar_bytes([F("b", b"y", **{f"SCHILY.xattr.{acl}": good})]))
    stored = os.getxattr(tmp_path / "b", acl)  # the kernel writes undefined ids as 0xffffffff
    assert res.skipped == [] and stored[:4] == b"\x02\0\0\0" and b"\x02\0\x06\0\x64\0\0\0" in stored


# ------------------------------------------------------------------ #28 listing escapes


def test_h28_layer_listing_escapes_terminal_sequences_and_newlines(capsys):
    names = ["evil\x1b]0;PWNED-TITLE\x07name", "cr\rFAKE-LINE-OVERWRITE", "nl\n-rwsr-xr-x 0/0 1 2020-01-01 00:00 /etc/shadow", "ok-é"]
    blob = tar_bytes([F(n, b"x") for n in names] + [S("l\x1bk", "t\nx")])
    lines = [e.tar_line() for e in list_layer(io.BytesIO(blob))]
    assert [re.sub(r"^.*? \d\d:\d\d ", "", ln, count=1) for ln in lines] == [
        "evil\\033]0;PWNED-TITLE\\007name", "cr\\rFAKE-LINE-OVERWRITE",
        "nl\\n-rwsr-xr-x 0/0 1 2020-01-01 00:00 /etc/shadow", "ok-é", "l\\033k -> t\\nx",
    ]
    assert all(ch.isprintable() for ln in lines for ch in ln)


def test_h28_listing_of_nan_and_1e18_mtimes_is_an_error_or_clamped():
    with pytest.raises(LayerError, match="mtime nan is not a finite number"):
        list_layer(io.BytesIO(_pax("m", b"x", {"mtime": "nan"})))
    with pytest.warns(LayerWarning, match="clamped"):
        (e,) = list_layer(io.BytesIO(_pax("m", b"x", {"mtime": "1e18"})))
    assert e.mtime == 9223372036.0 and "2262-04-11" in e.tar_line()
