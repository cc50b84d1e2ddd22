"""What keeps ``ocilearn run`` fast (BENCHMARKS.md "Run") gives the same answers as the
standard modules it avoids: the command-line fast path (:mod:`ocilearn.runtime.cmdline`)
and argparse, :mod:`ocilearn.runtime.jsonio` and :mod:`json`, the schema's patterns and
``re.search``, the SemVer check and semver.org's regular expression, signal names and
``signal.Signals``; a container joins its v1 cgroup through ``tasks``; and the run path
really imports none of re, enum, argparse, json or signal."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys

import pytest
from conftest import REPO
from test_runtime_helpers import make_bundle

from ocilearn.core.errors import ContainerError
from ocilearn.runtime import argparser, cmdline, jsonio, spec, warmup
from ocilearn.runtime.cgroups import Cgroup
from ocilearn.runtime.container import parse_signal

GLOBALS = [["--root", "/r"], ["--root=/x"], ["--root", ""], ["--log", "/l"], ["--log-format", "json"], ["--log-format=text"], ["--debug"],
           ["--systemd-cgroup"], ["--explain"]]
OPTIONS = {"create": [["-b", "/b"], ["--bundle", "/b"], ["--bundle=/c"], ["--console-socket", "/s"], ["--pid-file", "/p"], ["--pid-file="],
                      ["--no-pivot"], ["--no-new-keyring"], ["--preserve-fds", "3"], ["--preserve-fds=0"], ["--net", "veth"], ["--net=none"],
                      ["--init"]],
           "kill": [["-a"], ["--all"]], "delete": [["-f"], ["--force"]], "start": [], "state": []}
OPTIONS["run"] = OPTIONS["create"] + [["-d"], ["--detach"], ["--keep"]]


def _same_as_argparse(argv: list[str]) -> bool:
    """True when the fast path reads ``argv`` (and then exactly as argparse does)."""
    fast = cmdline.parse_simple(argv)
    if fast is None:
        return False
    assert vars(fast) == vars(argparser.parse(argv)), argv
    return True


def test_everyday_command_lines_parse_as_argparse_parses_them():
    rnd = random.Random(1)
    for _ in range(3000):
        cmd = rnd.choice(list(OPTIONS))
        argv = sum(rnd.sample(GLOBALS, rnd.randint(0, 3)), []) + [cmd]
        rest = rnd.sample(OPTIONS[cmd], rnd.randint(0, min(4, len(OPTIONS[cmd])))) + [["c1"]]
        if cmd == "kill":
            rest += [["KILL"]] if rnd.random() < 0.5 else []
        else:
            rnd.shuffle(rest)  # argparse takes the ID anywhere among the options
        argv += sum(rest, [])
        assert _same_as_argparse(argv), argv
    # what podman and containerd send
    assert _same_as_argparse(["--root", "/run/r", "--log", "/l.json", "--log-format", "json", "create", "--bundle", "/b", "--pid-file",
                              "/p", "--console-socket", "/s", "c1"])
    assert _same_as_argparse(["--root", "/run/r", "kill", "c1", "9"])


def test_anything_unusual_is_left_to_argparse():
    unusual = [[], ["run"], ["run", "a", "b"], ["--help", "run", "x"], ["run", "--help"], ["run", "-h", "x"], ["run", "--bund", "/b", "x"],
               ["run", "-b/b", "x"], ["run", "-dk", "x"], ["run", "--", "x"], ["run", "-x"], ["run", "--keep=1", "x"], ["run", "-b", "-x", "x"],
               ["run", "--net", "bridge", "x"], ["run", "--preserve-fds", "-1", "x"], ["run", "--preserve-fds", "x1", "x"],
               ["--log-format", "yaml", "run", "x"], ["-v"], ["--version", "run", "x"], ["run", "x", "--root", "/r"], ["exec", "x", "ls"],
               ["list"], ["ps", "x"], ["update", "x"], ["features"], ["kill", "x", "-a", "9"], ["kill", "x", "-9"], ["delete", "-fa", "x"],
               ["--root"], ["start"]]
    listed = len(unusual)
    rnd = random.Random(2)
    tokens = ["--root", "/r", "run", "create", "kill", "delete", "-b", "/b", "--bundle", "-f", "-a", "--force", "9", "x", "", "-", "--",
              "-h", "--net", "veth", "--preserve-fds", "2", "--root=", "--keep", "exec", "--debug", "-d"]
    unusual += [[rnd.choice(tokens) for _ in range(rnd.randint(0, 6))] for _ in range(3000)]
    for argv in unusual:
        fast = cmdline.parse_simple(argv)
        if fast is not None:  # then argparse must agree, and accept it
            assert vars(fast) == vars(argparser.parse(argv)), argv
    for argv in unusual[:listed]:
        assert cmdline.parse_simple(argv) is None, argv


def test_jsonio_gives_what_json_gives():
    docs = ["{}", "[]", ' {"a": [1, 2.5, -3e2, true, false, null, "x\\u00e9\\n"]} \n', '"s"', "1", "NaN", "[Infinity,-Infinity]",
            '{"a":1,"a":2}', "\t[1e400]\r\n", '"\\ud800"']
    for d in docs:
        assert repr(jsonio.loads(d)) == repr(json.loads(d)), d
    for bad in ["", " ", "{", "[1,]", '{"a":1} x', "\ufeff{}", "nul", '"\x01"', "[1] [2]", "01", '{"a" 1}', "[1,,]"]:
        with pytest.raises(json.JSONDecodeError) as got:
            jsonio.loads(bad)
        with pytest.raises(json.JSONDecodeError) as want:
            json.loads(bad)
        assert str(got.value) == str(want.value), bad
    for obj in [{"a": [1, 2.5, None, True, "é\n\"\x00"], "b": {}}, "x", 1, [], float("nan"), {1: 2, None: 3, 2.5: "x", False: 1}, 10**30]:
        assert jsonio.dumps(obj) == json.dumps(obj)
    for bad in [object(), {"a": {1, 2}}, {(1, 2): 3}]:
        with pytest.raises(TypeError) as got:
            jsonio.dumps(bad)
        with pytest.raises(TypeError) as want:
            json.dumps(bad)
        assert str(got.value) == str(want.value)
    # in a process that has not imported json (the runtime's): the same errors, never SystemError
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from ocilearn.runtime import jsonio\n"
            "for bad in ('{not json', '[1,', '{\"a\": tru}', '\"\\\\x\"', '[' * 100000):\n"
            "    try: jsonio.loads(bad)\n"
            "    except Exception as e: print(type(e).__name__, str(e)[:40])\n")
    p = subprocess.run([sys.executable, "-E", "-S", "-c", code, str(REPO)], capture_output=True, text=True, check=True)
    assert [line.split()[0] for line in p.stdout.splitlines()] == ["JSONDecodeError"] * 4 + ["RecursionError"], p.stdout
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference detected"):
        jsonio.dumps(loop)


def _schema_patterns() -> set[str]:
    found: set[str] = set()

    def walk(n) -> None:
        if isinstance(n, dict):
            if isinstance(n.get("pattern"), str):
                found.add(n["pattern"])
            found.update(n.get("patternProperties") or {})
            for v in n.values():
                walk(v)
        elif isinstance(n, list):
            for v in n:
                walk(v)

    for f in (REPO / "ocilearn" / "data" / "runtime-spec-schema").glob("*.json"):
        walk(json.loads(f.read_text()))
    return found


def test_schema_patterns_match_as_re_search_does():
    assert _schema_patterns() <= set(spec.SCHEMA_PATTERNS)  # every pattern of the shipped schema has its check
    rnd = random.Random(3)
    alphabet = "RLIMIT_CAPNOFLEZaz019cbupKMGB:, -\n\x00é٣."
    samples = ["", "\n", "\n\n", "RLIMIT_NOFILE", "RLIMIT_NOFILE\n", "RLIMIT_", "RLIMIT_nofile", "CAP_SYS_ADMIN", "CAP_", "c", "c\n", "cc",
               "2MB", "20KB\n", "0KB", "2TB", "MB:0=70", "MB:\n", "MB:a\nb", "1-3, 5", "1-3,x"]
    samples += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 8))) for _ in range(5000)]
    for pattern, check in spec.SCHEMA_PATTERNS.items():
        for s in samples:
            assert check(s) == (re.search(pattern, s) is not None), (pattern, s)
    assert spec.pattern_matches("^a+$", "aa") and not spec.pattern_matches("^a+$", "ab")  # others: re itself


SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
                    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?", re.ASCII)


def test_semver_check_is_semver_orgs_grammar():
    rnd = random.Random(4)
    cases = ["1.0.2", "1.0.2-rc.1", "1.0.0-0a", "1.0.0-01", "1.0.0+001", "1.0.0-", "1.0.0+", "01.0.0", "1.0", "1.0.0-a..b",
             "1.0.0-alpha+b.c-d", "1.2.3-x-y-z.--", "10.20.30"]
    cases += ["".join(rnd.choice("0123.-+aZ") for _ in range(rnd.randint(0, 12))) for _ in range(20000)]
    for v in cases:
        m = SEMVER.fullmatch(v)
        assert spec.semver_major(v) == (m.group(1) if m else None), v
    # stricter than Python's `\d` and `$`: no other digits, no trailing newline
    assert spec.semver_major("1.0.0\n") is None and spec.semver_major("1.0.٣") is None
    spec.check_version({"ociVersion": "1.0.2-dev"})
    for bad in ("1.0", "2.0.0", "1.0.0\n", 1):
        with pytest.raises(Exception, match="ociVersion"):
            spec.check_version({"ociVersion": bad})


def test_signal_names_are_those_of_signal_Signals():
    names = list(signal.Signals.__members__) + ["kill", "term", "SIGIOT", "SIGCLD", "rtmin", "SIG_DFL", "SIG_IGN", "SIG_BLOCK", "NSIG", "SIG",
                                                "", "ITIMER_REAL", "x.y", "ſigkill", "9", "0", "65", "-1", " 9"]
    for n in names:
        name = n.upper() if n.upper().startswith("SIG") else "SIG" + n.upper()
        want = int(signal.Signals[name]) if name in signal.Signals.__members__ else None
        if n.isascii() and n.isdigit():
            want = int(n) if 1 <= int(n) <= signal.SIGRTMAX else None
        try:
            got = parse_signal(n)
        except ContainerError:
            got = None
        assert got == want, n


def test_join_writes_zero_to_tasks_on_v1_and_to_cgroup_procs_on_v2(tmp_path):
    v1 = Cgroup(1, {"memory": str(tmp_path / "memory" / "c"), "pids": str(tmp_path / "pids" / "c")}, base=str(tmp_path))
    for p in v1.paths.values():
        (tmp_path / p).mkdir(parents=True)
    v1.join()
    assert [(tmp_path / p / "tasks").read_text() for p in v1.paths.values()] == ["0", "0"]
    assert not any((tmp_path / p / "cgroup.procs").exists() for p in v1.paths.values())
    v2 = Cgroup(2, {"": str(tmp_path / "v2" / "c")}, base=str(tmp_path / "v2"))
    (tmp_path / "v2" / "c").mkdir(parents=True)
    v2.join()
    assert (tmp_path / "v2" / "c" / "cgroup.procs").read_text() == "0" and not (tmp_path / "v2" / "c" / "tasks").exists()


def test_warm_up_only_where_the_cgroup_procs_move_is_used(tmp_path):
    (tmp_path / "v1" / "memory").mkdir(parents=True)
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "cgroup.controllers").write_text("memory pids\n")
    assert warmup.useful(str(tmp_path / "v1")) is False and warmup.useful(str(tmp_path / "v2")) is True


def test_run_path_imports_no_re_enum_argparse_json_or_signal(busybox_base, tmp_path):
    """``ocilearn-runtime run`` as the launcher starts it (no site), on a real bundle: the
    container runs (exit 0) and none of the slow standard modules was imported."""
    b = make_bundle(busybox_base, tmp_path / "b", ["true"])
    code = ("import sys\n"
            f"sys.path.insert(0, {str(REPO)!r})\n"
            "from ocilearn.runtime import launch\n"
            f"argv = ['--root', {str(tmp_path / 's')!r}, 'run', '-b', {str(b)!r}, 'startup']\n"
            "launch.start(argv)\n"
            "from ocilearn.runtime.cli import main\n"
            "rc = main(argv)\n"
            "print(rc, sorted(m for m in ('re', 'enum', 'argparse', 'json', 'signal', 'functools', 'collections', 'subprocess', 'threading')"
            " if m in sys.modules))\n")
    p = subprocess.run([sys.executable, "-E", "-S", "-P", "-c", code], capture_output=True, text=True)
    assert (p.returncode, p.stdout.strip()) == (0, "0 []"), p.stderr
