"""Hostile inputs and attacks on the runtime: CVE-2019-5736-class access to the host's
Python through /proc/PID/exe and environ, a cgroupsPath escaping cgroupfs, sysctls that
would change the host, config.json and exec values validated before anything is created,
/proc as a symlink in the image (CVE-2019-16884), a killed or raced runtime, a populated
cgroup, and a corrupt or foreign state.json."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_runtime_helpers import OCILEARN, Runner, cid, make_bundle, needs_root

from ocilearn.core.errors import ContainerError, RuntimeSpecError
from ocilearn.runtime.container import Container
from ocilearn.runtime.exec import parse_exec_user
from ocilearn.runtime.spec import load_config
from ocilearn.runtime.state import alive

PY = sys.executable
MARKER = "OCILEARN_HOSTILE_MARKER"


def _bundle_cfg(tmp_path: Path, **changes) -> Path:
    """A minimal bundle (config.json only; load_config checks no rootfs) with ``changes``
    as dotted keys, like make_bundle."""
    cfg = {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
           "process": {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]},
           "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}}
    for key, value in changes.items():
        obj = cfg
        *parents, last = key.split(".")
        for k in parents:
            obj = obj.setdefault(k, {})
        obj[last] = value
    d = tmp_path / f"b-{secrets.token_hex(3)}"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(cfg))
    return d


# ---------------------------------------------------------------- CVE-2019-5736: the host's Python seen from inside


_TARGET = r"""
import sys
from ocilearn.core import syscalls as sc
mode = sys.argv[1]
if mode == "dump-scrub":
    sc.scrub_environ()
sc.capset(0, 0, 0)  # as the exec child after its capability drop: nothing more than the reader
sc.set_dumpable(mode != "nodump")
print("ready", flush=True)
sys.stdin.read()
"""


@needs_root
@pytest.mark.parametrize("mode", ["dump", "nodump", "dump-scrub"])
def test_set_dumpable_and_scrub_environ_guard_proc_files(mode):
    """The two primitives that keep container root away from the host's Python, against a reader with the same uid and no
    capabilities (as container root without CAP_SYS_PTRACE): dumpable → it reads the host
    marker from environ (the attack works); non-dumpable → EACCES on exe and environ;
    scrubbed → environ readable but the marker is gone."""
    token = secrets.token_hex(8)
    p = subprocess.Popen([PY, "-c", _TARGET, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         env={**os.environ, MARKER: token})
    try:
        assert p.stdout.readline() == "ready\n"
        reader = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]
        env = subprocess.run(reader + ["cat", f"/proc/{p.pid}/environ"], capture_output=True)
        exe = subprocess.run(reader + ["readlink", f"/proc/{p.pid}/exe"], capture_output=True, text=True)
        if mode == "nodump":
            assert env.returncode != 0 and b"Permission denied" in env.stderr
            assert exe.returncode != 0 and exe.stdout == ""
        elif mode == "dump":
            assert f"{MARKER}={token}".encode() in env.stdout.split(b"\0")
            assert exe.stdout.strip() == os.path.realpath(PY)
        else:
            assert env.returncode == 0 and token.encode() not in env.stdout
    finally:
        p.stdin.close()
        p.wait(10)


@needs_root
def test_run_init_reaper_exe_and_environ_refused(busybox_base, tmp_path):
    """`run --init`: PID 1 is the host's Python for the container's whole life; container
    root must not open /proc/1/exe (read) nor read /proc/1/environ, and the operator's
    environment must not show up."""
    token = secrets.token_hex(8)
    script = ("readlink /proc/1/exe; echo readlink=$?; cat /proc/1/exe > /dev/null; echo exe=$?; "
              "cat /proc/1/environ; echo environ=$?; cat /proc/1/mem > /dev/null; echo mem=$?")
    b = make_bundle(busybox_base, tmp_path / "b", ["sh", "-c", script], **{"process.user": {"uid": 0, "gid": 0}})
    r = Runner(tmp_path / "state", env={**os.environ, MARKER: token})
    try:
        p = r.oc("run", "--init", cid("h0init"), "-b", str(b))
    finally:
        r.close()
    lines = p.stdout.splitlines()
    assert "readlink=1" in lines and "exe=1" in lines and "environ=1" in lines and "mem=1" in lines, p.stdout
    assert "can't open '/proc/1/exe': Permission denied" in p.stderr
    assert "can't open '/proc/1/environ': Permission denied" in p.stderr
    assert token not in p.stdout + p.stderr
    assert "python" not in p.stdout


_GRAB = r"""
: > /out/log
while [ ! -e /out/stop ]; do
  for p in /proc/[0-9]*; do
    case "$p" in /proc/1|/proc/$$|/proc/self|/proc/thread-self) continue;; esac
    l=$(readlink $p/exe 2>/dev/null) || l=denied
    case "$l" in
      *python*) echo "GOT-EXE $p $l" >> /out/log;;
      *busybox*) echo "SEEN $p" >> /out/log;;
      denied) [ -e $p ] && echo "DENIED $p" >> /out/log;;
    esac
    if cat $p/environ 2>/dev/null | tr '\0' '\n' | grep -q MARKERNAME; then echo "GOT-ENV $p" >> /out/log; fi
  done
done
"""


@needs_root
def test_exec_child_exe_and_environ_refused_during_race(busybox_base, tmp_path):
    """`exec` while the container's PID 1 scans /proc for the exec child (as the public
    CVE-2019-5736 exploits do): before execve the child is the host's Python; it must never be opened, and
    the host marker must never be read from its environ. The scan must have seen exec'd
    processes (else the race was not run)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "grab.sh").write_text(_GRAB.replace("MARKERNAME", MARKER))
    b = make_bundle(busybox_base, tmp_path / "b", ["sh", "/out/grab.sh"], **{"process.user": {"uid": 0, "gid": 0}})
    cfg = json.loads((b / "config.json").read_text())
    cfg["mounts"].append({"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind"]})
    (b / "config.json").write_text(json.dumps(cfg))
    token = secrets.token_hex(8)
    r = Runner(tmp_path / "state", env={**os.environ, MARKER: token})
    name = cid("h0exec")
    try:
        r.oc("run", "-d", name, "-b", str(b))
        for _ in range(25):
            r.oc("exec", name, "sleep", "0.02")
        (out / "stop").touch()
        time.sleep(0.3)
    finally:
        r.oc("delete", "--force", name, check=False)
        r.close()
    log = (out / "log").read_text().splitlines()
    assert [ln for ln in log if ln.startswith("GOT")] == []
    assert any(ln.startswith(("SEEN", "DENIED")) for ln in log), log[:20]


# ---------------------------------------------------------------- cgroupsPath escaping cgroupfs


@pytest.mark.parametrize("path", ["../../../../tmp/x", "/a/../../b", "x/../..", "..:a:b", "/", "", "a\0b"])
def test_cgroups_path_escape_refused_by_load_config(tmp_path, path):
    with pytest.raises(RuntimeSpecError, match=r"linux\.cgroupsPath"):
        load_config(str(_bundle_cfg(tmp_path, **{"linux.cgroupsPath": path})))


def test_cgroup_for_container_stays_in_hierarchy():
    """Defence in depth: even unchecked, the cleaned path stays under each hierarchy."""
    from ocilearn.runtime.cgroups import Cgroup, detect

    version, hier = detect("/sys/fs/cgroup")
    assert version in (1, 2)
    cg = Cgroup.for_container("../../../../tmp/ocilearn-victim-cg/X", "x")
    for name, p in cg.paths.items():
        assert p == os.path.join(hier[name], "tmp/ocilearn-victim-cg/X")
    with pytest.raises(OSError):
        Cgroup.for_container("/..", "x")


@needs_root
def test_cgroups_path_escape_creates_nothing_outside(busybox_base, tmp_path, runner):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("k")
    b = make_bundle(busybox_base, tmp_path / "b", ["true"], **{"linux.cgroupsPath": "../../../../../../../.." + str(victim / "cg")})
    name = cid("h2cg")
    p = runner.oc("create", "-b", str(b), name, check=False)
    assert p.returncode == 1 and "linux.cgroupsPath" in p.stderr and "'..'" in p.stderr
    assert sorted(os.listdir(victim)) == ["keep"]
    assert not (Path(runner.root) / name).exists()
    assert not any(name in d for d in os.listdir("/sys/fs/cgroup"))


# ---------------------------------------------------------------- sysctls that are not namespaced


@pytest.mark.parametrize("key, ns, ok", [
    ("kernel.core_pattern", ["ipc", "uts", "network"], False),
    ("vm.overcommit_memory", ["ipc", "uts", "network"], False),
    ("kernel.shmmax", ["ipc"], True),
    ("kernel.shmmax", [], False),
    ("fs.mqueue.msg_max", ["ipc"], True),
    ("net.ipv4.ip_forward", ["network"], True),
    ("net.ipv4.ip_forward", [], False),
    ("kernel.domainname", ["uts"], True),
    ("kernel.hostname", [], False),
    ("net/ipv4/../../kernel/core_pattern", ["network"], False),
])
def test_only_namespaced_sysctls_allowed(tmp_path, key, ns, ok):
    b = _bundle_cfg(tmp_path, **{"linux.sysctl": {key: "1"},
                                 "linux.namespaces": [{"type": "mount"}] + [{"type": t} for t in ns]})
    if ok:
        assert load_config(str(b))["linux"]["sysctl"] == {key: "1"}
    else:
        with pytest.raises(RuntimeSpecError, match=r"linux\.sysctl"):
            load_config(str(b))


def test_sysctl_with_host_namespace_path_refused(tmp_path):
    """A network namespace joined by path that *is* the host's does not make net.* private."""
    b = _bundle_cfg(tmp_path, **{"linux.sysctl": {"net.ipv4.ip_forward": "1"},
                                 "linux.namespaces": [{"type": "mount"}, {"type": "network", "path": "/proc/self/ns/net"}]})
    with pytest.raises(RuntimeSpecError, match="own network namespace"):
        load_config(str(b))


@needs_root
def test_core_pattern_refused_before_anything_is_created(busybox_base, tmp_path, runner):
    before = Path("/proc/sys/kernel/core_pattern").read_text()
    b = make_bundle(busybox_base, tmp_path / "b", ["true"], **{"linux.sysctl": {"kernel.core_pattern": "|/bin/hostile-%p"}})
    name = cid("h3sys")
    p = runner.oc("create", "-b", str(b), name, check=False)
    assert p.returncode == 1 and "'kernel.core_pattern' is not in a separate kernel namespace" in p.stderr
    assert Path("/proc/sys/kernel/core_pattern").read_text() == before
    assert not (Path(runner.root) / name).exists()
    assert runner.children() == []


# ---------------------------------------------------------------- process values checked before clone


@pytest.mark.parametrize("field, value, what", [
    ("process.user.uid", -1, r"process\.user\.uid .*uint32"),
    ("process.user.uid", 2**32, r"process\.user\.uid"),
    ("process.user.uid", 2**32 - 1, r"process\.user\.uid"),
    ("process.user.uid", "0", r"process\.user\.uid"),
    ("process.user.uid", True, r"process\.user\.uid"),
    ("process.user.gid", -1, r"process\.user\.gid"),
    ("process.user.additionalGids", [1, -1], r"additionalGids\[1\]"),
    ("process.user.additionalGids", list(range(70000)), r"additionalGids has 70000 entries"),
    ("process.user.umask", 0o100000, r"process\.user\.umask"),
    ("process.args", ["sh", "a\0b"], r"process\.args\[1\] .*NUL"),
    ("process.args", ["sh", 5], r"process\.args\[1\]"),
    ("process.env", ["A=b\0c"], r"process\.env\[0\] .*NUL"),
    ("process.cwd", "/tmp\0x", r"process\.cwd"),
    ("process.rlimits", [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}], r"rlimits\[0\].*RLIMIT_"),
    ("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}], r"soft 10 is above hard 5"),
    ("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": -1, "hard": 5}], r"rlimits\[0\]\.soft"),
    ("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": "10", "hard": 50}], r"rlimits\[0\]\.soft"),
    ("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2**64}], r"rlimits\[0\]\.hard"),
    ("process.oomScoreAdj", 5000, r"oomScoreAdj"),
])
def test_process_values_checked_before_clone(tmp_path, field, value, what):
    with pytest.raises(RuntimeSpecError, match=what):
        load_config(str(_bundle_cfg(tmp_path, **{field: value})))


def test_valid_edge_values_accepted(tmp_path):
    b = _bundle_cfg(tmp_path, **{"process.user": {"uid": 2**32 - 2, "gid": 0, "additionalGids": [0, 65534], "umask": 0o22},
                                 "process.rlimits": [{"type": "RLIMIT_CORE", "soft": 1024, "hard": 2**64 - 1}]})
    assert load_config(str(b))["process"]["user"]["uid"] == 4294967294


@needs_root
def test_uid_minus_one_refused_before_anything_is_created(busybox_base, tmp_path, runner):
    b = make_bundle(busybox_base, tmp_path / "b", ["id", "-u"], **{"process.user": {"uid": -1, "gid": -1}})
    name = cid("h18")
    p = runner.oc("run", name, "-b", str(b), check=False)
    assert p.returncode == 1 and p.stdout == ""
    assert "process.user.uid = -1: must be from 0 to 4294967295 (uint32)" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (Path(runner.root) / name).exists()


# ---------------------------------------------------------------- exec --user, --preserve-fds


@pytest.mark.parametrize("user, ids", [("0", {"uid": 0, "gid": 0}), ("1000:50", {"uid": 1000, "gid": 50}),
                                       ("4294967294:1", {"uid": 4294967294, "gid": 1})])
def test_parse_exec_user(user, ids):
    assert parse_exec_user(user) == ids


@pytest.mark.parametrize("user", ["app", "1:x", "-1", "99999999999", "٣", "1:", ":1", "4294967295"])
def test_parse_exec_user_refuses(user):
    with pytest.raises(ContainerError, match=r"exec --user .*UID\[:GID\]"):
        parse_exec_user(user)


@needs_root
def test_exec_user_name_and_minus_one_clear_errors(busybox_base, tmp_path, runner):
    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "30"])
    name = cid("h22")
    runner.oc("run", "-d", name, "-b", str(b))
    for u in ("app", "-1"):
        p = runner.oc("exec", "-u", u, name, "id", "-u", check=False)
        assert p.returncode == 1 and p.stdout == "", p
        assert f"exec --user '{u}'" in p.stderr and "Traceback" not in p.stderr
    assert runner.oc("exec", "-u", "7:7", name, "id", "-u").stdout == "7\n"
    runner.oc("delete", "--force", name)


def test_negative_preserve_fds_refused(tmp_path):
    root = str(tmp_path / "state")
    # one parser, one answer, with or without --debug and through either entry point
    for pre in ([OCILEARN], [OCILEARN, "--debug"], [sys.executable, "-m", "ocilearn.runtime"]):
        p = subprocess.run([*pre, "--root", root, "run", "--preserve-fds", "-5", "x", "-b", str(tmp_path)], capture_output=True, text=True)
        assert p.returncode == 1 and p.stderr.startswith("ocilearn: error: argument --preserve-fds: '-5': must be a number >= 0\n"), p.stderr
    with pytest.raises(ContainerError, match="--preserve-fds -5"):
        Container.create(root, "x", str(tmp_path), preserve_fds=-5)
    assert not os.path.exists(root)


# ---------------------------------------------------------------- /proc as a symlink (CVE-2019-16884)


@needs_root
@pytest.mark.parametrize("target", ["/", "proc", "../../../../proc"])
def test_proc_symlink_in_image_refused_clearly(busybox_base, tmp_path, runner, target):
    import shutil

    rootfs = tmp_path / "rootfs"
    shutil.copytree(busybox_base / "rootfs", rootfs, symlinks=True)
    shutil.rmtree(rootfs / "proc")
    os.symlink(target, rootfs / "proc")
    b = make_bundle(busybox_base, tmp_path / "b", ["true"], **{"root.path": str(rootfs)})
    name = cid("h26")
    before = Path("/proc/self/mountinfo").read_text().count(str(rootfs))
    p = runner.oc("run", name, "-b", str(b), check=False)
    assert p.returncode == 1
    assert f"proc mount destination '/proc' goes through a symlink in the rootfs (proc -> {target})" in p.stderr
    assert not (Path(runner.root) / name).exists()
    assert Path("/proc/self/mountinfo").read_text().count(str(rootfs)) == before == 0
    assert os.readlink(rootfs / "proc") == target


# ---------------------------------------------------------------- a killed or raced runtime


@needs_root
def test_hook_dies_with_a_killed_runtime(busybox_base, tmp_path, runner):
    pidfile = tmp_path / "hook.pid"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"]}
    b = make_bundle(busybox_base, tmp_path / "b", ["true"], hooks={"createRuntime": [hook]})
    name = cid("h20")
    runner.killed(OCILEARN, "--root", runner.root, "create", "-b", str(b), name, after=1.5)
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and alive(pid, None):
        time.sleep(0.05)
    assert not alive(pid, None), f"hook {pid} outlived the killed runtime"
    runner.oc("delete", "--force", name)
    assert runner.children() == []


@needs_root
def test_delete_force_during_create_gives_a_clear_error(busybox_base, tmp_path):
    """`delete --force` while `create` sits in a createRuntime hook: create fails with a
    message saying so (it was a bare "[Errno 32] Broken pipe"), nothing is left."""
    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "30"], hooks={"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "1.5"]}]})
    root = str(tmp_path / "state")
    name = cid("h20del")
    create = subprocess.Popen([OCILEARN, "--root", root, "create", "-b", str(b), name], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not os.path.exists(os.path.join(root, name, "state.json")):
            time.sleep(0.02)
        time.sleep(0.3)
        d = subprocess.run([OCILEARN, "--root", root, "delete", "--force", name], capture_output=True, text=True)
        assert d.returncode == 0, d.stderr
        _, err = create.communicate(timeout=20)
    finally:
        if create.poll() is None:
            create.kill()
            create.wait()
    assert create.returncode == 1
    assert err == f"ocilearn: error: container {name}: it was deleted while being created (a concurrent `delete --force`?)\n"
    assert os.listdir(root) == []


@needs_root
def test_cap_sys_ptrace_without_userns_warns(busybox_base, tmp_path, runner):
    """Non-dumpable does not stop a holder of CAP_SYS_PTRACE over the host's user
    namespace: such a config gets a warning naming the risk (the run still works)."""
    base = json.loads((busybox_base / "config.json").read_text())["process"]["capabilities"]
    caps = {k: list(v) + ["CAP_SYS_PTRACE"] for k, v in base.items() if k != "ambient"}
    b = make_bundle(busybox_base, tmp_path / "b", ["true"], **{"process.capabilities": caps})
    p = runner.oc("run", "--init", cid("h0ptrace"), "-b", str(b))
    assert "grants CAP_SYS_PTRACE without a user namespace" in p.stderr
    b2 = make_bundle(busybox_base, tmp_path / "b2", ["true"])
    assert "CAP_SYS_PTRACE" not in runner.oc("run", cid("h0noptrace"), "-b", str(b2)).stderr


# ---------------------------------------------------------------- a populated cgroup, a corrupt state.json


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: makes a cgroup on the host")
def test_cgroups_path_of_a_populated_cgroup_is_refused_and_its_processes_survive(busybox_base, tmp_path, runner):
    import uuid

    from ocilearn.runtime.cgroups import detect

    decoy = f"ocilearn-decoy-{uuid.uuid4().hex[:8]}"
    hier = detect()[1]
    ctrl = "pids" if "pids" in hier else next(iter(hier))
    cg_dir = os.path.join(hier[ctrl], decoy)
    os.mkdir(cg_dir)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        with open(os.path.join(cg_dir, "cgroup.procs"), "w") as f:
            f.write(str(sleeper.pid))
        b = make_bundle(busybox_base, tmp_path / "b", ["true"], **{"linux.cgroupsPath": "/" + decoy})
        name = cid("r2cg")
        p = runner.oc("create", "-b", str(b), name, check=False)
        assert p.returncode == 1 and "already has 1 process" in p.stderr, p.stderr
        assert sleeper.poll() is None, "the decoy's process was killed"
        assert os.path.isdir(cg_dir) and not (Path(runner.root) / name).exists()
        p = runner.oc("delete", "--force", name, check=False)
        assert sleeper.poll() is None and os.path.isdir(cg_dir)
    finally:
        sleeper.kill()
        sleeper.wait()
        for _ in range(50):
            try:
                os.rmdir(cg_dir)
                break
            except OSError:
                time.sleep(0.1)


@needs_root
def test_corrupt_state_is_a_clear_error_and_delete_force_still_cleans_up(busybox_base, tmp_path, runner):
    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "30"])
    name = cid("r2st")
    runner.oc("create", "-b", str(b), name)
    state = Path(runner.root) / name / "state.json"
    st = json.loads(state.read_text())
    init_pid = st["pid"]
    st["pid"] = "not a pid"
    state.write_text(json.dumps(st))
    p = runner.oc("state", name, check=False)
    assert p.returncode == 1 and "state.json is corrupt" in p.stderr and "Traceback" not in p.stderr
    runner.oc("delete", "--force", name)
    assert not (Path(runner.root) / name).exists()
    for _ in range(50):
        try:
            os.kill(init_pid, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{init_pid}/stat") as f:
            if f.read().split(") ")[1].startswith("Z"):
                break
        time.sleep(0.1)
    else:
        raise AssertionError(f"init {init_pid} still alive after delete --force")


def _gone_or_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


@needs_root
@pytest.mark.parametrize("garbage", [b"{not json", b"", b"[1, 2]", b'{"pid": 1, "ocilearn": {"cgroup": "x"}}'])
def test_unreadable_state_delete_force_kills_and_removes_everything(busybox_base, tmp_path, runner, garbage):
    """With state.json unreadable, `delete --force` still finds the container through its
    default cgroup: its processes are killed, every cgroup directory and the state
    directory removed, exit 0. Every other command says "corrupt" in one line."""
    from ocilearn.runtime.cgroups import detect

    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "30"])
    name = cid("gbg")
    runner.oc("run", "-d", "-b", str(b), name)
    state = Path(runner.root) / name / "state.json"
    st = json.loads(state.read_text())
    pid, cg_paths = st["pid"], list(st["ocilearn"]["cgroup"]["paths"].values())
    assert len(cg_paths) == len(detect()[1]) and all(os.path.isdir(p) for p in cg_paths)
    state.write_bytes(garbage)
    for cmd in (["state", name], ["kill", name], ["start", name], ["exec", name, "true"], ["pause", name], ["delete", name]):
        p = runner.oc(*cmd, check=False)
        assert p.returncode == 1 and "state.json is corrupt" in p.stderr and len(p.stderr.splitlines()) == 1, (cmd, p.stderr)
    assert runner.oc("list").stdout.count("\n") == 1  # the header only: a corrupt entry is skipped
    runner.oc("delete", "--force", name)
    deadline = time.monotonic() + 5
    while not _gone_or_zombie(pid):
        assert time.monotonic() < deadline, f"init {pid} survived delete --force"
        time.sleep(0.05)
    assert [p for p in cg_paths if os.path.exists(p)] == []
    assert not (Path(runner.root) / name).exists()


@needs_root
@pytest.mark.parametrize("field, value", [("status", 5), ("pid", -3), ("ocilearn.init_start", "x"), ("annotations", [1]),
                                          ("ocilearn.cgroup", {"version": 1, "paths": {"memory": "/sys/fs/cgroup/memory"}}),
                                          ("ocilearn.cgroup", {"version": 1, "paths": {"memory": "/sys/fs/cgroup/memory/../pids/x"}}),
                                          ("ocilearn.namespaces", ["bogus"]), ("ocilearn.hooks", {"poststop": ["x"]})])
def test_wrong_typed_state_field_is_named_and_never_acted_on(busybox_base, tmp_path, runner, field, value):
    """A wrong-typed field gives one line naming it; a cgroup path outside the container's
    own directory (the hierarchy root, a '..' escape) is never killed or removed."""
    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "30"])
    name = cid("typ")
    runner.oc("create", "-b", str(b), name)
    state = Path(runner.root) / name / "state.json"
    st = json.loads(state.read_text())
    real_cg = st["ocilearn"]["cgroup"]
    obj = st
    *parents, last = field.split(".")
    for k in parents:
        obj = obj[k]
    obj[last] = value
    state.write_text(json.dumps(st))
    p = runner.oc("state", name, check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr and field.split(".")[-1] in p.stderr, p.stderr
    runner.oc("delete", "--force", name)  # the default cgroup is found instead
    assert not any(os.path.exists(d) for d in real_cg["paths"].values())
    assert os.path.isdir("/sys/fs/cgroup/memory" if os.path.isdir("/sys/fs/cgroup/memory") else "/sys/fs/cgroup")


@needs_root
def test_unreadable_state_with_an_unknown_cgroup_exits_non_zero_naming_it(busybox_base, tmp_path, runner):
    """A custom linux.cgroupsPath cannot be guessed once state.json is garbage: delete
    --force removes the state directory but says that it could not find the rest."""
    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "30"], **{"linux.cgroupsPath": f"/ocilearn-custom-{cid('cg')}"})
    name = cid("unk")
    runner.oc("create", "-b", str(b), name)
    st = json.loads((Path(runner.root) / name / "state.json").read_text())
    (Path(runner.root) / name / "state.json").write_text("garbage")
    p = runner.oc("delete", "--force", name, check=False)
    assert p.returncode == 1 and "neither its cgroup nor its init process could be identified" in p.stderr
    assert not (Path(runner.root) / name).exists()
    from ocilearn.runtime.cgroups import Cgroup

    Cgroup(st["ocilearn"]["cgroup"]["version"], st["ocilearn"]["cgroup"]["paths"]).destroy()  # clean up what the test made
