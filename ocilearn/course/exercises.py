"""Write-a-primitive exercises: the learner writes a small function, a check runs it on
real input and compares the result with ocilearn's own implementation.

Each ``check_*`` takes the learner's function and returns a :class:`Result` whose text is
one of "correct: …", "not quite: <hint>" or "not done yet: …" (when the function still
raises ``NotImplementedError``). Hints say where to look; they never print the answer.

Sources: image-spec descriptor.md "Digests" and image-index.md (01), config.md "Layer
ChainID" and layer.md "Whiteouts" (02), image-spec conversion.md (03), pivot_root(2) and
mount_namespaces(7) (04).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import shutil
import signal
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["Result", "check_blob_digest", "check_chain_id", "check_whiteout", "check_process", "check_pivot_root"]


@dataclass(frozen=True)
class Result:
    """The outcome of a check: ``ok`` (bool), ``done`` (False while the stub raises
    NotImplementedError) and ``text`` (what the notebook prints)."""

    ok: bool
    done: bool
    text: str

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


def _not_done(what: str) -> Result:
    return Result(False, False, f"not done yet: replace the NotImplementedError in your function ({what})")


def _crash(e: BaseException, hint: str) -> Result:
    last = traceback.format_exception_only(type(e), e)[-1].strip()
    return Result(False, True, f"not quite: your function raised {last} — {hint}")


def _run(fn: Callable, *args):
    """Call the learner's function; returns (value, None) or (None, Result)."""
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, _not_done(getattr(fn, "__name__", "function"))
    except SystemExit as e:  # sys.exit() in the learner's code must not end the kernel's cell
        return None, _crash(e, "return a value instead of calling sys.exit()")


# ----------------------------------------------------------------- 01: blob digest


def check_blob_digest(fn: Callable[[bytes, str], bool], blob: bytes | None = None, digest: str | None = None) -> Result:
    """Check ``fn(data, digest) -> bool``: True when ``data`` hashes to ``digest``
    (``"sha256:<hex>"`` or ``"sha512:<hex>"``), False otherwise (descriptor.md "Digests").

    Runs ``fn`` on a real blob (default: the embedded image's config) and on altered copies,
    comparing with :func:`ocilearn.image.digest.verify_bytes`.
    """
    from ..core.errors import DigestMismatch
    from ..image.digest import verify_bytes

    if blob is None or digest is None:
        blob = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    cases = [
        (blob, digest, "the real blob and its own digest"),
        (blob + b"\n", digest, "the blob with one byte appended"),
        (blob, "sha512:" + hashlib.sha512(blob).hexdigest(), "the same blob named by a sha512 digest"),
        (blob, "sha512:" + hashlib.sha512(blob + b"x").hexdigest(), "a sha512 digest of other bytes"),
    ]
    for data, dg, what in cases:
        try:
            verify_bytes(data, dg)
            want = True
        except DigestMismatch:
            want = False
        try:
            got, stop = _run(fn, data, dg)
        except Exception as e:  # noqa: BLE001 - the learner's code may raise anything
            return _crash(e, "the digest is a string 'algorithm:hex' (descriptor.md 'Digests')")
        if stop:
            return stop
        if got is not want:
            return Result(False, True, f"not quite: for {what} your function returned {got!r}; "
                                       "a digest names an algorithm and the hex of a hash (descriptor.md 'Digests', notebook 01 section 5)")
    return Result(True, True, "correct: your check agrees with ocilearn.image.digest.verify_bytes on 4 blobs")


# ----------------------------------------------------------------- 02: chain ID, whiteout


def check_chain_id(fn: Callable[[list[str]], list[str]], diff_ids: list[str] | None = None) -> Result:
    """Check ``fn(diff_ids) -> chain_ids`` (strings ``"sha256:…"``, one per layer) against
    :func:`ocilearn.image.model.chain_ids` (config.md "Layer ChainID")."""
    from ..image.digest import Digest
    from ..image.model import chain_ids

    stacks = [[f"sha256:{hashlib.sha256(bytes([i])).hexdigest()}" for i in range(3)]]
    if diff_ids:
        stacks.insert(0, [str(d) for d in diff_ids])
    for stack in stacks:
        want = [str(c) for c in chain_ids([Digest.parse(d) for d in stack])]
        try:
            got, stop = _run(fn, list(stack))
        except Exception as e:  # noqa: BLE001
            return _crash(e, "the input is a list of 'sha256:…' strings")
        if stop:
            return stop
        if not isinstance(got, (list, tuple)):
            return Result(False, True, f"not quite: return a list of chain IDs (strings), not {type(got).__name__}")
        got = [str(g) for g in got]
        if len(got) != len(want):
            return Result(False, True, f"not quite: {len(stack)} layers need {len(stack)} chain IDs, you returned {len(got)}")
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            if g != w:
                hint = ("image-spec config.md 'Layer ChainID': what is the chain ID of a single layer?" if i == 0 else
                        "a chain ID covers its layer and every layer below it; image-spec config.md 'Layer ChainID' says which text is hashed (section 5)")
                return Result(False, True, f"not quite: chain ID {i} differs — {hint}")
    return Result(True, True, f"correct: your chain IDs equal ocilearn's on {len(stacks)} layer stacks")


def _tree(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            out[rel] = "dir" if p.is_dir() and not p.is_symlink() else (
                p.read_bytes().decode(errors="replace") if p.is_file() else "link")
    return out


def _lower(root: Path) -> None:
    (root / "etc/ssl").mkdir(parents=True)
    (root / "etc/motd").write_text("hello\n")
    (root / "etc/hostname").write_text("box\n")
    (root / "etc/ssl/cert.pem").write_text("pem\n")
    (root / "bin").mkdir()
    (root / "bin/sh").write_text("#!\n")


def check_whiteout(fn: Callable[[str, str], None]) -> Result:
    """Check ``fn(rootfs, entry)``: apply the whiteout entry ``entry`` (e.g.
    ``"etc/.wh.motd"``) to the directory ``rootfs`` — delete the named sibling, file or
    whole directory (layer.md "Whiteouts"). Compared with
    :func:`ocilearn.layer.whiteout.apply_whiteout` on identical trees."""
    from ..core.fsutil import Root
    from ..layer.whiteout import apply_whiteout

    entries = ["etc/.wh.motd", "etc/.wh.ssl", "bin/.wh.missing"]
    with tempfile.TemporaryDirectory(prefix="ocilearn-exercise-") as tmp:
        for entry in entries:
            mine, ref = Path(tmp, "mine"), Path(tmp, "ref")
            for d in (mine, ref):
                shutil.rmtree(d, ignore_errors=True)
                d.mkdir()
                _lower(d)
            with Root(ref) as r:
                apply_whiteout(r, entry, warn=lambda m: None)
            try:
                _, stop = _run(fn, str(mine), entry)
            except Exception as e:  # noqa: BLE001
                return _crash(e, f"for {entry!r}: a whiteout of something absent deletes nothing and is not an error")
            if stop:
                return stop
            got, want = _tree(mine), _tree(ref)
            if got != want:
                extra = sorted(set(got) - set(want))
                missing = sorted(set(want) - set(got))
                if extra:
                    return Result(False, True, f"not quite: after {entry!r} these should be gone: {extra} — "
                                               "layer.md 'Whiteouts': which sibling does the marker name? (section 6)")
                return Result(False, True, f"not quite: after {entry!r} you deleted too much: {missing}")
    return Result(True, True, "correct: your whiteouts leave the same tree as ocilearn.layer.whiteout.apply_whiteout")


# ----------------------------------------------------------------- 03: image config -> process


_CONFIGS = [
    {"Entrypoint": ["/bin/server"], "Cmd": ["--port", "8080"], "Env": ["PATH=/usr/bin:/bin", "MODE=prod"],
     "User": "1000:1000", "WorkingDir": "/srv"},
    {"Cmd": ["sh"], "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "User": "0"},
    {"Entrypoint": ["/entry.sh"], "Env": ["PATH=/bin", "A=1"], "User": "65534:100", "WorkingDir": "/"},
]


def _process_of(cfg: dict) -> dict:
    from ..bundle.convert import convert
    from ..image.model import ImageConfig, dumps

    doc = {"architecture": "amd64", "os": "linux", "config": cfg, "rootfs": {"type": "layers", "diff_ids": []}}
    spec = convert(ImageConfig.from_json(dumps(doc), "exercise"))
    p = spec["process"]
    return {"args": p["args"], "env": p["env"], "cwd": p["cwd"],
            "user": {"uid": p["user"]["uid"], "gid": p["user"]["gid"]}}


def check_process(fn: Callable[[dict], dict]) -> Result:
    """Check ``fn(config) -> {"args", "env", "cwd", "user": {"uid", "gid"}}``: the runtime
    ``process`` fields from an image config's ``config`` object with numeric ``User``
    (image-spec conversion.md). Compared with :func:`ocilearn.bundle.convert.convert`."""
    for cfg in _CONFIGS:
        want = _process_of(cfg)
        try:
            got, stop = _run(fn, dict(cfg))
        except Exception as e:  # noqa: BLE001
            return _crash(e, "the input is the image config's 'config' object (Entrypoint, Cmd, Env, User, WorkingDir)")
        if stop:
            return stop
        if not isinstance(got, dict):
            return Result(False, True, f"not quite: return a dict with args, env, cwd and user, not {type(got).__name__}")
        for key, hint in [("args", "section 3: how do Entrypoint and Cmd combine, and what if one is absent?"),
                          ("env", "section 3: what does the runtime spec make of Env?"),
                          ("cwd", "section 3: which field gives the working directory, and what if the image gives none?"),
                          ("user", "User is 'uid' or 'uid:gid' here: what when the gid is missing, and what type are the values?")]:
            if got.get(key) != want[key]:
                return Result(False, True, f"not quite: {key!r} differs for config {sorted(cfg)} — {hint}")
    return Result(True, True, f"correct: your process fields equal ocilearn.bundle.convert.convert on {len(_CONFIGS)} configs")


# ----------------------------------------------------------------- 04: bind + pivot_root


def _child(fn: Callable[[str], None], rootfs: str, w: int) -> None:
    from ..core import syscalls as sc

    def say(msg: str) -> None:
        os.write(w, msg.encode()[:4000])

    try:
        uid, gid = os.getuid(), os.getgid()
        if uid == 0:
            # As root, first become nobody: the learner's function then holds root only
            # inside the user namespace below, over its own mounts, and cannot write the
            # host's files through the old root (user_namespaces(7)). A credential change
            # makes the process non-dumpable, which would leave /proc/self/uid_map root's.
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            sc.set_dumpable(True)
            uid = gid = NOBODY
        sc.unshare(sc.CLONE_NEWUSER | sc.CLONE_NEWNS)
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
        Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
        proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY)  # the new root has no /proc mounted
        host = os.open("/", os.O_PATH | os.O_DIRECTORY)  # the old root, to see later whether it is still mounted
        try:
            fn(rootfs)
        except NotImplementedError:
            say("NOTDONE")
            return
        except Exception as e:  # noqa: BLE001
            say("RAISED " + traceback.format_exception_only(type(e), e)[-1].strip())
            return
        names = sorted(os.listdir("/"))
        cwd = os.getcwd()
        marker = os.path.exists("/ocilearn-exercise-marker")
        # mounts whose mount point is "/": one (the rootfs) after pivot_root and a detach
        # of the old root; two when the old root is still stacked on it (pivot_root(".", ".")
        # without umount2(".", MNT_DETACH))
        with open("self/mountinfo", opener=lambda path, flags: os.open(path, flags, dir_fd=proc)) as f:
            at_root = sum(1 for line in f.read().splitlines() if line.split()[4] == "/")
        # the chroot(2) escape: chroot into a subdirectory while the working directory
        # stays outside it, climb with "..", chroot there. From a process root set by
        # chroot alone that climb reaches the mount namespace's own root, the host's;
        # after pivot_root the namespace's root is the rootfs and ".." ends there.
        os.chdir("/")
        os.chroot("/bin")
        for _ in range(64):
            os.chdir("..")
        os.chroot(".")
        escaped = not os.path.exists("/ocilearn-exercise-marker")
        # is the old root still mounted in this namespace? Mounting a tmpfs onto it
        # succeeds only then: once detached (umount2 MNT_DETACH) it is no longer mounted
        # anywhere. After a chroot, or a mount moved onto "/" and a chroot (runc
        # --no-pivot), it is. (The tmpfs ends with this child's mount namespace.)
        os.fchdir(host)
        try:
            sc.mount("ocilearn-check", ".", "tmpfs", 0)
            attached = True
        except OSError:
            attached = False
        say(f"OK {cwd}|{','.join(names)}|{marker}|{at_root}|{escaped}|{attached}")
    except Exception as e:  # noqa: BLE001
        say("SETUP " + str(e))


#: the unprivileged uid and gid (``nobody``, nogroup) the pivot_root check runs as when
#: started by root
NOBODY = 65534

#: seconds the learner's bind + pivot_root function may take before the check stops it
PIVOT_ROOT_TIMEOUT = 30.0


def check_pivot_root(fn: Callable[[str], None]) -> Result:
    """Check ``fn(rootfs)``: make ``rootfs`` the root of the calling process's mount
    namespace — bind-mount it onto itself, ``chdir`` into it, ``pivot_root(".", old)``,
    detach the old root and remove its mount point, ``chdir("/")`` (pivot_root(2)).

    ``fn`` runs in a forked child in a fresh mount namespace and user namespace (as root,
    the child first becomes ``nobody``), so the learner's process and the host's files
    are untouched. The check then looks at
    ``/`` as the child sees it: it must list exactly the rootfs (no old root left behind),
    only one mount may sit on ``/`` in ``/proc/self/mountinfo`` (not the old root stacked
    above it), the chroot(2) escape — chroot into a subdirectory, climb with ``..``
    from outside it — must still end in the rootfs (a chroot alone ends in the host's
    ``/``), and the old root must no longer be mounted in the namespace (a tmpfs mounted
    onto it through an fd opened before ``fn`` must fail: a mount moved onto ``/`` plus
    a chroot, runc's ``--no-pivot``, leaves it there).
    """
    with tempfile.TemporaryDirectory(prefix="ocilearn-exercise-") as tmp:
        os.chmod(tmp, 0o755)  # reachable by nobody, as whom root runs the check
        rootfs = Path(tmp, "rootfs")
        for d in ("bin", "etc", "proc"):
            (rootfs / d).mkdir(parents=True)
        (rootfs / "ocilearn-exercise-marker").write_text("new root\n")
        want = sorted(os.listdir(rootfs))
        if os.geteuid() == 0:  # the rootfs is the learner's to change: nobody's, as the check runs
            for path in (rootfs, *rootfs.iterdir()):
                os.chown(path, NOBODY, NOBODY)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                os.close(r)
                _child(fn, str(rootfs), w)
            finally:
                os._exit(0)
        os.close(w)
        chunks = []
        deadline = time.monotonic() + PIVOT_ROOT_TIMEOUT
        timed_out = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                timed_out = True  # a learner's loop or a blocking call: stop the child
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                break
            b = os.read(r, 4096)
            if not b:
                break
            chunks.append(b)
        os.close(r)
        os.waitpid(pid, 0)
        out = b"".join(chunks).decode(errors="replace")
    if timed_out:
        return Result(False, True, f"not quite: your function did not return within {PIVOT_ROOT_TIMEOUT:g} s "
                                   "(the check stopped it) — does it wait for something, or loop?")
    if out == "NOTDONE":
        return _not_done(getattr(fn, "__name__", "function"))
    if out.startswith("SETUP"):
        return Result(False, False, f"cannot run this check here: {out[6:]} (needs a mount namespace; see course.check())")
    if out.startswith("RAISED"):
        return Result(False, True, f"not quite: your function raised {out[7:]} — pivot_root(2) lists what must be true "
                                   "of new_root and put_old before the call")
    if not out.startswith("OK "):
        return Result(False, True, f"not quite: the child reported nothing ({out!r})")
    cwd, names, marker, at_root, escaped, attached = out[3:].split("|")
    names = sorted(n for n in names.split(",") if n)
    if marker != "True":
        return Result(False, True, "not quite: after your function '/' is still the old root (pivot_root(2))")
    if int(at_root) > 1:
        return Result(False, True, f"not quite: {at_root} mounts are stacked on '/' (/proc/self/mountinfo): the old root "
                                   "is still attached above the new one, and ../.. of any path can reach it through "
                                   "its mounts — what does pivot_root(2) say to do with it afterwards?")
    if escaped == "True":
        return Result(False, True, "not quite: '/' shows the rootfs, but only as this process's root: chdir('..') from "
                                   "outside it climbs back to the host's / (chroot(2), NOTES). What changes the root of "
                                   "the whole mount namespace?")
    if names != want:
        extra = sorted(set(names) - set(want))
        return Result(False, True, f"not quite: '/' also holds {extra} — what must happen to the old root after pivot_root? (pivot_root(2), NOTES)")
    if attached == "True":
        return Result(False, True, "not quite: '/' shows the rootfs, but the host's old root is still mounted in this "
                                   "mount namespace, below it — a mount moved onto '/' plus chroot(2) leaves it there. "
                                   "What makes it a directory you can then detach? (pivot_root(2))")
    if cwd != "/":
        return Result(False, True, f"not quite: the working directory is {cwd!r}, outside the new root — where should it be at the end?")
    return Result(True, True, "correct: '/' is the rootfs and the old root is gone, as runc leaves it")
