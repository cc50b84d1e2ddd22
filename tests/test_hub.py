"""The workshop hub (``make hub``, scripts/hub/): JupyterHub on loopback, two learners.

One hub for the module, started with ``scripts/hub/start.sh`` (what ``make hub`` runs) on a
free port with a private state directory and two learners made for this test (their Unix
accounts are created by the hub's spawner at first login, and removed with ``userdel -r`` at
the end). Everything goes over HTTP as a browser or a learner's notebook would:

- login through the hub's form (GET ``/hub/login`` for the ``_xsrf`` cookie, POST it), wrong
  password and a name not on the list refused;
- each learner's server started through the hub's REST API with a token the learner made
  for themselves, running as their own Unix user, with their own copy of the course;
- notebook 04 executed in each learner's kernel over the server's websocket
  (scripts/hub/hubclient.py) and checked like tests/test_notebooks.py checks it (rootless);
- isolation: both learners make a container named ``box``; each lists only their own; the
  other's state root, home, work dir and processes are out of reach; a delete of the
  other's container fails with an error that names the permission;
- ``make hub-reset`` for one learner and for all; stopping the hub stops every server and
  deletes the learners' containers;
- in Chromium (Playwright, Debian's chromium as tests/test_browser.py does): the login page,
  then JupyterLab, *Run All* of notebook 00.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import REPO, require_tool
from test_notebooks import check_notebook, with_parameters

sys.path.insert(0, str(REPO / "scripts" / "hub"))
import hubclient  # noqa: E402
import workshop  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.root]

LEARNERS = ["olhub-ana", "olhub-ben"]
PASSWORD = "ws-" + secrets.token_urlsafe(12)
NB04 = REPO / "notebooks" / "04-runtime.ipynb"
NB00 = REPO / "notebooks" / "00-start-here.ipynb"


@pytest.fixture(scope="module")
def hub():
    """The hub of ``make hub`` on a free loopback port; at the end: stopped (SIGTERM), and
    the learners' processes, accounts, homes and /run/user dirs removed."""
    if os.geteuid() != 0:
        pytest.fail("the workshop hub runs as root (it starts each learner's server as that learner): run the suite as root")
    for n in LEARNERS:
        try:
            pw = pwd.getpwnam(n)
        except KeyError:
            continue
        if pw.pw_gecos != workshop.LEARNER_COMMENT:  # not made by the hub: never remove someone else's account
            pytest.fail(f"user {n} exists and was not made by the workshop hub: this test needs that name")
        workshop.remove_learner(n)  # left by an interrupted run
    tmp = Path(tempfile.mkdtemp(prefix="ocilearn-hub-"))
    h = hubclient.HubProcess(REPO, hubclient.free_ports(3), LEARNERS, PASSWORD, tmp / "state", tmp / "hub.log")
    h.tmp = tmp
    try:
        h.version = h.wait_ready()
        yield h
    finally:
        h.stop()
        for n in LEARNERS:
            workshop.remove_learner(n)
        shutil.rmtree(tmp, ignore_errors=True)


def _learner(hub, name) -> hubclient.Learner:
    return hubclient.Learner(hub.base, name, hubclient.login(hub.base, name, PASSWORD))


def _procs(uid: int) -> dict[int, str]:
    """PID → command line of every process of ``uid``."""
    out = {}
    for pid in workshop.learner_pids(uid):
        try:
            out[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            pass
    return out


def test_hub_state_and_login(hub):
    """State under HUB_STATE with mode 0700 (secrets 0600); the login form lets in exactly
    the listed learners with the workshop password."""
    state = hub.tmp / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for f in ("jupyterhub_cookie_secret", "proxy_token"):
        assert stat.S_IMODE((state / f).stat().st_mode) == 0o600, f
    assert (state / "jupyterhub.sqlite").stat().st_size > 0
    assert (state / "learners").read_text().split() == LEARNERS
    assert hub.version["version"].split(".")[0] >= "5"
    with pytest.raises(hubclient.HubError, match="HTTP 403"):
        hubclient.login(hub.base, LEARNERS[0], PASSWORD + "x")
    with pytest.raises(hubclient.HubError, match="HTTP 403"):
        hubclient.login(hub.base, "olhub-intruder", PASSWORD)
    s = hubclient.login(hub.base, LEARNERS[1], PASSWORD)
    r = s.get(f"{hub.base}/hub/api/user", headers={"X-XSRFToken": s.cookies["_xsrf"]}, timeout=30)
    assert r.status_code == 200 and r.json()["name"] == LEARNERS[1]
    with pytest.raises(KeyError):  # logging in does not make the account: spawning does
        pwd.getpwnam("olhub-intruder")


#: in a learner's kernel after notebook 04: a long-lived container named "box" in the
#: learner's default state root ($XDG_RUNTIME_DIR/ocilearn), made with the notebook's bundle
MAKE_BOX = """
_ = set_config(**{"process.args": ["/bin/sleep", "900"]})
_p = sh([*OCILEARN, "run", "--detach", "--bundle", str(bundle), "box"], quiet=True)
assert _p.returncode == 0, _p.stdout + _p.stderr
import json as _json, subprocess as _sp
print(_json.dumps({"list": _json.loads(_sp.run([*OCILEARN, "list", "--format", "json"], capture_output=True, text=True).stdout),
                   "root": os.path.join(os.environ["XDG_RUNTIME_DIR"], "ocilearn"), "uid": os.getuid(), "tmpdir": os.environ["TMPDIR"],
                   "work": str(WORK)}))
"""

#: in learner B's kernel: every way to reach learner A's containers and files
PROBE = r"""
import errno as _errno, json as _json, os as _os, signal as _signal, subprocess as _sp
_other_root, _other_home, _other_pid, _other_work = {root!r}, {home!r}, {pid!r}, {work!r}
_res = {{}}
for _label, _args in {{"list": ["--root", _other_root, "list"], "state": ["--root", _other_root, "state", "box"],
                      "exec": ["--root", _other_root, "exec", "box", "/bin/true"], "kill": ["--root", _other_root, "kill", "box", "KILL"],
                      "delete": ["--root", _other_root, "delete", "box"],
                      "delete_force": ["--root", _other_root, "delete", "--force", "box"]}}.items():
    _p = _sp.run([*OCILEARN, *_args], capture_output=True, text=True)
    _res[_label] = [_p.returncode, (_p.stdout + _p.stderr).strip()]
for _label, _path in {{"home": _other_home, "work": _other_work, "runtime": _os.path.dirname(_other_root),
                      "container_root": f"/proc/{{_other_pid}}/root"}}.items():
    try:
        _res["listdir_" + _label] = ["ok", _os.listdir(_path)]
    except OSError as _e:
        _res["listdir_" + _label] = [_errno.errorcode[_e.errno], str(_e)]
try:
    _os.kill(_other_pid, _signal.SIGKILL)
    _res["signal"] = ["ok", "delivered"]
except OSError as _e:
    _res["signal"] = [_errno.errorcode[_e.errno], str(_e)]
print(_json.dumps(_res))
"""


@pytest.fixture(scope="module")
def two_learners(hub):
    """Both learners logged in, servers started, notebook 04 run in each (executed notebook,
    kernel, and the "box" each made afterwards)."""
    import nbformat

    out = {}
    for name in LEARNERS:
        lr = _learner(hub, name)
        assert lr.start_server() == f"/user/{name}/"
        k = lr.kernel()
        nb = with_parameters(nbformat.read(NB04, as_version=4), {"IMAGE": "None"})  # the embedded image, as the notebook tests do
        t0 = time.monotonic()
        k.run_notebook(nb)
        took = time.monotonic() - t0
        box = json.loads(k.text(MAKE_BOX).strip().splitlines()[-1])
        out[name] = {"learner": lr, "kernel": k, "nb": nb, "box": box, "took": took, "pw": pwd.getpwnam(name)}
    yield out
    for v in out.values():
        try:
            v["kernel"].shutdown()
        except Exception:  # noqa: BLE001 - the hub's stop ends the rest
            pass


def test_learners_servers_run_as_themselves(hub, two_learners):
    """Each server and kernel runs as the learner (uid ≥ 1000, not root), from the shared
    read-only venv; the home is theirs (0700) with their own course copy; the runtime dir
    /run/user/UID and the work dir are 0700 and theirs."""
    venv = Path(os.environ.get("HUB_VENV", "/opt/ocilearn-hub/venv"))
    for v in two_learners.values():
        pw = v["pw"]
        assert pw.pw_uid >= 1000
        procs = _procs(pw.pw_uid)
        assert any("jupyterhub-singleuser" in c for c in procs.values()), procs
        assert any("ipykernel_launcher" in c for c in procs.values()), procs
        assert all(c.startswith(str(venv)) or c.startswith("/bin/sleep") for c in procs.values() if "python" in c), procs
        for path, mode in ((pw.pw_dir, 0o700), (f"/run/user/{pw.pw_uid}", 0o700), (f"{pw.pw_dir}/ocilearn-work", 0o700)):
            st = os.stat(path)
            assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (pw.pw_uid, mode), f"{path}: uid {st.st_uid} mode {oct(st.st_mode)}"
        course = Path(pw.pw_dir) / "ocilearn-course"
        got = sorted(p.name for p in course.glob("*.ipynb"))
        assert got == sorted(p.name for p in (REPO / "notebooks").glob("[0-9]*.ipynb")), got
        assert all(p.stat().st_uid == pw.pw_uid for p in course.iterdir())
        assert v["box"]["uid"] == pw.pw_uid and v["box"]["root"] == f"/run/user/{pw.pw_uid}/ocilearn"
        assert v["box"]["tmpdir"] == f"{pw.pw_dir}/ocilearn-work" and v["box"]["work"].startswith(v["box"]["tmpdir"] + "/")
    # the shared installation: learners may read and run it, not change it
    ana = two_learners[LEARNERS[0]]["kernel"]
    out = ana.text(f"import os, ocilearn; print(ocilearn.__file__); print(os.access({str(venv)!r}, os.W_OK), "
                   f"os.access(os.path.dirname(ocilearn.__file__), os.W_OK))")
    path, venv_writable, pkg_writable = out.split()
    assert path.startswith(f"{venv}/lib/") and path.endswith("/site-packages/ocilearn/__init__.py"), path
    assert (venv_writable, pkg_writable) == ("False", "False")


def test_notebook_04_runs_in_each_learners_server(two_learners):
    """Notebook 04 executed through each learner's kernel API meets the notebook tests'
    expectations for the rootless path (tests/test_notebooks.py EXPECT["04"])."""
    for name, v in two_learners.items():
        try:
            check_notebook(v["nb"], NB04, rootless=True)
        except AssertionError as e:
            raise AssertionError(f"as {name}: {e}") from None


def test_each_learner_sees_only_their_own_containers(two_learners):
    a, b = (two_learners[n] for n in LEARNERS)
    (ca,), (cb,) = a["box"]["list"], b["box"]["list"]
    assert (ca["id"], ca["status"], ca["owner"]) == ("box", "running", a["pw"].pw_name)  # runc list -f json: the owner's user name
    assert (cb["id"], cb["status"], cb["owner"]) == ("box", "running", b["pw"].pw_name)
    assert ca["pid"] != cb["pid"] and ca["bundle"].startswith(a["pw"].pw_dir + "/") and cb["bundle"].startswith(b["pw"].pw_dir + "/")


def _probe(two_learners, prober: str, target: str) -> dict:
    t = two_learners[target]
    code = PROBE.format(root=t["box"]["root"], home=t["pw"].pw_dir, pid=t["box"]["list"][0]["pid"], work=t["box"]["work"])
    return json.loads(two_learners[prober]["kernel"].text(code).strip().splitlines()[-1])


def test_learner_cannot_reach_another_learners_containers_or_work(two_learners):
    """B cannot list, inspect, exec into, kill or delete A's container, signal its process,
    look into its root, or read A's home, work dir or runtime dir; A's container is still
    running afterwards (and the same the other way round)."""
    for prober, target in (LEARNERS, LEARNERS[::-1]):
        res = _probe(two_learners, prober, target)
        troot = two_learners[target]["box"]["root"]
        assert res["list"] == [1, f"ocilearn: error: [Errno 13] Permission denied: '{troot}'"], res["list"]
        for op in ("state", "exec", "kill", "delete"):
            assert res[op][0] != 0 and res[op][1].startswith("ocilearn: error:"), (op, res[op])
        for label in ("home", "work", "runtime", "container_root"):
            assert res["listdir_" + label][0] == "EACCES", (label, res["listdir_" + label])
        assert res["signal"][0] == "EPERM", res["signal"]
        t = two_learners[target]
        state = json.loads(t["kernel"].text('print(__import__("subprocess").run([*OCILEARN, "state", "box"], capture_output=True, text=True).stdout)'))
        assert (state["status"], state["pid"]) == ("running", t["box"]["list"][0]["pid"]), f"{target}'s box after {prober}'s attempts: {state}"


def test_deleting_another_learners_container_fails_naming_the_permission(two_learners):
    """``ocilearn --root OTHER delete [--force] box`` as another learner exits non-zero with a
    message that names the permission problem (EACCES on the other's 0700 state root), the
    way ``list`` already does — not "does not exist", and never a silent exit 0."""
    res = _probe(two_learners, LEARNERS[1], LEARNERS[0])
    troot = two_learners[LEARNERS[0]]["box"]["root"]
    for op in ("delete", "delete_force", "kill", "exec", "state"):
        code, msg = res[op]
        assert code != 0 and "Permission denied" in msg and troot in msg, (
            f"`ocilearn --root {troot} {op.replace('_', ' --')} box` as {LEARNERS[1]}: exit {code}, {msg!r}; "
            "wanted a non-zero exit naming the permission problem")


def _course_file(name: str) -> Path:
    return Path(pwd.getpwnam(name).pw_dir) / "ocilearn-course" / "00-start-here.ipynb"


def test_hub_reset_one_learner_and_all(hub, two_learners):
    """``make hub-reset LEARNER=NAME``: that learner's edited copy is moved aside (kept) and a
    fresh one put in place, their containers deleted; the other learner untouched.
    ``make hub-reset``: every learner of the hub."""
    a, b = LEARNERS
    # each learner edits their copy through their server's contents API, as JupyterLab saves
    for n in (a, b):
        lr = two_learners[n]["learner"]
        model = lr.server_api("GET", "/api/contents/00-start-here.ipynb").json()
        model["content"]["cells"][0]["source"] = f"edited by {n}"
        r = lr.server_api("PUT", "/api/contents/00-start-here.ipynb", json={"type": "notebook", "format": "json", "content": model["content"]})
        assert r.status_code == 200, r.text
        assert f"edited by {n}" in _course_file(n).read_text()
    env = {**os.environ, "HUB_STATE": str(hub.tmp / "state")}
    p = subprocess.run(["make", "-s", "hub-reset", f"LEARNER={a}", f"HUB_STATE={hub.tmp / 'state'}"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith(f"reset {a}: fresh ~{a}/ocilearn-course; previous copy kept in "), p.stdout
    assert _course_file(a).read_bytes() == NB00.read_bytes()
    kept = list(Path(pwd.getpwnam(a).pw_dir).glob("ocilearn-course.before-reset-*/00-start-here.ipynb"))
    assert len(kept) == 1 and f"edited by {a}" in kept[0].read_text()
    assert f"edited by {b}" in _course_file(b).read_text()
    la = json.loads(two_learners[a]["kernel"].text('print(__import__("subprocess").run([*OCILEARN, "list", "--format", "json"], capture_output=True, text=True).stdout)'))
    assert la == [], f"{a}'s containers after the reset: {la}"
    p = subprocess.run(["make", "-s", "hub-reset", f"HUB_STATE={hub.tmp / 'state'}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert [ln.split(":")[0] for ln in p.stdout.splitlines()] == [f"reset {a}", f"reset {b}"], p.stdout
    assert _course_file(b).read_bytes() == NB00.read_bytes()
    p = subprocess.run(["make", "-s", "hub-reset", "LEARNER=olhub-nobody", f"HUB_STATE={hub.tmp / 'state'}"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "no such learner account: 'olhub-nobody'" in p.stderr, p.stderr


# ------------------------------------------------------------------ in the browser


def test_login_page_and_notebook_in_chromium(hub):
    """A learner in Chromium: the hub's login page (form filled and submitted), redirected to
    their JupyterLab with the course; *Run All* of notebook 00; no error output; the
    course check table rendered."""
    from test_browser import ALL_CELLS_RAN, CHROMIUM_FLAGS, RUN_TIMEOUT_MS, SCREENSHOTS, run_all, stderr_problems

    chromium = require_tool("chromium")
    from playwright.sync_api import sync_playwright

    name = LEARNERS[0]
    profile = tempfile.mkdtemp(prefix="ocilearn-hub-chromium-")
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(profile, executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
                                                       viewport={"width": 1400, "height": 1000})
            try:
                page = ctx.new_page()
                page.goto(f"{hub.base}/hub/login")
                page.fill("input[name=username]", name)
                page.fill("input[name=password]", PASSWORD)
                page.click("input[type=submit], button[type=submit]")
                page.wait_for_url(f"{hub.base}/user/{name}/lab**", timeout=180_000)
                page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)  # default_url opens 00-start-here.ipynb
                assert "00-start-here.ipynb" in page.url
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
                lr = _learner(hub, name)
                deadline = time.monotonic() + 60
                while not [s for s in lr.server_api("GET", "/api/sessions").json() if s["path"].endswith("00-start-here.ipynb")
                           and s.get("kernel", {}).get("execution_state") == "idle"]:
                    assert time.monotonic() < deadline, "no idle kernel for 00-start-here.ipynb"
                    time.sleep(0.3)
                run_all(page)
                page.wait_for_function(ALL_CELLS_RAN, timeout=RUN_TIMEOUT_MS, polling=250)
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=RUN_TIMEOUT_MS)
                bad = stderr_problems(page)
                assert not bad, "error output in the browser:\n" + "\n---\n".join(b[-2000:] for b in bad)
                table = page.locator("table.ocilearn-course-checks")
                table.first.wait_for(timeout=30_000)
                assert "rootless" in page.locator(".jp-Notebook").inner_text()
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                table.first.scroll_into_view_if_needed()
                page.screenshot(path=str(SCREENSHOTS / "hub-00-start-here.png"))
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


# ------------------------------------------------------------------ last: stop


def test_stopping_the_hub_stops_everything_it_spawned(hub, two_learners):
    """SIGTERM to the hub (Ctrl-C of ``make hub``): it exits, the proxy and every learner's
    server and kernel are gone, and the learners' containers were deleted."""
    uids = [pwd.getpwnam(n).pw_uid for n in LEARNERS]
    proxy_pid = int((hub.tmp / "state" / "proxy.pid").read_text())
    # a container left running by a learner, to be cleaned by the server's stop
    k = two_learners[LEARNERS[1]]["kernel"]
    k.text('_p = sh([*OCILEARN, "run", "--detach", "--bundle", str(bundle), "left-behind"], quiet=True); assert _p.returncode == 0, _p.stderr')
    assert hub.stop() == 0, Path(hub.log).read_text()[-3000:]
    deadline = time.monotonic() + 30
    while any(_procs(u) for u in uids) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not any(_procs(u) for u in uids), {u: _procs(u) for u in uids}
    assert not Path(f"/proc/{proxy_pid}").exists(), "configurable-http-proxy still running"
    for u in uids:
        root = Path(f"/run/user/{u}/ocilearn")
        assert not root.exists() or not list(root.iterdir()), f"containers left in {root}: {list(root.iterdir())}"
