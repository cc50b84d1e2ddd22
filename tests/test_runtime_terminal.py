"""The container's terminal (ocilearn/runtime/terminal.py; runtime-spec config.md "Process"
terminal, runc docs/terminals.md): a pty from the container's own devpts, its master sent
to --console-socket or proxied by a foreground run; a detached terminal without a socket
is refused before anything is created."""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import threading
import time
from pathlib import Path

from test_runtime_helpers import OCILEARN, cid, make_bundle, needs_root

pytestmark = needs_root


def _cgroup_dirs() -> set[str]:
    """Every directory at the top of each cgroup hierarchy (v1 or v2)."""
    from ocilearn.runtime.cgroups import detect

    return {os.path.join(h, e) for h in detect()[1].values() for e in os.listdir(h) if os.path.isdir(os.path.join(h, e))}


def test_terminal_detached_without_console_socket_fails_cleanly(busybox_base, tmp_path, runner):
    b = make_bundle(busybox_base, tmp_path / "b", ["sh"], **{"process.terminal": True})
    names = []
    for args in (["create", "-b", str(b)], ["run", "-d", "-b", str(b)]):
        name = cid("c30")
        names.append(name)
        p = runner.oc(*args, name, check=False)
        assert p.returncode == 1
        assert "console socket" in p.stderr and "terminal" in p.stderr and "--console-socket" in p.stderr
        assert not (Path(runner.root) / name).exists()
    # no cgroup of these containers (other test runs on the machine may add their own)
    assert [d for d in _cgroup_dirs() if any(n in d for n in names)] == []


def test_console_socket_receives_pty_master(busybox_base, tmp_path, runner):
    b = make_bundle(busybox_base, tmp_path / "b", ["/bin/sh", "-c", "tty; echo done"], **{"process.terminal": True})
    sock_path = str(tmp_path / "console.sock")
    got: dict = {}
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)

    def accept():
        conn, _ = srv.accept()
        with conn:
            msg, fds, _f, _a = socket.recv_fds(conn, 1024, 4)
            got.update(msg=msg, fds=fds)

    t = threading.Thread(target=accept)
    t.start()
    name = cid("c30s")
    try:
        runner.oc("create", "--console-socket", sock_path, "-b", str(b), name)
        t.join(10)
        assert len(got["fds"]) == 1
        master = got["fds"][0]
        runner.oc("start", name)
        data = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        os.close(master)
        assert re.search(rb"/dev/pts/\d+\r?\n", data), data
        assert b"done" in data
    finally:
        srv.close()


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
