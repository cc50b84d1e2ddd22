"""Shared test fixtures.

Real components are never assumed: reference tools (skopeo, umoci, runc …) are installed by
``scripts/setup.sh`` from ``make test``; a test whose peer is missing *fails*
(:func:`require_tool`). The images the tests need are built by
``scripts/build-test-images.sh`` into ``.cache/images``. ``../shared/images`` and
``../shared/fixtures`` add coverage when present; when absent, the tests that use them are
skipped with a reason that names the missing folder (shown by ``-ra`` in the summary).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OCILEARN_SHARED", REPO.parent / "shared")).resolve()
CACHE = REPO / ".cache"
IMAGES = CACHE / "images"


def require_tool(name: str) -> str:
    """Path of a reference tool; fails the test (never skips) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"reference tool {name!r} is not installed: run `make test` (scripts/setup.sh installs it)")
    return path


def shared_path(*parts: str) -> Path:
    """A path under ../shared; skips (with the reason in the report) when absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"extra coverage unavailable: {p} is absent (../shared not laid beside this clone)")
    return p


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """subprocess.run with check=True, text output captured, and a readable failure."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    p = subprocess.run(cmd, **kw)
    if p.returncode != 0:
        raise AssertionError(f"command failed ({p.returncode}): {' '.join(map(str, cmd))}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def pytest_report_header(config):
    shared = "present" if (SHARED / "images").is_dir() else "ABSENT (tests using it are skipped, with reasons)"
    return [f"ocilearn: ../shared = {SHARED}: {shared}", f"ocilearn: built test images in {IMAGES}"]


def ocilearn_importtime(*args: str) -> subprocess.CompletedProcess:
    """``python -X importtime -m ocilearn ARGS`` in a clean environment (this checkout on
    PYTHONPATH): the command's output, with every import's time line on stderr."""
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "ocilearn", *args], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)


def assert_option_table(click_cmd, fast, arguments: list[str]) -> None:
    """The option table a click-free command line reads (``fast``: a module with OPTIONS,
    SHORT, DEFAULTS; :mod:`ocilearn.core.argv`) is the click command's: the same long and
    short options, keywords, flags, defaults (None for a required option), choices, and
    the ``arguments`` in order."""
    import click

    options = [p for p in click_cmd.params if isinstance(p, click.Option)]
    longs = {o: p for p in options for o in p.opts if o.startswith("--")}
    assert set(longs) == set(fast.OPTIONS)
    assert {o: next(x for x in p.opts if x.startswith("--")) for p in options for o in p.opts
            if not o.startswith("--")} == fast.SHORT
    for name, (key, kind) in fast.OPTIONS.items():
        p = longs[name]
        assert p.name == key, name
        assert p.is_flag == (kind == "flag"), name
        assert fast.DEFAULTS[key] == (False if p.is_flag else None if p.required else p.default), name
        if isinstance(p.type, click.Choice):
            assert tuple(p.type.choices) == kind, name
    assert [p.name for p in click_cmd.params if isinstance(p, click.Argument)] == arguments


def imported_modules(stderr: str) -> set[str]:
    """The modules an ``-X importtime`` run's stderr says were imported."""
    return {line.split("|")[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


@pytest.fixture
def is_root() -> bool:
    return os.geteuid() == 0


def built_image(name: str) -> Path:
    """A test image built by ``scripts/build-test-images.sh`` into ``.cache/images``
    (``make test`` builds them first). Fails, never skips, when it is missing."""
    p = IMAGES / name
    if not p.exists():
        pytest.fail(f"test image {p} is missing: run scripts/build-test-images.sh (make test does)")
    return p


UNPRIV_USER = "ocilearn-test"


@pytest.fixture(scope="session")
def unpriv_user() -> tuple[str, int, int]:
    """An unprivileged user made for the tests (``ocilearn-test``), created with useradd
    when missing. Returns ``(name, uid, gid)``. Needs root; as non-root the current user
    is already unprivileged and is returned."""
    import pwd

    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.getuid())
        return pw.pw_name, pw.pw_uid, pw.pw_gid
    try:
        pw = pwd.getpwnam(UNPRIV_USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", UNPRIV_USER], check=True)
        pw = pwd.getpwnam(UNPRIV_USER)
    # the user must reach the repository (its code and .venv's site-packages)
    for parent in [REPO, *REPO.parents]:
        if not os.stat(parent).st_mode & 0o001:
            pytest.fail(f"{parent} is not searchable by other users (mode {oct(os.stat(parent).st_mode & 0o777)}): "
                        f"the unprivileged test user {UNPRIV_USER} cannot reach the repository; clone it elsewhere "
                        "(e.g. under /work or /srv) or `chmod o+x` that directory")
    return pw.pw_name, pw.pw_uid, pw.pw_gid


def as_user(user: tuple[str, int, int], cmd: list[str], env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """Run ``cmd`` as the unprivileged ``user`` (from the :func:`unpriv_user` fixture) with
    ``setpriv``, in a clean environment (PATH, HOME, USER, LANG and ``env``). Returns the
    CompletedProcess, not checked."""
    import pwd

    name, uid, gid = user
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": pwd.getpwuid(uid).pw_dir,
        "USER": name,
        "LOGNAME": name,
        "LANG": "C.UTF-8",
    }
    if "OCILEARN_SHARED" in os.environ:
        base["OCILEARN_SHARED"] = os.environ["OCILEARN_SHARED"]
    base.update(env or {})
    full = ["env", "-i", *[f"{k}={v}" for k, v in base.items()], *cmd]
    if os.geteuid() == 0:
        full = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--", *full]
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(full, **kw)


# ---- image-spec JSON schemas (appended for the image-layout tests) ----


def oci_schema_validator(kind: str):
    """A jsonschema Draft-4 validator for one of the official image-spec schemas in
    ../shared/fixtures/image-spec-schema: ``kind`` is ``manifest``, ``index``, ``config``,
    ``layout`` or ``descriptor``. The schemas name each other by their ``id`` URIs (and
    sub-schemas carry ids of their own), so every file is registered under every base URI
    met. Skips (with the reason) when ../shared is absent."""
    import json

    import jsonschema
    import referencing
    from referencing.jsonschema import DRAFT4

    d = shared_path("fixtures", "image-spec-schema")
    files = {p.name: json.loads(p.read_text()) for p in sorted(d.glob("*.json"))}
    bases: set[str] = set()

    def ids(node):
        if isinstance(node, dict):
            if isinstance(node.get("id"), str):
                bases.add(node["id"].rsplit("/", 1)[0] + "/")
            for v in node.values():
                ids(v)
        elif isinstance(node, list):
            for v in node:
                ids(v)

    for content in files.values():
        ids(content)
    resources = [
        (base + name, referencing.Resource.from_contents(content, default_specification=DRAFT4))
        for base in sorted(bases)
        for name, content in files.items()
    ]
    registry = referencing.Registry().with_resources(resources)
    name = {
        "manifest": "image-manifest-schema.json",
        "index": "image-index-schema.json",
        "config": "config-schema.json",
        "layout": "image-layout-schema.json",
        "descriptor": "content-descriptor.json",
    }[kind]
    return jsonschema.Draft4Validator(files[name], registry=registry, format_checker=jsonschema.FormatChecker())


# --- registries for the distribution tests (issue 3; helpers in tests/registry_helpers.py) ---

# 127.0.0.1 ports for real registries in tests (5019: notebook tests; 5000-5009: course and bench);
# the first free one of each list is used, so two test runs on one machine do not collide
REGISTRY_PORTS = {"plain": [5010, 5013, 5016], "basic_tls": [5011, 5014, 5017], "token": [5012, 5015, 5018]}


@pytest.fixture(scope="session")
def registry_base(tmp_path_factory):
    """A temp dir for registry state; OCILEARN_REGISTRY_RUNDIR points under it."""
    return tmp_path_factory.mktemp("registries")


@pytest.fixture(scope="session")
def plain_registry(registry_base):
    """Debian's docker-registry on http://127.0.0.1:5010 holding the test images, each pushed
    by the reference peer ``skopeo copy`` (busybox, multiarch with --all, debian,
    debian-zstd). Stopped at the end of the session."""
    from registry_helpers import start_registry_any

    require_tool("docker-registry")
    require_tool("curl")  # scripts/start-registry.sh polls GET /v2/ with it
    skopeo = require_tool("skopeo")
    reg = start_registry_any(REGISTRY_PORTS["plain"], registry_base)
    try:
        for name, ref in (("busybox", "latest"), ("multiarch", "latest"), ("debian", "bookworm"), ("debian-zstd", "bookworm")):
            run([skopeo, "copy", "-q", "--all", "--preserve-digests", "--dest-tls-verify=false",
                 f"oci:{built_image(name)}:{ref}", f"docker://{reg.host}/{name}:{ref}"])
        yield reg
    finally:
        reg.stop()


# --- runtime (issue 5; helpers in tests/test_runtime_helpers.py) ---


@pytest.fixture(scope="session")
def busybox_base(tmp_path_factory):
    """One busybox bundle unpacked by ``umoci unpack`` (reference peer as test setup) for
    the session; the runtime tests' bundles point their absolute root.path at its rootfs."""
    from test_runtime_helpers import busybox_image, unpack_reference

    return unpack_reference(busybox_image(), tmp_path_factory.mktemp("rt-base") / "busybox")


@pytest.fixture
def runner(tmp_path):
    """A child-subreaper command runner with a private ``--root`` (tmp_path/state); every
    container left in it is force-deleted at teardown."""
    from test_runtime_helpers import Runner

    r = Runner(tmp_path / "state")
    try:
        yield r
    finally:
        for name in os.listdir(r.root) if os.path.isdir(r.root) else []:
            r.oc("delete", "--force", name, check=False)
        r.close()


@pytest.fixture
def request_cleanup():
    """Directories to remove after the test (one file system, as root made them)."""
    dirs: list[Path] = []
    yield dirs
    for d in dirs:
        subprocess.run(["rm", "-rf", "--one-file-system", str(d)], check=False)
