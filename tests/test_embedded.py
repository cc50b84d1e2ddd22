"""The embedded workshop image: reproducible from the Debian .deb, valid for skopeo and
umoci, and its layer holds the .deb's busybox byte for byte."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest
from conftest import REPO, require_tool, run

from ocilearn.core.errors import LayoutError
from ocilearn.image import embedded
from ocilearn.image.layout import ImageLayout

SCRIPT = REPO / "scripts" / "build-embedded-image.py"


def _tree(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def deb() -> str:
    """The busybox-static .deb, fetched with `apt-get download` into .cache/debs/embedded."""
    require_tool("apt-get")
    require_tool("dpkg-deb")
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_embedded", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return str(mod.fetch_deb())


def test_rebuild_twice_gives_identical_layouts(tmp_path, deb):
    for n in (1, 2):
        run([sys.executable, str(SCRIPT), "--deb", deb, "--out", str(tmp_path / f"b{n}"), "--no-readme"])
    one, two = _tree(tmp_path / "b1"), _tree(tmp_path / "b2")
    assert one == two and len(one) == 6  # oci-layout, index.json, manifest, config, two layers
    prov = embedded.provenance()
    lay = ImageLayout.open(tmp_path / "b1")
    img = lay.resolve("latest")
    deb_sha = hashlib.sha256(open(deb, "rb").read()).hexdigest()
    if deb_sha == prov["deb_sha256"]:
        # the same .deb as the shipped image: the same digests, file for file
        assert str(img.digest) == prov["manifest_digest"]
        assert _tree(tmp_path / "b1") == _tree(embedded.layout_path())
    else:
        # Debian published a newer busybox-static; the shipped image stays traceable to its .deb
        assert prov["deb_sha256"] != deb_sha and prov["version"] in (embedded.layout_path() / ".." / ".." / "README.md").read_text()


def test_embedded_resolves_fscks_and_matches_provenance():
    lay = embedded.open()
    img = lay.resolve("latest")
    prov = embedded.provenance()
    assert str(img.digest) == prov["manifest_digest"]
    assert str(img.manifest.config.digest) == prov["config_digest"]
    assert str(img.manifest.layers[0].digest) == prov["layer_digest"]
    report = lay.fsck()
    assert report.ok and report.checked == 4 and report.dangling == []  # manifest, config, two layers
    cfg = lay.image_config(img)
    c = cfg.config
    assert (cfg.os, cfg.architecture) == ("linux", "amd64")
    assert c.entrypoint == ("/bin/sh", "-c") and c.cmd == ('echo "$GREETING from $(id -un) in $(pwd)"',)
    assert c.user == "app" and c.working_dir == "/home/app" and "GREETING=hello" in c.env
    assert dict(c.exposed_ports) == {"8080/tcp": {}} and c.labels["org.opencontainers.image.licenses"] == "GPL-2.0-only"
    assert [str(d) for d in cfg.diff_ids] == [prov["diff_id"]] + [prov["layers"][1]["diff_id"]]
    assert [str(d.digest) for d in img.manifest.layers] == [x["digest"] for x in prov["layers"]]
    assert [d.size for d in img.manifest.layers] == [x["size"] for x in prov["layers"]]
    assert len(cfg.history) == 2  # one history entry per layer


def test_layer_holds_the_debs_busybox_and_a_clean_tar(deb):
    lay = embedded.open()
    img = lay.resolve("latest")
    data = lay.read_blob(img.manifest.layers[0])
    assert data[:3] == b"\x1f\x8b\x08" and data[4:8] == b"\0\0\0\0"  # gzip, header mtime 0
    tar_bytes = gzip.decompress(data)
    assert "sha256:" + hashlib.sha256(tar_bytes).hexdigest() == embedded.provenance()["diff_id"]
    deb_busybox = subprocess.run(f"dpkg-deb --fsys-tarfile '{deb}' | tar -xO ./bin/busybox", shell=True, capture_output=True, check=True).stdout
    deb_copyright = subprocess.run(f"dpkg-deb --fsys-tarfile '{deb}' | tar -xO ./usr/share/doc/busybox-static/copyright", shell=True, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as t:
        members = t.getmembers()
        names = [m.name for m in members]
        assert len(names) == len(set(names))  # layer.md: no duplicate entries
        assert names == sorted(names, key=lambda n: n.split("/"))
        assert {m.mtime for m in members} == {embedded.provenance()["source_date_epoch"]}
        assert {m.uname for m in members} == {""} and {m.gname for m in members} == {""}
        bb = t.getmember("bin/busybox")
        assert bb.mode == 0o755 and (bb.uid, bb.gid) == (0, 0)
        if hashlib.sha256(open(deb, "rb").read()).hexdigest() == embedded.provenance()["deb_sha256"]:
            assert t.extractfile(bb).read() == deb_busybox
            assert t.extractfile("usr/share/doc/busybox-static/copyright").read() == deb_copyright
        sh = t.getmember("bin/sh")
        assert sh.issym() and sh.linkname == "/bin/busybox"
        assert (t.getmember("home/app").uid, t.getmember("home/app").gid) == (1000, 1000)
        assert t.getmember("tmp").mode == 0o1777 and t.getmember("root").mode == 0o700
        assert t.extractfile("etc/passwd").read() == b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
        assert sum(1 for m in members if m.issym()) == embedded.provenance()["applets"]


def test_skopeo_inspect_and_umoci_unpack_accept_it(tmp_path):
    require_tool("skopeo")
    require_tool("umoci")
    target = f"oci:{embedded.layout_path()}:latest"
    info = json.loads(run(["skopeo", "inspect", target]).stdout)
    assert info["Digest"] == embedded.provenance()["manifest_digest"] and info["Layers"] == [x["digest"] for x in embedded.provenance()["layers"]]
    copy = embedded.copy_to(tmp_path / "copy")  # umoci wants a writable layout
    bundle = tmp_path / "bundle"
    cmd = ["umoci", "unpack", "--image", f"{copy.path}:latest", str(bundle)]
    if os.geteuid() != 0:
        cmd.insert(2, "--rootless")
    run(cmd)
    rootfs = bundle / "rootfs"
    got = hashlib.sha256((rootfs / "bin" / "busybox").read_bytes()).hexdigest()
    layer = embedded.open().read_blob(embedded.open().resolve("latest").manifest.layers[0])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as t:
        want = hashlib.sha256(t.extractfile("bin/busybox").read()).hexdigest()
    assert got == want
    assert os.readlink(rootfs / "bin" / "sh") == "/bin/busybox"
    # the second layer, as the reference tool applies it: whiteout, opaque whiteout, hardlink
    assert not (rootfs / "etc" / "motd").exists()
    assert sorted(os.listdir(rootfs / "var" / "www")) == ["index.html"]
    assert (rootfs / "var" / "www" / "index.html").read_text() == "<p>hello from layer 2</p>\n"
    assert (rootfs / "etc" / "issue").stat().st_ino == (rootfs / "etc" / "issue.net").stat().st_ino
    if os.geteuid() == 0:
        st = (rootfs / "home" / "app").stat()
        assert (st.st_uid, st.st_gid) == (1000, 1000)
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["args"] == ["/bin/sh", "-c", 'echo "$GREETING from $(id -un) in $(pwd)"']
    assert config["process"]["cwd"] == "/home/app" and config["process"]["user"]["uid"] == 1000


def test_copy_to_is_independent_and_refuses_non_empty(tmp_path):
    before = _tree(embedded.layout_path())
    lay = embedded.copy_to(tmp_path / "c")
    lay.add_ref("mine", lay.refs()["latest"])
    assert set(lay.refs()) == {"latest", "mine"}
    assert _tree(embedded.layout_path()) == before
    assert os.access(lay.path / "index.json", os.W_OK)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(LayoutError, match="not empty"):
        embedded.copy_to(tmp_path / "full")
    (tmp_path / "empty").mkdir()
    assert embedded.copy_to(tmp_path / "empty").resolve("latest").digest == lay.resolve("latest").digest


def test_second_layer_holds_a_whiteout_an_opaque_whiteout_and_a_hardlink(tmp_path):
    """Layer 2 as tar members (layer.md "Whiteouts", "Hardlinks"), and applied by ocilearn."""
    from ocilearn.bundle.unpack import unpack

    lay = embedded.open()
    img = lay.resolve("latest")
    assert len(img.manifest.layers) == 2
    tar_bytes = gzip.decompress(lay.read_blob(img.manifest.layers[1]))
    assert "sha256:" + hashlib.sha256(tar_bytes).hexdigest() == embedded.provenance()["layers"][1]["diff_id"]
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as t:
        members = {m.name: m for m in t.getmembers()}
    assert members["etc/.wh.motd"].isfile() and members["var/www/.wh..wh..opq"].isfile()
    assert members["etc/issue.net"].islnk() and members["etc/issue.net"].linkname == "etc/issue"
    copy = embedded.copy_to(tmp_path / "copy")
    bundle = tmp_path / "bundle"
    unpack(copy.path, bundle, ref="latest", rootless=os.geteuid() != 0)
    rootfs = bundle / "rootfs"
    assert not (rootfs / "etc" / "motd").exists() and not (rootfs / "etc" / ".wh.motd").exists()
    assert sorted(os.listdir(rootfs / "var" / "www")) == ["index.html"]
    st1, st2 = (rootfs / "etc" / "issue").stat(), (rootfs / "etc" / "issue.net").stat()
    assert st1.st_ino == st2.st_ino and st1.st_nlink == 2
