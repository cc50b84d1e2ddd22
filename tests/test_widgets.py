"""The course widgets, driven headless: call what a click calls, read the HTML widgets."""

from __future__ import annotations

import gzip
import html
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from ocilearn.image import embedded
from ocilearn.image import mediatypes as mt
from ocilearn.image.layout import ImageLayout
from ocilearn.image.model import Descriptor, dumps
from ocilearn.views import widgets


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
    assert kinds == ["index.json", "manifest", "config", "layer", "layer"]  # the embedded image has two layers
    image = lo.resolve(embedded.REF)
    doc = html.unescape(e.select("config"))
    assert json.loads(doc[doc.index("{"): doc.rindex("}") + 1]) == json.loads(lo.read_blob(image.manifest.config))
    assert e.picker.value.startswith("config " + image.manifest.config.digest.short)
    assert str(image.manifest.config.digest) in html.unescape(e.descriptor.value)
    assert f"parent: {image.digest}" in html.unescape(e.descriptor.value)
    layer = html.unescape(e.select("layer"))
    assert f"{image.manifest.layers[0].size} bytes" in layer and "bin/busybox" in layer
    assert "<svg" in e.graph.value  # the image graph drawn by ocilearn.views.graph


def test_provenance_table_from_convert_rows(tmp_path):
    from ocilearn.bundle import convert

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
    assert user and json.loads(user[0][1]) == {"uid": 1000, "gid": 1000, "additionalGids": [1000]}, user  # primary gid first (CVE-2022-36109)
    assert user[0][2] == "rootfs /etc/passwd" and "'app'" in user[0][3]  # the why column from convert.Row
    assert ">why</th>" in t.table.value
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

    code = "import sys, ocilearn.views.widgets, ocilearn.course; print('ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parent)
    assert out.stdout.strip() == "False"


def _bundle(tmp_path, rootless: bool) -> Path:
    from ocilearn.bundle.unpack import unpack

    bundle = tmp_path / "bundle"
    unpack(f"{embedded.layout_path()}:{embedded.REF}", bundle, rootless=rootless)
    return bundle


STEPPER_SCRIPT = r"""
import html, json, os, sys
from ocilearn.views import widgets
s = widgets.setup_stepper(sys.argv[1])
before = dict(s.process.last_view)
views = []
while not s.finished:
    s.next()
    views.append(dict(s.process.last_view))
print(json.dumps({"before": before, "views": views, "done": [[n, str(r)] for n, r in s.done],
                  "error": repr(s.error), "rc": s.process.proc.returncode}))
"""


def _check_setup_views(out: dict, bundle: Path, user_line: str) -> None:
    assert out["error"] == "None", out["error"]
    views, done = out["views"], dict(out["done"])
    assert out["before"]["my PID"] != "1" and int(out["before"]["/proc"].split()[0]) > 5
    unshared, hostname, proc, pivoted, ran = views[0], views[2], views[4], views[5], views[6]
    assert unshared["my PID"] == "1"  # PID 1 of the new PID namespace ...
    assert int(unshared["/proc"].split()[0]) > 5  # ... but /proc is still the host's
    assert unshared["hostname"] == out["before"]["hostname"] and hostname["hostname"] == "ocilearn"
    assert f"{bundle}/rootfs/proc lists PIDs [1]" in [v for k, v in done.items() if k.startswith("mount -t proc")][0]
    assert int(proc["/proc"].split()[0]) > 5  # until pivot_root
    assert pivoted["/proc"] == "1 processes: 1" and pivoted["mounts"].startswith("2 mounts")
    assert "linuxrc" in pivoted["/"].split() and ".dockerenv" not in pivoted["/"]
    assert user_line in [v for k, v in done.items() if k.startswith("fork, setuid")][0]
    assert ran["/proc"] == "1 processes: 1"  # the image's process has exited and was reaped by PID 1
    assert out["rc"] == 0


def test_setup_stepper_builds_a_container_step_by_step(tmp_path):
    """Root path: each step's view is the real one, the image's process prints what runc's
    run prints for this image, and nothing stays mounted on the host."""
    import subprocess
    import sys

    if os.geteuid() != 0:
        pytest.skip("needs root: the root path of the stepper (the rootless path is tested as a user below)")
    bundle = _bundle(tmp_path, rootless=False)
    p = subprocess.run([sys.executable, "-c", STEPPER_SCRIPT, str(bundle)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    _check_setup_views(json.loads(p.stdout), bundle, "hello from app in /home/app")
    assert str(bundle) not in Path("/proc/self/mountinfo").read_text()


def test_setup_stepper_rootless_as_unprivileged_user(unpriv_user):
    """Rootless path: a user namespace maps the user to root; same views; the process
    runs as root in the namespace (uid 1000 is not mapped)."""
    import shutil
    import tempfile

    from conftest import as_user
    from test_notebooks import _user_python

    py, env = _user_python(unpriv_user)
    work = Path(tempfile.mkdtemp(prefix="ocilearn-stepper-"))
    try:
        os.chmod(work, 0o755)
        if os.geteuid() == 0:
            os.chown(work, unpriv_user[1], unpriv_user[2])
        bundle = work / "bundle"
        script = work / "run.py"
        script.write_text(
            "import sys\nfrom ocilearn.bundle.unpack import unpack\nfrom ocilearn.image import embedded\n"
            f"unpack(f'{{embedded.layout_path()}}:{{embedded.REF}}', {str(bundle)!r}, rootless=True)\n"
        )
        os.chmod(script, 0o644)
        env = {**env, "HOME": str(work), "TMPDIR": str(work)}
        p = as_user(unpriv_user, [py, str(script)], env=env, timeout=60)
        assert p.returncode == 0, p.stderr
        p = as_user(unpriv_user, [py, "-c", STEPPER_SCRIPT, str(bundle)], env=env, timeout=60)
        assert p.returncode == 0, p.stderr
        _check_setup_views(json.loads(p.stdout), bundle, "hello from root in /home/app")
    finally:
        shutil.rmtree(work, ignore_errors=True)
