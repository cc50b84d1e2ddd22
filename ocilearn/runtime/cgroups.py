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

import _signal as signal  # `signal` without its enum classes (start-up time, see container.py)
import errno
import os
import time

from ..core.errors import RuntimeSpecError
from . import step
from .devices import DEFAULT_DEVICE_RULES

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


def _dev(d: dict) -> str:
    return f"{d['major']}:{d['minor']}"


def blkio_to_io_weight(weight: int) -> int:
    """cgroup v1 ``blkio.weight`` (10..1000) to v2 ``io.weight`` (1..10000), runc's
    ConvertBlkIOToIOWeightValue."""
    return 1 + (weight - 10) * 9999 // 990 if weight else 0


def _mapping(version: int, r: dict):
    """``(field, controller, file name, value)`` for every field of ``linux.resources``
    (config-linux.md "Control groups"; kernel cgroup-v1/*.rst, admin-guide/cgroup-v2.rst;
    runc libcontainer/cgroups/fs and fs2). Raises RuntimeSpecError for a field the cgroup
    ``version`` has no file for, naming the field."""
    F = "linux.resources"
    mem, pids, cpu = r.get("memory") or {}, r.get("pids") or {}, r.get("cpu") or {}
    blk, net = r.get("blockIO") or {}, r.get("network") or {}

    def none(field: str):
        raise RuntimeSpecError(f"{F}.{field}: cgroup v{version} has no file for it on this host "
                               f"({'cgroup v1 only' if version == 2 else 'cgroup v2 only'}); remove it from config.json")

    if version == 1:
        if mem.get("limit") is not None:
            yield f"{F}.memory.limit", "memory", "memory.limit_in_bytes", str(mem["limit"])
        if mem.get("reservation") is not None:
            yield f"{F}.memory.reservation", "memory", "memory.soft_limit_in_bytes", str(mem["reservation"])
        if mem.get("swap") is not None:
            yield f"{F}.memory.swap", "memory", "memory.memsw.limit_in_bytes", str(mem["swap"])
        if mem.get("kernel") is not None:
            yield f"{F}.memory.kernel", "memory", "memory.kmem.limit_in_bytes", str(mem["kernel"])
        if mem.get("kernelTCP") is not None:
            yield f"{F}.memory.kernelTCP", "memory", "memory.kmem.tcp.limit_in_bytes", str(mem["kernelTCP"])
        if mem.get("swappiness") is not None:
            if not 0 <= mem["swappiness"] <= 100:
                raise RuntimeSpecError(f"{F}.memory.swappiness = {mem['swappiness']}: must be from 0 to 100 (memory.swappiness)")
            yield f"{F}.memory.swappiness", "memory", "memory.swappiness", str(mem["swappiness"])
        if mem.get("disableOOMKiller"):
            yield f"{F}.memory.disableOOMKiller", "memory", "memory.oom_control", "1"
        if mem.get("useHierarchy") is not None:
            yield f"{F}.memory.useHierarchy", "memory", "memory.use_hierarchy", "1" if mem["useHierarchy"] else "0"
        if pids.get("limit") is not None:
            yield f"{F}.pids.limit", "pids", "pids.max", "max" if pids["limit"] <= 0 else str(pids["limit"])
        if cpu.get("shares"):
            yield f"{F}.cpu.shares", "cpu", "cpu.shares", str(cpu["shares"])
        if cpu.get("period"):
            yield f"{F}.cpu.period", "cpu", "cpu.cfs_period_us", str(cpu["period"])
        if cpu.get("quota") is not None:
            yield f"{F}.cpu.quota", "cpu", "cpu.cfs_quota_us", str(cpu["quota"])
        if cpu.get("burst") is not None:
            yield f"{F}.cpu.burst", "cpu", "cpu.cfs_burst_us", str(cpu["burst"])
        if cpu.get("realtimePeriod"):
            yield f"{F}.cpu.realtimePeriod", "cpu", "cpu.rt_period_us", str(cpu["realtimePeriod"])
        if cpu.get("realtimeRuntime") is not None:
            yield f"{F}.cpu.realtimeRuntime", "cpu", "cpu.rt_runtime_us", str(cpu["realtimeRuntime"])
        if cpu.get("idle") is not None:
            yield f"{F}.cpu.idle", "cpu", "cpu.idle", str(cpu["idle"])
        if cpu.get("cpus"):
            yield f"{F}.cpu.cpus", "cpuset", "cpuset.cpus", cpu["cpus"]
        if cpu.get("mems"):
            yield f"{F}.cpu.mems", "cpuset", "cpuset.mems", cpu["mems"]
        if blk.get("weight") is not None:
            yield f"{F}.blockIO.weight", "blkio", "blkio.weight", str(blk["weight"])
        if blk.get("leafWeight") is not None:
            yield f"{F}.blockIO.leafWeight", "blkio", "blkio.leaf_weight", str(blk["leafWeight"])
        for i, d in enumerate(blk.get("weightDevice") or []):
            if d.get("weight") is not None:
                yield f"{F}.blockIO.weightDevice[{i}]", "blkio", "blkio.weight_device", f"{_dev(d)} {d['weight']}"
            if d.get("leafWeight") is not None:
                yield f"{F}.blockIO.weightDevice[{i}]", "blkio", "blkio.leaf_weight_device", f"{_dev(d)} {d['leafWeight']}"
        for key, fname in (("throttleReadBpsDevice", "read_bps_device"), ("throttleWriteBpsDevice", "write_bps_device"),
                           ("throttleReadIOPSDevice", "read_iops_device"), ("throttleWriteIOPSDevice", "write_iops_device")):
            for i, d in enumerate(blk.get(key) or []):
                yield f"{F}.blockIO.{key}[{i}]", "blkio", f"blkio.throttle.{fname}", f"{_dev(d)} {d['rate']}"
        for i, h in enumerate(r.get("hugepageLimits") or []):
            yield f"{F}.hugepageLimits[{i}]", "hugetlb", f"hugetlb.{h['pageSize']}.limit_in_bytes", str(h["limit"])
        if net.get("classID") is not None:
            yield f"{F}.network.classID", "net_cls", "net_cls.classid", str(net["classID"])
        for i, pr in enumerate(net.get("priorities") or []):
            yield f"{F}.network.priorities[{i}]", "net_prio", "net_prio.ifpriomap", f"{pr['name']} {pr['priority']}"
        for dev, lim in (r.get("rdma") or {}).items():
            yield from _rdma(F, dev, lim)
        if r.get("unified"):
            raise RuntimeSpecError(f"{F}.unified: unified (cgroup v2) resources cannot be set on this cgroup v1 host")
        if r.get("devices") is not None:
            yield f"{F}.devices", "devices", "devices.deny", "a"
            for rule in DEFAULT_DEVICE_RULES:
                yield f"{F}.devices", "devices", "devices.allow", rule
            for i, d in enumerate(r["devices"]):
                if d.get("allow") is False and d.get("type", "a") == "a" and d.get("major") is None:
                    continue  # "deny all" is the starting point already
                rule = "{} {}:{} {}".format(d.get("type", "a"), "*" if d.get("major") is None else d["major"],
                                            "*" if d.get("minor") is None else d["minor"], d.get("access", "rwm"))
                yield f"{F}.devices[{i}]", "devices", "devices.allow" if d.get("allow") else "devices.deny", rule if d.get("type", "a") != "a" else "a"
        return
    # cgroup v2
    if mem.get("limit") is not None:
        yield f"{F}.memory.limit", "memory", "memory.max", "max" if mem["limit"] < 0 else str(mem["limit"])
        if mem.get("swap") is not None:
            swap = mem["swap"] - mem["limit"] if mem["swap"] > 0 else mem["swap"]
            yield f"{F}.memory.swap", "memory", "memory.swap.max", "max" if swap < 0 else str(swap)
    elif mem.get("swap") is not None:
        none("memory.swap (without memory.limit, cgroup v2 cannot express memory+swap)")
    if mem.get("reservation") is not None:
        yield f"{F}.memory.reservation", "memory", "memory.low", str(mem["reservation"])
    for key in ("kernel", "kernelTCP", "swappiness", "useHierarchy"):
        if mem.get(key) is not None:
            none(f"memory.{key}")
    if mem.get("disableOOMKiller"):
        none("memory.disableOOMKiller")
    if pids.get("limit") is not None:
        yield f"{F}.pids.limit", "pids", "pids.max", "max" if pids["limit"] <= 0 else str(pids["limit"])
    if cpu.get("shares"):
        yield f"{F}.cpu.shares", "cpu", "cpu.weight", str(shares_to_weight(cpu["shares"]))
    if cpu.get("quota") is not None or cpu.get("period"):
        q = cpu.get("quota")
        yield f"{F}.cpu.quota", "cpu", "cpu.max", f"{'max' if q is None or q < 0 else q} {cpu.get('period') or 100000}"
    if cpu.get("burst") is not None:
        yield f"{F}.cpu.burst", "cpu", "cpu.max.burst", str(cpu["burst"])
    if cpu.get("idle") is not None:
        yield f"{F}.cpu.idle", "cpu", "cpu.idle", str(cpu["idle"])
    for key in ("realtimePeriod", "realtimeRuntime"):
        if cpu.get(key):
            none(f"cpu.{key}")
    if cpu.get("cpus"):
        yield f"{F}.cpu.cpus", "cpuset", "cpuset.cpus", cpu["cpus"]
    if cpu.get("mems"):
        yield f"{F}.cpu.mems", "cpuset", "cpuset.mems", cpu["mems"]
    if blk.get("weight") is not None:
        yield f"{F}.blockIO.weight", "io", "io.weight", f"default {blkio_to_io_weight(blk['weight'])}"
    if blk.get("leafWeight") is not None:
        none("blockIO.leafWeight")
    for i, d in enumerate(blk.get("weightDevice") or []):
        if d.get("leafWeight") is not None:
            none(f"blockIO.weightDevice[{i}].leafWeight")
        if d.get("weight") is not None:
            yield f"{F}.blockIO.weightDevice[{i}]", "io", "io.weight", f"{_dev(d)} {blkio_to_io_weight(d['weight'])}"
    for key, k in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                   ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
        for i, d in enumerate(blk.get(key) or []):
            yield f"{F}.blockIO.{key}[{i}]", "io", "io.max", f"{_dev(d)} {k}={d['rate']}"
    for i, h in enumerate(r.get("hugepageLimits") or []):
        yield f"{F}.hugepageLimits[{i}]", "hugetlb", f"hugetlb.{h['pageSize']}.max", str(h["limit"])
    for key in ("classID", "priorities"):
        if net.get(key) is not None:
            none(f"network.{key} (net_cls/net_prio)")
    for dev, lim in (r.get("rdma") or {}).items():
        yield from _rdma(F, dev, lim)
    for key, value in (r.get("unified") or {}).items():
        if "/" in key or key.startswith(".") or "." not in key:
            raise RuntimeSpecError(f"{F}.unified[{key!r}]: not a cgroup v2 interface file name")
        yield f"{F}.unified[{key!r}]", key.split(".", 1)[0], key, str(value)


def _rdma(F: str, dev: str, lim: dict):
    parts = []
    if lim.get("hcaHandles") is not None:
        parts.append(f"hca_handle={lim['hcaHandles']}")
    if lim.get("hcaObjects") is not None:
        parts.append(f"hca_object={lim['hcaObjects']}")
    if parts:
        yield f"{F}.rdma[{dev!r}]", "rdma", "rdma.max", f"{dev} {' '.join(parts)}"


#: files whose value is read back after writing: the kernel may accept a write and ignore it
_READ_BACK = frozenset({"memory.kmem.limit_in_bytes"})

#: v1 files a hierarchy's root cgroup does not have (limits of the root make no sense)
_NOT_IN_ROOT = frozenset({"pids.max", "rdma.max"})


def check_resources(resources: dict | None, path: str = "config.json", base: str = CGROUP_ROOT) -> None:
    """Refuse, before anything is created, a ``linux.resources`` field this host cannot
    apply (config-linux.md "Control groups": "If the runtime cannot apply a resource …"):
    a controller that is not mounted (v1) or not available (v2 ``cgroup.controllers``), an
    interface file the kernel does not have (``memory.swappiness`` on v2, ``blkio.weight``
    without a proportional-weight I/O scheduler, ``cpu.rt_runtime_us`` without
    CONFIG_RT_GROUP_SCHED …). A rootless runtime has no cgroup of its own: any limit is
    refused (runc: "cannot set … limit: container could not join or create cgroup");
    device rules do not need one there (no device node can be made in a user namespace).
    Raises RuntimeSpecError naming the field."""
    r = resources or {}
    version, hier = detect(base)
    try:
        if os.geteuid() != 0:
            limits = [k for k, v in r.items() if k != "devices" and v not in (None, {}, [])]
            if limits:
                raise RuntimeSpecError(f"linux.resources.{limits[0]}: a rootless container has no cgroup of its own "
                                       "(cgroups are not delegated to this user), so the limit cannot be applied")
            return
        if not version:
            if any(v not in (None, {}, []) for v in r.values()):
                raise RuntimeSpecError(f"linux.resources: no cgroup filesystem is mounted at {base}")
            return
        if version == 2:
            try:
                available = set(_read(os.path.join(base, "cgroup.controllers")).split())
            except OSError:
                available = set()
        for field, ctrl, name, _value in _mapping(version, r):
            if version == 1:
                root = next((p for h, p in hier.items() if ctrl in h.split(",")), None)
                if root is None:
                    raise RuntimeSpecError(f"{field}: the {ctrl} controller is not mounted on this host (cgroup v1: no /sys/fs/cgroup/{ctrl})")
                if name not in _NOT_IN_ROOT and not os.path.exists(os.path.join(root, name)):
                    raise RuntimeSpecError(f"{field}: this kernel has no {name} in the {ctrl} controller, so it cannot be applied")
            elif ctrl != "cgroup" and ctrl not in available:
                raise RuntimeSpecError(f"{field}: the {ctrl} controller is not available on this host "
                                       f"({os.path.join(base, 'cgroup.controllers')})")
        if version == 2 and r.get("devices") is not None:
            from .devices import rules_for

            rules_for(r["devices"])
    except RuntimeSpecError as e:
        raise RuntimeSpecError(f"{path}: {e}")


class Cgroup:
    """The container's cgroup: ``paths`` maps a hierarchy name (``"memory"`` … for v1,
    ``""`` for v2) to the container's directory in it.

    Build with :meth:`for_container`; then :meth:`create`, :meth:`apply`,
    :meth:`join` (or :meth:`add`), :meth:`pids`, :meth:`oom_kills`, :meth:`destroy`. (A plain class, not a
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
        # hierarchy; load_config refuses such paths before this anyway
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

    def writes(self, resources: dict | None) -> list[tuple[str, str, str]]:
        """The ``(field, file path, value)`` writes that apply ``linux.resources``, in
        order — pure, so the v1 and v2 mappings are unit-testable. ``field`` is the
        config field (``linux.resources.memory.swappiness``). Bytes for memory, a count
        for pids, microseconds for cpu quota/period/burst/realtime. Raises
        RuntimeSpecError for a field this cgroup version has no file for (see
        :func:`check_resources`, which also checks the host)."""
        out: list[tuple[str, str, str]] = []
        for field, ctrl, name, value in _mapping(self.version, resources or {}):
            d = self._dir(ctrl)
            if d is None:
                raise RuntimeSpecError(f"{field}: the {ctrl} controller is not mounted on this host (no cgroup {ctrl} hierarchy)")
            out.append((field, os.path.join(d, name), value))
        return out

    def _dir(self, ctrl: str) -> str | None:
        if self.version == 2:
            return self.paths.get("")
        for name, p in self.paths.items():
            if ctrl in name.split(","):
                return p
        return None

    def files(self, resources: dict | None) -> list[tuple[str, str]]:
        """The ``(file path, value)`` pairs of :meth:`writes`."""
        return [(p, v) for _f, p, v in self.writes(resources)]

    def apply(self, resources: dict | None) -> None:
        """Write the limits of ``linux.resources`` (see :meth:`writes`); on cgroup v2 the
        device rules become an eBPF program attached to the cgroup (:mod:`.devices`).
        Raises OSError naming the config field and the cgroup file that refused the value."""
        for field, path, value in self.writes(resources):
            try:
                _write(path, value)
            except OSError as e:
                raise OSError(e.errno, f"{field}: cgroup file {path} refused {value!r}: {e.strerror}", path)
            if os.path.basename(path) in _READ_BACK and _read(path).strip() != value:
                # Linux 5.16+ accepts writes to memory.kmem.limit_in_bytes and ignores them
                # (kernel memory is no longer limited separately): refuse, never skip
                raise OSError(errno.EOPNOTSUPP, f"{field}: this kernel accepts {os.path.basename(path)} but does not apply it "
                              f"(it reads back {_read(path).strip()}); remove the field", path)
            step("runtime", "cgroup limit", f"{os.path.basename(path)} = {value}", f"echo {value} > {path}")
        devices = (resources or {}).get("devices")
        if self.version == 2 and devices is not None:
            from .devices import attach_device_filter, rules_for

            try:
                attach_device_filter(self.paths[""], rules_for(devices))
            except OSError as e:
                raise OSError(e.errno, f"linux.resources.devices: cannot enforce the device rules with an eBPF program "
                              f"(BPF_PROG_TYPE_CGROUP_DEVICE, as runc does on cgroup v2): {e.strerror}", self.paths[""])
            step("runtime", "device filter", f"eBPF BPF_CGROUP_DEVICE program on {self.paths['']}", "runc: devicefilter")

    def add(self, pid: int = 0, paths: dict[str, str] | None = None) -> None:
        """Move process ``pid`` (0 = the caller) into every hierarchy of the cgroup (or
        into ``paths``, e.g. back to where it came from, see :meth:`of_process`)."""
        for p in (paths or self.paths).values():
            try:
                _write(os.path.join(p, "cgroup.procs"), str(pid))
            except OSError:
                if paths is None:
                    raise

    def join(self) -> None:
        """Move the calling process into every hierarchy of the cgroup. The caller must be
        single-threaded — a child just forked (stage 1, an ``exec`` child): on cgroup v1
        this writes ``0`` to each ``tasks`` file, which moves the calling thread alone, so
        the kernel skips the global ``cgroup_threadgroup_rwsem`` whose writer first waits
        for an RCU grace period, 5–20 ms on a small VM (kernel/cgroup/cgroup.c
        ``cgroup_procs_write_start``: the lock is taken only for a PID other than the
        caller's or for a whole thread group; cgroup-v1/cgroups.rst "tasks"). With one
        thread, moving it moves the process. cgroup v2 has no such file for a domain
        cgroup (``cgroup.threads`` is for threaded subtrees): there ``cgroup.procs`` it is.
        Raises OSError when a hierarchy refuses the move."""
        name = "tasks" if self.version == 1 else "cgroup.procs"
        for p in self.paths.values():
            _write(os.path.join(p, name), "0")

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
