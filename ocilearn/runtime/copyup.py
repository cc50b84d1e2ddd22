"""``tmpcopyup``: a tmpfs mounted over a directory of the image starts with that
directory's content, as with runc (runc's mount option extension ``tmpcopyup``; podman
adds it to ``--tmpfs`` and ``--mount type=tmpfs`` mounts, and ``--read-only`` mounts
``/run``, ``/tmp`` and ``/var/tmp`` that way).

runc mounts the tmpfs on a temporary directory, copies the destination's files into it,
then moves the mount onto the destination (MS_MOVE). Here a directory fd opened on the
destination *before* the tmpfs covers it still reads the image's files (an open fd keeps
naming the directory it was opened on, not the mount stacked on top), so the copy goes
straight from that fd into the new tmpfs: no temporary directory on the host.
"""

from __future__ import annotations

import errno
import os
import stat


def _chown(path: str, st: os.stat_result) -> None:
    try:
        os.chown(path, st.st_uid, st.st_gid, follow_symlinks=False)
    except OSError as e:
        # EINVAL: the owner is not mapped in this user namespace (rootless); the copy then
        # belongs to the namespace's root, as files written by the container would
        if e.errno != errno.EINVAL:
            raise


def copy_tree(src_fd: int, dest: str) -> int:
    """Copy every entry below the directory open as ``src_fd`` into the directory
    ``dest``: directories, regular files (content), symlinks (as links, never followed),
    device nodes, fifos and sockets (mknod(2)), each with its owner and mode (set-id bits
    included); times are those of the copy, as with runc's copy. Returns the number of
    entries copied. Raises OSError."""
    n = 0
    with os.scandir(src_fd) as it:
        names = [e.name for e in it]
    for name in names:
        st = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
        target = os.path.join(dest, name)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(target, 0o700)
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_fd)
            try:
                n += copy_tree(sub, target)
            finally:
                os.close(sub)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src_fd), target)
        elif stat.S_ISREG(st.st_mode):
            rfd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_fd)
            try:
                wfd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                try:
                    left = st.st_size
                    while left > 0:
                        sent = os.sendfile(wfd, rfd, None, left)
                        if sent == 0:
                            break
                        left -= sent
                finally:
                    os.close(wfd)
            finally:
                os.close(rfd)
        else:  # character/block devices, fifos, sockets
            os.mknod(target, st.st_mode, st.st_rdev)
        _chown(target, st)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(target, mode)  # after chown, which clears set-id bits
        n += 1
    return n
