"""Fold long output: a short summary on screen, the full text one click away.

In Jupyter a :class:`Folded` renders as an HTML ``<details>`` element (the summary line
is the clickable ``<summary>``); anywhere else (a terminal, ``print``) it is the plain
text — summary, then the full text — so nothing is hidden from a script or a test.

Also: :func:`explain_summary` turns the numbered step list that ``ocilearn --explain``
prints into the names of its stages, and :func:`shell_line` writes a command line the
way a person types it (double quotes around a word with single quotes in it, never
POSIX ``'"'"'`` splicing).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Sequence

from ..core.htmltable import table

__all__ = ["Folded", "Table", "fold", "explain_summary", "shell_line", "source"]

#: outputs longer than this many lines are folded by :func:`fold`
MAX_LINES = 25

_PRE = "white-space:pre-wrap;word-break:normal;overflow-wrap:anywhere;max-width:100%;margin:0"


@dataclass(frozen=True)
class Folded:
    """Text with a summary: ``summary`` (a few lines, always shown) and ``text`` (the
    full output, behind the summary's click in Jupyter). ``html_body`` replaces the
    escaped ``<pre>`` of ``text`` when the full view is richer (highlighted code)."""

    summary: str
    text: str
    label: str = "show all"
    html_body: str = ""

    def __str__(self) -> str:
        if not self.text:
            return self.summary
        return f"{self.summary}\n{self.text}" if self.summary else self.text

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, p, cycle) -> None:  # IPython's plain-text display
        p.text(str(self))

    def _repr_html_(self) -> str:
        head = f"<pre style='{_PRE}'>{html.escape(self.summary)}</pre>" if self.summary else ""
        if not self.text and not self.html_body:
            return head
        body = self.html_body or f"<pre style='{_PRE}'>{html.escape(self.text)}</pre>"
        return (f"{head}<details class='ocilearn-fold'><summary style='cursor:pointer'>{html.escape(self.label)}"
                f"</summary>{body}</details>")


def fold(text: str, summary: str | None = None, *, lines: int = 8, label: str | None = None) -> Folded:
    """Fold ``text`` when it is longer than :data:`MAX_LINES` lines.

    ``summary``: what stays on screen (default: the first ``lines`` lines). A short text is
    returned whole (``Folded(text, "")``, nothing to click). The label of the click says how
    many lines are behind it.
    """
    text = text.rstrip("\n")
    n = text.count("\n") + 1 if text else 0
    if n <= MAX_LINES and summary is None:
        return Folded(text, "")
    if summary is None:
        summary = "\n".join(text.splitlines()[:lines]) + f"\n… ({n - lines} more lines)"
    return Folded(summary, text, label or f"all {n} lines")


_STEP = re.compile(r"^\s*(\d+)\. \[([^\]]+)\] ([^:]+?)(?::|$)")


def explain_summary(output: str, *, head: Sequence[str] = ()) -> Folded:
    """Summarise ``ocilearn --explain`` output: how many steps, and the stages in order
    (a stage repeated back to back is shown once with ``×N``); the full numbered list,
    with each step's reference command, one click away.

    ``head``: lines shown above the summary (e.g. the ``$ ocilearn …`` command line).
    Lines of ``output`` that are not steps (a trailing ``ocilearn list`` table, errors)
    stay visible below the summary.
    """
    stages: list[list] = []
    steps, rest, count = [], [], 0
    in_steps = False
    for line in output.rstrip("\n").splitlines():
        m = _STEP.match(line)
        if m:
            count += 1
            in_steps = True
            steps.append(line)
            name = m.group(3).strip()
            if stages and stages[-1][0] == name:
                stages[-1][1] += 1
            else:
                stages.append([name, 1])
        elif in_steps and line.startswith("       "):
            steps.append(line)  # the step's "$ reference command"
        else:
            in_steps = False
            rest.append(line)
    if not count:
        return fold(output)
    flow = " → ".join(f"{n} ×{k}" if k > 1 else n for n, k in stages)
    summary = "\n".join([*head, f"{count} steps: {flow}", *[r for r in rest if r.strip()]])
    return Folded(summary, "\n".join(steps), f"all {count} steps, with the reference commands")


_SAFE = re.compile(r"^[A-Za-z0-9@%+=:,./_-]+$")


def shell_line(args: Sequence[str]) -> str:
    """``args`` as a shell command line for reading: bare words, single quotes around a
    word with spaces or shell characters, double quotes (with ``\\ " $ `` escaped) around
    one that holds a single quote. sh(1) reads the line back into the same ``args``."""
    out = []
    for a in args:
        if a and _SAFE.match(a):
            out.append(a)
        elif "'" not in a:
            out.append(f"'{a}'")
        else:
            out.append('"' + re.sub(r'([\\"$`])', r"\\\1", a) + '"')
    return " ".join(out)


def source(obj) -> Folded:
    """The source code of ``obj``: its first line (the signature) and docstring's first
    line on screen, the whole highlighted source one click away."""
    import inspect

    src = inspect.getsource(obj)
    name = getattr(obj, "__qualname__", getattr(obj, "__name__", "source"))
    module = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
    para = " ".join((inspect.getdoc(obj) or "").strip().split("\n\n")[0].split())
    first = para.split(". ")[0].rstrip(".").replace("``", "`")
    if len(first) > 110:
        first = first[:109].rsplit(" ", 1)[0] + " …"
    try:
        file = inspect.getsourcefile(obj) or ""
    except TypeError:
        file = ""
    where = file.split("/ocilearn/", 1)[-1] if "/ocilearn/" in file else file
    summary = f"{module}.{name}" if module and module != name else name
    summary += f" — {first}" if first else ""
    if where:
        summary += f"\n(ocilearn/{where}, {src.count(chr(10)) + 1} lines)"
    body = ""
    try:
        from IPython.display import Code  # highlighted by IPython's own pygments

        body = f"<div style='max-width:100%;overflow-x:auto'>{Code(src, language='python')._repr_html_()}</div>"
    except ImportError:  # pragma: no cover - outside Jupyter: the plain text is shown
        body = ""
    return Folded(summary, src, "show the source", body)


@dataclass(frozen=True)
class Table:
    """A table that fits its output area: fixed layout at 100% width, long cells (URLs,
    digests, headers) wrap anywhere instead of widening the table. ``rows`` are dicts or
    sequences in ``columns`` order; ``fold_after`` rows are shown, the rest one click away."""

    columns: Sequence[str]
    rows: Sequence
    fold_after: int = 12

    def _cells(self, r) -> list[str]:
        return [str(r.get(c, "")) for c in self.columns] if isinstance(r, dict) else [str(v) for v in r]

    def __str__(self) -> str:
        return "\n".join(["  ".join(self.columns)] + ["  ".join(self._cells(r)) for r in self.rows])

    def __repr__(self) -> str:
        return str(self)

    def _html(self, rows) -> str:
        return table([html.escape(c) for c in self.columns],
                     ([f"<small>{html.escape(v)}</small>" for v in self._cells(r)] for r in rows),
                     fixed=True, cls="ocilearn-table")

    def _repr_html_(self) -> str:
        rows = list(self.rows)
        if len(rows) <= self.fold_after:
            return self._html(rows)
        return (self._html(rows[: self.fold_after]) + "<details><summary style='cursor:pointer'>"
                f"all {len(rows)} rows</summary>{self._html(rows)}</details>")
