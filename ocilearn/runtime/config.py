"""``config.json`` checked before anything is created (runtime-spec config.md,
config-linux.md): types and ranges of the process, the cgroups path, sysctls. An error
names the file and the field; nothing is left behind because nothing was made yet.
"""

from __future__ import annotations

import json
import os

from ..core.errors import RuntimeSpecError
from . import spec


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
