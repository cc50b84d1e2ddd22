"""ocilearn unpack: bundles, all-or-nothing, platforms, overwrite rules, and rootless unpack
as a real unprivileged user (unwritable directories, lchown EPERM, device nodes)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from conftest import REPO, as_user, built_image, shared_path
from layer_helpers import DEV, FIFO, D, F, gz, make_image, tar_bytes, user_python

from ocilearn.bundle import convert as C
from ocilearn.bundle.unpack import remove_tree, unpack
from ocilearn.cli import run as cli
from ocilearn.core import explain
from ocilearn.core.errors import BundleError, ConfigError, DigestMismatch, LayoutError
from ocilearn.image import mediatypes as mt
from ocilearn.image.digest import Digest
from ocilearn.layer.rootless import parse_rootless_xattr


def test_unpack_busybox_bundle(tmp_path):
    img = built_image("busybox")
    with explain.recording() as steps:
        res = unpack(f"{img}:latest", tmp_path / "bundle", rootless=False)
    b = tmp_path / "bundle"
    assert sorted(os.listdir(b)) == ["config.json", "ocilearn.json", "rootfs"]
    cfg = json.loads((b / "config.json").read_text())
    assert cfg["process"]["args"] == ["/bin/sh", "-c", 'echo "$GREETING from $(id -un) in $(pwd)"']
    assert cfg["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000]} and cfg["process"]["cwd"] == "/home/app"
    assert cfg["process"]["terminal"] is False
    meta = json.loads((b / "ocilearn.json").read_text())
    assert meta["manifest"] == "sha256:3063d847deaaedea1de7a313e9e38508643d028f52fe8c3c6b002fd9a9a56eb6"
    assert meta["diff_ids"] == ["sha256:3920edbb71cc692380042175d3681dc0a16a718771e628ce4627b728ec926ec5"]
    assert meta["chain_ids"] == meta["diff_ids"]
    assert os.readlink(b / "rootfs/bin/sh") == "/bin/busybox"
    assert (b / "rootfs/home/app").stat().st_uid == 1000
    assert stat.S_IMODE((b / "rootfs/tmp").stat().st_mode) == 0o1777
    assert res.layers[0].diff_id == Digest.parse(meta["diff_ids"][0])
    assert any(s.equivalent.startswith("umoci unpack") for s in steps)
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]  # no temp dir left


def test_unpack_refuses_existing_bundle_and_force_replaces_only_a_bundle(tmp_path):
    img = built_image("busybox")
    b = tmp_path / "b"
    b.mkdir()
    (b / "mine").write_text("keep")
    assert cli(["unpack", "-q", "--image", f"{img}:latest", str(b)]) == 1
    assert (b / "mine").read_text() == "keep"
    with pytest.raises(BundleError, match="already exists"):
        unpack(f"{img}:latest", b)
    # --force replaces a bundle, never a directory of one's own files (it deleted them before)
    assert cli(["unpack", "-q", "--force", "--image", f"{img}:latest", str(b)]) == 1
    with pytest.raises(BundleError, match=r"is not a bundle \(it holds 'mine'\)"):
        unpack(f"{img}:latest", b, force=True)
    assert sorted(os.listdir(b)) == ["mine"] and (b / "mine").read_text() == "keep"
    (b / "mine").unlink()
    assert cli(["unpack", "-q", "--image", f"{img}:latest", str(b)]) == 0  # an empty directory: nothing to lose
    first = (b / "config.json").stat().st_ino
    assert cli(["unpack", "-q", "--force", "--image", f"{img}:latest", str(b)]) == 0
    assert (b / "config.json").stat().st_ino != first and (b / "rootfs/bin/busybox").is_file()
    assert sorted(os.listdir(b)) == ["config.json", "ocilearn.json", "rootfs"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_force_checks_the_bundle_again_before_replacing_it(tmp_path, monkeypatch):
    """A file put into the old bundle while the new one was being built is not lost."""
    import ocilearn.bundle.unpack as unpack_mod

    img = built_image("busybox")
    b = tmp_path / "b"
    unpack(f"{img}:latest", b)
    real = unpack_mod.atomic_write

    def write_then_meddle(path, data, mode=0o644):
        real(path, data, mode)
        if path.name == "ocilearn.json":  # the new bundle's last file: the old one gets a note
            (b / "notes.txt").write_text("mine")

    monkeypatch.setattr(unpack_mod, "atomic_write", write_then_meddle)
    with pytest.raises(BundleError, match=r"is not a bundle \(it holds 'notes.txt'\)"):
        unpack(f"{img}:latest", b, force=True)
    assert (b / "notes.txt").read_text() == "mine" and (b / "rootfs/bin/busybox").is_file()
    assert sorted(os.listdir(tmp_path)) == ["b"]


def test_force_never_replaces_the_image_a_file_or_a_symlink(tmp_path):
    """``unpack --force --image DIR:latest DIR`` replaced the image layout being unpacked;
    a file or a symlink at the bundle path was replaced too."""
    img = tmp_path / "img"
    shutil.copytree(built_image("busybox"), img)
    before = sorted(os.listdir(img))
    with pytest.raises(BundleError, match=r"is not a bundle \(it holds 'blobs', 'index.json', 'oci-layout'\)"):
        unpack(f"{img}:latest", img, force=True)
    assert sorted(os.listdir(img)) == before
    (tmp_path / "file").write_text("data")
    (tmp_path / "bundle").mkdir()
    (tmp_path / "link").symlink_to("bundle")
    for name, kind in (("file", "not a directory"), ("link", "a symlink")):
        with pytest.raises(BundleError, match=f"already exists and is {kind}; not replaced"):
            unpack(f"{img}:latest", tmp_path / name, force=True)
    assert (tmp_path / "file").read_text() == "data" and os.readlink(tmp_path / "link") == "bundle"
    assert sorted(os.listdir(tmp_path)) == ["bundle", "file", "img", "link"]


def test_failed_unpack_leaves_no_half_bundle(tmp_path):
    good = tar_bytes([D("etc"), F("etc/a", b"a" * 100000)])
    bad_did = Digest.of(b"not the tar")
    make_image(tmp_path / "img", [(gz(tar_bytes([F("first", b"1")])), mt.OCI_LAYER_GZIP), (gz(good), mt.OCI_LAYER_GZIP)],
               diff_ids=[Digest.of(tar_bytes([F("first", b"1")])), bad_did])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DigestMismatch, match="diff ID"):
        unpack(f"{tmp_path / 'img'}:latest", out / "bundle")
    assert list(out.iterdir()) == []  # neither the bundle nor its temp dir
    # a corrupted layer blob: caught by the blob digest, same cleanup
    make_image(tmp_path / "img2", [(gz(good), mt.OCI_LAYER_GZIP)])
    blob = next(p for p in (tmp_path / "img2/blobs/sha256").iterdir() if p.read_bytes()[:2] == b"\x1f\x8b")
    data = bytearray(gzip.decompress(blob.read_bytes()))
    data[600] ^= 1
    blob.chmod(0o644)
    blob.write_bytes(gz(bytes(data)))
    assert cli(["unpack", "-q", "--image", f"{tmp_path / 'img2'}:latest", str(out / "b2")]) == 1
    assert list(out.iterdir()) == []


def test_unpack_multiarch_platform_choice(tmp_path):
    img = built_image("multiarch")
    res = unpack(f"{img}:latest", tmp_path / "arm", platform="linux/arm64/v8", rootless=False)
    assert str(res.platform).startswith("linux/arm64")
    elf = (tmp_path / "arm/rootfs/bin/busybox").read_bytes()[:20]
    assert elf[:4] == b"\x7fELF" and int.from_bytes(elf[18:20], "little") == 183  # EM_AARCH64
    cfg = json.loads((tmp_path / "arm/config.json").read_text())
    assert cfg["annotations"]["org.opencontainers.image.architecture"] == "arm64"
    res = unpack(f"{img}:latest", tmp_path / "amd", platform="linux/amd64", rootless=False)
    assert int.from_bytes((tmp_path / "amd/rootfs/bin/busybox").read_bytes()[18:20], "little") == 62  # EM_X86_64


@pytest.fixture
def user_tmp(unpriv_user):
    """A temp dir owned by the unprivileged user (pytest's tmp_path is root-only)."""
    d = Path(tempfile.mkdtemp(prefix="ocilearn-unpack-"))
    os.chown(d, unpriv_user[1], unpriv_user[2])
    yield d
    for dirpath, dirnames, _ in os.walk(d):  # teardown: chmod z/ and friends before removing
        for n in dirnames:
            os.chmod(os.path.join(dirpath, n), 0o755)
    shutil.rmtree(d)


def _as_user_unpack(user, image, bundle, *extra):
    py, env = user_python(user)
    return as_user(user, [py, "-m", "ocilearn", "unpack", "--image", image, str(bundle), *extra], env=env, cwd=str(REPO))


def test_rootless_unpack_as_unprivileged_user(tmp_path, unpriv_user, user_tmp):
    layer = tar_bytes([
        D("r", 0o555), F("r/file", b"r"), D("z", 0o000), F("z/child", b"z"), DEV("dev/null", "char", 1, 3),
        DEV("dev/sda", "block", 8, 0), FIFO("run/fifo"), F("s", b"s", 0o4755, uid=0, gid=0),
        F("u", b"u", 0o644, uid=1000, gid=1000), D("home/app", 0o700, uid=1000, gid=1000),
    ])
    img = user_tmp / "img"
    make_image(img, [(gz(layer), mt.OCI_LAYER_GZIP)], config={"Cmd": ["/bin/sh"], "User": "0"})
    for p in [img, *img.rglob("*")]:
        os.chown(p, unpriv_user[1], unpriv_user[2])
    out = _as_user_unpack(unpriv_user, f"{img}:latest", user_tmp / "bundle", "--rootless")
    assert out.returncode == 0, out.stderr
    assert "skipped 2: /dev/null (char device 1,3), /dev/sda (block device 8,0)" in out.stderr
    root = user_tmp / "bundle/rootfs"
    assert stat.S_IMODE((root / "r").stat().st_mode) == 0o555
    assert stat.S_IMODE((root / "z").stat().st_mode) == 0o000
    assert stat.S_ISFIFO((root / "run/fifo").lstat().st_mode)
    assert not (root / "dev/null").exists() and not (root / "dev/sda").exists()
    assert stat.S_IMODE((root / "s").stat().st_mode) == 0o4755
    assert {(root / n).stat().st_uid for n in ("s", "u", "r", "run/fifo")} == {unpriv_user[1]}
    assert parse_rootless_xattr(os.getxattr(root / "u", "user.rootlesscontainers")) == (1000, 1000)
    assert parse_rootless_xattr(os.getxattr(root / "home/app", "user.rootlesscontainers")) == (1000, 1000)
    assert "user.rootlesscontainers" not in os.listxattr(root / "s")  # 0:0 = the user itself: no xattr (as umoci)
    cfg = json.loads((user_tmp / "bundle/config.json").read_text())
    assert cfg["linux"]["uidMappings"] == [{"containerID": 0, "hostID": unpriv_user[1], "size": 1}]
    assert {"type": "user"} in cfg["linux"]["namespaces"]
    # the bundle stays removable and readable by the user: the rootfs tree is walkable after a chmod of z/ only
    assert (root / "r/file").read_bytes() == b"r"


def test_unpack_as_unprivileged_user_without_flag_is_rootless(unpriv_user, user_tmp):
    img = built_image("busybox")
    out = _as_user_unpack(unpriv_user, f"{img}:latest", user_tmp / "bb", "-q")
    assert out.returncode == 0, out.stderr
    root = user_tmp / "bb/rootfs"
    assert root.stat().st_uid == unpriv_user[1]
    assert parse_rootless_xattr(os.getxattr(root / "home/app", "user.rootlesscontainers")) == (1000, 1000)
    cfg = json.loads((user_tmp / "bb/config.json").read_text())
    assert cfg["process"]["user"] == {"uid": 0, "gid": 0}  # only uid 0 is mapped (the article's user edit)


def test_an_unwritable_parent_is_named_not_a_temporary_directory(unpriv_user, user_tmp):
    """An ordinary user unpacking into a directory it cannot write got
    "[Errno 13] Permission denied: '…/.b.ocilearn-x1y2z3'", naming a temporary directory."""
    parent = user_tmp / "roots"
    parent.mkdir(mode=0o755)  # root's: the user may look, not write
    out = _as_user_unpack(unpriv_user, f"{built_image('busybox')}:latest", parent / "b", "-q")
    assert out.returncode == 1
    assert out.stderr == f"ocilearn: error: {parent / 'b'}: cannot create the bundle in {parent}: Permission denied\n"
    assert os.listdir(parent) == []


def test_another_users_bundle_is_named_not_a_raw_errno(unpriv_user, user_tmp):
    """A second learner following the README into the first one's bundle path got
    "[Errno 13] Permission denied: '…/bundle'"."""
    theirs = user_tmp / "theirs"
    unpack(f"{built_image('busybox')}:latest", theirs, rootless=False)  # root's, mode 0700
    for extra in ((), ("--force",)):
        out = _as_user_unpack(unpriv_user, f"{built_image('busybox')}:latest", theirs, "-q", *extra)
        assert out.returncode == 1
        assert out.stderr == (f"ocilearn: error: {theirs}: already exists and this user cannot read it (another user's?); "
                              "give another bundle path\n")
    assert sorted(os.listdir(theirs)) == ["config.json", "ocilearn.json", "rootfs"]


def test_one_image_with_four_differently_labelled_layers(tmp_path):
    import zstandard

    t = [tar_bytes([F(f"layer{i}", f"content {i}".encode())]) for i in range(4)]
    blobs = [
        (t[0], mt.OCI_LAYER_TAR),                                       # (a) plain tar, labelled tar
        (t[1], mt.OCI_LAYER_GZIP),                                      # (b) plain tar labelled +gzip
        (gz(t[2]), mt.DOCKER_LAYER_GZIP),                               # (c) Docker schema2 gzip type
        (zstandard.ZstdCompressor().compress(t[3]), mt.OCI_LAYER_GZIP),  # (d) zstd labelled +gzip
    ]
    make_image(tmp_path / "img", blobs, diff_ids=[Digest.of(x) for x in t])
    import warnings

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        res = unpack(f"{tmp_path / 'img'}:latest", tmp_path / "b", rootless=False)
    assert [lr.compression for lr in res.layers] == ["none", "none", "gzip", "zstd"]
    assert [lr.diff_id for lr in res.layers] == [Digest.of(x) for x in t]
    assert [bool(lr.warnings) for lr in res.layers] == [False, True, False, True]
    assert sorted(os.listdir(tmp_path / "b/rootfs")) == ["layer0", "layer1", "layer2", "layer3"]


def test_cli_layer_list_and_explain(capsys):
    img = built_image("debian")
    assert cli(["layer", "list", f"{img}:bookworm"]) == 0
    out = capsys.readouterr().out
    assert "[whiteout: deletes /etc/motd]" in out
    assert "[opaque whiteout: hides lower contents of /etc/update-motd.d]" in out
    assert out.count("(verified)") == 3
    from ocilearn.image.layout import ImageLayout

    lay = ImageLayout.open(img)
    last = lay.resolve("bookworm").manifest.layers[-1]
    assert cli(["--explain", "layer", "list", str(lay.blob_path(last.digest))]) == 0
    captured = capsys.readouterr()
    assert any(line.startswith("o") and line.endswith("hides lower contents of /etc/update-motd.d]") for line in captured.out.splitlines())
    assert "$ tar -tvzf BLOB" in captured.err  # the narrated step with umoci/tar's equivalent


def test_unpacked_config_validates_against_runtime_spec_schema(tmp_path):
    schema = shared_path("fixtures", "runtime-spec-schema")
    for rootless in (False, True):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = unpack(f"{built_image('busybox')}:latest", tmp_path / f"b{rootless}", rootless=rootless)
        C.validate(json.loads((res.bundle / "config.json").read_text()), schema)


# ------------------------------------------------------------------ hostile images: fifo passwd, killed unpacks, deep trees, garbage layers


@pytest.fixture
def out_dir(tmp_path):
    """A directory for bundles, emptied without recursion afterwards (a regression could
    leave a 1500-level temp dir that pytest's recursive cleanup cannot remove)."""

    d = tmp_path / "out"
    d.mkdir()
    yield d
    for p in list(d.iterdir()):
        remove_tree(p)


def test_fifo_passwd_image_fails_fast_and_leaves_nothing(tmp_path, out_dir):
    """The report's a11_fifo_passwd.py: `ocilearn unpack` hung forever (rc 124 under
    timeout 20) and the killed unpack left .b.ocilearn-XXXX behind."""
    import signal

    make_image(tmp_path / "img", [(gz(tar_bytes([D("etc"), FIFO("etc/passwd"), F("bin/sh", b"x", mode=0o755)])), mt.OCI_LAYER_GZIP)],
               config={"Cmd": ["/bin/sh"]})

    def boom(*_):
        raise TimeoutError("unpack blocked on the image's FIFO /etc/passwd")
    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(10)
    try:
        with pytest.raises(ConfigError, match=r"cannot read /etc/passwd of the rootfs: .* is a FIFO, not a regular file"):
            unpack(f"{tmp_path / 'img'}:latest", out_dir / "b", rootless=False)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert list(out_dir.iterdir()) == []


_SLOW_UNPACK = """
import sys, time
import ocilearn.bundle.unpack as U
real = U.apply_layer
def slow(*a, **k):
    r = real(*a, **k)
    print("applied", flush=True)
    time.sleep(60)
    return r
U.apply_layer = slow
U.unpack(sys.argv[1], sys.argv[2], rootless=False)
"""


def test_killed_unpack_leftover_is_removed_by_the_next_unpack(tmp_path, out_dir, monkeypatch):
    """SIGKILL in the middle of an unpack leaves .b.ocilearn-*; the next unpack of the
    same bundle removes it, but never the temp dir of an unpack that is still running."""
    import signal
    import subprocess
    import sys

    make_image(tmp_path / "img", [(gz(tar_bytes([D("etc"), F("etc/hostname", b"box\n")])), mt.OCI_LAYER_GZIP)])
    img, bundle = f"{tmp_path / 'img'}:latest", out_dir / "b"

    def start(target=bundle):
        p = subprocess.Popen([sys.executable, "-c", _SLOW_UNPACK, img, str(target)], stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert p.stdout.readline() == "applied\n"
        return p

    victim = start()
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    (left,) = [p.name for p in out_dir.iterdir()]
    assert left.startswith(".b.ocilearn-") and (out_dir / left / "rootfs/etc/hostname").read_bytes() == b"box\n"
    # a leftover younger than STALE_AFTER is kept: a concurrent unpack makes its directory a
    # moment before it can lock it
    import ocilearn.bundle.unpack as unpack_module

    res = unpack(img, out_dir / "other", rootless=False)
    assert left in [p.name for p in out_dir.iterdir()]
    unpack_module.remove_stale_temps(bundle)
    assert left in [p.name for p in out_dir.iterdir()]
    remove_tree(out_dir / "other")
    monkeypatch.setattr(unpack_module, "STALE_AFTER", 0.0)  # from here on: as if a minute had passed
    busy = start()  # a live unpack of the same bundle, holding its lock
    try:
        (busy_tmp,) = [p.name for p in out_dir.iterdir() if p.name != left]
        res = unpack(img, bundle, rootless=False)
        assert (res.rootfs / "etc/hostname").read_bytes() == b"box\n"
        assert sorted(p.name for p in out_dir.iterdir()) == sorted(["b", busy_tmp])  # the killed one's is gone
    finally:
        busy.kill()
        busy.wait(10)
    res = unpack(img, bundle, rootless=False, force=True)  # --force cleans the second leftover too
    assert [p.name for p in out_dir.iterdir()] == ["b"]
    # a leftover of bundle "a" is swept by the next unpack of ANY bundle in that directory
    victim = start(out_dir / "a")
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    (left,) = [p.name for p in out_dir.iterdir() if p.name != "b"]
    assert left.startswith(".a.ocilearn-")
    size = sum(f.stat().st_size for f in (out_dir / left).rglob("*") if f.is_file())
    assert size > 0
    res = unpack(img, out_dir / "c", rootless=False)
    assert sorted(p.name for p in out_dir.iterdir()) == ["b", "c"]
    assert (res.rootfs / "etc/hostname").read_bytes() == b"box\n"


def test_failed_unpack_of_a_deep_tree_reports_the_real_error_and_cleans_up(tmp_path, out_dir):
    """A legitimate 1500-level layer 0 + a layer 1 with a wrong diff ID: the DigestMismatch
    was masked by a RecursionError from the cleanup, which also left the temp dir."""
    deep = tar_bytes([F("/".join(["d"] * 1500) + "/f", b"deep")])
    top = tar_bytes([F("x", b"x")])
    make_image(tmp_path / "img", [(gz(deep), mt.OCI_LAYER_GZIP), (gz(top), mt.OCI_LAYER_GZIP)],
               diff_ids=[Digest.of(deep), Digest.of(b"not the tar")])
    with pytest.raises(DigestMismatch, match="diff ID of layer 1") as ei:
        unpack(f"{tmp_path / 'img'}:latest", out_dir / "b", rootless=False)
    assert not getattr(ei.value, "__notes__", None)  # the cleanup itself succeeded
    assert list(out_dir.iterdir()) == []


def test_fifo_layer_blob_is_a_layout_error(tmp_path, out_dir):
    make_image(tmp_path / "img", [(gz(tar_bytes([F("a", b"1")])), mt.OCI_LAYER_GZIP)])
    blob = next(p for p in (tmp_path / "img/blobs/sha256").iterdir() if p.read_bytes()[:2] == b"\x1f\x8b")
    blob.unlink()
    os.mkfifo(blob)
    with pytest.raises(LayoutError, match=f"layer blob sha256:{blob.name} is not a regular file"):
        unpack(f"{tmp_path / 'img'}:latest", out_dir / "b", rootless=False)
    assert list(out_dir.iterdir()) == []


def test_cli_unpack_of_a_garbage_layer_is_one_error_line(tmp_path, out_dir, capsys):
    make_image(tmp_path / "img", [(b"\x01" * 512, mt.OCI_LAYER_TAR)], diff_ids=[Digest.of(b"\x01" * 512)])
    assert cli(["unpack", "-q", "--image", f"{tmp_path / 'img'}:latest", str(out_dir / "b")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "ocilearn: error: layer 0 sha256:" in err and "not a tar archive" in err
    assert list(out_dir.iterdir()) == []


def test_cli_unpack_draws_a_bar_only_on_a_terminal(tmp_path, out_dir, capfd, monkeypatch):
    """``ocilearn unpack`` into a pipe or a log prints its one summary line and no tqdm bar
    (no carriage returns); on a terminal the bar is drawn too."""
    import sys

    make_image(tmp_path / "img", [(gz(tar_bytes([F("a", b"1")])), mt.OCI_LAYER_GZIP)])
    assert cli(["unpack", "--image", f"{tmp_path / 'img'}:latest", str(out_dir / "b")]) == 0
    err = capfd.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("unpacked sha256:") and "\r" not in err, err
    assert (out_dir / "b/rootfs/a").read_bytes() == b"1"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli(["unpack", "--image", f"{tmp_path / 'img'}:latest", str(out_dir / "c")]) == 0
    err = capfd.readouterr().err
    monkeypatch.undo()
    assert "unpack c: 100%" in err and "\r" in err and err.rstrip().splitlines()[-1].startswith("unpacked sha256:"), err


# ---------------------------------------------------------------- empty and odd paths


@pytest.mark.parametrize("bundle", ["", "   ", "\t"])
def test_cli_unpack_force_with_an_empty_bundle_path_is_an_error_and_keeps_the_cwd(tmp_path, monkeypatch, capfd, bundle):
    """``ocilearn unpack --force --image IMG ""`` used to replace the current directory
    with a bundle (Path("") is "."); umoci refuses an empty bundle path."""
    img = built_image("busybox")
    work = tmp_path / "work"
    work.mkdir()
    (work / "precious.txt").write_text("mine")
    monkeypatch.chdir(work)
    assert cli(["unpack", "-q", "--force", "--image", f"{img}:latest", bundle]) == 1
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "BUNDLE argument is" in err and "current directory" in err
    assert sorted(os.listdir(work)) == ["precious.txt"] and (work / "precious.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["work"]


@pytest.mark.parametrize("bundle", ["", " "])
def test_library_unpack_refuses_an_empty_bundle_path(tmp_path, monkeypatch, bundle):
    img = built_image("busybox")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep").write_text("x")
    with pytest.raises(BundleError, match="bundle path is (empty|only whitespace)"):
        unpack(f"{img}:latest", bundle, force=True)
    assert sorted(os.listdir(tmp_path)) == ["keep"]


def test_unpack_refuses_an_empty_image_path(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LayoutError, match="image layout path is empty"):
        unpack("", tmp_path / "b")
    with pytest.raises(LayoutError, match="image layout path is empty"):
        unpack("oci:", tmp_path / "b")
    with pytest.raises(LayoutError, match="image layout path is only whitespace"):
        unpack(" ", tmp_path / "b", ref="latest")
    assert cli(["unpack", "-q", "--image", "", str(tmp_path / "b")]) == 1
    assert "--image is empty" in capfd.readouterr().err
    assert not (tmp_path / "b").exists()


def test_force_never_replaces_the_current_directory_or_a_parent_of_it(tmp_path, monkeypatch):
    img = built_image("busybox")
    inner = tmp_path / "b" / "deep"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    for target in (".", "..", str(tmp_path / "b")):
        with pytest.raises(BundleError, match="current directory"):
            unpack(f"{img}:latest", target, force=True)
    assert inner.is_dir() and sorted(os.listdir(tmp_path)) == ["b"]


@pytest.mark.parametrize("path", ["", "  "])
def test_remove_helpers_refuse_an_empty_path(tmp_path, monkeypatch, path):
    from ocilearn.bundle.unpack import remove_stale_temps

    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep").write_text("x")
    with pytest.raises(BundleError, match="path to remove is"):
        remove_tree(path)
    with pytest.raises(BundleError, match="bundle path is"):
        remove_stale_temps(path)
    assert (tmp_path / "keep").read_text() == "x"


def test_cli_spec_and_layer_list_refuse_empty_paths(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    assert cli(["spec", "--bundle", ""]) == 1
    assert "--bundle is empty" in capfd.readouterr().err
    assert cli(["layer", "list", ""]) == 1
    assert "TARGET argument is empty" in capfd.readouterr().err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kind", ["symlink-to-device", "fifo"])
def test_unpack_never_opens_a_layer_blob_that_is_not_a_regular_file(tmp_path, kind):
    from ocilearn.bundle.unpack import unpack
    from ocilearn.image import embedded
    from ocilearn.image.layout import ImageLayout

    layout = embedded.copy_to(tmp_path / "img")
    img = ImageLayout(layout.path).resolve("latest")
    blob = ImageLayout(layout.path).blob_path(img.manifest.layers[0].digest)
    blob.unlink()
    if kind == "fifo":
        os.mkfifo(blob)
    else:
        blob.symlink_to("/dev/zero")
    with pytest.raises(LayoutError, match="not a regular file"):
        unpack(f"{layout.path}:latest", tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()
