"""The container lifecycle of runtime-spec runtime.md — create, start, state, kill,
delete — plus runc's run, exec, ps, pause, resume and update, in runc's process model.

State directory ``ROOT/ID/`` (runc keeps the same under /run/runc/ID):

- ``state.json``  the runtime-spec state (ociVersion, id, status, pid, bundle,
  annotations) plus ocilearn's bookkeeping under ``"ocilearn"``: the init's PID *and its
  start time*, the cgroup, the hooks still to run.
- ``exec.fifo``   a named pipe (fifo(7)) between ``create`` and ``start``.

**The stages** (runc: libcontainer/nsenter/nsexec.c and process_linux.go):

1. the **parent** — the command the caller ran (``ocilearn create``): checks the config,
   makes the state directory and the cgroup, answers its children over two socketpairs
   (uid/gid maps, veth, hooks, the terminal), writes state.json and ``--pid-file``, and
   *exits*.
2. **stage 1** — a fork of the parent: joins the cgroup and the namespaces named by path,
   unshares the new ones, forks once more, reports that child's PID and exits at once. It
   exists because of one kernel rule: unshare(CLONE_NEWPID) leaves the caller where it is;
   only its *next child* becomes PID 1 of the new PID namespace (pid_namespaces(7)).
3. the **init** — stage 1's child, PID 1 of the container: mounts, ``/dev``, pivot_root,
   hostname, masked and read-only paths; then it blocks opening **exec.fifo** for writing.
   That is when ``create`` returns: the container is *created*. ``start`` opens the fifo
   for reading; the init's open returns, it writes one byte, sets user, capabilities and
   rlimits and calls execve(2): the program *replaces* the init and keeps PID 1. ``start``
   reads until EOF — the init's end of the fifo is close-on-exec — so it returns only once
   the program runs.

**Who is the init's parent?** While stage 1 lives, the parent is a *child subreaper*
(prctl(2) PR_SET_CHILD_SUBREAPER): when stage 1 exits, the kernel re-parents the init to
the parent. runc gets the same result with clone(2) CLONE_PARENT: the init is a direct
child of the runtime command, nothing in between. When ``ocilearn create`` exits, the
kernel re-parents the init again — to the caller's subreaper. conmon (podman) and
containerd-shim are subreapers for exactly this: they wait(2) for the container's PID 1
and so learn its exit status. ``ocilearn run`` in the foreground and the library
(:meth:`Container.wait`) are that caller themselves: the init is their child.

**Why runc is built this way.** No runtime process outlives a command: a container must
survive its CLI (and a daemon restart), and its exit status belongs to whoever supervises
it. A per-container runtime process would be one more thing to crash, to leak, to reap —
and to attack from inside the container (CVE-2019-5736 overwrote the host's runc through
``/proc/PID/exe`` of a runc process that was visible inside). So state comes from the
kernel, never from a process that watches: the init's PID and its start time (field 22 of
/proc/PID/stat) are recorded at create, and the container is *stopped* as soon as that
process is gone or a zombie — the start time tells a reused PID apart. Every command
(``state``, ``kill``, ``delete`` …) is a fresh process that reads the state directory and
asks the kernel.

Everything runs in forked copies of the CLI process: no interpreter starts again, which
keeps ``ocilearn run`` near runc's start-to-exit time. Because stage 1, the init and an
``exec`` child are the host's interpreter inside the container's namespaces until their
execve, they are made non-dumpable (prctl(2) PR_SET_DUMPABLE) and their inherited
environment block is wiped: container root cannot open their ``/proc/PID/exe`` (the host's
Python, CVE-2019-5736), ``environ`` or ``mem``. (Rootless, the init stays dumpable until
start: its host uid is the caller's own, and the caller must open its namespaces for
``exec``.) The config is checked (types, uint32 ids, NUL bytes, rlimits, namespaced
sysctls only, a cgroupsPath that stays in cgroupfs) before anything is created.
"""

from __future__ import annotations

# The C module behind `signal`: the same functions, and the signals as plain ints. `signal`
# itself turns them into enum classes, and importing `enum` (with functools and
# collections) costs about 4 ms of every `ocilearn run` — a sixth of `runc run`.
import _signal as signal
import os
import select
import sys
import time

from ..core import syscalls as sc
from ..core.errors import ContainerError, ContainerExists, ContainerNotFound, InvalidState, RuntimeSpecError
from . import namespaces as nsmod
from . import spec, stages, step
from .hooks import hook_state, run_hooks
from .jsonio import dumps
from .spec import load_config
from .state import (
    OCI_VERSION,
    ContainerState,
    alive,
    atomic_text,
    check_id,
    exit_code,
    fnv1a,
    reap,
    rfc3339_nano,
    rmtree,
    start_time,
    wait_gone,
)
from .sync import forget_steps, recv, send, socketpair

TERMINAL_NO_SOCKET = (
    "cannot allocate a tty when the container is detached without a console socket: config.json has "
    "process.terminal: true, but `create` and `run --detach` leave nobody to hold the terminal. Fix: set "
    '"terminal": false in config.json, or pass --console-socket PATH (a Unix socket that receives the pty '
    "master, as with runc; see runc docs/terminals.md), or use `run` without --detach"
)


def kill_init(pid: int | None, start: int | None) -> None:
    """SIGKILL the container's init ``pid`` if it is still the process state.json names
    (the same start time, runc's check against PID reuse); gone already is fine."""
    if pid and alive(pid, start):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def parse_signal(s: str | int) -> int:
    """A signal from ``"TERM"``, ``"SIGTERM"``, ``"15"`` or 15 (signal(7)): numbers are
    ASCII digits from 1 to SIGRTMAX. Raises ContainerError for anything else."""
    if isinstance(s, int) or (str(s).isascii() and str(s).isdigit()):
        n = int(s)
        if not 1 <= n <= signal.SIGRTMAX:
            raise ContainerError(f"signal {s!r} out of range 1..{int(signal.SIGRTMAX)} (signal(7))")
        return n
    name = str(s).upper()
    name = name if name.startswith("SIG") else "SIG" + name
    # the names of signal.Signals: SIGxxx constants of the signal module, not SIG_DFL/SIG_IGN/SIG_BLOCK…
    number = getattr(signal, name, None) if name.isupper() and not name.startswith("SIG_") else None
    if type(number) is not int:
        raise ContainerError(f"unknown signal {s!r} (signal(7))")
    return number


FORWARD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def forward(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class Container(ContainerState):
    """A container's lifecycle (runtime-spec runtime.md "Operations"): :meth:`create`,
    :meth:`start`, :meth:`kill`, :meth:`delete`, plus :meth:`stop`, :meth:`wait`,
    :meth:`pause`, :meth:`resume`, :meth:`update`; its state (status, pid, state.json) is
    :class:`.state.ContainerState`'s. :meth:`create` makes one, :meth:`load` finds one."""

    @classmethod
    def create(cls, root: str, cid: str, bundle: str, *, console_socket: str | None = None, pid_file: str | None = None,
               detach: bool = True, net: str | None = None, preserve_fds: int = 0, no_pivot: bool = False, init: bool = False,
               no_new_keyring: bool = False) -> Container:
        """runtime-spec runtime.md "create": build the container's environment from
        ``bundle/config.json`` and leave its init waiting on ``exec.fifo`` before the
        user program. The init is this process's child when this returns (see the module
        doc): call :meth:`wait` or :meth:`delete` to reap it, or exit and let the kernel
        hand it to your subreaper. ``detach=False`` (used by :func:`run`): this process
        holds the terminal, so ``process.terminal`` needs no console socket.
        ``init``: PID 1 is a small reaper that runs the program as its child.
        ``no_new_keyring``: keep the caller's session keyring (runc-create(8)).
        ``net="veth"``: see :mod:`.network`. Raises ContainerExists, RuntimeSpecError,
        ContainerError; a failed create removes everything it made."""
        check_id(cid)
        # the first move into a cgroup waits for an RCU grace period: let it pass while
        # config.json is read and checked (see warmup.warm_migration; the command line
        # may have started it already, see .launch)
        if os.geteuid() == 0:
            from . import warmup

            if warmup._warming is None and warmup.useful():
                warmup.warm_migration()
        if type(preserve_fds) is not int or preserve_fds < 0:
            raise ContainerError(f"--preserve-fds {preserve_fds!r}: must be a number >= 0 (fds 3 … 3+N-1 are passed)")
        bundle = os.path.abspath(bundle)
        cfg = load_config(bundle)
        proc = cfg["process"]
        if proc.get("terminal") and detach and not console_socket:
            raise ContainerError(TERMINAL_NO_SOCKET)
        os.makedirs(root, 0o700, exist_ok=True)
        c = cls(cid, root)
        try:
            os.mkdir(c.dir, 0o711)
        except FileExistsError:
            raise ContainerExists(f"container {cid!r} already exists in {root}")
        step("runtime", "create", f"container {cid} from {bundle}", f"runc create --bundle {bundle} {cid}")
        me = start_time(os.getpid())
        created = rfc3339_nano(time.time_ns())
        hooks = cfg.get("hooks") or {}
        st = {"ociVersion": cfg.get("ociVersion", OCI_VERSION), "id": cid, "status": "creating", "pid": 0, "bundle": bundle,
              "annotations": cfg.get("annotations") or {},
              "ocilearn": {"creator_pid": os.getpid(), "creator_start": me[0] if me else None, "created": created,
                           "hooks": {"poststart": hooks.get("poststart", []), "poststop": hooks.get("poststop", [])}}}
        try:
            c._spawn(cfg, bundle, st, console_socket=console_socket, pid_file=pid_file, detach=detach, net=net,
                     preserve_fds=preserve_fds, no_pivot=no_pivot, init=init, no_new_keyring=no_new_keyring)
        except (BrokenPipeError, ConnectionResetError, FileNotFoundError) as e:
            gone = not os.path.isdir(c.dir)
            c._cleanup_failed(st)
            if not gone and isinstance(e, FileNotFoundError):
                raise
            raise ContainerError(f"container {cid}: " + ("it was deleted while being created (a concurrent `delete --force`?)" if gone
                                 else f"its init exited during setup ({e.strerror})")) from e
        except BaseException:
            c._cleanup_failed(st)
            raise
        return c

    def _cleanup_failed(self, st: dict) -> None:
        o = st.get("ocilearn", {})
        pid = st.get("pid")
        kill_init(pid, o.get("init_start"))
        if pid:
            wait_gone(pid, o.get("init_start"), 2)
            reap(pid, block=False)
        cg = self.cgroup(st)
        if cg:
            try:
                cg.destroy()
            except OSError:
                pass
        rmtree(self.dir)

    def _spawn(self, cfg: dict, bundle: str, st: dict, *, console_socket, pid_file, detach, net, preserve_fds, no_pivot, init,
               no_new_keyring) -> None:
        """create's steps in order: plan the namespaces, check the rootfs, write the
        state, make the cgroup and the exec fifo, fork stage 1, then guide the init."""
        linux = cfg.get("linux") or {}
        rootless = os.geteuid() != 0
        flags, joins, userns, uidm, gidm = self._plan_namespaces(cfg, rootless)
        rootfs = cfg["root"]["path"]
        rootfs = rootfs if os.path.isabs(rootfs) else os.path.join(bundle, rootfs)
        if not os.path.isdir(rootfs):
            raise RuntimeSpecError(f"root.path {rootfs}: not a directory (config.md 'Root')")
        o = st["ocilearn"]
        o.update(rootfs=rootfs, userns=userns, process=cfg["process"], seccomp=linux.get("seccomp"),
                 namespaces=[t for t, (f, _) in sc.NAMESPACES.items() if flags & f] + [t for t, _ in joins])
        cg = None if rootless else self._container_cgroup(linux, o)
        if rootless and (linux.get("resources") or {}).keys() - {"devices"}:
            print("ocilearn: warning: rootless: cgroup limits in linux.resources are not applied (cgroups are not delegated to this user)", file=sys.stderr)
        self.write(st)
        step("runtime", "state", f"{self.dir}/state.json (creating)", "")
        if cg:
            cg.create()
            cg.apply(linux.get("resources"))
        os.mkfifo(self.fifo, 0o600)
        if flags & sc.CLONE_NEWUSER:  # the init opens it as the container's root (runc: HostRootUID)
            os.chown(self.fifo, nsmod.host_id(0, uidm), nsmod.host_id(0, gidm))
        # what the children need is imported here, by the runtime: after the namespaces
        # change (a user namespace, pivot_root) the interpreter's files may be out of reach
        from . import process  # noqa: F401
        from . import rootfs as _rootfs_module  # noqa: F401
        if any("tmpcopyup" in (m.get("options") or ()) for m in cfg.get("mounts") or []):
            from . import copyup  # noqa: F401
        # opened here, O_PATH: the container's root may not search the state directory
        fifo_fd = os.open(self.fifo, os.O_PATH | os.O_CLOEXEC)
        ctx = {"cfg": cfg, "bundle": bundle, "rootfs": rootfs, "flags": flags, "userns": userns, "cgroup": cg, "fifo": self.fifo,
               "fifo_fd": fifo_fd, **spec.prepare(cfg),
               "no_pivot": no_pivot or bool(os.environ.get("OCILEARN_NO_PIVOT")), "preserve_fds": preserve_fds, "id": self.id,
               "init": init, "rootless": rootless, "keyring": not no_new_keyring}
        try:
            s2 = self._fork_stage1(st, ctx, nsmod.open_ns(joins), uidm, gidm)
        finally:
            os.close(fifo_fd)
        try:
            self._init_talk(st, cfg, s2, console_socket, pid_file, net)
        finally:
            s2.close()

    def _plan_namespaces(self, cfg: dict, rootless: bool) -> tuple[int, list, bool, list | None, list | None]:
        """``(CLONE_NEW* flags, namespaces to join, in a user namespace?, uidMappings,
        gidMappings)`` from ``linux.namespaces``. Rootless, a user namespace mapping the
        caller to root is added (what ``runc spec --rootless`` writes). Raises
        RuntimeSpecError for a config that cannot work (no mount namespace, a user outside
        the mappings)."""
        linux, proc = cfg.get("linux") or {}, cfg["process"]
        flags, joins = nsmod.plan(linux.get("namespaces"))
        if not flags & sc.CLONE_NEWNS and not any(t == "mount" for t, _ in joins):
            raise RuntimeSpecError("config.json: ocilearn needs a mount namespace (linux.namespaces type 'mount') to pivot_root")
        uidm, gidm = linux.get("uidMappings"), linux.get("gidMappings")
        userns = bool(flags & sc.CLONE_NEWUSER) or any(t == "user" for t, _ in joins)
        if rootless and not userns:
            flags |= sc.CLONE_NEWUSER  # rootless: always a user namespace, container root = the caller
            userns = True
            step("runtime", "rootless", "added a user namespace mapping root to the caller", "runc spec --rootless")
        if flags & sc.CLONE_NEWUSER and not uidm:
            uidm, gidm = nsmod.default_rootless_mappings() if rootless else ([{"containerID": 0, "hostID": 0, "size": 4294967295}],) * 2
        if flags & sc.CLONE_NEWUSER:
            user = proc.get("user") or {}
            for kind, ident, maps in (("uid", user.get("uid", 0), uidm), ("gid", user.get("gid", 0), gidm)):
                if not nsmod.in_mapping(ident, maps):
                    raise RuntimeSpecError(f"process.user {kind} {ident} is outside the user namespace's {kind}Mappings {maps}: it would be nobody; "
                                           "map it, or run as a user inside the mapping")
        caps = proc.get("capabilities") or {}
        if not userns and any("CAP_SYS_PTRACE" in (caps.get(k) or ()) for k in ("bounding", "permitted", "effective")):
            print("ocilearn: warning: process.capabilities grants CAP_SYS_PTRACE without a user namespace: container root can "
                  "then open /proc/PID/exe (the host's Python) of the --init reaper or of an exec child before its execve, "
                  "non-dumpable or not (CVE-2019-5736); drop CAP_SYS_PTRACE or add a user namespace", file=sys.stderr)
        return flags, joins, userns, uidm, gidm

    def _container_cgroup(self, linux: dict, o: dict):
        """The container's cgroup (``linux.cgroupsPath``, or ``/ocilearn-<hash of
        --root>-<id>``: two state roots may hold the same ID), recorded in ``o``; None
        without cgroupfs. Raises RuntimeSpecError when that cgroup already has processes:
        delete would kill processes that are not the container's (runc refuses too)."""
        from .cgroups import Cgroup

        try:
            cg = Cgroup.for_container(linux.get("cgroupsPath") or f"/ocilearn-{fnv1a(os.path.abspath(self.root)):08x}-{self.id}", self.id)
        except OSError:
            return None
        busy = cg.pids()
        if busy:
            raise RuntimeSpecError(f"linux.cgroupsPath {linux.get('cgroupsPath')!r}: that cgroup already has "
                                   f"{len(busy)} process(es) (e.g. pid {busy[0]}); refusing to put a container in it")
        o["cgroup"] = {"version": cg.version, "paths": cg.paths, "base": cg.base}
        return cg

    def _fork_stage1(self, st: dict, ctx: dict, ns_files: list, uidm, gidm):
        """Fork stage 1 as a child subreaper, so that the init stage 1 forks becomes our
        child when stage 1 exits (runc's clone CLONE_PARENT); record the init's PID.
        Returns the parent's end of the socket to the init."""
        s1_parent, s1_child = socketpair()
        s2_parent, s2_child = socketpair()
        for s in (s1_parent, s2_parent):
            s.settimeout(60)
        parent_pid = os.getpid()
        step("runtime", "fork stage 1", "the parent becomes a child subreaper until stage 1 exits (the init is then its child)",
             "runc init (clone CLONE_PARENT)")
        sys.stdout.flush()
        sys.stderr.flush()
        if os.geteuid() == 0:
            from .warmup import warm_wait

            warm_wait()  # no other thread may run when the interpreter forks
        was_subreaper = sc.set_child_subreaper(True)
        try:
            stage1 = os.fork()
            if stage1 == 0:  # ---- stage 1 ----
                code = 1
                forget_steps()
                try:
                    s1_parent.close()
                    s2_parent.close()
                    code = stages.stage1(ctx, parent_pid, ns_files, s1_child, s2_child)
                except BaseException as e:  # noqa: BLE001 - report anything to the runtime
                    try:
                        send(s1_child, {"error": f"{type(e).__name__}: {e}" if not isinstance(e, OSError) else str(e)})
                    except OSError:
                        pass
                finally:
                    os._exit(code)
            for _t, fd in ns_files:
                os.close(fd)
            s1_child.close()
            s2_child.close()
            try:
                self._stage1_talk(st, s1_parent, stage1, uidm, gidm)
            except BaseException:
                forward(stage1, signal.SIGKILL)
                s2_parent.close()
                raise
            finally:
                s1_parent.close()
                reap(stage1)  # it exits right after reporting the init: the kernel re-parents the init to us
        finally:
            if not was_subreaper:
                sc.set_child_subreaper(False)
        return s2_parent

    def _expect(self, sock, what: str) -> tuple[dict, list[int]]:
        """The next setup message from a child; raises ContainerError when it reports an
        error, exits, or stays silent for 60 s."""
        try:
            msg, fds = recv(sock)
        except TimeoutError:
            raise ContainerError(f"container {self.id}: init did not answer ({what}) within 60 s")
        if msg is None:
            raise ContainerError(f"container {self.id}: init exited during setup ({what})")
        for d in msg.get("steps", ()):  # narration from stage 1 and the init
            step(**d)
        if "error" in msg:
            raise ContainerError(f"container {self.id}: {msg['error']}")
        return msg, fds

    def _stage1_talk(self, st: dict, s1, stage1: int, uidm, gidm) -> None:
        """The parent's side of stage 1: write the uid/gid maps when asked (an
        unprivileged process may not write its own, user_namespaces(7)), then learn the
        init's PID and record it with its start time."""
        msg, _ = self._expect(s1, "start")
        if msg.get("t") == "idmap":
            nsmod.write_id_maps(stage1, uidm, gidm)
            send(s1, {"t": "ok"})
            msg, _ = self._expect(s1, "fork")
        init_pid = msg["pid"]
        info = start_time(init_pid)
        st["pid"], st["ocilearn"]["init_start"] = init_pid, info[0] if info else None
        self.write(st)  # from now on `delete --force` finds the init
        step("runtime", "init", f"pid {init_pid} (PID 1 of the new PID namespace); stage 1 exits", "")

    def _init_talk(self, st, cfg, s2, console_socket, pid_file, net) -> None:
        """The parent's side of the init's setup: network and createRuntime hooks at the
        point runtime-spec names, the terminal, then the state "created"."""
        init_pid = st["pid"]
        msg, _ = self._expect(s2, "setup")  # the init reached the runtime's hooks point
        reply: dict = {"t": "ok"}
        if net == "veth":
            from . import network

            addr = network.setup_veth(init_pid, self.id)
            st["ocilearn"]["net"] = addr
            hosts = os.path.join(self.dir, "hosts")
            with open(hosts, "w") as f:
                f.write(network.hosts_file(cfg.get("hostname", ""), addr["container"]))
            reply["hosts"] = hosts
        hooks = cfg.get("hooks") or {}
        run_hooks(hooks.get("prestart", []) + hooks.get("createRuntime", []), hook_state(st, "creating"), "createRuntime")
        send(s2, reply)
        msg, fds = self._expect(s2, "ready")
        if msg.get("t") == "pty":
            master = fds[0]
            if console_socket:
                from .terminal import send_console

                send_console(console_socket, master, msg.get("path", ""))
                os.close(master)
            else:
                self._pty_master = master
            msg, _ = self._expect(s2, "ready")
        st["status"] = "created"
        self.write(st)
        if pid_file:
            atomic_text(pid_file, f"{init_pid}")
        step("runtime", "created", f"init pid {init_pid} waits on {self.fifo}", f"runc create {self.id}")

    def start(self, timeout: float = 10.0) -> None:
        """runtime-spec runtime.md "start": release the init waiting on ``exec.fifo`` so it
        executes the user program; run the poststart hooks. Raises InvalidState unless
        created."""
        st = self.read()
        status = self.status(st)
        if status != "created":
            raise InvalidState(f"cannot start container {self.id}: it is {status}, not created (runtime.md 'start')")
        fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            p = select.poll()
            p.register(fd, select.POLLIN)
            deadline = time.monotonic() + timeout
            got = b""

            def init_alive() -> bool:
                return alive(st["pid"], st["ocilearn"].get("init_start"))

            while True:  # first the byte, then EOF when the init's write end closes at execve
                if p.poll(20):
                    chunk = os.read(fd, 16)
                    if chunk:
                        if not got:
                            os.unlink(self.fifo)  # "running" from now on
                            deadline = time.monotonic() + timeout
                        got += chunk
                        continue
                    if got:
                        break  # EOF after the byte: the program has been executed
                if time.monotonic() > deadline or not init_alive():
                    if not got:
                        raise ContainerError(f"container {self.id}: init did not take the start signal")
                    break
        finally:
            os.close(fd)
        if os.path.exists(self.fifo):
            os.unlink(self.fifo)
        step("runtime", "start", f"released init {st['pid']} through exec.fifo", f"runc start {self.id}")
        run_hooks(st["ocilearn"].get("hooks", {}).get("poststart", []), hook_state(st, "running"), "poststart", warn_only=True)

    def kill(self, sig: int = signal.SIGTERM, all_: bool = False) -> None:
        """runtime-spec runtime.md "kill": send ``sig`` to the init (``all_``: to every
        process of the container). A paused container is thawed for SIGKILL (a frozen
        task acts on no signal). Raises InvalidState when the container is not created,
        running or paused — except with ``all_``, which on a stopped container signals
        nobody and succeeds, as runc's ``kill --all`` does."""
        st = self.read()
        status = self.status(st)
        if status not in ("created", "running", "paused"):
            if all_ and status == "stopped":
                return
            raise InvalidState(f"cannot kill container {self.id}: it is {status} (runtime.md 'kill' needs created or running)")
        targets = self.pids(st) if all_ else [st["pid"]]
        for pid in targets:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if status == "paused" and sig == signal.SIGKILL:
            from .freezer import set_frozen

            set_frozen(self.cgroup(st), False)
        step("runtime", "kill", f"signal {sig} to {targets}", f"runc kill {'--all ' if all_ else ''}{self.id} {sig}")

    def stop(self, grace: float = 10.0, sig: int = signal.SIGTERM) -> str:
        """Stop the container like ``docker stop``: send ``sig`` (SIGTERM) to the init,
        wait up to ``grace`` seconds, then SIGKILL. Returns ``"exited"`` (it obeyed),
        ``"killed"`` (escalated) or ``"stopped"`` (it was not running). A PID 1 without a
        handler ignores SIGTERM (pid_namespaces(7)), hence the escalation."""
        st = self.read()
        if self.status(st) not in ("created", "running", "paused"):
            return "stopped"
        pid, start = st["pid"], st["ocilearn"].get("init_start")
        self.kill(sig)
        if wait_gone(pid, start, grace):
            return "exited"
        self.kill(signal.SIGKILL, all_=True)
        wait_gone(pid, start, 5)
        step("runtime", "stop", f"{self.id} ignored signal {sig} for {grace} s: SIGKILL", f"docker stop -t {grace:g}")
        return "killed"

    def _reap_init(self, st: dict | None, block: bool) -> None:
        if self._status is None:
            pid = (st or {}).get("pid", 0)
            if pid:
                self._status = reap(pid, block)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the init to exit and return its exit code (128+N for signal N), as
        the caller that reaps it (conmon and containerd-shim do this for podman and
        containerd; the kernel made the init this process's child at :meth:`create`).
        Returns None when the init is not this process's child (another process created
        the container) or ``timeout`` seconds passed."""
        if self._status is None:
            st = self.read()
            if timeout is not None:
                wait_gone(st.get("pid", 0), st.get("ocilearn", {}).get("init_start"), timeout)
            self._reap_init(st, block=timeout is None)
        return None if self._status is None else exit_code(self._status)

    def exit_status(self) -> dict | None:
        """``{"code": N}`` or ``{"signal": N}`` of an init that has exited and that this
        process reaped (or reaps now); None while it runs or when it is not our child."""
        if self._status is None:
            try:
                self._reap_init(self.read(), block=False)
            except ContainerNotFound:
                pass
        if self._status is None:
            return None
        code = os.waitstatus_to_exitcode(self._status)
        return {"signal": -code} if code < 0 else {"code": code}

    def pause(self) -> None:
        """runc pause: freeze every process of a running container in its cgroup
        (:mod:`.freezer`). Raises InvalidState unless running; ContainerError without a
        cgroup (rootless)."""
        st = self.read()
        status = self.status(st)
        if status != "running":
            raise InvalidState(f"cannot pause container {self.id}: it is {status}, not running")
        from .freezer import set_frozen

        set_frozen(self._need_cgroup(st, "pause"), True)

    def resume(self) -> None:
        """runc resume: thaw a paused container. Raises InvalidState unless paused."""
        st = self.read()
        status = self.status(st)
        if status != "paused":
            raise InvalidState(f"cannot resume container {self.id}: it is {status}, not paused")
        from .freezer import set_frozen

        set_frozen(self._need_cgroup(st, "resume"), False)

    def _need_cgroup(self, st: dict, what: str):
        cg = self.cgroup(st)
        if cg is None:
            raise ContainerError(f"cannot {what} container {self.id}: it has no cgroup (rootless: cgroups are not delegated to this user)")
        return cg

    def update(self, resources: dict) -> None:
        """runc update: apply new ``linux.resources`` values (memory limit, reservation
        and swap; cpu shares, quota, period, cpus, mems; pids limit) to a container's
        cgroup. Values that ocilearn cannot change are refused naming the field (see
        :func:`update_resources`). Raises InvalidState when stopped."""
        st = self.read()
        status = self.status(st)
        if status not in ("created", "running", "paused"):
            raise InvalidState(f"cannot update container {self.id}: it is {status}")
        cg = self._need_cgroup(st, "update")
        res = update_resources(resources)
        try:
            cg.apply(res)
        except OSError:
            # cgroup v1 refuses memory.limit_in_bytes above memory.memsw.limit_in_bytes and
            # the swap limit below the memory limit: the right order depends on the
            # direction of the change, so try swap first (runc does the same dance)
            mem = res.get("memory") or {}
            if "swap" not in mem:
                raise
            cg.apply({"memory": {"swap": mem["swap"]}})
            cg.apply(res)
        step("runtime", "update", dumps(res), f"runc update {self.id}")

    def delete(self, force: bool = False) -> None:
        """runtime-spec runtime.md "delete": remove what create made — processes (a
        created container's init, or with ``force`` a running one: SIGKILL), the cgroup,
        the state directory; run poststop hooks. Raises InvalidState for a running or
        paused container without ``force`` (runc-delete(8))."""
        try:
            st = self.read()
        except ContainerNotFound:
            if not os.path.isdir(self.dir):
                raise
            st = {"id": self.id, "status": "creating", "pid": 0, "ocilearn": {}}  # killed before its first state write
        except ContainerError as e:
            if not force:
                raise
            st, found = self._salvage()
            if not found:
                rmtree(self.dir)
                raise ContainerError(f"{e} — removed {self.dir}, but neither its cgroup nor its init process could be identified: "
                                     "look for what is left with `ps` and under /sys/fs/cgroup") from None
            step("runtime", "salvage", f"corrupt state: using {st['ocilearn']}", "")
        status = self.status(st)
        o = st.get("ocilearn", {})
        if status in ("running", "paused") and not force:
            raise InvalidState(f"cannot delete container {self.id} that is not stopped: {status} (stop it with kill, or use --force)")
        cg = self.cgroup(st)
        if status in ("created", "running", "paused", "creating") or force:
            pid = st.get("pid", 0)
            kill_init(pid, o.get("init_start"))
            if cg:
                cg.kill_all()
                if status == "paused":
                    from .freezer import set_frozen

                    set_frozen(cg, False)  # a frozen task does not die until thawed
            if pid:
                wait_gone(pid, o.get("init_start"), 5)
        self._reap_init(st, block=False)  # our child (library use, `run`): no zombie left
        if cg:
            cg.destroy()
        if status != "creating":
            run_hooks(o.get("hooks", {}).get("poststop", []), hook_state(st, "stopped"), "poststop", warn_only=True)
        rmtree(self.dir)
        step("runtime", "delete", f"container {self.id}: processes, cgroup and {self.dir} removed", f"runc delete {self.id}")


def update_resources(resources: dict) -> dict:
    """The part of a ``runc update`` resources object (runtime-spec config-linux.md
    "Control groups" shape: ``{"memory": {...}, "cpu": {...}, "pids": {...}}``) that
    ocilearn applies: memory limit/reservation/swap, cpu shares/quota/period/cpus/mems,
    pids limit. ``devices`` is ignored, as runc's update ignores it (device rules are
    fixed at create). Any other non-zero field is refused: raises ContainerError naming
    it."""
    if not isinstance(resources, dict):
        raise ContainerError("update: the resources must be a JSON object (config-linux.md 'Control groups')")
    keep = {"memory": ("limit", "reservation", "swap"), "cpu": ("shares", "quota", "period", "cpus", "mems"), "pids": ("limit",)}
    out: dict = {}
    for key, value in resources.items():
        if key == "devices":
            continue
        if key not in keep:
            if _empty(value):
                continue
            raise ContainerError(f"update: resources.{key} is not supported by ocilearn (supported: memory, cpu, pids)")
        if not isinstance(value, dict):
            raise ContainerError(f"update: resources.{key} must be an object")
        for k, v in value.items():
            if k in keep[key]:
                if v is None:
                    continue
                if k in ("cpus", "mems"):
                    if not isinstance(v, str):
                        raise ContainerError(f"update: resources.{key}.{k} = {v!r}: must be a string like '0-3,7'")
                    if not v:
                        continue
                elif type(v) is not int:
                    raise ContainerError(f"update: resources.{key}.{k} = {v!r}: must be an integer")
                out.setdefault(key, {})[k] = v
            elif not _empty(v):
                raise ContainerError(f"update: resources.{key}.{k} is not supported by ocilearn")
    return out


def _empty(v) -> bool:
    """True for a value that asks for nothing (runc's update JSON template is all zeros)."""
    if isinstance(v, dict):
        return all(_empty(x) for x in v.values())
    return v in (None, 0, "", False, [])


def run(root: str, cid: str, bundle: str, *, detach: bool = False, console_socket: str | None = None, pid_file: str | None = None,
        net: str | None = None, keep: bool = False, no_pivot: bool = False, preserve_fds: int = 0, init: bool = False,
        no_new_keyring: bool = False) -> int:
    """``runc run``: create + start. In the foreground this process is the caller that
    reaps the init (its child, see the module doc): it forwards SIGINT/SIGTERM/SIGHUP…
    to it, proxies its terminal, waits, deletes (unless ``keep``), and returns its exit
    code (128+N for signal N). With ``detach``: create + start, return 0 (the init then
    goes to our caller's subreaper when we exit)."""
    if detach:
        c = Container.create(root, cid, bundle, console_socket=console_socket, pid_file=pid_file, net=net, no_pivot=no_pivot,
                             preserve_fds=preserve_fds, init=init, no_new_keyring=no_new_keyring)
        c.start()
        return 0
    c = Container.create(root, cid, bundle, detach=False, console_socket=console_socket, pid_file=pid_file, net=net, no_pivot=no_pivot,
                         preserve_fds=preserve_fds, init=init, no_new_keyring=no_new_keyring)
    try:
        st = c.read()
        pid = st["pid"]
        old = {s: signal.signal(s, lambda n, f: forward(pid, n)) for s in FORWARD}
        master = c._pty_master
        try:
            if master is not None:
                from .terminal import copy_winsize, proxy_pty  # a terminal only: not imported for every run

                copy_winsize(master)  # before the program starts: it may ask at once (stty size)
            c.start()
            step("runtime", "started", f"container {cid}: program running", "")
            if master is not None:
                proxy_pty(master)
            code = c.wait()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        code = 1 if code is None else code
        step("runtime", "exited", f"container {cid}: status {code}", "")
        cg = c.cgroup(st)
        if cg and cg.oom_kills():
            print(f"ocilearn: container {cid} was OOM-killed: the kernel's OOM killer killed {cg.oom_kills()} process(es) "
                  "at the memory cgroup limit (linux.resources.memory.limit)", file=sys.stderr)
        return code
    finally:
        if not keep:
            try:
                c.delete(force=True)
            except ContainerNotFound:
                pass
