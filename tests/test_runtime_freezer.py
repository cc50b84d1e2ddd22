"""pause and resume (ocilearn/runtime/freezer.py; runc-pause(8), runc-resume(8)): the cgroup
freezer (v1 freezer.state, v2 cgroup.freeze) stops every process at once."""

from __future__ import annotations

import json
import time
from pathlib import Path

from test_runtime_helpers import cid, make_bundle, needs_root

pytestmark = needs_root


def test_pause_resume_with_the_freezer(busybox_base, tmp_path, runner):
    """pause freezes the cgroup (v1 freezer.state FROZEN / v2 cgroup.freeze 1): a counter
    stops; state says paused; exec is refused unless --ignore-paused; resume thaws."""
    from ocilearn.runtime.cgroups import detect

    out = tmp_path / "out"
    out.mkdir()
    b = make_bundle(busybox_base, tmp_path / "b", ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /out/t; mv /out/t /out/n; done"],
                    **{"process.user": {"uid": 0, "gid": 0}})
    cfg = json.loads((b / "config.json").read_text())
    cfg["mounts"].append({"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind"]})
    (b / "config.json").write_text(json.dumps(cfg))
    name = cid("pz")
    runner.oc("run", "-d", "-b", str(b), name)
    time.sleep(0.2)
    runner.oc("pause", name)
    assert json.loads(runner.oc("state", name).stdout)["status"] == "paused"
    version, hier = detect()
    st = json.loads((Path(runner.root) / name / "state.json").read_text())["ocilearn"]["cgroup"]["paths"]
    freezer = Path(st["freezer"]) / "freezer.state" if version == 1 else Path(st[""]) / "cgroup.freeze"
    assert freezer.read_text().strip() == ("FROZEN" if version == 1 else "1")
    n1 = (out / "n").read_text()
    time.sleep(0.3)
    assert (out / "n").read_text() == n1  # nothing ran
    bad = runner.oc("exec", name, "true", check=False)
    assert bad.returncode == 1 and "paused" in bad.stderr
    assert runner.oc("pause", name, check=False).returncode == 1
    runner.oc("resume", name)
    assert json.loads(runner.oc("state", name).stdout)["status"] == "running"
    time.sleep(0.2)
    assert (out / "n").read_text() != n1
    assert runner.oc("resume", name, check=False).returncode == 1
    runner.oc("pause", name)
    runner.oc("delete", "--force", name)  # a frozen container is thawed to die
    assert not (Path(runner.root) / name).exists()
