"""The container side of create: **stage 1** and the **init** (stage 2), forked from the
runtime command (runc: libcontainer/nsenter/nsexec.c STAGE_CHILD and STAGE_INIT, then
standard_init_linux.go). :mod:`.container` explains why there are stages and who is
whose parent; this module is what each stage does, in order.
"""

from __future__ import annotations

import _signal as signal
import gc  # `signal` without its enum classes (start-up time, see container.py)
import os
import sys

from ..core import syscalls as sc
from ..core.errors import ContainerError
from . import namespaces as nsmod
from . import step
from .hooks import run_hooks
from .state import OCI_VERSION
from .sync import new_steps, recv, send


def stage1(ctx: dict, parent_pid: int, ns_files, s1, s2) -> int:
    """Stage 1: cgroup, namespaces, one fork (the init), report its PID, exit."""
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)  # a killed parent takes stage 1 along
    # stage 1 and the init live until execve: a garbage collection here would only copy the
    # parent's memory page by page (copy-on-write), see .launch.start
    gc.disable()
    # From here on this process and its child are the *host's* Python inside the
    # container's namespaces. Non-dumpable, container root (without CAP_SYS_PTRACE over
    # the host) cannot open their /proc/PID/exe (the host interpreter), environ, mem or fd/
    # (CVE-2019-5736); execve resets the flag for the container program. The operator's
    # environment is wiped from memory as well. Rootless: the parent (an unprivileged
    # user) must write this process's uid_map, so it stays dumpable (runc's stage 1 too).
    sc.set_dumpable(ctx["rootless"])
    sc.scrub_environ()
    step("runtime", "non-dumpable", "prctl(PR_SET_DUMPABLE, 0) in stage 1 and the init; host environment wiped from memory",
         "runc init: prctl(PR_SET_DUMPABLE, 0) (CVE-2019-5736)")
    if os.getppid() != parent_pid:
        return 1
    os.setsid()
    cg = ctx["cgroup"]
    if cg:  # the init is born in the container's cgroup (and can unshare a cgroup namespace rooted there)
        cg.join()  # single-threaded: a fresh fork
        step("runtime", "join cgroup", ", ".join(cg.paths.values()), f"echo 0 > …/{'tasks' if cg.version == 1 else 'cgroup.procs'}")
    nsmod.join(ns_files)
    sc.unshare(ctx["flags"] & ~sc.CLONE_NEWCGROUP)
    names = [t for t, (f, _) in sc.NAMESPACES.items() if ctx["flags"] & f and f != sc.CLONE_NEWCGROUP]
    step("runtime", "unshare", f"new namespaces: {', '.join(names)}; the next child is PID 1 of the new PID namespace",
         "unshare " + " ".join(f"--{ {'network': 'net'}.get(t, t) }" for t in names) + " --fork")
    if ctx["flags"] & sc.CLONE_NEWUSER:
        send(s1, {"t": "idmap"})
        msg, _ = recv(s1)
        if not msg or msg.get("t") != "ok":
            return 1
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        sc.set_dumpable(ctx["rootless"])  # a credential change resets it (prctl(2))
    early = new_steps()  # sent by stage 1; the init's copy must not repeat them
    init = os.fork()
    if init == 0:
        code = 1
        try:
            # (a fork clears the parent-death signal: stage 1's exit does not touch the init)
            s1.close()
            stage2(ctx, s2)
        except BaseException as e:  # noqa: BLE001
            try:
                send(s2, {"error": f"{type(e).__name__}: {e}" if not isinstance(e, OSError) else str(e)})
            except OSError:
                print(f"ocilearn: container init: {e}", file=sys.stderr)
            code = 127 if "exec:" in str(e) else 1
        finally:
            os._exit(code)
    send(s1, {"t": "pid", "pid": init, "steps": early})
    return 0


def look_path(args0: str, env: list[str], cwd: str) -> None:
    """Check that the program exists and is executable before ``create`` returns, as runc
    does (exec.LookPath in runc's init): a wrong ``process.args[0]`` is a create-time
    error, not an exit status 127 after ``start``. Searches the config's PATH (execvp(3)
    rules). Raises ContainerError."""
    if "/" in args0:
        cand = [args0 if args0.startswith("/") else os.path.join(cwd, args0)]
        path = ""
    else:
        path = next((e[5:] for e in env if e.startswith("PATH=")), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        cand = [os.path.join(d or ".", args0) for d in path.split(":")]
    for c in cand:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return
    if "/" in args0 and os.path.exists(cand[0]):
        raise ContainerError(f'exec: "{args0}": permission denied')
    raise ContainerError(f'exec: "{args0}": executable file not found in $PATH ({path})' if path else
                         f'exec: "{args0}": stat {args0}: no such file or directory')


def stage2(ctx: dict, s2) -> None:
    """The init: PID 1 of the container. Builds the rootfs, waits on the exec fifo, execs."""
    from . import process
    from . import rootfs as rfs

    # non-dumpable as soon as it is visible in the container (CVE-2019-5736); rootless, the
    # parent (same host uid) must open its /proc/PID/ns for `exec` before start
    sc.set_dumpable(ctx["rootless"])
    cfg, linux, proc = ctx["cfg"], ctx["cfg"].get("linux") or {}, ctx["cfg"]["process"]
    root, userns = ctx["rootfs"], ctx["userns"]
    flags = ctx["flags"]
    if ctx["keyring"]:
        # a session keyring of its own (runc's "_ses.ID"): the container does not share
        # the caller's keys (keyrings(7))
        sc.join_session_keyring(f"_ses.{ctx['id']}", 0x8 if userns else 0x80000)
    if flags & sc.CLONE_NEWCGROUP:
        sc.unshare(sc.CLONE_NEWCGROUP)  # rooted at the cgroup stage 1 joined
    if flags & sc.CLONE_NEWNS:
        rfs.make_root_private(linux.get("rootfsPropagation"))
        rfs.bind_rootfs(root)
        cg = ctx["cgroup"]
        cg_paths = dict(cg.paths) if cg else {}
        for m in cfg.get("mounts") or []:
            if m.get("type") == "cgroup" and userns and not cg_paths:
                continue  # rootless: no cgroup of our own to show
            if m.get("type") == "sysfs" and userns and not flags & sc.CLONE_NEWNET:
                m = {**m, "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
            rfs.mount_one(root, m, userns=userns, cgroup_paths=cg_paths, cgroupns=bool(flags & sc.CLONE_NEWCGROUP),
                          mount_label=linux.get("mountLabel"))
        rfs.create_devices(root, linux.get("devices"), userns=userns)
    if flags & sc.CLONE_NEWUTS:
        if cfg.get("hostname"):
            sc.sethostname(cfg["hostname"])
        if cfg.get("domainname"):
            sc.setdomainname(cfg["domainname"])
        step("runtime", "sethostname", cfg.get("hostname", ""), f"hostname {cfg.get('hostname', '')}")
    if flags & sc.CLONE_NEWNET:
        from .network import lo_up

        lo_up()
    if proc.get("oomScoreAdj") is not None:
        # non-dumpable, our /proc files belong to the host's root, unmapped in a rootless
        # user namespace: be dumpable for this one write (nothing else runs in here yet)
        sc.set_dumpable(True)
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(proc["oomScoreAdj"]))
        finally:
            sc.set_dumpable(ctx["rootless"])
    send(s2, {"t": "setup", "steps": new_steps()})
    msg, _ = recv(s2)
    if not msg or msg.get("t") != "ok":
        raise ContainerError("runtime went away during setup")
    if msg.get("hosts"):
        target = rfs.resolve_in_root(root, "/etc/hosts")
        if not os.path.lexists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "a").close()
        sc.mount(msg["hosts"], target, None, sc.MS_BIND)
    hooks = cfg.get("hooks") or {}
    if hooks.get("startContainer") or hooks.get("createContainer"):
        import subprocess  # noqa: F401 - imported before pivot_root hides the host's Python files
    if hooks.get("createContainer"):
        run_hooks(hooks["createContainer"], {"ociVersion": cfg.get("ociVersion", OCI_VERSION), "id": ctx["id"], "status": "creating",
                                             "pid": 1, "bundle": ctx["bundle"]}, "createContainer")
    fifo_fd = ctx["fifo_fd"]
    rfs.pivot(root, no_pivot=ctx["no_pivot"])
    for key, value in (linux.get("sysctl") or {}).items():
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(str(value))
    rfs.readonly_paths(linux.get("readonlyPaths"))
    rfs.mask_paths(linux.get("maskedPaths"))
    if cfg["root"].get("readonly"):
        rfs.readonly_root()
    if linux.get("rootfsPropagation"):
        sc.mount(None, "/", None, rfs.PROPAGATION[linux["rootfsPropagation"]])
    cwd = proc.get("cwd") or "/"
    if not os.path.lexists(cwd):  # created as root from inside the new root, like runc
        os.makedirs(cwd, 0o755, exist_ok=True)
    look_path(proc["args"][0], proc.get("env") or [], cwd)
    if proc.get("terminal"):
        master, slave, path = process.open_pty()
        send(s2, {"t": "pty", "path": path}, [master])
        os.close(master)
        process.become_tty_session(slave)
    send(s2, {"t": "ready", "steps": new_steps()})
    s2.close()
    # blocks until `start` opens the fifo for reading (runc's exec.fifo): the open of the
    # O_PATH fd through /proc/self/fd works after pivot_root hid the state directory
    wfd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    os.write(wfd, b"0")
    os.close(fifo_fd)
    # wfd stays open until execve closes it (O_CLOEXEC): `start` reads to EOF, so it
    # returns (and runs poststart hooks) only once the program has been executed
    if hooks.get("startContainer"):
        run_hooks(hooks["startContainer"], {"ociVersion": cfg.get("ociVersion", OCI_VERSION), "id": ctx["id"], "status": "running",
                                            "pid": 1, "bundle": ctx["bundle"]}, "startContainer")
    keep = 3 + ctx.get("preserve_fds", 0)
    process.exec_process(proc, keep_fds=keep, also_keep=wfd, init=ctx.get("init", False), seccomp=ctx.get("seccomp"))
