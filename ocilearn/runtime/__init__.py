"""The OCI runtime: spawn a bundle (``config.json`` + ``rootfs/``) as a container, for real.

Modules (imported lazily; the runtime path never imports requests, graphviz or ipywidgets):

- :mod:`.syscalls`   ctypes wrappers: unshare, setns, mount, umount2, pivot_root, prctl, capset …
- :mod:`.namespaces` create/join namespaces, uid/gid mappings, ``/proc/PID/ns``
- :mod:`.rootfs`     mounts, ``/dev``, pivot_root, masked and read-only paths
- :mod:`.cgroups`    cgroup v1 and v2 limits (memory, pids, cpu), OOM reporting
- :mod:`.spec`       config.json checked at create: runtime-spec schema + what the host can apply
- :mod:`.seccomp`    linux.seccomp compiled by libseccomp (pyseccomp), loaded before execve
- :mod:`.labels`     AppArmor profile, SELinux process and mount labels
- :mod:`.devices`    cgroup v2 device rules as an eBPF program
- :mod:`.process`    the container process: user, capabilities, rlimits, cwd, exec
- :mod:`.network`    ``lo`` up, veth pair to the host namespace, /etc/hosts (pyroute2)
- :mod:`.container`  the lifecycle of runtime-spec runtime.md: create, start, state, kill,
  delete (+ run, exec, ps) with a state directory like runc's.
- ``python -m ocilearn.runtime …`` (:mod:`.__main__`): the same command line without click.

Deliberate differences from runc 1.1 (the probe in tests/test_runtime.py shows everything
else — pid, hostname, ids, capabilities, mountinfo, rlimits, cgroup limits, env, cwd —
equal on the same bundle):

- **A monitor per container.** ``create`` leaves a small process (a fork of the CLI, not a
  new interpreter) that waits for the container's PID 1, writes ``exit.json`` (exit code or
  signal) and exits with it; the init carries a parent-death signal, so killing the monitor
  kills the container. runc's ``runc init`` execs the program and nobody records its status.
  On a host whose PID 1 never reaps orphans (like this course's CI VM), a detached
  container's monitor stays a zombie after it exits unless a subreaper adopted it (runc's
  init has the same fate there); ``run`` and library use reap it.
- **Foreground ``run``** starts the program through the setup socket, not ``exec.fifo``.
- **Extras:** ``--init`` (a reaping, signal-forwarding PID 1, like Docker's tini),
  :meth:`.container.Container.stop` (SIGTERM, then SIGKILL after a grace period),
  ``--net veth`` (:mod:`.network`), ``--no-pivot`` also used automatically on initramfs.
- **Rootless:** a config without a user namespace gets one mapping the caller to root
  (runc wants ``runc spec --rootless``); ``gid=`` is dropped from devpts options when that
  gid is unmapped; ``/sys`` is bind-mounted when there is no new network namespace; the
  ``cgroup`` mount is skipped and cgroup limits are refused at create (as runc without a
  delegated cgroup) — no systemd delegation is attempted.
- **cgroups:** default path ``/ocilearn-<hash of --root>-<id>`` in every v1 hierarchy;
  on a hybrid host the ``unified`` v2 tree is neither joined nor mounted; on cgroup v2 the
  device rules are an eBPF program (:mod:`.devices`). A resource the host lacks is
  refused at create naming the field.
- **Not implemented** (refused when set, never ignored: seccomp user notification,
  recursive mount attributes, id-mapped mounts; not looked at: personality, intelRdt,
  ``update``/``pause``/``resume``/
  ``checkpoint``/``events``/``features``; ``/dev/console`` is not bind-mounted for
  terminals; ``exec --tty`` opens the pty on the host side; ``ps`` lists PIDs and command
  lines instead of running ps(1).
- A ``process.cwd`` that resolves outside the container (``/proc/self/fd/N``, CVE-2024-21626) is
  refused rather than relying on fd hygiene alone; ambient capabilities that are not also
  inheritable are left out quietly, as runc 1.1 does.
"""

import sys as _sys


def step(area: str, action: str, detail: str = "", equivalent: str = "", **data) -> None:
    """Narrate one real action through :func:`ocilearn.core.explain.step` — but only when
    ``ocilearn.core.explain`` has been imported (``--explain``, notebooks): otherwise nothing
    can be recording, and the runtime path skips importing it (start-up time)."""
    ex = _sys.modules.get("ocilearn.core.explain")
    if ex is not None:
        ex.step(area, action, detail, equivalent, **data)
