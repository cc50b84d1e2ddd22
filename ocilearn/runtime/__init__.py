"""The OCI runtime: spawn a bundle (``config.json`` + ``rootfs/``) as a container, for real.

Modules (imported lazily; the runtime path never imports requests, graphviz or ipywidgets):

- :mod:`.syscalls`   ctypes wrappers: unshare, setns, mount, umount2, pivot_root, prctl, capset …
- :mod:`.namespaces` create/join namespaces, uid/gid mappings, ``/proc/PID/ns``
- :mod:`.rootfs`     mounts, ``/dev``, pivot_root, masked and read-only paths
- :mod:`.cgroups`    cgroup v1 and v2 limits (memory, pids, cpu), OOM reporting
- :mod:`.process`    the container process: user, capabilities, rlimits, cwd, exec
- :mod:`.network`    ``lo`` up, veth pair to the host namespace, /etc/hosts (pyroute2)
- :mod:`.container`  the lifecycle of runtime-spec runtime.md: create, start, state, kill,
  delete (+ run, exec, ps) with a state directory like runc's.
"""

import sys as _sys


def step(area: str, action: str, detail: str = "", equivalent: str = "", **data) -> None:
    """Narrate one real action through :func:`ocilearn.explain.step` — but only when
    ``ocilearn.explain`` has been imported (``--explain``, notebooks): otherwise nothing
    can be recording, and the runtime path skips importing it (start-up time)."""
    ex = _sys.modules.get("ocilearn.explain")
    if ex is not None:
        ex.step(area, action, detail, equivalent, **data)
