"""ocilearn: from an OCI image to a running container, one real primitive at a time.

One sub-package per step of the course (docs/architecture.md has the map and the
dependency rule):

- :mod:`ocilearn.core`: errors, narration, Linux syscalls, in-root file helpers, streams
- :mod:`ocilearn.image` (notebooks 01, 02): digests, media types, the model, references,
  the image layout
- :mod:`ocilearn.distribution` (01): the registry client, transports, ``copy``
- :mod:`ocilearn.layer` (02): tar reading, whiteouts, applying a layer
- :mod:`ocilearn.bundle` (03): image config → runtime config, ``unpack``
- :mod:`ocilearn.runtime` (04): the container lifecycle, runc's command line
- :mod:`ocilearn.views`, :mod:`ocilearn.cli`, :mod:`ocilearn.course`: graph, widgets,
  the ``ocilearn`` command, the course's checks

Importing ``ocilearn`` imports nothing heavy; each module is imported when used.
"""

from __future__ import annotations

__version__ = "0.2.0"


def show_source(obj) -> None:
    """Display the source code of an ocilearn function, class or module — in Jupyter its
    name and docstring's first line, with the highlighted code one click away (an HTML
    ``<details>``); in a terminal as text. The course's "one click away" view."""
    from .views.fold import source

    folded = source(obj)
    try:
        from IPython.display import display

        display(folded)
    except ImportError:  # pragma: no cover - outside Jupyter
        print(folded.text)
