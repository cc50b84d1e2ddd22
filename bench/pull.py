"""Pull benchmark: ``ocilearn copy`` vs ``skopeo copy`` from a local registry, same run.

1. Starts Debian's docker-registry on 127.0.0.1:5009 (``scripts/start-registry.sh``,
   state in a temp dir), pushes ``.cache/images/debian`` with skopeo.
2. Pulls ``docker://127.0.0.1:5009/debian:bookworm`` into a fresh OCI layout with each
   tool, alternating, ``RUNS`` times (both as command-line processes, interpreter start
   included), as root and as the ordinary user ``ocilearn-test``; reports the median wall
   times and their ratio.
3. Measures the process start-up in the same run: ``python -c pass`` and the imports of
   the copy path (what ``ocilearn copy`` imports before its first request).
4. Makes a 1 GiB single-layer image (incompressible bytes, streamed to disk), pushes it
   with skopeo, and pulls it once with each tool, measuring each process's peak RSS
   (``wait4`` rusage ``ru_maxrss``).

Run: ``python -m bench pull`` (or ``make bench``). Env: ``OCILEARN_BENCH_RUNS`` (default 7),
``OCILEARN_BENCH_BIG_MIB`` (default 0: skipped), ``OCILEARN_BENCH_BIG_RUNS`` (default 3).
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

from bench.unpack import bench_user, clean_env, ocilearn_command, user_python

REPO = Path(__file__).resolve().parents[1]
PORT = 5009
# what an `ocilearn copy docker://… oci:…` process imports before its first request
COPY_PATH = ("ocilearn.entry", "ocilearn.runtime.launch", "ocilearn.distribution.cli", "ocilearn.distribution.copy",
             "ocilearn.distribution.registry", "ocilearn.distribution.oci_layout")


def _startup(py: str, code: str, runs: int) -> list[float]:
    """Wall seconds of ``py -c code``, ``runs`` times."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([py, "-c", code], check=True, env=env, cwd="/")
        out.append(time.perf_counter() - t)
    return out


def _run(cmd: list[str], env: dict | None = None, user: tuple[int, int] | None = None) -> tuple[float, int]:
    """Run ``cmd`` under ``/usr/bin/time -f %M``; returns (wall seconds, peak RSS of the
    process in bytes). (``time`` is a small C program, so the child's RSS high-water mark
    does not include pages inherited from this Python process at fork.) With ``user``
    (uid, gid) the command runs as that user through setpriv(1), with only ``env``."""
    if user is not None:
        cmd, env = clean_env(cmd, env or {}, user), None
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


def _write_md(results: dict, runs: int) -> None:
    """Replace the table block at the top of BENCHMARKS.md's Pull section (up to the
    "Where the time goes" paragraph, which is written by hand from bench/profile.py)."""
    import platform
    import re

    skv = subprocess.run(["skopeo", "--version"], capture_output=True, text=True).stdout.strip()
    rows = []
    pulls = [n for n, r in results.items() if "mode" in r]
    for name in pulls:
        r = results[name]
        o, k = r["ocilearn_s"], r["skopeo_s"]
        rows.append(f"| {r['image']} ({r['mb']:.0f} MB of blobs), {r['mode']}, CLI, {r['runs']} runs | {r['ocilearn_median_s']:.3f} s "
                    f"({min(o):.3f}–{max(o):.3f}) | {r['skopeo_median_s']:.3f} s ({min(k):.3f}–{max(k):.3f}) | "
                    f"**{r['ratio']:.2f}×** | {r['ocilearn_peak_rss_mib']:.0f} / {r['skopeo_peak_rss_mib']:.0f} MiB |")
    lc = results["debian_library_call"]
    rows.append(f"| debian as a library call `ocilearn.distribution.copy.copy()` in a warm interpreter | {lc['ocilearn_median_s']:.3f} s | "
                f"(the process above) | {lc['ratio_to_skopeo_process']:.2f}× | – |")
    if "big" in results:
        b = results["big"]
        rows.append(f"| {b['mib']} MiB single layer (incompressible), CLI, {b['runs']} runs | {b['ocilearn_median_s']:.2f} s | "
                    f"{b['skopeo_median_s']:.2f} s | {b['ratio']:.2f}× | {b['ocilearn_peak_rss_mb']:.0f} / {b['skopeo_peak_rss_mb']:.0f} MB |")
    st = results["startup"]
    worst = max(results[n]["ratio"] for n in pulls)
    peak = max(results[n]["ocilearn_peak_rss_mib"] for n in pulls)
    body = "\n".join([
        f"`python -m bench pull`: Debian's docker-registry on 127.0.0.1:{PORT}, both images pushed by skopeo; each tool "
        "pulls into a fresh OCI layout, alternating, in the same run, as root and as an ordinary user "
        "(`ocilearn-test` through setpriv(1), with a clean environment) (skopeo with `--preserve-digests`; ocilearn "
        "verifies every blob digest and size, writes temp + fsync + rename as always). Whole-process wall time, "
        "bytecode compiled first; ocilearn is the `ocilearn` command as the README runs it, the checkout's launcher "
        "`.venv/bin/ocilearn`. Peak RSS from `/usr/bin/time %M`. "
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()} ({os.cpu_count()} CPUs), "
        f"{skv}, Python {platform.python_version()}, medians (min–max).",
        "",
        "| image | ocilearn copy | skopeo copy | ratio | peak RSS ocilearn / skopeo |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"Start-up in the same run (medians of {runs}): `python -c pass` {st['bare_median_s'] * 1000:.0f} ms; "
        f"with the imports of the copy path ({', '.join(f'`{m}`' for m in COPY_PATH)}) "
        f"{st['copy_path_median_s'] * 1000:.0f} ms; neither click nor requests is among them.",
        "",
        f"Goal ≤ 0.8× skopeo: {'met' if worst <= 0.8 else f'not met (worst {worst:.2f}×)'}; "
        f"peak RSS < 150 MB: {'met' if peak < 143 else 'MISSED'} ({peak:.0f} MiB).",
        "",
    ])
    md = REPO / "BENCHMARKS.md"
    text = md.read_text()
    pat = re.compile(r"(## Pull \(`bench/pull.py`\)[^\n]*\n)(.*?)(?=\nWhere the time goes|\n## |\Z)", re.S)
    if not pat.search(text):
        raise SystemExit("bench/pull: BENCHMARKS.md has no '## Pull (`bench/pull.py`)' section")
    md.write_text(pat.sub(lambda m: m.group(1) + "\n" + body, text, count=1))


def main() -> None:
    runs = int(os.environ.get("OCILEARN_BENCH_RUNS", "7"))
    big_mib = int(os.environ.get("OCILEARN_BENCH_BIG_MIB", "0"))
    skopeo = shutil.which("skopeo")
    if not skopeo:
        raise SystemExit("skopeo is not installed (reference peer)")
    py = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv").exists() else sys.executable
    ocilearn = ocilearn_command(py)
    debian = REPO / ".cache" / "images" / "debian"
    if not debian.exists():
        raise SystemExit(f"{debian} missing: run scripts/build-test-images.sh")
    # an installed package has its bytecode compiled; do the same here (a
    # PYTHONDONTWRITEBYTECODE environment would otherwise recompile on every start)
    subprocess.run([py, "-m", "compileall", "-q", str(REPO / "ocilearn")], check=True, capture_output=True)
    base = Path(tempfile.mkdtemp(prefix="ocilearn-bench-pull-"))
    base.chmod(0o755)  # the ordinary user reaches its own directory in it
    env = {**os.environ, "OCILEARN_REGISTRY_RUNDIR": str(base / "run")}
    script = REPO / "scripts" / "start-registry.sh"
    subprocess.run([str(script), "start", str(PORT), str(base / "storage")], env=env, check=True, capture_output=True)
    host = f"127.0.0.1:{PORT}"
    results: dict = {}
    try:
        jre = REPO / ".cache" / "images" / "jre"
        subprocess.run([str(REPO / "scripts" / "build-jre-image.sh")], check=True)
        images = [("debian", debian, "bookworm"), ("jre", jre, "17")]
        for name, path, ref in images:
            subprocess.run([skopeo, "copy", "-q", "--preserve-digests", "--dest-tls-verify=false", f"oci:{path}:{ref}",
                            f"docker://{host}/{name}:{ref}"], check=True)
        # both images in one run, as root and as an ordinary user (what a learner is), the
        # tools alternating (which goes first swaps every run)
        uid, gid = bench_user()
        as_user = base / "user"
        as_user.mkdir()
        os.chown(as_user, uid, gid)
        user_py, user_env = user_python(uid, gid)
        modes = [("root", None, base, ocilearn, env),
                 (f"as uid {uid}", (uid, gid), as_user, ocilearn_command(user_py),
                  {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(as_user), **user_env})]
        for mode, user, out, ocl, mode_env in modes:
            for name, path, ref in images:
                src = f"docker://{host}/{name}:{ref}"
                ours, theirs = [], []
                for i in range(runs):
                    pair = [("ocilearn", ocl + ["copy", "-q", src, f"oci:{out}/o{i}:{ref}"]),
                            ("skopeo", [skopeo, "copy", "-q", "--preserve-digests", "--src-tls-verify=false", src, f"oci:{out}/s{i}:{ref}"])]
                    if i % 2:
                        pair.reverse()
                    for tool, cmd in pair:
                        (ours if tool == "ocilearn" else theirs).append(_run(cmd, mode_env, user))
                    shutil.rmtree(out / f"o{i}")
                    shutil.rmtree(out / f"s{i}")
                mo, ms = statistics.median(x[0] for x in ours), statistics.median(x[0] for x in theirs)
                blobs = sum(f.stat().st_size for f in (path / "blobs/sha256").iterdir())
                results[name if user is None else f"{name} {mode}"] = {"mode": mode, "image": name, "runs": runs, "mb": round(blobs / 1e6, 1), "ocilearn_median_s": round(mo, 3),
                                 "skopeo_median_s": round(ms, 3), "ratio": round(mo / ms, 2),
                                 "ocilearn_s": [round(x[0], 3) for x in ours], "skopeo_s": [round(x[0], 3) for x in theirs],
                                 "ocilearn_peak_rss_mib": round(max(x[1] for x in ours) / 2**20, 1),
                                 "skopeo_peak_rss_mib": round(max(x[1] for x in theirs) / 2**20, 1)}
                print(f"{name} {mode} ({blobs / 1e6:.0f} MB), {runs} runs: ocilearn median {mo:.3f} s, skopeo median {ms:.3f} s, "
                      f"ratio {mo / ms:.2f}x", flush=True)
        src = f"docker://{host}/debian:bookworm"
        # the library call a notebook makes (interpreter and imports already loaded)
        sys.path.insert(0, str(REPO))
        from ocilearn.distribution import copy as transfer

        lib = []
        for i in range(runs):
            t = time.perf_counter()
            transfer.copy(src, f"oci:{base}/l{i}:bookworm")
            lib.append(time.perf_counter() - t)
            shutil.rmtree(base / f"l{i}")
        ml = statistics.median(lib)
        ms = results["debian"]["skopeo_median_s"]
        results["debian_library_call"] = {"ocilearn_median_s": round(ml, 3), "ratio_to_skopeo_process": round(ml / ms, 2),
                                          "ocilearn_s": [round(x, 3) for x in lib]}
        print(f"debian, library call transfer.copy() in a warm interpreter: median {ml:.3f} s, "
              f"ratio {ml / ms:.2f}x skopeo's process", flush=True)
        bare = _startup(py, "pass", runs)
        imports = _startup(py, "import " + ", ".join(COPY_PATH), runs)
        results["startup"] = {"bare_median_s": round(statistics.median(bare), 4),
                              "copy_path_median_s": round(statistics.median(imports), 4)}
        print(f"start-up: python -c pass {statistics.median(bare) * 1000:.0f} ms, + copy path imports "
              f"{statistics.median(imports) * 1000:.0f} ms", flush=True)
        if big_mib <= 0:
            print(json.dumps(results))
            _write_md(results, runs)
            return
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
        _write_md(results, runs)
    finally:
        subprocess.run([str(script), "stop", str(PORT)], env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
