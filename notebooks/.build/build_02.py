"""Generate notebooks/02-blobs.ipynb: run ``.venv/bin/python notebooks/.build/build_02.py``."""

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
        # IMAGE = "oci:/path/to/layout:ref" copies that image layout into the work dir (it is not modified).
        # IMAGE = "docker://127.0.0.1:5000/debian:bookworm" pulls an image into the work dir first.
        IMAGE = None
        """
    ),
    md(
        """
        # 02 · Opening the blobs: manifest, config, layers

        In the hands-on path, after `skopeo copy` the image is a directory of blobs, and the
        article opens them by hand:

        ```
        cat busybox/index.json | jq                 # which manifest is "latest"?
        cat busybox/blobs/sha256/<manifest> | jq    # config + layers
        cat busybox/blobs/sha256/<config> | jq      # how to run it, diff_ids
        tar -tvzf busybox/blobs/sha256/<layer>      # what files a layer holds
        ```

        **What you will learn**
        - to walk index → manifest → config → layers yourself, checking each digest;
        - that a layer is a (compressed) **tar changeset**, and how to list one like `tar -tvf`,
          with **whiteouts** (`.wh.NAME`) and **opaque whiteouts** (`.wh..wh..opq`) marked;
        - what a **diff ID** is (sha256 of the *uncompressed* tar) and a **chain ID**;
        - what each layer **adds, changes and deletes**, and how the rootfs looks after each one.

        Every step below is done twice: once by hand with `json`, `hashlib`, `gzip` and
        `tarfile`, once with `ocilearn` — and the two must agree.
        """
    ),
    code(
        """
        import atexit
        import gzip
        import hashlib
        import io
        import json
        import os
        import shutil
        import tarfile
        import tempfile
        from pathlib import Path

        import ocilearn
        from ocilearn.image import embedded
        from ocilearn.core import explain
        from ocilearn.layer.apply import apply_layer
        from ocilearn.layer.listing import list_layer
        from ocilearn.layer.snapshot import rootfs_after_each_layer
        from ocilearn.layer.tar import detect_compression, diff_id_of
        from ocilearn.layer.whiteout import apply_opaque_whiteout, apply_whiteout
        from ocilearn.views.rootfs import RootfsBrowser
        from ocilearn.image import mediatypes as mt
        from ocilearn.image.digest import Digest
        from ocilearn.image.layout import ImageLayout, parse_oci_ref
        from ocilearn.image.model import chain_ids
        from ocilearn.bundle.unpack import remove_tree

        WORK = Path(tempfile.mkdtemp(prefix="ocilearn-02-"))
        atexit.register(remove_tree, WORK)  # removed when this kernel stops (see "Clean up" at the end)
        if IMAGE is None:
            layout = embedded.copy_to(WORK / "image")
            REF = "latest"
        elif IMAGE.startswith("oci:"):
            src, REF = parse_oci_ref(IMAGE)
            shutil.copytree(src, WORK / "image")
            layout = ImageLayout.open(WORK / "image")
        else:  # docker://HOST/NAME:TAG — pulled as in notebook 01, section 9b
            from ocilearn.distribution import copy as transfer

            transfer.copy(IMAGE, f"oci:{WORK / 'image'}:course", quiet=False)
            layout = ImageLayout.open(WORK / "image")
            REF = "course"
        # section 6 writes a layer by hand on top of the small embedded image (its listing fits a screen)
        small = layout if IMAGE is None else embedded.copy_to(WORK / "small")
        print("work dir:", WORK)
        print("image layout:", layout.path, "ref:", REF)
        """
    ),
    md(
        """
        ## 1 · index.json → the manifest, by hand

        `index.json` lists manifests by **descriptor**: media type, digest, size, and the
        ref name annotation. The digest is the blob's file name under `blobs/sha256/`.
        """
    ),
    code(
        """
        index = json.loads((layout.path / "index.json").read_text())
        entry = next(d for d in index["manifests"] if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == REF)
        print(json.dumps(entry, indent=2))

        algo, hexpart = entry["digest"].split(":")
        manifest_bytes = (layout.path / "blobs" / algo / hexpart).read_bytes()
        assert len(manifest_bytes) == entry["size"]
        assert "sha256:" + hashlib.sha256(manifest_bytes).hexdigest() == entry["digest"]   # the name IS the content
        manifest = json.loads(manifest_bytes)
        if manifest.get("mediaType") == mt.OCI_INDEX or "manifests" in manifest:
            # an image index (several platforms): take this machine's, as ocilearn does
            image = layout.resolve(REF)
            manifest_bytes = layout.read_blob(image.descriptor)
            manifest = json.loads(manifest_bytes)
        print(json.dumps(manifest, indent=2))
        """
    ),
    md(
        """
        ## 2 · The image config, by hand

        The manifest's `config` descriptor names the **image config**: the platform, how to
        run the image (`config.Entrypoint`, `Cmd`, `Env`, `User`, `WorkingDir`), the history,
        and `rootfs.diff_ids` — one digest per layer, of the layer's **uncompressed** tar.
        """
    ),
    code(
        """
        cdesc = manifest["config"]
        config_bytes = (layout.path / "blobs" / "sha256" / cdesc["digest"].split(":")[1]).read_bytes()
        assert "sha256:" + hashlib.sha256(config_bytes).hexdigest() == cdesc["digest"]
        config = json.loads(config_bytes)
        print(json.dumps({k: config[k] for k in ("architecture", "os", "config", "rootfs") if k in config}, indent=2))
        """
    ),
    md(
        """
        ## 3 · The layers: compression from the magic bytes

        A layer's media type says how it is compressed (`…tar+gzip`, `…tar+zstd`, `…tar`),
        but `ocilearn` trusts the **bytes**: `1f 8b` is gzip, `28 b5 2f fd` zstd, anything
        else a plain tar — and warns when they disagree (real registries hold mislabelled
        layers).
        """
    ),
    code(
        """
        for i, d in enumerate(manifest["layers"]):
            blob = layout.path / "blobs" / "sha256" / d["digest"].split(":")[1]
            with open(blob, "rb") as f:
                head = f.read(4)
            print(f"layer {i}: {d['mediaType']}\\n   {d['size']:>10} bytes  first bytes {head.hex(' ')} → {detect_compression(head)}")
        """
    ),
    md(
        """
        ## 4 · A layer listed like `tar -tvf`

        `list_layer` reads a blob once: it checks the blob digest, decompresses,
        lists the tar entries and recomputes the diff ID. Each line looks like `tar -tvf`'s:
        the first character is the entry's type — `-` file, `d` directory, `l` symlink,
        `h` hard link, `c`/`b` character/block device, `p` FIFO, as in `tar` — plus two letters
        of ocilearn's own: `w` a **whiteout** and `o` an **opaque whiteout** (section 6; for
        `tar` they are plain empty files, shown as `-`). Every layer is listed (and verified) here; the first 15 lines of the base layer are
        printed — a real base layer has thousands of entries. The `explain` table shows the
        real steps and the equivalent commands.
        """
    ),
    code(
        """
        image = layout.resolve(REF)
        img_config = layout.image_config(image)
        layer_entries = []  # one list of LayerEntry per layer, base first
        with explain.recording() as steps:
            for i, (d, did) in enumerate(zip(image.manifest.layers, img_config.diff_ids)):
                with layout.open_blob(d) as f:
                    layer_entries.append(list_layer(f, d.media_type, diff_id=did, source=f"layer {i}"))
        first, entries = image.manifest.layers[0], layer_entries[0]
        for e in entries[:15]:
            print(e.tar_line())
        print(f"… {len(entries)} entries in layer 0;", ", ".join(f"layer {i}: {len(es)}" for i, es in enumerate(layer_entries[1:], 1)) or "no other layer")
        steps
        """
    ),
    code(
        """
        # the same with GNU tar, when it is installed
        import subprocess

        if shutil.which("tar"):
            blob = layout.blob_path(first.digest)
            print(f"$ tar -tvf blobs/sha256/{first.digest.encoded[:12]}…")
            out = subprocess.run(["tar", "-tvf", str(blob)], capture_output=True, text=True).stdout.splitlines()
            print("\\n".join(out[:8]))
            print(f"… {len(out)} lines from tar, {len(entries)} entries from ocilearn")
            assert len(out) == len(entries)
        """
    ),
    md(
        """
        ## 5 · Diff IDs and chain IDs, recomputed

        - **diff ID** = sha256 of the *uncompressed* tar (so it does not change when a
          registry recompresses the layer);
        - **chain ID** names a *stack* of layers: `ChainID(L0) = DiffID(L0)`,
          `ChainID(L0…Ln) = sha256(ChainID(L0…Ln-1) + " " + DiffID(Ln))` (image-spec
          config.md). A runtime can cache "the rootfs after these layers" under it.

        By hand: open the blob, pick the decompressor from its first bytes, hash what comes
        out in 1 MiB chunks (a base layer can be hundreds of MB uncompressed).
        """
    ),
    code(
        """
        def diff_id_by_hand(path):
            with open(path, "rb") as f:
                kind = detect_compression(f.read(4))
                f.seek(0)
                if kind == "gzip":
                    stream = gzip.GzipFile(fileobj=f)
                elif kind == "zstd":
                    import zstandard

                    stream = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
                else:
                    stream = f
                h = hashlib.sha256()
                while chunk := stream.read(1 << 20):
                    h.update(chunk)
            return "sha256:" + h.hexdigest()


        by_hand = [diff_id_by_hand(layout.blob_path(d.digest)) for d in image.manifest.layers]
        with_ocilearn = []
        for d in image.manifest.layers:
            with layout.open_blob(d) as f:
                with_ocilearn.append(str(diff_id_of(f, d.media_type)))
        print("config says:   ", [str(x) for x in img_config.diff_ids])
        print("by hand:       ", by_hand)
        print("ocilearn:      ", with_ocilearn)
        assert by_hand == with_ocilearn == [str(x) for x in img_config.diff_ids]

        chains, prev = [], None
        for did in by_hand:
            prev = did if prev is None else "sha256:" + hashlib.sha256(f"{prev} {did}".encode()).hexdigest()
            chains.append(prev)
        assert chains == [str(c) for c in chain_ids(img_config.diff_ids)]
        print("chain IDs:     ", chains)
        """
    ),
    md(
        """
        ## 6 · A layer that deletes: whiteouts

        A layer cannot "contain a deletion" as such — a tar only holds files. So image-spec
        `layer.md` uses marker files:

        - `DIR/.wh.NAME` deletes `NAME` of the **lower** layers;
        - `DIR/.wh..wh..opq` (an **opaque whiteout**) hides *everything* the lower layers
          had in `DIR` — but never what this same layer puts there, whatever the tar order.

        In the listings they have the type letter `w` (whiteout) and `o` (opaque whiteout) and
        a note in brackets saying what they remove. First, the markers already in *this*
        image's layers (from the listings of section 4; at most 8 per layer). A single-layer
        image such as the embedded one has none: there is nothing below its base layer to
        delete.

        To see real ones, run this notebook on the course's **debian test image** (3 layers:
        `rm /etc/motd` → `etc/.wh.motd`, `rm -rf /etc/skel` → per-file whiteouts, and an opaque
        whiteout in `/etc/update-motd.d`). As root, `scripts/build-test-images.sh` (what
        `make test` runs) builds it into `.cache/images/debian` of the checkout; then set
        `IMAGE = "oci:../.cache/images/debian:bookworm"` in the parameters cell (the path is
        relative to this notebook's folder) and run the notebook again. Pushed to a registry,
        it works as `IMAGE = "docker://127.0.0.1:5000/debian:bookworm"` too (the README's
        *For instructors* shows how to start a registry on loopback and push with
        `skopeo copy`).
        """
    ),
    code(
        """
        for i, es in enumerate(layer_entries):
            marks = [e for e in es if e.type in ("whiteout", "opaque")]
            n_opaque = sum(e.type == "opaque" for e in marks)
            print(f"layer {i}: {len(es)} entries, {len(marks) - n_opaque} whiteouts, {n_opaque} opaque whiteouts")
            for e in marks[:8]:
                print("   ", e.tar_line())
            if len(marks) > 8:
                print(f"    … {len(marks) - 8} more")
        """
    ),
    md(
        """
        Now let us write such layers ourselves (with `tarfile`), store them as blobs and make a
        new image `edited` = the small embedded busybox image (whatever `IMAGE` is: its file
        tree fits a screen) + two layers of our own:

        1. **the app's files**: `/home/app` is empty in the base layer, so this layer puts
           `app.conf` and a `cache/` directory there (what a `COPY` in a Dockerfile makes);
        2. **the edit**: adds `/etc/motd`, deletes one busybox applet with a whiteout, and puts
           an opaque whiteout in `/home/app` — which hides layer 1's files — next to a new
           `notes.txt` of its own.

        That is exactly what `docker build` does for `COPY …` and then `RUN rm …`.
        """
    ),
    code(
        """
        def tar_of(entries):
            \"\"\"An uncompressed tar of (name, data): bytes = a file, None = a directory, a str = a symlink to it.\"\"\"
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
                for name, data in entries:
                    ti = tarfile.TarInfo(name)
                    ti.mtime = 1735689600
                    if data is None:
                        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                        tf.addfile(ti)
                    elif isinstance(data, str):
                        ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, data, 0o777
                        tf.addfile(ti)
                    else:
                        ti.size, ti.mode = len(data), 0o644
                        tf.addfile(ti, io.BytesIO(data))
            return buf.getvalue()


        base_image = small.resolve("latest")
        base_manifest = json.loads(small.read_blob(base_image.descriptor))
        base_config = json.loads(small.read_blob(base_image.manifest.config))
        with small.open_blob(base_image.manifest.layers[0]) as f:
            lower_paths = {e.path for e in list_layer(f, base_image.manifest.layers[0].media_type)}
        victim = next(p for p in sorted(lower_paths) if p.startswith("bin/") and p.count("/") == 1 and p not in ("bin/sh", "bin/busybox"))
        opaque_dir = "home/app" if "home/app" in lower_paths else "tmp"
        app = tar_of([                                                      # layer 1: the app's files
            (f"{opaque_dir}/app.conf", b"color = blue\\n"),
            (f"{opaque_dir}/cache", None),
            (f"{opaque_dir}/cache/old.log", b"stale\\n"),
        ])
        edit = tar_of([                                                     # layer 2: the edit
            ("etc/motd", b"welcome to the edited image\\n"),                 # added
            (f"{victim.rpartition('/')[0]}/.wh.{victim.rpartition('/')[2]}", b""),   # deletes a lower file
            (f"{opaque_dir}/notes.txt", b"only file left here\\n"),           # this layer's own child …
            (f"{opaque_dir}/.wh..wh..opq", b""),                             # … listed BEFORE the opaque marker: it survives
        ])
        new_layers, diff_ids, blobs = list(base_manifest["layers"]), list(base_config["rootfs"]["diff_ids"]), []
        for tar_bytes in (app, edit):
            blob = gzip.compress(tar_bytes, mtime=0)
            digest, size = small.put_blob(blob)
            blobs.append(blob)
            new_layers.append({"mediaType": mt.OCI_LAYER_GZIP, "digest": str(digest), "size": size})
            diff_ids.append("sha256:" + hashlib.sha256(tar_bytes).hexdigest())  # diff ID: sha256 of the uncompressed tar

        new_config = dict(base_config)
        new_config["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
        new_config["history"] = base_config.get("history", []) + [
            {"created_by": "notebook 02: the app's files"}, {"created_by": "notebook 02: edit layer with whiteouts"}]
        cdesc2 = small.put_json(mt.OCI_CONFIG, json.dumps(new_config).encode())
        new_manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": cdesc2.to_dict(), "layers": new_layers}
        mdesc = small.put_json(mt.OCI_MANIFEST, json.dumps(new_manifest).encode())
        small.add_ref("edited", mdesc)

        for title, blob in zip(("layer 1, the app's files:", "layer 2, the edit:"), blobs):
            print(title)
            for e in list_layer(io.BytesIO(blob), mt.OCI_LAYER_GZIP):
                print("  ", e.tar_line())
        """
    ),
    md(
        """
        ## 7 · What each layer adds, changes and deletes

        `rootfs_after_each_layer` applies the layers one by one into a scratch rootfs —
        safely: every path is resolved *inside* the rootfs, symlinks included — and compares
        the tree before and after each layer.
        """
    ),
    code(
        """
        with explain.recording() as steps:
            states = rootfs_after_each_layer(small, "edited", work=WORK / "scratch")
        for title, snap, changes in states:
            print(f"{title}: {len(snap) - 1} paths; added {len(changes['added'])}, changed {len(changes['changed'])}, deleted {len(changes['deleted'])}")
        title, snap, changes = states[-1]
        # the last layer's deletions, split by the marker that made them
        hidden = [p for p in changes["deleted"] if p.startswith(f"/{opaque_dir}/")]
        whited = [p for p in changes["deleted"] if p not in hidden]
        print("\\nlast layer added:  ", changes["added"])
        print("last layer changed:", changes["changed"])
        print("last layer deleted:", whited, "by its whiteout, and", hidden, f"by its opaque whiteout in /{opaque_dir}")
        print(f"/{opaque_dir} now holds:", sorted(p for p in snap if p.startswith(f"/{opaque_dir}/")))
        assert "/" + victim in changes["deleted"] and "/etc/motd" in changes["added"]
        assert hidden == [f"/{opaque_dir}/app.conf", f"/{opaque_dir}/cache", f"/{opaque_dir}/cache/old.log"]
        assert sorted(p for p in snap if p.startswith(f"/{opaque_dir}/")) == [f"/{opaque_dir}/notes.txt"]
        steps
        """
    ),
    md(
        """
        The code that applies both markers, one click away. A plain whiteout removes one path;
        an opaque whiteout removes every child of its directory that a *lower* layer made
        (`own` holds what this layer created, so the tar order does not matter).
        A *degenerate* whiteout — `.wh.` alone, `.wh..` or `.wh...`, naming no child, the
        directory itself or its parent — is ignored with a warning instead of deleting a
        directory it does not name.
        """
    ),
    code(
        """
        ocilearn.show_source(apply_whiteout)
        ocilearn.show_source(apply_opaque_whiteout)
        """
    ),
    md(
        """
        ## 8 · Browse the rootfs after each layer

        Pick a layer: `+` marks what it added, `~` what it changed, and the paths it deleted
        are listed at the bottom. Below it, `ocilearn.views.widgets.LayerBrowser` shows the layers'
        own entries (the tar contents) with their whiteouts.
        """
    ),
    code(
        """
        browser = RootfsBrowser(states)
        browser
        """
    ),
    code(
        """
        # the same browser, driven from code (what clicking the dropdown does)
        text = browser.show(len(states) - 1)
        print("\\n".join(line for line in text.splitlines() if line.startswith(("+", "~", "deleted"))))
        assert "+ etc/" not in text and "+   motd" in text
        """
    ),
    code(
        """
        from ocilearn.views import widgets

        layers_view = widgets.LayerBrowser.from_layout(small, "edited")
        layers_view
        """
    ),
    md(
        """
        ## 9 · What can go wrong

        **A layer that is not the one the config promised.** The image config lists one diff ID
        per layer; a layer edited after the config was written (or swapped, or corrupted inside
        a still-valid gzip) no longer hashes to it. Below, a new image `bad-diffid` on the
        embedded base: its manifest names a layer honestly (the blob's digest is right), but
        the config promises the diff ID of *another* tar. `unpack` (notebook 03) recomputes
        every diff ID while it applies the layers, refuses the image, and leaves no bundle
        behind. The fix is on the image's side: rebuild it, or correct `rootfs.diff_ids`
        (and with it the config's digest in the manifest).
        """
    ),
    code(
        """
        from ocilearn.core.errors import OcilearnError
        from ocilearn.bundle.unpack import unpack

        promised = tar_of([("etc/motd", b"hello\\n")])                                   # what the config says
        shipped = tar_of([("etc/motd", b"hello, edited after the config was written\\n")])  # what the layer holds
        digest, size = small.put_blob(gzip.compress(shipped, mtime=0))
        bad_config = dict(base_config)
        bad_config["rootfs"] = {"type": "layers", "diff_ids": base_config["rootfs"]["diff_ids"] + ["sha256:" + hashlib.sha256(promised).hexdigest()]}
        bad_manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                        "config": small.put_json(mt.OCI_CONFIG, json.dumps(bad_config).encode()).to_dict(),
                        "layers": base_manifest["layers"] + [{"mediaType": mt.OCI_LAYER_GZIP, "digest": str(digest), "size": size}]}
        small.add_ref("bad-diffid", small.put_json(mt.OCI_MANIFEST, json.dumps(bad_manifest).encode()))
        try:
            unpack(f"{small.path}:bad-diffid", WORK / "bad-bundle")
        except OcilearnError as e:
            print(f"{type(e).__name__}: {e}")
        print("bundle left behind:", (WORK / "bad-bundle").exists())
        """
    ),
    md(
        """
        **A layer that climbs out.** A tar entry is just a name: `../escape.txt`, `/abs.txt`,
        or `host/escape2.txt` after a symlink `host -> /`. An unpacker that joins names to the
        rootfs path with `os.path.join` and lets the kernel follow symlinks writes such files
        *outside* the rootfs — above it, or anywhere on the host (a real class of bugs; case
        C02 of the course's hostile inputs). `ocilearn` resolves every name *inside* the
        rootfs, symlinks included (as `openat2(RESOLVE_IN_ROOT)` does): `..` stops at the
        rootfs's `/`, and a symlink's target is read as if the rootfs were `/`. So all three
        files land inside it.
        """
    ),
    code(
        """
        hostile = tar_of([("../escape.txt", b"1\\n"), ("/abs.txt", b"2\\n"), ("host", "/"), ("host/escape2.txt", b"3\\n")])
        for e in list_layer(io.BytesIO(hostile)):
            print(e.tar_line())
        rootfs = WORK / "hostile-rootfs"
        rootfs.mkdir()
        apply_layer(rootfs, io.BytesIO(hostile))
        print("\\nwritten inside the rootfs:", sorted(p.name for p in rootfs.iterdir() if p.is_file() and not p.is_symlink()))
        naive = [WORK / "escape.txt", Path("/abs.txt"), Path(os.path.realpath(rootfs / "host")) / "escape2.txt"]
        for path in naive:  # where os.path.join(rootfs, name) would have written them
            print(f"a naive unpacker writes {path}: exists here? {path.exists()}")
        """
    ),
    md(
        """
        ## 10 · Exercises

        Each exercise has a variable to fill in; the check cell below it tells you whether you
        got it. (Unanswered exercises just print a hint.)

        **Exercise 1.** Write the **tar entry name** that an upper layer uses to delete the
        file `/etc/passwd` of a lower layer (as a string). The check puts your name into a tar
        and asks ocilearn's own reader what it means.
        """
    ),
    code('ANSWER_1 = None  # e.g. "some/dir/NAME"'),
    code(
        """
        def check_1(answer):
            if answer is None:
                return "· not answered yet — hint: a whiteout is the file's base name with a prefix, in the same directory (section 6)"
            try:
                e = list_layer(io.BytesIO(tar_of([(str(answer), b"")])))[0]
            except Exception as err:  # noqa: BLE001 - told to the learner
                return f"✘ not yet: ocilearn cannot read an entry named {answer!r}: {err}"
            if e.type == "whiteout" and e.target == "etc/passwd":
                return f"✔ correct: {answer!r} is a whiteout that deletes /etc/passwd"
            if e.type == "opaque":
                return f"✘ not yet: {answer!r} is an opaque whiteout — it would hide all of /{e.target}, not one file"
            if e.type == "whiteout":
                return f"✘ not yet: {answer!r} deletes /{e.target}, not /etc/passwd"
            return f"✘ not yet: ocilearn reads {answer!r} as an ordinary {e.type} named /{e.path} — the prefix is '.wh.'"


        print(check_1(ANSWER_1))
        """
    ),
    md(
        """
        **Exercise 2.** Compute the **chain ID** of the `edited` image's first two layers (the
        embedded base layer + the app's files of section 6) with `hashlib`, as `"sha256:…"`.
        The diff IDs are in `new_config["rootfs"]["diff_ids"]`.
        """
    ),
    code('ANSWER_2 = None  # "sha256:" + hashlib.sha256(...).hexdigest()'),
    code(
        """
        def check_2(answer):
            want = str(chain_ids(new_config["rootfs"]["diff_ids"][:2])[-1])
            if answer is None:
                return '· not answered yet — hint: sha256 of the text "<diff ID 0> <diff ID 1>" (one space), see section 5'
            if str(answer) == want:
                return f"✔ correct: {want}"
            if str(answer) == new_config["rootfs"]["diff_ids"][1]:
                return "✘ not yet: that is the second layer's diff ID; a chain ID also covers the layer below it"
            return '✘ not yet: hash the ASCII text f"{diff_ids[0]} {diff_ids[1]}" (both with their sha256: prefix), then prefix "sha256:"'


        print(check_2(ANSWER_2))
        """
    ),
    md(
        """
        **Exercise 3.** A registry recompresses a layer from gzip to zstd. Which one changes:
        the layer's **digest** in the manifest, or its **diff ID** in the config? Answer
        `"digest"` or `"diff ID"`.
        """
    ),
    code("ANSWER_3 = None"),
    code(
        """
        def check_3(answer):
            if answer is None:
                return "· not answered yet — hint: which of the two is computed over the compressed bytes? (section 5)"
            a = str(answer).strip().lower().replace("_", " ").replace("-", " ")
            if a in ("digest", "layer digest", "the digest"):
                return "✔ correct: the digest covers the compressed bytes; the diff ID (uncompressed tar) stays the same"
            if "diff" in a:
                return "✘ not yet: the diff ID is the sha256 of the *uncompressed* tar — recompressing does not touch it"
            return '✘ not yet: answer "digest" or "diff ID"'


        print(check_3(ANSWER_3))
        """
    ),
    md(
        """
        ## 11 · Try it

        - Put the opaque marker *first* in the edit layer of section 6 and run the notebook
          again: the result must not change. image-spec `layer.md` (*Opaque Whiteout*):
          "`a/.wh..wh..opq` is applied first, before creating the new version of `a/b`,
          regardless of the ordering in which the whiteout file was encountered."
        - Add more names to the hostile layer of section 9 — `a/../../b`, `etc/../../../b` —
          and look where they land.

        Next: **[03 · bundle](03-bundle.ipynb)** turns the image into `config.json` + `rootfs/`.
        """
    ),
    md(
        """
        ## Clean up

        This notebook made a work directory in `/tmp` (in its first code cell): the layout and
        the scratch rootfs trees of sections 7 and 9. **It is removed when the kernel stops**
        (*Kernel ▸ Shut Down Kernel*, *Restart Kernel*, or stopping JupyterLab): that cell
        registered the removal with Python's `atexit`. *Run All* therefore deletes nothing, and the
        exercises above keep working after it. To remove the directory now, run
        `remove_tree(WORK)` in a cell.
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
    print(write("02-blobs.ipynb", cells))
