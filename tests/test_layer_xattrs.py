"""Extended attributes of layer entries (image-spec layer.md "File Attributes").

``security.capability`` and ``user.*`` reach the rootfs with their exact bytes; the
host-specific names (SELinux/Smack/AppArmor labels, NFSv4 ACLs, overlayfs's own names)
never do, each named in a warning (umoci skips ``security.selinux``, ``system.nfs4_acl``
and ``trusted.overlay.*`` the same way: checked against umoci 0.4.7 below); a directory
entry over a directory replaces its xattrs (layer.md "Changeset over existing files");
rootless, ``security.*``/``trusted.*`` are dropped and named. Layers are written by GNU
tar from files labelled with ``setcap``/``setfattr``, or byte by byte (PAX records with raw
binary values, as GNU tar writes them).
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import tarfile
import tempfile
import textwrap
import warnings
from pathlib import Path

import pytest
from conftest import REPO, as_user, require_tool, run
from layer_helpers import F, apply, make_image, tar_bytes, user_python

from ocilearn.bundle.unpack import remove_tree, unpack
from ocilearn.core.errors import LayerError
from ocilearn.image import mediatypes as mt
from ocilearn.layer.listing import list_layer
from ocilearn.layer.rootless import parse_rootless_xattr, rootless_xattr
from ocilearn.layer.tar import LayerWarning
from ocilearn.layer.xattrs import HOST_SPECIFIC, host_specific

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: security.* and trusted.* xattrs, chown")

#: what `setcap cap_net_raw+ep FILE` stores (getfattr -e hex): VFS_CAP_REVISION_2 with the
#: effective flag (01 00 00 02), permitted = 1 << CAP_NET_RAW (13), inheritable 0
CAP_NET_RAW_EP = bytes.fromhex("0100000200200000000000000000000000000000")
USER_FOO = b"\x00\xff\x80bin\n\x00"  # NUL, high bytes, a newline: not text
SELINUX = b"system_u:object_r:bin_t:s0\x00"


def pax_file(name: str, data: bytes, xattrs: dict[str, bytes], mode: int = 0o755, uid: int = 0, gid: int = 0) -> bytes:
    """A PAX 'x' header of ``SCHILY.xattr.*`` records with the raw bytes (no hdrcharset, as
    GNU tar writes them), then a regular file member."""
    body = b""
    for key, value in xattrs.items():
        rec = b" SCHILY.xattr." + key.encode() + b"=" + value + b"\n"
        n = len(rec) + 1
        while n != len(str(n)) + len(rec):  # the length counts its own digits
            n = len(str(n)) + len(rec)
        body += str(n).encode() + rec
    x = tarfile.TarInfo(f"PaxHeaders/{name}")
    x.type, x.size = tarfile.XHDTYPE, len(body)
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.uid, ti.gid, ti.mtime = len(data), mode, uid, gid, 1_700_000_000

    def padded(b: bytes) -> bytes:
        return b + b"\0" * (-len(b) % tarfile.BLOCKSIZE)

    return x.tobuf(tarfile.USTAR_FORMAT) + padded(body) + ti.tobuf(tarfile.USTAR_FORMAT) + padded(data)


def layer_of(*members: bytes) -> bytes:
    return b"".join(members) + bytes(2 * tarfile.BLOCKSIZE)


def xattrs_of(path) -> dict[str, bytes]:
    return {k: os.getxattr(path, k, follow_symlinks=False) for k in os.listxattr(path, follow_symlinks=False)}


def assert_filesystem_accepts(tmp_path, name: str, value: bytes) -> None:
    """The test filesystem stores ``name`` when asked: so its absence after an apply is
    ocilearn's doing, not the filesystem's."""
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    os.setxattr(probe, name, value)
    assert os.getxattr(probe, name) == value
    probe.unlink()


# ------------------------------------------------------------------ exact bytes, labels skipped


@root_only
def test_capability_and_user_xattrs_exact_bytes_selinux_label_not_applied(tmp_path):
    assert_filesystem_accepts(tmp_path, "security.selinux", SELINUX)
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    layer = layer_of(pax_file("bin/ping", b"ELF", {"security.capability": CAP_NET_RAW_EP, "user.foo": USER_FOO,
                                                   "security.selinux": SELINUX}))
    with pytest.warns(match="xattr 'security.selinux' not applied: host-specific: an SELinux label"):
        (res,) = apply(rootfs, layer, rootless=False)
    ping = rootfs / "bin/ping"
    assert os.getxattr(ping, "security.capability") == CAP_NET_RAW_EP
    assert os.getxattr(ping, "user.foo") == USER_FOO
    with pytest.raises(OSError) as ei:
        os.getxattr(ping, "security.selinux")
    assert ei.value.errno == errno.ENODATA
    assert res.skipped == [("bin/ping", "xattr security.selinux")]
    # the reference tool reads the capability back
    getcap = require_tool("getcap")
    assert run([getcap, str(ping)]).stdout.split() == [str(ping), "cap_net_raw=ep"]


def test_listing_shows_the_xattrs_the_image_carries_exactly():
    layer = layer_of(pax_file("bin/ping", b"ELF", {"security.capability": CAP_NET_RAW_EP, "user.foo": USER_FOO,
                                                   "security.selinux": SELINUX}))
    (e,) = list_layer(io.BytesIO(layer))
    assert e.xattrs == {"security.capability": CAP_NET_RAW_EP, "user.foo": USER_FOO, "security.selinux": SELINUX}
    assert e.tar_line().endswith("[xattrs: security.capability, security.selinux, user.foo]")


@root_only
@pytest.mark.parametrize("name", ["security.selinux", "security.SMACK64", "security.SMACK64EXEC", "security.apparmor",
                                  "system.nfs4_acl", "trusted.overlay.opaque", "trusted.overlay.redirect", "user.overlay.opaque"])
def test_every_host_specific_name_is_skipped_and_named(tmp_path, name):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    layer = layer_of(pax_file("f", b"x", {name: b"y", "user.kept": b"k"}))
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        (res,) = apply(rootfs, layer, rootless=False)
    assert xattrs_of(rootfs / "f") == {"user.kept": b"k"}
    assert res.skipped == [("f", f"xattr {name}")]
    (warning,) = res.warnings
    assert warning.startswith(f"layer: /f: xattr {name!r} not applied: host-specific: ") and host_specific(name) in warning


def test_host_specific_patterns():
    assert set(HOST_SPECIFIC) == {"security.selinux", "security.SMACK64*", "security.apparmor", "system.nfs4_acl",
                                  "system.nfs4_dacl", "system.nfs4_sacl", "trusted.overlay.", "user.overlay."}
    for applied in ("security.capability", "security.ima", "user.foo", "user.overlayish", "trusted.foo",
                    "system.posix_acl_access", "security.selinuxx", "trusted.overlay"):
        assert host_specific(applied) is None, applied


@root_only
def test_trusted_and_other_security_names_are_applied_as_root(tmp_path):
    layer = layer_of(pax_file("f", b"x", {"trusted.ocilearn": b"\x00\x01", "security.ima": b"\x03\x02\x00"}))
    (res,) = apply(tmp_path, layer, rootless=False)
    assert xattrs_of(tmp_path / "f") == {"trusted.ocilearn": b"\x00\x01", "security.ima": b"\x03\x02\x00"}
    assert res.skipped == [] and res.warnings == []


@root_only
def test_an_xattr_the_kernel_refuses_as_root_fails_the_layer_naming_it(tmp_path):
    layer = layer_of(pax_file("f", b"x", {"security.capability": b"\x01\x02\x03"}))  # not a vfs_cap_data: EINVAL
    with pytest.raises(LayerError, match=r"layer: /f: cannot set xattr 'security.capability' \(3 bytes\): Invalid argument"):
        apply(tmp_path, layer, rootless=False)


# ------------------------------------------------------------------ directories keep only the entry's xattrs


@root_only
def test_directory_over_directory_gets_exactly_the_entrys_xattrs(tmp_path):
    def dir_entry(xattrs: dict[str, str]) -> bytes:
        return tar_bytes([("dir", "d", None, 0o755, 0, 0, {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()})])

    apply(tmp_path, dir_entry({"user.a": "1", "user.b": "2"}), rootless=False)
    assert xattrs_of(tmp_path / "d") == {"user.a": b"1", "user.b": b"2"}
    os.setxattr(tmp_path / "d", "security.selinux", SELINUX)  # as a host labelling the directory would
    (res,) = apply(tmp_path, dir_entry({"user.b": "3"}), rootless=False)
    assert xattrs_of(tmp_path / "d") == {"user.b": b"3", "security.selinux": SELINUX}
    assert res.skipped == []


# ------------------------------------------------------------------ peers: GNU tar writes, umoci agrees


@pytest.fixture
def gnu_tar_layer(tmp_path) -> bytes:
    """A layer written by GNU tar from files labelled by setcap and setfattr."""
    if os.geteuid() != 0:
        pytest.skip("needs root: setcap and setfattr security.*/trusted.*")
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "bin/ping").write_bytes(b"ELF")
    run([require_tool("setcap"), "cap_net_raw+ep", str(src / "bin/ping")])
    setfattr = require_tool("setfattr")
    run([setfattr, "-n", "user.foo", "-v", "0x" + USER_FOO.hex(), str(src / "bin/ping")])
    run([setfattr, "-n", "security.selinux", "-v", "0x" + SELINUX.hex(), str(src / "bin/ping")])
    run([setfattr, "-n", "trusted.overlay.opaque", "-v", "y", str(src / "bin")])
    out = tmp_path / "layer.tar"
    run([require_tool("tar"), "--xattrs", "--xattrs-include=*", "--numeric-owner", "-cf", str(out), "-C", str(src), "bin"])
    return out.read_bytes()


def test_gnu_tar_layer_keeps_the_source_bytes_and_drops_the_labels(tmp_path, gnu_tar_layer):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        (res,) = apply(rootfs, gnu_tar_layer, rootless=False)
    assert xattrs_of(rootfs / "bin/ping") == {"security.capability": CAP_NET_RAW_EP, "user.foo": USER_FOO}
    assert xattrs_of(rootfs / "bin") == {}
    assert sorted(res.skipped) == [("bin", "xattr trusted.overlay.opaque"), ("bin/ping", "xattr security.selinux")]


def test_umoci_unpack_applies_the_same_xattrs(tmp_path, gnu_tar_layer):
    """umoci 0.4.7 skips security.selinux and trusted.overlay.opaque too ("ignoring forbidden
    xattr") and applies the capability and user.foo byte for byte."""
    umoci = require_tool("umoci")
    lay = make_image(tmp_path / "img", [(gzip.compress(gnu_tar_layer, mtime=0), mt.OCI_LAYER_GZIP)])
    p = run([umoci, "unpack", "--image", f"{lay.path}:latest", str(tmp_path / "umoci")])
    assert 'ignoring forbidden xattr: "security.selinux"' in p.stderr
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        unpack(f"{lay.path}:latest", tmp_path / "ocilearn", rootless=False)
    for rel in ("bin", "bin/ping"):
        ours, theirs = xattrs_of(tmp_path / "ocilearn/rootfs" / rel), xattrs_of(tmp_path / "umoci/rootfs" / rel)
        assert ours == theirs, rel
    assert xattrs_of(tmp_path / "umoci/rootfs/bin/ping") == {"security.capability": CAP_NET_RAW_EP, "user.foo": USER_FOO}


def test_invalid_posix_acl_is_named_as_such_not_blamed_on_the_filesystem(tmp_path):
    acl = "system.posix_acl_access"
    with pytest.warns(LayerWarning, match=r"xattr 'system.posix_acl_access' is not a valid POSIX ACL \(7 bytes"):
        (res,) = apply(tmp_path, tar_bytes([F("a", b"x", **{f"SCHILY.xattr.{acl}": "garbage"})]))
    assert res.skipped == [("a", f"xattr {acl}")] and (tmp_path / "a").read_bytes() == b"x"
    # a well-formed one (user::rw- user:100:rw- group::r-- mask::rw- other::r--) is applied
    good = "\x02\0\0\0" + "".join(f"{chr(tag)}\0{chr(perm)}\0{chr(uid)}\0\0\0" for tag, perm, uid in
                                  [(1, 6, 0), (2, 6, 100), (4, 4, 0), (0x10, 6, 0), (0x20, 4, 0)])
    (res,) = apply(tmp_path, tar_bytes([F("b", b"y", **{f"SCHILY.xattr.{acl}": good})]))
    stored = os.getxattr(tmp_path / "b", acl)  # the kernel writes undefined ids as 0xffffffff
    assert res.skipped == [] and stored[:4] == b"\x02\0\0\0" and b"\x02\0\x06\0\x64\0\0\0" in stored


# ------------------------------------------------------------------ rootless


def _rootless_layer() -> bytes:
    return layer_of(pax_file("u", b"x", {"security.capability": CAP_NET_RAW_EP, "trusted.t": b"t", "user.foo": USER_FOO,
                                         "user.rootlesscontainers": rootless_xattr(0, 5)}, uid=1000, gid=1000))


def test_rootless_drops_security_and_trusted_and_records_the_owner(tmp_path):
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        (res,) = apply(tmp_path, _rootless_layer(), rootless=True)
    got = xattrs_of(tmp_path / "u")
    assert got == {"user.foo": USER_FOO, "user.rootlesscontainers": bytes.fromhex("08e80710e807")}
    assert parse_rootless_xattr(got["user.rootlesscontainers"]) == (1000, 1000)  # the entry's owner, not the forged 0:5
    assert sorted(res.skipped) == [("u", "xattr security.capability"), ("u", "xattr trusted.t"), ("u", "xattr user.rootlesscontainers")]
    by_name = {w.split("'")[1]: w for w in res.warnings}
    assert "an ordinary user may not set security.* or trusted.* attributes" in by_name["security.capability"]
    assert "an ordinary user may not set security.* or trusted.* attributes" in by_name["trusted.t"]
    assert "would forge it" in by_name["user.rootlesscontainers"]


@root_only
def test_rootless_as_an_unprivileged_user(unpriv_user):
    """The same layer applied by a real unprivileged user (where setxattr of security.*
    would answer EPERM): the same result."""
    d = Path(tempfile.mkdtemp(prefix="ocilearn-xattr-"))
    try:
        os.chown(d, unpriv_user[1], unpriv_user[2])
        (d / "layer.tar").write_bytes(_rootless_layer())
        py, env = user_python(unpriv_user)
        script = textwrap.dedent(f"""
            import io, json, os, warnings
            from ocilearn.layer.apply import apply_layer
            os.mkdir({str(d / 'rootfs')!r})
            warnings.simplefilter("ignore")
            with open({str(d / 'layer.tar')!r}, "rb") as f:
                res = apply_layer({str(d / 'rootfs')!r}, f)
            u = {str(d / 'rootfs/u')!r}
            print(json.dumps({{"xattrs": {{k: os.getxattr(u, k).hex() for k in os.listxattr(u)}},
                              "skipped": sorted(res.skipped), "uid": os.stat(u).st_uid}}))
        """)
        p = as_user(unpriv_user, [py, "-c", script], env=env, cwd=str(REPO))
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        assert out["xattrs"] == {"user.foo": USER_FOO.hex(), "user.rootlesscontainers": "08e80710e807"}
        assert out["skipped"] == [["u", "xattr security.capability"], ["u", "xattr trusted.t"], ["u", "xattr user.rootlesscontainers"]]
        assert out["uid"] == unpriv_user[1]
    finally:
        remove_tree(d)

