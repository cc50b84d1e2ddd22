"""What stage 1 and the init do (ocilearn/runtime/stages.py) and who their parent is:
nothing of the runtime stays behind, namespaces joined by path, sysctls set inside,
--explain narrates the children's steps, and only stdio (or --preserve-fds) reach the
container."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from test_runtime_helpers import OCILEARN, cid, make_bundle, needs_root

pytestmark = needs_root


def test_no_runtime_process_stays_behind(busybox_base, tmp_path, runner):
    """After `create` the init's parent is the caller's subreaper (here the test runner;
    conmon or containerd-shim under podman and containerd), the init's start time is
    recorded, and nothing of ocilearn runs besides the container."""
    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "30"])
    name = cid("nomon")
    runner.oc("create", "-b", str(b), name)
    st = json.loads((Path(runner.root) / name / "state.json").read_text())
    pid = st["pid"]
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    assert int(stat[1]) == runner.p.pid and int(stat[19]) == st["ocilearn"]["init_start"]
    assert [c[0] for c in runner.children()] == [pid]  # the runner's only child: the init
    runner.oc("start", name)
    runner.oc("kill", name, "KILL")
    assert runner.exit_status(pid) == -signal.SIGKILL
    assert json.loads(runner.oc("state", name).stdout)["status"] == "stopped"
    runner.oc("delete", name)


def test_join_existing_namespace_by_path_and_sysctl(busybox_base, tmp_path, runner):
    a = make_bundle(busybox_base, tmp_path / "a", ["sleep", "10"], **{"linux.sysctl": {"net.ipv4.ip_forward": "1"}})
    first = cid("nsa")
    runner.oc("run", "-d", "-b", str(a), first)
    pid = json.loads(runner.oc("state", first).stdout)["pid"]
    cfg = json.loads((a / "config.json").read_text())
    nss = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"] + [{"type": "network", "path": f"/proc/{pid}/ns/net"}]
    b = make_bundle(busybox_base, tmp_path / "b", ["/bin/sh", "-c", "readlink /proc/self/ns/net; cat /proc/sys/net/ipv4/ip_forward"],
                    **{"linux.namespaces": nss})
    out = runner.oc("run", "-b", str(b), cid("nsb")).stdout.split()
    assert out[0] == os.readlink(f"/proc/{pid}/ns/net")  # same network namespace as the first container
    assert out[1] == "1"  # the first container's sysctl, set in that namespace
    assert os.readlink("/proc/self/ns/net") != out[0]


def test_explain_narrates_the_children_steps(busybox_base, tmp_path):
    """--explain shows what stage 1 and the init did (they are forked processes: their
    steps travel back over the setup sockets), each with the equivalent command."""
    from ocilearn.core import explain
    from ocilearn.runtime.container import run

    b = make_bundle(busybox_base, tmp_path / "b", ["true"])
    with explain.recording() as steps:
        assert run(str(tmp_path / "st"), cid("expl"), str(b)) == 0
    actions = [s.action for s in steps]
    for expected in ("create", "unshare", "bind rootfs", "mount proc", "populate /dev", "sethostname", "pivot_root", "created", "delete"):
        assert expected in actions, actions
    assert actions.index("unshare") < actions.index("pivot_root") < actions.index("created")
    assert actions.count("unshare") == 1
    piv = steps[actions.index("pivot_root")]
    assert piv.equivalent == "pivot_root . . && umount -l ." and piv.detail.startswith(str(busybox_base / "rootfs"))


def test_no_runtime_fd_leaks_and_preserve_fds(busybox_base, tmp_path):
    """The container gets stdio only (fd hygiene: a leaked directory fd was the way out in CVE-2024-21626), or stdio + N fds with --preserve-fds."""
    secret = tmp_path / "passed.txt"
    secret.write_text("through fd 3\n")
    b = make_bundle(busybox_base, tmp_path / "b", ["/bin/sh", "-c", "ls /proc/self/fd | tr '\\n' ' '; echo; cat <&3 2>/dev/null || true"])
    root = str(tmp_path / "st")
    fd = os.open(secret, os.O_RDONLY)
    try:
        plain = subprocess.run([OCILEARN, "--root", root, "run", "-b", str(b), cid("fd")], capture_output=True, text=True, pass_fds=(fd,))
        assert plain.returncode == 0, plain.stderr
        # 0, 1, 2 and the fd `ls` opens on /proc/self/fd itself: nothing of the runtime's
        assert plain.stdout.splitlines()[0].split() == ["0", "1", "2", "3"] and "through fd 3" not in plain.stdout
        # make the file fd 3 of the runtime (in a shell, never in this test process)
        kept = subprocess.run(["bash", "-c", f"exec 3<&{fd}; exec {OCILEARN} --root {root} run --preserve-fds 1 -b {b} {cid('fd')}"],
                              capture_output=True, text=True, pass_fds=(fd,))
        assert kept.returncode == 0, kept.stderr
        assert kept.stdout.splitlines()[1] == "through fd 3"
    finally:
        os.close(fd)
