"""Generate notebooks/01-image-layout.ipynb: run ``.venv/bin/python notebooks/.build/build_01.py``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import code, md, parameters, write  # noqa: E402

cells = [
    parameters(
        """
        # Parameters.
        # IMAGE = None copies the small image shipped inside ocilearn into a temp work dir (offline).
        # IMAGE = "oci:/path/to/layout:ref" opens an existing image layout (read only).
        # IMAGE = "docker://127.0.0.1:5000/debian:bookworm" pulls an image into the work dir first.
        IMAGE = None
        """
    ),
    md(
        """
        # 01 · The OCI image layout

        The first step of the hands-on path is

        ```
        skopeo copy docker://busybox:latest oci:busybox:latest
        ```

        which leaves a **directory** on disk: an *OCI image layout* (image-spec
        `image-layout.md`). This notebook opens that directory file by file, the way you would
        with `tree`, `cat`, `jq` and `sha256sum` — and shows the same thing through `ocilearn`.

        **What you will learn**
        - the three parts of a layout: `oci-layout`, `index.json`, `blobs/sha256/…`;
        - how `index.json` names an image by a **ref name** and points at a **manifest** with a
          **descriptor** (media type, digest, size);
        - what the manifest lists: one **image config** and the **layers**;
        - that every blob's name *is* its sha256 **digest** — recomputed here by hand with
          `hashlib`, by the library, and by `sha256sum`;
        - why the layer's digest differs from its **diff ID**;
        - the whole thing as a graph.

        Each step prints ocilearn's view first, then the **real output** of the reference tool
        (when it is installed on this machine).
        """
    ),
    md(
        """
        ## 0 · Get an image layout

        With `IMAGE = None` the embedded image (Debian's `busybox-static` in one layer, built
        by ocilearn's own writer — see `ocilearn/data/README.md`) is copied into a fresh work
        directory, as `skopeo copy oci:…/busybox:latest oci:image:latest` would. The small
        helper `reference()` runs a reference tool's command in that directory and prints its
        real output.
        """
    ),
    code(
        """
        import atexit
        import hashlib
        import json
        import shlex
        import shutil
        import subprocess
        import sys
        import tempfile
        from pathlib import Path

        import ocilearn
        from ocilearn.image import embedded
        from ocilearn.core import explain
        from ocilearn.image.digest import Digest
        from ocilearn.image.layout import ImageLayout, parse_oci_ref
        from ocilearn.bundle.unpack import remove_tree

        WORK = Path(tempfile.mkdtemp(prefix="ocilearn-01-"))
        atexit.register(remove_tree, WORK)  # removed when this kernel stops (see "Clean up" at the end)
        PACKAGES = {"tree": "tree", "jq": "jq", "sha256sum": "coreutils", "skopeo": "skopeo", "umoci": "umoci", "find": "findutils"}


        def reference(cmd: str, limit: int = 30) -> None:
            \"\"\"Print `$ cmd` and the real output of that reference-tool command (run in WORK).\"\"\"
            tool = shlex.split(cmd)[0]
            print(f"$ {cmd}")
            if shutil.which(tool) is None:
                print(f"  ({tool} is not installed here; on Debian: apt-get install {PACKAGES.get(tool, tool)})")
                return
            p = subprocess.run(cmd, shell=True, cwd=WORK, capture_output=True, text=True, errors="replace")
            lines = (p.stdout + p.stderr).splitlines()
            for line in lines[:limit]:
                print("  " + line)
            if len(lines) > limit:
                print(f"  … {len(lines) - limit} more lines")


        PULL = None  # the CopyResult when IMAGE is pulled from a registry
        with explain.recording() as steps:
            if IMAGE is None:
                layout = embedded.copy_to(WORK / "image")
                REF = "latest"
            elif IMAGE.startswith("oci:"):
                path, REF = parse_oci_ref(IMAGE)
                layout = ImageLayout.open(path)
            else:
                from ocilearn.distribution import copy as transfer

                PULL = transfer.copy(IMAGE, f"oci:{WORK / 'image'}:course", quiet=False)
                layout = ImageLayout.open(WORK / "image")
                REF = "course"
        # the layout's path for the shell commands (they run in WORK)
        L = shlex.quote(str(layout.path.relative_to(WORK)) if layout.path.is_relative_to(WORK) else str(layout.path))
        print("image layout:", layout.path)
        print("ref:", REF)
        steps
        """
    ),
    md(
        """
        ## 1 · The files of a layout

        ```
        image/
          oci-layout            a marker with the layout version
          index.json            the entry point: which images, under which ref names
          blobs/sha256/<hex>    everything else, each file named by the sha256 of its bytes
        ```

        Below: every file with its size, as `tree` prints it (`find` as a fallback).
        """
    ),
    code(
        """
        def show_tree(root: Path, prefix: str = "") -> None:
            entries = sorted(root.iterdir())
            for i, p in enumerate(entries):
                last = i == len(entries) - 1
                size = f"[{p.stat().st_size:>9}]  " if p.is_file() else ""
                print(f"{prefix}{'└── ' if last else '├── '}{size}{p.name}")
                if p.is_dir():
                    show_tree(p, prefix + ("    " if last else "│   "))


        print(layout.path.name)
        show_tree(layout.path)
        print()
        reference(f"tree -s {L}")
        reference(f"find {L} -type f")
        """
    ),
    md(
        """
        ## 2 · `oci-layout`

        A tiny JSON file. Its `imageLayoutVersion` tells a reader which version of the layout
        rules the directory follows; ocilearn refuses anything but `1.0.x`
        (`ImageLayout.open` raises `LayoutError` otherwise).
        """
    ),
    code(
        """
        raw = (layout.path / "oci-layout").read_bytes()
        print("bytes:", raw)
        print("parsed:", json.loads(raw))
        reference(f"cat {L}/oci-layout")
        """
    ),
    md(
        """
        ## 3 · `index.json`: ref names → descriptors

        `index.json` is an **image index** (image-spec `image-index.md`). Each entry of
        `manifests` is a **descriptor**: a media type, a digest and a size in bytes — enough to
        find a blob *and to check it*. The annotation `org.opencontainers.image.ref.name` is the
        **ref name** (the `:latest` in `oci:image:latest`).
        """
    ),
    code(
        """
        index_bytes = (layout.path / "index.json").read_bytes()
        print(json.dumps(json.loads(index_bytes), indent=2))
        print()
        print("ocilearn's view of the refs:")
        for name, desc in layout.refs().items():
            print(f"  {name:12} {desc.kind:9} {desc.digest}  {desc.size} bytes  {desc.media_type}")
        print()
        reference(f"jq . {L}/index.json")
        reference(f"umoci ls --layout {L}")
        """
    ),
    md(
        """
        ## 4 · The manifest the ref points to

        `layout.resolve(REF)` follows the descriptor. If it points at another image index
        (a multi-platform image), it picks the entry for this machine's platform and goes on,
        until it reaches an **image manifest** (`manifest.md`). `image.path` is the route taken.
        The manifest is read *verified*: its bytes must hash to the digest in the descriptor.
        """
    ),
    code(
        """
        image = layout.resolve(REF)
        for hop in image.path:
            plat = f" for {hop.platform}" if hop.platform else ""
            print(f"{hop.kind:9} {hop.digest}{plat}")
        manifest_bytes = layout.read_blob(image.descriptor)
        print()
        print(json.dumps(json.loads(manifest_bytes), indent=2))
        reference(f"jq . {L}/blobs/sha256/{image.digest.encoded}", limit=12)
        reference(f"skopeo inspect --raw oci:{L}:{REF}", limit=12)
        """
    ),
    md(
        """
        ### The config and layer descriptors

        The manifest's `config` descriptor points at the **image config** (what to run, for
        which platform, which layers in which order); `layers` lists the filesystem changesets,
        base first.
        """
    ),
    code(
        """
        rows = [("config", image.manifest.config)] + [(f"layer {i}", d) for i, d in enumerate(image.manifest.layers, 1)]
        print(f"{'':9} {'size (bytes)':>13}  {'digest':73} media type")
        for name, d in rows:
            print(f"{name:9} {d.size:>13}  {str(d.digest):73} {d.media_type}")
        """
    ),
    md(
        """
        ## 5 · Digests, recomputed three ways

        A blob's file name is the sha256 of its bytes (image-spec `descriptor.md`, "Digests").
        Nothing else ties a blob to its name, so every reader must **recompute** it: by hand
        with `hashlib`, with the library, with `sha256sum`.
        """
    ),
    code(
        """
        by_hand = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
        by_library = Digest.of_file(layout.blob_path(image.digest))
        print("descriptor says :", image.digest)
        print("hashlib         :", by_hand)
        print("Digest.of_file  :", by_library)
        assert by_hand == str(image.digest) == str(by_library)
        reference(f"sha256sum {L}/blobs/sha256/{image.digest.encoded}")
        """
    ),
    md(
        """
        What if one byte changes? Below, a copy of the manifest's bytes gets one bit flipped
        and goes through `verify_bytes`, the check every read in ocilearn makes. The file on
        disk is not touched.
        """
    ),
    code(
        """
        from ocilearn.image.digest import verify_bytes
        from ocilearn.core.errors import DigestMismatch

        tampered = bytearray(manifest_bytes)
        tampered[10] ^= 0x01
        try:
            verify_bytes(bytes(tampered), image.digest, image.descriptor.size, source="tampered manifest")
        except DigestMismatch as e:
            print("DigestMismatch:", e)
        print("layout still fine:", layout.fsck())
        """
    ),
    md(
        """
        A digest string comes from a document — `index.json`, a manifest, a registry — and
        ocilearn turns it into a file name (`blobs/sha256/<hex>`) and a URL. A hostile document
        could name the "digest" `sha256:../../etc/passwd`. So before any use,
        `layout.blob_path(...)` goes through `Digest.parse`, which splits the string at the
        first `:` and builds a `Digest`; building one runs `_validate` against the grammar of
        image-spec `descriptor.md`:

        - the algorithm: lowercase letters and digits, parts joined by `+ . _ -`;
        - the encoded part: letters, digits, `=`, `_`, `-` only — no `/`, no `.`;
        - for the registered `sha256` (`sha512`): exactly 64 (128) lowercase hex characters.

        (Tools that skipped this check had path-traversal bugs, e.g. CVE-2024-3727 in
        containers/image; it is case C16 of the course's hostile inputs.) The regular
        expressions and the check:
        """
    ),
    code(
        """
        from ocilearn.image import digest as digest_module

        print("algorithm   :", digest_module._ALGORITHM.pattern)
        print("encoded     :", digest_module._ENCODED.pattern)
        print("registered  :", digest_module.REGISTERED, "lowercase hex:", digest_module._HEX.pattern)
        ocilearn.show_source(digest_module._validate)
        """
    ),
    md(
        """
        And what it does to hostile digest strings — none of them ever reaches the file system:
        """
    ),
    code(
        """
        from ocilearn.core.errors import InvalidDigest

        for bad in ("sha256:../../etc/passwd", "sha256/../../x:abc", "sha256:1234"):
            try:
                layout.blob_path(bad)
                print(f"{bad!r}: accepted?!")
            except InvalidDigest as e:
                print(f"refused: {e}")
        print("accepted:", layout.blob_path(image.digest).relative_to(layout.path))
        """
    ),
    md(
        """
        ## 6 · The image config

        The config (image-spec `config.md`) says which platform the image is for, how to run
        it (`Entrypoint`, `Cmd`, `Env`, `User`, `WorkingDir` …), and lists the **diff IDs**:
        the sha256 of each layer *uncompressed*.
        """
    ),
    code(
        """
        config = layout.image_config(image)
        print("platform :", config.platform)
        print("created  :", config.created)
        c = config.config
        if c is not None:
            for field in ("entrypoint", "cmd", "env", "user", "working_dir", "exposed_ports", "stop_signal"):
                print(f"{field:12}:", getattr(c, field))
        print("diff_ids :")
        for d in config.diff_ids:
            print("   ", d)
        reference(f"skopeo inspect --config oci:{L}:{REF}", limit=20)
        """
    ),
    md(
        """
        ## 7 · Layer digest vs diff ID

        The layer *blob* is compressed (`tar+gzip` or `tar+zstd`): the manifest's digest is the
        sha256 of the **compressed** bytes (what travels and what is stored). The config's
        diff ID is the sha256 of the **uncompressed tar** (what the filesystem is made of).
        Below, the smallest layer is decompressed while hashing, by hand.
        """
    ),
    code(
        """
        import gzip

        from ocilearn.image import mediatypes as mt

        i, layer = min(enumerate(image.manifest.layers), key=lambda x: x[1].size)
        compression = mt.layer_compression(layer.media_type)
        h = hashlib.sha256()
        with layout.open_blob(layer) as blob:  # verified against the layer digest while read
            if compression == "gzip":
                stream = gzip.GzipFile(fileobj=blob)
            elif compression == "zstd":
                import zstandard

                stream = zstandard.ZstdDecompressor().stream_reader(blob)
            else:
                stream = blob
            while chunk := stream.read(1 << 20):
                h.update(chunk)
        print(f"layer {i + 1} ({compression})")
        print("  digest (compressed)   :", layer.digest)
        print("  sha256 of the tar     : sha256:" + h.hexdigest())
        print("  config's diff_ids[%d]  : %s" % (i, config.diff_ids[i]))
        assert "sha256:" + h.hexdigest() == str(config.diff_ids[i])
        """
    ),
    md(
        """
        ## 8 · ocilearn inspect vs skopeo inspect

        `ocilearn inspect oci:PATH:REF` prints the same document as `skopeo inspect`.
        (`Digest` is the digest of what the ref names — for a multi-platform image, the index.)
        """
    ),
    code(
        """
        from ocilearn.cli.image import inspect_image

        ours = inspect_image(layout, REF)
        print(json.dumps(ours, indent=2)[:1500])
        if shutil.which("skopeo"):
            p = subprocess.run(["skopeo", "inspect", f"oci:{layout.path}:{REF}"], capture_output=True, text=True)
            if p.returncode == 0:
                theirs = json.loads(p.stdout)
                print("\\nskopeo inspect gives the same document:", theirs == ours)
                for key in sorted(set(theirs) | set(ours)):
                    if theirs.get(key) != ours.get(key):
                        print(f"  differs in {key}: skopeo {theirs.get(key)!r}, ocilearn {ours.get(key)!r}")
            else:
                print("\\nskopeo inspect failed:", p.stderr.strip())
        else:
            print("\\n(skopeo is not installed here; on Debian: apt-get install skopeo)")
        """
    ),
    md(
        """
        ## 9 · The whole image as a graph

        index.json → (image index →) manifest → config + layers. Each box shows the kind, the
        short digest (first 12 hex characters, as `docker images` shows them), the size and the
        platform or ref name. Arrows are descriptors.
        """
    ),
    code(
        """
        from ocilearn.views import graph

        graph.draw(layout)
        """
    ),
    md(
        """
        How does `resolve` choose a platform in a multi-platform index? Same OS and
        architecture, then the CPU **variant**: the exact variant first, then older compatible
        ones (an `arm/v7` machine also runs `arm/v6`), an entry without a variant last; an
        entry without any platform only as a last resort. (Getting this wrong pulls a binary
        the CPU cannot run — case C18 of the course's hostile inputs.)
        """
    ),
    code(
        """
        from ocilearn.image import layout as layout_module

        ocilearn.show_source(layout_module._platform_rank)
        """
    ),
    md(
        """
        ## 9b · Pull it yourself: the HTTP behind `skopeo copy docker://…`

        A registry speaks the OCI **distribution-spec** over HTTP. A pull is a handful of
        requests: `GET /v2/` (ping; a registry with auth answers `401` and a
        `WWW-Authenticate` challenge, then a token is fetched), `GET /v2/NAME/manifests/TAG`
        with an `Accept` header listing the manifest and index media types, then
        `GET /v2/NAME/blobs/DIGEST` for the config and each layer — every one verified
        against its digest before it lands in the layout.

        If you set `IMAGE = "docker://…"` above, the table below is the real exchange of
        that pull. Otherwise, when Debian's `docker-registry` (the reference registry,
        distribution 2.8) is installed, this cell starts one on `127.0.0.1`, pushes the image
        into it with ocilearn, and pulls it back — all on this machine, offline.
        With a network, try `IMAGE = "docker://docker.io/library/busybox:latest"`.
        """
    ),
    code(
        """
        import socket
        import time

        import requests

        from ocilearn.distribution import copy as transfer


        def local_registry(storage: Path):
            \"\"\"Start Debian's docker-registry on a free 127.0.0.1 port; returns (process, 'host:port').\"\"\"
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            config = storage / "config.yml"
            config.write_text(
                "version: 0.1\\nlog: {level: error}\\n"
                f"storage: {{filesystem: {{rootdirectory: {storage}}}}}\\n"
                f"http: {{addr: 127.0.0.1:{port}}}\\n"
            )
            proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(100):
                try:
                    if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                        return proc, f"127.0.0.1:{port}"
                except requests.ConnectionError:
                    time.sleep(0.1)
            proc.kill()
            raise RuntimeError("docker-registry did not start")


        if PULL is None and shutil.which("docker-registry"):
            (WORK / "registry").mkdir(exist_ok=True)
            proc, host = local_registry(WORK / "registry")
            try:
                transfer.copy(f"oci:{layout.path}:{REF}", f"docker://{host}/course/image:latest", all_platforms=True)
                print(f"$ skopeo copy --src-tls-verify=false docker://{host}/course/image:latest oci:pulled:latest")
                with explain.recording() as pull_steps:
                    PULL = transfer.copy(f"docker://{host}/course/image:latest", f"oci:{WORK / 'pulled'}:latest", quiet=False)
            finally:
                proc.terminate()
                proc.wait(timeout=10)
        if PULL is None:
            print("No registry here: install docker-registry (apt-get install docker-registry) or set IMAGE = 'docker://…'.")
        else:
            print("pulled manifest", PULL.digest, f"({len(PULL.copied)} blobs, {PULL.bytes} bytes, {PULL.seconds:.2f} s)")
        """
    ),
    code(
        """
        # method, URL, status, bytes and the key headers of every request (secrets redacted)
        PULL.exchanges if PULL is not None else None
        """
    ),
    md(
        """
        ## 10 · What can go wrong

        Real errors, on a scratch copy of the embedded image (your layout is not touched):

        1. a ref name that is not in `index.json` — `RefNotFound` lists the refs there are;
        2. one flipped bit in a layer blob — `fsck` reads every reachable blob and names the
           corrupt one; `ocilearn layout fsck` exits with status 1. Fix: fetch the image again
           (`skopeo copy` / `ocilearn copy`); the digest says exactly which blob is wrong;
        3. an `oci-layout` of another version — refused on open.
        """
    ),
    code(
        """
        from ocilearn.core.errors import LayoutError, RefNotFound

        scratch = embedded.copy_to(WORK / "scratch")
        try:
            scratch.resolve("no-such-tag")
        except RefNotFound as e:
            print("1.", type(e).__name__ + ":", e)

        victim = scratch.resolve("latest").manifest.layers[0]
        blob = scratch.blob_path(victim.digest)
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0x01
        blob.write_bytes(bytes(data))
        print("2.", scratch.fsck())
        p = subprocess.run([sys.executable, "-m", "ocilearn", "layout", "fsck", str(scratch.path)], capture_output=True, text=True)
        print("   $ ocilearn layout fsck scratch   → exit status", p.returncode)

        (scratch.path / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}')
        try:
            ImageLayout.open(scratch.path)
        except LayoutError as e:
            print("3.", type(e).__name__ + ":", e)
        """
    ),
    md(
        """
        ## 11 · Exercises

        Each exercise has a variable to fill in; the check cell below it tells you whether you
        got it. (Unanswered exercises just print a hint.)

        **Exercise 1.** Compute the sha256 digest of the **image config** blob yourself with
        `hashlib` (read the file under `blobs/sha256/`) and write it as `"sha256:…"`.
        """
    ),
    code("ANSWER_1 = None  # e.g. \"sha256:\" + hashlib.sha256(Path(...).read_bytes()).hexdigest()"),
    code(
        """
        def check_1(answer):
            want = str(image.manifest.config.digest)
            if answer is None:
                return "not answered yet: the config's descriptor is in the manifest (section 4)"
            if not isinstance(answer, (str, Digest)):
                return f"not quite: write the digest as a string 'sha256:…' (or a Digest) — you gave {answer!r}"
            got = str(answer).strip()
            if got == want:
                return f"correct: {want} — the file name and the content agree"
            if got == want.partition(":")[2]:
                return "almost: that is the hex part — prefix it with 'sha256:'"
            return "not quite: hash the bytes of blobs/sha256/<config digest hex>, and prefix 'sha256:'"


        print(check_1(ANSWER_1))
        """
    ),
    md(
        """
        **Exercise 2.** How many bytes does this image weigh **in the layout**, counting the
        manifest, the config and every layer blob (the sizes in their descriptors)?
        """
    ),
    code("ANSWER_2 = None  # an int, in bytes"),
    code(
        """
        def check_2(answer):
            want = image.descriptor.size + image.manifest.config.size + sum(d.size for d in image.manifest.layers)
            if answer is None:
                return "not answered yet: add the 'size' of the manifest's descriptor, its config and its layers"
            if isinstance(answer, str):
                if answer.strip().isdigit():
                    return f"almost: write the number without quotes — ANSWER_2 = {answer.strip()}, not {answer!r}"
                return "not quite: the answer is a number of bytes, an int"
            if isinstance(answer, bool) or not isinstance(answer, (int, float)):
                return f"not quite: the answer is a number of bytes, an int — not a {type(answer).__name__}"
            if answer == want:
                return f"correct: {want} bytes"
            return f"not quite: you are {'over' if answer > want else 'under'} — sizes are in bytes, see sections 3 and 4"


        print(check_2(ANSWER_2))
        """
    ),
    md(
        """
        ## Next

        **[02-blobs](02-blobs.ipynb)** opens the blobs of a layout like this one: the manifest
        and config by hand, each layer's tar listed like `tar -tvf`, diff IDs and chain IDs
        recomputed, and whiteouts — a layer written by hand that deletes files — applied layer
        by layer. (The registry pull is section 9b above; `IMAGE = "docker://…"` works in every
        notebook.)
        """
    ),
    md(
        """
        ## Clean up

        This notebook made a work directory in `/tmp` (section 0): the layout, the scratch
        copy of section 10 and the local registry's storage of section 9b. **It is removed when
        the kernel stops** (*Kernel ▸ Shut Down Kernel*, *Restart Kernel*, or stopping
        JupyterLab): section 0 registered the removal with Python's `atexit`. *Run All*
        therefore deletes nothing, and the exercises above keep working after it. To remove the
        directory now, run `remove_tree(WORK)` in a cell. A layout you opened with
        `IMAGE = "oci:…"` is outside it and stays untouched.
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
    print(write("01-image-layout.ipynb", cells))
