"""runc's command line for ocilearn's runtime — the one parser behind both
``ocilearn COMMAND …`` and ``python -m ocilearn.runtime COMMAND …`` (runc(8) and its
runc-COMMAND(8) man pages, runc 1.1).

The grammar is an :mod:`argparse` parser (:mod:`.argparser`); the everyday command
lines of ``create``, ``run``, ``start``, ``state``, ``kill`` and ``delete`` are read by
:mod:`.cmdline` into the same namespace without importing argparse (:func:`parse`). It
imports nothing outside :mod:`ocilearn.runtime` and :mod:`ocilearn.core`: ``ocilearn
run`` starts as fast as the interpreter allows. ``--help`` of each command lists exactly the
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

import os
import sys
import time

from ..core.errors import ContainerNotFound, OcilearnError
from .cmdline import UsageError, parse_simple  # noqa: F401 - UsageError is part of this module's interface
from .jsonio import dumps, loads
from .launch import COMMANDS, GLOBAL_VALUE_OPTIONS, command_of  # noqa: F401 - part of this module's interface


def build_parser(prog: str = "ocilearn", only: str | None = None):
    """The argparse parser of the whole runtime command line (see
    :func:`.argparser.build_parser`)."""
    from .argparser import build_parser as build

    return build(prog, only)


def parse(argv: list[str], prog: str = "ocilearn"):
    """Parse a runtime command line into a namespace of its options (the attributes of
    an ``argparse.Namespace``). The everyday command lines of ``create``, ``run``,
    ``start``, ``state``, ``kill`` and ``delete`` are read by :func:`.cmdline.parse_simple`
    without importing argparse (with :mod:`re`, about 7 ms of every ``ocilearn run``);
    the rest by argparse (:mod:`.argparser`), which gives the same namespace for those
    (tests/test_runtime_startup.py compares them). Raises UsageError (with the usage of the
    command concerned); ``--help`` raises SystemExit(0)."""
    ns = parse_simple(argv)
    if ns is not None:
        return ns
    from .argparser import parse as parse_with_argparse

    return parse_with_argparse(argv, prog)


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
            line = dumps({"level": level, "msg": msg, "time": ts})
        else:
            line = f"time={dumps(ts)} level={level} msg={dumps(msg)}"
        try:
            os.write(self.fd, (line + "\n").encode())
        except OSError:
            pass


# ---------------------------------------------------------------- commands


def _state_json(obj) -> str:
    import json  # indented output: json's encoder (not on the path of run)

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
        return loads(data)
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


def _resources(a) -> dict:
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


def run_command(a, out=None) -> int:
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
        import json

        from .features import features

        print(json.dumps(features(), indent=4), file=out)
        return 0
    if cmd == "list":
        from .state import list_containers

        items = list_containers(root)
        if a.quiet:
            text = "\n".join(i["id"] for i in items)
        elif a.format == "json":
            import json

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
        import json

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
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug of ours: still one line, the traceback on request
        if a is not None and a.debug:
            raise
        msg = f"internal error: {type(e).__name__}: {' '.join(str(e).split())[:300]} (a bug: please report it; --debug shows the traceback)"
        if log is not None:
            log.write("error", msg)
        print(f"{prog}: {msg}", file=sys.stderr)
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
    if sys.stderr is None:  # fd 2 closed: messages must not fall back to stdout
        sys.stderr = open(os.devnull, "w")
    code = main(prog=prog)
    for f in (sys.stdout, sys.stderr):
        try:
            if f is not None:  # None: the caller closed that descriptor
                f.flush()
        except (OSError, ValueError):
            pass
    os._exit(code & 0xFF)
