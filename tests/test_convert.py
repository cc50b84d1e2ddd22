"""Image config → runtime config.json (image-spec conversion.md): WorkingDir of
/proc/self/fd/N, User resolution (names vs numbers, image vs host passwd), Entrypoint null vs
[] vs [""] with Cmd, annotations, defaults against the real `runc spec`, and the runtime-spec JSON schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest
from conftest import require_tool, shared_path

from ocilearn.bundle import convert as C
from ocilearn.cli import run as cli
from ocilearn.core.errors import ConfigError, UnsafePath
from ocilearn.image.model import ImageConfig


def image(cfg: dict | None = None, **top) -> ImageConfig:
    doc = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, **top}
    if cfg is not None:
        doc["config"] = cfg
    return ImageConfig.from_json(json.dumps(doc).encode())


WRITTEN: list[tuple[str, dict]] = []


def schema_validate(cfg: dict, name: str = "") -> None:
    """Keep every config a test writes; test_every_written_config_validates checks them all
    against the official schema (so the case tests still run where ../shared is absent)."""
    WRITTEN.append((name, cfg))


# ------------------------------------------------------------------ Entrypoint null vs [] vs [""] with Cmd


@pytest.mark.parametrize(
    "entrypoint, cmd, expected",
    [
        (None, ["sh"], ["sh"]),
        ([], ["sh"], ["sh"]),
        ([""], ["/bin/bash"], ["/bin/bash"]),
        (["/e"], None, ["/e"]),
        (["/e", "-x"], ["a"], ["/e", "-x", "a"]),
        (["/e", ""], None, ["/e", ""]),
    ],
)
def test_entrypoint_cmd_table(entrypoint, cmd, expected):
    cfg = {"Entrypoint": entrypoint, "Cmd": cmd}
    spec = C.convert(image(cfg))
    assert spec["process"]["args"] == expected
    schema_validate(spec, f"Entrypoint {entrypoint} Cmd {cmd}")


@pytest.mark.parametrize("entrypoint", [None, [], [""]])
@pytest.mark.parametrize("cmd", [None, []])
def test_nothing_to_run_is_an_error(entrypoint, cmd):
    with pytest.raises(ConfigError, match="no command specified"):
        C.convert(image({"Entrypoint": entrypoint, "Cmd": cmd}))


def test_missing_config_object_and_caller_args():
    with pytest.raises(ConfigError, match="no 'config' object"):
        C.convert(image(None))
    assert C.convert(image(None), args=["/bin/true"])["process"]["args"] == ["/bin/true"]
    # caller args replace Cmd, not Entrypoint
    assert C.convert(image({"Entrypoint": ["/e"], "Cmd": ["a"]}), args=["b"])["process"]["args"] == ["/e", "b"]


# ------------------------------------------------------------------ User: names vs numbers, the image's passwd


@pytest.fixture
def users_rootfs(tmp_path):
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    (r / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n# a comment\n\nbroken-line\napp:x:1234:2345:App:/home/app:/bin/sh\n"
    )
    (r / "etc/group").write_text("root:x:0:\nappgrp:x:2345:\nextra:x:3456:app\nwheel:x:10:root,app\n")
    return r


@pytest.mark.parametrize(
    "user, uid, gid, extra",
    [
        ("app", 1234, 2345, [2345, 3456, 10]),
        ("1234", 1234, 2345, [2345, 3456, 10]),
        ("app:extra", 1234, 3456, [3456]),
        ("1234:3456", 1234, 3456, [3456]),
        ("app:9999", 1234, 9999, [9999]),
        ("1234:appgrp", 1234, 2345, [2345]),
        ("", 0, 0, [0, 10]),
    ],
)
def test_user_forms_resolved_in_rootfs(users_rootfs, user, uid, gid, extra):
    info = C.resolve_user(user, users_rootfs)
    assert (info.uid, info.gid, list(info.additional_gids)) == (uid, gid, extra)
    spec = C.convert(image({"User": user, "Cmd": ["x"]}), users_rootfs)
    assert spec["process"]["user"] == {"uid": uid, "gid": gid, "additionalGids": extra}
    schema_validate(spec)


@pytest.mark.parametrize("user", ["ghost", "app:ghostgrp"])
def test_unknown_user_or_group_is_an_error(users_rootfs, user):
    with pytest.raises(ConfigError, match="no (user|group) named"):
        C.convert(image({"User": user, "Cmd": ["x"]}), users_rootfs)


def test_no_passwd_numeric_ok_name_error(tmp_path):
    (tmp_path / "r").mkdir()
    assert C.resolve_user("1000", tmp_path / "r").to_dict() == {"uid": 1000, "gid": 0, "additionalGids": [0]}
    with pytest.raises(ConfigError, match="no /etc/passwd"):
        C.resolve_user("app", tmp_path / "r")


def test_passwd_symlinks_resolve_inside_rootfs_never_host(users_rootfs, tmp_path):
    r2 = tmp_path / "r2"
    (r2 / "etc").mkdir(parents=True)
    (r2 / "real").mkdir()
    (r2 / "real/passwd").write_text("app:x:777:778::/srv:/bin/sh\n")
    os.symlink("/real/passwd", r2 / "etc/passwd")  # absolute: must mean r2/real/passwd
    (r2 / "real/group").write_text("grp:x:4242:app\n")
    os.symlink("../../../../../../../../real/group", r2 / "etc/group")  # climbs: clamped to r2/real/group
    info = C.resolve_user("app", r2)
    assert (info.uid, info.gid, info.home, info.additional_gids) == (777, 778, "/srv", (778, 4242))
    os.unlink(r2 / "etc/group")
    os.symlink("../../etc/group", r2 / "etc/group")  # a loop inside the rootfs: a clear error
    with pytest.raises(ConfigError, match="symbolic links"):
        C.resolve_user("app", r2)
    os.unlink(r2 / "etc/group")
    # the host's root user must not be found in an image that has no such entry
    (r2 / "real/passwd").write_text("app:x:777:778::/srv:/bin/sh\n")
    with pytest.raises(ConfigError):
        C.resolve_user("root", r2)
    # and the host's /etc/passwd is never opened: an audit hook records every open()
    code = (
        "import sys; sys.path.insert(0, %r); from ocilearn.bundle import convert as C; "
        "print(C.resolve_user('app', %r).uid)" % (os.getcwd(), str(r2))
    )
    hook = (
        "import sys\n"
        "opened=[]\n"
        "sys.addaudithook(lambda ev, args: opened.append(str(args[0])) if ev == 'open' else None)\n"
        + code.replace("; ", "\n") + "\n"
        "assert not any(p in ('/etc/passwd', '/etc/group') for p in opened), opened\n"
    )
    out = subprocess.run([sys.executable, "-c", hook], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "777"


# ------------------------------------------------------------------ WorkingDir that escapes (/proc/self/fd/N, CVE-2024-21626)


@pytest.mark.parametrize("wd", [f"/proc/self/fd/{n}" for n in range(3, 13)] + ["/proc/1/cwd", "/sys/kernel", "/../../etc", "relative/dir"])
def test_workingdir_leaving_rootfs_is_rejected(users_rootfs, wd):
    with pytest.raises(UnsafePath):
        C.convert(image({"WorkingDir": wd, "Cmd": ["x"]}), users_rootfs)


def test_workingdir_through_symlink_into_proc_is_rejected(users_rootfs):
    os.symlink("/proc/self/fd/7", users_rootfs / "work")
    with pytest.raises(UnsafePath, match="CVE-2024-21626"):
        C.convert(image({"WorkingDir": "/work", "Cmd": ["x"]}), users_rootfs)


def test_missing_workingdir_is_kept_for_the_runtime_to_create(users_rootfs):
    spec = C.convert(image({"WorkingDir": "/does/not/exist", "Cmd": ["x"]}), users_rootfs)
    assert spec["process"]["cwd"] == "/does/not/exist"
    assert C.convert(image({"WorkingDir": "/a/./b/../c", "Cmd": ["x"]}), users_rootfs)["process"]["cwd"] == "/a/c"


# ------------------------------------------------------------------ env, annotations, volumes, provenance


def test_env_path_default_home_and_terminal(users_rootfs):
    spec = C.convert(image({"User": "app", "Env": ["A=1"], "Cmd": ["x"]}), users_rootfs)
    assert spec["process"]["env"] == [C.DEFAULT_PATH, "A=1", "HOME=/home/app"]
    assert spec["process"]["terminal"] is False
    t = C.convert(image({"Env": ["PATH=/x", "HOME=/h"], "Cmd": ["x"]}), users_rootfs, terminal=True)
    assert t["process"]["env"] == ["PATH=/x", "TERM=xterm", "HOME=/h"] and t["process"]["terminal"] is True


def test_annotations_from_fields_and_labels_win():
    ic = image(
        {"Cmd": ["x"], "StopSignal": "SIGINT", "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
         "Labels": {"org.opencontainers.image.os": "label-wins", "com.example": "v"}},
        author="me", created="2025-01-01T00:00:00Z", variant="v8", **{"os.version": "10", "os.features": ["a", "b"]},
    )
    ann = C.convert(ic)["annotations"]
    assert ann == {
        "org.opencontainers.image.os": "label-wins",
        "org.opencontainers.image.architecture": "amd64",
        "org.opencontainers.image.variant": "v8",
        "org.opencontainers.image.os.version": "10",
        "org.opencontainers.image.os.features": "a,b",
        "org.opencontainers.image.author": "me",
        "org.opencontainers.image.created": "2025-01-01T00:00:00Z",
        "org.opencontainers.image.stopSignal": "SIGINT",
        "org.opencontainers.image.exposedPorts": "53/udp,80/tcp",
        "com.example": "v",
    }


def test_volumes_become_tmpfs_mounts_checked_in_rootfs(users_rootfs):
    spec = C.convert(image({"Cmd": ["x"], "Volumes": {"/data": {}, "/var/lib/x/": {}}}), users_rootfs)
    dests = [m["destination"] for m in spec["mounts"] if m["type"] == "tmpfs" and m["source"] == "tmpfs" and m["destination"] != "/dev"]
    assert dests == ["/data", "/var/lib/x"]
    schema_validate(spec)
    with pytest.raises(UnsafePath):
        C.convert(image({"Cmd": ["x"], "Volumes": {"/proc/self/root": {}}}), users_rootfs)


def test_explain_config_rows_say_where_values_come_from(users_rootfs):
    rows = C.explain_config(image({"User": "app", "Cmd": ["x"], "Entrypoint": [""]}), users_rootfs, rootless=True)
    by = {}
    for r in rows:
        by.setdefault(r.field, []).append(r)
    assert by["process.args"][0].source == "image config" and '[""] (= unset' in by["process.args"][0].why
    assert by["process.user"][0].value == {"uid": 1234, "gid": 2345, "additionalGids": [2345, 3456, 10]}
    assert by["process.user"][0].source == "rootfs /etc/passwd"
    assert by["process.user"][-1].source == "rootless transform" and by["process.user"][-1].value == {"uid": 0, "gid": 0}
    assert "console socket" in by["process.terminal"][0].why
    assert any(r.source == "rootless transform" for r in by["linux.uidMappings"])


# ------------------------------------------------------------------ defaults vs the real runc spec


def _runc_spec(tmp_path, rootless: bool) -> dict:
    runc = require_tool("runc")
    d = tmp_path / ("runc-rl" if rootless else "runc")
    d.mkdir()
    subprocess.run([runc, "spec", "--bundle", str(d)] + (["--rootless"] if rootless else []), check=True)
    return json.loads((d / "config.json").read_text())


@pytest.mark.parametrize("rootless", [False, True])
def test_spec_cli_equals_runc_spec(tmp_path, rootless):
    want = _runc_spec(tmp_path, rootless)
    out = tmp_path / "ours"
    out.mkdir()
    assert cli(["spec", "--bundle", str(out)] + (["--rootless"] if rootless else [])) == 0
    got = json.loads((out / "config.json").read_text())
    assert got == want
    schema_validate(got)
    assert cli(["spec", "--bundle", str(out)]) == 1  # refuses to overwrite, like runc


def test_rootless_convert_matches_runc_rootless_transform(tmp_path):
    want = _runc_spec(tmp_path, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = C.convert(image({"Cmd": ["sh"]}), rootless=True, terminal=True, hostname="runc")
    for key in ("mounts",):
        assert got[key] == want[key]
    assert got["linux"]["namespaces"] == want["linux"]["namespaces"]
    assert got["linux"]["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert "resources" not in got["linux"] and "network" not in [n["type"] for n in got["linux"]["namespaces"]]
    schema_validate(got)


def test_volume_destination_resolved_through_rootfs_symlinks(users_rootfs):
    (users_rootfs / "srv/data").mkdir(parents=True)
    os.symlink("/srv/data", users_rootfs / "data")
    spec = C.convert(image({"Cmd": ["x"], "Volumes": {"/data": {}}}), users_rootfs)
    assert spec["mounts"][-1]["destination"] == "/srv/data"


def test_every_written_config_validates_against_runtime_spec_schema(users_rootfs):
    schema = shared_path("fixtures", "runtime-spec-schema")
    configs = list(WRITTEN) + [
        ("busybox-like", C.convert(image({"User": "app", "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo"], "Volumes": {"/v": {}}},
                                         author="a", created="2025-01-01T00:00:00Z"), users_rootfs)),
        ("rootless", C.convert(image({"Cmd": ["sh"]}), users_rootfs, rootless=True, terminal=True)),
        ("runc spec", C.default_spec()),
        ("runc spec --rootless", C.default_spec(rootless=True)),
    ]
    for name, cfg in configs:
        try:
            C.validate(cfg, schema)
        except ConfigError as e:
            pytest.fail(f"config of {name or 'a case test'} does not validate: {e}")
    bad = C.default_spec()
    bad["process"]["args"] = "sh"  # must be an array
    with pytest.raises(ConfigError, match="process/args"):
        C.validate(bad, schema)


# ------------------------------------------------------------------ hostile configs: deep paths, odd types, escapes


def _fifo_rootfs(tmp_path, name="passwd"):
    r = tmp_path / "fifo-rootfs"
    (r / "etc").mkdir(parents=True)
    os.mkfifo(r / "etc" / name)
    if name != "passwd":
        (r / "etc/passwd").write_text("app:x:1000:1000::/home/app:/bin/sh\n")
    return r


class _Alarm:
    """Fail instead of hanging: SIGALRM interrupts a blocking open(2) of a FIFO."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds

    def __enter__(self):
        import signal

        def boom(*_):
            raise TimeoutError(f"blocked for {self.seconds} s (the FIFO was opened)")
        self.old = signal.signal(signal.SIGALRM, boom)
        signal.alarm(self.seconds)

    def __exit__(self, *exc):
        import signal

        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.old)


@pytest.mark.parametrize("user", [None, "app", "1000", "1000:1000"])
def test_fifo_etc_passwd_is_refused_not_opened(tmp_path, user):
    """An image whose /etc/passwd is a FIFO hung convert (and `ocilearn unpack`) forever,
    for every User form: open(2) of a FIFO blocks until a writer appears."""
    r = _fifo_rootfs(tmp_path)
    with _Alarm(5), pytest.raises(ConfigError, match=r"cannot read /etc/passwd of the rootfs: .*/etc/passwd is a FIFO, not a regular file"):
        C.convert(image({"User": user, "Cmd": ["x"]} if user else {"Cmd": ["x"]}), r)


def test_fifo_etc_group_and_device_passwd_are_refused(tmp_path):
    r = _fifo_rootfs(tmp_path, "group")
    with _Alarm(5), pytest.raises(ConfigError, match=r"/etc/group is a FIFO"):
        C.resolve_user("app:grp", r)
    if os.geteuid() == 0:  # only root can make a device node; as a user the FIFO case above covers it
        os.unlink(r / "etc/group")
        os.mknod(r / "etc/group", 0o600 | 0o020000, os.makedev(1, 5))  # /dev/zero's numbers
        with pytest.raises(ConfigError, match=r"/etc/group is a character device"):
            C.resolve_user("app", r)


@pytest.mark.parametrize("user,message", [
    ("٣", "no /etc/passwd to resolve the name '٣'"),        # Arabic-Indic 3 is a name, not uid 3
    ("0:٣", "no /etc/group to resolve the group '٣'"),
    ("4294967296", "uid 4294967296 is out of range (0..4294967294"),
    ("0:4294967295", "gid 4294967295 is out of range"),
])
def test_user_numbers_are_ascii_and_in_range(tmp_path, user, message):
    (tmp_path / "r").mkdir()
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        C.resolve_user(user, tmp_path / "r")
    assert C.resolve_user("4294967294:0", tmp_path / "r").uid == 4294967294


# ------------------------------------------------------------------ users and groups (conversion.md "Config.User")


@pytest.fixture
def groups_rootfs(tmp_path):
    """A rootfs whose /etc/group has the cases that went wrong: a gid listed twice, the user
    name as a substring of other member names, a user in no group at all."""
    r = tmp_path / "grootfs"
    (r / "etc").mkdir(parents=True)
    (r / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "app:x:1000:1000::/home/app:/bin/sh\n"
        "loner:x:1001:1001::/home/loner:/bin/sh\n"
        "webapp:x:1002:1002::/w:/bin/sh\n"
    )
    (r / "etc/group").write_text(
        "root:x:0:\n"
        "app:x:1000:app\n"          # the primary group also lists the user: not twice
        "loner:x:1001:\n"
        "dev:x:2000:app\n"
        "dev2:x:2000:app\n"         # the same gid under a second name: once
        "sub:x:3000:webapp,appx\n"  # "app" only as a substring: not a member
        "spaced:x:4000:root, app\n"  # a space after the comma: still the name app
        "audio:x:29:appx,app\n"
    )
    return r


@pytest.mark.parametrize(
    "user, gid, extra",
    [
        ("app", 1000, [1000, 2000, 4000, 29]),
        ("1000", 1000, [1000, 2000, 4000, 29]),
        ("loner", 1001, [1001]),           # no memberships: the primary gid alone
        ("webapp", 1002, [1002, 3000]),
        ("app:dev", 2000, [2000]),         # a group given: no memberships added
        ("app:audio", 29, [29]),
        ("1000:4000", 4000, [4000]),
        ("root", 0, [0, 4000]),
        ("5555", 0, [0]),                  # no passwd entry: gid 0, no names to match
    ],
)
def test_additional_gids_exact_members_deduplicated_primary_first(groups_rootfs, user, gid, extra):
    info = C.resolve_user(user, groups_rootfs)
    assert (info.gid, list(info.additional_gids)) == (gid, extra)
    spec = C.convert(image({"User": user, "Cmd": ["x"]}), groups_rootfs)
    assert spec["process"]["user"]["additionalGids"] == extra
    assert spec["process"]["user"]["gid"] == gid
    schema_validate(spec)


def tmp_path_rootfs_no_groups(r):
    (r / "etc/group").write_text("root:x:0:\n")
    return r


def test_rootless_says_which_user_and_groups_are_dropped(groups_rootfs):
    with pytest.warns(UserWarning, match=r"dropped: uid 1000, gid 1000, additionalGids \[1000, 2000, 4000, 29\]"):
        spec = C.convert(image({"User": "app", "Cmd": ["x"]}), groups_rootfs, rootless=True)
    assert spec["process"]["user"] == {"uid": 0, "gid": 0}
    with pytest.warns(UserWarning, match=r"additionalGids \[0, 4000\] dropped: .*setgroups"):
        spec = C.convert(image({"User": "root", "Cmd": ["x"]}), groups_rootfs, rootless=True)
    assert spec["process"]["user"] == {"uid": 0, "gid": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # root in no other group: nothing dropped, nothing said
        spec = C.convert(image({"User": "root", "Cmd": ["x"]}), tmp_path_rootfs_no_groups(groups_rootfs), rootless=True)
    assert spec["process"]["user"] == {"uid": 0, "gid": 0}


# ------------------------------------------------------------------ environment (config.md "Env")


@pytest.mark.parametrize(
    "env, want",
    [
        (["A=1", "B=2", "A=3"], [C.DEFAULT_PATH, "A=3", "B=2"]),
        (["PATH=/a", "PATH=/b"], ["PATH=/b"]),
        (["PATH=/a", "X=1", "PATH="], ["PATH=", "X=1"]),      # an empty PATH is the image's PATH: no default
        (["A=1", "A", "A=x=y"], [C.DEFAULT_PATH, "A=x=y"]),   # split at the first "=" only
        ([], [C.DEFAULT_PATH]),
        (["LANG=C.UTF-8"], [C.DEFAULT_PATH, "LANG=C.UTF-8"]),
    ],
)
def test_env_each_name_once_later_value_wins_default_path_only_without_one(env, want):
    spec = C.convert(image({"Env": env, "Cmd": ["x"]}))
    assert spec["process"]["env"] == want
    names = [e.partition("=")[0] for e in spec["process"]["env"]]
    assert len(names) == len(set(names))
    assert names.count("PATH") == 1
