"""Helpers for the layer/unpack tests: build small tars, layers and OCI layouts in memory."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import tarfile
from pathlib import Path

from ocilearn.image import mediatypes as mt
from ocilearn.image.digest import Digest
from ocilearn.image.layout import ImageLayout
from ocilearn.layer.apply import LayerResult, apply_layer


def F(name, data=b"", mode=0o644, uid=0, gid=0, **pax):
    return ("file", name, data, mode, uid, gid, pax)


def D(name, mode=0o755, uid=0, gid=0):
    return ("dir", name, None, mode, uid, gid, {})


def S(name, target):
    return ("symlink", name, target, 0o777, 0, 0, {})


def H(name, target):
    return ("hardlink", name, target, 0o644, 0, 0, {})


def FIFO(name, mode=0o644):
    return ("fifo", name, None, mode, 0, 0, {})


def DEV(name, kind, major, minor, mode=0o666):
    return (kind, name, (major, minor), mode, 0, 0, {})


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT) -> bytes:
    """A tar of ``entries`` (made by F/D/S/H/FIFO/DEV) in that order, duplicates kept."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for kind, name, payload, mode, uid, gid, pax in entries:
            ti = tarfile.TarInfo(name)
            ti.mode, ti.uid, ti.gid, ti.mtime = mode, uid, gid, 1_700_000_000
            if pax:
                ti.pax_headers = dict(pax)
            data = None
            if kind == "file":
                ti.type, ti.size, data = tarfile.REGTYPE, len(payload), io.BytesIO(payload)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, payload
            elif kind == "hardlink":
                ti.type, ti.linkname = tarfile.LNKTYPE, payload
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            elif kind in ("char", "block"):
                ti.type = tarfile.CHRTYPE if kind == "char" else tarfile.BLKTYPE
                ti.devmajor, ti.devminor = payload
            tf.addfile(ti, data)
    return buf.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def apply(rootfs, *layers: bytes, rootless=None, **kw) -> list[LayerResult]:
    """Apply uncompressed tar ``layers`` in order onto ``rootfs``."""
    return [apply_layer(rootfs, io.BytesIO(t), **kw, rootless=rootless) for t in layers]


def tree(rootfs) -> dict[str, str]:
    """``{path: "file:<content>" | "dir" | "symlink:<target>" | "fifo" …}`` of a rootfs."""
    out = {}
    root = Path(rootfs)
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            out[rel] = "symlink:" + os.readlink(p)
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = "dir"
        elif stat.S_ISREG(st.st_mode):
            out[rel] = "file:" + p.read_bytes().decode("utf-8", "replace")
        elif stat.S_ISFIFO(st.st_mode):
            out[rel] = "fifo"
        else:
            out[rel] = "other"
    return out


def sentinel_state(path) -> dict:
    """Listing, modes and contents of a sentinel directory (security tests)."""
    out = {}
    for p in sorted(Path(path).rglob("*")) + [Path(path)]:
        st = p.lstat()
        out[str(p)] = (st.st_mode, st.st_uid, st.st_gid, p.read_bytes() if stat.S_ISREG(st.st_mode) else None,
                       os.readlink(p) if stat.S_ISLNK(st.st_mode) else None)
    return out


def make_image(path, layers: list[tuple[bytes, str]], *, diff_ids=None, config: dict | None = None, ref="latest") -> ImageLayout:
    """An OCI layout at ``path`` with ``layers`` = ``[(blob bytes, media type)]``.

    ``diff_ids`` default: sha256 of each blob decompressed by magic bytes (gzip only;
    pass them for zstd or odd blobs)."""
    lay = ImageLayout.init(path)
    descs = []
    dids = []
    for blob, mtype in layers:
        d, n = lay.put_blob(blob)
        descs.append({"mediaType": mtype, "digest": str(d), "size": n})
        if diff_ids is None:
            raw = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
            dids.append(str(Digest.of(raw)))
    if diff_ids is not None:
        dids = [str(x) for x in diff_ids]
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "config": config if config is not None else {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": dids},
    }
    cdesc = lay.put_json(mt.OCI_CONFIG, json.dumps(cfg).encode())
    manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": cdesc.to_dict(), "layers": descs}
    mdesc = lay.put_json(mt.OCI_MANIFEST, json.dumps(manifest).encode())
    lay.add_ref(ref, mdesc)
    return lay


def user_python(user) -> tuple[str, dict[str, str]]:
    """``(interpreter, env)`` the unprivileged ``user`` can run with ocilearn importable:
    ``.venv/bin/python`` when the user may execute it, else the system Python of the same
    minor version with the venv's site-packages on PYTHONPATH (the venv's base interpreter
    may live in a private home such as pyenv under /root)."""
    import shutil
    import sys

    from conftest import REPO, as_user

    venv_py = REPO / ".venv" / "bin" / "python"
    env = {"PYTHONPATH": str(REPO)}
    if as_user(user, [str(venv_py), "-c", "import ocilearn.bundle.unpack, zstandard"], env=env).returncode == 0:
        return str(venv_py), env
    minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
    sys_py = shutil.which(minor, path="/usr/bin:/usr/local/bin")
    assert sys_py, f"the unprivileged user cannot run {venv_py} and there is no system {minor}"
    env = {"PYTHONPATH": f"{REPO}:{REPO / '.venv' / 'lib' / minor / 'site-packages'}"}
    p = as_user(user, [sys_py, "-c", "import ocilearn.bundle.unpack, zstandard, tqdm, click"], env=env)
    assert p.returncode == 0, f"the unprivileged user cannot import ocilearn: {p.stderr}"
    return sys_py, env


AS_LIMIT = 1 << 30  # bytes of address space for the child (threads reserve stacks too)

_PRELUDE = """
import io, os, resource, sys, tarfile, zlib
sys.path.insert(0, {tests!r})
from ocilearn.core import fsutil
from ocilearn.layer.apply import apply_layer
from ocilearn.layer.listing import list_layer
from ocilearn.core.errors import LayerError
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
def done(what):
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    print("RESULT", what, "RSS_GREW_KB", grew, flush=True)
"""


def run_child(body: str, timeout: float = 20) -> tuple[str, int]:
    """Run ``body`` in a fresh interpreter (RLIMIT_AS = 1 GiB, ``timeout`` seconds) after a
    prelude that imports ``apply_layer``, ``list_layer`` and ``LayerError`` and defines
    ``done(text)``; returns (the text given to ``done``, peak RSS growth in KiB). For
    memory and hang cases: a regression fails fast instead of exhausting the machine."""
    import resource
    import subprocess
    import sys
    import textwrap

    import pytest
    from conftest import REPO

    code = _PRELUDE.format(tests=str(REPO / "tests")) + textwrap.dedent(body)

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))

    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                           preexec_fn=limit, cwd=REPO)
    except subprocess.TimeoutExpired:
        pytest.fail(f"child did not finish within {timeout} s (the hang is back)")
    line = next((x for x in p.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert p.returncode == 0 and line, f"child failed rc={p.returncode}\nstdout={p.stdout}\nstderr={p.stderr[-3000:]}"
    what, _, grew = line[len("RESULT "):].rpartition(" RSS_GREW_KB ")
    return what, int(grew)


def pax_member(name: str, data: bytes, headers: dict) -> bytes:
    """A PAX 'x' header with ``headers`` verbatim (tarfile's writer would check them), a
    regular file ``name`` holding ``data``, and the end-of-archive blocks."""
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    x = tarfile.TarInfo._create_pax_generic_header(headers, tarfile.XHDTYPE, "utf-8")
    return x + ti.tobuf(tarfile.USTAR_FORMAT) + data.ljust(512, b"\0") + bytes(1024)
