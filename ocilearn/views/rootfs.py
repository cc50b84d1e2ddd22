"""The rootfs after each layer, as an ipywidgets file tree (notebook 02).

:func:`layer_tree` applies an image's layers one by one
(:func:`ocilearn.layer.snapshot.rootfs_after_each_layer`) and shows the tree after each,
what the layer added (``+``) and changed (``~``), and what it deleted — image-spec
layer.md's changeset made visible.
"""

from __future__ import annotations

from ..layer.snapshot import rootfs_after_each_layer

__all__ = ["RootfsBrowser", "layer_tree"]


class RootfsBrowser:
    """An ipywidgets file tree of the rootfs after each layer (notebook 02).

    Args:
        states: from :func:`ocilearn.layer.snapshot.rootfs_after_each_layer`.
        max_lines: tree lines drawn at most.

    Attributes: ``picker`` (Dropdown of layers), ``tree`` (HTML), ``widget`` (VBox).
    Headless: :meth:`show` selects a layer and returns the tree text. Marks: ``+`` added
    by that layer, ``~`` changed by it; deleted paths are listed under the tree.
    """

    def __init__(self, states, max_lines: int = 400) -> None:
        import ipywidgets as w

        self.states = list(states)
        self.max_lines = max_lines
        self.picker = w.Dropdown(options=[(t, i) for i, (t, _s, _c) in enumerate(self.states)], description="rootfs", layout=w.Layout(width="520px"))
        self.tree = w.HTML()
        self.picker.observe(lambda ch: self._render(ch["new"]), names="value")
        self.widget = w.VBox([self.picker, self.tree])
        self.text = ""
        if self.states:
            self._render(0)

    def text_of(self, index: int) -> str:
        """The tree of layer ``index`` as plain text."""
        _title, snap, changes = self.states[index]
        added, changed = set(changes["added"]), set(changes["changed"])
        lines = []
        for p in sorted(snap):
            if p == "/":
                continue
            fi = snap[p]
            mark = "+" if p in added else "~" if p in changed else " "
            name = p.rsplit("/", 1)[-1] + ("/" if fi.type == "dir" else "")
            if fi.type == "symlink":
                name += f" -> {fi.link}"
            lines.append(f"{mark} {'  ' * (p.count('/') - 1)}{name}")
        if len(lines) > self.max_lines:
            lines = lines[: self.max_lines] + [f"… {len(lines) - self.max_lines} more"]
        if changes["deleted"]:
            lines.append(f"deleted by this layer: {', '.join(changes['deleted'])}")
        return "\n".join(lines)

    def show(self, index: int) -> str:
        """Select layer ``index`` (as the dropdown does); returns the tree text."""
        if self.picker.value == index:
            self._render(index)
        else:
            self.picker.value = index
        return self.text

    def _render(self, index: int) -> None:
        import html

        self.text = self.text_of(index)
        self.tree.value = "<pre style='max-height:400px;overflow:auto'>" + html.escape(self.text) + "</pre>"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def layer_tree(layout, ref: str | None = None, platform=None, work=None) -> RootfsBrowser:
    """A :class:`RootfsBrowser` of an image's rootfs after each layer (applies the layers
    into ``work``, a temp dir by default)."""
    return RootfsBrowser(rootfs_after_each_layer(layout, ref, platform, work))
