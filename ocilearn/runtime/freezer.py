"""Pause and resume: the cgroup freezer stops every process of a container at once
(runc pause/resume, runc-pause(8); kernel docs cgroup-v1/freezer-subsystem.rst and
admin-guide/cgroup-v2.rst "Core Interface Files" cgroup.freeze).

A frozen process is not stopped by a signal (SIGSTOP could be caught or observed by
the container); it is simply not scheduled until the cgroup is thawed. runc reports such a
container as ``paused``, a status runtime-spec does not list but every caller of runc
(podman, containerd) understands.

- cgroup v1: ``freezer.state`` in the container's directory of the ``freezer``
  hierarchy: write ``FROZEN`` or ``THAWED``; it reads ``FREEZING`` until every task is
  frozen.
- cgroup v2: ``cgroup.freeze``: write ``1`` or ``0``; ``cgroup.events`` says ``frozen 1``
  once done.
"""

from __future__ import annotations

import os
import time

from ..core.errors import ContainerError
from . import step


def _file(cg) -> tuple[str, str]:
    """(control file, events file) of the freezer for cgroup ``cg``. Raises ContainerError
    when the host has no freezer for it."""
    if cg.version == 2:
        p = cg.paths.get("")
        if p and os.path.exists(os.path.join(p, "cgroup.freeze")):
            return os.path.join(p, "cgroup.freeze"), os.path.join(p, "cgroup.events")
    else:
        for name, p in cg.paths.items():
            if "freezer" in name.split(","):
                return os.path.join(p, "freezer.state"), os.path.join(p, "freezer.state")
    raise ContainerError("no cgroup freezer for this container (cgroup v1 'freezer' hierarchy or cgroup v2 cgroup.freeze)")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def frozen(cg) -> bool:
    """True when the container's cgroup is frozen (runc's "paused")."""
    try:
        ctl, _ = _file(cg)
        value = _read(ctl).strip()
    except (ContainerError, OSError):
        return False
    return value == ("FROZEN" if cg.version == 1 else "1")


def _done(cg, events: str, want: bool) -> bool:
    text = _read(events)
    if cg.version == 1:
        return text.strip() == ("FROZEN" if want else "THAWED")
    return f"frozen {int(want)}" in text.splitlines()


def set_frozen(cg, want: bool, timeout: float = 10.0) -> None:
    """Freeze (``want``) or thaw the cgroup and wait until the kernel reports it done.
    Raises ContainerError after ``timeout`` seconds (a task that cannot be frozen)."""
    ctl, events = _file(cg)
    value = ("FROZEN" if want else "THAWED") if cg.version == 1 else ("1" if want else "0")
    deadline = time.monotonic() + timeout
    while True:
        # v1 may stay FREEZING when a task is busy: runc writes FROZEN again until it sticks
        with open(ctl, "w") as f:
            f.write(value)
        if _done(cg, events, want):
            break
        if time.monotonic() > deadline:
            raise ContainerError(f"{ctl}: the cgroup did not become {'frozen' if want else 'thawed'} within {timeout:g} s")
        time.sleep(0.001)
    step("runtime", "freeze" if want else "thaw", ctl, f"echo {value} > {ctl}")
