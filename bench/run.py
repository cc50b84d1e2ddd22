"""Benchmark: start-to-exit of ``/bin/true`` in the busybox bundle — ``ocilearn run`` vs
``runc run`` vs ``crun run``, interleaved in the same run, median of N (default 30).

crun 1.8 refuses this host's hybrid cgroup layout, so it runs as the images README says:
``unshare -m sh -c 'umount /sys/fs/cgroup/unified && exec crun run …'`` (that wrapper's
cost — unshare + sh, a few ms — is inside crun's figure). Extra rows show where
ocilearn's time goes: the bare interpreter start of this venv (``python -c pass``, with
site) and the same run done in-process through the library (no interpreter start).

Usage: ``python -m bench run`` or ``python bench/run.py [RUNS]``; needs root.
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
SHARED = Path(os.environ.get("OCILEARN_SHARED", REPO.parent / "shared"))


def _bundle(work: Path) -> tuple[Path, str]:
    img = REPO / ".cache" / "images" / "busybox"
    if not img.exists():
        img = SHARED / "images" / "busybox"
    bundle = work / "bundle"
    try:
        from ocilearn.bundle.unpack import unpack

        unpack(f"{img}:latest", bundle)
        made = "ocilearn.bundle.unpack"
    except ImportError:
        subprocess.run(["umoci", "unpack", "--image", f"{img}:latest", str(bundle)], check=True, capture_output=True)
        made = "umoci unpack"
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"]["args"] = ["/bin/true"]
    cfg["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(cfg))
    return bundle, made


def _time(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    return dt


def main(runs: int | None = None) -> dict:
    if os.geteuid() != 0:
        print("bench/run.py needs root (runc and crun as root; cgroups)")
        return {}
    runs = runs or int(os.environ.get("BENCH_RUNS", "30"))
    work = Path(tempfile.mkdtemp(prefix="ocilearn-bench-run-", dir="/run" if os.access("/run", os.W_OK) else None))
    py = str(REPO / ".venv" / "bin" / "python")
    ocilearn = str(REPO / ".venv" / "bin" / "ocilearn")
    # fresh .pyc files, as after an install: with PYTHONDONTWRITEBYTECODE set in the
    # environment every run would otherwise recompile the runtime's sources
    subprocess.run([py, "-m", "compileall", "-q", str(REPO / "ocilearn")], capture_output=True,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
    try:
        bundle, made = _bundle(work)
        tools: dict[str, callable] = {
            "ocilearn run": lambda i: [ocilearn, "--root", str(work / "ol"), "run", "-b", str(bundle), f"b{i}"],
            "python -m ocilearn.runtime run (no click)": lambda i: [py, "-m", "ocilearn.runtime", "--root", str(work / "ol"), "run", "-b", str(bundle), f"f{i}"],
            "runc run": lambda i: ["runc", "--root", str(work / "runc"), "run", "-b", str(bundle), f"b{i}"],
        }
        if shutil.which("crun"):
            tools["crun run (unshare -m wrapper)"] = lambda i: ["unshare", "-m", "sh", "-c",
                                                              f"umount /sys/fs/cgroup/unified 2>/dev/null; exec crun --root {work}/crun run -b {bundle} b{i}"]
        tools["python -c pass (interpreter floor)"] = lambda i: [py, "-c", "pass"]
        inproc = ("import sys, time; from ocilearn.runtime.container import run; ts = []\n"
                  f"for i in range({runs}):\n t0 = time.perf_counter(); run({str(work / 'lib')!r}, f'l{{i}}', {str(bundle)!r}); ts.append(time.perf_counter() - t0)\n"
                  "ts.sort(); print(ts[len(ts) // 2])")
        for i in range(3):  # warm-up (page cache, pyc)
            for make in tools.values():
                _time(make(f"w{i}"))
        samples: dict[str, list[float]] = {k: [] for k in tools}
        for i in range(runs):
            for name, make in tools.items():
                samples[name].append(_time(make(i)))
        lib = float(subprocess.run([py, "-c", inproc], capture_output=True, text=True, check=True).stdout)
        imp = [py, "-c", "import ocilearn.cli, ocilearn.cli.runtime"]
        med_import = statistics.median(_time(imp) for _ in range(runs))
        med = {k: statistics.median(v) for k, v in samples.items()}
        med["ocilearn library run() in-process"] = lib
        med["python -c 'import ocilearn.cli, ocilearn.cli.runtime'"] = med_import
        base = med["runc run"]
        print(f"bundle made by {made}; {runs} interleaved runs each; median wall time")
        print("| command | median | min | ratio to runc |\n| --- | --- | --- | --- |")
        for k, v in med.items():
            mn = min(samples[k]) if k in samples else v
            print(f"| {k} | {v * 1000:.1f} ms | {mn * 1000:.1f} ms | {v / base:.2f}x |")
        return med
    finally:
        for sub in ("ol", "runc", "crun", "lib"):
            d = work / sub
            if d.is_dir():
                for name in os.listdir(d):
                    tool = {"ol": [ocilearn, "--root", str(d)], "runc": ["runc", "--root", str(d)], "crun": ["crun", "--root", str(d)],
                            "lib": [ocilearn, "--root", str(d)]}[sub]
                    subprocess.run([*tool, "delete", "--force", name], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
