"""bin/ocilearn, the launcher of the ``ocilearn`` command and, under the name
``ocilearn-runtime``, of runc's command line for podman, containerd and the notebooks:
Python without ``site`` (-S), without the caller's directory on sys.path (-P) or
PYTHONPATH (-E), the package found in the site-packages beside the script's interpreter
(or through the .pth of an editable install); a script with no interpreter beside it
hands over to the ``ocilearn-py`` console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from test_runtime_helpers import OCILEARN

LAUNCHER = REPO / "bin" / "ocilearn"
NAMES = ("ocilearn", "ocilearn-runtime")


def _env_dir(tmp_path, with_python: bool = True, editable: bool = False, deps: bool = False):
    """A layout like an installed environment: ``bin/ocilearn`` and ``bin/ocilearn-runtime``
    (copies of the one script, as an install writes them) + ``bin/python3``, and
    ``lib/pythonX.Y/site-packages/ocilearn`` (a link to this checkout's package) — or, with
    ``editable``, only the .pth file naming the checkout that an editable install writes.
    ``deps``: links to the rest of this venv's site-packages too (ocilearn's dependencies)."""
    b = tmp_path / "env" / "bin"
    b.mkdir(parents=True)
    assert (REPO / "bin" / "ocilearn-runtime").resolve() == LAUNCHER.resolve()  # one script, two names
    for name in NAMES:
        (b / name).write_bytes(LAUNCHER.read_bytes())
        (b / name).chmod(0o755)
    if with_python:
        (b / "python3").symlink_to(os.path.realpath(sys.executable))
        sp = tmp_path / "env" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
        sp.mkdir(parents=True)
        if editable:
            (sp / "__editable__.ocilearn-0.pth").write_text(f"{REPO}\n")
        else:
            (sp / "ocilearn").symlink_to(REPO / "ocilearn")
        if deps:
            here = Path(next(p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)))
            for entry in here.iterdir():
                if not entry.name.startswith(("ocilearn", "__editable__", "_distutils_hack", "distutils-precedence")):
                    (sp / entry.name).symlink_to(entry)
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
    for name in NAMES:
        for env in (_clean_env(), {**_clean_env(), "PYTHONPATH": ":/nonexistent"}, {**_clean_env(), "PYTHONPATH": "/nonexistent:"}):
            p = subprocess.run([str(b / name), "--root", str(tmp_path / "root"), "list"], capture_output=True, text=True,
                               env=env, cwd=cwd)
            assert p.returncode == 0, (name, env.get("PYTHONPATH"), p.stderr)
            assert p.stdout.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]


def test_the_name_picks_the_program(tmp_path):
    # `ocilearn` is the whole command line: here skopeo's copy of the embedded image, run
    # with nothing but the package in site-packages; `ocilearn-runtime` is runc's alone
    from ocilearn.image import embedded
    from ocilearn.image.layout import ImageLayout, resolve_ref

    b = _env_dir(tmp_path, deps=True)
    src = embedded.layout_path()
    p = subprocess.run([str(b / "ocilearn"), "copy", f"oci:{src}:{embedded.REF}", f"oci:{tmp_path / 'copy'}:x"], capture_output=True,
                       text=True, env=_clean_env(), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    want = resolve_ref(ImageLayout.open(src), embedded.REF).digest
    assert resolve_ref(ImageLayout.open(tmp_path / "copy"), "x").digest == want and str(want).startswith("sha256:")
    r = subprocess.run([str(b / "ocilearn-runtime"), "copy", f"oci:{src}:{embedded.REF}", f"oci:{tmp_path / 'c2'}:x"], capture_output=True,
                       text=True, env=_clean_env(), cwd=tmp_path)
    assert r.returncode == 1 and "usage: ocilearn-runtime" in r.stderr and "'copy'" in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.startswith("ocilearn-runtime: error: argument COMMAND: invalid choice: 'copy'")  # errors name the program run
    assert not (tmp_path / "c2").exists()


def test_an_editable_install_is_found_through_its_pth_file(tmp_path):
    # site-packages holds only the .pth line naming the checkout (setuptools' compat mode)
    b = _env_dir(tmp_path, editable=True)
    for name in NAMES:
        p = subprocess.run([str(b / name), "--root", str(tmp_path / "root"), "list"], capture_output=True, text=True,
                           env=_clean_env(), cwd=tmp_path)
        assert (p.returncode, p.stdout.split()) == (0, ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]), p.stderr


def test_an_environment_without_the_package_gets_one_line(tmp_path):
    b = _env_dir(tmp_path)
    sp = b.parent / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    (sp / "ocilearn").unlink()
    for name in NAMES:
        p = subprocess.run([str(b / name), "features"], capture_output=True, text=True, env=_clean_env(), cwd=tmp_path)
        assert (p.returncode, p.stdout) == (1, ""), p
        assert p.stderr == f"{name}: the ocilearn package is not in {sp} (nor named by a .pth file there): reinstall ocilearn\n"


def test_launcher_without_an_interpreter_beside_it_runs_the_console_script(tmp_path):
    b = _env_dir(tmp_path, with_python=False)
    for name in NAMES:
        p = subprocess.run([str(b / name), "--root", "/x", "state", "c1"], capture_output=True, text=True)
        assert p.returncode == 127 and p.stdout == "", p
        assert p.stderr == f"{name}: no python3 beside {b / name} and no ocilearn-py console script: reinstall ocilearn (pip install ocilearn)\n"
    (b / "ocilearn-py").write_text('#!/bin/sh\necho "console script: $*"\n')
    (b / "ocilearn-py").chmod(0o755)
    for name in NAMES:
        p = subprocess.run([str(b / name), "--root", "/x", "state", "c1"], capture_output=True, text=True)
        assert (p.returncode, p.stdout) == (0, "console script: --root /x state c1\n")


def test_a_link_to_the_launcher_runs_it_in_its_own_environment(tmp_path):
    # podman's and containerd's configurations often name a link (/usr/local/bin/…); the
    # directory of the link may hold another python3 (/usr/bin: an older Python without
    # -P, or one without ocilearn): the linked script's own interpreter runs, once, and the
    # link's name still picks the program
    b = _env_dir(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "python3").write_text("#!/bin/sh\necho 'the python3 beside the link ran' >&2\nexit 99\n")
    (other / "python3").chmod(0o755)
    bare = tmp_path / "bare"  # nothing beside the link
    bare.mkdir()
    for d in (other, bare):
        (d / "ocilearn-runtime").symlink_to(b / "ocilearn-runtime")
        (d / "runc").symlink_to(b / "ocilearn")
    for link in (other / "ocilearn-runtime", bare / "ocilearn-runtime", other / "runc", bare / "runc"):
        p = subprocess.run([str(link), "--root", str(tmp_path / "root"), "state", "nope"], capture_output=True, text=True,
                           env=_clean_env(), cwd=tmp_path)
        assert (p.returncode, p.stdout) == (1, ""), p.stderr
        assert p.stderr == f"{link.name}: error: container 'nope' does not exist in {tmp_path / 'root'}\n", p.stderr


def test_a_package_installed_elsewhere_hands_over_to_the_console_script(tmp_path):
    # python3 beside the script, the package not in <env>/lib/pythonX.Y/site-packages (a
    # distribution's dist-packages, a --prefix install): ocilearn-py knows where it is
    b = _env_dir(tmp_path)
    sp = b.parent / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    (sp / "ocilearn").unlink()
    (b / "ocilearn-py").write_text('#!/bin/sh\necho "console script: $*"\n')
    (b / "ocilearn-py").chmod(0o755)
    for name in NAMES:
        p = subprocess.run([str(b / name), "--root", "/x", "list"], capture_output=True, text=True, env=_clean_env(), cwd=tmp_path)
        assert (p.returncode, p.stdout, p.stderr) == (0, "console script: --root /x list\n", "")


def test_a_closed_stdout_is_no_traceback(tmp_path):
    b = _env_dir(tmp_path)
    p = subprocess.run(f"'{b / 'ocilearn-runtime'}' features >&-", shell=True, capture_output=True, text=True, env=_clean_env())
    assert p.returncode == 0 and "Traceback" not in p.stderr and "AttributeError" not in p.stderr, p.stderr


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


def _readme_demo() -> list[str]:
    """The three commands of the README's "The command line" demo, as written there."""
    text = (REPO / "README.md").read_text()
    block = text.split("## The command line", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    return [line for line in lines if line]


def test_the_readme_demo_prints_what_the_readme_says(unpriv_user, request_cleanup):
    """The README's copy -> unpack -> run, run as written (in a checkout, .venv/bin/ocilearn)
    with /tmp/demo replaced by a fresh directory: as root the image's user `app` greets, as
    an ordinary user the namespace's root does, and `unpack` warned about it."""
    import shlex

    from conftest import as_user

    cmds = _readme_demo()
    assert [c.split()[:2] for c in cmds] == [[".venv/bin/ocilearn", "copy"], [".venv/bin/ocilearn", "unpack"],
                                              [".venv/bin/ocilearn", "run"]], cmds
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="ocilearn-readme-"))  # pytest's tmp_path is 0700 root's
    top.chmod(0o755)
    request_cleanup.append(top)
    for who, want in (("root", "hello from app in /home/app\n"), ("user", "hello from root in /home/app\n")):
        demo = top / who
        demo.mkdir()
        outs = []
        for cmd in cmds:
            argv = [str(REPO / a) if a.startswith(".venv/") else a.replace("/tmp/demo", str(demo)) for a in shlex.split(cmd)]
            if who == "root":
                p = subprocess.run(argv, capture_output=True, text=True, cwd=REPO,
                                   env={**_clean_env(), "XDG_RUNTIME_DIR": str(demo)})
            else:
                os.chown(demo, unpriv_user[1], unpriv_user[2])
                p = as_user(unpriv_user, argv, env={"XDG_RUNTIME_DIR": str(demo)}, cwd=REPO)
            assert p.returncode == 0, (who, cmd, p.stderr)
            outs.append(p)
        assert outs[2].stdout == want, (who, outs[2].stdout, outs[2].stderr)
        unpack_err = outs[1].stderr
        assert ("image user (uid 1000, gid 1000) is not mapped" in unpack_err) == (who == "user"), unpack_err
        uid = json.loads((demo / "bundle/config.json").read_text())["process"]["user"]["uid"]
        assert uid == (1000 if who == "root" else 0)


def test_both_names_print_one_version_format():
    """``ocilearn --version`` (the whole command line, click) and ``ocilearn-runtime
    --version`` (runc's command line) print the same two lines, in runc's format."""
    from importlib.metadata import version

    outs = [subprocess.run([str(REPO / ".venv/bin" / name), "--version"], capture_output=True, text=True, env=_clean_env())
            for name in NAMES]
    assert [p.returncode for p in outs] == [0, 0]
    assert outs[0].stdout == outs[1].stdout == f"ocilearn version {version('ocilearn')}\nspec: 1.0.2\n"
