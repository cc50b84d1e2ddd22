"""Check this machine for the course: which parts will run, and why.

Notebook ``00-start-here`` calls :func:`check` and shows the result. Every check is
real and cheap (well under a second in all):

- who you are: root, or an ordinary user (then the course takes the *rootless* path:
  a user namespace maps you to root inside the container; unpack records the owners
  it cannot apply);
- kernel features, probed by doing them in a throwaway child process: ``unshare(2)``
  of a user namespace, and (as root) of mount, UTS, IPC, PID and network namespaces;
- the cgroup version mounted on ``/sys/fs/cgroup`` (v2 unified, v1, or hybrid) and
  whether you may create a group;
- tools on ``PATH`` (``dot`` for the graphs; skopeo, umoci, runc, crun as the
  reference peers the notebooks compare against) and Python packages (graphviz,
  ipywidgets);
- loopback networking (a TCP connection to ``127.0.0.1``). Nothing beyond loopback is
  ever probed.

Nothing here changes the machine: the namespace probes run in a forked child that
exits at once; the cgroup check only looks at permissions.
"""

from __future__ import annotations

import html
import importlib.util
import os
import shutil
import socket
from dataclasses import dataclass, field

from ..core import syscalls as sc

#: namespaces the machine check probes -> their unshare(2) flag (from ocilearn.core.syscalls)
NAMESPACES = {
    "mount": sc.CLONE_NEWNS,
    "uts": sc.CLONE_NEWUTS,
    "ipc": sc.CLONE_NEWIPC,
    "pid": sc.CLONE_NEWPID,
    "net": sc.CLONE_NEWNET,
    "cgroup": sc.CLONE_NEWCGROUP,
}

#: The course, in order: (notebook file, title, what you will learn).
NOTEBOOKS: list[tuple[str, str, str]] = [
    ("00-start-here.ipynb", "Start here", "check your machine; how the course works; where to click"),
    (
        "01-image-layout.ipynb",
        "The OCI image layout",
        "pull an image into an OCI image layout (skopeo copy); oci-layout, index.json, blobs/sha256; "
        "ref names; the image graph index → manifest → config + layers",
    ),
    (
        "02-blobs.ipynb",
        "Opening the blobs",
        "descriptors and digests; read the manifest, the image config and the layers; "
        "verify a digest and see a digest mismatch; diff IDs and chain IDs",
    ),
    (
        "03-bundle.ipynb",
        "From image to bundle",
        "unpack layers into a rootfs (umoci unpack): whiteouts, opaque whiteouts, hardlinks; "
        "image config → runtime config.json, field by field",
    ),
    (
        "04-runtime.ipynb",
        "Running the container",
        "create → start → state → kill → delete (runc); namespaces, mounts, pivot_root, cgroups; "
        "step by step until the process is PID 1 with its own hostname",
    ),
]

REFERENCE_TOOLS = ("skopeo", "umoci", "runc", "crun")


@dataclass(frozen=True)
class Check:
    """One probe: ``name``, ``ok`` (bool), ``detail`` (what was found)."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Part:
    """One part of the course: ``notebook`` file, ``status`` (``"runs"``, ``"partial"``
    or ``"cannot run"``) and ``why``."""

    notebook: str
    status: str
    why: str


@dataclass
class Report:
    """The result of :func:`check`.

    Attributes:
        root: True when running as uid 0.
        mode: ``"root"`` or ``"rootless"`` — the path notebooks 03 and 04 take.
        checks: list of :class:`Check`; ``parts``: list of :class:`Part`.
        cgroup: ``"v2"``, ``"v1"``, ``"hybrid"`` or ``"none"``.
        tools: tool name → path or None.
    """

    root: bool
    mode: str
    cgroup: str
    tools: dict[str, str | None]
    checks: list[Check] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)

    def check(self, name: str) -> Check:
        """The check named ``name`` (KeyError if none)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def part(self, notebook_prefix: str) -> Part:
        """The part whose notebook file starts with ``notebook_prefix`` (e.g. ``"04"``)."""
        for p in self.parts:
            if p.notebook.startswith(notebook_prefix):
                return p
        raise KeyError(notebook_prefix)

    def __repr__(self) -> str:
        bad = [c.name for c in self.checks if not c.ok]
        return f"<course report: {self.mode} path, {len(self.checks)} checks, missing: {', '.join(bad) or 'nothing'}>"

    def __str__(self) -> str:
        w = max(len(c.name) for c in self.checks)
        lines = [f"course path: {self.mode}"]
        lines += [f"  {'ok ' if c.ok else 'NO '} {c.name:<{w}}  {c.detail}" for c in self.checks]
        lines.append("parts of the course:")
        lines += [f"  {p.notebook:<24} {p.status:<10} {p.why}" for p in self.parts]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from ocilearn.core.htmltable import table

        def mark(sign: str, ok: bool) -> str:
            return f"<span style='color:{'#1a7f37' if ok else '#cf222e'}'>{sign}</span>"

        marks = {"runs": "✔", "partial": "◐", "cannot run": "✘"}
        check_rows = [[mark("✔" if c.ok else "✘", c.ok), html.escape(c.name), html.escape(c.detail)] for c in self.checks]
        part_rows = [[mark(marks.get(p.status, "?"), p.status != "cannot run"), html.escape(p.notebook),
                      html.escape(p.status), html.escape(p.why)] for p in self.parts]
        return (
            f"<p><b>Course path: {html.escape(self.mode)}</b></p>"
            + table(["", "check", "found"], check_rows, cls="ocilearn-course-checks")
            + "<p><b>Which parts will run</b></p>"
            + table(["", "notebook", "status", "why"], part_rows, cls="ocilearn-course-parts")
        )


def _probe_unshare(flags: int) -> tuple[bool, str]:
    """Fork a child that calls ``unshare(flags)`` and exits; returns (ok, errno text).

    Source: unshare(2). The child exits immediately, so nothing is left behind.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        try:
            os.close(r)
            try:
                sc.unshare(flags)
                err = 0
            except OSError as e:
                err = e.errno or -1
            os.write(w, str(err).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode() or "-1"
    os.waitpid(pid, 0)
    err = int(out)
    if err == 0:
        return True, "allowed"
    if err < 0:
        return False, "probe failed"
    return False, f"{os.strerror(err)} (errno {err})"


def _cgroup() -> tuple[str, str]:
    """(version, detail) of the cgroup file system mounted at /sys/fs/cgroup."""
    base = "/sys/fs/cgroup"
    if os.path.exists(os.path.join(base, "cgroup.controllers")):
        with open(os.path.join(base, "cgroup.controllers")) as f:
            ctl = f.read().split()
        return "v2", f"cgroup v2 (unified), controllers: {' '.join(ctl) or 'none'}"
    if os.path.isdir(os.path.join(base, "memory")) or os.path.isdir(os.path.join(base, "pids")):
        v1 = sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)) and d != "unified")
        if os.path.exists(os.path.join(base, "unified", "cgroup.controllers")):
            return "hybrid", f"cgroup v1 + v2 hybrid; v1 hierarchies: {', '.join(v1)}"
        return "v1", f"cgroup v1; hierarchies: {', '.join(v1)}"
    return "none", "no cgroup file system at /sys/fs/cgroup"


def _loopback() -> tuple[bool, str]:
    """Connect to a listening TCP socket on 127.0.0.1 (loopback only)."""
    try:
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen(1)
            port = srv.getsockname()[1]
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                pass
        return True, f"TCP to 127.0.0.1:{port} works (notebook 01 runs a local registry on it)"
    except OSError as e:
        return False, f"loopback TCP failed: {e}"


def _which(name: str) -> str | None:
    # runc lives in /usr/sbin on Debian, which is not on an ordinary user's PATH
    return shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")


def check() -> Report:
    """Probe this machine and say which parts of the course will run.

    Returns:
        :class:`Report` (``str(report)`` for a terminal; it draws as tables in Jupyter).

    Raises nothing for a missing feature: each shows as a failed :class:`Check`.
    """
    root = os.geteuid() == 0
    checks: list[Check] = []
    checks.append(Check("user", True, "root (uid 0): the full path" if root else f"uid {os.geteuid()}: the rootless path"))

    userns_ok, userns = _probe_unshare(sc.CLONE_NEWUSER)
    limit = ""
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            limit = f", max_user_namespaces={f.read().strip()}"
    except OSError:
        pass
    checks.append(Check("user namespace", userns_ok, f"unshare(CLONE_NEWUSER): {userns}{limit}"))

    ns_ok = {}
    if root:
        for name, flag in NAMESPACES.items():
            ok, detail = _probe_unshare(flag)
            ns_ok[name] = ok
            checks.append(Check(f"{name} namespace", ok, f"unshare(CLONE_NEW{name.upper() if name != 'mount' else 'NS'}): {detail}"))
    elif userns_ok:
        # inside a new user namespace we hold all capabilities over the new namespaces
        for name, flag in NAMESPACES.items():
            ok, detail = _probe_unshare(sc.CLONE_NEWUSER | flag)
            ns_ok[name] = ok
            checks.append(Check(f"{name} namespace", ok, f"unshare(CLONE_NEWUSER|CLONE_NEW{name.upper() if name != 'mount' else 'NS'}): {detail}"))

    cg, cg_detail = _cgroup()
    writable = False
    if cg != "none":
        for sub in ("", "pids", "memory", "unified"):
            p = os.path.join("/sys/fs/cgroup", sub)
            if os.path.isdir(p) and os.access(p, os.W_OK):
                writable = True
                break
    checks.append(Check("cgroups", cg != "none", cg_detail + ("; you may create groups" if writable else "; no group can be created (limits are skipped)")))

    tools = {t: _which(t) for t in ("dot", *REFERENCE_TOOLS)}
    checks.append(Check("graphviz dot", tools["dot"] is not None, tools["dot"] or "missing: apt-get install graphviz (graphs show as text)"))
    for t in REFERENCE_TOOLS:
        checks.append(Check(t, tools[t] is not None, tools[t] or f"missing: apt-get install {t} (its comparison cells are skipped)"))

    for mod in ("graphviz", "ipywidgets"):
        spec = importlib.util.find_spec(mod)
        checks.append(Check(f"python: {mod}", spec is not None, spec.origin if spec and spec.origin else "missing: pip install -e '.[lab]'"))

    lo_ok, lo = _loopback()
    checks.append(Check("loopback network", lo_ok, lo))

    can_ns = all(ns_ok.get(n, False) for n in ("mount", "uts", "pid"))
    mode = "root" if root else "rootless"
    parts: list[Part] = [Part(NOTEBOOKS[0][0], "runs", "this notebook")]
    g = "" if tools["dot"] else " (graphs drawn as text: dot is missing)"
    parts.append(Part(NOTEBOOKS[1][0], "runs", "the embedded image works offline; docker:// images need a registry" + g))
    parts.append(Part(NOTEBOOKS[2][0], "runs", "reads blobs and checks digests: no privileges needed"))
    if root:
        parts.append(Part(NOTEBOOKS[3][0], "runs", "as root: file owners, devices and xattrs are applied"))
    else:
        parts.append(Part(NOTEBOOKS[3][0], "partial", "rootless unpack: owners you cannot chown to are recorded, not applied"))
    if can_ns and (root or userns_ok):
        why = "as root: all namespaces, pivot_root" if root else "rootless: a user namespace maps you to root inside the container"
        if not writable:
            why += "; no cgroup limits (cgroup not writable)"
        parts.append(Part(NOTEBOOKS[4][0], "runs" if writable or not root else "partial", why))
    else:
        missing = [n for n in ("mount", "uts", "pid") if not ns_ok.get(n, False)]
        why = "no user namespaces for an ordinary user" if not root and not userns_ok else f"namespaces refused: {', '.join(missing)}"
        parts.append(Part(NOTEBOOKS[4][0], "cannot run", why + " — read along; the cells show the error and the fix"))
    present = [t for t in REFERENCE_TOOLS if tools[t]]
    absent = [t for t in REFERENCE_TOOLS if not tools[t]]
    parts.append(
        Part(
            "reference tools",
            "runs" if not absent else ("partial" if present else "cannot run"),
            ("side by side with " + ", ".join(present) if present else "")
            + ("; missing: " + ", ".join(absent) if absent else ""),
        )
    )
    return Report(root=root, mode=mode, cgroup=cg, tools=tools, checks=checks, parts=parts)


@dataclass(frozen=True)
class ConceptMap:
    """The course's concept map drawn as SVG; Jupyter displays it inline (``_repr_svg_``),
    whatever directory the server was started in."""

    svg: str

    def _repr_svg_(self) -> str:
        return self.svg


def concept_map() -> ConceptMap:
    """The course on one page — registry → image index → manifest → image config + layers →
    bundle → container, with the article's tool and ocilearn's command at each arrow —
    drawn by graphviz's ``dot`` from ``ocilearn/data/concept-map.dot`` (package data, so it
    works in any install). Returns a :class:`ConceptMap`.

    Raises: GraphError when graphviz's ``dot`` program is missing (Debian package
    ``graphviz``) or fails."""
    from importlib.resources import files

    import graphviz

    from ..views.graph import dot_svg

    source = graphviz.Source(files("ocilearn").joinpath("data", "concept-map.dot").read_text())
    return ConceptMap(dot_svg(source, "the concept map"))


def outline() -> str:
    """The course outline as Markdown (used by notebook 00 and the README)."""
    lines = ["| notebook | title | you will learn |", "|---|---|---|"]
    lines += [f"| `{f}` | {t} | {g} |" for f, t, g in NOTEBOOKS]
    return "\n".join(lines)
