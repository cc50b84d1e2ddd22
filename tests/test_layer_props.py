"""Property test: random layer stacks applied by ocilearn equal a tiny in-memory model of
image-spec layer.md (whiteouts apply to lower layers only, before the layer's own entries;
opaque whiteouts hide all lower children; last entry wins; entries under a non-directory
replace it with a directory; hardlinks share an inode)."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from layer_helpers import D, F, H, S, tar_bytes

from ocilearn.layer.apply import apply_layer
from ocilearn.layer.whiteout import OPAQUE_WHITEOUT, WHITEOUT_PREFIX

DIRS = ["a", "b"]          # names used as directory components (and as files, to force replacements)
FILES = ["a", "b", "f", "g"]
N = [0]


def _ino() -> int:
    N[0] += 1
    return N[0]


def _drop(state: dict, path: str) -> None:
    for p in [p for p in state if p == path or p.startswith(path + "/")]:
        del state[p]


def model_apply(state: dict, entries: list) -> dict:
    """state: {path: ("dir",) | ("file", ino, bytes) | ("symlink", target)}."""
    state = dict(state)
    for _kind, name, *_ in entries:  # whiteouts first, against the lower layers only
        base = name.rpartition("/")[2]
        parent = name.rpartition("/")[0]
        if base == OPAQUE_WHITEOUT:
            for p in [p for p in state if parent and p.startswith(parent + "/")]:
                del state[p]
        elif base.startswith(WHITEOUT_PREFIX):
            _drop(state, (parent + "/" if parent else "") + base[4:])
    for kind, name, payload, *_ in entries:
        base = name.rpartition("/")[2]
        if base.startswith(WHITEOUT_PREFIX):
            continue
        parts = name.split("/")
        for i in range(1, len(parts)):
            anc = "/".join(parts[:i])
            if state.get(anc) != ("dir",):
                _drop(state, anc)
                state[anc] = ("dir",)
        if kind == "dir":
            if state.get(name) != ("dir",):
                _drop(state, name)
                state[name] = ("dir",)
            continue
        if kind == "file":
            node = ("file", _ino(), payload)
        elif kind == "symlink":
            node = ("symlink", payload)
        else:
            node = state[payload]
        _drop(state, name)
        state[name] = node
    return state


def model_view(state: dict):
    view = {p: (n[0], n[2]) if n[0] == "file" else n for p, n in state.items()}
    groups: dict[int, set] = {}
    for p, n in state.items():
        if n[0] == "file":
            groups.setdefault(n[1], set()).add(p)
    return view, sorted(sorted(g) for g in groups.values() if len(g) > 1)


def real_view(root: str):
    view, inodes = {}, {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            rel = os.path.relpath(full, root)
            st_ = os.lstat(full)
            if stat.S_ISDIR(st_.st_mode):
                view[rel] = ("dir",)
            elif stat.S_ISLNK(st_.st_mode):
                view[rel] = ("symlink", os.readlink(full))
            else:
                view[rel] = ("file", open(full, "rb").read())
                inodes.setdefault(st_.st_ino, set()).add(rel)
    return view, sorted(sorted(g) for g in inodes.values() if len(g) > 1)


def _path(draw, leaf_pool):
    depth = draw(st.integers(0, 2))
    comps = [draw(st.sampled_from(DIRS)) for _ in range(depth)]
    return "/".join(comps + [draw(st.sampled_from(leaf_pool))])


@st.composite
def layer_stacks(draw):
    stack = []
    state: dict = {}
    for _ in range(draw(st.integers(1, 4))):
        entries: list = []
        for _ in range(draw(st.integers(1, 9))):
            kind = draw(st.sampled_from(["file", "file", "dir", "symlink", "hardlink", "whiteout", "opaque"]))
            if kind == "file":
                entries.append(F(_path(draw, FILES), draw(st.binary(max_size=8))))
            elif kind == "dir":
                entries.append(D(_path(draw, DIRS)))
            elif kind == "symlink":
                entries.append(S(_path(draw, ["s"]), draw(st.sampled_from(["/nonexistent/t", "f", "../g", "/a/f"]))))
            elif kind == "whiteout":
                p = _path(draw, FILES + ["s", "h"])
                parent, _, base = p.rpartition("/")
                entries.append(F((parent + "/" if parent else "") + ".wh." + base))
            elif kind == "opaque":
                entries.append(F(_path(draw, DIRS) + "/.wh..wh..opq"))
            else:
                own = {e[1] for e in entries if e[0] in ("file", "hardlink")}
                now = model_apply(state, [e for e in entries if not e[1].rpartition("/")[2].startswith(".wh.")])
                cands = sorted(p for p in own if now.get(p, ("x",))[0] == "file")
                if cands:
                    name = _path(draw, ["h"])
                    target = draw(st.sampled_from(cands))
                    if target != name and not name.startswith(target + "/"):
                        entries.append(H(name, target))
        state = model_apply(state, entries)
        stack.append(entries)
    return stack


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer_stacks())
def test_random_layer_stacks_match_the_model(stack):
    root = tempfile.mkdtemp(prefix="ocilearn-prop-")
    try:
        state: dict = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for entries in stack:
                apply_layer(root, io.BytesIO(tar_bytes(entries)), rootless=False)
                state = model_apply(state, entries)
        assert real_view(root) == model_view(state)
    finally:
        shutil.rmtree(root)
