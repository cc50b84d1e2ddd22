"""Shared test fixtures.

Real components are never assumed: reference tools (skopeo, umoci, runc …) are installed by
``scripts/setup.sh`` from ``make test``; a test whose peer is missing *fails*
(:func:`require_tool`). The images the tests need are built by
``scripts/build-test-images.sh`` into ``.cache/images``. ``../shared/images`` and
``../shared/fixtures`` add coverage when present; when absent, the tests that use them are
skipped with a reason that names the missing folder (shown by ``-ra`` in the summary).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OCILEARN_SHARED", REPO.parent / "shared")).resolve()
CACHE = REPO / ".cache"
IMAGES = CACHE / "images"


def require_tool(name: str) -> str:
    """Path of a reference tool; fails the test (never skips) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"reference tool {name!r} is not installed: run `make test` (scripts/setup.sh installs it)")
    return path


def shared_path(*parts: str) -> Path:
    """A path under ../shared; skips (with the reason in the report) when absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"extra coverage unavailable: {p} is absent (../shared not laid beside this clone)")
    return p


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """subprocess.run with check=True, text output captured, and a readable failure."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    p = subprocess.run(cmd, **kw)
    if p.returncode != 0:
        raise AssertionError(f"command failed ({p.returncode}): {' '.join(map(str, cmd))}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def pytest_report_header(config):
    shared = "present" if (SHARED / "images").is_dir() else "ABSENT (tests using it are skipped, with reasons)"
    return [f"ocilearn: ../shared = {SHARED}: {shared}", f"ocilearn: built test images in {IMAGES}"]


@pytest.fixture
def is_root() -> bool:
    return os.geteuid() == 0
