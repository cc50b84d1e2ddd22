"""``ocilearn copy SRC DST`` run without click: skopeo copy's command line (skopeo-copy(1)).

The click command :func:`ocilearn.cli.copy.copy` defines the options, their help and
their usage errors; a well-formed line runs here without importing click
(:mod:`ocilearn.core.argv` says why and how). :func:`run_copy` is the command's body,
shared by both ways in.
"""

from __future__ import annotations

import sys
from typing import Any

from ..core.argv import bars_wanted, command_words, parse_line, run_command

# long option -> (keyword, kind). kind: "flag", "str", "pos-float" (> 0), "pos-int"
# (>= 1), or a tuple of choices (ocilearn.core.argv.parse_line)
OPTIONS: dict[str, tuple[str, Any]] = {
    "--src-tls-verify": ("src_tls_verify", "str"),  # true/false as a string, checked by run_copy
    "--dest-tls-verify": ("dest_tls_verify", "str"),
    "--src-creds": ("src_creds", "str"),
    "--dest-creds": ("dest_creds", "str"),
    "--src-cert-dir": ("src_cert_dir", "str"),
    "--dest-cert-dir": ("dest_cert_dir", "str"),
    "--authfile": ("authfile", "str"),
    "--override-os": ("override_os", "str"),
    "--override-arch": ("override_arch", "str"),
    "--override-variant": ("override_variant", "str"),
    "--all": ("all_platforms", "flag"),
    "--format": ("fmt", ("oci",)),
    "--preserve-digests": ("preserve_digests", "flag"),
    "--archive-form": ("archive_form", ("legacy", "docker25")),
    "--deadline": ("deadline", "pos-float"),
    "--blob-stall": ("blob_stall", "pos-float"),
    "--quiet": ("quiet", "flag"),
    "--jobs": ("jobs", "pos-int"),
}
SHORT = {"-a": "--all", "-f": "--format", "-q": "--quiet", "-j": "--jobs"}
DEFAULTS: dict[str, Any] = {
    "src_tls_verify": "true", "dest_tls_verify": "true", "src_creds": None, "dest_creds": None, "src_cert_dir": None,
    "dest_cert_dir": None, "authfile": None, "override_os": None, "override_arch": None, "override_variant": None,
    "all_platforms": False, "fmt": None, "preserve_digests": False, "archive_form": "legacy", "deadline": 120.0,
    "blob_stall": 30.0, "quiet": False, "jobs": 4,
}


class BadBool(ValueError):
    """A ``--*-tls-verify`` value that is not true or false (click reports it as a usage error)."""


def parse_bool(value: str) -> bool:
    """``true``/``1``/``yes`` or ``false``/``0``/``no`` (any case), as skopeo's
    ``--src-tls-verify=BOOL`` takes them.

    Raises:
        BadBool: anything else.
    """
    v = value.strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise BadBool(f"expected true or false, got {value!r}")


def parse(args: list[str]) -> tuple[str, str, dict[str, Any]] | None:
    """Parse the words after ``copy`` as click does (:func:`ocilearn.core.argv.parse_line`).

    Returns:
        (SRC, DST, keyword options), or ``None`` when the line is not well formed or asks
        for help: then click must parse it.
    """
    parsed = parse_line(args, OPTIONS, SHORT, DEFAULTS, 2, {"src_tls_verify": parse_bool, "dest_tls_verify": parse_bool})
    if parsed is None:
        return None
    (src, dst), opts = parsed
    return src, dst, opts


def run_copy(src: str, dst: str, *, debug: bool = False, **o: Any) -> None:
    """The body of ``ocilearn copy``: check the options, call
    :func:`ocilearn.distribution.copy.copy`, print the result (stderr, unless ``quiet``)
    and the top digest (stdout). Keywords as in :data:`DEFAULTS`.

    Raises:
        OcilearnError, OSError: a copy that failed (one line, printed by the caller);
            any other exception becomes an OcilearnError naming it (secrets scrubbed),
            unless ``debug``; BadBool: a ``--*-tls-verify`` value that is not a boolean.
    """
    from ..core.errors import OcilearnError, TransportError
    from ..image.model import Platform
    from . import copy as transfer

    fmt = o["fmt"]
    if fmt == "oci" and o["preserve_digests"]:
        raise TransportError("--format oci rewrites manifests (new digests); it cannot be combined with --preserve-digests")
    platform = None
    if o["override_os"] or o["override_arch"] or o["override_variant"]:
        from ..image.layout import host_platform

        host = host_platform()
        arch = o["override_arch"] or host.architecture
        variant = o["override_variant"] if o["override_variant"] is not None else (
            host.variant if arch == host.architecture else None)
        platform = Platform(o["override_os"] or host.os, arch, variant)

    def ca(d: str | None) -> str | None:
        if not d:
            return None
        from pathlib import Path

        p = Path(d) / "ca.crt"
        if not p.is_file():
            raise TransportError(f"{d}: no ca.crt in the certificate directory")
        return str(p)

    try:
        result = transfer.copy(
            src, dst, src_creds=o["src_creds"], dest_creds=o["dest_creds"], authfile=o["authfile"],
            src_tls_verify=parse_bool(o["src_tls_verify"]), dest_tls_verify=parse_bool(o["dest_tls_verify"]),
            src_ca_bundle=ca(o["src_cert_dir"]), dest_ca_bundle=ca(o["dest_cert_dir"]),
            platform=platform, all_platforms=o["all_platforms"], format=fmt, quiet=not bars_wanted(o["quiet"]), workers=o["jobs"],
            archive_form=o["archive_form"], client_options={"deadline": o["deadline"], "blob_stall_seconds": o["blob_stall"]},
        )
    except (OcilearnError, OSError, BadBool):
        raise  # one line, printed by the caller
    except Exception as e:
        # anything else (a library exception not mapped to ocilearn.core.errors yet, a bug):
        # one line naming it, never a traceback unless --debug; secrets scrubbed
        if debug:
            raise
        from .client import _scrub

        raise OcilearnError(_scrub(f"copy {src} -> {dst} failed unexpectedly: {type(e).__module__}.{type(e).__name__}: "
                                   f"{str(e)[:300]} (run 'ocilearn --debug copy …' for the traceback)")) from e
    if fmt == "oci":
        print("note: --format oci rewrote Docker media types as OCI ones, so manifest digests changed; "
              "config and layer blobs kept their bytes and digests", file=sys.stderr, flush=True)
    if not o["quiet"]:
        print(str(result), file=sys.stderr, flush=True)
    print(str(result.digest), flush=True)


def main(argv: list[str]) -> int | None:
    """Run ``ocilearn [--debug] copy …`` if ``argv`` (the words after the program name)
    is such a line and well formed; return its exit status (0, 1 for a failed copy, 70 for
    a bug, 130 when interrupted, as :func:`ocilearn.cli.run`). ``None``: not handled here
    (another command, a global option other than ``--debug``, or a line click must parse)."""
    line = command_words(argv, "copy")
    parsed = parse(line[1]) if line is not None else None
    if line is None or parsed is None:
        return None
    debug = line[0]
    src, dst, opts = parsed
    return run_command(lambda: run_copy(src, dst, debug=debug, **opts), debug)


__all__ = ["main", "parse", "run_copy", "parse_bool", "BadBool", "OPTIONS", "SHORT", "DEFAULTS"]
