"""ImageLayout.init: order of writes and completion of a half-made layout."""

from __future__ import annotations

import json

import pytest

from ocilearn.core.errors import LayoutError
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
