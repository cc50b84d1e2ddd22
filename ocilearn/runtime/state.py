"""A container's state: its directory under ``--root`` and what the kernel says about
its init (runtime-spec runtime.md "State"; runc keeps the same under /run/runc/ID).

``ROOT/ID/state.json`` holds the runtime-spec state (ociVersion, id, status, pid,
bundle, annotations) plus ocilearn's bookkeeping under ``"ocilearn"``: the init's start
time, the cgroup, the hooks still to run. ``ROOT/ID/exec.fifo`` exists between create
and start. The *status* is never read from the file: it is worked out each time from the
init's PID and start time (/proc/PID/stat, proc(5)), the fifo and the cgroup freezer —
every command is a fresh process, and no runtime process stays behind to remember.
"""

from __future__ import annotations

import os
import select
import stat
import time

from ..core import syscalls as sc
from ..core.errors import ContainerError, ContainerNotFound
from .jsonio import dumps, loads

#: runtime-spec runtime.md "State" statuses, plus runc's "paused" (a frozen cgroup)
STATUSES = ("creating", "created", "running", "paused", "stopped")


ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


OCI_VERSION = "1.0.2"


def rfc3339_nano(ns: int) -> str:
    """A UTC time in nanoseconds since the epoch as Go's time.RFC3339Nano writes it
    (runc's "created"): fraction without trailing zeros, ``Z``."""
    frac = f"{ns % 10**9:09d}".rstrip("0")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + (f".{frac}" if frac else "") + "Z"


def default_root() -> str:
    """``/run/ocilearn`` as root, else ``$XDG_RUNTIME_DIR/ocilearn`` (runc's convention),
    else ``/tmp/ocilearn-UID``."""
    if os.geteuid() == 0:
        return "/run/ocilearn"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, "ocilearn")
    root = f"/tmp/ocilearn-{os.geteuid()}"
    # /tmp is shared: another user may have made this directory first, to watch or plant
    # state. Accept it only when it is ours, not a symlink, and closed to others — what
    # the XDG Base Directory Specification asks of $XDG_RUNTIME_DIR (owned by the user,
    # mode 0700).
    try:
        os.mkdir(root, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise ContainerError(f"state root {root} is not a private directory of uid {os.geteuid()} (owner {st.st_uid}, "
                             f"mode {stat.S_IMODE(st.st_mode):o}): remove it, or set XDG_RUNTIME_DIR or --root")
    return root


def check_id(cid: object) -> str:
    """A container ID as runc allows it: letters, digits and ``_+-.``, not ``.``/``..``.
    Checked for EVERY command, not only ``create``: the ID becomes a directory under the
    state root that ``delete`` removes, so ``..`` or ``/abs/path`` must never reach a path.
    Raises ContainerError."""
    if not isinstance(cid, str) or not cid or set(cid) - ID_CHARS or cid in (".", "..") or len(cid) > 1024:
        raise ContainerError(f"invalid container id {cid!r}: use letters, digits and _+-. (not '.' or '..')")
    return cid


def fnv1a(text: str) -> int:
    """32-bit FNV-1a hash (a short, stable tag; no hashlib import on the start-up path)."""
    h = 0x811C9DC5
    for b in text.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def start_time(pid: int) -> tuple[int, str] | None:
    """(start time in clock ticks, state letter) of ``pid`` from /proc/PID/stat, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    return int(rest[19]), rest[0].decode()


def alive(pid: int, start: int | None) -> bool:
    info = start_time(pid) if pid > 0 else None
    return info is not None and info[1] not in ("Z", "X") and (start is None or info[0] == start)


def wait_gone(pid: int, start: int | None, timeout: float) -> bool:
    """Wait until ``pid`` (not necessarily our child) has exited, with pidfd_open(2)."""
    if not alive(pid, start):
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
            if not alive(pid, start):
                return True
        return not alive(pid, start)
    finally:
        os.close(fd)


def reap(pid: int, block: bool = True) -> int | None:
    """waitpid(2) on our child ``pid``: its raw wait status, None when it has not exited
    (``block=False``) or is not our child."""
    try:
        got, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return None
    return status if got else None


def exit_code(status: int) -> int:
    """A shell-style exit code from a wait status: the code, or 128+N for signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def children(pid: int) -> list[int]:
    """The children of ``pid`` (``/proc/PID/task/PID/children``, proc(5)), or []."""
    if not pid:
        return []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def atomic_json(path: str, obj: dict) -> None:
    """Write ``obj`` as JSON to a temporary file beside ``path`` and rename it over
    ``path`` (rename(2) is atomic: a reader sees the old or the new state, never half).
    Plain os.write: a text file object costs more than the write itself."""
    data = memoryview(dumps(obj).encode())
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)
    os.rename(tmp, path)


def atomic_text(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def rmtree(path: str) -> None:
    """Remove a container's state directory: its files (state.json, exec.fifo, hosts) and
    itself. Anything else found there (a directory someone put in) goes with
    shutil.rmtree — imported only then: shutil costs the start-up path ~2 ms."""
    if os.path.islink(path):  # never empty what a link names: remove the link only
        os.unlink(path)
        return
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(path, name))
        except FileNotFoundError:
            pass
        except OSError:
            import shutil

            shutil.rmtree(os.path.join(path, name), ignore_errors=True)
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def default_cgroup(root: str, cid: str):
    """The cgroup ocilearn gives a container without linux.cgroupsPath, or None."""
    from .cgroups import Cgroup

    try:
        return Cgroup.for_container(f"/ocilearn-{fnv1a(os.path.abspath(root)):08x}-{cid}", cid)
    except OSError:
        return None


def check_cgroup_paths(cg) -> None:
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
        check_cgroup_paths(o.get("cgroup"))
    except ValueError as e:
        bad("ocilearn.cgroup", str(e))


class ContainerState:
    """One container's state directory ``root/id`` and the kernel's view of its init.
    :class:`.container.Container` adds the lifecycle (create, start, kill, delete …)."""

    def __init__(self, id: str, root: str) -> None:  # noqa: A002 - runtime-spec calls it id
        self.id, self.root = id, root
        self._status: int | None = None  # the init's wait status, once this process reaped it
        self._pty_master: int | None = None  # foreground run without --console-socket

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, root={self.root!r})"

    @property
    def dir(self) -> str:
        return os.path.join(self.root, self.id)

    @property
    def fifo(self) -> str:
        return os.path.join(self.dir, "exec.fifo")

    def read(self) -> dict:
        """state.json as a dict, its fields checked (:func:`check_state`). Raises
        ContainerNotFound, or ContainerError naming the file and field when it is corrupt
        (``delete --force`` still cleans up then)."""
        path = os.path.join(self.dir, "state.json")
        try:
            with open(path) as f:
                st = loads(f.read())
        except FileNotFoundError:
            raise ContainerNotFound(f"container {self.id!r} does not exist in {self.root}")
        except (OSError, ValueError) as e:
            raise ContainerError(f"{path} is corrupt (unreadable: {e}); `ocilearn delete --force {self.id}` removes what is left")
        check_state(st, path, self.id)
        return st

    def write(self, st: dict) -> None:
        atomic_json(os.path.join(self.dir, "state.json"), st)

    @classmethod
    def load(cls, root: str, cid: str):
        """The container ``cid`` under ``root``; raises ContainerNotFound."""
        c = cls(check_id(cid), root)
        try:
            st = os.lstat(c.dir)  # never followed: delete would empty whatever a symlink names
        except FileNotFoundError:
            raise ContainerNotFound(f"container {cid!r} does not exist in {root}") from None
        except NotADirectoryError:
            raise ContainerNotFound(f"container {cid!r} does not exist in {root} ({root} is not a directory)") from None
        except PermissionError as e:  # another user's state root (0700): say so, never "not there"
            raise ContainerError(f"container {cid!r} in {root}: {e.strerror} (the state directory belongs to "
                                 "another user; use your own --root)") from None
        if stat.S_ISLNK(st.st_mode):
            raise ContainerError(f"{c.dir}: the container's state directory is a symbolic link; refused (someone who can "
                                 "write the state root put it there; remove the link)")
        if not stat.S_ISDIR(st.st_mode):
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
            return "creating" if alive(o.get("creator_pid", 0), o.get("creator_start")) else "stopped"
        if not alive(st.get("pid", 0), o.get("init_start")):
            return "stopped"
        if os.path.exists(self.fifo):
            return "created"
        cg = self.cgroup(st)
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

    def cgroup(self, st: dict):
        cg = st.get("ocilearn", {}).get("cgroup")
        if not cg:
            return None
        from .cgroups import Cgroup

        return Cgroup(cg["version"], cg["paths"], cg.get("base", "/sys/fs/cgroup"))

    def pids(self, st: dict | None = None) -> list[int]:
        """Host PIDs of the container's processes: from its cgroup, or (rootless, no
        cgroup) every process in the init's PID namespace."""
        st = st or self.read()
        cg = self.cgroup(st)
        if cg:
            return cg.pids()
        init = st.get("pid", 0)
        target = None
        for pid in [init, *children(init)]:
            try:
                target = os.readlink(f"/proc/{pid}/ns/pid")
                break
            except OSError:  # a non-dumpable init (the --init reaper): ask its child
                continue
        if target is None:
            return [init] if init and alive(init, st["ocilearn"].get("init_start")) else []
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if os.readlink(f"/proc/{d}/ns/pid") == target:
                        out.append(int(d))
                except OSError:
                    pass
        if init and init not in out and alive(init, st["ocilearn"].get("init_start")):
            out.append(init)  # non-dumpable: its ns link is not readable to a rootless runtime
        return sorted(out)

    def _salvage(self) -> tuple[dict, bool]:
        """What can be trusted of a corrupt state.json, for ``delete --force``: its cgroup
        if well-formed, else the default cgroup of this root and ID if it exists (its
        processes are killed through it); the init's PID only when its start time matches.
        Returns (state, whether anything was found)."""
        try:
            with open(os.path.join(self.dir, "state.json")) as f:
                raw = loads(f.read())
        except (OSError, ValueError):
            raw = {}
        raw = raw if isinstance(raw, dict) else {}
        o = raw.get("ocilearn") if isinstance(raw.get("ocilearn"), dict) else {}
        salvaged: dict = {}
        try:
            check_cgroup_paths(o.get("cgroup"))
            if o.get("cgroup"):
                salvaged["cgroup"] = o["cgroup"]
        except ValueError:
            pass
        if "cgroup" not in salvaged:
            cg = default_cgroup(self.root, self.id)
            if cg is not None and any(os.path.isdir(p) for p in cg.paths.values()):
                salvaged["cgroup"] = {"version": cg.version, "paths": cg.paths, "base": cg.base}
        pid, start = raw.get("pid"), o.get("init_start")
        if type(pid) is int and pid > 0 and type(start) is int and alive(pid, start):
            salvaged["init_start"] = start
        else:
            pid = 0
        return {"id": self.id, "status": "stopped", "pid": pid, "ocilearn": salvaged}, bool(pid or salvaged)


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
        c = ContainerState(name, root)
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
