"""The course widgets, driven headless: call what a click calls, read the HTML widgets."""

from __future__ import annotations

import gzip
import html
import io
import json
import tarfile
from pathlib import Path

import pytest

from ocilearn import embedded, widgets
from ocilearn import mediatypes as mt
from ocilearn.layout import ImageLayout
from ocilearn.model import Descriptor, dumps


def _tar(entries: list[tuple[str, bytes | None]]) -> bytes:
    """A gzip tar of (name, content) — content None makes a directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1735689600
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                t.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                t.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


@pytest.fixture
def two_layer_layout(tmp_path) -> ImageLayout:
    """An image whose upper layer modifies, deletes (whiteout) and hides (opaque whiteout)."""
    lo = ImageLayout.init(tmp_path / "img")
    lower = _tar([("etc", None), ("etc/motd", b"hi\n"), ("etc/issue", b"v1\n"), ("opt", None), ("opt/a", b"a"), ("opt/b", b"b")])
    upper = _tar([("etc", None), ("etc/issue", b"v2\n"), ("etc/.wh.motd", b""), ("opt", None), ("opt/.wh..wh..opq", b""), ("opt/c", b"c")])
    layers = []
    for blob in (lower, upper):
        d, n = lo.put_blob(blob)
        layers.append(Descriptor(mt.OCI_LAYER_GZIP, d, n))
    config = dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                    "rootfs": {"type": "layers", "diff_ids": [f"sha256:{'0' * 64}", f"sha256:{'1' * 64}"]}})
    cdesc = lo.put_json("application/vnd.oci.image.config.v1+json", config)
    manifest = dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": cdesc.to_dict(), "layers": [d.to_dict() for d in layers]})
    mdesc = lo.put_json("application/vnd.oci.image.manifest.v1+json", manifest)
    lo.add_ref("t", mdesc)
    return lo


def test_layer_browser_marks_changes_whiteouts_and_opaque(two_layer_layout):
    b = widgets.LayerBrowser.from_layout(two_layer_layout, "t")
    assert len(b.layers) == 2
    assert b.counts(0) == {"added": 6}
    assert b.counts(1) == {"modified": 3, "whiteout": 1, "opaque": 1, "added": 1}
    upper = {e.path: e for e in b.layers[1][1]}
    assert upper["etc/.wh.motd"].change == "whiteout" and upper["etc/.wh.motd"].target == "etc/motd"
    assert upper["opt/.wh..wh..opq"].change == "opaque" and upper["opt/.wh..wh..opq"].target == "opt"
    assert upper["etc/issue"].change == "modified" and upper["opt/c"].change == "added"
    tree = html.unescape(b.show(1))  # what picking layer 1 in the dropdown shows
    assert b.picker.value == 1
    assert "[whiteout: deletes etc/motd]" in tree
    assert "[opaque whiteout: hides lower opt]" in tree
    assert "~   issue   [modified]" in tree
    assert "1 opaque" in b.summary.value and "1 whiteout" in b.summary.value


def test_image_explorer_shows_descriptor_and_json(tmp_path):
    lo = embedded.copy_to(tmp_path / "img")
    e = widgets.ImageExplorer(lo)
    kinds = [n.kind for n in e.nodes]
    assert kinds == ["index.json", "manifest", "config", "layer"]
    image = lo.resolve(embedded.REF)
    doc = html.unescape(e.select("config"))
    assert json.loads(doc[doc.index("{"): doc.rindex("}") + 1]) == json.loads(lo.read_blob(image.manifest.config))
    assert e.picker.value.startswith("config " + image.manifest.config.digest.short)
    assert str(image.manifest.config.digest) in html.unescape(e.descriptor.value)
    assert f"parent: {image.digest}" in html.unescape(e.descriptor.value)
    layer = html.unescape(e.select("layer"))
    assert f"{image.manifest.layers[0].size} bytes" in layer and "bin/busybox" in layer
    assert "<svg" in e.graph.value  # the image graph drawn by ocilearn.graph


def test_provenance_table_from_convert_rows(tmp_path):
    from ocilearn import convert

    lo = embedded.open()
    cfg = lo.image_config(lo.resolve(embedded.REF))
    (tmp_path / "etc").mkdir()  # the embedded image's User "app" resolves through /etc/passwd
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\napp:x:1000:\n")
    rows = convert.explain_config(cfg, tmp_path)
    t = widgets.ProvenanceTable(rows)
    assert len(t.rows) == len(rows) and "all" in t.sources.options
    args = [r for r in t.rows if r[0] == "process.args"]
    assert args and json.loads(args[0][1]) == list(cfg.config.entrypoint or ()) + list(cfg.config.cmd or ())
    src = args[0][2]
    shown = t.filter(src)
    assert shown and all(r[2] == src for r in shown)
    assert "process.args" in t.table.value and t.sources.value == src
    assert len(t.filter("all")) == len(rows)
    user = [r for r in t.rows if r[0] == "process.user"]
    assert user and json.loads(user[0][1]) == {"uid": 1000, "gid": 1000}, user
    assert user[0][2] == "rootfs /etc/passwd" and "'app'" in user[0][3]  # the why column from convert.Row
    assert "<th style='text-align:left'>why</th>" in t.table.value
    # plain tuples work too
    assert widgets.ProvenanceTable([("hostname", "x", "default")]).rows == [("hostname", "x", "default", "")]


def test_runtime_stepper_steps_click_view_and_failure(tmp_path):
    log = tmp_path / "log"
    steps = [
        ("write a", lambda: log.write_text("a") and "wrote a"),
        ("append b", lambda: (log.open("a").write("b"), "appended b")[1]),
        ("fail", lambda: (_ for _ in ()).throw(OSError(1, "Operation not permitted"))),
        ("never", lambda: log.write_text("never")),
    ]
    s = widgets.RuntimeStepper(steps, view=lambda: {"file": log.read_text()})
    assert "step 0/4" in s.status.value and not s.button.disabled
    assert s.next() == "write a"
    assert "step 1/4" in s.status.value and "<b>file</b>" in s.view_html.value and ">a</pre>" in s.view_html.value
    s.button.click()  # the Next button does the same as next()
    assert s.position == 2 and log.read_text() == "ab" and "appended b" in s.view_html.value
    assert s.next() == "fail"
    assert isinstance(s.error, OSError) and "failed: PermissionError: [Errno 1] Operation not permitted" in s.status.value and s.button.disabled
    assert s.next() is None and log.read_text() == "ab"  # the step after a failure never runs
    assert [n for n, _ in s.done] == ["write a", "append b", "fail"]


def test_widgets_module_imports_no_ipywidgets():
    import subprocess
    import sys

    code = "import sys, ocilearn.widgets, ocilearn.course; print('ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parent)
    assert out.stdout.strip() == "False"
