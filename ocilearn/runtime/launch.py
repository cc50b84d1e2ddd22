"""The first code of every runtime command line — ``ocilearn-runtime COMMAND``,
``ocilearn COMMAND`` and ``python -m ocilearn.runtime COMMAND`` — before the parser
(:mod:`.cli`, argparse) is imported (:func:`start`, then :func:`.cli.entry`): find the
command word, and for ``run``, ``create``
and ``exec`` start the kernel's slow first step early (:func:`.warmup.warm_migration`),
so that it runs while the rest of the runtime is imported and config.json is checked.
"""

from __future__ import annotations

import gc
import os
import sys

#: the runtime commands (the rest of ``ocilearn`` — image commands — is the click CLI)
COMMANDS = ("create", "start", "run", "state", "list", "kill", "delete", "ps", "exec", "pause", "resume", "update", "features")
#: global options that take a value (skipped to find the command)
GLOBAL_VALUE_OPTIONS = ("--root", "--log", "--log-format")


def command_of(argv: list[str]) -> str | None:
    """The command word of a command line: the first argument that is not a global option
    (or a global option's value), or None."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in GLOBAL_VALUE_OPTIONS:
            i += 2
        elif a.startswith("-"):
            i += 1
        else:
            return a
    return None


def start(argv: list[str] | None = None) -> None:
    """Call first, before importing :mod:`.cli`: as root, ``run``, ``create`` and ``exec``
    (whose children join the container's cgroup) start the no-op cgroup move of
    :func:`.warmup.warm_migration` where it helps (cgroup v2, :func:`.warmup.useful`); any
    fork waits for it. ``argv`` defaults to
    ``sys.argv[1:]``.

    Also turns the cyclic garbage collector off for the command: a runtime command lives
    a few milliseconds and makes no garbage worth collecting, and a collection in the
    forked stage 1 or init touches every object the parent imported, copying its memory
    page by page (the gc module documentation on ``gc.freeze()``: "gc.disable() early in
    the parent process"). Measured: -1.3 ms per ``ocilearn run``."""
    gc.disable()
    if os.geteuid() == 0 and command_of(sys.argv[1:] if argv is None else argv) in ("run", "create", "exec"):
        from . import warmup

        if warmup.useful():
            warmup.warm_migration()
