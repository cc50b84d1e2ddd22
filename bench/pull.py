"""Pull benchmark: ``ocilearn copy`` vs ``skopeo copy`` from a local registry, same run.

1. Starts Debian's docker-registry on 127.0.0.1:5009 (``scripts/start-registry.sh``,
   state in a temp dir), pushes ``.cache/images/debian`` with skopeo.
2. Pulls ``docker://127.0.0.1:5009/debian:bookworm`` into a fresh OCI layout with each
   tool, alternating, ``RUNS`` times (both as command-line processes, interpreter start
   included); reports the median wall times and their ratio.
3. Makes a 1 GiB single-layer image (incompressible bytes, streamed to disk), pushes it
   with skopeo, and pulls it once with each tool, measuring each process's peak RSS
   (``wait4`` rusage ``ru_maxrss``).

Run: ``python -m bench pull`` (or ``make bench``). Env: ``OCILEARN_BENCH_RUNS`` (default 7),
``OCILEARN_BENCH_BIG_MIB`` (default 1024), ``OCILEARN_BENCH_BIG_RUNS`` (default 3).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PORT = 5009


def _run(cmd: list[str], env: dict | None = None) -> tuple[float, int]:
    """Run ``cmd`` under ``/usr/bin/time -f %M``; returns (wall seconds, peak RSS of the
    process in bytes). (``time`` is a small C program, so the child's RSS high-water mark
    does not include pages inherited from this Python process at fork.)"""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS_KB=%M", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - t
    err = p.stderr.decode()
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{err}")
    kb = int(err.rsplit("MAXRSS_KB=", 1)[1].split()[0])
    return wall, kb * 1024


def _make_big_image(base: Path, mib: int) -> Path:
    """An OCI layout with one layer of ``mib`` MiB of incompressible bytes (a tar header
    is not needed for a transfer benchmark: the registry stores any blob)."""
    sys.path.insert(0, str(REPO))
    from ocilearn.image.layout import ImageLayout
    from ocilearn.image.model import Descriptor, dumps

    lay = ImageLayout.init(base / "big")
    raw = base / "layer.bin"
    chunk = os.urandom(1 << 20)
    with open(raw, "wb") as f:
        for i in range(mib):
            f.write(chunk[i % 251:] + chunk[: i % 251])  # different every MiB, no repeats gzip could find
    with open(raw, "rb") as f:
        ld, lsize = lay.put_blob(f)
    raw.unlink()
    cfg = dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [str(ld)]}})
    cd = lay.put_json("application/vnd.oci.image.config.v1+json", cfg)
    man = dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cd.to_dict(),
                 "layers": [Descriptor("application/vnd.oci.image.layer.v1.tar", ld, lsize).to_dict()]})
    md = lay.put_json("application/vnd.oci.image.manifest.v1+json", man)
    lay.add_ref("latest", md)
    return lay.path


def main() -> None:
    runs = int(os.environ.get("OCILEARN_BENCH_RUNS", "7"))
    big_mib = int(os.environ.get("OCILEARN_BENCH_BIG_MIB", "1024"))
    skopeo = shutil.which("skopeo")
    if not skopeo:
        raise SystemExit("skopeo is not installed (reference peer)")
    ocilearn = [str(REPO / ".venv" / "bin" / "python"), "-m", "ocilearn"] if (REPO / ".venv").exists() else [sys.executable, "-m", "ocilearn"]
    debian = REPO / ".cache" / "images" / "debian"
    if not debian.exists():
        raise SystemExit(f"{debian} missing: run scripts/build-test-images.sh")
    # an installed package has its bytecode compiled; do the same here (a
    # PYTHONDONTWRITEBYTECODE environment would otherwise recompile on every start)
    subprocess.run([ocilearn[0], "-m", "compileall", "-q", str(REPO / "ocilearn")], check=True, capture_output=True)
    base = Path(tempfile.mkdtemp(prefix="ocilearn-bench-pull-"))
    env = {**os.environ, "OCILEARN_REGISTRY_RUNDIR": str(base / "run")}
    script = REPO / "scripts" / "start-registry.sh"
    subprocess.run([str(script), "start", str(PORT), str(base / "storage")], env=env, check=True, capture_output=True)
    host = f"127.0.0.1:{PORT}"
    results: dict = {}
    try:
        subprocess.run([skopeo, "copy", "-q", "--preserve-digests", "--dest-tls-verify=false", f"oci:{debian}:bookworm",
                        f"docker://{host}/debian:bookworm"], check=True)
        src = f"docker://{host}/debian:bookworm"
        ours, theirs = [], []
        for i in range(runs):
            pair = [("ocilearn", ocilearn + ["copy", "-q", src, f"oci:{base}/o{i}:bookworm"]),
                    ("skopeo", [skopeo, "copy", "-q", "--preserve-digests", "--src-tls-verify=false", src, f"oci:{base}/s{i}:bookworm"])]
            if i % 2:
                pair.reverse()
            for name, cmd in pair:
                wall, _ = _run(cmd, env)
                (ours if name == "ocilearn" else theirs).append(wall)
            shutil.rmtree(base / f"o{i}")
            shutil.rmtree(base / f"s{i}")
        # the library call a notebook makes (interpreter and imports already loaded)
        sys.path.insert(0, str(REPO))
        from ocilearn.distribution import copy as transfer

        lib = []
        for i in range(runs):
            t = time.perf_counter()
            transfer.copy(src, f"oci:{base}/l{i}:bookworm")
            lib.append(time.perf_counter() - t)
            shutil.rmtree(base / f"l{i}")
        mo, ms = statistics.median(ours), statistics.median(theirs)
        ml = statistics.median(lib)
        results["debian_library_call"] = {"ocilearn_median_s": round(ml, 3), "ratio_to_skopeo_process": round(ml / ms, 2),
                                          "ocilearn_s": [round(x, 3) for x in lib]}
        print(f"debian, library call transfer.copy() in a warm interpreter: median {ml:.3f} s, "
              f"ratio {ml / ms:.2f}x skopeo's process", flush=True)
        results["debian"] = {"runs": runs, "ocilearn_median_s": round(mo, 3), "skopeo_median_s": round(ms, 3),
                             "ratio": round(mo / ms, 2), "ocilearn_s": [round(x, 3) for x in ours],
                             "skopeo_s": [round(x, 3) for x in theirs]}
        print(f"debian (51 MB, 3 layers), {runs} runs: ocilearn median {mo:.3f} s, skopeo median {ms:.3f} s, "
              f"ratio {mo / ms:.2f}x", flush=True)

        big = _make_big_image(base, big_mib)
        subprocess.run([skopeo, "copy", "-q", "--preserve-digests", "--dest-tls-verify=false", f"oci:{big}:latest",
                        f"docker://{host}/big:latest"], check=True)
        shutil.rmtree(big)
        src = f"docker://{host}/big:latest"
        big_runs = int(os.environ.get("OCILEARN_BENCH_BIG_RUNS", "3"))
        bo, bs = [], []
        for i in range(big_runs):
            pair = [("o", ocilearn + ["copy", "-q", src, f"oci:{base}/bo:latest"]),
                    ("s", [skopeo, "copy", "-q", "--preserve-digests", "--src-tls-verify=false", src, f"oci:{base}/bs:latest"])]
            for name, cmd in (pair if i % 2 == 0 else pair[::-1]):
                (bo if name == "o" else bs).append(_run(cmd, env))
                shutil.rmtree(base / f"b{name}")
        w_o, w_s = statistics.median(x[0] for x in bo), statistics.median(x[0] for x in bs)
        rss_o, rss_s = max(x[1] for x in bo), max(x[1] for x in bs)
        results["big"] = {"mib": big_mib, "runs": big_runs, "ocilearn_peak_rss_mb": round(rss_o / 1e6, 1),
                          "skopeo_peak_rss_mb": round(rss_s / 1e6, 1), "ocilearn_median_s": round(w_o, 2),
                          "skopeo_median_s": round(w_s, 2), "ratio": round(w_o / w_s, 2),
                          "ocilearn_s": [round(x[0], 2) for x in bo], "skopeo_s": [round(x[0], 2) for x in bs]}
        print(f"{big_mib} MiB single layer, {big_runs} runs: ocilearn peak RSS {rss_o / 1e6:.1f} MB, median {w_o:.2f} s; "
              f"skopeo peak RSS {rss_s / 1e6:.1f} MB, median {w_s:.2f} s; ratio {w_o / w_s:.2f}x (goal: ocilearn RSS < 150 MB)",
              flush=True)
        print(json.dumps(results))
    finally:
        subprocess.run([str(script), "stop", str(PORT)], env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
