"""Narration (ocilearn.core.explain): steps are recorded only inside a recording block."""

from __future__ import annotations

from ocilearn.core import explain
from ocilearn.image.digest import Digest
from ocilearn.image.layout import ImageLayout


def test_no_recording_by_default(tmp_path):
    assert not explain.enabled()
    layout = ImageLayout.init(tmp_path / "l")
    layout.put_blob(b"hello")  # must not fail or record anywhere
    assert not explain.enabled()


def test_recording_captures_real_steps_with_reference_commands(tmp_path):
    with explain.recording() as steps:
        layout = ImageLayout.init(tmp_path / "l")
        digest, size = layout.put_blob(b"hello")
    assert not explain.enabled()
    assert [s.action for s in steps] == ["init", "put blob"]
    assert steps[0].equivalent == f"umoci init --layout {tmp_path / 'l'}"
    want = Digest.of(b"hello")
    assert digest == want and size == 5
    assert str(want) in steps[1].detail and "5 bytes" in steps[1].detail
    text = str(steps)
    assert "1. [layout] init" in text and f"$ umoci init --layout {tmp_path / 'l'}" in text
    html = steps._repr_html_()
    assert html.count("<tr>") == 3 and "put blob" in html  # header + 2 rows


def test_nested_recordings_are_independent(tmp_path):
    layout = ImageLayout.init(tmp_path / "l")
    with explain.recording() as outer:
        layout.put_blob(b"a")
        with explain.recording() as inner:
            layout.put_blob(b"b")
        layout.put_blob(b"c")
    assert len(inner) == 1 and str(Digest.of(b"b")) in inner[0].detail
    assert [str(Digest.of(x)) in s.detail for s, x in zip(outer, [b"a", b"c"], strict=True)] == [True, True]
