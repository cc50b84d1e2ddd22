"""layer/rootless.py: what a rootless unpack records instead of what it cannot apply
(the in-process part; the unprivileged-user runs are in test_unpack.py and test_layer_xattrs.py)."""

from __future__ import annotations

import os
import stat
import warnings

import pytest
from layer_helpers import DEV, FIFO, D, F, apply, tar_bytes

from ocilearn.layer.rootless import parse_rootless_xattr, rootless_xattr


def test_rootless_xattr_encoding_matches_umoci():
    # values read back from `umoci unpack --rootless` 0.4.7 (getfattr): 1000:1000 and 0:50
    assert rootless_xattr(1000, 1000) == bytes.fromhex("08e80710e807")
    assert rootless_xattr(0, 50) == bytes.fromhex("08ffffffff0f1032")
    assert rootless_xattr(0, 0) is None
    assert parse_rootless_xattr(bytes.fromhex("08ffffffff0f1032")) == (0, 50)


def test_rootless_in_process_modes_restored_devices_skipped(tmp_path):
    t = tar_bytes([
        D("r", 0o555), F("r/file", b"r"), D("z", 0o000), F("z/child", b"z"), DEV("dev/null", "char", 1, 3),
        DEV("dev/sda", "block", 8, 0), FIFO("run/fifo"), F("s", b"s", 0o4755), F("u", b"u", uid=1000, gid=1000),
    ])
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        (res,) = apply(tmp_path, t, rootless=True)
    try:
        assert stat.S_IMODE((tmp_path / "r").stat().st_mode) == 0o555
        assert stat.S_IMODE((tmp_path / "z").stat().st_mode) == 0o000
        assert [p for p, _ in res.skipped] == ["dev/null", "dev/sda"]
        assert not (tmp_path / "dev/null").exists()
        assert stat.S_ISFIFO((tmp_path / "run/fifo").lstat().st_mode)
        assert parse_rootless_xattr(os.getxattr(tmp_path / "u", "user.rootlesscontainers")) == (1000, 1000)
        assert stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o4755
    finally:
        os.chmod(tmp_path / "z", 0o755)



def test_parse_rootless_xattr_refuses_what_is_not_the_message():
    assert parse_rootless_xattr(b"") == (0, 0)
    assert parse_rootless_xattr(rootless_xattr(2**32 - 2, 7)) == (2**32 - 2, 7)
    with pytest.raises(ValueError, match="truncated varint"):
        parse_rootless_xattr(b"\x08\xe8")
    with pytest.raises(ValueError, match="not a varint"):
        parse_rootless_xattr(b"\x0a\x01x")
