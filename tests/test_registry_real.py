"""ocilearn against a real registry (Debian's docker-registry 2.8 on 127.0.0.1), with
skopeo as the reference peer: pulls give skopeo's digests and blobs, pushes round-trip
through skopeo byte for byte, Basic auth over TLS and the Bearer token flow work end to
end."""

from __future__ import annotations

import filecmp
import json
import shutil

import pytest
from conftest import REGISTRY_PORTS, built_image, require_tool, run
from registry_helpers import TokenServer, htpasswd_file, layout_blobs, make_ca, start_registry_any, top_digest

from ocilearn.cli import run as cli
from ocilearn.core.errors import AuthError, RegistryError
from ocilearn.distribution import copy as transfer
from ocilearn.distribution.client import RegistryClient
from ocilearn.image.layout import ImageLayout

pytestmark = pytest.mark.network


def skopeo_pull(src: str, dest, *extra: str, tls: bool = False) -> None:
    run([require_tool("skopeo"), "copy", "-q", "--preserve-digests", *([] if tls else ["--src-tls-verify=false"]), *extra, src, f"oci:{dest}"])


@pytest.mark.parametrize(
    "name, tag, extra, platform, all_platforms",
    [
        ("busybox", "latest", [], None, False),
        ("debian", "bookworm", [], None, False),
        ("debian-zstd", "bookworm", [], None, False),
        ("multiarch", "latest", [], None, False),
        ("multiarch", "latest", ["--override-arch", "arm64"], "linux/arm64", False),
        ("multiarch", "latest", ["--all"], None, True),
    ],
    ids=["busybox", "debian", "debian-zstd", "multiarch-host", "multiarch-arm64", "multiarch-all"],
)
def test_pull_matches_skopeo(plain_registry, tmp_path, name, tag, extra, platform, all_platforms):
    src = f"docker://{plain_registry.host}/{name}:{tag}"
    ours, theirs = tmp_path / "ours", tmp_path / "skopeo"
    r = transfer.copy(src, f"oci:{ours}:{tag}", platform=platform, all_platforms=all_platforms)
    skopeo_pull(src, f"{theirs}:{tag}", *extra)
    assert str(r.digest) == top_digest(theirs, tag) == top_digest(ours, tag)
    assert layout_blobs(ours) == layout_blobs(theirs)
    assert ImageLayout(ours).fsck().ok
    if name == "multiarch" and platform == "linux/arm64":
        assert str(r.digest) == "sha256:3561140b3bd9db3d7298cd50f6c6db812212dd12508d03903963e1bd1f0e7450"
    if all_platforms:
        assert str(r.digest) == "sha256:0a33a5412940cee2bd78418c8523e18fdbc09561c78894328b53e64a7e177dab"
    # the exchange table of the pull: ping, manifest(s), one GET per blob, all 200
    blob_gets = [e for e in r.exchanges if "/blobs/" in e.url]
    assert {e.url.rsplit("/", 1)[1] for e in blob_gets} == {str(d) for d in r.copied}
    assert all(e.status == 200 for e in blob_gets)
    # a second pull transfers nothing: every blob is present and verifies
    again = transfer.copy(src, f"oci:{ours}:{tag}", platform=platform, all_platforms=all_platforms)
    assert again.copied == [] and set(again.skipped) == set(r.copied)


def test_format_oci_converts_docker_schema2(plain_registry, tmp_path):
    skopeo = require_tool("skopeo")
    run([skopeo, "copy", "-q", "--dest-tls-verify=false", "--format", "v2s2", f"oci:{built_image('busybox')}:latest",
         f"docker://{plain_registry.host}/busybox-v2s2:latest"])
    src = f"docker://{plain_registry.host}/busybox-v2s2:latest"
    kept = transfer.copy(src, f"oci:{tmp_path / 'kept'}:latest")
    assert kept.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    conv = transfer.copy(src, f"oci:{tmp_path / 'conv'}:latest", format="oci")
    assert conv.media_type == "application/vnd.oci.image.manifest.v1+json" and conv.digest != kept.digest
    m = json.loads(ImageLayout(tmp_path / "conv").read_blob(conv.digest))
    assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert m["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert [x["mediaType"] for x in m["layers"]] == ["application/vnd.oci.image.layer.v1.tar+gzip"]
    # the layer blob is untouched: same digest as skopeo's conversion and as the source
    skopeo_pull(src, f"{tmp_path / 'sk'}:latest")
    km = json.loads(ImageLayout(tmp_path / "kept").read_blob(kept.digest))
    assert [x["digest"] for x in m["layers"]] == [x["digest"] for x in km["layers"]]
    assert m["config"]["digest"] == km["config"]["digest"]
    assert set(x["digest"] for x in m["layers"]) <= layout_blobs(tmp_path / "sk")
    # CLI says why the digests change
    out = tmp_path / "cli"
    code = cli(["copy", "-q", "--format", "oci", src, f"oci:{out}:latest"])
    assert code == 0 and top_digest(out, "latest") == str(conv.digest)


def test_push_then_skopeo_pull_round_trips(plain_registry, tmp_path):
    """ocilearn pushes multiarch (--all, chunked uploads) and debian (monolithic); skopeo
    pulls them back; every blob is byte-identical to the source layout's."""
    for name, tag, chunk in (("multiarch", "latest", 256 * 1024), ("debian", "bookworm", None)):
        src = built_image(name)
        r = transfer.copy(f"oci:{src}:{tag}", f"docker://{plain_registry.host}/pushed-{name}:{tag}", all_platforms=True,
                          chunk_size=chunk)
        assert str(r.digest) == top_digest(src, tag)
        if chunk:
            assert any(e.method == "PATCH" and e.status == 202 for e in r.exchanges)
        back = tmp_path / f"back-{name}"
        skopeo_pull(f"docker://{plain_registry.host}/pushed-{name}:{tag}", f"{back}:{tag}", "--all")
        assert top_digest(back, tag) == top_digest(src, tag)
        reached = {str(d.digest) for d, _ in ImageLayout(src).walk()} - {top_digest(src, tag)} | {top_digest(src, tag)}
        assert reached <= layout_blobs(back)
        for d in reached:
            alg, hexd = d.split(":")
            assert filecmp.cmp(src / "blobs" / alg / hexd, back / "blobs" / alg / hexd, shallow=False), d
        # pushing again uploads nothing: every blob HEADs as present
        again = transfer.copy(f"oci:{src}:{tag}", f"docker://{plain_registry.host}/pushed-{name}:{tag}", all_platforms=True)
        assert again.copied == [] and not any(e.method in ("POST", "PATCH") for e in again.exchanges)


def test_cross_repository_mount(plain_registry, tmp_path):
    r = transfer.copy(f"docker://{plain_registry.host}/busybox:latest", f"docker://{plain_registry.host}/busybox-mounted:v1")
    mounts = [e for e in r.exchanges if e.note == "mount blob"]
    assert len(mounts) == 2 and all(e.status == 201 for e in mounts)
    assert not any(e.method in ("PATCH", "PUT") and "/blobs/uploads/" in e.url for e in r.exchanges)
    out = tmp_path / "m"
    skopeo_pull(f"docker://{plain_registry.host}/busybox-mounted:v1", f"{out}:v1")
    assert top_digest(out, "v1") == "sha256:3063d847deaaedea1de7a313e9e38508643d028f52fe8c3c6b002fd9a9a56eb6"


@pytest.fixture(scope="module")
def basic_tls_registry(registry_base):
    require_tool("openssl")
    require_tool("htpasswd")
    certs = make_ca(registry_base / "tls")
    hp = htpasswd_file(registry_base / "htpasswd", "ocilearn", "s3cret-basic")
    reg = start_registry_any(REGISTRY_PORTS["basic_tls"], registry_base, htpasswd=hp, tls=(certs["cert"], certs["key"]))
    certdir = registry_base / "certdir"
    certdir.mkdir(exist_ok=True)
    shutil.copy(certs["ca"], certdir / "ca.crt")
    try:
        run([require_tool("skopeo"), "copy", "-q", "--preserve-digests", "--dest-cert-dir", str(certdir), "--dest-creds", "ocilearn:s3cret-basic",
             f"oci:{built_image('busybox')}:latest", f"docker://{reg.host}/busybox:latest"])
        yield reg, certs, certdir
    finally:
        reg.stop()


def test_basic_auth_over_tls(basic_tls_registry, plain_registry, tmp_path):
    reg, certs, certdir = basic_tls_registry
    src = f"docker://{reg.host}/busybox:latest"
    r = transfer.copy(src, f"oci:{tmp_path / 'a'}:latest", src_creds="ocilearn:s3cret-basic", src_ca_bundle=certs["ca"])
    assert str(r.digest) == "sha256:3063d847deaaedea1de7a313e9e38508643d028f52fe8c3c6b002fd9a9a56eb6"
    assert r.exchanges[0].url.startswith("https://") and r.exchanges[0].status == 401
    assert r.exchanges[0].response_headers["WWW-Authenticate"].startswith("Basic")
    assert all(e.url.startswith("https://") for e in r.exchanges)
    assert "s3cret-basic" not in str(r.exchanges) + repr(r.exchanges.rows())
    # the same through the CLI, with an auth file and a cert dir
    authfile = tmp_path / "auth.json"
    import base64

    authfile.write_text(json.dumps({"auths": {reg.host: {"auth": base64.b64encode(b"ocilearn:s3cret-basic").decode()}}}))
    assert cli(["copy", "-q", "--authfile", str(authfile), "--src-cert-dir", str(certdir), src, f"oci:{tmp_path / 'b'}:latest"]) == 0
    assert top_digest(tmp_path / "b", "latest") == str(r.digest)
    # no credentials / a wrong password: clear AuthError without the secret
    with pytest.raises(AuthError, match="requires a user name and password"):
        transfer.copy(src, f"oci:{tmp_path / 'c'}:latest", src_client=RegistryClient(reg.host, ca_bundle=certs["ca"], use_stored_credentials=False))
    with pytest.raises(AuthError) as e:
        transfer.copy(src, f"oci:{tmp_path / 'c'}:latest", src_creds="ocilearn:wrong-pass-77", src_ca_bundle=certs["ca"])
    assert "401" in str(e.value) and "wrong-pass-77" not in str(e.value)
    # TLS verification is on by default: an unknown CA fails, and is never downgraded to HTTP
    with pytest.raises(RegistryError, match="CERTIFICATE_VERIFY_FAILED"):
        transfer.copy(src, f"oci:{tmp_path / 'd'}:latest", src_creds="ocilearn:s3cret-basic")
    # --src-tls-verify=false accepts it (still over https)
    r2 = transfer.copy(src, f"oci:{tmp_path / 'e'}:latest", src_creds="ocilearn:s3cret-basic", src_tls_verify=False)
    assert r2.digest == r.digest
    # a loopback registry is asked over plain HTTP first; this TLS server answers 400, so https is used
    assert (r2.exchanges[0].url, r2.exchanges[0].status) == (f"http://{reg.host}/v2/", 400)
    assert all(e.url.startswith("https://") for e in r2.exchanges[1:])
    # push with Basic auth, pulled back by skopeo
    transfer.copy(f"oci:{built_image('multiarch')}:latest", f"docker://{reg.host}/pushed:latest", all_platforms=True,
                  dest_creds="ocilearn:s3cret-basic", dest_ca_bundle=certs["ca"])
    run([require_tool("skopeo"), "copy", "-q", "--all", "--preserve-digests", "--src-cert-dir", str(certdir), "--src-creds",
         "ocilearn:s3cret-basic", f"docker://{reg.host}/pushed:latest", f"oci:{tmp_path / 'f'}:latest"])
    assert top_digest(tmp_path / "f", "latest") == "sha256:0a33a5412940cee2bd78418c8523e18fdbc09561c78894328b53e64a7e177dab"
    # registry to registry: plain HTTP source streamed into the TLS + Basic destination
    r3 = transfer.copy(f"docker://{plain_registry.host}/debian:bookworm", f"docker://{reg.host}/debian:bookworm",
                       dest_creds="ocilearn:s3cret-basic", dest_ca_bundle=certs["ca"])
    run([require_tool("skopeo"), "copy", "-q", "--preserve-digests", "--src-cert-dir", str(certdir), "--src-creds",
         "ocilearn:s3cret-basic", f"docker://{reg.host}/debian:bookworm", f"oci:{tmp_path / 'g'}:x"])
    assert top_digest(tmp_path / "g", "x") == str(r3.digest) == top_digest(built_image("debian"), "bookworm")
    assert layout_blobs(tmp_path / "g") <= layout_blobs(built_image("debian"))


@pytest.fixture(scope="module")
def token_registry(registry_base):
    require_tool("openssl")
    service = "ocilearn-token-registry"
    tok = TokenServer(registry_base / "token", service, {"tok-user": "tok-pass-9"}, anonymous_actions=["pull"])
    reg = start_registry_any(REGISTRY_PORTS["token"], registry_base, token=(tok.realm, tok.issuer, service, tok.cert))
    try:
        run([require_tool("skopeo"), "copy", "-q", "--all", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds",
             "tok-user:tok-pass-9", f"oci:{built_image('multiarch')}:latest", f"docker://{reg.host}/multiarch:latest"])
        yield reg, tok
    finally:
        reg.stop()
        tok.close()


def test_token_auth_end_to_end(token_registry, tmp_path):
    reg, tok = token_registry
    src = f"docker://{reg.host}/multiarch:latest"
    client = RegistryClient(reg.host, use_stored_credentials=False)
    before = tok.issued
    r = transfer.copy(src, f"oci:{tmp_path / 'a'}:latest", all_platforms=True, src_client=client)
    assert str(r.digest) == "sha256:0a33a5412940cee2bd78418c8523e18fdbc09561c78894328b53e64a7e177dab"
    notes = [(e.method, e.status, e.note) for e in r.exchanges]
    assert ("GET", 401, "ping") in notes and ("GET", 200, "token") in notes
    assert r.exchanges[1].response_headers.get("WWW-Authenticate", "").startswith("Bearer realm=") or any(
        e.status == 401 and "Bearer" in e.response_headers.get("WWW-Authenticate", "") for e in r.exchanges)
    # one anonymous token with the pull scope served every manifest and blob request (reuse until expiry)
    assert tok.issued - before == 1
    assert tok.requests[-1]["user"] is None and tok.requests[-1]["scopes"] == ["repository:multiarch:pull"]
    assert all(e.request_headers.get("Authorization") == "Bearer <redacted>" for e in r.exchanges if "/v2/multiarch/" in e.url)
    # an expired token is fetched again; a token the registry rejects (401) is refreshed
    for key in list(client._tokens):
        client._tokens[key] = (client._tokens[key][0], 0.0)
    client.get_manifest("multiarch", "latest")
    assert tok.issued - before == 2
    for key in list(client._tokens):
        client._tokens[key] = ("not-a-valid-jwt", 1e12)
    client.get_manifest("multiarch", "latest")
    assert tok.issued - before == 3
    # anonymous push is refused by the token server's grant (pull only) → the registry says 401
    with pytest.raises(AuthError):
        transfer.copy(f"oci:{built_image('busybox')}:latest", f"docker://{reg.host}/anon-push:latest",
                      dest_client=RegistryClient(reg.host, use_stored_credentials=False))
    # authenticated push (GET with Basic to the realm) then the OAuth2 POST form when GET is refused
    transfer.copy(f"oci:{built_image('busybox')}:latest", f"docker://{reg.host}/pushed:latest", dest_creds="tok-user:tok-pass-9")
    assert tok.requests[-1]["user"] == "tok-user" and "repository:pushed:pull,push" in tok.requests[-1]["scopes"]
    tok.require_post = True
    try:
        transfer.copy(f"oci:{built_image('busybox')}:latest", f"docker://{reg.host}/pushed-post:latest", dest_creds="tok-user:tok-pass-9")
    finally:
        tok.require_post = False
    assert tok.requests[-1]["method"] == "POST" and tok.requests[-1]["user"] == "tok-user"
    # Docker's identitytoken (an OAuth2 refresh token) from an auth file: POST grant_type=refresh_token
    tok.refresh_tokens["rt-Q93-secret"] = "tok-user"
    authfile = tmp_path / "config.json"
    authfile.write_text(json.dumps({"auths": {reg.host: {"identitytoken": "rt-Q93-secret"}}}))
    r4 = transfer.copy(f"oci:{built_image('busybox')}:latest", f"docker://{reg.host}/pushed-refresh:latest", authfile=authfile)
    last = tok.requests[-1]
    assert last["method"] == "POST" and ("grant_type", "refresh_token") in last["params"] and last["user"] == "tok-user"
    assert "rt-Q93-secret" not in str(r4.exchanges) + repr(r4.exchanges.rows())
    back = tmp_path / "back"
    run([require_tool("skopeo"), "copy", "-q", "--preserve-digests", "--src-tls-verify=false", f"docker://{reg.host}/pushed-post:latest",
         f"oci:{back}:latest"])
    assert top_digest(back, "latest") == "sha256:3063d847deaaedea1de7a313e9e38508643d028f52fe8c3c6b002fd9a9a56eb6"


def test_redirect_to_other_host_drops_bearer_token(token_registry, tmp_path):
    """The real token registry behind a proxy that answers the layer GET with a 307 to a
    "storage" host on 127.0.0.2 (pre-signed URL): the blob arrives, verified; the storage
    host never sees Authorization (it would answer 400 like S3); the registry did get the
    Bearer token."""
    from registry_helpers import Fault, FaultProxy

    reg, _tok = token_registry
    p = FaultProxy(reg.host)
    try:
        layer = "sha256:3db1b4243825b57b84c5a6499229446c6d0cb351d7de177ca882008ae819c41e"
        p.faults = [Fault("redirect", path=layer)]
        r = transfer.copy(f"docker://{p.host}/multiarch:latest", f"oci:{tmp_path / 'o'}:latest", platform="linux/amd64",
                          src_client=RegistryClient(p.host, use_stored_credentials=False))
        assert str(r.digest) == "sha256:3063d847deaaedea1de7a313e9e38508643d028f52fe8c3c6b002fd9a9a56eb6"
        assert [e.status for e in p.other_log] == [200]
        assert all("Authorization" not in e.headers and "authorization" not in e.headers for e in p.other_log)
        assert p.other_log[0].host.startswith("127.0.0.2:")
        to_registry = [e for e in p.log if layer in e.path]
        assert to_registry and to_registry[0].headers.get("Authorization", "").startswith("Bearer ")
        assert [e.status for e in r.exchanges if layer in e.url or "127.0.0.2" in e.url] == [307, 200]
        assert "s3cr3tsig" not in str(r.exchanges)
        assert ImageLayout(tmp_path / "o").fsck().ok
    finally:
        p.close()


@pytest.mark.parametrize("name, tag, extra, platform, all_platforms", [
    ("busybox", "latest", [], None, False),
    ("multiarch", "latest", ["--override-arch", "arm64"], "linux/arm64", False),
    ("multiarch", "latest", ["--all"], None, True),
    ("debian", "bookworm", [], None, False),
    ("debian-zstd", "bookworm", [], None, False),
    ("quirks/umoci-insert-no-trailer", "latest", [], None, False),
])
def test_shared_images_pull_like_skopeo(plain_registry, tmp_path, name, tag, extra, platform, all_platforms):
    """Extra coverage: ../shared/images pushed by skopeo, pulled by both tools."""
    from conftest import shared_path

    src_layout = shared_path("images", *name.split("/"))
    repo = "shared-" + name.replace("/", "-")
    run([require_tool("skopeo"), "copy", "-q", "--all", "--preserve-digests", "--dest-tls-verify=false",
         f"oci:{src_layout}:{tag}", f"docker://{plain_registry.host}/{repo}:{tag}"])
    src = f"docker://{plain_registry.host}/{repo}:{tag}"
    r = transfer.copy(src, f"oci:{tmp_path / 'ours'}:{tag}", platform=platform, all_platforms=all_platforms)
    skopeo_pull(src, f"{tmp_path / 'skopeo'}:{tag}", *extra)
    assert str(r.digest) == top_digest(tmp_path / "skopeo", tag)
    assert layout_blobs(tmp_path / "ours") == layout_blobs(tmp_path / "skopeo")
    assert ImageLayout(tmp_path / "ours").fsck().ok
    if all_platforms or platform is None and name != "multiarch":
        assert str(r.digest) == top_digest(src_layout, tag)
