"""The runtime against runc on the same bundle, the lifecycle, isolation, and the hard
cases of container start-up: a working directory through /proc/self/fd (CVE-2024-21626),
a rootfs that is a plain directory, on tmpfs, or on a host that cannot pivot_root, PID 1
that neither reaps nor handles SIGTERM. Needs root (CI runs as root); the rootless path
is in test_runtime_rootless.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import require_tool, shared_path
from test_runtime_helpers import OCILEARN, cid, make_bundle, needs_root

from ocilearn.core.errors import ContainerError
from ocilearn.runtime.container import parse_signal

pytestmark = needs_root

PROBE = r"""
echo "pid $$"; echo "hostname $(hostname)"; id; grep -E '^(Cap|NoNewPrivs)' /proc/self/status
while read -r a b c d mp opts rest; do fs=${rest#*- }; echo "mnt $mp ${fs%% *} $opts"; done < /proc/self/mountinfo
ulimit -a | sed 's/^/rlimit /'
echo "procs $(ls /proc | grep -E '^[0-9]+$' | tr '\n' ' ')"
for f in memory/memory.limit_in_bytes pids/pids.max cpu/cpu.shares cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us memory.max pids.max cpu.max; do
  [ -e /sys/fs/cgroup/$f ] && echo "cgroup $f $(cat /sys/fs/cgroup/$f)"; done
env | sort | sed 's/^/env /'; echo "cwd $(pwd)"; echo "umask $(umask)"
"""
LIMITS = {"memory": {"limit": 64 * 1024 * 1024}, "pids": {"limit": 40}, "cpu": {"shares": 512, "quota": 50000, "period": 100000},
          "devices": [{"allow": False, "access": "rwm"}]}


def normalise(out: str) -> list[str]:
    """Probe output with the host-dependent bits made comparable: mount lines sorted
    (runc binds cgroup hierarchies in map order), and the PID list reduced to "pid 1 +
    how many others" (the probe's own pipeline PIDs are numbered differently)."""
    lines, mnts = [], []
    for line in out.splitlines():
        if line.startswith("mnt "):
            mnts.append(line)
        elif line.startswith("procs "):
            pids = sorted(int(p) for p in line.split()[1:])
            assert pids[0] == 1 and all(p < 64 for p in pids), line
            lines.append("procs 1 + short-lived pipeline members")
        else:
            lines.append(line)
    return lines + sorted(mnts)


def _probe_pair(base: Path, tmp_path: Path, runner, **changes) -> tuple[list[str], list[str]]:
    runc = require_tool("runc")
    b = make_bundle(base, tmp_path / "probe", ["/bin/sh", "-c", PROBE], **{"linux.resources": LIMITS, **changes})
    rid, oid = cid("probe-runc"), cid("probe-ol")
    r = runner.cmd(runc, "--root", str(tmp_path / "runc"), "run", "--bundle", str(b), rid)
    assert r.returncode == 0, r.stderr
    o = runner.oc("run", "--bundle", str(b), oid)
    return normalise(r.stdout), normalise(o.stdout)


def test_probe_matches_runc_busybox(busybox_base, tmp_path, runner):
    """The container's observable world is the same under runc and ocilearn."""
    theirs, ours = _probe_pair(busybox_base, tmp_path, runner)
    assert ours == theirs
    # and it is the world the config asked for, not merely equal
    assert "pid 1" in ours and "hostname umoci-default" in ours
    assert "uid=1000(app) gid=1000(app) groups=1000(app)" in ours or "uid=1000(app) gid=1000(app)" in ours
    assert "CapBnd:\t0000000020000420" in ours and "NoNewPrivs:\t1" in ours
    from ocilearn.runtime.cgroups import detect

    if detect()[0] == 1:
        assert "cgroup memory/memory.limit_in_bytes 67108864" in ours and "cgroup pids/pids.max 40" in ours
        assert "cgroup cpu/cpu.shares 512" in ours and "cgroup cpu/cpu.cfs_quota_us 50000" in ours
    else:
        assert "cgroup memory.max 67108864" in ours and "cgroup pids.max 40" in ours and "cgroup cpu.max 50000 100000" in ours
    assert "cwd /home/app" in ours and "env GREETING=hello" in ours
    assert any(line.startswith("rlimit open files") and line.endswith("1024") for line in ours)
    assert "mnt / ext4 rw,relatime" in ours or any(line.startswith("mnt / ") for line in ours)


def test_probe_matches_runc_with_cgroup_namespace_and_rootfs_propagation(busybox_base, tmp_path, runner):
    """With a cgroup namespace the container mounts its own cgroup hierarchies (rooted at
    its cgroup) instead of bind mounts; /proc/self/cgroup shows "/" paths."""
    cfg = json.loads((busybox_base / "config.json").read_text())
    nss = cfg["linux"]["namespaces"] + [{"type": "cgroup"}]
    theirs, ours = _probe_pair(busybox_base, tmp_path, runner, **{"linux.namespaces": nss, "linux.rootfsPropagation": "rprivate"})
    assert ours == theirs
    assert any(line.startswith(("mnt /sys/fs/cgroup/memory cgroup ro,", "mnt /sys/fs/cgroup cgroup2 ro,")) for line in ours)


@pytest.fixture(scope="session")
def debian_base(tmp_path_factory) -> Path:
    from test_runtime_helpers import unpack_reference

    return unpack_reference(shared_path("images", "debian"), tmp_path_factory.mktemp("rt-debian") / "debian", "bookworm")


def test_probe_matches_runc_debian_as_root_with_caps(debian_base, tmp_path, runner):
    """Debian bundle, run as root with runc's default capability set and a readonly root."""
    caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID",
            "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
    theirs, ours = _probe_pair(debian_base, tmp_path, runner, **{
        "process.user": {"uid": 0, "gid": 0, "additionalGids": [10, 20]},
        "process.capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []},
        "process.noNewPrivileges": False, "process.cwd": "/", "root.readonly": True, "hostname": "deb-probe"})
    assert ours == theirs
    assert "uid=0(root) gid=0(root) groups=0(root),10(uucp),20(dialout)" in ours
    assert "CapEff:\t00000000a80425fb" in ours and "NoNewPrivs:\t0" in ours
    assert "mnt / ext4 ro,relatime" in ours


def validate_state(st: dict, schema_file: Path) -> None:
    """Validate against runtime-spec's state-schema.json (its $refs resolved beside it)."""
    import jsonschema
    from referencing import Registry, Resource

    d = schema_file.parent
    from referencing.jsonschema import DRAFT4

    registry = Registry(retrieve=lambda uri: Resource.from_contents(json.loads((d / uri.rsplit("/", 1)[-1]).read_text()), DRAFT4))
    schema = json.loads(schema_file.read_text())
    jsonschema.validators.validator_for(schema)(schema, registry=registry).validate(st)


def _state(runner, name: str) -> dict:
    return json.loads(runner.oc("state", name).stdout)


def test_lifecycle_create_exec_start_kill_delete(busybox_base, tmp_path, runner):
    """The article's sequence: create -> list -> exec (before start) -> start -> state ->
    ps -> kill -> delete, with truthful statuses and the state JSON per the schema."""
    b = make_bundle(busybox_base, tmp_path / "b", ["/bin/sh", "-c", "trap 'exit 3' TERM; echo started > /tmp/started; while :; do sleep 0.05; done"],
                    **{"process.user": {"uid": 0, "gid": 0}})
    name = cid("life")
    pidfile = tmp_path / "init.pid"
    runner.oc("create", "--bundle", str(b), "--pid-file", str(pidfile), name)
    st = _state(runner, name)
    assert st["status"] == "created" and st["id"] == name and st["bundle"] == str(b)
    assert int(pidfile.read_text()) == st["pid"]
    listed = json.loads(runner.oc("list", "--format", "json").stdout)
    assert [(c["id"], c["status"], c["pid"]) for c in listed] == [(name, "created", st["pid"])]
    assert name in runner.oc("list").stdout.splitlines()[1]
    # exec before start: it joins the namespaces; the init (PID 1) waits, the program has not run
    ex = runner.oc("exec", name, "/bin/sh", "-c", "echo $$; hostname; cat /proc/1/cmdline | tr '\\0' ' '; test -e /tmp/started && echo ran; true")
    lines = ex.stdout.split("\n")
    assert lines[1] == "umoci-default" and "ran" not in ex.stdout
    assert int(lines[0]) > 1  # a new process in the container's PID namespace
    runner.oc("start", name)
    time.sleep(0.2)
    st = _state(runner, name)
    assert st["status"] == "running"
    st_running_pid = st["pid"]
    init_parent = int(Path(f"/proc/{st_running_pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert init_parent == runner.p.pid  # the init's parent is the caller's subreaper, no runtime process
    assert runner.oc("exec", name, "cat", "/tmp/started").stdout == "started\n"
    ps = json.loads(runner.oc("ps", "--format", "json", name).stdout)
    assert st["pid"] in ps
    schema_file = shared_path("fixtures", "runtime-spec-schema", "state-schema.json")
    validate_state(st, schema_file)
    runner.oc("kill", name, "TERM")
    deadline = time.monotonic() + 5
    while _state(runner, name)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    st = _state(runner, name)
    assert st["status"] == "stopped" and "pid" not in st
    validate_state(st, schema_file)
    # no runtime process stayed behind: the init was re-parented to the subreaper (the
    # runner, as conmon for podman) and its wait(2) gave the real exit status
    assert runner.exit_status(st_running_pid) == 3
    assert sorted(os.listdir(Path(runner.root) / name)) == ["state.json"]
    bad = runner.oc("start", name, check=False)
    assert bad.returncode == 1 and "stopped, not created" in bad.stderr
    runner.oc("delete", name)
    assert not (Path(runner.root) / name).exists()
    gone = runner.oc("state", name, check=False)
    assert gone.returncode == 1 and "does not exist" in gone.stderr
    assert runner.children() == []  # init reaped by the subreaper, nothing left


def test_run_exit_code_and_signal_forwarding(busybox_base, tmp_path):
    """`run` passes the exit code through, forwards SIGTERM to the container, and reports
    death by signal N as 128+N."""
    b = make_bundle(busybox_base, tmp_path / "b", ["/bin/sh", "-c", "exit 7"])
    root = str(tmp_path / "st")
    assert subprocess.run([OCILEARN, "--root", root, "run", "-b", str(b), cid("ex")]).returncode == 7
    make_bundle(busybox_base, b, ["/bin/sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done"])
    p = subprocess.Popen([OCILEARN, "--root", root, "run", "-b", str(b), cid("fw")], stdout=subprocess.PIPE, text=True)
    assert p.stdout and p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 42
    name = cid("sig")
    make_bundle(busybox_base, b, ["sleep", "30"])
    p = subprocess.Popen([OCILEARN, "--root", root, "run", "-b", str(b), name])
    deadline = time.monotonic() + 10
    while not (Path(root) / name / "state.json").exists() or json.loads((Path(root) / name / "state.json").read_text())["status"] != "created":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.1)
    subprocess.run([OCILEARN, "--root", root, "kill", name, "KILL"], check=True)
    assert p.wait(10) == 128 + 9
    assert os.listdir(root) == []


def test_isolation(busybox_base, tmp_path, runner):
    """Host processes and files invisible; masked paths unreadable; read-only paths
    unwritable; hostname private."""
    marker = tmp_path / "host-marker"
    marker.write_text("secret")
    script = f"""
    ls /proc | grep -E '^[0-9]+$' | tr '\\n' ' '; echo
    test -e {marker} && echo MARKER-VISIBLE; cat {marker} 2>/dev/null
    echo "timer_list $(wc -c < /proc/timer_list)"; echo "firmware [$(ls /sys/firmware)]"
    echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo SYS-WRITABLE
    echo x > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ-WRITABLE
    hostname other 2>/dev/null; hostname
    """
    b = make_bundle(busybox_base, tmp_path / "b", ["/bin/sh", "-c", script], **{"hostname": "iso"})
    out = runner.oc("run", "-b", str(b), cid("iso")).stdout.splitlines()
    pids = [int(p) for p in out[0].split()]
    assert pids[0] == 1 and len(pids) <= 6 and os.getpid() not in pids[1:] or max(pids) < 64
    assert "MARKER-VISIBLE" not in out and "secret" not in out
    assert "timer_list 0" in out and "firmware []" in out  # masked (the host's /proc/timer_list is not empty)
    assert Path("/proc/timer_list").stat().st_size == 0 and len(Path("/proc/timer_list").read_bytes()) > 0
    assert "SYS-WRITABLE" not in out and "SYSRQ-WRITABLE" not in out
    assert out[-1] == "iso" and socket.gethostname() != "iso"


def test_fork_bomb_stopped_by_pids_limit(busybox_base, tmp_path, runner):
    b = make_bundle(busybox_base, tmp_path / "b", ["/bin/sh", "-c",
                    "(i=0; while [ $i -lt 60 ]; do sleep 2 & i=$((i+1)); done) 2>/dev/null; "
                    "d=/sys/fs/cgroup/pids; [ -e $d/pids.current ] || d=/sys/fs/cgroup; "  # v1, else v2
                    "read c < $d/pids.current; read k v < $d/pids.events; echo current $c $k $v"],
                    **{"linux.resources": {"pids": {"limit": 12}}})
    out = runner.oc("run", "-b", str(b), cid("bomb"), timeout=60).stdout.split()
    assert int(out[out.index("current") + 1]) <= 12
    assert int(out[out.index("max") + 1]) > 0  # the kernel refused forks at the limit


def test_memory_hog_oom_killed_and_reported(busybox_base, tmp_path, runner):
    limit = 24 * 1024 * 1024
    mem = {"limit": limit}
    if os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"):
        mem["swap"] = limit
    b = make_bundle(busybox_base, tmp_path / "b", ["/bin/sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"],
                    **{"linux.resources": {"memory": mem}})
    p = runner.oc("run", "-b", str(b), cid("oom"), check=False, timeout=60)
    assert "survived" not in p.stdout
    assert "OOM-killed" in p.stderr, p.stderr


def test_dropped_capabilities_cannot_be_regained(busybox_base, tmp_path, runner):
    """Root in the container without CAP_SYS_ADMIN/CAP_SYS_CHROOT: mount and chroot fail,
    and the bounding set (which limits what any exec can gain) lacks them."""
    caps = ["CAP_KILL", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"]
    b = make_bundle(busybox_base, tmp_path / "b", ["/bin/sh", "-c",
                    "grep CapBnd /proc/self/status; mount -t tmpfs none /mnt 2>&1 || echo MOUNT-DENIED; "
                    "chroot / true 2>&1 || echo CHROOT-DENIED; su -c 'grep CapEff /proc/self/status' root 2>/dev/null"],
                    **{"process.user": {"uid": 0, "gid": 0},
                       "process.capabilities": {k: caps for k in ("bounding", "effective", "permitted")}})
    out = runner.oc("run", "-b", str(b), cid("caps")).stdout
    assert "CapBnd:\t00000000000001e0" in out
    assert "MOUNT-DENIED" in out and "CHROOT-DENIED" in out


# ---------------------------------------------------------------- hard cases


@pytest.mark.parametrize("fd", range(3, 13))
def test_workdir_proc_self_fd_never_reaches_host(busybox_base, tmp_path, runner, fd):
    """CVE-2024-21626: WorkingDir /proc/self/fd/N either fails or stays inside."""
    marker = tmp_path / "ocilearn-host-marker"
    marker.write_text("HOST-SECRET")
    rel = "../../../../../../../.." + str(marker)
    b = make_bundle(busybox_base, tmp_path / "b", ["cat", rel], **{"process.cwd": f"/proc/self/fd/{fd}", "process.user": {"uid": 0, "gid": 0}})
    p = runner.oc("run", "-b", str(b), cid("c24"), check=False)
    assert "HOST-SECRET" not in p.stdout + p.stderr
    assert p.returncode != 0


def test_missing_workdir_created_inside_rootfs(busybox_base, tmp_path, runner):
    rootfs = busybox_base / "rootfs"
    try:
        b = make_bundle(busybox_base, tmp_path / "b", ["pwd"], **{"process.cwd": "/does/not/exist"})
        assert runner.oc("run", "-b", str(b), cid("c24m")).stdout == "/does/not/exist\n"
        assert (rootfs / "does/not/exist").is_dir()
        assert not Path("/does").exists()
    finally:
        shutil.rmtree(rootfs / "does", ignore_errors=True)


def _mountinfo() -> set[str]:
    return set(Path("/proc/self/mountinfo").read_text().splitlines())


def test_plain_directory_rootfs_on_shared_root(busybox_base, tmp_path, runner):
    """(a) rootfs an ordinary directory; (b) / with shared propagation (as under systemd):
    ocilearn makes its own namespace rslave and bind-mounts the rootfs itself; the host's
    mountinfo is unchanged afterwards."""
    b = make_bundle(busybox_base, tmp_path / "b", ["cat", "/etc/hostname-probe-absent-ok", "/proc/1/cmdline"])
    make_bundle(busybox_base, b, ["/bin/sh", "-c", "echo pivoted; ls /"])
    before = _mountinfo()
    p = runner.cmd("unshare", "-m", "--propagation", "shared", OCILEARN, "--root", runner.root, "run", "-b", str(b), cid("c31b"))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("pivoted\n") and "linuxrc" in p.stdout
    assert {m for m in _mountinfo() - before if str(tmp_path) in m or str(busybox_base) in m} == set()


def test_rootfs_on_tmpfs(busybox_base, tmp_path, runner):
    """(c) the rootfs lies on a tmpfs (mounted in a private namespace of this test)."""
    b = make_bundle(busybox_base, tmp_path / "b", ["/bin/sh", "-c", "echo on-tmpfs"])
    cfgp = b / "config.json"
    cfg = json.loads(cfgp.read_text())
    cfg["root"]["path"] = str(tmp_path / "t" / "rootfs")
    cfgp.write_text(json.dumps(cfg))
    (tmp_path / "t").mkdir()
    script = (f"mount -t tmpfs tmpfs {tmp_path}/t && cp -a {busybox_base}/rootfs {tmp_path}/t/ && "
              f"exec {OCILEARN} --root {runner.root} run -b {b} {cid('c31c')}")
    p = runner.cmd("unshare", "-m", "--propagation", "private", "sh", "-c", script)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "on-tmpfs\n"


def test_no_pivot_fallback(busybox_base, tmp_path, runner):
    """(d) initramfs hosts cannot pivot_root: --no-pivot (the fault-injection switch)
    uses MS_MOVE + chroot and the container still sees only its rootfs."""
    b = make_bundle(busybox_base, tmp_path / "b", ["/bin/sh", "-c", "ls / | tr '\\n' ' '"])
    out = runner.oc("run", "--no-pivot", "-b", str(b), cid("c31d")).stdout.split()
    assert sorted(out) == sorted(os.listdir(busybox_base / "rootfs"))


def _zombies_in(runner, name: str) -> list[str]:
    script = "for s in /proc/[0-9]*/stat; do read -r pid comm state rest < $s 2>/dev/null && echo $pid $comm $state; done"
    out = runner.oc("exec", name, "/bin/sh", "-c", script).stdout
    return [line for line in out.splitlines() if line.split()[-1] == "Z"]


def test_pid1_reaping_with_and_without_init(busybox_base, tmp_path, runner):
    """An orphan re-parented to a PID 1 that never reaps stays a zombie; with --init it is
    reaped. kill + delete leave no zombie anywhere."""
    b = make_bundle(busybox_base, tmp_path / "b", ["/bin/sh", "-c", "(sleep 0.3 &) ; exec sleep 30"])
    plain, withinit = cid("c33"), cid("c33i")
    runner.oc("run", "-d", "-b", str(b), plain)
    runner.oc("run", "-d", "--init", "-b", str(b), withinit)
    time.sleep(1.2)
    assert [z.split()[1] for z in _zombies_in(runner, plain)] == ["(sleep)"]
    assert _zombies_in(runner, withinit) == []
    ps = json.loads(runner.oc("ps", "--format", "json", withinit).stdout)
    assert len(ps) == 2  # the reaper (PID 1) and sleep, both in the container's cgroup
    runner.oc("kill", "--all", withinit, "KILL")
    runner.oc("kill", plain, "9")
    for name in (plain, withinit):
        deadline = time.monotonic() + 5
        while _state(runner, name)["status"] != "stopped":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        runner.oc("delete", name)
    assert runner.oc("list", "-q").stdout == ""
    assert runner.children() == []


def test_sigterm_ignored_by_pid1_then_stop_escalates(busybox_base, tmp_path):
    from ocilearn.runtime.container import Container

    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "30"])
    root = str(tmp_path / "st")
    name = cid("c33s")
    c = Container.create(root, name, str(b))
    try:
        c.start()
        c.kill(signal.SIGTERM)
        time.sleep(0.5)
        assert c.status() == "running"  # PID 1 has no SIGTERM handler: the kernel drops it
        t0 = time.monotonic()
        assert c.stop(grace=1.0) == "killed"
        assert 0.9 < time.monotonic() - t0 < 4
        assert c.status() == "stopped"
        assert c.exit_status() == {"signal": 9}
    finally:
        c.delete(force=True)
    assert not os.path.exists(os.path.join(root, name))


def test_runtime_path_imports_nothing_heavy(busybox_base, tmp_path):
    b = make_bundle(busybox_base, tmp_path / "b", ["true"])
    code = (f"import sys; from ocilearn.runtime.cli import main; rc = main(['--root', {str(tmp_path / 's')!r}, 'run', '-b', {str(b)!r}, 'imp']); "
            "print(sorted(m for m in ('requests', 'click', 'graphviz', 'ipywidgets', 'pyroute2', 'tqdm', 'zstandard') if m in sys.modules), rc)")
    p = subprocess.run([str(Path(OCILEARN).with_name("python")), "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "[] 0"


def test_fast_entry_without_click(busybox_base, tmp_path):
    """``python -m ocilearn.runtime`` is the same command line as ``ocilearn``, without
    importing click (or anything heavy); exit codes and errors behave the same."""
    b = make_bundle(busybox_base, tmp_path / "b", ["/bin/sh", "-c", "echo $(hostname); exit 5"])
    py = str(Path(OCILEARN).with_name("python"))
    root = str(tmp_path / "st")
    p = subprocess.run([py, "-X", "importtime", "-m", "ocilearn.runtime", "--root", root, "run", "-b", str(b), "fast"],
                       capture_output=True, text=True)
    assert (p.returncode, p.stdout) == (5, "umoci-default\n"), p.stderr[-2000:]
    imported = {line.rsplit("|", 1)[1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")}
    assert "ocilearn.runtime.cli" in imported
    assert imported & {"click", "requests", "graphviz", "ipywidgets", "pyroute2"} == set()
    bad = subprocess.run([py, "-m", "ocilearn.runtime", "--root", root, "state", "nope"], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("ocilearn: error: container 'nope' does not exist")
    assert os.listdir(root) == []


def test_update_changes_cgroup_limits(busybox_base, tmp_path, runner):
    from ocilearn.runtime.cgroups import detect

    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "30"], **{"linux.resources": {"memory": {"limit": 64 << 20}, "pids": {"limit": 50}}})
    name = cid("upd")
    runner.oc("run", "-d", "-b", str(b), name)
    paths = json.loads((Path(runner.root) / name / "state.json").read_text())["ocilearn"]["cgroup"]["paths"]
    version = detect()[0]

    def read(ctrl: str, v1: str, v2: str) -> str:
        return (Path(paths[ctrl if version == 1 else ""]) / (v1 if version == 1 else v2)).read_text().strip()

    runner.oc("update", "--memory", str(32 << 20), "--pids-limit", "20", "--cpu-shares", "512", "--cpu-quota", "20000",
              "--cpu-period", "100000", name)
    assert read("memory", "memory.limit_in_bytes", "memory.max") == str(32 << 20)
    assert read("pids", "pids.max", "pids.max") == "20"
    if version == 1:
        assert read("cpu", "cpu.shares", "") == "512" and read("cpu", "cpu.cfs_quota_us", "") == "20000"
    res = tmp_path / "r.json"
    res.write_text(json.dumps({"memory": {"limit": 48 << 20}, "pids": {"limit": 30}, "devices": [{"allow": True, "access": "rwm"}],
                               "blockIO": {"weight": 0}}))
    runner.oc("update", "-r", str(res), name)
    assert read("memory", "memory.limit_in_bytes", "memory.max") == str(48 << 20) and read("pids", "pids.max", "pids.max") == "30"
    res.write_text(json.dumps({"blockIO": {"weight": 300}}))
    bad = runner.oc("update", "-r", str(res), name, check=False)
    assert bad.returncode == 1 and "resources.blockIO is not supported" in bad.stderr
    runner.oc("delete", "--force", name)
    bad = runner.oc("update", "--memory", "1", name, check=False)
    assert bad.returncode == 1 and "does not exist" in bad.stderr


@pytest.mark.parametrize("value", ["\u0669", "99999999999999999999", "0", "-1", str(int(signal.SIGRTMAX) + 1)])
def test_signal_numbers_are_ascii_and_in_range(value):
    with pytest.raises(ContainerError):
        parse_signal(value)


def test_signal_names_and_numbers():
    assert parse_signal("TERM") == signal.SIGTERM and parse_signal("SIGKILL") == 9 and parse_signal("15") == 15
