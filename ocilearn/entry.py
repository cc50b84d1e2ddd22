"""The ``ocilearn`` console script, kept tiny: the runtime commands (runc's command line)
go to :mod:`ocilearn.runtime.cli` before click — or anything else — is imported, so
``ocilearn run`` starts about as fast as the bare interpreter allows. Everything else
(image, distribution and bundle commands) goes to the click CLI in :mod:`ocilearn.cli`.
"""

from __future__ import annotations

import sys

#: runtime commands (kept equal to ``ocilearn.runtime.cli.COMMANDS``, tested): listed here
#: so that dispatching imports nothing
RUNTIME_COMMANDS = frozenset({"create", "start", "run", "state", "list", "kill", "delete", "ps", "exec", "pause", "resume", "update",
                              "features"})
#: global options of the runtime command line that take a value
_VALUE_OPTIONS = ("--root", "--log", "--log-format")


def command_of(argv: list[str]) -> str | None:
    """The command word of an ``ocilearn`` command line: the first argument that is not
    a global option (or an option's value), or None."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in _VALUE_OPTIONS:
            i += 2
        elif a.startswith("-"):
            i += 1
        else:
            return a
    return None


def entry() -> None:
    """Console-script target."""
    argv = sys.argv[1:]
    if command_of(argv) in RUNTIME_COMMANDS:
        from .runtime.cli import entry as runtime_entry

        runtime_entry()
    from .cli import run

    sys.exit(run())
