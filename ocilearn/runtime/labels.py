"""Linux security module labels: the AppArmor profile (``process.apparmorProfile``), the
SELinux process label (``process.selinuxLabel``) and mount label (``linux.mountLabel``)
(runtime-spec config.md "Linux process", config-linux.md "Mount Label").

They are applied where the host has the module, and otherwise handled as runc 1.1 does —
which is always an error, never a silent skip:

- **AppArmor** (runc libcontainer/apparmor): the profile is applied by writing
  ``exec PROFILE`` to ``/proc/thread-self/attr/apparmor/exec`` (older kernels:
  ``attr/exec``) just before execve(2), like libapparmor's aa_change_onexec. When
  AppArmor is not enabled (``/sys/module/apparmor/parameters/enabled`` is not ``Y``) runc
  fails in its init ("apparmor failed to apply profile: write /proc/self/attr/exec:
  invalid argument"); ocilearn refuses the same config at ``create`` before anything is
  made, naming the field.
- **SELinux process label** (runc libcontainer/configs/validate): with SELinux disabled runc
  refuses the config ("selinux label is specified in config, but selinux is disabled or
  not supported"); so does ocilearn. Enabled, the label is written to
  ``/proc/thread-self/attr/exec`` before execve (go-selinux SetExecLabel).
- **SELinux mount label**: runc adds ``context="LABEL"`` to the data of every mount that
  is not a bind, proc, sysfs, mqueue or cgroup mount (go-selinux label.FormatMountLabel),
  whether SELinux is enabled or not; on a host without SELinux the kernel then refuses
  the mount (EINVAL) and ``runc create`` fails. ocilearn does the same when SELinux is
  enabled, and refuses such a config at ``create`` when it is not. A mount label with no
  mount that takes it has nothing to apply, for runc and for ocilearn alike.
"""

from __future__ import annotations

import os

from ..core.errors import ContainerError, RuntimeSpecError

#: mount types that do not get the mount label (runc rootfs_linux.go mountToRootfs)
NO_MOUNT_LABEL = frozenset({"bind", "proc", "sysfs", "mqueue", "cgroup", "cgroup2"})


def apparmor_enabled() -> bool:
    """runc's test: securityfs has ``apparmor`` and the module parameter ``enabled`` is Y."""
    if not os.path.exists("/sys/kernel/security/apparmor"):
        return False
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read(1) == "Y"
    except OSError:
        return False


def selinux_enabled() -> bool:
    """go-selinux GetEnabled: selinuxfs is mounted and this process has a context other than
    ``kernel`` (``/proc/self/attr/current``)."""
    if not os.path.exists("/sys/fs/selinux/enforce"):
        return False
    try:
        with open("/proc/self/attr/current") as f:
            con = f.read().strip("\0\n ")
    except OSError:
        return False
    return bool(con) and con != "kernel"


def _labelled_mounts(cfg: dict) -> list[int]:
    out = []
    for i, m in enumerate(cfg.get("mounts") or []):
        if (m.get("type") or "") in NO_MOUNT_LABEL or "bind" in (m.get("options") or []) or "rbind" in (m.get("options") or []):
            continue
        out.append(i)
    return out


def check(cfg: dict, path: str = "config.json") -> None:
    """Refuse, before anything is created, a label this host cannot apply (see the module
    doc for runc's behaviour in each case). Raises RuntimeSpecError naming the field."""
    proc = cfg.get("process") or {}
    linux = cfg.get("linux") or {}
    if proc.get("apparmorProfile") and not apparmor_enabled():
        raise RuntimeSpecError(f"{path}: process.apparmorProfile = {proc['apparmorProfile']!r}: AppArmor is not enabled on this host "
                               "(/sys/module/apparmor/parameters/enabled), so the profile cannot be applied; runc fails too")
    if proc.get("selinuxLabel") and not selinux_enabled():
        raise RuntimeSpecError(f"{path}: process.selinuxLabel = {proc['selinuxLabel']!r}: SELinux is disabled or not supported on this "
                               "host, so the label cannot be applied (runc refuses the same config)")
    if linux.get("mountLabel") and not selinux_enabled():
        idx = _labelled_mounts(cfg)
        if idx:
            m = cfg["mounts"][idx[0]]
            raise RuntimeSpecError(f"{path}: linux.mountLabel = {linux['mountLabel']!r}: SELinux is disabled or not supported on this host, "
                                   f"so mounts[{idx[0]}] ({m.get('type')} on {m.get('destination')}) cannot get context= (runc's mount "
                                   "fails with EINVAL)")


def mount_data(data: str, mount_type: str, mount_label: str | None) -> str:
    """Filesystem data for a mount with the SELinux mount label added as
    ``context="LABEL"`` (go-selinux label.FormatMountLabel), for the mount types runc labels."""
    if not mount_label or mount_type in NO_MOUNT_LABEL:
        return data
    ctx = f'context="{mount_label}"'
    return f"{data},{ctx}" if data else ctx


def _write_attr(names: list[str], value: str, what: str) -> None:
    for rel in names:
        p = f"/proc/thread-self/{rel}"
        if os.path.exists(p):
            break
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise ContainerError(f"{what}: cannot write {value!r} to {p}: {e.strerror}")


def apply_exec_labels(process: dict) -> None:
    """Just before execve(2): ask the kernel to switch to ``process.apparmorProfile``
    (``exec PROFILE`` to attr/apparmor/exec, aa_change_onexec(3)) and
    ``process.selinuxLabel`` (attr/exec, setexeccon(3)) when the program is executed.
    Raises ContainerError naming the field when the kernel refuses."""
    prof = process.get("apparmorProfile")
    if prof:
        _write_attr(["attr/apparmor/exec", "attr/exec"], f"exec {prof}", "process.apparmorProfile")
    label = process.get("selinuxLabel")
    if label:
        _write_attr(["attr/exec"], label, "process.selinuxLabel")
