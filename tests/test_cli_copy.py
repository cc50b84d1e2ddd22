"""`ocilearn copy` without click (ocilearn.distribution.cli): the same options, the same
parse as click's for every well-formed line, click's own messages for the rest, and no
click, requests, urllib3, graphviz, ipywidgets or jsonschema imported by a copy process."""

from __future__ import annotations

import json
import subprocess

import click
import pytest
from conftest import REPO, assert_option_table, built_image
from conftest import imported_modules as imported
from conftest import ocilearn_importtime as oc

from ocilearn.cli.copy import copy as click_copy
from ocilearn.distribution import cli as fast

BUSYBOX = "sha256:3063d847deaaedea1de7a313e9e38508643d028f52fe8c3c6b002fd9a9a56eb6"
HEAVY = ("click", "requests", "urllib3", "graphviz", "ipywidgets", "jsonschema", "IPython")


def test_the_option_table_is_the_click_commands():
    assert_option_table(click_copy, fast, ["src", "dst"])


LINES = [
    ["a", "b"],
    ["-q", "a", "b"],
    ["a", "-qa", "b", "--jobs=2"],
    ["-j3", "--deadline", "1.5", "a", "b"],
    ["-qj", "7", "a", "b", "--blob-stall=2"],
    ["--src-tls-verify=false", "--dest-tls-verify", "YES", "a", "b"],
    ["--format", "oci", "--archive-form=docker25", "a", "b"],
    ["--override-arch", "arm64", "--override-variant", "", "--override-os=linux", "a", "b"],
    ["--src-creds", "u:p", "--dest-creds=x:y:z", "--authfile", "-q", "a", "b"],  # a value may start with '-'
    ["--", "-x", "b"],
    ["a", "--", "--all"],
    ["--jobs", "1", "--jobs", "5", "a", "b"],  # the last one wins
    ["-", "b"],
    ["--src-cert-dir", "/d", "--dest-cert-dir", "/e", "--preserve-digests", "--all", "a", "b"],
    # lines click refuses (or must answer): the fast parser hands them over
    ["a"],
    ["a", "b", "c"],
    ["--help", "a", "b"],
    ["-h"],
    ["--jobs", "0", "a", "b"],
    ["-j", "x", "a", "b"],
    ["--deadline", "0", "a", "b"],
    ["--deadline=-1", "a", "b"],
    ["--format", "OCI", "a", "b"],
    ["--archive-form", "docker", "a", "b"],
    ["--all=1", "a", "b"],
    ["--nope", "a", "b"],
    ["-z", "a", "b"],
    ["-1", "a", "b"],
    ["a", "b", "--jobs"],
    ["--src-tls-verify", "maybe", "a", "b"],
]


@pytest.mark.parametrize("args", LINES, ids=lambda a: " ".join(a) or "(none)")
def test_parse_agrees_with_click(args):
    got = fast.parse(args)
    try:
        ctx = click_copy.make_context("copy", list(args), resilient_parsing=False)
    except (click.exceptions.Exit, click.ClickException):
        assert got is None
        return
    params = dict(ctx.params)
    bools_ok = all(v.strip().lower() in ("true", "1", "yes", "false", "0", "no")
                   for v in (params["src_tls_verify"], params["dest_tls_verify"]))
    if not bools_ok:  # click takes any string here and refuses it in the command body
        assert got is None
        return
    assert got is not None
    src, dst, opts = got
    assert (src, dst) == (params.pop("src"), params.pop("dst"))
    assert opts == params


def test_copy_process_imports_no_click_and_no_heavy_library(tmp_path):
    p = oc("copy", "-q", f"oci:{built_image('busybox')}:latest", f"oci:{tmp_path / 'd'}:latest")
    assert p.returncode == 0, p.stderr
    assert p.stdout == BUSYBOX + "\n"
    mods = imported(p.stderr)
    assert "ocilearn.distribution.copy" in mods and "http.client" in mods
    assert {m for m in mods if m.split(".")[0] in HEAVY} == set()
    index = json.loads((tmp_path / "d" / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [BUSYBOX]


def test_copy_process_errors_are_one_line_exit_1_without_click(tmp_path):
    p = oc("copy", "-q", f"oci:{tmp_path / 'missing'}:latest", f"oci:{tmp_path / 'd'}:latest")
    lines = [x for x in p.stderr.splitlines() if not x.startswith("import time:")]
    assert p.returncode == 1 and len(lines) == 1 and lines[0].startswith("ocilearn: error: "), p.stderr
    assert "click" not in imported(p.stderr)
    assert not (tmp_path / "d").exists()


def test_usage_errors_and_help_are_clicks(tmp_path):
    p = oc("copy", "--src-tls-verify", "maybe", f"oci:{built_image('busybox')}:latest", f"oci:{tmp_path / 'd'}:latest")
    assert p.returncode == 2 and "expected true or false, got 'maybe'" in p.stderr
    assert "click" in imported(p.stderr)
    p = oc("copy", "--help")
    assert p.returncode == 0 and "Usage: ocilearn copy [OPTIONS] SRC DST" in p.stdout and "--blob-stall SECONDS" in p.stdout
    assert not (tmp_path / "d").exists()


def test_copy_with_stderr_closed_keeps_stdout_to_the_digest(tmp_path):
    """With fd 2 closed (`2>&-`) Python has no sys.stderr and print(file=sys.stderr) would
    write to stdout: the summary and error lines go nowhere instead, stdout holds only what
    it always holds (the digest), and the exit status still tells."""
    import shlex

    src = f"oci:{REPO / 'ocilearn/data/images/busybox'}:latest"
    cmd = f"{shlex.quote(str(REPO / '.venv/bin/ocilearn'))} copy {shlex.quote(src)} {shlex.quote(f'oci:{tmp_path}/a:latest')} 2>&-"
    p = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True)
    assert p.returncode == 0
    assert p.stdout.splitlines() == [json.loads((tmp_path / "a/index.json").read_text())["manifests"][0]["digest"]]
    bad = f"{shlex.quote(str(REPO / '.venv/bin/ocilearn'))} copy oci:{shlex.quote(str(tmp_path / 'missing'))}:x oci:{shlex.quote(str(tmp_path / 'b'))}:x 2>&-"
    p = subprocess.run(["sh", "-c", bad], capture_output=True, text=True)
    assert (p.returncode, p.stdout) == (1, "")
