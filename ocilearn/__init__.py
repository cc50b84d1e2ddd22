"""ocilearn: from an OCI image to a running container, one real primitive at a time.

Modules, in the order of the course (see DESIGN in the README):

- core: :mod:`ocilearn.core.errors`, :mod:`ocilearn.image.digest`, :mod:`ocilearn.image.mediatypes`,
  :mod:`ocilearn.image.model`
- storage: :mod:`ocilearn.image.layout` (OCI image layout), :mod:`ocilearn.distribution.docker_archive` (docker save)
- distribution: :mod:`ocilearn.image.reference`, :mod:`ocilearn.distribution.registry`, :mod:`ocilearn.distribution.copy`
- filesystem: :mod:`ocilearn.layer.apply`, :mod:`ocilearn.bundle.convert`, :mod:`ocilearn.bundle.unpack`
- runtime: :mod:`ocilearn.runtime`
- views: :mod:`ocilearn.views.graph`, :mod:`ocilearn.core.explain`, :mod:`ocilearn.views.widgets`, :mod:`ocilearn.cli`

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
