"""Resolve paths *inside* a rootfs, never on the host: the safety core of layer extraction.

A layer's tar entries name paths as if the rootfs were ``/``. Two things make naive
``os.path.join(rootfs, name)`` unsafe (umoci CVE-2021-29136 and Docker CVE-2014-9356 both
came from this):

- the name itself can climb out (``../x``, ``/x`` — only lexical, easy), and
- a *symlink already in the rootfs* (``lnk -> /`` or ``up -> ../../..``) makes every host
  call that follows symlinks (``open``, ``mkdir -p``, ``chmod``) land outside.

:class:`Root` answers "which directory, inside the rootfs, holds this entry?" with a file
descriptor, resolving every component as the kernel would after ``chroot(rootfs)``:
``..`` at the root stays at the root and an absolute symlink target starts again at the
rootfs. Two implementations, same semantics:

1. ``openat2(2)`` with ``RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`` (Linux ≥ 5.6), called
   through ctypes because Python 3.11 has no wrapper — the kernel does the scoped walk;
2. a component-by-component walk with ``O_PATH | O_NOFOLLOW | O_DIRECTORY`` that reads each
   symlink itself (``readlinkat``) and re-queues its target, at most 40 links (``ELOOP``,
   like path_resolution(7)) — used when openat2 is missing, and always when directories
   must be *created* on the way.

The final component is never followed when creating or deleting: callers ``lstat`` it
and unlink/recreate it (image-spec layer.md "Changeset over existing files"). Every
``*at`` call uses the returned directory fd, so no later string join can escape.

Rootless helper: when not root, a directory without ``u+rwx`` cannot be entered or written
even by its owner; :class:`Root` can grant ``u+rwx`` temporarily and remembers the old mode
and timestamps so :meth:`Root.restore` puts them back deepest-first (umoci's rootless unpack does the same).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import posixpath
import resource
import stat
import tempfile
from collections import deque
from pathlib import Path
from typing import Callable

from . import syscalls as sc
from .errors import UnsafePath

__all__ = ["Root", "clean_path", "has_openat2", "remove_tree_at", "MAX_SYMLINKS"]

MAX_SYMLINKS = 40  # path_resolution(7): Linux's limit on symlinks followed in one lookup

_openat2_ok: bool | None = None


def _openat2(dirfd: int, path: str, flags: int, retries: int = 16) -> int:
    """openat2(2) with RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS. The kernel answers EAGAIN
    when a rename or mount elsewhere on the system happened during a ``..`` lookup and it
    cannot vouch that the walk stayed inside (openat2(2), "EAGAIN"): retried, as the man
    page advises, up to ``retries`` times."""
    for _ in range(retries):
        try:
            return sc.openat2(dirfd, path, flags | os.O_CLOEXEC, sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS)
        except BlockingIOError:  # EAGAIN
            continue
    return sc.openat2(dirfd, path, flags | os.O_CLOEXEC, sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS)


def has_openat2() -> bool:
    """True when the running kernel has openat2(2) (Linux ≥ 5.6) and allows it here
    (a seccomp filter may answer ENOSYS/EPERM)."""
    global _openat2_ok
    if _openat2_ok is None:
        root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.close(_openat2(root, ".", os.O_PATH | os.O_DIRECTORY))
            _openat2_ok = True
        except OSError:
            _openat2_ok = False
        finally:
            os.close(root)
    return _openat2_ok


def clean_path(name: str) -> str:
    """Lexically clean a tar entry name into a path relative to the rootfs.

    Strips leading ``/`` and ``./``, folds ``//``, ``.`` and ``..`` as if the name started at
    ``/`` (so ``../x`` → ``x``, ``/x`` → ``x``, ``a/..`` → ``""``). Returns ``""`` for the root
    itself. This is what umoci (``CleanPath``) and Docker do; it is only the first half of
    the safety — symlinks are handled by :class:`Root`.
    """
    p = posixpath.normpath("/" + name)
    return p.lstrip("/")


class Root:
    """A rootfs directory and an fd-based, in-root path resolver.

    Args:
        path: the rootfs directory (must exist and be a real directory, not a symlink).
        rootless: when True, directories lacking ``u+rwx`` are made writable on demand
            (see :meth:`make_writable`) and restored by :meth:`restore`.
        use_openat2: force (True/False) or auto-detect (None) the openat2 fast path.

    Use as a context manager, or call :meth:`close`. File descriptors it returns from
    :meth:`parent_of` / :meth:`dir_fd` belong to its cache: do not close them, and use
    each before asking for :attr:`cache_limit` more (the cache closes its least recently
    used fds beyond that many).

    Raises:
        UnsafePath: the rootfs itself is a symlink or not a directory.
    """

    def __init__(self, path: str | os.PathLike, *, rootless: bool = False, use_openat2: bool | None = None) -> None:
        self.path = os.fspath(path)
        try:
            self.fd = os.open(self.path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as e:
            raise UnsafePath(f"rootfs {self.path}: not a real directory ({e.strerror})") from None
        self.rootless = rootless
        self.openat2 = has_openat2() if use_openat2 is None else (use_openat2 and has_openat2())
        self._cache: dict[str, int] = {"": self.fd}
        # at most this many directory fds stay open (see _evict): a quarter of the fd limit
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.cache_limit = 256 if soft == resource.RLIM_INFINITY else max(16, min(256, soft // 4))
        self._cached_fds: set[int] = {self.fd}
        # what is known of the cached directory fds until the cache is invalidated: the
        # kernel's name of each (fd_path) and which have u+rwx (make_writable)
        self._names: dict[int, str] = {}
        self._writable: set[int] = set()
        # path -> (st_mode, atime_ns, mtime_ns) of directories made u+rwx temporarily
        self.saved: dict[str, tuple[int, int, int]] = {}

    # -- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> "Root":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close every cached fd and the root fd."""
        self.invalidate()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def invalidate(self, prefix: str | None = None, keep: int | None = None) -> None:
        """Forget cached directory fds (all, or those at/below ``prefix``). Call after
        anything that removes or replaces a directory or symlink — with no ``prefix``:
        the cache is keyed by the path *as written*, so a removed directory may also be
        cached under an alias through a symlink (a stale fd would then point at the removed one). ``keep``: an fd still in
        use by the caller whose directory was not removed (it stays cached)."""
        self._names.clear()
        self._writable.clear()
        for key in list(self._cache):
            if key == "" or (keep is not None and self._cache[key] == keep):
                continue
            if prefix is None or prefix == "" or key == prefix or key.startswith(prefix + "/"):
                fd = self._cache.pop(key)
                self._cached_fds.discard(fd)
                os.close(fd)

    # -- resolution ------------------------------------------------------------------

    def dir_fd(self, rel: str, *, create: bool = False, mode: int = 0o755, on_create: Callable[[str], None] | None = None) -> int:
        """An ``O_PATH`` fd of the directory ``rel`` (a :func:`clean_path` result),
        resolved inside the rootfs, following in-root symlinks.

        Args:
            create: make missing directories (mode ``mode``, like ``mkdir -p``); a
                component that exists but is not a directory (nor a symlink to one) is
                replaced by a directory (umoci ≥ 0.5 and overlayfs do the same; image-spec layer.md
                "Changeset over existing files": remove, then create).
            on_create: called with the in-root path of each directory made.

        Raises:
            FileNotFoundError / NotADirectoryError: missing component and not ``create``.
            UnsafePath: more than 40 symlinks (a loop).
        """
        fd = self._cache.pop(rel, None)
        if fd is not None:
            self._cache[rel] = fd  # the most recently used last (see _evict)
            return fd
        fd = -1
        if self.openat2:
            try:
                fd = _openat2(self.fd, rel, os.O_PATH | os.O_DIRECTORY)
            except OSError as e:
                if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.ELOOP, errno.EXDEV):
                    raise
        if fd < 0:
            fd = self._walk(rel, create=create, mode=mode, on_create=on_create)
        if len(self._cache) > self.cache_limit:
            self._evict(len(self._cache) - self.cache_limit * 3 // 4)  # a quarter at once: one pass over the cache
        self._cache[rel] = fd
        self._cached_fds.add(fd)
        return fd

    def _evict(self, n: int) -> None:
        """Close the ``n`` least recently used cached fds (never the root's). The cache
        is bounded so that a layer with more directories than the process may open files
        (RLIMIT_NOFILE, often 1024 for an ordinary user: getrlimit(2)) still unpacks. An
        fd just handed out is the most recently used one: callers use each fd before
        asking for a couple more, never across :attr:`cache_limit` calls."""
        for key in list(self._cache):
            if n <= 0:
                return
            if key == "":
                continue
            fd = self._cache.pop(key)
            self._cached_fds.discard(fd)
            self._names.pop(fd, None)
            self._writable.discard(fd)
            os.close(fd)
            n -= 1

    def fd_path(self, fd: int) -> str:
        """The kernel's name of the open directory ``fd`` (``readlink`` of
        ``/proc/self/fd/N``, proc(5)), a host path. For an fd of this Root's cache it is
        read once and remembered until :meth:`invalidate` — which everything that removes
        a directory calls, and nothing here renames one."""
        name = self._names.get(fd)
        if name is None:
            name = os.readlink(f"/proc/self/fd/{fd}")
            if fd in self._cached_fds:
                self._names[fd] = name
        return name

    def parent_of(self, rel: str, **kw) -> tuple[int, str]:
        """``(fd of the parent directory, basename)`` for a non-root in-root path; the
        parent is resolved with :meth:`dir_fd` (``**kw`` passed on), the basename is
        NOT followed."""
        if not rel:
            raise UnsafePath("the rootfs itself has no parent inside the rootfs")
        parent, _, base = rel.rpartition("/")
        return self.dir_fd(parent, **kw), base

    def _walk(self, rel: str, *, create: bool, mode: int, on_create) -> int:
        """The portable resolver (see the module docstring). Returns a new O_PATH fd."""
        stack: list[tuple[int, str]] = [(os.dup(self.fd), "")]
        queue = deque(c for c in rel.split("/") if c)
        links = 0
        try:
            while queue:
                comp = queue.popleft()
                if comp == ".":
                    continue
                if comp == "..":
                    if len(stack) > 1:
                        os.close(stack.pop()[0])
                    continue
                cur, cur_path = stack[-1]
                here = f"{cur_path}/{comp}" if cur_path else comp
                try:
                    nfd = os.open(comp, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
                except OSError as e:
                    if e.errno == errno.EACCES and self.rootless:
                        self.make_writable(cur, cur_path)
                        queue.appendleft(comp)
                        continue
                    if e.errno == errno.ENOENT:
                        if not create:
                            raise
                        self._mkdir(cur, cur_path, comp, mode)
                        if on_create:
                            on_create(here)
                        queue.appendleft(comp)
                        continue
                    if e.errno not in (errno.ENOTDIR, errno.ELOOP):
                        raise
                    st = os.stat(comp, dir_fd=cur, follow_symlinks=False)
                    if stat.S_ISLNK(st.st_mode):
                        links += 1
                        if links > MAX_SYMLINKS:
                            raise UnsafePath(f"{self.path}: too many levels of symbolic links resolving {rel!r} (ELOOP)")
                        target = os.readlink(comp, dir_fd=cur)
                        parts = [c for c in target.split("/") if c]
                        if target.startswith("/"):
                            while len(stack) > 1:
                                os.close(stack.pop()[0])
                        queue.extendleft(reversed(parts))
                        continue
                    if not create or links:
                        # reached through a symlink: never delete the link's target to make room
                        raise NotADirectoryError(errno.ENOTDIR, f"not a directory inside the rootfs: {here}")
                    # a non-directory named by the entry's own path where a directory is
                    # needed: replace it (layer.md "Changeset over existing files")
                    self.ensure_writable(cur, cur_path)
                    os.unlink(comp, dir_fd=cur)
                    self.invalidate(here)
                    queue.appendleft(comp)
                    continue
                stack.append((nfd, here))
            return os.dup(stack[-1][0])
        finally:
            for fd, _ in stack:
                os.close(fd)

    def _mkdir(self, parent: int, parent_path: str, name: str, mode: int) -> None:
        try:
            os.mkdir(name, mode, dir_fd=parent)
        except PermissionError:
            if not self.rootless:
                raise
            self.make_writable(parent, parent_path)
            os.mkdir(name, mode, dir_fd=parent)
        except FileExistsError:
            pass

    def resolve_path(self, rel: str) -> str:
        """The canonical in-root path of ``rel`` (no leading ``/``), following every
        symlink — the last component too — as the kernel would inside the rootfs.
        Components that do not exist are kept as written. Like ``realpath -m`` after
        ``chroot``; creates nothing.

        Raises: UnsafePath (symlink loop)."""
        names: list[str] = []
        queue = deque(c for c in rel.split("/") if c)
        links = 0
        fd = os.dup(self.fd)
        try:
            while queue:
                comp = queue.popleft()
                if comp == ".":
                    continue
                if comp == "..":
                    if names:
                        names.pop()
                        os.close(fd)
                        fd = self._walk("/".join(names), create=False, mode=0, on_create=None)
                    continue
                try:
                    st = os.stat(comp, dir_fd=fd, follow_symlinks=False)
                except (FileNotFoundError, NotADirectoryError, PermissionError):
                    names.append(comp)
                    names.extend(c for c in queue if c not in ("", "."))
                    return posixpath.normpath("/" + "/".join(names)).lstrip("/")
                if stat.S_ISLNK(st.st_mode):
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise UnsafePath(f"{self.path}: too many levels of symbolic links resolving {rel!r}")
                    target = os.readlink(comp, dir_fd=fd)
                    if target.startswith("/"):
                        names = []
                        os.close(fd)
                        fd = os.dup(self.fd)
                    queue.extendleft(reversed([c for c in target.split("/") if c]))
                    continue
                names.append(comp)
                if stat.S_ISDIR(st.st_mode):
                    nfd = os.open(comp, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                    os.close(fd)
                    fd = nfd
                elif queue:
                    names.extend(queue)
                    break
            return "/".join(names)
        finally:
            os.close(fd)

    def open_file(self, rel: str, flags: int = os.O_RDONLY) -> int:
        """Open the *regular* file at ``rel``, following symlinks *inside* the rootfs (an
        ``etc/passwd -> /etc/passwd`` link reads the rootfs's file, never the host's).

        The path is resolved to an ``O_PATH`` fd first (which opens nothing), checked
        with ``fstat`` and only a regular file is then opened (through
        ``/proc/self/fd/N``, with ``O_NONBLOCK``): an image's FIFO would block ``open``
        forever and a device node would be read from the host's device.

        Returns a new fd (caller closes). Raises FileNotFoundError, IsADirectoryError,
        UnsafePath (symlink loop, or not a regular file: FIFO, socket, device)."""
        rel = clean_path(rel)
        pfd = self._resolve_file(rel)
        try:
            st = os.fstat(pfd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), rel)
            if not stat.S_ISREG(st.st_mode):
                kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                        else "a character device" if stat.S_ISCHR(st.st_mode) else "a block device" if stat.S_ISBLK(st.st_mode) else "not a file")
                raise UnsafePath(f"{self.path}: /{rel} is {kind}, not a regular file (not opened: its open could block or reach a device)")
            return os.open(f"/proc/self/fd/{pfd}", flags | os.O_NONBLOCK | os.O_CLOEXEC)
        finally:
            os.close(pfd)

    def _resolve_file(self, rel: str) -> int:
        """An ``O_PATH`` fd of ``rel`` with every symlink (the last one too) followed inside
        the rootfs."""
        if self.openat2:
            try:
                return _openat2(self.fd, rel, os.O_PATH)
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.ELOOP, errno.ENOSYS, errno.EPERM):
                    raise
        for _ in range(MAX_SYMLINKS):
            parent, _, base = rel.rpartition("/")
            pfd = self._walk(parent, create=False, mode=0, on_create=None)
            try:
                fd = os.open(base or ".", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
                if not stat.S_ISLNK(os.fstat(fd).st_mode):
                    return fd
                os.close(fd)
                target = os.readlink(base, dir_fd=pfd)
                rel = clean_path(target if target.startswith("/") else f"{parent}/{target}")
            finally:
                os.close(pfd)
        raise UnsafePath(f"{self.path}: too many levels of symbolic links opening {rel!r}")

    # -- rootless helpers -------------------------------------------------------------

    def make_writable(self, fd: int, rel: str) -> None:
        """Grant ``u+rwx`` to the directory ``fd`` (in-root path ``rel``) if it lacks it,
        remembering its mode and times for :meth:`restore` (only the first time). A cached
        directory fd found or made ``u+rwx`` is not looked at again until
        :meth:`invalidate` (nothing in a layer takes ``u+rwx`` back before :meth:`restore`)."""
        if fd in self._writable:
            return
        st = os.fstat(fd)
        if st.st_mode & 0o700 != 0o700:
            if rel not in self.saved:
                self.saved[rel] = (stat.S_IMODE(st.st_mode), st.st_atime_ns, st.st_mtime_ns)
            os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(st.st_mode) | 0o700)
        if fd in self._cached_fds:
            self._writable.add(fd)

    def ensure_writable(self, fd: int, rel: str) -> None:
        """In rootless mode, :meth:`make_writable`; as root (CAP_DAC_OVERRIDE) a no-op."""
        if self.rootless:
            self.make_writable(fd, rel)

    def restore(self, final: dict[str, tuple[int, int, int]] | None = None) -> None:
        """Put back directory modes and timestamps, deepest first.

        Args:
            final: ``{path: (mode, atime_ns, mtime_ns)}`` wanted for directories (a layer's
                directory entries); takes precedence over what :meth:`make_writable` saved.
        """
        todo = dict(self.saved)
        todo.update(final or {})
        self.saved.clear()
        for rel in sorted(todo, key=lambda p: (-p.count("/") if p else 1, p)):
            mode, atime, mtime = todo[rel]
            try:
                fd = self.dir_fd(rel) if rel else self.fd
            except OSError:
                continue  # removed later in the layer
            os.chmod(f"/proc/self/fd/{fd}", mode)
            os.utime(f"/proc/self/fd/{fd}", ns=(atime, mtime))
        self.invalidate()


def _grant(dir_fd: int, name: str, st: os.stat_result) -> None:
    """Give the owner rwx on the *directory* ``name`` (never on what a symlink swapped in
    for it after the lstat points to: chmod goes through an ``O_PATH|O_NOFOLLOW|O_DIRECTORY``
    handle of the entry itself)."""
    if st.st_mode & 0o700 != 0o700:
        try:
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError as e:
            if e.errno in (errno.ENOTDIR, errno.ELOOP, errno.ENOENT):
                return  # no longer a directory: nothing to grant
            raise
        try:
            os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(st.st_mode) | 0o700)
        finally:
            os.close(fd)


def _enter_or_unlink(dir_fd: int, name: str) -> int | None:
    """For :func:`remove_tree_at`: a missing ``name`` → None; a non-directory is unlinked
    → None; a directory is made searchable (:func:`_grant`) and opened without following
    a symlink → its fd."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return None
    _grant(dir_fd, name, st)
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


def _unlink_files(fd: int) -> list[str]:
    """Unlink every non-directory in the directory ``fd``; return its subdirectory names."""
    dirs = []
    with os.scandir(fd) as it:
        for ent in it:
            if ent.is_dir(follow_symlinks=False):
                dirs.append(ent.name)
            else:
                try:
                    os.unlink(ent.name, dir_fd=fd)
                except FileNotFoundError:
                    pass
    return dirs


def remove_tree_at(dir_fd: int, name: str, on_dir_removed: Callable[[str], None] | None = None) -> None:
    """``rm -rf`` of ``name`` in the directory ``dir_fd``, without recursion (any depth:
    a recursive walk overflows Python's stack on a 1000-level tree) and without following
    symlinks. Directories lacking ``u+rwx`` are granted it first (rootless trees with
    ``0o000`` directories). At most two directory fds are open at a time: it goes down
    with ``openat(O_NOFOLLOW)`` and back up with ``openat("..")``, checking that ``..``
    is the directory it came from (device and inode).

    Args:
        on_dir_removed: called with the path of each removed directory relative to
            ``name`` (``""`` for ``name`` itself), deepest first.

    Raises: OSError (e.g. a directory that a concurrent process keeps filling:
        ENOTEMPTY; ``..`` moved: ESTALE). A missing ``name`` is not an error."""
    fd = _enter_or_unlink(dir_fd, name)
    if fd is None:
        return
    path: list[str] = []  # names from `name` down to the directory `fd` is
    ids: list[tuple[int, int]] = []  # (st_dev, st_ino) of each directory above `fd`
    pending: list[list[str]] = []  # subdirectories left to remove, per level
    try:
        pending.append(_unlink_files(fd))
        while True:
            if pending[-1]:
                child = pending[-1].pop()
                nfd = _enter_or_unlink(fd, child)
                if nfd is None:
                    continue
                here = os.fstat(fd)
                os.close(fd)
                fd = nfd
                ids.append((here.st_dev, here.st_ino))
                path.append(child)
                pending.append(_unlink_files(fd))
                continue
            pending.pop()
            if not path:
                break
            child = path.pop()
            up = os.open("..", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = up
            ust = os.fstat(fd)
            if (ust.st_dev, ust.st_ino) != ids.pop():
                raise OSError(errno.ESTALE, f"directory moved while removing it: {name}/{'/'.join(path)}")
            os.rmdir(child, dir_fd=fd)
            if on_dir_removed is not None:
                on_dir_removed("/".join([*path, child]))
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)
    if on_dir_removed is not None:
        on_dir_removed("")


# ---------------------------------------------------------------- atomic writes

#: prefix of the temp files :func:`atomic_write` and the image layout's writers make
TMP_PREFIX = ".tmp-"


class WriteFailed(OSError):
    """A write to a file failed (``ENOSPC``, ``EDQUOT``, ``EIO`` …): an :class:`OSError`
    with the same ``errno`` whose message names the file being written, e.g.
    ``writing LAYOUT/blobs/sha256/ab12…: No space left on device`` — the bare
    ``[Errno 28] No space left on device`` does not say which disk filled up."""

    def __str__(self) -> str:
        return f"writing {self.filename}: {self.strerror}"


def write_failed(e: OSError, target: str | os.PathLike) -> OSError:
    """``e`` as a :class:`WriteFailed` naming ``target`` (``e`` itself when it already
    names a file or has no errno)."""
    if isinstance(e, WriteFailed) or e.errno is None:
        return e
    return WriteFailed(e.errno, e.strerror or os.strerror(e.errno), os.fspath(target))


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def locked_temp(directory: Path) -> tuple[int, str]:
    """``mkstemp`` in ``directory`` (name ``.tmp-*``), holding an exclusive ``flock(2)``
    on the new file from the moment it can be seen.

    A sweeper (:func:`ocilearn.image.layout.sweep_temp_files`) removes only temp files whose lock it can take.
    Between ``mkstemp`` and ``flock`` a sweeper may take the lock and unlink the file; the
    link count then is 0 and another temp file is made, so a live writer never loses its
    file. The lock is released when the fd is closed — writers rename *before* closing.
    """
    while True:
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=directory)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:
            return fd, tmp
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically: temp file in the same directory, write,
    fsync, rename over ``path``, fsync the directory. Readers see the old or the new
    content, never a part; a process killed half-way leaves ``path`` as it was plus a
    ``.tmp-*`` file that :func:`ocilearn.image.layout.sweep_temp_files` (``ocilearn layout gc``) removes.

    Raises:
        WriteFailed: a write error (e.g. ``ENOSPC``), naming ``path``.
    """
    path = Path(path)
    try:
        fd, tmp = locked_temp(path.parent)
    except OSError as e:
        raise write_failed(e, path) from e
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
                os.fchmod(f.fileno(), mode)
                os.replace(tmp, path)  # while the lock is held: a sweeper never takes it
            except OSError as e:
                raise write_failed(e, path) from e
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
