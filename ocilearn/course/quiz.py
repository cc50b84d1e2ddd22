"""Answer-a-question exercises: the checks behind the notebooks' ``ANSWER_n`` cells.

A notebook's check cell shows only the call, e.g. ``quiz.check("01.1", ANSWER_1,
image=image)``; the expected value is computed here from the learner's real input (the
image the notebook opened, the bundle it wrote, the machine report, a probe in a
throwaway namespace) so it is never written in the notebook. Where the answer is a fixed
word that no input on the machine yields, it is compared with a sha256 of the
normalised answer, so the notebook's source does not show it.

Every check returns a :class:`~ocilearn.course.exercises.Result` whose text starts with
"correct:", "not quite:" or "not answered yet:". Hints name the section and the concept,
never the answer. Whatever the learner puts in (a wrong type, an object whose ``str()``
raises), the answer is "not quite: …", never a traceback.

Sources: image-spec image-layout.md, descriptor.md, config.md ("Layer ChainID"),
layer.md ("Whiteouts"), conversion.md; runtime-spec config.md ("Hostname", "Process",
"User namespace mappings"); pid_namespaces(7), uts_namespaces(7), namespaces(7).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path
from typing import Any, Callable

from .exercises import Result

__all__ = ["check", "QUESTIONS"]


def _ok(text: str) -> Result:
    return Result(True, True, "correct: " + text)


def _no(text: str) -> Result:
    return Result(False, True, "not quite: " + text)


def _unanswered(hint: str) -> Result:
    return Result(False, False, "not answered yet: " + hint)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _as_int(answer: Any, what: str, name: str) -> tuple[int | None, Result | None]:
    """``answer`` as an int, or the "not quite" that says why it is not one."""
    if isinstance(answer, str):
        if answer.strip().isdigit():
            return None, _no(f"write the number without quotes — {name} = {answer.strip()}, not {answer!r}")
        return None, _no(f"the answer is a number ({what}), an int")
    if isinstance(answer, bool) or not isinstance(answer, int):
        return None, _no(f"the answer is a number ({what}), an int — not a {type(answer).__name__}")
    return answer, None


def _as_str_list(answer: Any) -> tuple[list[str] | None, Result | None]:
    if isinstance(answer, str) or not isinstance(answer, (list, tuple)):
        return None, _no(f'write a Python list of strings, one item per argument, e.g. ["prog", "arg"] — you gave {answer!r}')
    if not all(isinstance(a, str) for a in answer):
        return None, _no("every item of the list is a string, in quotes")
    return list(answer), None


# ----------------------------------------------------------------- 00 · start here


def _q00_1(answer, *, report) -> Result:
    """Which path the course takes here: the machine report's mode ("root"/"rootless")."""
    if answer is None:
        return _unanswered("look for 'course path' in the report of section 1")
    if not isinstance(answer, str):
        return _no(f'write the path as a string in quotes, "root" or "rootless" — you gave {answer!r}')
    a = answer.strip().lower()
    if a not in ("root", "rootless"):
        return _no(f'the answer is one of two strings, "root" or "rootless" — you gave {answer!r}')
    if a == report.mode:
        return _ok(f"this machine takes the {report.mode} path")
    return _no("look at the 'user' row of the report: who are you on this machine?")


def _q00_2(answer, *, report) -> Result:
    """How many of the reference tools the machine report found."""
    from . import REFERENCE_TOOLS

    present = [t for t in REFERENCE_TOOLS if report.tools.get(t)]
    if answer is None:
        return _unanswered("count the rows for skopeo, umoci, runc and crun in the report of section 1")
    n, bad = _as_int(answer, "0 to 4", "ANSWER_2")
    if bad:
        return bad
    if n == len(present):
        return _ok(f"{len(present)} ({', '.join(present) or 'none'})")
    return _no("count again — each tool has its own row in the report")


def _q00_3(answer, *, image_config) -> Result:
    """The image's default command line: Entrypoint followed by Cmd (config.md)."""
    cfg = image_config.config
    entry = list(cfg.entrypoint or []) if cfg else []
    cmd = list(cfg.cmd or []) if cfg else []
    want = entry + cmd
    if answer is None:
        return _unanswered('find "Entrypoint" and "Cmd" in the config node of the explorer (section 5)')
    got, bad = _as_str_list(answer)
    if bad:
        return bad
    if got == want:
        if entry:
            return _ok(f"the image runs {want}; a command you give replaces only Cmd and still goes after the Entrypoint")
        return _ok(f"the image runs {want}; it has no Entrypoint, so Cmd is the whole command")
    if entry and got == cmd:
        return _no("that is Cmd alone — what comes before it?")
    if entry and got == entry:
        return _no("that is the Entrypoint alone — what follows it?")
    return _no("read both fields in the config node and apply the rule in the exercise text")


# ----------------------------------------------------------------- 01 · image layout


def _q01_1(answer, *, image) -> Result:
    """The image config's digest, which the learner computes with hashlib."""
    from ..image.digest import Digest

    want = str(image.manifest.config.digest)
    if answer is None:
        return _unanswered("the config's descriptor is in the manifest (section 4); its blob is under blobs/")
    if not isinstance(answer, (str, Digest)):
        return _no(f"write the digest as a string 'sha256:…' (or a Digest) — you gave {answer!r}")
    got = str(answer).strip()
    if got == want:
        return _ok("the file name and the content agree")
    if got == want.partition(":")[2]:
        return _no("that is the hex part alone — a digest names its algorithm too (section 5)")
    return _no("hash the bytes of the config blob (blobs/<algorithm>/<hex>) and write the result as a digest")


def _q01_2(answer, *, image) -> Result:
    """Bytes of the image in the layout: manifest + config + layers, from their descriptors."""
    want = image.descriptor.size + image.manifest.config.size + sum(d.size for d in image.manifest.layers)
    if answer is None:
        return _unanswered("every descriptor has a 'size' (sections 3 and 4)")
    n, bad = _as_int(answer, "of bytes", "ANSWER_2")
    if bad:
        return bad
    if n == want:
        return _ok(f"{want} bytes")
    return _no(f"you are {'over' if n > want else 'under'} — count the manifest, its config and each layer once")


# ----------------------------------------------------------------- 02 · blobs


def _q02_1(answer) -> Result:
    """A tar entry name that deletes /etc/passwd: put in a real tar, read by ocilearn's lister."""
    from ..layer.listing import list_layer

    if answer is None:
        return _unanswered("section 6: how does an upper layer say 'this file is gone'?")
    if not isinstance(answer, str) or not answer.strip():
        return _no(f"write a tar entry name as a string — you gave {answer!r}")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        tf.addfile(tarfile.TarInfo(answer), io.BytesIO(b""))
    buf.seek(0)
    try:
        e = list_layer(buf)[0]
    except Exception as err:  # noqa: BLE001 - told to the learner
        return _no(f"ocilearn cannot read an entry named {answer!r}: {err}")
    if e.type == "whiteout" and e.target == "etc/passwd":
        return _ok(f"{answer!r} is a whiteout that deletes /etc/passwd")
    if e.type == "opaque":
        return _no(f"{answer!r} is an opaque whiteout — it would hide all of /{e.target}, not one file")
    if e.type == "whiteout":
        return _no(f"{answer!r} deletes /{e.target}, not /etc/passwd")
    return _no(f"ocilearn reads {answer!r} as an ordinary {e.type} — section 6 shows how a whiteout is named")


def _q02_2(answer, *, diff_ids) -> Result:
    """The chain ID of the whole edited image, all its layers (config.md "Layer ChainID")."""
    from ..image.model import chain_ids

    ids = [str(d) for d in diff_ids]
    chains = [str(c) for c in chain_ids(ids)]
    want = chains[-1]
    if answer is None:
        return _unanswered("section 5 computes chain IDs; image-spec config.md 'Layer ChainID' gives the rule")
    if not isinstance(answer, str):
        return _no(f"write the chain ID as a string 'sha256:…' — you gave {answer!r}")
    got = answer.strip()
    if got == want:
        return _ok(f"the chain ID of all {len(ids)} layers: the name of the rootfs they make together")
    if got == want.partition(":")[2]:
        return _no("that is the hex part alone — prefix the algorithm")
    if got in chains[:-1]:
        return _no(f"that is the chain ID of the bottom {chains.index(got) + 1} layer(s) only — the image has {len(ids)}")
    if got in ids:
        return _no("that is a diff ID; a chain ID also covers every layer below it")
    return _no("follow the rule of section 5 exactly: what text is hashed, and with which separator?")


# A fixed answer: which identifier changes when a layer is recompressed. No input on the
# machine yields the word, so it is compared as the sha256 of the normalised answer
# (lower case, '_'/'-' as spaces, a leading "the"/"layer" dropped) to keep it out of the notebook.
_Q02_3 = "0bf474896363505e5ea5e5d6ace8ebfb13a760a409b1fb467d428fc716f9f284"


def _norm_02_3(answer: str) -> str:
    a = " ".join(answer.strip().lower().replace("_", " ").replace("-", " ").split())
    for lead in ("the ", "layer "):
        a = a.removeprefix(lead)
    return a


def _q02_3(answer) -> Result:
    if answer is None:
        return _unanswered("which of the two is computed over the compressed bytes? (section 5)")
    if not isinstance(answer, str):
        return _no(f'answer with one of the two words, as a string — you gave {answer!r}')
    a = _norm_02_3(answer)
    if a not in ("digest", "diff id", "diffid"):
        return _no('answer "digest" or "diff ID"')
    if _sha(a) == _Q02_3:
        return _ok("the digest covers the compressed bytes; the diff ID names the uncompressed tar and stays the same")
    return _no("which of the two is computed over the compressed bytes? (section 5)")


# ----------------------------------------------------------------- 03 · bundle


def _q03_1(answer, *, config) -> Result:
    """This image's process.args, as written in the bundle's config.json."""
    want = list(config["process"]["args"])
    if answer is None:
        return _unanswered("section 3 shows how two fields of the image config become process.args")
    got, bad = _as_str_list(answer)
    if bad:
        return bad
    if got == want:
        return _ok(f"{want}, as in config.json")
    return _no("apply the rule of section 3 to this image's Entrypoint and Cmd (either may be absent)")


def _q03_2(answer, *, image_config) -> Result:
    """process.args when the user gives `ls -l` (conversion.md: the arguments replace Cmd)."""
    from ..bundle import convert

    want = convert.process_args(image_config.config, ["ls", "-l"])
    if answer is None:
        return _unanswered("section 3: which of the two fields do a user's arguments replace?")
    got, bad = _as_str_list(answer)
    if bad:
        return bad
    if got == want:
        note = " — `sh -c` runs only `ls`; `-l` becomes $0, so no long listing!" if want[:2] == ["/bin/sh", "-c"] else ""
        return _ok(f"{want}{note}")
    if got == ["ls", "-l"] and want != got:
        return _no("one of the image's two fields is not replaced by your arguments — which? (section 3)")
    return _no("start from the rule of section 3 and replace only the field the arguments replace")


def _q03_3(answer, *, config) -> Result:
    """The host uid of container uid 0 in the rootless bundle's uidMappings."""
    maps = config["linux"]["uidMappings"]
    want = next(m["hostID"] + (0 - m["containerID"]) for m in maps
                if m["containerID"] <= 0 < m["containerID"] + m["size"])
    if answer is None:
        return _unanswered("runtime-spec 'User namespace mappings': find the mapping in the rootless config.json (section 2)")
    n, bad = _as_int(answer, "a uid", "ANSWER_3")
    if bad:
        return bad
    if n == want:
        who = "you" if want == os.geteuid() else "the caller"
        return _ok(f"uid {want} — {who}: a rootless container's root is the user who ran it")
    return _no("read linux.uidMappings of the rootless config (section 2 prints it): containerID, hostID, size")


# ----------------------------------------------------------------- 04 · runtime


def _probe(flags: int, body: Callable[[], str]) -> str | None:
    """Run ``body`` in a forked child after ``unshare(flags)`` (plus a user namespace when
    not root); return what it printed, or None when the kernel refused."""
    from ..core import syscalls as sc

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(r)
            extra = 0 if os.geteuid() == 0 else sc.CLONE_NEWUSER
            sc.unshare(flags | extra)
            os.write(w, body().encode())
        except BaseException:  # noqa: BLE001
            pass
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out or None


def _pid_of_first_child() -> str:
    """After unshare(CLONE_NEWPID): the PID the first child sees for itself."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, str(os.getpid()).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


def _ns_changed_by_uts() -> str:
    """After unshare(CLONE_NEWUTS): which /proc/self/ns links differ from the parent's."""
    parent = os.getppid()
    names = []
    for n in sorted(os.listdir("/proc/self/ns")):
        if n.startswith("user") or n.endswith("_for_children"):
            continue
        try:
            if os.readlink(f"/proc/self/ns/{n}") != os.readlink(f"/proc/{parent}/ns/{n}"):
                names.append(n)
        except OSError:
            continue
    return ",".join(names)


# Fallbacks when this kernel refuses the probe (no user namespaces for an ordinary user):
# the sha256 of the normalised fixed answer, so the notebook's source does not show it.
_Q04_1 = "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"
_Q04_2 = "5813cd5dca95047eb614e47df899a45c3ab8ac9811f3fab605258e3e2d4b781f"


def _q04_1(answer) -> Result:
    """PID of the first child after unshare(CLONE_NEWPID), measured by doing it."""
    from ..core import syscalls as sc

    if answer is None:
        return _unanswered("pid_namespaces(7): which process of a new PID namespace is special, and what is it called?")
    n, bad = _as_int(answer, "a PID", "ANSWER_1")
    if bad:
        return bad
    seen = _probe(sc.CLONE_NEWPID, _pid_of_first_child)
    right = (n == int(seen)) if seen and seen.isdigit() else _sha(str(n)) == _Q04_1
    if right:
        return _ok(f"{n} — the first child in a new PID namespace is its init; the caller itself keeps its old PID")
    return _no(f"{n} is a PID as the parent namespace counts; pid_namespaces(7): where does counting start in a new one?")


def _q04_2(answer) -> Result:
    """The /proc/PID/ns link that a hostname belongs to, found by unsharing a UTS namespace."""
    from ..core import syscalls as sc

    if answer is None:
        return _unanswered("namespaces(7) lists which namespace isolates the hostname (section 2.1)")
    if not isinstance(answer, str):
        return _no(f'write the file name as a string, e.g. "net" — you gave {answer!r}')
    name = answer.strip().rstrip("/").rsplit("/", 1)[-1]
    if name in ("", ".", ".."):
        return _no(f'write the name of one file in /proc/self/ns, e.g. "net" — you gave {answer!r}')
    if not os.path.exists(f"/proc/self/ns/{name}"):
        return _no(f"there is no /proc/self/ns/{name}; the files are {sorted(os.listdir('/proc/self/ns'))}")
    changed = _probe(sc.CLONE_NEWUTS, _ns_changed_by_uts)
    right = (name == changed) if changed else _sha(name) == _Q04_2
    if right:
        return _ok(f"{name} — this process's is {os.readlink(f'/proc/self/ns/{name}')}; sethostname(2) changes only its own")
    return _no(f"/proc/self/ns/{name} is the {name} namespace — namespaces(7) says what it isolates; the hostname is elsewhere")


def _bundle_of(args) -> str | None:
    """The ``--bundle``/``-b`` value of a runtime command line (a list of words), or None."""
    if not isinstance(args, list | tuple):
        return None
    words = [str(a) for a in args]
    for i, word in enumerate(words):
        if word in ("--bundle", "-b") and i + 1 < len(words):
            return words[i + 1]
        if word.startswith("--bundle="):
            return word.split("=", 1)[1]
    return None


def _q04_3(answer) -> Result:
    """A container run whose process printed the hostname exercise-3 (runtime-spec config.md
    "Hostname"): the run succeeded, printed exactly that, the bundle's config.json names it,
    and the program did not carry the text itself (it printed what its UTS namespace says)."""
    import json

    if answer is None:
        return _unanswered("runtime-spec config.md: one key names the hostname, another the program; section 2.1 uses both")
    if not isinstance(answer, subprocess.CompletedProcess):
        return _no("put the object that oc('run', …) returns into ANSWER_3, not its text")
    out = (answer.stdout or "").strip() if isinstance(answer.stdout, str) else ""
    if answer.returncode != 0:
        said = (str(answer.stderr or "").strip() or out or "(no output)")[-200:]
        return _no(f"the run failed (exit status {answer.returncode}): {said}")
    if out != "exercise-3":
        return _no(f"it printed {out!r} — the hostname must be exercise-3 and the program must print it")
    bundle = _bundle_of(answer.args)
    if bundle is None:
        return _no("ANSWER_3 must be what oc('run', '--bundle', …) returned: its command line names no bundle")
    try:
        if not stat.S_ISREG(os.stat(Path(bundle) / "config.json").st_mode):  # a FIFO would block the read
            return _no(f"{bundle}/config.json is not a regular file")
        config = json.loads((Path(bundle) / "config.json").read_text())
        hostname, args = config.get("hostname"), config.get("process", {}).get("args") or []
    except (OSError, ValueError, AttributeError) as e:
        return _no(f"cannot read {bundle}/config.json to see what ran: {e}")
    if hostname != "exercise-3":
        return _no(f"it printed exercise-3, but config.json's hostname is {hostname!r}: the container must be "
                   "named exercise-3 and find that name itself")
    if any("exercise-3" in str(a) for a in args):
        return _no("the program carries the text exercise-3 in its own arguments: it must print the hostname the "
                   "container got, not a word it was given")
    probe = _rerun_with_hostname(Path(bundle), config)
    if probe is not None and probe[1] != probe[0]:
        return _no(f"run again with the hostname {probe[0]}, the same container printed {probe[1]!r}: the program "
                   "must print the name its UTS namespace has, not a text that spells exercise-3")
    return _ok("the container printed exercise-3 — a UTS namespace of its own, named by config.json's hostname")


def _rerun_with_hostname(bundle: Path, config: dict) -> tuple[str, str] | None:
    """Run the learner's container once more, as it is but named ``probe-XXXX``: a bundle of
    its own in a temp directory (that config.json with the new hostname and ``root.path``
    pointing, read-only, at the learner's rootfs), with this Python's ``ocilearn run`` in
    a state directory of its own (:class:`ocilearn.course.tools.RuncSession`), so the
    learner's bundle and containers are not touched. Returns (the hostname given, what
    it printed), or None when that run could not be made (the verdict then rests on the
    checks before)."""
    import json
    import secrets
    import sys
    import tempfile

    from .tools import RuncSession

    name = f"probe-{secrets.token_hex(3)}"
    session = RuncSession.temporary([sys.executable, "-m", "ocilearn"])
    try:
        root = config.get("root") or {}
        rootfs = Path(root.get("path", "rootfs"))
        rootfs = rootfs if rootfs.is_absolute() else bundle / rootfs
        with tempfile.TemporaryDirectory(prefix="ocilearn-quiz-") as tmp:
            probe = dict(config, hostname=name, root={"path": str(rootfs.resolve()), "readonly": True})
            probe["process"] = dict(config["process"], terminal=False)
            Path(tmp, "bundle").mkdir()
            Path(tmp, "bundle", "config.json").write_text(json.dumps(probe))
            run = session("run", "--bundle", str(Path(tmp, "bundle")), name, timeout=30)
    except (OSError, ValueError, TypeError, AttributeError, KeyError, subprocess.SubprocessError):
        return None
    finally:
        session.cleanup(name)
    if run.returncode != 0:
        return None
    return name, run.stdout.strip()


QUESTIONS: dict[str, Callable[..., Result]] = {
    "00.1": _q00_1, "00.2": _q00_2, "00.3": _q00_3,
    "01.1": _q01_1, "01.2": _q01_2,
    "02.1": _q02_1, "02.2": _q02_2, "02.3": _q02_3,
    "03.1": _q03_1, "03.2": _q03_2, "03.3": _q03_3,
    "04.1": _q04_1, "04.2": _q04_2, "04.3": _q04_3,
}


def check(question: str, answer: Any, **context: Any) -> Result:
    """Check the learner's ``answer`` to exercise ``question`` ("NN.k": notebook NN,
    exercise k). ``context`` carries the notebook's real objects the expected value is
    computed from (``report=``, ``image=``, ``image_config=``, ``config=``, ``diff_ids=``).

    Returns a :class:`Result`; never raises for anything the learner wrote — an answer
    the check cannot read is "not quite: …". Raises KeyError for an unknown question
    (a mistake in the notebook, not the learner's).
    """
    fn = QUESTIONS[question]
    try:
        return fn(answer, **context)
    except Exception as e:  # noqa: BLE001 - the learner's answer may be any object
        return _no(f"the check could not read your answer ({type(e).__name__}: {e}) — see the comment in the answer cell")
