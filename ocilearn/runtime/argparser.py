"""runc's command line as an :mod:`argparse` parser (runc(8) and its runc-COMMAND(8) man
pages, runc 1.1): the one grammar of ``ocilearn COMMAND …``, ``ocilearn-runtime COMMAND
…`` and ``python -m ocilearn.runtime COMMAND …``, its ``--help`` and its usage errors.
:mod:`.cmdline` parses the everyday command lines of ``create``, ``run``, ``start``,
``state``, ``kill`` and ``delete`` without importing this module (argparse needs
:mod:`re`); every other command line — and anything unusual in those — comes here.
"""

from __future__ import annotations

import argparse
import os
import sys

from .cmdline import UsageError
from .launch import COMMANDS, command_of


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
