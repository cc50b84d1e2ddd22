"""runc's command line for ocilearn's runtime — the one parser behind both
``ocilearn COMMAND …`` and ``python -m ocilearn.runtime COMMAND …`` (runc(8) and its
runc-COMMAND(8) man pages, runc 1.1).

It is built with :mod:`argparse` (standard library, about 2 ms to import) and imports
nothing outside :mod:`ocilearn.runtime` and :mod:`ocilearn.core`: ``ocilearn run``
starts as fast as the interpreter allows. ``--help`` of each command lists exactly the
options this parser accepts, and each goes to the function named in the help.

Global options come before the command, as with runc: ``--root DIR`` (state directory),
``--log FILE`` and ``--log-format text|json`` (errors are also written there as logrus
does: containerd's shim reads the last ``"level":"error"`` line of that file to report
why a call failed), ``--debug`` (each step of the runtime as a debug line of the log),
``--systemd-cgroup`` (refused: ocilearn manages cgroupfs directly), and ocilearn's
``--explain`` (the steps and the equivalent commands, on stderr).

Exit status: 0; 1 for any error (``ocilearn: error: …`` on stderr, one line); ``exec``
and ``run`` pass the program's status through (128+N for signal N) and ``exec`` exits 255
when the process could not be started, as runc does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ..core.errors import ContainerNotFound, OcilearnError
from .launch import COMMANDS, GLOBAL_VALUE_OPTIONS, command_of  # noqa: F401 - part of this module's interface


class UsageError(Exception):
    """A command line the parser refuses (unknown option, missing argument)."""


def _formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's help formatter with the terminal width found without shutil (argparse
    builds a formatter for every option it adds, and shutil costs ~2 ms to import)."""
    try:
        width = int(os.environ.get("COLUMNS", "0")) or os.get_terminal_size(sys.__stdout__.fileno()).columns
    except (OSError, ValueError, AttributeError):
        width = 80
    return argparse.HelpFormatter(prog, width=max(width, 40) - 2)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *a, **kw) -> None:
        kw.setdefault("formatter_class", _formatter)
        super().__init__(*a, **kw)

    def error(self, message: str):  # argparse prints and exits 2; runc exits 1 and logs it
        raise UsageError(f"{message}\n{self.format_usage().rstrip()}")


def _count(v: str) -> int:
    """``--preserve-fds N``: a whole number >= 0 (a negative count would close stdio)."""
    if not v.isascii() or not v.isdigit():
        raise argparse.ArgumentTypeError(f"{v!r}: must be a number >= 0")
    return int(v)


def _integer(v: str) -> int:
    try:
        return int(v, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{v!r}: must be an integer")


def _uint32(v: str) -> int:
    if not v.isascii() or not v.isdigit() or int(v) > 2**32 - 2:
        raise argparse.ArgumentTypeError(f"{v!r}: must be a number from 0 to {2**32 - 2}")
    return int(v)


def build_parser(prog: str = "ocilearn", only: str | None = None) -> argparse.ArgumentParser:
    """The whole runtime command line: global options and one sub-parser per command
    (runc(8) "GLOBAL OPTIONS", runc-create(8), runc-run(8), runc-exec(8) …). With
    ``only``, the other commands get their name and help but no options (what parsing
    that command needs; building every option costs ``ocilearn run`` ~3 ms)."""
    p = _Parser(prog=prog, description="Run OCI bundles as containers: runc's command line on ocilearn's readable Python runtime "
                "(ocilearn.runtime). Global options come before the command.")
    p.add_argument("--root", metavar="DIR", help="state directory (default /run/ocilearn as root, else $XDG_RUNTIME_DIR/ocilearn)")
    p.add_argument("--log", metavar="FILE", help="also write errors (and, with --debug, each step) to FILE (runc's --log)")
    p.add_argument("--log-format", choices=("text", "json"), default="text", help="format of --log lines: logrus text or JSON (default text)")
    p.add_argument("--debug", action="store_true", help="log each step of the runtime at debug level; tracebacks for internal errors")
    p.add_argument("--systemd-cgroup", action="store_true", help="refused: ocilearn writes cgroupfs itself, without systemd")
    p.add_argument("--explain", action="store_true", help="print each real step (syscalls, files) and the equivalent command on stderr")
    p.add_argument("-v", "--version", action="store_true", help="print the version and exit")
    # prog given: argparse would otherwise format a usage line (importing shutil) to make it
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, prog=prog)

    class _Unused:  # stands in for the parser of a command that is not being parsed
        def add_argument(self, *a, **k) -> None:
            pass

    def add(name: str, help_: str, target: str):
        if only is not None and name != only:
            sub.add_parser(name, help=help_)
            return _Unused()
        return sub.add_parser(name, help=help_, description=f"{help_} (runc-{name}(8); runs {target})")

    def bundle_options(q: argparse.ArgumentParser) -> None:
        q.add_argument("-b", "--bundle", default=".", metavar="DIR", help="bundle directory: config.json + rootfs (default: current directory)")
        q.add_argument("--console-socket", metavar="PATH", help="AF_UNIX socket that receives the pty master when process.terminal is true")
        q.add_argument("--pid-file", metavar="FILE", help="write the init's host PID to FILE")
        q.add_argument("--no-pivot", action="store_true", help="MS_MOVE + chroot instead of pivot_root (initramfs hosts)")
        q.add_argument("--no-new-keyring", action="store_true", help="keep the caller's session keyring instead of a new one for the container")
        q.add_argument("--preserve-fds", type=_count, default=0, metavar="N", help="pass fds 3 … 3+N-1 into the container")
        q.add_argument("--net", choices=("none", "veth"), default="none", help="ocilearn extra: a veth pair to the host and /etc/hosts")
        q.add_argument("--init", action="store_true", help="ocilearn extra: PID 1 is a small reaper that forwards signals to the program")
        q.add_argument("container_id", metavar="ID")

    q = add("create", "Create a container: its init waits on exec.fifo until `start`", "ocilearn.runtime.container.Container.create")
    bundle_options(q)
    q = add("run", "Create and start a container; in the foreground wait for it and exit with its status",
            "ocilearn.runtime.container.run")
    bundle_options(q)
    q.add_argument("-d", "--detach", action="store_true", help="return once the program runs")
    q.add_argument("--keep", action="store_true", help="keep the state directory and cgroup after the container exits")
    q = add("start", "Run the program of a created container", "ocilearn.runtime.container.Container.start")
    q.add_argument("container_id", metavar="ID")
    q = add("state", "Print the state of a container as JSON", "ocilearn.runtime.state.ContainerState.state")
    q.add_argument("container_id", metavar="ID")
    q = add("list", "List the containers of --root", "ocilearn.runtime.state.list_containers")
    q.add_argument("-f", "--format", choices=("table", "json"), default="table", help="table (default) or json")
    q.add_argument("-q", "--quiet", action="store_true", help="only the container IDs")
    q = add("kill", "Send a signal (name or number, default SIGTERM) to the container's init", "ocilearn.runtime.container.Container.kill")
    q.add_argument("-a", "--all", action="store_true", help="signal every process of the container")
    q.add_argument("container_id", metavar="ID")
    q.add_argument("signal", nargs="?", default="SIGTERM", metavar="SIGNAL")
    q = add("delete", "Delete a container: its processes, cgroup and state directory", "ocilearn.runtime.container.Container.delete")
    q.add_argument("-f", "--force", action="store_true", help="SIGKILL a running container first; a missing one is not an error")
    q.add_argument("container_id", metavar="ID")
    q = add("ps", "Show the processes of a container (host PIDs; table from ps(1))", "ocilearn.runtime.state.ContainerState.pids")
    q.add_argument("-f", "--format", choices=("table", "json"), default="table", help="table (ps -ef filtered, default) or json (PIDs)")
    q.add_argument("container_id", metavar="ID")
    q.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="PS-OPTION", help="options for ps(1) (default -ef)")
    q = add("exec", "Run another process in a created or running container", "ocilearn.runtime.exec.exec_in")
    q.add_argument("--console-socket", metavar="PATH", help="AF_UNIX socket that receives the pty master (with --tty)")
    q.add_argument("--cwd", metavar="DIR", help="working directory in the container")
    q.add_argument("-e", "--env", action="append", default=[], metavar="NAME=VALUE", help="set an environment variable (repeatable)")
    q.add_argument("-t", "--tty", action="store_true", default=None, help="allocate a pseudo-terminal")
    q.add_argument("-u", "--user", metavar="UID[:GID]", help="numeric user (and group) to run as")
    q.add_argument("-g", "--additional-gids", action="append", type=_uint32, default=[], metavar="GID", help="add a group (repeatable)")
    q.add_argument("-p", "--process", metavar="FILE", help="runtime-spec process.json instead of the command line ('-' = stdin)")
    q.add_argument("-d", "--detach", action="store_true", help="return once the process runs")
    q.add_argument("--pid-file", metavar="FILE", help="write the process's host PID to FILE")
    q.add_argument("--cap", action="append", default=[], metavar="CAP", help="add a capability (repeatable)")
    q.add_argument("--no-new-privs", action="store_true", default=None, help="set no_new_privs for the process")
    q.add_argument("--preserve-fds", type=_count, default=0, metavar="N", help="pass fds 3 … 3+N-1 into the process")
    q.add_argument("--ignore-paused", action="store_true", help="allow exec in a paused container (it runs once resumed)")
    q.add_argument("container_id", metavar="ID")
    q.add_argument("args", nargs=argparse.REMAINDER, metavar="COMMAND", help="program and arguments")
    q = add("pause", "Freeze every process of a running container (cgroup freezer)", "ocilearn.runtime.container.Container.pause")
    q.add_argument("container_id", metavar="ID")
    q = add("resume", "Thaw a paused container", "ocilearn.runtime.container.Container.resume")
    q.add_argument("container_id", metavar="ID")
    q = add("update", "Change the cgroup limits of a container", "ocilearn.runtime.container.Container.update")
    q.add_argument("-r", "--resources", metavar="FILE", help="linux.resources JSON ('-' = stdin); the other options are then ignored")
    q.add_argument("--memory", type=_integer, metavar="BYTES", help="memory limit")
    q.add_argument("--memory-reservation", type=_integer, metavar="BYTES", help="memory soft limit")
    q.add_argument("--memory-swap", type=_integer, metavar="BYTES", help="memory + swap limit (-1 = unlimited)")
    q.add_argument("--pids-limit", type=_integer, metavar="N", help="maximum number of processes")
    q.add_argument("--cpu-shares", "--cpu-share", dest="cpu_shares", type=_integer, metavar="N", help="CPU shares (relative weight)")
    q.add_argument("--cpu-quota", type=_integer, metavar="USEC", help="CFS quota per period (-1 = none)")
    q.add_argument("--cpu-period", type=_integer, metavar="USEC", help="CFS period")
    q.add_argument("--cpuset-cpus", metavar="LIST", help="CPUs to use (0-3,7)")
    q.add_argument("--cpuset-mems", metavar="LIST", help="memory nodes to use")
    q.add_argument("container_id", metavar="ID")
    add("features", "Print what this runtime supports (runtime-spec features.md) as JSON", "ocilearn.runtime.features.features")
    return p


def _untranslated(text: str) -> str:
    return text


def parse(argv: list[str], prog: str = "ocilearn") -> argparse.Namespace:
    """Parse a runtime command line. Raises UsageError (with the usage of the command
    concerned); ``--help`` raises SystemExit(0)."""
    cmd = command_of(argv)
    # argparse passes its own strings (section titles, "show this help message and exit")
    # through gettext while a parser is built, and each call searches the locale
    # directories for argparse.mo again: about 1 ms of every command line, plus importing
    # locale. This command line is English, as runc's is.
    translate, argparse._ = argparse._, _untranslated
    try:
        parser = build_parser(prog, only=cmd if cmd in COMMANDS and not {"-h", "--help"} & set(argv[:argv.index(cmd)]) else None)
    finally:
        argparse._ = translate
    ns, extra = parser.parse_known_args(argv)
    if extra:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices.get(ns.command, parser)
        sub.error(f"unrecognized arguments: {' '.join(extra)}")
    return ns


# ---------------------------------------------------------------- logging


class _Log:
    """runc's log destination: ``--log FILE`` in ``text`` (logrus ``time=… level=…
    msg=…``) or ``json`` (``{"level", "msg", "time"}``) lines, appended; created at
    start-up even when nothing is logged (containerd's shim opens it after every call)."""

    def __init__(self, path: str | None, fmt: str) -> None:
        self.fd = -1
        self.fmt = fmt
        if path:
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)

    def write(self, level: str, msg: str) -> None:
        if self.fd < 0:
            return
        ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # logrus: RFC 3339
        if self.fmt == "json":
            line = json.dumps({"level": level, "msg": msg, "time": ts})
        else:
            line = f"time={json.dumps(ts)} level={level} msg={json.dumps(msg)}"
        try:
            os.write(self.fd, (line + "\n").encode())
        except OSError:
            pass


# ---------------------------------------------------------------- commands


def _state_json(obj) -> str:
    return json.dumps(obj, indent=2)


def _table(rows: list[tuple[str, ...]]) -> str:
    """Columns as runc prints them (Go text/tabwriter: minwidth 12, padding 3, last column
    unpadded)."""
    if not rows:
        return ""
    n = len(rows[0])
    widths = [max(12, max(len(r[k]) for r in rows) + 3) for k in range(n - 1)]
    return "\n".join("".join(v.ljust(w) for v, w in zip(r[:-1], widths, strict=True)) + r[-1] for r in rows)


def _read_json_arg(path: str, what: str) -> dict:
    try:
        if path == "-":
            data = sys.stdin.read()
        else:
            with open(path) as f:
                data = f.read()
        return json.loads(data)
    except OSError as e:
        raise OcilearnError(f"{what} {path}: {e.strerror}")
    except ValueError as e:
        raise OcilearnError(f"{what} {path}: not valid JSON ({e})")


def _ps_table(pids: list[int], ps_args: list[str]) -> str:
    """``ps -ef`` (or ``ps_args``) filtered to the container's PIDs, as runc ps does."""
    import subprocess

    p = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True)
    if p.returncode != 0:
        raise OcilearnError(f"ps {' '.join(ps_args or ['-ef'])}: exit status {p.returncode}: {p.stdout}{p.stderr}".strip())
    lines = p.stdout.splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise OcilearnError("couldn't find PID field in ps output")
    k = titles.index("PID")
    want = set(pids)
    out = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > k and fields[k].isdigit() and int(fields[k]) in want:
            out.append(line)
    return "\n".join(out)


def _resources(a: argparse.Namespace) -> dict:
    if a.resources:
        return _read_json_arg(a.resources, "--resources")
    r: dict = {}
    for key, field, value in (("memory", "limit", a.memory), ("memory", "reservation", a.memory_reservation),
                              ("memory", "swap", a.memory_swap), ("pids", "limit", a.pids_limit), ("cpu", "shares", a.cpu_shares),
                              ("cpu", "quota", a.cpu_quota), ("cpu", "period", a.cpu_period), ("cpu", "cpus", a.cpuset_cpus),
                              ("cpu", "mems", a.cpuset_mems)):
        if value is not None:
            r.setdefault(key, {})[field] = value
    return r


def run_command(a: argparse.Namespace, out=None) -> int:
    """Run one parsed command; returns the exit status. Raises OcilearnError/OSError."""
    from . import container as rt
    from .state import default_root

    out = out or sys.stdout
    root = default_root() if a.root is None else a.root
    if a.root is not None and not a.root:
        raise OcilearnError("--root is empty (an unset variable?); name the state directory")
    if a.systemd_cgroup:
        raise OcilearnError("--systemd-cgroup is not supported: ocilearn manages cgroupfs itself (use the cgroupfs manager, "
                            "e.g. podman --cgroup-manager cgroupfs)")
    cmd = a.command
    if cmd in ("create", "run"):
        opts = dict(console_socket=a.console_socket, pid_file=a.pid_file, net=None if a.net == "none" else a.net, no_pivot=a.no_pivot,
                    preserve_fds=a.preserve_fds, init=a.init, no_new_keyring=a.no_new_keyring)
        if cmd == "create":
            rt.Container.create(root, a.container_id, a.bundle, **opts)
            return 0
        return rt.run(root, a.container_id, a.bundle, detach=a.detach, keep=a.keep, **opts)
    if cmd == "features":
        from .features import features

        print(json.dumps(features(), indent=4), file=out)
        return 0
    if cmd == "list":
        from .state import list_containers

        items = list_containers(root)
        if a.quiet:
            text = "\n".join(i["id"] for i in items)
        elif a.format == "json":
            text = json.dumps(items, separators=(",", ":"))
        else:
            text = _table([("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")] +
                          [(i["id"], str(i["pid"]), i["status"], i["bundle"], i["created"], i["owner"]) for i in items])
        if text:
            print(text, file=out)
        return 0
    if cmd == "delete":
        try:
            c = rt.Container.load(root, a.container_id)
        except ContainerNotFound:
            if a.force:
                return 0
            raise
        c.delete(force=a.force)
        return 0
    if cmd == "exec":
        command = list(a.args)
        if command[:1] == ["--"]:
            command = command[1:]
        process = _read_json_arg(a.process, "--process") if a.process else None
        if process is None and not command:
            raise UsageError("exec needs a command (or --process FILE)")
        from .exec import exec_in

        return exec_in(root, a.container_id, command or None, process=process, env=a.env, cwd=a.cwd, user=a.user,
                          additional_gids=a.additional_gids, tty=a.tty, detach=a.detach, console_socket=a.console_socket,
                          pid_file=a.pid_file, caps=a.cap, no_new_privs=a.no_new_privs, preserve_fds=a.preserve_fds,
                          ignore_paused=a.ignore_paused)
    c = rt.Container.load(root, a.container_id)
    if cmd == "start":
        c.start()
    elif cmd == "state":
        print(_state_json(c.state()), file=out)
    elif cmd == "kill":
        c.kill(rt.parse_signal(a.signal), all_=a.all)
    elif cmd == "ps":
        pids = c.pids()
        print(json.dumps(pids, separators=(",", ":")) if a.format == "json" else _ps_table(pids, a.ps_args), file=out)
    elif cmd == "pause":
        c.pause()
    elif cmd == "resume":
        c.resume()
    elif cmd == "update":
        c.update(_resources(a))
    return 0


def main(argv: list[str] | None = None, prog: str = "ocilearn") -> int:
    """Parse ``argv``, run the command, turn errors into one line on stderr (and the log)
    and an exit status (see the module doc). Never raises, except SystemExit for
    ``--help``."""
    argv = sys.argv[1:] if argv is None else argv
    log = None
    a = None
    try:
        a = parse(argv, prog)
        log = _Log(a.log, a.log_format)
        if a.version:
            from importlib.metadata import PackageNotFoundError, version

            try:
                v = version("ocilearn")
            except PackageNotFoundError:
                v = "unknown"
            print(f"ocilearn version {v}\nspec: 1.0.2")
            return 0
        if not a.command:
            raise UsageError(f"a command is needed: {', '.join(COMMANDS)}\n{build_parser(prog).format_usage().rstrip()}")
        if a.explain or a.debug:
            from ..core import explain

            with explain.recording() as steps:
                try:
                    return run_command(a)
                finally:
                    if a.debug:
                        for s in steps:
                            log.write("debug", f"{s.action}: {s.detail}" + (f" ($ {s.equivalent})" if s.equivalent else ""))
                    if a.explain and steps:
                        print(str(steps), file=sys.stderr)
        return run_command(a)
    except (OcilearnError, OSError, UsageError) as e:
        msg = " ".join(str(e).split()) if not isinstance(e, UsageError) else str(e)
        first = msg.splitlines()[0] if msg else type(e).__name__
        if log is None:
            try:
                log = _Log(*_peek_log(argv))
            except OSError:
                log = _Log(None, "text")
        if a is not None and a.command == "exec" and "exec failed" in first:
            code = 255
        else:
            code = 1
        log.write("error", first)
        print(f"ocilearn: error: {msg}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug of ours: still one line, the traceback on request
        if a is not None and a.debug:
            raise
        msg = f"internal error: {type(e).__name__}: {' '.join(str(e).split())[:300]} (a bug: please report it; --debug shows the traceback)"
        if log is not None:
            log.write("error", msg)
        print(f"ocilearn: {msg}", file=sys.stderr)
        return 70  # EX_SOFTWARE


def _peek_log(argv: list[str]) -> tuple[str | None, str]:
    """``--log FILE`` and ``--log-format`` from a command line the parser refused: the
    caller still reads the error from that file."""
    found = {"--log": None, "--log-format": "text"}
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if name in found and (eq or i + 1 < len(argv)):
            found[name] = value if eq else argv[i + 1]
    return found["--log"], found["--log-format"] if found["--log-format"] in ("text", "json") else "text"


def entry(prog: str = "ocilearn") -> None:
    """Console entry: run :func:`main`, flush stdout and stderr, and leave with
    os._exit(2): a runtime command has nothing to clean up at interpreter exit (its
    files are written with os.write or closed), and skipping the interpreter's teardown
    saves a few milliseconds of every ``ocilearn run``."""
    code = main(prog=prog)
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            pass
    os._exit(code & 0xFF)
