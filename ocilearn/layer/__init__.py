"""Step 02–03: layers — reading a layer blob and applying it to a rootfs (image-spec layer.md).

One module per concept:

- :mod:`~ocilearn.layer.tar` — the read pipeline blob → verify → decompress → diff ID → tar
  members, within bounds (``open_layer``, ``diff_id_of``, ``detect_compression``);
- :mod:`~ocilearn.layer.listing` — a layer's entries like ``tar -tvf`` (``list_layer``, ``LayerEntry``);
- :mod:`~ocilearn.layer.whiteout` — whiteouts and opaque whiteouts (``apply_whiteout``,
  ``apply_opaque_whiteout``);
- :mod:`~ocilearn.layer.xattrs` — which extended attributes reach the rootfs;
- :mod:`~ocilearn.layer.rootless` — what an ordinary user cannot apply, and what is recorded instead;
- :mod:`~ocilearn.layer.apply` — one layer onto a rootfs (``apply_layer``);
- :mod:`~ocilearn.layer.snapshot` — trees and their differences, the rootfs after each layer.
"""
