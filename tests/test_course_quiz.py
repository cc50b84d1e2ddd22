"""The answer-a-question checks of ocilearn.course.quiz, on real input: the embedded
image, its converted runtime config, the machine report and namespace probes.

Every question is tried with the right answer (from the instructors' key,
docs/instructors/solutions.md, or computed here from the same input), a wrong one, no
answer, and odd ones (a wrong type, an object whose str() raises): the result is always a
Result whose text starts "correct:", "not quite:" or "not answered yet:", never a
traceback. No notebook source shows an answer: the check cells only call quiz.check.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from ocilearn import course
from ocilearn.bundle import convert
from ocilearn.course import quiz
from ocilearn.image import embedded
from ocilearn.image.model import chain_ids

ROOT = Path(__file__).resolve().parents[1]


class Weird:
    """An answer whose str() and == raise: the check must still answer "not quite"."""

    def __str__(self):
        raise RuntimeError("boom")

    def __eq__(self, other):
        raise RuntimeError("boom")

    __hash__ = object.__hash__


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> dict:
    from ocilearn.bundle.unpack import unpack

    layout = embedded.open()
    image = layout.resolve("latest")
    image_config = layout.image_config(image)
    work = tmp_path_factory.mktemp("quiz")
    src = f"{layout.path}:latest"
    spec = unpack(src, work / "bundle").config  # the bundles notebook 03 writes
    rootless = unpack(src, work / "bundle-rootless", rootless=True).config
    return {"report": course.check(), "image": image, "image_config": image_config, "spec": spec,
            "rootless": rootless, "diff_ids": [str(d) for d in image_config.diff_ids],
            "runs": _exercise_3_runs(work)}


def _exercise_3_runs(work: Path) -> dict:
    """Exercise 04.3 done for real, the way notebook 04's oc() does it (`ocilearn --root
    STATE run --bundle BUNDLE ex3`), on its own bundle each: the right answer (hostname
    exercise-3, the program `hostname`), a run that echoes the text with another hostname,
    and a run that prints the unchanged hostname."""
    import json
    import shutil

    from test_runtime_helpers import OCILEARN

    runs = {}
    for name, hostname, args in (("right", "exercise-3", ["hostname"]), ("echo", "other", ["echo", "exercise-3"]),
                                 ("unchanged", None, ["hostname"]),
                                 ("env", "exercise-3", ["/bin/sh", "-c", "echo $H"]),
                                 ("computed", "exercise-3", ["/bin/sh", "-c", "echo exercise-$((1+2))"])):
        bundle = work / f"ex3-{name}"
        shutil.copytree(work / "bundle", bundle, symlinks=True)
        cfg = json.loads((bundle / "config.json").read_text())
        cfg["process"].update(args=args, terminal=False)
        if hostname is not None:
            cfg["hostname"] = hostname
        if name == "env":
            cfg["process"]["env"] = [*cfg["process"].get("env", []), "H=exercise-3"]
        (bundle / "config.json").write_text(json.dumps(cfg))
        runs[name] = subprocess.run([OCILEARN, "--root", str(work / "state"), "run", "--bundle", str(bundle), "ex3"],
                                    capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return runs


def _cases(c: dict) -> list[tuple[str, dict, object, object]]:
    """(question, context, right answer, wrong answer) — right answers from real input."""
    cfg = c["image_config"].config
    default = list(cfg.entrypoint or []) + list(cfg.cmd or [])
    ids = c["diff_ids"] + ["sha256:" + "ab" * 32]  # one more layer on top, as the edited image of notebook 02 has
    n_tools = sum(1 for t in course.REFERENCE_TOOLS if c["report"].tools.get(t))
    cfg_digest = str(c["image"].manifest.config.digest)
    size = c["image"].descriptor.size + c["image"].manifest.config.size + sum(d.size for d in c["image"].manifest.layers)
    return [
        ("00.1", {"report": c["report"]}, c["report"].mode, "rootless" if c["report"].mode == "root" else "root"),
        ("00.2", {"report": c["report"]}, n_tools, n_tools + 1),
        ("00.3", {"image_config": c["image_config"]}, default, default[::-1] + ["x"]),
        ("01.1", {"image": c["image"]}, cfg_digest, "sha256:" + "0" * 64),
        ("01.2", {"image": c["image"]}, size, size - 1),
        ("02.1", {}, "etc/.wh.passwd", "etc/passwd"),
        ("02.2", {"diff_ids": ids}, str(chain_ids(ids)[-1]), str(chain_ids(ids)[-2])),
        ("02.3", {}, "digest", "diff ID"),
        ("03.1", {"config": c["spec"]}, list(c["spec"]["process"]["args"]), ["ls"]),
        ("03.2", {"image_config": c["image_config"]}, convert.process_args(cfg, ["ls", "-l"]), ["ls", "-l"]),
        ("03.3", {"config": c["rootless"]}, os.geteuid(), os.geteuid() + 1),
        ("04.1", {}, 1, os.getpid()),
        ("04.2", {}, "uts", "net"),
        ("04.3", {}, c["runs"]["right"], c["runs"]["unchanged"]),
    ]


QUESTIONS = sorted(quiz.QUESTIONS)


@pytest.mark.parametrize("q", QUESTIONS)
def test_right_wrong_unanswered_odd(ctx, q):
    (_, kw, right, wrong), = [x for x in _cases(ctx) if x[0] == q]
    r = quiz.check(q, right, **kw)
    assert (r.ok, r.done) == (True, True) and r.text.startswith("correct:"), r.text
    w = quiz.check(q, wrong, **kw)
    assert (w.ok, w.done) == (False, True) and w.text.startswith("not quite:"), w.text
    u = quiz.check(q, None, **kw)
    assert (u.ok, u.done) == (False, False) and u.text.startswith("not answered yet:"), u.text
    for odd in (Weird(), 3.5, {"a": 1}, b"\xff"):
        o = quiz.check(q, odd, **kw)
        assert (o.ok, o.done) == (False, True) and o.text.startswith("not quite:"), (odd, o.text)


@pytest.mark.parametrize("q", QUESTIONS)
def test_hints_do_not_give_the_answer(ctx, q):
    """Neither the wrong-answer text nor the unanswered hint contains the right answer."""
    (_, kw, right, wrong), = [x for x in _cases(ctx) if x[0] == q]
    if isinstance(right, subprocess.CompletedProcess):  # the hostname is the task itself; the keys are the answer
        for text in (quiz.check(q, None, **kw).text, quiz.check(q, wrong, **kw).text):
            assert "process.args" not in text and "set_config" not in text and "['hostname']" not in text, text
        return
    shown = right if isinstance(right, str) else repr(right)
    for text in (quiz.check(q, None, **kw).text, quiz.check(q, wrong, **kw).text):
        if isinstance(right, int):  # a small number also appears in section numbers
            assert right < 10 or str(right) not in text.replace(str(wrong), ""), text
        else:
            assert shown not in text, text


def test_a_string_number_says_drop_the_quotes(ctx):
    assert quiz.check("01.2", "123", image=ctx["image"]).text == (
        "not quite: write the number without quotes — ANSWER_2 = 123, not '123'")


def test_02_1_reads_the_name_with_ocilearns_lister():
    assert quiz.check("02.1", "etc/.wh..wh..opq").text.startswith("not quite: 'etc/.wh..wh..opq' is an opaque whiteout")
    assert "deletes /etc/shadow" in quiz.check("02.1", "etc/.wh.shadow").text


def test_04_probes_measure_the_kernel():
    """The expected PID and namespace name come from doing it in a throwaway child."""
    from ocilearn.core import syscalls as sc

    assert quiz._probe(sc.CLONE_NEWPID, quiz._pid_of_first_child) == "1"
    assert quiz._probe(sc.CLONE_NEWUTS, quiz._ns_changed_by_uts) == "uts"


def test_04_3_failed_run_shows_the_error():
    r = quiz.check("04.3", subprocess.CompletedProcess(["run"], 1, "", "config.json: no such file\n"))
    assert r.text == "not quite: the run failed (exit status 1): config.json: no such file"


def test_04_3_the_container_must_find_its_name_itself(ctx):
    """Real runs: exercise-3 printed by `hostname` in a container named exercise-3 is right;
    the same text echoed by a container named otherwise is not, nor an unchanged hostname."""
    runs = ctx["runs"]
    assert runs["right"].stdout == "exercise-3\n" and runs["echo"].stdout == "exercise-3\n", runs
    assert runs["unchanged"].returncode == 0 and runs["unchanged"].stdout.strip() != "exercise-3"
    r = quiz.check("04.3", runs["echo"])
    assert (r.ok, r.done) == (False, True) and "config.json's hostname is 'other'" in r.text, r.text
    r = quiz.check("04.3", subprocess.CompletedProcess(["ocilearn", "run", "x"], 0, "exercise-3\n", ""))
    assert (r.ok, r.done) == (False, True) and "names no bundle" in r.text, r.text
    # the text spelled by the program, not read from the UTS namespace: the check runs the
    # container again under another hostname and sees the same text
    for cheat in ("env", "computed"):
        assert runs[cheat].stdout == "exercise-3\n", runs[cheat]
        r = quiz.check("04.3", runs[cheat])
        assert (r.ok, r.done) == (False, True) and "the same container printed 'exercise-3'" in r.text, r.text
        assert re.search(r"run again with the hostname probe-[0-9a-f]{6}", r.text), r.text


def test_02_2_the_chain_of_the_lower_layers_is_named_as_such(ctx):
    ids = ctx["diff_ids"] + ["sha256:" + "ab" * 32]
    two = str(chain_ids(ids)[-2])
    r = quiz.check("02.2", two, diff_ids=ids)
    assert r.text == f"not quite: that is the chain ID of the bottom 2 layer(s) only — the image has {len(ids)}"


def test_unknown_question_is_the_notebooks_mistake():
    with pytest.raises(KeyError):
        quiz.check("09.9", 1)


def test_notebooks_show_no_inline_checks():
    """The exercise cells only call the library: no check function, no answer in the source."""
    for nb in sorted((ROOT / "notebooks").glob("0?-*.md")):
        src = nb.read_text()
        assert not re.search(r"def check_\d", src), nb.name
        assert "✔" not in src, nb.name
        for q in re.findall(r'quiz\.check\("(\d\d\.\d)"', src):
            assert q.startswith(nb.name[:2]) and q in quiz.QUESTIONS
        want = {q for q in quiz.QUESTIONS if q.startswith(nb.name[:2])}
        assert set(re.findall(r'quiz\.check\("(\d\d\.\d)"', src)) == want, nb.name


def test_solutions_key_lists_every_question():
    key = (ROOT / "docs" / "instructors" / "solutions.md").read_text()
    for q in quiz.QUESTIONS:
        assert f"`{q}`" in key, q


def test_04_3_a_fifo_for_config_json_is_an_answer_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "config.json")
    run = subprocess.CompletedProcess(["ocilearn", "run", "--bundle", str(tmp_path), "ex3"], 0, "exercise-3\n", "")
    r = quiz.check("04.3", run)
    assert r.text == f"not quite: {tmp_path}/config.json is not a regular file"
