"""The container's filesystem view: mounts from config.json, ``/dev``, pivot_root, masked
and read-only paths (runtime-spec config.md "Root", "Mounts"; config-linux.md "Devices",
"Default Devices", "Masked Paths", "Readonly Paths", "Rootfs Mount Propagation").

Every path from the config is resolved *inside* the rootfs with :func:`resolve_in_root`,
which follows symlinks as if the rootfs were ``/``: a link can never lead out of it.
All functions here run in the container's own mount namespace (after unshare(CLONE_NEWNS)).
"""

from __future__ import annotations

import errno
import os
import stat

from ..core import syscalls as sc
from . import step
from .labels import mount_data

# mount(8) option -> (set flags, clear flags); anything else is filesystem data
MOUNT_FLAGS: dict[str, tuple[int, int]] = {
    "defaults": (0, 0),
    "ro": (sc.MS_RDONLY, 0), "rw": (0, sc.MS_RDONLY),
    "nosuid": (sc.MS_NOSUID, 0), "suid": (0, sc.MS_NOSUID),
    "nodev": (sc.MS_NODEV, 0), "dev": (0, sc.MS_NODEV),
    "noexec": (sc.MS_NOEXEC, 0), "exec": (0, sc.MS_NOEXEC),
    "sync": (sc.MS_SYNCHRONOUS, 0), "async": (0, sc.MS_SYNCHRONOUS),
    "dirsync": (sc.MS_DIRSYNC, 0), "mand": (sc.MS_MANDLOCK, 0), "nomand": (0, sc.MS_MANDLOCK),
    "noatime": (sc.MS_NOATIME, 0), "atime": (0, sc.MS_NOATIME),
    "nodiratime": (sc.MS_NODIRATIME, 0), "diratime": (0, sc.MS_NODIRATIME),
    "relatime": (sc.MS_RELATIME, 0), "norelatime": (0, sc.MS_RELATIME),
    "strictatime": (sc.MS_STRICTATIME, 0), "nostrictatime": (0, sc.MS_STRICTATIME),
    "lazytime": (sc.MS_LAZYTIME, 0), "nosymfollow": (sc.MS_NOSYMFOLLOW, 0),
    "bind": (sc.MS_BIND, 0), "rbind": (sc.MS_BIND | sc.MS_REC, 0), "remount": (sc.MS_REMOUNT, 0),
}
PROPAGATION: dict[str, int] = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
#: recursive mount attributes (runc 1.1 "rro", "rnosuid" …): applied to the mount and every
#: mount below it with mount_setattr(2) AT_RECURSIVE -> (attributes set, attributes cleared)
RECURSIVE_OPTIONS: dict[str, tuple[int, int]] = {
    "rro": (sc.MOUNT_ATTR_RDONLY, 0), "rrw": (0, sc.MOUNT_ATTR_RDONLY),
    "rnosuid": (sc.MOUNT_ATTR_NOSUID, 0), "rsuid": (0, sc.MOUNT_ATTR_NOSUID),
    "rnodev": (sc.MOUNT_ATTR_NODEV, 0), "rdev": (0, sc.MOUNT_ATTR_NODEV),
    "rnoexec": (sc.MOUNT_ATTR_NOEXEC, 0), "rexec": (0, sc.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (sc.MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, sc.MOUNT_ATTR_NODIRATIME),
    "rrelatime": (sc.MOUNT_ATTR_RELATIME, sc.MOUNT_ATTR__ATIME), "rnorelatime": (0, sc.MOUNT_ATTR__ATIME),
    "rnoatime": (sc.MOUNT_ATTR_NOATIME, sc.MOUNT_ATTR__ATIME), "ratime": (0, sc.MOUNT_ATTR__ATIME),
    "rstrictatime": (sc.MOUNT_ATTR_STRICTATIME, sc.MOUNT_ATTR__ATIME), "rnostrictatime": (0, sc.MOUNT_ATTR__ATIME),
    "rnosymfollow": (sc.MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, sc.MOUNT_ATTR_NOSYMFOLLOW),
}
#: options runc understands that ocilearn does not apply: refused naming the option
#: (runtime-spec config.md "Mounts")
UNSUPPORTED_OPTIONS: dict[str, str] = {
    "idmap": "id-mapped mounts are not implemented", "ridmap": "id-mapped mounts are not implemented",
}
#: runc's extension: fill a new tmpfs with what the image had at its destination
TMPCOPYUP = "tmpcopyup"
# statvfs(3) f_flag bits that the kernel "locks" on a bind mount made in a user namespace
_ST_LOCKED = {os.ST_RDONLY: sc.MS_RDONLY, os.ST_NOSUID: sc.MS_NOSUID, os.ST_NODEV: sc.MS_NODEV, os.ST_NOEXEC: sc.MS_NOEXEC}

#: runtime-spec config-linux.md "Default Devices": name -> (major, minor, mode)
DEFAULT_DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}
DEV_SYMLINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2", "core": "/proc/kcore"}


def parse_options(options: list[str] | None) -> tuple[int, int, str]:
    """Split mount options into (flags, propagation flags, data string) as mount(8) and runc
    do. Returns bit masks for mount(2) and the comma-joined filesystem-specific data;
    ``tmpcopyup`` is neither (see :func:`mount_one`)."""
    flags, prop, data = 0, 0, []
    for o in options or []:
        if o == TMPCOPYUP or o in RECURSIVE_OPTIONS:
            continue
        if o in MOUNT_FLAGS:
            s, c = MOUNT_FLAGS[o]
            flags = (flags | s) & ~c
        elif o in PROPAGATION:
            prop |= PROPAGATION[o]
        else:
            data.append(o)
    return flags, prop, ",".join(data)


def resolve_in_root(root: str, path: str, max_links: int = 255) -> str:
    """The host path of ``path`` interpreted inside ``root``: symlinks are followed with
    ``root`` as ``/`` and ``..`` stops at ``root`` (like github.com/cyphar/filepath-securejoin).
    Missing components are kept literally. Returns an absolute path under ``root``.
    Raises OSError(ELOOP) after ``max_links`` symlinks."""
    root = os.path.abspath(root)
    parts = [p for p in path.split("/") if p]
    done: list[str] = []
    links = 0
    while parts:
        comp = parts.pop(0)
        if comp == ".":
            continue
        if comp == "..":
            if done:
                done.pop()
            continue
        cand = os.path.join(root, *done, comp)
        try:
            st = os.lstat(cand)
        except FileNotFoundError:
            done.append(comp)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > max_links:
                raise OSError(errno.ELOOP, "too many symlinks resolving inside the rootfs", path)
            target = os.readlink(cand)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        done.append(comp)
    return os.path.join(root, *done)


def mkdir_in_root(root: str, path: str, mode: int = 0o755) -> str:
    """Create directory ``path`` inside ``root`` (like ``mkdir -p``) without following any
    symlink out of it; returns its host path."""
    host = resolve_in_root(root, path)
    rel = os.path.relpath(host, root)
    cur = root
    for comp in [] if rel == "." else rel.split("/"):
        cur = os.path.join(cur, comp)
        try:
            os.mkdir(cur, mode)
        except FileExistsError:
            if not os.path.isdir(cur) or os.path.islink(cur):
                raise OSError(errno.ENOTDIR, "mount destination component is not a directory inside the rootfs", cur)
    return host


def _touch_in_root(root: str, path: str) -> str:
    host = resolve_in_root(root, path)
    mkdir_in_root(root, os.path.dirname(os.path.relpath(host, root)) or ".")
    if not os.path.lexists(host):
        os.close(os.open(host, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644))
    return host


def _locked_flags(path: str) -> int:
    f = os.statvfs(path).f_flag
    return sum(v for k, v in _ST_LOCKED.items() if f & k)


def make_root_private(propagation: str | None = None) -> None:
    """Stop mount events of the container reaching the host: remount ``/`` recursively as
    slave (runc's default) or private. mount(2) MS_REC|MS_SLAVE (pivot_root(2) fails with EINVAL under "shared" propagation)."""
    flag = sc.MS_REC | (sc.MS_PRIVATE if propagation and "private" in propagation else sc.MS_SLAVE)
    sc.mount(None, "/", None, flag)
    step("runtime", "mount --make-rslave /", "host mounts stay untouched by the container's", "mount --make-rslave /")


def bind_rootfs(rootfs: str) -> None:
    """Bind-mount the rootfs onto itself so it is a mount point, as pivot_root(2) requires
    (a plain directory as rootfs is not one; pivot_root(2) EINVAL)."""
    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)
    step("runtime", "bind rootfs", rootfs, f"mount --rbind {rootfs} {rootfs}")


def mount_one(rootfs: str, m: dict, *, userns: bool = False, cgroup_paths: dict[str, str] | None = None, cgroupns: bool = False,
              mount_label: str | None = None) -> None:
    """Perform one ``mounts[]`` entry of config.json below ``rootfs``.
    (The tmpfs under a ``cgroup`` mount stays writable, as with runc 1.1.)

    The destination is resolved inside the rootfs and created (a file for a bind of a
    file). Bind mounts are remounted to apply ro/nosuid/nodev/noexec (keeping flags the
    kernel locks in a user namespace). ``type: cgroup`` is the container's own cgroups:
    a tmpfs with one read-only bind (or fresh cgroup mount in a cgroup namespace) per
    hierarchy in ``cgroup_paths`` (mount point name -> host directory). Other types get
    ``mount_label`` as ``context=`` (SELinux, :func:`.labels.mount_data`); a tmpfs with
    ``tmpcopyup`` starts with a copy of what the rootfs had at the destination (runc's
    extension, used by podman for ``--read-only`` and ``--tmpfs``); recursive options
    (``rro``, ``rnosuid`` …) are applied last with mount_setattr(2) AT_RECURSIVE.
    Raises OSError naming the destination."""
    dest_rel = m["destination"]
    typ = m.get("type") or ""
    src = m.get("source") or typ or "none"
    flags, prop, data = parse_options(m.get("options"))
    is_bind = bool(flags & sc.MS_BIND) or typ == "bind"
    if is_bind:
        flags |= sc.MS_BIND
        if not os.path.isabs(src):
            raise OSError(errno.EINVAL, "bind mount source must be absolute", src)
        dest = _touch_in_root(rootfs, dest_rel) if not os.path.isdir(src) else mkdir_in_root(rootfs, dest_rel)
        sc.mount(src, dest, None, sc.MS_BIND | (flags & sc.MS_REC))
        extra = flags & ~(sc.MS_BIND | sc.MS_REC)
        if extra:
            sc.mount(None, dest, None, sc.MS_BIND | sc.MS_REMOUNT | extra | (_locked_flags(dest) if userns else 0))
        step("runtime", "bind mount", f"{src} -> {dest_rel} {m.get('options') or ''}", f"mount --bind {src} {dest}")
    elif typ == "cgroup":
        _mount_cgroup(rootfs, dest_rel, flags, cgroup_paths or {}, cgroupns)
        return
    else:
        if typ in ("proc", "sysfs"):
            _refuse_symlinked_dest(rootfs, dest_rel, typ)
        existed = typ == "tmpfs" and os.path.isdir(resolve_in_root(rootfs, dest_rel))
        dest = mkdir_in_root(rootfs, dest_rel)
        mode = stat.S_IMODE(os.stat(dest).st_mode) if existed else None
        if userns and typ == "devpts":
            data = ",".join(d for d in data.split(",") if not d.startswith("gid=") or d == "gid=0")
        data = mount_data(data, typ, mount_label)
        below = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) if TMPCOPYUP in (m.get("options") or ()) else -1
        try:
            sc.mount(src, dest, typ, flags & ~sc.MS_REMOUNT & ~sc.MS_RDONLY if below >= 0 else flags & ~sc.MS_REMOUNT, data or None)
            if below >= 0:
                from .copyup import copy_tree

                copy_tree(below, dest)
                if flags & sc.MS_RDONLY:
                    sc.mount(None, dest, None, sc.MS_REMOUNT | (flags & ~sc.MS_REMOUNT), data or None)
        finally:
            if below >= 0:
                os.close(below)
        if mode is not None:  # a tmpfs over a directory keeps that directory's mode, as with runc
            os.chmod(dest, mode)
        step("runtime", f"mount {typ}", f"{dest_rel} ({','.join(m.get('options') or [])})", f"mount -t {typ} {src} {dest}")
    if prop:
        sc.mount(None, dest, None, prop)
    rec_set = rec_clr = 0
    for o in m.get("options") or ():
        if o in RECURSIVE_OPTIONS:
            a, c = RECURSIVE_OPTIONS[o]
            rec_set, rec_clr = (rec_set & ~c) | a, (rec_clr & ~a) | c
    if rec_set or rec_clr:
        sc.mount_setattr(dest, rec_set, rec_clr)
        step("runtime", "mount_setattr", f"{dest_rel}: recursive set 0x{rec_set:x} clear 0x{rec_clr:x}", f"mount -o remount,bind,… (recursive) {dest}")


def _refuse_symlinked_dest(rootfs: str, dest_rel: str, typ: str) -> None:
    """A ``proc`` or ``sysfs`` mount must land on a real directory: an image whose ``/proc``
    is a symlink (to ``/``, to itself, to ``/dev``) is refused, as runc does since
    CVE-2019-16884 / CVE-2023-27561 (a bare ESRCH from mount(2) otherwise).
    Raises OSError(ELOOP) naming the destination."""
    cur = os.path.abspath(rootfs)
    for comp in [c for c in os.path.normpath("/" + dest_rel).split("/") if c]:
        cur = os.path.join(cur, comp)
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            return  # created below as a directory
        if stat.S_ISLNK(st.st_mode):
            raise OSError(errno.ELOOP, f"{typ} mount destination {dest_rel!r} goes through a symlink in the rootfs "
                          f"({os.path.relpath(cur, rootfs)} -> {os.readlink(cur)}); it must be a real directory (CVE-2019-16884)")
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, f"{typ} mount destination {dest_rel!r} is not a directory in the rootfs")


def _mount_cgroup(rootfs: str, dest_rel: str, flags: int, paths: dict[str, str], cgroupns: bool) -> None:
    base = mkdir_in_root(rootfs, dest_rel)
    if list(paths) == [""]:  # cgroup v2: one tree, mounted right at the destination
        if cgroupns:
            sc.mount("cgroup2", base, "cgroup2", flags)
        else:
            sc.mount(paths[""], base, None, sc.MS_BIND)
            sc.mount(None, base, None, sc.MS_BIND | sc.MS_REMOUNT | flags | _locked_flags(base))
        step("runtime", "mount cgroup2", dest_rel, f"mount -t cgroup2 cgroup2 {base}")
        return
    sc.mount("tmpfs", base, "tmpfs", (flags & ~sc.MS_RDONLY) | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, "mode=755")
    for name, host in paths.items():
        target = os.path.join(base, name)
        os.makedirs(target, exist_ok=True)
        if cgroupns:
            if name == "unified" or name == "":
                sc.mount("cgroup2", target, "cgroup2", flags)
            else:
                sc.mount("cgroup", target, "cgroup", flags, _hierarchy_options(name))
        else:
            sc.mount(host, target, None, sc.MS_BIND)
            sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | flags | _locked_flags(target))
        if "," in name:  # cpu,cpuacct -> cpu and cpuacct symlinks, as on the host
            for alias in name.split(","):
                if not os.path.lexists(os.path.join(base, alias)):
                    os.symlink(name, os.path.join(base, alias))
    step("runtime", "mount cgroup", f"{dest_rel}: {', '.join(paths) or 'none'}", f"mount -t cgroup … {base}")


def _hierarchy_options(name: str, base: str = "/sys/fs/cgroup") -> str:
    """The cgroup v1 mount options naming hierarchy ``name`` on this host (``cpu,cpuacct``,
    ``name=systemd`` …), from the host's /proc/self/mountinfo super options."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            a, _, b = line.partition(" - ")
            if a.split()[4] == os.path.join(base, name) and b.split()[0] == "cgroup":
                return ",".join(o for o in b.split()[2].split(",") if o not in ("rw", "ro"))
    return name


def _replace_node(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise OSError(errno.EISDIR, "a directory is in the way of a device node", path)
    os.unlink(path)


def create_devices(rootfs: str, devices: list[dict] | None = None, *, userns: bool = False) -> None:
    """Populate ``/dev``: the default devices (null, zero, full, random, urandom, tty),
    ``linux.devices`` of the config, ``/dev/ptmx`` -> ``pts/ptmx`` and the fd/stdin/
    stdout/stderr links. Nodes are made with mknod(2) as root, or bind-mounted from the
    host in a user namespace (mknod is not allowed there). Anything the image left at those
    names (a symlink to a host file, a regular file) is removed first, never followed."""
    dev = mkdir_in_root(rootfs, "/dev")
    specs = [{"path": f"/dev/{n}", "type": "c", "major": a, "minor": b, "fileMode": 0o666, "uid": 0, "gid": 0} for n, (a, b) in DEFAULT_DEVICES.items()]
    specs += list(devices or [])
    old = os.umask(0)
    try:
        for d in specs:
            rel = d["path"]
            host = resolve_in_root(rootfs, rel)
            mkdir_in_root(rootfs, os.path.dirname(os.path.relpath(host, rootfs)) or ".")
            _replace_node(host)
            if userns:
                os.close(os.open(host, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666))
                sc.mount(rel, host, None, sc.MS_BIND)
            else:
                kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[d.get("type", "c")]
                os.mknod(host, kind | (d.get("fileMode") or 0o666) & 0o7777, os.makedev(d.get("major", 0), d.get("minor", 0)))
                os.chown(host, d.get("uid") or 0, d.get("gid") or 0)
        for name, target in {**DEV_SYMLINKS, "ptmx": "pts/ptmx"}.items():
            p = os.path.join(dev, name)
            _replace_node(p)
            os.symlink(target, p)
    finally:
        os.umask(old)
    step("runtime", "populate /dev", ", ".join([*DEFAULT_DEVICES, "ptmx", *DEV_SYMLINKS]), "mknod /dev/null c 1 3 …")


def pivot(rootfs: str, *, no_pivot: bool = False) -> None:
    """Make ``rootfs`` the container's ``/`` with pivot_root(".", ".") and detach the old
    root (pivot_root(2) NOTES; runc's recipe). With ``no_pivot`` (or when the host root is
    the initramfs, where pivot_root is impossible — pivot_root(2) NOTES) use MS_MOVE + chroot instead."""
    os.chdir(rootfs)
    if not no_pivot:
        try:
            sc.pivot_root(".", ".")
        except OSError as e:
            if e.errno != errno.EINVAL or not _host_root_is_initramfs():
                raise
            no_pivot = True
        else:
            sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
            sc.umount2(".", sc.MNT_DETACH)
            os.chdir("/")
            step("runtime", "pivot_root", f"{rootfs} is now /; old root detached", "pivot_root . . && umount -l .")
            return
    sc.mount(rootfs, "/", None, sc.MS_MOVE)
    os.chroot(".")
    os.chdir("/")
    step("runtime", "move + chroot", f"{rootfs} moved onto / (no pivot_root: initramfs or --no-pivot)", "mount --move . / && chroot .")


def _host_root_is_initramfs() -> bool:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            a, _, b = line.partition(" - ")
            if a.split()[4] == "/":
                return b.split()[0] in ("rootfs", "ramfs")
    return False


def mask_paths(paths: list[str] | None) -> None:
    """Hide ``maskedPaths`` (inside the container, after pivot_root): /dev/null over a
    file, an empty read-only tmpfs over a directory. config-linux.md "Masked Paths"."""
    for p in paths or []:
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                sc.mount("tmpfs", p, "tmpfs", sc.MS_RDONLY, None)
            else:
                sc.mount("/dev/null", p, None, sc.MS_BIND)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
    if paths:
        step("runtime", "mask paths", ", ".join(paths), "mount --bind /dev/null PATH")


def readonly_paths(paths: list[str] | None) -> None:
    """Make ``readonlyPaths`` read-only: bind onto itself, remount ro (keeping the flags the
    kernel locks), as runc 1.1 does. config-linux.md "Readonly Paths"."""
    for p in paths or []:
        try:
            sc.mount(p, p, None, sc.MS_BIND | sc.MS_REC)
        except OSError as e:
            if e.errno == errno.ENOENT:
                continue
            raise
        sc.mount(None, p, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | _locked_flags(p))
    if paths:
        step("runtime", "read-only paths", ", ".join(paths), "mount -o bind,remount,ro PATH")


def readonly_root() -> None:
    """``root.readonly``: remount ``/`` read-only (config.md "Root")."""
    sc.mount(None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | _locked_flags("/"))
    step("runtime", "read-only root", "/", "mount -o remount,bind,ro /")
