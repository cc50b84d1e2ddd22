"""Interactive ipywidgets for the ocilearn course notebooks.

Four widgets, each usable headless (tests call their methods and read the
``Output``/``HTML`` widget contents) and in JupyterLab:

- :class:`ImageExplorer` — pick a node of the image graph (index, manifest,
  config, layer) and see its descriptor and JSON document.
- :class:`ProvenanceTable` — the runtime-spec ``config.json`` fields with the
  image-config field each one came from.
- :class:`RuntimeStepper` — a Next button performs the next container setup
  step and shows the container's view of /proc, mounts and hostname.
- :class:`LayerBrowser` — the file tree of each layer with whiteouts, opaque
  whiteouts and changes marked.

``ipywidgets`` is imported lazily inside functions, so ``import
ocilearn.widgets`` costs nothing for CLI users.
"""

from __future__ import annotations
