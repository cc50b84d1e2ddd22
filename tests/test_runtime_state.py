"""ocilearn.runtime.state: where the state lives and who may read it.

The state root of an ordinary user without ``$XDG_RUNTIME_DIR`` is ``/tmp/ocilearn-UID``;
/tmp is shared, so a directory another user made there first is refused. A state root the
caller cannot search (another learner's, 0700) gives a permission error, never "does not
exist" — ``delete --force`` must not report success for a container it could not see.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys

import pytest
from conftest import as_user
from layer_helpers import user_python
from test_runtime_helpers import needs_root

from ocilearn.core.errors import ContainerError
from ocilearn.runtime.container import Container
from ocilearn.runtime.state import check_id

ENTRY = [sys.executable, "-c", "from ocilearn.entry import entry; entry()"]


@pytest.fixture
def fallback_root(unpriv_user):
    """``/tmp/ocilearn-UID`` of the test user, moved aside for the test and put back."""
    path = f"/tmp/ocilearn-{unpriv_user[1]}"
    saved = f"{path}.saved-by-test"
    if os.path.lexists(path):
        os.rename(path, saved)
    yield path
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)
    if os.path.lexists(saved):
        os.rename(saved, path)


def _as_user(user, *args: str) -> subprocess.CompletedProcess:
    """``ocilearn ARGS`` as ``user``, in as_user's clean environment (no XDG_RUNTIME_DIR)."""
    py, env = user_python(user)
    return as_user(user, [py, "-c", "from ocilearn.entry import entry; entry()", *args], env=env)


def _list(user) -> subprocess.CompletedProcess:
    return _as_user(user, "list")


@needs_root
def test_fallback_root_made_private_for_its_user(unpriv_user, fallback_root):
    p = _list(unpriv_user)
    assert (p.returncode, p.stdout) == (0, "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"), p.stderr
    st = os.lstat(fallback_root)
    assert stat.S_ISDIR(st.st_mode) and (st.st_uid, stat.S_IMODE(st.st_mode)) == (unpriv_user[1], 0o700)


@needs_root
@pytest.mark.parametrize("planted", ["other owner", "open mode", "symlink"])
def test_fallback_root_planted_by_someone_else_is_refused(unpriv_user, fallback_root, tmp_path, planted):
    if planted == "other owner":
        os.mkdir(fallback_root, 0o700)  # root's, not the user's
    elif planted == "open mode":
        os.mkdir(fallback_root)
        os.chown(fallback_root, unpriv_user[1], unpriv_user[2])
        os.chmod(fallback_root, 0o777)
    else:
        target = tmp_path / "elsewhere"
        target.mkdir()
        os.chown(target, unpriv_user[1], unpriv_user[2])
        os.chmod(target, 0o700)
        os.symlink(target, fallback_root)
    p = _list(unpriv_user)
    assert p.returncode == 1
    assert p.stderr.startswith(f"ocilearn: error: state root {fallback_root} is not a private directory of uid {unpriv_user[1]}")
    assert p.stdout == ""


@needs_root
def test_another_users_state_root_gives_a_permission_error(unpriv_user, tmp_path):
    root = tmp_path / "state"
    (root / "box").mkdir(parents=True)
    os.chmod(root, 0o700)  # root's state root, as /run/ocilearn or another learner's
    os.chmod(tmp_path, 0o755)
    for args in (["state", "box"], ["delete", "box"], ["delete", "--force", "box"], ["kill", "box", "KILL"]):
        p = _as_user(unpriv_user, "--root", str(root), *args)
        assert p.returncode == 1, (args, p.stderr)
        assert p.stderr == (f"ocilearn: error: container 'box' in {root}: Permission denied (the state directory belongs to "
                            "another user; use your own --root)\n"), args
    assert (root / "box").is_dir()


@pytest.mark.parametrize("bad", ["..", ".", "", "/tmp/x", "a/b", "../x", "x\0y"])
def test_every_command_checks_the_container_id(tmp_path, bad):
    root = tmp_path / "sub" / "R"
    root.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("data")
    (tmp_path / "sub" / "keep").write_text("data")
    with pytest.raises(ContainerError, match="invalid container id"):
        Container.load(str(root), bad if bad != "/tmp/x" else str(victim))
    for cmd in (["delete"], ["delete", "--force"], ["state"], ["kill"], ["start"]):
        arg = str(victim) if bad == "/tmp/x" else bad
        if "\0" in arg:
            continue  # not passable on a command line
        p = subprocess.run([*ENTRY, "--root", str(root), *cmd, arg], capture_output=True, text=True, timeout=30)
        assert p.returncode != 0, (cmd, p.stdout, p.stderr)
        assert "invalid container id" in p.stderr and "Traceback" not in p.stderr
    assert (victim / "keep").read_text() == "data" and (tmp_path / "sub" / "keep").read_text() == "data"


def test_good_ids_pass():
    assert check_id("web-1.a_b+c") == "web-1.a_b+c"


def test_empty_root_is_refused_not_the_default(tmp_path):
    p = subprocess.run([*ENTRY, "--root", "", "delete", "x"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "--root is empty" in p.stderr


def test_a_symlinked_container_directory_is_refused_and_its_target_kept(tmp_path):
    """A state root writable by someone else could hold ``c1 -> /some/dir``: delete must not
    empty the directory the link names."""
    root = tmp_path / "root"
    root.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_bytes(b"keep me\n")
    (root / "c1").symlink_to(victim)
    for args in (["delete", "c1"], ["delete", "--force", "c1"], ["state", "c1"]):
        p = subprocess.run([*ENTRY, "--root", str(root), *args], capture_output=True, text=True, timeout=30)
        assert p.returncode == 1 and "state directory is a symbolic link" in p.stderr, (args, p.stderr)
    assert (victim / "precious").read_bytes() == b"keep me\n" and (root / "c1").is_symlink()
