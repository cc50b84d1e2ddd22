"""The everyday runtime command lines, read without :mod:`argparse`.

``podman``, ``containerd`` and the notebooks call the runtime once per container
operation with a plain command line — ``--root DIR --log FILE --log-format json create
--bundle DIR --pid-file FILE ID``, ``start ID``, ``kill ID 9``, ``delete --force ID``.
:func:`parse_simple` reads exactly those: the global options, then ``create``, ``run``,
``start``, ``state``, ``kill`` or ``delete`` with their options, each option written in
full (``--bundle DIR``, ``--bundle=DIR``, ``-b DIR``), its value not starting with
``-``. Anything else — another command, ``--help``, an abbreviated or unknown option,
``--``, a missing or extra argument, a bad value — returns None, and :mod:`.argparser`
parses the command line (and explains what is wrong with it). The result is the
namespace argparse gives for the same command line, every default included
(tests/test_runtime_startup.py compares the two on generated command lines).

Why: argparse imports :mod:`re`, and with it :mod:`enum`, :mod:`functools` and
:mod:`collections`; with building the parser that is about 7 ms of every ``ocilearn
run`` on an interpreter built without PGO — a quarter of what ``runc run`` takes.
"""

from __future__ import annotations


class UsageError(Exception):
    """A command line the parser refuses (unknown option, missing argument)."""


class Args:
    """The options of a parsed command line as attributes (what argparse's Namespace
    holds); equal to another with the same attributes."""

    def __init__(self, **kw) -> None:
        self.__dict__.update(kw)

    def __eq__(self, other) -> bool:
        return vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Args({', '.join(f'{k}={v!r}' for k, v in sorted(vars(self).items()))})"


#: global options: option strings -> (attribute, takes a value, default); runc(8) "GLOBAL OPTIONS"
GLOBAL = {"--root": ("root", True, None), "--log": ("log", True, None), "--log-format": ("log_format", True, "text"),
          "--debug": ("debug", False, False), "--systemd-cgroup": ("systemd_cgroup", False, False),
          "--explain": ("explain", False, False), "-v": ("version", False, False), "--version": ("version", False, False)}

_BUNDLE = {"-b": ("bundle", True, "."), "--bundle": ("bundle", True, "."), "--console-socket": ("console_socket", True, None),
           "--pid-file": ("pid_file", True, None), "--no-pivot": ("no_pivot", False, False),
           "--no-new-keyring": ("no_new_keyring", False, False), "--preserve-fds": ("preserve_fds", True, 0),
           "--net": ("net", True, "none"), "--init": ("init", False, False)}

#: command -> (its options as in :data:`GLOBAL`, positional arguments: (attribute, default or
#: REQUIRED), …); runc-create(8), runc-run(8), runc-start(8), runc-state(8), runc-kill(8), runc-delete(8)
REQUIRED = object()
COMMANDS = {
    "create": (_BUNDLE, (("container_id", REQUIRED),)),
    "run": ({**_BUNDLE, "-d": ("detach", False, False), "--detach": ("detach", False, False), "--keep": ("keep", False, False)},
            (("container_id", REQUIRED),)),
    "start": ({}, (("container_id", REQUIRED),)),
    "state": ({}, (("container_id", REQUIRED),)),
    "kill": ({"-a": ("all", False, False), "--all": ("all", False, False)}, (("container_id", REQUIRED), ("signal", "SIGTERM"))),
    "delete": ({"-f": ("force", False, False), "--force": ("force", False, False)}, (("container_id", REQUIRED),)),
}

#: the values an option accepts, where argparse checks them (``choices``)
CHOICES = {"log_format": ("text", "json"), "net": ("none", "veth")}


def _value(attr: str, v: str):
    """The converted value of an option, or None when argparse must judge it."""
    if attr in CHOICES and v not in CHOICES[attr]:
        return None
    if attr == "preserve_fds":  # argparser._count: a whole number >= 0
        return int(v) if v.isascii() and v.isdigit() else None
    return v


def _take(argv: list[str], i: int, table: dict, out: dict) -> int | None:
    """Read the option at ``argv[i]`` with ``table`` into ``out``; the index after it, or
    None when it is not one this module reads."""
    name, eq, inline = argv[i].partition("=")
    opt = table.get(name if eq and name.startswith("--") else argv[i])
    if opt is None:
        return None
    attr, takes_value, _default = opt
    if not takes_value:
        if eq:
            return None
        out[attr] = True
        return i + 1
    if eq:
        v, nxt = inline, i + 1
    elif i + 1 < len(argv):
        v, nxt = argv[i + 1], i + 2
    else:
        return None
    if v.startswith("-"):
        return None
    value = _value(attr, v)
    if value is None:
        return None
    out[attr] = value
    return nxt


def parse_simple(argv: list[str]) -> Args | None:
    """The namespace argparse gives for ``argv`` when it is an everyday command line of
    ``create``, ``run``, ``start``, ``state``, ``kill`` or ``delete`` (see the module
    doc), else None."""
    out = {attr: default for attr, _v, default in GLOBAL.values()}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):  # global options come before the command
        i = _take(argv, i, GLOBAL, out)
        if i is None:
            return None
    if i >= len(argv) or argv[i] not in COMMANDS or out["version"]:
        return None
    cmd = argv[i]
    options, positionals = COMMANDS[cmd]
    out["command"] = cmd
    out.update({attr: default for attr, _v, default in options.values()})
    args: list[str] = []
    i += 1
    while i < len(argv):
        if argv[i].startswith("-"):  # options and the ID may come in any order, as argparse allows
            if args and len(positionals) > 1:
                return None  # argparse would give `kill ID -a SIGNAL` the default signal, then refuse SIGNAL
            i = _take(argv, i, options, out)
            if i is None:
                return None
        else:
            args.append(argv[i])
            i += 1
    if len(args) > len(positionals):
        return None
    for k, (attr, default) in enumerate(positionals):
        if k < len(args):
            out[attr] = args[k]
        elif default is REQUIRED:
            return None
        else:
            out[attr] = default
    return Args(**out)
