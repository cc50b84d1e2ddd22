"""Regressions from the second hostile review: container IDs on every command, signal
numbers, an empty --root, blob files that are devices or symlinks, and the rootless
chmod that must never follow a swapped-in symlink."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys

import pytest

from ocilearn.core.errors import ContainerError, LayoutError
from ocilearn.core.fsutil import _grant
from ocilearn.runtime.container import Container, check_id, parse_signal

OCILEARN = [sys.executable, "-c", "from ocilearn.entry import entry; entry()"]


@pytest.mark.parametrize("bad", ["..", ".", "", "/tmp/x", "a/b", "../x", "x\0y"])
def test_every_command_checks_the_container_id(tmp_path, bad):
    root = tmp_path / "sub" / "R"
    root.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("data")
    (tmp_path / "sub" / "keep").write_text("data")
    with pytest.raises(ContainerError, match="invalid container id"):
        Container.load(str(root), bad if bad != "/tmp/x" else str(victim))
    for cmd in (["delete"], ["delete", "--force"], ["state"], ["kill"], ["start"]):
        arg = str(victim) if bad == "/tmp/x" else bad
        if "\0" in arg:
            continue  # not passable on a command line
        p = subprocess.run([*OCILEARN, "--root", str(root), *cmd, arg], capture_output=True, text=True, timeout=30)
        assert p.returncode != 0, (cmd, p.stdout, p.stderr)
        assert "invalid container id" in p.stderr and "Traceback" not in p.stderr
    assert (victim / "keep").read_text() == "data" and (tmp_path / "sub" / "keep").read_text() == "data"


def test_good_ids_pass():
    assert check_id("web-1.a_b+c") == "web-1.a_b+c"


def test_empty_root_is_refused_not_the_default(tmp_path):
    p = subprocess.run([*OCILEARN, "--root", "", "delete", "x"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "--root is empty" in p.stderr


@pytest.mark.parametrize("value", ["\u0669", "99999999999999999999", "0", "-1", str(int(signal.SIGRTMAX) + 1)])
def test_signal_numbers_are_ascii_and_in_range(value):
    with pytest.raises(ContainerError):
        parse_signal(value)


def test_signal_names_and_numbers():
    assert parse_signal("TERM") == signal.SIGTERM and parse_signal("SIGKILL") == 9 and parse_signal("15") == 15


def test_grant_never_chmods_through_a_symlink(tmp_path):
    target = tmp_path / "target"
    target.write_text("secret")
    target.chmod(0o600)
    d = tmp_path / "dir"
    d.mkdir()
    (d / "s").symlink_to(target)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        # an lstat of a restrictive directory, then the entry swapped for a symlink
        fake = os.stat_result((stat.S_IFDIR | 0o077, 0, 0, 1, 0, 0, 0, 0, 0, 0))
        _grant(fd, "s", fake)
        (d / "real").mkdir()
        (d / "real").chmod(0o077)
        _grant(fd, "real", os.lstat(d / "real"))
    finally:
        os.close(fd)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(d / "real").st_mode) == 0o777


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


def test_extended_headers_have_a_total_budget_per_layer(tmp_path, monkeypatch):
    """Each extended header is capped at 1 MiB, but many of them cost CPU: the layer's
    total is capped too (MAX_EXTENDED_TOTAL; made small here so the test is fast)."""
    import io
    import tarfile

    from ocilearn.core.errors import LayerError
    from ocilearn.layer import apply as layer
    from ocilearn.layer import tar as layer_tar

    def layer_bytes(n: int) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for i in range(n):
                info = tarfile.TarInfo(f"f{i}")
                info.pax_headers = {"comment": "x" * 3000}
                info.size = 1
                tf.addfile(info, io.BytesIO(b"a"))
        return buf.getvalue()

    monkeypatch.setattr(layer_tar, "MAX_EXTENDED_TOTAL", 20_000)
    ok = tmp_path / "ok"
    ok.mkdir()
    layer.apply_layer(ok, io.BytesIO(layer_bytes(5)))  # ~15 kB of headers: within
    assert sorted(p.name for p in ok.iterdir()) == [f"f{i}" for i in range(5)]
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(LayerError, match="extended headers of this layer exceed 20000 bytes"):
        layer.apply_layer(bad, io.BytesIO(layer_bytes(10)))
