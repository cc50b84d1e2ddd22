"""The OCI runtime: spawn a bundle (``config.json`` + ``rootfs/``) as a container, for real.

Modules (imported lazily; the runtime path never imports requests, graphviz or ipywidgets):

- :mod:`ocilearn.core.syscalls` ctypes wrappers: unshare, setns, mount, pivot_root, prctl, capset …
- :mod:`.namespaces` create/join namespaces, uid/gid mappings, ``/proc/PID/ns``
- :mod:`.rootfs`     mounts, ``/dev``, pivot_root, masked and read-only paths
- :mod:`.cgroups`    cgroup v1 and v2 limits (memory, pids, cpu), OOM reporting
- :mod:`.spec`       config.json checked at create: runtime-spec schema + what the host can apply
- :mod:`.seccomp`    linux.seccomp compiled by libseccomp (pyseccomp), loaded before execve
- :mod:`.labels`     AppArmor profile, SELinux process and mount labels
- :mod:`.devices`    cgroup v2 device rules as an eBPF program
- :mod:`.process`    the container process: user, capabilities, rlimits, cwd, exec
- :mod:`.network`    ``lo`` up, veth pair to the host namespace, /etc/hosts (pyroute2)
- :mod:`.state`      the state directory and what the kernel says: status from the init's
  PID and start time, state.json, ``list``
- :mod:`.container`  the lifecycle of runtime-spec runtime.md: create, start, kill, wait,
  delete (+ run, pause, resume, update) in runc's process model — its module doc explains
  the stages (parent, stage 1, init), the exec fifo and why runc is built this way
- :mod:`.stages`     what stage 1 and the init do, in order
- :mod:`.sync`       the messages between the parent and its children (socketpairs)
- :mod:`.exec`       ``exec``: another process in the container, same stages
- :mod:`.hooks`      runtime-spec hooks; :mod:`.terminal` the pty and console socket
- :mod:`.freezer`    pause/resume with the cgroup freezer (v1 ``freezer.state``, v2
  ``cgroup.freeze``)
- :mod:`.copyup`     the ``tmpcopyup`` mount option (a tmpfs that starts with the
  directory's files); :mod:`.features` what the runtime supports (features.md)
- :mod:`.cli`        runc's command line — the one parser behind ``ocilearn COMMAND`` and
  ``python -m ocilearn.runtime COMMAND`` (:mod:`.__main__`): its grammar is the argparse
  parser of :mod:`.argparser`; :mod:`.cmdline` reads the everyday command lines into the
  same namespace without argparse; :mod:`.launch` and :mod:`.warmup` run first
- :mod:`.jsonio`     ``json.loads``/``json.dumps`` through the C accelerator, without
  importing :mod:`json` (the run path imports no re, enum, argparse, json or signal:
  start-up time)

Deliberate differences from runc 1.1 (the probe in tests/test_runtime.py shows everything
else — pid, hostname, ids, capabilities, mountinfo, rlimits, cgroup limits, env, cwd —
equal on the same bundle; tests/test_runtime_podman.py and test_runtime_containerd.py run
podman and containerd on both runtimes):

- **The stages are forks, not re-executions.** runc runs ``runc init`` (a new copy of its
  binary) and clones it with CLONE_PARENT; ocilearn forks the CLI process twice and is a
  child subreaper while the intermediate exits. The result is the same: the init is the
  runtime command's direct child, and the caller's subreaper after the command exits. No
  process of ocilearn stays behind; ``exec.fifo`` separates create and start.
- **Extras:** ``--init`` (a reaping, signal-forwarding PID 1),
  :meth:`.container.Container.stop` (SIGTERM, then SIGKILL after a grace period),
  :meth:`.container.Container.wait` (the library reaps its own containers), ``--net veth``
  (:mod:`.network`), ``--explain``, ``--no-pivot`` also used automatically on initramfs.
- **Rootless:** a config without a user namespace gets one mapping the caller to root
  (runc wants ``runc spec --rootless``); ``gid=`` is dropped from devpts options when that
  gid is unmapped; ``/sys`` is bind-mounted when there is no new network namespace; the
  ``cgroup`` mount is skipped and cgroup limits are refused at create (as runc without a
  delegated cgroup) — no systemd delegation is attempted, so pause/resume/update need root.
- **cgroups:** cgroupfs only (``--systemd-cgroup`` is refused); default path
  ``/ocilearn-<hash of --root>-<id>`` in every v1 hierarchy; on a hybrid host the
  ``unified`` v2 tree is neither joined nor mounted; on cgroup v2 the device rules are an
  eBPF program (:mod:`.devices`). A resource the host lacks is refused at create naming
  the field.
- **Command line:** ``list --format json`` prints ``[]`` for no containers (runc: ``null``);
  ``state`` omits ``pid`` once stopped (runtime-spec; runc prints 0); warnings go to
  stderr, not to ``--log``; ``exec --apparmor/--process-label/--cgroup`` and
  ``run --no-subreaper`` are refused as unknown options.
- **Not implemented** (refused when set, never ignored): seccomp user notification,
  id-mapped mounts, personality, intelRdt, hugepage/blkio/network/rdma limits;
  ``checkpoint``/``restore``/``events`` are not commands; ``/dev/console`` is not
  bind-mounted for terminals.
- A ``process.cwd`` that resolves outside the container (``/proc/self/fd/N``,
  CVE-2024-21626) is refused rather than relying on fd hygiene alone; ambient capabilities
  that are not also inheritable are left out quietly, as runc 1.1 does.
"""

import sys as _sys


def step(area: str, action: str, detail: str = "", equivalent: str = "", **data) -> None:
    """Narrate one real action through :func:`ocilearn.core.explain.step` — but only when
    ``ocilearn.core.explain`` has been imported (``--explain``, notebooks): otherwise nothing
    can be recording, and the runtime path skips importing it (start-up time)."""
    ex = _sys.modules.get("ocilearn.core.explain")
    if ex is not None:
        ex.step(area, action, detail, equivalent, **data)
