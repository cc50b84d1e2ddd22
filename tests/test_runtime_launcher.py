"""bin/ocilearn-runtime, the launcher of runc's command line for podman, containerd and the
notebooks: Python without ``site`` (-S) and without the caller's directory on sys.path
(-P), the package found in the site-packages beside the script's interpreter; a script
with no interpreter beside it hands over to the ``ocilearn`` console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO
from test_runtime_helpers import OCILEARN

LAUNCHER = REPO / "bin" / "ocilearn-runtime"


def _env_dir(tmp_path, with_python: bool = True):
    """A layout like an installed environment: ``bin/ocilearn-runtime`` (+ ``bin/python3``),
    ``lib/pythonX.Y/site-packages/ocilearn`` (a link to this checkout's package)."""
    b = tmp_path / "env" / "bin"
    b.mkdir(parents=True)
    (b / "ocilearn-runtime").write_bytes(LAUNCHER.read_bytes())
    (b / "ocilearn-runtime").chmod(0o755)
    if with_python:
        (b / "python3").symlink_to(os.path.realpath(sys.executable))
        sp = tmp_path / "env" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
        sp.mkdir(parents=True)
        (sp / "ocilearn").symlink_to(REPO / "ocilearn")
    return b


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}


def test_launcher_finds_the_package_in_its_environments_site_packages(tmp_path):
    # no PYTHONPATH, an interpreter outside any venv: only the site-packages the launcher
    # derives from its interpreter's path holds ocilearn
    b = _env_dir(tmp_path)
    p = subprocess.run([str(b / "ocilearn-runtime"), "features"], capture_output=True, text=True, env=_clean_env(), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    ref = subprocess.run([OCILEARN, "features"], capture_output=True, text=True, check=True)
    got, want = json.loads(p.stdout), json.loads(ref.stdout)
    # seccomp is "enabled" when the libseccomp binding is importable: this layout holds
    # ocilearn alone, without its dependencies
    assert got["linux"].pop("seccomp") == {"enabled": False}
    want["linux"].pop("seccomp")
    assert got == want and got["linux"]["namespaces"]
    bad = subprocess.run([str(b / "ocilearn-runtime"), "frobnicate"], capture_output=True, text=True, env=_clean_env())
    assert bad.returncode != 0 and "usage: ocilearn-runtime" in bad.stderr and "Traceback" not in bad.stderr


def test_launcher_ignores_modules_in_the_callers_directory(tmp_path):
    # a caller's working directory (often the bundle) must not shadow the standard library
    b = _env_dir(tmp_path)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for mod in ("json", "argparse", "ocilearn"):
        (cwd / f"{mod}.py").write_text("raise SystemExit(99)\n")
    # an empty PYTHONPATH entry (what `PYTHONPATH=$PYTHONPATH:/x` gives) names the cwd as well
    for env in (_clean_env(), {**_clean_env(), "PYTHONPATH": ":/nonexistent"}, {**_clean_env(), "PYTHONPATH": "/nonexistent:"}):
        p = subprocess.run([str(b / "ocilearn-runtime"), "--root", str(tmp_path / "root"), "list"], capture_output=True, text=True,
                           env=env, cwd=cwd)
        assert p.returncode == 0, (env.get("PYTHONPATH"), p.stderr)
        assert p.stdout.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]


def test_launcher_without_an_interpreter_beside_it_runs_the_console_script(tmp_path):
    b = _env_dir(tmp_path, with_python=False)
    (b / "ocilearn").write_text('#!/bin/sh\necho "console script: $*"\n')
    (b / "ocilearn").chmod(0o755)
    p = subprocess.run([str(b / "ocilearn-runtime"), "--root", "/x", "state", "c1"], capture_output=True, text=True)
    assert (p.returncode, p.stdout) == (0, "console script: --root /x state c1\n")


def test_a_link_to_the_launcher_runs_it_in_its_own_environment(tmp_path):
    # podman's and containerd's configurations often name a link (/usr/local/bin/…)
    b = _env_dir(tmp_path)
    other = tmp_path / "other"  # another interpreter beside the link, without ocilearn
    other.mkdir()
    (other / "python3").symlink_to(os.path.realpath(sys.executable))
    (other / "ocilearn-runtime").symlink_to(b / "ocilearn-runtime")
    bare = tmp_path / "bare"  # nothing beside the link
    bare.mkdir()
    (bare / "ocilearn-runtime").symlink_to(b / "ocilearn-runtime")
    for link in (other / "ocilearn-runtime", bare / "ocilearn-runtime"):
        p = subprocess.run([str(link), "--root", str(tmp_path / "root"), "state", "nope"], capture_output=True, text=True,
                           env=_clean_env(), cwd=tmp_path)
        assert (p.returncode, p.stdout) == (1, ""), p.stderr
        assert "nope" in p.stderr and "does not exist" in p.stderr and "Traceback" not in p.stderr


def test_warm_migration_writes_only_to_the_cgroup_this_process_is_listed_in(tmp_path):
    from ocilearn.runtime import warmup

    me = str(os.getpid())
    base = tmp_path / "cgroup"
    for d, procs in (("pids", f"1\n{me}\n"), ("memory/ns", "1\n2\n")):  # memory: a path seen from another cgroup namespace
        (base / d).mkdir(parents=True)
        (base / d / "cgroup.procs").write_text(procs)
    (base / "cpu").mkdir()  # no cgroup.procs: must not be created
    proc = tmp_path / "cgroup-of-self"
    proc.write_text("9:cpu:/\n8:memory:/ns\n7:pids:/\n0::/\n")
    wait = warmup.warm_migration(str(proc), str(base))
    assert warmup.warm_wait() is True and warmup.warm_wait() is False
    wait()
    assert (base / "pids" / "cgroup.procs").read_text().startswith(me)  # written at offset 0, as to cgroupfs
    assert (base / "memory" / "ns" / "cgroup.procs").read_text() == "1\n2\n"
    assert not (base / "cpu" / "cgroup.procs").exists()
    # nothing listed anywhere: no write at all
    (base / "pids" / "cgroup.procs").write_text("1\n")
    warmup.warm_migration(str(proc), str(base))
    warmup.warm_wait()
    assert (base / "pids" / "cgroup.procs").read_text() == "1\n"
