"""The workshop hub's learner accounts: create, prepare, reset, clean up (standard library only).

Used by ``jupyterhub_config.py`` (the spawner calls :func:`ensure_learner` and
:func:`prepare` before it starts a learner's server, :func:`remove_containers` after it
stopped) and from the command line by ``make hub-reset``::

    python scripts/hub/workshop.py reset [NAME …]     # one learner, or every learner of the hub
    python scripts/hub/workshop.py check-names NAME …  # validate a LEARNERS list
    python scripts/hub/workshop.py remove NAME …       # after the workshop: processes, account, home

Each learner is an ordinary Unix user (useradd(8); no password, so no console or SSH login:
the hub's login page is the way in). What belongs to a learner is created *as that learner*
(``subprocess`` with ``user=``/``group=``/``extra_groups=[]``), never by root inside a home the
learner controls, so a symlink a learner planted in their home cannot make root write
elsewhere (the classic /tmp-race class of bug, e.g. CVE-2016-1247's log-file symlink).

Layout per learner (NAME, uid UID):

- ``~/ocilearn-course/``    the learner's copy of the course notebooks (theirs to edit)
- ``~/ocilearn-work/``      TMPDIR: the notebooks' ``tempfile.mkdtemp()`` work dirs, mode 0700
- ``/run/user/UID/``        XDG_RUNTIME_DIR, mode 0700, owned by the learner: the ocilearn
  runtime keeps its container state in ``$XDG_RUNTIME_DIR/ocilearn`` (runc's convention)
- the home itself is mode 0700: no learner can read another's work.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

COURSE_DIR = "ocilearn-course"
WORK_DIR = "ocilearn-work"
RUNTIME_BASE = "/run/user"
#: useradd(8)'s default NAME_REGEX on Debian, without the upper-case and '$' extensions
NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
LEARNER_COMMENT = "ocilearn workshop learner"  # the GECOS field of the accounts the hub creates
FIRST_LEARNER_UID = 1000  # login.defs(5) UID_MIN: below it are system accounts


class WorkshopError(Exception):
    """A learner name, account or directory the hub refuses to use (one line, names it)."""


def parse_learners(text: str) -> list[str]:
    """``"ana ben"`` (spaces or commas) → ``["ana", "ben"]``: each a valid useradd(8) name,
    no duplicates, not root. Raises WorkshopError naming the bad entry."""
    names = [n for n in re.split(r"[\s,]+", text.strip()) if n]
    if not names:
        raise WorkshopError("LEARNERS is empty: name at least one learner, e.g. LEARNERS=\"ana ben\"")
    seen = set()
    for n in names:
        if not NAME_RE.match(n):
            raise WorkshopError(f"learner name {n!r} is not a valid Unix user name (lower-case letters, digits, _ and -, "
                                "starting with a letter or _, at most 32 characters; useradd(8))")
        if n in seen:
            raise WorkshopError(f"learner name {n!r} is listed twice")
        seen.add(n)
    return names


def learner_account(name: str) -> pwd.struct_passwd:
    """The existing account ``name``; raises WorkshopError when it is a system account
    (uid below 1000, root included): the hub never runs a learner's server as one."""
    pw = pwd.getpwnam(name)
    if pw.pw_uid < FIRST_LEARNER_UID:
        raise WorkshopError(f"user {name!r} exists with uid {pw.pw_uid} (a system account): choose another learner name")
    return pw


def ensure_learner(name: str, home_base: str = "/home") -> pwd.struct_passwd:
    """The learner's account, created with useradd(8) when missing: a home of mode 0700, a
    group of its own, /bin/bash (JupyterLab's terminal), no password (locked: no console or
    SSH login). Returns its passwd entry. Raises WorkshopError (invalid name, system
    account, useradd failure)."""
    parse_learners(name)
    try:
        pw = learner_account(name)
    except KeyError:
        home = os.path.join(home_base, name)
        p = subprocess.run(["useradd", "--create-home", "--home-dir", home, "--shell", "/bin/bash", "--user-group",
                            "--comment", LEARNER_COMMENT, name], capture_output=True, text=True)
        if p.returncode != 0:
            raise WorkshopError(f"useradd {name} failed (exit {p.returncode}): {p.stderr.strip()}")
        pw = learner_account(name)
    st = os.lstat(pw.pw_dir)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != pw.pw_uid:
        raise WorkshopError(f"home of {name} ({pw.pw_dir}) is not a directory owned by uid {pw.pw_uid}")
    os.chmod(pw.pw_dir, 0o700)
    return pw


def runtime_dir(pw: pwd.struct_passwd) -> str:
    """``/run/user/UID`` (the XDG_RUNTIME_DIR that pam_systemd would create at login), made
    here when missing: a directory owned by the learner, mode 0700. /run/user is root's, so
    nobody else can plant anything there. Raises WorkshopError when it exists but is not
    that."""
    os.makedirs(RUNTIME_BASE, 0o755, exist_ok=True)
    path = os.path.join(RUNTIME_BASE, str(pw.pw_uid))
    try:
        os.mkdir(path, 0o700)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != pw.pw_uid:
        raise WorkshopError(f"{path} exists but is not a directory owned by {pw.pw_name} (uid {pw.pw_uid})")
    os.chmod(path, 0o700)
    return path


def learner_env(pw: pwd.struct_passwd, venv: str) -> dict[str, str]:
    """The environment of everything that runs as the learner (their server, its kernels,
    the reset commands): the shared venv first on PATH, XDG_RUNTIME_DIR per learner, TMPDIR
    in their home."""
    return {
        "HOME": pw.pw_dir,
        "USER": pw.pw_name,
        "LOGNAME": pw.pw_name,
        "SHELL": pw.pw_shell or "/bin/sh",
        "PATH": f"{venv}/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "LANG": "C.UTF-8",
        "XDG_RUNTIME_DIR": os.path.join(RUNTIME_BASE, str(pw.pw_uid)),
        "TMPDIR": os.path.join(pw.pw_dir, WORK_DIR),
        "PYTHONDONTWRITEBYTECODE": "1",  # the shared venv is read-only for learners
    }


def as_learner(pw: pwd.struct_passwd, script: str, *args: str, venv: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``sh -c SCRIPT sh ARGS…`` as the learner (their uid, gid, no supplementary groups),
    in their home, with :func:`learner_env`. Raises WorkshopError on a non-zero exit when
    ``check``."""
    p = subprocess.run(["/bin/sh", "-c", script, "sh", *args], user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
                       cwd=pw.pw_dir, env=learner_env(pw, venv), capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise WorkshopError(f"as {pw.pw_name}: {script.splitlines()[0]}… failed (exit {p.returncode}): {p.stderr.strip()[-500:]}")
    return p


#: as the learner: the work dir (0700), and the course copied from the shared read-only
#: copy when the learner has none yet (their edits are never overwritten at login)
PREPARE = r"""set -eu
umask 077
mkdir -p "$HOME/$2" && chmod 0700 "$HOME/$2"
if [ ! -e "$HOME/$1" ]; then
  cp -R "$3" "$HOME/$1.partial" && chmod -R u+rwX "$HOME/$1.partial" && mv "$HOME/$1.partial" "$HOME/$1"
fi
"""

#: as the learner: the current copy moved aside (nothing lost), a fresh one copied
RESET = r"""set -eu
umask 077
if [ -e "$HOME/$1" ]; then mv "$HOME/$1" "$HOME/$1.before-reset-$4"; fi
rm -rf "$HOME/$1.partial"
cp -R "$3" "$HOME/$1.partial" && chmod -R u+rwX "$HOME/$1.partial" && mv "$HOME/$1.partial" "$HOME/$1"
mkdir -p "$HOME/$2" && chmod 0700 "$HOME/$2"
"""

#: as the learner: delete every container in their state root (ocilearn's runc-like CLI)
REMOVE_CONTAINERS = r"""set -u
root="$XDG_RUNTIME_DIR/ocilearn"
[ -d "$root" ] || exit 0
for id in $(python -m ocilearn.runtime list --quiet); do
  python -m ocilearn.runtime delete --force "$id" || echo "could not delete container $id" >&2
done
"""


def prepare(pw: pwd.struct_passwd, course_src: str, venv: str) -> None:
    """Everything a learner's server needs before it starts: the runtime dir (by root, in
    root's /run/user), then as the learner the work dir and the course copy."""
    if not os.path.isdir(course_src):
        raise WorkshopError(f"course source {course_src} is not a directory (run scripts/hub/setup.sh)")
    runtime_dir(pw)
    as_learner(pw, PREPARE, COURSE_DIR, WORK_DIR, course_src, venv=venv)


def remove_containers(pw: pwd.struct_passwd, venv: str) -> str:
    """Delete the learner's containers (as the learner); returns what the commands printed
    on stderr (empty when all went)."""
    runtime_dir(pw)
    return as_learner(pw, REMOVE_CONTAINERS, venv=venv, check=False).stderr


def reset(name: str, course_src: str, venv: str) -> str:
    """Reset one learner: their containers deleted, their course copy moved to
    ``~/ocilearn-course.before-reset-STAMP`` and a fresh copy put in place. Returns the path
    of the old copy (or "" when there was none). Raises WorkshopError."""
    try:
        pw = learner_account(name)
    except KeyError:
        raise WorkshopError(f"no such learner account: {name!r} (has the learner logged in yet?)")
    problems = remove_containers(pw, venv)
    if problems.strip():
        print(f"reset {name}: {problems.strip()}", file=sys.stderr)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    had = os.path.lexists(os.path.join(pw.pw_dir, COURSE_DIR))
    runtime_dir(pw)
    as_learner(pw, RESET, COURSE_DIR, WORK_DIR, course_src, stamp, venv=venv)
    return os.path.join(pw.pw_dir, f"{COURSE_DIR}.before-reset-{stamp}") if had else ""


def learner_pids(uid: int) -> list[int]:
    """PIDs of every process whose real uid is ``uid`` (from /proc/PID/status)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            pids.append(int(d))
                        break
        except OSError:
            continue
    return pids


def remove_learner(name: str) -> None:
    """After the workshop: the learner's processes killed (by PID), the account and home
    removed (userdel -r), /run/user/UID removed (so a later account with the same uid does
    not inherit it). Only accounts the hub created (their comment is :data:`LEARNER_COMMENT`).
    Raises WorkshopError (another account, a system account, userdel failure)."""
    import shutil
    import signal

    try:
        pw = learner_account(name)
    except KeyError:
        return
    if pw.pw_gecos != LEARNER_COMMENT:
        raise WorkshopError(f"user {name!r} was not created by the workshop hub (comment {pw.pw_gecos!r}): not removing it")
    for _ in range(50):
        pids = learner_pids(pw.pw_uid)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    p = subprocess.run(["userdel", "--remove", name], capture_output=True, text=True)
    if p.returncode not in (0, 12):  # 12: could not remove the mail spool / home leftovers (userdel(8))
        raise WorkshopError(f"userdel --remove {name} failed (exit {p.returncode}): {p.stderr.strip()}")
    shutil.rmtree(os.path.join(RUNTIME_BASE, str(pw.pw_uid)), ignore_errors=True)
    if os.path.lexists(pw.pw_dir):
        shutil.rmtree(pw.pw_dir, ignore_errors=True)


def _state_learners(state: str) -> list[str]:
    f = Path(state) / "learners"
    if not f.is_file():
        raise WorkshopError(f"{f} not found: start the hub once (make hub), or name the learner: make hub-reset LEARNER=NAME")
    return parse_learners(f.read_text())


def main(argv: list[str]) -> int:
    venv = os.environ.get("HUB_VENV", "/opt/ocilearn-hub/venv")
    course = os.environ.get("HUB_COURSE", os.path.join(venv, "share", "ocilearn", "course"))
    state = os.environ.get("HUB_STATE", ".cache/hub")
    try:
        if argv[:1] == ["check-names"]:
            print(" ".join(parse_learners(" ".join(argv[1:]))))
            return 0
        if argv[:1] == ["remove"] and argv[1:]:
            for n in parse_learners(" ".join(argv[1:])):
                remove_learner(n)
                print(f"removed {n}: processes, account, home and /run/user entry")
            return 0
        if argv[:1] == ["reset"]:
            names = parse_learners(" ".join(argv[1:])) if argv[1:] else _state_learners(state)
            for n in names:
                if os.geteuid() != 0:
                    raise WorkshopError("reset runs as root (it acts as each learner): sudo make hub-reset")
                try:
                    old = reset(n, course, venv)
                except WorkshopError as e:
                    if len(names) == 1:
                        raise
                    print(f"reset: skipped {n}: {e}", file=sys.stderr)
                    continue
                print(f"reset {n}: fresh ~{n}/{COURSE_DIR}" + (f"; previous copy kept in {old}" if old else ""))
            return 0
    except WorkshopError as e:
        print(f"hub: error: {e}", file=sys.stderr)
        return 1
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
