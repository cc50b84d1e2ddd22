"""seccomp: the system call filter of ``linux.seccomp`` (runtime-spec config-linux.md
"Seccomp"; seccomp(2); seccomp_rule_add(3)).

The profile is compiled into a BPF filter by libseccomp, through the ``pyseccomp`` binding
(ctypes on ``libseccomp.so.2``, the same library runc links). Two steps, because the
filter must be built while the host's files are reachable and loaded as late as possible:

1. :func:`prepare` (at ``create``, in the runtime, before any fork): every action,
   architecture, flag and argument condition is turned into libseccomp calls — a profile
   libseccomp refuses fails here, with the field named, before anything is created.
   :func:`check` does the same and throws the result away (used by :mod:`.spec`).
2. :meth:`Filter.load` in the container's init, right before execve(2) (see
   :func:`ocilearn.runtime.process.exec_process`): seccomp_load(3) installs the filter
   for the process and everything it executes. No Python code that needs the host runs
   after it.

Like runc 1.1 (libcontainer/seccomp/seccomp_linux.go):

- ``SCMP_ACT_ERRNO``/``SCMP_ACT_TRACE`` return ``errnoRet`` (default EPERM); the default
  action returns ``defaultErrnoRet``.
- A rule whose action equals the default action is redundant and left out (libseccomp
  refuses it); a syscall name libseccomp does not know on this system is left out (it
  cannot be called here, so there is nothing to allow or deny).
- Several conditions on the *same* argument become one rule per condition (libseccomp
  cannot AND two conditions on one argument); otherwise all conditions form one rule.
- The filter does not set no_new_privs (``process.noNewPrivileges`` decides): without it,
  loading needs CAP_SYS_ADMIN, so :mod:`.process` loads it before the capabilities drop.

Refused (with an error, never skipped): ``listenerPath`` and ``SCMP_ACT_NOTIFY`` (seccomp
user notification needs an agent process ocilearn does not have), the flag
``SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`` (only meaningful with notification), an
argument index above 5, ``errnoRet`` on an action that returns no errno.
"""

from __future__ import annotations

import errno

from ..core.errors import RuntimeSpecError

#: argument comparison operators (seccomp_rule_add(3) "SCMP_CMP_*")
OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6,
       "SCMP_CMP_MASKED_EQ": 7}

#: runtime-spec architecture names -> pyseccomp.Arch attribute
ARCHES = {"SCMP_ARCH_X86": "X86", "SCMP_ARCH_X86_64": "X86_64", "SCMP_ARCH_X32": "X32", "SCMP_ARCH_ARM": "ARM",
          "SCMP_ARCH_AARCH64": "AARCH64", "SCMP_ARCH_MIPS": "MIPS", "SCMP_ARCH_MIPS64": "MIPS64",
          "SCMP_ARCH_MIPS64N32": "MIPS64N32", "SCMP_ARCH_MIPSEL": "MIPSEL", "SCMP_ARCH_MIPSEL64": "MIPSEL64",
          "SCMP_ARCH_MIPSEL64N32": "MIPSEL64N32", "SCMP_ARCH_PPC": "PPC", "SCMP_ARCH_PPC64": "PPC64",
          "SCMP_ARCH_PPC64LE": "PPC64LE", "SCMP_ARCH_S390": "S390", "SCMP_ARCH_S390X": "S390X",
          "SCMP_ARCH_PARISC": "PARISC", "SCMP_ARCH_PARISC64": "PARISC64", "SCMP_ARCH_RISCV64": "RISCV64"}

#: libseccomp filter attributes (seccomp_attr_set(3)) for each runtime-spec flag
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 4, "SECCOMP_FILTER_FLAG_LOG": 6, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 7}
_ATTR_CTL_NNP = 3


def _action(ps, name: str, errno_ret: int | None, field: str, path: str) -> int:
    """The libseccomp action value of a runtime-spec action name."""
    if name == "SCMP_ACT_NOTIFY":
        raise RuntimeSpecError(f"{path}: {field} = SCMP_ACT_NOTIFY: seccomp user notification is not supported by ocilearn "
                               "(it needs a seccomp agent at linux.seccomp.listenerPath)")
    if errno_ret is not None and name not in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        raise RuntimeSpecError(f"{path}: {field}: errnoRet is set but {name} returns no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)")
    ret = errno.EPERM if errno_ret is None else errno_ret
    table = {
        "SCMP_ACT_KILL": ps.KILL_THREAD, "SCMP_ACT_KILL_THREAD": ps.KILL_THREAD, "SCMP_ACT_KILL_PROCESS": ps.KILL_PROCESS,
        "SCMP_ACT_TRAP": ps.TRAP, "SCMP_ACT_ALLOW": ps.ALLOW, "SCMP_ACT_LOG": ps.LOG,
    }
    if name in table:
        return table[name]
    if name == "SCMP_ACT_ERRNO":
        return ps.ERRNO(ret)
    if name == "SCMP_ACT_TRACE":
        return ps.TRACE(ret)
    raise RuntimeSpecError(f"{path}: {field} = {name!r}: unknown seccomp action (config-linux.md 'Seccomp')")


class Filter:
    """A compiled seccomp filter (a libseccomp context), ready to :meth:`load`.
    ``rules`` counts the libseccomp rules added; ``skipped`` lists the syscall names left
    out because libseccomp does not know them on this system."""

    def __init__(self, ctx, rules: int, skipped: list[str]) -> None:
        self.ctx, self.rules, self.skipped = ctx, rules, skipped

    def __repr__(self) -> str:
        return f"Filter(rules={self.rules}, skipped={self.skipped!r})"

    def load(self) -> None:
        """seccomp_load(3): install the filter in the calling process (for good; it is
        inherited across fork and execve). Raises OSError (EACCES without
        CAP_SYS_ADMIN or no_new_privs, EINVAL when the kernel lacks a flag)."""
        self.ctx.load()


_last: tuple[dict, Filter | None] | None = None

#: sonames the binding needs (Debian's libseccomp2 and glibc)
_SONAMES = {"seccomp": "libseccomp.so.2", "c": "libc.so.6"}


def _binding():
    """``import pyseccomp``, without its ctypes.util.find_library() calls: on Linux those run
    ``/sbin/ldconfig -p`` in a subprocess (about 20 ms of every ``create`` with a profile);
    dlopen(3) finds the libraries by soname. Falls back to the plain import."""
    import sys

    if "pyseccomp" in sys.modules:
        return sys.modules["pyseccomp"]
    import ctypes
    import ctypes.util

    try:
        for soname in _SONAMES.values():
            ctypes.CDLL(soname)
    except OSError:
        import pyseccomp

        return pyseccomp
    orig = ctypes.util.find_library
    ctypes.util.find_library = lambda name: _SONAMES.get(name) or orig(name)
    try:
        import pyseccomp
    finally:
        ctypes.util.find_library = orig
    return pyseccomp


def prepare(cfg: dict | None, path: str = "config.json") -> Filter | None:
    """Compile ``linux.seccomp`` (already schema-checked) with libseccomp. Returns None when
    there is nothing to install (no default action and no rules, as runc). The same dict
    compiled twice (validation, then the container) is compiled once. Raises
    RuntimeSpecError naming the field libseccomp or ocilearn refuses."""
    global _last
    if _last is not None and cfg is not None and _last[0] is cfg:
        return _last[1]
    filt = _compile(cfg, path)
    if cfg is not None:
        _last = (cfg, filt)
    return filt


def _compile(cfg: dict | None, path: str) -> Filter | None:
    if not cfg or (not cfg.get("defaultAction") and not cfg.get("syscalls")):
        return None
    if cfg.get("listenerPath"):
        raise RuntimeSpecError(f"{path}: linux.seccomp.listenerPath = {cfg['listenerPath']!r}: seccomp user notification is not "
                               "supported by ocilearn (no agent would answer the notified system calls)")
    try:
        ps = _binding()
    except (ImportError, RuntimeError, OSError) as e:  # RuntimeError: the binding found no libseccomp.so
        raise RuntimeSpecError(f"{path}: linux.seccomp is set but libseccomp cannot be loaded ({e}); install the pyseccomp "
                               "package and libseccomp2: the filter will not be skipped")
    default = _action(ps, cfg.get("defaultAction") or "SCMP_ACT_ALLOW", cfg.get("defaultErrnoRet"), "linux.seccomp.defaultAction", path)
    ctx = ps.SyscallFilter(default)
    try:
        ctx.set_attr(_ATTR_CTL_NNP, 0)
    except OSError as e:
        raise RuntimeSpecError(f"{path}: linux.seccomp: libseccomp cannot leave no_new_privs alone: {e.strerror}")
    for i, arch in enumerate(cfg.get("architectures") or []):
        if arch not in ARCHES:
            raise RuntimeSpecError(f"{path}: linux.seccomp.architectures[{i}] = {arch!r}: unknown architecture")
        try:
            ctx.add_arch(getattr(ps.Arch, ARCHES[arch]))
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise RuntimeSpecError(f"{path}: linux.seccomp.architectures[{i}] = {arch!r}: libseccomp refuses it: {e.strerror}")
    for i, flag in enumerate(cfg.get("flags") or []):
        if flag not in FLAGS:
            raise RuntimeSpecError(f"{path}: linux.seccomp.flags[{i}] = {flag!r}: not supported by ocilearn "
                                   f"(supported: {', '.join(FLAGS)})")
        try:
            ctx.set_attr(FLAGS[flag], 1)
        except OSError as e:
            raise RuntimeSpecError(f"{path}: linux.seccomp.flags[{i}] = {flag!r}: this libseccomp or kernel cannot set it: {e.strerror}")
    rules, skipped = 0, []
    for i, sc in enumerate(cfg.get("syscalls") or []):
        field = f"linux.seccomp.syscalls[{i}]"
        act = _action(ps, sc["action"], sc.get("errnoRet"), f"{field}.action", path)
        conds = []
        counts: dict[int, int] = {}
        for j, a in enumerate(sc.get("args") or []):
            if a["index"] > 5:
                raise RuntimeSpecError(f"{path}: {field}.args[{j}].index = {a['index']}: a system call has at most 6 arguments (0-5)")
            if a["op"] not in OPS:
                raise RuntimeSpecError(f"{path}: {field}.args[{j}].op = {a['op']!r}: unknown operator (one of {', '.join(OPS)})")
            conds.append(ps.Arg(a["index"], OPS[a["op"]], a["value"], a.get("valueTwo", 0)))
            counts[a["index"]] = counts.get(a["index"], 0) + 1
        if act == default:
            continue  # redundant, and seccomp_rule_add(3) would refuse it (runc skips it too)
        for name in sc["names"]:
            nr = ps.resolve_syscall(ps.Arch.NATIVE, name)
            if nr == -1:  # __NR_SCMP_ERROR: not a system call libseccomp knows anywhere
                skipped.append(name)
                continue
            groups = [[c] for c in conds] if any(n > 1 for n in counts.values()) else [conds]
            for group in groups:
                try:
                    ctx.add_rule(act, nr, *group)
                except OSError as e:
                    raise RuntimeSpecError(f"{path}: {field} ({name}): libseccomp refuses the rule: {e.strerror}")
                rules += 1
    return Filter(ctx, rules, skipped)


def check(cfg: dict | None, path: str = "config.json") -> None:
    """Compile ``linux.seccomp`` and discard it: the errors of :func:`prepare` at
    validation time."""
    prepare(cfg, path)
