"""The article's failure for real (ocilearn.course.tools.article_server and
reachable_server): a busybox httpd that resolves its own hostname at start fails with the
resolver's own error under runc and under ocilearn, starts once /etc/hosts names the
hostname, and is reached over a veth pair from outside — as root and as an ordinary user."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import as_user, require_tool
from layer_helpers import user_python

from ocilearn.bundle.unpack import unpack
from ocilearn.course import tools
from ocilearn.image import embedded

REPO = Path(__file__).resolve().parents[1]
OCILEARN = [sys.executable, "-m", "ocilearn"]
LOOKUP_FAILED = "hostname: keycloak-1: Host name lookup failure"
PAGE = "hello from keycloak-1\n"


@pytest.fixture
def server_bundle(tmp_path):
    bundle = tmp_path / "bundle"
    unpack(f"{embedded.layout_path()}:latest", bundle)
    return bundle


def _check(runs: dict, runtime: str) -> None:
    failure, = runs["failure"]
    assert failure.returncode == 1, str(failure)
    assert failure.stderr.strip() == LOOKUP_FAILED, str(failure)
    create, start, fetch, kill = runs["fixed"]
    assert [r.returncode for r in (create, start, kill)] == [0, 0, 0], "\n".join(map(str, runs["fixed"]))
    assert fetch.argv[0] == runtime and fetch.argv[3:6] == ["exec", "kc", "wget"], fetch.argv
    assert (fetch.returncode, fetch.stdout) == (0, PAGE), str(fetch)


@pytest.mark.parametrize("runtime", ["runc", "ocilearn"])
def test_server_fails_and_is_fixed_as_root(server_bundle, runtime):
    require_tool("runc")
    before = (server_bundle / "config.json").read_bytes()
    runs = tools.article_server(server_bundle, "kc", command=OCILEARN if runtime == "ocilearn" else ["runc"])
    _check(runs, runtime)
    # the bundle is left as it was: config.json byte for byte, no container in either state root
    assert (server_bundle / "config.json").read_bytes() == before
    roots = {Path(r.argv[2]) for r in runs["fixed"]}
    assert len(roots) == 1 and not next(iter(roots)).exists()


def test_server_reached_over_veth_as_root(server_bundle):
    require_tool("ip")
    before_ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    runs = tools.reachable_server(server_bundle, OCILEARN)
    steps = [[r.argv[0], r.argv[1].startswith("--net=/var/run/netns/ocilearn-"), r.argv[2], *r.argv[5:7]] for r in runs[:3]]
    assert steps == [["nsenter", True, "ocilearn", "create", "--net"], ["nsenter", True, "ocilearn", "start", "kc-net"],
                     ["nsenter", True, "ocilearn", "exec", "kc-net"]], "\n".join(map(str, runs))
    address = runs[2].stdout.strip()
    assert re.fullmatch(r"10\.213\.\d+\.\d+", address), str(runs[2])
    fetch = runs[3]
    assert fetch.argv[:3] == ["ip", "netns", "exec"] and fetch.argv[-1] == f"http://{address}:8080/"
    assert (fetch.returncode, fetch.stdout) == (0, PAGE), str(fetch)
    assert runs[4].returncode == 0
    # the scratch namespace is gone, and the host never got the container's address
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout == before_ns
    assert address not in subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    config = json.loads((server_bundle / "config.json").read_text())
    assert config["process"]["args"] != tools.server_args()


def test_server_fails_and_is_fixed_as_user(unpriv_user, request_cleanup):
    """Rootless: runc and ocilearn give the same failure and the same fix; the server gets a
    network namespace of its own, so a port 8080 taken on the host does not matter."""
    require_tool("runc")
    work = Path(tempfile.mkdtemp(prefix="ocilearn-server-user-"))
    request_cleanup.append(work)
    os.chown(work, unpriv_user[1], unpriv_user[2])
    python, env = user_python(unpriv_user)
    code = (
        "import json, sys\n"
        "from ocilearn.bundle.unpack import unpack\n"
        "from ocilearn.course import tools\n"
        "from ocilearn.image import embedded\n"
        f"unpack(f'{{embedded.layout_path()}}:latest', {str(work / 'b')!r})\n"
        "out = {}\n"
        f"for name, cmd in (('runc', ['runc']), ('ocilearn', [sys.executable, '-m', 'ocilearn'])):\n"
        f"    r = tools.article_server({str(work / 'b')!r}, 'kc', command=cmd)\n"
        "    out[name] = {k: [[x.returncode, x.stdout, x.stderr] for x in v] for k, v in r.items()}\n"
        "print(json.dumps(out))\n"
    )
    import socket

    taken = socket.socket()  # the host's port 8080, held while the containers serve theirs
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        taken.bind(("127.0.0.1", 8080))
        taken.listen()
    except OSError:
        taken.close()
        taken = None
    try:
        p = as_user(unpriv_user, [python, "-W", "ignore", "-c", code],
                    env={**env, "TMPDIR": str(work), "PATH": "/usr/sbin:/usr/bin:/bin"})
    finally:
        if taken:
            taken.close()
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    for runtime in ("runc", "ocilearn"):
        assert out[runtime]["failure"] == [[1, "", LOOKUP_FAILED + "\n"]], (runtime, out[runtime])
        codes = [r[0] for r in out[runtime]["fixed"]]
        assert codes == [0, 0, 0, 0], (runtime, out[runtime]["fixed"])
        assert out[runtime]["fixed"][2][1] == PAGE, (runtime, out[runtime]["fixed"])
