"""The embedded workshop image: a tiny busybox image shipped inside the package.

An OCI image layout (image-spec image-layout.md) with one image, ref ``latest``, built by
``scripts/build-embedded-image.py`` with :mod:`ocilearn.image.build` from Debian's
``busybox-static`` (provenance, license and digests: ``ocilearn/data/README.md``). The
course uses it when there is no network::

    from ocilearn.image import embedded
    layout = embedded.copy_to(workdir / "busybox")   # a writable copy
    image = layout.resolve("latest")

The packaged files are never written to: :func:`layout_path` is for reading only.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..core import explain
from ..core.errors import LayoutError
from .layout import ImageLayout

#: the ref name of the embedded image in its index.json
REF = "latest"


def _data_dir() -> Path:
    from importlib.resources import files

    return Path(str(files("ocilearn") / "data"))


def layout_path() -> Path:
    """The packaged layout directory (read-only: use :func:`copy_to` to modify).

    Raises:
        LayoutError: the package data is missing (a broken install; rebuild with
            ``scripts/build-embedded-image.py``).
    """
    p = _data_dir() / "images" / "busybox"
    if not (p / "index.json").is_file():
        raise LayoutError(f"{p}: the embedded image is missing (run scripts/build-embedded-image.py, or reinstall ocilearn)")
    return p


def open() -> ImageLayout:  # noqa: A001 - module-level name mirrors ImageLayout.open
    """The packaged layout, opened (read-only use)."""
    return ImageLayout.open(layout_path())


def provenance() -> dict:
    """Facts about the image: package, version, .deb sha256, license, digests (dict of str)."""
    return json.loads((_data_dir() / "embedded-busybox.json").read_text())


def copy_to(dest: str | os.PathLike) -> ImageLayout:
    """Copy the embedded layout to ``dest`` (created; must not exist, or be an empty
    directory) and open the copy. Files become writable by the caller.

    Returns:
        :class:`~ocilearn.image.layout.ImageLayout` of the copy.

    Raises:
        LayoutError: ``dest`` exists and is not empty.
    """
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise LayoutError(f"{dest}: exists and is not empty; copy the embedded image to a new directory")
    if dest.exists():
        dest.rmdir()
    src = layout_path()
    shutil.copytree(src, dest, copy_function=shutil.copyfile)
    for root, dirs, files in os.walk(dest):
        for d in dirs:
            os.chmod(Path(root) / d, 0o755)
        for f in files:
            os.chmod(Path(root) / f, 0o644)
    os.chmod(dest, 0o755)
    explain.step("layout", "copy embedded image", f"{src} -> {dest}", f"skopeo copy oci:{src}:{REF} oci:{dest}:{REF}")
    return ImageLayout.open(dest)
