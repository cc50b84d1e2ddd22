"""runtime-spec config.md "POSIX-platform Hooks" (ocilearn/runtime/hooks.py): every kind
runs at its point of the lifecycle with the state on stdin; a failing createRuntime hook
fails create and leaves nothing behind."""

from __future__ import annotations

import json
import time
from pathlib import Path

from test_runtime_helpers import cid, make_bundle, needs_root

pytestmark = needs_root


def test_all_hooks_run_in_order_with_state(busybox_base, tmp_path, runner):
    log = tmp_path / "hooks.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\nread -r state\necho \"$1 $state\" >> {log}\n")
    hook.chmod(0o755)
    kinds = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
    hooks = {k: [{"path": str(hook), "args": ["hook.sh", k]}] for k in kinds}
    b = make_bundle(busybox_base, tmp_path / "b", ["true"], hooks=hooks)
    # createContainer/startContainer run in the container's mount namespace: give them the
    # hook and the log through a bind mount at the same path
    cfg = json.loads((b / "config.json").read_text())
    cfg["mounts"].append({"destination": str(tmp_path), "type": "bind", "source": str(tmp_path), "options": ["rbind"]})
    (b / "config.json").write_text(json.dumps(cfg))
    name = cid("hooks")
    runner.oc("create", "-b", str(b), name)
    runner.oc("start", name)
    time.sleep(0.3)
    runner.oc("delete", name)
    lines = log.read_text().splitlines()
    assert [ln.split(" ", 1)[0] for ln in lines] == kinds
    states = {ln.split(" ", 1)[0]: json.loads(ln.split(" ", 1)[1]) for ln in lines}
    assert states["prestart"]["id"] == name and states["prestart"]["status"] == "creating" and states["prestart"]["pid"] > 1
    assert states["poststart"]["status"] == "running" and states["poststop"]["status"] == "stopped"
    assert states["createContainer"]["bundle"] == str(b)


def test_failing_hook_fails_create_and_cleans_up(busybox_base, tmp_path, runner):
    b = make_bundle(busybox_base, tmp_path / "b", ["true"], hooks={"createRuntime": [{"path": "/bin/false"}]})
    name = cid("hookfail")
    p = runner.oc("create", "-b", str(b), name, check=False)
    assert p.returncode == 1 and "createRuntime hook /bin/false failed" in p.stderr
    assert not (Path(runner.root) / name).exists()
    assert runner.children() == []
