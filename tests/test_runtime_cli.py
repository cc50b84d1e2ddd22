"""The runtime command line (ocilearn/runtime/cli.py): one argparse parser behind
``ocilearn COMMAND`` and ``python -m ocilearn.runtime COMMAND`` — every option parsed,
both entry points giving the same answer, and the options runc's callers pass (runc(8),
runc-create(8) … runc-update(8), runc 1.1) doing what runc does."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
from conftest import require_tool, shared_path
from test_runtime_helpers import OCILEARN, cid, make_bundle, needs_root

from ocilearn.runtime import cli

PY = sys.executable
ENTRIES = {"ocilearn": [OCILEARN], "python -m ocilearn.runtime": [PY, "-m", "ocilearn.runtime"]}

# Every option of every runtime command, with the value the parser must produce. A new
# option without a line here fails test_every_option_is_covered.
CASES: list[tuple[list[str], dict]] = [
    (["--root", "/r", "state", "x"], {"root": "/r", "command": "state", "container_id": "x"}),
    (["--log", "/l", "--log-format", "json", "state", "x"], {"log": "/l", "log_format": "json"}),
    (["--log-format", "text", "list"], {"log_format": "text"}),
    (["--debug", "list"], {"debug": True}),
    (["--systemd-cgroup", "list"], {"systemd_cgroup": True}),
    (["--explain", "list"], {"explain": True}),
    (["-v"], {"version": True}),
    (["--version"], {"version": True}),
    (["create", "x"], {"bundle": ".", "console_socket": None, "pid_file": None, "no_pivot": False, "no_new_keyring": False,
                       "preserve_fds": 0, "net": "none", "init": False}),
    (["create", "-b", "/b", "x"], {"bundle": "/b"}),
    (["create", "--bundle", "/b", "--console-socket", "/s", "--pid-file", "/p", "--no-pivot", "--no-new-keyring",
      "--preserve-fds", "2", "--net", "veth", "--init", "x"],
     {"bundle": "/b", "console_socket": "/s", "pid_file": "/p", "no_pivot": True, "no_new_keyring": True, "preserve_fds": 2,
      "net": "veth", "init": True, "container_id": "x"}),
    (["run", "-d", "--keep", "--bundle", "/b", "x"], {"detach": True, "keep": True, "command": "run", "bundle": "/b"}),
    (["run", "--detach", "-b", "/b", "--console-socket", "/s", "--pid-file", "/p", "--no-pivot", "--no-new-keyring",
      "--preserve-fds", "1", "--net", "none", "--init", "x"],
     {"detach": True, "keep": False, "bundle": "/b", "console_socket": "/s", "pid_file": "/p", "no_pivot": True, "no_new_keyring": True,
      "preserve_fds": 1, "net": "none", "init": True}),
    (["start", "x"], {"command": "start", "container_id": "x"}),
    (["list"], {"format": "table", "quiet": False}),
    (["list", "-f", "json", "-q"], {"format": "json", "quiet": True}),
    (["list", "--format", "table", "--quiet"], {"format": "table", "quiet": True}),
    (["kill", "x"], {"all": False, "signal": "SIGTERM"}),
    (["kill", "-a", "x", "KILL"], {"all": True, "signal": "KILL"}),
    (["kill", "--all", "x", "9"], {"all": True, "signal": "9"}),
    (["delete", "x"], {"force": False}),
    (["delete", "-f", "x"], {"force": True}),
    (["delete", "--force", "x"], {"force": True}),
    (["ps", "x"], {"format": "table", "ps_args": []}),
    (["ps", "-f", "json", "x"], {"format": "json", "container_id": "x", "ps_args": []}),
    (["ps", "--format", "table", "x", "-o", "pid,comm"], {"format": "table", "ps_args": ["-o", "pid,comm"]}),
    (["exec", "x", "sh", "-c", "echo -t"], {"args": ["sh", "-c", "echo -t"], "tty": None, "detach": False}),
    (["exec", "--console-socket", "/s", "--cwd", "/w", "-e", "A=1", "--env", "B=2", "-t", "-u", "1:2", "-g", "5",
      "--additional-gids", "6", "-d", "--pid-file", "/p", "--cap", "CAP_KILL", "--no-new-privs", "--preserve-fds", "1",
      "--ignore-paused", "x", "--", "ls"],
     {"console_socket": "/s", "cwd": "/w", "env": ["A=1", "B=2"], "tty": True, "user": "1:2", "additional_gids": [5, 6],
      "detach": True, "pid_file": "/p", "cap": ["CAP_KILL"], "no_new_privs": True, "preserve_fds": 1, "ignore_paused": True,
      "args": ["ls"]}),
    (["exec", "--tty", "--user", "0", "--detach", "-p", "/proc.json", "x"], {"tty": True, "user": "0", "detach": True, "process": "/proc.json",
                                                                             "args": []}),
    (["exec", "--process", "-", "x"], {"process": "-"}),
    (["pause", "x"], {"command": "pause"}),
    (["resume", "x"], {"command": "resume"}),
    (["update", "-r", "/r.json", "x"], {"resources": "/r.json"}),
    (["update", "--resources", "-", "--memory", "1048576", "--memory-reservation", "524288", "--memory-swap", "-1",
      "--pids-limit", "10", "--cpu-shares", "512", "--cpu-quota", "50000", "--cpu-period", "100000", "--cpuset-cpus", "0",
      "--cpuset-mems", "0", "x"],
     {"resources": "-", "memory": 1048576, "memory_reservation": 524288, "memory_swap": -1, "pids_limit": 10, "cpu_shares": 512,
      "cpu_quota": 50000, "cpu_period": 100000, "cpuset_cpus": "0", "cpuset_mems": "0"}),
    (["update", "--cpu-share", "256", "x"], {"cpu_shares": 256}),
    (["features"], {"command": "features"}),
]


@pytest.mark.parametrize("argv, expected", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_every_option_parses(argv, expected):
    ns = vars(cli.parse(argv))
    assert {k: ns[k] for k in expected} == expected


def _option_strings(parser) -> dict[str, set[str]]:
    import argparse

    out = {"": {s for a in parser._actions for s in a.option_strings if s not in ("-h", "--help")}}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out[name] = {s for a in sub._actions for s in a.option_strings if s not in ("-h", "--help")}
    return out


def test_every_option_is_covered_and_commands_agree():
    """Each option string of each command appears in CASES, and the parser has exactly
    the commands runc's command line has here (runc(8))."""
    parser = cli.build_parser()
    opts = _option_strings(parser)
    assert set(opts) - {""} == set(cli.COMMANDS)
    covered: dict[str, set[str]] = {k: set() for k in opts}
    for argv, _ in CASES:
        cmd = next((a for a in argv if a in cli.COMMANDS), "")
        for a in argv:
            for k in ("", cmd):
                if a in opts[k]:
                    covered[k].add(a)
    assert covered == opts


def test_usage_errors_are_refused_by_the_parser():
    for argv, message in ((["create", "--force", "x"], "unrecognized arguments: --force"),
                          (["kill"], "the following arguments are required: ID"),
                          (["list", "-f", "yaml"], "argument -f/--format: invalid choice: 'yaml'"),
                          (["nosuch"], "invalid choice: 'nosuch'"),
                          (["exec", "-g", "-1", "x", "true"], "argument -g/--additional-gids: '-1': must be a number")):
        with pytest.raises(cli.UsageError, match=re.escape(message)):
            cli.parse(argv)
    assert cli.main([]) == 1  # no command: usage, exit 1 (runc's status for usage errors)


def _both(*args: str, root: str, **kw) -> dict[str, subprocess.CompletedProcess]:
    return {name: subprocess.run([*pre, "--root", root, *args], capture_output=True, text=True, **kw) for name, pre in ENTRIES.items()}


def _same(results: dict[str, subprocess.CompletedProcess]) -> subprocess.CompletedProcess:
    a, b = results.values()
    assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr)
    return a


def test_both_entry_points_same_answers_without_containers(tmp_path):
    """The defects of two parsers are gone: `create --force` gets one answer; `ps -f json`
    reads -f as --format; `list` prints one format — through both entry points."""
    root = str(tmp_path / "st")
    p = _same(_both("create", "--force", "x", root=root))
    assert p.returncode == 1 and p.stderr.startswith("ocilearn: error: unrecognized arguments: --force\nusage: ocilearn create")
    p = _same(_both("ps", "-f", "json", "nosuch", root=root))
    assert p.returncode == 1 and p.stderr == f"ocilearn: error: container 'nosuch' does not exist in {root}\n"
    p = _same(_both("list", root=root))
    assert (p.returncode, p.stdout) == (0, "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n")
    assert _same(_both("list", "-f", "json", root=root)).stdout == "[]\n"
    assert _same(_both("list", "-q", root=root)).stdout == ""
    p = _same(_both("--systemd-cgroup", "list", root=root))
    assert p.returncode == 1 and "--systemd-cgroup is not supported" in p.stderr
    p = _same(_both("features", root=root))
    assert json.loads(p.stdout)["ociVersionMax"] == "1.0.2"
    for cmd in cli.COMMANDS:  # --help describes the same parser
        h = _same(_both(cmd, "--help", root=root))
        assert h.returncode == 0 and h.stdout.startswith(f"usage: ocilearn {cmd} ")
    assert not os.path.exists(root)


@pytest.mark.parametrize("cmd", cli.COMMANDS)
def test_help_names_every_option_and_the_function_that_runs(cmd):
    """`ocilearn CMD --help` lists each option the parser accepts and the library function
    the command runs (which exists)."""
    import importlib

    p = subprocess.run([OCILEARN, cmd, "--help"], capture_output=True, text=True)
    assert p.returncode == 0
    text = " ".join(p.stdout.split())
    for opt in _option_strings(cli.build_parser())[cmd]:
        assert re.search(rf"(^|[\s\[,]){re.escape(opt)}([\s,\]=]|$)", text), (opt, text)
    target = re.search(r"runs (ocilearn\.[\w.]+)\)", text).group(1)
    parts = target.split(".")
    for k in range(len(parts), 0, -1):  # the longest importable module, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)
        break
    assert callable(obj), target


def test_features_validate_against_runtime_spec_schema():
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    d = shared_path("fixtures", "runtime-spec-schema")
    registry = Registry(retrieve=lambda uri: Resource.from_contents(json.loads((d / uri.rsplit("/", 1)[-1]).read_text()), DRAFT4))
    schema = json.loads((d / "features-schema.json").read_text())
    feats = json.loads(subprocess.run([OCILEARN, "features"], capture_output=True, text=True, check=True).stdout)
    jsonschema.validators.validator_for(schema)(schema, registry=registry).validate(feats)
    assert "tmpcopyup" in feats["mountOptions"] and "rprivate" in feats["mountOptions"]
    assert feats["linux"]["cgroup"]["systemd"] is False and "CAP_SYS_ADMIN" in feats["linux"]["capabilities"]


def test_log_file_created_and_errors_written_in_json_and_text(tmp_path):
    """containerd's shim passes --log FILE --log-format json and reads the last
    "level":"error" line when a call fails: the file exists after every call."""
    root, log = str(tmp_path / "st"), tmp_path / "log.json"
    ok = subprocess.run([OCILEARN, "--root", root, "--log", str(log), "--log-format", "json", "list"], capture_output=True, text=True)
    assert ok.returncode == 0 and log.exists() and log.read_text() == ""
    bad = subprocess.run([OCILEARN, "--root", root, "--log", str(log), "--log-format", "json", "state", "nope"], capture_output=True, text=True)
    assert bad.returncode == 1
    entry_ = json.loads(log.read_text().splitlines()[-1])
    assert entry_["level"] == "error" and entry_["msg"] == f"container 'nope' does not exist in {root}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry_["time"])  # RFC 3339, as logrus writes it
    usage = subprocess.run([PY, "-m", "ocilearn.runtime", "--log", str(log), "--log-format", "json", "create", "--bogus", "x"],
                           capture_output=True, text=True)
    assert usage.returncode == 1 and json.loads(log.read_text().splitlines()[-1])["msg"] == "unrecognized arguments: --bogus"
    text = tmp_path / "log.txt"
    subprocess.run([OCILEARN, "--root", root, "--log", str(text), "kill", "nope"], capture_output=True)
    assert re.fullmatch(r'time="[^"]+" level=error msg="container \'nope\' does not exist in [^"]+"\n', text.read_text())


# ---------------------------------------------------------------- with containers (root)


def _oc(root: str, *args: str, entry_: str = "ocilearn", check: bool = True, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run([*ENTRIES[entry_], "--root", root, *args], capture_output=True, text=True, **kw)
    if check and p.returncode:
        raise AssertionError(f"{entry_} {' '.join(args)} -> {p.returncode}: {p.stderr}")
    return p


@needs_root
def test_both_entry_points_same_lifecycle_results(busybox_base, tmp_path, runner):
    """The same container seen through both entry points: state, list (table and json), ps
    -f json, kill --all on a stopped container (0, like runc), kill (1), delete."""
    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "30"])
    name = cid("both")
    runner.oc("run", "-d", "-b", str(b), name)
    st = _same(_both("state", name, root=runner.root))
    pid = json.loads(st.stdout)["pid"]
    assert json.loads(st.stdout)["status"] == "running"
    assert json.loads(_same(_both("ps", "-f", "json", name, root=runner.root)).stdout) == [pid]
    table = _same(_both("list", root=runner.root)).stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"] and table[1].split()[:4] == [name, str(pid), "running", str(b)]
    assert [i["id"] for i in json.loads(_same(_both("list", "--format", "json", root=runner.root)).stdout)] == [name]
    ps = _same(_both("ps", name, root=runner.root)).stdout.splitlines()
    assert ps[0].split()[:2] == ["UID", "PID"] and ps[1].split()[1] == str(pid) and ps[1].endswith("sleep 30")
    runner.oc("kill", name, "KILL")
    assert runner.exit_status(pid) == -signal.SIGKILL
    assert _same(_both("kill", "--all", name, "KILL", root=runner.root)).returncode == 0
    k = _same(_both("kill", name, root=runner.root))
    assert k.returncode == 1 and "it is stopped" in k.stderr
    assert _oc(runner.root, "delete", name, entry_="python -m ocilearn.runtime").returncode == 0
    assert _same(_both("delete", "--force", name, root=runner.root)).returncode == 0  # gone: --force is not an error
    assert _same(_both("delete", name, root=runner.root)).returncode == 1


@needs_root
def test_list_table_matches_runc(busybox_base, tmp_path, runner):
    """runc's table (Go tabwriter: min width 12, padding 3): same columns at the same
    offsets for the same ID and bundle."""
    runc = require_tool("runc")
    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "30"])
    name = cid("tbl")
    rroot = str(tmp_path / "runc")
    try:
        assert runner.cmd(runc, "--root", rroot, "create", "-b", str(b), name).returncode == 0
        runner.oc("create", "-b", str(b), name)
        theirs = runner.cmd(runc, "--root", rroot, "list").stdout.splitlines()
        ours = runner.oc("list").stdout.splitlines()
        starts = lambda line: [m.start() for m in re.finditer(r"\S+", line)]  # noqa: E731
        # the CREATED column is as wide as the longest timestamp, and RFC 3339 with
        # nanoseconds drops trailing zeros (Go's time.RFC3339Nano): the two containers'
        # creation times may differ in length, so OWNER's offset may differ by a few columns
        assert ours[0].split() == theirs[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        assert starts(ours[0])[:5] == starts(theirs[0])[:5]
        assert starts(ours[1])[:5] == starts(theirs[1])[:5] and ours[1].split()[2:4] == theirs[1].split()[2:4] == ["created", str(b)]
        theirs_json = json.loads(runner.cmd(runc, "--root", rroot, "list", "-f", "json").stdout)
        ours_json = json.loads(runner.oc("list", "-f", "json").stdout)
        assert [sorted(set(x) - {"annotations"}) for x in ours_json] == [sorted(set(x) - {"annotations"}) for x in theirs_json]
    finally:
        runner.cmd(runc, "--root", rroot, "delete", "--force", name)


