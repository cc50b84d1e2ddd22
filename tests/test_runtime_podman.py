"""ocilearn as podman's OCI runtime (``podman --runtime WRAPPER``), compared with runc on
the same image and flags: exit codes, output, exec, ``-t``, ``--read-only``, ``--tmpfs``
and ``--mount type=tmpfs`` (tmpcopyup), pause/unpause, stop, rm, update.

podman hands the container to conmon, which runs ``RUNTIME create --bundle B --pid-file
P ID`` and, being a child subreaper, wait(2)s for the container's PID 1 — so the exit code
podman reports is only right when no runtime process stays between conmon and the init.

Everything podman keeps is isolated under a temp directory (``--root``, ``--runroot``,
``--tmpdir``, vfs storage, each runtime's ``--root`` set by its wrapper script, a
containers.conf with no network namespace plumbing: no bridge or firewall rule is made on
the host) and removed at the end, mounts first.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, built_image, require_tool
from test_runtime_helpers import OCILEARN_RUNTIME, cid, needs_root

pytestmark = needs_root

IMAGE = "localhost/ocilearn-busybox:latest"  # Entrypoint ["/bin/sh", "-c"], User app, WorkingDir /home/app
RUNTIMES = ("runc", "ocilearn")


def detach_mounts_under(path: Path) -> None:
    """Lazily unmount (MNT_DETACH) every mount below ``path``, deepest first."""
    from ocilearn.core import syscalls as sc

    prefix = str(path).rstrip("/") + "/"
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mp = line.split()[4].replace("\\040", " ")
        if mp.startswith(prefix):
            mounts.append(mp)
    for mp in sorted(mounts, key=len, reverse=True):
        try:
            sc.umount2(mp, sc.MNT_DETACH)
        except OSError:
            pass


def cgroup_dirs(rel: str) -> list[str]:
    """The directories named ``rel`` (relative to each hierarchy root) that exist in the
    host's cgroup hierarchies (v1: one per controller; v2: one tree)."""
    from ocilearn.runtime.cgroups import CGROUP_ROOT, detect

    hierarchies = list(detect()[1].values())
    if os.path.exists(os.path.join(CGROUP_ROOT, "unified", "cgroup.procs")):
        hierarchies.append(os.path.join(CGROUP_ROOT, "unified"))  # a hybrid host's v2 tree (runc uses it too)
    return [os.path.join(h, rel) for h in hierarchies if os.path.isdir(os.path.join(h, rel))]


def remove_empty_cgroups(rel: str) -> None:
    """rmdir the cgroup ``rel`` and its empty descendants in every hierarchy (a cgroup
    with processes refuses with EBUSY and stays)."""
    for top in cgroup_dirs(rel):
        for d, _subdirs, _files in sorted(os.walk(top), key=lambda t: -len(t[0])):
            try:
                os.rmdir(d)
            except OSError:
                pass


def remove_one_file_system(path: Path) -> None:
    """``rm -rf --one-file-system``: mounts below ``path`` are detached first, then the tree
    is removed without leaving its device."""
    detach_mounts_under(path)
    dev = os.lstat(path).st_dev
    for top, dirs, files in os.walk(path, topdown=False):
        for name in files + dirs:
            p = os.path.join(top, name)
            st = os.lstat(p)
            if st.st_dev != dev:
                continue
            if os.path.isdir(p) and not os.path.islink(p):
                try:
                    os.rmdir(p)
                except OSError:
                    pass
            else:
                os.unlink(p)
    try:
        os.rmdir(path)
    except OSError:
        pass


class Podman:
    """``podman`` with every location under ``base`` and ``runtime`` as the OCI runtime."""

    def __init__(self, base: Path, runtime: str, name: str) -> None:
        self.base, self.name = base, name
        self.rtroot = base / f"state-{name}"
        # podman 4.3 drops --runtime-flag when its exit command cleans up (`delete --force`
        # then goes to the default root): the wrapper sets --root for every call instead
        self.runtime = base / f"runtime-{name}"
        self.runtime.write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec {runtime} --root {self.rtroot} "$@"\n')
        self.runtime.chmod(0o755)
        self.env = {**os.environ, "CONTAINERS_CONF": str(base / "containers.conf"), "TMPDIR": str(base / "tmp")}

    def __call__(self, *args: str, check: bool = True, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
        cmd = [require_tool("podman"), "--root", str(self.base / "storage"), "--runroot", str(self.base / "run"),
               "--tmpdir", str(self.base / "libpod"), "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
               "--events-backend", "none", "--network-config-dir", str(self.base / "cni"), "--volumepath", str(self.base / "volumes"),
               "--runtime", str(self.runtime), *args]
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=timeout, stdin=subprocess.DEVNULL, **kw)
        if check and p.returncode != 0:
            raise AssertionError(f"podman ({self.name}) {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p


@pytest.fixture(scope="module")
def podmans(tmp_path_factory) -> dict[str, Podman]:
    """Two podman front ends on one isolated storage holding the repo's busybox test image:
    runtime runc, and runtime = a wrapper running this checkout's ``ocilearn``."""
    require_tool("conmon")
    runc = require_tool("runc")
    base = tmp_path_factory.mktemp("podman")
    for d in ("tmp", "cni", "libpod"):
        (base / d).mkdir()
    hard_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    hard_nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    lim = lambda h: 1024 if h == resource.RLIM_INFINITY else min(h, 1024)  # noqa: E731
    # podman's default RLIMIT_NOFILE/NPROC (1048576) exceed what this host lets even root
    # raise (no CAP_SYS_RESOURCE in its bounding set): ask for what the host allows
    (base / "containers.conf").write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={lim(hard_nofile)}:{lim(hard_nofile)}", "nproc={lim(hard_nproc)}:{lim(hard_nproc)}"]\n'
        'netns = "none"\n'
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\nevents_logger = "none"\n'
        f'static_dir = "{base}/storage/libpod"\ntmp_dir = "{base}/libpod"\nvolume_path = "{base}/volumes"\n')
    ps = {"runc": Podman(base, runc, "runc"), "ocilearn": Podman(base, OCILEARN_RUNTIME, "ocilearn")}
    layout = base / "images" / "busybox"  # a path podman accepts as a reference (no dot components)
    shutil.copytree(built_image("busybox"), layout)
    try:
        ps["runc"]("pull", "-q", f"oci:{layout}:latest")
        ps["runc"]("tag", f"localhost{layout}:latest", IMAGE)
        yield ps
    finally:
        for p in ps.values():
            p("rm", "--all", "--force", "--time", "0", check=False)
        ps["runc"]("rmi", "--all", "--force", check=False)
        remove_empty_cgroups("libpod_parent")  # podman's cgroupfs parent, made by the runtimes' create
        remove_one_file_system(base)


def both(podmans, *args: str, name: str | None = None, **kw) -> dict[str, subprocess.CompletedProcess]:
    """Run ``podman ARGS`` with each runtime; ``{NAME}`` in an argument becomes a
    container name unique to the runtime."""
    out = {}
    for rt in RUNTIMES:
        cname = f"{name}-{rt}" if name else ""
        p = podmans[rt](*[a.replace("{NAME}", cname) for a in args], **kw)
        if cname:  # compare the outputs with the name put back
            p.stdout, p.stderr = p.stdout.replace(cname, "{NAME}"), p.stderr.replace(cname, "{NAME}")
        out[rt] = p
    return out


def same(results: dict[str, subprocess.CompletedProcess], stderr: bool = False) -> subprocess.CompletedProcess:
    """Assert runc and ocilearn gave the same exit status and output; return one."""
    r, o = results["runc"], results["ocilearn"]
    assert (o.returncode, o.stdout) == (r.returncode, r.stdout), (r, o)
    if stderr:
        assert o.stderr == r.stderr, (r.stderr, o.stderr)
    return o


def test_exit_codes_and_output(podmans):
    """`podman run IMG 'exit 3'` -> 3 (it was 255 while a runtime process sat between conmon
    and the init); stdout and stderr reach podman; State.ExitCode is the real one."""
    p = same(both(podmans, "run", "--rm", IMAGE, "echo out; echo err >&2; exit 3", check=False), stderr=True)
    assert (p.returncode, p.stdout, p.stderr) == (3, "out\n", "err\n")
    p = same(both(podmans, "run", "--rm", "--entrypoint", "sh", IMAGE, "-c", "exit 3", check=False))
    assert p.returncode == 3
    p = same(both(podmans, "run", "--rm", IMAGE, "kill -TERM $$; sleep 0.1 & wait; echo still-here", check=False))
    assert (p.returncode, p.stdout) == (0, "still-here\n")  # PID 1 without a handler ignores SIGTERM
    name = cid("pex")
    same(both(podmans, "run", "--name", "{NAME}", IMAGE, "echo $(id -un) in $(pwd); exit 42", name=name, check=False))
    insp = same(both(podmans, "inspect", "--format", "{{.State.ExitCode}} {{.State.Status}}", "{NAME}", name=name))
    assert insp.stdout == "42 exited\n"
    same(both(podmans, "rm", "{NAME}", name=name))


def test_run_flags_user_env_workdir_limits(podmans):
    probe = ("id; echo $A; pwd; cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null "
             "|| cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max; hostname | wc -c; ls /sys/class/net")
    p = same(both(podmans, "run", "--rm", "--user", "5:6", "-e", "A=b", "-w", "/tmp", "--pids-limit", "33", "--memory", "40m",
                  "--network", "none", IMAGE, probe))
    assert p.stdout.splitlines()[:5] == ["uid=5(5) gid=6(6) groups=6(6)", "b", "/tmp", "33", str(40 << 20)]


def test_exec(podmans):
    """conmon runs `exec --pid-file F --process P --detach ID` and reaps the process."""
    name = cid("pexec")
    both(podmans, "run", "-d", "--name", "{NAME}", IMAGE, "sleep 100", name=name)
    try:
        p = same(both(podmans, "exec", "-e", "A=1", "-u", "5", "-w", "/tmp", "{NAME}", "sh", "-c", "echo $A $(id -u) $(pwd); exit 4",
                      name=name, check=False))
        assert (p.returncode, p.stdout) == (4, "1 5 /tmp\n")
        p = same(both(podmans, "exec", "{NAME}", "/no/such/program", name=name, check=False))
        assert p.returncode == 127  # podman: "OCI runtime attempted to invoke a command that was not found"
        p = same(both(podmans, "exec", "-t", "{NAME}", "sh", "-c", "tty; echo x", name=name, check=False))
        assert p.returncode == 0 and re.fullmatch(r"/dev/pts/\d+\r?\nx\r?\n", p.stdout)
        both(podmans, "exec", "-d", "{NAME}", "sh", "-c", "echo detached > /tmp/d", name=name)  # prints the exec session's ID
        p = same(both(podmans, "exec", "{NAME}", "sh", "-c", "sleep 0.2; cat /tmp/d", name=name))
        assert p.stdout == "detached\n"
    finally:
        both(podmans, "rm", "--force", "--time", "0", "{NAME}", name=name, check=False)


def test_tty(podmans):
    p = same(both(podmans, "run", "--rm", "-t", IMAGE, "tty; echo done; exit 2", check=False))
    assert p.returncode == 2 and re.fullmatch(r"/dev/pts/0\r?\ndone\r?\n", p.stdout)


def test_read_only_tmpfs_and_tmpcopyup(podmans):
    """--read-only (root read-only; /tmp, /var/tmp, /run as tmpfs), --tmpfs, and
    --mount type=tmpfs, whose default option tmpcopyup copies the directory's files into
    the new tmpfs."""
    mounts = "grep -E ' /(tmp|run|var/tmp|dev/shm|home) ' /proc/self/mountinfo | cut -d' ' -f5,7- | sort"
    p = same(both(podmans, "run", "--rm", "--read-only", IMAGE, f"touch /x 2>&1; touch /tmp/y && echo tmp-ok; {mounts}"))
    assert p.stdout.startswith("touch: /x: Read-only file system\ntmp-ok\n") and "\n/tmp - tmpfs tmpfs rw" in p.stdout
    listing = "stat -c '%a %U %n' /home /home/*; " + mounts
    p = same(both(podmans, "run", "--rm", "--tmpfs", "/home:rw,size=1m,mode=700", IMAGE, listing))
    assert p.stdout.startswith("755 root /home\n755 app /home/app\n") and "size=1024k,mode=700" in p.stdout
    p = same(both(podmans, "run", "--rm", "--mount", "type=tmpfs,destination=/etc", "--user", "0", IMAGE, "cat /etc/hostname /etc/passwd | tail -1; " + mounts))
    assert "app:x:1000:1000" in p.stdout
    p = same(both(podmans, "run", "--rm", "--mount", "type=tmpfs,destination=/etc,notmpcopyup", "--user", "0", IMAGE, "ls /etc | wc -l"))
    assert int(p.stdout) < 5  # without copy-up the tmpfs hides the image's /etc (podman adds a few files)


def test_pause_unpause_stop_rm(podmans):
    name = cid("ppause")
    both(podmans, "run", "-d", "--name", "{NAME}", IMAGE, "sleep 100", name=name)
    ids = {rt: podmans[rt]("inspect", "--format", "{{.Id}}", f"{name}-{rt}").stdout.strip() for rt in RUNTIMES}
    assert all(cgroup_dirs(f"libpod_parent/libpod-{i}") for i in ids.values())  # the container's own cgroup
    same(both(podmans, "pause", "{NAME}", name=name))
    p = same(both(podmans, "inspect", "--format", "{{.State.Status}}", "{NAME}", name=name))
    assert p.stdout == "paused\n"
    p = same(both(podmans, "exec", "{NAME}", "true", name=name, check=False), stderr=True)
    assert p.returncode == 255 and "container state improper" in p.stderr
    same(both(podmans, "unpause", "{NAME}", name=name))
    p = same(both(podmans, "exec", "{NAME}", "echo", "back", name=name))
    assert p.stdout == "back\n"
    same(both(podmans, "stop", "--time", "1", "{NAME}", name=name))  # sleep as PID 1 ignores SIGTERM: SIGKILL after 1 s
    p = same(both(podmans, "inspect", "--format", "{{.State.ExitCode}} {{.State.Status}}", "{NAME}", name=name))
    assert p.stdout == "137 exited\n"
    same(both(podmans, "rm", "{NAME}", name=name))
    p = same(both(podmans, "ps", "--all", "--filter", f"name={name}", "--format", "{{.Names}}"))
    assert p.stdout == ""
    assert [cgroup_dirs(f"libpod_parent/libpod-{i}") for i in ids.values()] == [[], []]  # each runtime removed its cgroup
    for rt in RUNTIMES:  # each runtime's state directory is empty again
        root = podmans[rt].rtroot
        assert not root.exists() or os.listdir(root) == [], (rt, os.listdir(root))


def test_stop_runs_the_containers_signal_handler(podmans):
    name = cid("pstop")
    both(podmans, "run", "-d", "--name", "{NAME}", IMAGE, "trap 'exit 9' TERM; while :; do sleep 0.1; done", name=name)
    same(both(podmans, "stop", "--time", "10", "{NAME}", name=name))
    p = same(both(podmans, "inspect", "--format", "{{.State.ExitCode}}", "{NAME}", name=name))
    assert p.stdout == "9\n"
    same(both(podmans, "rm", "{NAME}", name=name))


def test_update_resources(podmans):
    """`podman update` calls `RUNTIME update --resources FILE ID` (the whole
    linux.resources object)."""
    name = cid("pupd")
    both(podmans, "run", "-d", "--name", "{NAME}", "--memory", "40m", IMAGE, "sleep 100", name=name)
    try:
        both(podmans, "update", "--memory", "50m", "--memory-swap", "100m", "--cpu-shares", "600", "--cpu-quota", "30000",
             "{NAME}", name=name)  # podman prints the container's full ID
        p = same(both(podmans, "exec", "{NAME}", "sh", "-c", "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes "
                      "memory/memory.memsw.limit_in_bytes cpu/cpu.shares cpu/cpu.cfs_quota_us 2>/dev/null || cat memory.max cpu.max",
                      name=name))
        assert p.stdout.split()[:1] == [str(50 << 20)]
    finally:
        both(podmans, "rm", "--force", "--time", "0", "{NAME}", name=name, check=False)


def test_the_runtime_was_really_ocilearn(podmans):
    """The ocilearn front end ran containers under ocilearn's state directory (and runc's
    under runc's): the comparison above compared two different runtimes."""
    name = cid("pwho")
    both(podmans, "run", "-d", "--name", "{NAME}", IMAGE, "sleep 100", name=name)
    try:
        cids = {rt: podmans[rt]("inspect", "--format", "{{.Id}}", f"{name}-{rt}").stdout.strip() for rt in RUNTIMES}
        st = json.loads((podmans["ocilearn"].rtroot / cids["ocilearn"] / "state.json").read_text())
        assert st["id"] == cids["ocilearn"] and "ocilearn" in st
        assert (podmans["runc"].rtroot / cids["runc"] / "state.json").exists()
        conmon = podmans["ocilearn"]("inspect", "--format", "{{.State.ConmonPid}}", f"{name}-ocilearn").stdout.strip()
        ppid = Path(f"/proc/{st['pid']}/stat").read_text().rsplit(")", 1)[1].split()[1]
        assert ppid == conmon  # conmon is the init's parent: it reaps it and reports the status
    finally:
        both(podmans, "rm", "--force", "--time", "0", "{NAME}", name=name, check=False)
