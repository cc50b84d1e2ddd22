"""One HTML table for every notebook view: cells that wrap anywhere, so a long path, digest
or URL breaks inside the output area instead of widening the table past it.

``overflow-wrap: anywhere`` (CSS Text Module Level 3, §5.5) is the one wrapping rule that
also lowers a cell's min-content width, which is what an auto-layout table sizes its
columns from; ``break-word`` wraps only after the column is already too wide.
"""

from __future__ import annotations

from typing import Iterable, Sequence

__all__ = ["CELL_STYLE", "table"]

#: inline style of every ``<td>`` and ``<th>`` (inline, so JupyterLab's own table CSS,
#: right-aligned and middle-aligned, does not override it)
CELL_STYLE = "word-break:normal;overflow-wrap:anywhere;white-space:normal;vertical-align:top;text-align:left"


def table(head: Sequence[str], rows: Iterable[Sequence[str]], *, fixed: bool = False, cls: str = "",
          cell_styles: Sequence[str] = ()) -> str:
    """An HTML ``<table>`` that never grows wider than its container.

    Args:
        head: the column headings, as HTML (already escaped by the caller).
        rows: each row a sequence of cells, as HTML (already escaped by the caller).
        fixed: equal column widths (``table-layout:fixed``) instead of widths from content.
        cls: a class name for the table (tests and stylesheets find it by this).
        cell_styles: extra inline CSS per column, appended to :data:`CELL_STYLE`
            (e.g. a colour); missing entries mean none.

    Returns:
        the table as one HTML string.
    """
    def style(i: int) -> str:
        extra = cell_styles[i] if i < len(cell_styles) else ""
        return CELL_STYLE + (";" + extra if extra else "")

    th = "".join(f"<th style='{style(i)}'>{h}</th>" for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f"<td style='{style(i)}'>{c}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows)
    layout = "table-layout:fixed;width:100%;" if fixed else ""
    klass = f" class='{cls}'" if cls else ""
    return f"<table{klass} style='{layout}max-width:100%'><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"
