"""ocilearn: from an OCI image to a running container, one real primitive at a time.

Modules, in the order of the course (see DESIGN in the README):

- core: :mod:`ocilearn.errors`, :mod:`ocilearn.digest`, :mod:`ocilearn.mediatypes`,
  :mod:`ocilearn.model`
- storage: :mod:`ocilearn.layout` (OCI image layout), :mod:`ocilearn.archive` (docker save)
- distribution: :mod:`ocilearn.reference`, :mod:`ocilearn.registry`, :mod:`ocilearn.transfer`
- filesystem: :mod:`ocilearn.layer`, :mod:`ocilearn.convert`, :mod:`ocilearn.unpack`
- runtime: :mod:`ocilearn.runtime`
- views: :mod:`ocilearn.graph`, :mod:`ocilearn.explain`, :mod:`ocilearn.widgets`, :mod:`ocilearn.cli`

Importing ``ocilearn`` imports nothing heavy; each module is imported when used.
"""

from __future__ import annotations

__version__ = "0.1.0"


def show_source(obj) -> None:
    """Display the source code of an ocilearn function, class or module — in Jupyter as
    highlighted code, in a terminal as text. The course's "one click away" view."""
    import inspect

    src = inspect.getsource(obj)
    try:
        from IPython.display import Code, display

        display(Code(src, language="python"))
    except ImportError:  # pragma: no cover - outside Jupyter
        print(src)
