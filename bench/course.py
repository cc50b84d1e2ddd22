"""The whole course executed headless: every ``notebooks/[0-9]*.ipynb`` in order, on the
embedded image, each in a fresh temp dir with a fresh ``python3`` kernel (nbclient), as a
learner's *Run All* would. Goal: under 60 s in all on the 2-core CI machine.

``python -m bench course [REPEAT]`` prints per-notebook wall times (seconds; best and
median of REPEAT runs, default 3) and the total. There is no reference tool for a course:
the figure is absolute.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 60.0


def run_once(paths: list[Path]) -> dict[str, float]:
    """Execute each notebook once; returns {name: seconds}. Raises on the first failing cell."""
    import nbformat
    from nbclient import NotebookClient

    times = {}
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        with tempfile.TemporaryDirectory(prefix=f"ocilearn-bench-{p.stem[:2]}-") as cwd:
            t0 = time.perf_counter()
            client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": cwd}})
            client.execute(env={**os.environ, "TMPDIR": cwd})  # the notebooks' work dirs go with cwd
            times[p.name] = time.perf_counter() - t0
    return times


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[2:] if argv is None and len(sys.argv) > 2 else (argv or [])
    repeat = int(argv[0]) if argv else 3
    paths = sorted((REPO / "notebooks").glob("[0-9]*.ipynb"))
    runs = [run_once(paths) for _ in range(repeat)]
    print(f"course: {len(paths)} notebooks, {repeat} runs each, nbclient, fresh kernel per notebook (seconds)")
    print(f"{'notebook':<26}{'best':>8}{'median':>9}")
    for p in paths:
        xs = [r[p.name] for r in runs]
        print(f"{p.name:<26}{min(xs):>8.2f}{statistics.median(xs):>9.2f}")
    totals = [sum(r.values()) for r in runs]
    best, med = min(totals), statistics.median(totals)
    print(f"{'TOTAL':<26}{best:>8.2f}{med:>9.2f}   goal < {GOAL_SECONDS:.0f} s: {'met' if med < GOAL_SECONDS else 'NOT met'}")
    return {"notebooks": [p.name for p in paths], "runs": runs, "total_best": best, "total_median": med}


if __name__ == "__main__":
    main(sys.argv[1:])
