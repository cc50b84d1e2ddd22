"""Layer application (image-spec layer.md) and the hostile layer cases of ../shared/cases."""

from __future__ import annotations

import io
import os
import stat
import struct
import subprocess
import tarfile
import warnings

import pytest
import zstandard
from layer_helpers import DEV, FIFO, D, F, H, S, apply, gz, sentinel_state, tar_bytes, tree

from ocilearn.core import explain, fsutil
from ocilearn.core.errors import DigestMismatch, LayerError, SizeMismatch, UnsafePath
from ocilearn.image import mediatypes as mt
from ocilearn.image.digest import Digest
from ocilearn.layer.apply import apply_layer
from ocilearn.layer.listing import list_layer
from ocilearn.layer.rootless import parse_rootless_xattr, rootless_xattr
from ocilearn.layer.tar import diff_id_of

# ------------------------------------------------------------------ basics


def test_apply_basic_types_modes_and_diff_id(tmp_path):
    t = tar_bytes([
        D("etc", 0o755), F("etc/hostname", b"box\n", 0o644), F("usr/bin/su", b"ELF", 0o4755),
        D("tmp", 0o1777), D("srv", 0o2775), S("bin/sh", "/bin/busybox"), F("bin/busybox", b"bb", 0o755),
        H("bin/busybox2", "bin/busybox"), FIFO("run/fifo", 0o600),
    ])
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    with explain.recording() as steps:
        (res,) = apply(rootfs, t, diff_id=Digest.of(t))
    assert res.diff_id == Digest.of(t) and res.tar_bytes == len(t) and res.entries == 9
    assert (rootfs / "etc/hostname").read_bytes() == b"box\n"
    assert stat.S_IMODE((rootfs / "usr/bin/su").stat().st_mode) == 0o4755
    assert stat.S_IMODE((rootfs / "tmp").stat().st_mode) == 0o1777
    assert stat.S_IMODE((rootfs / "srv").stat().st_mode) == 0o2775
    assert os.readlink(rootfs / "bin/sh") == "/bin/busybox"  # absolute target stored verbatim
    assert (rootfs / "bin/busybox").stat().st_ino == (rootfs / "bin/busybox2").stat().st_ino
    assert stat.S_ISFIFO((rootfs / "run/fifo").lstat().st_mode)
    assert any("tar -xf" in s.equivalent for s in steps)


def test_dir_mtime_set_after_children(tmp_path):
    t = tar_bytes([D("d", 0o755), F("d/a", b"1"), F("d/b", b"2")])
    apply(tmp_path, t)
    assert (tmp_path / "d").stat().st_mtime == 1_700_000_000


def test_buildah_type_bits_in_mode_are_masked(tmp_path):
    t = tar_bytes([D("d", 0o40755), F("d/x", b"x", 0o100640)])
    apply(tmp_path, t)
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "d/x").stat().st_mode) == 0o640


def test_long_names_pax_and_gnu(tmp_path):
    long = "a" * 120 + "/" + "b" * 130
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        t = tar_bytes([F(long, b"long", 0o644), S("l", "x" * 150)], fmt=fmt)
        (tmp_path / str(fmt)).mkdir()
        apply(tmp_path / str(fmt), t)
        assert (tmp_path / str(fmt) / long).read_bytes() == b"long"
        assert os.readlink(tmp_path / str(fmt) / "l") == "x" * 150


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: chown, mknod, security.capability")
def test_root_ownership_devices_and_xattrs(tmp_path):
    cap = bytes.fromhex("0100000200040000000000000000000000000000")
    t = tar_bytes([
        F("s", b"x", 0o4755, uid=0, gid=0), F("u", b"y", 0o644, uid=1000, gid=1001),
        F("c", b"z", 0o755, **{"SCHILY.xattr.security.capability": cap.decode("latin-1")}),
        F("n", b"n", 0o644, **{"SCHILY.xattr.user.note": "hello"}),
        DEV("dev/null", "char", 1, 3), DEV("dev/sda", "block", 8, 0, 0o660),
    ])
    (res,) = apply(tmp_path, t, rootless=False)
    st = (tmp_path / "u").stat()
    assert (st.st_uid, st.st_gid) == (1000, 1001)
    assert stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o4755
    assert os.getxattr(tmp_path / "n", "user.note") == b"hello"
    # tarfile decodes non-UTF-8 PAX values with surrogateescape; the bytes survive
    assert os.getxattr(tmp_path / "c", "security.capability") == cap.decode("latin-1").encode("utf-8", "surrogateescape")
    dn = (tmp_path / "dev/null").lstat()
    assert stat.S_ISCHR(dn.st_mode) and (os.major(dn.st_rdev), os.minor(dn.st_rdev)) == (1, 3)
    assert stat.S_ISBLK((tmp_path / "dev/sda").lstat().st_mode)
    assert res.skipped == []


def test_sparse_file_keeps_size_content_and_holes(tmp_path):
    src = tmp_path / "src"
    with open(src, "wb") as f:
        f.write(b"head")
        f.seek(8 << 20)
        f.write(b"tail")
    subprocess.run(["tar", "--sparse", "-cf", "sparse.tar", "src"], cwd=tmp_path, check=True)  # GNU tar: GNU sparse members
    buf = (tmp_path / "sparse.tar").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(buf)) as tf:
        assert tf.getmembers()[0].sparse is not None
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    apply(rootfs, buf)
    out = rootfs / "src"
    assert out.stat().st_size == (8 << 20) + 4
    data = out.read_bytes()
    assert data[:4] == b"head" and data[-4:] == b"tail" and data[4:-4].count(0) == len(data) - 8
    assert out.stat().st_blocks * 512 < (1 << 20)  # holes kept


def test_list_layer_like_tar_tvf_with_whiteouts_marked():
    t = tar_bytes([D("etc"), F("etc/.wh.motd"), F("etc/x/.wh..wh..opq"), S("l", "/t"), F("f", b"abc", 0o600, uid=5, gid=6)])
    entries = list_layer(io.BytesIO(gz(t)), mt.OCI_LAYER_GZIP, diff_id=Digest.of(t))
    kinds = [(e.path, e.type, e.target) for e in entries]
    assert kinds == [("etc", "dir", ""), ("etc/.wh.motd", "whiteout", "etc/motd"), ("etc/x/.wh..wh..opq", "opaque", "etc/x"),
                     ("l", "symlink", ""), ("f", "file", "")]
    lines = [e.tar_line() for e in entries]
    assert lines[1].endswith("[whiteout: deletes /etc/motd]")
    assert "opaque whiteout: hides lower contents of /etc/x" in lines[2]
    assert lines[3].startswith("lrwxrwxrwx") and lines[3].endswith("l -> /t")
    assert lines[4].startswith("-rw------- 5/6         3 ")


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


def test_rootless_xattr_encoding_matches_umoci():
    # values read back from `umoci unpack --rootless` 0.4.7 (getfattr): 1000:1000 and 0:50
    assert rootless_xattr(1000, 1000) == bytes.fromhex("08e80710e807")
    assert rootless_xattr(0, 50) == bytes.fromhex("08ffffffff0f1032")
    assert rootless_xattr(0, 0) is None
    assert parse_rootless_xattr(bytes.fromhex("08ffffffff0f1032")) == (0, 50)


def test_fsutil_both_resolvers_agree(tmp_path):
    (tmp_path / "a/b").mkdir(parents=True)
    os.symlink("/a", tmp_path / "abs")
    os.symlink("../../../../a/b", tmp_path / "a/up")
    os.symlink("loop2", tmp_path / "loop1")
    os.symlink("loop1", tmp_path / "loop2")
    for use in (True, False):
        with fsutil.Root(tmp_path, use_openat2=use) as r:
            assert os.path.samestat(os.fstat(r.dir_fd("abs/b")), os.stat(tmp_path / "a/b"))
            assert os.path.samestat(os.fstat(r.dir_fd("a/up")), os.stat(tmp_path / "a/b"))
            assert r.resolve_path("a/up/../../abs/b/new") == "a/b/new"
            with pytest.raises((UnsafePath, OSError)):
                r.dir_fd("loop1/x")
    assert fsutil.clean_path("../../x") == "x" and fsutil.clean_path("/a/../") == "" and fsutil.clean_path("./a//b/.") == "a/b"


# ------------------------------------------------------------------ C01, C02 (security)


@pytest.fixture
def victim(tmp_path):
    """A sentinel directory outside the rootfs, recorded before; checked unchanged after."""
    v = tmp_path / "ocilearn-victim"
    v.mkdir()
    (v / "keep").write_bytes(b"precious")
    os.chmod(v / "keep", 0o600)
    before = sentinel_state(v)
    yield v
    assert sentinel_state(v) == before, "the sentinel directory outside the rootfs changed"


@pytest.mark.parametrize("name", [".", "/", "./", "a/..", ""])
def test_c01_symlink_named_dot_never_replaces_rootfs(tmp_path, victim, name):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    l1 = tar_bytes([S(name or "x", str(victim))]) if name else None
    if name == "":
        # tarfile cannot write an empty name; patch the header of a symlink named "x"
        raw = bytearray(tar_bytes([S("x", str(victim))], fmt=tarfile.USTAR_FORMAT))
        raw[0:100] = b"\0" * 100
        raw[148:156] = b"        "
        raw[148:155] = ("%06o\0" % sum(raw[:512])).encode()
        l1 = bytes(raw)
    with pytest.raises(UnsafePath, match="rootfs itself"):
        apply(rootfs, l1)
    apply(rootfs, tar_bytes([F("pwned", b"evil")]))
    assert rootfs.is_dir() and not rootfs.is_symlink()
    assert not (victim / "pwned").exists()
    assert (rootfs / "pwned").read_bytes() == b"evil"


def test_c01_root_dir_entry_only_updates_attributes(tmp_path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir(mode=0o700)
    apply(rootfs, tar_bytes([D(".", 0o755), F("a", b"1")]))
    assert stat.S_IMODE(rootfs.stat().st_mode) == 0o755 and (rootfs / "a").exists()


@pytest.mark.parametrize("resolver", ["openat2", "walk"])
def test_c02_dotdot_absolute_symlink_and_hardlink_escapes(tmp_path, victim, resolver, monkeypatch):
    monkeypatch.setattr(fsutil, "_openat2_ok", False if resolver == "walk" else None)
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    depth = "../" * (len(rootfs.parts) + 2)
    layer1 = tar_bytes([
        F("../escape1", b"1"), F("/escape2", b"2"), S("lnk", "/"), F("lnk/tmp/escape3", b"3"),
        S("up", "../../../../.."), F("up/escape4", b"4"), S("vic", str(victim)), F("vic/escape5", b"5"),
        S("rel", depth + str(victim).lstrip("/")), F("rel/escape6", b"6"),
    ])
    apply(rootfs, layer1)
    assert (rootfs / "escape1").read_bytes() == b"1"
    assert (rootfs / "escape2").read_bytes() == b"2"
    assert (rootfs / "tmp/escape3").read_bytes() == b"3"
    assert (rootfs / "escape4").read_bytes() == b"4"
    assert (rootfs / str(victim).lstrip("/") / "escape5").read_bytes() == b"5"
    assert (rootfs / str(victim).lstrip("/") / "escape6").read_bytes() == b"6"
    assert os.readlink(rootfs / "lnk") == "/"  # the link itself stays verbatim
    # (e) a hardlink to a host file: resolved inside the rootfs, where it does not exist
    with pytest.raises(LayerError, match="does not exist in the rootfs"):
        apply(rootfs, tar_bytes([H("hl", "../../etc/hostname")]))
    with pytest.raises(LayerError, match="does not exist in the rootfs"):
        apply(rootfs, tar_bytes([H("hl2", str(victim / "keep"))]))
    assert not (rootfs / "hl").exists()
    assert (victim / "keep").stat().st_nlink == 1
    # a whiteout through a symlink deletes inside the rootfs only
    apply(rootfs, tar_bytes([F("vic/.wh.keep")]))
    assert not any(n.startswith("escape") for n in os.listdir("/tmp"))


def test_c02_file_over_existing_symlink_replaces_the_link_not_the_target(tmp_path, victim):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    apply(rootfs, tar_bytes([S("k", str(victim / "keep"))]), tar_bytes([F("k", b"overwritten")]))
    assert (rootfs / "k").read_bytes() == b"overwritten" and not (rootfs / "k").is_symlink()


# ------------------------------------------------------------------ whiteouts C04 C05 C06 C09


def test_c04_opaque_whiteout_is_not_a_plain_whiteout(tmp_path):
    l1 = tar_bytes([D("bin"), F("bin/old1", b"1"), D("bin/sub"), F("bin/sub/old2", b"2")])
    l2 = tar_bytes([D("bin"), F("bin/.wh..wh..opq"), F("bin/new", b"n")])
    res = apply(tmp_path, l1, l2)
    assert tree(tmp_path) == {"bin": "dir", "bin/new": "file:n"}
    assert res[1].opaque == ["bin"]


@pytest.mark.parametrize("order", ["opaque-first", "opaque-last", "plain-whiteout-last"])
def test_c05_opaque_whiteout_after_children(tmp_path, order):
    l1 = tar_bytes([D("a"), D("a/b"), D("a/b/c"), F("a/b/c/bar", b"bar")])
    children = [D("a/b"), D("a/b/c"), F("a/b/c/foo", b"foo")]
    if order == "opaque-first":
        l2 = [D("a"), F("a/.wh..wh..opq"), *children]
    elif order == "opaque-last":
        l2 = [D("a"), *children, F("a/.wh..wh..opq")]
    else:
        l2 = [D("a"), *children, F("a/.wh.b")]
    apply(tmp_path, l1, tar_bytes(l2))
    assert tree(tmp_path) == {"a": "dir", "a/b": "dir", "a/b/c": "dir", "a/b/c/foo": "file:foo"}


def test_c05_whiteout_never_deletes_same_layer_entry(tmp_path):
    apply(tmp_path, tar_bytes([F("x", b"kept"), F(".wh.x")]))
    assert tree(tmp_path) == {"x": "file:kept"}
    apply(tmp_path, tar_bytes([F("y", b"lower")]), tar_bytes([F(".wh.y"), F("y", b"upper")]))
    assert tree(tmp_path)["y"] == "file:upper"


def test_c06_degenerate_whiteouts(tmp_path):
    l1 = tar_bytes([D("etc"), F("etc/config.txt", b"c"), D("data"), F("data/keep", b"k"), F("f", b"f")])
    apply(tmp_path, l1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in (".wh.", "data/.wh.", "data/.wh..", "data/.wh..."):
            (res,) = apply(tmp_path, tar_bytes([F(name)]))
            assert res.whiteouts == []
    assert sum("degenerate whiteout" in str(w.message) for w in caught) == 4
    assert tree(tmp_path) == {"data": "dir", "data/keep": "file:k", "etc": "dir", "etc/config.txt": "file:c", "f": "file:f"}
    (res,) = apply(tmp_path, tar_bytes([F("nothere/.wh.ghost")]))  # (e) no-op
    assert res.whiteouts == [] and not (tmp_path / "nothere").exists()
    apply(tmp_path, tar_bytes([F("f/child", b"c")]))  # (f) documented: the file becomes a directory
    assert tree(tmp_path)["f"] == "dir" and tree(tmp_path)["f/child"] == "file:c"


def test_c06_invalid_utf8_name_bytes_preserved(tmp_path):
    name = b"caf\xe9-\xff.txt"
    t = tar_bytes([F(name.decode("utf-8", "surrogateescape"), b"x", **{"path": name.decode("utf-8", "surrogateescape")})])
    apply(tmp_path, t)
    assert os.listdir(os.fsencode(tmp_path)) == [name]


def test_c09_duplicate_paths_last_wins(tmp_path):
    t = tar_bytes([F("f", b"first"), F("f", b"second"), D("d", 0o700), D("d", 0o755), F("d/x", b"x"), F("g", b"g"), S("g", "f")])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (res,) = apply(tmp_path, t)
    assert (tmp_path / "f").read_bytes() == b"second"
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755 and (tmp_path / "d/x").exists()
    assert os.readlink(tmp_path / "g") == "f"
    assert sum("duplicate entry" in w for w in res.warnings) == 2
    assert caught


def test_c09_writer_tars_have_unique_names():
    t = tar_bytes([F("a", b"1"), D("b"), F("b/c", b"2")])
    names = [m.name for m in tarfile.open(fileobj=io.BytesIO(t))]
    assert len(names) == len(set(names))


# ------------------------------------------------------------------ compression C10 C11 C12


def _tar_t():
    return tar_bytes([D("etc"), F("etc/a", b"a" * 3000), F("etc/b", b"b" * 5000), F("z", os.urandom(20000))])


@pytest.mark.parametrize("variant", ["A-nul-padding", "B-garbage", "C-two-members"])
def test_c10_trailing_bytes_and_multi_member_gzip(tmp_path, variant):
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


def test_c10_tar_padding_after_end_marker_is_hashed(tmp_path):
    t = _tar_t() + b"\0" * 4096  # extra zero blocks beyond the end-of-archive marker
    res = apply(tmp_path, t, diff_id=Digest.of(t))
    assert res[0].diff_id == Digest.of(t)


def test_c10_truncated_gzip_is_an_error(tmp_path):
    blob = gz(_tar_t())[:-20]
    with pytest.raises(LayerError, match="truncated"):
        apply_layer(tmp_path, io.BytesIO(blob), mt.OCI_LAYER_GZIP)


def _skippable(payload: bytes, n=0) -> bytes:
    return struct.pack("<II", 0x184D2A50 + n, len(payload)) + payload


def test_c11_zstd_several_frames_and_skippable_frames(tmp_path):
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


def test_c12_compression_by_magic_bytes_media_type_is_a_hint(tmp_path):
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


# ------------------------------------------------------------------ C14 rootless (in-process part)


def test_c14_rootless_in_process_modes_restored_devices_skipped(tmp_path):
    t = tar_bytes([
        D("r", 0o555), F("r/file", b"r"), D("z", 0o000), F("z/child", b"z"), DEV("dev/null", "char", 1, 3),
        DEV("dev/sda", "block", 8, 0), FIFO("run/fifo"), F("s", b"s", 0o4755), F("u", b"u", uid=1000, gid=1000),
    ])
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        (res,) = apply(tmp_path, t, rootless=True)
    try:
        assert stat.S_IMODE((tmp_path / "r").stat().st_mode) == 0o555
        assert stat.S_IMODE((tmp_path / "z").stat().st_mode) == 0o000
        assert [p for p, _ in res.skipped] == ["dev/null", "dev/sda"]
        assert not (tmp_path / "dev/null").exists()
        assert stat.S_ISFIFO((tmp_path / "run/fifo").lstat().st_mode)
        assert parse_rootless_xattr(os.getxattr(tmp_path / "u", "user.rootlesscontainers")) == (1000, 1000)
        assert stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o4755
    finally:
        os.chmod(tmp_path / "z", 0o755)


def test_hardlink_to_lower_layer_file_and_through_in_root_symlink(tmp_path, victim):
    apply(tmp_path, tar_bytes([F("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"), S("link", "/etc")]))
    apply(tmp_path, tar_bytes([H("usr/passwd-copy", "etc/passwd"), H("via-symlink", "link/passwd")]))
    ino = (tmp_path / "etc/passwd").stat().st_ino
    assert (tmp_path / "usr/passwd-copy").stat().st_ino == ino == (tmp_path / "via-symlink").stat().st_ino
    # a hardlink whose target is a symlink to the host sentinel links the symlink, never the host file
    apply(tmp_path, tar_bytes([S("out", str(victim / "keep")), H("hl-out", "out")]))
    assert os.readlink(tmp_path / "hl-out") == str(victim / "keep")
    assert (victim / "keep").stat().st_nlink == 1


def test_entry_under_symlink_to_a_file_is_an_error_not_a_deletion(tmp_path):
    apply(tmp_path, tar_bytes([F("etc/passwd", b"root\n"), S("s", "/etc/passwd")]))
    with pytest.raises(LayerError, match="not a directory"):
        apply(tmp_path, tar_bytes([F("s/x", b"x")]))
    assert (tmp_path / "etc/passwd").read_bytes() == b"root\n"
