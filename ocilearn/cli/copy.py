"""``ocilearn copy SRC DST`` — skopeo copy's syntax and flags, ocilearn's code.

Transports: ``docker://REF``, ``oci:PATH[:REF]``, ``oci-archive:PATH[:REF]``,
``docker-archive:PATH[:REF]``; PATH and REF split at the first ``:`` as in skopeo.
Bytes and digests are preserved by default (``skopeo copy --preserve-digests``);
``--format oci`` converts Docker schema2 documents to OCI media types.

This click command holds the options, their help and usage errors; the body is
:func:`ocilearn.distribution.cli.run_copy`, which the `ocilearn` command's entry (:mod:`ocilearn.entry`) also calls directly,
without importing click, for a well-formed command line (:func:`ocilearn.distribution.cli.main`).
"""

from __future__ import annotations

import click


@click.command("copy")
@click.argument("src")
@click.argument("dst")
@click.option("--src-tls-verify", default="true", metavar="BOOL", help="Verify the source registry's TLS certificate (false also allows plain HTTP).")
@click.option("--dest-tls-verify", default="true", metavar="BOOL", help="Verify the destination registry's TLS certificate (false also allows plain HTTP).")
@click.option("--src-creds", default=None, metavar="USER:PASS", help="Credentials for the source registry.")
@click.option("--dest-creds", default=None, metavar="USER:PASS", help="Credentials for the destination registry.")
@click.option("--src-cert-dir", default=None, metavar="DIR", help="Directory with ca.crt (PEM) to trust for the source.")
@click.option("--dest-cert-dir", default=None, metavar="DIR", help="Directory with ca.crt (PEM) to trust for the destination.")
@click.option("--authfile", default=None, metavar="PATH", help="auth.json / Docker config.json with credentials.")
@click.option("--override-os", default=None, metavar="OS", help="OS to choose from an image index (default: this machine's).")
@click.option("--override-arch", default=None, metavar="ARCH", help="Architecture to choose from an image index.")
@click.option("--override-variant", default=None, metavar="VARIANT", help="Variant to choose from an image index (e.g. v7, v8).")
@click.option("--all", "-a", "all_platforms", is_flag=True, help="Copy every platform of an image index, and the index.")
@click.option("--format", "-f", "fmt", type=click.Choice(["oci"]), default=None,
              help="Convert Docker schema2 manifests to OCI media types (changes manifest digests).")
@click.option("--preserve-digests", is_flag=True, help="Keep bytes and digests (the default; refused with --format oci).")
@click.option("--archive-form", type=click.Choice(["legacy", "docker25"]), default="legacy", show_default=True,
              help="docker-archive destination: skopeo's legacy layout, or Docker 25's (also an OCI layout).")
@click.option("--deadline", default=120.0, show_default=True, type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Longest time one registry document exchange (ping, token, manifest, tag list) may take, body included.")
@click.option("--blob-stall", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="A blob download receiving under 16 KiB in this many seconds of reading is resumed, then abandoned.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars (drawn only on a terminal), no summary: only the digest.")
@click.option("--jobs", "-j", default=4, show_default=True, type=click.IntRange(min=1), metavar="N", help="Blobs transferred in parallel (at least 1).")
@click.pass_context
def copy(ctx: click.Context, src: str, dst: str, src_tls_verify: str, dest_tls_verify: str, src_creds: str | None,
         dest_creds: str | None, src_cert_dir: str | None, dest_cert_dir: str | None, authfile: str | None,
         override_os: str | None, override_arch: str | None, override_variant: str | None, all_platforms: bool,
         fmt: str | None, preserve_digests: bool, archive_form: str, deadline: float, blob_stall: float, quiet: bool,
         jobs: int) -> None:
    """Copy an image from SRC to DST (like ``skopeo copy``).

    \b
    Examples:
      ocilearn copy docker://127.0.0.1:5000/busybox:latest oci:/tmp/busybox:latest
      ocilearn copy --all docker://127.0.0.1:5000/multiarch:latest oci:/tmp/m:latest
      ocilearn copy --override-arch arm64 docker://… oci:/tmp/arm:latest
      ocilearn copy oci:/tmp/busybox:latest docker://127.0.0.1:5000/mine:1
      ocilearn copy docker-archive:busybox.tar oci:/tmp/bb:latest
      ocilearn copy oci:/tmp/bb:latest oci-archive:/tmp/bb.tar:localhost/bb:latest
    """
    from ..distribution.cli import BadBool, run_copy

    try:
        run_copy(src, dst, debug=bool((ctx.obj or {}).get("debug")), src_tls_verify=src_tls_verify,
                 dest_tls_verify=dest_tls_verify, src_creds=src_creds, dest_creds=dest_creds, src_cert_dir=src_cert_dir,
                 dest_cert_dir=dest_cert_dir, authfile=authfile, override_os=override_os, override_arch=override_arch,
                 override_variant=override_variant, all_platforms=all_platforms, fmt=fmt, preserve_digests=preserve_digests,
                 archive_form=archive_form, deadline=deadline, blob_stall=blob_stall, quiet=quiet, jobs=jobs)
    except BadBool as e:
        raise click.BadParameter(str(e)) from None
