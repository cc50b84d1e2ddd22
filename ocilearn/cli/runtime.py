"""runc's command line on ocilearn's runtime: create, start, state, list, kill, delete,
run, exec, ps — so a script written for runc works with ``ocilearn`` in its place.

Global ``--root DIR`` (on the main group) is the state directory: default
``/run/ocilearn`` as root, ``$XDG_RUNTIME_DIR/ocilearn`` otherwise. Only the runtime
package is imported here (no requests, graphviz, ipywidgets).
"""

from __future__ import annotations

import json
import os

import click

from ..runtime import container as rt


def _root(ctx: click.Context) -> str:
    obj = ctx.find_root().obj or {}
    if obj.get("root") == "":
        raise click.UsageError("--root is empty (an unset variable?); name the state directory")
    return obj.get("root") or rt.default_root()


@click.command()
@click.option("-b", "--bundle", default=".", show_default=True, help="Bundle directory (config.json + rootfs).")
@click.option("--console-socket", default=None, metavar="PATH", help="Unix socket that receives the pty master (terminal: true).")
@click.option("--pid-file", default=None, metavar="FILE", help="Write the init's PID here.")
@click.option("--no-pivot", is_flag=True, help="Use MS_MOVE + chroot instead of pivot_root (initramfs hosts).")
@click.option("--preserve-fds", default=0, type=click.IntRange(min=0), help="Pass N fds after stdio into the container.")
@click.option("--net", type=click.Choice(["none", "veth"]), default="none", help="ocilearn extra: veth pair + /etc/hosts.")
@click.option("--init", "init", is_flag=True, help="ocilearn extra: PID 1 is a reaper that forwards signals (like docker --init).")
@click.argument("container_id")
@click.pass_context
def create(ctx, bundle, console_socket, pid_file, no_pivot, preserve_fds, net, init, container_id):
    """Create a container (it waits before running its program; `start` releases it)."""
    rt.Container.create(_root(ctx), container_id, bundle, console_socket=console_socket, pid_file=pid_file,
                        net=None if net == "none" else net, no_pivot=no_pivot, preserve_fds=preserve_fds, init=init)


@click.command()
@click.argument("container_id")
@click.pass_context
def start(ctx, container_id):
    """Run the program of a created container."""
    rt.Container.load(_root(ctx), container_id).start()


@click.command()
@click.argument("container_id")
@click.pass_context
def state(ctx, container_id):
    """Print the runtime-spec state of a container as JSON."""
    click.echo(json.dumps(rt.Container.load(_root(ctx), container_id).state(), indent=2))


@click.command("list")
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("-q", "--quiet", is_flag=True, help="Only the IDs.")
@click.pass_context
def list_(ctx, fmt, quiet):
    """List containers (ID, PID, STATUS, BUNDLE, CREATED, OWNER)."""
    items = rt.list_containers(_root(ctx))
    if quiet:
        for i in items:
            click.echo(i["id"])
    elif fmt == "json":
        click.echo(json.dumps(items))
    else:
        import pwd

        def owner(uid: int) -> str:
            try:
                return pwd.getpwuid(uid).pw_name
            except KeyError:
                return f"#{uid}"

        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(i["id"], str(i["pid"]), i["status"], i["bundle"], i["created"], owner(i["owner"])) for i in items]
        widths = [max(len(r[k]) for r in rows) for k in range(6)]
        for r in rows:
            click.echo("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


@click.command()
@click.option("-a", "--all", "all_", is_flag=True, help="Signal every process of the container.")
@click.argument("container_id")
@click.argument("signal", default="TERM")
@click.pass_context
def kill(ctx, all_, container_id, signal):
    """Send a signal (name or number, default TERM) to the container's init."""
    rt.Container.load(_root(ctx), container_id).kill(rt.parse_signal(signal), all_=all_)


@click.command()
@click.option("-f", "--force", is_flag=True, help="Kill the container if it is still running.")
@click.argument("container_id")
@click.pass_context
def delete(ctx, force, container_id):
    """Delete a container: its processes (--force), cgroup and state."""
    try:
        c = rt.Container.load(_root(ctx), container_id)
    except rt.ContainerNotFound:
        if force:
            return
        raise
    c.delete(force=force)


@click.command()
@click.option("-b", "--bundle", default=".", show_default=True)
@click.option("-d", "--detach", is_flag=True, help="Do not wait: create + start, then return.")
@click.option("--console-socket", default=None, metavar="PATH")
@click.option("--pid-file", default=None, metavar="FILE")
@click.option("--no-pivot", is_flag=True)
@click.option("--keep", is_flag=True, help="Do not delete the container when it exits.")
@click.option("--preserve-fds", default=0, type=click.IntRange(min=0))
@click.option("--net", type=click.Choice(["none", "veth"]), default="none", help="ocilearn extra: veth pair + /etc/hosts.")
@click.option("--init", "init", is_flag=True, help="ocilearn extra: PID 1 is a reaper that forwards signals (like docker --init).")
@click.argument("container_id")
@click.pass_context
def run(ctx, bundle, detach, console_socket, pid_file, no_pivot, keep, preserve_fds, net, init, container_id):
    """Create and start a container; in the foreground, wait and exit with its status."""
    code = rt.run(_root(ctx), container_id, bundle, detach=detach, console_socket=console_socket, pid_file=pid_file,
                  net=None if net == "none" else net, keep=keep, no_pivot=no_pivot, preserve_fds=preserve_fds, init=init)
    ctx.exit(code)


@click.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-terminal.")
@click.option("-e", "--env", multiple=True, metavar="K=V")
@click.option("--cwd", default=None)
@click.option("-u", "--user", default=None, metavar="UID[:GID]")
@click.option("-d", "--detach", is_flag=True)
@click.option("-p", "--process", "process_json", default=None, metavar="FILE", help="process.json (args, env, cwd).")
@click.argument("container_id")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def exec_(ctx, tty, env, cwd, user, detach, process_json, container_id, command):
    """Run another program in a created or running container."""
    args = list(command)
    if process_json:
        with open(process_json) as f:
            p = json.load(f)
        args = args or p.get("args", [])
        env = tuple(p.get("env", [])) + env
        cwd = cwd or p.get("cwd")
    if not args:
        raise click.UsageError("exec needs a command")
    ctx.exit(rt.exec_in(_root(ctx), container_id, args, env=list(env), cwd=cwd, user=user, tty=tty, detach=detach))


@click.command()
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.argument("container_id")
@click.pass_context
def ps(ctx, fmt, container_id):
    """List the processes of a container (host PIDs)."""
    pids = rt.Container.load(_root(ctx), container_id).pids()
    if fmt == "json":
        click.echo(json.dumps(pids))
        return
    click.echo("PID     CMD")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        click.echo(f"{pid:<7} {cmd}")


__all__ = ["create", "start", "state", "list_", "kill", "delete", "run", "exec_", "ps", "os"]
