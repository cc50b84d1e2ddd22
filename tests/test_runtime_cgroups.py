"""cgroup v1 and v2 mapping of linux.resources, on directory trees shaped like cgroupfs
(unit tests: no root needed), plus the real v1 hierarchy of this host when root."""

from __future__ import annotations

import os

import pytest

from ocilearn.runtime.cgroups import Cgroup, detect, shares_to_weight

RES = {"memory": {"limit": 64 << 20, "swap": 128 << 20, "reservation": 32 << 20}, "pids": {"limit": 40},
       "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0"}}


def _v2_tree(base):
    base.mkdir()
    (base / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (base / "cgroup.subtree_control").write_text("")
    (base / "cgroup.procs").write_text("")
    return base


def _v1_tree(base):
    for h in ("memory", "pids", "cpu,cpuacct", "cpuset", "devices"):
        (base / h).mkdir(parents=True)
        (base / h / "cgroup.procs").write_text("")
    (base / "cpuset" / "cpuset.cpus").write_text("0-1\n")
    (base / "cpuset" / "cpuset.mems").write_text("0\n")
    os.symlink("cpu,cpuacct", base / "cpu")
    (base / "unified").mkdir()
    return base


def test_detect_v2_and_v1(tmp_path):
    v2 = _v2_tree(tmp_path / "v2")
    assert detect(str(v2)) == (2, {"": str(v2)})
    v1 = _v1_tree(tmp_path / "v1")
    version, h = detect(str(v1))
    assert version == 1 and sorted(h) == ["cpu,cpuacct", "cpuset", "devices", "memory", "pids"]
    assert detect(str(tmp_path / "absent")) == (0, {})


def test_v2_files_create_and_apply(tmp_path):
    base = _v2_tree(tmp_path / "cg")
    (base / "ocilearn").mkdir()  # the kernel would give every new directory these files
    (base / "ocilearn" / "cgroup.subtree_control").write_text("")
    cg = Cgroup.for_container("/ocilearn/ctr1", "ctr1", base=str(base))
    assert cg.paths == {"": str(base / "ocilearn" / "ctr1")}
    files = {os.path.relpath(p, cg.paths[""]): v for p, v in cg.files(RES)}
    assert files == {"memory.max": str(64 << 20), "memory.swap.max": str(64 << 20), "memory.low": str(32 << 20), "pids.max": "40",
                     "cpu.weight": "39", "cpu.max": "50000 100000", "cpuset.cpus": "0"}
    cg.create()
    # controllers enabled top-down in every ancestor, as cgroup-v2.rst requires
    assert (base / "cgroup.subtree_control").read_text() == "+cpu +memory +pids +cpuset"
    assert (base / "ocilearn" / "cgroup.subtree_control").read_text() == "+cpu +memory +pids +cpuset"
    cg.apply(RES)
    assert (base / "ocilearn" / "ctr1" / "memory.max").read_text() == str(64 << 20)
    assert (base / "ocilearn" / "ctr1" / "cpu.max").read_text() == "50000 100000"
    (base / "ocilearn" / "ctr1" / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert cg.oom_kills() == 1
    (base / "ocilearn" / "ctr1" / "cgroup.procs").write_text("12\n7\n")
    assert cg.pids() == [7, 12]


def test_v2_unlimited_values():
    cg = Cgroup(2, {"": "/x"})
    files = dict(cg.files({"memory": {"limit": -1}, "pids": {"limit": 0}, "cpu": {"quota": -1}}))
    assert files == {"/x/memory.max": "max", "/x/pids.max": "max", "/x/cpu.max": "max 100000"}
    assert shares_to_weight(2) == 1 and shares_to_weight(262144) == 10000 and shares_to_weight(1024) == 39


def test_v1_files_and_cpuset_inheritance(tmp_path):
    base = _v1_tree(tmp_path / "cg")
    cg = Cgroup.for_container(None, "c9", base=str(base))
    assert cg.paths["memory"] == str(base / "memory" / "ocilearn-c9")
    files = [(os.path.relpath(p, str(base)), v) for p, v in cg.files({**RES, "devices": [{"allow": False, "access": "rwm"}]})]
    assert ("memory/ocilearn-c9/memory.limit_in_bytes", str(64 << 20)) in files
    assert ("memory/ocilearn-c9/memory.memsw.limit_in_bytes", str(128 << 20)) in files
    assert ("pids/ocilearn-c9/pids.max", "40") in files
    assert ("cpu,cpuacct/ocilearn-c9/cpu.shares", "1024") in files
    assert files.index(("cpu,cpuacct/ocilearn-c9/cpu.cfs_period_us", "100000")) < files.index(("cpu,cpuacct/ocilearn-c9/cpu.cfs_quota_us", "50000"))
    assert files[[f for f, _ in files].index("devices/ocilearn-c9/devices.deny")] == ("devices/ocilearn-c9/devices.deny", "a")
    assert ("devices/ocilearn-c9/devices.allow", "c 1:3 rwm") in files
    cg.create()
    assert (base / "cpuset" / "ocilearn-c9" / "cpuset.cpus").read_text() == "0-1"
    (base / "memory" / "ocilearn-c9" / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert cg.oom_kills() == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: writes the host's cgroupfs")
def test_real_host_cgroup_limits_and_removal():
    version, _ = detect()
    assert version in (1, 2)
    cg = Cgroup.for_container(None, f"unit-{os.getpid()}")
    try:
        cg.create()
        cg.apply({"memory": {"limit": 32 << 20}, "pids": {"limit": 7}})
        mem = next(p for n, p in cg.paths.items() if "memory" in n.split(",") or n == "")
        f = "memory.limit_in_bytes" if version == 1 else "memory.max"
        assert open(os.path.join(mem, f)).read().strip() == str(32 << 20)
        assert cg.pids() == []
    finally:
        cg.destroy()
    assert not any(os.path.exists(p) for p in cg.paths.values())


def _v2_mount() -> str | None:
    for line in open("/proc/self/mountinfo"):
        a, _, b = line.partition(" - ")
        if b.split()[0] == "cgroup2":
            return a.split()[4]
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: writes the host's cgroupfs")
def test_real_cgroup2_tree_create_join_destroy():
    """The v2 code path on the real unified hierarchy of this host (on a hybrid host it is
    mounted at /sys/fs/cgroup/unified with few controllers: no limits to set there, but
    mkdir, joining a process, listing and removal are real)."""
    import subprocess
    import sys

    base = _v2_mount()
    assert base is not None, "no cgroup2 hierarchy mounted"
    version, _ = detect(base)
    assert version == 2
    cg = Cgroup.for_container(f"/ocilearn-unit-{os.getpid()}", "x", base=base)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        cg.create()
        cg.add(child.pid)
        assert cg.pids() == [child.pid]
        assert open(f"/proc/{child.pid}/cgroup").read().count(f"ocilearn-unit-{os.getpid()}") == 1
        assert cg.oom_kills() == 0
    finally:
        child.kill()
        child.wait()
        cg.destroy()
    assert not os.path.exists(cg.paths[""])
