"""The workshop's room budget, measured on this machine with the real hub (run as root).

    .venv/bin/python scripts/hub/measure.py [--out FILE.json]

Starts the hub as ``make hub`` does (scripts/hub/start.sh) on a free loopback port with three
learners made for the measurement (``olmeas-1`` … ``-3``, removed at the end with userdel -r),
then, all over HTTP like a learner (scripts/hub/hubclient.py):

1. **one learner, the whole course**: each notebook 00–04 in a fresh kernel of that learner's
   server, in order, kernels left running (as JupyterLab leaves the kernels of open
   notebooks). Per notebook: wall time of the execution, CPU seconds of the kernel and
   everything it waited for (utime+stime+cutime+cstime of the kernel, /proc/PID/stat,
   proc(5)), and the kernel's RSS after it. Then RSS and PSS (/proc/PID/smaps_rollup) of the
   server + one kernel (04's) and of the server + all five kernels, and the learner's disk use
   (du of the home, with the kernels alive — the notebooks' work dirs still exist — and
   after they were shut down).
2. **three learners at once**: each learner's server started and a kernel idle in each, then
   notebook 04 submitted to the three kernels at the same moment (a thread per learner);
   wall time until the last finished, each learner's own time, and the peak of the summed
   RSS (and PSS) of all three learners' processes, sampled every 0.1 s.

Prints a JSON document (and writes it with --out); BENCHMARKS.md's "Workshop" section and
docs/workshop/room-budget.md quote it.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))

import hubclient  # noqa: E402
import workshop  # noqa: E402

LEARNERS = ["olmeas-1", "olmeas-2", "olmeas-3"]
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """utime+stime+cutime+cstime of ``pid`` in seconds (proc(5) /proc/PID/stat fields 14–17)."""
    data = Path(f"/proc/{pid}/stat").read_bytes()
    f = data[data.rindex(b")") + 2:].split()
    return sum(int(x) for x in f[11:15]) / TICK


def rss_pss(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of ``pid`` in bytes, from /proc/PID/smaps_rollup; (0, 0) when it is gone."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, pss


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kernel_pid(uid: int, kernel_id: str) -> int:
    for pid in workshop.learner_pids(uid):
        if "ipykernel_launcher" in cmdline(pid) and f"kernel-{kernel_id}.json" in cmdline(pid):
            return pid
    raise RuntimeError(f"no kernel process {kernel_id} for uid {uid}")


def server_pid(uid: int) -> int:
    for pid in workshop.learner_pids(uid):
        if "jupyterhub-singleuser" in cmdline(pid):
            return pid
    raise RuntimeError(f"no server process for uid {uid}")


def du(path: str) -> int:
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True, check=True).stdout.split()[0])


def total_mem(uids: list[int]) -> tuple[int, int]:
    rss = pss = 0
    for u in uids:
        for pid in workshop.learner_pids(u):
            r, p = rss_pss(pid)
            rss, pss = rss + r, pss + p
    return rss, pss


def notebook(path: Path):
    import nbformat
    from test_notebooks import with_parameters

    return with_parameters(nbformat.read(path, as_version=4), {"IMAGE": "None"})


def run_checked(kernel: hubclient.RemoteKernel, path: Path, rootless: bool = True):
    from test_notebooks import check_notebook

    nb = kernel.run_notebook(notebook(path))
    check_notebook(nb, path, rootless=rootless)
    return nb


def main(argv: list[str]) -> dict:
    import pwd

    out_file = argv[argv.index("--out") + 1] if "--out" in argv else None
    if os.geteuid() != 0:
        raise SystemExit("measure: run as root (the hub creates the learners' accounts)")
    for n in LEARNERS:
        try:
            pw = pwd.getpwnam(n)
        except KeyError:
            continue
        if pw.pw_gecos != workshop.LEARNER_COMMENT:
            raise SystemExit(f"measure: user {n} exists and was not made by the workshop hub: this measurement needs that name")
        workshop.remove_learner(n)  # left by an interrupted run
    password = secrets.token_urlsafe(12)
    tmp = Path(tempfile.mkdtemp(prefix="ocilearn-hub-measure-"))
    hub = hubclient.HubProcess(REPO, hubclient.free_ports(3), LEARNERS, password, tmp / "state", tmp / "hub.log")
    result: dict = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": {
        "cpus": os.cpu_count(), "mem_total_bytes": os.sysconf("SC_PHYS_PAGES") * PAGE, "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg()}}
    notebooks = sorted((REPO / "notebooks").glob("[0-9]*.ipynb"))
    try:
        result["jupyterhub"] = hub.wait_ready()["version"]
        learners = {n: hubclient.Learner(hub.base, n, hubclient.login(hub.base, n, password)) for n in LEARNERS}
        # -- 1. one learner, the whole course
        first = learners[LEARNERS[0]]
        t0 = time.monotonic()
        first.start_server()
        result["server_start_seconds"] = round(time.monotonic() - t0, 2)
        pw = pwd.getpwnam(first.name)
        spid = server_pid(pw.pw_uid)
        result["server_idle_rss_pss"] = rss_pss(spid)
        result["home_bytes_at_first_login"] = du(pw.pw_dir)
        per_nb, kernels = {}, []
        for path in notebooks:
            k = first.kernel()
            kernels.append(k)
            kp = kernel_pid(pw.pw_uid, k.id)
            k.text("1")  # the kernel is up and answering: its start-up is not the notebook's time
            c0, s0, t0 = cpu_seconds(kp), cpu_seconds(spid), time.monotonic()
            run_checked(k, path)
            wall = time.monotonic() - t0
            per_nb[path.name] = {"wall_seconds": round(wall, 2), "kernel_cpu_seconds": round(cpu_seconds(kp) - c0, 2),
                                 "server_cpu_seconds": round(cpu_seconds(spid) - s0, 2), "kernel_rss_pss_after": rss_pss(kp)}
        result["one_learner_per_notebook"] = per_nb
        k04 = kernel_pid(pw.pw_uid, kernels[-1].id)
        srv, kern = rss_pss(spid), rss_pss(k04)
        result["server_plus_04_kernel_rss_pss"] = [srv[0] + kern[0], srv[1] + kern[1]]
        result["server_plus_all_5_kernels_rss_pss"] = list(total_mem([pw.pw_uid]))
        result["home_bytes_kernels_alive"] = du(pw.pw_dir)
        result["work_bytes_kernels_alive"] = du(os.path.join(pw.pw_dir, workshop.WORK_DIR))
        for k in kernels:
            k.shutdown()
        time.sleep(2)
        result["home_bytes_after_kernels_stopped"] = du(pw.pw_dir)
        result["course_copy_bytes"] = du(os.path.join(pw.pw_dir, workshop.COURSE_DIR))
        result["shared_venv_bytes"] = du(os.environ.get("HUB_VENV", "/opt/ocilearn-hub/venv"))
        # the room's fixed cost: the hub process and configurable-http-proxy, with 3 learners' servers known to them
        hub_pid = int((tmp / "state" / "jupyterhub.pid").read_text())
        proxy_pid = int((tmp / "state" / "proxy.pid").read_text())
        result["hub_rss_pss"], result["proxy_rss_pss"] = rss_pss(hub_pid), rss_pss(proxy_pid)
        # -- 2. three learners, notebook 04 at the same moment
        for lr in learners.values():
            lr.start_server()
        ks = {n: lr.kernel() for n, lr in learners.items()}
        for k in ks.values():
            k.text("1")
        uids = [pwd.getpwnam(n).pw_uid for n in LEARNERS]
        base_rss, base_pss = total_mem(uids)
        peak = [base_rss, base_pss]
        done = threading.Event()

        def sample():
            while not done.is_set():
                r, p = total_mem(uids)
                peak[0], peak[1] = max(peak[0], r), max(peak[1], p)
                time.sleep(0.1)

        times, errors = {}, {}

        def learner_run(n):
            t = time.monotonic()
            try:
                run_checked(ks[n], REPO / "notebooks" / "04-runtime.ipynb")
            except Exception as e:  # noqa: BLE001 - reported in the result
                errors[n] = f"{type(e).__name__}: {str(e)[:500]}"
            times[n] = round(time.monotonic() - t, 2)

        sampler = threading.Thread(target=sample)
        sampler.start()
        cpu0 = {u: sum(cpu_seconds(p) for p in workshop.learner_pids(u) if "ipykernel_launcher" in cmdline(p)) for u in uids}
        threads = [threading.Thread(target=learner_run, args=(n,)) for n in LEARNERS]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        done.set()
        sampler.join()
        cpu1 = {u: sum(cpu_seconds(p) for p in workshop.learner_pids(u) if "ipykernel_launcher" in cmdline(p)) for u in uids}
        result["three_learners_04_at_once"] = {
            "wall_seconds": round(wall, 2), "per_learner_seconds": times, "errors": errors,
            "kernel_cpu_seconds": {n: round(cpu1[u] - cpu0[u], 2) for n, u in zip(LEARNERS, uids, strict=True)},
            "rss_pss_before": [base_rss, base_pss], "peak_rss_pss_total": peak, "rss_pss_after": list(total_mem(uids)),
            "loadavg_after": os.getloadavg()}
        for k in ks.values():
            k.shutdown()
    finally:
        hub.stop()
        for n in LEARNERS:
            workshop.remove_learner(n)
        log = (tmp / "hub.log").read_text(errors="replace")
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if out_file:
        Path(out_file).write_text(text + "\n")
    if "three_learners_04_at_once" not in result:
        print(log[-3000:], file=sys.stderr)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
