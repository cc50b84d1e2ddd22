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


def test_fd_path_and_writable_are_forgotten_when_the_cache_is_invalidated(tmp_path):
    """Root remembers the kernel's name of a cached directory fd and that it has u+rwx;
    after invalidate() the same fd number may be another directory, so neither may be
    remembered past it."""
    from ocilearn.core.fsutil import Root

    rootfs = tmp_path / "rootfs"
    (rootfs / "x").mkdir(parents=True)
    (rootfs / "y").mkdir()
    (rootfs / "y").chmod(0o500)
    with Root(rootfs, rootless=True) as root:
        fx = root.dir_fd("x")
        assert root.fd_path(fx) == str(rootfs / "x")
        root.make_writable(fx, "x")
        assert stat.S_IMODE(os.stat(rootfs / "x").st_mode) == 0o755  # had u+rwx: untouched
        root.invalidate()
        fy = root.dir_fd("y")
        assert fy == fx  # the lowest free number: the one invalidate() closed
        assert root.fd_path(fy) == str(rootfs / "y")
        root.make_writable(fy, "y")
        assert stat.S_IMODE(os.stat(rootfs / "y").st_mode) == 0o700
        assert root.saved == {"y": (0o500, os.stat(rootfs / "y").st_atime_ns, os.stat(rootfs / "y").st_mtime_ns)}
        root.restore()
    assert stat.S_IMODE(os.stat(rootfs / "y").st_mode) == 0o500


def test_fd_path_of_an_fd_outside_the_cache_is_not_remembered(tmp_path):
    from ocilearn.core.fsutil import Root

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with Root(tmp_path) as root:
        fd = os.open(tmp_path / "a", os.O_PATH)
        assert root.fd_path(fd) == str(tmp_path / "a")
        os.close(fd)
        fd2 = os.open(tmp_path / "b", os.O_PATH)
        try:
            assert fd2 == fd
            assert root.fd_path(fd2) == str(tmp_path / "b")
        finally:
            os.close(fd2)
