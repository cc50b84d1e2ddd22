"""Helpers for the runtime tests (no tests here).

- :class:`Runner`: a long-lived *child subreaper* process that runs commands for a test,
  in the role conmon and containerd-shim play for podman and containerd: a detached
  container's init outlives ``ocilearn create`` and is re-parented to the nearest
  subreaper, which wait(2)s for it and so learns its exit status. The runner reaps its
  orphans, records their exit statuses (:meth:`Runner.exit_status`) and reports leftovers.
- :func:`make_bundle`: a bundle directory whose config.json points (``root.path``,
  absolute) at a shared, once-unpacked busybox rootfs, with the changes a test needs.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import IMAGES, REPO, SHARED, require_tool

OCILEARN = str(REPO / ".venv" / "bin" / "ocilearn")
if not os.path.exists(OCILEARN):
    OCILEARN = str(Path(sys.executable).with_name("ocilearn"))
# bin/ocilearn-runtime (bin/ocilearn under runc's name) as installed beside the environment's
# python3: what podman --runtime and ctr --runc-binary call.
# $OCILEARN_RUNTIME names another one (e.g. in a non-editable install of this checkout).
OCILEARN_RUNTIME = os.environ.get("OCILEARN_RUNTIME") or str(Path(OCILEARN).with_name("ocilearn-runtime"))
if not os.path.exists(OCILEARN_RUNTIME):
    OCILEARN_RUNTIME = OCILEARN

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, mounts and cgroups of a real container")

_RUNNER = r"""
import ctypes, json, os, subprocess, sys, tempfile
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER

EXITS = {}

def reap():
    out = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return out
        if pid == 0:
            return out
        out.append(pid)
        EXITS[str(pid)] = os.waitstatus_to_exitcode(status)

def children():
    me, out = str(os.getpid()), []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                data = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            rest = data[data.rindex(")") + 2:].split()
            if rest[1] == me:
                out.append([int(d), rest[0], data[data.index("(") + 1:data.rindex(")")]])
    return out

for line in sys.stdin:
    req = json.loads(line)
    if req.get("children"):
        reap()
        print(json.dumps({"children": children()}), flush=True)
        continue
    if req.get("exits"):
        reap()
        print(json.dumps({"exits": EXITS}), flush=True)
        continue
    if req.get("kill_after") is not None:  # start, SIGKILL after a delay, wait
        import time
        p = subprocess.Popen(req["cmd"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=req.get("env"))
        time.sleep(req["kill_after"])
        p.kill()
        p.wait()
        print(json.dumps({"rc": p.returncode, "out": "", "err": "", "reaped": reap()}), flush=True)
        continue
    with tempfile.TemporaryFile() as o, tempfile.TemporaryFile() as e:
        try:
            p = subprocess.run(req["cmd"], stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=req.get("timeout", 120),
                               env=req.get("env"), cwd=req.get("cwd"))
            rc = p.returncode
        except subprocess.TimeoutExpired:
            rc = -999
        o.seek(0); e.seek(0)
        res = {"rc": rc, "out": o.read().decode(errors="replace"), "err": e.read().decode(errors="replace")}
    res["reaped"] = reap()
    print(json.dumps(res), flush=True)
"""


class Runner:
    """Run ``ocilearn --root ROOT …`` (or any command) under a subreaper; see module doc."""

    def __init__(self, root: str | os.PathLike, env: dict | None = None, prefix: list[str] | None = None) -> None:
        self.root = str(root)
        self.env = env
        self.prefix = list(prefix or [])  # e.g. setpriv … to run every command as another user
        self.p = subprocess.Popen([sys.executable, "-c", _RUNNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _ask(self, req: dict) -> dict:
        assert self.p.stdin and self.p.stdout
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def cmd(self, *cmd: str, timeout: float = 120, cwd: str | None = None) -> subprocess.CompletedProcess:
        r = self._ask({"cmd": self.prefix + list(cmd), "timeout": timeout, "env": self.env, "cwd": cwd})
        return subprocess.CompletedProcess(list(cmd), r["rc"], r["out"], r["err"])

    def oc(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """``ocilearn --root ROOT ARGS``; ``check`` asserts exit status 0 with a readable message."""
        p = self.cmd(OCILEARN, "--root", self.root, *args, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"ocilearn {' '.join(args)} -> {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def killed(self, *cmd: str, after: float) -> int:
        """Start ``cmd``, SIGKILL it after ``after`` seconds; returns its exit status."""
        return self._ask({"cmd": list(cmd), "kill_after": after, "env": self.env})["rc"]

    def exit_status(self, pid: int, timeout: float = 5.0) -> int | None:
        """The exit status the runner got from wait(2) for its adopted child ``pid``
        (negative: killed by that signal), waiting up to ``timeout`` s; None if never."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            code = self._ask({"exits": True})["exits"].get(str(pid))
            if code is not None or time.monotonic() > deadline:
                return code
            time.sleep(0.02)

    def children(self) -> list[list]:
        """``[[pid, state letter, comm], …]`` of the runner's children after reaping."""
        return self._ask({"children": True})["children"]

    def close(self) -> None:
        if self.p.poll() is None:
            assert self.p.stdin
            self.p.stdin.close()
            self.p.wait(10)


def cid(prefix: str = "t") -> str:
    """A unique container ID (other helpers run tests concurrently)."""
    return f"{prefix}-{secrets.token_hex(4)}"


def busybox_image() -> Path:
    """The repo-built busybox image if present, else ../shared's (same bytes)."""
    p = IMAGES / "busybox"
    if p.exists():
        return p
    q = SHARED / "images" / "busybox"
    if not q.exists():
        pytest.skip(f"extra coverage unavailable: neither {p} nor {q} exists")
    return q


def unpack_reference(image: Path, bundle: Path, tag: str = "latest") -> Path:
    """Make a bundle with ``umoci unpack`` (a reference peer used as test setup)."""
    umoci = require_tool("umoci")
    subprocess.run([umoci, "unpack", "--image", f"{image}:{tag}", str(bundle)], check=True, capture_output=True)
    return bundle


def make_bundle(base: Path, dest: Path, args: list[str], **changes) -> Path:
    """A bundle in ``dest`` reusing ``base``'s rootfs (absolute root.path) with
    process.args = ``args``, terminal false and ``changes`` applied: keys are dotted paths
    into config.json (``"process.cwd"``, ``"linux.resources"``) and values replace them
    (``None`` deletes)."""
    cfg = json.loads((base / "config.json").read_text())
    cfg["root"]["path"] = str(base / "rootfs")
    cfg["process"]["args"] = args
    cfg["process"]["terminal"] = False
    for key, value in changes.items():
        obj = cfg
        *parents, last = key.split(".")
        for k in parents:
            obj = obj.setdefault(k, {})
        if value is None:
            obj.pop(last, None)
        else:
            obj[last] = value
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.json").write_text(json.dumps(cfg, indent=1))
    return dest
