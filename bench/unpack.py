"""Benchmark: ``ocilearn unpack`` vs ``umoci unpack`` on the debian test image, same run.

Modes: as root, and ``--rootless`` as an unprivileged user (``ocilearn-test``, created
like the test fixture does; both tools run through ``setpriv``). Bundles go to an ext4
temp dir (where bundles normally live) and, as a second view that removes most kernel
filesystem cost, to tmpfs (``/dev/shm``). Each pair alternates the two tools, several runs;
the report gives medians, the ratio ocilearn ÷ umoci (wall time; lower is better) and the
peak RSS of each child (``ru_maxrss`` from ``wait4``). Results replace the body of the
"Unpack" section of BENCHMARKS.md.

Run: ``python -m bench unpack`` (root needed for the rootless-as-user mode; env
``OCILEARN_BENCH_RUNS`` sets the runs per tool, default 5; ``OCILEARN_BENCH_SETTLE`` the seconds
waited before the first run, default 35: see ``_measure``).
"""

from __future__ import annotations

import os
import platform
import pwd
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
USER = "ocilearn-test"
GOAL_RATIO = 0.5
GOAL_RSS_MB = 150


def _image() -> Path:
    for p in (REPO / ".cache/images/debian", Path(os.environ.get("OCILEARN_SHARED", REPO.parent / "shared")) / "images/debian"):
        if (p / "index.json").exists():
            return p
    sys.exit("bench/unpack: no debian image: run scripts/build-test-images.sh")


def jre_image() -> Path:
    """The one-layer openjdk-17-jre-headless image (ref ``17``), built and cached by
    ``scripts/build-jre-image.sh`` (bench only; a no-op when it is up to date)."""
    subprocess.run([str(REPO / "scripts/build-jre-image.sh")], check=True)
    return REPO / ".cache/images/jre"


def bench_user() -> tuple[int, int]:
    """(uid, gid) of the unprivileged user ``ocilearn-test``, created with useradd(8) when
    missing (as the tests' fixture does)."""
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", USER], check=True)
        pw = pwd.getpwnam(USER)
    return pw.pw_uid, pw.pw_gid


def user_python(uid: int, gid: int) -> tuple[str, dict]:
    """The interpreter that user can run ocilearn with, and the environment it needs:
    this checkout's ``.venv`` when the user can import from it, else the system Python
    of the same version with the venv's site-packages on ``PYTHONPATH``."""
    venv = str(REPO / ".venv/bin/python")
    env = {"PYTHONPATH": str(REPO)}
    try:
        _run_as([venv, "-c", "import ocilearn.bundle.unpack"], uid, gid, env)
        return venv, env
    except RuntimeError:
        pass
    minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return shutil.which(minor, path="/usr/bin") or minor, {"PYTHONPATH": f"{REPO}:{REPO / '.venv/lib' / minor / 'site-packages'}"}


def ocilearn_command(py: str) -> list[str]:
    """The `ocilearn` command as the README has a learner run it, for the interpreter ``py``
    (from :func:`user_python`): the checkout's launcher (bin/ocilearn, in .venv/bin) when
    ``py`` is the checkout's venv, else ``py -m ocilearn``."""
    return [str(REPO / ".venv/bin/ocilearn")] if py == str(REPO / ".venv/bin/python") else [py, "-m", "ocilearn"]


def clean_env(cmd: list[str], env: dict, user: tuple[int, int] | None = None) -> list[str]:
    """``cmd`` run with only ``env`` (env(1) -i), as ``user`` (uid, gid) through setpriv(1)
    when given."""
    full = ["env", "-i", *[f"{k}={v}" for k, v in env.items()], *cmd]
    if user is not None:
        full = ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--init-groups", "--", *full]
    return full


def _run_as(cmd, uid, gid, env) -> tuple[int, float, int]:
    full = clean_env(cmd, {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", **env},
                     None if uid is None else (uid, gid))
    t0 = time.perf_counter()
    p = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=str(REPO))
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode() if p.stderr else ""
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {err[-500:]}")
    return p.returncode, wall, ru.ru_maxrss  # KiB


def _measure(label: str, base: Path, image: Path, ref: str, rootless: bool, runs: int, user, keep: list[Path]) -> dict:
    """Alternating runs of both tools. The bundles are kept (their directory is appended to
    ``keep``; the caller removes them after the last measurement): on ext4 without a
    journal, as here, the inode allocator skips every inode freed in the last 30 s and pays
    a buffer lookup for each one skipped (``recently_deleted()`` in fs/ext4/ialloc.c), so
    removing a bundle just before the next run made each file creation of that run cost
    ≈ 150 µs instead of ≈ 30 µs — for whichever tool came next. A ``sync`` after each
    run (not timed) keeps one run's writeback out of the next one."""
    uid, gid = user if rootless else (None, None)
    py, env = user_python(uid, gid) if rootless else (str(REPO / ".venv/bin/python"), {"PYTHONPATH": str(REPO)})
    work = Path(tempfile.mkdtemp(prefix="ocilearn-bench-unpack-", dir=base))
    keep.append(work)
    if rootless:
        os.chown(work, uid, gid)
    flag = ["--rootless"] if rootless else []
    ocl = ocilearn_command(py)
    tools = {
        "umoci": lambda b: ["umoci", "unpack", *flag, "--image", f"{image}:{ref}", str(b)],
        "ocilearn": lambda b: [*ocl, "unpack", "-q", *flag, "--image", f"{image}:{ref}", str(b)],
    }
    times: dict[str, list[float]] = {t: [] for t in tools}
    rss: dict[str, int] = {t: 0 for t in tools}
    for i in range(runs):
        for name, cmd in tools.items():
            b = work / f"{name}-{i}"
            _, wall, maxrss = _run_as(cmd(b), uid, gid, env)
            times[name].append(wall)
            rss[name] = max(rss[name], maxrss)
            os.sync()  # untimed: the next run starts with no dirty pages of this one being written back
            print(f"  {label} run {i + 1}/{runs} {name}: {wall:.2f} s, {maxrss / 1024:.0f} MiB", flush=True)
    med = {t: statistics.median(v) for t, v in times.items()}
    return {"label": label, "median": med, "min": {t: min(v) for t, v in times.items()}, "max": {t: max(v) for t, v in times.items()},
            "rss": rss, "ratio": med["ocilearn"] / med["umoci"], "runs": runs}


def _syscalls(image_dir: Path) -> dict[str, int] | None:
    """Syscalls made by each tool unpacking the small busybox image (``strace -f -c``),
    when strace is installed: shows where the per-entry cost goes."""
    if not shutil.which("strace"):
        return None
    img = image_dir.parent / "busybox"
    if not (img / "index.json").exists():
        return None
    out = {}
    work = Path(tempfile.mkdtemp(prefix="ocilearn-bench-strace-"))
    try:
        for name, cmd in (("umoci", ["umoci", "unpack", "--image", f"{img}:latest"]),
                          ("ocilearn", [str(REPO / ".venv/bin/python"), "-m", "ocilearn", "unpack", "-q", "--image", f"{img}:latest"])):
            log = work / f"{name}.strace"
            subprocess.run(["strace", "-f", "-c", "-o", str(log), *cmd, str(work / name)], check=True,
                           capture_output=True, cwd=str(REPO))
            total = [line for line in log.read_text().splitlines() if line.strip().endswith("total")]
            out[name] = int(total[-1].split()[3]) if total else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _fs(path: str) -> str:
    out = subprocess.run(["df", "-T", path], capture_output=True, text=True).stdout.splitlines()
    return out[-1].split()[1] if len(out) > 1 else "?"


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("bench/unpack: run as root (the rootless mode runs both tools as an unprivileged user)")
    runs = int(os.environ.get("OCILEARN_BENCH_RUNS", "5"))
    image = _image()
    images = [("debian", image, "bookworm"), ("jre", jre_image(), "17")]
    user = bench_user()
    results = []
    tmp = Path(tempfile.gettempdir())
    modes = [(f"root, {_fs(str(tmp))} ({tmp})", tmp, False), (f"rootless as uid {user[0]}, {_fs(str(tmp))} ({tmp})", tmp, True)]
    if os.environ.get("OCILEARN_BENCH_TMPFS"):
        modes.append(("root, tmpfs (/dev/shm)", Path("/dev/shm"), False))
    keep: list[Path] = []
    # inodes freed in the last 30 s (an earlier run of this benchmark, a test) make file
    # creation slower on ext4 without a journal: see _measure
    time.sleep(float(os.environ.get("OCILEARN_BENCH_SETTLE", "35")))
    try:
        for iname, ipath, ref in images:
            for label, base, rootless in modes:
                label = f"{iname}: {label}"
                print(f"bench/unpack: {label}", flush=True)
                results.append(_measure(label, base, ipath, ref, rootless, runs, user, keep))
    finally:
        for work in keep:  # rootless bundles may hold directories without u+rwx
            subprocess.run(["chmod", "-R", "u+rwX", str(work)], check=False)
            shutil.rmtree(work, ignore_errors=True)
    umoci_v = subprocess.run(["umoci", "--version"], capture_output=True, text=True).stdout.strip()
    sc = _syscalls(image)
    sc_line = (f" Syscalls to unpack busybox (289 entries, `strace -f -c`, interpreter start-up included): "
               f"umoci {sc['umoci']}, ocilearn {sc['ocilearn']}." if sc else "")
    rows = []
    for r in results:
        m, lo, hi = r["median"], r["min"], r["max"]
        rows.append(
            f"| {r['label']} | {r['runs']} | {m['umoci']:.2f} s ({lo['umoci']:.2f}–{hi['umoci']:.2f}) | "
            f"{m['ocilearn']:.2f} s ({lo['ocilearn']:.2f}–{hi['ocilearn']:.2f}) | **{r['ratio']:.2f}×** | "
            f"{r['rss']['umoci'] / 1024:.0f} MiB | {r['rss']['ocilearn'] / 1024:.0f} MiB |"
        )
    worst = max(r["ratio"] for r in results)
    peak = max(r["rss"]["ocilearn"] for r in results) / 1024
    verdict = (
        f"Goal ≤ {GOAL_RATIO}× umoci: {'met' if worst <= GOAL_RATIO else f'MISSED in at least one mode (worst {worst:.2f}×, {worst / GOAL_RATIO:.1f}× over the goal)'}; "
        f"peak RSS < {GOAL_RSS_MB} MB: {'met' if peak < GOAL_RSS_MB else 'MISSED'} ({peak:.0f} MiB)."
    )
    def mb(p: Path) -> str:
        return f"{sum(f.stat().st_size for f in (p / 'blobs/sha256').iterdir()) / 1e6:.0f} MB"
    body = "\n".join([
        f"Images: `debian` (`.cache/images/debian`, 3 gzip layers, {mb(images[0][1])} of blobs) and `jre` "
        f"(`.cache/images/jre`, one gzip layer of openjdk-17-jre-headless, {mb(images[1][1])}, built by "
        "`scripts/build-jre-image.sh`). "
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()} "
        f"({os.cpu_count()} CPUs, Linux {platform.release()}), {umoci_v}, Python {platform.python_version()}; "
        "other jobs may share the machine, so look at the ratio measured in the same run. "
        "Medians (min–max) of alternating runs; wall time of the whole command (process start included; ocilearn is "
        "the `ocilearn` command as the README runs it, the checkout's launcher `.venv/bin/ocilearn`); "
        "peak RSS = `ru_maxrss` of each child (`wait4`).",
        "",
        "| image: mode, filesystem | runs | umoci unpack | ocilearn unpack | ratio | umoci peak RSS | ocilearn peak RSS |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        verdict,
        "",
        "Where the time goes. This disk is ext4 **without a journal**; there the inode allocator skips every "
        "inode freed in the last 30 s and pays a buffer-cache lookup for each one it skips (`recently_deleted()` "
        "in fs/ext4/ialloc.c; `perf record` of an unpack right after a bundle was removed shows "
        "`find_get_block_common` under `recently_deleted` as the top symbol, ≈ 33 % of the samples). Until "
        "2026-12-05 13:35 this benchmark removed each bundle just before the next run, so each file creation "
        "cost ≈ 150 µs instead of ≈ 30 µs — for both tools — and the debian ratio sat at ≈ 0.7× (`strace -c` of one debian unpack at 13:42: `openat` 29 µs and `mkdirat` 40 µs each with no removal in the previous 30 s, 92 µs and 118 µs right after removing one bundle; in one "
        "process, ocilearn's debian unpack took 1.6–1.9 s right after a removal, 0.7–1.1 s without one). The "
        "bundles are now kept until the last run and a `sync` (not timed) separates runs; other jobs on the "
        "machine still remove files on the same disk, which is one reason the debian ratios move from run to run. Creating the small files on two worker threads was tried and not kept: in "
        "one process it was no faster (median 1.0 s vs 0.85 s serial) and its kernel time rose from 1.3 s to "
        "2.3 s — concurrent creations contend inside ext4, and the machine's second core is often busy. The "
        "JRE image has few, large files: there the cost is inflating (ISA-L through the `isal` package), both "
        "sha256 (blob digest and diff ID) and writing. Three threads share it (`ocilearn/layer/tar.py`): one "
        "reads the blob, hashes it and inflates it; one hashes the tar stream for the diff ID; the caller's "
        "thread parses and writes, and the two helpers run at nice +5 so that, where the writer is the "
        "critical path (many small files), they take only the idle time. Alone on this VM, for the JRE layer: "
        "sha256 of the 67 MiB blob ≈ 58 ms, inflating it ≈ 340 ms, sha256 of the 184 MiB tar ≈ 130 ms. "
        "Before 2026-12-05 17:50 one helper did the reading, inflating and both hashes and was the critical "
        "path for large files. A/B against that pipeline, same run, alternating, medians of 6–8: JRE into "
        "tmpfs 0.64 → 0.52 s, debian into tmpfs 0.60 → 0.56 s; into ext4 with the bundles kept (as this "
        "table is measured) debian 0.70 → 0.66 s and JRE 0.75 → 0.74 s, where the page cache's cost, the "
        "same for umoci, dominates: on this VM a run that writes into memory not touched for a while (every "
        "run here, as the bundles are kept) spends 2–4× the kernel time of one that reuses freshly freed "
        "pages, which is why the ratios move between runs. "
        "Verification is unchanged: every blob digest and size and every diff ID is checked; like umoci the "
        "file data is left to the page cache (`ocilearn unpack --sync` adds one `syncfs`)." + sc_line,
        "",
        "Where the writer's time went, and the floor. For debian the caller's thread — parse each header, create "
        "the entry, copy its bytes, set its mode and times — is the critical path. `py-spy` of a rootless debian "
        "unpack (2026-12-05 19:45) showed Python time that did no work: tarfile's streaming mode (`r|`) copied its "
        "10 KiB buffer on every header read (≈ 18 % of the thread's samples), the header checksum unpacked all 512 "
        "bytes twice (`calc_chksums`, ≈ 8 %), a `readlink` of `/proc/self/fd/N` per entry (≈ 8 %) and, rootless, an "
        "`fstat` per entry; `ReadAhead.readinto` copied every chunk twice. Now tarfile reads in its seekable mode "
        "through a stream that seeks forward only (`_ForwardOnly` in `ocilearn/layer/tar.py`), the checksum is "
        "summed at C speed (the signed sum still accepted), and the kernel name and `u+rwx` of each cached "
        "directory fd are remembered until the cache is invalidated (`Root.fd_path`, `Root.make_writable`): the "
        "thread's user time went from 210–250 ms to 170–220 ms. A well-formed `ocilearn unpack` line no longer "
        "imports click (21 of the 40 ms of the unpack path's imports; `ocilearn/core/argv.py`). What is left, "
        "per thread (`/proc/thread-self/stat`, in-process, debian rootless): the writer ≈ 200 ms of user time and "
        "100–150 ms of kernel time when the VM's memory is warm, 400–490 ms when it is cold; the whole process "
        "≈ 0.5 s user and 0.15–0.55 s kernel on 2 cores. JRE: the writer 30–70 ms user and 460–520 ms kernel "
        "(193 MB copied into the page cache; `copy_folio_from_iter_atomic` is the top symbol under `perf`), the "
        "process 0.5 s user and 0.5 s kernel in 0.59 s of wall time: 1.7 of the 2 cores busy. That is the work "
        "itself — inflating (ISA-L), two sha256 (blob digest and diff ID), the kernel's file creation and "
        "page-cache copy — spread over a 2-core machine. Tried and not kept: writing the files' contents, modes "
        "and times on a fourth thread (debian in one process 0.45–0.51 s → 0.58–0.65 s warm, 0.69–0.87 s → "
        "0.79–0.90 s cold: each of that thread's system calls takes the GIL back and every hand-over is a "
        "cross-core wake-up on this VM); a deeper queue in front of the writer (32 chunks instead of 8: no "
        "difference in 12 alternating pairs); feeding the inflater 256 KiB instead of 1 MiB (inflating the JRE "
        "layer alone 8 % faster, the whole unpack no faster, its writer being the critical path).",
        "",
        "Whole runs of this table on 2026-12-05 (worst mode of each, the mode in brackets): 17:37 before the "
        "three-stage pipeline 0.48× (jre root); with it 18:28 0.50×, 18:41 0.54×, 18:47 0.49×, 18:52 0.52× (all "
        "debian rootless: the goal held at its limit, not reliably); 19:55, after the writer's changes above, "
        "0.46× (debian rootless, still through `python -m ocilearn`); 20:02, with the launcher and no click, 0.44× "
        "(jre, both modes; debian root 0.39×, rootless 0.44×); 20:21, after the hostile review's fixes, 0.44× (jre "
        "root); 21:11, after a last read of the whole change, 0.43× (jre rootless; the table above).",
        "",
        "Re-run: `.venv/bin/python -m bench unpack` (as root; `OCILEARN_BENCH_RUNS=N`, `OCILEARN_BENCH_TMPFS=1` adds a tmpfs mode, `OCILEARN_BENCH_SETTLE=S` the seconds waited before the first run, 35 by default).",
    ])
    bench_md = REPO / "BENCHMARKS.md"
    text = bench_md.read_text()
    pat = re.compile(r"(## Unpack \(`bench/unpack.py`\)[^\n]*\n)(.*?)(?=\n## |\Z)", re.S)
    if not pat.search(text):
        sys.exit("bench/unpack: BENCHMARKS.md has no '## Unpack (`bench/unpack.py`)' section")
    text = pat.sub(lambda m: m.group(1) + "\n" + body + "\n", text, count=1)
    bench_md.write_text(text)
    print("\n".join(rows))
    print(verdict)


if __name__ == "__main__":
    main()
