"""ocilearn.runtime.seccomp: the linux.seccomp profile really filters system calls inside
the container (seccomp(2), runtime-spec config-linux.md "Seccomp").

A denied call must fail *in the container* with the profile's errno, as busybox reports
it; an argument condition must deny only the matching calls; both with and without
process.noNewPrivileges (the two places the filter is loaded)."""

from __future__ import annotations

import errno

import pytest
from test_runtime_helpers import cid, make_bundle, needs_root

from ocilearn.core.errors import RuntimeSpecError
from ocilearn.runtime import seccomp


def _profile(*rules: dict, default: str = "SCMP_ACT_ALLOW") -> dict:
    return {"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": list(rules)}


def test_prepare_counts_rules_and_skips_what_libseccomp_does_not_know():
    f = seccomp.prepare(_profile({"names": ["mkdir", "mkdirat", "no_such_call_at_all"], "action": "SCMP_ACT_ERRNO"},
                                 {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [
                                     {"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 12, "op": "SCMP_CMP_EQ"}]},
                                 {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}))
    # mkdir, mkdirat; two conditions on the same argument = two rules (as runc); the
    # allow rule equals the default action and is left out; the unknown name too
    assert f.rules == 4 and f.skipped == ["no_such_call_at_all"]
    assert seccomp.prepare({"syscalls": []}) is None


@pytest.mark.parametrize("profile, field", [
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}, "linux.seccomp.listenerPath"),
    (_profile({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}), "linux.seccomp.syscalls[0].action = SCMP_ACT_NOTIFY"),
    (_profile({"names": ["mkdir"], "action": "SCMP_ACT_LOG", "errnoRet": 1}), "linux.seccomp.syscalls[0].action: errnoRet"),
    (_profile({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 0, "op": "SCMP_CMP_EQ"}]}),
     "linux.seccomp.syscalls[0].args[0].index = 7"),
    ({**_profile(), "architectures": ["SCMP_ARCH_VAX"]}, "linux.seccomp.architectures[0] = 'SCMP_ARCH_VAX'"),
    ({**_profile(), "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}, "linux.seccomp.flags[0]"),
])
def test_prepare_refuses_naming_the_field(profile, field):
    with pytest.raises(RuntimeSpecError, match=field.replace("[", r"\[").replace("]", r"\]")):
        seccomp.prepare(profile)


@needs_root
@pytest.mark.parametrize("nnp", [True, False], ids=["noNewPrivileges", "privileged-load"])
def test_denied_syscall_fails_inside_the_container(busybox_base, tmp_path, runner, nnp):
    prof = _profile({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM})
    b = make_bundle(busybox_base, tmp_path / "b", ["sh", "-c", "mkdir /tmp/x; echo mkdir=$?; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; "
                                                  "touch /tmp/file && echo touch=ok"],
                    **{"linux.seccomp": prof, "process.noNewPrivileges": nnp})
    p = runner.oc("run", "-b", str(b), cid("sc"), check=False)
    assert p.returncode == 0, p
    assert "mkdir: can't create directory '/tmp/x': Operation not permitted" in p.stderr
    lines = p.stdout.split()
    assert "mkdir=1" in lines and "touch=ok" in lines
    assert "Seccomp:\t2" in p.stdout  # SECCOMP_MODE_FILTER (proc(5))
    assert f"NoNewPrivs:\t{int(nnp)}" in p.stdout  # the filter did not set no_new_privs itself


@needs_root
def test_errno_ret_and_argument_condition(busybox_base, tmp_path, runner):
    """kill(2) with signal 10 (SIGUSR1, argument 1) is denied with ENOSYS; signal 0 and 12
    pass. The default action returns defaultErrnoRet."""
    prof = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS, "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]}]}
    script = ("trap 'echo got-usr2' USR2; kill -USR1 $$; echo usr1=$?; kill -0 $$; echo zero=$?; kill -USR2 $$; echo usr2=$?")
    b = make_bundle(busybox_base, tmp_path / "b", ["sh", "-c", script], **{"linux.seccomp": prof})
    p = runner.oc("run", "-b", str(b), cid("scarg"), check=False)
    assert p.returncode == 0, p
    assert p.stdout.split() == ["usr1=1", "zero=0", "got-usr2", "usr2=0"]
    assert "Function not implemented" in p.stderr  # ENOSYS, the rule's errnoRet


@needs_root
def test_default_action_errno_blocks_everything_not_allowed(busybox_base, tmp_path, runner):
    """A default of SCMP_ACT_ERRNO with only the calls busybox cat needs allowed:
    execve of cat works; mkdir(2) (not allowed) fails with defaultErrnoRet (EACCES)."""
    allowed = ["execve", "brk", "arch_prctl", "set_tid_address", "mmap", "munmap", "mprotect", "open", "openat", "read", "write",
               "close", "fstat", "newfstatat", "exit_group", "exit", "rt_sigaction", "rt_sigprocmask", "getuid", "geteuid", "getgid",
               "getegid", "sendfile", "lseek", "ioctl", "fcntl", "prlimit64", "set_robust_list", "rseq", "getpid", "readlink",
               "capget", "capset", "prctl", "setresuid", "setresgid", "setgroups", "chdir", "getcwd", "close_range",
               "statx", "stat", "access", "faccessat2", "getrandom", "writev"]
    prof = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.EACCES,
            "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]}
    b = make_bundle(busybox_base, tmp_path / "b", ["cat", "/etc/passwd"], **{"linux.seccomp": prof, "process.noNewPrivileges": True})
    p = runner.oc("run", "-b", str(b), cid("scdef"), check=False)
    assert p.returncode == 0 and p.stdout.startswith("root:"), p
    b2 = make_bundle(busybox_base, tmp_path / "b2", ["mkdir", "/tmp/d"], **{"linux.seccomp": prof, "process.noNewPrivileges": True})
    p = runner.oc("run", "-b", str(b2), cid("scdef"), check=False)
    assert p.returncode == 1 and p.stderr == "mkdir: can't create directory '/tmp/d': Permission denied\n", p


@needs_root
def test_exec_runs_under_the_containers_profile(busybox_base, tmp_path, runner):
    """runc exec applies the container's seccomp profile to the new process too."""
    prof = _profile({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EROFS})
    b = make_bundle(busybox_base, tmp_path / "b", ["sleep", "30"], **{"linux.seccomp": prof})
    name = cid("scexec")
    runner.oc("run", "-d", "-b", str(b), name)
    try:
        p = runner.oc("exec", name, "sh", "-c", "mkdir /tmp/y; echo rc=$?; grep '^Seccomp:' /proc/self/status", check=False)
        assert p.returncode == 0, p
        assert p.stdout.split() == ["rc=1", "Seccomp:", "2"]
        assert "mkdir: can't create directory '/tmp/y': Read-only file system" in p.stderr
    finally:
        runner.oc("delete", "--force", name, check=False)
