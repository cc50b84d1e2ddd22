"""``ocilearn inspect``, ``ocilearn graph``, ``ocilearn layout fsck|gc|refs``.

``inspect`` prints what ``skopeo inspect oci:PATH:REF`` prints, with the same keys
(``Digest`` is the digest of the document the ref names — an image index for a
multi-platform ref —, the other fields come from the image chosen for the platform);
``--raw`` the exact bytes of that document (``skopeo inspect --raw``); ``--config`` the
image config (``skopeo inspect --config``; with ``--raw``, its exact bytes).
"""

from __future__ import annotations

import json
import sys

import click

from ..core.errors import LayoutError
from ..image.inspect import inspect_image
from ..image.layout import ImageLayout, check_path_argument, parse_oci_ref, resolve_ref


def _open(image: str) -> tuple[ImageLayout, str | None]:
    if not image.startswith("oci:"):
        raise LayoutError(f"{image!r}: expected an image layout reference oci:PATH[:REF] (e.g. oci:./busybox:latest)")
    path, ref = parse_oci_ref(image)
    check_path_argument(path, f"{image!r}: the layout PATH")
    return ImageLayout.open(path), ref


def _layout_arg(path: str) -> ImageLayout:
    """The layout named by a ``layout`` subcommand's PATH argument (``oci:`` prefix and a
    ``:REF`` suffix allowed); an empty PATH is an error, never the current directory."""
    check_path_argument(path, "PATH argument")
    where = parse_oci_ref(path)[0]
    check_path_argument(where, f"PATH argument {path!r}: the layout path")
    return ImageLayout.open(where)


@click.command("inspect")
@click.argument("image", metavar="oci:PATH[:REF]")
@click.option("--raw", is_flag=True, help="Print the exact bytes of the manifest (or index) the ref names.")
@click.option("--config", "show_config", is_flag=True, help="Print the image config (exact bytes with --raw).")
@click.option("--platform", default=None, metavar="OS/ARCH[/VARIANT]", help="Platform to choose in an image index (default: this machine's).")
def inspect(image: str, raw: bool, show_config: bool, platform: str | None) -> None:
    """Show an image of a layout (like `skopeo inspect oci:PATH:REF`)."""
    layout, ref = _open(image)
    if show_config:
        resolved = layout.resolve(ref, platform)
        data = layout.read_blob(resolved.manifest.config)
        if raw:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            click.echo(json.dumps(json.loads(data), indent=4, ensure_ascii=False))
        return
    if raw:
        entry = resolve_ref(layout, ref)
        sys.stdout.buffer.write(layout.read_blob(entry))
        sys.stdout.buffer.flush()
        return
    click.echo(json.dumps(inspect_image(layout, ref, platform), indent=4, ensure_ascii=False))


@click.command("graph")
@click.argument("image", metavar="oci:PATH[:REF]")
@click.option("-o", "--output", default=None, metavar="FILE.svg", help="Write an SVG (Graphviz dot); without it, print a text tree.")
def graph(image: str, output: str | None) -> None:
    """Draw index.json -> index(es) -> manifest(s) -> config + layers."""
    from ..views.graph import ImageGraph

    layout, ref = _open(image)
    g = ImageGraph(layout, ref)
    if output:
        g.render(output)
        click.echo(f"wrote {output}: {len(g.nodes)} nodes, {len(g.edges)} edges")
    else:
        click.echo(str(g))


@click.group("layout")
def layout() -> None:
    """Check, tidy and list an OCI image layout."""


@layout.command("fsck")
@click.argument("path")
@click.pass_context
def fsck(ctx: click.Context, path: str) -> None:
    """Verify every reachable blob (presence, size, digest); exit 1 on problems."""
    report = _layout_arg(path).fsck()
    click.echo(str(report))
    if not report.ok:
        ctx.exit(1)


@layout.command("gc")
@click.argument("path")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
def gc(path: str, dry_run: bool) -> None:
    """Remove blobs not reachable from index.json (like `umoci gc`) and the temp files of
    killed writers; waits while a copy is writing into the layout."""
    lay = _layout_arg(path)
    report = lay.gc(dry_run=dry_run, on_wait=lambda: click.echo(f"ocilearn: waiting for the writers of {lay.path} to finish", err=True))
    click.echo(str(report))


@layout.command("refs")
@click.argument("path")
def refs(path: str) -> None:
    """List ref names with their digest and media type (like `umoci ls`, with digests)."""
    for name, desc in _layout_arg(path).refs().items():
        plat = f"\t{desc.platform}" if desc.platform else ""
        click.echo(f"{name}\t{desc.digest}\t{desc.media_type}{plat}")
