"""The ``ocilearn`` console script, kept tiny: runtime commands that do not need click
are handed to :mod:`ocilearn.runtime.__main__` before click (or anything else) is imported,
so ``ocilearn run`` starts about as fast as the bare interpreter allows. Everything else
goes to the click CLI in :mod:`ocilearn.cli`.
"""

from __future__ import annotations

import sys

#: Runtime commands whose hand-parsed fast path (:mod:`ocilearn.runtime.__main__`) prints
#: exactly what the click commands print (nothing, or the same JSON). ``list`` and ``ps``
#: (tables), ``exec`` (more options than the fast parser knows) and anything with --help,
#: --debug or --explain go through click.
FAST_RUNTIME = frozenset({"create", "start", "state", "kill", "delete", "run"})


def _fast_runtime(argv: list[str]) -> bool:
    """True when ``argv`` is a runtime command the fast path handles: skipping click
    saves ~35 ms of start-up, a benchmark figure (``ocilearn run`` vs ``runc run``)."""
    i = 0
    while i < len(argv) and argv[i].startswith("--root"):
        i += 1 if "=" in argv[i] else 2
    if i >= len(argv) or argv[i] not in FAST_RUNTIME:
        return False
    return not any(a in ("-h", "--help", "--debug", "--explain", "--version") for a in argv)


def entry() -> None:
    """Console-script target."""
    if _fast_runtime(sys.argv[1:]):
        from .runtime.__main__ import entry as runtime_entry

        runtime_entry()
    from .cli import run

    sys.exit(run())
