"""Per-phase profile of pull and unpack (where the time goes), for BENCHMARKS.md.

For each benchmark image (``debian``, ``jre``), measured in this process, single-threaded,
each phase on its own (so the sum is more than the overlapped wall time):

- ``sha256 blobs``: the blob digests a pull checks (compressed bytes);
- ``write+fsync blobs``: writing the blobs to a temp file on /tmp and fsyncing it (pull);
- ``inflate zlib`` / ``inflate isal``: gzip decoding of the layers with each library;
- ``sha256 diff IDs``: hashing the uncompressed tars (diff ID check);
- ``tar parse``: :mod:`tarfile` header parsing of the uncompressed tars (data skipped), as it is
  and with ocilearn's header reader (``_BoundedTarInfo.frombuf``);
- ``unpack, in-process``: ``ocilearn unpack`` as a library call under :mod:`cProfile`;
  the part spent inside ``posix.*`` calls (open, mkdir, pwrite, fchown, utime …) is the
  kernel's per-file cost;
- interpreter start-up: ``python -c pass`` and the imports of the unpack and copy paths
  (fresh processes, median of 5).

Run: ``python -m bench profile``; prints a Markdown table (pasted into BENCHMARKS.md).
"""

from __future__ import annotations

import cProfile
import hashlib
import io
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = str(REPO / ".venv/bin/python")


def _layers(image: Path, ref: str) -> list[Path]:
    sys.path.insert(0, str(REPO))
    from ocilearn.image.layout import ImageLayout

    man = ImageLayout.open(image).resolve(ref).manifest
    lay = ImageLayout.open(image)
    return [lay.blob_path(d.digest) for d in man.layers]


def _t(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _inflate(mod, data: bytes) -> bytes:
    d, out, pos = mod.decompressobj(31), [], 0
    while pos < len(data):
        tail = data[pos : pos + (1 << 20)]
        pos += 1 << 20
        while tail:
            out.append(d.decompress(tail, 1 << 20))
            tail = d.unconsumed_tail
    return b"".join(out)


def _startup(code: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([PY, "-c", code], check=True, env=env)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def profile(name: str, image: Path, ref: str) -> dict[str, float]:
    from isal import isal_zlib

    blobs = [p.read_bytes() for p in _layers(image, ref)]
    r: dict[str, float] = {}
    r["sha256 blobs (pull, unpack)"] = _t(lambda: [hashlib.sha256(b).digest() for b in blobs])
    tmp = Path(tempfile.mkdtemp(prefix="ocilearn-bench-profile-", dir="/tmp"))
    try:
        def write() -> None:
            for i, b in enumerate(blobs):
                with open(tmp / str(i), "wb") as f:
                    f.write(b)
                    f.flush()
                    os.fsync(f.fileno())
        r["write+fsync blobs (pull)"] = _t(write)
        r["inflate, zlib"] = _t(lambda: [_inflate(zlib, b) for b in blobs])
        tars: list[bytes] = []
        r["inflate, isal (used)"] = _t(lambda: tars.extend(_inflate(isal_zlib, b) for b in blobs))
        r["sha256 diff IDs (unpack)"] = _t(lambda: [hashlib.sha256(t).digest() for t in tars])
        r["tar header parse, `tarfile` as it is"] = _t(lambda: [sum(1 for _ in tarfile.open(fileobj=io.BytesIO(t), mode="r:")) for t in tars])
        from ocilearn.layer.tar import _BoundedTarInfo

        r["tar header parse, as ocilearn reads it (its `frombuf`; unpack)"] = _t(
            lambda: [sum(1 for _ in tarfile.open(fileobj=io.BytesIO(t), mode="r:", tarinfo=_BoundedTarInfo)) for t in tars])
        tars.clear()
        from ocilearn.bundle import unpack as unpack_mod  # noqa: F401  (imports outside the timing)
        from ocilearn.bundle.cli import main as cli

        prof = cProfile.Profile()
        dest = tmp / "bundle"
        t = time.perf_counter()
        prof.enable()
        rc = cli(["unpack", "-q", "--image", f"{image}:{ref}", str(dest)])
        prof.disable()
        if rc != 0:
            raise SystemExit(f"bench/profile: ocilearn unpack {image}:{ref} failed ({rc})")
        r["unpack in-process, total (cProfile on)"] = time.perf_counter() - t
        st = pstats.Stats(prof).stats  # type: ignore[attr-defined]
        sysc = sum(v[2] for k, v in st.items() if k[0] == "~" and "posix." in k[2])
        r["  of which posix.* syscalls (open, mkdir, pwrite, chown, utime …)"] = sysc
        r["  of which posix.open (file creation)"] = sum(v[2] for k, v in st.items() if k[2] == "<built-in method posix.open>")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return r


def main() -> None:
    images = [("debian", REPO / ".cache/images/debian", "bookworm"), ("jre", REPO / ".cache/images/jre", "17")]
    rows = {n: profile(n, p, ref) for n, p, ref in images}
    start = {
        "interpreter start-up, `python -c pass`": _startup("pass"),
        "+ imports of the unpack path (`ocilearn.bundle.cli`, `ocilearn.bundle.unpack`; no click)": _startup("import ocilearn.bundle.cli, ocilearn.bundle.unpack"),
        "+ imports of the copy path (`ocilearn.distribution.cli`, `.copy`, `.registry`; no click)": _startup(
            "import ocilearn.entry, ocilearn.distribution.cli, ocilearn.distribution.copy, ocilearn.distribution.registry"),
        "+ `http.client` alone (the registry client's HTTP)": _startup("import http.client"),
    }
    print("| phase | debian | jre |")
    print("| --- | --- | --- |")
    for k in rows["debian"]:
        print(f"| {k} | {rows['debian'][k] * 1000:.0f} ms | {rows['jre'][k] * 1000:.0f} ms |")
    for k, v in start.items():
        print(f"| {k} (process, median of 5) | {v * 1000:.0f} ms | |")


if __name__ == "__main__":
    main()
