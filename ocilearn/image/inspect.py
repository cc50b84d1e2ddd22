"""What ``skopeo inspect oci:PATH:REF`` prints, computed from an image layout."""

from __future__ import annotations

from .layout import ImageLayout, resolve_ref


def inspect_image(layout: ImageLayout, ref: str | None, platform: str | None = None) -> dict:
    """The ``skopeo inspect`` document for ``ref`` in ``layout`` (dict, skopeo's keys):
    ``Digest`` is the digest of the document the ref names (an image index for a
    multi-platform ref); the other fields come from the image chosen for ``platform``
    (``OS/ARCH[/VARIANT]``, default this machine's) and its image config (image-spec
    config.md). Source: skopeo-inspect(1).

    Raises:
        RefNotFound, PlatformNotFound, BlobNotFound, InvalidDocument, DigestMismatch …
    """
    entry = resolve_ref(layout, ref)
    image = layout.resolve(ref, platform)
    cfg = layout.image_config(image)
    cc = cfg.config
    out: dict = {
        "Digest": str(entry.digest),
        "RepoTags": [],
        "Created": cfg.created,
        "DockerVersion": "",
        "Labels": dict(cc.labels) if cc and cc.labels else None,
        "Architecture": cfg.architecture,
    }
    if cfg.variant:
        out["Variant"] = cfg.variant
    out["Os"] = cfg.os
    out["Layers"] = [str(d.digest) for d in image.manifest.layers]
    out["Env"] = list(cc.env) if cc and cc.env else None
    if out["Env"] is None:
        del out["Env"]
    return out
