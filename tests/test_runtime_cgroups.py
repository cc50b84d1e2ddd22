"""cgroup v1 and v2 mapping of linux.resources, on directory trees shaped like cgroupfs
(unit tests: no root needed), plus the real v1 hierarchy of this host when root."""

from __future__ import annotations

import os

import pytest

from ocilearn.core.errors import RuntimeSpecError
from ocilearn.runtime.cgroups import Cgroup, check_resources, detect, shares_to_weight

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


# ---------------------------------------------------------------- every resource, or refused


def test_v1_mapping_of_every_resource(tmp_path):
    cg = Cgroup(1, {"memory": "/m", "cpu,cpuacct": "/c", "blkio": "/b", "hugetlb": "/h", "net_cls,net_prio": "/n", "pids": "/p"})
    res = {"memory": {"swappiness": 10, "disableOOMKiller": True, "kernel": 1 << 30, "kernelTCP": 1 << 20, "useHierarchy": True},
           "cpu": {"realtimeRuntime": 950000, "realtimePeriod": 1000000, "burst": 1000, "idle": 1},
           "blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 300}],
                       "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
           "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}],
           "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]}}
    writes = cg.writes(res)
    assert [(f, p, v) for f, p, v in writes if f.startswith("linux.resources.memory")] == [
        ("linux.resources.memory.kernel", "/m/memory.kmem.limit_in_bytes", str(1 << 30)),
        ("linux.resources.memory.kernelTCP", "/m/memory.kmem.tcp.limit_in_bytes", str(1 << 20)),
        ("linux.resources.memory.swappiness", "/m/memory.swappiness", "10"),
        ("linux.resources.memory.disableOOMKiller", "/m/memory.oom_control", "1"),
        ("linux.resources.memory.useHierarchy", "/m/memory.use_hierarchy", "1")]
    files = dict((p, v) for _f, p, v in writes)
    assert files["/c/cpu.rt_runtime_us"] == "950000" and files["/c/cpu.rt_period_us"] == "1000000"
    assert files["/c/cpu.cfs_burst_us"] == "1000" and files["/c/cpu.idle"] == "1"
    assert files["/b/blkio.weight"] == "500" and files["/b/blkio.weight_device"] == "8:0 300"
    assert files["/b/blkio.throttle.read_bps_device"] == "8:0 1048576"
    assert files["/h/hugetlb.2MB.limit_in_bytes"] == str(4 << 21)
    assert files["/n/net_cls.classid"] == "1048577" and files["/n/net_prio.ifpriomap"] == "eth0 5"
    with pytest.raises(RuntimeSpecError, match=r"linux.resources.memory.swappiness = 101: must be from 0 to 100"):
        cg.writes({"memory": {"swappiness": 101}})
    with pytest.raises(RuntimeSpecError, match=r"linux.resources.unified: unified \(cgroup v2\) resources cannot be set"):
        cg.writes({"unified": {"memory.high": "1G"}})
    with pytest.raises(RuntimeSpecError, match="linux.resources.rdma.*the rdma controller is not mounted"):
        cg.writes({"rdma": {"mlx5_1": {"hcaHandles": 3}}})


@pytest.mark.parametrize("field", ["memory.swappiness", "memory.disableOOMKiller", "memory.kernel", "memory.kernelTCP",
                                   "cpu.realtimeRuntime", "blockIO.leafWeight", "network.classID"])
def test_v2_refuses_what_it_has_no_file_for(field):
    group, key = field.split(".")
    value = True if key == "disableOOMKiller" else 10
    with pytest.raises(RuntimeSpecError, match=f"linux.resources.{group}.{key}( .*)?: cgroup v2 has no file for it"):
        Cgroup(2, {"": "/x"}).writes({group: {key: value}})


def test_v2_mapping_io_hugetlb_unified():
    w = dict((p, v) for _f, p, v in Cgroup(2, {"": "/x"}).writes({
        "blockIO": {"weight": 1000, "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}]},
        "hugepageLimits": [{"pageSize": "1GB", "limit": 1 << 30}], "cpu": {"burst": 500, "idle": 0},
        "unified": {"memory.high": "268435456"}}))
    assert w == {"/x/io.weight": "default 10000", "/x/io.max": "8:16 wiops=300", "/x/hugetlb.1GB.max": str(1 << 30),
                 "/x/cpu.max.burst": "500", "/x/cpu.idle": "0", "/x/memory.high": "268435456"}


def test_check_resources_on_trees_shaped_like_this_host(tmp_path):
    base = _v1_tree(tmp_path / "cg")
    (base / "memory" / "memory.swappiness").write_text("60\n")
    (base / "memory" / "memory.oom_control").write_text("oom_kill_disable 0\n")
    if os.geteuid() != 0:
        pytest.skip("check_resources refuses every limit for an ordinary user (no cgroup of its own)")
    check_resources({"memory": {"swappiness": 0, "disableOOMKiller": True}, "pids": {"limit": 5}}, "c.json", base=str(base))
    with pytest.raises(RuntimeSpecError, match=r"^c.json: linux.resources.memory.kernelTCP: this kernel has no memory.kmem.tcp.limit_in_bytes"):
        check_resources({"memory": {"kernelTCP": 1 << 20}}, "c.json", base=str(base))
    with pytest.raises(RuntimeSpecError, match=r"^c.json: linux.resources.blockIO.weight: the blkio controller is not mounted"):
        check_resources({"blockIO": {"weight": 100}}, "c.json", base=str(base))
    v2 = _v2_tree(tmp_path / "v2")
    (v2 / "cgroup.controllers").write_text("cpu memory pids\n")
    check_resources({"memory": {"limit": 1 << 20}, "cpu": {"shares": 100}}, "c.json", base=str(v2))
    with pytest.raises(RuntimeSpecError, match=r"linux.resources.hugepageLimits\[0\]: the hugetlb controller is not available"):
        check_resources({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}, "c.json", base=str(v2))
    with pytest.raises(RuntimeSpecError, match=r"linux.resources.memory.swappiness: cgroup v2 has no file for it"):
        check_resources({"memory": {"swappiness": 1}}, "c.json", base=str(v2))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: writes the host's cgroupfs")
def test_real_v1_swappiness_and_oom_kill_disable():
    version, _ = detect()
    if version != 1:
        pytest.skip("cgroup v1 only: v2 has no such files (refused, see test_v2_refuses_what_it_has_no_file_for)")
    cg = Cgroup.for_container(None, f"unit-swp-{os.getpid()}")
    try:
        cg.create()
        cg.apply({"memory": {"limit": 64 << 20, "swappiness": 7, "disableOOMKiller": True}})
        mem = next(p for n, p in cg.paths.items() if "memory" in n.split(","))
        assert open(os.path.join(mem, "memory.swappiness")).read().strip() == "7"
        assert "oom_kill_disable 1" in open(os.path.join(mem, "memory.oom_control")).read()
    finally:
        cg.destroy()


# ---------------------------------------------------------------- cgroup v2 devices: eBPF


def test_device_program_shape():
    from ocilearn.runtime import devices

    rules = devices.rules_for([{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}])
    assert rules[0] == ("a", -1, -1, 7, False) and rules[-1] == ("c", 1, 11, 2, True)
    code = devices.program(rules)
    assert len(code) % 8 == 0
    # the last instruction is the unconditional deny-all rule: r0 = 0; exit
    assert code[-16:] == bytes([0xB4, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0])
    with pytest.raises(RuntimeSpecError, match=r"linux.resources.devices\[0\].access = 'rx'"):
        devices.rules_for([{"allow": True, "access": "rx"}])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: bpf(2) and the host's cgroupfs")
def test_real_device_filter_on_cgroup2():
    """The eBPF program attached to a cgroup v2 directory (the unified hierarchy of a hybrid
    host works too: the kernel asks the program of the process's v2 cgroup first) decides
    open(2) of device nodes for the processes in it."""
    import errno
    import subprocess
    import sys

    from ocilearn.runtime import devices

    base = _v2_mount()
    assert base is not None, "no cgroup2 hierarchy mounted"
    d = os.path.join(base, f"ocilearn-devtest-{os.getpid()}")
    os.mkdir(d)
    try:
        devices.attach_device_filter(d, devices.rules_for([
            {"allow": False, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"},
            {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]))
        probe = ("import os, sys, errno\nopen(sys.argv[1] + '/cgroup.procs', 'w').write(str(os.getpid()))\nout = []\n"
                 "for p, f in [('/dev/null', os.O_RDONLY), ('/dev/null', os.O_WRONLY), ('/dev/zero', os.O_RDONLY), "
                 "('/dev/kmsg', os.O_RDONLY), ('/dev/kmsg', os.O_WRONLY), ('/dev/full', os.O_WRONLY)]:\n"
                 "    try:\n        os.close(os.open(p, f)); out.append('ok')\n"
                 "    except OSError as e:\n        out.append(errno.errorcode[e.errno])\nprint(' '.join(out))\n")
        p = subprocess.run([sys.executable, "-c", probe, d], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert p.stdout.split() == ["ok", "EPERM", "ok", "ok", "EPERM", "ok"]
        assert errno.EPERM == 1
    finally:
        os.rmdir(d)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: writes the host's cgroupfs")
def test_kernel_memory_limit_applied_or_refused():
    """memory.kernel: either the kernel applies memory.kmem.limit_in_bytes or ocilearn
    refuses it (Linux 5.16+ accepts the write and ignores it)."""
    version, _ = detect()
    if version != 1:
        pytest.skip("cgroup v1 only (v2 refuses memory.kernel before writing)")
    cg = Cgroup.for_container(None, f"unit-kmem-{os.getpid()}")
    try:
        cg.create()
        try:
            cg.apply({"memory": {"kernel": 48 << 20}})
        except OSError as e:
            assert "linux.resources.memory.kernel: this kernel accepts memory.kmem.limit_in_bytes but does not apply it" in str(e)
        else:
            mem = next(p for n, p in cg.paths.items() if "memory" in n.split(","))
            assert open(os.path.join(mem, "memory.kmem.limit_in_bytes")).read().strip() == str(48 << 20)
    finally:
        cg.destroy()
