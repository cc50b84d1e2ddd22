"""The ``ocilearn`` command's Python entry (started by bin/ocilearn, or by the pip console
script ``ocilearn-py``), kept tiny: the runtime commands (runc's command line)
go to :mod:`ocilearn.runtime.launch` (then :mod:`ocilearn.runtime.cli`) before click — or anything else — is imported, so
``ocilearn run`` starts about as fast as the bare interpreter allows. A well-formed
``copy`` or ``unpack`` command line goes to :func:`ocilearn.distribution.cli.main` or
:func:`ocilearn.bundle.cli.main`, also without click (:mod:`ocilearn.core.argv`).
Everything else (image, distribution and bundle commands, ``--help``, usage errors) goes
to the click CLI in :mod:`ocilearn.cli`.
"""

from __future__ import annotations

import os
import sys


def entry() -> None:
    """Console-script target."""
    from .runtime.launch import COMMANDS, command_of, start  # no click on the runtime path

    if sys.stderr is None:  # started with fd 2 closed: print(file=sys.stderr) would fall back to
        sys.stderr = open(os.devnull, "w")  # stdout and mix messages into it (a digest, a state)

    if command_of(sys.argv[1:]) in COMMANDS:
        start()
        from .runtime.cli import entry as runtime_entry

        runtime_entry()
    if "copy" in sys.argv[1:3]:  # skopeo copy's command line: without click when well formed
        from .distribution.cli import main as copy_main

        rc = copy_main(sys.argv[1:])
        if rc is not None:
            sys.exit(rc)
    if "unpack" in sys.argv[1:3]:  # umoci unpack's command line: the same
        from .bundle.cli import main as unpack_main

        rc = unpack_main(sys.argv[1:])
        if rc is not None:
            sys.exit(rc)
    from .cli import run

    sys.exit(run())
