#!/usr/bin/env python3
"""Build the embedded workshop image (ocilearn/data/images/busybox) with ocilearn's own
writer (ocilearn.image.build), from Debian's busybox-static .deb.

Usage:
    scripts/build-embedded-image.py [--deb FILE.deb] [--out DIR] [--no-readme]

--deb   the busybox-static .deb to use (default: `apt-get download busybox-static:amd64`
        into .cache/debs/embedded/, reused when already there)
--out   where the OCI layout goes (default: ocilearn/data/images/busybox, replaced as a
        whole; the provenance files ocilearn/data/README.md and
        ocilearn/data/embedded-busybox.json are rewritten too)

Deterministic: the same .deb gives the same bytes, hence the same digests.
The .deb is unpacked with `dpkg-deb -x` (a packaging tool, not an OCI one); the applet
list comes from running the unpacked binary with `--list-full` (needs an amd64 host).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ocilearn.image import build as ib  # noqa: E402
from ocilearn.image.build import DEFAULT_EPOCH  # noqa: E402

DATA = REPO / "ocilearn" / "data"
DEFAULT_OUT = DATA / "images" / "busybox"
ARCH = "amd64"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def fetch_deb() -> Path:
    """`apt-get download busybox-static:amd64` into .cache/debs/embedded (cached)."""
    d = REPO / ".cache" / "debs" / "embedded"
    found = sorted(d.glob("busybox-static_*_amd64.deb"))
    if found:
        return found[-1]
    d.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(d, "_apt") if _has_user("_apt") else None
    print(f"+ apt-get download busybox-static:{ARCH}  (in {d})", file=sys.stderr)
    subprocess.run(["apt-get", "-qq", "download", f"busybox-static:{ARCH}"], cwd=d, check=True)
    return sorted(d.glob("busybox-static_*_amd64.deb"))[-1]


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def deb_field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], check=True, capture_output=True, text=True).stdout.strip()


def entries(unpacked: Path) -> list[ib.Entry]:
    """The rootfs: busybox, applet symlinks (absolute target /bin/busybox, as Debian's
    busybox --install -s would make), passwd/group with root and app (1000), the usual
    top-level directories, the Debian copyright file."""
    busybox = unpacked / "bin" / "busybox"
    applets = subprocess.run([str(busybox), "--list-full"], check=True, capture_output=True, text=True).stdout.split()
    out = [
        ib.directory(d)
        for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "home", "proc", "sys", "dev", "usr/share", "usr/share/doc", "usr/share/doc/busybox-static")
    ]
    out += [
        ib.directory("root", 0o700),
        ib.directory("tmp", 0o1777),
        ib.directory("home/app", 0o755, uid=1000, gid=1000),
        ib.file("bin/busybox", busybox.read_bytes(), 0o755),
        ib.file("usr/share/doc/busybox-static/copyright", (unpacked / "usr/share/doc/busybox-static/copyright").read_bytes()),
        ib.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"),
        ib.file("etc/group", "root:x:0:\napp:x:1000:\n"),
        ib.file("etc/motd", "Welcome to the ocilearn workshop image (layer 1)\n"),
        ib.file("var/www/index.html", "<p>old page from layer 1</p>\n"),
        ib.file("var/www/old.css", "p { color: grey }\n"),
    ]
    out += [ib.symlink(p, "/bin/busybox") for p in applets if p != "bin/busybox"]
    return out


def changes() -> list[ib.Entry]:
    """The second layer: real changes to the first, so the course can teach them offline
    (image-spec layer.md "Whiteouts", "Opaque Whiteout", "Hardlinks"):

    * ``etc/.wh.motd``: a whiteout — deletes layer 1's ``/etc/motd``;
    * ``var/www/.wh..wh..opq``: an opaque whiteout — hides layer 1's ``/var/www/*``, then
      this layer's own ``var/www/index.html`` replaces it;
    * ``etc/issue.net``: a hardlink to ``etc/issue`` (the same inode once unpacked).
    """
    return [
        ib.file("etc/.wh.motd", b""),
        ib.file("var/www/.wh..wh..opq", b""),
        ib.file("var/www/index.html", "<p>hello from layer 2</p>\n"),
        ib.file("etc/issue", "ocilearn workshop image \\n \\l\n"),
        ib.Entry("etc/issue.net", "hardlink", 0o644, linkname="etc/issue"),
    ]


def build(deb: Path, out: Path) -> dict:
    """Build the layout at ``out`` (must not exist). Returns provenance facts."""
    version = deb_field(deb, "Version")
    deb_sha = hashlib.sha256(deb.read_bytes()).hexdigest()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        ents = entries(Path(tmp))
    applets = sum(1 for e in ents if e.type == "symlink")
    desc = ib.build_image(
        out,
        [ents, changes()],
        ref="latest",
        mtime=DEFAULT_EPOCH,
        architecture=ARCH,
        os="linux",
        entrypoint=["/bin/sh", "-c"],
        cmd=['echo "$GREETING from $(id -un) in $(pwd)"'],
        env=[PATH_ENV, "GREETING=hello"],
        working_dir="/home/app",
        user="app",
        exposed_ports=["8080/tcp"],
        stop_signal="SIGTERM",
        author="ocilearn (scripts/build-embedded-image.py)",
        labels={
            "org.opencontainers.image.title": "ocilearn-embedded-busybox",
            "org.opencontainers.image.description": "Debian busybox-static, then a layer of changes (whiteout, opaque whiteout, hardlink): the ocilearn workshop image",
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.licenses": "GPL-2.0-only",
            "org.opencontainers.image.source": f"https://packages.debian.org/bookworm/busybox-static (busybox-static_{version}_{ARCH}.deb)",
        },
        history=[
            f"ocilearn imagebuild: busybox-static {version} ({ARCH}) /bin/busybox + {applets} applet symlinks + /etc/passwd,group (root, app:1000), /etc/motd, /var/www",
            "ocilearn imagebuild: delete /etc/motd (whiteout), replace /var/www (opaque whiteout), /etc/issue.net hardlinked to /etc/issue",
        ],
        annotations={"org.opencontainers.image.title": "ocilearn-embedded-busybox", "org.opencontainers.image.created": ib.rfc3339(DEFAULT_EPOCH)},
    )
    from ocilearn.image.layout import ImageLayout

    lay = ImageLayout(out)
    m = lay.resolve("latest")
    return {
        "package": "busybox-static",
        "version": version,
        "architecture": ARCH,
        "deb": deb.name.replace("%3a", ":"),
        "deb_sha256": deb_sha,
        "license": "GPL-2 (busybox); Debian packaging GPL-2; see /usr/share/doc/busybox-static/copyright in the image",
        "applets": applets,
        "ref": "latest",
        "manifest_digest": str(desc.digest),
        "config_digest": str(m.manifest.config.digest),
        "layer_digest": str(m.manifest.layers[0].digest),
        "layer_size": m.manifest.layers[0].size,
        "diff_id": str(lay.image_config(m).diff_ids[0]),
        "layers": [
            {"digest": str(d.digest), "size": d.size, "diff_id": str(did)}
            for d, did in zip(m.manifest.layers, lay.image_config(m).diff_ids, strict=True)
        ],
        "source_date_epoch": DEFAULT_EPOCH,
    }


README = """# ocilearn/data — the embedded workshop image

`images/busybox/` is an OCI image layout (image-spec image-layout.md) with one image, ref
`latest`, shipped inside the package so the course runs with no network. Open it with
`ocilearn.image.embedded.layout_path()` (read-only) or `ocilearn.image.embedded.copy_to(DIR)` (a
writable copy: the notebooks work on copies).

It was built by `scripts/build-embedded-image.py` with ocilearn's own writer
(`ocilearn/imagebuild.py`): deterministic tar (sorted entries, mtime
{epoch} = {created}, numeric owners, PAX format), gzip with mtime 0, OCI config, manifest,
index.json entry with ref `latest`. Rebuilding from the same .deb gives the same digests
(tests/test_embedded.py checks this).

## Provenance

| | |
| --- | --- |
| package | `{package}` (Debian 12 "bookworm", main) |
| version | `{version}` ({architecture}) |
| .deb | `{deb}` |
| .deb sha256 | `{deb_sha256}` |
| license | {license} |
| unpacked with | `dpkg-deb -x` |

The image's `/usr/share/doc/busybox-static/copyright` is the package's copyright file,
unchanged (busybox is GPL-2; the corresponding source is Debian's `busybox` source package
of the same version, at https://sources.debian.org/src/busybox/ and on snapshot.debian.org).

## Contents (two layers)

Layer 1:

* `/bin/busybox` (the .deb's binary, byte for byte), {applets} applet symlinks to the
  absolute target `/bin/busybox` (from `busybox --list-full`)
* `/etc/passwd`, `/etc/group`: root (0) and app (1000); `/home/app` owned 1000:1000
* `/root` 0700, `/tmp` 1777, empty `/proc`, `/sys`, `/dev`
* `/etc/motd`, `/var/www/index.html`, `/var/www/old.css`

Layer 2 (changes, built with the same writer):

* `etc/.wh.motd` — a whiteout: `/etc/motd` is gone from the rootfs
* `var/www/.wh..wh..opq` — an opaque whiteout: layer 1's `/var/www/*` is hidden;
  the layer's own `var/www/index.html` is the only file left there
* `etc/issue` and `etc/issue.net`, a hardlink to it (one inode in the rootfs)

* config: Entrypoint `["/bin/sh","-c"]`, Cmd `["echo \\"$GREETING from $(id -un) in $(pwd)\\""]`,
  Env `PATH=…`, `GREETING=hello`, WorkingDir `/home/app`, User `app`, ExposedPorts `8080/tcp`,
  StopSignal `SIGTERM`, `org.opencontainers.image.*` labels

## Digests

| what | digest |
| --- | --- |
| manifest | `{manifest_digest}` |
| config | `{config_digest}` |
| layer 1 (gzip, {layer_size} bytes) | `{layer_digest}` |
| diff ID 1 (the tar) | `{diff_id}` |
| layer 2 (gzip, {layer2_size} bytes) | `{layer2_digest}` |
| diff ID 2 (the tar) | `{layer2_diff_id}` |

`embedded-busybox.json` holds the same facts for programs.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deb", type=Path)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--no-readme", action="store_true", help="do not rewrite ocilearn/data/README.md and embedded-busybox.json")
    a = ap.parse_args(argv)
    deb = a.deb or fetch_deb()
    out = a.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=out.parent))
    try:
        facts = build(deb, tmp / "layout")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp / "layout", out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if out == DEFAULT_OUT.resolve() and not a.no_readme:
        (DATA / "embedded-busybox.json").write_text(json.dumps(facts, indent=2) + "\n")
        (DATA / "README.md").write_text(README.format(epoch=DEFAULT_EPOCH, created=ib.rfc3339(DEFAULT_EPOCH), layer2_size=facts["layers"][1]["size"],
                                                            layer2_digest=facts["layers"][1]["digest"], layer2_diff_id=facts["layers"][1]["diff_id"], **facts))
    print(json.dumps(facts, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
