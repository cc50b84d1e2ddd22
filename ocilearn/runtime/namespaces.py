"""Namespaces: which to create, which to join, uid/gid mappings (runtime-spec
config-linux.md "Namespaces", "User namespace mappings"; namespaces(7),
user_namespaces(7)).

A namespace shows up as ``/proc/PID/ns/TYPE``, a magic link like ``pid:[4026532290]``:
two processes share a namespace exactly when those inode numbers are equal.
"""

from __future__ import annotations

import os

from ..core import syscalls as sc
from ..core.errors import RuntimeSpecError
from . import step

#: order in which existing namespaces are joined: the user namespace first (it grants the
#: capabilities for the others), the mount namespace last (it changes / and the cwd).
JOIN_ORDER = ["user", "ipc", "uts", "network", "pid", "cgroup", "mount"]


def plan(namespaces: list[dict] | None) -> tuple[int, list[tuple[str, str]]]:
    """From ``linux.namespaces``, the ``CLONE_NEW*`` flags to unshare and the
    ``(type, path)`` pairs to join with setns. Raises RuntimeSpecError on an unknown type or
    a duplicate."""
    flags, joins, seen = 0, [], set()
    for ns in namespaces or []:
        t = ns.get("type")
        if t not in sc.NAMESPACES:
            raise RuntimeSpecError(f"config.json linux.namespaces: unknown namespace type {t!r} (config-linux.md 'Namespaces': {', '.join(sc.NAMESPACES)})")
        if t in seen:
            raise RuntimeSpecError(f"config.json linux.namespaces: {t!r} listed twice")
        seen.add(t)
        if ns.get("path"):
            joins.append((t, ns["path"]))
        else:
            flags |= sc.NAMESPACES[t][0]
    joins.sort(key=lambda j: JOIN_ORDER.index(j[0]))
    return flags, joins


def open_ns(paths: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """Open each namespace file (before joining any: after joining a mount namespace the
    paths would resolve in it). Returns ``(type, fd)`` pairs."""
    out = []
    for t, p in paths:
        try:
            out.append((t, os.open(p, os.O_RDONLY | os.O_CLOEXEC)))
        except OSError as e:
            raise RuntimeSpecError(f"cannot open {t} namespace {p}: {e.strerror}")
    return out


def join(fds: list[tuple[str, int]]) -> None:
    """setns(2) into each open namespace, in :data:`JOIN_ORDER`; closes the fds."""
    for t, fd in sorted(fds, key=lambda j: JOIN_ORDER.index(j[0])):
        sc.setns(fd, sc.NAMESPACES[t][0])
        os.close(fd)
        step("runtime", f"setns {t}", f"fd {fd}", f"nsenter --{t}")


def ns_ids(pid: int | str = "self") -> dict[str, str]:
    """``{"pid": "pid:[4026531836]", …}`` from ``/proc/PID/ns`` (readlink of each entry)."""
    d = f"/proc/{pid}/ns"
    out = {}
    for name in sorted(os.listdir(d)):
        try:
            out[name] = os.readlink(os.path.join(d, name))
        except OSError:
            pass
    return out


def default_rootless_mappings() -> tuple[list[dict], list[dict]]:
    """The mapping rootless runc and ``unshare -r`` use: container root = the caller's uid
    and gid, one id each (what an unprivileged process may write without newuidmap)."""
    return ([{"containerID": 0, "hostID": os.geteuid(), "size": 1}], [{"containerID": 0, "hostID": os.getegid(), "size": 1}])


def write_id_maps(pid: int, uid_mappings: list[dict], gid_mappings: list[dict]) -> None:
    """Write ``/proc/PID/uid_map`` and ``gid_map`` (user_namespaces(7)). Unprivileged, only
    the caller's own uid/gid may be mapped, and ``setgroups`` must be denied first; this is
    done automatically when not root. Raises RuntimeSpecError explaining the limit."""
    rootless = os.geteuid() != 0

    def fmt(ms: list[dict]) -> str:
        return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in ms)

    if rootless:
        bad = [m for m in uid_mappings if m["hostID"] != os.geteuid() or m["size"] != 1] + [m for m in gid_mappings if m["hostID"] != os.getegid() or m["size"] != 1]
        if bad:
            raise RuntimeSpecError(
                f"rootless: cannot map {bad}: an unprivileged user may map only its own uid {os.geteuid()} and gid "
                f"{os.getegid()} with size 1 (user_namespaces(7); wider ranges need newuidmap/newgidmap and /etc/subuid)")
        with open(f"/proc/{pid}/setgroups", "w") as f:
            f.write("deny")
    for name, ms in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(fmt(ms))
        except OSError as e:
            raise RuntimeSpecError(f"cannot write /proc/{pid}/{name} {fmt(ms)!r}: {e.strerror}")
    step("runtime", "uid/gid map", f"uid {fmt(uid_mappings).strip()}; gid {fmt(gid_mappings).strip()}", f"newuidmap {pid} …")


def in_mapping(uid: int, mappings: list[dict]) -> bool:
    """True when container id ``uid`` is inside one of the ``mappings`` ranges."""
    return any(m["containerID"] <= uid < m["containerID"] + m["size"] for m in mappings)


def host_id(cid: int, mappings: list[dict] | None) -> int:
    """The host id that container id ``cid`` maps to in ``mappings`` (uidMappings or
    gidMappings, user_namespaces(7)), or -1 when it is not mapped (chown(2): unchanged)."""
    for m in mappings or []:
        if m["containerID"] <= cid < m["containerID"] + m["size"]:
            return m["hostID"] + cid - m["containerID"]
    return -1
