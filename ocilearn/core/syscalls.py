"""ctypes wrappers for the Linux syscalls the Python 3.11 standard library lacks.

Each wrapper raises :class:`OSError` with the real ``errno`` on failure (like the ``os``
module does), and names its man page. Only the C library is loaded (``CDLL(None)``), so
importing this module costs well under a millisecond.

Python 3.12 added ``os.unshare``/``os.setns``; ocilearn supports 3.11, hence ctypes.
"""

from __future__ import annotations

import ctypes
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)

# --- clone(2) / unshare(2) / setns(2) namespace flags (linux/sched.h) ---
CLONE_NEWNS = 0x00020000  #: mount namespace, mount_namespaces(7)
CLONE_NEWCGROUP = 0x02000000  #: cgroup namespace, cgroup_namespaces(7)
CLONE_NEWUTS = 0x04000000  #: hostname/domainname, uts_namespaces(7)
CLONE_NEWIPC = 0x08000000  #: System V IPC + POSIX mqueues, ipc_namespaces(7)
CLONE_NEWUSER = 0x10000000  #: uid/gid mappings + capabilities, user_namespaces(7)
CLONE_NEWPID = 0x20000000  #: process IDs, pid_namespaces(7)
CLONE_NEWNET = 0x40000000  #: network stack, network_namespaces(7)

#: runtime-spec config-linux.md "Namespaces" type -> (clone flag, /proc/PID/ns entry name)
NAMESPACES: dict[str, tuple[int, str]] = {
    "user": (CLONE_NEWUSER, "user"),
    "mount": (CLONE_NEWNS, "mnt"),
    "pid": (CLONE_NEWPID, "pid"),
    "uts": (CLONE_NEWUTS, "uts"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "network": (CLONE_NEWNET, "net"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
}

# --- mount(2) flags (linux/mount.h) ---
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

# umount2(2) flags
MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

# --- prctl(2) options (linux/prctl.h) ---
PR_SET_PDEATHSIG = 1
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_GET_PDEATHSIG = 2
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_LOWER = 3
PR_CAP_AMBIENT_CLEAR_ALL = 4

# --- capabilities(7), linux/capability.h ---
CAPS: dict[str, int] = {
    name: i
    for i, name in enumerate(
        """CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP
        LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER
        SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE
        SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP
        MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF
        CHECKPOINT_RESTORE""".split()
    )
}
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# syscall numbers the C library has no wrapper for (asm/unistd.h)
_SYS = {
    "x86_64": {"pivot_root": 155, "close_range": 436, "openat2": 437, "bpf": 321, "mount_setattr": 442, "keyctl": 250},
    "aarch64": {"pivot_root": 41, "close_range": 436, "openat2": 437, "bpf": 280, "mount_setattr": 442, "keyctl": 219},
}.get(os.uname().machine, {"pivot_root": 155, "close_range": 436, "openat2": 437, "bpf": 321, "mount_setattr": 442, "keyctl": 250})

_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long


def _check(rv: int, what: str, path: str | bytes | None = None) -> int:
    if rv < 0:
        err = ctypes.get_errno()
        if path is not None:
            raise OSError(err, f"{what}: {os.strerror(err)}", os.fsdecode(path))
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return rv


def _b(s: str | bytes | os.PathLike | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces (``CLONE_NEW*`` flags). unshare(2).

    With ``CLONE_NEWPID`` only the *children* land in the new PID namespace: the first
    becomes its PID 1, later ones get PIDs 2, 3 … while PID 1 lives; once PID 1 has exited,
    fork fails with ENOMEM (pid_namespaces(7)). So unshare in a throwaway intermediate
    process, never in a long-lived one.
    Raises OSError (EPERM without CAP_SYS_ADMIN, EINVAL for a bad flag)."""
    _check(_libc.unshare(flags), f"unshare(0x{flags:x})")


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace open as ``fd`` (an fd of ``/proc/PID/ns/TYPE``). setns(2).
    ``nstype`` 0 accepts any type. Joining a PID namespace affects children only."""
    _check(_libc.setns(fd, nstype), f"setns(fd {fd}, 0x{nstype:x})")


def mount(source: str | bytes | None, target: str | bytes, fstype: str | bytes | None = None, flags: int = 0, data: str | bytes | None = None) -> None:
    """Attach a filesystem, or change a mount (bind, remount, propagation). mount(2).
    Raises OSError naming ``target`` (ENOENT, EPERM, EINVAL …)."""
    d = _b(data)
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, d), f"mount({source!s} -> {target!s}, type {fstype}, flags 0x{flags:x}, {data!s})", target)


def umount2(target: str | bytes, flags: int = 0) -> None:
    """Detach a mount; ``MNT_DETACH`` makes it lazy. umount2(2)."""
    _check(_libc.umount2(_b(target), flags), f"umount2(flags {flags})", target)


PIVOT_ROOT_EBUSY_HINT = (
    "pivot_root(2) EBUSY: the new root or put-old is on the current root mount (the rootfs directory is "
    "not a mount point of its own: bind-mount it onto itself first)"
)
PIVOT_ROOT_EINVAL_HINT = (
    "pivot_root(2) EINVAL: one of: the new root is not a mount point (bind-mount the rootfs onto itself), "
    "the new root or its parent has shared propagation (remount / rprivate or rslave in the new mount "
    "namespace first), the put-old directory is not under the new root, the current root is the initramfs "
    "'rootfs' (cannot be pivoted: use MS_MOVE + chroot), or the caller is not in its own mount namespace"
)


def pivot_root(new_root: str | bytes, put_old: str | bytes) -> None:
    """Make ``new_root`` the root of the calling mount namespace and move the old root to
    ``put_old``. pivot_root(2) (no libc wrapper: ``syscall(SYS_pivot_root)``).
    ``pivot_root(".", ".")`` stacks the old root on the new one, to be lazily unmounted.
    EINVAL (and EBUSY) are raised with a message listing the causes pivot_root(2) documents."""
    rv = _libc.syscall(_SYS["pivot_root"], _b(new_root), _b(put_old))
    if rv < 0:
        err = ctypes.get_errno()
        if err in (16, 22):
            raise OSError(err, PIVOT_ROOT_EBUSY_HINT if err == 16 else PIVOT_ROOT_EINVAL_HINT, os.fsdecode(new_root))
        _check(rv, "pivot_root", new_root)


def sethostname(name: str) -> None:
    """Set the hostname of the calling UTS namespace. sethostname(2)."""
    b = name.encode()
    _check(_libc.sethostname(b, len(b)), f"sethostname({name!r})")


def setdomainname(name: str) -> None:
    """Set the NIS domain name of the calling UTS namespace. setdomainname(2)."""
    b = name.encode()
    _check(_libc.setdomainname(b, len(b)), f"setdomainname({name!r})")


def prctl(option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int:
    """Process control: no_new_privs, parent-death signal, bounding set, ambient set,
    child subreaper … prctl(2). Returns the call's result; raises OSError."""
    return _check(_libc.prctl(option, a2, a3, a4, a5), f"prctl({option})")


SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>
_libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]


def start_writeback(fd: int, offset: int, nbytes: int) -> bool:
    """Ask the kernel to start writing ``nbytes`` bytes of ``fd`` from ``offset`` to disk,
    without waiting (sync_file_range(2) with ``SYNC_FILE_RANGE_WRITE``): a later fsync(2)
    then has less left to wait for. A hint only — it makes nothing durable (the caller
    still fsyncs) — so a file system that refuses it (EINVAL, ESPIPE) returns False."""
    return _libc.sync_file_range(fd, offset, nbytes, SYNC_FILE_RANGE_WRITE) == 0


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    """Close every fd from ``first`` to ``last``. close_range(2); falls back to
    ``os.closerange`` when the kernel lacks it."""
    if _libc.syscall(_SYS["close_range"], first, last, flags) < 0:
        os.closerange(first, min(last, os.sysconf("SC_OPEN_MAX")))


# openat2(2) "resolve" flags (linux/openat2.h)
RESOLVE_NO_MAGICLINKS = 0x02  #: refuse /proc/PID/fd-style "magic links"
RESOLVE_IN_ROOT = 0x10  #: resolve as if dirfd were the root: "..", absolute symlinks stay inside


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str | bytes, flags: int, resolve: int, mode: int = 0) -> int:
    """Open ``path`` relative to ``dirfd`` with ``resolve`` restrictions; returns the fd.
    openat2(2) (Linux ≥ 5.6; no libc wrapper: ``syscall(SYS_openat2)``). Raises OSError
    with the real errno (ENOSYS on older kernels, EAGAIN when the kernel could not vouch
    for a ``..`` walk during a concurrent rename — the man page advises a retry)."""
    how = _OpenHow(flags, mode, resolve)
    fd = _libc.syscall(ctypes.c_long(_SYS["openat2"]), ctypes.c_int(dirfd), ctypes.c_char_p(_b(path)), ctypes.byref(how),
                       ctypes.c_size_t(ctypes.sizeof(how)))
    return _check(fd, "openat2", path)


def syncfs(fd: int) -> None:
    """Flush the whole filesystem that holds ``fd`` to disk. syncfs(2)."""
    _check(_libc.syncfs(fd), "syncfs")


# mount_setattr(2) (linux/mount.h)
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000


def mount_setattr(path: str | bytes, attr_set: int, attr_clr: int = 0, *, recursive: bool = True) -> None:
    """Change the attributes of the mount at ``path`` (and, ``recursive``, of every mount
    below it: AT_RECURSIVE) — mount_setattr(2), Linux 5.12. ``attr_set``/``attr_clr`` are
    MOUNT_ATTR_* bits. Raises OSError (ENOSYS on older kernels) naming ``path``."""
    attr = struct.pack("QQQQ", attr_set, attr_clr, 0, 0)
    buf = ctypes.create_string_buffer(attr, len(attr))
    rv = _libc.syscall(_SYS["mount_setattr"], ctypes.c_int(AT_FDCWD), _b(path), ctypes.c_uint(AT_RECURSIVE if recursive else 0),
                       buf, ctypes.c_size_t(len(attr)))
    _check(rv, f"mount_setattr(set 0x{attr_set:x}, clear 0x{attr_clr:x})", path)


def bpf(cmd: int, attr: bytearray) -> int:
    """The bpf(2) system call (no libc wrapper): ``cmd`` (BPF_PROG_LOAD, BPF_PROG_ATTACH …)
    with ``attr``, the ``union bpf_attr`` bytes (linux/bpf.h; zero-padded). Returns the
    call's result (a new fd for BPF_PROG_LOAD). Raises OSError."""
    buf = (ctypes.c_char * len(attr)).from_buffer(attr)
    return _check(_libc.syscall(_SYS["bpf"], ctypes.c_int(cmd), buf, ctypes.c_uint(len(attr))), f"bpf(cmd {cmd})")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def capget(pid: int = 0) -> tuple[int, int, int]:
    """The (effective, permitted, inheritable) capability sets of ``pid`` (0 = caller) as
    64-bit masks (bit N = capability N of capabilities(7)). capget(2)."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(hdr), data), "capget")
    return tuple(data[0].__getattribute__(f) | (data[1].__getattribute__(f) << 32) for f in ("effective", "permitted", "inheritable"))  # type: ignore[return-value]


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the caller's effective, permitted and inheritable capability sets (64-bit
    masks). capset(2): permitted may only shrink; effective ⊆ permitted. Raises OSError."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> (32 * i)) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(hdr), data), "capset")


def last_cap() -> int:
    """The highest capability number this kernel knows (/proc/sys/kernel/cap_last_cap)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return max(CAPS.values())


def cap_mask(names: list[str] | None) -> int:
    """A bit mask from runtime-spec capability names (``"CAP_KILL"``); unknown names
    raise ValueError (config.md "capabilities")."""
    m = 0
    for n in names or []:
        key = n.upper().removeprefix("CAP_")
        if key not in CAPS:
            raise ValueError(f"unknown capability {n!r} (capabilities(7))")
        m |= 1 << CAPS[key]
    return m


def set_dumpable(on: bool) -> None:
    """prctl(PR_SET_DUMPABLE): a non-dumpable process's ``/proc/PID/exe``, ``environ``,
    ``mem``, ``fd/`` and ``ns/`` are refused (EACCES/EPERM) to anyone without
    CAP_SYS_PTRACE in the user namespace that owns its memory (ptrace(2) "Ptrace access
    mode checking", proc(5)). execve(2) resets it for the new program. runc does this in
    every ``runc init`` before it joins a container (CVE-2019-5736)."""
    prctl(PR_SET_DUMPABLE, 1 if on else 0)


def scrub_environ() -> None:
    """Zero this process's original environment block (``env_start``..``env_end`` from
    /proc/self/stat, proc(5)), which is what ``/proc/PID/environ`` shows: a forked runtime
    process about to enter a container must not carry the operator's variables (tokens,
    passwords) in its memory. ``os.environ`` (a copy) is left as it is; the container
    program gets its own env from execve(2)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            data = f.read()
        fields = data[data.rindex(b")") + 2:].split()
        start, end = int(fields[47]), int(fields[48])  # fields 50, 51 of proc(5) "stat"
    except (OSError, ValueError, IndexError):
        return
    if 0 < start < end:
        ctypes.memset(start, 0, end - start)


def set_child_subreaper(on: bool) -> bool:
    """Make the caller a *child subreaper* (or stop being one) and return whether it was
    one before. prctl(2) PR_SET_CHILD_SUBREAPER: when a descendant's parent exits, the
    orphan is re-parented to the nearest living subreaper ancestor instead of to PID 1 of
    the PID namespace, so that the subreaper can wait(2) for it. conmon and
    containerd-shim are subreapers; a runtime is one while its intermediate child exits
    (runc gets the same effect from clone(2) CLONE_PARENT)."""
    was = ctypes.c_int(0)
    _check(_libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.addressof(was), 0, 0, 0), "prctl(PR_GET_CHILD_SUBREAPER)")
    prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0)
    return bool(was.value)


KEYCTL_DESCRIBE, KEYCTL_SETPERM, KEYCTL_JOIN_SESSION_KEYRING = 6, 5, 1


def join_session_keyring(name: str, setbits: int) -> int | None:
    """Join a new session keyring called ``name`` (keyctl(2) KEYCTL_JOIN_SESSION_KEYRING,
    keyrings(7)) so the caller no longer shares the session keyring it inherited, then
    add ``setbits`` to its permission mask (KEYCTL_DESCRIBE, KEYCTL_SETPERM) as runc does
    for each container ("_ses.ID"; possessor-search for the uid, or "other"-search in a
    user namespace). Returns the keyring's serial, or None when the kernel has no keyrings
    (ENOSYS; runc goes on then too). Raises OSError."""
    libc_syscall = _libc.syscall
    serial = libc_syscall(_SYS["keyctl"], KEYCTL_JOIN_SESSION_KEYRING, ctypes.c_char_p(name.encode()), 0, 0, 0)
    if serial < 0:
        if ctypes.get_errno() == 38:  # ENOSYS
            return None
        _check(-1, f"keyctl(KEYCTL_JOIN_SESSION_KEYRING, {name!r})")
    buf = ctypes.create_string_buffer(512)
    n = libc_syscall(_SYS["keyctl"], KEYCTL_DESCRIBE, serial, buf, len(buf), 0)
    _check(n, "keyctl(KEYCTL_DESCRIBE)")
    # "type;uid;gid;perm;description" with perm in hex (keyctl_describe(3))
    perm = int(buf.value.split(b";")[3], 16)
    _check(libc_syscall(_SYS["keyctl"], KEYCTL_SETPERM, serial, (perm & 0xFFFFFFFF) | setbits, 0, 0), "keyctl(KEYCTL_SETPERM)")
    return serial
