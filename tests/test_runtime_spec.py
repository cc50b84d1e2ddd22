"""ocilearn.runtime.spec: config.json checked at ``create`` before anything is made.

Unit tests compare the schema evaluator with the ``jsonschema`` package on the official
runtime-spec schema (../shared/fixtures/runtime-spec-schema, of which the package ships a
copy), then each bad input goes through ``ocilearn create`` for real: one line naming the
field, a non-zero exit, and nothing left in the state root, in cgroupfs or as a process.
"""

from __future__ import annotations

import copy
import glob
import json
import os
from pathlib import Path

import pytest
from conftest import SHARED
from test_runtime_helpers import cid, make_bundle, needs_root

from ocilearn.core.errors import RuntimeSpecError
from ocilearn.runtime import spec

SCHEMA_FIXTURE = SHARED / "fixtures" / "runtime-spec-schema"

#: a config like `runc spec` writes (every section the checks look at)
BASE = {
    "ociVersion": "1.0.2",
    "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["sh"], "env": ["PATH=/bin"], "cwd": "/",
                "capabilities": {k: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                                 for k in ("bounding", "effective", "permitted", "ambient")},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}], "noNewPrivileges": True},
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "runc",
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
               {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
               {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "tmpcopyup", "rprivate"]},
               {"destination": "/mnt", "type": "bind", "source": "/tmp", "options": ["rbind", "ro", "rslave"]}],
    "linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}]},
              "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
              "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
              "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                          "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}},
}


def _with(**changes) -> dict:
    cfg = copy.deepcopy(BASE)
    for key, value in changes.items():
        obj = cfg
        *parents, last = key.split(".")
        for k in parents:
            obj = obj[int(k)] if isinstance(obj, list) else obj.setdefault(k, {})
        if value is None:
            obj.pop(last, None)
        elif isinstance(obj, list):
            obj[int(last)] = value
        else:
            obj[last] = value
    return cfg


def test_shipped_schema_is_the_official_one():
    """The package's copy is byte-identical to the runtime-spec schema in ../shared."""
    assert SCHEMA_FIXTURE.is_dir(), f"{SCHEMA_FIXTURE} is missing"
    names = sorted(p.name for p in SCHEMA_FIXTURE.glob("*.json"))
    assert sorted(n for n in os.listdir(spec.SCHEMA_DIR) if n.endswith(".json")) == names
    for n in names:
        assert (Path(spec.SCHEMA_DIR) / n).read_bytes() == (SCHEMA_FIXTURE / n).read_bytes(), n


# (dotted change, expected field in the message); each is a config the schema refuses
SCHEMA_BAD = [
    ({"root.path": 123}, "root.path = 123: must be a string"),
    ({"hostname": 12345}, "hostname = 12345: must be a string"),
    ({"mounts.1.options": "ro,nosuid"}, 'mounts[1].options = "ro,nosuid": must be an array'),
    ({"mounts.0.destination": None}, "mounts[0].destination is required"),
    ({"process.cwd": None}, "process.cwd is required"),
    ({"process.user.uid": -1}, "process.user.uid = -1: must be from 0 to 4294967295 (uint32)"),
    ({"process.user.gid": "0"}, 'process.user.gid = "0": must be an integer'),
    ({"process.rlimits": [{"type": "nofile", "soft": 1, "hard": 1}]}, "process.rlimits[0].type"),
    ({"process.rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1}]}, "process.rlimits[0].hard is required"),
    ({"process.capabilities.bounding": "CAP_KILL"}, "process.capabilities.bounding"),
    ({"process.terminal": "yes"}, "process.terminal"),
    ({"ociVersion": None}, "ociVersion is required"),
    ({"linux.namespaces": [{"type": "time2"}]}, "linux.namespaces[0].type"),
    ({"linux.seccomp.defaultAction": "SCMP_ACT_BOGUS"}, "linux.seccomp.defaultAction"),
    ({"linux.seccomp.syscalls.0.args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}, "linux.seccomp.syscalls[0].args[0].op"),
    ({"linux.resources.memory": {"swappiness": "high"}}, "linux.resources.memory.swappiness"),
    ({"linux.resources.devices": [{"allow": "no"}]}, "linux.resources.devices[0].allow"),
    ({"hooks": {"poststart": [{"path": 7}]}}, "hooks.poststart[0].path"),
    ({"linux.sysctl": {"net.ipv4.ip_forward": 1}}, "linux.sysctl.net.ipv4.ip_forward"),
]


def _jsonschema_validator():
    import jsonschema
    import referencing

    reg = referencing.Registry()
    for p in SCHEMA_FIXTURE.glob("*.json"):
        reg = reg.with_resource(f"file:///schema/{p.name}", referencing.Resource.from_contents(json.loads(p.read_text()),
                                default_specification=referencing.jsonschema.DRAFT4))
    root = json.loads((SCHEMA_FIXTURE / "config-schema.json").read_text())
    return jsonschema.Draft4Validator({**root, "id": "file:///schema/config-schema.json"}, registry=reg)


@pytest.mark.parametrize("changes, field", SCHEMA_BAD)
def test_schema_refuses_with_field_and_agrees_with_jsonschema(changes, field):
    cfg = _with(**changes)
    with pytest.raises(RuntimeSpecError) as e:
        spec.check_schema(cfg, "bundle/config.json")
    msg = str(e.value)
    assert msg.startswith("bundle/config.json: ") and field in msg and "\n" not in msg
    assert list(_jsonschema_validator().iter_errors(cfg)), "jsonschema accepts what ocilearn refused"


def test_schema_accepts_what_jsonschema_accepts():
    v = _jsonschema_validator()
    configs = [BASE, _with(**{"process.user.uid": 2**32 - 1}), _with(**{"linux.resources": {"memory": {"limit": -1, "swappiness": 0}}}),
               _with(**{"annotations": {"org.opencontainers.image.title": "x"}}), _with(**{"mounts": []}),
               _with(**{"linux.seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "flags": ["SECCOMP_FILTER_FLAG_LOG"]}})]
    # the bundle ocilearn unpack writes
    from ocilearn.bundle.convert import convert, default_spec
    from ocilearn.image.model import ImageConfig

    configs.append(default_spec())
    configs.append(default_spec(rootless=True))
    configs.append(convert(ImageConfig.from_json({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"], "User": "0"},
                                                  "rootfs": {"type": "layers", "diff_ids": []}})))
    for cfg in configs:
        assert list(v.iter_errors(cfg)) == []
        spec.check_schema(cfg)


# (change, field named in the one-line error): configs the schema accepts but that cannot
# be applied as asked, on any host or on this one
SEMANTIC_BAD = [
    ({"process.capabilities.bounding": ["CAP_KILL", "CAP_BOGUS"]}, "process.capabilities.bounding[1] = 'CAP_BOGUS': unknown capability"),
    ({"process.capabilities.effective": ["CAP_KILL", "CAP_SYS_ADMIN"]}, "process.capabilities.effective has CAP_SYS_ADMIN"),
    ({"process.rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2**40, "hard": 2**40}]}, "process.rlimits[0].hard = 1099511627776 (RLIMIT_NOFILE): above the kernel's maximum"),
    ({"process.rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]}, "process.rlimits[0] (RLIMIT_NOFILE): soft 10 is above hard 5"),
    ({"process.rlimits": [{"type": "RLIMIT_TEST", "soft": 1, "hard": 1}]}, "process.rlimits[0].type = 'RLIMIT_TEST'"),
    ({"process.rlimits": [{"type": "RLIMIT_CORE", "soft": 1, "hard": 1}, {"type": "RLIMIT_CORE", "soft": 1, "hard": 1}]}, "process.rlimits[1].type = 'RLIMIT_CORE': listed twice"),
    ({"linux.namespaces": [{"type": "mount"}, {"type": "pid"}]}, "hostname is set but linux.namespaces has no 'uts' namespace"),
    ({"hostname": "h" * 65}, "hostname = 'hhhh"),
    ({"mounts.2.options": ["nosuid", "ridmap"]}, "mounts[2].options[1] = 'ridmap': not supported by ocilearn"),
    ({"mounts.3.options": ["rbind", "idmap"]}, "mounts[3].options[1] = 'idmap': not supported by ocilearn"),
    ({"mounts.3.options": ["rbind", "tmpcopyup"]}, "mounts[3].options has tmpcopyup, which only applies to type tmpfs"),
    ({"mounts.3.destination": "mnt"}, "mounts[3].destination = 'mnt': must be an absolute path"),
    ({"process.apparmorProfile": "docker-default"}, "process.apparmorProfile = 'docker-default': AppArmor is not enabled"),
    ({"process.selinuxLabel": "system_u:system_r:container_t:s0"}, "process.selinuxLabel = 'system_u:system_r:container_t:s0': SELinux is disabled"),
    ({"linux.mountLabel": "system_u:object_r:container_file_t:s0"}, "linux.mountLabel = 'system_u:object_r:container_file_t:s0': SELinux is disabled"),
    ({"linux.seccomp.listenerPath": "/run/agent.sock"}, "linux.seccomp.listenerPath = '/run/agent.sock': seccomp user notification is not supported"),
    ({"linux.seccomp.syscalls.0.action": "SCMP_ACT_NOTIFY"}, "linux.seccomp.syscalls[0].action = SCMP_ACT_NOTIFY"),
    ({"linux.seccomp.syscalls.0.action": "SCMP_ACT_KILL"}, "linux.seccomp.syscalls[0].action: errnoRet is set but SCMP_ACT_KILL returns no errno"),
    ({"linux.seccomp.flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}, "linux.seccomp.flags[0] = 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV': not supported"),
    ({"linux.seccomp.syscalls.0.args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}, "linux.seccomp.syscalls[0].args[0].index = 6"),
    ({"linux.resources.unified": {"memory.max": "1G"}}, "linux.resources.unified"),
    ({"linux.resources.hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}]}, "linux.resources.hugepageLimits[0]"),
    ({"linux.resources.network": {"classID": 1048577}}, "linux.resources.network.classID"),
    ({"linux.resources.blockIO": {"weight": 10}}, "linux.resources.blockIO.weight"),
    ({"linux.resources.memory": {"swappiness": 101}}, "linux.resources.memory.swappiness = 101: must be from 0 to 100"),
    ({"ociVersion": "invalid"}, "ociVersion = 'invalid': not a SemVer 2.0.0 version"),
    ({"ociVersion": "2.0.0"}, "ociVersion = '2.0.0': this runtime implements runtime-spec 1.x"),
    ({"linux.personality": {"domain": "LINUX32"}}, "linux.personality is set, but ocilearn cannot apply it"),
    ({"linux.intelRdt": {"closID": "guaranteed_group"}}, "linux.intelRdt is set, but ocilearn cannot apply it"),
    ({"process.scheduler": {"policy": "SCHED_BATCH"}}, "process.scheduler is set, but ocilearn cannot apply it"),
]


def _host_supports(field: str) -> bool:
    """The few SEMANTIC_BAD cases that depend on this host's kernel and cgroups."""
    from ocilearn.runtime.cgroups import detect
    from ocilearn.runtime.labels import apparmor_enabled, selinux_enabled

    version, hier = detect()
    if "apparmor" in field:
        return apparmor_enabled()
    if "selinux" in field.lower() or "mountLabel" in field:
        return selinux_enabled()
    if "hugepageLimits" in field:
        return version == 2 or any("hugetlb" in h for h in hier)
    if "network.classID" in field:
        return any("net_cls" in h for h in hier)
    if "blockIO.weight" in field:
        return any(os.path.exists(os.path.join(p, "blkio.weight")) for h, p in hier.items() if "blkio" in h)
    if "unified" in field:
        return version == 2
    return False


@pytest.mark.parametrize("changes, field", [c for c in SEMANTIC_BAD if c[1]])
def test_semantic_checks_name_the_field(changes, field):
    if os.geteuid() != 0 and "linux.resources" in field:
        pytest.skip("as an ordinary user every limit is refused for the lack of a cgroup (tested in the rootless tests)")
    cfg = _with(**changes)
    spec.check_schema(cfg)  # the schema itself accepts it
    if _host_supports(field):
        spec.validate(cfg)  # applied on this host, so not refused
        return
    with pytest.raises(RuntimeSpecError) as e:
        spec.validate(cfg, "b/config.json")
    assert str(e.value).startswith("b/config.json: ") and field in str(e.value) and "\n" not in str(e.value)


def test_good_config_passes_and_prepares_seccomp():
    spec.validate(BASE)
    prep = spec.prepare(BASE)
    assert prep["seccomp"] is not None and prep["seccomp"].rules == 1 and prep["seccomp"].skipped == []


# ---------------------------------------------------------------- through `ocilearn create`


def _leftover_cgroups(name: str) -> list[str]:
    return [p for p in glob.glob(f"/sys/fs/cgroup/*/*{name}*") + glob.glob(f"/sys/fs/cgroup/*{name}*")]


CREATE_BAD = [
    ({"root.path": 123}, "root.path = 123: must be a string"),
    ({"hostname": 12345}, "hostname = 12345: must be a string"),
    ({"mounts": [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": "nosuid,nodev"}]},
     'mounts[0].options = "nosuid,nodev": must be an array'),
    ({"mounts": [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}]}, "mounts[0].options[0] = 'idmap'"),
    ({"process.rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2**40, "hard": 2**40}]}, "process.rlimits[0].hard = 1099511627776"),
    ({"process.capabilities": {"bounding": ["CAP_KILL", "CAP_NOT_A_CAP"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}},
     "process.capabilities.bounding[1] = 'CAP_NOT_A_CAP'"),
    ({"process.apparmorProfile": "unconfined-or-not"}, "process.apparmorProfile"),
    ({"linux.seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"}}, "linux.seccomp.listenerPath"),
    ({"linux.resources": {"memory": {"limit": 64 << 20}, "hugepageLimits": [{"pageSize": "2MB", "limit": 2 << 20}]}},
     "linux.resources.hugepageLimits[0]"),
]


@needs_root
@pytest.mark.parametrize("changes, field", CREATE_BAD)
def test_create_refuses_bad_config_leaving_nothing(busybox_base, tmp_path, runner, changes, field):
    if _host_supports(field):
        pytest.skip(f"{field} is supported on this host")
    b = make_bundle(busybox_base, tmp_path / "b", ["true"], **changes)
    name = cid("spec")
    p = runner.oc("create", "-b", str(b), name, check=False)
    assert p.returncode == 1, p
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and str(b / "config.json") in lines[0], p.stderr
    assert p.stdout == ""
    assert not (Path(runner.root) / name).exists()
    assert _leftover_cgroups(name) == []
    assert runner.children() == []


@needs_root
def test_failing_poststart_hook_warns_and_start_goes_on(busybox_base, tmp_path, runner):
    """config.md "poststart": if a poststart hook fails, the runtime MUST log a warning, but
    the remaining hooks and lifecycle continue as if the hook had succeeded."""
    mark = tmp_path / "second-hook-ran"
    hooks = {"poststart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo broken >&2; exit 3"]},
                           {"path": "/bin/sh", "args": ["sh", "-c", f"touch {mark}"]}]}
    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "30"], hooks=hooks)
    name = cid("post")
    runner.oc("create", "-b", str(b), name)
    p = runner.oc("start", name, check=False)
    assert p.returncode == 0, p
    assert "warning: poststart hook /bin/sh failed: exit status 3: broken" in p.stderr
    assert mark.exists()
    st = json.loads(runner.oc("state", name).stdout)
    assert st["status"] == "running"
    runner.oc("delete", "--force", name)


@needs_root
def test_unpacked_bundle_runs_without_ambient_warning(tmp_path, runner):
    """`ocilearn unpack` writes runc spec's default capabilities, whose ambient set is not
    inheritable: like runc, the runtime leaves those ambient capabilities out quietly."""
    from test_runtime_helpers import OCILEARN, busybox_image

    bundle = tmp_path / "bundle"
    p = runner.cmd(OCILEARN, "unpack", "--image", f"{busybox_image()}:latest", str(bundle))
    assert p.returncode == 0, p
    cfg = json.loads((bundle / "config.json").read_text())
    caps = cfg["process"]["capabilities"]
    assert set(caps["ambient"]) - set(caps.get("inheritable") or [])  # the case at hand
    cfg["process"]["args"] = ["sh", "-c", "grep -E '^Cap(Amb|Eff)' /proc/self/status"]
    cfg["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(cfg))
    p = runner.oc("run", "-b", str(bundle), cid("amb"), check=False)
    assert p.returncode == 0 and p.stderr == "", p
    assert "CapAmb:\t0000000000000000" in p.stdout


def test_mount_label_goes_where_runc_puts_it():
    """go-selinux label.FormatMountLabel as runc uses it: context= for tmpfs, devpts and
    other filesystems; not for bind, proc, sysfs, mqueue or cgroup mounts."""
    from ocilearn.runtime.labels import mount_data

    lab = "system_u:object_r:container_file_t:s0:c1,c2"
    assert mount_data("mode=755,size=65536k", "tmpfs", lab) == f'mode=755,size=65536k,context="{lab}"'
    assert mount_data("", "devpts", lab) == f'context="{lab}"'
    for t in ("bind", "proc", "sysfs", "mqueue", "cgroup"):
        assert mount_data("x=1", t, lab) == "x=1"
    assert mount_data("mode=755", "tmpfs", None) == "mode=755"


def test_mount_label_without_labelled_mounts_has_nothing_to_apply():
    from ocilearn.runtime import labels

    cfg = _with(**{"linux.mountLabel": "system_u:object_r:container_file_t:s0",
                   "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                              {"destination": "/mnt", "type": "bind", "source": "/tmp", "options": ["rbind"]}]})
    labels.check(cfg)  # runc would not fail either: no mount takes context=


@needs_root
def test_tmpcopyup_and_propagation_options_applied(busybox_base, tmp_path, runner):
    """podman --read-only --tmpfs: a tmpfs over an image directory with runc's tmpcopyup
    extension starts with the image's files (owner and mode kept) and is writable on a
    read-only root; propagation flags in the options are applied, not passed as data."""
    # the image's own mounts (a tmpfs on /dev among them: device nodes must never be made
    # in the shared rootfs directory) plus the tmpfs over /etc
    mounts = json.loads((busybox_base / "config.json").read_text())["mounts"]
    assert any(m["destination"] == "/dev" and m.get("type") == "tmpfs" for m in mounts)
    mounts.append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "tmpcopyup", "rprivate", "size=1m"]})
    script = ("grep ' /etc ' /proc/mounts | cut -d' ' -f3; stat -c '%a %u' /etc/passwd; head -1 /etc/passwd; "
              "echo x > /etc/new && echo etc-writable; touch /bin/x 2>/dev/null || echo root-read-only")
    b = make_bundle(busybox_base, tmp_path / "b", ["sh", "-c", script], mounts=mounts, **{"root.readonly": True, "process.user": {"uid": 0, "gid": 0}})
    p = runner.oc("run", "-b", str(b), cid("cpup"), check=False)
    assert p.returncode == 0, p
    src = os.stat(busybox_base / "rootfs" / "etc" / "passwd")
    assert p.stdout.splitlines() == ["tmpfs", f"{src.st_mode & 0o777:o} {src.st_uid}",
                                     (busybox_base / "rootfs" / "etc" / "passwd").read_text().splitlines()[0],
                                     "etc-writable", "root-read-only"]
    assert not (busybox_base / "rootfs" / "etc" / "new").exists()


@needs_root
def test_recursive_read_only_bind(busybox_base, tmp_path, runner):
    """runc's "rro": the bind mount and every mount below it read-only (mount_setattr(2)
    AT_RECURSIVE); plain "ro" leaves the submount writable."""
    import subprocess

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(src / "sub")], check=True)
    try:
        mounts = json.loads((busybox_base / "config.json").read_text())["mounts"]
        mounts += [{"destination": "/rro", "type": "bind", "source": str(src), "options": ["rbind", "rro"]},
                   {"destination": "/ro", "type": "bind", "source": str(src), "options": ["rbind", "ro"]}]
        script = "for d in /rro /rro/sub /ro /ro/sub; do touch $d/f 2>/dev/null && echo $d:rw || echo $d:ro; done"
        b = make_bundle(busybox_base, tmp_path / "b", ["sh", "-c", script], mounts=mounts, **{"process.user": {"uid": 0, "gid": 0}})
        p = runner.oc("run", "-b", str(b), cid("rro"), check=False)
        assert p.returncode == 0, p
        assert p.stdout.split() == ["/rro:ro", "/rro/sub:ro", "/ro:ro", "/ro/sub:rw"]
    finally:
        subprocess.run(["umount", "-l", str(src / "sub")], check=True)
