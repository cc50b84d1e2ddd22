"""The write-a-primitive checks of ocilearn.course.exercises: the instructors' solutions
(docs/instructors/solutions.md) pass, a wrong answer fails with a hint that does not give
the answer, and a NotImplementedError stub reports "not done yet"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ocilearn.course import exercises as ex

SOLUTIONS = Path(__file__).resolve().parents[1] / "docs" / "instructors" / "solutions.md"


@pytest.fixture(scope="module")
def sol() -> dict:
    ns: dict = {}
    for block in re.findall(r"```python\n(.*?)```", SOLUTIONS.read_text(), re.S):
        exec(block, ns)  # noqa: S102 - the repository's own solutions key
    return ns


def _stub(*_a):
    raise NotImplementedError("TODO")


CASES = [
    (ex.check_blob_digest, "verify_blob", lambda d, g: True, "one byte appended"),
    (ex.check_chain_id, "my_chain_ids", lambda ids: list(ids), "chain ID 1 differs"),
    (ex.check_whiteout, "my_whiteout", lambda r, e: None, "should be gone: ['etc/motd']"),
    (ex.check_process, "my_process", lambda c: {"args": c.get("Cmd") or []}, "'args' differs"),
    (ex.check_pivot_root, "pivot_into", lambda r: None, "still the old root"),
]


@pytest.mark.parametrize("check,name,wrong,hint", CASES, ids=[c[1] for c in CASES])
def test_solution_passes_wrong_fails_stub_not_done(sol, check, name, wrong, hint):
    good = check(sol[name])
    assert good.ok and good.done, good.text
    assert good.text.startswith("correct:")
    bad = check(wrong)
    assert not bad.ok and bad.done
    assert bad.text.startswith("not quite:") and hint in bad.text, bad.text
    stub = check(_stub)
    assert not stub.ok and not stub.done
    assert stub.text.startswith("not done yet:")


def test_hints_do_not_leak_the_answer(sol):
    """A wrong chain-ID answer's hint never contains a real chain ID."""
    import hashlib

    from ocilearn.image.digest import Digest
    from ocilearn.image.model import chain_ids

    stack = [f"sha256:{hashlib.sha256(bytes([i])).hexdigest()}" for i in range(3)]
    want = [str(c) for c in chain_ids([Digest.parse(d) for d in stack])]
    text = ex.check_chain_id(lambda ids: list(ids)).text
    assert not any(w.partition(":")[2] in text for w in want[1:])


def test_chain_id_checked_on_the_embedded_image(sol):
    """The notebook passes the embedded image's real diff IDs; a solution must match there too."""
    from ocilearn.image import embedded

    layout = embedded.open()
    diff_ids = [str(d) for d in layout.image_config(layout.resolve("latest")).diff_ids]
    assert diff_ids and all(d.startswith("sha256:") for d in diff_ids)
    res = ex.check_chain_id(sol["my_chain_ids"], diff_ids)
    assert res.ok and "2 layer stacks" in res.text, res.text


def test_odd_learner_functions_get_a_result_not_a_traceback():
    """A learner's function may return the wrong type, call sys.exit() or write bytes that
    are not text: the check answers "not quite", it never raises into the notebook."""
    import sys

    r = ex.check_chain_id(lambda ids: 5)
    assert (r.ok, r.done, r.text) == (False, True, "not quite: return a list of chain IDs (strings), not int")
    r = ex.check_blob_digest(lambda data, digest: sys.exit(3))
    assert (r.ok, r.done) == (False, True) and r.text.startswith("not quite: your function raised SystemExit: 3")

    def binary_whiteout(rootfs, entry):
        (Path(rootfs) / "etc" / "bin.dat").write_bytes(b"\xff\xfe")

    r = ex.check_whiteout(binary_whiteout)
    assert (r.ok, r.done) == (False, True) and r.text.startswith("not quite")


def test_pivot_root_check_stops_a_function_that_never_returns(monkeypatch):
    """A learner's function that loops is killed after PIVOT_ROOT_TIMEOUT and answered
    'not quite' — the check never hangs the notebook."""
    import time

    monkeypatch.setattr(ex, "PIVOT_ROOT_TIMEOUT", 1.0)
    t0 = time.monotonic()
    res = ex.check_pivot_root(lambda rootfs: time.sleep(3600))
    assert time.monotonic() - t0 < 10
    assert (res.ok, res.done) == (False, True), res
    assert "did not return within 1 s" in str(res)


def _chroot_only(rootfs):
    import os

    os.chroot(rootfs)
    os.chdir("/")


def _bind_and_chroot(rootfs):
    import os

    from ocilearn.core import syscalls as sc

    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)
    os.chroot(rootfs)
    os.chdir("/")


def _pivot_without_detach(rootfs):
    import os

    from ocilearn.core import syscalls as sc

    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)
    os.chdir(rootfs)
    sc.pivot_root(".", ".")
    os.chdir("/")


def _move_and_chroot(rootfs):
    import os

    from ocilearn.core import syscalls as sc

    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)
    os.chdir(rootfs)
    sc.mount(".", "/", None, sc.MS_MOVE)
    os.chroot(".")
    os.chdir("/")


@pytest.mark.parametrize("answer,hint", [
    (_move_and_chroot, "the host's old root is still mounted in this mount namespace"),
    (_chroot_only, "only as this process's root: chdir('..') from outside it climbs back"),
    (_bind_and_chroot, "only as this process's root: chdir('..') from outside it climbs back"),
    (_pivot_without_detach, "2 mounts are stacked on '/'"),
], ids=["move+chroot", "chroot", "bind+chroot", "pivot_root without detach"])
def test_pivot_root_check_refuses_near_misses(answer, hint):
    """A root that only this process sees (chroot), or a pivot_root that leaves the old root
    attached, shows the rootfs at '/' too: the check climbs out of a chroot with '..' and
    counts the mounts stacked on '/' in /proc/self/mountinfo, and answers 'not quite'."""
    res = ex.check_pivot_root(answer)
    assert (res.ok, res.done) == (False, True), res.text
    assert res.text.startswith("not quite:") and hint in res.text, res.text


def test_pivot_root_check_as_an_ordinary_user(sol, unpriv_user):
    """As an ordinary user (the check makes a user namespace first) the solution passes and
    the chroot near miss is refused, as for root."""
    import subprocess
    import sys

    from conftest import REPO, as_user

    code = (
        "import re, sys\n"
        f"sys.path.insert(0, {str(REPO / 'tests')!r})\n"
        "from ocilearn.course import exercises as ex\n"
        "import test_course_exercises as t\n"
        "ns = {}\n"
        "for block in re.findall(r'```python\\n(.*?)```', t.SOLUTIONS.read_text(), re.S):\n"
        "    exec(block, ns)\n"
        "print(ex.check_pivot_root(ns['pivot_into']).text)\n"
        "print(ex.check_pivot_root(t._chroot_only).text)\n"
    )
    p = as_user(unpriv_user, [sys.executable, "-c", code], env={"PYTHONPATH": str(REPO)}, cwd="/")
    assert p.returncode == 0, p.stderr
    good, chroot = p.stdout.splitlines()
    assert good.startswith("correct:"), p.stdout
    assert chroot.startswith("not quite:") and "climbs back" in chroot, p.stdout
    assert subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() == "0"


def test_pivot_root_check_keeps_the_host_files_out_of_reach(tmp_path):
    """As root the learner's function runs as nobody mapped to root in a user namespace: it
    cannot write a root-owned host directory through the old root (before detaching it),
    and the solution still passes that way."""
    import os

    target = tmp_path / "host-only"
    target.mkdir(mode=0o755)

    def writes_host(rootfs):
        from ocilearn.core import syscalls as sc

        sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)
        os.chdir(rootfs)
        os.mkdir("old")
        sc.pivot_root(".", "old")
        (Path("/old") / str(target).lstrip("/") / "WRITTEN").write_text("x")

    res = ex.check_pivot_root(writes_host)
    assert (res.ok, res.done) == (False, True) and "PermissionError" in res.text, res.text
    assert os.listdir(target) == []
