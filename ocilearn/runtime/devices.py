"""Device access rules on cgroup v2: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE
attached to the container's cgroup (runtime-spec config-linux.md "Device allowlist";
kernel admin-guide/cgroup-v2.rst "Device controller"; bpf(2); runc
libcontainer/cgroups/devices/devicefilter).

cgroup v1 has ``devices.allow``/``devices.deny`` files; cgroup v2 has none: the kernel
asks a BPF program, for every open(2) or mknod(2) of a device node by a process of the
cgroup, with a context ``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32
minor;}`` (``access_type`` = access bits << 16 | device type). The program returns 1 to
allow and 0 to refuse (EPERM).

The rule list is the same as on cgroup v1 (:data:`DEFAULT_DEVICE_RULES` after a
"deny all", then ``linux.resources.devices`` in order, a "deny all" there being the
starting point already), and, as with the v1 files, the last rule that matches decides. The program tests the rules from the last to the first
and returns at the first match; nothing matched = deny.
"""

from __future__ import annotations

import os
import struct

from ..core import syscalls as sc
from ..core.errors import RuntimeSpecError

#: device cgroup rules every container gets (runc's default allow list; devices.allow
#: syntax of the v1 device controller, cgroup-v1/devices.rst)
DEFAULT_DEVICE_RULES = ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm",
                        "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm"]

BPF_PROG_LOAD, BPF_PROG_ATTACH = 5, 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # attach type
BPF_F_ALLOW_MULTI = 2
#: linux/bpf.h BPF_DEVCG_DEV_* and BPF_DEVCG_ACC_*
DEV_TYPE = {"b": 1, "c": 2}
ACCESS = {"m": 1, "r": 2, "w": 4}

# eBPF opcodes (linux/bpf_common.h, linux/bpf.h): class | operation | source
_LDXW = 0x61      # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
_AND32_K = 0x54   # BPF_ALU | BPF_AND | BPF_K
_RSH32_K = 0x74   # BPF_ALU | BPF_RSH | BPF_K
_MOV32_X = 0xBC   # BPF_ALU | BPF_MOV | BPF_X
_MOV32_K = 0xB4   # BPF_ALU | BPF_MOV | BPF_K
_JNE_K = 0x55     # BPF_JMP | BPF_JNE | BPF_K: if dst != imm: pc += off
_JEQ_K = 0x15     # BPF_JMP | BPF_JEQ | BPF_K
_EXIT = 0x95      # BPF_JMP | BPF_EXIT: return r0


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One ``struct bpf_insn``: u8 code, u8 dst:4|src:4, s16 off, s32 imm."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def parse_rule(text: str) -> tuple[str, int, int, int, bool]:
    """``"c 1:3 rwm"`` (devices.allow syntax) -> ``(type, major, minor, access bits,
    allow=True)``; ``*`` is -1."""
    t, mm, acc = text.split()
    ma, mi = mm.split(":")
    return t, -1 if ma == "*" else int(ma), -1 if mi == "*" else int(mi), sum(ACCESS[c] for c in acc), True


def rules_for(devices: list[dict] | None) -> list[tuple[str, int, int, int, bool]]:
    """The rule list for ``linux.resources.devices``: deny all, runc's default allow list,
    then each config rule. Raises RuntimeSpecError naming a rule with an unknown type or
    access letter."""

    rules = [("a", -1, -1, 7, False)] + [parse_rule(r) for r in DEFAULT_DEVICE_RULES]
    for i, d in enumerate(devices or []):
        t = d.get("type") or "a"
        acc = d.get("access") or "rwm"
        if t not in ("a", "b", "c"):
            raise RuntimeSpecError(f"linux.resources.devices[{i}].type = {t!r}: must be a, b or c")
        if set(acc) - set(ACCESS):
            raise RuntimeSpecError(f"linux.resources.devices[{i}].access = {acc!r}: only the letters r, w and m are allowed")
        if t == "a" and not d.get("allow") and set(acc) == set("rwm"):
            continue  # "deny all" is the starting point already (as the cgroup v1 files are written)
        major = -1 if d.get("major") is None or t == "a" else d["major"]
        minor = -1 if d.get("minor") is None or t == "a" else d["minor"]
        rules.append((t, major, minor, sum(ACCESS[c] for c in set(acc)), bool(d.get("allow"))))
    return rules


def program(rules: list[tuple[str, int, int, int, bool]]) -> bytes:
    """The eBPF program for ``rules`` (see the module doc), as bytes of ``struct
    bpf_insn``. Registers: r2 device type, r3 requested access bits, r4 major, r5
    minor."""
    out = [
        _insn(_LDXW, 2, 1, 0), _insn(_AND32_K, 2, imm=0xFFFF),
        _insn(_LDXW, 3, 1, 0), _insn(_RSH32_K, 3, imm=16),
        _insn(_LDXW, 4, 1, 4), _insn(_LDXW, 5, 1, 8),
    ]
    for t, major, minor, acc, allow in reversed(rules):
        tests: list[tuple] = []  # (opcode, dst, imm) jumping to the next rule when it holds
        if t != "a":
            tests.append(("jne", 2, DEV_TYPE[t]))
        if acc != 7:
            # allow: every requested bit is in acc; deny: some requested bit is in acc
            tests.append(("acc", 0 if allow else 1, (~acc & 7) if allow else acc))
        if major >= 0:
            tests.append(("jne", 4, major))
        if minor >= 0:
            tests.append(("jne", 5, minor))
        # (code, dst, src, imm, jumps to the next rule?)
        block: list[tuple[int, int, int, int, bool]] = []
        for kind, a, b in tests:
            if kind == "jne":
                block.append((_JNE_K, a, 0, b, True))
            else:
                block += [(_MOV32_X, 1, 3, 0, False), (_AND32_K, 1, 0, b, False), (_JNE_K if a == 0 else _JEQ_K, 1, 0, 0, True)]
        block += [(_MOV32_K, 0, 0, 1 if allow else 0, False), (_EXIT, 0, 0, 0, False)]
        for i, (code, dst, src, imm, jump) in enumerate(block):
            out.append(_insn(code, dst, src, len(block) - i - 1 if jump else 0, imm))
        if not tests:
            return b"".join(out)  # an unconditional rule: what follows would be unreachable (the verifier refuses that)
    out += [_insn(_MOV32_K, 0, imm=0), _insn(_EXIT)]
    return b"".join(out)


def load_program(code: bytes) -> int:
    """bpf(BPF_PROG_LOAD) of a BPF_PROG_TYPE_CGROUP_DEVICE program; returns its fd. Raises
    OSError with the verifier's log on EINVAL/EACCES."""
    import ctypes

    insns = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(b"Apache-2.0")  # any string; GPL-only helpers are not used
    log = ctypes.create_string_buffer(65536)
    attr = bytearray(128)
    struct.pack_into("<IIQQIIQ", attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE, len(code) // 8, ctypes.addressof(insns),
                     ctypes.addressof(lic), 1, len(log), ctypes.addressof(log))
    struct.pack_into("<I", attr, 68, BPF_CGROUP_DEVICE)  # expected_attach_type
    attr[48:48 + 16] = b"ocilearn_devs".ljust(16, b"\0")  # prog_name
    try:
        return sc.bpf(BPF_PROG_LOAD, attr)
    except OSError as e:
        detail = " | ".join(log.value.decode(errors="replace").strip().splitlines()[:4])
        raise OSError(e.errno, f"{e.strerror} (verifier: {detail})" if detail else e.strerror)


def attach_device_filter(cgroup_dir: str, rules: list[tuple[str, int, int, int, bool]]) -> None:
    """Load the program for ``rules`` and attach it to the cgroup v2 directory
    ``cgroup_dir`` (bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI), as runc).
    The attachment keeps the program alive after its fd is closed; it goes with the
    cgroup. Raises OSError."""
    prog = load_program(program(rules))
    try:
        cg = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            attr = bytearray(128)
            struct.pack_into("<IIII", attr, 0, cg, prog, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)
            sc.bpf(BPF_PROG_ATTACH, attr)
        finally:
            os.close(cg)
    finally:
        os.close(prog)
