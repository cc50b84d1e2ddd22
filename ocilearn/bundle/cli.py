"""``ocilearn unpack --image PATH[:REF] BUNDLE`` run without click: umoci unpack's command
line (umoci-unpack(1)).

The click command :func:`ocilearn.cli.bundle.unpack` defines the options, their help and
their usage errors; a well-formed line runs here without importing click
(:mod:`ocilearn.core.argv` says why and how). :func:`run_unpack` is the command's body,
shared by both ways in.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

from ..core.argv import bars_wanted, command_words, parse_line, run_command, terminal_safe

# long option -> (keyword, kind), as ocilearn.core.argv.parse_line reads them
OPTIONS: dict[str, tuple[str, Any]] = {
    "--image": ("image", "str"),
    "--rootless": ("rootless", "flag"),
    "--platform": ("platform", "str"),
    "--force": ("force", "flag"),
    "--terminal": ("terminal", "flag"),
    "--sync": ("sync", "flag"),
    "--quiet": ("quiet", "flag"),
}
SHORT = {"-q": "--quiet"}
DEFAULTS: dict[str, Any] = {"image": None, "rootless": False, "platform": None, "force": False, "terminal": False,
                            "sync": False, "quiet": False}


def parse(args: list[str]) -> tuple[str, dict[str, Any]] | None:
    """Parse the words after ``unpack`` as click does (:func:`ocilearn.core.argv.parse_line`).

    Returns:
        (BUNDLE, keyword options), or ``None`` when the line is not well formed (``--image``
        is required), or asks for help: then click must parse it.
    """
    parsed = parse_line(args, OPTIONS, SHORT, DEFAULTS, 1)
    if parsed is None or parsed[1]["image"] is None:
        return None
    (bundle,), opts = parsed
    return bundle, opts


def run_unpack(image: str, bundle: str, *, rootless: bool = False, platform: str | None = None, force: bool = False,
               terminal: bool = False, sync: bool = False, quiet: bool = False) -> None:
    """The body of ``ocilearn unpack``: check the path arguments, call
    :func:`ocilearn.bundle.unpack.unpack`, print its warnings and a summary (stderr,
    unless ``quiet``).

    Raises:
        BundleError, LayoutError, LayerError, …: an unpack that failed (one line, printed
            by the caller; nothing is left at BUNDLE).
    """
    from ..core.errors import BundleError
    from ..image.layout import check_path_argument
    from ..layer.tar import LayerWarning
    from .unpack import unpack

    check_path_argument(bundle, "BUNDLE argument", BundleError)
    check_path_argument(image, "--image")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LayerWarning)
        res = unpack(image, bundle, platform=platform, rootless=True if rootless else None, force=force,
                     terminal=terminal, progress=bars_wanted(quiet), sync=sync)
    if quiet:
        return
    # the lines name paths from the layers: control characters are escaped (terminal_safe)
    for w in caught:
        print(terminal_safe(f"ocilearn: warning: {w.message}"), file=sys.stderr)
    print(terminal_safe(f"unpacked {res.manifest} ({res.platform}, {len(res.layers)} layers) into {res.bundle}"
                        + (" (rootless)" if res.rootless else "") + f" in {res.seconds:.2f} s"), file=sys.stderr)
    if res.skipped:
        print(terminal_safe(f"skipped {len(res.skipped)}: " + ", ".join(f"/{p} ({why})" for p, why in res.skipped)), file=sys.stderr)
    sys.stderr.flush()


def main(argv: list[str]) -> int | None:
    """Run ``ocilearn [--debug] unpack …`` if ``argv`` (the words after the program name)
    is such a line and well formed; return its exit status (0, 1 for a failed unpack, 70
    for a bug, 130 when interrupted, as :func:`ocilearn.cli.run`). ``None``: not handled
    here (another command, another global option, or a line click must parse)."""
    line = command_words(argv, "unpack")
    parsed = parse(line[1]) if line is not None else None
    if line is None or parsed is None:
        return None
    bundle, opts = parsed
    image = opts.pop("image")
    return run_command(lambda: run_unpack(image, bundle, **opts), line[0])


__all__ = ["main", "parse", "run_unpack", "OPTIONS", "SHORT", "DEFAULTS"]
