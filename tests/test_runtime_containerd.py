"""ocilearn as containerd's runtime binary (``ctr run --runc-binary WRAPPER``), compared
with runc on the same image: output, exit code, exec, kill, pause/resume, delete.

containerd's runc shim (containerd-shim-runc-v2, a child subreaper) calls
``RUNTIME --root R --log FILE --log-format json create --bundle B --pid-file P ID``,
then start, exec, kill [--all], delete [--force]; when a call fails it reports the last
``"level":"error"`` line of FILE. It learns the exit status from its own wait(2) for the
container's PID 1.

A private containerd runs for this module: its socket, root and state directories are
under a temp directory, it loads no CRI plugin, the native snapshotter stores the image,
and ``--runc-root`` puts each runtime's state there too. Everything is removed at the end,
mounts first.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from conftest import REPO, built_image, require_tool
from test_runtime_helpers import OCILEARN_RUNTIME, cid, needs_root
from test_runtime_podman import cgroup_dirs, remove_empty_cgroups, remove_one_file_system

pytestmark = needs_root

IMAGE = "localhost/ocilearn-busybox:latest"
RUNTIMES = ("runc", "ocilearn")


class Ctr:
    """``ctr`` against the private containerd, in a namespace of its own."""

    def __init__(self, base: Path, ns: str) -> None:
        self.base, self.ns = base, ns
        self.address = str(base / "containerd.sock")
        self.binaries: dict[str, Path] = {}

    def __call__(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        p = subprocess.run([require_tool("ctr"), "--address", self.address, "--namespace", self.ns, *args], capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def run(self, rt: str, name: str, *args: str, detach: bool = False, check: bool = False) -> subprocess.CompletedProcess:
        """``ctr run`` of the test image with runtime ``rt`` (its binary and --runc-root)."""
        flags = ["--snapshotter", "native", "--runc-binary", str(self.binaries[rt]), "--runc-root", str(self.base / f"state-{rt}")]
        return self("run", *flags, *(["-d"] if detach else ["--rm"]), IMAGE, name, *args, check=check)


@pytest.fixture(scope="module")
def ctr(tmp_path_factory) -> Ctr:
    containerd = require_tool("containerd")
    require_tool("ctr")
    runc = require_tool("runc")
    base = tmp_path_factory.mktemp("containerd")
    (base / "config.toml").write_text(
        f'version = 2\nroot = "{base}/root"\nstate = "{base}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", '
        '"io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", '
        '"io.containerd.internal.v1.tracing"]\n'
        f'[grpc]\n  address = "{base}/containerd.sock"\n[ttrpc]\n  address = "{base}/containerd.sock.ttrpc"\n'
        '[debug]\n  address = ""\n[metrics]\n  address = ""\n')
    log = open(base / "containerd.log", "wb")
    daemon = subprocess.Popen([containerd, "--config", str(base / "config.toml")], stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    c = Ctr(base, f"ocilearn-test-{secrets.token_hex(3)}")
    for rt, binary in (("runc", runc), ("ocilearn", OCILEARN_RUNTIME)):
        w = base / f"runtime-{rt}"
        w.write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec {binary} "$@"\n')
        w.chmod(0o755)
        c.binaries[rt] = w
    try:
        deadline = time.monotonic() + 20
        while c("version", check=False).returncode != 0:
            assert daemon.poll() is None and time.monotonic() < deadline, (base / "containerd.log").read_text()[-2000:]
            time.sleep(0.1)
        archive = base / "busybox.tar"  # an OCI image layout as a tar: `ctr image import` reads it
        with tarfile.open(archive, "w") as tf:
            src = built_image("busybox")
            for entry in sorted(os.listdir(src)):
                tf.add(src / entry, arcname=entry)
        c("image", "import", "--base-name", IMAGE.rsplit(":", 1)[0], "--digests", str(archive))
        assert IMAGE in c("image", "ls", "-q").stdout.split()
        yield c
    finally:
        for line in c("task", "ls", "-q", check=False).stdout.split():
            c("task", "kill", "-s", "KILL", line, check=False)
            c("task", "delete", "--force", line, check=False)
        for line in c("container", "ls", "-q", check=False).stdout.split():
            c("container", "delete", line, check=False)
        for line in c("image", "ls", "-q", check=False).stdout.split():
            c("image", "rm", line, check=False)
        c("namespace", "remove", c.ns, check=False)
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        remove_empty_cgroups(c.ns)  # the shim puts containers in /NAMESPACE/ID
        remove_one_file_system(base)


def both(ctr: Ctr, name: str, *args: str, **kw) -> dict[str, subprocess.CompletedProcess]:
    return {rt: ctr.run(rt, f"{name}-{rt}", *args, **kw) for rt in RUNTIMES}


def same(results: dict[str, subprocess.CompletedProcess], names: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    r, o = results["runc"], results["ocilearn"]
    norm = (lambda p, rt: p.stdout.replace(names[rt], "NAME")) if names else (lambda p, rt: p.stdout)
    assert (o.returncode, norm(o, "ocilearn")) == (r.returncode, norm(r, "runc")), (r, o)
    return o


def _each(ctr: Ctr, name: str, *args: str, check: bool = False) -> dict[str, subprocess.CompletedProcess]:
    """``ctr ARGS`` for each runtime's container (``{NAME}`` in an argument)."""
    return {rt: ctr(*[a.replace("{NAME}", f"{name}-{rt}") for a in args], check=check) for rt in RUNTIMES}


def test_run_output_and_exit_code(ctr):
    """`ctr run --rm` returns the task's exit status — the shim's wait(2) for PID 1 (with a
    runtime process in between it hung instead)."""
    name = cid("crun")
    p = same(both(ctr, name, "sh", "-c", "echo out; echo err >&2; exit 3"))
    assert (p.returncode, p.stdout) == (3, "out\n")
    p = same(both(ctr, cid("crun"), "sh", "-c", "echo $$ $(id -u) $(cat /proc/1/cmdline | tr '\\0' ' ')"))
    assert p.returncode == 0 and p.stdout == "1 1000 sh -c echo $$ $(id -u) $(cat /proc/1/cmdline | tr '\\0' ' ')\n"


def test_exec_kill_delete(ctr):
    name = cid("cexec")
    names = {rt: f"{name}-{rt}" for rt in RUNTIMES}
    both(ctr, name, "sleep", "100", detach=True, check=True)
    for rt in RUNTIMES:  # the shim asks for cgroupsPath /NAMESPACE/ID
        assert cgroup_dirs(f"{ctr.ns}/{names[rt]}") != []
    tasks = ctr("task", "ls").stdout
    for rt in RUNTIMES:
        assert any(line.split()[0] == names[rt] and line.split()[2] == "RUNNING" for line in tasks.splitlines()[1:]), tasks
    p = same(_each(ctr, name, "task", "exec", "--exec-id", "e1", "{NAME}", "sh", "-c", "echo exec $(hostname); exit 5"))
    assert p.returncode == 5 and p.stdout.startswith("exec ")
    bad = _each(ctr, name, "task", "exec", "--exec-id", "e2", "{NAME}", "/no/such/program")
    for rt in RUNTIMES:  # the shim read the error from --log (JSON) and reports it
        assert bad[rt].returncode == 1 and "OCI runtime exec failed: exec failed:" in bad[rt].stderr and "/no/such/program" in bad[rt].stderr
    same(_each(ctr, name, "task", "pause", "{NAME}"))
    listing = ctr("task", "ls").stdout
    assert {line.split()[2] for line in listing.splitlines()[1:] if line.split()[0] in names.values()} == {"PAUSED"}
    same(_each(ctr, name, "task", "resume", "{NAME}"))
    ps = _each(ctr, name, "task", "ps", "{NAME}")
    for rt in RUNTIMES:  # header + PID 1 (host PIDs differ)
        assert [line.split()[1] for line in ps[rt].stdout.splitlines()] == ["INFO", "-"], ps[rt]
    same(_each(ctr, name, "task", "kill", "-s", "KILL", "{NAME}"))
    deadline = time.monotonic() + 10
    while {line.split()[2] for line in ctr("task", "ls").stdout.splitlines()[1:] if line.split()[0] in names.values()} != {"STOPPED"}:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # kill --all of a stopped task: runc succeeds (nothing to signal), so must ocilearn
    same(_each(ctr, name, "task", "kill", "--all", "-s", "KILL", "{NAME}"))
    d = _each(ctr, name, "task", "delete", "{NAME}")
    for rt in RUNTIMES:
        assert d[rt].returncode == 0 and "exit code 137" in d[rt].stderr, d[rt]
    same(_each(ctr, name, "container", "delete", "{NAME}"))
    for rt in RUNTIMES:  # the runtime's state directory is empty again, its cgroup gone
        assert cgroup_dirs(f"{ctr.ns}/{names[rt]}") == []
        root = ctr.base / f"state-{rt}" / ctr.ns
        assert not root.exists() or os.listdir(root) == [], (rt, os.listdir(root))


def test_failed_create_reports_the_runtime_error(ctr):
    """A bad program fails at create, and the shim shows the runtime's own message, read
    from the JSON log."""
    name = cid("cbad")
    res = both(ctr, name, "/no/such/program")
    for rt in RUNTIMES:
        assert res[rt].returncode == 1 and "OCI runtime create failed" in res[rt].stderr and "/no/such/program" in res[rt].stderr, res[rt]
        ctr("container", "delete", f"{name}-{rt}", check=False)


def test_the_shim_is_the_inits_parent(ctr):
    name = cid("cwho")
    ctr.run("ocilearn", name, "sleep", "100", detach=True, check=True)
    try:
        pid = int(next(line.split()[1] for line in ctr("task", "ls").stdout.splitlines()[1:] if line.split()[0] == name))
        st = json.loads((ctr.base / "state-ocilearn" / ctr.ns / name / "state.json").read_text())
        assert st["pid"] == pid
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert Path(f"/proc/{ppid}/comm").read_text().strip().startswith("containerd-shim")
    finally:
        ctr("task", "kill", "-s", "KILL", name, check=False)
        for _ in range(50):
            if ctr("task", "delete", name, check=False).returncode == 0:
                break
            time.sleep(0.1)
        ctr("container", "delete", name, check=False)


def test_no_shim_or_state_left(ctr):
    """Nothing of a deleted task stays: no runtime state, no shim process for it."""
    name = cid("cgone")
    both(ctr, name, "true")
    for rt in RUNTIMES:
        assert not (ctr.base / f"state-{rt}" / ctr.ns / f"{name}-{rt}").exists()
    deadline = time.monotonic() + 5
    while True:  # the shim exits once its task is deleted
        shims = subprocess.run(["pgrep", "-f", f"containerd-shim.* -id {name}-"], capture_output=True, text=True).stdout.split()
        if not shims or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert shims == []
