"""layer/listing.py: a layer's entries like `tar -tvf`, whiteouts marked, numbers checked,
names quoted."""

from __future__ import annotations

import io
import os
import re

import pytest
from layer_helpers import D, F, S, apply, gz, pax_member, tar_bytes

from ocilearn.core.errors import LayerError
from ocilearn.image import mediatypes as mt
from ocilearn.image.digest import Digest
from ocilearn.layer.apply import apply_layer
from ocilearn.layer.listing import list_layer
from ocilearn.layer.tar import LayerWarning


def test_list_layer_like_tar_tvf_with_whiteouts_marked():
    t = tar_bytes([D("etc"), F("etc/.wh.motd"), F("etc/x/.wh..wh..opq"), S("l", "/t"), F("f", b"abc", 0o600, uid=5, gid=6)])
    entries = list_layer(io.BytesIO(gz(t)), mt.OCI_LAYER_GZIP, diff_id=Digest.of(t))
    kinds = [(e.path, e.type, e.target) for e in entries]
    assert kinds == [("etc", "dir", ""), ("etc/.wh.motd", "whiteout", "etc/motd"), ("etc/x/.wh..wh..opq", "opaque", "etc/x"),
                     ("l", "symlink", ""), ("f", "file", "")]
    lines = [e.tar_line() for e in entries]
    assert lines[1].endswith("[whiteout: deletes /etc/motd]")
    assert "opaque whiteout: hides lower contents of /etc/x" in lines[2]
    assert lines[3].startswith("lrwxrwxrwx") and lines[3].endswith("l -> /t")
    assert lines[4].startswith("-rw------- 5/6         3 ")


@pytest.mark.parametrize("headers,message", [
    ({"uid": str(2**40)}, "uid 1099511627776 is out of range (0..4294967295)"),
    ({"gid": "-5"}, "gid -5 is out of range"),
    ({"mtime": "nan"}, "mtime nan is not a finite number of seconds"),
    ({"mtime": "inf"}, "mtime inf is not a finite number of seconds"),
])
def test_out_of_range_numbers_are_layer_errors(tmp_path, headers, message):
    blob = pax_member("u", b"x", headers)
    for fn in (lambda: list_layer(io.BytesIO(blob)), lambda: apply_layer(tmp_path, io.BytesIO(blob))):
        with pytest.raises(LayerError, match=f"entry 'u': {message}".replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
            fn()


def test_huge_finite_mtime_is_clamped(tmp_path):
    with pytest.warns(LayerWarning, match=r"mtime 1e\+300 s clamped to ±9223372036 s"):
        (res,) = apply(tmp_path, pax_member("m", b"x", {"mtime": "1e300"}))
    assert (tmp_path / "m").read_bytes() == b"x"
    assert os.stat(tmp_path / "m").st_mtime > 1e9  # the file system's latest time, not an error
    with pytest.warns(LayerWarning):
        (e,) = list_layer(io.BytesIO(pax_member("m", b"x", {"mtime": "-1e300"})))
    assert e.mtime == -9223372036.0 and e.tar_line().startswith("-rw-r--r-- 0/0")


def test_listing_escapes_terminal_sequences_and_newlines(capsys):
    names = ["evil\x1b]0;PWNED-TITLE\x07name", "cr\rFAKE-LINE-OVERWRITE", "nl\n-rwsr-xr-x 0/0 1 2020-01-01 00:00 /etc/shadow", "ok-é"]
    blob = tar_bytes([F(n, b"x") for n in names] + [S("l\x1bk", "t\nx")])
    lines = [e.tar_line() for e in list_layer(io.BytesIO(blob))]
    assert [re.sub(r"^.*? \d\d:\d\d ", "", ln, count=1) for ln in lines] == [
        "evil\\033]0;PWNED-TITLE\\007name", "cr\\rFAKE-LINE-OVERWRITE",
        "nl\\n-rwsr-xr-x 0/0 1 2020-01-01 00:00 /etc/shadow", "ok-é", "l\\033k -> t\\nx",
    ]
    assert all(ch.isprintable() for ln in lines for ch in ln)


def test_listing_of_nan_and_1e18_mtimes_is_an_error_or_clamped():
    with pytest.raises(LayerError, match="mtime nan is not a finite number"):
        list_layer(io.BytesIO(pax_member("m", b"x", {"mtime": "nan"})))
    with pytest.warns(LayerWarning, match="clamped"):
        (e,) = list_layer(io.BytesIO(pax_member("m", b"x", {"mtime": "1e18"})))
    assert e.mtime == 9223372036.0 and "2262-04-11" in e.tar_line()



@pytest.mark.parametrize("kind, pax, what", [("file", {"path": "a\0b"}, "name"), ("symlink", {"linkpath": "x\0y"}, "link target"),
                                             ("hardlink", {"linkpath": "x\0y"}, "link target")])
def test_a_nul_byte_in_a_pax_name_or_link_target_is_a_layer_error(tmp_path, kind, pax, what):
    """A PAX path or linkpath record may hold a NUL byte, which no path can: a LayerError
    naming the entry, in listings too (os.open raised ValueError before)."""
    entry = {"file": F("n", b"x", **pax), "symlink": ("symlink", "n", "t", 0o777, 0, 0, pax),
             "hardlink": ("hardlink", "n", "x", 0o644, 0, 0, pax)}[kind]
    t = tar_bytes([F("x", b"x"), entry])
    for fn in (lambda: apply(tmp_path, t), lambda: list_layer(io.BytesIO(t))):
        with pytest.raises(LayerError, match=f"layer: entry .*: its {what} holds a NUL byte"):
            fn()
    assert sorted(os.listdir(tmp_path)) == ["x"]
