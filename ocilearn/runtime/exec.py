"""``runc exec``: another process in a running (or created) container — the same
stages as create, joining instead of creating: an intermediate child joins the cgroup
and the container's namespaces (setns(2)) and forks the process, which is born in the
container's PID namespace; the intermediate exits, and the process is the runtime's
child (the runtime is a subreaper meanwhile), then the caller's once ``exec --detach``
returns — conmon and containerd-shim reap it and report its exit status.
"""

from __future__ import annotations

import _signal as signal  # `signal` without its enum classes (start-up time, see container.py)
import os
import sys

from ..core import syscalls as sc
from ..core.errors import ContainerError, InvalidState, RuntimeSpecError
from . import namespaces as nsmod
from . import step
from .container import FORWARD, Container, forward
from .spec import ID_MAX, check_process
from .state import atomic_text, children, exit_code, reap
from .sync import recv, send, socketpair
from .terminal import copy_winsize, proxy_pty, send_console


def parse_exec_user(user: str) -> dict:
    """``exec --user UID[:GID]`` (runc's format: numbers only, ASCII digits) as
    ``{"uid": …, "gid": …}``; the gid defaults to 0. Names are not looked up (runc does
    not either). Raises ContainerError naming the option."""
    u, sep, g = user.partition(":")
    ids = {}
    for name, v in (("uid", u), ("gid", g if sep else "0")):
        if not v or not v.isascii() or not v.isdigit() or int(v) > ID_MAX:
            raise ContainerError(f"exec --user {user!r}: {name} {v!r} must be a number from 0 to {ID_MAX} "
                                 "(format UID[:GID]; user names are not looked up)")
        ids[name] = int(v)
    return ids


def open_container_ns(st: dict) -> list[tuple[str, int]]:
    """Open the container's namespace files, ``(type, fd)`` pairs, from its init's
    ``/proc/PID/ns``. A rootless runtime may not open those of a non-dumpable init (the
    ``--init`` reaper: ptrace(2) access mode checking); it then uses a child of the init,
    which lives in the same namespaces. Raises RuntimeSpecError."""
    types = st.get("ocilearn", {}).get("namespaces", [])
    init = st["pid"]
    err: OSError | None = None
    for pid in [init, *children(init)]:
        out: list[tuple[str, int]] = []
        try:
            for t in types:
                out.append((t, os.open(f"/proc/{pid}/ns/{sc.NAMESPACES[t][1]}", os.O_RDONLY | os.O_CLOEXEC)))
            return out
        except OSError as e:
            err = err or e
            for _t, fd in out:
                os.close(fd)
    raise RuntimeSpecError(f"cannot open the namespaces of container {st.get('id')}: {err}")


def exec_process_spec(st: dict, args: list[str] | None, *, process: dict | None = None, env: list[str] | None = None,
                      cwd: str | None = None, user: str | None = None, additional_gids: list[int] | None = None,
                      tty: bool | None = None, caps: list[str] | None = None, no_new_privs: bool | None = None) -> dict:
    """The runtime-spec ``process`` object ``exec`` runs, as runc builds it (runc exec.go
    getProcess): ``process`` (``--process FILE``) is taken as it is; otherwise the
    container's own process (env, user, capabilities, rlimits …) with ``args``, ``env``
    appended (a later KEY replaces an earlier one), ``cwd``, ``user`` (UID[:GID]),
    ``additional_gids``, ``tty``, ``caps`` (added to every capability set) and
    ``no_new_privs`` changed. Raises ContainerError."""
    if process is not None:
        if not isinstance(process, dict):
            raise ContainerError("exec --process: the file must hold a runtime-spec process object (config.md 'Process')")
        proc = dict(process)
        if args:
            proc["args"] = list(args)
        if tty is not None:
            proc["terminal"] = tty
        return proc
    proc = dict(st.get("ocilearn", {}).get("process") or {})
    if not args:
        raise ContainerError("exec: process args cannot be empty (give a command, or --process FILE)")
    proc["args"] = list(args)
    proc["terminal"] = bool(tty)
    merged = list(proc.get("env") or [])
    for e in env or []:
        k = e.split("=", 1)[0]
        merged = [x for x in merged if x.split("=", 1)[0] != k] + [e]
    proc["env"] = merged
    if cwd:
        proc["cwd"] = cwd
    if user:
        proc["user"] = {**(proc.get("user") or {}), **parse_exec_user(user), "additionalGids": []}
    if additional_gids:
        proc["user"] = {**(proc.get("user") or {}), "additionalGids": [*(proc.get("user") or {}).get("additionalGids", []), *additional_gids]}
    if caps:
        have = dict(proc.get("capabilities") or {})
        for kind in ("bounding", "effective", "permitted", "inheritable", "ambient"):
            have[kind] = [*(have.get(kind) or []), *(c for c in caps if c not in (have.get(kind) or []))]
        proc["capabilities"] = have
    if no_new_privs is not None:
        proc["noNewPrivileges"] = no_new_privs
    return proc


def exec_in(root: str, cid: str, args: list[str] | None = None, *, process: dict | None = None, env: list[str] | None = None,
            cwd: str | None = None, user: str | None = None, additional_gids: list[int] | None = None, tty: bool | None = None,
            detach: bool = False, console_socket: str | None = None, pid_file: str | None = None, caps: list[str] | None = None,
            no_new_privs: bool | None = None, preserve_fds: int = 0, ignore_paused: bool = False) -> int:
    """``runc exec``: run another process in the container's namespaces and cgroup (a
    created container too). The process is built by :func:`exec_process_spec`. The same
    stages as ``create``: an intermediate child joins the cgroup and the namespaces, forks
    the process (it must be born in the PID namespace) and exits; the process is then our
    child. ``detach``: return once it runs (``--pid-file`` names it; our caller's
    subreaper reaps it when we exit). Otherwise forward signals, proxy the terminal, wait
    and return its exit code (128+N for a signal). Raises InvalidState, ContainerError
    ("exec failed: …" when the program could not be executed)."""
    from . import process as _preload  # noqa: F401 - the exec child needs it after setns

    c = Container.load(root, cid)
    st = c.read()
    status = c.status(st)
    if status == "paused" and not ignore_paused:
        raise InvalidState(f"cannot exec in container {cid}: it is paused (use --ignore-paused, then resume it)")
    if status not in ("created", "running", "paused"):
        raise InvalidState(f"cannot exec in container {cid}: it is {status}")
    if type(preserve_fds) is not int or preserve_fds < 0:
        raise ContainerError(f"--preserve-fds {preserve_fds!r}: must be a number >= 0")
    proc = exec_process_spec(st, args, process=process, env=env, cwd=cwd, user=user, additional_gids=additional_gids, tty=tty,
                             caps=caps, no_new_privs=no_new_privs)
    check_process(proc, f"exec in {cid}")
    from . import spec

    sfilter = spec.prepare({"linux": {"seccomp": st.get("ocilearn", {}).get("seccomp")}})["seccomp"]
    terminal = bool(proc.get("terminal"))
    if terminal and detach and not console_socket:
        raise ContainerError(f"exec in {cid}: a terminal for a detached process needs --console-socket (runc docs/terminals.md)")
    fds = open_container_ns(st)
    cg = c.cgroup(st)
    s1, s1_child = socketpair()
    s2, s2_child = socketpair()
    sys.stdout.flush()
    sys.stderr.flush()
    was_subreaper = sc.set_child_subreaper(True)
    try:
        try:
            mid = os.fork()
        except BaseException:
            for _t, fd in fds:
                os.close(fd)
            raise
        if mid == 0:
            _exec_stage1(proc, fds, cg, s1, s2, s1_child, s2_child, terminal, preserve_fds, sfilter)
        for _t, fd in fds:
            os.close(fd)
        s1_child.close()
        s2_child.close()
        try:
            msg, _ = recv(s1)
        finally:
            s1.close()
            reap(mid)  # the process is our child from here on
    finally:
        if not was_subreaper:
            sc.set_child_subreaper(False)
    if not msg or "error" in msg:
        s2.close()
        raise ContainerError(f"exec failed: {(msg or {}).get('error', 'the intermediate process died')}")
    pid = msg["pid"]
    master = None
    try:
        if terminal:
            msg, got = recv(s2)
            if not msg or not got or msg.get("t") != "pty":
                raise ContainerError(f"exec failed: {(msg or {}).get('error', 'no pseudo-terminal came back from the container')}")
            if console_socket:
                send_console(console_socket, got[0], msg.get("path", ""))
                os.close(got[0])
            else:
                master = got[0]
                copy_winsize(master)
            send(s2, {"t": "go"})
        msg, _ = recv(s2)  # EOF: the sync socket is close-on-exec, so the program runs
        if msg and "error" in msg:
            raise ContainerError(f"exec failed: {msg['error']}")
    except BaseException:
        forward(pid, signal.SIGKILL)
        reap(pid)
        if master is not None:
            os.close(master)
        raise
    finally:
        s2.close()
    if pid_file:
        atomic_text(pid_file, str(pid))
    step("runtime", "exec", f"pid {pid}: {' '.join(proc['args'])}", f"runc exec {cid} {' '.join(proc['args'])}")
    if detach:
        return 0
    old = {s: signal.signal(s, lambda n, f: forward(pid, n)) for s in FORWARD}
    try:
        if master is not None:
            proxy_pty(master)
        return exit_code(reap(pid) or 0)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _exec_stage1(proc: dict, fds, cg, s1, s2, s1_child, s2_child, terminal: bool, preserve_fds: int, sfilter=None) -> None:
    """The intermediate exec child: cgroup, namespaces, one fork, report, exit."""
    from . import process as pr

    code = 1
    try:
        # before joining anything: container root must not open this host Python's
        # /proc/PID/exe, environ or mem (CVE-2019-5736)
        sc.set_dumpable(False)
        sc.scrub_environ()
        s1.close()
        s2.close()
        if cg:
            cg.join()  # single-threaded: a fresh fork
        nsmod.join(fds)
        child = os.fork()
        if child == 0:
            try:
                s1_child.close()
                if terminal:
                    # the pty comes from the container's own devpts (like runc), so `tty`
                    # inside names a /dev/pts/N that exists there
                    m, slave, path = pr.open_pty()
                    send(s2_child, {"t": "pty", "path": path}, [m])
                    os.close(m)
                    msg, _ = recv(s2_child)  # the window size is set: go
                    if not msg:
                        os._exit(1)
                    pr.become_tty_session(slave)
                pr.exec_process(proc, keep_fds=3 + preserve_fds, also_keep=s2_child.fileno(), seccomp=sfilter)
            except BaseException as e:  # noqa: BLE001
                try:
                    send(s2_child, {"error": str(e)})
                except OSError:
                    print(f"ocilearn: exec: {e}", file=sys.stderr)
            finally:
                os._exit(127)
        send(s1_child, {"pid": child})
        code = 0
    except BaseException as e:  # noqa: BLE001
        try:
            send(s1_child, {"error": str(e)})
        except OSError:
            pass
    finally:
        os._exit(code)
