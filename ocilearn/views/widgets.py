"""Interactive ipywidgets for the ocilearn course notebooks.

Four widgets, each usable headless (tests call their methods and read the
``HTML`` widget contents) and in JupyterLab (display the object in a cell):

- :class:`ImageExplorer` — pick a node of the image graph (index.json, index,
  manifest, config, layer) and see its descriptor and its JSON document
  (image-spec descriptor.md, manifest.md, config.md, image-index.md).
- :class:`ProvenanceTable` — the runtime-spec ``config.json`` fields with the
  image-config field each one came from (image-spec conversion.md).
- :class:`RuntimeStepper` — a Next button performs the next step of any list of
  ``(name, callable)`` and shows a view after it; :func:`setup_stepper` makes
  one whose steps are the real syscalls that turn a fresh process into a
  container (unshare, private mounts, sethostname, bind, proc, pivot_root,
  exec), showing that process's hostname, PID, /proc, mounts and / each time.
- :class:`LayerBrowser` — the file tree of each layer with whiteouts, opaque
  whiteouts and changes marked (image-spec layer.md "Whiteouts").

``ipywidgets`` is imported lazily inside functions, so ``import
ocilearn.views.widgets`` costs nothing for CLI users. Every widget object exposes
``.widget`` (the top ipywidgets container) and displays itself in Jupyter.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from ..core.htmltable import table
from ..image import mediatypes as mt

__all__ = [
    "SETUP_STEPS",
    "ImageExplorer",
    "LayerBrowser",
    "LayerEntry",
    "ProvenanceTable",
    "RuntimeStepper",
    "layer_entries",
    "setup_stepper",
]


def _w():
    """The ipywidgets module (imported on first use)."""
    import ipywidgets

    return ipywidgets


def _pre(text: str) -> str:
    return f"<pre style='margin:0;white-space:pre-wrap;overflow-wrap:anywhere'>{html.escape(text)}</pre>"


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> str:
    return table([html.escape(h) for h in headers], ([html.escape(str(c)) for c in row] for row in rows), cls=cls)


class _Displayable:
    """Mixin: display ``self.widget`` when the object is the value of a cell."""

    widget: Any

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.widget._repr_mimebundle_(include=include, exclude=exclude)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


# ------------------------------------------------------------------ image explorer


@dataclass(frozen=True)
class _Node:
    key: str  # label shown in the dropdown
    kind: str  # index.json, index, manifest, config, layer, blob
    descriptor: Any  # ocilearn.image.model.Descriptor or None for index.json
    parent: str


class ImageExplorer(_Displayable):
    """Pick a node of an image layout's graph and see its descriptor and JSON.

    The nodes are ``index.json`` and every descriptor reachable from it, in the
    order of :meth:`ocilearn.image.layout.ImageLayout.walk` (index → manifests → config
    and layers). When :mod:`ocilearn.views.graph` can draw the layout, its SVG is shown
    above the picker.

    Args:
        layout: an :class:`~ocilearn.image.layout.ImageLayout` (or a path to one).
        show_graph: draw the graph above the picker (needs ``graphviz``).

    Attributes:
        nodes: list of nodes; ``node.key`` is the dropdown label
            (e.g. ``"manifest sha256:1a2b3c4d5e6f"``).
        picker: the ``Dropdown``; ``descriptor`` and ``document``: ``HTML``
            widgets holding the selected node's descriptor and JSON.

    Headless use: ``explorer.select("config")`` picks the first node whose
    label starts with that text and returns the document text shown.
    """

    def __init__(self, layout, show_graph: bool = True) -> None:
        from ..image.layout import ImageLayout

        if not isinstance(layout, ImageLayout):
            layout = ImageLayout.open(layout)
        self.layout = layout
        self.nodes: list[_Node] = [_Node("index.json", "index.json", None, "")]
        for desc, parent in layout.walk():
            label = f"{desc.kind} {desc.digest.short}"
            if desc.ref_name:
                label += f" ({desc.ref_name})"
            elif desc.platform is not None:
                label += f" ({desc.platform})"
            self.nodes.append(_Node(label, desc.kind, desc, parent))
        w = _w()
        self.picker = w.Dropdown(
            options=[n.key for n in self.nodes], value="index.json", description="node", layout=w.Layout(width="520px")
        )
        self.descriptor = w.HTML()
        self.document = w.HTML()
        self.graph = w.HTML(self._graph_svg() if show_graph else "")
        self.picker.observe(lambda change: self._show(change["new"]), names="value")
        self.widget = w.VBox(
            [
                self.graph,
                self.picker,
                w.HTML("<b>descriptor</b> (how the parent points at this blob)"),
                self.descriptor,
                w.HTML("<b>content</b>"),
                self.document,
            ]
        )
        self._show("index.json")

    def _graph_svg(self) -> str:
        try:
            from . import graph
        except ImportError:
            return ""
        try:
            return graph.draw(self.layout)._repr_svg_() or ""
        except Exception:  # noqa: BLE001 - the picker works without the picture (e.g. no dot)
            return ""

    def node(self, key: str) -> _Node:
        """The node whose label is ``key`` or starts with it (``"config"``, ``"layer"``).

        Raises:
            KeyError: no node matches.
        """
        for n in self.nodes:
            if n.key == key:
                return n
        for n in self.nodes:
            if n.key.startswith(key):
                return n
        raise KeyError(f"no node {key!r}; nodes: {[n.key for n in self.nodes]}")

    def select(self, key: str) -> str:
        """Select a node (as a click in the dropdown would); returns the shown document HTML."""
        n = self.node(key)
        if self.picker.value == n.key:
            self._show(n.key)
        else:
            self.picker.value = n.key  # fires the observer, like a click
        return self.document.value

    def _document_text(self, n: _Node) -> str:
        if n.descriptor is None:
            return (self.layout.path / "index.json").read_text()
        d = n.descriptor
        if d.kind in ("index", "manifest", "config") or (d.size <= 64 * 1024 and "json" in d.media_type):
            try:
                raw = self.layout.read_blob(d)
            except Exception as e:  # noqa: BLE001 - shown to the learner
                return f"cannot read blob: {e}"
            try:
                return json.dumps(json.loads(raw), indent=2)
            except ValueError:
                return raw[:4096].decode(errors="replace")
        if d.kind == "layer":
            try:
                entries = layer_entries(self.layout, d)
            except Exception as e:  # noqa: BLE001
                return f"cannot list layer: {e}"
            lines = [f"{mt.layer_compression(d.media_type)}-compressed tar, {d.size} bytes, {len(entries)} entries:"]
            lines += [e.line() for e in entries[:40]]
            if len(entries) > 40:
                lines.append(f"… {len(entries) - 40} more (see LayerBrowser)")
            return "\n".join(lines)
        return f"{d.size} bytes of {d.media_type}"

    def _show(self, key: str) -> None:
        n = self.node(key)
        if n.descriptor is None:
            self.descriptor.value = _pre("the top of the layout: an image index (no descriptor points at it)")
        else:
            desc = json.dumps(n.descriptor.to_dict(), indent=2)
            self.descriptor.value = _pre(f"parent: {n.parent}\n{desc}")
        self.document.value = _pre(self._document_text(n))


# ------------------------------------------------------------------ provenance table


class ProvenanceTable(_Displayable):
    """The runtime ``config.json`` fields and where each came from.

    Args:
        rows: ``(field, value, source[, why])`` tuples — e.g.
            ``("process.args", ["/bin/sh"], "image config")`` — or objects with
            ``field``/``value``/``source`` (and ``why``) attributes such as
            :class:`ocilearn.bundle.convert.Row`, or dicts with those keys.
            ``source`` names the image-config field or says the default
            (image-spec conversion.md).

    Attributes:
        rows: list of ``(field, value, source, why)`` (values as JSON text).
        sources: the ``Dropdown`` filtering by source (``"all"`` first);
        table: the ``HTML`` widget with the table.

    Headless: ``table.filter("config.Env")`` returns the rows shown.
    """

    def __init__(self, rows: Iterable[Any]) -> None:
        self.rows: list[tuple[str, str, str, str]] = [self._row(r) for r in rows]
        w = _w()
        srcs = sorted({r[2] for r in self.rows})
        self.sources = w.Dropdown(options=["all", *srcs], value="all", description="source")
        self.table = w.HTML()
        self.sources.observe(lambda change: self._render(change["new"]), names="value")
        self.widget = w.VBox([self.sources, self.table])
        self._render("all")

    @staticmethod
    def _row(r: Any) -> tuple[str, str, str, str]:
        if isinstance(r, dict):
            f, v, s, why = r["field"], r["value"], r["source"], r.get("why", "")
        elif hasattr(r, "field") and hasattr(r, "source"):
            f, v, s, why = r.field, r.value, r.source, getattr(r, "why", "")
        else:
            f, v, s, *rest = r
            why = rest[0] if rest else ""
        if not isinstance(v, str):
            v = json.dumps(v) if isinstance(v, (list, dict, tuple, int, bool)) or v is None else str(v)
        return str(f), v, str(s), str(why or "")

    def filter(self, source: str = "all") -> list[tuple[str, str, str, str]]:
        """Show only rows from ``source`` (``"all"`` for every row); returns those rows."""
        if self.sources.value == source:
            self._render(source)
        else:
            self.sources.value = source
        return self.shown

    def _render(self, source: str) -> None:
        self.shown = [r for r in self.rows if source == "all" or r[2] == source]
        if any(r[3] for r in self.rows):
            self.table.value = _table(("config.json field", "value", "came from", "why"), self.shown, "ocilearn-provenance")
        else:
            self.table.value = _table(("config.json field", "value", "came from"), [r[:3] for r in self.shown], "ocilearn-provenance")


# ------------------------------------------------------------------ runtime stepper


Step = tuple[str, Callable[[], Any]]


class RuntimeStepper(_Displayable):
    """Perform container setup one step at a time; show the container's view after each.

    Args:
        steps: ``[(name, callable), …]`` — each callable performs one real setup
            step (unshare, mount /proc, sethostname, pivot_root …) and may return
            a value to show (str, or a dict of titled views).
        view: optional callable returning the container's view now, as a dict
            ``{title: text}`` — e.g. ``{"hostname": …, "/proc": …, "mounts": …}``;
            called after every step.
        title: heading shown above the button.

    Attributes:
        position: number of steps done (int); ``done``: ``[(name, result), …]``;
        error: the exception of a failed step, or None (stepping stops there);
        button: the Next ``Button``; ``status``/``view_html``: ``HTML`` widgets.

    Headless: ``stepper.next()`` performs the next step (exactly what a click on
    Next does) and returns its name.
    """

    def __init__(self, steps: Sequence[Step], view: Callable[[], dict[str, str]] | None = None, title: str = "container setup") -> None:
        self.steps = list(steps)
        self.view = view
        self.title = title
        self.position = 0
        self.done: list[tuple[str, Any]] = []
        self.error: BaseException | None = None
        w = _w()
        self.button = w.Button(description="Next", button_style="primary", icon="step-forward")
        self.button.on_click(lambda _b: self.next())
        self.status = w.HTML()
        self.status_text = ""  # the status line as plain text ("step 1/7 — …"), for print()
        self.view_html = w.HTML()
        self.widget = w.VBox([w.HTML(f"<b>{html.escape(title)}</b>"), w.HBox([self.button, self.status]), self.view_html])
        self._render(None)

    @property
    def finished(self) -> bool:
        return self.position >= len(self.steps) or self.error is not None

    def next(self) -> str | None:
        """Perform the next step; returns its name (None when all are done).

        A step that raises stops the stepper: the error is shown and kept in
        :attr:`error`, and the button is disabled.
        """
        if self.finished:
            return None
        name, fn = self.steps[self.position]
        result: Any = None
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - shown to the learner
            self.error = e
        self.done.append((name, result if self.error is None else self.error))
        self.position += 1
        self._render(result)
        return name

    def run_all(self) -> list[str]:
        """Perform every remaining step; returns their names."""
        names = []
        while not self.finished:
            names.append(self.next())
        return names

    def _render(self, result: Any) -> None:
        lines = []
        for i, (name, _fn) in enumerate(self.steps):
            mark = "✔" if i < self.position else ("▶" if i == self.position else "·")
            if self.error is not None and i == self.position - 1:
                mark = "✘"
            lines.append(f"{mark} {i + 1}. {html.escape(name)}")
        state = f"step {self.position}/{len(self.steps)}"
        if self.error is not None:
            state += f" — failed: {type(self.error).__name__}: {self.error}"
        elif self.position >= len(self.steps):
            state += " — all done"
        self.status_text = state
        self.status.value = f"<span class='ocilearn-stepper-status'>{html.escape(state)}</span>"
        self.button.disabled = self.finished
        parts = ["<div style='font-family:monospace'>" + "<br>".join(lines) + "</div>"]
        views: dict[str, str] = {}
        if isinstance(result, dict):
            views.update({str(k): str(v) for k, v in result.items()})
        elif result is not None:
            views["result"] = str(result)
        if self.view is not None and self.position > 0:
            try:
                views.update(self.view())
            except Exception as e:  # noqa: BLE001
                views["view"] = f"cannot read the container's view: {e}"
        for title, text in views.items():
            parts.append(f"<b>{html.escape(title)}</b>{_pre(text)}")
        self.view_html.value = "".join(parts)


# ------------------------------------------------------------------ layer browser


@dataclass(frozen=True)
class LayerEntry:
    """One tar entry of a layer, as the layer browser shows it.

    Attributes:
        path: normalised path (no leading ``./`` or ``/``).
        type: ``file``, ``dir``, ``symlink``, ``hardlink``, ``char``, ``block``, ``fifo``.
        size: bytes (regular files). mode: permission bits (int).
        link: symlink/hardlink target or ``""``.
        change: ``added``, ``modified`` (path existed in a lower layer),
            ``whiteout`` (deletes ``target``), ``opaque`` (hides the lower
            contents of directory ``target``).
        target: the path a whiteout deletes / an opaque whiteout hides, else ``""``.
    """

    path: str
    type: str
    size: int
    mode: int
    link: str = ""
    change: str = "added"
    target: str = ""

    MARKS = {"added": "+", "modified": "~", "whiteout": "-", "opaque": "!"}

    def line(self) -> str:
        """``"+ file  0644      12 etc/hostname"`` style one-line rendering."""
        mark = self.MARKS.get(self.change, "?")
        tail = self.path
        if self.link:
            tail += (" -> " if self.type == "symlink" else " => ") + self.link
        if self.change == "whiteout":
            tail += f"   (whiteout: deletes {self.target})"
        elif self.change == "opaque":
            tail += f"   (opaque whiteout: hides lower contents of {self.target or '/'})"
        return f"{mark} {self.type:<8} {self.mode & 0o7777:04o} {self.size:>9} {tail}"


def layer_entries(layout, desc, lower: set[str] | None = None) -> list[LayerEntry]:
    """List a layer blob's tar entries, for display (nothing is extracted).

    Reading is done by :func:`ocilearn.layer.listing.list_layer` (gzip/zstd/plain, digest and
    size verified); this adds the *change* of each entry relative to the layers below.

    Args:
        layout: the :class:`~ocilearn.image.layout.ImageLayout` holding the blob.
        desc: the layer :class:`~ocilearn.image.model.Descriptor`.
        lower: paths present in the layers below, to mark ``modified`` vs ``added``.

    Returns:
        list of :class:`LayerEntry` in tar order. Whiteouts (``.wh.NAME``) and opaque
        whiteouts (``.wh..wh..opq``) are marked per image-spec layer.md "Whiteouts".

    Raises:
        ocilearn.core.errors.LayerError, DigestMismatch, SizeMismatch: from reading the blob.
    """
    from ..layer.listing import list_layer

    lower = lower or set()
    with open(layout.blob_path(desc.digest), "rb") as f:
        raw = list_layer(f, desc.media_type, digest=desc.digest, size=desc.size, source=f"layer {desc.digest.short}")
    out: list[LayerEntry] = []
    for e in raw:
        if not e.path or e.path == ".":
            continue
        if e.type in ("whiteout", "opaque"):
            change = e.type
        else:
            change = "modified" if e.path in lower else "added"
        out.append(LayerEntry(e.path, e.type, e.size, e.mode, e.linkname or "", change, e.target))
    return out


class LayerBrowser(_Displayable):
    """The file tree of each layer of an image, with whiteouts and changes marked.

    Marks: ``+`` added, ``~`` modified (the path existed in a lower layer),
    ``-`` whiteout (deletes a lower path), ``!`` opaque whiteout (hides a
    directory's lower contents).

    Args:
        layers: ``[(title, [LayerEntry, …]), …]`` bottom layer first. Use
            :meth:`from_layout` to build it from an image in a layout.
        max_lines: at most this many tree lines are drawn per layer (big base layers).

    Attributes:
        picker: ``Dropdown`` of layer titles; ``tree``: ``HTML`` with the tree;
        summary: ``HTML`` with counts per change kind.

    Headless: ``browser.show(1)`` selects the second layer and returns its tree text.
    """

    def __init__(self, layers: Sequence[tuple[str, list[LayerEntry]]], max_lines: int = 1500) -> None:
        self.layers = list(layers)
        self.max_lines = max_lines
        w = _w()
        self.picker = w.Dropdown(options=[(t, i) for i, (t, _e) in enumerate(self.layers)], description="layer", layout=w.Layout(width="520px"))
        self.summary = w.HTML()
        self.tree = w.HTML()
        self.picker.observe(lambda change: self._render(change["new"]), names="value")
        legend = w.HTML("<small>+ added · ~ modified (was in a lower layer) · - whiteout (deletes) · ! opaque whiteout</small>")
        self.widget = w.VBox([self.picker, legend, self.summary, self.tree])
        if self.layers:
            self._render(0)

    @classmethod
    def from_layout(cls, layout, ref: str | None = None, platform=None) -> "LayerBrowser":
        """Build from the image ``ref`` (default: the only one) of a layout.

        Raises:
            ocilearn.core.errors.RefNotFound / PlatformNotFound: from :meth:`ImageLayout.resolve`.
        """
        from ..image.layout import ImageLayout

        if not isinstance(layout, ImageLayout):
            layout = ImageLayout.open(layout)
        image = layout.resolve(ref, platform)
        layers = []
        seen: set[str] = set()
        for i, d in enumerate(image.manifest.layers):
            entries = layer_entries(layout, d, seen)
            for e in entries:
                if e.change == "whiteout":
                    seen.discard(e.target)
                    seen = {p for p in seen if not p.startswith(e.target + "/")}
                elif e.change == "opaque":
                    seen = {p for p in seen if not p.startswith(e.target + "/")} if e.target else set()
                else:
                    seen.add(e.path)
            short = d.digest.short
            layers.append((f"layer {i} {short} ({d.size} bytes)", entries))
        return cls(layers)

    def counts(self, index: int) -> dict[str, int]:
        """Number of entries per change kind in layer ``index``."""
        c: dict[str, int] = {}
        for e in self.layers[index][1]:
            c[e.change] = c.get(e.change, 0) + 1
        return c

    def show(self, index: int) -> str:
        """Select layer ``index`` (as the dropdown does); returns the tree HTML."""
        if self.picker.value == index:
            self._render(index)
        else:
            self.picker.value = index
        return self.tree.value

    def _render(self, index: int) -> None:
        title, entries = self.layers[index]
        c = self.counts(index)
        self.summary.value = html.escape(f"{title}: " + ", ".join(f"{v} {k}" for k, v in sorted(c.items())))
        lines = []
        for e in sorted(entries, key=lambda e: e.path):
            depth = e.path.count("/")
            name = e.path.rsplit("/", 1)[-1] + ("/" if e.type == "dir" else "")
            if e.link:
                name += (" -> " if e.type == "symlink" else " => ") + e.link
            note = ""
            if e.change == "whiteout":
                note = f"   [whiteout: deletes {e.target}]"
            elif e.change == "opaque":
                note = f"   [opaque whiteout: hides lower {e.target or '/'}]"
            elif e.change == "modified":
                note = "   [modified]"
            lines.append(f"{LayerEntry.MARKS.get(e.change, '?')} {'  ' * depth}{name}{note}")
        if len(lines) > self.max_lines:
            lines = lines[: self.max_lines] + [f"… {len(lines) - self.max_lines} more entries (browser.layers[{index}][1] has them all)"]
        self.tree.value = _pre("\n".join(lines) if lines else "(empty layer)")


# ------------------------------------------------------------------ a container, one setup step at a time

#: The setup steps of :func:`setup_stepper`, in order: (op, what the step does).
SETUP_STEPS: list[tuple[str, str]] = [
    ("unshare", "unshare(CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWPID), then fork: the child is PID 1 of the new PID namespace"),
    ("private", "mount --make-rprivate /   (mounts made from now on stay in this mount namespace)"),
    ("hostname", "sethostname(HOSTNAME)   (only this UTS namespace sees it)"),
    ("bind", "mount --bind ROOTFS ROOTFS   (pivot_root needs the new root to be a mount point)"),
    ("proc", "mount -t proc proc ROOTFS/proc   (a procfs of the new PID namespace)"),
    ("pivot", "pivot_root ROOTFS; umount -l the old root   (the host's files are gone)"),
    ("run", "fork, setuid to config.json's process.user, exec process.args: a child of PID 1"),
    ("exit", "PID 1 exits: the kernel tears the namespaces and their mounts down"),
]


def _view() -> dict[str, str]:
    """This process's view: hostname, its PID, what /proc lists, the mounts, what / holds."""
    import socket

    try:
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    except OSError as e:
        pids, proc = [], f"cannot list /proc: {e.strerror}"
    else:
        head = " ".join(map(str, pids[:12])) + (" …" if len(pids) > 12 else "")
        proc = f"{len(pids)} processes: {head}"
    try:
        with open("/proc/self/mounts") as f:
            mounts = f.read().splitlines()
        mnt = f"{len(mounts)} mounts; last: " + " | ".join(" ".join(m.split()[:3]) for m in mounts[-3:])
    except OSError as e:
        mnt = f"cannot read /proc/self/mounts: {e.strerror}"
    try:
        root = " ".join(sorted(os.listdir("/"))[:16])
    except OSError as e:
        root = f"cannot list /: {e.strerror}"
    return {"hostname": socket.gethostname(), "my PID": str(os.getpid()), "/proc": proc, "mounts": mnt, "/": root}


def _setup_child() -> None:
    """The process being turned into a container, step by step (run by :func:`setup_stepper`
    with ``python -c``). Reads one JSON command per line on stdin, answers one JSON line on
    stdout: ``{"ok": bool, "result": str, "view": {...}}``. The mount steps and pivot_root
    are the runtime's own functions (:mod:`ocilearn.runtime.rootfs`), run one at a time. Syscalls: unshare(2), fork(2),
    mount(2), sethostname(2), pivot_root(2), umount2(2), execve(2)."""
    import signal
    import sys

    from ..core import syscalls as sc
    from ..runtime import rootfs as rfs  # the runtime's own steps, one at a time

    cfg = json.loads(sys.argv[1])
    rootfs, hostname, args, env, cwd = cfg["rootfs"], cfg["hostname"], cfg["args"], cfg["env"], cfg["cwd"]
    out = sys.stdout

    def reply(ok: bool, result: str) -> None:
        out.write(json.dumps({"ok": ok, "result": result, "view": _view()}) + "\n")
        out.flush()

    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)  # the kernel (parent) dies -> so do we
    for line in sys.stdin:
        op = json.loads(line)["op"]
        try:
            if op == "view":
                reply(True, "")
                continue
            if op == "unshare":
                flags = sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC | sc.CLONE_NEWPID
                note = ""
                if os.geteuid() != 0:  # rootless: a user namespace first, mapping us to root
                    uid, gid = os.geteuid(), os.getegid()
                    sc.unshare(sc.CLONE_NEWUSER)
                    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
                        with open(f"/proc/self/{name}", "w") as f:
                            f.write(text)
                    note = f"unshare(CLONE_NEWUSER) + uid_map '0 {uid} 1' (rootless); "
                host_pid = os.getpid()
                sc.unshare(flags)
                pid = os.fork()
                if pid:  # the intermediate: wait for PID 1, then leave with its status
                    _, status = os.waitpid(pid, 0)
                    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
                sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
                reply(True, f"{note}unshare(0x{flags:x}) in host PID {host_pid}; its child says getpid() = {os.getpid()} "
                            "— but /proc is still the host's procfs, so it lists the host's processes")
            elif op == "private":
                rfs.make_root_private("rprivate")
                reply(True, "/ and every mount below it: propagation private")
            elif op == "hostname":
                sc.sethostname(hostname)
                reply(True, f"sethostname({hostname!r})")
            elif op == "bind":
                rfs.bind_rootfs(rootfs)
                reply(True, f"{rootfs} is now a mount point")
            elif op == "proc":
                target = os.path.join(rootfs, "proc")
                rfs.mount_one(rootfs, {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]})
                inside = sorted(int(p) for p in os.listdir(target) if p.isdigit())
                reply(True, f"{target} lists PIDs {inside} (our /proc is still the host's until pivot_root)")
            elif op == "pivot":
                rfs.pivot(rootfs)
                reply(True, "pivot_root('.', '.') then umount2('.', MNT_DETACH): / is the image's rootfs")
            elif op == "run":
                r, w = os.pipe()
                child = os.fork()
                if child == 0:
                    try:
                        os.dup2(w, 1)
                        os.dup2(w, 2)
                        if not cfg["rootless"]:  # rootless: only our own id is mapped, we stay 0
                            os.setgroups([])
                            os.setgid(cfg["gid"])
                            os.setuid(cfg["uid"])
                        os.chdir(cwd if os.path.isdir(cwd) else "/")
                        os.execvpe(args[0], args, dict(e.split("=", 1) for e in env if "=" in e))
                    finally:
                        os._exit(127)
                os.close(w)
                with os.fdopen(r, "rb") as f:
                    text = f.read().decode(errors="replace")
                _, status = os.waitpid(child, 0)
                reply(True, f"$ {' '.join(args)}\n{text.rstrip()}\n(PID {child} in the container, exit status {os.waitstatus_to_exitcode(status)})")
            elif op == "exit":
                reply(True, "PID 1 exits now")
                os._exit(0)
            else:
                reply(False, f"unknown step {op!r}")
        except OSError as e:
            reply(False, f"{type(e).__name__}: {e}")


class _SetupProcess:
    """The parent's side of :func:`_setup_child`: a subprocess talking JSON lines."""

    def __init__(self, cfg: dict) -> None:
        import subprocess
        import sys

        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from ocilearn.views.widgets import _setup_child; _setup_child()", json.dumps(cfg)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, start_new_session=True,
        )
        self.last_view: dict[str, str] = {}

    def ask(self, op: str) -> str:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the container process has exited (status {self.proc.returncode})")
        self.proc.stdin.write(json.dumps({"op": op}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(5)
            raise RuntimeError(f"the container process exited during {op!r} (status {self.proc.returncode})")
        ans = json.loads(line)
        self.last_view = ans["view"]
        if op == "exit":
            self.proc.wait(10)
            self.last_view = {"status": f"PID 1 gone; the intermediate process exited with {self.proc.returncode}"}
        if not ans["ok"]:
            raise OSError(ans["result"])
        return ans["result"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def setup_stepper(bundle, hostname: str | None = None) -> RuntimeStepper:
    """A :class:`RuntimeStepper` that turns a fresh process into a container, one real
    setup step per click, for the bundle at ``bundle`` (``config.json`` + ``rootfs/``).

    The steps are :data:`SETUP_STEPS`: unshare → private mounts → sethostname → bind the
    rootfs → mount proc → pivot_root → run the image's process → exit. They run in a
    child process (``python -c``), never in the kernel; after each one the view shows what
    that process sees: hostname, its PID, /proc, its mounts and /. As an ordinary user a
    user namespace maps you to root first (rootless). The child is killed if the kernel
    dies (PR_SET_PDEATHSIG), and its mounts vanish with its mount namespace.

    Args:
        bundle: path of an unpacked bundle (``ocilearn.bundle.unpack``'s result).
        hostname: default: config.json ``hostname``, else ``"ocilearn"``.

    Returns:
        the stepper. Its process ends after the last step, with ``stepper.close()``, or
        when the kernel exits (ipywidgets keeps every widget alive, so dropping the
        stepper does not end it).

    Raises:
        FileNotFoundError: no config.json; KeyError: no ``process.args`` in it.
    """
    from pathlib import Path

    bundle = Path(bundle)
    cfg = json.loads((bundle / "config.json").read_text())
    rootfs = Path(cfg.get("root", {}).get("path", "rootfs"))
    rootfs = rootfs if rootfs.is_absolute() else bundle / rootfs
    proc = cfg["process"]
    child_cfg = {
        "rootfs": str(rootfs.resolve()),
        "hostname": hostname or cfg.get("hostname") or "ocilearn",
        "args": list(proc["args"]),
        "env": list(proc.get("env") or []),
        "cwd": proc.get("cwd") or "/",
        "uid": int((proc.get("user") or {}).get("uid", 0)),
        "gid": int((proc.get("user") or {}).get("gid", 0)),
        "rootless": os.geteuid() != 0,
    }
    sp = _SetupProcess(child_cfg)
    subst = {"HOSTNAME": repr(child_cfg["hostname"]), "ROOTFS": child_cfg["rootfs"]}

    def describe(text: str) -> str:
        for k, v in subst.items():
            text = text.replace(k, v)
        return text

    steps = [(describe(what), (lambda op=op: sp.ask(op))) for op, what in SETUP_STEPS]

    def view() -> dict[str, str]:
        return dict(sp.last_view)

    stepper = RuntimeStepper(steps, view=view, title=f"a container from {bundle}, one setup step at a time")
    stepper.process = sp
    stepper.close = sp.close

    sp.ask("view")  # the starting point: the host's view
    stepper.view_html.value = "<b>before any step — the view of an ordinary process</b>" + "".join(
        f"<b>{html.escape(k)}</b>{_pre(v)}" for k, v in sp.last_view.items()
    )
    return stepper
