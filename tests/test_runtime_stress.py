"""Nothing leaks: 200 create/start/kill/delete cycles, and `ocilearn create` SIGKILLed at
many points followed by `delete --force`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from test_runtime_helpers import OCILEARN, cid, make_bundle, needs_root

pytestmark = needs_root

CYCLES = r"""
import signal, sys, time
from ocilearn.runtime.container import Container
root, bundle, prefix, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t0 = time.monotonic()
for i in range(n):
    c = Container.create(root, f"{prefix}-{i}", bundle)
    c.start()
    assert c.status() == "running"
    c.kill(signal.SIGKILL)
    while c.status() != "stopped":
        time.sleep(0.001)
    c.delete()
print(f"{n} cycles in {time.monotonic() - t0:.2f} s")
"""


def _cgroup_entries(prefix: str) -> list[str]:
    """Directories naming ``prefix`` at the top of every cgroup hierarchy (v1 or v2)."""
    from ocilearn.runtime.cgroups import detect

    return [os.path.join(d, e) for d in detect()[1].values() for e in os.listdir(d) if prefix in e]


def _processes_in(rootfs: Path, prefix: str) -> list[str]:
    """Host processes whose root is the bundle's rootfs or whose cgroup names the prefix."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            root = os.readlink(f"/proc/{d}/root")
            cg = Path(f"/proc/{d}/cgroup").read_text()
        except OSError:
            continue
        if root.startswith(str(rootfs)) or prefix in cg:
            out.append(f"{d} {root}")
    return out


def _our_mounts(*paths: Path) -> set[str]:
    return {m for m in Path("/proc/self/mountinfo").read_text().splitlines() if any(str(p) in m for p in paths)}


def test_200_cycles_leave_nothing(busybox_base, tmp_path, runner):
    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "10"])
    prefix = cid("cyc")
    assert _our_mounts(tmp_path, busybox_base) == set()
    assert _cgroup_entries(prefix) == [] and _processes_in(busybox_base / "rootfs", prefix) == []
    p = runner.cmd(sys.executable, "-c", CYCLES, runner.root, str(b), prefix, "200", timeout=200)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("200 cycles in")
    assert _our_mounts(tmp_path, busybox_base) == set()
    assert _cgroup_entries(prefix) == []
    assert _processes_in(busybox_base / "rootfs", prefix) == []
    assert os.listdir(runner.root) == []
    assert runner.children() == []  # every stage 1 and init was reaped: no zombie


def test_sigkill_create_at_many_points_then_delete_force(busybox_base, tmp_path, runner):
    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "10"])
    prefix = cid("kil")
    outcomes = set()
    for i, delay in enumerate([0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.3]):
        name = f"{prefix}-{i}"
        runner.killed(OCILEARN, "--root", runner.root, "create", "-b", str(b), name, after=delay)
        outcomes.add(os.path.exists(os.path.join(runner.root, name)))
        runner.oc("delete", "--force", name)
        assert not os.path.exists(os.path.join(runner.root, name))
        assert [e for e in _cgroup_entries(prefix) if e.endswith(name)] == []
    assert True in outcomes  # kills landed after the state directory existed: delete --force had work to do
    assert _processes_in(busybox_base / "rootfs", prefix) == []
    assert _our_mounts(tmp_path, busybox_base) == set()
    assert runner.children() == []
