"""ocilearn.core.fsutil: file helpers that stay inside a root and never follow a swapped-in
symlink."""

from __future__ import annotations

import os
import stat

from ocilearn.core.fsutil import _grant


def test_grant_never_chmods_through_a_symlink(tmp_path):
    target = tmp_path / "target"
    target.write_text("secret")
    target.chmod(0o600)
    d = tmp_path / "dir"
    d.mkdir()
    (d / "s").symlink_to(target)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        # an lstat of a restrictive directory, then the entry swapped for a symlink
        fake = os.stat_result((stat.S_IFDIR | 0o077, 0, 0, 1, 0, 0, 0, 0, 0, 0))
        _grant(fd, "s", fake)
        (d / "real").mkdir()
        (d / "real").chmod(0o077)
        _grant(fd, "real", os.lstat(d / "real"))
    finally:
        os.close(fd)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(d / "real").st_mode) == 0o777
