"""Generate notebooks/00-start-here.ipynb: run ``.venv/bin/python notebooks/.build/build_00.py``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import code, md, parameters, write  # noqa: E402

cells = [
    parameters(
        """
        # Parameters (every notebook of the course starts with this cell).
        # IMAGE = None uses the small image shipped inside ocilearn: no network needed.
        # IMAGE = "docker://docker.io/library/busybox:latest" pulls a real image instead.
        IMAGE = None
        """
    ),
    md(
        """
        # 00 · Start here

        This course takes you from an **OCI image** to a **running container**, one real
        primitive at a time. It retraces the well-known hands-on path

        ```
        skopeo copy docker://busybox oci:busybox:latest     # 01: pull into an OCI image layout
        ls busybox/blobs/sha256; cat index.json              # 02: open the blobs
        umoci unpack --image busybox:latest bundle           # 03: image → runtime bundle
        runc run -b bundle demo                              # 04: bundle → container
        ```

        — but every step is done by short, readable Python in the `ocilearn` library, for
        real: real digests, a real registry client, real layers with whiteouts, a real spawner
        built from `unshare`, `mount` and `pivot_root`.

        **What you will learn here**
        - whether your machine can run every part of the course, and which path it takes
          (*root* or *rootless*);
        - how a notebook of this course works: parameters, narration tables, source one click
          away, widgets, exercises with check cells;
        - what each notebook teaches.

        **How to run a notebook**: *Run ▸ Run All Cells* from the menu, or click a cell and
        press <kbd>Shift</kbd>+<kbd>Enter</kbd> to run it and move on. Every notebook runs top
        to bottom with no edits.
        """
    ),
    md(
        """
        ## 1 · Check your machine

        `ocilearn.course.check()` probes this machine — nothing is changed:

        - **who you are**: as *root* the course takes the full path; as an ordinary user it
          takes the **rootless** path automatically (a *user namespace* maps you to root inside
          the container; unpacking records the file owners it cannot apply);
        - **kernel features**: it really calls `unshare(2)` for each namespace in a child
          process that exits at once;
        - **cgroups**: which version is mounted at `/sys/fs/cgroup` and whether you may create
          a group (for memory/PID limits in 04);
        - **tools**: `dot` draws the graphs; `skopeo`, `umoci`, `runc`, `crun` are the
          *reference tools* whose real output the notebooks show beside ocilearn's;
        - **loopback**: a TCP connection to `127.0.0.1`. Nothing beyond your own machine is
          probed.
        """
    ),
    code(
        """
        from ocilearn import course

        report = course.check()
        report
        """
    ),
    md(
        """
        The same report as plain text — one line per part of the course. *partial* means the
        notebook runs, but some cells show what cannot be done here and why.
        """
    ),
    code(
        """
        print(f"course path: {report.mode}")
        for part in report.parts:
            print(f"{part.notebook:<24} {part.status:<10} {part.why}")
        """
    ),
    md(
        """
        ## 2 · The image you will use

        Every notebook begins with a **parameters** cell (the first cell, tagged `parameters`).
        With `IMAGE = None` the course uses a tiny image embedded in ocilearn, so it works
        offline — in a workshop without Wi-Fi too. Set `IMAGE = "docker://…"` to pull a real
        image instead (Docker Hub when you are online, or a local registry).

        Below, the image is put into an **OCI image layout** — a directory — in a fresh
        temporary work directory (so the notebook can run again and again). Notebook 01
        explains every file in it.
        """
    ),
    code(
        """
        import atexit
        import tempfile
        from pathlib import Path

        from ocilearn.core import explain
        from ocilearn.image.layout import ImageLayout
        from ocilearn.bundle.unpack import remove_tree

        WORK = Path(tempfile.mkdtemp(prefix="ocilearn-00-"))  # a fresh work dir: run the notebook as often as you like
        atexit.register(remove_tree, WORK)  # removed when this kernel stops (see "Clean up" at the end)
        LAYOUT = WORK / "image"
        with explain.recording() as steps:
            if IMAGE is None:
                from ocilearn.image import embedded

                embedded.copy_to(LAYOUT)
            else:
                from ocilearn.distribution import copy as transfer

                transfer.copy(IMAGE, f"oci:{LAYOUT}:course")
        layout = ImageLayout.open(LAYOUT)
        image = layout.resolve(sorted(layout.refs())[0])  # the manifest the ref names
        image_config = layout.image_config(image)  # its image config, parsed (exercise 3 uses it)
        print("image layout:", LAYOUT.resolve())
        print("refs:", ", ".join(sorted(layout.refs())))
        """
    ),
    md(
        """
        ## 3 · Narration: what did that just do?

        Every primitive of ocilearn can *narrate* what it does. Inside
        `with explain.recording() as steps:` each real action — a file written, an HTTP
        request, a syscall — is recorded with the **equivalent command** of the reference tool.
        In a notebook the steps show as a table:
        """
    ),
    code("steps"),
    md(
        """
        ## 4 · The source is one click away

        Nothing is hidden. `ocilearn.show_source(...)` shows the code of any function, class or
        module — here, the function that wrote every blob above. (In a code cell,
        `ImageLayout.put_blob??` does the same.)
        """
    ),
    code(
        """
        import ocilearn

        ocilearn.show_source(ImageLayout.put_blob)
        """
    ),
    md(
        """
        ## 5 · Widgets: click around

        Some cells draw **widgets**. This one is the *image explorer*: pick a node of the image
        — `index.json`, the manifest, the config, a layer — to see the **descriptor** that
        points at it and its content. Try the dropdown.
        """
    ),
    code(
        """
        from ocilearn.views.widgets import ImageExplorer

        explorer = ImageExplorer(layout)
        explorer
        """
    ),
    code(
        """
        # what the explorer shows when you pick the image config (the same as a click)
        shown = explorer.select("config")
        print("selected:", explorer.picker.value)
        """
    ),
    md(
        """
        ## 6 · The course

        | notebook | you will learn | article step |
        |---|---|---|
        | **01-image-layout** | an OCI image layout: `oci-layout`, `index.json`, `blobs/sha256`; ref names and descriptors; verify a digest and meet a digest mismatch; layer digest vs diff ID; the image graph *index → manifest → config + layers*; pull an image from a registry, every HTTP request shown | `skopeo copy docker://… oci:DIR:TAG`, `sha256sum` |
        | **02-blobs** | read the manifest, the image config and the layers by hand; list a layer like `tar -tvf`; diff IDs and chain IDs; whiteouts and opaque whiteouts; what each layer adds, changes and deletes | `cat blobs/sha256/…`, `tar -tzvf` |
        | **03-bundle** | unpack the layers into a rootfs: whiteouts, opaque whiteouts, hardlinks; turn the image config into a runtime `config.json`, field by field | `umoci unpack --image DIR:TAG bundle` |
        | **04-runtime** | create → start → state → kill → delete; namespaces, mounts, `pivot_root`, cgroups — step by step until your process is PID 1 with its own hostname | `runc create / start / list / exec / kill / delete` |

        Each notebook has: *what you will learn*; the article's command beside ocilearn's call
        and the real output of both; the source one click away; **what can go wrong**, with the
        real errors and their fixes; and 2–3 **exercises**, each followed by a *check* cell
        that tells you whether you got it.
        """
    ),
    md(
        """
        ## 7 · Exercises

        Each exercise cell has a variable to fill in; the check cell below it tells you whether
        you got it. (Unanswered exercises just print a hint.)

        **Exercise 1.** Which path will notebooks 03 and 04 take on this machine: `"root"` or
        `"rootless"`? (Look at the report in section 1.)
        """
    ),
    code(
        """
        ANSWER_1 = None  # "root" or "rootless"
        """
    ),
    code(
        """
        def check_1(answer):
            if answer is None:
                return "not answered yet: look for 'course path' in section 1"
            if not isinstance(answer, str):
                return f'not quite: write the path as a string in quotes, "root" or "rootless" — you gave {answer!r}'
            if answer.strip().lower() not in ("root", "rootless"):
                return f'not quite: the answer is one of two strings, "root" or "rootless" — you gave {answer!r}'
            if answer.strip().lower() == report.mode:
                return f"correct: this machine takes the {report.mode} path"
            return f"not quite: you are uid {__import__('os').geteuid()} — look at the 'user' row of the report"


        print(check_1(ANSWER_1))
        """
    ),
    md(
        """
        **Exercise 2.** How many of the four reference tools (skopeo, umoci, runc, crun) are
        installed here?
        """
    ),
    code("ANSWER_2 = None  # a number from 0 to 4"),
    code(
        """
        def check_2(answer):
            present = [t for t in course.REFERENCE_TOOLS if report.tools[t]]
            if answer is None:
                return "not answered yet: count the ✔ rows for skopeo, umoci, runc, crun"
            if isinstance(answer, str):
                if answer.strip().isdigit():
                    return f"almost: write the number without quotes — ANSWER_2 = {answer.strip()}, not {answer!r}"
                return "not quite: the answer is a number (an int from 0 to 4), e.g. ANSWER_2 = 2"
            if isinstance(answer, bool) or not isinstance(answer, (int, float)):
                return f"not quite: the answer is a number (an int from 0 to 4), not a {type(answer).__name__}"
            if answer == len(present):
                return f"correct: {len(present)} ({', '.join(present) or 'none'})"
            return "not quite: count again — each tool has its own row in the report"


        print(check_2(ANSWER_2))
        """
    ),
    md(
        """
        **Exercise 3.** Pick the **config** node in the explorer of section 5. An image says
        what to run in two fields of its config: `Entrypoint` and `Cmd`. The container's
        process runs **`Entrypoint` followed by `Cmd`**, in one list (image-spec `config.md`;
        notebook 03 shows the rule's code). A command you give when you run the image replaces
        only `Cmd` — the `Entrypoint` stays. What command line does this image run by
        default? Write it as a Python list of strings.
        """
    ),
    code("ANSWER_3 = None  # e.g. [\"/bin/sh\", \"-c\", \"…\"]"),
    code(
        """
        def check_3(answer):
            cfg = image_config.config  # the image config loaded in section 2
            entry = list(cfg.entrypoint or []) if cfg else []
            cmd = list(cfg.cmd or []) if cfg else []
            want = entry + cmd
            if answer is None:
                return "not answered yet: find \\"Entrypoint\\" and \\"Cmd\\" in the config's JSON"
            if isinstance(answer, str) or not isinstance(answer, (list, tuple)):
                return f"not quite: write a Python list of strings, e.g. [\\"/bin/sh\\", \\"-c\\", \\"…\\"] — you gave {answer!r}"
            if not all(isinstance(a, str) for a in answer):
                return "not quite: every item of the list is a string, in quotes"
            if list(answer) == want:
                if entry:
                    return (f"correct: the image runs {want} — Entrypoint {entry} + Cmd {cmd}; "
                            f"a command you give replaces only Cmd and still goes after the Entrypoint {entry}")
                return f"correct: the image runs {want} — it has no Entrypoint, so Cmd is the whole command; a command you give replaces it"
            if entry and list(answer) == cmd:
                return f"not quite: that is Cmd alone — the Entrypoint {entry} comes first"
            if entry and list(answer) == entry:
                return "not quite: that is the Entrypoint alone — Cmd follows it, in the same list"
            return "not quite: join the list under \\"Entrypoint\\" (if any) and the list under \\"Cmd\\", in that order"


        print(check_3(ANSWER_3))
        """
    ),
    md(
        """
        ## Next

        Open **[01-image-layout](01-image-layout.ipynb)** (double-click it in the file browser
        on the left) and run it from the top. If a cell fails, its message says what was
        expected and how to fix it; *For instructors* in the README lists the common problems.
        """
    ),
    md(
        """
        ## Clean up

        This notebook made a work directory in `/tmp` (section 2). **It is removed when the
        kernel stops** (*Kernel ▸ Shut Down Kernel*, *Restart Kernel*, or stopping JupyterLab):
        section 2 registered the removal with Python's `atexit`. *Run All* therefore deletes
        nothing, and the explorer and the exercises above keep working after it. To remove the
        directory now, run `remove_tree(WORK)` in a cell (the widgets and checks above then have
        nothing left to read: run the notebook again for a fresh one).
        """
    ),
    code(
        """
        files = [p for p in WORK.rglob("*") if p.is_file()]
        print(f"work directory {WORK}: {len(files)} files, {sum(p.stat().st_size for p in files)} bytes")
        print("removed when this kernel stops; to remove it now: remove_tree(WORK)")
        """
    ),
]

if __name__ == "__main__":
    print(write("00-start-here.ipynb", cells))
