"""Every error ocilearn raises, in one place.

All of them derive from :class:`OcilearnError`, so ``except OcilearnError`` catches
anything the library reports on purpose; the CLI turns one into a one-line message and
a non-zero exit. Each message says *what* (which file, which digest), *what was expected*
and *what was found*, and where it helps, which spec rule applies.
"""

from __future__ import annotations


class OcilearnError(Exception):
    """Base class of every error raised on purpose by ocilearn."""


# --- digests and verification (image-spec descriptor.md "Digests", "Verification") ---


class InvalidDigest(OcilearnError, ValueError):
    """A digest string does not follow the grammar of image-spec descriptor.md "Digests"
    (``algorithm ":" encoded``), or a registered algorithm's encoding (sha256: 64 lowercase
    hex characters, sha512: 128)."""


class UnsupportedAlgorithm(OcilearnError):
    """A syntactically valid digest whose algorithm ocilearn cannot compute."""


class VerificationError(OcilearnError):
    """Content did not match what its descriptor promised."""


class DigestMismatch(VerificationError):
    """The bytes read hash to another digest than the one expected."""

    def __init__(self, expected, actual, source: str = "") -> None:
        self.expected, self.actual, self.source = expected, actual, source
        where = f" in {source}" if source else ""
        super().__init__(
            f"digest mismatch{where}: expected {expected}, got {actual} "
            "(image-spec descriptor.md 'Verification': content MUST match its digest)"
        )


class SizeMismatch(VerificationError):
    """The number of bytes read differs from the descriptor's ``size``."""

    def __init__(self, expected: int, actual: int, source: str = "", *, at_least: bool = False) -> None:
        self.expected, self.actual, self.source = expected, actual, source
        where = f" in {source}" if source else ""
        got = f"at least {actual}" if at_least else str(actual)
        super().__init__(
            f"size mismatch{where}: descriptor says {expected} bytes, got {got} "
            "(image-spec descriptor.md 'size': the exact number of bytes)"
        )


# --- documents (manifests, indexes, configs) ---


class InvalidDocument(OcilearnError, ValueError):
    """A JSON document (manifest, index, config, index.json, oci-layout) is malformed:
    not JSON, a required field missing, or a field of the wrong type."""


class AmbiguousDocument(InvalidDocument):
    """A document that could be read both as a manifest and as an index
    (CVE-2021-41190), or whose ``mediaType`` disagrees with its descriptor."""


# --- image layout ---


class LayoutError(OcilearnError):
    """An OCI image layout (image-spec image-layout.md) is missing, malformed or of an
    unsupported version."""


class BlobNotFound(LayoutError):
    """A blob named by a descriptor is not in the content store."""


class RefNotFound(LayoutError):
    """No ``org.opencontainers.image.ref.name`` in index.json matches the reference."""


class InvalidRefName(LayoutError, ValueError):
    """A ref name does not follow the grammar of image-layout.md "index.json"."""


class PlatformNotFound(LayoutError):
    """An image index has no manifest for the requested platform."""


class AmbiguousReference(LayoutError):
    """A ref name or platform matches more than one manifest with no rule to choose."""


# --- distribution ---


class ReferenceError_(OcilearnError, ValueError):
    """An image reference (``[host[:port]/]path[:tag][@digest]``) is malformed."""


InvalidReference = ReferenceError_


class RegistryError(OcilearnError):
    """A registry answered with an error, or not as distribution-spec says it must."""


class AuthError(RegistryError):
    """Authentication with a registry failed (401/403, bad credentials, token server error)."""


class TransportError(OcilearnError, ValueError):
    """A transport string (``docker://``, ``oci:``, ``docker-archive:``) is malformed."""


class ArchiveError(OcilearnError):
    """A docker-archive (``docker save`` tar) is malformed."""


# --- filesystem: layers, unpack, conversion ---


class LayerError(OcilearnError):
    """A layer cannot be applied: unreadable tar, unknown compression, an entry that
    cannot be created."""


class UnsafePath(LayerError):
    """A tar entry, link target or path would reach outside the rootfs."""


class BundleError(OcilearnError):
    """An OCI runtime bundle (runtime-spec bundle.md) is missing or malformed, or would be
    overwritten."""


class ConfigError(OcilearnError):
    """An image config cannot be converted into a runtime config (image-spec
    conversion.md), e.g. an unknown ``User`` or no command to run."""


# --- runtime ---


class RuntimeSpecError(OcilearnError):
    """A runtime ``config.json`` is invalid or asks for something this runtime cannot do."""


class ContainerError(OcilearnError):
    """A container lifecycle operation failed (runtime-spec runtime.md)."""


class ContainerNotFound(ContainerError):
    """No container with that ID in the state directory."""


class ContainerExists(ContainerError):
    """A container with that ID already exists."""


class InvalidState(ContainerError):
    """The operation is not allowed in the container's current status
    (runtime-spec runtime.md "Lifecycle")."""


# --- views (graph) ---


class GraphError(OcilearnError):
    """The image graph cannot be drawn: the ``graphviz`` Python package or Graphviz's
    ``dot`` program is missing, or ``dot`` failed."""
