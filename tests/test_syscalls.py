"""ctypes syscall wrappers (ocilearn.core.syscalls) and the pure helpers around them."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from ocilearn.core import syscalls as sc
from ocilearn.runtime import rootfs
from ocilearn.runtime.namespaces import plan

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: unshare/mount/pivot_root")


def in_child(fn) -> tuple[int, bytes]:
    """Run ``fn`` in a forked child (namespaces must not touch the test process); returns
    (exit status, what it wrote to the pipe)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            os.write(w, fn() or b"")
        except BaseException as e:  # noqa: BLE001
            os.write(w, repr(e).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), data


def test_capabilities_masks_and_capget():
    assert sc.cap_mask(["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]) == 0x20000420
    assert sc.cap_mask(["cap_sys_admin"]) == 1 << 21
    with pytest.raises(ValueError, match="CAP_NOPE"):
        sc.cap_mask(["CAP_NOPE"])
    eff, prm, inh = sc.capget()
    status = dict(line.split(":\t") for line in open("/proc/self/status").read().splitlines() if line.startswith("Cap"))
    assert eff == int(status["CapEff"], 16) and prm == int(status["CapPrm"], 16) and inh == int(status["CapInh"], 16)
    assert sc.last_cap() >= 37


def test_unprivileged_errors_carry_errno():
    def attempt():
        os.setresuid(65534, 65534, 65534)
        try:
            sc.mount("tmpfs", "/mnt", "tmpfs")
        except OSError as e:
            return f"{e.errno} {e.filename}".encode()
        return b"mounted?!"
    if os.geteuid() != 0:
        with pytest.raises(OSError) as ei:
            sc.mount("tmpfs", "/mnt", "tmpfs")
        assert ei.value.errno == errno.EPERM
        return
    code, out = in_child(attempt)
    assert out == f"{errno.EPERM} /mnt".encode()


@needs_root
def test_unshare_pid_uts_and_fork_once():
    def child():
        sc.unshare(sc.CLONE_NEWPID | sc.CLONE_NEWUTS | sc.CLONE_NEWNS)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            sc.sethostname("ocitest-sys")
            os.write(w, f"{os.getpid()} {socket.gethostname()}".encode())
            os._exit(0)
        os.waitpid(pid, 0)
        first = os.read(r, 100)
        try:
            os.fork()  # the PID namespace's init is gone: no second fork (pid_namespaces(7))
            second = b"forked"
        except OSError as e:
            second = str(e.errno).encode()
        return first + b" " + second
    code, out = in_child(child)
    assert code == 0, out
    assert out == f"1 ocitest-sys {errno.ENOMEM}".encode()
    assert socket.gethostname() != "ocitest-sys"


@needs_root
def test_pivot_root_einval_explained_and_bind_fixes_it(tmp_path):
    (tmp_path / "root" / "old").mkdir(parents=True)

    def child():
        sc.unshare(sc.CLONE_NEWNS)
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
        new = str(tmp_path / "root")
        try:
            sc.pivot_root(new, new + "/old")
            return b"pivoted without a mount point?!"
        except OSError as e:
            first = f"{e.errno}|{e.strerror}"
        rootfs.bind_rootfs(new)
        os.chdir(new)
        sc.pivot_root(".", ".")
        sc.umount2(".", sc.MNT_DETACH)
        os.chdir("/")
        return (first + "|" + " ".join(sorted(os.listdir("/")))).encode()
    code, out = in_child(child)
    assert code == 0, out
    eno, msg, listing = out.decode().split("|")
    # EINVAL per the man page; EBUSY when the directory sits on the current root mount
    assert int(eno) in (errno.EINVAL, errno.EBUSY) and "not a mount point" in msg and "bind-mount" in msg
    assert listing == "old"


def test_resolve_in_root_never_leaves(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    os.symlink("/../../../../etc", root / "evil")
    os.symlink("../../..", root / "etc" / "up")
    os.symlink("/etc", root / "abs")
    r = str(root)
    assert rootfs.resolve_in_root(r, "/evil/passwd") == f"{r}/etc/passwd"
    assert rootfs.resolve_in_root(r, "/etc/up/x") == f"{r}/x"  # ../../.. from /etc stops at the root
    assert rootfs.resolve_in_root(r, "../../abs/./y/..") == f"{r}/etc"
    os.symlink("loop", root / "loop")
    with pytest.raises(OSError) as ei:
        rootfs.resolve_in_root(r, "/loop/x")
    assert ei.value.errno == errno.ELOOP
    assert rootfs.mkdir_in_root(r, "/evil/new/dir") == f"{r}/etc/new/dir" and (root / "etc/new/dir").is_dir()


def test_mount_options_parsed_like_mount8():
    flags, prop, data = rootfs.parse_options(["nosuid", "noexec", "ro", "rw", "rbind", "rslave", "mode=755", "size=65536k"])
    assert flags == sc.MS_NOSUID | sc.MS_NOEXEC | sc.MS_BIND | sc.MS_REC
    assert prop == sc.MS_SLAVE | sc.MS_REC and data == "mode=755,size=65536k"


def test_namespace_plan():
    flags, joins = plan([{"type": "pid"}, {"type": "mount"}, {"type": "network", "path": "/run/netns/x"}, {"type": "user", "path": "/proc/1/ns/user"}])
    assert flags == sc.CLONE_NEWPID | sc.CLONE_NEWNS
    assert joins == [("user", "/proc/1/ns/user"), ("network", "/run/netns/x")]
    from ocilearn.core.errors import RuntimeSpecError

    with pytest.raises(RuntimeSpecError, match="unknown namespace type 'time'"):
        plan([{"type": "time"}])


def test_start_writeback_is_a_hint_on_files_and_refused_on_pipes(tmp_path):
    """sync_file_range(2) starts writeback of a regular file's range (the bytes stay as
    written; the caller still fsyncs) and is refused on a pipe (ESPIPE), without raising."""
    path = tmp_path / "blob"
    data = os.urandom(3 << 20)
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        assert sc.start_writeback(f.fileno(), 0, len(data)) is True
        os.fsync(f.fileno())
    assert path.read_bytes() == data
    r, w = os.pipe()
    try:
        assert sc.start_writeback(r, 0, 1) is False
    finally:
        os.close(r)
        os.close(w)
