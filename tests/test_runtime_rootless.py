"""Rootless: an unprivileged user runs containers in a user namespace that maps it to
root, with its state under $XDG_RUNTIME_DIR (user_namespaces(7); runc docs/rootless)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import pytest
from conftest import as_user, require_tool
from test_runtime_helpers import OCILEARN, Runner, busybox_image, cid, needs_root

pytestmark = needs_root  # root is needed to create the unprivileged user; CI runs as root


@pytest.fixture
def rootless_env(unpriv_user):
    """A world-traversable scratch dir owned by the user, its XDG_RUNTIME_DIR, and a
    rootless bundle unpacked *by the user* with ``umoci unpack --rootless``."""
    name, uid, gid = unpriv_user
    top = tempfile.mkdtemp(prefix="ocilearn-rootless-", dir="/tmp")
    os.chmod(top, 0o755)
    os.chown(top, uid, gid)
    xdg = os.path.join(top, "run")
    os.mkdir(xdg, 0o700)
    os.chown(xdg, uid, gid)
    img = busybox_image()
    try:
        p = as_user(unpriv_user, [require_tool("umoci"), "unpack", "--rootless", "--image", f"{img}:latest", f"{top}/bundle"])
        assert p.returncode == 0, p.stderr
        yield top, xdg
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _user_runner(user, xdg: str) -> Runner:
    name, uid, gid = user
    env = {"PATH": "/usr/bin:/bin", "HOME": "/", "USER": name, "XDG_RUNTIME_DIR": xdg, "LANG": "C.UTF-8"}
    r = Runner(os.path.join(xdg, "ocilearn"), env=env, prefix=["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--"])
    return r


def _set_config(bundle: str, **proc) -> dict:
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["process"].update(proc)
    cfg["process"]["terminal"] = False
    with open(path, "w") as f:
        json.dump(cfg, f)
    return cfg


def test_rootless_run_maps_user_to_root(unpriv_user, rootless_env):
    top, xdg = rootless_env
    bundle = f"{top}/bundle"
    name, uid, gid = unpriv_user
    cfg = _set_config(bundle, user={"uid": 0, "gid": 0}, args=["/bin/sh", "-c",
                      "id; cat /proc/self/uid_map; echo pid $$; hostname; ls /proc | grep -cE '^[0-9]+$'; touch /root/x && echo wrote"])
    assert cfg["linux"]["uidMappings"][0]["hostID"] == uid
    r = _user_runner(unpriv_user, xdg)
    try:
        p = r.cmd(OCILEARN, "run", "-b", bundle, cid("rl"))  # no --root: default $XDG_RUNTIME_DIR/ocilearn
        assert p.returncode == 0, p.stderr
        lines = p.stdout.splitlines()
        assert lines[0].startswith("uid=0(root) gid=0(root)")
        assert lines[1].split() == ["0", str(uid), "1"]
        assert lines[2] == "pid 1" and lines[3] == cfg["hostname"]
        assert "wrote" in lines  # the user's own files are root's inside
        assert os.path.isdir(os.path.join(xdg, "ocilearn")) and os.listdir(os.path.join(xdg, "ocilearn")) == []
        assert os.stat(os.path.join(bundle, "rootfs/root/x")).st_uid == uid
    finally:
        r.close()


def test_rootless_lifecycle_and_unmapped_user_error(unpriv_user, rootless_env):
    top, xdg = rootless_env
    bundle = f"{top}/bundle"
    _set_config(bundle, user={"uid": 1000, "gid": 1000}, args=["sleep", "10"])
    r = _user_runner(unpriv_user, xdg)
    name = cid("rl")
    try:
        bad = r.cmd(OCILEARN, "create", "-b", bundle, name)
        assert bad.returncode == 1
        assert "uid 1000 is outside the user namespace's uidMappings" in bad.stderr
        assert not os.path.exists(os.path.join(xdg, "ocilearn", name))
        _set_config(bundle, user={"uid": 0, "gid": 0})
        assert r.cmd(OCILEARN, "create", "-b", bundle, name).returncode == 0
        st = json.loads(r.cmd(OCILEARN, "state", name).stdout)
        assert st["status"] == "created"
        assert os.stat(f"/proc/{st['pid']}").st_uid == unpriv_user[1]  # host view: the user's process
        ex = r.cmd(OCILEARN, "exec", name, "id", "-u")
        assert ex.returncode == 0 and ex.stdout == "0\n", ex.stderr
        assert r.cmd(OCILEARN, "start", name).returncode == 0
        assert json.loads(r.cmd(OCILEARN, "state", name).stdout)["status"] == "running"
        assert r.cmd(OCILEARN, "kill", name, "KILL").returncode == 0
        d = r.cmd(OCILEARN, "delete", "--force", name)
        assert d.returncode == 0, d.stderr
        assert os.listdir(os.path.join(xdg, "ocilearn")) == []
        assert r.children() == []
    finally:
        r.cmd(OCILEARN, "delete", "--force", name)
        r.close()


def test_rootless_init_reaper_not_dumpable_exec_and_ps_still_work(unpriv_user, rootless_env):
    """CVE-2019-5736, rootless: the --init reaper (the host's Python, possibly owned by
    the user) is non-dumpable, so container root cannot open /proc/1/exe or environ; the
    unprivileged runtime still finds the container's namespaces (through the reaper's child) for
    ``exec`` and its processes for ``ps``."""
    top, xdg = rootless_env
    bundle = f"{top}/bundle"
    _set_config(bundle, user={"uid": 0, "gid": 0}, args=["sleep", "30"])
    r = _user_runner(unpriv_user, xdg)
    name = cid("rlinit")
    try:
        assert r.cmd(OCILEARN, "run", "-d", "--init", name, "-b", bundle).returncode == 0
        ex = r.cmd(OCILEARN, "exec", name, "sh", "-c", "cat /proc/1/environ; echo rc=$?; readlink /proc/1/exe; echo rc=$?; "
                                                     "ls /proc | grep -c '^[0-9]'")
        assert ex.returncode == 0, ex.stderr
        assert ex.stdout.splitlines()[:2] == ["rc=1", "rc=1"], ex.stdout
        assert "can't open '/proc/1/environ': Permission denied" in ex.stderr
        ps = r.cmd(OCILEARN, "ps", "--format", "json", name)
        pids = json.loads(ps.stdout)
        st = json.loads(r.cmd(OCILEARN, "state", name).stdout)
        assert st["pid"] in pids and len(pids) == 2, (pids, st)  # the reaper and sleep
    finally:
        r.cmd(OCILEARN, "delete", "--force", name)
        r.close()
