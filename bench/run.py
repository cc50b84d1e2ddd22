"""Benchmark: start-to-exit of ``/bin/true`` in the busybox bundle — ``ocilearn run`` vs
``runc run`` vs ``crun run``, interleaved in the same run, median of N (default 30).

crun 1.8 refuses this host's hybrid cgroup layout, so it runs as the images README says:
``unshare -m sh -c 'umount /sys/fs/cgroup/unified && exec crun run …'`` (that wrapper's
cost — unshare + sh, a few ms — is inside crun's figure). Extra rows show where
ocilearn's time goes: the interpreter with ``site`` (``python -c pass``: this venv's
editable install adds its import finder), the bare interpreter (``python -I -S``), the
runtime's own imports, and the same run done in-process through the library (no
interpreter start, no imports).

``--before REV`` adds ``python -m ocilearn run`` of the ``ocilearn`` package of git
revision REV (exported to a temp dir) beside the same command on this checkout, both in
the same interleaved run: the before/after figure for a change of the start-up path.

``--in-a-row`` runs each command RUNS times after itself instead of interleaving them: each
then follows its own previous run (runc after runc keeps the cgroup semaphore below warm
for itself; interleaved, it follows commands that may not).

``--gap MS`` sleeps MS milliseconds before each command: runs that do not follow each
other closely, as a caller starting one container now and then. Back to back, each
command finds the kernel's cgroup semaphore warm from the one before (the first move of
a process into a cgroup waits for an RCU grace period, ≈ 10 ms here, unless a move
happened less than about one grace period ago: see ocilearn/runtime/warmup.py), which
favours runc and crun; with a gap, every command pays that wait or hides it.

``ocilearn`` is this checkout's bin/ocilearn (Python without ``site``), laid out as an
install puts it (see ``_launcher``), and this venv's own (an editable install); the pip
console script ``ocilearn-py`` runs the same code with ``site``.

Usage: ``python bench/run.py [RUNS] [--before REV] [--gap MS] [--in-a-row]`` (``python -m bench run``
runs it with the defaults); needs root. The runtime path must not import requests,
click, graphviz or ipywidgets: checked here too (a line "runtime path imports: …").
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
HEAVY = ("requests", "click", "graphviz", "ipywidgets", "pyroute2", "tqdm", "zstandard", "shutil")


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


def _time(cmd: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    return dt


def _export(rev: str, dest: Path) -> Path:
    """The ``ocilearn`` package of git revision ``rev``, exported under ``dest``, with
    fresh .pyc files."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "ocilearn"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _launcher(work: Path, package: Path = REPO / "ocilearn") -> str:
    """This checkout's ``bin/ocilearn`` (with ``bin/ocilearn-runtime``, the same script)
    laid out as a (non-editable) install puts it: the scripts in a bin directory beside a
    link to the venv's interpreter, and an ``ocilearn`` package (a link) in that
    environment's site-packages. Returns the path of ``ocilearn``. This venv's own
    ``ocilearn`` is measured too: with its editable install it reads the .pth files of
    site-packages before the import (``site.addsitedir``). ``package``: another tree's
    ``ocilearn`` (the before figure of ``--before``)."""
    (work / "bin").mkdir(parents=True)
    for name in ("ocilearn", "ocilearn-runtime"):
        shutil.copyfile(REPO / "bin" / name, work / "bin" / name)  # the link's target, as an install copies it
        (work / "bin" / name).chmod(0o755)
    (work / "bin" / "python3").symlink_to(REPO / ".venv" / "bin" / "python3")
    ver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site = work / "lib" / ver / "site-packages"
    site.mkdir(parents=True)
    (site / "ocilearn").symlink_to(package)
    return str(work / "bin" / "ocilearn")


def main(runs: int | None = None, before: str | None = None, gap: float = 0.0, runs_in_a_row: bool = False) -> dict:
    if os.geteuid() != 0:
        print("bench/run.py needs root (runc and crun as root; cgroups)")
        return {}
    runs = runs or int(os.environ.get("BENCH_RUNS", "30"))
    work = Path(tempfile.mkdtemp(prefix="ocilearn-bench-run-", dir="/run" if os.access("/run", os.W_OK) else None))
    py = str(REPO / ".venv" / "bin" / "python")
    ocilearn = str(REPO / ".venv" / "bin" / "ocilearn")
    launcher = _launcher(work)
    env_here = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        old = _export(before, work / "before") if before else None
        # fresh .pyc files, as after an install: with PYTHONDONTWRITEBYTECODE set in the
        # environment every run would otherwise recompile the runtime's sources
        for tree in [REPO / "ocilearn", *([old / "ocilearn"] if old else [])]:
            subprocess.run([py, "-m", "compileall", "-q", str(tree)], capture_output=True,
                           env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
        bundle, made = _bundle(work)
        tools: dict[str, tuple] = {
            "`ocilearn run` (bin/ocilearn as installed: python -E -S -P)": (
                lambda i: [launcher, "--root", str(work / "ol"), "run", "-b", str(bundle), f"r{i}"], env_here),
            "`ocilearn run` (this venv's, editable install)": (lambda i: [ocilearn, "--root", str(work / "ol"), "run", "-b", str(bundle), f"b{i}"],
                                                               env_here),
            "`ocilearn-py run` (pip console script, with site)": (lambda i: [ocilearn + "-py", "--root", str(work / "ol"), "run", "-b",
                                                                             str(bundle), f"c{i}"], env_here),
            "`python -m ocilearn.runtime run`": (lambda i: [py, "-m", "ocilearn.runtime", "--root", str(work / "ol"), "run", "-b", str(bundle),
                                                            f"f{i}"], env_here),
            "`runc run`": (lambda i: ["runc", "--root", str(work / "runc"), "run", "-b", str(bundle), f"b{i}"], None),
        }
        if shutil.which("crun"):
            tools["`crun run` (unshare -m wrapper)"] = (lambda i: ["unshare", "-m", "sh", "-c", f"umount /sys/fs/cgroup/unified 2>/dev/null; "
                                                                  f"exec crun --root {work}/crun run -b {bundle} b{i}"], None)
        if old:
            tools["`python -m ocilearn run`, this checkout"] = (lambda i: [py, "-m", "ocilearn", "--root", str(work / "ol"), "run", "-b",
                                                                           str(bundle), f"n{i}"], env_here)
            old_launcher = _launcher(work / "before-env", old / "ocilearn")
            tools[f"`ocilearn run` as installed, before ({before})"] = (lambda i: [old_launcher, "--root", str(work / "old"), "run", "-b",
                                                                          str(bundle), f"p{i}"], None)
            tools[f"`python -m ocilearn run`, before ({before})"] = (lambda i: [py, "-m", "ocilearn", "--root", str(work / "old"), "run", "-b",
                                                                                str(bundle), f"o{i}"], {**os.environ, "PYTHONPATH": str(old)})
        tools["`python -c pass` (interpreter + site)"] = (lambda i: [py, "-c", "pass"], None)
        tools["`python -I -S -c pass` (bare interpreter)"] = (lambda i: [py, "-I", "-S", "-c", "pass"], None)
        tools["`python -c 'import …runtime.cli, …container'`"] = (lambda i: [py, "-c", "import ocilearn.runtime.cli, ocilearn.runtime.container, "
                                                                           "ocilearn.runtime.process, ocilearn.runtime.rootfs"], env_here)
        for i in range(3):  # warm-up (page cache, pyc)
            for make, env in tools.values():
                _time(make(f"w{i}"), env)
        samples: dict[str, list[float]] = {k: [] for k in tools}
        if runs_in_a_row:  # each command N times after itself, then the next command
            for name, (make, env) in tools.items():
                for i in range(runs):
                    if gap:
                        time.sleep(gap)
                    samples[name].append(_time(make(i), env))
        else:
            for i in range(runs):
                for name, (make, env) in tools.items():
                    if gap:
                        time.sleep(gap)
                    samples[name].append(_time(make(i), env))
        inproc = ("import sys, time; from ocilearn.runtime.container import run; ts = []\n"
                  f"for i in range({runs}):\n t0 = time.perf_counter(); run({str(work / 'lib')!r}, f'l{{i}}', {str(bundle)!r}); "
                  "ts.append(time.perf_counter() - t0)\n"
                  "ts.sort(); print(ts[len(ts) // 2], ts[0])")
        lib_med, lib_min = map(float, subprocess.run([py, "-c", inproc], capture_output=True, text=True, check=True, env=env_here).stdout.split())
        heavy = subprocess.run([py, "-c", "import sys; from ocilearn.runtime.cli import main; main(['--root', sys.argv[1], 'run', '-b', sys.argv[2], 'h']); "
                                f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules) or 'none')", str(work / "h"), str(bundle)],
                               capture_output=True, text=True, env=env_here).stdout.strip()
        med = {k: statistics.median(v) for k, v in samples.items()}
        mins = {k: min(v) for k, v in samples.items()}
        med["library `container.run()` in-process"], mins["library `container.run()` in-process"] = lib_med, lib_min
        base = med["`runc run`"]
        crun = med.get("`crun run` (unshare -m wrapper)")
        print(f"bundle made by {made}; {runs} interleaved runs each{' (each command in a row after itself)' if runs_in_a_row else ''}{f', {gap * 1000:.0f} ms apart' if gap else ', back to back'}; "
              "median wall time")
        print(f"| command | median | min | ratio to runc |{' ratio to crun |' if crun else ''}")
        print(f"| --- | --- | --- | --- |{' --- |' if crun else ''}")
        for k, v in med.items():
            extra = f" {v / crun:.2f}x |" if crun else ""
            print(f"| {k} | {v * 1000:.1f} ms | {mins[k] * 1000:.1f} ms | {v / base:.2f}x |{extra}")
        print(f"runtime path imports: {heavy}")
        return med
    finally:
        for sub in ("ol", "old", "runc", "crun", "lib", "h"):
            d = work / sub
            if d.is_dir():
                for name in os.listdir(d):
                    tool = {"runc": ["runc", "--root", str(d)], "crun": ["crun", "--root", str(d)]}.get(sub, [ocilearn, "--root", str(d)])
                    subprocess.run([*tool, "delete", "--force", name], capture_output=True, env=env_here)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    rev, gap = None, 0.0
    if "--before" in args:
        k = args.index("--before")
        rev = args[k + 1]
        del args[k:k + 2]
    if "--gap" in args:
        k = args.index("--gap")
        gap = float(args[k + 1]) / 1000
        del args[k:k + 2]
    in_a_row = "--in-a-row" in args
    if in_a_row:
        args.remove("--in-a-row")
    main(int(args[0]) if args else None, rev, gap, in_a_row)
