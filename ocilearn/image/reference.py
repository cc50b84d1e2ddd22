"""Image references: ``[registry[:port]/]repository[:tag][@digest]``.

The grammar is the one of github.com/distribution/reference (what ``docker pull`` and
``skopeo`` accept), summarised from distribution-spec "Pulling manifests" (``<name>``,
``<reference>``) and the reference package's grammar::

    reference      := name [ ":" tag ] [ "@" digest ]
    name           := [domain "/"] path-component ("/" path-component)*
    domain         := host [":" port]      host: DNS labels joined by ".", "localhost",
                                           or an IPv6 address in brackets
    path-component := [a-z0-9]+ (separator [a-z0-9]+)*
    separator      := "." | "_" | "__" | "-"+
    tag            := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest         := see image-spec descriptor.md "Digests" (checked by ocilearn.image.digest)

The first ``/``-separated component is a registry only when it looks like a host: it
contains ``.`` or ``:``, is ``localhost``, or has an uppercase letter. Otherwise the
reference is on Docker Hub: registry ``docker.io`` (API endpoint
``registry-1.docker.io``), and a one-component name gets the ``library/`` prefix
(``busybox`` → ``docker.io/library/busybox:latest``). With neither tag nor digest the tag
is ``latest``.

Reference command: ``skopeo inspect docker://REF`` parses the same strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.errors import InvalidDigest, InvalidReference
from .digest import Digest

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
NAME_MAX = 255  # distribution/reference: a name is at most 255 characters

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*\Z")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_LABEL = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?\Z")

_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference.

    Attributes:
        registry: the registry as named (``docker.io`` for Docker Hub, else
            ``host[:port]``, e.g. ``127.0.0.1:5000``, ``quay.io``).
        repository: the repository path inside the registry (``library/busybox``).
        tag: the tag (``latest`` by default), or ``None`` when only a digest was given.
        digest: a :class:`~ocilearn.image.digest.Digest` or ``None``.

    ``str(ref)`` gives the full form ``docker.io/library/busybox:latest``.
    """

    registry: str
    repository: str
    tag: str | None = "latest"
    digest: Digest | None = None

    @property
    def api_host(self) -> str:
        """The host[:port] the HTTP API is served on (``registry-1.docker.io`` for Hub)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def hostname(self) -> str:
        """The registry host without its port (``127.0.0.1``, ``[::1]``)."""
        host = self.api_host
        if host.startswith("["):
            return host[: host.index("]") + 1]
        return host.rsplit(":", 1)[0] if ":" in host else host

    @property
    def is_loopback(self) -> bool:
        """True for ``localhost``, ``127.0.0.0/8`` and ``[::1]`` registries (plain HTTP is
        then allowed without asking; see :mod:`ocilearn.distribution.client`)."""
        h = self.hostname
        return h in _LOOPBACK_HOSTS or bool(re.fullmatch(r"127\.\d+\.\d+\.\d+", h))

    @property
    def reference(self) -> str:
        """What goes into ``/v2/<name>/manifests/<reference>``: the digest if any, else the tag."""
        return str(self.digest) if self.digest is not None else (self.tag or "latest")

    @property
    def name(self) -> str:
        """``registry/repository`` (no tag, no digest)."""
        return f"{self.registry}/{self.repository}"

    def with_digest(self, digest: Digest | str) -> "Reference":
        """The same repository, pinned to ``digest`` (tag kept for display)."""
        return Reference(self.registry, self.repository, self.tag, Digest.parse(digest))

    def with_tag(self, tag: str) -> "Reference":
        """The same repository with another tag and no digest."""
        return parse(f"{self.name}:{tag}")

    def familiar(self) -> str:
        """The short form Docker prints: ``busybox:latest`` for Hub's ``library/``."""
        name = self.name
        if self.registry == DOCKER_HUB:
            name = self.repository.removeprefix("library/") if self.repository.count("/") == 1 and self.repository.startswith("library/") else self.repository
        out = name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def _split_domain(name: str) -> tuple[str | None, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        return first, rest
    return None, name


def parse(text: str, *, default_tag: str = "latest") -> Reference:
    """Parse an image reference (``busybox``, ``quay.io/org/app:1.2``,
    ``127.0.0.1:5000/busybox@sha256:…``) and normalise it.

    Args:
        text: the reference string (no transport prefix such as ``docker://``).
        default_tag: the tag used when neither tag nor digest is given.

    Returns:
        :class:`Reference`.

    Raises:
        InvalidReference: empty, bad host, a port outside 1–65535, uppercase repository,
            bad path component, bad tag, name over 255 characters, an invalid digest, or
            ``user:password@`` in front of the registry (the message says which, and never
            repeats what stood before that ``@``).
    """
    if not isinstance(text, str) or not text:
        raise InvalidReference("empty image reference (expected [registry/]repository[:tag][@digest])")
    before, at, after = text.partition("@")
    if at and "/" not in before and "/" in after and _HOST.match(after.split("/", 1)[0]):
        # 'user:password@host[:port]/repo': a URL's userinfo (a digest's '@' comes after
        # the repository, and what follows it is no host/path), so credentials typed into
        # the reference; the part before '@' is never echoed (it may be a password)
        raise InvalidReference(
            f"invalid reference {'<redacted>@' + after!r}: something like user:password@ stands before the "
            "registry; credentials do not belong in an image reference (use --creds USER:PASS or an auth file)"
        )
    if any(c.isspace() for c in text):
        raise InvalidReference(f"invalid reference {text!r}: contains whitespace")
    rest, at, digest_text = text.partition("@")
    digest = None
    if at:
        try:
            digest = Digest.parse(digest_text)
        except InvalidDigest as e:
            raise InvalidReference(f"invalid reference {text!r}: {e}") from None
    # a tag is after the last ':' that follows the last '/'
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    tag = None
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.match(tag):
            raise InvalidReference(
                f"invalid reference {text!r}: tag {tag!r} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
            )
    domain, path = _split_domain(rest)
    if domain is not None and not _HOST.match(domain):
        raise InvalidReference(f"invalid reference {text!r}: registry {domain!r} is not a valid host[:port]")
    if domain is not None and not domain.endswith("]") and ":" in domain:
        port = domain.rsplit(":", 1)[1]
        if len(port) > 5 or not 1 <= int(port) <= 65535:
            raise InvalidReference(f"invalid reference {text!r}: registry port {port} is out of range (1-65535)")
    if not path:
        raise InvalidReference(f"invalid reference {text!r}: no repository name")
    if path != path.lower():
        raise InvalidReference(f"invalid reference {text!r}: repository name {path!r} must be lowercase")
    for comp in path.split("/"):
        if not _COMPONENT.match(comp):
            raise InvalidReference(
                f"invalid reference {text!r}: path component {comp!r} must be lowercase letters and digits "
                "joined by '.', '_', '__' or '-'"
            )
    registry = domain or DOCKER_HUB
    if registry in _HUB_ALIASES:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if len(f"{registry}/{path}") > NAME_MAX:
        raise InvalidReference(f"invalid reference {text!r}: name is longer than {NAME_MAX} characters")
    if tag is None and digest is None:
        tag = default_tag
    return Reference(registry, path, tag, digest)
