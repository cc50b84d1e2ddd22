"""The image graph: index.json → image index(es) → manifest(s) → config + layers.

An OCI image is a Merkle DAG (image-spec overview: "content addressable"): every arrow
below is a descriptor (media type, digest, size) inside the document it starts from::

    index.json ──ref "latest"──▶ image index ──linux/arm64/v8──▶ manifest ──▶ config
                                                                          └──▶ layer 1 …

:class:`ImageGraph` walks a layout once (reading and verifying only the JSON documents,
never the layers) and keeps nodes and edges as plain data. It draws itself:

* in Jupyter, through ``_repr_mimebundle_`` (SVG made by Graphviz ``dot``, plus a text tree);
* as a ``graphviz.Digraph`` (:meth:`ImageGraph.digraph`), an SVG string (:meth:`svg`) or a
  file (:meth:`render`); ``ocilearn graph oci:PATH[:REF] -o FILE.svg`` does the latter;
* as text (``str(graph)``), with no Graphviz at all.

``graphviz`` (the Python package) is imported only when a drawing is asked for, so the
runtime never loads it.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..core import explain
from ..core.errors import GraphError, OcilearnError
from ..image import mediatypes as mt
from ..image.digest import Digest

if TYPE_CHECKING:  # for annotations only: views.graph must not import image.layout, which
    # imports this module in its _repr_mimebundle_ (no import cycle)
    from ..image.layout import ImageLayout
from ..image.model import Descriptor, Index, Manifest

_COLOURS = {
    "index.json": "#e0e0e0",
    "index": "#cfe2ff",
    "manifest": "#ffe69c",
    "config": "#d1e7dd",
    "layer": "#f8d7da",
    "blob": "#f0f0f0",
}


def human_size(n: int) -> str:
    """Bytes in binary units, as ``ls -lh`` would: ``476 B``, ``1.0 MiB``, ``53.2 MiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


@dataclass
class Node:
    """One box of the graph.

    Attributes:
        id: the Graphviz node name (``n_<hex>`` or ``index_json``).
        kind: ``index.json``, ``index``, ``manifest``, ``config``, ``layer`` or ``blob``.
        digest: the blob's :class:`~ocilearn.image.digest.Digest` (for index.json: sha256 of the file).
        size: bytes.
        media_type: the descriptor's media type ("" for index.json).
        notes: extra lines (platform, ref names, compression, "missing", errors).
        problem: True when the blob is missing or unreadable (drawn dashed red).
    """

    id: str
    kind: str
    digest: Digest
    size: int
    media_type: str = ""
    notes: list[str] = field(default_factory=list)
    problem: bool = False

    @property
    def title(self) -> str:
        if self.kind == "layer":
            comp = mt.layer_compression(self.media_type) if mt.is_layer(self.media_type) else ""
            return f"layer ({comp})" if comp and comp != "none" else "layer (tar)"
        return {"index": "image index", "config": "image config"}.get(self.kind, self.kind)

    @property
    def lines(self) -> list[str]:
        """Text lines of the label: kind, short digest, human size, notes."""
        return [self.title, f"{self.digest.algorithm}:{self.digest.short}", human_size(self.size), *self.notes]


@dataclass
class Edge:
    """An arrow: ``src`` node id → ``dst`` node id, with a label (ref name, platform,
    ``config``, ``layer N``, ``subject``)."""

    src: str
    dst: str
    label: str = ""
    dashed: bool = False


class ImageGraph:
    """The DAG of one image layout (all refs, or one).

    Args:
        layout: an open :class:`~ocilearn.image.layout.ImageLayout` (``ImageLayout.open(path)``).
        ref: only the index.json entries with this ref name (or digest); ``None`` = all.

    Attributes:
        nodes: dict node id → :class:`Node` (one per digest: shared blobs appear once).
        edges: list of :class:`Edge`.

    Raises:
        LayoutError and subclasses: the layout cannot be opened, or ``ref`` is unknown.
        Blobs that are missing or corrupt do not raise: they become red nodes.
    """

    def __init__(self, layout: ImageLayout, ref: str | None = None) -> None:
        self.layout = layout
        self.ref = ref
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self._build()

    # -- construction --------------------------------------------------------------

    def _node(self, desc: Descriptor) -> tuple[Node, bool]:
        nid = f"n_{desc.digest.algorithm}_{desc.digest.encoded}"
        if nid in self.nodes:
            return self.nodes[nid], False
        node = Node(nid, desc.kind, desc.digest, desc.size, desc.media_type)
        self.nodes[nid] = node
        return node, True

    def _build(self) -> None:
        lay = self.layout
        raw = (lay.path / "index.json").read_bytes()
        top = Node("index_json", "index.json", Digest("sha256", hashlib.sha256(raw).hexdigest()), len(raw), "", [str(lay.path.name)])
        self.nodes[top.id] = top
        index = lay.index()
        entries = list(index.manifests)
        if self.ref is not None:
            wanted = lay._entry(self.ref)  # raises RefNotFound / AmbiguousReference
            entries = [d for d in entries if d.ref_name == self.ref] or [d for d in entries if str(d.digest) == self.ref] or [wanted]
        for d in entries:
            label = d.ref_name or ""
            if d.platform is not None and not label:
                label = str(d.platform)
            self._visit(d, top.id, label, depth=0)

    def _visit(self, desc: Descriptor, parent: str, label: str, depth: int, dashed: bool = False) -> None:
        node, new = self._node(desc)
        self.edges.append(Edge(parent, node.id, label, dashed))
        if desc.ref_name and f"ref {desc.ref_name}" not in node.notes:
            node.notes.append(f"ref {desc.ref_name}")
        if desc.platform is not None and str(desc.platform) not in node.notes and node.kind in ("manifest", "index"):
            node.notes.append(str(desc.platform))
        if not new or depth > 16:
            return
        if node.kind not in ("manifest", "index", "config"):
            if desc.data is None and not self.layout.has_blob(desc.digest) and not (desc.urls or desc.media_type in mt.NONDISTRIBUTABLE_TYPES):
                node.notes.append("MISSING")
                node.problem = True
            return
        try:
            if node.kind == "config":
                if mt.is_config(desc.media_type):
                    cfg = self.layout.read_config(desc)
                    node.notes.append(str(cfg.platform))
                return
            doc = self.layout.read_document(desc)
        except OcilearnError as e:
            node.notes.append("MISSING" if "not found" in str(e) else "UNREADABLE")
            node.problem = True
            return
        if isinstance(doc, Index):
            for child in doc.manifests:
                self._visit(child, node.id, str(child.platform) if child.platform else "", depth + 1)
        elif isinstance(doc, Manifest):
            if doc.artifact_type:
                node.notes.append(f"artifact {doc.artifact_type}")
            self._visit(doc.config, node.id, "config", depth + 1)
            n = len(doc.layers)
            for i, layer in enumerate(doc.layers, 1):
                self._visit(layer, node.id, f"layer {i}/{n}" if n > 1 else "layer", depth + 1)
        if doc.subject is not None:
            self._visit(doc.subject, node.id, "subject", depth + 1, dashed=True)

    # -- output -------------------------------------------------------------------

    def digraph(self):
        """A ``graphviz.Digraph`` of the graph (left to right; one box per blob).

        Raises:
            GraphError: the ``graphviz`` Python package is not installed.
        """
        try:
            import graphviz
        except ImportError:
            raise GraphError("drawing the image graph needs the 'graphviz' Python package (pip install 'ocilearn[lab]')") from None
        g = graphviz.Digraph("image", graph_attr={"rankdir": "LR", "fontname": "Helvetica"},
                             node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica", "fontsize": "10"},
                             edge_attr={"fontname": "Helvetica", "fontsize": "9"})
        for node in self.nodes.values():
            title, digest, size, *notes = [html.escape(x) for x in node.lines]
            label = f"<<b>{title}</b><br/>{digest}<br/>{size}" + "".join(f"<br/><i>{x}</i>" for x in notes) + ">"
            attrs = {"fillcolor": _COLOURS.get(node.kind, "#ffffff"), "tooltip": f"{node.digest} ({node.size} bytes) {node.media_type}"}
            if node.problem:
                attrs.update(color="red", style="rounded,filled,dashed", fontcolor="red")
            g.node(node.id, label, **attrs)
        for e in self.edges:
            g.edge(e.src, e.dst, label=e.label, **({"style": "dashed"} if e.dashed else {}))
        return g

    def svg(self) -> str:
        """The graph as an SVG document (str), rendered by Graphviz ``dot``.

        Raises:
            GraphError: ``dot`` is not installed (Debian package ``graphviz``) or failed.
        """
        svg = dot_svg(self.digraph(), "the image graph")
        explain.step("graph", "render", f"{len(self.nodes)} nodes, {len(self.edges)} edges, {len(svg)} bytes of SVG", "dot -Tsvg graph.dot > graph.svg")
        return svg

    def render(self, path: str | Path) -> Path:
        """Write the SVG to ``path``; returns the path."""
        from ..core.fsutil import atomic_write

        p = Path(path)
        atomic_write(p, self.svg().encode())
        return p

    def _repr_svg_(self) -> str:
        return self.svg()

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"image/svg+xml": self.svg(), "text/plain": str(self)}

    def __str__(self) -> str:
        children: dict[str, list[Edge]] = {}
        for e in self.edges:
            children.setdefault(e.src, []).append(e)
        out: list[str] = []

        printed: set[str] = set()

        def emit(nid: str, prefix: str, label: str) -> None:
            n = self.nodes[nid]
            head = f"{label}: " if label else ""
            notes = f" [{', '.join(n.notes)}]" if n.notes else ""
            again = nid in printed and nid in children
            out.append(f"{prefix}{head}{n.title} {n.digest.algorithm}:{n.digest.short} {human_size(n.size)}{notes}{' (shown above)' if again else ''}")
            if nid in printed:
                return
            printed.add(nid)
            for e in children.get(nid, []):
                emit(e.dst, prefix + "  ", e.label)

        emit("index_json", "", "")
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"ImageGraph({self.layout.path}, ref={self.ref!r}: {len(self.nodes)} nodes, {len(self.edges)} edges)"


def dot_svg(source, what: str) -> str:
    """``source`` (a ``graphviz.Digraph`` or ``graphviz.Source``) rendered by Graphviz
    ``dot`` as an SVG document (str); ``what`` names it in the error.

    Raises:
        GraphError: ``dot`` is not installed (Debian package ``graphviz``) or failed.
    """
    import subprocess

    try:
        return source.pipe(format="svg", encoding="utf-8")
    except (OSError, subprocess.CalledProcessError, RuntimeError) as e:
        raise GraphError(f"Graphviz 'dot' could not render {what} ({e}); install it with: apt-get install graphviz") from None


def draw(layout: ImageLayout, ref: str | None = None) -> ImageGraph:
    """The graph of an open ``layout``, ready to
    display: the last expression of a notebook cell draws it. See :class:`ImageGraph`."""
    return ImageGraph(layout, ref)
