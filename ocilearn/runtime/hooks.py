"""runtime-spec config.md "POSIX-platform Hooks": programs the runtime runs at fixed
points of the lifecycle, each with the container's state as JSON on stdin.

createRuntime (and the deprecated prestart) run in the runtime's namespaces after the
container's namespaces exist; createContainer and startContainer run inside the
container (the init runs them); poststart after ``start``; poststop after ``delete``.
"""

from __future__ import annotations

import _signal as signal  # `signal` without its enum classes (start-up time, see container.py)
import sys

from ..core import syscalls as sc
from ..core.errors import ContainerError
from . import step
from .jsonio import dumps
from .state import OCI_VERSION


def _hook_dies_with_us() -> None:
    """In the hook's child, before exec: SIGKILL it when the runtime dies (prctl(2)
    PR_SET_PDEATHSIG), so a killed ``create`` leaves no orphaned hook behind."""
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)


def run_hooks(hooks: list[dict], state: dict, kind: str, warn_only: bool = False) -> None:
    """Run runtime-spec config.md "POSIX-platform Hooks": each ``{path, args, env,
    timeout}`` gets the state JSON on stdin. A failing hook raises ContainerError (or, for
    poststop, only warns)."""
    if not hooks:
        return
    import subprocess

    for h in hooks:
        args = h.get("args") or [h["path"]]
        try:
            p = subprocess.run(args, executable=h["path"], input=dumps(state).encode(), env=dict(e.split("=", 1) for e in h.get("env") or []),
                               timeout=h.get("timeout"), capture_output=True, close_fds=True,
                               preexec_fn=_hook_dies_with_us)
        except (OSError, subprocess.TimeoutExpired) as e:
            p = None
            err = str(e)
        else:
            err = f"exit status {p.returncode}: {p.stderr.decode(errors='replace').strip()}" if p.returncode else ""
        step("runtime", f"{kind} hook", f"{h['path']} {' '.join(args[1:])}", h["path"])
        if err:
            msg = f"{kind} hook {h['path']} failed: {err}"
            if warn_only:
                print(f"ocilearn: warning: {msg}", file=sys.stderr)
            else:
                raise ContainerError(msg)


def hook_state(st: dict, status: str) -> dict:
    """The runtime-spec state a hook receives on stdin, from a state.json dict."""
    return {"ociVersion": st.get("ociVersion", OCI_VERSION), "id": st["id"], "status": status, "pid": st.get("pid", 0),
            "bundle": st.get("bundle", ""), "annotations": st.get("annotations") or {}}
