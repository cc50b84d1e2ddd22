"""The ``ocilearn`` command: skopeo-, umoci- and runc-like subcommands over the library.

Subcommands live in modules of this package and are imported only when called. The
runtime commands (``ocilearn create|start|run|state|list|kill|delete|ps|exec|pause|resume|
update|features``, runc's command line) are not click commands: :mod:`ocilearn.entry` hands
them to the one argparse parser in :mod:`ocilearn.runtime.cli` before click is imported.

Errors: any :class:`~ocilearn.core.errors.OcilearnError` (and OSError) becomes one line
``ocilearn: error: …`` on stderr and exit status 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from ..core.errors import OcilearnError

# command name -> "module:attribute" (module relative to ocilearn.cli)
COMMANDS: dict[str, str] = {
    # image layout and graph (issue: foundation)
    "inspect": "image:inspect",
    "graph": "image:graph",
    "layout": "image:layout",
    # distribution
    "copy": "copy:copy",
    # bundle
    "unpack": "bundle:unpack",
    "spec": "bundle:spec",
    "layer": "bundle:layer",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        mod, _, attr = target.partition(":")
        try:
            module = importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{mod}":
                return None
            raise
        return getattr(module, attr, None)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("--explain", is_flag=True, help="Print each real step taken (syscalls, HTTP, files) and the reference tool's equivalent.")
@click.version_option(package_name="ocilearn", prog_name="ocilearn", message="%(prog)s version %(version)s\nspec: 1.0.2")  # as runc --version and ocilearn-runtime --version
@click.pass_context
def main(ctx: click.Context, debug: bool, explain: bool) -> None:
    """ocilearn: pull, open, unpack and run OCI images with readable Python.

    \b
    Runtime commands (runc's command line, parsed by ocilearn.runtime.cli;
    `ocilearn COMMAND --help` for each):
      create start run state list kill delete ps exec pause resume update features
    """
    ctx.ensure_object(dict)
    ctx.obj.update(debug=debug, explain=explain)
    if explain:
        from ..core import explain as ex

        cm = ex.recording()
        steps = cm.__enter__()

        def done():
            cm.__exit__(None, None, None)
            if steps:
                click.echo(str(steps), err=True)

        ctx.call_on_close(done)


def run(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, mapping library errors to one-line messages."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        rv = main.main(args=argv, prog_name="ocilearn", standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("ocilearn: aborted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except (OcilearnError, OSError) as e:
        if debug:
            raise
        msg = str(e).splitlines() or [type(e).__name__]
        click.echo(f"ocilearn: error: {' '.join(m.strip() for m in msg)}", err=True)
        return 1
    except Exception as e:  # a bug of ours: still one line, the traceback on request
        if debug:
            raise
        click.echo(f"ocilearn: internal error: {type(e).__name__}: {' '.join(str(e).split())[:300]} "
                   "(a bug: please report it; --debug shows the traceback)", err=True)
        return 70  # EX_SOFTWARE
    return rv if isinstance(rv, int) else 0


def entry() -> None:
    """``python -m ocilearn`` and the ``ocilearn`` command (via :mod:`ocilearn.entry`)."""
    sys.exit(run())
