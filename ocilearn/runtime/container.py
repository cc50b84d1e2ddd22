"""The container lifecycle of runtime-spec runtime.md — create, start, state, kill,
delete — plus runc's run, exec and ps, with a state directory like runc's.

State directory ``ROOT/ID/``:

- ``state.json``  the runtime-spec state (ociVersion, id, status, pid, bundle,
  annotations) plus ocilearn's own bookkeeping under ``"ocilearn"``.
- ``exec.fifo``   the init process blocks opening it for writing until ``start`` opens it
  for reading (runc's mechanism): "created" means this fifo still exists.
- ``exit.json``   the init's exit status, written by the monitor.

Processes (three, for one reason: after unshare(CLONE_NEWPID) only the *next* child is in
the new PID namespace, and only one fork is allowed — pid_namespaces(7)):

1. the runtime (the CLI): validates, makes the state dir and the cgroup, answers the
   children over a socketpair (uid/gid maps, veth, hooks), writes the state, exits.
2. the **monitor** (``stage 1``): joins the cgroup and existing namespaces, unshares the new
   ones, forks the init once, then waits for it and records its exit status.
3. the **init** (``stage 2``, PID 1 of the container): mounts, /dev, pivot_root, hostname,
   masked and read-only paths; waits on ``exec.fifo``; then user, capabilities, execve.

Everything runs in forked copies of the CLI process: no Python interpreter is started
again, which keeps ``ocilearn run`` start-to-exit time close to runc's. Because each of
them is the host's interpreter inside the container's namespaces, all are made
non-dumpable (prctl(2) PR_SET_DUMPABLE) and their inherited environment block is wiped
before they can be seen from inside: container root cannot open their ``/proc/PID/exe``
(the host's Python binary, CVE-2019-5736), ``environ`` or ``mem``. The same holds for the
``exec`` child until its execve and for the ``--init`` reaper for the container's life.
The config is checked (types, uint32 ids, NUL bytes, rlimits, namespaced sysctls only,
a cgroupsPath that stays in cgroupfs) before anything is created.
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
from . import spec, step

STATUSES = ("creating", "created", "running", "stopped")
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
    spec.validate(cfg, path)
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
    ``..`` component that could climb out of /sys/fs/cgroup (hostile report #2; runc
    cleans the path as if rooted). Raises RuntimeSpecError."""
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
    (kernel.core_pattern, vm.*, …) would change the *host* (hostile report #3). Checked
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


class Container:
    """One container's state directory: ``root/id``. Use :meth:`create` to make one,
    :meth:`load` to find an existing one."""

    def __init__(self, id: str, root: str) -> None:  # noqa: A002 - runtime-spec calls it id
        self.id, self.root = id, root

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
        try:
            with open(os.path.join(self.dir, "state.json")) as f:
                st = json.load(f)
            if not isinstance(st, dict) or type(st.get("pid", 0)) is not int or not isinstance(st.get("ocilearn", {}), dict):
                raise ContainerError(f"{self.dir}/state.json is corrupt (pid must be an integer); "
                                     f"`ocilearn delete --force {self.id}` removes what is left")
            return st
        except FileNotFoundError:
            raise ContainerNotFound(f"container {self.id!r} does not exist in {self.root}")
        except ValueError:
            return {"id": self.id, "status": "creating", "pid": 0, "bundle": "", "ocilearn": {}}

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
        """creating, created, running or stopped — from the live process, not a stored
        word (runtime-spec runtime.md "State"): the init alive and the exec fifo present =
        created; alive and no fifo = running; dead (or a zombie) = stopped."""
        st = st or self.read()
        o = st.get("ocilearn", {})
        if st.get("status") == "creating":
            return "creating" if _alive(o.get("creator_pid", 0), o.get("creator_start")) else "stopped"
        if not _alive(st.get("pid", 0), o.get("init_start")):
            return "stopped"
        return "created" if os.path.exists(self.fifo) else "running"

    def state(self) -> dict:
        """The runtime-spec state object: ``{"ociVersion", "id", "status", "pid",
        "bundle", "annotations"}`` (pid only while the process exists)."""
        st = self.read()
        status = self.status(st)
        out = {"ociVersion": st.get("ociVersion", OCI_VERSION), "id": self.id, "status": status}
        if status in ("created", "running"):
            out["pid"] = st["pid"]
        out["bundle"] = st.get("bundle", "")
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
               detach: bool = True, net: str | None = None, preserve_fds: int = 0, no_pivot: bool = False, init: bool = False) -> Container:
        """runtime-spec runtime.md "create": build the container's environment from
        ``bundle/config.json`` and leave its init waiting (on ``exec.fifo``) before the
        user program. ``detach=False`` is used by :func:`run` (the caller stays the
        parent and starts it at once). ``init``: PID 1 is a small reaper that runs the
        program as its child (C33). ``net="veth"``: see :mod:`.network`. Raises ContainerExists, RuntimeSpecError,
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
        st = {"ociVersion": cfg.get("ociVersion", OCI_VERSION), "id": cid, "status": "creating", "pid": 0, "bundle": bundle,
              "annotations": cfg.get("annotations") or {},
              "ocilearn": {"creator_pid": os.getpid(), "creator_start": me[0] if me else None, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "owner": os.geteuid(), "hooks": {"poststart": (cfg.get("hooks") or {}).get("poststart", []), "poststop": (cfg.get("hooks") or {}).get("poststop", [])}}}
        try:
            c._spawn(cfg, bundle, st, console_socket=console_socket, pid_file=pid_file, detach=detach, net=net,
                     preserve_fds=preserve_fds, no_pivot=no_pivot, init=init)
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
        for key in ("monitor_pid",):
            pid = o.get(key)
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
        if st.get("pid"):
            _wait_gone(st["pid"], o.get("init_start"), 2)
        cg = self._cgroup(st)
        if cg:
            try:
                cg.destroy()
            except OSError:
                pass
        _rmtree(self.dir)

    def _spawn(self, cfg: dict, bundle: str, st: dict, *, console_socket, pid_file, detach, net, preserve_fds, no_pivot, init) -> None:
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
                                           "map it, or run as a user inside the mapping (C26)")
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
        o.update(rootfs=rootfs, userns=userns, process=proc, seccomp=linux.get("seccomp"), new_cgroupns=bool(flags & sc.CLONE_NEWCGROUP), namespaces=[t for t, (f, _) in sc.NAMESPACES.items() if flags & f] + [t for t, _ in joins])
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
        if detach:
            os.mkfifo(self.fifo, 0o600)
            if flags & sc.CLONE_NEWUSER:  # the init opens it as the container's root (runc: HostRootUID)
                os.chown(self.fifo, nsmod.host_id(0, uidm), nsmod.host_id(0, gidm))
        # opened here, O_PATH: the container's root may not search the state directory
        fifo_fd = os.open(self.fifo, os.O_PATH | os.O_CLOEXEC) if detach else -1
        ns_files = nsmod.open_ns(joins)
        s1_parent, s1_child = _socketpair()
        s2_parent, s2_child = _socketpair()
        for s in (s1_parent, s2_parent):
            s.settimeout(60)
        ctx = {"cfg": cfg, "bundle": bundle, "rootfs": rootfs, "flags": flags, "userns": userns, "detach": detach, **spec.prepare(cfg),
               "cgroup": cg, "fifo": self.fifo, "fifo_fd": fifo_fd, "no_pivot": no_pivot or bool(os.environ.get("OCILEARN_NO_PIVOT")),
               "preserve_fds": preserve_fds, "id": self.id, "init": init, "rootless": rootless}
        parent_pid = os.getpid()
        step("runtime", "fork monitor", "", "")
        sys.stdout.flush()
        sys.stderr.flush()
        monitor = os.fork()
        if monitor == 0:  # ---- stage 1: the monitor ----
            code = 1
            global _sent_steps
            ex = sys.modules.get("ocilearn.core.explain")
            _sent_steps = len(ex._current.get() or ()) if ex is not None else 0
            try:
                s1_parent.close()
                s2_parent.close()
                code = _stage1(ctx, parent_pid, ns_files, s1_child, s2_child, self.dir)
            except BaseException as e:  # noqa: BLE001 - report anything to the runtime
                try:
                    _send(s1_child, {"error": f"{type(e).__name__}: {e}" if not isinstance(e, OSError) else str(e)})
                except OSError:
                    pass
            finally:
                os._exit(code)
        for _t, fd in ns_files:
            os.close(fd)
        if fifo_fd >= 0:
            os.close(fifo_fd)
        s1_child.close()
        s2_child.close()
        o["monitor_pid"] = monitor
        self._talk(st, cfg, s1_parent, s2_parent, uidm, gidm, console_socket, pid_file, net, detach)
        if detach:
            s2_parent.close()
        else:
            self._init_sock = s2_parent
        s1_parent.close()

    def _talk(self, st, cfg, s1, s2, uidm, gidm, console_socket, pid_file, net, detach) -> None:
        """The runtime's side of the setup conversation with the monitor (s1) and the init (s2)."""
        o = st["ocilearn"]
        monitor = o["monitor_pid"]

        def expect(sock, what):
            try:
                msg, fds = _recv(sock)
            except TimeoutError:
                raise ContainerError(f"container {self.id}: init did not answer ({what}) within 60 s")
            if msg is None:
                raise ContainerError(f"container {self.id}: init exited during setup ({what})")
            for d in msg.get("steps", ()):  # narration from the monitor and the init
                step(**d)
            if "error" in msg:
                raise ContainerError(f"container {self.id}: {msg['error']}")
            return msg, fds

        msg, _ = expect(s1, "start")
        if msg.get("t") == "idmap":
            nsmod.write_id_maps(monitor, uidm, gidm)
            _send(s1, {"t": "ok"})
            msg, _ = expect(s1, "fork")
        init_pid = msg["pid"]
        info = _proc_start(init_pid)
        st["pid"], o["init_start"] = init_pid, info[0] if info else None
        cg = self._cgroup(st)
        if cg:
            try:
                cg.add(init_pid)
            except ProcessLookupError:  # the init failed fast (hostile report #26): say why
                expect(s2, "setup")
                raise ContainerError(f"container {self.id}: init exited before it joined its cgroup")
            step("runtime", "join cgroup", f"init {init_pid}", f"echo {init_pid} > …/cgroup.procs")
        if o.get("new_cgroupns"):
            _send(s2, {"t": "cgroup"})
        msg, _ = expect(s2, "setup")  # init reached the runtime namespace hooks point
        reply: dict = {"t": "ok"}
        if net == "veth":
            from . import network

            addr = network.setup_veth(init_pid, self.id)
            o["net"] = addr
            hosts = os.path.join(self.dir, "hosts")
            with open(hosts, "w") as f:
                f.write(network.hosts_file(cfg.get("hostname", ""), addr["container"]))
            reply["hosts"] = hosts
        hooks = cfg.get("hooks") or {}
        run_hooks(hooks.get("prestart", []) + hooks.get("createRuntime", []), self._hook_state(st, "creating"), "createRuntime")
        _send(s2, reply)
        msg, fds = expect(s2, "ready")
        if msg.get("t") == "pty":
            master = fds[0]
            if console_socket:
                send_console(console_socket, master, msg.get("path", ""))
                os.close(master)
            else:
                self._pty_master = master
            msg, _ = expect(s2, "ready")
        st["status"] = "created"
        self.write(st)
        if pid_file:
            _atomic_text(pid_file, f"{init_pid}")
        step("runtime", "created", f"init pid {init_pid} waits " + (f"on {self.fifo}" if detach else "for the start message"),
             f"runc create {self.id}")
        if detach:
            _send(s1, {"t": "detach"})
            expect(s1, "detach")

    @staticmethod
    def _hook_state(st: dict, status: str) -> dict:
        return {"ociVersion": st.get("ociVersion", OCI_VERSION), "id": st["id"], "status": status, "pid": st.get("pid", 0),
                "bundle": st.get("bundle", ""), "annotations": st.get("annotations") or {}}

    # ---- start / kill / delete ----

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
        run_hooks(st["ocilearn"].get("hooks", {}).get("poststart", []), self._hook_state(st, "running"), "poststart", warn_only=True)

    def kill(self, sig: int = signal.SIGTERM, all_: bool = False) -> None:
        """runtime-spec runtime.md "kill": send ``sig`` to the init (``all_``: to every
        process of the container). Raises InvalidState when not created/running."""
        st = self.read()
        status = self.status(st)
        if status not in ("created", "running"):
            raise InvalidState(f"cannot kill container {self.id}: it is {status} (runtime.md 'kill' needs created or running)")
        targets = self.pids(st) if all_ else [st["pid"]]
        for pid in targets:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        step("runtime", "kill", f"signal {sig} to {targets}", f"runc kill {'--all ' if all_ else ''}{self.id} {sig}")

    def stop(self, grace: float = 10.0, sig: int = signal.SIGTERM) -> str:
        """Stop the container like ``docker stop``: send ``sig`` (SIGTERM) to the init,
        wait up to ``grace`` seconds, then SIGKILL. Returns ``"exited"`` (it obeyed),
        ``"killed"`` (escalated) or ``"stopped"`` (it was not running). A PID 1 without a
        handler ignores SIGTERM (pid_namespaces(7)), hence the escalation (C33)."""
        st = self.read()
        if self.status(st) not in ("created", "running"):
            return "stopped"
        pid, start = st["pid"], st["ocilearn"].get("init_start")
        self.kill(sig)
        if _wait_gone(pid, start, grace):
            return "exited"
        self.kill(signal.SIGKILL, all_=True)
        _wait_gone(pid, start, 5)
        step("runtime", "stop", f"{self.id} ignored signal {sig} for {grace} s: SIGKILL", f"docker stop -t {grace:g}")
        return "killed"

    def pids(self, st: dict | None = None) -> list[int]:
        """Host PIDs of the container's processes: from its cgroup, or (rootless, no
        cgroup) every process in the init's PID namespace."""
        st = st or self.read()
        cg = self._cgroup(st)
        if cg:
            return [p for p in cg.pids() if p != st["ocilearn"].get("monitor_pid")]
        init = st.get("pid", 0)
        try:
            target = os.readlink(f"/proc/{init}/ns/pid")
        except PermissionError:  # a non-dumpable init: the monitor's children's namespace
            try:
                target = os.readlink(f"/proc/{st['ocilearn'].get('monitor_pid', 0)}/ns/pid_for_children")
            except OSError:
                return []
        except OSError:
            return []
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

    def _salvage(self) -> dict:
        """What can be trusted of a corrupt state.json, for ``delete --force``: the monitor
        and the cgroup (its processes are killed through it), never a non-integer pid."""
        try:
            with open(os.path.join(self.dir, "state.json")) as f:
                raw = json.load(f)
        except (OSError, ValueError):
            raw = {}
        o = raw.get("ocilearn") if isinstance(raw, dict) and isinstance(raw.get("ocilearn"), dict) else {}
        o = {k: v for k, v in o.items() if k in ("cgroup", "monitor_pid") and (k != "monitor_pid" or type(v) is int)}
        return {"id": self.id, "status": "creating", "pid": 0, "ocilearn": o}

    def delete(self, force: bool = False) -> None:
        """runtime-spec runtime.md "delete": remove what create made — processes (with
        ``force``: SIGKILL), the cgroup, the state directory; run poststop hooks. Raises
        InvalidState for a running container without ``force``."""
        try:
            st = self.read()
        except ContainerNotFound:
            if not os.path.isdir(self.dir):
                raise
            st = {"id": self.id, "status": "creating", "pid": 0, "ocilearn": {}}  # killed before its first state write
        except ContainerError:
            if not force:
                raise
            st = self._salvage()
        status = self.status(st)
        o = st.get("ocilearn", {})
        if status == "running" and not force:
            raise InvalidState(f"cannot delete container {self.id}: it is running; stop it (kill) or use --force")
        if status in ("created", "running", "creating") or force:
            for pid in [st.get("pid", 0), o.get("monitor_pid", 0)]:
                if pid and _alive(pid, o.get("init_start") if pid == st.get("pid") else None):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            cg = self._cgroup(st)
            if cg:
                cg.kill_all()
            if st.get("pid"):
                _wait_gone(st["pid"], o.get("init_start"), 5)
        if o.get("monitor_pid"):
            _wait_gone(o["monitor_pid"], None, 2)
            try:  # reap it when this process created the container (library use)
                os.waitpid(o["monitor_pid"], os.WNOHANG)
            except ChildProcessError:
                pass
        cg = self._cgroup(st)
        if cg:
            cg.destroy()
        if status != "creating":
            run_hooks(o.get("hooks", {}).get("poststop", []), self._hook_state(st, "stopped"), "poststop", warn_only=True)
        _rmtree(self.dir)
        step("runtime", "delete", f"container {self.id}: processes, cgroup and {self.dir} removed", f"runc delete {self.id}")

    def exit_status(self) -> dict | None:
        """``{"code": N}`` or ``{"signal": N}`` as recorded by the monitor, or None."""
        monitor = self.read().get("ocilearn", {}).get("monitor_pid")
        if monitor and not os.path.exists(os.path.join(self.dir, "exit.json")):
            _wait_gone(monitor, None, 2)  # the monitor writes it right after reaping the init
        try:
            with open(os.path.join(self.dir, "exit.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None


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
    PR_SET_PDEATHSIG), so a killed ``create`` leaves no orphaned hook (hostile report #20)."""
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


def _stage1(ctx: dict, parent_pid: int, ns_files, s1, s2, state_dir: str) -> int:
    """The monitor: cgroup, namespaces, one fork (the init); then wait for it."""
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
    # CVE-2019-5736 (hostile report #0): from here on this process and its children (the
    # init, the --init reaper) are the *host's* Python inside the container's namespaces.
    # Non-dumpable, container root (without CAP_SYS_PTRACE over the host) cannot open their
    # /proc/PID/exe (the host interpreter), environ, mem or fd/; execve resets the flag for
    # the container program. The operator's environment is wiped from memory as well.
    # Rootless: the runtime (an unprivileged user) must open this monitor's uid_map and ns
    # files, so the monitor -- never visible in the container's PID namespace -- stays
    # dumpable; the init turns it off itself.
    sc.set_dumpable(ctx.get("rootless", False))
    sc.scrub_environ()
    step("runtime", "non-dumpable", "prctl(PR_SET_DUMPABLE, 0) in the monitor and the init; host environment wiped from memory",
         "runc init: prctl(PR_SET_DUMPABLE, 0) (CVE-2019-5736)")
    if os.getppid() != parent_pid:
        return 1
    os.setsid()
    dir_fd = os.open(state_dir, os.O_DIRECTORY | os.O_CLOEXEC)
    nsmod.join(ns_files)
    # the cgroup namespace is unshared by the init once the runtime has put it in its cgroup
    # (the namespace is rooted at the cgroup it is made in); the monitor stays outside
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
        sc.set_dumpable(ctx.get("rootless", False))  # a credential change resets it (prctl(2))
    early = _new_steps()  # sent by the monitor; the init's copy must not repeat them
    init = os.fork()
    if init == 0:
        code = 1
        try:
            s1.close()
            os.close(dir_fd)
            _stage2(ctx, s2)
        except BaseException as e:  # noqa: BLE001
            try:
                _send(s2, {"error": f"{type(e).__name__}: {e}" if not isinstance(e, OSError) else str(e)})
            except OSError:
                print(f"ocilearn: container init: {e}", file=sys.stderr)
            code = 127 if "exec:" in str(e) else 1
        finally:
            os._exit(code)
    s2.close()
    _send(s1, {"t": "pid", "pid": init, "steps": early})
    if ctx["detach"]:
        msg, _ = _recv(s1)
        if msg and msg.get("t") == "detach":
            sc.prctl(sc.PR_SET_PDEATHSIG, 0)
            _send(s1, {"t": "ok"})
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
    s1.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            _, status = os.waitpid(init, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    res = {"signal": -code} if code < 0 else {"code": code}
    try:  # through the fd: pivot_root moved this process's root into the container too
        tmp = os.open("exit.json.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        os.write(tmp, json.dumps(res).encode())
        os.close(tmp)
        os.rename("exit.json.tmp", "exit.json", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        pass
    return 128 - code if code < 0 else code


def _stage2(ctx: dict, s2) -> None:
    """The init: PID 1 of the container. Builds the rootfs, waits for start, execs."""
    from . import process
    from . import rootfs as rfs

    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
    sc.set_dumpable(False)  # PID 1 is visible in the container from now on (CVE-2019-5736)
    cfg, linux, proc = ctx["cfg"], ctx["cfg"].get("linux") or {}, ctx["cfg"]["process"]
    root, userns = ctx["rootfs"], ctx["userns"]
    flags = ctx["flags"]
    if flags & sc.CLONE_NEWCGROUP:
        msg, _ = _recv(s2)  # the runtime moved us into the container's cgroup
        if not msg or msg.get("t") != "cgroup":
            raise ContainerError("runtime went away before the cgroup was joined")
        sc.unshare(sc.CLONE_NEWCGROUP)
    if flags & sc.CLONE_NEWNS:
        rfs.make_root_private(linux.get("rootfsPropagation"))
        rfs.bind_rootfs(root)
        cg = ctx["cgroup"]
        cg_paths = dict(cg.paths) if cg else {}
        mounted_dev = False
        for m in cfg.get("mounts") or []:
            if m.get("type") == "cgroup" and userns and not cg_paths:
                continue  # rootless: no cgroup of our own to show
            if m.get("type") == "sysfs" and userns and not flags & sc.CLONE_NEWNET:
                m = {**m, "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
            rfs.mount_one(root, m, userns=userns, cgroup_paths=cg_paths, cgroupns=bool(flags & sc.CLONE_NEWCGROUP),
                          mount_label=linux.get("mountLabel"))
            mounted_dev = mounted_dev or m["destination"].rstrip("/") == "/dev"
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
        sc.set_dumpable(userns)
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(proc["oomScoreAdj"]))
        finally:
            sc.set_dumpable(False)
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
    fifo_fd = ctx["fifo_fd"]
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
    if not os.path.lexists(cwd):  # created as root from inside the new root, like runc (C24)
        os.makedirs(cwd, 0o755, exist_ok=True)
    if proc.get("terminal"):
        master, slave, path = process.open_pty()
        _send(s2, {"t": "pty", "path": path}, [master])
        os.close(master)
        process.become_tty_session(slave)
    _send(s2, {"t": "ready", "steps": _new_steps()})
    if ctx["detach"]:
        s2.close()
        # blocks until `start` opens the fifo for reading (runc's exec.fifo)
        wfd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        os.write(wfd, b"0")
        os.close(fifo_fd)
        # wfd stays open until execve closes it (O_CLOEXEC): `start` reads to EOF, so it
        # returns (and runs poststart hooks) only once the program has been executed
        keep_sync = wfd
    else:
        msg, _ = _recv(s2)
        if not msg or msg.get("t") != "start":
            os._exit(1)
        keep_sync = s2.fileno()
    if hooks.get("startContainer"):
        run_hooks(hooks["startContainer"], {"ociVersion": cfg.get("ociVersion", OCI_VERSION), "id": ctx["id"], "status": "running",
                                            "pid": 1, "bundle": ctx["bundle"]}, "startContainer")
    keep = 3 + ctx.get("preserve_fds", 0)
    process.exec_process(proc, keep_fds=keep, also_keep=keep_sync, init=ctx.get("init", False), seccomp=ctx.get("seccomp"))


# ---------------------------------------------------------------- list, run, exec


def list_containers(root: str) -> list[dict]:
    """Every container under ``root``: ``[{"id", "pid", "status", "bundle", "created",
    "owner"}]`` sorted by id (runc list)."""
    out = []
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    for name in names:
        c = Container(name, root)
        try:
            st = c.read()
        except ContainerNotFound:
            continue
        status = c.status(st)
        o = st.get("ocilearn", {})
        out.append({"id": name, "pid": st.get("pid", 0) if status in ("created", "running") else 0, "status": status,
                    "bundle": st.get("bundle", ""), "created": o.get("created", ""), "owner": o.get("owner", 0)})
    return out


FORWARD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def run(root: str, cid: str, bundle: str, *, detach: bool = False, console_socket: str | None = None, pid_file: str | None = None,
        net: str | None = None, keep: bool = False, no_pivot: bool = False, preserve_fds: int = 0, init: bool = False) -> int:
    """``runc run``: create + start; in the foreground, forward SIGINT/SIGTERM/SIGHUP…
    to the container's init, proxy its terminal, wait, delete, and return its exit code
    (128+N for signal N). With ``detach``: create + start, return 0."""
    if detach:
        c = Container.create(root, cid, bundle, console_socket=console_socket, pid_file=pid_file, net=net, no_pivot=no_pivot,
                             preserve_fds=preserve_fds, init=init)
        c.start()
        return 0
    c = Container.create(root, cid, bundle, detach=False, pid_file=pid_file, net=net, no_pivot=no_pivot, preserve_fds=preserve_fds, init=init)
    st = c.read()
    init, monitor = st["pid"], st["ocilearn"]["monitor_pid"]
    old = {s: signal.signal(s, lambda n, f: _forward(init, n)) for s in FORWARD}
    sock = c._init_sock
    master = getattr(c, "_pty_master", None)
    try:
        if master is not None:
            _copy_winsize(master)  # before the program starts: it may ask at once (stty size)
        _send(sock, {"t": "start"})
        error = ""
        try:
            msg, _ = _recv(sock)  # EOF = the program was exec'd
            if msg and "error" in msg:
                error = msg["error"]
        except OSError:
            pass
        sock.close()
        run_hooks(st["ocilearn"].get("hooks", {}).get("poststart", []), Container._hook_state(st, "running"), "poststart", warn_only=True)
        step("runtime", "started", f"container {cid}: program running", "")
        if master is not None:
            _proxy_pty(master, monitor)
        while True:
            try:
                _, status = os.waitpid(monitor, 0)
                break
            except InterruptedError:
                continue
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
        step("runtime", "exited", f"container {cid}: status {code}", "")
        cg = c._cgroup(st)
        if cg and cg.oom_kills():
            print(f"ocilearn: container {cid} was OOM-killed: the kernel's OOM killer killed {cg.oom_kills()} process(es) "
                  "at the memory cgroup limit (linux.resources.memory.limit)", file=sys.stderr)
        if error:
            print(f"ocilearn: error: {error}", file=sys.stderr)
        return code
    finally:
        for s, h in old.items():
            signal.signal(s, h)
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
    ``/proc/PID/ns``. The init (or the --init reaper) is non-dumpable, so a rootless runtime
    may not open them (ptrace(2) access mode checking): it then uses the monitor's
    namespaces, which are the same ones (``pid_for_children`` for the PID namespace; the
    cgroup namespace, made by the init alone, is not joined then). Raises
    RuntimeSpecError."""
    o = st.get("ocilearn", {})
    types = o.get("namespaces", [])
    out: list[tuple[str, int]] = []
    try:
        try:
            for t in types:
                out.append((t, os.open(f"/proc/{st['pid']}/ns/{sc.NAMESPACES[t][1]}", os.O_RDONLY | os.O_CLOEXEC)))
            return out
        except PermissionError:
            monitor = o.get("monitor_pid")
            if not monitor:
                raise
        for _t, fd in out:
            os.close(fd)
        out = []
        for t in types:
            if t == "cgroup":
                continue
            name = "pid_for_children" if t == "pid" else sc.NAMESPACES[t][1]
            out.append((t, os.open(f"/proc/{monitor}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)))
        return out
    except OSError as e:
        for _t, fd in out:
            os.close(fd)
        raise RuntimeSpecError(f"cannot open the namespaces of container {st.get('id')}: {e}")


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


def _proxy_pty(master: int, monitor: int) -> None:
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


def exec_in(root: str, cid: str, args: list[str], *, env: list[str] | None = None, cwd: str | None = None, user: str | None = None,
            tty: bool = False, detach: bool = False) -> int:
    """``runc exec``: run another process in the container's namespaces and cgroup (works
    on a created container too). Returns its exit code (128+N for a signal)."""
    from . import process as pr

    c = Container.load(root, cid)
    st = c.read()
    status = c.status(st)
    if status not in ("created", "running"):
        raise InvalidState(f"cannot exec in container {cid}: it is {status}")
    o = st["ocilearn"]
    proc = dict(o.get("process") or {})
    proc["args"] = list(args)
    proc["terminal"] = tty
    base_env = list(proc.get("env") or [])
    for e in env or []:
        k = e.split("=", 1)[0]
        base_env = [x for x in base_env if x.split("=", 1)[0] != k] + [e]
    proc["env"] = base_env
    if cwd:
        proc["cwd"] = cwd
    if user:
        proc["user"] = {**(proc.get("user") or {}), **parse_exec_user(user), "additionalGids": []}
    check_process(proc, f"exec in {cid}")
    sfilter = spec.prepare({"linux": {"seccomp": o.get("seccomp")}})["seccomp"]
    fds = _open_container_ns(st)
    cg = c._cgroup(st)
    master = None
    ours, theirs = _socketpair() if tty else (None, None)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # before joining anything: container root must not open this host Python's
            # /proc/PID/exe, environ or mem (CVE-2019-5736; hostile report #0)
            sc.set_dumpable(False)
            sc.scrub_environ()
            if ours is not None:
                ours.close()
            if cg:
                cg.add(0)
            nsmod.join(fds)
            child = os.fork()
            if child == 0:
                try:
                    if theirs is not None:
                        # the pty comes from the container's own devpts (like runc), so
                        # `tty` inside names a /dev/pts/N that exists there
                        m, slave, path = pr.open_pty()
                        _send(theirs, {"t": "pty", "path": path}, [m])
                        os.close(m)
                        _recv(theirs)  # the window size is set: go
                        theirs.close()
                        pr.become_tty_session(slave)
                    pr.exec_process(proc, seccomp=sfilter)
                except BaseException as e:  # noqa: BLE001
                    print(f"ocilearn: exec: {e}", file=sys.stderr)
                finally:
                    os._exit(127)
            if theirs is not None:
                theirs.close()
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            for s in FORWARD:
                signal.signal(s, lambda n, f: _forward(child, n))
            _, status = os.waitpid(child, 0)
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
        except BaseException as e:  # noqa: BLE001
            print(f"ocilearn: exec: {e}", file=sys.stderr)
        finally:
            os._exit(code)
    for _t, fd in fds:
        os.close(fd)
    if ours is not None:
        theirs.close()
        msg, got = _recv(ours)
        if not msg or not got:
            ours.close()
            raise ContainerError(f"exec in {cid}: no pseudo-terminal came back from the container")
        master = got[0]
        _copy_winsize(master)
        _send(ours, {"t": "go"})
        ours.close()
    if detach:
        return 0
    old = {s: signal.signal(s, lambda n, f: _forward(pid, n)) for s in FORWARD}
    try:
        if master is not None:
            _proxy_pty(master, pid)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code
    finally:
        for s, h in old.items():
            signal.signal(s, h)
