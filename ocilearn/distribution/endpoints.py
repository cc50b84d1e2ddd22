"""Transport strings, parsed in one place: ``skopeo copy``'s syntax (containers-transports(5)).

* ``docker://REF`` — a registry (:mod:`ocilearn.distribution.registry`);
* ``oci:PATH[:REF]`` — an OCI image layout (:mod:`ocilearn.distribution.oci_layout`);
* ``oci-archive:PATH[:REF]`` — a tar of an image layout (:mod:`ocilearn.distribution.oci_archive`);
* ``docker-archive:PATH[:REF]`` — a ``docker save`` tar (:mod:`ocilearn.distribution.docker_archive`).

``PATH:REF`` splits at the first ``:`` as skopeo and umoci do, so a ref name may hold
colons (``localhost/app:latest``). Every argument is checked here, before a byte is fetched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.errors import TransportError
from ..image.layout import ImageLayout, parse_oci_ref
from ..image.reference import Reference
from ..image.reference import parse as parse_reference
from .client import RegistryClient
from .transport import Destination, Source

TRANSPORTS = ("docker", "oci", "oci-archive", "docker-archive")


@dataclass(frozen=True)
class Endpoint:
    """A parsed transport string.

    Attributes:
        transport: ``docker``, ``oci``, ``oci-archive`` or ``docker-archive``.
        reference: for ``docker``, the :class:`~ocilearn.image.reference.Reference`.
        path: for the other transports, the file system path.
        ref: for ``oci`` / ``oci-archive``, the ref name (image-layout.md grammar) or
            ``None``; for ``docker-archive``, the image reference inside the archive, or
            ``@N`` (the N-th image), or ``None``.
    """

    transport: str
    reference: Reference | None = None
    path: Path | None = None
    ref: str | None = None

    def __str__(self) -> str:
        if self.transport == "docker":
            return f"docker://{self.reference}"
        return f"{self.transport}:{self.path}" + (f":{self.ref}" if self.ref else "")


def parse_transport(text: str) -> Endpoint:
    """Parse ``docker://REF``, ``oci:PATH[:REF]``, ``oci-archive:PATH[:REF]`` or
    ``docker-archive:PATH[:REF]``; PATH and REF split at the first ``:``.

    Raises:
        TransportError: an unknown transport or an empty path; InvalidReference: a bad
        registry or docker-archive REF; InvalidRefName: a ref name outside image-layout.md's
        grammar; LayoutError: an empty ref after the ``:``.
    """
    if text.startswith("docker://"):
        return Endpoint("docker", reference=parse_reference(text[len("docker://"):]))
    for name in ("oci", "oci-archive"):
        if text.startswith(name + ":"):
            path, ref = parse_oci_ref(text[len(name) + 1:], name, prefixed=True)
            if not path:
                raise TransportError(f"{text!r}: {name}: needs a path ({name}:PATH[:REF])")
            return Endpoint(name, path=Path(path), ref=ref)
    if text.startswith("docker-archive:"):
        path, sep, ref = text[len("docker-archive:"):].partition(":")  # skopeo splits at the first ':'
        if not path:
            raise TransportError(f"{text!r}: docker-archive: needs a path (docker-archive:PATH[:REF])")
        if sep and not ref:
            raise TransportError(f"{text!r}: empty reference after ':' (drop the ':' or name one)")
        if ref and not ref.startswith("@"):
            parse_reference(ref)  # validate
        return Endpoint("docker-archive", path=Path(path), ref=ref or None)
    raise TransportError(
        f"{text!r}: unknown transport; expected docker://REF, oci:PATH[:REF], oci-archive:PATH[:REF] "
        "or docker-archive:PATH[:REF]"
    )


def _client(ep: Endpoint, client, creds, authfile, tls_verify, ca_bundle, client_options) -> RegistryClient:
    assert ep.reference is not None
    return client or RegistryClient(ep.reference.registry, creds=creds, authfile=authfile, tls_verify=tls_verify,
                                    ca_bundle=ca_bundle, **(client_options or {}))


def open_source(ep: Endpoint, *, creds=None, authfile=None, tls_verify: bool = True, ca_bundle=None,
                client: RegistryClient | None = None, client_options: dict | None = None) -> Source:
    """A :class:`~ocilearn.distribution.transport.Source` for a parsed endpoint
    (``client_options``: more keyword arguments for a
    :class:`~ocilearn.distribution.client.RegistryClient` made here)."""
    if ep.transport == "docker":
        from .registry import RegistrySource

        assert ep.reference is not None
        return RegistrySource(_client(ep, client, creds, authfile, tls_verify, ca_bundle, client_options), ep.reference)
    assert ep.path is not None
    if ep.transport == "oci":
        from .oci_layout import LayoutSource

        return LayoutSource(ImageLayout.open(ep.path), ep.ref)
    if ep.transport == "oci-archive":
        from .oci_archive import OciArchiveSource

        return OciArchiveSource(ep.path, ep.ref)
    from .docker_archive import ArchiveSource

    return ArchiveSource(ep.path, ep.ref)


def open_destination(ep: Endpoint, *, creds=None, authfile=None, tls_verify: bool = True, ca_bundle=None,
                     client: RegistryClient | None = None, chunk_size: int | None = None,
                     archive_form: str = "legacy", client_options: dict | None = None) -> Destination:
    """A :class:`~ocilearn.distribution.transport.Destination` for a parsed endpoint
    (``client_options`` as for :func:`open_source`)."""
    if ep.transport == "docker":
        from .registry import RegistryDest

        assert ep.reference is not None
        return RegistryDest(_client(ep, client, creds, authfile, tls_verify, ca_bundle, client_options), ep.reference, chunk_size)
    assert ep.path is not None
    if ep.transport == "oci":
        from .oci_layout import LayoutDest

        return LayoutDest(ep.path, ep.ref)
    if ep.transport == "oci-archive":
        from .oci_archive import OciArchiveDest

        return OciArchiveDest(ep.path, ep.ref)
    from .docker_archive import ArchiveDest

    return ArchiveDest(ep.path, ep.ref, archive_form)


__all__ = ["Endpoint", "parse_transport", "open_source", "open_destination", "TRANSPORTS"]
