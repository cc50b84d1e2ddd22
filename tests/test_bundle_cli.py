"""`ocilearn unpack` without click (ocilearn.bundle.cli): the same options and the same
parse as click's for every well-formed line, click's own messages for the rest, the same
output, and no click imported by an unpack process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest
from conftest import REPO, assert_option_table, built_image
from conftest import imported_modules as imported
from conftest import ocilearn_importtime as oc

from ocilearn.bundle import cli as fast
from ocilearn.cli.bundle import unpack as click_unpack


def test_the_option_table_is_the_click_commands():
    assert_option_table(click_unpack, fast, ["bundle"])


LINES = [
    ["--image", "img:latest", "b"],
    ["b", "--image=img"],
    ["-q", "--rootless", "--image", "img", "b"],
    ["--platform", "linux/arm64", "--force", "--terminal", "--sync", "--image", "i", "b"],
    ["--image", "-q", "b"],  # a value may start with '-'
    ["--image", "a", "--image", "c", "b"],  # the last one wins
    ["--image", "i", "--", "-b"],
    ["--image", "i", "-qq", "b"],
    # lines click refuses (or must answer): the fast parser hands them over
    ["b"],
    ["--image", "i"],
    ["--image", "i", "b", "c"],
    ["--help"],
    ["--image", "i", "b", "-h"],
    ["--image"],
    ["--force=1", "--image", "i", "b"],
    ["--nope", "--image", "i", "b"],
    ["-x", "--image", "i", "b"],
]


@pytest.mark.parametrize("args", LINES, ids=lambda a: " ".join(a) or "(none)")
def test_parse_agrees_with_click(args):
    got = fast.parse(args)
    try:
        ctx = click_unpack.make_context("unpack", list(args), resilient_parsing=False)
    except (click.exceptions.Exit, click.ClickException):
        assert got is None
        return
    assert got is not None
    bundle, opts = got
    params = dict(ctx.params)
    assert bundle == params.pop("bundle")
    assert opts == params


def messages(stderr: str) -> list[str]:
    return [x for x in stderr.splitlines() if not x.startswith("import time:")]


def test_unpack_process_imports_no_click_and_prints_what_click_printed(tmp_path):
    image = f"{built_image('busybox')}:latest"
    p = oc("unpack", "--rootless", "--image", image, str(tmp_path / "fast"))
    assert p.returncode == 0, p.stderr
    mods = imported(p.stderr)
    assert "ocilearn.bundle.unpack" in mods and "click" not in mods
    # the same command through click (a global option other than --debug hands it over)
    q = subprocess.run([sys.executable, "-m", "ocilearn", "--explain", "unpack", "--rootless", "--image", image,
                        str(tmp_path / "click")], capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert q.returncode == 0, q.stderr
    fast_lines, click_lines = messages(p.stderr), [x for x in q.stderr.splitlines() if x.startswith(("unpacked ", "skipped ", "ocilearn: warning"))]
    assert [x.split(" into ")[0] for x in fast_lines] == [x.split(" into ")[0] for x in click_lines]
    assert fast_lines[-1].startswith("unpacked sha256:") and f"into {tmp_path / 'fast'} (rootless) in " in fast_lines[-1]
    for b in ("fast", "click"):
        cfg = json.loads((tmp_path / b / "config.json").read_text())
        assert cfg["process"]["terminal"] is False and os.path.islink(tmp_path / b / "rootfs/bin/sh")
    assert (tmp_path / "fast/rootfs/bin/busybox").read_bytes() == (tmp_path / "click/rootfs/bin/busybox").read_bytes()


def test_unpack_process_errors_are_one_line_exit_1_without_click(tmp_path):
    p = oc("unpack", "-q", "--image", f"{tmp_path / 'missing'}:latest", str(tmp_path / "b"))
    assert p.returncode == 1 and messages(p.stderr) == [f"ocilearn: error: {tmp_path / 'missing'}: no such image layout directory"]
    assert "click" not in imported(p.stderr)
    p = oc("unpack", "--image", f"{built_image('busybox')}:latest", " ")
    assert p.returncode == 1 and len(messages(p.stderr)) == 1 and "BUNDLE argument" in p.stderr
    assert not (tmp_path / "b").exists()


def test_unpack_usage_errors_and_help_are_clicks(tmp_path):
    p = oc("unpack", str(tmp_path / "b"))
    assert p.returncode == 2 and "Error: Missing option '--image'." in p.stderr
    assert "click" in imported(p.stderr)
    p = oc("unpack", "--help")
    assert p.returncode == 0 and "Usage: ocilearn unpack [OPTIONS] BUNDLE" in p.stdout and "--rootless" in p.stdout
    assert not (tmp_path / "b").exists()


def test_paths_from_the_layers_reach_the_terminal_escaped(tmp_path):
    """A warning names a path from the layer: its control characters are written as octal
    escapes, so a name cannot recolour a terminal or forge a log line."""
    from ocilearn.image import build as ib

    name = "evil\x1b[31m\nocilearn: forged"
    ib.build_image(tmp_path / "img", [[ib.Entry(name, data=b"x", xattrs={"security.test": "v"})]], ref="x", cmd=["/x"])
    p = oc("unpack", "--rootless", "--image", f"{tmp_path / 'img'}:x", str(tmp_path / "b"))
    assert p.returncode == 0, p.stderr
    lines = messages(p.stderr)
    assert "\x1b" not in p.stderr and not any(x.startswith("ocilearn: forged") for x in lines)
    assert any("/evil\\033[31m\\012ocilearn: forged: xattr 'security.test' not applied" in x for x in lines), lines
    assert (tmp_path / "b/rootfs" / name).read_bytes() == b"x"
