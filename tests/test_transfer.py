"""Copy through faults injected between ocilearn and a real registry; platform choice
through the registry (platform selection with variants); SIGKILL at random points of a pull."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO
from registry_helpers import Fault, FaultProxy, layout_blobs

from ocilearn.core.errors import DigestMismatch, PlatformNotFound, RegistryError
from ocilearn.distribution import copy as transfer
from ocilearn.distribution.client import RegistryClient
from ocilearn.image.digest import Digest
from ocilearn.image.layout import ImageLayout
from ocilearn.image.model import dumps

pytestmark = pytest.mark.network

BUSYBOX = "sha256:3063d847deaaedea1de7a313e9e38508643d028f52fe8c3c6b002fd9a9a56eb6"
LAYER = "sha256:3db1b4243825b57b84c5a6499229446c6d0cb351d7de177ca882008ae819c41e"
CONFIG = "sha256:650a03fbde977a66237da06bcd5e27a9ccf5c661d833128d18f038a64620c3fe"


@pytest.fixture
def proxy(plain_registry):
    p = FaultProxy(plain_registry.host)
    yield p
    p.close()


def fast_client(host: str) -> RegistryClient:
    return RegistryClient(host, backoff=0.01, use_stored_credentials=False)


def pull_via(proxy, dest, **kw):
    return transfer.copy(f"docker://{proxy.host}/busybox:latest", f"oci:{dest}:latest", src_client=fast_client(proxy.host), **kw)


def assert_clean(dest, complete: bool) -> None:
    lay = ImageLayout(dest)
    report = lay.fsck()
    assert report.ok, str(report)
    if complete:
        assert str(lay.refs()["latest"].digest) == BUSYBOX
        assert {LAYER, CONFIG, BUSYBOX} <= layout_blobs(dest)
    else:
        assert lay.refs() == {}


def test_fault_connection_reset_mid_blob_resumes_with_range(proxy, tmp_path):
    proxy.faults = [Fault("reset", path=LAYER)]
    r = pull_via(proxy, tmp_path / "o")
    assert_clean(tmp_path / "o", complete=True)
    gets = [e for e in proxy.log if LAYER in e.path]
    assert len(gets) == 2
    assert "Range" not in gets[0].headers and gets[1].headers["Range"].startswith("bytes=") and gets[1].status == 206
    offset = int(gets[1].headers["Range"][6:-1])
    assert 0 < offset < 1089189
    assert any("broken after" in e.note for e in r.exchanges)


def test_fault_429_with_retry_after_is_honoured(proxy, tmp_path):
    proxy.faults = [Fault("429", path="/manifests/latest", retry_after="1")]
    t = time.monotonic()
    pull_via(proxy, tmp_path / "o")
    assert time.monotonic() - t >= 1.0
    assert [e.status for e in proxy.log if e.path.endswith("/manifests/latest")] == [429, 200]
    assert_clean(tmp_path / "o", complete=True)


def test_fault_transient_500s_are_retried(proxy, tmp_path):
    proxy.faults = [Fault("500", path=CONFIG, times=2), Fault("500", path="/v2/$", times=1)]
    pull_via(proxy, tmp_path / "o")
    assert [e.status for e in proxy.log if CONFIG in e.path] == [500, 500, 200]
    assert_clean(tmp_path / "o", complete=True)


def test_fault_persistent_500_fails_clearly(proxy, tmp_path):
    proxy.faults = [Fault("500", path=LAYER, times=100)]
    with pytest.raises(RegistryError, match=f"blob {LAYER}: HTTP 500"):
        pull_via(proxy, tmp_path / "o")
    assert_clean(tmp_path / "o", complete=False)
    assert LAYER not in layout_blobs(tmp_path / "o")


def test_fault_corrupted_blob_is_never_stored(proxy, tmp_path):
    proxy.faults = [Fault("corrupt", path=LAYER)]
    with pytest.raises(DigestMismatch, match=LAYER):
        pull_via(proxy, tmp_path / "o")
    assert_clean(tmp_path / "o", complete=False)
    assert LAYER not in layout_blobs(tmp_path / "o")
    assert not [p for p in (tmp_path / "o" / "blobs" / "sha256").iterdir() if p.name.startswith(".tmp")]
    # the next pull (no fault) completes and reuses the config already verified
    r = pull_via(proxy, tmp_path / "o")
    assert_clean(tmp_path / "o", complete=True)
    assert [str(d) for d in r.copied] == [LAYER]


def test_fault_html_page_instead_of_manifest(proxy, tmp_path):
    proxy.faults = [Fault("html", path="/manifests/latest")]
    with pytest.raises(RegistryError, match="got text/html"):
        pull_via(proxy, tmp_path / "o")
    assert not (tmp_path / "o").exists() or ImageLayout(tmp_path / "o").refs() == {}


def test_fault_no_docker_content_digest_from_real_registry(proxy, tmp_path):
    proxy.faults = [Fault("nodigest", path="/manifests/", times=10)]
    r = pull_via(proxy, tmp_path / "o")
    assert str(r.digest) == BUSYBOX
    assert all("Docker-Content-Digest" not in e.response_headers for e in r.exchanges if "/manifests/" in e.url)
    assert_clean(tmp_path / "o", complete=True)


# ------------------------------------------------------------------ platform selection through the registry


def _platform_image(layout: ImageLayout, arch: str, variant: str | None) -> dict:
    cfg = dumps({"architecture": arch, "os": "linux", **({"variant": variant} if variant else {}),
                 "rootfs": {"type": "layers", "diff_ids": []}})
    cd = layout.put_json("application/vnd.oci.image.config.v1+json", cfg)
    man = dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cd.to_dict(), "layers": []})
    md = layout.put_json("application/vnd.oci.image.manifest.v1+json", man)
    plat = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
    return {**md.to_dict(), "platform": plat}


def _push_index(layout: ImageLayout, entries: list[dict], tag: str, host: str) -> None:
    idx = dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries})
    d = layout.put_json("application/vnd.oci.image.index.v1+json", idx)
    layout.add_ref(tag, d)
    transfer.copy(f"oci:{layout.path}:{tag}", f"docker://{host}/c18:{tag}", all_platforms=True)


def test_platform_variant_choice_through_registry(plain_registry, tmp_path):
    lay = ImageLayout.init(tmp_path / "src")
    one = {k: _platform_image(lay, *k) for k in [("arm", "v7"), ("arm", "v6"), ("arm", "v5"), ("arm64", None), ("amd64", None)]}
    two = {k: _platform_image(lay, *k) for k in [("arm", None), ("arm64", "v8")]}
    host = plain_registry.host
    rng = random.Random(18)
    orders = [list(one)] + [rng.sample(list(one), len(one)) for _ in range(2)]
    for i, order in enumerate(orders):
        _push_index(lay, [one[k] for k in order], f"one-{i}", host)
    _push_index(lay, [two[k] for k in two], "two", host)
    _push_index(lay, [two[k] for k in reversed(list(two))], "two-rev", host)

    def chosen(tag: str, platform: str) -> str:
        return str(transfer.copy(f"docker://{host}/c18:{tag}", f"oci:{tmp_path / 'out'}:x", platform=platform).digest)

    for i in range(len(orders)):
        tag = f"one-{i}"
        assert chosen(tag, "linux/arm/v6") == one[("arm", "v6")]["digest"]
        assert chosen(tag, "linux/arm/v7") == one[("arm", "v7")]["digest"]
        assert chosen(tag, "linux/arm/v5") == one[("arm", "v5")]["digest"]
        assert chosen(tag, "linux/arm64") == one[("arm64", None)]["digest"]
        assert chosen(tag, "linux/arm64/v8") == one[("arm64", None)]["digest"]
        with pytest.raises(PlatformNotFound):
            chosen(tag, "linux/arm/v8")
    for tag in ("two", "two-rev"):
        assert chosen(tag, "linux/arm64/v8") == two[("arm64", "v8")]["digest"]
        assert chosen(tag, "linux/arm64") == two[("arm64", "v8")]["digest"]
        assert chosen(tag, "linux/arm/v7") == two[("arm", None)]["digest"]  # no variant: last resort
    assert ImageLayout(tmp_path / "out").fsck().ok


# ------------------------------------------------------------------ SIGKILL at random points

_PULL = """
import sys
from ocilearn.distribution import copy as transfer
transfer.copy(sys.argv[1], sys.argv[2], workers=4)
"""


def test_sigkill_at_random_points_leaves_layout_clean(plain_registry, tmp_path):
    """20 pulls of debian (3 layers, 51 MB) killed with SIGKILL after a random delay; after
    each, fsck is clean and a second pull completes reusing every blob already stored."""
    src = f"docker://{plain_registry.host}/debian:bookworm"
    first = transfer.copy(src, f"oci:{tmp_path / 'ref'}:bookworm")
    needed = {str(first.digest)} | {str(d) for d in first.copied}
    rng = random.Random(int(os.environ.get("OCILEARN_KILL_SEED", "20")))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # how long a whole pull takes in a fresh process (imports included): kills fall inside it
    t = time.monotonic()
    subprocess.run([sys.executable, "-c", _PULL, src, f"oci:{tmp_path / 'timed'}:bookworm"], env=env, check=True)
    whole = time.monotonic() - t
    states = []
    for trial in range(20):
        dest = tmp_path / f"k{trial}"
        p = subprocess.Popen([sys.executable, "-c", _PULL, src, f"oci:{dest}:bookworm"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.95) * whole)
        p.send_signal(signal.SIGKILL)
        p.wait()
        if not (dest / "oci-layout").exists():
            states.append("before layout")
            continue
        lay = ImageLayout(dest)
        report = lay.fsck()
        assert report.ok, f"trial {trial}: {report}"
        refs = lay.refs()
        assert refs in ({}, {"bookworm": refs.get("bookworm")})
        if refs:
            assert str(refs["bookworm"].digest) == str(first.digest)
        present = layout_blobs(dest) & needed
        for d in present:  # every visible blob is complete and verifies
            assert Digest.of_file(lay.blob_path(d)) == Digest.parse(d)
        again = transfer.copy(src, f"oci:{dest}:bookworm")
        assert str(again.digest) == str(first.digest)
        assert {str(d) for d in again.skipped} == present - {str(first.digest)}
        assert ImageLayout(dest).fsck().ok
        states.append(f"{len(present)} blobs, ref={'yes' if refs else 'no'}")
    # the random points covered more than one phase of the pull
    assert len(set(states)) >= 2, states
    print("kill states:", json.dumps(states))


def test_half_made_layout_from_a_killed_init_is_completed(tmp_path):
    """A kill inside ImageLayout.init leaves empty blobs/ dirs, or oci-layout without
    index.json; the next copy completes the layout instead of refusing it."""
    from ocilearn.distribution.oci_layout import LayoutDest

    (tmp_path / "a" / "blobs" / "sha256").mkdir(parents=True)
    LayoutDest(tmp_path / "a", "x")
    (tmp_path / "b" / "blobs" / "sha256").mkdir(parents=True)
    (tmp_path / "b" / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    LayoutDest(tmp_path / "b", "x")
    for d in ("a", "b"):
        lay = ImageLayout(tmp_path / d)
        assert lay.refs() == {} and lay.fsck().ok
    # a directory with other content is never touched
    (tmp_path / "c" / "blobs").mkdir(parents=True)
    (tmp_path / "c" / "notes.txt").write_text("mine")
    from ocilearn.core.errors import LayoutError

    with pytest.raises(LayoutError, match="not an empty directory"):
        LayoutDest(tmp_path / "c", "x")
    assert (tmp_path / "c" / "notes.txt").read_text() == "mine"


def test_cli_copy_progress_quiet_and_explain(plain_registry, tmp_path, capfd, monkeypatch):
    """``ocilearn copy`` prints progress bars (tqdm) on a terminal and a summary on stderr,
    the digest on stdout; with stderr not a terminal (a pipe, a log) only the summary;
    ``--quiet`` prints only the digest; ``--explain`` lists the HTTP exchanges with their
    curl/skopeo equivalents."""
    import sys

    from ocilearn.cli import run as cli

    src = f"docker://{plain_registry.host}/busybox:latest"
    assert cli(["copy", src, f"oci:{tmp_path / 'n'}:latest"]) == 0  # stderr is a file here
    out, err = capfd.readouterr()
    assert out.strip() == BUSYBOX
    assert err.splitlines() == [line for line in err.splitlines() if line.startswith("copied 2 blobs (1090250 bytes)")], err
    assert "\r" not in err and "%|" not in err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # as on a terminal
    assert cli(["copy", src, f"oci:{tmp_path / 'a'}:latest"]) == 0
    out, err = capfd.readouterr()
    monkeypatch.undo()
    assert out.strip() == BUSYBOX
    assert "copying 2 blobs" in err and "100%" in err and "copied 2 blobs (1090250 bytes)" in err
    assert cli(["copy", "--quiet", src, f"oci:{tmp_path / 'b'}:latest"]) == 0
    out, err = capfd.readouterr()
    assert out.strip() == BUSYBOX and err == ""
    assert cli(["--explain", "copy", "-q", src, f"oci:{tmp_path / 'c'}:latest"]) == 0
    out, err = capfd.readouterr()
    assert f"[registry] GET /v2/busybox/blobs/{LAYER}: 200" in err
    assert f"skopeo copy --preserve-digests {src} oci:{tmp_path / 'c'}:latest" in err
    assert "[layout] add ref: latest -> " + BUSYBOX in err
    # skopeo's platform flags
    multi = f"docker://{plain_registry.host}/multiarch:latest"
    assert cli(["copy", "-q", "--override-arch", "arm64", multi, f"oci:{tmp_path / 'e'}:latest"]) == 0
    assert capfd.readouterr().out.strip() == "sha256:3561140b3bd9db3d7298cd50f6c6db812212dd12508d03903963e1bd1f0e7450"
    assert cli(["copy", "-q", "--override-arch", "arm64", "--override-variant", "v8", multi, f"oci:{tmp_path / 'e'}:v8"]) == 0
    assert capfd.readouterr().out.strip() == "sha256:3561140b3bd9db3d7298cd50f6c6db812212dd12508d03903963e1bd1f0e7450"
    assert cli(["copy", "-q", "--all", multi, f"oci:{tmp_path / 'e'}:all"]) == 0
    assert capfd.readouterr().out.strip() == "sha256:0a33a5412940cee2bd78418c8523e18fdbc09561c78894328b53e64a7e177dab"
    assert cli(["copy", "-q", "--override-arch", "s390x", multi, f"oci:{tmp_path / 'e'}:none"]) == 1
    assert "no manifest for platform linux/s390x" in capfd.readouterr().err
    # the library: tags listing, and the exchange table as rows a notebook can show
    c = RegistryClient(plain_registry.host)
    assert c.tags("busybox") == ["latest"]
    r = transfer.copy(src, f"oci:{tmp_path / 'd'}:latest", src_client=c)
    rows = r.exchanges.rows()
    # this client pinged already (for tags): the copy's own exchanges start at the manifest
    assert [(x["method"], x["status"], x["note"]) for x in rows][:1] == [("GET", 200, "manifest")]
    assert {x["bytes"] for x in rows if LAYER in x["url"]} == {1089189}
    assert "<table class='ocilearn-exchanges'" in r.exchanges._repr_html_()
