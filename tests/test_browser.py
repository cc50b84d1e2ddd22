"""The course in a real browser: JupyterLab + Debian's Chromium driven by Playwright.

For each ``notebooks/[0-9]*.ipynb`` (copied to a temp folder that JupyterLab serves):
open it, *Run ▸ Run All Cells* from the menu, wait until every code cell has run and the
kernel is idle, then assert

- no error output and no traceback (JupyterLab renders both as
  ``application/vnd.jupyter.stderr`` outputs);
- the image graph rendered as SVG where the notebook draws one (01);
- the widgets rendered, and respond to a real click: the stepper's Next button advances
  its step count; picking another option of a dropdown changes what its widget shows;
- a screenshot per notebook in ``test-output/screenshots/`` (gitignored), copied into
  ``docs/screenshots/`` when ``OCILEARN_UPDATE_SCREENSHOTS=1``.

Recipe: ../shared/TOOLCHAIN.md §3. Playwright drives ``/usr/bin/chromium`` (never
``playwright install``). The server listens on 127.0.0.1 with a random token on a free
port; it and the browser profile are removed at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, require_tool
from test_notebooks import expect_for_notebook, notebook_paths

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = REPO / "test-output" / "screenshots"
DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_TIMEOUT_MS = 150_000  # a whole notebook, run from the menu

# JupyterLab user settings for the test profile: no news/update toast over the notebook,
# every cell kept in the DOM (no windowing) so the assertions see them all.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"checkForUpdates": False, "fetchNews": "false"},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_command(port: int, token: str, root_dir: Path) -> list[str]:
    """The Makefile's ``lab`` command line, plus what a test needs (no browser, a token, a
    free port, a private root dir)."""
    cmd = [
        str(REPO / ".venv" / "bin" / "jupyter"),
        "lab",
        f"--notebook-dir={root_dir}",
        "--ServerApp.ip=127.0.0.1",
        f"--port={port}",
        "--no-browser",
        f"--IdentityProvider.token={token}",
        "--ServerApp.port_retries=0",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def wait_status(base: str, token: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> dict:
    """Poll ``/api/status`` until it answers 200; returns its JSON."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    return json.loads(r.read())
        except OSError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"jupyter lab not ready after {timeout}s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM (the server shuts its kernels down), SIGKILL after 20 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def lab():
    """A JupyterLab server on 127.0.0.1 serving a copy of the notebooks; yields (base_url, token)."""
    tmp = Path(tempfile.mkdtemp(prefix="ocilearn-lab-"))
    root = tmp / "notebooks"
    root.mkdir()
    for p in notebook_paths():
        shutil.copy2(p, root / p.name)
    settings = tmp / "user-settings"
    for rel, value in LAB_SETTINGS.items():
        f = settings / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(value))
    port, token = free_port(), secrets.token_hex(16)
    log = tmp / "jupyter-lab.log"
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "TMPDIR": str(tmp),  # the notebooks' work dirs, removed with tmp
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(lab_command(port, token, root), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_status(base, token, proc, log)
        yield base, token
    finally:
        stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def browser_context():
    """A Playwright persistent context on Debian's Chromium with a fresh temp profile."""
    chromium = require_tool("chromium")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="ocilearn-chromium-")
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                profile, executable_path=chromium, headless=True, args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1000}
            )
            try:
                yield ctx
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


# JS: true when every code cell has an execution count and none is queued/running — or
# when Run All stopped at an error (kernel idle, nothing queued, an error output shown).
ALL_CELLS_RAN = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
  if (!prompts.length) return false;
  if (prompts.every(p => /\\[\\d+\\]/.test(p.textContent))) return true;
  const idle = document.querySelector(".jp-Notebook-ExecutionIndicator[data-status='idle']");
  const queued = prompts.some(p => p.textContent.includes('[*]'));
  const errors = [...document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .some(e => /Traceback|Error/.test(e.textContent));
  return !!idle && !queued && errors;
}"""


# Outputs that do not fit their area: an output (or an element in it) whose content is
# wider than the box it is shown in, so the learner would have to scroll sideways. Text
# outputs wrap (pre-wrap); a table or a long unbreakable line would not. Widgets lay
# themselves out and are left to the widget tests; a highlighted source inside a closed
# <details> has no width.
TOO_WIDE = """() => {
  const out = [];
  for (const o of document.querySelectorAll('.jp-OutputArea-output')) {
    if (o.closest('.jupyter-widgets')) continue;
    const boxes = [o, ...o.querySelectorAll('table, pre, div')];
    for (const b of boxes) {
      if (b.closest('.jupyter-widgets') || b.closest('details:not([open])')) continue;
      if (b.clientWidth > 0 && b.scrollWidth > b.clientWidth + 2) {
        const cell = o.closest('.jp-Cell');
        const idx = cell ? [...cell.parentNode.children].indexOf(cell) : -1;
        out.push(`cell ${idx}: ${b.tagName.toLowerCase()} ${b.scrollWidth}px in ${b.clientWidth}px: ` +
                 (b.innerText || '').slice(0, 60).replace(/\\s+/g, ' '));
        break;
      }
    }
  }
  return out;
}"""


def wait_kernel(page, base: str, token: str, name: str, timeout: float = 60) -> None:
    """Wait until the server has a kernel session for notebook ``name`` and the page shows it
    idle. (Before that the indicator says "idle" with no kernel, and Run All then opens
    the "Select Kernel" dialog.)"""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=5) as r:
            sessions = json.loads(r.read())
        ready = [s for s in sessions if s.get("path", "").endswith(name) and s.get("kernel", {}).get("execution_state") == "idle"]
        if ready:
            break
        assert time.monotonic() < deadline, f"no idle kernel for {name} after {timeout}s: {sessions}"
        time.sleep(0.2)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)


def run_all(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()


def stderr_problems(page) -> list[str]:
    texts = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').all_inner_texts()
    bad = [t for t in texts if "Traceback" in t or "-" * 40 in t or "Error" in t.split("\n")[0]]
    return bad


def click_widgets(page) -> list[str]:
    """Click every kind of widget the notebook shows; returns what responded."""
    responded = []
    nxt = page.locator("button.jupyter-button", has_text="Next")
    if nxt.count():
        status = page.locator(".ocilearn-stepper-status").first
        before = status.inner_text()
        btn = nxt.first
        if btn.is_enabled():
            btn.scroll_into_view_if_needed()
            btn.click()
            page.wait_for_function(
                "([sel, before]) => { const e = document.querySelector(sel); return e && e.textContent !== before; }",
                arg=[".ocilearn-stepper-status", before],
                timeout=60_000,
            )
            responded.append(f"stepper: {before!r} -> {status.inner_text()!r}")
        else:
            responded.append(f"stepper finished: {before!r}")
    selects = page.locator(".widget-dropdown select")
    if selects.count():
        sel = selects.first
        sel.scroll_into_view_if_needed()
        box = sel.locator("xpath=ancestor::div[contains(@class,'widget-vbox')][1]")
        before = box.inner_text()
        options = sel.locator("option").all_inner_texts()
        current = sel.evaluate("s => s.options[s.selectedIndex] ? s.options[s.selectedIndex].text : ''")
        others = [o for o in options if o != current]
        assert others, f"dropdown has a single option {options}"
        sel.select_option(label=others[-1])
        handle = box.element_handle()
        page.wait_for_function("([el, before]) => el.innerText !== before", arg=[handle, before], timeout=30_000)
        responded.append(f"dropdown: {current!r} -> {others[-1]!r}")
    return responded


def open_and_run_all(page, base: str, token: str, name: str) -> None:
    """Open notebook ``name`` in the lab, wait for its kernel, Run All from the menu, and
    wait until every cell ran and the kernel is idle."""
    page.goto(f"{base}/lab/tree/{name}?reset&token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    wait_kernel(page, base, token, name)
    run_all(page)
    page.wait_for_function(ALL_CELLS_RAN, timeout=RUN_TIMEOUT_MS, polling=250)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=RUN_TIMEOUT_MS)


def shutdown_kernels(page, base: str, token: str) -> None:
    """Shut every kernel of the lab down (before the next notebook); best effort."""
    try:
        page.evaluate(
            """async ([base, token]) => {
                 const r = await fetch(`${base}/api/sessions?token=${token}`);
                 for (const s of await r.json())
                   await fetch(`${base}/api/sessions/${s.id}?token=${token}`, {method: 'DELETE'});
               }""",
            [base, token],
        )
    except Exception:  # noqa: BLE001 - best effort; the server stop kills the rest
        pass


def _screenshot(page, nb_path: Path, focus) -> Path:
    if focus is not None:
        focus.scroll_into_view_if_needed()
        focus.evaluate("e => e.scrollIntoView({block: 'start'})")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{nb_path.stem}.png"
    page.screenshot(path=str(shot))
    return shot


@pytest.mark.parametrize("nb_path", notebook_paths(), ids=[p.stem for p in notebook_paths()])
def test_notebook_in_browser(nb_path, lab, browser_context):
    """Run All from the menu; no error output; graph and widgets rendered; widgets respond
    to a click. A screenshot is saved whatever the outcome (test-output/screenshots/), and
    copied to docs/screenshots/ only when the notebook passed (OCILEARN_UPDATE_SCREENSHOTS=1)."""
    import nbformat

    base, token = lab
    exp = expect_for_notebook(nbformat.read(nb_path, as_version=4), nb_path)
    page = browser_context.new_page()
    focus = None
    try:
        open_and_run_all(page, base, token, nb_path.name)
        assert page.locator(".jp-Dialog").count() == 0, "a dialog is open (kernel selection? error?)"
        bad = stderr_problems(page)
        assert not bad, f"{nb_path.name}: error output in the browser:\n" + "\n---\n".join(b[-2000:] for b in bad)
        wide = page.evaluate(TOO_WIDE)
        assert not wide, f"{nb_path.name}: outputs wider than the output area (scroll sideways): {wide}"
        if exp.svg:
            svg = page.locator(".jp-RenderedSVG img, .jp-RenderedSVG svg, .jp-RenderedImage img[src^='data:image/svg']")
            svg.first.wait_for(timeout=30_000)
            assert svg.count() >= 1, f"{nb_path.name}: the image graph (SVG) is not rendered"
            focus = svg.first
        if exp.widgets:
            widgets = page.locator(".jp-OutputArea-output .jupyter-widgets")
            try:
                widgets.first.wait_for(timeout=10_000)
            except Exception:  # noqa: BLE001 - turned into a clear assertion below
                pass
            assert widgets.count() >= 1, f"{nb_path.name}: no widget rendered"
            if exp.stepper:
                assert page.locator("button.jupyter-button", has_text="Next").count(), f"{nb_path.name}: no stepper (Next button)"
            responded = click_widgets(page)
            assert responded, f"{nb_path.name}: widgets rendered but none could be clicked"
            if exp.stepper:
                assert any(r.startswith("stepper: ") for r in responded), f"{nb_path.name}: the stepper did not advance: {responded}"
            focus = focus or page.locator(".jupyter-widgets").first
        if exp.screenshot_focus:
            focus = page.locator(exp.screenshot_focus).first
        shot = _screenshot(page, nb_path, focus)
        assert shot.stat().st_size > 10_000, f"screenshot {shot} is suspiciously small"
        if os.environ.get("OCILEARN_UPDATE_SCREENSHOTS") == "1":
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copy2(shot, DOCS_SCREENSHOTS / shot.name)
    except BaseException:
        try:
            _screenshot(page, nb_path, page.locator(exp.screenshot_focus).first if exp.screenshot_focus else None)
        except Exception:  # noqa: BLE001
            pass
        raise
    finally:
        shutdown_kernels(page, base, token)
        page.close()


# Every HTML view the notebooks show, given the longest values a learner's machine can put
# in them: a checkout or home directory deep in the tree, a registry URL with a long
# repository name. JupyterLab's own table CSS applies; none may widen its output area.
LONG_VIEWS = """
from ocilearn.core import explain
from ocilearn.course import Check, Part, Report
from ocilearn.distribution.client import Exchange, ExchangeLog
from ocilearn.views.fold import Table, fold

long = "/home/learner/" + "checkouts/deeper/" * 16 + "images/debian"  # no hyphen or space to break at
with explain.recording() as steps:
    explain.step("layout", "copy", f"embedded image {long} -> {long}", f"skopeo copy oci:{long}:bookworm oci:{long}:x")
display(steps)
display(Report(root=True, mode="root", cgroup="v2", tools={}, checks=[Check("skopeo", True, long)],
               parts=[Part("01-image-layout.ipynb", "runs", long)]))
display(ExchangeLog([Exchange("GET", "http://127.0.0.1:5000/v2/" + "r" * 300 + "/blobs/sha256:" + "0" * 64, 200,
                              {"Accept": long}, {"Location": long}, 10, 0.1, "blob")]))
display(Table(["path", "digest"], [{"path": long, "digest": "sha256:" + "0" * 64}]))
display(fold(long))
"""


def test_views_fit_with_long_paths(lab, browser_context):
    """The steps table, the course report, the HTTP exchange table, a folded table and a
    folded text, each fed a 300-character path with no space or hyphen in it, fit JupyterLab's
    output area: the cells wrap inside a path instead of widening the table. (A CI
    checkout in a deeper directory than a developer's once widened a steps table by 4 px.)"""
    import nbformat

    base, token = lab
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LONG_VIEWS)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    body = json.dumps({"type": "notebook", "content": json.loads(nbformat.writes(nb))}).encode()
    req = urllib.request.Request(f"{base}/api/contents/long-views.ipynb?token={token}", data=body, method="PUT",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status in (200, 201)
    page = browser_context.new_page()
    try:
        open_and_run_all(page, base, token, "long-views.ipynb")
        bad = stderr_problems(page)
        assert not bad, "error output in the browser:\n" + "\n---\n".join(b[-2000:] for b in bad)
        tables = page.locator(".jp-OutputArea-output table")
        assert tables.count() == 5, f"expected the 5 tables (steps, 2 report, exchanges, folded), saw {tables.count()}"
        wide = page.evaluate(TOO_WIDE)
        assert not wide, f"outputs wider than the output area (scroll sideways): {wide}"
    finally:
        shutdown_kernels(page, base, token)
        page.close()
