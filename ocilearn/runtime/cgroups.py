"""Control groups: put the container in its own cgroup and apply ``linux.resources``
(runtime-spec config-linux.md "Control groups"; kernel docs cgroup-v1/*.txt and
admin-guide/cgroup-v2.rst).

Two layouts exist:

- **cgroup v1** (this course's CI machine, older distributions): one hierarchy per
  controller, ``/sys/fs/cgroup/memory``, ``/sys/fs/cgroup/pids``, ``/sys/fs/cgroup/cpu,cpuacct``…
  The container gets a directory in *each* hierarchy.
- **cgroup v2** (most current distributions): one unified tree at ``/sys/fs/cgroup``; the
  container gets one directory, and the controllers must be enabled in every ancestor's
  ``cgroup.subtree_control``.

:class:`Cgroup` works on any directory tree shaped like cgroupfs (``base``), so both
paths are unit-tested on plain directories and really used where mounted.
"""

from __future__ import annotations

import errno
import os
import signal
import time

from . import step

CGROUP_ROOT = "/sys/fs/cgroup"


def detect(base: str = CGROUP_ROOT) -> tuple[int, dict[str, str]]:
    """Which cgroup version manages ``base`` and its hierarchies.

    Returns ``(2, {"": base})`` for a unified tree (``cgroup.controllers`` at the top), or
    ``(1, {name: dir})`` for v1 (``{"memory": "/sys/fs/cgroup/memory", "cpu,cpuacct": …}``);
    a hybrid host's ``unified`` v2 mount is left out (no controllers that limit)."""
    if os.path.exists(os.path.join(base, "cgroup.controllers")):
        return 2, {"": base}
    h: dict[str, str] = {}
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return 0, {}
    for name in names:
        p = os.path.join(base, name)
        if name == "unified" or os.path.islink(p) or not os.path.isdir(p):
            continue
        if os.path.exists(os.path.join(p, "cgroup.procs")):
            h[name] = p
    return (1, h) if h else (0, {})


def shares_to_weight(shares: int) -> int:
    """cgroup v1 ``cpu.shares`` (2..262144) to v2 ``cpu.weight`` (1..10000), the
    conversion runc and crun use (runtime-spec cgroup v2 mapping)."""
    return 1 + ((shares - 2) * 9999) // 262142 if shares else 100


def _write(path: str, value: str) -> None:
    # O_CREAT is a no-op on cgroupfs (files exist or cannot be made) and lets the unit
    # tests use plain directory trees shaped like cgroupfs
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


#: device cgroup rules every container gets (runc's default allow list)
DEFAULT_DEVICE_RULES = ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm"]


class Cgroup:
    """The container's cgroup: ``paths`` maps a hierarchy name (``"memory"`` … for v1,
    ``""`` for v2) to the container's directory in it.

    Build with :meth:`for_container`; then :meth:`create`, :meth:`apply`,
    :meth:`add`, :meth:`pids`, :meth:`oom_kills`, :meth:`destroy`. (A plain class, not a
    dataclass: importing dataclasses costs the runtime's start-up ~10 ms.)"""

    def __init__(self, version: int, paths: dict[str, str] | None = None, base: str = CGROUP_ROOT) -> None:
        self.version, self.paths, self.base = version, dict(paths or {}), base

    def __repr__(self) -> str:
        return f"Cgroup(version={self.version}, paths={self.paths!r})"

    @classmethod
    def for_container(cls, cgroups_path: str | None, container_id: str, base: str = CGROUP_ROOT) -> Cgroup:
        """The cgroup for a container: ``linux.cgroupsPath`` (relative to each hierarchy
        root) or ``/ocilearn-ID``. Raises OSError(ENOENT) when no cgroupfs is mounted."""
        version, hier = detect(base)
        if not version:
            raise OSError(errno.ENOENT, "no cgroup filesystem mounted", base)
        rel = (cgroups_path or f"/ocilearn-{container_id}").lstrip("/")
        if ":" in rel and not rel.startswith("/"):  # systemd form slice:prefix:name
            rel = "ocilearn-" + rel.replace(":", "-")
        # cleaned as if rooted, like runc's CleanPath: "../../../../tmp/x" stays inside the
        # hierarchy (hostile report #2); load_config refuses such paths before this anyway
        rel = os.path.normpath("/" + rel).lstrip("/")
        if not rel or rel == ".":
            raise OSError(errno.EINVAL, "linux.cgroupsPath names the root cgroup", cgroups_path)
        paths = {name: os.path.join(h, rel) for name, h in hier.items()}
        for name, p in paths.items():
            if os.path.commonpath([p, hier[name]]) != hier[name] or p == hier[name]:
                raise OSError(errno.EINVAL, "linux.cgroupsPath leaves the cgroup hierarchy", cgroups_path)
        return cls(version, paths, base)

    def create(self) -> None:
        """mkdir the container's cgroup directories (v2: enable memory, pids, cpu in every
        ancestor's subtree_control; v1 cpuset: copy cpus/mems from the parent)."""
        for name, p in self.paths.items():
            root = os.path.join(self.base, name) if name else self.base
            if self.version == 2:
                self._enable_v2_controllers(root, p)
            os.makedirs(p, exist_ok=True)
            if name == "cpuset":
                for f in ("cpuset.cpus", "cpuset.mems"):
                    self._fill_cpuset(root, p, f)
        step("runtime", "create cgroup", ", ".join(self.paths.values()), "mkdir /sys/fs/cgroup/…/ID")

    @staticmethod
    def _fill_cpuset(root: str, p: str, f: str) -> None:
        chain = [p]
        while chain[-1] != root and chain[-1] != "/":
            chain.append(os.path.dirname(chain[-1]))
        for d in reversed(chain[:-1]):
            try:
                current = _read(os.path.join(d, f)).strip()
            except FileNotFoundError:
                current = ""
            if not current:
                _write(os.path.join(d, f), _read(os.path.join(os.path.dirname(d), f)).strip())

    @staticmethod
    def _enable_v2_controllers(root: str, p: str) -> None:
        try:
            available = set(_read(os.path.join(root, "cgroup.controllers")).split())
        except OSError:
            return
        want = [c for c in ("cpu", "memory", "pids", "cpuset") if c in available]
        rel = os.path.relpath(os.path.dirname(p), root)
        d = root
        for comp in ["."] + ([] if rel == "." else rel.split("/")):
            d = os.path.normpath(os.path.join(d, comp))
            os.makedirs(d, exist_ok=True)
            try:
                _write(os.path.join(d, "cgroup.subtree_control"), " ".join(f"+{c}" for c in want))
            except OSError:
                pass

    def files(self, resources: dict | None) -> list[tuple[str, str]]:
        """The (file path, value) writes that apply ``linux.resources``, in order — pure,
        so the v1 and v2 mappings are unit-testable. Bytes for memory, a count for pids,
        microseconds for cpu quota/period."""
        r = resources or {}
        out: list[tuple[str, str]] = []
        mem, pids, cpu = r.get("memory") or {}, r.get("pids") or {}, r.get("cpu") or {}
        if self.version == 1:
            def at(ctrl: str, f: str, v) -> None:
                for name, p in self.paths.items():
                    if ctrl in name.split(","):
                        out.append((os.path.join(p, f), str(v)))
                        return
            if mem.get("limit") is not None:
                at("memory", "memory.limit_in_bytes", mem["limit"])
            if mem.get("reservation") is not None:
                at("memory", "memory.soft_limit_in_bytes", mem["reservation"])
            if mem.get("swap") is not None:
                at("memory", "memory.memsw.limit_in_bytes", mem["swap"])
            if pids.get("limit") is not None:
                at("pids", "pids.max", "max" if pids["limit"] <= 0 else pids["limit"])
            if cpu.get("shares"):
                at("cpu", "cpu.shares", cpu["shares"])
            if cpu.get("period"):
                at("cpu", "cpu.cfs_period_us", cpu["period"])
            if cpu.get("quota") is not None:
                at("cpu", "cpu.cfs_quota_us", cpu["quota"])
            if cpu.get("cpus"):
                at("cpuset", "cpuset.cpus", cpu["cpus"])
            if cpu.get("mems"):
                at("cpuset", "cpuset.mems", cpu["mems"])
            if r.get("devices") is not None:
                at("devices", "devices.deny", "a")
                for rule in DEFAULT_DEVICE_RULES:
                    at("devices", "devices.allow", rule)
                for d in r["devices"]:
                    if d.get("allow") is False and d.get("type", "a") == "a" and d.get("major") is None:
                        continue  # "deny all" is the starting point already
                    rule = "{} {}:{} {}".format(d.get("type", "a"), "*" if d.get("major") is None else d["major"],
                                                "*" if d.get("minor") is None else d["minor"], d.get("access", "rwm"))
                    at("devices", "devices.allow" if d.get("allow") else "devices.deny", rule if d.get("type", "a") != "a" else "a")
        else:
            p = self.paths[""]
            if mem.get("limit") is not None:
                out.append((os.path.join(p, "memory.max"), "max" if mem["limit"] < 0 else str(mem["limit"])))
                if mem.get("swap") is not None:
                    swap = mem["swap"] - mem["limit"] if mem["swap"] > 0 else mem["swap"]
                    out.append((os.path.join(p, "memory.swap.max"), "max" if swap < 0 else str(swap)))
            if mem.get("reservation") is not None:
                out.append((os.path.join(p, "memory.low"), str(mem["reservation"])))
            if pids.get("limit") is not None:
                out.append((os.path.join(p, "pids.max"), "max" if pids["limit"] <= 0 else str(pids["limit"])))
            if cpu.get("shares"):
                out.append((os.path.join(p, "cpu.weight"), str(shares_to_weight(cpu["shares"]))))
            if cpu.get("quota") is not None or cpu.get("period"):
                q = cpu.get("quota")
                out.append((os.path.join(p, "cpu.max"), f"{'max' if q is None or q < 0 else q} {cpu.get('period') or 100000}"))
            if cpu.get("cpus"):
                out.append((os.path.join(p, "cpuset.cpus"), cpu["cpus"]))
            if cpu.get("mems"):
                out.append((os.path.join(p, "cpuset.mems"), cpu["mems"]))
        return out

    def apply(self, resources: dict | None) -> None:
        """Write the limits of ``linux.resources`` (see :meth:`files`). Raises OSError
        naming the cgroup file that refused the value."""
        for path, value in self.files(resources):
            try:
                _write(path, value)
            except OSError as e:
                raise OSError(e.errno, f"cgroup: cannot write {value!r}: {e.strerror}", path)
            step("runtime", "cgroup limit", f"{os.path.basename(path)} = {value}", f"echo {value} > {path}")

    def add(self, pid: int = 0, paths: dict[str, str] | None = None) -> None:
        """Move process ``pid`` (0 = the caller) into every hierarchy of the cgroup (or
        into ``paths``, e.g. back to where it came from, see :meth:`of_process`)."""
        for p in (paths or self.paths).values():
            try:
                _write(os.path.join(p, "cgroup.procs"), str(pid))
            except OSError:
                if paths is None:
                    raise

    def of_process(self, pid: int | str = "self") -> dict[str, str]:
        """The directories, in the same hierarchies as :attr:`paths`, of the cgroups that
        ``pid`` belongs to now (from ``/proc/PID/cgroup``: ``ID:controllers:/path``)."""
        wanted: dict[frozenset, str] = {}
        for name in self.paths:
            key = frozenset(["name=systemd"] if name == "systemd" else name.split(",")) if name else frozenset([""])
            wanted[key] = name
        out = {}
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _id, ctrls, path = line.rstrip("\n").split(":", 2)
                key = frozenset(ctrls.split(","))
                for k, name in wanted.items():
                    if k & key or (k == frozenset([""]) and ctrls == ""):
                        root = os.path.join(self.base, name) if name else self.base
                        out[name] = os.path.join(root, path.lstrip("/"))
        return out

    def pids(self) -> list[int]:
        """PIDs (host namespace) of every process in the cgroup, sorted."""
        found: set[int] = set()
        for p in self.paths.values():
            try:
                found.update(int(x) for x in _read(os.path.join(p, "cgroup.procs")).split())
            except OSError:
                pass
        return sorted(found)

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer killed in this cgroup (v1
        ``memory.oom_control`` / v2 ``memory.events``: ``oom_kill N``)."""
        for name, p in self.paths.items():
            if self.version == 1 and "memory" not in name.split(","):
                continue
            f = os.path.join(p, "memory.oom_control" if self.version == 1 else "memory.events")
            try:
                for line in _read(f).splitlines():
                    k, _, v = line.partition(" ")
                    if k == "oom_kill":
                        return int(v)
            except OSError:
                pass
        return 0

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to every process in the cgroup."""
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def destroy(self, timeout: float = 5.0) -> None:
        """Kill what is left and rmdir every directory of the cgroup (retrying while the
        last processes exit). Missing directories are fine. Raises OSError(EBUSY) after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        for p in self.paths.values():
            while True:
                try:
                    os.rmdir(p)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno not in (errno.EBUSY, errno.ENOTEMPTY) or time.monotonic() > deadline:
                        raise
                    self.kill_all()
                    time.sleep(0.0005)  # the last task is still being released
        step("runtime", "remove cgroup", ", ".join(self.paths.values()), "rmdir /sys/fs/cgroup/…/ID")
