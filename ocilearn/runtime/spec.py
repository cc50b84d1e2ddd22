"""Read and check a bundle's ``config.json`` before anything is created (runtime-spec runtime.md
"create": "If the runtime cannot create the container ... it MUST generate an error").

Two layers, both run by :func:`validate`, which raises one :class:`RuntimeSpecError`
whose one-line message names the file and the field:

1. **Types** against the runtime-spec JSON Schema (``schema/config-schema.json`` and the
   files it refers to, shipped in ``ocilearn/data/runtime-spec-schema``): ``"root":
   {"path": 123}``, ``"hostname": 12345`` or mount options given as one string are
   refused here, before any code reads them.
2. **Meaning** that no schema can express, checked against this host: capabilities this
   kernel knows, rlimits within the kernel's range (``RLIMIT_NOFILE`` at most
   ``/proc/sys/fs/nr_open``), a hostname only with a UTS namespace, mount options runc
   accepts, security labels the host can apply (:mod:`.labels`), the seccomp profile
   (:mod:`.seccomp`, compiled here so an unknown action or argument operator fails now).

The schema checker is a small draft-04 evaluator for the keywords the runtime-spec
schema uses (``$ref``, ``type``, ``properties``, ``items``, ``required``, ``enum``,
``minimum``/``maximum``, ``pattern``, ``minItems``, ``anyOf``/``allOf``,
``additionalProperties``/``patternProperties``). Why not the ``jsonschema`` package: here
its import alone takes about 1.1 s (its format checkers pull in ``rfc3987_syntax``) and
``fastjsonschema`` needs about 90 ms to compile this schema, while ``ocilearn run`` of
/bin/true has a budget of about 10 ms (runc's time). tests/test_runtime_spec.py checks
that this evaluator and ``jsonschema`` agree on valid and broken configs.
"""

from __future__ import annotations

import os

from ..core.errors import RuntimeSpecError
from .jsonio import dumps, loads

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "runtime-spec-schema")

_files: dict[str, dict] = {}


def _schema_file(name: str) -> dict:
    doc = _files.get(name)
    if doc is None:
        with open(os.path.join(SCHEMA_DIR, name)) as f:
            doc = _files[name] = loads(f.read())
    return doc


def _resolve(ref: str, base: str) -> tuple[dict, str]:
    """``defs.json#/definitions/uint32`` (relative to the file ``base``) -> (schema, file)."""
    name, _, pointer = ref.partition("#")
    name = name or base
    node = _schema_file(name)
    for part in [p for p in pointer.split("/") if p]:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, name


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: type(v) is int,
    "number": lambda v: type(v) in (int, float),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _anchored(ok):
    """``re.search("^…$", s)`` for a pattern anchored at both ends, from ``ok`` (does the
    whole string match?): Python's ``$`` also matches before one final newline."""
    return lambda s: ok(s) or (s.endswith("\n") and ok(s[:-1]))


_DIGITS = "0123456789"

#: The ``pattern`` and ``patternProperties`` keys of the runtime-spec schema files, as
#: plain string checks that give what ``re.search(pattern, s)`` gives (tests/
#: test_runtime_spec.py compares them on generated strings). Why not ``re``: its import
#: (with ``enum``, ``functools``, ``collections``) and compiling these patterns cost about
#: 7 ms of every ``ocilearn run`` — a quarter of what ``runc run`` takes. A pattern not
#: listed here (another schema version) is searched with ``re``.
SCHEMA_PATTERNS = {
    "^RLIMIT_[A-Z]+$": _anchored(lambda s: len(s) > 7 and s.startswith("RLIMIT_") and all("A" <= c <= "Z" for c in s[7:])),
    "^CAP_[A-Z_]+$": _anchored(lambda s: len(s) > 4 and s.startswith("CAP_") and all("A" <= c <= "Z" or c == "_" for c in s[4:])),
    "^[cbup]$": _anchored(lambda s: s in ("c", "b", "u", "p")),
    "^[0-9, -]*$": _anchored(lambda s: all(c in _DIGITS + ", -" for c in s)),
    "^[1-9][0-9]*[KMG]B$": _anchored(lambda s: len(s) >= 3 and s[0] in "123456789" and all(c in _DIGITS for c in s[1:-2])
                                     and s[-2] in "KMG" and s[-1] == "B"),
    "^MB:[^\\n]*$": _anchored(lambda s: s.startswith("MB:") and "\n" not in s),
    ".{1,}": lambda s: any(c != "\n" for c in s),  # not anchored: one character other than a newline
}


def pattern_matches(pattern: str, s: str) -> bool:
    """``re.search(pattern, s) is not None`` (JSON Schema ``pattern``: the string matches
    anywhere unless anchored), without importing :mod:`re` for the schema's own patterns
    (:data:`SCHEMA_PATTERNS`)."""
    check = SCHEMA_PATTERNS.get(pattern)
    if check is not None:
        return check(s)
    import re

    return re.search(pattern, s) is not None


def _where(path: str) -> str:
    return path or "(the document)"


def _show(v) -> str:
    s = dumps(v)
    return s if len(s) <= 60 else s[:57] + "..."


def schema_error(instance, schema: dict, base: str, path: str = "") -> str | None:
    """The first way ``instance`` breaks ``schema`` (a node of the schema file ``base``), as
    ``"FIELD = VALUE: must be …"`` with FIELD a dotted path (``mounts[0].options``), or
    None when it conforms. JSON Schema draft-04, the keywords listed in the module doc."""
    kind = ""
    while "$ref" in schema:
        kind = schema["$ref"].rsplit("/", 1)[-1]
        schema, base = _resolve(schema["$ref"], base)
    t = schema.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not any(_TYPES[x](instance) for x in types):
            return f"{_where(path)} = {_show(instance)}: must be {' or '.join(('an ' if x[0] in 'aeiou' else 'a ') + x for x in types)}" + (
                f" ({kind})" if kind and kind not in types else "")
    if "enum" in schema and instance not in schema["enum"]:
        return f"{_where(path)} = {_show(instance)}: must be one of {', '.join(map(dumps, schema['enum']))}"
    if type(instance) in (int, float):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if (lo is not None and instance < lo) or (hi is not None and instance > hi):
            rng = f"from {lo} to {hi}" if lo is not None and hi is not None else f"at least {lo}" if lo is not None else f"at most {hi}"
            return f"{_where(path)} = {instance}: must be {rng}" + (f" ({kind})" if kind else "")
    if isinstance(instance, str) and "pattern" in schema and not pattern_matches(schema["pattern"], instance):
        return f"{_where(path)} = {_show(instance)}: must match the pattern {schema['pattern']}"
    for sub in schema.get("allOf", ()):
        err = schema_error(instance, sub, base, path)
        if err:
            return err
    if "anyOf" in schema:
        errs = [schema_error(instance, sub, base, path) for sub in schema["anyOf"]]
        if all(errs):
            return errs[0] if len(set(errs)) == 1 else f"{_where(path)} = {_show(instance)}: matches none of the allowed forms ({errs[0]})"
    if isinstance(instance, list):
        if "minItems" in schema and len(instance) < schema["minItems"]:
            return f"{_where(path)}: must have at least {schema['minItems']} item(s)"
        items = schema.get("items")
        if isinstance(items, dict):
            for i, v in enumerate(instance):
                err = schema_error(v, items, base, f"{path}[{i}]")
                if err:
                    return err
        elif isinstance(items, list):
            for i, (v, sub) in enumerate(zip(instance, items, strict=False)):
                err = schema_error(v, sub, base, f"{path}[{i}]")
                if err:
                    return err
    if isinstance(instance, dict):
        for k in schema.get("required", ()):
            if k not in instance:
                return f"{path + '.' if path else ''}{k} is required"
        props = schema.get("properties", {})
        pattern_props = schema.get("patternProperties", {})
        extra = schema.get("additionalProperties", True)
        for k, v in instance.items():
            field = f"{path}.{k}" if path else k
            matched = False
            if k in props:
                matched = True
                err = schema_error(v, props[k], base, field)
                if err:
                    return err
            for pat, sub in pattern_props.items():
                if pattern_matches(pat, k):
                    matched = True
                    err = schema_error(v, sub, base, field)
                    if err:
                        return err
            if not matched:
                if extra is False:
                    return f"{field}: unknown field"
                if isinstance(extra, dict):
                    err = schema_error(v, extra, base, field)
                    if err:
                        return err
    return None


#: values runc 1.1 accepts beyond the schema's enum (runc libcontainer/specconv
#: mountPropagationMapping), so that a config runc runs is not refused here
RUNC_ROOTFS_PROPAGATION = {"rprivate": "private", "rshared": "shared", "rslave": "slave", "runbindable": "unbindable"}


def check_schema(cfg, path: str = "config.json", schema: str = "config-schema.json") -> None:
    """Check ``cfg`` against the runtime-spec schema file ``schema``. Raises
    RuntimeSpecError ``"PATH: FIELD = VALUE: must be …"`` (runtime-spec schema/). The
    recursive ``linux.rootfsPropagation`` values runc accepts are accepted too."""
    linux = cfg.get("linux") if isinstance(cfg, dict) else None
    if isinstance(linux, dict) and linux.get("rootfsPropagation") in RUNC_ROOTFS_PROPAGATION:
        cfg = {**cfg, "linux": {**linux, "rootfsPropagation": RUNC_ROOTFS_PROPAGATION[linux["rootfsPropagation"]]}}
    err = schema_error(cfg, _schema_file(schema), schema)
    if err:
        raise RuntimeSpecError(f"{path}: {err} (runtime-spec {schema})")


# ---------------------------------------------------------------- meaning


def _bad(path: str, field: str, why: str) -> RuntimeSpecError:
    return RuntimeSpecError(f"{path}: {field} {why}")


def _namespaces(cfg: dict) -> dict[str, dict]:
    return {n.get("type"): n for n in (cfg.get("linux") or {}).get("namespaces") or []}


def check_capabilities(caps: dict | None, path: str = "config.json", *, userns: bool = True) -> None:
    """Every name in ``process.capabilities`` (bounding, effective, inheritable, permitted,
    ambient) must be a capability this kernel knows (capabilities(7);
    /proc/sys/kernel/cap_last_cap), and effective must be a subset of permitted (capset(2)
    fails with EPERM otherwise). Without a user namespace (``userns`` False) the
    permitted set can only shrink (capset(2)): a capability the runtime itself does not
    hold is refused here rather than by capset in the container's init. runc 1.1 logs and
    drops unknown names; here they are an error, since a capability that cannot be
    granted is a setting that would be skipped. Raises RuntimeSpecError naming the set and
    the capability."""
    if not caps:
        return
    from ..core import syscalls as sc

    last = sc.last_cap()
    sets = {}
    for kind in ("bounding", "effective", "inheritable", "permitted", "ambient"):
        names = caps.get(kind) or []
        for i, name in enumerate(names):
            key = name.upper().removeprefix("CAP_") if name.upper().startswith("CAP_") else None
            if key not in sc.CAPS:
                raise _bad(path, f"process.capabilities.{kind}[{i}]", f"= {name!r}: unknown capability (capabilities(7) names, e.g. CAP_KILL)")
            if sc.CAPS[key] > last:
                raise _bad(path, f"process.capabilities.{kind}[{i}]", f"= {name!r}: this kernel does not know it "
                           f"(its highest capability is {last}, /proc/sys/kernel/cap_last_cap)")
        sets[kind] = {n.upper() for n in names}
    if "effective" in caps and sets["effective"] - sets["permitted"]:
        extra = sorted(sets["effective"] - sets["permitted"])
        raise _bad(path, "process.capabilities.effective", f"has {', '.join(extra)} which process.capabilities.permitted lacks: "
                   "an effective capability must be permitted (capset(2) EPERM)")
    if not userns:
        try:
            own = sc.capget()[1]
        except OSError:
            return
        for kind in ("permitted", "effective"):
            lacking = sorted(n for n in sets.get(kind, ()) if not own & (1 << sc.CAPS[n.removeprefix("CAP_")]))
            if lacking:
                raise _bad(path, f"process.capabilities.{kind}", f"has {', '.join(lacking)}, which this runtime does not hold itself: "
                           "without a user namespace a process can only keep capabilities it has (capset(2) EPERM)")


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1 << 20


def _can_raise_hard_limits() -> bool:
    """CAP_SYS_RESOURCE in the effective set (capabilities(7)): setrlimit(2) raises a
    hard limit only with it, checked in the initial user namespace."""
    from ..core import syscalls as sc

    try:
        return bool(sc.capget()[0] & (1 << sc.CAPS["SYS_RESOURCE"]))
    except OSError:
        return False


RLIM_INFINITY = 2**64 - 1


def check_rlimits(rlimits: list | None, path: str = "config.json") -> None:
    """``process.rlimits`` (config.md "POSIX process", getrlimit(2)): a type this kernel
    knows, listed once, soft <= hard, ``RLIMIT_NOFILE`` at most ``/proc/sys/fs/nr_open``
    (setrlimit(2) EPERM above it; RLIM_INFINITY too), and a hard limit above the runtime's
    own only when the runtime holds CAP_SYS_RESOURCE (setrlimit(2) EPERM). Raises
    RuntimeSpecError naming the entry."""
    if not rlimits:
        return
    import resource

    seen = set()
    for i, r in enumerate(rlimits):
        f = f"process.rlimits[{i}]"
        name = r["type"]
        res = getattr(resource, name, None)
        if not isinstance(res, int):
            raise _bad(path, f"{f}.type", f"= {name!r}: not a resource limit this system knows (getrlimit(2))")
        if name in seen:
            raise _bad(path, f"{f}.type", f"= {name!r}: listed twice (config.md: each type MUST be unique)")
        seen.add(name)
        soft, hard = r["soft"], r["hard"]
        if soft > hard:
            raise _bad(path, f, f"({name}): soft {soft} is above hard {hard} (setrlimit(2) EINVAL)")
        if name == "RLIMIT_NOFILE":
            top = _nr_open()
            if hard > top:
                raise _bad(path, f"{f}.hard", f"= {hard} ({name}): above the kernel's maximum {top} (/proc/sys/fs/nr_open; setrlimit(2) EPERM)")
        cur_hard = resource.getrlimit(res)[1]
        cur_hard = RLIM_INFINITY if cur_hard == resource.RLIM_INFINITY else cur_hard
        if hard > cur_hard and not _can_raise_hard_limits():
            raise _bad(path, f"{f}.hard", f"= {hard} ({name}): above the runtime's own hard limit {cur_hard}, and raising a hard "
                       "limit needs CAP_SYS_RESOURCE, which this runtime lacks (setrlimit(2) EPERM)")


def check_hostname(cfg: dict, path: str = "config.json") -> None:
    """``hostname``/``domainname`` need the container's own UTS namespace (config.md
    "Hostname": "the runtime MUST generate an error" otherwise; runc refuses too), and fit
    the kernel's 64 bytes (sethostname(2) EINVAL)."""
    ns = _namespaces(cfg)
    for key in ("hostname", "domainname"):
        v = cfg.get(key)
        if not v:
            continue
        if len(v.encode()) > 64:
            raise _bad(path, key, f"= {v!r}: longer than 64 bytes (sethostname(2) EINVAL)")
        if "\0" in v:
            raise _bad(path, key, f"= {v!r}: contains a NUL byte")
        if "uts" not in ns:
            raise _bad(path, key, "is set but linux.namespaces has no 'uts' namespace: it would rename the host "
                       "(config.md 'Hostname'); add {\"type\": \"uts\"}")


def check_mounts(mounts: list | None, path: str = "config.json") -> None:
    """Each ``mounts[i]``: an absolute destination, and options that ocilearn applies the
    way runc does (runc libcontainer/specconv parseMountOptions): mount(8) flags,
    propagation flags, ``tmpcopyup``; anything else is handed to the filesystem as data
    (``size=64m``, ``mode=755``, ``newinstance``), as runc does; recursive attributes
    (``rro``, ``rnosuid`` …) with mount_setattr(2). Options runc knows but ocilearn does
    not apply (``idmap``, ``ridmap``) are refused naming the option. Raises
    RuntimeSpecError."""
    from .rootfs import MOUNT_FLAGS, PROPAGATION, RECURSIVE_OPTIONS, UNSUPPORTED_OPTIONS

    for i, m in enumerate(mounts or []):
        f = f"mounts[{i}]"
        dest = m["destination"]
        if not dest.startswith("/"):
            raise _bad(path, f"{f}.destination", f"= {dest!r}: must be an absolute path in the container (config.md 'Mounts')")
        if "\0" in dest or "\0" in (m.get("source") or ""):
            raise _bad(path, f, "contains a NUL byte")
        for j, o in enumerate(m.get("options") or []):
            if not o or "\0" in o:
                raise _bad(path, f"{f}.options[{j}]", f"= {o!r}: an option must be a non-empty string")
            if o in UNSUPPORTED_OPTIONS:
                raise _bad(path, f"{f}.options[{j}]", f"= {o!r}: not supported by ocilearn ({UNSUPPORTED_OPTIONS[o]})")
            if o in MOUNT_FLAGS or o in PROPAGATION or o in RECURSIVE_OPTIONS or o == "tmpcopyup":
                continue
            if "," in o:
                raise _bad(path, f"{f}.options[{j}]", f"= {o!r}: one option per list item (config.md 'Mounts': options is an array)")
        if "tmpcopyup" in (m.get("options") or []) and m.get("type") != "tmpfs":
            raise _bad(path, f"{f}.options", f"has tmpcopyup, which only applies to type tmpfs (mount type is {m.get('type')!r})")


def check_namespaces(cfg: dict, path: str = "config.json") -> None:
    """``linux.namespaces``: each type once (config-linux.md "Namespaces": duplicates are an
    error)."""
    seen = set()
    for i, n in enumerate((cfg.get("linux") or {}).get("namespaces") or []):
        if n["type"] in seen:
            raise _bad(path, f"linux.namespaces[{i}].type", f"= {n['type']!r}: listed twice (config-linux.md 'Namespaces')")
        seen.add(n["type"])


#: fields of the schema ocilearn does not apply: refused when set, never ignored
UNSUPPORTED_FIELDS = {
    ("process", "scheduler"): "sched_setattr(2) is not implemented",
    ("process", "ioPriority"): "ioprio_set(2) is not implemented",
    ("process", "execCPUAffinity"): "CPU affinity for the exec is not implemented",
    ("linux", "personality"): "personality(2) is not implemented",
    ("linux", "intelRdt"): "Intel RDT (resctrl) is not implemented",
    ("linux", "timeOffsets"): "time namespace offsets are not implemented",
    ("linux", "memoryPolicy"): "set_mempolicy(2) is not implemented",
    ("linux", "netDevices"): "moving network devices into the container is not implemented",
}


_IDENT_CHARS = frozenset(_DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-")


def _numeric_identifier(s: str) -> bool:
    """semver.org BNF <numeric identifier>: "0", or ASCII digits without a leading zero."""
    return s == "0" or (s != "" and s[0] in "123456789" and all(c in _DIGITS for c in s))


def semver_major(v: str) -> str | None:
    """The major version of ``v`` if it is a Semantic Versioning 2.0.0 version
    (semver.org, "Backus–Naur Form Grammar for Valid SemVer Versions":
    MAJOR.MINOR.PATCH, then ``-`` pre-release identifiers — numeric ones without leading
    zeros — and ``+`` build identifiers, all ASCII), else None. (No regular expression:
    see :data:`SCHEMA_PATTERNS` for why.)"""
    rest, plus, build = v.partition("+")  # neither part before it may contain "+"
    if plus and not all(x and set(x) <= _IDENT_CHARS for x in build.split(".")):
        return None
    core, dash, pre = rest.partition("-")  # the version core has no "-"
    if dash and not all(x and set(x) <= _IDENT_CHARS and (not x.isdigit() or _numeric_identifier(x)) for x in pre.split(".")):
        return None
    parts = core.split(".")
    if len(parts) != 3 or not all(_numeric_identifier(p) for p in parts):
        return None
    return parts[0]


def check_version(cfg: dict, path: str = "config.json") -> None:
    """``ociVersion`` "MUST be in SemVer v2.0.0 format" (config.md "Specification
    version"), and this runtime implements major version 1."""
    v = cfg["ociVersion"]
    major = semver_major(v) if isinstance(v, str) else None
    if major is None:
        raise _bad(path, "ociVersion", f"= {v!r}: not a SemVer 2.0.0 version (config.md 'Specification version'), e.g. \"1.0.2\"")
    if major != "1":
        raise _bad(path, "ociVersion", f"= {v!r}: this runtime implements runtime-spec 1.x")


def check_unsupported(cfg: dict, path: str = "config.json") -> None:
    """Refuse a field ocilearn would otherwise ignore (:data:`UNSUPPORTED_FIELDS`):
    a setting asked for is applied or refused, never skipped."""
    for (section, key), why in UNSUPPORTED_FIELDS.items():
        if (cfg.get(section) or {}).get(key) not in (None, {}, []):
            raise _bad(path, f"{section}.{key}", f"is set, but ocilearn cannot apply it ({why}); remove it from config.json")


def validate(cfg, path: str = "config.json") -> None:
    """Check the whole config before anything is created: schema types, then meaning
    (capabilities, rlimits, hostname, mounts, namespaces, labels, seccomp, cgroup
    resources this host supports). Raises RuntimeSpecError with a one-line message
    ``"PATH: FIELD …"``. ``path`` is only used in messages."""
    check_schema(cfg, path)
    check_version(cfg, path)
    proc = cfg.get("process") or {}
    userns = os.geteuid() != 0 or "user" in _namespaces(cfg)  # rootless: ocilearn always adds one
    check_capabilities(proc.get("capabilities"), path, userns=userns)
    check_rlimits(proc.get("rlimits"), path)
    check_hostname(cfg, path)
    check_mounts(cfg.get("mounts"), path)
    check_namespaces(cfg, path)
    check_unsupported(cfg, path)
    linux = cfg.get("linux") or {}
    from . import labels

    labels.check(cfg, path)
    if linux.get("seccomp") is not None:
        from . import seccomp

        seccomp.check(linux["seccomp"], path)
    if linux.get("resources"):
        from .cgroups import check_resources

        check_resources(linux["resources"], path)


def prepare(cfg: dict, path: str = "config.json") -> dict:
    """What the container side needs, made while the host's files are still reachable: call
    it in the runtime before the first fork. Imports every module the monitor and the init
    use (after the container's user namespace is entered, the mapped uid may not be allowed
    to read this interpreter's directory at all; after pivot_root the host's files are gone)
    and compiles the seccomp filter. Returns ``{"seccomp": Filter or None}``. Raises
    RuntimeSpecError."""
    import resource  # noqa: F401 - process.set_rlimits
    import termios  # noqa: F401 - process.become_tty_session

    from . import labels, namespaces, process, rootfs  # noqa: F401

    linux = cfg.get("linux") or {}
    hooks = cfg.get("hooks") or {}
    if hooks.get("createContainer") or hooks.get("startContainer"):
        import subprocess  # noqa: F401 - the init runs these hooks
    if any(n.get("type") == "network" and not n.get("path") for n in linux.get("namespaces") or []):
        from . import network  # noqa: F401 - lo_up in the init
    filt = None
    if linux.get("seccomp") is not None:
        from . import seccomp

        filt = seccomp.prepare(linux["seccomp"], path)
    return {"seccomp": filt}


# ---------------------------------------------------------------- reading config.json, process values


def load_config(bundle: str) -> dict:
    """Read and check ``BUNDLE/config.json`` (runtime-spec config.md). Raises
    RuntimeSpecError naming the file and the problem."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path) as f:
            cfg = loads(f.read())
    except FileNotFoundError:
        raise RuntimeSpecError(f"{path}: no config.json in the bundle (runtime-spec bundle.md)")
    except (OSError, ValueError) as e:
        raise RuntimeSpecError(f"{path}: unreadable: {e}")
    validate(cfg, path)
    if not isinstance(cfg, dict) or not isinstance(cfg.get("root"), dict) or not cfg["root"].get("path"):
        raise RuntimeSpecError(f"{path}: root.path is required (config.md 'Root')")
    proc = cfg.get("process")
    if not isinstance(proc, dict) or not proc.get("args"):
        raise RuntimeSpecError(f"{path}: process.args is required (config.md 'Process')")
    check_process(proc, path)
    linux = cfg.get("linux")
    if linux is not None and not isinstance(linux, dict):
        raise RuntimeSpecError(f"{path}: linux must be an object (config-linux.md)")
    check_cgroups_path((linux or {}).get("cgroupsPath"), path)
    check_sysctl((linux or {}).get("sysctl"), (linux or {}).get("namespaces"), path)
    return cfg


#: uid_t/gid_t are uint32 (config.md "User": "uid (int, REQUIRED) ... in the container
#: namespace"); 4294967295 is (uid_t)-1, which setresuid(2) reads as "leave unchanged"
ID_MAX = 2**32 - 2


#: NGROUPS_MAX on Linux (setgroups(2))
NGROUPS_MAX = 65536


#: RLIM_INFINITY as config.json writes it (uint64)
RLIM_MAX = 2**64 - 1


def _check_id(v, field: str, path: str) -> None:
    if type(v) is not int or not 0 <= v <= ID_MAX:
        raise _bad(path, field, f"= {v!r}: must be an integer from 0 to {ID_MAX} (uint32; -1 would mean 'unchanged', i.e. root)")


def _check_str(v, field: str, path: str) -> None:
    if not isinstance(v, str):
        raise _bad(path, field, f"= {v!r}: must be a string")
    if "\0" in v:
        raise _bad(path, field, f"= {v!r}: contains a NUL byte (execve(2) strings end at NUL)")


def check_process(proc: dict, path: str = "config.json") -> None:
    """Check the ``process`` object's types and ranges before anything is created
    (runtime-spec config.md "Process", "User"; config-linux.md rlimits, oomScoreAdj): args
    and env are lists of strings without NUL, cwd an absolute path, user.uid/gid and
    additionalGids uint32 (at most NGROUPS_MAX), umask 0..0o7777, rlimits known
    ``RLIMIT_*`` types with 0 <= soft <= hard <= 2**64-1, oomScoreAdj -1000..1000.
    Raises RuntimeSpecError naming the field."""
    args = proc.get("args")
    if not isinstance(args, list) or not args:
        raise _bad(path, "process.args", "must be a non-empty list of strings (config.md 'Process')")
    for i, a in enumerate(args):
        _check_str(a, f"process.args[{i}]", path)
    env = proc.get("env") or []
    if not isinstance(env, list):
        raise _bad(path, "process.env", "must be a list of 'KEY=value' strings")
    for i, e in enumerate(env):
        _check_str(e, f"process.env[{i}]", path)
    cwd = proc.get("cwd", "/")
    _check_str(cwd, "process.cwd", path)
    if not cwd.startswith("/"):
        raise _bad(path, "process.cwd", f"{cwd!r} must be absolute (config.md 'Process')")
    user = proc.get("user") or {}
    if not isinstance(user, dict):
        raise _bad(path, "process.user", "must be an object {uid, gid, additionalGids}")
    _check_id(user.get("uid", 0), "process.user.uid", path)
    _check_id(user.get("gid", 0), "process.user.gid", path)
    groups = user.get("additionalGids") or []
    if not isinstance(groups, list):
        raise _bad(path, "process.user.additionalGids", "must be a list of integers")
    if len(groups) > NGROUPS_MAX:
        raise _bad(path, "process.user.additionalGids", f"has {len(groups)} entries: at most {NGROUPS_MAX} (NGROUPS_MAX, setgroups(2))")
    for i, g in enumerate(groups):
        _check_id(g, f"process.user.additionalGids[{i}]", path)
    umask = user.get("umask")
    if umask is not None and (type(umask) is not int or not 0 <= umask <= 0o7777):
        raise _bad(path, "process.user.umask", f"= {umask!r}: must be an integer from 0 to 0o7777")
    import resource

    rlimits = proc.get("rlimits") or []
    if not isinstance(rlimits, list):
        raise _bad(path, "process.rlimits", "must be a list of {type, soft, hard}")
    for i, r in enumerate(rlimits):
        f = f"process.rlimits[{i}]"
        if not isinstance(r, dict) or not isinstance(r.get("type"), str) or not r["type"].startswith("RLIMIT_") \
                or not isinstance(getattr(resource, r["type"], None), int):
            raise _bad(path, f, f"= {r!r}: type must be a known RLIMIT_* name (getrlimit(2))")
        for k in ("soft", "hard"):
            if type(r.get(k)) is not int or not 0 <= r[k] <= RLIM_MAX:
                raise _bad(path, f"{f}.{k}", f"= {r.get(k)!r}: must be an integer from 0 to {RLIM_MAX} (uint64)")
        if r["soft"] > r["hard"]:
            raise _bad(path, f, f"({r['type']}): soft {r['soft']} is above hard {r['hard']} (setrlimit(2) EINVAL)")
    oom = proc.get("oomScoreAdj")
    if oom is not None and (type(oom) is not int or not -1000 <= oom <= 1000):
        raise _bad(path, "process.oomScoreAdj", f"= {oom!r}: must be an integer from -1000 to 1000 (proc(5))")
    if "terminal" in proc and not isinstance(proc["terminal"], bool):
        raise _bad(path, "process.terminal", f"= {proc['terminal']!r}: must be true or false")


def check_cgroups_path(cg, path: str = "config.json") -> None:
    """``linux.cgroupsPath`` is relative to each cgroup hierarchy's root
    (config-linux.md "Cgroups path"): a string without NUL, not the root itself, with no
    ``..`` component that could climb out of /sys/fs/cgroup (a config could otherwise
    make or remove directories anywhere in cgroupfs; runc cleans the path as if rooted). Raises RuntimeSpecError."""
    if cg is None:
        return
    _check_str(cg, "linux.cgroupsPath", path)
    parts = [p for p in cg.replace(":", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _bad(path, "linux.cgroupsPath", f"{cg!r} contains '..': it must stay inside the cgroup hierarchy (config-linux.md 'Cgroups path')")
    if not parts:
        raise _bad(path, "linux.cgroupsPath", f"{cg!r} names the hierarchy's root cgroup: the container needs a cgroup of its own")


#: sysctls that belong to the IPC namespace (runc's validateSysctl; sysctl(8), ipc_namespaces(7))
IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
                         "kernel.shmmni", "kernel.shm_rmid_forced"})


def _private_ns(namespaces, kind: str, proc_name: str) -> bool:
    """True when ``linux.namespaces`` gives the container its own ``kind`` namespace: a
    new one, or a path that is not this (the host's) namespace."""
    for n in namespaces or []:
        if isinstance(n, dict) and n.get("type") == kind:
            p = n.get("path")
            if not p:
                return True
            try:
                a, b = os.stat(p), os.stat(f"/proc/self/ns/{proc_name}")
            except OSError:
                return True  # a missing path fails later, with its own message
            return (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino)
    return False


def check_sysctl(sysctl, namespaces, path: str = "config.json") -> None:
    """Allow only namespaced sysctls, as runc does (config-linux.md "Sysctl": "the runtime
    ... MUST generate an error" for what it cannot apply safely): kernel.msg*, kernel.sem,
    kernel.shm* and fs.mqueue.* with a private IPC namespace, net.* with a private network
    namespace, kernel.hostname/kernel.domainname with a private UTS namespace. Anything else
    (kernel.core_pattern, vm.*, …) would change the *host* (kernel.core_pattern runs a program as host root on a
    crash). Checked
    before anything is created. Raises RuntimeSpecError."""
    if sysctl is None:
        return
    if not isinstance(sysctl, dict):
        raise _bad(path, "linux.sysctl", "must be an object of string to string")
    for key, value in sysctl.items():
        _check_str(value, f"linux.sysctl[{key!r}]", path)
        parts = key.split(".")
        if "/" in key or "\0" in key or len(parts) < 2 or any(not p for p in parts):
            raise _bad(path, "linux.sysctl", f"key {key!r} is not a sysctl name (dotted, no '/')")
        if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
            need = ("ipc", "ipc")
        elif key.startswith("net."):
            need = ("network", "net")
        elif key in ("kernel.hostname", "kernel.domainname"):
            need = ("uts", "uts")
        else:
            raise _bad(path, "linux.sysctl", f"{key!r} is not in a separate kernel namespace: setting it would change the host "
                       "(allowed: kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*, kernel.hostname, kernel.domainname)")
        if not _private_ns(namespaces, *need):
            raise _bad(path, "linux.sysctl", f"{key!r} needs the container's own {need[0]} namespace (linux.namespaces): "
                       "without one it would change the host's value")
