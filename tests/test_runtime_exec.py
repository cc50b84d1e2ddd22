"""``exec`` (ocilearn/runtime/exec.py; runc-exec(8)): a process joins a created or running
container; --process, --detach and --pid-file as conmon and containerd-shim pass them,
the caller reaps it; user, groups, cwd, env, capabilities, no_new_privs; errors."""

from __future__ import annotations

import json
import os
import re
import socket
import threading

from test_runtime_helpers import cid, make_bundle, needs_root

pytestmark = needs_root


def test_exec_options_as_conmon_and_the_shim_pass_them(busybox_base, tmp_path, runner):
    """exec --process FILE --detach --pid-file F (what conmon and containerd-shim call):
    the PID file names the process, which is the caller's to reap (exit status 5); -e,
    --cwd, -u, -g, --cap, --no-new-privs on the command line; --tty with a console socket."""
    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "30"], **{"process.user": {"uid": 0, "gid": 0}, "process.noNewPrivileges": False})
    name = cid("xo")
    runner.oc("run", "-d", "-b", str(b), name)
    proc = {"args": ["sh", "-c", "echo $X $(pwd) $(id -u):$(id -g) > /tmp/x.out; exit 5"], "env": ["PATH=/bin", "X=fromfile"], "cwd": "/tmp",
            "user": {"uid": 3, "gid": 4}, "terminal": False}
    (tmp_path / "p.json").write_text(json.dumps(proc))
    pidf = tmp_path / "x.pid"
    runner.oc("exec", "--process", str(tmp_path / "p.json"), "--detach", "--pid-file", str(pidf), name)
    pid = int(pidf.read_text())
    assert runner.exit_status(pid) == 5  # the caller's subreaper got the status, not ocilearn
    assert runner.oc("exec", name, "cat", "/tmp/x.out").stdout == "fromfile /tmp 3:4\n"
    probe = "echo $Y $(pwd) $(id -G); grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"
    plain = runner.oc("exec", "-u", "7:8", name, "sh", "-c", probe).stdout.split()
    out = runner.oc("exec", "-e", "Y=1", "--cwd", "/etc", "-u", "7:8", "-g", "9", "--cap", "CAP_SYS_CHROOT", "--no-new-privs", name,
                    "sh", "-c", probe).stdout.split()
    assert out[:5] == ["1", "/etc", "8", "9", "CapEff:"] and out[6:] == ["NoNewPrivs:", "1"] and plain[-1] == "0"
    assert int(out[5], 16) == int(plain[-3], 16) | 1 << 18  # CAP_SYS_CHROOT added, as runc's --cap does
    # --tty with --console-socket (podman exec -t): the pty master goes to the socket
    sock_path = str(tmp_path / "c.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    got: dict = {}

    def accept():
        conn, _ = srv.accept()
        with conn:
            got["msg"], got["fds"], _f, _a = socket.recv_fds(conn, 1024, 4)

    t = threading.Thread(target=accept)
    t.start()
    runner.oc("exec", "-t", "-d", "--console-socket", sock_path, name, "sh", "-c", "tty; echo done")
    t.join(10)
    srv.close()
    data = b""
    while True:
        try:
            chunk = os.read(got["fds"][0], 4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    os.close(got["fds"][0])
    assert re.match(rb"/dev/pts/\d+\r\ndone\r\n", data), data
    runner.oc("delete", "--force", name)


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
