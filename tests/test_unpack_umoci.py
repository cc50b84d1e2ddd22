"""ocilearn unpack side by side with `umoci unpack` (the reference peer) on the same images:
rootfs trees compared entry by entry (path, type, mode, uid, gid, size, content sha256,
symlink target, hardlink grouping, xattrs), config.json fields compared, and runc running
both busybox bundles. As root, and rootless as an unprivileged user.

Deliberate differences (documented in ocilearn.layer.apply / ocilearn.bundle.convert), asserted exactly:
- rootless device nodes: umoci makes empty regular files, ocilearn skips and lists them;
- env: umoci adds TERM=xterm because it writes terminal: true; ocilearn writes false;
- annotations: umoci writes exposedPorts/stopSignal as "" when the image has none;
- rootless user: umoci keeps the image's non-root user (unmapped, runc fails), ocilearn uses 0:0;
- additionalGids: ocilearn puts the primary gid first always and lists each gid once; umoci
  lists a gid once per group name and the primary gid only when /etc/group names the user;
- env order: umoci puts PATH (and TERM) first, from runtime-tools' template; ocilearn keeps
  the image's order. Names and values agree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
import warnings
from pathlib import Path

import pytest
from conftest import REPO, as_user, built_image, require_tool, run, shared_path
from layer_helpers import user_python

from ocilearn.bundle.unpack import remove_tree, unpack
from ocilearn.layer.snapshot import snapshot

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: umoci unpack as root, chown, mknod, and setpriv to the test user")


def _config(bundle: Path) -> dict:
    return json.loads((bundle / "config.json").read_text())


@pytest.fixture(scope="module")
def debian_root(tmp_path_factory):
    """The built debian image unpacked by umoci and by ocilearn, as root (once per module)."""
    umoci = require_tool("umoci")
    img = built_image("debian")
    d = tmp_path_factory.mktemp("debian-root")
    run([umoci, "unpack", "--image", f"{img}:bookworm", str(d / "umoci")])
    res = unpack(f"{img}:bookworm", d / "ocilearn", rootless=False)
    return {
        "umoci": snapshot(d / "umoci/rootfs"), "ocilearn": snapshot(d / "ocilearn/rootfs"),
        "umoci_cfg": _config(d / "umoci"), "ocilearn_cfg": _config(d / "ocilearn"), "result": res,
    }


@pytest.fixture(scope="module")
def debian_rootless(unpriv_user):
    """The same image unpacked `--rootless` by umoci and by ocilearn as the unprivileged user."""
    umoci = require_tool("umoci")
    img = built_image("debian")
    d = Path(tempfile.mkdtemp(prefix="ocilearn-umoci-rl-"))
    os.chown(d, unpriv_user[1], unpriv_user[2])
    try:
        p = as_user(unpriv_user, [umoci, "unpack", "--rootless", "--image", f"{img}:bookworm", str(d / "umoci")])
        assert p.returncode == 0, p.stderr
        py, env = user_python(unpriv_user)
        p = as_user(unpriv_user, [py, "-m", "ocilearn", "unpack", "-q", "--rootless", "--image", f"{img}:bookworm", str(d / "ocilearn")],
                    env=env, cwd=str(REPO))
        assert p.returncode == 0, p.stderr
        yield {
            "umoci": snapshot(d / "umoci/rootfs"), "ocilearn": snapshot(d / "ocilearn/rootfs"),
            "umoci_cfg": _config(d / "umoci"), "ocilearn_cfg": _config(d / "ocilearn"),
            "meta": json.loads((d / "ocilearn/ocilearn.json").read_text()), "uid": unpriv_user[1],
        }
    finally:
        remove_tree(d)


def _diff(a: dict, b: dict) -> dict:
    return {p: (a.get(p), b.get(p)) for p in sorted(set(a) | set(b)) if a.get(p) != b.get(p)}


def test_debian_root_tree_identical_to_umoci(debian_root):
    u, o = debian_root["umoci"], debian_root["ocilearn"]
    assert len(o) > 5000
    assert _diff(u, o) == {}
    # the edit layers really are in there: whiteouts, opaque, hardlinks, caps, setuid, fifo, devices
    assert "/etc/motd" not in o and "/etc/skel/.bashrc" not in o
    assert sorted(p for p in o if p.startswith("/etc/update-motd.d/")) == ["/etc/update-motd.d/50-ocilearn"]
    assert o["/opt/ocilearn/hardlink-a"].hardlinks == ("/opt/ocilearn/hardlink-a", "/opt/ocilearn/hardlink-b")
    assert dict(o["/opt/ocilearn/filecap-true"].xattrs)["security.capability"][:4] == bytes.fromhex("01000002")
    assert o["/opt/ocilearn/setuid-true"].mode == 0o4755 and o["/etc/issue"].mode == 0o600
    assert o["/opt/ocilearn/symlink-escaping"].link == "../../../../../../etc/shadow"
    assert o["/dev/null"].type == "char" and o["/dev/null"].rdev == (1, 3)
    assert o["/opt/ocilearn/fifo"].type == "fifo" and o["/opt/ocilearn/owned-by-1000"].uid == 1000


def test_debian_rootless_tree_identical_to_umoci_except_devices(debian_rootless):
    u, o = debian_rootless["umoci"], debian_rootless["ocilearn"]
    diff = _diff(u, o)
    skipped = {"/" + p for p, why in debian_rootless["meta"]["skipped"] if "device" in why}
    assert set(diff) == skipped and len(skipped) >= 8
    for p in skipped:  # umoci's stand-ins: empty regular files; ocilearn: nothing
        assert diff[p][0].type == "file" and diff[p][0].size == 0 and diff[p][1] is None
    assert {fi.uid for fi in o.values()} == {debian_rootless["uid"]}
    assert dict(o["/opt/ocilearn/owned-by-1000"].xattrs)["user.rootlesscontainers"] == bytes.fromhex("08e80710e807")
    assert "security.capability" not in dict(o["/opt/ocilearn/filecap-true"].xattrs)  # dropped by both


def _umoci_user(user: dict) -> dict:
    """Where ocilearn and umoci differ on purpose: ocilearn puts the primary gid first in
    additionalGids (moby's CVE-2022-36109 hardening: a process cannot shed its primary group
    with setgroups(2)); umoci lists only /etc/group memberships. Everything else must agree."""
    user = dict(user)
    rest = [g for g in user.pop("additionalGids", []) if g != user["gid"]]
    return user | ({"additionalGids": rest} if rest else {})


@pytest.mark.parametrize("mode", ["root", "rootless"])
def test_debian_config_matches_umoci(debian_root, debian_rootless, mode):
    pair = debian_root if mode == "root" else debian_rootless
    u, o = pair["umoci_cfg"]["process"], pair["ocilearn_cfg"]["process"]
    assert o["args"] == u["args"] == ["/bin/bash"]
    assert o["cwd"] == u["cwd"] and _umoci_user(o["user"]) == u["user"]
    assert o["user"].get("additionalGids") == ([o["user"]["gid"]] if mode == "root" else None)
    assert o["env"] == [e for e in u["env"] if e != "TERM=xterm"] and u["terminal"] is True and o["terminal"] is False
    ua = {k: v for k, v in pair["umoci_cfg"]["annotations"].items() if v != ""}
    assert pair["ocilearn_cfg"]["annotations"] == ua
    if mode == "rootless":
        for key in ("uidMappings", "gidMappings"):
            assert pair["ocilearn_cfg"]["linux"][key] == pair["umoci_cfg"]["linux"][key]


def test_debian_zstd_gives_the_same_tree(debian_root, tmp_path):
    res = unpack(f"{built_image('debian-zstd')}:bookworm", tmp_path / "z", rootless=False)
    assert [lr.compression for lr in res.layers] == ["zstd"] * 3
    assert _diff(debian_root["ocilearn"], snapshot(tmp_path / "z/rootfs")) == {}


@pytest.mark.parametrize("name, ref, platform", [("busybox", "latest", None), ("multiarch", "latest", "linux/arm64/v8")])
def test_shared_images_identical_to_umoci(tmp_path, name, ref, platform):
    umoci = require_tool("umoci")
    img = shared_path("images", name)
    if platform:
        # umoci cannot choose a platform in an index: give it the arm64 manifest by digest via a copy
        lay = tmp_path / "lay"
        shutil.copytree(img, lay)
        digest = "sha256:3561140b3bd9db3d7298cd50f6c6db812212dd12508d03903963e1bd1f0e7450"
        from ocilearn.image.layout import ImageLayout

        L = ImageLayout.open(lay)
        L.add_ref("arm64", next(d for d, _ in L.walk() if str(d.digest) == digest))
        img, ref = lay, "arm64"
    run([umoci, "unpack", "--image", f"{img}:{ref}", str(tmp_path / "u")])
    unpack(f"{img}:{ref}", tmp_path / "o", rootless=False, platform=platform)
    assert _diff(snapshot(tmp_path / "u/rootfs"), snapshot(tmp_path / "o/rootfs")) == {}
    uc, oc = _config(tmp_path / "u")["process"], _config(tmp_path / "o")["process"]
    assert (oc["args"], oc["cwd"], _umoci_user(oc["user"])) == (uc["args"], uc["cwd"], uc["user"])
    assert oc["user"]["additionalGids"][0] == oc["user"]["gid"]


def test_runc_runs_ocilearn_bundle_like_umoci_bundle(tmp_path):
    runc, umoci = require_tool("runc"), require_tool("umoci")
    img = built_image("busybox")
    run([umoci, "unpack", "--image", f"{img}:latest", str(tmp_path / "u")])
    cfg = _config(tmp_path / "u")
    cfg["process"]["terminal"] = False  # the article's edit, needed for umoci's bundle only
    (tmp_path / "u/config.json").write_text(json.dumps(cfg))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unpack(f"{img}:latest", tmp_path / "o", rootless=False)
    outputs = {}
    for which in ("u", "o"):
        cid = f"ocilearn-t4-{which}-{uuid.uuid4().hex[:8]}"
        try:
            p = subprocess.run([runc, "run", "--bundle", str(tmp_path / which), cid], capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            outputs[which] = p.stdout
        finally:
            subprocess.run([runc, "delete", "-f", cid], capture_output=True)
    assert outputs["o"] == outputs["u"] == "hello from app in /home/app\n"


def test_env_and_groups_against_umoci(tmp_path):
    """A duplicated Env name and a /etc/group with a duplicated gid, a substring member
    name and the primary group listing the user.

    Where umoci agrees: every name once, the later value winning, no default PATH when the
    image has one, HOME from passwd, the same memberships (webapp/appx not taken for app).
    Where it does not, on purpose: umoci starts from runtime-tools' template env
    (PATH, TERM) and replaces values in place, so PATH comes first; ocilearn keeps the
    image's order (config.md: Env is the image's list). umoci lists gid 2000 twice (two
    group names) and adds the primary gid only when /etc/group lists the user in it;
    ocilearn lists each gid once, primary first always (CVE-2022-36109 hardening)."""
    from ocilearn.image import build as B

    umoci = require_tool("umoci")
    files = [
        B.directory("etc"),
        B.file("etc/passwd", "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"),
        B.file("etc/group", "app:x:1000:app\ndev:x:2000:app\ndev2:x:2000:app\nsub:x:3000:webapp,appx\naudio:x:29:appx,app\n"),
    ]
    B.build_image(tmp_path / "img", [files], env=["A=1", "PATH=/x:/y", "B=2", "A=3"], user="app", cmd=["/bin/sh"])
    run([umoci, "unpack", "--image", f"{tmp_path / 'img'}:latest", str(tmp_path / "u")])
    unpack(f"{tmp_path / 'img'}:latest", tmp_path / "o", rootless=False)
    u, o = _config(tmp_path / "u")["process"], _config(tmp_path / "o")["process"]
    assert o["env"] == ["A=3", "PATH=/x:/y", "B=2", "HOME=/home/app"]
    assert u["env"] == ["PATH=/x:/y", "TERM=xterm", "A=3", "B=2", "HOME=/home/app"]  # the peer, as observed
    assert dict(e.split("=", 1) for e in o["env"]) == {k: v for k, v in (e.split("=", 1) for e in u["env"]) if k != "TERM"}
    assert o["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000, 2000, 29]}
    assert u["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000, 2000, 2000, 29]}
    assert o["user"]["additionalGids"] == list(dict.fromkeys(u["user"]["additionalGids"]))
