"""The article's own commands, run for real beside ocilearn's.

The course retraces *Spawning Container with runc*: ``skopeo copy`` into an OCI image
layout, ``umoci unpack --rootless`` into a bundle, two edits of ``config.json``, then
``runc create`` (which fails: a detached container cannot have a terminal), ``runc
list``, ``runc start``, ``runc exec``. These helpers run exactly those commands, when the
tool is installed, and return what the tool really printed, so that a notebook cell is
one call and shows the real output next to ocilearn's.

Nothing here implements an OCI step: ocilearn's own code does that (see
``ocilearn.distribution``, ``ocilearn.bundle``, ``ocilearn.runtime``); these are the
*peers* the course compares against. A missing tool is not an error: the result says
which Debian package brings it, and the notebook goes on.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ..core.fsutil import atomic_write

#: tool → the Debian package that installs it (``apt-get install -y PACKAGE``)
DEBIAN_PACKAGE = {"skopeo": "skopeo", "umoci": "umoci", "runc": "runc", "crun": "crun"}


def which(tool: str) -> str | None:
    """Path of ``tool``, also looking in the sbin directories (runc lives in /usr/sbin
    on Debian, which is not on an ordinary user's PATH); None when not installed."""
    return shutil.which(tool) or shutil.which(tool, path="/usr/local/sbin:/usr/sbin:/sbin")


@dataclass
class ToolRun:
    """One command of the article, as it really ran.

    ``argv``: the command (argv[0] is the tool's name, as the article writes it);
    ``returncode``: its exit status, or None when the tool is not installed (then
    ``package`` names the Debian package that brings it); ``stdout``/``stderr``: text.
    """

    argv: list[str]
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    package: str | None = None
    note: str = ""
    cwd: str | None = field(default=None, repr=False)

    @property
    def ran(self) -> bool:
        return self.returncode is not None

    @property
    def command(self) -> str:
        """The command as a shell line (quoted only where a word needs it)."""
        return "$ " + " ".join(_quote(a) for a in self.argv)

    @property
    def output(self) -> str:
        return (self.stdout + self.stderr).rstrip("\n")

    def __str__(self) -> str:
        if not self.ran:
            return f"{self.command}\n({self.argv[0]} is not installed: apt-get install -y {self.package})"
        tail = "" if self.returncode == 0 else f"\n[exit status {self.returncode}]"
        return f"{self.command}\n{self.output}{tail}" + (f"\n# {self.note}" if self.note else "")

    def _repr_html_(self) -> str:
        body = html.escape(str(self))
        return f"<pre style='white-space:pre-wrap;word-break:break-all;max-width:100%'>{body}</pre>"


def _quote(word: str) -> str:
    # double quotes read like the article's commands; shlex.quote would print '"'"'
    if word and all(c.isalnum() or c in "@%+=:,./-_" for c in word):
        return word
    if "'" not in word:
        return f"'{word}'"
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`") + '"'


def run_tool(argv: list[str], *, cwd: str | os.PathLike | None = None, timeout: float = 120,
             note: str = "") -> ToolRun:
    """Run ``argv`` (a reference tool and its arguments) and capture what it prints.

    Never raises for a failing or missing tool: the result carries the exit status,
    or the Debian package to install. ``timeout`` in seconds (subprocess.TimeoutExpired
    propagates: a hung reference tool is a real fault worth seeing).
    """
    tool = argv[0]
    path = which(tool)
    if path is None:
        return ToolRun(list(argv), package=DEBIAN_PACKAGE.get(tool, tool), note=note)
    # files, not pipes: `runc create` leaves a container process holding its stdio, so a
    # pipe would never reach end-of-file while the container lives
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.run([path, *argv[1:]], cwd=cwd, stdout=out, stderr=err,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        out.seek(0)
        err.seek(0)
        return ToolRun(list(argv), proc.returncode, out.read(), err.read(), note=note,
                       cwd=str(cwd) if cwd else None)


def skopeo_copy(source: str, layout_dir: str | os.PathLike, tag: str = "latest", *,
                tls_verify: bool = False) -> ToolRun:
    """``skopeo copy SOURCE oci:LAYOUT_DIR:TAG`` — the article's first command (skopeo(1)).

    ``SOURCE`` is a skopeo transport reference, e.g. ``docker://127.0.0.1:5010/debian:bookworm``
    (the loopback registry serves plain HTTP, hence ``--src-tls-verify=false``).
    """
    argv = ["skopeo", "copy"]
    if source.startswith("docker://") and not tls_verify:
        argv.append("--src-tls-verify=false")
    argv += [source, f"oci:{layout_dir}:{tag}"]
    return run_tool(argv, cwd=Path(layout_dir).parent)


def umoci_unpack(layout_dir: str | os.PathLike, tag: str, bundle: str | os.PathLike) -> ToolRun:
    """``umoci unpack --rootless --image LAYOUT:TAG BUNDLE`` (umoci-unpack(1)): the bundle
    the article gives to runc; ``--rootless`` so that an ordinary user can do it too."""
    return run_tool(["umoci", "unpack", "--rootless", "--image", f"{layout_dir}:{tag}", str(bundle)])


def _edit_config(bundle: str | os.PathLike, edit: Callable[[dict], object]) -> None:
    """Read ``BUNDLE/config.json``, let ``edit`` change the dict, write it back atomically
    (:func:`ocilearn.core.fsutil.atomic_write`)."""
    path = Path(bundle) / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    atomic_write(path, json.dumps(config, indent=2).encode())


def article_edits(bundle: str | os.PathLike, args: list[str]) -> dict:
    """The article's first edit of ``BUNDLE/config.json``, ``process.terminal`` → false (a
    container that runc detaches has no terminal to attach to), with the course's own
    change of ``process.args`` to a command that stays up for ``exec`` (busybox's own
    command exits at once; the article's keycloak server stays up by itself). The second
    edit, for a rootless bundle, is :func:`map_user_to_root`.
    Returns ``{"terminal": (old, new), "args": (old, new)}``.
    Raises FileNotFoundError when the bundle has no config.json."""
    before: dict = {}

    def edit(config: dict) -> None:
        proc = config.setdefault("process", {})
        before.update(terminal=proc.get("terminal", False), args=proc.get("args"))
        proc["terminal"] = False
        proc["args"] = list(args)
    _edit_config(bundle, edit)
    return {"terminal": (before["terminal"], False), "args": (before["args"], list(args))}


def map_user_to_root(bundle: str | os.PathLike) -> tuple[dict, dict]:
    """The article's second edit: ``process.user`` of ``BUNDLE/config.json`` → uid 0,
    gid 0, the only IDs a rootless bundle's user namespace maps (runtime-spec
    config-linux.md, "User namespace mappings"). Returns (old user, new user)."""
    old: dict = {}
    new = {"uid": 0, "gid": 0}

    def edit(config: dict) -> None:
        old.update(config.get("process", {}).get("user", {}))
        config["process"]["user"] = new
    _edit_config(bundle, edit)
    return old, new


@dataclass
class RuncSession:
    """runc with its own state directory (``runc --root DIR``), so that the course's
    containers never mix with the machine's and an ordinary user can run it (rootless
    runc keeps its state where the user may write). ``command`` is the runtime's command
    line before ``--root``: ``["runc"]``, or ocilearn's (``["ocilearn"]``,
    ``[sys.executable, "-m", "ocilearn"]``), which takes runc's command line."""

    root: Path
    command: list[str] = field(default_factory=lambda: ["runc"])

    @classmethod
    def temporary(cls, command: list[str] | None = None) -> RuncSession:
        return cls(Path(tempfile.mkdtemp(prefix="ocilearn-runc-")), list(command or ["runc"]))

    def __call__(self, *args: str, cwd: str | os.PathLike | None = None, note: str = "", timeout: float = 120) -> ToolRun:
        run = run_tool([*self.command, "--root", str(self.root), *args], cwd=cwd, note=note, timeout=timeout)
        if run.ran:  # shown as the learner would type it: `ocilearn`, not this venv's path to it
            run.argv = [*self._shown(), *run.argv[len(self.command):]]
        return run

    def _shown(self) -> list[str]:
        words = list(self.command)
        if words[-2:] == ["-m", "ocilearn"]:
            words = [*words[:-3], "ocilearn"]
        return ["ocilearn" if Path(w).name == "ocilearn" else w for w in words]

    def cleanup(self, *names: str) -> None:
        """Kill and delete the named containers (``runc delete --force``), then remove
        the state directory."""
        for name in names:
            self("delete", "--force", name)
        shutil.rmtree(self.root, ignore_errors=True)


def runc_article_sequence(bundle: str | os.PathLike, name: str = "article",
                          args: list[str] | None = None) -> list[ToolRun]:
    """The article's runc commands, for real, on a bundle made by ``umoci unpack``:

    1. ``runc create`` with the bundle as umoci wrote it (``terminal: true``) — fails with
       runc's own error, ``cannot allocate tty if runc will detach without setting
       console socket``;
    2. edit 1, ``terminal`` → false, with a command that stays up (:func:`article_edits`),
       then ``runc create`` again — succeeds as root; a rootless bundle then meets runc's
       ``cannot set uid to unmapped user in user namespace``, and edit 2
       (:func:`map_user_to_root`) before a third ``runc create`` — succeeds;
    3. ``runc list`` (status ``created``), ``runc start``, ``runc exec NAME ps``
       (or ``hostname``), ``runc list`` (status ``running``);
    4. ``runc delete --force`` and the state directory removed.

    Works as root and as an ordinary user (rootless runc: umoci's rootless bundle
    already maps the user to root in a user namespace). Returns every ToolRun, in order;
    a single ToolRun saying which package to install when runc is missing.
    """
    if which("runc") is None:
        return [run_tool(["runc", "create", "--bundle", str(bundle), name])]
    args = args or ["sleep", "300"]
    runc = RuncSession.temporary()
    out: list[ToolRun] = []
    try:
        out.append(runc("create", "--bundle", str(bundle), name,
                        note="as umoci wrote it: process.terminal is true"))
        edits = article_edits(bundle, args)
        out.append(runc("create", "--bundle", str(bundle), name,
                        note=f"after edit 1: terminal {edits['terminal'][0]} → false (and args "
                             f"{edits['args'][0]} → {args}, a command that stays up for exec)"))
        if out[-1].returncode != 0 and "unmapped user" in out[-1].output:
            # umoci's rootless bundle maps one ID (yours) to 0 in the user namespace
            # (config.json linux.uidMappings); the image config's User is another ID,
            # which has no mapping. Run as the mapped root instead.
            user = map_user_to_root(bundle)
            out.append(runc("create", "--bundle", str(bundle), name,
                            note=f"after edit 2: process.user {user[0]} → uid 0, gid 0 (the one mapped ID)"))
        out.append(runc("list"))
        out.append(runc("start", name))
        out.append(runc("exec", name, "hostname"))
        out.append(runc("list"))
    finally:
        runc.cleanup(name)
    return out


#: the hostname the article's keycloak container had nothing to resolve with
SERVER_HOSTNAME = "keycloak-1"
SERVER_PORT = 8080


def server_args(port: int = SERVER_PORT) -> list[str]:
    """``process.args`` of a small web server made of what the busybox image has, which
    starts the way the article's keycloak does: it first resolves its own hostname
    (busybox ``hostname -i``: the C library's ``getaddrinfo``, which reads
    ``/etc/nsswitch.conf``, ``/etc/hosts``, then asks the DNS servers of
    ``/etc/resolv.conf`` — what the JVM's ``InetAddress.getLocalHost()`` does before it
    throws ``UnknownHostException``), and exits 1 with the resolver's own error when that
    fails; otherwise it writes a page and execs busybox ``httpd`` in the foreground
    on ``port`` (TCP), so the server is the container's process."""
    return ["/bin/sh", "-c",
            "hostname -i >/dev/null || exit 1; "
            "mkdir -p /tmp/www && echo \"hello from $(hostname)\" > /tmp/www/index.html && "
            f"exec httpd -f -p {int(port)} -h /tmp/www"]




def hosts_mount(directory: str | os.PathLike, hostname: str = SERVER_HOSTNAME) -> dict:
    """Write ``DIRECTORY/hosts`` (``localhost``, and ``hostname`` on 127.0.1.1 as Debian
    names its own host) and return the config.json ``mounts`` entry that binds it
    read-only on the container's ``/etc/hosts`` (runtime-spec config.md "Mounts"). This
    is the whole fix of the lookup: hosts(5) is read before any DNS."""
    path = Path(directory) / "hosts"
    path.write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n")
    return {"destination": "/etc/hosts", "type": "bind", "source": str(path), "options": ["bind", "ro"]}


def _until_ok(attempt: Callable[[], ToolRun], timeout: float) -> ToolRun:
    """Run ``attempt`` every 0.1 s until it exits 0 or ``timeout`` seconds pass (a server
    needs a moment to bind its port); returns the last run."""
    deadline = time.monotonic() + timeout
    while True:
        run = attempt()
        if run.returncode == 0 or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def fetch_page(session: RuncSession, name: str, address: str = "127.0.0.1", port: int = SERVER_PORT,
               timeout: float = 5.0) -> ToolRun:
    """``RUNTIME exec NAME wget -qO- http://ADDRESS:PORT/`` until the server answers or
    ``timeout`` seconds pass (the server needs a moment to bind). Returns the last run."""
    return _until_ok(lambda: session("exec", name, "wget", "-qO-", f"http://{address}:{int(port)}/"), timeout)


@contextlib.contextmanager
def _server_config(bundle: Path) -> Iterator[None]:
    """config.json set up for the article's server for the time of the block, then put
    back byte for byte: ``hostname`` :data:`SERVER_HOSTNAME`, :func:`server_args`, no
    terminal, and a network namespace of its own (a rootless bundle has none: it would
    share the caller's, and its port 8080 with every other learner on the machine; an
    ordinary user may make one inside the bundle's user namespace — network_namespaces(7),
    user_namespaces(7))."""
    path = bundle / "config.json"
    original = path.read_bytes()

    def as_server(config: dict) -> None:
        config["hostname"] = SERVER_HOSTNAME
        config["process"]["args"] = server_args()
        config["process"]["terminal"] = False
        spaces = config.setdefault("linux", {}).setdefault("namespaces", [])
        if not any(n.get("type") == "network" for n in spaces):
            spaces.append({"type": "network"})
    try:
        _edit_config(bundle, as_server)
        yield
    finally:
        atomic_write(path, original)


def article_server(bundle: str | os.PathLike, name: str = "kc", *, command: list[str] | None = None,
                   work: str | os.PathLike | None = None) -> dict[str, list[ToolRun]]:
    """The article's failure and its fix, for real, under one runtime (``command``:
    ``["runc"]`` by default, or ocilearn's command line) on ``bundle``:

    - ``"failure"``: ``run`` with ``hostname`` :data:`SERVER_HOSTNAME` and
      :func:`server_args`: the lookup fails, the server exits 1 with
      ``hostname: keycloak-1: Host name lookup failure``;
    - ``"fixed"``: the same with :func:`hosts_mount` added to ``mounts``: ``create``,
      ``start``, then the page fetched from inside the container (:func:`fetch_page`,
      over the container's loopback), ``kill``, ``delete``.

    The container gets a network namespace of its own when the bundle has none (rootless
    bundles), so the server's port is never one of the caller's.

    config.json is restored afterwards; the runtime's state directory and the hosts file
    (in ``work``, default a temp directory) are removed. With runc missing, the single
    ToolRun of ``"failure"`` names the package to install.
    """
    bundle = Path(bundle)
    command = list(command or ["runc"])
    if which(command[0]) is None:
        return {"failure": [run_tool([*command, "run", "--bundle", str(bundle), name])], "fixed": []}
    scratch = Path(work) if work else Path(tempfile.mkdtemp(prefix="ocilearn-server-"))
    session = RuncSession.temporary(command)
    out: dict[str, list[ToolRun]] = {"failure": [], "fixed": []}
    try:
        with _server_config(bundle):
            out["failure"].append(session("run", "--bundle", str(bundle), name,
                                          note="the server looks up its own hostname, which nothing names"))
            mount = hosts_mount(scratch)
            _edit_config(bundle, lambda config: config.setdefault("mounts", []).append(mount))
            out["fixed"].append(session("create", "--bundle", str(bundle), name,
                                        note="with an /etc/hosts line naming the hostname"))
            out["fixed"].append(session("start", name))
            out["fixed"].append(fetch_page(session, name))
            out["fixed"].append(session("kill", name, "KILL"))
    finally:
        session.cleanup(name)
        if work is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return out


def _fetch_from(netns: str, url: str, timeout: float = 5.0) -> ToolRun:
    """GET ``url`` from inside the network namespace ``netns`` (``ip netns exec``), with
    this Python's urllib, retried until the server answers or ``timeout`` seconds pass."""
    code = ("import sys, urllib.request; "
            "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())")
    return _until_ok(lambda: run_tool(["ip", "netns", "exec", netns, sys.executable, "-c", code, url],
                                      note=f"GET {url} from the namespace the veth's host side is in"), timeout)


def reachable_server(bundle: str | os.PathLike, command: list[str], name: str = "kc-net") -> list[ToolRun]:
    """The third part of the fix, as root: the server started by ocilearn with
    ``--net veth`` (a veth pair: ``eth0`` in the container's network namespace, the other
    end where the runtime runs; ``ocilearn.runtime.network``), which also writes the
    container's /etc/hosts line, then its page fetched from *outside* the container over
    the veth. All of it inside a scratch network namespace made for this call (``ip
    netns add``), so the machine's own network is never touched; the container, the
    namespace and the config.json edits are undone afterwards.

    Returns the ToolRuns in order: ``create --net veth``, ``start``, ``exec NAME hostname
    -i`` (the container's address), the fetch from outside, ``kill``. One ToolRun saying
    what is missing when ``ip`` is not installed.
    """
    bundle = Path(bundle)
    if which("ip") is None or which("nsenter") is None:
        return [run_tool(["ip", "netns", "add", "ocilearn-scratch"])]
    netns = f"ocilearn-{secrets.token_hex(3)}"
    added = run_tool(["ip", "netns", "add", netns])
    if added.returncode != 0:
        return [added]
    session = RuncSession.temporary(["nsenter", f"--net=/var/run/netns/{netns}", *command])
    out: list[ToolRun] = []
    try:
        with _server_config(bundle):
            out.append(session("create", "--net", "veth", "--bundle", str(bundle), name,
                               note="a veth pair into the container's network namespace, and /etc/hosts"))
            out.append(session("start", name))
            out.append(session("exec", name, "hostname", "-i"))
            address = out[-1].stdout.strip()
            if out[-1].returncode == 0 and address:
                out.append(_fetch_from(netns, f"http://{address}:{SERVER_PORT}/"))
            out.append(session("kill", name, "KILL"))
    finally:
        session.cleanup(name)
        run_tool(["ip", "netns", "del", netns])
    return out
