"""``python -m ocilearn.runtime [--root DIR] COMMAND …`` — runc's command line without click.

The same commands and options as ``ocilearn create|start|state|list|kill|delete|run|exec|ps``
(see :mod:`ocilearn.cli.runtime`), parsed by hand so that nothing but the runtime package
is imported: the start-up path of ``run`` stays a few milliseconds above the bare
interpreter. Errors print ``ocilearn: error: …`` and exit 1, like the main CLI.
"""

from __future__ import annotations

import json
import sys

from ..core.errors import OcilearnError
from . import container as rt

FLAGS = {"-d": "detach", "--detach": "detach", "--no-pivot": "no_pivot", "--keep": "keep", "--init": "init", "-f": "force",
         "--force": "force", "-a": "all", "--all": "all", "-t": "tty", "--tty": "tty", "-q": "quiet", "--quiet": "quiet"}
VALUES = {"-b": "bundle", "--bundle": "bundle", "--console-socket": "console_socket", "--pid-file": "pid_file",
          "--preserve-fds": "preserve_fds", "--net": "net", "--format": "format", "--cwd": "cwd", "-u": "user", "--user": "user",
          "-e": "env", "--env": "env", "--root": "root"}
USAGE = "usage: python -m ocilearn.runtime [--root DIR] {create,start,state,list,kill,delete,run,exec,ps} [OPTIONS] [ID] [ARGS…]"


def parse(argv: list[str]) -> tuple[str, dict, list[str]]:
    """Split argv into (command, options, positional arguments); options may come before
    or after the command, until the first positional after the ID for ``exec``."""
    opts: dict = {"env": []}
    pos: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if pos and pos[0] == "exec" and len(pos) >= 2:
            pos += argv[i:]
            break
        name, eq, val = a.partition("=")
        if a in FLAGS:
            opts[FLAGS[a]] = True
        elif name in VALUES:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise SystemExit(f"ocilearn: error: option {a} needs a value\n{USAGE}")
                val = argv[i]
            key = VALUES[name]
            if key == "env":
                opts["env"].append(val)
            else:
                opts[key] = val
        elif a.startswith("-") and a != "-" and not (pos and pos[0] == "kill" and len(pos) >= 2):
            raise SystemExit(f"ocilearn: error: unknown option {a}\n{USAGE}")
        else:
            pos.append(a)
        i += 1
    if not pos:
        raise SystemExit(USAGE)
    return pos[0], opts, pos[1:]


def _count(v: str | None) -> int:
    """``--preserve-fds N``: a whole number >= 0 (a negative count would close stdio)."""
    if v is None:
        return 0
    if not v.isascii() or not v.isdigit():
        raise SystemExit(f"ocilearn: error: --preserve-fds {v!r}: must be a number >= 0\n{USAGE}")
    return int(v)


def main(argv: list[str] | None = None) -> int:
    cmd, o, args = parse(sys.argv[1:] if argv is None else argv)
    if o.get("root") == "":
        raise SystemExit("ocilearn: error: --root is empty (an unset variable?); name the state directory")
    root = o.get("root") or rt.default_root()
    need_id = cmd not in ("list",)
    if need_id and not args:
        raise SystemExit(f"ocilearn: error: {cmd} needs a container ID\n{USAGE}")
    net = None if o.get("net", "none") == "none" else o["net"]
    if cmd == "create":
        rt.Container.create(root, args[0], o.get("bundle", "."), console_socket=o.get("console_socket"), pid_file=o.get("pid_file"),
                            net=net, no_pivot=bool(o.get("no_pivot")), preserve_fds=_count(o.get("preserve_fds")), init=bool(o.get("init")))
    elif cmd == "run":
        return rt.run(root, args[0], o.get("bundle", "."), detach=bool(o.get("detach")), console_socket=o.get("console_socket"),
                      pid_file=o.get("pid_file"), net=net, keep=bool(o.get("keep")), no_pivot=bool(o.get("no_pivot")),
                      preserve_fds=_count(o.get("preserve_fds")), init=bool(o.get("init")))
    elif cmd == "start":
        rt.Container.load(root, args[0]).start()
    elif cmd == "state":
        print(json.dumps(rt.Container.load(root, args[0]).state(), indent=2))
    elif cmd == "kill":
        rt.Container.load(root, args[0]).kill(rt.parse_signal(args[1] if len(args) > 1 else "TERM"), all_=bool(o.get("all")))
    elif cmd == "delete":
        try:
            rt.Container.load(root, args[0]).delete(force=bool(o.get("force")))
        except rt.ContainerNotFound:
            if not o.get("force"):
                raise
    elif cmd == "list":
        items = rt.list_containers(root)
        if o.get("quiet"):
            print("\n".join(i["id"] for i in items))
        else:
            print(json.dumps(items) if o.get("format") == "json" else "\n".join(f"{i['id']}\t{i['pid']}\t{i['status']}\t{i['bundle']}" for i in items))
    elif cmd == "exec":
        if len(args) < 2:
            raise SystemExit(f"ocilearn: error: exec needs a command\n{USAGE}")
        return rt.exec_in(root, args[0], args[1:], env=o["env"], cwd=o.get("cwd"), user=o.get("user"), tty=bool(o.get("tty")),
                          detach=bool(o.get("detach")))
    elif cmd == "ps":
        pids = rt.Container.load(root, args[0]).pids()
        print(json.dumps(pids) if o.get("format") == "json" else "\n".join(map(str, pids)))
    else:
        raise SystemExit(f"ocilearn: error: unknown command {cmd!r}\n{USAGE}")
    return 0


def entry() -> None:
    try:
        code = main()
    except (OcilearnError, OSError) as e:
        print(f"ocilearn: error: {' '.join(str(e).split())}", file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    entry()
