"""Garbage a killed writer leaves in an image layout: reported by `ocilearn layout fsck`
(count and bytes, exit 0), removed by the next writer of the layout and by `layout gc`
(which says what it removed), never while its writer is alive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from conftest import REPO

from ocilearn.image.layout import ImageLayout

ENV = dict(os.environ, PYTHONPATH=str(REPO))

_HANGING_PULL = """
import sys, time
from ocilearn.image.layout import ImageLayout
class Stream:
    sent = 0
    def read(self, n):
        if self.sent >= 300000:
            print("partial", flush=True)
            time.sleep(60)
        self.sent += 100000
        return b"x" * 100000
ImageLayout.open(sys.argv[1]).put_blob(Stream(), "sha256:" + "0" * 64, 10**9)
"""


def _killed_pull(path):
    p = subprocess.Popen([sys.executable, "-c", _HANGING_PULL, str(path)], cwd=REPO, env=ENV, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "partial\n"
    return p


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ocilearn", *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=60)


def test_killed_pull_temp_reported_by_fsck_removed_by_gc_with_bytes(tmp_path):
    lay = ImageLayout.init(tmp_path / "l")
    live = _killed_pull(lay.path)
    try:
        r = _cli("layout", "fsck", str(lay.path))
        assert r.returncode == 0 and "being written by a live process" in r.stdout, r.stdout
        assert "left by killed writers" not in r.stdout
    finally:
        live.send_signal(signal.SIGKILL)
        assert live.wait(10) == -signal.SIGKILL
    (tmp,) = [n for n in os.listdir(lay.path / "blobs/sha256") if n.startswith(".tmp-")]
    assert (lay.path / "blobs/sha256" / tmp).stat().st_size == 300000
    r = _cli("layout", "fsck", str(lay.path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "checked 0 reachable blobs: OK; 1 temp files (300000 bytes) left by killed writers" in r.stdout
    r = _cli("layout", "gc", str(lay.path))
    assert r.returncode == 0, r.stderr
    assert "removed 0 unreachable blobs (0 bytes) and 1 temp files (300000 bytes)" in r.stdout, r.stdout
    assert not [n for n in os.listdir(lay.path / "blobs/sha256") if n.startswith(".tmp-")]


def test_a_resumed_writer_removes_the_temp_files_of_the_killed_one(tmp_path):
    lay = ImageLayout.init(tmp_path / "l")
    seen = []
    for _ in range(2):
        p = _killed_pull(lay.path)
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        seen.append([n for n in os.listdir(lay.path / "blobs/sha256") if n.startswith(".tmp-")])
    # the second (killed) writer already removed the first one's temp file when it started
    assert len(seen[0]) == 1 and len(seen[1]) == 1 and seen[0] != seen[1]
    digest, size = lay.put_blob(b"resumed")  # the next writer of the layout
    assert (str(digest), size) == ("sha256:" + __import__("hashlib").sha256(b"resumed").hexdigest(), 7)
    assert sorted(os.listdir(lay.path / "blobs/sha256")) == [digest.encoded]
    assert lay.fsck().temps == []
