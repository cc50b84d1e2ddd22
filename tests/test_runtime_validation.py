"""The OCI runtime-tools validation suite (the runtime-spec conformance tests,
github.com/opencontainers/runtime-tools ``validation/``) against runc and against ocilearn
on this host.

The suite is built offline by scripts/build-runtime-tools.sh (``make test-images``; the
fixture calls it too, a no-op when cached) from ../shared/peers. Each case is a TAP
program run from the source tree with ``RUNTIME=`` the runtime under test; a case *passes*
when it exits 0 with no ``not ok`` and no error report, and shows it ran: an ``ok`` line,
an empty plan (``1..0``: a lifecycle case whose checks all held) or, for a ``*_fail``
case (the runtime must refuse the config), nothing at all. A case that runs runtimetest
inside the container and prints nothing did not run it: not a pass (runc's README counts
the same way: 28 cases on this host).

Asserted: ocilearn passes at least as many cases as runc, every case runc passes except
those listed in KNOWN_RUNC_ONLY, no case passes because a feature was skipped (the
security features this host cannot apply must be refused, and seccomp must really have
denied the call), and every case that neither passes is explained in
docs/runtime-tools.md. The run's table is written to .cache/runtime-tools/results.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest
from conftest import REPO
from test_runtime_helpers import OCILEARN, needs_root

from ocilearn.runtime.labels import apparmor_enabled, selinux_enabled

SRC = REPO / ".cache" / "runtime-tools" / "src"
DOC = REPO / "docs" / "runtime-tools.md"

#: cases runc passes and ocilearn does not, with the reason (each is a known gap of the
#: runtime's process model, not of a security setting)
KNOWN_RUNC_ONLY = {
    "linux_ns_itype": "a container without a mount namespace (ocilearn always needs one to pivot_root)",
    "linux_ns_path": "joining an existing mount namespace by path (ocilearn still pivot_roots in it: EBUSY)",
}


def _runc() -> str:
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if os.access(f"{d}/runc", os.X_OK):
            return f"{d}/runc"
    raise AssertionError("runc is not installed: scripts/setup.sh test installs it")


def run_case(case: str, runtime: str, tmpdir: str, timeout: float = 180) -> dict:
    """Run ``validation/CASE/CASE.t`` with ``RUNTIME=runtime`` and its bundles under
    ``tmpdir``; returns ``{"passed", "rc", "ok", "not_ok", "out"}`` (stdout + stderr)."""
    env = {**os.environ, "RUNTIME": runtime, "TMPDIR": tmpdir}
    t0 = time.monotonic()
    try:
        p = subprocess.run([f"validation/{case}/{case}.t"], cwd=SRC, env=env, capture_output=True, text=True, timeout=timeout)
        out, rc = p.stdout + "\n#STDERR\n" + p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""), -1
    stdout = out.split("\n#STDERR\n")[0] if "\n#STDERR\n" in out else out
    ok = len(re.findall(r"^ok ", stdout, re.M))
    not_ok = len(re.findall(r"^not ok ", stdout, re.M))
    error_report = ok == 0 and '"error"' in stdout
    ran = ok > 0 or re.search(r"^1\.\.0$", stdout, re.M) is not None or (case.endswith("_fail") and not stdout.strip())
    return {"passed": rc == 0 and not_ok == 0 and not error_report and ran, "rc": rc, "ok": ok, "not_ok": not_ok, "out": out,
            "secs": round(time.monotonic() - t0, 1)}


def first_problem(r: dict) -> str:
    """A one-line reason from a case's output: the first failed test or runtime error."""
    for pat in (r"^not ok \d+ - (.+)$", r'level=error msg="(.+?)"$', r"^ocilearn(?:-runtime)?: error: (.+)$", r'"error": "(.+?)"', r"^(.*MUST.*)$"):
        m = re.search(pat, r["out"], re.M)
        if m:
            return m.group(1).replace("|", "/")[:160]
    return f"exit status {r['rc']}, no TAP result"


def _detach_mounts_under(top: str) -> None:
    """Lazily unmount every mount point below ``top``, deepest first: a case without a
    mount namespace (linux_ns_itype) makes runc mount /dev, /dev/pts … of its bundle in
    the host's mount namespace and leave them there."""
    from ocilearn.core import syscalls as sc

    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for m in sorted((p for p in points if p.startswith(top + "/")), key=len, reverse=True):
        try:
            sc.umount2(m, sc.MNT_DETACH)
        except OSError:
            pass


@pytest.fixture(scope="module")
def suite() -> dict:
    import shutil

    p = subprocess.run([str(REPO / "scripts" / "build-runtime-tools.sh")], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, f"building the runtime-tools suite failed:\n{p.stderr[-3000:]}"
    cases = sorted(d.name for d in (SRC / "validation").iterdir() if (d / f"{d.name}.t").is_file())
    assert len(cases) == 58, cases
    runc = _runc()
    import tempfile

    # searchable by everyone, like /tmp: cases with a user namespace run as host uid 1000+
    tmp = tempfile.mkdtemp(prefix="ocilearn-runtime-tools-")
    os.chmod(tmp, 0o755)
    try:
        results = {c: {"runc": run_case(c, runc, tmp), "ocilearn": run_case(c, OCILEARN, tmp)} for c in cases}
    finally:
        _detach_mounts_under(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    with open("/proc/self/mountinfo") as f:
        assert tmp not in f.read(), "mounts of the suite's bundles are left on the host"
    _write_table(results)
    return results


def _write_table(results: dict) -> None:
    lines = ["| case | runc | ocilearn | first problem (runc / ocilearn) |", "|---|---|---|---|"]
    for c, r in results.items():
        a, b = r["runc"], r["ocilearn"]
        why = " / ".join("" if x["passed"] else first_problem(x) for x in (a, b))
        lines.append(f"| {c} | {'pass' if a['passed'] else 'fail'} | {'pass' if b['passed'] else 'fail'} | {why} |")
    n = [sum(r[k]["passed"] for r in results.values()) for k in ("runc", "ocilearn")]
    lines.append(f"\nrunc passes {n[0]}, ocilearn {n[1]} of {len(results)}.")
    (SRC.parent / "results.md").write_text("\n".join(lines) + "\n")


@needs_root
def test_ocilearn_passes_at_least_as_many_cases_as_runc(suite):
    runc = {c for c, r in suite.items() if r["runc"]["passed"]}
    ours = {c for c, r in suite.items() if r["ocilearn"]["passed"]}
    missing = runc - ours - set(KNOWN_RUNC_ONLY)
    assert not missing, {c: first_problem(suite[c]["ocilearn"]) for c in missing}
    assert len(ours) >= len(runc), f"ocilearn {len(ours)} < runc {len(runc)}: see {SRC.parent / 'results.md'}"


@needs_root
def test_no_case_passes_because_a_feature_was_skipped(suite):
    """Security settings this host cannot apply are refused (the case fails, naming the
    field), and the seccomp case passes only because the filter really denied getcwd."""
    aa = suite["linux_process_apparmor_profile"]["ocilearn"]
    if not apparmor_enabled():
        assert not aa["passed"] and "process.apparmorProfile" in aa["out"], aa["out"][-2000:]
    label = suite["linux_mount_label"]["ocilearn"]
    if not selinux_enabled():
        assert not label["passed"] and "linux.mountLabel" in label["out"], label["out"][-2000:]
    sc = suite["linux_seccomp"]["ocilearn"]
    if sc["passed"]:
        # runtimetest inside the container could not read its working directory
        assert "getwd: operation not permitted" in sc["out"], sc["out"][-2000:]
        assert "getcwd did not return an error" not in sc["out"]
    for case in ("linux_cgroups_hugetlb", "linux_cgroups_relative_hugetlb", "linux_cgroups_network", "linux_cgroups_relative_network"):
        r = suite[case]["ocilearn"]
        assert not r["passed"] or "not mounted" not in r["out"], (case, r["out"][-2000:])


@needs_root
def test_cases_neither_passes_are_documented(suite):
    doc = DOC.read_text()
    neither = sorted(c for c, r in suite.items() if not r["runc"]["passed"] and not r["ocilearn"]["passed"])
    undocumented = [c for c in neither if f"`{c}`" not in doc]
    assert not undocumented, f"add these cases and why they fail to {DOC}: " + ", ".join(
        f"{c} ({first_problem(suite[c]['ocilearn'])})" for c in undocumented)


def test_documented_runc_only_cases_are_explained():
    doc = DOC.read_text()
    for c in KNOWN_RUNC_ONLY:
        assert f"`{c}`" in doc
