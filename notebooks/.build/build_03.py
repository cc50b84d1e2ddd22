"""Generate notebooks/03-bundle.ipynb: run ``.venv/bin/python notebooks/.build/build_03.py``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import code, md, parameters, write  # noqa: E402

cells = [
    parameters(
        """
        # Parameters.
        # IMAGE = None uses the small image shipped inside ocilearn (offline).
        # IMAGE = "oci:/path/to/layout:ref" unpacks that image instead (it is only read).
        # IMAGE = "docker://127.0.0.1:5000/debian:bookworm" pulls an image into the work dir first.
        IMAGE = None
        """
    ),
    md(
        """
        # 03 · From image to bundle: `config.json` + `rootfs/`

        A runtime such as `runc` does not run an *image*: it runs a **bundle** (runtime-spec
        `bundle.md`) — a directory with a `config.json` and a root filesystem. The article
        makes one with

        ```
        umoci unpack --rootless --image busybox:latest bundle
        ```

        and then edits `config.json` **by hand twice** before `runc` accepts it: `terminal`
        and `user`. This notebook builds the bundle with `ocilearn.bundle.unpack`, then reads
        `config.json` field by field with the origin of every value — and explains the two
        edits, and why `ocilearn` makes them for you.

        **What you will learn**
        - what `unpack` does: resolve the image, verify every blob, apply each layer (whiteouts,
          safe paths), recheck every diff ID, convert the image config, write atomically;
        - the difference between a **root** and a **rootless** unpack (who owns the files,
          what happens to device nodes, `user.rootlesscontainers`);
        - where each `config.json` value comes from: the image config, the image's own
          `/etc/passwd`, the `runc spec` defaults, or the rootless transform.
        """
    ),
    code(
        """
        import atexit
        import json
        import os
        import shutil
        import stat
        import tempfile
        import warnings
        from pathlib import Path

        from ocilearn.bundle import convert

        from ocilearn.image import embedded

        from ocilearn.core import explain

        from ocilearn.views import widgets
        from ocilearn.layer.rootless import parse_rootless_xattr
        from ocilearn.image.layout import ImageLayout, parse_oci_ref
        from ocilearn.bundle.unpack import remove_tree, unpack

        WORK = Path(tempfile.mkdtemp(prefix="ocilearn-03-"))
        atexit.register(remove_tree, WORK)  # removed when this kernel stops (see "Clean up" at the end)
        if IMAGE is None:
            SRC, REF = str(embedded.layout_path()), "latest"
        elif IMAGE.startswith("oci:"):
            SRC, REF = parse_oci_ref(IMAGE)
        else:  # docker://HOST/NAME:TAG — pulled as in notebook 01, section 9b
            from ocilearn.distribution import copy as transfer

            transfer.copy(IMAGE, f"oci:{WORK / 'image'}:course", quiet=False)
            SRC, REF = str(WORK / "image"), "course"
        AM_ROOT = os.geteuid() == 0
        print("image:", SRC, REF, "| running as", "root" if AM_ROOT else f"uid {os.geteuid()} (rootless)")
        """
    ),
    md(
        """
        ## 1 · Unpack

        `unpack` builds the bundle in a temporary directory next to the target and renames it
        into place only when everything verified: a failed unpack leaves nothing behind.
        As root the files get the owners the image asks for; as an ordinary user the unpack is
        automatically **rootless** — and then ocilearn warns that the image's user (uid 1000 in
        the embedded image) is not mapped in the container's user namespace and runs the
        container as uid 0 in it instead (and, for an image with device nodes such as
        `/dev/null`, that it skipped them: section 2). That is expected, not a failure: the cell
        below catches such warnings and prints them as notes; section 4 (edit 2) explains the
        first.
        """
    ),
    code(
        """
        def show_notes(caught):
            \"\"\"Print caught warnings as notes (one line each; at most 3).\"\"\"
            for w in caught[:3]:
                print("note:", w.message)
            if len(caught) > 3:
                print(f"note: … and {len(caught) - 3} more")


        with explain.recording() as steps, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = unpack(f"{SRC}:{REF}", WORK / "bundle")
        show_notes(caught)
        print(f"{res.bundle}: {len(res.layers)} layer(s), {sum(l.entries for l in res.layers)} entries, "
              f"rootless={res.rootless}, {res.seconds:.2f} s")
        print(sorted(os.listdir(res.bundle)))
        for lr in res.layers:
            print("  diff ID", lr.diff_id, "verified;", lr.compression, lr.blob_bytes, "→", lr.tar_bytes, "bytes")
        steps
        """
    ),
    md(
        """
        ## 2 · Rootless: what changes

        An unprivileged user cannot `chown` a file to someone else, nor `mknod` a device.
        So a rootless unpack (`umoci unpack --rootless`, `ocilearn unpack --rootless`):

        - leaves every file owned by *you*, and records the owner the image asked for in the
          `user.rootlesscontainers` extended attribute (the same protobuf bytes umoci writes);
        - skips device nodes and lists them (the runtime mounts its own `/dev` anyway);
        - temporarily makes read-only directories writable while it fills them, then restores
          their modes.

        Below, the same image unpacked rootless (this also works as root), beside the unpack
        of section 1. As root that one is a **root unpack**, so the two columns differ in
        owners; as an ordinary user section 1 was rootless already, so both columns are
        rootless and agree: every file is yours, and the xattr keeps the owner the image asked
        for.
        """
    ),
    code(
        """
        with warnings.catch_warnings(record=True) as caught:  # one LayerWarning per skipped device node
            warnings.simplefilter("always")
            rl = unpack(f"{SRC}:{REF}", WORK / "bundle-rootless", rootless=True)
        root_fs, rl_fs = res.rootfs, rl.rootfs
        # a few telling paths, those this image has: an owned home, a setuid binary, a root-only file, a device
        SHOW = [rel for rel in ("home/app", "bin/busybox", "usr/bin/su", "etc/shadow", "opt/ocilearn/owned-by-1000", "tmp", "dev/null")
                if os.path.lexists(root_fs / rel)][:6]
        for rel in SHOW:
            a = (root_fs / rel).lstat()
            left = f"/{rel:28} {'root unpack' if not res.rootless else 'section 1 (rootless)'}: {a.st_uid}:{a.st_gid} {stat.filemode(a.st_mode)} | rootless: "
            if not os.path.lexists(rl_fs / rel):
                print(left + "not created (a device node: mknod needs CAP_MKNOD)")
                continue
            b = (rl_fs / rel).lstat()
            x = os.getxattr(rl_fs / rel, "user.rootlesscontainers", follow_symlinks=False) if "user.rootlesscontainers" in os.listxattr(rl_fs / rel, follow_symlinks=False) else None
            print(left + f"{b.st_uid}:{b.st_gid} {stat.filemode(b.st_mode)}, xattr {x.hex() if x else '-'}"
                  + (f" = image owner {parse_rootless_xattr(x)}" if x else ""))
        print(f"skipped in rootless mode: {len(rl.skipped)}", [p for p, _why in rl.skipped[:8]] + (["…"] if len(rl.skipped) > 8 else []))
        show_notes(caught)
        print("user namespace map:", rl.config["linux"]["uidMappings"])
        """
    ),
    md(
        """
        ## 3 · `config.json`, field by field

        `convert.explain_config` returns, for every field, its value and **where it came
        from**: `image config` (conversion.md copies Entrypoint + Cmd, Env, WorkingDir, User,
        labels and platform fields), `rootfs /etc/passwd` (the *image's* passwd, read safely
        inside the rootfs — never the host's), `default (runc spec)`, `default (ocilearn)`,
        or `rootless transform`. Use the dropdown to filter by source.
        """
    ),
    code(
        """
        layout = ImageLayout.open(SRC)
        image_config = layout.image_config(layout.resolve(REF))
        rows = convert.explain_config(image_config, res.rootfs)
        table = widgets.ProvenanceTable(rows)
        table
        """
    ),
    code(
        """
        written = json.loads((res.bundle / "config.json").read_text())
        p = written["process"]
        print("args:", p["args"])
        print("env: ", p["env"])
        print("cwd: ", p["cwd"], "| user:", p["user"], "| terminal:", p["terminal"])
        print("annotations:", json.dumps(written.get("annotations", {}), indent=1))
        from_image = [r for r in table.filter("image config")]
        print(len(from_image), "fields straight from the image config")
        """
    ),
    md(
        """
        `process.args` is the image's `Entrypoint` followed by its `Cmd` — or by the arguments
        you give (`docker run IMAGE ls -l` replaces `Cmd`, never `Entrypoint`). The whole
        rule (image-spec conversion.md; with the corner cases `Entrypoint` null, `[]` or `[""]`
        — case C28 of the course's hostile inputs), one click away:
        """
    ),
    code(
        """
        import ocilearn

        ocilearn.show_source(convert.process_args)
        """
    ),
    md(
        """
        ## 4 · The article's two manual edits

        **Edit 1 — `"terminal": false`.** `runc spec` and `umoci unpack` write
        `"terminal": true`. A terminal means: `runc` allocates a pseudo-terminal and the
        container's PID 1 gets it as its controlling tty. When `runc create` (or `runc run
        -d`) *detaches*, nobody is left to hold the terminal's master side, so runc refuses:

        ```
        cannot allocate tty if runc will detach without setting console socket
        ```

        (runc issue #1580) — unless you pass `--console-socket`, a Unix socket that receives
        the terminal's master fd. For a command like `echo` you want no terminal at all, so
        `ocilearn` writes `false` by default; `ocilearn unpack --terminal` asks for one.

        **Edit 2 — `"user": {"uid": 0, "gid": 0}`** (only rootless). The embedded busybox
        image says `User: app` = uid 1000 in its `/etc/passwd`. A rootless bundle maps exactly *one* id —
        yours — to uid 0 inside the container's user namespace (`uidMappings` above). Uid 1000
        does not exist in that namespace, so `runc` cannot switch to it
        and fails at start. umoci keeps 1000 and you must edit it; `ocilearn`'s
        rootless transform sets 0:0 and says so in the table:
        """
    ),
    code(
        """
        with warnings.catch_warnings(record=True) as caught:  # the same note as in section 1
            warnings.simplefilter("always")
            rl_rows = convert.explain_config(image_config, rl.rootfs, rootless=True)
        for r in rl_rows:
            if r.field in ("process.terminal", "process.user", "linux.uidMappings"):
                print(f"{r.field:18} {json.dumps(r.value):40} ← {r.source}: {r.why}")
        assert rl.config["process"]["terminal"] is False and rl.config["process"]["user"] == {"uid": 0, "gid": 0}
        """
    ),
    md(
        """
        When are the edits needed? `terminal` whenever the runtime detaches (create/start,
        `run -d`) without a console socket; `user` whenever the bundle is rootless and the
        image's user is not root (or you add more id mappings with `newuidmap`).

        ## 5 · Side by side with umoci (when it is installed)

        The same image unpacked by the reference tool: as root `umoci unpack --image …`, as an
        ordinary user `umoci unpack --rootless --image …` (the article's command for a
        rootless bundle). The process fields of its `config.json` beside ocilearn's bundle of
        section 1; where they differ, the reason is printed.
        """
    ),
    code(
        """
        import subprocess

        WHY = {
            "terminal": "the article's edit 1: ocilearn writes false (section 4)",
            "env": "TERM=xterm: umoci adds it with its terminal; ocilearn only when a terminal is asked for",
            "user": "the article's edit 2: umoci --rootless keeps the image's user, ocilearn's rootless transform sets 0:0 (section 4)",
        }
        if shutil.which("umoci"):
            cmd = ["umoci", "unpack"] + ([] if AM_ROOT else ["--rootless"]) + ["--image", f"{SRC}:{REF}", str(WORK / "umoci-bundle")]
            print("$", " ".join(cmd[:-1]), "umoci-bundle")
            u = subprocess.run(cmd, capture_output=True, text=True)
            if u.returncode != 0:
                print(f"umoci failed (exit status {u.returncode}):", u.stderr.strip()[-500:])
            else:
                theirs = json.loads((WORK / "umoci-bundle/config.json").read_text())["process"]
                for key in ("args", "cwd", "user", "env", "terminal"):
                    mark = "same" if theirs[key] == p[key] else f"differs: {WHY.get(key, 'see above')}"
                    print(f"{key:9} umoci: {json.dumps(theirs[key])}\\n          ocilearn: {json.dumps(p[key])}   ({mark})")
        else:
            print("umoci is not installed here (on Debian: apt-get install umoci): skipped")
        """
    ),
    md(
        """
        ## 6 · What can go wrong

        **Unpacking into a bundle that exists.** `unpack` never overwrites a bundle silently
        (nor does `umoci unpack`): the directory may hold a container's only copy of its files.
        Pass `force=True` (`ocilearn unpack --force`) to replace it — and even then the old
        bundle is removed only once the new one is complete and verified.
        """
    ),
    code(
        """
        from ocilearn.core.errors import OcilearnError

        try:
            unpack(f"{SRC}:{REF}", WORK / "bundle")
        except OcilearnError as e:
            print(f"{type(e).__name__}: {e}")
        old_inode = (WORK / "bundle" / "config.json").stat().st_ino
        with warnings.catch_warnings(record=True) as caught:  # the same notes as in section 1
            warnings.simplefilter("always")
            again = unpack(f"{SRC}:{REF}", WORK / "bundle", force=True)
        print(f"with force=True: {again.bundle} replaced, a new config.json: {(WORK / 'bundle' / 'config.json').stat().st_ino != old_inode}")
        """
    ),
    md(
        """
        **A user the image does not have.** `User` in the image config may be a *name*; the
        runtime needs numbers, so the name is looked up in the **image's** `/etc/passwd`
        (never the host's). A name that is not there is an error — image-spec `config.md` and
        `conversion.md` say it MUST be — rather than a guess such as "run as root". Below, a
        copy of the image config with `User` set to `ghost`. The fix: a user the image's
        `/etc/passwd` lists, or a number (`"1000"`, `"1000:1000"`), which needs no lookup.
        """
    ),
    code(
        """
        import dataclasses

        from ocilearn.image.model import ContainerConfig

        cfg = image_config.config or ContainerConfig(cmd=("sh",))
        ghost = dataclasses.replace(image_config, config=dataclasses.replace(cfg, user="ghost"))
        try:
            convert.convert(ghost, res.rootfs)
        except OcilearnError as e:
            print(f"{type(e).__name__}: {e}")
        """
    ),
    md(
        """
        ## 7 · Exercises

        Each exercise has a variable to fill in; the check cell below it tells you whether you
        got it. (Unanswered exercises just print a hint.)

        **Exercise 1.** Write this image's `process.args` yourself, as a list, from its
        `Entrypoint` and `Cmd` (`image_config.config.entrypoint`, `.cmd`, or the JSON of
        notebook 02).
        """
    ),
    code("ANSWER_1 = None  # a list of strings"),
    code(
        """
        def check_1(answer):
            want = written["process"]["args"]
            if answer is None:
                return "· not answered yet — hint: Entrypoint first, then Cmd, in one list (section 3)"
            if isinstance(answer, str) or not isinstance(answer, (list, tuple)):
                return f'✘ not yet: write a Python list of strings, e.g. ["/bin/sh", "-c", "…"] — you gave {answer!r}'
            if not all(isinstance(a, str) for a in answer):
                return "✘ not yet: every item of the list is a string, in quotes"
            if list(answer) == want:
                return f"✔ correct: {want}"
            cfg = image_config.config
            if cfg is not None and list(answer) == list(cfg.cmd or []) and cfg.entrypoint:
                return "✘ not yet: that is only Cmd — the Entrypoint comes first"
            return "✘ not yet: concatenate Entrypoint (or [] when absent) and Cmd, in that order"


        print(check_1(ANSWER_1))
        """
    ),
    md(
        """
        **Exercise 2.** `docker run IMAGE ls -l` gives `ls -l` as arguments. What
        `process.args` does that make for this image? (Then think: with the embedded image,
        what does `sh -c ls -l` actually run?)
        """
    ),
    code("ANSWER_2 = None  # a list of strings"),
    code(
        """
        def check_2(answer):
            want = convert.process_args(image_config.config, ["ls", "-l"])
            if answer is None:
                return "· not answered yet — hint: the arguments replace Cmd, not Entrypoint"
            if isinstance(answer, str) or not isinstance(answer, (list, tuple)):
                return f'✘ not yet: write a Python list of strings, one item per argument, e.g. ["/bin/sh", "-c", "…"] — you gave {answer!r}'
            if not all(isinstance(a, str) for a in answer):
                return "✘ not yet: every item of the list is a string, in quotes"
            if list(answer) == want:
                note = " — `sh -c` runs only `ls`; `-l` becomes $0, so no long listing!" if want[:2] == ["/bin/sh", "-c"] else ""
                return f"✔ correct: {want}{note}"
            if list(answer) == ["ls", "-l"] and want != ["ls", "-l"]:
                return "✘ not yet: the Entrypoint stays — only Cmd is replaced"
            return "✘ not yet: Entrypoint + the new arguments (look at convert.process_args above)"


        print(check_2(ANSWER_2))
        """
    ),
    md(
        """
        **Exercise 3.** In the **rootless** bundle, container uid 0 is which uid on the host?
        (An int; the answer is in `config.json`.)
        """
    ),
    code("ANSWER_3 = None  # an int"),
    code(
        """
        def check_3(answer):
            want = rl.config["linux"]["uidMappings"][0]["hostID"]
            if answer is None:
                return "· not answered yet — hint: linux.uidMappings, the entry with containerID 0"
            if isinstance(answer, str):
                if answer.strip().isdigit():
                    return f"almost: write the number without quotes — ANSWER_3 = {answer.strip()}, not {answer!r}"
                return "✘ not yet: the answer is a number (a uid), an int"
            if isinstance(answer, bool) or not isinstance(answer, int):
                return f"✘ not yet: the answer is a uid, an int — not a {type(answer).__name__}"
            if answer == want:
                return f"✔ correct: uid {want} — {'you' if want == os.geteuid() else 'the caller'}: a rootless container's root is the user who ran it"
            return "✘ not yet: read hostID in linux.uidMappings of the rootless config (section 2 prints it)"


        print(check_3(ANSWER_3))
        """
    ),
    md(
        """
        ## 8 · Try it

        - In section 6, set `User` to `"4242"` instead of `"ghost"`: a number needs no
          `/etc/passwd` entry, so it converts — look at `process.user` in what
          `convert.convert(...)` returns.
        - `convert.convert(image_config, res.rootfs, args=["ls", "-l"])` is what
          `docker run IMAGE ls -l` asks for: compare its `process.args` with exercise 2.

        Next: **[04 · runtime](04-runtime.ipynb)** runs this bundle with `ocilearn`'s own runtime.
        """
    ),
    md(
        """
        ## Clean up

        This notebook made a work directory in `/tmp` (in its first code cell): the bundles of
        sections 1, 2, 5 and 6. **It is removed when the kernel stops** (*Kernel ▸ Shut Down
        Kernel*, *Restart Kernel*, or stopping JupyterLab): that cell registered the removal
        with Python's `atexit`. *Run All* therefore deletes nothing, and the exercises above
        keep working after it. To remove the directory now, run `remove_tree(WORK)` in a cell.
        An image you opened with `IMAGE = "oci:…"` is outside it and stays untouched.
        """
    ),
    code(
        """
        files = [p for p in WORK.rglob("*") if p.is_file() and not p.is_symlink()]
        print(f"work directory {WORK}: {len(files)} files, {sum(p.stat().st_size for p in files)} bytes")
        print("removed when this kernel stops; to remove it now: remove_tree(WORK)")
        """
    ),
]

if __name__ == "__main__":
    print(write("03-bundle.ipynb", cells))
