"""layer/apply.py: one layer onto a rootfs (image-spec layer.md "Applying Changesets"),
safely: nothing is written outside the rootfs."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
import warnings

import pytest
from layer_helpers import DEV, FIFO, D, F, H, S, apply, run_child, sentinel_state, tar_bytes

from ocilearn.core import explain, fsutil
from ocilearn.core.errors import LayerError, UnsafePath
from ocilearn.image.digest import Digest
from ocilearn.layer.apply import apply_layer

# ------------------------------------------------------------------ entry types and attributes


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


def test_invalid_utf8_name_bytes_preserved(tmp_path):
    name = b"caf\xe9-\xff.txt"
    t = tar_bytes([F(name.decode("utf-8", "surrogateescape"), b"x", **{"path": name.decode("utf-8", "surrogateescape")})])
    apply(tmp_path, t)
    assert os.listdir(os.fsencode(tmp_path)) == [name]



# ------------------------------------------------------------------ sparse files


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


def test_huge_sparse_file_is_written_from_its_map(tmp_path):
    """realsize 2**40 with one 4-byte chunk: written by seeking, not by generating 1 TiB
    of zeros (2**33 took 19 s, 2**62 never ended)."""
    apply_layer(tmp_path, io.BytesIO(_pax_sparse(2**40, "1\n0\n4\n", b"abcd")))
    st = os.stat(tmp_path / "s")
    assert st.st_size == 2**40 and st.st_blocks <= 64
    with open(tmp_path / "s", "rb") as f:
        assert f.read(4) == b"abcd"
        f.seek(2**40 - 4)
        assert f.read() == b"\0" * 4


def test_sparse_realsize_2_pow_62_and_absurd_map_are_errors(tmp_path):
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



def test_more_directories_than_the_fd_limit_allows(tmp_path):
    """A layer with more directories than RLIMIT_NOFILE still unpacks (a cache of one fd
    per directory hit EMFILE at 'd248/f' under a limit of 256): the cache keeps at most a
    quarter of the limit open, and no fd is left open afterwards."""
    what, _ = run_child(f"""
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            for i in range(600):
                ti = tarfile.TarInfo(f"d{{i}}/f"); ti.size = 2
                tf.addfile(ti, io.BytesIO(b"%02d" % (i % 100)))
                if i:  # a hardlink in every directory to the first directory's file
                    ln = tarfile.TarInfo(f"d{{i}}/ln"); ln.type = tarfile.LNKTYPE; ln.linkname = "d0/f"
                    tf.addfile(ln)
        before = len(os.listdir("/proc/self/fd"))
        res = apply_layer({str(tmp_path)!r}, io.BytesIO(buf.getvalue()))
        after = len(os.listdir("/proc/self/fd"))
        st = os.stat({str(tmp_path)!r} + "/d0/f")
        done(f"{{res.entries}} {{st.st_nlink}} {{after - before}}")
    """, timeout=60)
    assert what == "1199 600 0"
    assert sorted(os.listdir(tmp_path)) == sorted(f"d{i}" for i in range(600))
    assert (tmp_path / "d599/f").read_bytes() == b"99" and (tmp_path / "d599/ln").read_bytes() == b"00"


# ------------------------------------------------------------------ changeset over existing files, duplicates


def test_duplicate_paths_last_wins(tmp_path):
    t = tar_bytes([F("f", b"first"), F("f", b"second"), D("d", 0o700), D("d", 0o755), F("d/x", b"x"), F("g", b"g"), S("g", "f")])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (res,) = apply(tmp_path, t)
    assert (tmp_path / "f").read_bytes() == b"second"
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755 and (tmp_path / "d/x").exists()
    assert os.readlink(tmp_path / "g") == "f"
    assert sum("duplicate entry" in w for w in res.warnings) == 2
    assert caught


def test_writer_tars_have_unique_names():
    t = tar_bytes([F("a", b"1"), D("b"), F("b/c", b"2")])
    names = [m.name for m in tarfile.open(fileobj=io.BytesIO(t))]
    assert len(names) == len(set(names))



# ------------------------------------------------------------------ inside the rootfs only


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
def test_symlink_named_dot_never_replaces_the_rootfs(tmp_path, victim, name):
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


def test_root_directory_entry_only_updates_attributes(tmp_path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir(mode=0o700)
    apply(rootfs, tar_bytes([D(".", 0o755), F("a", b"1")]))
    assert stat.S_IMODE(rootfs.stat().st_mode) == 0o755 and (rootfs / "a").exists()


@pytest.mark.parametrize("resolver", ["openat2", "walk"])
def test_dotdot_absolute_symlink_and_hardlink_escapes_stay_inside(tmp_path, victim, resolver, monkeypatch):
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


def test_file_over_existing_symlink_replaces_the_link_not_the_target(tmp_path, victim):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    apply(rootfs, tar_bytes([S("k", str(victim / "keep"))]), tar_bytes([F("k", b"overwritten")]))
    assert (rootfs / "k").read_bytes() == b"overwritten" and not (rootfs / "k").is_symlink()


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

