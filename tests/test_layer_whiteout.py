"""layer/whiteout.py: whiteouts and opaque whiteouts (image-spec layer.md "Whiteouts",
"Opaque Whiteout"), through apply_layer and called directly."""

from __future__ import annotations

import os
import warnings

import pytest
from layer_helpers import D, F, S, apply, tar_bytes, tree

from ocilearn.core import fsutil
from ocilearn.layer.tar import LayerWarning
from ocilearn.layer.whiteout import OwnPaths, apply_opaque_whiteout, apply_whiteout, whiteout_of

# ------------------------------------------------------------------ through apply_layer


def test_opaque_whiteout_is_not_a_plain_whiteout(tmp_path):
    l1 = tar_bytes([D("bin"), F("bin/old1", b"1"), D("bin/sub"), F("bin/sub/old2", b"2")])
    l2 = tar_bytes([D("bin"), F("bin/.wh..wh..opq"), F("bin/new", b"n")])
    res = apply(tmp_path, l1, l2)
    assert tree(tmp_path) == {"bin": "dir", "bin/new": "file:n"}
    assert res[1].opaque == ["bin"]


@pytest.mark.parametrize("order", ["opaque-first", "opaque-last", "plain-whiteout-last"])
def test_opaque_whiteout_applies_first_whatever_the_tar_order(tmp_path, order):
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


def test_whiteout_never_deletes_an_entry_of_its_own_layer(tmp_path):
    apply(tmp_path, tar_bytes([F("x", b"kept"), F(".wh.x")]))
    assert tree(tmp_path) == {"x": "file:kept"}
    apply(tmp_path, tar_bytes([F("y", b"lower")]), tar_bytes([F(".wh.y"), F("y", b"upper")]))
    assert tree(tmp_path)["y"] == "file:upper"


def test_degenerate_whiteouts_are_ignored_with_a_warning(tmp_path):
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



# ------------------------------------------------------------------ trees of any depth


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
def test_whiteout_opaque_or_replace_of_a_1500_level_tree(deep_tmp, top):
    """A recursive removal would raise RecursionError at ~1000 levels (Python's recursion limit)."""
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


def test_opaque_marker_keeps_a_deep_tree_of_its_own_layer(deep_tmp):
    """The opaque whiteout descends into this layer's own deep tree without recursion and keeps it."""
    apply(deep_tmp, tar_bytes([F("d/old", b"lower")]))
    deep = "/".join(["d"] * DEEP)
    apply(deep_tmp, tar_bytes([F(deep + "/new", b"mine"), F("d/.wh..wh..opq")]))
    assert not (deep_tmp / "d/old").exists() and (deep_tmp / deep / "new").read_bytes() == b"mine"


def test_remove_tree_at_any_depth_and_restrictive_modes(deep_tmp):
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



# ------------------------------------------------------------------ symlink aliases in one layer


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
def test_whiteout_never_deletes_what_this_layer_wrote_through_a_symlink(tmp_path, layer1, expected):
    """A whiteout applies to lower layers only (layer.md), also through an alias: the same
    layer wrote real/new as lnk/new, then whited out real (or made it opaque); the lower
    real/old goes, real/new stays."""
    apply(tmp_path, tar_bytes(L0_REAL), tar_bytes(layer1))
    assert tree(tmp_path) == expected


def test_stale_dir_fd_cache_after_replacing_a_directory_reached_by_alias(tmp_path):
    """Root cached lnk's fd of the old 'real'; replacing 'real' left it stale → ENOENT."""
    layer = [D("real"), S("lnk", "real"), F("lnk/a", b"1"), F("real", b"f"), D("real"), F("lnk/b", b"2")]
    with pytest.warns(LayerWarning, match="duplicate entry 'real'"):
        apply(tmp_path, tar_bytes(layer))
    assert tree(tmp_path) == {"lnk": "symlink:real", "real": "dir", "real/b": "file:2"}



# ------------------------------------------------------------------ the public functions, called directly


def test_whiteout_of_names_the_marker_and_its_target():
    assert whiteout_of("etc/.wh.motd") == ("whiteout", "etc/motd")
    assert whiteout_of(".wh.x") == ("whiteout", "x")
    assert whiteout_of("bin/.wh..wh..opq") == ("opaque", "bin")  # matched before the generic prefix
    assert whiteout_of(".wh..wh..opq") == ("opaque", "")
    assert whiteout_of("etc/motd") is None and whiteout_of("etc/x.wh.y") is None


def test_apply_whiteout_deletes_a_lower_file_or_tree_and_returns_it(tmp_path):
    apply(tmp_path, tar_bytes([F("etc/motd", b"hi"), F("etc/keep", b"k"), F("opt/app/bin/run", b"r")]))
    with fsutil.Root(tmp_path) as root:
        assert apply_whiteout(root, "etc/.wh.motd") == "etc/motd"
        assert apply_whiteout(root, ".wh.opt") == "opt"
        assert apply_whiteout(root, "etc/.wh.motd") is None  # already gone: nothing to delete
        assert apply_whiteout(root, "nothere/.wh.x") is None
    assert tree(tmp_path) == {"etc": "dir", "etc/keep": "file:k"}


def test_apply_whiteout_spares_what_this_layer_wrote(tmp_path):
    apply(tmp_path, tar_bytes([F("etc/motd", b"lower")]))
    with fsutil.Root(tmp_path) as root:
        own = OwnPaths(root)
        own.add("etc/motd")  # as if this layer had just written etc/motd
        assert apply_whiteout(root, "etc/.wh.motd", own) is None
    assert (tmp_path / "etc/motd").read_bytes() == b"lower"


def test_apply_whiteout_warns_about_a_degenerate_marker(tmp_path):
    apply(tmp_path, tar_bytes([F("data/keep", b"k")]))
    said: list[str] = []
    with fsutil.Root(tmp_path) as root:
        for marker in (".wh.", "data/.wh.", "data/.wh..", "data/.wh..."):
            assert apply_whiteout(root, marker, warn=said.append) is None
    assert len(said) == 4 and all("degenerate whiteout" in m and 'layer.md "Whiteouts"' in m for m in said)
    assert tree(tmp_path) == {"data": "dir", "data/keep": "file:k"}


def test_apply_whiteout_through_a_symlink_to_the_host_stays_inside(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_bytes(b"p")
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    apply(rootfs, tar_bytes([S("lnk", str(outside))]))
    with fsutil.Root(rootfs) as root:
        assert apply_whiteout(root, "lnk/.wh.precious") is None  # resolved inside the rootfs: not there
    assert (outside / "precious").read_bytes() == b"p"


def test_apply_opaque_whiteout_keeps_this_layers_children(tmp_path):
    apply(tmp_path, tar_bytes([F("bin/old", b"o"), F("bin/sub/deep", b"d"), F("etc/x", b"x")]))
    with fsutil.Root(tmp_path) as root:
        own = OwnPaths(root)
        (tmp_path / "bin/new").write_bytes(b"n")  # as if this layer had just written bin/new
        own.add("bin/new")
        assert apply_opaque_whiteout(root, "bin/.wh..wh..opq", own) == "bin"
        assert apply_opaque_whiteout(root, "nothere/.wh..wh..opq", own) is None
    assert tree(tmp_path) == {"bin": "dir", "bin/new": "file:n", "etc": "dir", "etc/x": "file:x"}


def test_own_paths_are_keyed_by_the_resolved_directory(tmp_path):
    apply(tmp_path, tar_bytes([D("real"), S("lnk", "real")]))
    with fsutil.Root(tmp_path) as root:
        own = OwnPaths(root)
        assert own.key(root.dir_fd("lnk"), "new") == "real/new" == own.key(root.dir_fd("real"), "new")
        own.add("real/new")
        assert own.owns("real/new") and own.owns("real") and own.owns("") and not own.owns("lnk")
