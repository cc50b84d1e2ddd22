"""A learner's side of the workshop hub, over HTTP only (used by tests/test_hub.py and
scripts/hub/measure.py).

- :func:`login`: what a browser does on the hub's login page (GET ``/hub/login`` for the
  ``_xsrf`` cookie, POST the form with it) → a ``requests.Session`` holding the login cookie.
- :class:`Learner`: with that session, an API token of the learner's own (POST
  ``/hub/api/users/NAME/tokens``, JupyterHub REST API), start/stop their server (POST/DELETE
  ``/hub/api/users/NAME/server``), start a kernel in it (jupyter_server ``/api/kernels``).
- :class:`RemoteKernel`: execute code in that kernel over the server's websocket
  (``/api/kernels/ID/channels``, the Jupyter messaging protocol as JSON messages with a
  ``channel`` field — jupyter_server's default websocket protocol), collecting outputs as
  nbformat outputs and widget state as nbclient stores it.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone

import requests
import websocket

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


class HubError(Exception):
    """The hub or a learner's server answered something unexpected (one line, says what)."""


def login(base: str, name: str, password: str) -> requests.Session:
    """Log in through the hub's login form as a browser does. Returns the session (cookies:
    ``_xsrf``, ``jupyterhub-hub-login``). Raises HubError with the HTTP status when the hub
    refuses (403 for a wrong password or a name not on the list)."""
    s = requests.Session()
    r = s.get(f"{base}/hub/login", timeout=30)
    r.raise_for_status()
    xsrf = s.cookies.get("_xsrf")
    if not xsrf:
        raise HubError(f"GET {base}/hub/login set no _xsrf cookie")
    r = s.post(f"{base}/hub/login", data={"username": name, "password": password, "_xsrf": xsrf}, allow_redirects=False, timeout=30)
    if r.status_code != 302 or "jupyterhub-hub-login" not in s.cookies:
        raise HubError(f"login as {name!r} refused: HTTP {r.status_code}")
    return s


class Learner:
    """One learner's view of the hub, after :func:`login`."""

    def __init__(self, base: str, name: str, session: requests.Session):
        self.base, self.name, self.session = base, name, session
        r = session.post(f"{base}/hub/api/users/{name}/tokens", json={"note": "hubclient", "expires_in": 7200},
                         headers={"X-XSRFToken": session.cookies.get("_xsrf", "")}, timeout=30)
        if r.status_code != 201:
            raise HubError(f"token for {name}: HTTP {r.status_code} {r.text[:200]}")
        self.token = r.json()["token"]
        self.headers = {"Authorization": f"token {self.token}"}

    def api(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, f"{self.base}{path}", headers=self.headers, timeout=kw.pop("timeout", 60), **kw)

    def start_server(self, timeout: float = 180) -> str:
        """Start the learner's server (if not running) and wait until the hub says it is
        ready. Returns its URL prefix (``/user/NAME/``)."""
        r = self.api("POST", f"/hub/api/users/{self.name}/server")
        if r.status_code not in (201, 202, 400):  # 400: already running
            raise HubError(f"start server of {self.name}: HTTP {r.status_code} {r.text[:300]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.api("GET", f"/hub/api/users/{self.name}").json()
            srv = info.get("servers", {}).get("", {})
            if srv.get("ready"):
                return srv["url"]
            time.sleep(0.5)
        raise HubError(f"server of {self.name} not ready after {timeout}s")

    def stop_server(self, timeout: float = 60) -> None:
        r = self.api("DELETE", f"/hub/api/users/{self.name}/server")
        if r.status_code not in (202, 204, 400):
            raise HubError(f"stop server of {self.name}: HTTP {r.status_code} {r.text[:300]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.api("GET", f"/hub/api/users/{self.name}").json().get("servers"):
                return
            time.sleep(0.5)
        raise HubError(f"server of {self.name} still there after {timeout}s")

    def server_api(self, method: str, path: str, **kw) -> requests.Response:
        return self.api(method, f"/user/{self.name}{path}", **kw)

    def kernel(self, path: str = "") -> RemoteKernel:
        """A new python3 kernel in the learner's server, its working directory ``path``
        (relative to the server's root, the learner's course copy)."""
        r = self.server_api("POST", "/api/kernels", json={"name": "python3", "path": path})
        if r.status_code != 201:
            raise HubError(f"start kernel for {self.name}: HTTP {r.status_code} {r.text[:300]}")
        return RemoteKernel(self, r.json()["id"])


class RemoteKernel:
    """A kernel of a learner's server, driven over its websocket."""

    def __init__(self, learner: Learner, kernel_id: str):
        self.learner, self.id = learner, kernel_id
        self.session = uuid.uuid4().hex
        url = learner.base.replace("http", "ws", 1) + f"/user/{learner.name}/api/kernels/{kernel_id}/channels?session_id={self.session}"
        self.ws = websocket.create_connection(url, header=[f"Authorization: token {learner.token}"], timeout=30)
        self.widget_state: dict[str, dict] = {}

    def _msg(self, msg_type: str, content: dict, channel: str = "shell") -> dict:
        return {"header": {"msg_id": uuid.uuid4().hex, "username": self.learner.name, "session": self.session, "msg_type": msg_type,
                           "version": "5.3", "date": datetime.now(timezone.utc).isoformat()},
                "parent_header": {}, "metadata": {}, "content": content, "channel": channel, "buffers": []}

    def _widget(self, msg: dict) -> None:
        """Keep widget models' state as nbclient does (store_widget_state)."""
        c = msg["content"]
        if msg["msg_type"] == "comm_open" and c.get("target_name") == "jupyter.widget":
            st = c.get("data", {}).get("state", {})
            self.widget_state[c["comm_id"]] = {"model_name": st.get("_model_name"), "model_module": st.get("_model_module"),
                                               "model_module_version": st.get("_model_module_version"), "state": dict(st)}
        elif msg["msg_type"] == "comm_msg" and c.get("comm_id") in self.widget_state:
            data = c.get("data", {})
            if data.get("method") == "update":
                self.widget_state[c["comm_id"]]["state"].update(data.get("state", {}))

    def execute(self, code: str, timeout: float = 120) -> tuple[list[dict], dict]:
        """Run ``code``; returns (nbformat outputs, execute_reply content). Raises HubError
        on a timeout or a closed websocket."""
        msg = self._msg("execute_request", {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                                            "allow_stdin": False, "stop_on_error": True})
        mid = msg["header"]["msg_id"]
        self.ws.send(json.dumps(msg))
        outputs: list[dict] = []
        reply, idle = None, False
        deadline = time.monotonic() + timeout
        while not (reply is not None and idle):
            left = deadline - time.monotonic()
            if left <= 0:
                raise HubError(f"kernel {self.id} of {self.learner.name}: no result after {timeout}s for {code[:80]!r}")
            self.ws.settimeout(left)
            try:
                m = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            self._widget(m)
            if m.get("parent_header", {}).get("msg_id") != mid:
                continue
            t, c = m["msg_type"], m["content"]
            if m["channel"] == "shell" and t == "execute_reply":
                reply = c
            elif t == "status" and c.get("execution_state") == "idle":
                idle = True
            elif t == "stream":
                if outputs and outputs[-1]["output_type"] == "stream" and outputs[-1]["name"] == c["name"]:
                    outputs[-1]["text"] += c["text"]
                else:
                    outputs.append({"output_type": "stream", "name": c["name"], "text": c["text"]})
            elif t in ("display_data", "execute_result"):
                out = {"output_type": t, "data": c.get("data", {}), "metadata": c.get("metadata", {})}
                if t == "execute_result":
                    out["execution_count"] = c.get("execution_count")
                outputs.append(out)
            elif t == "error":
                outputs.append({"output_type": "error", "ename": c["ename"], "evalue": c["evalue"], "traceback": c["traceback"]})
            elif t == "clear_output":
                outputs.clear()
        return outputs, reply

    def run_notebook(self, nb, timeout_per_cell: float = 120):
        """Execute every code cell of an nbformat notebook in order, writing outputs and the
        widget state into it (as nbclient would); stops at the first failing cell (its
        error output stays in the notebook). Returns the notebook."""
        import nbformat

        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            outputs, reply = self.execute(cell.source, timeout_per_cell)
            cell.outputs = [nbformat.from_dict(o) for o in outputs]
            cell.execution_count = reply.get("execution_count")
            if reply.get("status") != "ok":
                break
        nb.metadata["widgets"] = {WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": self.widget_state}}
        return nb

    def text(self, code: str, timeout: float = 120) -> str:
        """Run ``code`` and return its stdout+stderr text; raises HubError when it fails."""
        outputs, reply = self.execute(code, timeout)
        if reply.get("status") != "ok":
            raise HubError(f"{self.learner.name}: {reply.get('ename')}: {reply.get('evalue')}")
        return "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")

    def shutdown(self) -> None:
        try:
            self.ws.close()
        finally:
            self.learner.server_api("DELETE", f"/api/kernels/{self.id}")


# ------------------------------------------------------------------ the hub process (root)


def free_ports(n: int = 3) -> int:
    """A port P such that P … P+n-1 are free on 127.0.0.1 now (the hub uses P, P+1, P+2)."""
    import random
    import socket

    for _ in range(200):
        p = random.randint(20000, 60000)
        socks = []
        try:
            for i in range(n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p + i))
            return p
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise HubError(f"no {n} consecutive free ports found on 127.0.0.1")


class HubProcess:
    """``scripts/hub/start.sh`` (what ``make hub`` runs) as a child process in its own
    session; :meth:`stop` sends SIGTERM (JupyterHub then stops every learner's server and the
    proxy) and waits."""

    def __init__(self, repo, port: int, learners: list[str], password: str, state, log, env: dict | None = None):
        import os
        import subprocess

        self.port, self.log = port, log
        self.base = f"http://127.0.0.1:{port}"
        full_env = {**os.environ, "HUB_PORT": str(port), "LEARNERS": " ".join(learners), "HUB_PASSWORD": password,
                    "HUB_STATE": str(state), **(env or {})}
        self._out = open(log, "wb")
        self.proc = subprocess.Popen([str(repo / "scripts" / "hub" / "start.sh")], cwd=repo, env=full_env, stdout=self._out,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 600) -> dict:
        """Poll ``/hub/api`` until it answers (setup may install the venv first); returns
        its JSON (``{"version": …}``)."""
        from pathlib import Path

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HubError(f"the hub exited with {self.proc.returncode}:\n{Path(self.log).read_text()[-4000:]}")
            try:
                r = requests.get(f"{self.base}/hub/api", timeout=2)
                if r.status_code == 200:
                    return r.json()
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise HubError(f"the hub did not answer in {timeout}s:\n{Path(self.log).read_text()[-4000:]}")

    def stop(self, timeout: float = 60) -> int:
        import os
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._out.close()
        return self.proc.returncode
