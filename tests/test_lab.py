"""``make lab`` brings JupyterLab up with the course.

The command line is taken from the Makefile itself (``make -n lab``), so this test follows
the target when it changes; the test adds only what it needs to run unattended: no browser,
a random token, a free port. Then ``/api/status`` must answer, the served folder must be
the course's notebooks (``00-start-here.ipynb`` listed by ``/api/contents``), and the
notebook page must load; the server is stopped at the end.
"""

from __future__ import annotations

import json
import secrets
import shlex
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO
from test_browser import free_port, stop, wait_status

pytestmark = pytest.mark.slow


def make_lab_command(port: int) -> list[str]:
    """The ``jupyter lab`` command line the Makefile's ``lab`` target runs (``make -n``)."""
    p = subprocess.run(["make", "-n", "-s", "lab", f"PORT={port}"], cwd=REPO, capture_output=True, text=True, check=True)
    lines = [ln for ln in p.stdout.splitlines() if "jupyter lab" in ln or "jupyter-lab" in ln]
    assert len(lines) == 1, f"expected one jupyter lab line in `make -n lab`:\n{p.stdout}"
    return shlex.split(lines[0])


def test_make_lab_command_serves_the_course():
    port, token = free_port(), secrets.token_hex(16)
    cmd = make_lab_command(port)
    assert cmd[0].endswith("jupyter") and cmd[1] == "lab", cmd
    assert "--ServerApp.ip=127.0.0.1" in cmd, f"make lab must listen on loopback only: {cmd}"
    assert f"--port={port}" in cmd, f"make lab must honour PORT=: {cmd}"
    # the embedded image step of `make lab` (fast, a no-op when present)
    subprocess.run(["scripts/build-test-images.sh", "--embedded-only"], cwd=REPO, check=True, capture_output=True)
    cmd += ["--no-browser", f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0"]
    with tempfile.TemporaryDirectory(prefix="ocilearn-make-lab-") as tmp:
        log = Path(tmp) / "lab.log"
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": tmp,
            "JUPYTER_RUNTIME_DIR": f"{tmp}/runtime",
            "JUPYTERLAB_WORKSPACES_DIR": f"{tmp}/workspaces",
            "LANG": "C.UTF-8",
        }
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            status = wait_status(base, token, proc, log)
            assert "started" in status and status.get("kernels") == 0, status
            with urllib.request.urlopen(f"{base}/api/contents?token={token}", timeout=10) as r:
                names = {item["name"] for item in json.loads(r.read())["content"]}
            assert "00-start-here.ipynb" in names, f"make lab does not serve notebooks/: {sorted(names)}"
            with urllib.request.urlopen(f"{base}/lab/tree/00-start-here.ipynb?token={token}", timeout=10) as r:
                page = r.read().decode()
            assert r.status == 200 and "JupyterLab" in page
            # without the token the API refuses: the server is not open to anyone on the machine
            try:
                urllib.request.urlopen(f"{base}/api/contents", timeout=10)
                raise AssertionError("/api/contents answered without a token")
            except urllib.error.HTTPError as e:
                assert e.code == 403, e.code
        finally:
            stop(proc)
        assert proc.returncode is not None
