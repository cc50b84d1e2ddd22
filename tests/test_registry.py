"""Registry client against scripted stub servers: WWW-Authenticate challenges (a comma
inside scope), credentials, secrets never shown, digest rules (unvalidated digests never
requested, Docker-Content-Digest optional), redirects (no Authorization to another host),
hostile bodies."""

from __future__ import annotations

import base64
import json
import os

import pytest
from registry_helpers import Stub, sha256, tiny_image

from ocilearn.core import explain
from ocilearn.core.errors import AuthError, DigestMismatch, InvalidDigest, InvalidDocument, RegistryError
from ocilearn.distribution import copy as transfer
from ocilearn.distribution.auth import Credentials, load_credentials, parse_challenges
from ocilearn.distribution.client import RegistryClient, redact_url
from ocilearn.image.layout import ImageLayout

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def serve_image(img: dict, repo: str = "test", manifest_headers: dict | None = None, with_digest: bool = True) -> dict:
    """Routes for a stub registry serving ``img`` under ``repo:latest``."""
    mh = {"Content-Type": OCI_MANIFEST}
    if with_digest:
        mh["Docker-Content-Digest"] = sha256(img["manifest"])
    mh.update(manifest_headers or {})
    routes = {
        ("GET", "/v2/"): (200, {"Content-Type": "application/json"}, b"{}"),
        ("GET", f"/v2/{repo}/manifests/latest"): (200, mh, img["manifest"]),
        ("HEAD", f"/v2/{repo}/manifests/latest"): (200, {**mh, "Content-Length": str(len(img["manifest"]))}, b""),
        ("GET", f"/v2/{repo}/manifests/{sha256(img['manifest'])}"): (200, mh, img["manifest"]),
    }
    for k in ("layer", "config"):
        routes[("GET", f"/v2/{repo}/blobs/{sha256(img[k])}")] = (200, {"Content-Type": "application/octet-stream"}, img[k])
    return routes


@pytest.fixture
def stub():
    servers = []

    def make(routes=None, bind="127.0.0.1"):
        s = Stub(routes, bind)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


# ------------------------------------------------------------------ challenges (RFC 7235; a comma inside scope)


def test_challenge_with_commas_and_spaces_in_scope():
    c = parse_challenges('Bearer realm="https://auth.example/token",service="reg.example",scope="repository:lib/app:pull,push"')
    assert len(c) == 1 and c[0].scheme == "bearer"
    assert c[0].params == {"realm": "https://auth.example/token", "service": "reg.example", "scope": "repository:lib/app:pull,push"}
    assert c[0].scopes == ["repository:lib/app:pull,push"]
    # (2) several scopes, space separated
    c = parse_challenges('Bearer realm="https://a/t",service="s",scope="repository:a:pull repository:b:pull"')
    assert c[0].scopes == ["repository:a:pull", "repository:b:pull"]
    # (3) error param added, parameters reordered
    c = parse_challenges('Bearer error="insufficient_scope", scope="repository:x/y:pull,push" ,service="svc", realm="https://r/t"')
    assert c[0].params == {"error": "insufficient_scope", "scope": "repository:x/y:pull,push", "service": "svc", "realm": "https://r/t"}
    # (4) two challenges in one header
    c = parse_challenges('Basic realm="x", Bearer realm="https://auth/t",service="svc"')
    assert [(x.scheme, x.params) for x in c] == [("basic", {"realm": "x"}), ("bearer", {"realm": "https://auth/t", "service": "svc"})]
    # (5) a realm whose query has a comma, and an escaped quote
    c = parse_challenges('Bearer realm="https://auth/t?a=1,2&b=\\"q\\"",service="svc"')
    assert c[0].params["realm"] == 'https://auth/t?a=1,2&b="q"' and c[0].params["service"] == "svc"
    # (6) unquoted token values, scheme in odd case
    c = parse_challenges("bEaReR realm=https://auth/t, service=reg.example, scope=repository:a:pull")
    assert c[0].scheme == "bearer"
    assert c[0].params == {"realm": "https://auth/t", "service": "reg.example", "scope": "repository:a:pull"}
    # token68 form
    c = parse_challenges("Negotiate abc==, Basic realm=\"r\"")
    assert [(x.scheme, x.params) for x in c] == [("negotiate", {"token68": "abc=="}), ("basic", {"realm": "r"})]


def test_token_server_receives_exact_scopes(stub):
    """A stub registry challenges with a comma'd scope (case 1) and two scopes (case 2);
    the stub token server must receive them intact, one ``scope`` parameter each."""
    seen: list[list[tuple[str, str]]] = []

    def token(req):
        from urllib.parse import parse_qsl, urlsplit

        seen.append(parse_qsl(urlsplit(req.path).query))
        return 200, {"Content-Type": "application/json"}, b'{"token": "tok-123", "expires_in": 300}'

    auth = stub({("GET", "/token"): token})
    realm = f"http://{auth.host}/token"
    img = tiny_image()
    challenge1 = f'Bearer realm="{realm}",service="reg.example",scope="repository:lib/app:pull,push"'
    challenge2 = f'Bearer realm="{realm}",service="reg.example",scope="repository:a:pull repository:b:pull"'

    def manifest(req, ch):
        if req.headers.get("Authorization") != "Bearer tok-123":
            return 401, {"WWW-Authenticate": ch}, b""
        return 200, {"Content-Type": OCI_MANIFEST}, img["manifest"]

    reg = stub({
        ("GET", "/v2/"): (200, {}, b"{}"),
        ("GET", "/v2/lib/app/manifests/latest"): lambda r: manifest(r, challenge1),
        ("GET", "/v2/a/manifests/latest"): lambda r: manifest(r, challenge2),
    })
    c = RegistryClient(reg.host, use_stored_credentials=False)
    assert str(c.get_manifest("lib/app", "latest").digest) == sha256(img["manifest"])
    scopes1 = [v for k, v in seen[0] if k == "scope"]
    assert ("service", "reg.example") in seen[0]
    assert "repository:lib/app:pull,push" in scopes1 and all("," not in s or s.endswith("pull,push") for s in scopes1)
    RegistryClient(reg.host, use_stored_credentials=False).get_manifest("a", "latest")  # fresh client: no cached token
    scopes2 = [v for k, v in seen[1] if k == "scope"]
    assert "repository:a:pull" in scopes2 and "repository:b:pull" in scopes2
    assert all(" " not in s for s in scopes2)  # one scope per parameter, never joined


# ------------------------------------------------------------------ credentials


def test_credentials_from_auth_files(tmp_path):
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"auths": {
        "quay.io": {"auth": base64.b64encode(b"alice:pw-quay").decode()},
        "quay.io/team": {"auth": base64.b64encode(b"bob:pw-team").decode()},
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"carol:pw-hub").decode()},
    }}))
    env = {"REGISTRY_AUTH_FILE": str(auth), "HOME": str(tmp_path)}
    assert load_credentials("quay.io", "other/app", env=env).username == "alice"
    assert load_credentials("quay.io", "team/app", env=env).username == "bob"  # longest match wins
    hub = load_credentials("docker.io", "library/busybox", env=env)
    assert (hub.username, hub.password) == ("carol", "pw-hub")  # index.docker.io alias
    assert load_credentials("ghcr.io", env=env) is None
    # Docker's config.json under $HOME, XDG containers auth.json first
    (tmp_path / ".docker").mkdir()
    (tmp_path / ".docker" / "config.json").write_text(json.dumps({"auths": {"ghcr.io": {"auth": base64.b64encode(b"dan:pw-gh").decode()}}}))
    assert load_credentials("ghcr.io", env={"HOME": str(tmp_path)}).username == "dan"
    run = tmp_path / "run"
    (run / "containers").mkdir(parents=True)
    (run / "containers" / "auth.json").write_text(json.dumps({"auths": {"ghcr.io": {"auth": base64.b64encode(b"eve:pw").decode()}}}))
    assert load_credentials("ghcr.io", env={"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(run)}).username == "eve"
    # explicit authfile only
    assert load_credentials("quay.io", authfile=auth, env={}).username == "alice"
    # a broken auth value: clear error, secret not echoed
    auth.write_text(json.dumps({"auths": {"quay.io": {"auth": "not-base64-S3CRET!"}}}))
    with pytest.raises(AuthError) as e:
        load_credentials("quay.io", authfile=auth, env={})
    assert "S3CRET" not in str(e.value) and "base64" in str(e.value)


def test_credential_helper(tmp_path):
    helper = tmp_path / "bin" / "docker-credential-ocitest"
    helper.parent.mkdir()
    helper.write_text('#!/bin/sh\nread server\n[ "$server" = "registry.example:5000" ] || { echo "credentials not found"; exit 1; }\n'
                      'echo \'{"ServerURL":"registry.example:5000","Username":"frank","Secret":"helper-secret"}\'\n')
    helper.chmod(0o755)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"credHelpers": {"registry.example:5000": "ocitest"}, "credsStore": "ocitest"}))
    env = {"PATH": f"{helper.parent}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    c = load_credentials("registry.example:5000", authfile=cfg, env=env)
    assert (c.username, c.password) == ("frank", "helper-secret")
    assert "helper-secret" not in repr(c) and "helper-secret" not in str(c)
    assert load_credentials("other.example", authfile=cfg, env=env) is None  # credsStore says not found


def test_secrets_never_in_reprs_logs_or_errors(stub):
    password = "pw-Zq81-never-shown"
    token = "tok-Xy77-never-shown"
    c = Credentials.parse(f"user:{password}")
    assert password not in repr(c) and password not in str(c)
    assert password not in redact_url(f"https://user:{password}@h/x?X-Amz-Signature={token}&a=1")
    assert token not in redact_url(f"https://h/x?X-Amz-Signature={token}&a=1")

    def token_ep(req):
        if req.headers.get("Authorization") != "Basic " + base64.b64encode(f"user:{password}".encode()).decode():
            return 401, {}, b""
        return 200, {"Content-Type": "application/json"}, json.dumps({"token": token}).encode()

    auth = stub({("GET", "/token"): token_ep})
    img = tiny_image()
    routes = serve_image(img)

    def guarded(inner):
        def h(req):
            if req.headers.get("Authorization") != f"Bearer {token}":
                return 401, {"WWW-Authenticate": f'Bearer realm="http://{auth.host}/token",service="svc"'}, b""
            return inner
        return h

    reg = stub({k: (guarded(v) if k[1] != "/v2/" else (401, {"WWW-Authenticate": f'Bearer realm="http://{auth.host}/token",service="svc"'}, b""))
                for k, v in routes.items()})
    client = RegistryClient(reg.host, creds=c)
    with explain.recording() as steps:
        client.get_manifest("test", "latest")
    text = str(client.exchanges) + repr(client.exchanges.rows()) + client.exchanges._repr_html_() + str(steps) + repr(client)
    text += repr([s.data for s in steps])
    assert "Bearer <redacted>" in text and "Basic <redacted>" in text
    assert password not in text and token not in text
    assert base64.b64encode(f"user:{password}".encode()).decode() not in text
    # a wrong password: the error names the user, never the secret
    bad = RegistryClient(reg.host, creds=f"user:{password}-wrong")
    with pytest.raises(AuthError) as e:
        bad.get_manifest("test", "latest")
    assert "'user'" in str(e.value) and password not in str(e.value)


# ------------------------------------------------------------------ bad digests never requested

BAD_DIGESTS = [
    "sha256:../../../../tmp/ocilearn-victim/x",
    "sha256:" + "a" * 63,
    "sha256:" + "A" * 64,
    "sha256:abc/../def",
    "sha256:" + "a" * 60 + "%2F..",
    "sha256:" + "a" * 62 + "?x",
]


@pytest.mark.parametrize("bad", BAD_DIGESTS)
def test_bad_layer_digest_is_never_requested(stub, tmp_path, bad):
    img = tiny_image()
    m = json.loads(img["manifest"])
    m["layers"][0]["digest"] = bad
    raw = json.dumps(m).encode()
    reg = stub({
        ("GET", "/v2/"): (200, {}, b"{}"),
        ("GET", "/v2/test/manifests/latest"): (200, {"Content-Type": OCI_MANIFEST}, raw),
    })
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (sentinel / "keep").write_text("unchanged")
    with pytest.raises(InvalidDigest):
        transfer.copy(f"docker://{reg.host}/test:latest", f"oci:{tmp_path / 'out'}:latest")
    paths = [e.path for e in reg.log]
    assert paths == ["/v2/", "/v2/test/manifests/latest"]  # no blob request at all, bad or good
    assert not any("blobs" in p for p in paths)
    assert [p.name for p in sentinel.iterdir()] == ["keep"] and (sentinel / "keep").read_text() == "unchanged"
    out = tmp_path / "out"
    if out.exists():
        assert ImageLayout(out).refs() == {} and ImageLayout(out).fsck().ok


def test_bad_child_digest_in_index_is_never_requested(stub, tmp_path):
    idx = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": "sha256:../../v2/other/manifests/x", "size": 10,
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    reg = stub({("GET", "/v2/"): (200, {}, b"{}"),
                ("GET", "/v2/test/manifests/latest"): (200, {"Content-Type": "application/vnd.oci.image.index.v1+json"}, idx)})
    with pytest.raises(InvalidDigest):
        transfer.copy(f"docker://{reg.host}/test:latest", f"oci:{tmp_path / 'out'}:latest")
    assert [e.path for e in reg.log] == ["/v2/", "/v2/test/manifests/latest"]


# ------------------------------------------------------------------ Docker-Content-Digest optional


def test_missing_docker_content_digest(stub, tmp_path):
    img = tiny_image()
    reg = stub(serve_image(img, with_digest=False))
    r = transfer.copy(f"docker://{reg.host}/test:latest", f"oci:{tmp_path / 'o'}:latest")
    assert str(r.digest) == sha256(img["manifest"])
    c = RegistryClient(reg.host)
    assert str(c.resolve_digest("test", "latest")) == sha256(img["manifest"])  # HEAD had none: fell back to GET
    assert [(e.method, e.path) for e in reg.log[-2:]] == [("HEAD", "/v2/test/manifests/latest"), ("GET", "/v2/test/manifests/latest")]
    assert ImageLayout(tmp_path / "o").fsck().ok
    # every manifest request listed all four manifest/index types
    accepts = [e.headers.get("Accept", "") for e in reg.log if "/manifests/" in e.path]
    for t in ("application/vnd.oci.image.index.v1+json", OCI_MANIFEST, "application/vnd.docker.distribution.manifest.list.v2+json",
              "application/vnd.docker.distribution.manifest.v2+json"):
        assert all(t in a for a in accepts)


def test_wrong_docker_content_digest(stub, tmp_path):
    img = tiny_image()
    wrong = "sha256:" + "0" * 64
    reg = stub(serve_image(img, manifest_headers={"Docker-Content-Digest": wrong}))
    with pytest.raises(DigestMismatch) as e:
        transfer.copy(f"docker://{reg.host}/test:latest", f"oci:{tmp_path / 'o'}:latest")
    assert wrong in str(e.value) and sha256(img["manifest"]) in str(e.value)
    assert not any("/blobs/" in x.path for x in reg.log)
    # by the true digest: verified over the body, succeeds even though the header lies
    r = transfer.copy(f"docker://{reg.host}/test@{sha256(img['manifest'])}", f"oci:{tmp_path / 'p'}:latest")
    assert str(r.digest) == sha256(img["manifest"])
    # "by the header value": the body does not hash to it → mismatch
    reg.routes[("GET", f"/v2/test/manifests/{wrong}")] = reg.routes[("GET", "/v2/test/manifests/latest")]
    with pytest.raises(DigestMismatch):
        transfer.copy(f"docker://{reg.host}/test@{wrong}", f"oci:{tmp_path / 'q'}:latest")
    assert ImageLayout(tmp_path / "p").fsck().ok


# ------------------------------------------------------------------ redirects (CVE-2018-1000007: no Authorization to another host)


def _bearer_registry(stub, img, redirect_to):
    def token(req):
        return 200, {"Content-Type": "application/json"}, b'{"token": "t"}'

    auth = stub({("GET", "/token"): token})
    ch = {"WWW-Authenticate": f'Bearer realm="http://{auth.host}/token",service="svc"'}
    routes = serve_image(img)

    def need(inner):
        def h(req):
            if req.headers.get("Authorization") != "Bearer t":
                return 401, ch, b""
            return inner(req) if callable(inner) else inner
        return h

    layer_path = f"/v2/test/blobs/{sha256(img['layer'])}"
    routes[("GET", layer_path)] = lambda req: (307, {"Location": redirect_to(req)}, b"")
    return {k: need(v) for k, v in routes.items()}, layer_path


def test_authorization_not_forwarded_to_other_host(stub, tmp_path):
    img = tiny_image()

    def s3(req):
        if req.headers.get("Authorization"):
            return 400, {"Content-Type": "application/xml"}, b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>"
        return 200, {}, img["layer"]

    other = stub({("GET", "/bucket/blob"): s3}, bind="127.0.0.2")
    routes, _ = _bearer_registry(stub, img, lambda req: f"http://{other.host}/bucket/blob?X-Amz-Signature=abc&X-Amz-Expires=60")
    reg = stub(routes)
    r = transfer.copy(f"docker://{reg.host}/test:latest", f"oci:{tmp_path / 'o'}:latest")
    assert sha256(img["layer"]) in {str(d) for d in r.copied}
    assert [e.status for e in other.log] == [200]
    assert all("Authorization" not in e.headers for e in other.log)
    assert ImageLayout(tmp_path / "o").fsck().ok
    # the signature of the pre-signed URL is not in the exchange log
    assert "X-Amz-Signature=abc" not in str(r.exchanges)
    assert "X-Amz-Signature=<redacted>" in str(r.exchanges)


def test_same_host_redirect_keeps_authorization(stub, tmp_path):
    img = tiny_image()
    holder = {}
    routes, _ = _bearer_registry(stub, img, lambda req: f"http://{holder['host']}/storage/blob")

    def storage(req):
        if req.headers.get("Authorization") != "Bearer t":
            return 401, {}, b""
        return 200, {}, img["layer"]

    routes[("GET", "/storage/blob")] = storage
    reg = stub(routes)
    holder["host"] = reg.host
    transfer.copy(f"docker://{reg.host}/test:latest", f"oci:{tmp_path / 'o'}:latest")
    hits = [e for e in reg.log if e.path == "/storage/blob"]
    assert hits and hits[-1].status == 200 and hits[-1].headers.get("Authorization") == "Bearer t"


# ------------------------------------------------------------------ hostile bodies


def test_html_page_instead_of_manifest_is_a_clear_error(stub, tmp_path):
    page = b"<html><body>Please log in to the hotel wifi</body></html>"
    reg = stub({("GET", "/v2/"): (200, {}, b"{}"),
                ("GET", "/v2/test/manifests/latest"): (200, {"Content-Type": "text/html"}, page)})
    with pytest.raises(RegistryError, match=r"expected an image manifest or index, got text/html \(\d+ bytes\)"):
        transfer.copy(f"docker://{reg.host}/test:latest", f"oci:{tmp_path / 'o'}:latest")


def test_manifest_over_4_mib_refused_before_parsing(stub, tmp_path):
    big = b'{"schemaVersion":2,' + b" " * (4 * 1024 * 1024) + b'"layers":[]}'
    reg = stub({("GET", "/v2/"): (200, {}, b"{}"),
                ("GET", "/v2/test/manifests/latest"): (200, {"Content-Type": OCI_MANIFEST}, big)})
    with pytest.raises(InvalidDocument, match="4194304-byte limit"):
        RegistryClient(reg.host).get_manifest("test", "latest")


def test_plain_http_only_for_loopback_or_when_allowed():
    c = RegistryClient("registry.example.invalid:5000")
    assert c.allow_http is False
    assert RegistryClient("registry.example.invalid:5000", tls_verify=False).allow_http is True
    assert RegistryClient("127.0.0.1:5000").allow_http is True
    assert RegistryClient("localhost:5000").allow_http is True


def test_unreachable_redirect_target_error_hides_the_signature(stub, tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    dead = s.getsockname()[1]
    s.close()  # nothing listens there now
    img = tiny_image()
    routes = serve_image(img)
    routes[("GET", f"/v2/test/blobs/{sha256(img['layer'])}")] = (
        307, {"Location": f"http://127.0.0.2:{dead}/b?X-Amz-Signature=topsecret-sig&X-Amz-Expires=60"}, b"")
    reg = stub(routes)
    with pytest.raises(RegistryError) as e:
        transfer.copy(f"docker://{reg.host}/test:latest", f"oci:{tmp_path / 'o'}:latest",
                      src_client=RegistryClient(reg.host, backoff=0.01, use_stored_credentials=False))
    assert "topsecret-sig" not in str(e.value)
    assert ImageLayout(tmp_path / "o").fsck().ok and ImageLayout(tmp_path / "o").refs() == {}


def test_challenge_parser_never_crashes_and_round_trips_quoted_values():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=200))
    def anything(text):
        for c in parse_challenges(text):
            assert c.scheme and c.scheme == c.scheme.lower()

    anything()

    @settings(max_examples=200, deadline=None)
    @given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters='"\\'), max_size=60),
           st.text(alphabet="abcdefghijklmnopqrstuvwxyz:/, ", max_size=60))
    def quoted(realm, scope):
        c = parse_challenges(f'Bearer realm="{realm}",service="svc",scope="{scope}"')
        assert c[0].params == {"realm": realm, "service": "svc", "scope": scope}

    quoted()
