"""Helpers for the notebook generator scripts (``build_NN.py``).

A notebook is written from a list of cells with nbformat, without outputs (the test
suite and the learner execute it), with the ``python3`` kernelspec set (without it
JupyterLab opens a blocking "Select Kernel" dialog) and its first code cell tagged
``parameters`` (papermill convention; the tests inject an overriding cell after it).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS = Path(__file__).resolve().parents[1]
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def md(text: str):
    """A Markdown cell (text is dedented and stripped)."""
    return new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str, *tags: str, hidden: bool = False):
    """A code cell with optional tags; ``hidden=True`` collapses its source in JupyterLab."""
    cell = new_code_cell(textwrap.dedent(text).strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    if hidden:
        cell.metadata["jupyter"] = {"source_hidden": True}
    return cell


def parameters(text: str):
    """The first code cell, tagged ``parameters``."""
    return code(text, "parameters")


def write(name: str, cells: list) -> Path:
    """Write ``notebooks/NAME`` (validated, no outputs); returns its path."""
    for i, cell in enumerate(cells):  # stable ids: regenerating an unchanged notebook changes nothing
        cell["id"] = f"cell-{i:03d}"
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.validate(nb)
    path = NOTEBOOKS / name
    with open(path, "w", encoding="utf-8") as f:
        nbformat.write(nb, f)
    return path
