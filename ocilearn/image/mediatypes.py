"""Media types of OCI (image-spec media-types.md) and Docker Image Manifest V2 Schema 2.

Plain string constants plus a few predicates. Docker's types are accepted wherever the
OCI equivalent is (image-spec media-types.md "Compatibility Matrix").
"""

from __future__ import annotations

# OCI image-spec
OCI_LAYOUT_HEADER = "application/vnd.oci.layout.header.v1+json"
OCI_DESCRIPTOR = "application/vnd.oci.descriptor.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_ND_TAR = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_ND_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_ND_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

# Docker Image Manifest V2, Schema 2
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"  # seen in docker save / buildkit
DOCKER_MANIFEST_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
LAYER_TYPES = frozenset(
    {
        OCI_LAYER_TAR,
        OCI_LAYER_GZIP,
        OCI_LAYER_ZSTD,
        OCI_LAYER_ND_TAR,
        OCI_LAYER_ND_GZIP,
        OCI_LAYER_ND_ZSTD,
        DOCKER_LAYER_GZIP,
        DOCKER_LAYER_FOREIGN_GZIP,
        DOCKER_LAYER_TAR,
    }
)
NONDISTRIBUTABLE_TYPES = frozenset({OCI_LAYER_ND_TAR, OCI_LAYER_ND_GZIP, OCI_LAYER_ND_ZSTD, DOCKER_LAYER_FOREIGN_GZIP})

#: The Accept header a registry client sends for manifests: every index and manifest type
#: (distribution-spec "Pulling manifests": a registry answers with an image index only when its media type is accepted).
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST])

#: OCI type for each Docker type, as ``skopeo copy --format oci`` converts them.
DOCKER_TO_OCI = {
    DOCKER_MANIFEST: OCI_MANIFEST,
    DOCKER_MANIFEST_LIST: OCI_INDEX,
    DOCKER_CONFIG: OCI_CONFIG,
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    DOCKER_LAYER_FOREIGN_GZIP: OCI_LAYER_ND_GZIP,
    DOCKER_LAYER_TAR: OCI_LAYER_TAR,
}


def is_manifest(media_type: str | None) -> bool:
    """True for an image manifest type (OCI or Docker schema2)."""
    return media_type in MANIFEST_TYPES


def is_index(media_type: str | None) -> bool:
    """True for an image index type (OCI index or Docker manifest list)."""
    return media_type in INDEX_TYPES


def is_config(media_type: str | None) -> bool:
    """True for an image config type (OCI or Docker)."""
    return media_type in CONFIG_TYPES


def is_layer(media_type: str | None) -> bool:
    """True for any OCI or Docker layer type (compressed or not, distributable or not)."""
    return media_type in LAYER_TYPES


def layer_compression(media_type: str) -> str:
    """The compression a layer media type announces: ``"gzip"``, ``"zstd"`` or ``"none"``.

    This is only a hint: the layer module reads the magic bytes too (ocilearn.core.streams.sniff_compression).
    """
    if media_type.endswith("+gzip") or media_type.endswith(".tar.gzip"):
        return "gzip"
    if media_type.endswith("+zstd"):
        return "zstd"
    return "none"


def kind(media_type: str | None) -> str:
    """A short human name for a media type: index, manifest, config, layer or blob."""
    if is_index(media_type):
        return "index"
    if is_manifest(media_type):
        return "manifest"
    if is_config(media_type):
        return "config"
    if is_layer(media_type):
        return "layer"
    return "blob"
