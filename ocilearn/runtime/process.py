"""The container process, set up just before execve(2): rlimits, cwd, user and groups,
capabilities, no_new_privs, the terminal (runtime-spec config.md "Process",
config-linux.md; capabilities(7), prctl(2), setrlimit(2), pty(7)).

Order matters (capabilities(7) "Effect of user ID changes on capabilities"):
drop the bounding set while still root, keep capabilities across setuid with
PR_SET_KEEPCAPS, switch groups/gid/uid, then capset, raise ambient, set no_new_privs, exec.
"""

from __future__ import annotations

import _signal as signal  # `signal` without its enum classes (start-up time, see container.py)
import errno
import fcntl
import os
import resource
import struct
import termios
import warnings  # noqa: F401 - os.execvpe imports it (os.get_exec_path): after pivot_root it is out of reach

from ..core import syscalls as sc
from ..core.errors import ContainerError
from . import step
from .labels import apply_exec_labels

TIOCSPTLCK, TIOCGPTN = 0x40045431, 0x80045430


def set_rlimits(rlimits: list[dict] | None) -> None:
    """setrlimit(2) for each ``{"type": "RLIMIT_NOFILE", "soft": …, "hard": …}``."""
    for r in rlimits or []:
        name = r["type"]
        res = getattr(resource, name, None)
        if res is None:
            raise ContainerError(f"config.json process.rlimits: unknown type {name!r} (getrlimit(2))")
        soft, hard = (resource.RLIM_INFINITY if v >= 2**64 - 1 else v for v in (r["soft"], r["hard"]))
        try:
            resource.setrlimit(res, (soft, hard))
        except (OSError, ValueError, OverflowError) as e:
            raise ContainerError(f"setrlimit {name} soft={r['soft']} hard={r['hard']}: {e} (raising a hard limit needs CAP_SYS_RESOURCE)")


def enter_cwd(cwd: str) -> None:
    """chdir into ``process.cwd`` *after* pivot_root, creating it (mkdir -p, 0755) from
    inside the container when missing, then verify with getcwd(3) that it lies inside the
    container's root (CVE-2024-21626: a ``/proc/self/fd/N`` cwd that points at a
    leaked host directory is refused). Raises ContainerError."""
    if not cwd.startswith("/"):
        raise ContainerError(f"process.cwd {cwd!r} must be an absolute path (config.md 'Process')")
    try:
        os.chdir(cwd)
    except FileNotFoundError:
        os.makedirs(cwd, 0o755, exist_ok=True)
        os.chdir(cwd)
    except OSError as e:
        raise ContainerError(f"cannot enter process.cwd {cwd!r}: {e.strerror}")
    try:
        real = os.getcwd()
    except OSError as e:  # ENOENT from newer glibc for a cwd outside the root
        raise ContainerError(f"process.cwd {cwd!r} lies outside the container root ({e.strerror}); refused (CVE-2024-21626)")
    if not real.startswith("/") or real.startswith("(unreachable)"):
        raise ContainerError(f"process.cwd {cwd!r} lies outside the container root ({real}); refused (CVE-2024-21626)")


def set_user(user: dict | None) -> None:
    """setgroups(2) (additionalGids), setresgid, setresuid, umask, keeping the permitted
    capabilities across the uid change (PR_SET_KEEPCAPS). In a user namespace whose
    ``setgroups`` is ``deny`` (rootless), additional groups are an error."""
    user = user or {}
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    groups = list(user.get("additionalGids") or [])
    try:
        with open("/proc/self/setgroups") as f:
            can_setgroups = f.read().strip() != "deny"
    except OSError:
        can_setgroups = True
    sc.prctl(sc.PR_SET_KEEPCAPS, 1)
    try:
        if can_setgroups:
            os.setgroups(groups)
        elif groups:
            raise ContainerError(f"process.user.additionalGids {groups} cannot be set: setgroups is denied in this rootless user namespace")
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as e:
        if e.errno == errno.EINVAL:
            raise ContainerError(f"process.user {uid}:{gid} is not mapped in the container's user namespace (uidMappings/gidMappings): {e.strerror}")
        raise
    sc.prctl(sc.PR_SET_KEEPCAPS, 0)
    if user.get("umask") is not None:
        os.umask(user["umask"])
    step("runtime", "user", f"uid {uid} gid {gid} groups {groups}", f"setpriv --reuid={uid} --regid={gid}")


def drop_bounding(caps: dict | None) -> None:
    """Drop from the bounding set every capability not in ``capabilities.bounding``
    (prctl PR_CAPBSET_DROP; needs CAP_SETPCAP, so before the uid change)."""
    if caps is None:
        return
    keep = sc.cap_mask(caps.get("bounding"))
    for n in range(sc.last_cap() + 1):
        if not keep & (1 << n) and sc.prctl(sc.PR_CAPBSET_READ, n):
            sc.prctl(sc.PR_CAPBSET_DROP, n)


def set_caps(caps: dict | None) -> None:
    """capset(2) effective/permitted/inheritable, then raise the ambient set
    (PR_CAP_AMBIENT_RAISE). An ambient capability must also be permitted and inheritable
    (capabilities(7)); those that are not are left out without a message, as runc 1.1
    does (its capability library ignores the kernel's EINVAL for them) — so an
    ``ocilearn unpack`` bundle, whose default set (runc spec's) lists ambient capabilities
    that are not inheritable, runs quietly. The narration (``--explain``) names them.
    Raises ContainerError naming ``process.capabilities`` when the kernel refuses the sets."""
    if caps is None:
        return
    eff, prm, inh = (sc.cap_mask(caps.get(k)) for k in ("effective", "permitted", "inheritable"))
    try:
        sc.capset(eff, prm, inh)
    except OSError as e:
        raise ContainerError(f"process.capabilities: capset(2) refused effective 0x{eff:x} permitted 0x{prm:x} inheritable "
                             f"0x{inh:x}: {e.strerror} (a capability outside the runtime's own permitted set cannot be granted)")
    amb = sc.cap_mask(caps.get("ambient"))
    for n in range(sc.last_cap() + 1):
        if amb & prm & inh & (1 << n):
            try:
                sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, n)
            except OSError as e:
                raise ContainerError(f"process.capabilities.ambient: cannot raise capability {n}: {e.strerror}")
    if amb & ~(prm & inh):
        step("runtime", "ambient capabilities", f"0x{amb & ~(prm & inh):x} left out: not permitted and inheritable", "runc: the same")
    step("runtime", "capabilities", f"effective 0x{eff:x} permitted 0x{prm:x} inheritable 0x{inh:x}", "capsh --caps=…")


def _load_seccomp_privileged(filt) -> None:
    """Load a seccomp filter without no_new_privs: seccomp(2) then needs CAP_SYS_ADMIN in
    the effective set. A uid change cleared the effective set (the permitted one was kept
    with PR_SET_KEEPCAPS), so raise it from permitted for this one call; :func:`set_caps`
    sets the final sets right after."""
    eff, prm, inh = sc.capget()
    bit = 1 << sc.CAPS["SYS_ADMIN"]
    if not prm & bit:
        raise ContainerError("linux.seccomp: without process.noNewPrivileges the filter can only be loaded with CAP_SYS_ADMIN, "
                             "which this process does not have; set process.noNewPrivileges: true")
    if not eff & bit:
        sc.capset(eff | bit, prm, inh)
    try:
        filt.load()
    except OSError as e:
        raise ContainerError(f"linux.seccomp: seccomp_load refused the filter: {e.strerror}")


def home_for(uid: int) -> str:
    """HOME for ``uid`` from the container's /etc/passwd (runc sets HOME when the config
    does not), or ``/``."""
    try:
        with open("/etc/passwd") as f:
            for line in f:
                p = line.rstrip("\n").split(":")
                if len(p) >= 6 and p[2] == str(uid):
                    return p[5] or "/"
    except OSError:
        pass
    return "/"


def exec_process(process: dict, keep_fds: int = 3, also_keep: int = -1, init: bool = False, seccomp=None) -> None:
    """The last steps inside the container: rlimits, user, cwd, labels, seccomp,
    capabilities, no_new_privs, close every fd ≥ ``keep_fds`` except ``also_keep`` (an
    O_CLOEXEC fd that closes at exec, so its peer sees EOF when execve succeeded), execve(2)
    of ``process.args`` looked up in the config's PATH. With ``init`` PID 1 stays a tiny
    reaper (:func:`reaper_init`) and the program runs as its child.

    ``seccomp`` is a :class:`ocilearn.runtime.seccomp.Filter` prepared before the
    container's root was entered. Like runc, it is loaded just before execve when
    ``process.noNewPrivileges`` is set, else (loading then needs CAP_SYS_ADMIN) before the
    final capability sets — in both cases after the working directory has been entered
    and checked, so a profile that denies getcwd(2) does not break that check. The
    AppArmor profile and SELinux label (:mod:`.labels`) are set for the execve.
    Never returns; raises ContainerError when the program cannot run."""
    args = process.get("args") or []
    if not args:
        raise ContainerError("config.json process.args is empty: nothing to run (config.md 'Process': args is REQUIRED)")
    env = dict(e.split("=", 1) if "=" in e else (e, "") for e in process.get("env") or [])
    user = process.get("user") or {}
    if "HOME" not in env:
        env["HOME"] = home_for(user.get("uid", 0))
    # close every fd the runtime held *before* chdir: a leaked directory fd is how
    # WorkingDir=/proc/self/fd/N reached the host in CVE-2024-21626; and before the
    # capabilities drop, after which container root may pass ptrace access checks
    if keep_fds <= also_keep:
        if also_keep > keep_fds:
            sc.close_range(keep_fds, also_keep - 1)
        sc.close_range(also_keep + 1)
    else:
        sc.close_range(keep_fds)
    set_rlimits(process.get("rlimits"))
    caps = process.get("capabilities")
    drop_bounding(caps)
    set_user(user)
    enter_cwd(process.get("cwd") or "/")
    apply_exec_labels(process)
    nnp = bool(process.get("noNewPrivileges"))
    if seccomp is not None and not nnp:
        _load_seccomp_privileged(seccomp)
        step("runtime", "seccomp", f"filter loaded ({seccomp.rules} rules), before the capabilities drop", "runc: InitSeccomp")
    set_caps(caps)
    # a credential change sets "dumpable" to fs.suid_dumpable (prctl(2)), which may be 1:
    # until execve (and for good in the --init reaper) this is the host's Python, whose
    # /proc/PID/exe, environ and mem container root must not open (CVE-2019-5736)
    sc.set_dumpable(False)
    if nnp:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    if seccomp is not None and nnp:
        try:
            seccomp.load()
        except OSError as e:
            raise ContainerError(f"linux.seccomp: seccomp_load refused the filter: {e.strerror}")
        step("runtime", "seccomp", f"filter loaded ({seccomp.rules} rules), right before execve", "runc: InitSeccomp")
    step("runtime", "execve", " ".join(args), "exec " + " ".join(args))
    if init:
        reaper_init()  # returns in the child only
    try:
        os.execvpe(args[0], args, env)
    except FileNotFoundError:
        raise ContainerError(f'exec: "{args[0]}": executable file not found in $PATH ({env.get("PATH", "")})')
    except OSError as e:
        raise ContainerError(f'exec: "{args[0]}": {e.strerror}')


def open_pty() -> tuple[int, int, str]:
    """A new pseudo-terminal from the container's own ``/dev/ptmx`` (devpts newinstance):
    ``(master fd, slave fd, slave path)``. pty(7), ioctl_tty(2) TIOCSPTLCK/TIOCGPTN."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
    path = f"/dev/pts/{n}"
    slave = os.open(path, os.O_RDWR | os.O_NOCTTY)
    return master, slave, path


def become_tty_session(slave: int) -> None:
    """setsid(2), make ``slave`` the controlling terminal (TIOCSCTTY) and stdin/out/err."""
    try:
        os.setsid()
    except OSError:
        pass
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)


def reaper_init() -> None:
    """The optional init (``--init``, like Docker's tini): fork; the child returns
    and execs the program; PID 1 forwards SIGTERM/SIGINT/SIGHUP/… to it, reaps every
    orphan with waitpid(-1) and exits with the program's status (128+N for signal N).

    Without it the program itself is PID 1: it only receives signals it handles, and
    orphans re-parented to it stay zombies unless it reaps them (pid_namespaces(7))."""
    child = os.fork()
    if child == 0:
        for s in FORWARDED:
            signal.signal(s, signal.SIG_DFL)
        return
    sc.close_range(3)  # the sync fd must close when the *program* is exec'd, not stay with us
    for s in FORWARDED:
        signal.signal(s, lambda n, _f: _kill(child, n))
    status = 0
    while True:
        try:
            pid, st = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            break
        if pid == child:
            status = st
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
