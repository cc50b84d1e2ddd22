"""Image reference grammar and Docker Hub normalisation (ocilearn.image.reference)."""

import pytest

from ocilearn.core.errors import InvalidReference
from ocilearn.distribution.endpoints import parse_transport
from ocilearn.image.reference import parse

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "text, registry, repository, tag, digest, api_host",
    [
        ("busybox", "docker.io", "library/busybox", "latest", None, "registry-1.docker.io"),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None, "registry-1.docker.io"),
        ("library/busybox", "docker.io", "library/busybox", "latest", None, "registry-1.docker.io"),
        ("index.docker.io/foo/bar:x", "docker.io", "foo/bar", "x", None, "registry-1.docker.io"),
        ("docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", None, "registry-1.docker.io"),
        ("quay.io/org/app:v1.2.3", "quay.io", "org/app", "v1.2.3", None, "quay.io"),
        ("ghcr.io/a/b/c/d:t", "ghcr.io", "a/b/c/d", "t", None, "ghcr.io"),
        ("127.0.0.1:5000/busybox:latest", "127.0.0.1:5000", "busybox", "latest", None, "127.0.0.1:5000"),
        ("localhost/app", "localhost", "app", "latest", None, "localhost"),
        ("localhost:5000/app@" + D, "localhost:5000", "app", None, D, "localhost:5000"),
        ("registry.redhat.io/ubi9/ubi:9.3@" + D, "registry.redhat.io", "ubi9/ubi", "9.3", D, "registry.redhat.io"),
        ("[::1]:5000/x/y:z", "[::1]:5000", "x/y", "z", None, "[::1]:5000"),
        ("my-reg.example.com:443/a__b/c-d.e:TAG_1", "my-reg.example.com:443", "a__b/c-d.e", "TAG_1", None, "my-reg.example.com:443"),
        ("Registry/app", "Registry", "app", "latest", None, "Registry"),  # uppercase first component = a host
    ],
)
def test_parse_normalises(text, registry, repository, tag, digest, api_host):
    r = parse(text)
    assert (r.registry, r.repository, r.tag, str(r.digest) if r.digest else None) == (registry, repository, tag, digest)
    assert r.api_host == api_host


def test_str_and_familiar_forms():
    r = parse("busybox")
    assert str(r) == "docker.io/library/busybox:latest"
    assert r.familiar() == "busybox:latest"
    assert r.reference == "latest"
    pinned = parse("127.0.0.1:5000/a/b:t@" + D)
    assert str(pinned) == f"127.0.0.1:5000/a/b:t@{D}"
    assert pinned.reference == D  # a digest wins over the tag in the URL
    assert pinned.is_loopback and not parse("quay.io/a").is_loopback
    assert parse("localhost:5000/x").is_loopback


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "empty"),
        ("Busybox", "lowercase"),
        ("quay.io/Org/app", "lowercase"),
        ("busybox:", "tag"),
        ("busybox:-bad", "tag"),
        ("busybox:" + "x" * 129, "tag"),
        ("a//b", "path component"),
        ("a/-b", "path component"),
        ("a/b_", "path component"),
        ("busybox@sha256:abc", "sha256 needs exactly 64"),
        ("busybox@sha256:" + "AB" * 32, "lowercase hex"),
        ("busybox@sha256:../../etc/passwd" + "a" * 40, "encoded part"),
        ("bad host!/x", "whitespace"),
        ("ex_ample.com:5000/x", "registry"),
        ("quay.io/" + "a" * 250, "longer than 255"),
    ],
)
def test_malformed_references_are_refused_with_a_reason(text, words):
    with pytest.raises(InvalidReference) as e:
        parse(text)
    assert words in str(e.value)


def test_transports():
    ep = parse_transport("docker://127.0.0.1:5000/busybox:latest")
    assert ep.transport == "docker" and ep.reference.repository == "busybox"
    ep = parse_transport("oci:/tmp/x:latest")
    assert (ep.transport, str(ep.path), ep.ref) == ("oci", "/tmp/x", "latest")
    ep = parse_transport("oci:/tmp/x")
    assert ep.ref is None
    ep = parse_transport("oci:/tmp/x:sha256:" + "ab" * 32)
    assert ep.ref == D
    ep = parse_transport("docker-archive:/tmp/a.tar:busybox:latest")  # first ':' splits, as in skopeo
    assert (str(ep.path), ep.ref) == ("/tmp/a.tar", "busybox:latest")
    ep = parse_transport("docker-archive:/tmp/a.tar:@1")
    assert ep.ref == "@1"
    from ocilearn.core.errors import TransportError

    with pytest.raises(TransportError, match="unknown transport"):
        parse_transport("containers-storage:busybox")
    with pytest.raises(TransportError, match="needs a path"):
        parse_transport("oci:")
