"""JupyterHub configuration of the ocilearn workshop hub (``make hub``; started by scripts/hub/start.sh).

Everything comes from the environment start.sh sets (Makefile variables of the same names):

=====================  =====================================================================
HUB_PORT               the hub's public port on 127.0.0.1 (configurable-http-proxy)
HUB_PROXY_API_PORT     the proxy's REST API on 127.0.0.1 (default HUB_PORT+1)
HUB_INTERNAL_PORT      the hub process itself on 127.0.0.1 (default HUB_PORT+2)
LEARNERS               the Unix/hub user names allowed to log in ("ana ben")
HUB_PASSWORD           the one workshop password (read, then removed from the environment)
HUB_STATE              sqlite database, cookie secret, proxy token, pid files (mode 0700)
HUB_VENV               the shared read-only installation (ocilearn + JupyterLab + JupyterHub)
HUB_NODE               the npm prefix holding configurable-http-proxy
HUB_HOME_BASE          where useradd puts new learners' homes (default /home)
=====================  =====================================================================

Pieces (JupyterHub docs, "Authenticators" and "Spawners"):

- ``SharedPasswordAuthenticator`` (JupyterHub >= 5.3) with ``allowed_users``: exactly the
  listed learners, one shared password. Anyone who knows the password can log in as any
  listed learner: the room's trust level, as the JupyterHub docs warn.
- ``WorkshopSpawner``: JupyterHub's ``LocalProcessSpawner`` (each server runs as the
  learner's own Unix user) that first creates the account when missing, its runtime dir and
  work dir, and copies the course into the home (scripts/hub/workshop.py); and after the
  server stopped deletes the learner's leftover containers.
"""

import os
import secrets
import sys
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workshop  # noqa: E402

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

PORT = int(os.environ.get("HUB_PORT", "8000"))
STATE = Path(os.environ.get("HUB_STATE", ".cache/hub")).resolve()
VENV = os.environ.get("HUB_VENV", "/opt/ocilearn-hub/venv")
NODE = Path(os.environ.get("HUB_NODE", ".cache/node")).resolve()
HOME_BASE = os.environ.get("HUB_HOME_BASE", "/home")
COURSE = os.environ.get("HUB_COURSE", os.path.join(VENV, "share", "ocilearn", "course"))
LEARNERS = workshop.parse_learners(os.environ.get("LEARNERS", ""))
PASSWORD = os.environ.pop("HUB_PASSWORD", "")
if len(PASSWORD) < 8:
    raise SystemExit("hub: HUB_PASSWORD must be at least 8 characters (SharedPasswordAuthenticator's minimum)")
STATE.mkdir(mode=0o700, parents=True, exist_ok=True)
os.chmod(STATE, 0o700)

# --- network: loopback only
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = PORT
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("HUB_INTERNAL_PORT", PORT + 2))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{int(os.environ.get('HUB_PROXY_API_PORT', PORT + 1))}"
c.ConfigurableHTTPProxy.command = [str(NODE / "node_modules" / ".bin" / "configurable-http-proxy")]
c.Spawner.ip = "127.0.0.1"

# --- state, all under HUB_STATE (0700)
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")
c.ConfigurableHTTPProxy.pid_file = str(STATE / "proxy.pid")
token_file = STATE / "proxy_token"
if not token_file.exists():
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, secrets.token_hex(32).encode())
    os.close(fd)
c.ConfigurableHTTPProxy.auth_token = token_file.read_text().strip()
c.JupyterHub.cleanup_servers = True  # stopping the hub stops every learner's server
c.JupyterHub.cleanup_proxy = True

# --- who may log in
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = PASSWORD
c.Authenticator.allowed_users = set(LEARNERS)
c.Authenticator.allow_all = False
c.Authenticator.admin_users = set()


# --- each learner's server: their own Unix user, their own course copy and runtime dir
class WorkshopSpawner(LocalProcessSpawner):
    """LocalProcessSpawner for the workshop: account, runtime dir, work dir and course copy
    made before the server starts (scripts/hub/workshop.py); the learner's leftover
    containers deleted after it stops."""

    async def start(self):
        pw = workshop.ensure_learner(self.user.name, HOME_BASE)
        workshop.prepare(pw, COURSE, VENV)
        self.popen_kwargs = {"cwd": pw.pw_dir}
        return await super().start()

    def get_env(self):
        env = super().get_env()
        pw = workshop.learner_account(self.user.name)
        env.update(workshop.learner_env(pw, VENV))
        return env

    async def stop(self, now=False):
        await super().stop(now=now)
        try:
            left = workshop.remove_containers(workshop.learner_account(self.user.name), VENV)
        except (KeyError, workshop.WorkshopError) as e:
            left = str(e)
        if left.strip():
            self.log.warning("containers of %s: %s", self.user.name, left.strip())


c.JupyterHub.spawner_class = WorkshopSpawner
# nothing of the hub's own environment (PYTHONPATH, VIRTUAL_ENV, LD_LIBRARY_PATH … of whoever
# started it) reaches a learner: their environment is workshop.learner_env()
c.Spawner.env_keep = []
c.Spawner.cmd = [os.path.join(VENV, "bin", "jupyterhub-singleuser")]
c.Spawner.notebook_dir = f"~/{workshop.COURSE_DIR}"
c.Spawner.default_url = "/lab/tree/00-start-here.ipynb"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
