"""Hooks, terminals, joining existing namespaces, sysctl (runtime-spec config.md
"POSIX-platform Hooks", "Process" terminal; config-linux.md "Namespaces" path, "Sysctl")."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path

from test_runtime_helpers import OCILEARN, cid, make_bundle, needs_root

pytestmark = needs_root


def test_all_hooks_run_in_order_with_state(busybox_base, tmp_path, runner):
    log = tmp_path / "hooks.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\nread -r state\necho \"$1 $state\" >> {log}\n")
    hook.chmod(0o755)
    kinds = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
    hooks = {k: [{"path": str(hook), "args": ["hook.sh", k]}] for k in kinds}
    b = make_bundle(busybox_base, tmp_path / "b", ["true"], hooks=hooks)
    # createContainer/startContainer run in the container's mount namespace: give them the
    # hook and the log through a bind mount at the same path
    cfg = json.loads((b / "config.json").read_text())
    cfg["mounts"].append({"destination": str(tmp_path), "type": "bind", "source": str(tmp_path), "options": ["rbind"]})
    (b / "config.json").write_text(json.dumps(cfg))
    name = cid("hooks")
    runner.oc("create", "-b", str(b), name)
    runner.oc("start", name)
    time.sleep(0.3)
    runner.oc("delete", name)
    lines = log.read_text().splitlines()
    assert [ln.split(" ", 1)[0] for ln in lines] == kinds
    states = {ln.split(" ", 1)[0]: json.loads(ln.split(" ", 1)[1]) for ln in lines}
    assert states["prestart"]["id"] == name and states["prestart"]["status"] == "creating" and states["prestart"]["pid"] > 1
    assert states["poststart"]["status"] == "running" and states["poststop"]["status"] == "stopped"
    assert states["createContainer"]["bundle"] == str(b)


def test_failing_hook_fails_create_and_cleans_up(busybox_base, tmp_path, runner):
    b = make_bundle(busybox_base, tmp_path / "b", ["true"], hooks={"createRuntime": [{"path": "/bin/false"}]})
    name = cid("hookfail")
    p = runner.oc("create", "-b", str(b), name, check=False)
    assert p.returncode == 1 and "createRuntime hook /bin/false failed" in p.stderr
    assert not (Path(runner.root) / name).exists()
    assert runner.children() == []


def test_foreground_run_with_terminal_proxies_pty(busybox_base, tmp_path):
    b = make_bundle(busybox_base, tmp_path / "b", ["/bin/sh", "-c", "tty; stty size; read line; echo got:$line"],
                    **{"process.terminal": True})
    master, slave = os.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    root, name = str(tmp_path / "st"), cid("tty")
    p = subprocess.Popen([OCILEARN, "--root", root, "run", "-b", str(b), name],
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 15
        sent = False
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            if not sent and b"33 101" in out:
                os.write(master, b"hello\r")
                sent = True
            if p.poll() is not None and not r:
                break
        assert p.wait(10) == 0, out
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait()
        subprocess.run([OCILEARN, "--root", root, "delete", "--force", name], capture_output=True)
    text = out.decode(errors="replace")
    assert "/dev/pts/0" in text  # the container's own devpts instance
    assert "33 101" in text  # window size passed through
    assert "got:hello" in text


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


def test_exec_tty_gets_a_pty_of_the_container(busybox_base, tmp_path, runner):
    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "20"])
    name = cid("xtty")
    runner.oc("run", "-d", "-b", str(b), name)
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 21, 77, 0, 0))
    p = subprocess.Popen([OCILEARN, "--root", runner.root, "exec", "--tty", name, "/bin/sh", "-c", "tty; stty size; exit 4"],
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        assert p.wait(10) == 4, out
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait()
    text = out.decode(errors="replace")
    assert "/dev/pts/0" in text and "21 77" in text  # a pty from the container's devpts, our window size


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
    """The container gets stdio only (C24 hygiene), or stdio + N fds with --preserve-fds."""
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


def test_exec_user_cwd_env_options(busybox_base, tmp_path, runner):
    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "20"], **{"process.user": {"uid": 0, "gid": 0}})
    name = cid("xopt")
    PATH = next(e for e in json.loads((b / "config.json").read_text())["process"]["env"] if e.startswith("PATH=")).split("=", 1)[1]
    runner.oc("run", "-d", "-b", str(b), name)
    out = runner.oc("exec", "--user", "1000:1000", "--cwd", "/tmp", "--env", "FOO=bar", "-e", "GREETING=hi", name,
                    "/bin/sh", "-c", "id -u; id -g; pwd; echo $FOO $GREETING").stdout.split()
    assert out == ["1000", "1000", "/tmp", "bar", "hi"]
    # as runc: a program that cannot be executed is an error of `exec` itself, status 255
    bad = runner.oc("exec", name, "/no/such/program", check=False)
    assert (bad.returncode, bad.stderr.strip()) == (255, 'ocilearn: error: exec failed: exec: "/no/such/program": executable file '
                                                         'not found in $PATH (' + PATH + ")")
