"""Image config → runtime ``config.json`` (image-spec conversion.md; runtime-spec config.md).

The image config says *what* to run (Entrypoint, Cmd, Env, WorkingDir, User …); the
runtime config also says *how* (namespaces, mounts, capabilities …). :func:`convert`
builds the runtime config from the first, the rest from defaults like ``runc spec``, and
records where every value came from (:func:`explain_config` returns those rows)::

    cfg = convert.convert(image_config, rootfs="bundle/rootfs")
    rows = convert.explain_config(image_config, rootfs="bundle/rootfs")   # field, value, from, why

Equivalents: ``umoci unpack`` writes the same fields; ``runc spec [--rootless]`` writes the
defaults (:func:`default_spec`, CLI ``ocilearn spec``).

Rules (conversion.md sections in brackets)
    - ``process.args`` ["Verbatim Fields", note 2]: Entrypoint followed by Cmd; an
      Entrypoint of exactly ``[""]`` counts as unset (Docker's rule); caller
      ``args`` replace Cmd only; an empty result is :class:`~ocilearn.core.errors.ConfigError`
      "no command specified". ``null`` and ``[]`` are both "nothing"; inner empty strings
      (``["/e", ""]``) are kept.
    - ``process.env``: Env copied in order, each name once (a name given twice keeps its
      first place and its last value); ``PATH`` defaulted only when the image has none (what runc spec
      and Docker use); ``HOME`` added from the user's passwd entry when absent (as umoci
      and runc do); ``TERM=xterm`` only with a terminal.
    - ``process.cwd``: WorkingDir, default ``/``. A WorkingDir that climbs above ``/``
      (``../..``), is relative, or resolves (through symlinks *inside* the rootfs) into
      ``/proc`` or ``/sys`` — kernel filesystems the runtime mounts, whose
      ``/proc/self/fd/N`` magic links can point at host directories (CVE-2024-21626) — is rejected with :class:`~ocilearn.core.errors.UnsafePath`.
    - ``process.user`` ["Config.User"]: all six forms (``name``, ``uid``, ``uid:gid``,
      ``name:group``, ``uid:group``, ``name:gid``). Numbers are copied verbatim; names are
      looked up in the *rootfs's* ``/etc/passwd`` and ``/etc/group`` read through the
      in-root resolver (an ``etc/passwd -> /etc/passwd`` symlink reads the image's file,
      never the host's); a bare uid takes its primary gid from passwd (or 0 when absent,
      like Docker); an unknown name is an error. ``additionalGids`` start with the primary
      gid (moby's CVE-2022-36109 hardening); without an explicit group they add, once
      each, the groups of ``/etc/group`` whose member list names the user exactly.
    - annotations ["Annotation Fields"]: ``org.opencontainers.image.`` + ``os``,
      ``architecture``, ``variant``, ``os.version``, ``os.features`` (comma-joined),
      ``author``, ``created``, ``stopSignal``, ``exposedPorts`` (sorted, comma-joined);
      then every Label, which wins on conflict. Absent fields give no annotation (umoci
      0.4.7 writes ``exposedPorts``/``stopSignal`` as ``""`` instead: a documented
      difference).
    - Volumes → one ``tmpfs`` mount each (nosuid, nodev, mode=755), destination checked
      like WorkingDir and resolved through the rootfs's symlinks *inside* the rootfs ("SHOULD provide mounts … so that application data is not
      written to the container's root filesystem"). A tmpfs starts empty: image files under
      a volume path are hidden (Docker copies them into a new volume; ocilearn does not).
    - Defaults: namespaces, mounts, masked/read-only paths, capabilities, rlimits,
      ``noNewPrivileges`` exactly as ``runc spec`` 1.1.5 writes them; hostname
      ``ocilearn``; ``root.readonly`` only for :func:`default_spec` (an unpacked image
      usually expects to write, as with umoci's bundles).
    - ``process.terminal`` is ``false`` by default. ``runc spec`` (and umoci) write
      ``true``, and then ``runc create`` / ``runc run -d`` fail with *"cannot allocate tty
      if runc will detach without setting console socket"* (runc issue 1580 on GitHub): a
      detached container has no terminal to attach to unless a ``--console-socket``
      receives the pty master. That is the article's first manual edit; ``terminal=True``
      (CLI ``--terminal``) asks for one on purpose.
    - ``rootless=True`` is ``runc spec --rootless``: a user namespace mapping the caller's
      uid/gid to 0 (size 1), no network namespace (an unprivileged user cannot configure
      one), no ``linux.resources`` (no cgroup delegation), ``/sys`` bound read-only instead
      of a new sysfs, ``gid=5`` dropped from devpts. Only container uid 0 exists then, so a
      non-root image user (busybox's ``app`` = 1000) is not mapped: runc cannot switch
      to it and the container fails to start. That is the article's second manual edit
      (``"user": {"uid": 0, "gid": 0}``); ocilearn makes it for you (warning, and a row in
      :func:`explain_config`) — umoci keeps 1000:1000 and the bundle does not start.
"""

from __future__ import annotations

import copy
import json
import os
import posixpath
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..core import explain
from ..core.errors import ConfigError, UnsafePath
from ..core.fsutil import Root
from ..image.model import ContainerConfig, ImageConfig

__all__ = [
    "OCI_VERSION",
    "DEFAULT_PATH",
    "Row",
    "UserInfo",
    "resolve_user",
    "merge_env",
    "process_args",
    "check_container_path",
    "convert",
    "explain_config",
    "default_spec",
    "make_rootless",
    "validate",
]

OCI_VERSION = "1.0.2-dev"  # what runc 1.1.5 spec writes
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ANN = "org.opencontainers.image."
_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

# `runc spec` (runc 1.1.5), field for field; data, not logic.
_RUNC_SPEC: dict[str, Any] = {
    "ociVersion": OCI_VERSION,
    "process": {
        "terminal": True,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": [DEFAULT_PATH, "TERM=xterm"],
        "cwd": "/",
        "capabilities": {"bounding": _CAPS, "effective": _CAPS, "permitted": _CAPS, "ambient": _CAPS},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "runc",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
        "maskedPaths": [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
            "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
        ],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}


@dataclass(frozen=True)
class Row:
    """One line of provenance: a config.json field, its value, where it came from
    (``image config``, ``rootfs /etc/passwd``, ``default (runc spec)``, ``rootless
    transform``, ``caller``) and why."""

    field: str
    value: Any
    source: str
    why: str = ""


class _Prov:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(self, field: str, value: Any, source: str, why: str = "") -> None:
        self.rows.append(Row(field, copy.deepcopy(value), source, why))


# ----------------------------------------------------------------- default spec


def make_rootless(spec: dict, uid: int | None = None, gid: int | None = None) -> dict:
    """Apply ``runc spec --rootless``'s changes to ``spec`` (in place; returned).

    ``uid``/``gid``: the host ids mapped to container 0 (default: this process's
    effective ids). Source: runc libcontainer/specconv ``ToRootless``.
    """
    uid = os.geteuid() if uid is None else uid
    gid = os.getegid() if gid is None else gid
    linux = spec.setdefault("linux", {})
    linux["namespaces"] = [ns for ns in linux.get("namespaces", []) if ns["type"] not in ("network", "user")] + [{"type": "user"}]
    linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
    linux.pop("resources", None)
    mounts = []
    for m in spec.get("mounts", []):
        m = dict(m)
        if m["destination"] == "/sys":
            m = {"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
        elif m.get("type") == "devpts":
            m["options"] = [o for o in m.get("options", []) if not o.startswith("gid=")]
        mounts.append(m)
    spec["mounts"] = mounts
    return spec


def default_spec(*, rootless: bool = False, terminal: bool = True, uid: int | None = None, gid: int | None = None) -> dict:
    """A default runtime config like ``runc spec [--rootless]`` (terminal true, args
    ``["sh"]``, read-only root, hostname ``runc``), as a new dict.

    Source: runtime-spec config.md, config-linux.md; runc 1.1.5 ``runc spec``.
    """
    spec = copy.deepcopy(_RUNC_SPEC)
    spec["process"]["terminal"] = terminal
    if not terminal:
        spec["process"]["env"] = [DEFAULT_PATH]
    if rootless:
        make_rootless(spec, uid, gid)
    explain.step("convert", "default spec", "rootless" if rootless else "", "runc spec" + (" --rootless" if rootless else ""))
    return spec


# ----------------------------------------------------------------- args


def process_args(cfg: ContainerConfig | None, args: Sequence[str] | None = None) -> list[str]:
    """``process.args`` from Entrypoint and Cmd (conversion.md 'Verbatim Fields'; Docker's Entrypoint/Cmd rules).

    Args:
        cfg: the image's ``config`` object (``None`` when absent or null).
        args: caller-supplied arguments; they replace Cmd (not Entrypoint).

    Raises:
        ConfigError: nothing to run ("no command specified").
    """
    entry = list(cfg.entrypoint) if cfg and cfg.entrypoint is not None else []
    if entry == [""]:
        entry = []  # Docker: ENTRYPOINT [""] resets the entrypoint
    cmd = list(args) if args is not None else (list(cfg.cmd) if cfg and cfg.cmd is not None else [])
    out = entry + cmd
    if not out:
        what = "the image config has no 'config' object" if cfg is None else "Entrypoint and Cmd are both empty or null"
        raise ConfigError(f"no command specified: {what}; give the command to run (conversion.md 'Verbatim Fields')")
    return out


# ----------------------------------------------------------------- paths


_KERNEL_FS = ("proc", "sys")


def merge_env(env: Sequence[str]) -> list[str]:
    """``config.Env`` (a list of ``NAME=value``) with each name once: a name given twice
    keeps the place of its first entry and the value of its last (what a shell does with
    two assignments, and what Docker's ``ReplaceOrAppendEnvValues`` and runtime-tools'
    ``AddProcessEnv`` used by umoci do). An entry without ``=`` is its own name.

    Source: image-spec config.md ``Env``; conversion.md "Config.Env"."""
    out: list[str] = []
    where: dict[str, int] = {}
    for e in env:
        name = e.partition("=")[0]
        if name in where:
            out[where[name]] = e
        else:
            where[name] = len(out)
            out.append(e)
    return out


def check_container_path(path: str, rootfs: str | os.PathLike | Root | None, what: str, *, resolved: bool = False) -> str:
    """Check a path the container will use (WorkingDir, a volume) stays in the rootfs.

    Returns the lexically cleaned absolute path, or with ``resolved=True`` the path with
    the rootfs's symlinks resolved inside it (so a mount destination names a real
    directory of the image). Raises UnsafePath when it is relative,
    climbs above ``/``, or resolves (inside the rootfs, following its symlinks) into
    ``/proc`` or ``/sys`` (CVE-2024-21626).
    """
    if not path.startswith("/"):
        raise UnsafePath(f"{what} {path!r} is not absolute (runtime-spec config.md: cwd MUST be an absolute path)")
    depth = 0
    for comp in path.split("/"):
        if comp == "..":
            depth -= 1
            if depth < 0:
                raise UnsafePath(f"{what} {path!r} tries to leave the rootfs ('..' above '/')")
        elif comp not in ("", "."):
            depth += 1
    clean = posixpath.normpath(path)
    real = clean
    if rootfs is not None:
        root = rootfs if isinstance(rootfs, Root) else Root(rootfs)
        try:
            real = "/" + root.resolve_path(clean.lstrip("/"))
        finally:
            if root is not rootfs:
                root.close()
    first = real.lstrip("/").split("/", 1)[0]
    if first in _KERNEL_FS:
        raise UnsafePath(
            f"{what} {path!r} resolves to {real!r}, inside /{first}, a kernel filesystem the runtime mounts: its "
            "magic links (/proc/self/fd/N, /proc/PID/cwd) can lead to the host (CVE-2024-21626); refused"
        )
    return real if resolved else clean


# ----------------------------------------------------------------- users


@dataclass(frozen=True)
class UserInfo:
    """``process.user``: ``uid``, ``gid``, ``additional_gids`` (tuple), and ``home``
    (from passwd, or None) and ``source`` (how it was found)."""

    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str | None = None
    source: str = ""

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"uid": self.uid, "gid": self.gid}
        if self.additional_gids:
            d["additionalGids"] = list(self.additional_gids)
        return d


def _read_db(root: Root | None, rel: str) -> list[list[str]] | None:
    """Parse a colon file (passwd/group) of the rootfs; None when absent. Only a regular
    file is opened and at most 4 MiB read; a FIFO, socket or device there (a hostile image:
    its open would block forever or read a host device) is a ConfigError."""
    if root is None:
        return None
    try:
        fd = root.open_file(rel)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except UnsafePath as e:  # a symlink loop, or a FIFO/device (never opened: the open would block or read a host device)
        raise ConfigError(f"cannot read /{rel} of the rootfs: {e}") from None
    with os.fdopen(fd, "rb") as f:
        data = f.read(4 << 20)  # at most 4 MiB (a 1 GB sparse passwd is not read whole)
    explain.step("convert", "read", f"/{rel} of the rootfs ({len(data)} bytes), resolved inside the rootfs", f"cat rootfs/{rel}")
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) < 3:
            continue  # malformed line: ignored like glibc's files backend
        out.append(parts)
    return out


_ID_LIMIT = 2**32 - 2  # largest uid/gid: (uid_t)-1 = 4294967295 means "unchanged" to setresuid(2)


def _num(s: str) -> int | None:
    """A uid/gid written in ASCII digits (``str.isdigit`` would also take "٣"), in range;
    otherwise None (a name)."""
    if not (s.isascii() and s.isdigit()):
        return None
    n = int(s)
    return n if n <= _ID_LIMIT else None


def _check_id(spec: str, what: str, s: str) -> None:
    if s.isascii() and s.isdigit() and int(s) > _ID_LIMIT:
        raise ConfigError(f"User {spec!r}: {what} {s} is out of range (0..{_ID_LIMIT}; {_ID_LIMIT + 1} is (uid_t)-1, 'unchanged')")


def resolve_user(user: str | None, rootfs: str | os.PathLike | Root | None) -> UserInfo:
    """Resolve ``Config.User`` to uid/gid/additionalGids in the container's context
    (conversion.md "Config.User").

    Args:
        user: ``None``/``""`` (→ 0:0), ``name``, ``uid``, ``uid:gid``, ``name:group``,
            ``uid:group`` or ``name:gid``.
        rootfs: where ``etc/passwd`` and ``etc/group`` are read (in-root); ``None`` = no
            files (only numeric forms work).

    Raises:
        ConfigError: unknown user or group name, or a name with no passwd/group file.
    """
    root = rootfs if isinstance(rootfs, Root) or rootfs is None else Root(rootfs)
    try:
        passwd = _read_db(root, "etc/passwd")
        group = _read_db(root, "etc/group")
    finally:
        if root is not None and root is not rootfs:
            root.close()
    spec = user or ""
    uname, _, gname = spec.partition(":")
    _check_id(spec, "uid", uname)
    _check_id(spec, "gid", gname)
    has_group = bool(gname)
    pw = None
    if not uname:
        uid, src = 0, "default 0 (no User)"
        pw = next((p for p in passwd or [] if _num(p[2]) == 0), None)
    elif (n := _num(uname)) is not None:
        uid, src = n, "numeric uid, verbatim"
        pw = next((p for p in passwd or [] if _num(p[2]) == uid), None)
    else:
        if passwd is None:
            raise ConfigError(f"User {spec!r}: the rootfs has no /etc/passwd to resolve the name {uname!r} (conversion.md 'Config.User')")
        pw = next((p for p in passwd if p[0] == uname), None)
        if pw is None or _num(pw[2]) is None:
            raise ConfigError(f"User {spec!r}: no user named {uname!r} in the rootfs's /etc/passwd (conversion.md: MUST be an error)")
        uid, src = int(pw[2]), "name → rootfs /etc/passwd"
    if has_group:
        if (g := _num(gname)) is not None:
            gid = g
            src += "; numeric gid, verbatim"
        else:
            if group is None:
                raise ConfigError(f"User {spec!r}: the rootfs has no /etc/group to resolve the group {gname!r}")
            gr = next((x for x in group if x[0] == gname), None)
            if gr is None or _num(gr[2]) is None:
                raise ConfigError(f"User {spec!r}: no group named {gname!r} in the rootfs's /etc/group")
            gid = int(gr[2])
            src += "; group name → rootfs /etc/group"
    else:
        gid = _num(pw[3]) if pw is not None and len(pw) > 3 and _num(pw[3]) is not None else 0
        src += "; primary gid from /etc/passwd" if pw is not None else "; gid 0 (no passwd entry)"
    # additionalGids: the primary gid first, always (the CVE-2022-36109 hardening in moby:
    # a process must not be able to shed its primary group with setgroups(2) to pass a
    # group-deny permission such as mode 0705); then, only when no group was given
    # (conversion.md "Config.User": with a group the memberships are not looked up), every
    # /etc/group entry whose member list names the user *exactly* (a comma-separated list:
    # "app" is not a member of "webapp,appx"), each gid once, in file order.
    extra = [gid]
    if not has_group and pw is not None and group:
        for g in group:
            if len(g) > 3 and (n := _num(g[2])) is not None and pw[0] in (m.strip() for m in g[3].split(",")) and n not in extra:
                extra.append(n)
    home = pw[5] if pw is not None and len(pw) > 5 and pw[5] else None
    return UserInfo(uid, gid, tuple(extra), home, src)


# ----------------------------------------------------------------- conversion


def _annotations(ic: ImageConfig, extra: dict | None, prov: _Prov) -> dict[str, str]:
    ann: dict[str, str] = {}
    cfg = ic.config

    def put(key, value, frm):
        if value is not None:
            ann[ANN + key] = value
            prov.add(f"annotations[{ANN}{key}]", value, "image config", f"from {frm} (conversion.md 'Annotation Fields')")

    put("os", ic.os, "os")
    put("architecture", ic.architecture, "architecture")
    put("variant", ic.variant, "variant")
    put("os.version", ic.os_version, "os.version")
    put("os.features", ",".join(ic.os_features) if ic.os_features else None, "os.features")
    put("author", ic.author, "author")
    put("created", ic.created, "created")
    if cfg is not None:
        put("stopSignal", cfg.stop_signal, "config.StopSignal")
        put("exposedPorts", ",".join(sorted(cfg.exposed_ports)) if cfg.exposed_ports else None, "config.ExposedPorts")
    for k, v in (extra or {}).items():
        ann[k] = v
        prov.add(f"annotations[{k}]", v, "caller", "extra annotation")
    if cfg is not None and cfg.labels:
        for k, v in cfg.labels.items():
            ann[k] = v
            prov.add(f"annotations[{k}]", v, "image config", "from config.Labels (labels win on conflict)")
    return ann


def _convert(
    ic: ImageConfig,
    rootfs,
    *,
    rootless: bool,
    terminal: bool,
    args: Sequence[str] | None,
    hostname: str,
    annotations: dict | None,
    uid: int | None,
    gid: int | None,
) -> tuple[dict, list[Row]]:
    prov = _Prov()
    cfg = ic.config
    spec = copy.deepcopy(_RUNC_SPEC)
    spec["root"] = {"path": "rootfs"}
    spec["hostname"] = hostname
    proc = spec["process"]
    proc["terminal"] = terminal
    prov.add("ociVersion", OCI_VERSION, "default (runc spec)", "runtime-spec version runc 1.1.5 writes")
    prov.add("root.path", "rootfs", "default", "the bundle's rootfs/ (runtime-spec bundle.md)")
    prov.add(
        "process.terminal", terminal, "caller" if terminal else "default (ocilearn)",
        "runc spec says true, but then `runc create`/`run -d` fails: 'cannot allocate tty if runc will detach "
        "without setting console socket' (the article's first manual edit)" if not terminal else "asked for (--terminal)",
    )
    root = None if rootfs is None else (rootfs if isinstance(rootfs, Root) else Root(rootfs))
    try:
        proc["args"] = process_args(cfg, args)
        ep = list(cfg.entrypoint) if cfg and cfg.entrypoint else []
        ep_text = '[""] (= unset, Docker rule)' if ep == [""] else json.dumps(ep)
        tail = "caller args" if args is not None else "Cmd " + json.dumps(list(cfg.cmd) if cfg and cfg.cmd is not None else None)
        prov.add("process.args", proc["args"], "caller" if args is not None else "image config", f"Entrypoint {ep_text} + {tail}")
        user = resolve_user(cfg.user if cfg else None, root)
        env = merge_env(cfg.env if cfg and cfg.env is not None else [])
        keys = [e.partition("=")[0] for e in env]
        prov.add("process.env", list(env), "image config",
                 "config.Env copied" + ("; a name given twice kept once, the later value winning" if cfg and cfg.env and len(env) < len(cfg.env) else ""))
        if "PATH" not in keys:
            env.insert(0, DEFAULT_PATH)
            prov.add("process.env[PATH]", DEFAULT_PATH, "default", "Env has no PATH")
        if terminal and "TERM" not in keys:
            env.insert(1, "TERM=xterm")
            prov.add("process.env[TERM]", "TERM=xterm", "default (runc spec)", "a terminal was asked for")
        if "HOME" not in keys and user.home:
            env.append(f"HOME={user.home}")
            prov.add("process.env[HOME]", f"HOME={user.home}", "rootfs /etc/passwd", "home of the user (as umoci and runc add it)")
        proc["env"] = env
        cwd = cfg.working_dir if cfg and cfg.working_dir else "/"
        proc["cwd"] = check_container_path(cwd, root, "WorkingDir")
        prov.add("process.cwd", proc["cwd"], "image config" if cfg and cfg.working_dir else "default", "config.WorkingDir (checked inside the rootfs)")
        proc["user"] = user.to_dict()
        prov.add("process.user", proc["user"], "rootfs /etc/passwd" if "passwd" in user.source or "group" in user.source else "image config",
                 f"config.User {cfg.user if cfg else None!r}: {user.source}")
        if cfg and cfg.volumes:
            for vol in sorted(cfg.volumes):
                dest = check_container_path(vol, root, "Volume", resolved=True)
                m = {"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=755"]}
                spec["mounts"].append(m)
                prov.add(f"mounts[{dest}]", m, "image config", "config.Volumes: data kept off the rootfs (conversion.md)")
    finally:
        if root is not None and root is not rootfs:
            root.close()
    for key in ("capabilities", "rlimits", "noNewPrivileges"):
        prov.add(f"process.{key}", proc[key], "default (runc spec)")
    prov.add("hostname", hostname, "default (ocilearn)")
    prov.add("mounts", [m["destination"] for m in spec["mounts"]], "default (runc spec)", "proc, dev, devpts, shm, mqueue, sysfs, cgroup")
    prov.add("linux.namespaces", [n["type"] for n in spec["linux"]["namespaces"]], "default (runc spec)")
    prov.add("linux.maskedPaths / readonlyPaths", len(spec["linux"]["maskedPaths"]) + len(spec["linux"]["readonlyPaths"]), "default (runc spec)")
    ann = _annotations(ic, annotations, prov)
    if ann:
        spec["annotations"] = ann
    if rootless:
        make_rootless(spec, uid, gid)
        prov.add("linux.namespaces", [n["type"] for n in spec["linux"]["namespaces"]], "rootless transform", "user namespace added, network dropped (runc spec --rootless)")
        prov.add("linux.uidMappings", spec["linux"]["uidMappings"], "rootless transform", "the caller's uid is container root")
        prov.add("linux.gidMappings", spec["linux"]["gidMappings"], "rootless transform", "the caller's gid is container root's group")
        prov.add("linux.resources", None, "rootless transform", "removed: no cgroup delegation for an unprivileged user")
        prov.add("mounts[/sys]", "rbind /sys ro", "rootless transform", "a new sysfs needs a network namespace owned by the user")
        was = dict(proc["user"])
        if was.get("uid") != 0 or was.get("gid") != 0:
            proc["user"] = {"uid": 0, "gid": 0}
            msg = (f"rootless: the image user (uid {was.get('uid')}, gid {was.get('gid')}) is not mapped in the user namespace "
                   "(only the caller's id is, as 0); "
                   "running as uid 0 in the namespace instead (the article's second manual edit); "
                   f"dropped: uid {was.get('uid')}, gid {was.get('gid')}, additionalGids {was.get('additionalGids', [])}")
            warnings.warn(msg, stacklevel=3)
            prov.add("process.user", proc["user"], "rootless transform", msg)
        else:
            # Only gid 0 is mapped, and setgroups(2) is denied in a user namespace an
            # unprivileged user made (user_namespaces(7), /proc/PID/setgroups "deny"): no
            # additionalGids can be set. [0] is the primary gid already held: nothing lost.
            proc["user"] = {"uid": 0, "gid": 0}
            if was.get("additionalGids", []) not in ([], [0]):
                msg = (f"rootless: additionalGids {was['additionalGids']} dropped: only the caller's gid is mapped "
                       "and setgroups(2) is denied in this user namespace (user_namespaces(7))")
                warnings.warn(msg, stacklevel=3)
                prov.add("process.user", proc["user"], "rootless transform", msg)
    return spec, prov.rows


def convert(
    image_config: ImageConfig,
    rootfs: str | os.PathLike | Root | None = None,
    *,
    rootless: bool = False,
    terminal: bool = False,
    args: Sequence[str] | None = None,
    hostname: str = "ocilearn",
    annotations: dict | None = None,
    uid: int | None = None,
    gid: int | None = None,
) -> dict:
    """Build a runtime ``config.json`` (as a dict) from an image config.

    Args:
        image_config: parsed :class:`~ocilearn.image.model.ImageConfig`.
        rootfs: the unpacked rootfs (for User names, WorkingDir and volume checks);
            ``None`` = none (only numeric users).
        rootless: apply :func:`make_rootless` (ids ``uid``/``gid``, default this process's).
        terminal: ``process.terminal`` (see the module docstring for why it defaults false).
        args: replace Cmd; ``hostname``; ``annotations``: extra, before labels.

    Returns: a dict that validates against the runtime-spec config schema.

    Raises:
        ConfigError (no command, unknown user/group), UnsafePath (WorkingDir/volume).
    """
    spec, _ = _convert(image_config, rootfs, rootless=rootless, terminal=terminal, args=args, hostname=hostname,
                       annotations=annotations, uid=uid, gid=gid)
    explain.step(
        "convert", "config.json", f"args {spec['process']['args']}, user {spec['process']['user']}, cwd {spec['process']['cwd']}",
        "umoci unpack (writes config.json)" + (" --rootless" if rootless else ""),
    )
    return spec


def explain_config(image_config: ImageConfig, rootfs=None, **kw) -> list[Row]:
    """Where every value of :func:`convert`'s result comes from: a list of :class:`Row`
    (field, value, source, why), same arguments as :func:`convert`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw.setdefault("hostname", "ocilearn")
        for k in ("rootless", "terminal"):
            kw.setdefault(k, False)
        kw.setdefault("args", None)
        kw.setdefault("annotations", None)
        kw.setdefault("uid", None)
        kw.setdefault("gid", None)
        _, rows = _convert(image_config, rootfs, **kw)
    return rows


# ----------------------------------------------------------------- validation


def validate(config: dict, schema_dir: str | os.PathLike) -> None:
    """Validate a runtime config against the official runtime-spec JSON schema
    (``schema/config-schema.json`` and the ``defs*.json`` it references by file name).

    Raises:
        ConfigError: with the first violation's path and message.
    """
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    schema_dir = Path(schema_dir)
    resources = []
    for f in schema_dir.glob("*.json"):
        doc = json.loads(f.read_text())
        resources.append((f.name, Resource.from_contents(doc, default_specification=DRAFT4)))
        resources.append((f.resolve().as_uri(), Resource.from_contents(doc, default_specification=DRAFT4)))
    registry = Registry().with_resources(resources)
    schema = json.loads((schema_dir / "config-schema.json").read_text())
    validator = jsonschema.Draft4Validator(schema, registry=registry)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(top)"
        raise ConfigError(f"config.json does not validate against the runtime-spec schema at {where}: {e.message}")
