"""ImageLayout.init: order of writes and completion of a half-made layout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from layer_helpers import D, F, gz, make_image, tar_bytes

from ocilearn.core.errors import LayoutError
from ocilearn.image import mediatypes as mt
from ocilearn.image.layout import ImageLayout


def test_init_writes_an_empty_layout(tmp_path):
    layout = ImageLayout.init(tmp_path / "l")
    assert json.loads((tmp_path / "l" / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    idx = json.loads((tmp_path / "l" / "index.json").read_bytes())
    assert idx == {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
    assert (tmp_path / "l" / "blobs" / "sha256").is_dir() and layout.refs() == {}


@pytest.mark.parametrize("left", [["blobs"], ["blobs", "index.json"], ["blobs", "oci-layout"], []])
def test_init_completes_what_a_killed_init_left(tmp_path, left):
    p = tmp_path / "l"
    ImageLayout.init(p)
    for name in {"blobs", "index.json", "oci-layout"} - set(left):
        target = p / name
        if target.is_dir():
            for sub in sorted(target.rglob("*"), reverse=True):
                sub.rmdir()
            target.rmdir()
        else:
            target.unlink()
    layout = ImageLayout.init(p)
    assert layout.index().manifests == ()
    assert (p / "oci-layout").is_file() and (p / "blobs" / "sha256").is_dir()


def test_init_refuses_a_directory_with_other_content(tmp_path):
    p = tmp_path / "l"
    p.mkdir()
    (p / "precious.txt").write_text("keep me")
    with pytest.raises(LayoutError, match="not an empty directory"):
        ImageLayout.init(p)
    assert sorted(x.name for x in p.iterdir()) == ["precious.txt"]


def test_init_exist_ok_false(tmp_path):
    ImageLayout.init(tmp_path / "l")
    with pytest.raises(LayoutError, match="already exists"):
        ImageLayout.init(tmp_path / "l", exist_ok=False)


@pytest.mark.parametrize("path", ["", " ", "\n", b""])
def test_layout_entry_points_refuse_an_empty_path(tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LayoutError, match="image layout path is (empty|only whitespace)"):
        ImageLayout.init(path)
    with pytest.raises(LayoutError, match="image layout path is (empty|only whitespace)"):
        ImageLayout.open(path)
    with pytest.raises(LayoutError, match="image layout path is (empty|only whitespace)"):
        ImageLayout(path)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ real processes: first writers, kill -9



def _source_layout(path: Path) -> dict[str, str]:
    """A small local layout with one image; returns {ref: manifest digest}."""
    lay = make_image(path, [(gz(tar_bytes([D("etc"), F("etc/hostname", b"box\n")])), mt.OCI_LAYER_GZIP)])
    return {k: str(v.digest) for k, v in lay.refs().items()}


def test_four_concurrent_copies_into_a_missing_layout_keep_every_ref(tmp_path):
    """Four `ocilearn copy` processes create the same new layout at once; every round,
    every ref name is present with the source's manifest digest (20 rounds)."""
    src = tmp_path / "src"
    want = _source_layout(src)["latest"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for rnd in range(20):
        dst = tmp_path / f"dst{rnd}"
        procs = [subprocess.Popen([sys.executable, "-m", "ocilearn", "copy", f"oci:{src}:latest", f"oci:{dst}:t{i}"],
                                  cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(4)]
        errs = [(p.wait(120), p.stderr.read().decode()) for p in procs]
        assert [rc for rc, _ in errs] == [0, 0, 0, 0], errs
        refs = {k: str(v.digest) for k, v in ImageLayout.open(dst).refs().items()}
        assert refs == {f"t{i}": want for i in range(4)}, (rnd, refs)
        assert ImageLayout.open(dst).fsck().ok
        assert not [n for n in os.listdir(tmp_path) if ".ocilearn-init-" in n]


_SLOW_INIT = """
import os, sys, time
import ocilearn.image.layout as L
real = L.atomic_write
def slow(path, data, mode=0o644):
    if path.name == sys.argv[2]:
        print("writing", flush=True)
        time.sleep(60)
    real(path, data, mode)
L.atomic_write = slow
L.ImageLayout.init(sys.argv[1])
"""


@pytest.mark.parametrize("killed_at", ["index.json", "oci-layout"])
@pytest.mark.parametrize("existing", [False, True])
def test_kill_9_while_a_new_layout_is_written_never_leaves_it_refused(tmp_path, killed_at, existing):
    """SIGKILL while index.json or oci-layout is written: copy, fsck and gc still work on
    the directory afterwards (a missing one never appears; an empty one is completed)."""
    src = tmp_path / "src"
    want = _source_layout(src)["latest"]
    dst = tmp_path / "dst"
    if existing:
        dst.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.Popen([sys.executable, "-c", _SLOW_INIT, str(dst), killed_at], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "writing\n"
    p.send_signal(signal.SIGKILL)
    assert p.wait(10) == -signal.SIGKILL
    assert (not dst.exists()) if not existing else dst.is_dir()
    run = [sys.executable, "-m", "ocilearn"]
    r = subprocess.run(run + ["copy", f"oci:{src}:latest", f"oci:{dst}:x"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert {k: str(v.digest) for k, v in ImageLayout.open(dst).refs().items()} == {"x": want}
    for cmd in (["layout", "fsck", str(dst)], ["layout", "gc", str(dst)]):
        r = subprocess.run(run + cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (cmd, r.stdout, r.stderr)
    assert not [n for n in os.listdir(tmp_path) if ".ocilearn-init-" in n or n.startswith(".tmp-")]
    assert not [n for n in os.listdir(dst) if n.startswith(".tmp-")]
