"""The container lifecycle of runtime-spec runtime.md — create, start, state, kill,
delete — plus runc's run, exec, ps, pause, resume and update, in runc's process model.

State directory ``ROOT/ID/`` (runc keeps the same under /run/runc/ID):

- ``state.json``  the runtime-spec state (ociVersion, id, status, pid, bundle,
  annotations) plus ocilearn's bookkeeping under ``"ocilearn"``: the init's PID *and its
  start time*, the cgroup, the hooks still to run.
- ``exec.fifo``   a named pipe (fifo(7)) between ``create`` and ``start``.

**The stages** (runc: libcontainer/nsenter/nsexec.c and process_linux.go):

1. the **parent** — the command the caller ran (``ocilearn create``): checks the config,
   makes the state directory and the cgroup, answers its children over two socketpairs
   (uid/gid maps, veth, hooks, the terminal), writes state.json and ``--pid-file``, and
   *exits*.
2. **stage 1** — a fork of the parent: joins the cgroup and the namespaces named by path,
   unshares the new ones, forks once more, reports that child's PID and exits at once. It
   exists because of one kernel rule: unshare(CLONE_NEWPID) leaves the caller where it is;
   only its *next child* becomes PID 1 of the new PID namespace (pid_namespaces(7)).
3. the **init** — stage 1's child, PID 1 of the container: mounts, ``/dev``, pivot_root,
   hostname, masked and read-only paths; then it blocks opening **exec.fifo** for writing.
   That is when ``create`` returns: the container is *created*. ``start`` opens the fifo
   for reading; the init's open returns, it writes one byte, sets user, capabilities and
   rlimits and calls execve(2): the program *replaces* the init and keeps PID 1. ``start``
   reads until EOF — the init's end of the fifo is close-on-exec — so it returns only once
   the program runs.

**Who is the init's parent?** While stage 1 lives, the parent is a *child subreaper*
(prctl(2) PR_SET_CHILD_SUBREAPER): when stage 1 exits, the kernel re-parents the init to
the parent. runc gets the same result with clone(2) CLONE_PARENT: the init is a direct
child of the runtime command, nothing in between. When ``ocilearn create`` exits, the
kernel re-parents the init again — to the caller's subreaper. conmon (podman) and
containerd-shim are subreapers for exactly this: they wait(2) for the container's PID 1
and so learn its exit status. ``ocilearn run`` in the foreground and the library
(:meth:`Container.wait`) are that caller themselves: the init is their child.

**Why runc is built this way.** No runtime process outlives a command: a container must
survive its CLI (and a daemon restart), and its exit status belongs to whoever supervises
it. A per-container runtime process would be one more thing to crash, to leak, to reap —
and to attack from inside the container (CVE-2019-5736 overwrote the host's runc through
``/proc/PID/exe`` of a runc process that was visible inside). So state comes from the
kernel, never from a process that watches: the init's PID and its start time (field 22 of
/proc/PID/stat) are recorded at create, and the container is *stopped* as soon as that
process is gone or a zombie — the start time tells a reused PID apart. Every command
(``state``, ``kill``, ``delete`` …) is a fresh process that reads the state directory and
asks the kernel.

Everything runs in forked copies of the CLI process: no interpreter starts again, which
keeps ``ocilearn run`` near runc's start-to-exit time. Because stage 1, the init and an
``exec`` child are the host's interpreter inside the container's namespaces until their
execve, they are made non-dumpable (prctl(2) PR_SET_DUMPABLE) and their inherited
environment block is wiped: container root cannot open their ``/proc/PID/exe`` (the host's
Python, CVE-2019-5736), ``environ`` or ``mem``. (Rootless, the init stays dumpable until
start: its host uid is the caller's own, and the caller must open its namespaces for
``exec``.) The config is checked (types, uint32 ids, NUL bytes, rlimits, namespaced
sysctls only, a cgroupsPath that stays in cgroupfs) before anything is created.
"""

from __future__ import annotations

import _socket
import json
import os
import select
import signal
import struct
import sys
import time

from ..core import syscalls as sc
from ..core.errors import ContainerError, ContainerExists, ContainerNotFound, InvalidState, RuntimeSpecError
from . import namespaces as nsmod
from . import step

#: runtime-spec runtime.md "State" statuses, plus runc's "paused" (a frozen cgroup)
STATUSES = ("creating", "created", "running", "paused", "stopped")
ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")
OCI_VERSION = "1.0.2"
TERMINAL_NO_SOCKET = (
    "cannot allocate a tty when the container is detached without a console socket: config.json has "
    "process.terminal: true, but `create` and `run --detach` leave nobody to hold the terminal. Fix: set "
    '"terminal": false in config.json, or pass --console-socket PATH (a Unix socket that receives the pty '
    "master, as with runc; see runc docs/terminals.md), or use `run` without --detach"
)


def default_root() -> str:
    """``/run/ocilearn`` as root, else ``$XDG_RUNTIME_DIR/ocilearn`` (runc's convention),
    else ``/tmp/ocilearn-UID``."""
    if os.geteuid() == 0:
        return "/run/ocilearn"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(xdg, "ocilearn") if xdg else f"/tmp/ocilearn-{os.geteuid()}"


def check_id(cid: object) -> str:
    """A container ID as runc allows it: letters, digits and ``_+-.``, not ``.``/``..``.
    Checked for EVERY command, not only ``create``: the ID becomes a directory under the
    state root that ``delete`` removes, so ``..`` or ``/abs/path`` must never reach a path.
    Raises ContainerError."""
    if not isinstance(cid, str) or not cid or set(cid) - ID_CHARS or cid in (".", "..") or len(cid) > 1024:
        raise ContainerError(f"invalid container id {cid!r}: use letters, digits and _+-. (not '.' or '..')")
    return cid


def parse_signal(s: str | int) -> int:
    """A signal from ``"TERM"``, ``"SIGTERM"``, ``"15"`` or 15 (signal(7)): numbers are
    ASCII digits from 1 to SIGRTMAX. Raises ContainerError for anything else."""
    if isinstance(s, int) or (str(s).isascii() and str(s).isdigit()):
        n = int(s)
        if not 1 <= n <= signal.SIGRTMAX:
            raise ContainerError(f"signal {s!r} out of range 1..{int(signal.SIGRTMAX)} (signal(7))")
        return n
    name = str(s).upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise ContainerError(f"unknown signal {s!r} (signal(7))")


def _fnv1a(text: str) -> int:
    """32-bit FNV-1a hash (a short, stable tag; no hashlib import on the start-up path)."""
    h = 0x811C9DC5
    for b in text.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def _proc_start(pid: int) -> tuple[int, str] | None:
    """(start time in clock ticks, state letter) of ``pid`` from /proc/PID/stat, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    return int(rest[19]), rest[0].decode()


def _alive(pid: int, start: int | None) -> bool:
    info = _proc_start(pid) if pid > 0 else None
    return info is not None and info[1] not in ("Z", "X") and (start is None or info[0] == start)


def _wait_gone(pid: int, start: int | None, timeout: float) -> bool:
    """Wait until ``pid`` (not necessarily our child) has exited, with pidfd_open(2)."""
    if not _alive(pid, start):
        return True
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return True
    try:
        deadline = time.monotonic() + timeout
        p = select.poll()
        p.register(fd, select.POLLIN)
        while time.monotonic() < deadline:
            if p.poll(50):
                return True
            if not _alive(pid, start):
                return True
        return not _alive(pid, start)
    finally:
        os.close(fd)


# The sync sockets use the C module ``_socket`` directly: ``socket.py`` (and the selectors it
# imports) would add a few milliseconds to every start; send_fds/recv_fds are 6 lines each.
_SCM_RIGHTS, _SOL_SOCKET = 1, 1


def _socketpair():
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)


def _send(sock, obj: dict, fds: list[int] | None = None) -> None:
    """One JSON message, with fds passed as SCM_RIGHTS (unix(7)) when given."""
    data = json.dumps(obj).encode()
    if fds:
        sock.sendmsg([data], [(_SOL_SOCKET, _SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))])
    else:
        sock.send(data)


def _recv(sock) -> tuple[dict | None, list[int]]:
    """The next message (None at EOF) and the fds that came with it."""
    data, anc, _flags, _addr = sock.recvmsg(65536, _socket.CMSG_SPACE(4 * 4))
    fds: list[int] = []
    for level, kind, payload in anc:
        if level == _SOL_SOCKET and kind == _SCM_RIGHTS:
            n = len(payload) // 4
            fds += list(struct.unpack(f"{n}i", payload[: 4 * n]))
    return (json.loads(data) if data else None), fds


def _atomic_json(path: str, obj: dict) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f)
    os.rename(tmp, path)


def load_config(bundle: str) -> dict:
    """Read and check ``BUNDLE/config.json`` (runtime-spec config.md). Raises
    RuntimeSpecError naming the file and the problem."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path) as f:
            cfg = json.load(f)
    except FileNotFoundError:
        raise RuntimeSpecError(f"{path}: no config.json in the bundle (runtime-spec bundle.md)")
    except (OSError, ValueError) as e:
        raise RuntimeSpecError(f"{path}: unreadable: {e}")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("root"), dict) or not cfg["root"].get("path"):
        raise RuntimeSpecError(f"{path}: root.path is required (config.md 'Root')")
    proc = cfg.get("process")
    if not isinstance(proc, dict) or not proc.get("args"):
        raise RuntimeSpecError(f"{path}: process.args is required (config.md 'Process')")
    check_process(proc, path)
    linux = cfg.get("linux")
    if linux is not None and not isinstance(linux, dict):
        raise RuntimeSpecError(f"{path}: linux must be an object (config-linux.md)")
    check_cgroups_path((linux or {}).get("cgroupsPath"), path)
    check_sysctl((linux or {}).get("sysctl"), (linux or {}).get("namespaces"), path)
    return cfg


#: uid_t/gid_t are uint32 (config.md "User": "uid (int, REQUIRED) ... in the container
#: namespace"); 4294967295 is (uid_t)-1, which setresuid(2) reads as "leave unchanged"
ID_MAX = 2**32 - 2
#: NGROUPS_MAX on Linux (setgroups(2))
NGROUPS_MAX = 65536
#: RLIM_INFINITY as config.json writes it (uint64)
RLIM_MAX = 2**64 - 1


def _bad(path: str, field: str, why: str) -> RuntimeSpecError:
    return RuntimeSpecError(f"{path}: {field} {why}")


def _check_id(v, field: str, path: str) -> None:
    if type(v) is not int or not 0 <= v <= ID_MAX:
        raise _bad(path, field, f"= {v!r}: must be an integer from 0 to {ID_MAX} (uint32; -1 would mean 'unchanged', i.e. root)")


def _check_str(v, field: str, path: str) -> None:
    if not isinstance(v, str):
        raise _bad(path, field, f"= {v!r}: must be a string")
    if "\0" in v:
        raise _bad(path, field, f"= {v!r}: contains a NUL byte (execve(2) strings end at NUL)")


def check_process(proc: dict, path: str = "config.json") -> None:
    """Check the ``process`` object's types and ranges before anything is created
    (runtime-spec config.md "Process", "User"; config-linux.md rlimits, oomScoreAdj): args
    and env are lists of strings without NUL, cwd an absolute path, user.uid/gid and
    additionalGids uint32 (at most NGROUPS_MAX), umask 0..0o7777, rlimits known
    ``RLIMIT_*`` types with 0 <= soft <= hard <= 2**64-1, oomScoreAdj -1000..1000.
    Raises RuntimeSpecError naming the field."""
    args = proc.get("args")
    if not isinstance(args, list) or not args:
        raise _bad(path, "process.args", "must be a non-empty list of strings (config.md 'Process')")
    for i, a in enumerate(args):
        _check_str(a, f"process.args[{i}]", path)
    env = proc.get("env") or []
    if not isinstance(env, list):
        raise _bad(path, "process.env", "must be a list of 'KEY=value' strings")
    for i, e in enumerate(env):
        _check_str(e, f"process.env[{i}]", path)
    cwd = proc.get("cwd", "/")
    _check_str(cwd, "process.cwd", path)
    if not cwd.startswith("/"):
        raise _bad(path, "process.cwd", f"{cwd!r} must be absolute (config.md 'Process')")
    user = proc.get("user") or {}
    if not isinstance(user, dict):
        raise _bad(path, "process.user", "must be an object {uid, gid, additionalGids}")
    _check_id(user.get("uid", 0), "process.user.uid", path)
    _check_id(user.get("gid", 0), "process.user.gid", path)
    groups = user.get("additionalGids") or []
    if not isinstance(groups, list):
        raise _bad(path, "process.user.additionalGids", "must be a list of integers")
    if len(groups) > NGROUPS_MAX:
        raise _bad(path, "process.user.additionalGids", f"has {len(groups)} entries: at most {NGROUPS_MAX} (NGROUPS_MAX, setgroups(2))")
    for i, g in enumerate(groups):
        _check_id(g, f"process.user.additionalGids[{i}]", path)
    umask = user.get("umask")
    if umask is not None and (type(umask) is not int or not 0 <= umask <= 0o7777):
        raise _bad(path, "process.user.umask", f"= {umask!r}: must be an integer from 0 to 0o7777")
    import resource

    rlimits = proc.get("rlimits") or []
    if not isinstance(rlimits, list):
        raise _bad(path, "process.rlimits", "must be a list of {type, soft, hard}")
    for i, r in enumerate(rlimits):
        f = f"process.rlimits[{i}]"
        if not isinstance(r, dict) or not isinstance(r.get("type"), str) or not r["type"].startswith("RLIMIT_") \
                or not isinstance(getattr(resource, r["type"], None), int):
            raise _bad(path, f, f"= {r!r}: type must be a known RLIMIT_* name (getrlimit(2))")
        for k in ("soft", "hard"):
            if type(r.get(k)) is not int or not 0 <= r[k] <= RLIM_MAX:
                raise _bad(path, f"{f}.{k}", f"= {r.get(k)!r}: must be an integer from 0 to {RLIM_MAX} (uint64)")
        if r["soft"] > r["hard"]:
            raise _bad(path, f, f"({r['type']}): soft {r['soft']} is above hard {r['hard']} (setrlimit(2) EINVAL)")
    oom = proc.get("oomScoreAdj")
    if oom is not None and (type(oom) is not int or not -1000 <= oom <= 1000):
        raise _bad(path, "process.oomScoreAdj", f"= {oom!r}: must be an integer from -1000 to 1000 (proc(5))")
    if "terminal" in proc and not isinstance(proc["terminal"], bool):
        raise _bad(path, "process.terminal", f"= {proc['terminal']!r}: must be true or false")


def check_cgroups_path(cg, path: str = "config.json") -> None:
    """``linux.cgroupsPath`` is relative to each cgroup hierarchy's root
    (config-linux.md "Cgroups path"): a string without NUL, not the root itself, with no
    ``..`` component that could climb out of /sys/fs/cgroup (a config could otherwise
    make or remove directories anywhere in cgroupfs; runc cleans the path as if rooted). Raises RuntimeSpecError."""
    if cg is None:
        return
    _check_str(cg, "linux.cgroupsPath", path)
    parts = [p for p in cg.replace(":", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _bad(path, "linux.cgroupsPath", f"{cg!r} contains '..': it must stay inside the cgroup hierarchy (config-linux.md 'Cgroups path')")
    if not parts:
        raise _bad(path, "linux.cgroupsPath", f"{cg!r} names the hierarchy's root cgroup: the container needs a cgroup of its own")


#: sysctls that belong to the IPC namespace (runc's validateSysctl; sysctl(8), ipc_namespaces(7))
IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
                         "kernel.shmmni", "kernel.shm_rmid_forced"})


def _private_ns(namespaces, kind: str, proc_name: str) -> bool:
    """True when ``linux.namespaces`` gives the container its own ``kind`` namespace: a
    new one, or a path that is not this (the host's) namespace."""
    for n in namespaces or []:
        if isinstance(n, dict) and n.get("type") == kind:
            p = n.get("path")
            if not p:
                return True
            try:
                a, b = os.stat(p), os.stat(f"/proc/self/ns/{proc_name}")
            except OSError:
                return True  # a missing path fails later, with its own message
            return (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino)
    return False


def check_sysctl(sysctl, namespaces, path: str = "config.json") -> None:
    """Allow only namespaced sysctls, as runc does (config-linux.md "Sysctl": "the runtime
    ... MUST generate an error" for what it cannot apply safely): kernel.msg*, kernel.sem,
    kernel.shm* and fs.mqueue.* with a private IPC namespace, net.* with a private network
    namespace, kernel.hostname/kernel.domainname with a private UTS namespace. Anything else
    (kernel.core_pattern, vm.*, …) would change the *host* (kernel.core_pattern runs a program as host root on a
    crash). Checked
    before anything is created. Raises RuntimeSpecError."""
    if sysctl is None:
        return
    if not isinstance(sysctl, dict):
        raise _bad(path, "linux.sysctl", "must be an object of string to string")
    for key, value in sysctl.items():
        _check_str(value, f"linux.sysctl[{key!r}]", path)
        parts = key.split(".")
        if "/" in key or "\0" in key or len(parts) < 2 or any(not p for p in parts):
            raise _bad(path, "linux.sysctl", f"key {key!r} is not a sysctl name (dotted, no '/')")
        if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
            need = ("ipc", "ipc")
        elif key.startswith("net."):
            need = ("network", "net")
        elif key in ("kernel.hostname", "kernel.domainname"):
            need = ("uts", "uts")
        else:
            raise _bad(path, "linux.sysctl", f"{key!r} is not in a separate kernel namespace: setting it would change the host "
                       "(allowed: kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*, kernel.hostname, kernel.domainname)")
        if not _private_ns(namespaces, *need):
            raise _bad(path, "linux.sysctl", f"{key!r} needs the container's own {need[0]} namespace (linux.namespaces): "
                       "without one it would change the host's value")




def _reap(pid: int, block: bool = True) -> int | None:
    """waitpid(2) on our child ``pid``: its raw wait status, None when it has not exited
    (``block=False``) or is not our child."""
    try:
        got, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return None
    return status if got else None


def _exit_code(status: int) -> int:
    """A shell-style exit code from a wait status: the code, or 128+N for signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class Container:
    """One container's state directory: ``root/id``. Use :meth:`create` to make one,
    :meth:`load` to find an existing one."""

    def __init__(self, id: str, root: str) -> None:  # noqa: A002 - runtime-spec calls it id
        self.id, self.root = id, root
        self._status: int | None = None  # the init's wait status, once this process reaped it
        self._pty_master: int | None = None  # foreground run without --console-socket

    def __repr__(self) -> str:
        return f"Container(id={self.id!r}, root={self.root!r})"

    @property
    def dir(self) -> str:
        return os.path.join(self.root, self.id)

    @property
    def fifo(self) -> str:
        return os.path.join(self.dir, "exec.fifo")

    # ---- state ----

    def read(self) -> dict:
        """state.json as a dict, its fields checked (:func:`check_state`). Raises
        ContainerNotFound, or ContainerError naming the file and field when it is corrupt
        (``delete --force`` still cleans up then)."""
        path = os.path.join(self.dir, "state.json")
        try:
            with open(path) as f:
                st = json.load(f)
        except FileNotFoundError:
            raise ContainerNotFound(f"container {self.id!r} does not exist in {self.root}")
        except (OSError, ValueError) as e:
            raise ContainerError(f"{path} is corrupt (unreadable: {e}); `ocilearn delete --force {self.id}` removes what is left")
        check_state(st, path, self.id)
        return st

    def write(self, st: dict) -> None:
        _atomic_json(os.path.join(self.dir, "state.json"), st)

    @classmethod
    def load(cls, root: str, cid: str) -> Container:
        """The container ``cid`` under ``root``; raises ContainerNotFound."""
        c = cls(check_id(cid), root)
        if not os.path.isdir(c.dir):
            raise ContainerNotFound(f"container {cid!r} does not exist in {root}")
        return c

    def status(self, st: dict | None = None) -> str:
        """creating, created, running, paused or stopped — from the kernel, not a stored
        word (runtime-spec runtime.md "State"): the init (PID + start time) alive and the
        exec fifo present = created; alive, no fifo = running, or paused when its cgroup
        is frozen (runc); gone or a zombie = stopped."""
        st = st or self.read()
        o = st.get("ocilearn", {})
        if st.get("status") == "creating":
            return "creating" if _alive(o.get("creator_pid", 0), o.get("creator_start")) else "stopped"
        if not _alive(st.get("pid", 0), o.get("init_start")):
            return "stopped"
        if os.path.exists(self.fifo):
            return "created"
        cg = self._cgroup(st)
        if cg is not None:
            from .freezer import frozen

            if frozen(cg):
                return "paused"
        return "running"

    def state(self) -> dict:
        """The runtime-spec state object: ``{"ociVersion", "id", "status", "pid",
        "bundle", "rootfs", "created", "annotations"}`` (pid only while the process
        exists; rootfs and created as runc adds them)."""
        st = self.read()
        status = self.status(st)
        o = st.get("ocilearn", {})
        out = {"ociVersion": st.get("ociVersion", OCI_VERSION), "id": self.id, "status": status}
        if status not in ("stopped", "creating"):
            out["pid"] = st["pid"]
        out["bundle"] = st.get("bundle", "")
        if o.get("rootfs"):
            out["rootfs"] = o["rootfs"]
        if o.get("created"):
            out["created"] = o["created"]
        if st.get("annotations"):
            out["annotations"] = st["annotations"]
        return out

    def _cgroup(self, st: dict):
        cg = st.get("ocilearn", {}).get("cgroup")
        if not cg:
            return None
        from .cgroups import Cgroup

        return Cgroup(cg["version"], cg["paths"], cg.get("base", "/sys/fs/cgroup"))

    # ---- create ----

    @classmethod
    def create(cls, root: str, cid: str, bundle: str, *, console_socket: str | None = None, pid_file: str | None = None,
               detach: bool = True, net: str | None = None, preserve_fds: int = 0, no_pivot: bool = False, init: bool = False,
               no_new_keyring: bool = False) -> Container:
        """runtime-spec runtime.md "create": build the container's environment from
        ``bundle/config.json`` and leave its init waiting on ``exec.fifo`` before the
        user program. The init is this process's child when this returns (see the module
        doc): call :meth:`wait` or :meth:`delete` to reap it, or exit and let the kernel
        hand it to your subreaper. ``detach=False`` (used by :func:`run`): this process
        holds the terminal, so ``process.terminal`` needs no console socket.
        ``init``: PID 1 is a small reaper that runs the program as its child.
        ``no_new_keyring``: keep the caller's session keyring (runc-create(8)).
        ``net="veth"``: see :mod:`.network`. Raises ContainerExists, RuntimeSpecError,
        ContainerError; a failed create removes everything it made."""
        check_id(cid)
        if type(preserve_fds) is not int or preserve_fds < 0:
            raise ContainerError(f"--preserve-fds {preserve_fds!r}: must be a number >= 0 (fds 3 … 3+N-1 are passed)")
        bundle = os.path.abspath(bundle)
        cfg = load_config(bundle)
        proc = cfg["process"]
        if proc.get("terminal") and detach and not console_socket:
            raise ContainerError(TERMINAL_NO_SOCKET)
        os.makedirs(root, 0o700, exist_ok=True)
        c = cls(cid, root)
        try:
            os.mkdir(c.dir, 0o711)
        except FileExistsError:
            raise ContainerExists(f"container {cid!r} already exists in {root}")
        step("runtime", "create", f"container {cid} from {bundle}", f"runc create --bundle {bundle} {cid}")
        me = _proc_start(os.getpid())
        now = time.time_ns()
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // 10**9)) + f".{now % 10**9:09d}Z"  # RFC 3339, as runc
        hooks = cfg.get("hooks") or {}
        st = {"ociVersion": cfg.get("ociVersion", OCI_VERSION), "id": cid, "status": "creating", "pid": 0, "bundle": bundle,
              "annotations": cfg.get("annotations") or {},
              "ocilearn": {"creator_pid": os.getpid(), "creator_start": me[0] if me else None, "created": created,
                           "hooks": {"poststart": hooks.get("poststart", []), "poststop": hooks.get("poststop", [])}}}
        try:
            c._spawn(cfg, bundle, st, console_socket=console_socket, pid_file=pid_file, detach=detach, net=net,
                     preserve_fds=preserve_fds, no_pivot=no_pivot, init=init, no_new_keyring=no_new_keyring)
        except (BrokenPipeError, ConnectionResetError, FileNotFoundError) as e:
            gone = not os.path.isdir(c.dir)
            c._cleanup_failed(st)
            if not gone and isinstance(e, FileNotFoundError):
                raise
            raise ContainerError(f"container {cid}: " + ("it was deleted while being created (a concurrent `delete --force`?)" if gone
                                 else f"its init exited during setup ({e.strerror})")) from e
        except BaseException:
            c._cleanup_failed(st)
            raise
        return c

    def _cleanup_failed(self, st: dict) -> None:
        o = st.get("ocilearn", {})
        pid = st.get("pid")
        if pid and _alive(pid, o.get("init_start")):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if pid:
            _wait_gone(pid, o.get("init_start"), 2)
            _reap(pid, block=False)
        cg = self._cgroup(st)
        if cg:
            try:
                cg.destroy()
            except OSError:
                pass
        _rmtree(self.dir)

    def _spawn(self, cfg: dict, bundle: str, st: dict, *, console_socket, pid_file, detach, net, preserve_fds, no_pivot, init,
               no_new_keyring) -> None:
        linux = cfg.get("linux") or {}
        proc = cfg["process"]
        rootless = os.geteuid() != 0
        flags, joins = nsmod.plan(linux.get("namespaces"))
        if not flags & sc.CLONE_NEWNS and not any(t == "mount" for t, _ in joins):
            raise RuntimeSpecError("config.json: ocilearn needs a mount namespace (linux.namespaces type 'mount') to pivot_root")
        uidm, gidm = linux.get("uidMappings"), linux.get("gidMappings")
        userns = bool(flags & sc.CLONE_NEWUSER) or any(t == "user" for t, _ in joins)
        if rootless and not userns:
            flags |= sc.CLONE_NEWUSER  # rootless: always a user namespace, container root = the caller
            userns = True
            step("runtime", "rootless", "added a user namespace mapping root to the caller", "runc spec --rootless")
        if flags & sc.CLONE_NEWUSER and not uidm:
            uidm, gidm = nsmod.default_rootless_mappings() if rootless else ([{"containerID": 0, "hostID": 0, "size": 4294967295}],) * 2
        if flags & sc.CLONE_NEWUSER:
            user = proc.get("user") or {}
            for kind, ident, maps in (("uid", user.get("uid", 0), uidm), ("gid", user.get("gid", 0), gidm)):
                if not nsmod.in_mapping(ident, maps):
                    raise RuntimeSpecError(f"process.user {kind} {ident} is outside the user namespace's {kind}Mappings {maps}: it would be nobody; "
                                           "map it, or run as a user inside the mapping")
        caps = proc.get("capabilities") or {}
        if not userns and any("CAP_SYS_PTRACE" in (caps.get(k) or ()) for k in ("bounding", "permitted", "effective")):
            print("ocilearn: warning: process.capabilities grants CAP_SYS_PTRACE without a user namespace: container root can "
                  "then open /proc/PID/exe (the host's Python) of the --init reaper or of an exec child before its execve, "
                  "non-dumpable or not (CVE-2019-5736); drop CAP_SYS_PTRACE or add a user namespace", file=sys.stderr)
        rootfs = cfg["root"]["path"]
        rootfs = rootfs if os.path.isabs(rootfs) else os.path.join(bundle, rootfs)
        if not os.path.isdir(rootfs):
            raise RuntimeSpecError(f"root.path {rootfs}: not a directory (config.md 'Root')")
        o = st["ocilearn"]
        o.update(rootfs=rootfs, userns=userns, process=proc, namespaces=[t for t, (f, _) in sc.NAMESPACES.items() if flags & f] + [t for t, _ in joins])
        cg = None
        if not rootless:
            from .cgroups import Cgroup

            try:
                # default path /ocilearn-<root hash>-<id>: two state roots may hold the same ID
                tag = f"{_fnv1a(os.path.abspath(self.root)):08x}"
                cg = Cgroup.for_container(linux.get("cgroupsPath") or f"/ocilearn-{tag}-{self.id}", self.id)
            except OSError:
                cg = None
            busy = cg.pids() if cg else []
            if busy:
                # runc refuses too ("container's cgroup is not empty"): in a populated cgroup,
                # delete would kill processes that are not the container's
                raise RuntimeSpecError(f"linux.cgroupsPath {linux.get('cgroupsPath')!r}: that cgroup already has "
                                       f"{len(busy)} process(es) (e.g. pid {busy[0]}); refusing to put a container in it")
            if cg:
                o["cgroup"] = {"version": cg.version, "paths": cg.paths, "base": cg.base}
        elif (linux.get("resources") or {}).keys() - {"devices"}:
            print("ocilearn: warning: rootless: cgroup limits in linux.resources are not applied (cgroups are not delegated to this user)", file=sys.stderr)
        self.write(st)
        step("runtime", "state", f"{self.dir}/state.json (creating)", "")
        if cg:
            cg.create()
            cg.apply(linux.get("resources"))
        os.mkfifo(self.fifo, 0o600)
        # what the children need is imported here, by the runtime: after the namespaces
        # change (a user namespace, pivot_root) the interpreter's files may be out of reach
        from . import process  # noqa: F401
        from . import rootfs as _rootfs_module  # noqa: F401
        if any("tmpcopyup" in (m.get("options") or ()) for m in cfg.get("mounts") or []):
            from . import copyup  # noqa: F401
        ns_files = nsmod.open_ns(joins)
        s1_parent, s1_child = _socketpair()
        s2_parent, s2_child = _socketpair()
        for s in (s1_parent, s2_parent):
            s.settimeout(60)
        ctx = {"cfg": cfg, "bundle": bundle, "rootfs": rootfs, "flags": flags, "userns": userns, "cgroup": cg, "fifo": self.fifo,
               "no_pivot": no_pivot or bool(os.environ.get("OCILEARN_NO_PIVOT")), "preserve_fds": preserve_fds, "id": self.id,
               "init": init, "rootless": rootless, "keyring": not no_new_keyring}
        parent_pid = os.getpid()
        step("runtime", "fork stage 1", "the parent becomes a child subreaper until stage 1 exits (the init is then its child)",
             "runc init (clone CLONE_PARENT)")
        sys.stdout.flush()
        sys.stderr.flush()
        was_subreaper = sc.set_child_subreaper(True)
        try:
            stage1 = os.fork()
            if stage1 == 0:  # ---- stage 1 ----
                code = 1
                global _sent_steps
                ex = sys.modules.get("ocilearn.core.explain")
                _sent_steps = len(ex._current.get() or ()) if ex is not None else 0
                try:
                    s1_parent.close()
                    s2_parent.close()
                    code = _stage1(ctx, parent_pid, ns_files, s1_child, s2_child)
                except BaseException as e:  # noqa: BLE001 - report anything to the runtime
                    try:
                        _send(s1_child, {"error": f"{type(e).__name__}: {e}" if not isinstance(e, OSError) else str(e)})
                    except OSError:
                        pass
                finally:
                    os._exit(code)
            for _t, fd in ns_files:
                os.close(fd)
            s1_child.close()
            s2_child.close()
            try:
                self._stage1_talk(st, s1_parent, stage1, uidm, gidm)
            except BaseException:
                _forward(stage1, signal.SIGKILL)
                raise
            finally:
                s1_parent.close()
                _reap(stage1)  # it exits right after reporting the init: the kernel re-parents the init to us
        finally:
            if not was_subreaper:
                sc.set_child_subreaper(False)
        try:
            self._init_talk(st, cfg, s2_parent, console_socket, pid_file, net)
        finally:
            s2_parent.close()

    def _expect(self, sock, what: str) -> tuple[dict, list[int]]:
        """The next setup message from a child; raises ContainerError when it reports an
        error, exits, or stays silent for 60 s."""
        try:
            msg, fds = _recv(sock)
        except TimeoutError:
            raise ContainerError(f"container {self.id}: init did not answer ({what}) within 60 s")
        if msg is None:
            raise ContainerError(f"container {self.id}: init exited during setup ({what})")
        for d in msg.get("steps", ()):  # narration from stage 1 and the init
            step(**d)
        if "error" in msg:
            raise ContainerError(f"container {self.id}: {msg['error']}")
        return msg, fds

    def _stage1_talk(self, st: dict, s1, stage1: int, uidm, gidm) -> None:
        """The parent's side of stage 1: write the uid/gid maps when asked (an
        unprivileged process may not write its own, user_namespaces(7)), then learn the
        init's PID and record it with its start time."""
        msg, _ = self._expect(s1, "start")
        if msg.get("t") == "idmap":
            nsmod.write_id_maps(stage1, uidm, gidm)
            _send(s1, {"t": "ok"})
            msg, _ = self._expect(s1, "fork")
        init_pid = msg["pid"]
        info = _proc_start(init_pid)
        st["pid"], st["ocilearn"]["init_start"] = init_pid, info[0] if info else None
        self.write(st)  # from now on `delete --force` finds the init
        step("runtime", "init", f"pid {init_pid} (PID 1 of the new PID namespace); stage 1 exits", "")

    def _init_talk(self, st, cfg, s2, console_socket, pid_file, net) -> None:
        """The parent's side of the init's setup: network and createRuntime hooks at the
        point runtime-spec names, the terminal, then the state "created"."""
        init_pid = st["pid"]
        msg, _ = self._expect(s2, "setup")  # the init reached the runtime's hooks point
        reply: dict = {"t": "ok"}
        if net == "veth":
            from . import network

            addr = network.setup_veth(init_pid, self.id)
            st["ocilearn"]["net"] = addr
            hosts = os.path.join(self.dir, "hosts")
            with open(hosts, "w") as f:
                f.write(network.hosts_file(cfg.get("hostname", ""), addr["container"]))
            reply["hosts"] = hosts
        hooks = cfg.get("hooks") or {}
        run_hooks(hooks.get("prestart", []) + hooks.get("createRuntime", []), self._hook_state(st, "creating"), "createRuntime")
        _send(s2, reply)
        msg, fds = self._expect(s2, "ready")
        if msg.get("t") == "pty":
            master = fds[0]
            if console_socket:
                send_console(console_socket, master, msg.get("path", ""))
                os.close(master)
            else:
                self._pty_master = master
            msg, _ = self._expect(s2, "ready")
        st["status"] = "created"
        self.write(st)
        if pid_file:
            _atomic_text(pid_file, f"{init_pid}")
        step("runtime", "created", f"init pid {init_pid} waits on {self.fifo}", f"runc create {self.id}")

    @staticmethod
    def _hook_state(st: dict, status: str) -> dict:
        return {"ociVersion": st.get("ociVersion", OCI_VERSION), "id": st["id"], "status": status, "pid": st.get("pid", 0),
                "bundle": st.get("bundle", ""), "annotations": st.get("annotations") or {}}

    # ---- start / kill / wait / delete ----

    def start(self, timeout: float = 10.0) -> None:
        """runtime-spec runtime.md "start": release the init waiting on ``exec.fifo`` so it
        executes the user program; run the poststart hooks. Raises InvalidState unless
        created."""
        st = self.read()
        status = self.status(st)
        if status != "created":
            raise InvalidState(f"cannot start container {self.id}: it is {status}, not created (runtime.md 'start')")
        fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            p = select.poll()
            p.register(fd, select.POLLIN)
            deadline = time.monotonic() + timeout
            got = b""
            alive = lambda: _alive(st["pid"], st["ocilearn"].get("init_start"))  # noqa: E731
            while True:  # first the byte, then EOF when the init's write end closes at execve
                if p.poll(20):
                    chunk = os.read(fd, 16)
                    if chunk:
                        if not got:
                            os.unlink(self.fifo)  # "running" from now on
                            deadline = time.monotonic() + timeout
                        got += chunk
                        continue
                    if got:
                        break  # EOF after the byte: the program has been executed
                if time.monotonic() > deadline or not alive():
                    if not got:
                        raise ContainerError(f"container {self.id}: init did not take the start signal")
                    break
        finally:
            os.close(fd)
        if os.path.exists(self.fifo):
            os.unlink(self.fifo)
        step("runtime", "start", f"released init {st['pid']} through exec.fifo", f"runc start {self.id}")
        run_hooks(st["ocilearn"].get("hooks", {}).get("poststart", []), self._hook_state(st, "running"), "poststart")

    def kill(self, sig: int = signal.SIGTERM, all_: bool = False) -> None:
        """runtime-spec runtime.md "kill": send ``sig`` to the init (``all_``: to every
        process of the container). A paused container is thawed for SIGKILL (a frozen
        task acts on no signal). Raises InvalidState when the container is not created,
        running or paused — except with ``all_``, which on a stopped container signals
        nobody and succeeds, as runc's ``kill --all`` does."""
        st = self.read()
        status = self.status(st)
        if status not in ("created", "running", "paused"):
            if all_ and status == "stopped":
                return
            raise InvalidState(f"cannot kill container {self.id}: it is {status} (runtime.md 'kill' needs created or running)")
        targets = self.pids(st) if all_ else [st["pid"]]
        for pid in targets:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if status == "paused" and sig == signal.SIGKILL:
            from .freezer import set_frozen

            set_frozen(self._cgroup(st), False)
        step("runtime", "kill", f"signal {sig} to {targets}", f"runc kill {'--all ' if all_ else ''}{self.id} {sig}")

    def stop(self, grace: float = 10.0, sig: int = signal.SIGTERM) -> str:
        """Stop the container like ``docker stop``: send ``sig`` (SIGTERM) to the init,
        wait up to ``grace`` seconds, then SIGKILL. Returns ``"exited"`` (it obeyed),
        ``"killed"`` (escalated) or ``"stopped"`` (it was not running). A PID 1 without a
        handler ignores SIGTERM (pid_namespaces(7)), hence the escalation."""
        st = self.read()
        if self.status(st) not in ("created", "running", "paused"):
            return "stopped"
        pid, start = st["pid"], st["ocilearn"].get("init_start")
        self.kill(sig)
        if _wait_gone(pid, start, grace):
            return "exited"
        self.kill(signal.SIGKILL, all_=True)
        _wait_gone(pid, start, 5)
        step("runtime", "stop", f"{self.id} ignored signal {sig} for {grace} s: SIGKILL", f"docker stop -t {grace:g}")
        return "killed"

    def _reap_init(self, st: dict | None, block: bool) -> None:
        if self._status is None:
            pid = (st or {}).get("pid", 0)
            if pid:
                self._status = _reap(pid, block)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the init to exit and return its exit code (128+N for signal N), as
        the caller that reaps it (conmon and containerd-shim do this for podman and
        containerd; the kernel made the init this process's child at :meth:`create`).
        Returns None when the init is not this process's child (another process created
        the container) or ``timeout`` seconds passed."""
        if self._status is None:
            st = self.read()
            if timeout is not None:
                _wait_gone(st.get("pid", 0), st.get("ocilearn", {}).get("init_start"), timeout)
            self._reap_init(st, block=timeout is None)
        return None if self._status is None else _exit_code(self._status)

    def exit_status(self) -> dict | None:
        """``{"code": N}`` or ``{"signal": N}`` of an init that has exited and that this
        process reaped (or reaps now); None while it runs or when it is not our child."""
        if self._status is None:
            try:
                self._reap_init(self.read(), block=False)
            except ContainerNotFound:
                pass
        if self._status is None:
            return None
        code = os.waitstatus_to_exitcode(self._status)
        return {"signal": -code} if code < 0 else {"code": code}

    def pids(self, st: dict | None = None) -> list[int]:
        """Host PIDs of the container's processes: from its cgroup, or (rootless, no
        cgroup) every process in the init's PID namespace."""
        st = st or self.read()
        cg = self._cgroup(st)
        if cg:
            return cg.pids()
        init = st.get("pid", 0)
        target = None
        for pid in [init, *_children(init)]:
            try:
                target = os.readlink(f"/proc/{pid}/ns/pid")
                break
            except OSError:  # a non-dumpable init (the --init reaper): ask its child
                continue
        if target is None:
            return [init] if init and _alive(init, st["ocilearn"].get("init_start")) else []
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if os.readlink(f"/proc/{d}/ns/pid") == target:
                        out.append(int(d))
                except OSError:
                    pass
        if init and init not in out and _alive(init, st["ocilearn"].get("init_start")):
            out.append(init)  # non-dumpable: its ns link is not readable to a rootless runtime
        return sorted(out)

    def pause(self) -> None:
        """runc pause: freeze every process of a running container in its cgroup
        (:mod:`.freezer`). Raises InvalidState unless running; ContainerError without a
        cgroup (rootless)."""
        st = self.read()
        status = self.status(st)
        if status != "running":
            raise InvalidState(f"cannot pause container {self.id}: it is {status}, not running")
        from .freezer import set_frozen

        set_frozen(self._need_cgroup(st, "pause"), True)

    def resume(self) -> None:
        """runc resume: thaw a paused container. Raises InvalidState unless paused."""
        st = self.read()
        status = self.status(st)
        if status != "paused":
            raise InvalidState(f"cannot resume container {self.id}: it is {status}, not paused")
        from .freezer import set_frozen

        set_frozen(self._need_cgroup(st, "resume"), False)

    def _need_cgroup(self, st: dict, what: str):
        cg = self._cgroup(st)
        if cg is None:
            raise ContainerError(f"cannot {what} container {self.id}: it has no cgroup (rootless: cgroups are not delegated to this user)")
        return cg

    def update(self, resources: dict) -> None:
        """runc update: apply new ``linux.resources`` values (memory limit, reservation
        and swap; cpu shares, quota, period, cpus, mems; pids limit) to a container's
        cgroup. Values that ocilearn cannot change are refused naming the field (see
        :func:`update_resources`). Raises InvalidState when stopped."""
        st = self.read()
        status = self.status(st)
        if status not in ("created", "running", "paused"):
            raise InvalidState(f"cannot update container {self.id}: it is {status}")
        cg = self._need_cgroup(st, "update")
        res = update_resources(resources)
        try:
            cg.apply(res)
        except OSError:
            # cgroup v1 refuses memory.limit_in_bytes above memory.memsw.limit_in_bytes and
            # the swap limit below the memory limit: the right order depends on the
            # direction of the change, so try swap first (runc does the same dance)
            mem = res.get("memory") or {}
            if "swap" not in mem:
                raise
            cg.apply({"memory": {"swap": mem["swap"]}})
            cg.apply(res)
        step("runtime", "update", json.dumps(res), f"runc update {self.id}")

    def _salvage(self) -> tuple[dict, bool]:
        """What can be trusted of a corrupt state.json, for ``delete --force``: its cgroup
        if well-formed, else the default cgroup of this root and ID if it exists (its
        processes are killed through it); the init's PID only when its start time matches.
        Returns (state, whether anything was found)."""
        try:
            with open(os.path.join(self.dir, "state.json")) as f:
                raw = json.load(f)
        except (OSError, ValueError):
            raw = {}
        raw = raw if isinstance(raw, dict) else {}
        o = raw.get("ocilearn") if isinstance(raw.get("ocilearn"), dict) else {}
        salvaged: dict = {}
        try:
            _check_cgroup(o.get("cgroup"))
            if o.get("cgroup"):
                salvaged["cgroup"] = o["cgroup"]
        except ValueError:
            pass
        if "cgroup" not in salvaged:
            cg = _default_cgroup(self.root, self.id)
            if cg is not None and any(os.path.isdir(p) for p in cg.paths.values()):
                salvaged["cgroup"] = {"version": cg.version, "paths": cg.paths, "base": cg.base}
        pid, start = raw.get("pid"), o.get("init_start")
        if type(pid) is int and pid > 0 and type(start) is int and _alive(pid, start):
            salvaged["init_start"] = start
        else:
            pid = 0
        return {"id": self.id, "status": "stopped", "pid": pid, "ocilearn": salvaged}, bool(pid or salvaged)

    def delete(self, force: bool = False) -> None:
        """runtime-spec runtime.md "delete": remove what create made — processes (a
        created container's init, or with ``force`` a running one: SIGKILL), the cgroup,
        the state directory; run poststop hooks. Raises InvalidState for a running or
        paused container without ``force`` (runc-delete(8))."""
        try:
            st = self.read()
        except ContainerNotFound:
            if not os.path.isdir(self.dir):
                raise
            st = {"id": self.id, "status": "creating", "pid": 0, "ocilearn": {}}  # killed before its first state write
        except ContainerError as e:
            if not force:
                raise
            st, found = self._salvage()
            if not found:
                _rmtree(self.dir)
                raise ContainerError(f"{e} — removed {self.dir}, but neither its cgroup nor its init process could be identified: "
                                     "look for what is left with `ps` and under /sys/fs/cgroup") from None
            step("runtime", "salvage", f"corrupt state: using {st['ocilearn']}", "")
        status = self.status(st)
        o = st.get("ocilearn", {})
        if status in ("running", "paused") and not force:
            raise InvalidState(f"cannot delete container {self.id} that is not stopped: {status} (stop it with kill, or use --force)")
        cg = self._cgroup(st)
        if status in ("created", "running", "paused", "creating") or force:
            pid = st.get("pid", 0)
            if pid and _alive(pid, o.get("init_start")):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if cg:
                cg.kill_all()
                if status == "paused":
                    from .freezer import set_frozen

                    set_frozen(cg, False)  # a frozen task does not die until thawed
            if pid:
                _wait_gone(pid, o.get("init_start"), 5)
        self._reap_init(st, block=False)  # our child (library use, `run`): no zombie left
        if cg:
            cg.destroy()
        if status != "creating":
            run_hooks(o.get("hooks", {}).get("poststop", []), self._hook_state(st, "stopped"), "poststop", warn_only=True)
        _rmtree(self.dir)
        step("runtime", "delete", f"container {self.id}: processes, cgroup and {self.dir} removed", f"runc delete {self.id}")


def _default_cgroup(root: str, cid: str):
    """The cgroup ocilearn gives a container without linux.cgroupsPath, or None."""
    from .cgroups import Cgroup

    try:
        return Cgroup.for_container(f"/ocilearn-{_fnv1a(os.path.abspath(root)):08x}-{cid}", cid)
    except OSError:
        return None


def _check_cgroup(cg) -> None:
    """``ocilearn.cgroup`` of a state: ``{"version": 1|2, "paths": {name: dir}, "base":
    dir}`` with every dir strictly inside its hierarchy under ``base`` (delete kills what
    is in them and removes them: a foreign path must never reach that). Raises ValueError
    saying what is wrong."""
    if cg is None:
        return
    if not isinstance(cg, dict) or cg.get("version") not in (1, 2) or not isinstance(cg.get("paths"), dict) \
            or not isinstance(cg.get("base", "/sys/fs/cgroup"), str):
        raise ValueError("must be {version: 1|2, paths: {...}, base}")
    base = os.path.normpath(cg.get("base", "/sys/fs/cgroup"))
    for name, p in cg["paths"].items():
        if not isinstance(name, str) or not isinstance(p, str) or "\0" in p:
            raise ValueError(f"paths[{name!r}] must be a path string")
        hier = os.path.join(base, name) if name else base
        q = os.path.normpath(p)
        if q != p.rstrip("/") or os.path.commonpath([q, hier]) != hier or q == hier:
            raise ValueError(f"paths[{name!r}] = {p!r} is not a cgroup below {hier}")


def check_state(st, where: str, cid: str) -> None:
    """The types of every state.json field the runtime acts on (runtime-spec runtime.md
    "State" plus ocilearn's bookkeeping): a hand-edited or foreign file gives one line
    naming the field, never a traceback. Raises ContainerError."""
    def bad(field: str, why: str):
        raise ContainerError(f"{where} is corrupt: {field} {why}; `ocilearn delete --force {cid}` removes what is left")

    if not isinstance(st, dict):
        bad("the document", "must be a JSON object")
    if type(st.get("pid", 0)) is not int or st.get("pid", 0) < 0:
        bad("pid", f"= {st.get('pid')!r}: must be an integer >= 0")
    for k in ("ociVersion", "id", "status", "bundle"):
        if k in st and not isinstance(st[k], str):
            bad(k, f"= {st[k]!r}: must be a string")
    ann = st.get("annotations") or {}
    if not isinstance(ann, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in ann.items()):
        bad("annotations", "must map strings to strings")
    o = st.get("ocilearn", {})
    if not isinstance(o, dict):
        bad("ocilearn", "must be an object")
    for k in ("init_start", "creator_pid", "creator_start"):
        if o.get(k) is not None and (type(o[k]) is not int or o[k] < 0):
            bad(f"ocilearn.{k}", f"= {o[k]!r}: must be an integer >= 0")
    for k in ("rootfs", "created"):
        if k in o and not isinstance(o[k], str):
            bad(f"ocilearn.{k}", "must be a string")
    if not isinstance(o.get("namespaces", []), list) or any(t not in sc.NAMESPACES for t in o.get("namespaces", [])):
        bad("ocilearn.namespaces", f"must list namespace types ({', '.join(sc.NAMESPACES)})")
    if not isinstance(o.get("process", {}), dict):
        bad("ocilearn.process", "must be an object")
    hooks = o.get("hooks", {})
    if not isinstance(hooks, dict) or not all(isinstance(v, list) and all(isinstance(h, dict) and isinstance(h.get("path"), str) for h in v)
                                              for v in hooks.values()):
        bad("ocilearn.hooks", "must map hook kinds to lists of {path, args, env, timeout}")
    try:
        _check_cgroup(o.get("cgroup"))
    except ValueError as e:
        bad("ocilearn.cgroup", str(e))


def update_resources(resources: dict) -> dict:
    """The part of a ``runc update`` resources object (runtime-spec config-linux.md
    "Control groups" shape: ``{"memory": {...}, "cpu": {...}, "pids": {...}}``) that
    ocilearn applies: memory limit/reservation/swap, cpu shares/quota/period/cpus/mems,
    pids limit. ``devices`` is ignored, as runc's update ignores it (device rules are
    fixed at create). Any other non-zero field is refused: raises ContainerError naming
    it."""
    if not isinstance(resources, dict):
        raise ContainerError("update: the resources must be a JSON object (config-linux.md 'Control groups')")
    keep = {"memory": ("limit", "reservation", "swap"), "cpu": ("shares", "quota", "period", "cpus", "mems"), "pids": ("limit",)}
    out: dict = {}
    for key, value in resources.items():
        if key == "devices":
            continue
        if key not in keep:
            if _empty(value):
                continue
            raise ContainerError(f"update: resources.{key} is not supported by ocilearn (supported: memory, cpu, pids)")
        if not isinstance(value, dict):
            raise ContainerError(f"update: resources.{key} must be an object")
        for k, v in value.items():
            if k in keep[key]:
                if v is None:
                    continue
                if k in ("cpus", "mems"):
                    if not isinstance(v, str):
                        raise ContainerError(f"update: resources.{key}.{k} = {v!r}: must be a string like '0-3,7'")
                    if not v:
                        continue
                elif type(v) is not int:
                    raise ContainerError(f"update: resources.{key}.{k} = {v!r}: must be an integer")
                out.setdefault(key, {})[k] = v
            elif not _empty(v):
                raise ContainerError(f"update: resources.{key}.{k} is not supported by ocilearn")
    return out


def _empty(v) -> bool:
    """True for a value that asks for nothing (runc's update JSON template is all zeros)."""
    if isinstance(v, dict):
        return all(_empty(x) for x in v.values())
    return v in (None, 0, "", False, [])


def _children(pid: int) -> list[int]:
    """The children of ``pid`` (``/proc/PID/task/PID/children``, proc(5)), or []."""
    if not pid:
        return []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _atomic_text(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def _rmtree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _hook_dies_with_us() -> None:
    """In the hook's child, before exec: SIGKILL it when the runtime dies (prctl(2)
    PR_SET_PDEATHSIG), so a killed ``create`` leaves no orphaned hook behind."""
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)


def run_hooks(hooks: list[dict], state: dict, kind: str, warn_only: bool = False) -> None:
    """Run runtime-spec config.md "POSIX-platform Hooks": each ``{path, args, env,
    timeout}`` gets the state JSON on stdin. A failing hook raises ContainerError (or, for
    poststop, only warns)."""
    if not hooks:
        return
    import subprocess

    for h in hooks:
        args = h.get("args") or [h["path"]]
        try:
            p = subprocess.run(args, executable=h["path"], input=json.dumps(state).encode(), env=dict(e.split("=", 1) for e in h.get("env") or []),
                               timeout=h.get("timeout"), capture_output=True, close_fds=True,
                               preexec_fn=_hook_dies_with_us)
        except (OSError, subprocess.TimeoutExpired) as e:
            p = None
            err = str(e)
        else:
            err = f"exit status {p.returncode}: {p.stderr.decode(errors='replace').strip()}" if p.returncode else ""
        step("runtime", f"{kind} hook", f"{h['path']} {' '.join(args[1:])}", h["path"])
        if err:
            msg = f"{kind} hook {h['path']} failed: {err}"
            if warn_only:
                print(f"ocilearn: warning: {msg}", file=sys.stderr)
            else:
                raise ContainerError(msg)


def send_console(path: str, master: int, name: str) -> None:
    """Send the pty master to the Unix socket ``path`` with SCM_RIGHTS, as ``runc create
    --console-socket`` does (runc docs/terminals.md)."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        socket.send_fds(s, [name.encode() or b"/dev/pts/0"], [master])


# ---------------------------------------------------------------- the child side


_sent_steps = 0


def _new_steps() -> list[dict]:
    """Steps recorded in this forked process since the last call, for the runtime to add to
    its own narration (``--explain``): a fork copies the recording, not its future."""
    global _sent_steps
    ex = sys.modules.get("ocilearn.core.explain")
    steps = ex._current.get() if ex is not None else None
    if not steps:
        return []
    new = [{"area": x.area, "action": x.action, "detail": x.detail, "equivalent": x.equivalent} for x in steps[_sent_steps:]]
    _sent_steps = len(steps)
    return new


def _stage1(ctx: dict, parent_pid: int, ns_files, s1, s2) -> int:
    """Stage 1: cgroup, namespaces, one fork (the init), report its PID, exit."""
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)  # a killed parent takes stage 1 along
    # From here on this process and its child are the *host's* Python inside the
    # container's namespaces. Non-dumpable, container root (without CAP_SYS_PTRACE over
    # the host) cannot open their /proc/PID/exe (the host interpreter), environ, mem or fd/
    # (CVE-2019-5736); execve resets the flag for the container program. The operator's
    # environment is wiped from memory as well. Rootless: the parent (an unprivileged
    # user) must write this process's uid_map, so it stays dumpable (runc's stage 1 too).
    sc.set_dumpable(ctx["rootless"])
    sc.scrub_environ()
    step("runtime", "non-dumpable", "prctl(PR_SET_DUMPABLE, 0) in stage 1 and the init; host environment wiped from memory",
         "runc init: prctl(PR_SET_DUMPABLE, 0) (CVE-2019-5736)")
    if os.getppid() != parent_pid:
        return 1
    os.setsid()
    cg = ctx["cgroup"]
    if cg:  # the init is born in the container's cgroup (and can unshare a cgroup namespace rooted there)
        cg.add(0)
        step("runtime", "join cgroup", ", ".join(cg.paths.values()), "echo $$ > …/cgroup.procs")
    nsmod.join(ns_files)
    sc.unshare(ctx["flags"] & ~sc.CLONE_NEWCGROUP)
    names = [t for t, (f, _) in sc.NAMESPACES.items() if ctx["flags"] & f and f != sc.CLONE_NEWCGROUP]
    step("runtime", "unshare", f"new namespaces: {', '.join(names)}; the next child is PID 1 of the new PID namespace",
         "unshare " + " ".join(f"--{ {'network': 'net'}.get(t, t) }" for t in names) + " --fork")
    if ctx["flags"] & sc.CLONE_NEWUSER:
        _send(s1, {"t": "idmap"})
        msg, _ = _recv(s1)
        if not msg or msg.get("t") != "ok":
            return 1
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        sc.set_dumpable(ctx["rootless"])  # a credential change resets it (prctl(2))
    early = _new_steps()  # sent by stage 1; the init's copy must not repeat them
    init = os.fork()
    if init == 0:
        code = 1
        try:
            # (a fork clears the parent-death signal: stage 1's exit does not touch the init)
            s1.close()
            _stage2(ctx, s2)
        except BaseException as e:  # noqa: BLE001
            try:
                _send(s2, {"error": f"{type(e).__name__}: {e}" if not isinstance(e, OSError) else str(e)})
            except OSError:
                print(f"ocilearn: container init: {e}", file=sys.stderr)
            code = 127 if "exec:" in str(e) else 1
        finally:
            os._exit(code)
    _send(s1, {"t": "pid", "pid": init, "steps": early})
    return 0


def _look_path(args0: str, env: list[str], cwd: str) -> None:
    """Check that the program exists and is executable before ``create`` returns, as runc
    does (exec.LookPath in runc's init): a wrong ``process.args[0]`` is a create-time
    error, not an exit status 127 after ``start``. Searches the config's PATH (execvp(3)
    rules). Raises ContainerError."""
    if "/" in args0:
        cand = [args0 if args0.startswith("/") else os.path.join(cwd, args0)]
        path = ""
    else:
        path = next((e[5:] for e in env if e.startswith("PATH=")), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        cand = [os.path.join(d or ".", args0) for d in path.split(":")]
    for c in cand:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return
    if "/" in args0 and os.path.exists(cand[0]):
        raise ContainerError(f'exec: "{args0}": permission denied')
    raise ContainerError(f'exec: "{args0}": executable file not found in $PATH ({path})' if path else
                         f'exec: "{args0}": stat {args0}: no such file or directory')


def _stage2(ctx: dict, s2) -> None:
    """The init: PID 1 of the container. Builds the rootfs, waits on the exec fifo, execs."""
    from . import process
    from . import rootfs as rfs

    # non-dumpable as soon as it is visible in the container (CVE-2019-5736); rootless, the
    # parent (same host uid) must open its /proc/PID/ns for `exec` before start
    sc.set_dumpable(ctx["rootless"])
    cfg, linux, proc = ctx["cfg"], ctx["cfg"].get("linux") or {}, ctx["cfg"]["process"]
    root, userns = ctx["rootfs"], ctx["userns"]
    flags = ctx["flags"]
    if ctx["keyring"]:
        # a session keyring of its own (runc's "_ses.ID"): the container does not share
        # the caller's keys (keyrings(7))
        sc.join_session_keyring(f"_ses.{ctx['id']}", 0x8 if userns else 0x80000)
    if flags & sc.CLONE_NEWCGROUP:
        sc.unshare(sc.CLONE_NEWCGROUP)  # rooted at the cgroup stage 1 joined
    if flags & sc.CLONE_NEWNS:
        rfs.make_root_private(linux.get("rootfsPropagation"))
        rfs.bind_rootfs(root)
        cg = ctx["cgroup"]
        cg_paths = dict(cg.paths) if cg else {}
        for m in cfg.get("mounts") or []:
            if m.get("type") == "cgroup" and userns and not cg_paths:
                continue  # rootless: no cgroup of our own to show
            if m.get("type") == "sysfs" and userns and not flags & sc.CLONE_NEWNET:
                m = {**m, "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
            rfs.mount_one(root, m, userns=userns, cgroup_paths=cg_paths, cgroupns=bool(flags & sc.CLONE_NEWCGROUP))
        rfs.create_devices(root, linux.get("devices"), userns=userns)
    if flags & sc.CLONE_NEWUTS:
        if cfg.get("hostname"):
            sc.sethostname(cfg["hostname"])
        if cfg.get("domainname"):
            sc.setdomainname(cfg["domainname"])
        step("runtime", "sethostname", cfg.get("hostname", ""), f"hostname {cfg.get('hostname', '')}")
    if flags & sc.CLONE_NEWNET:
        from .network import lo_up

        lo_up()
    if proc.get("oomScoreAdj") is not None:
        # non-dumpable, our /proc files belong to the host's root, unmapped in a rootless
        # user namespace: be dumpable for this one write (nothing else runs in here yet)
        sc.set_dumpable(True)
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(proc["oomScoreAdj"]))
        finally:
            sc.set_dumpable(ctx["rootless"])
    _send(s2, {"t": "setup", "steps": _new_steps()})
    msg, _ = _recv(s2)
    if not msg or msg.get("t") != "ok":
        raise ContainerError("runtime went away during setup")
    if msg.get("hosts"):
        target = rfs.resolve_in_root(root, "/etc/hosts")
        if not os.path.lexists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "a").close()
        sc.mount(msg["hosts"], target, None, sc.MS_BIND)
    hooks = cfg.get("hooks") or {}
    if hooks.get("startContainer") or hooks.get("createContainer"):
        import subprocess  # noqa: F401 - imported before pivot_root hides the host's Python files
    if hooks.get("createContainer"):
        run_hooks(hooks["createContainer"], {"ociVersion": cfg.get("ociVersion", OCI_VERSION), "id": ctx["id"], "status": "creating",
                                             "pid": 1, "bundle": ctx["bundle"]}, "createContainer")
    fifo_fd = os.open(ctx["fifo"], os.O_PATH | os.O_CLOEXEC)
    rfs.pivot(root, no_pivot=ctx["no_pivot"])
    for key, value in (linux.get("sysctl") or {}).items():
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(str(value))
    rfs.readonly_paths(linux.get("readonlyPaths"))
    rfs.mask_paths(linux.get("maskedPaths"))
    if cfg["root"].get("readonly"):
        rfs.readonly_root()
    if linux.get("rootfsPropagation"):
        sc.mount(None, "/", None, rfs.PROPAGATION[linux["rootfsPropagation"]])
    cwd = proc.get("cwd") or "/"
    if not os.path.lexists(cwd):  # created as root from inside the new root, like runc
        os.makedirs(cwd, 0o755, exist_ok=True)
    _look_path(proc["args"][0], proc.get("env") or [], cwd)
    if proc.get("terminal"):
        master, slave, path = process.open_pty()
        _send(s2, {"t": "pty", "path": path}, [master])
        os.close(master)
        process.become_tty_session(slave)
    _send(s2, {"t": "ready", "steps": _new_steps()})
    s2.close()
    # blocks until `start` opens the fifo for reading (runc's exec.fifo): the open of the
    # O_PATH fd through /proc/self/fd works after pivot_root hid the state directory
    wfd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    os.write(wfd, b"0")
    os.close(fifo_fd)
    # wfd stays open until execve closes it (O_CLOEXEC): `start` reads to EOF, so it
    # returns (and runs poststart hooks) only once the program has been executed
    if hooks.get("startContainer"):
        run_hooks(hooks["startContainer"], {"ociVersion": cfg.get("ociVersion", OCI_VERSION), "id": ctx["id"], "status": "running",
                                            "pid": 1, "bundle": ctx["bundle"]}, "startContainer")
    keep = 3 + ctx.get("preserve_fds", 0)
    process.exec_process(proc, keep_fds=keep, also_keep=wfd, init=ctx.get("init", False))


# ---------------------------------------------------------------- list, run, exec


def _owner(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def list_containers(root: str) -> list[dict]:
    """Every container under ``root`` as runc list reports it: ``[{"ociVersion", "id",
    "pid", "status", "bundle", "rootfs", "created", "owner"}]`` sorted by id; pid is 0 for
    a stopped container, owner the name of the state directory's owner (runc-list(8))."""
    out = []
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    for name in names:
        c = Container(name, root)
        try:
            st = c.read()
            dir_uid = os.stat(c.dir).st_uid
        except (ContainerError, OSError):
            continue
        status = c.status(st)
        o = st.get("ocilearn", {})
        item = {"ociVersion": st.get("ociVersion", OCI_VERSION), "id": name, "pid": st.get("pid", 0) if status not in ("stopped", "creating") else 0,
                "status": status, "bundle": st.get("bundle", ""), "rootfs": o.get("rootfs", ""), "created": o.get("created", ""),
                "owner": _owner(dir_uid)}
        if st.get("annotations"):
            item["annotations"] = st["annotations"]
        out.append(item)
    return out


FORWARD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def run(root: str, cid: str, bundle: str, *, detach: bool = False, console_socket: str | None = None, pid_file: str | None = None,
        net: str | None = None, keep: bool = False, no_pivot: bool = False, preserve_fds: int = 0, init: bool = False,
        no_new_keyring: bool = False) -> int:
    """``runc run``: create + start. In the foreground this process is the caller that
    reaps the init (its child, see the module doc): it forwards SIGINT/SIGTERM/SIGHUP…
    to it, proxies its terminal, waits, deletes (unless ``keep``), and returns its exit
    code (128+N for signal N). With ``detach``: create + start, return 0 (the init then
    goes to our caller's subreaper when we exit)."""
    if detach:
        c = Container.create(root, cid, bundle, console_socket=console_socket, pid_file=pid_file, net=net, no_pivot=no_pivot,
                             preserve_fds=preserve_fds, init=init, no_new_keyring=no_new_keyring)
        c.start()
        return 0
    c = Container.create(root, cid, bundle, detach=False, console_socket=console_socket, pid_file=pid_file, net=net, no_pivot=no_pivot,
                         preserve_fds=preserve_fds, init=init, no_new_keyring=no_new_keyring)
    try:
        st = c.read()
        pid = st["pid"]
        old = {s: signal.signal(s, lambda n, f: _forward(pid, n)) for s in FORWARD}
        master = c._pty_master
        try:
            if master is not None:
                _copy_winsize(master)  # before the program starts: it may ask at once (stty size)
            c.start()
            step("runtime", "started", f"container {cid}: program running", "")
            if master is not None:
                _proxy_pty(master)
            code = c.wait()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        code = 1 if code is None else code
        step("runtime", "exited", f"container {cid}: status {code}", "")
        cg = c._cgroup(st)
        if cg and cg.oom_kills():
            print(f"ocilearn: container {cid} was OOM-killed: the kernel's OOM killer killed {cg.oom_kills()} process(es) "
                  "at the memory cgroup limit (linux.resources.memory.limit)", file=sys.stderr)
        return code
    finally:
        if not keep:
            try:
                c.delete(force=True)
            except ContainerNotFound:
                pass


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


def _open_container_ns(st: dict) -> list[tuple[str, int]]:
    """Open the container's namespace files, ``(type, fd)`` pairs, from its init's
    ``/proc/PID/ns``. A rootless runtime may not open those of a non-dumpable init (the
    ``--init`` reaper: ptrace(2) access mode checking); it then uses a child of the init,
    which lives in the same namespaces. Raises RuntimeSpecError."""
    types = st.get("ocilearn", {}).get("namespaces", [])
    init = st["pid"]
    err: OSError | None = None
    for pid in [init, *_children(init)]:
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


def _forward(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _copy_winsize(master: int) -> None:
    """Give the container's pty our terminal's size (ioctl_tty(2) TIOCGWINSZ/TIOCSWINSZ)."""
    import fcntl
    import termios

    try:
        fcntl.ioctl(master, termios.TIOCSWINSZ, fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        pass


def _proxy_pty(master: int) -> None:
    """Copy stdin -> pty master and master -> stdout until the container closes the pty;
    pass the window size (TIOCGWINSZ/TIOCSWINSZ, also on SIGWINCH); raw mode on a tty."""
    import termios
    import tty

    def winsize(*_a) -> None:
        _copy_winsize(master)

    saved = None
    if os.isatty(0):
        winsize()
        signal.signal(signal.SIGWINCH, winsize)
        saved = termios.tcgetattr(0)
        tty.setraw(0)
    try:
        fds = [master, 0]
        while True:
            r, _, _ = select.select(fds, [], [])
            if master in r:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                os.write(1, data)
            if 0 in r:
                data = os.read(0, 65536)
                if not data:
                    fds.remove(0)
                else:
                    os.write(master, data)
    finally:
        if saved:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(master)


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
    terminal = bool(proc.get("terminal"))
    if terminal and detach and not console_socket:
        raise ContainerError(f"exec in {cid}: a terminal for a detached process needs --console-socket (runc docs/terminals.md)")
    fds = _open_container_ns(st)
    cg = c._cgroup(st)
    s1, s1_child = _socketpair()
    s2, s2_child = _socketpair()
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
            _exec_stage1(proc, fds, cg, s1, s2, s1_child, s2_child, terminal, preserve_fds)
        for _t, fd in fds:
            os.close(fd)
        s1_child.close()
        s2_child.close()
        try:
            msg, _ = _recv(s1)
        finally:
            s1.close()
            _reap(mid)  # the process is our child from here on
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
            msg, got = _recv(s2)
            if not msg or not got or msg.get("t") != "pty":
                raise ContainerError(f"exec failed: {(msg or {}).get('error', 'no pseudo-terminal came back from the container')}")
            if console_socket:
                send_console(console_socket, got[0], msg.get("path", ""))
                os.close(got[0])
            else:
                master = got[0]
                _copy_winsize(master)
            _send(s2, {"t": "go"})
        msg, _ = _recv(s2)  # EOF: the sync socket is close-on-exec, so the program runs
        if msg and "error" in msg:
            raise ContainerError(f"exec failed: {msg['error']}")
    except BaseException:
        _forward(pid, signal.SIGKILL)
        _reap(pid)
        if master is not None:
            os.close(master)
        raise
    finally:
        s2.close()
    if pid_file:
        _atomic_text(pid_file, str(pid))
    step("runtime", "exec", f"pid {pid}: {' '.join(proc['args'])}", f"runc exec {cid} {' '.join(proc['args'])}")
    if detach:
        return 0
    old = {s: signal.signal(s, lambda n, f: _forward(pid, n)) for s in FORWARD}
    try:
        if master is not None:
            _proxy_pty(master)
        return _exit_code(_reap(pid) or 0)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _exec_stage1(proc: dict, fds, cg, s1, s2, s1_child, s2_child, terminal: bool, preserve_fds: int) -> None:
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
            cg.add(0)
        nsmod.join(fds)
        child = os.fork()
        if child == 0:
            try:
                s1_child.close()
                if terminal:
                    # the pty comes from the container's own devpts (like runc), so `tty`
                    # inside names a /dev/pts/N that exists there
                    m, slave, path = pr.open_pty()
                    _send(s2_child, {"t": "pty", "path": path}, [m])
                    os.close(m)
                    msg, _ = _recv(s2_child)  # the window size is set: go
                    if not msg:
                        os._exit(1)
                    pr.become_tty_session(slave)
                pr.exec_process(proc, keep_fds=3 + preserve_fds, also_keep=s2_child.fileno())
            except BaseException as e:  # noqa: BLE001
                try:
                    _send(s2_child, {"error": str(e)})
                except OSError:
                    print(f"ocilearn: exec: {e}", file=sys.stderr)
            finally:
                os._exit(127)
        _send(s1_child, {"pid": child})
        code = 0
    except BaseException as e:  # noqa: BLE001
        try:
            _send(s1_child, {"error": str(e)})
        except OSError:
            pass
    finally:
        os._exit(code)


def features() -> dict:
    """What this runtime supports, as runtime-spec features.md describes it (``runc
    features``): OCI versions, hooks, mount options, namespaces, capabilities, cgroup
    versions, and the security modules (enabled only where ocilearn applies them)."""
    from . import rootfs as rfs

    seccomp = False
    try:
        import importlib.util

        seccomp = importlib.util.find_spec("ocilearn.runtime.seccomp") is not None
    except (ImportError, ValueError):
        pass
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": sorted({*rfs.MOUNT_FLAGS, *rfs.PROPAGATION, *rfs.RUNTIME_OPTIONS}),
        "linux": {
            "namespaces": sorted(sc.NAMESPACES),
            "capabilities": [f"CAP_{n}" for n, i in sorted(sc.CAPS.items(), key=lambda kv: kv[1]) if i <= sc.last_cap()],
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": False},
            "seccomp": {"enabled": seccomp},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
        },
        "annotations": {"io.github.ocilearn.runtime": "ocilearn"},
    }
