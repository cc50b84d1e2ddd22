"""Narration: every primitive can record what it did, step by step.

A *step* is one real action — a syscall, an HTTP request, a file written — with its key
arguments, the bytes or digests involved, and the equivalent command of a reference tool
(``skopeo copy …``, ``umoci unpack …``, ``unshare …``, ``runc create …``).

Recording is off by default and then costs one context-variable lookup per step::

    from ocilearn.core import explain
    with explain.recording() as steps:
        layout.put_blob(b"hello")
    steps            # shows as a table in Jupyter; str(steps) in a terminal

The CLI prints steps with ``--explain``.
"""

from __future__ import annotations

import contextlib
import contextvars
import html
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

_current: contextvars.ContextVar["Steps | None"] = contextvars.ContextVar("ocilearn_explain", default=None)


@dataclass
class Step:
    """One recorded action.

    Attributes:
        area: ``layout``, ``registry``, ``layer``, ``convert``, ``runtime`` …
        action: short verb phrase, e.g. ``"put blob"``, ``"GET /v2/"``, ``"unshare"``.
        detail: one line of what was done (digests, sizes in bytes, flags).
        equivalent: the reference tool's command for the same thing, or ``""``.
        data: any extra key/values (shown in the table).
        t: time since the recording started, in seconds.
    """

    area: str
    action: str
    detail: str = ""
    equivalent: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    t: float = 0.0


class Steps(list):
    """A list of :class:`Step` that prints as text and displays as an HTML table."""

    def __init__(self) -> None:
        super().__init__()
        self.started = time.monotonic()

    def __str__(self) -> str:
        lines = []
        for i, s in enumerate(self, 1):
            line = f"{i:3d}. [{s.area}] {s.action}"
            if s.detail:
                line += f": {s.detail}"
            lines.append(line)
            if s.equivalent:
                lines.append(f"       $ {s.equivalent}")
        return "\n".join(lines)

    def summary(self) -> str:
        """One line: how many steps, and the actions in order (a run of the same action
        shown once with ``×N``)."""
        runs: list[list] = []
        for s in self:
            if runs and runs[-1][0] == s.action:
                runs[-1][1] += 1
            else:
                runs.append([s.action, 1])
        return f"{len(self)} steps: " + " → ".join(f"{a} ×{n}" if n > 1 else a for a, n in runs)

    #: more steps than this: the HTML view shows :meth:`summary`, the table one click away
    FOLD_AT = 8

    def _repr_html_(self) -> str:
        table = self._table_html()
        if len(self) <= self.FOLD_AT:
            return table
        return (f"<p>{html.escape(self.summary())}</p><details><summary style='cursor:pointer'>"
                f"all {len(self)} steps, with the reference commands</summary>{table}</details>")

    def _table_html(self) -> str:
        from ocilearn.core.htmltable import table

        return table(
            ["#", "area", "action", "detail", "reference command"],
            ([str(i), html.escape(s.area), f"<b>{html.escape(s.action)}</b>", html.escape(s.detail),
              f"<code>{html.escape(s.equivalent)}</code>"] for i, s in enumerate(self, 1)),
            cls="ocilearn-steps",
        )


def enabled() -> bool:
    """True while a :func:`recording` block is active in this context."""
    return _current.get() is not None


def step(area: str, action: str, detail: str = "", equivalent: str = "", **data: Any) -> None:
    """Record one step if recording is on; otherwise do nothing (cheap)."""
    steps = _current.get()
    if steps is None:
        return
    steps.append(Step(area, action, detail, equivalent, data, time.monotonic() - steps.started))


@contextlib.contextmanager
def recording() -> Iterator[Steps]:
    """Record every step made inside the ``with`` block; yields the :class:`Steps` list."""
    steps = Steps()
    token = _current.set(steps)
    try:
        yield steps
    finally:
        _current.reset(token)
