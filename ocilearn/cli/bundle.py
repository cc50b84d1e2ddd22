"""``ocilearn unpack``, ``ocilearn spec`` and ``ocilearn layer list``: umoci- and runc-like
commands over :mod:`ocilearn.bundle.unpack`, :mod:`ocilearn.bundle.convert` and :mod:`ocilearn.layer.apply`.
``unpack``'s body is :func:`ocilearn.bundle.cli.run_unpack`, which the `ocilearn` command's
entry (:mod:`ocilearn.entry`) also calls directly, without importing click, for a
well-formed command line (:func:`ocilearn.bundle.cli.main`)."""

from __future__ import annotations

import json
import os

import click

from ..core.errors import BundleError


@click.command("unpack")
@click.option("--image", "image", required=True, metavar="PATH[:REF]", help="OCI image layout and ref name (as umoci --image).")
@click.argument("bundle", type=click.Path())
@click.option("--rootless", is_flag=True, help="Unpack without privileges (automatic when not root): no chown/mknod, user namespace config.")
@click.option("--platform", default=None, metavar="OS/ARCH[/VARIANT]", help="Platform to choose from an image index (default: this machine's).")
@click.option("--force", is_flag=True, help="Replace an existing bundle (only once the new one is complete); a directory holding anything else is never replaced.")
@click.option("--terminal", is_flag=True, help="Set process.terminal true (runc then needs a console socket to detach).")
@click.option("--sync", is_flag=True, help="Flush the rootfs to disk (syncfs) before the bundle appears.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar (drawn only on a terminal), no warnings, no summary.")
def unpack(image: str, bundle: str, rootless: bool, platform: str | None, force: bool, terminal: bool, sync: bool, quiet: bool) -> None:
    """Unpack an image into an OCI runtime bundle: BUNDLE/config.json + BUNDLE/rootfs
    (like `umoci unpack --image PATH:REF BUNDLE`)."""
    from ..bundle.cli import run_unpack

    run_unpack(image, bundle, rootless=rootless, platform=platform, force=force, terminal=terminal, sync=sync, quiet=quiet)


@click.command("spec")
@click.option("--rootless", is_flag=True, help="Config for a rootless container (runc spec --rootless).")
@click.option("--bundle", "-b", "bundle", default=".", type=click.Path(file_okay=False), help="Directory to write config.json into.")
@click.option("--terminal/--no-terminal", default=True, help="process.terminal (runc spec's default: true).")
def spec(rootless: bool, bundle: str, terminal: bool) -> None:
    """Write a default config.json like `runc spec [--rootless]`."""
    from ..bundle.convert import default_spec
    from ..core.fsutil import atomic_write
    from ..image.layout import check_path_argument

    path = check_path_argument(bundle, "--bundle", BundleError) / "config.json"
    if path.exists():
        raise BundleError(f"{path}: File exists. Remove it first (as runc spec refuses too)")
    cfg = default_spec(rootless=rootless, terminal=terminal)
    atomic_write(path, json.dumps(cfg, indent="\t").encode() + b"\n", 0o644)


@click.group("layer")
def layer() -> None:
    """Look at layers (tar changesets) without applying them."""


@layer.command("list")
@click.argument("target")
@click.option("--platform", default=None, metavar="OS/ARCH[/VARIANT]")
@click.option("--media-type", default=None, help="Media type hint for a bare blob file.")
def list_(target: str, platform: str | None, media_type: str | None) -> None:
    """List the entries of every layer of an image (PATH[:REF]) or of one blob file,
    like `tar -tvf`, whiteouts marked; the diff ID is recomputed and shown."""
    from ..image.layout import ImageLayout, check_path_argument, parse_oci_ref
    from ..layer.listing import list_layer

    check_path_argument(target, "TARGET argument")
    if os.path.isfile(target):
        with open(target, "rb") as f:
            entries = list_layer(f, media_type, source=target)
        for e in entries:
            click.echo(e.tar_line())
        return
    path, ref = parse_oci_ref(target)
    lay = ImageLayout.open(path)
    img = lay.resolve(ref, platform)
    cfg = lay.image_config(img)
    for i, (d, did) in enumerate(zip(img.manifest.layers, cfg.diff_ids, strict=True)):
        with lay.open_blob(d) as f:
            entries = list_layer(f, d.media_type, diff_id=did, source=f"layer {i} {d.digest}")
        click.echo(f"# layer {i}: {d.digest} {d.media_type} {d.size} bytes, diff ID {did} (verified), {len(entries)} entries")
        for e in entries:
            click.echo(e.tar_line())
