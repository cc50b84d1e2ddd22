#!/usr/bin/env bash
# build-test-images.sh — build the OCI images the test suite needs, with the REAL tools
# (umoci, skopeo, buildah from Debian 12) and real Debian packages (apt-get download +
# dpkg-deb -x), into .cache/images/ (gitignored). Cached: nothing is done when every output
# exists and .cache/images/.stamp holds this script's sha256.
#
# Usage:  scripts/build-test-images.sh [--embedded-only] [--force]
#   --embedded-only  only make sure the embedded workshop image (ocilearn/data/images/busybox)
#                    exists; rebuilds it with scripts/build-embedded-image.py when missing.
#                    Fast, no root needed, no-op when present (used by `make lab`).
#   --force          rebuild everything even when the stamp matches.
#
# Outputs (recipe of ../shared/images/build.sh and README.md, WITHOUT debootstrap):
#   busybox/                    OCI layout, ref latest: busybox-static + applet symlinks (umoci)
#   multiarch/                  index.json -> index blob -> amd64 (= busybox) + arm64/v8 (buildah manifest)
#   debian/                     ref bookworm: 3 layers — dpkg-deb -x of ~90 Debian packages;
#                               an edit layer (whiteouts, hardlinks, symlinks, setuid, xattrs, fifo…);
#                               an opaque-whiteout layer (crafted tar, umoci raw add-layer)
#   debian-zstd/                the same, layers re-compressed zstd by skopeo
#   busybox-docker-archive.tar  skopeo copy to docker-archive
#   README.md                   generated: what each image holds, digests
#
# Needs root (mknod, chown to uid 1000, setcap, apt-get download/install). As root, missing
# tools are installed with apt-get. Timestamps come from SOURCE_DATE_EPOCH (default
# 1735689600 = 2025-01-01), so the busybox-based images are bit-for-bit reproducible for a
# given busybox-static .deb and umoci version (and equal ../shared/images/busybox).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

EMBEDDED_ONLY=0 FORCE=0
for a in "$@"; do
  case "$a" in
    --embedded-only) EMBEDDED_ONLY=1 ;;
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "build-test-images: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'build-test-images: %s\n' "$*" >&2; }
run() { printf '+%s\n' "$(printf ' %q' "$@")" >&2; "$@"; }

EMBEDDED=ocilearn/data/images/busybox
ensure_embedded() {
  if [[ -f $EMBEDDED/index.json && -f $EMBEDDED/oci-layout ]]; then
    say "embedded image present: $EMBEDDED"
    return 0
  fi
  say "embedded image missing: rebuilding it with scripts/build-embedded-image.py"
  local py=.venv/bin/python
  [[ -x $py ]] || py=python3
  run "$py" scripts/build-embedded-image.py
}

if [[ $EMBEDDED_ONLY -eq 1 ]]; then
  ensure_embedded
  exit 0
fi

OUT=$REPO/.cache/images
DEBS=$REPO/.cache/debs
mkdir -p "$OUT" "$DEBS"
SELF=$(sha256sum "$0" | cut -d' ' -f1)
OUTPUTS=(busybox multiarch debian debian-zstd busybox-docker-archive.tar README.md)

all_present() {
  local o
  for o in "${OUTPUTS[@]}"; do [[ -e $OUT/$o ]] || return 1; done
}
if [[ $FORCE -eq 0 && -f $OUT/.stamp && $(cat "$OUT/.stamp") == "$SELF" ]] && all_present; then
  say "up to date in $OUT (stamp $SELF matches; --force rebuilds)"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  cat >&2 <<EOF
build-test-images: needs root. The test images contain files owned by uid 1000, device
nodes (mknod), setuid binaries and a file capability (setcap), and the script may have to
apt-get install umoci, skopeo, buildah, attr, libcap2-bin. Run:
    sudo scripts/build-test-images.sh
(or 'sudo make test'). Outputs go to $OUT.
EOF
  exit 1
fi

# one builder at a time (other test runs on this machine may start us concurrently)
exec 9>"$REPO/.cache/images.lock"
if ! flock -n 9; then
  say "another build is running; waiting for its lock"
  flock 9
  if [[ $FORCE -eq 0 && -f $OUT/.stamp && $(cat "$OUT/.stamp") == "$SELF" ]] && all_present; then
    say "built meanwhile by the other run; up to date"
    exit 0
  fi
fi

T0=$(date +%s)
# -------------------------------------------------------------------------- tools
declare -A TOOLPKG=([umoci]=umoci [skopeo]=skopeo [buildah]=buildah [setfattr]=attr [setcap]=libcap2-bin
  [dpkg-deb]=dpkg [apt-get]=apt [jq]=jq [flock]=util-linux [tar]=tar)
missing=()
for t in "${!TOOLPKG[@]}"; do command -v "$t" >/dev/null || missing+=("${TOOLPKG[$t]}"); done
if ((${#missing[@]})); then
  say "installing missing tools: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  run apt-get update -qq
  run apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# stamp mismatch: the recipe changed, rebuild everything. Everything is built in WORK
# and swapped into OUT at the end (rename), so test runs reading OUT meanwhile keep working.
REBUILD_ALL=0
if [[ $FORCE -eq 1 || ! -f $OUT/.stamp || $(cat "$OUT/.stamp") != "$SELF" ]]; then
  if [[ $FORCE -eq 1 ]]; then say "--force: rebuilding every output"
  elif [[ ! -f $OUT/.stamp ]]; then say "no images built yet: building every output"
  else say "recipe changed: rebuilding every output"; fi
  REBUILD_ALL=1
fi
need() { [[ $REBUILD_ALL -eq 1 || ! -e $OUT/$1 ]]; }       # NAME must be (re)built
src() { if [[ -e $WORK/$1 ]]; then echo "$WORK/$1"; else echo "$OUT/$1"; fi; }  # newest copy of NAME

SDE=${SOURCE_DATE_EPOCH:-1735689600}
TS=$(date -u -d "@$SDE" +%Y-%m-%dT%H:%M:%SZ)
WORK=$(mktemp -d "$OUT/.work.XXXXXX")
BSTORE=$WORK/containers-storage
B=(buildah --root "$BSTORE/root" --runroot "$BSTORE/run" --storage-driver vfs)
cleanup() {
  if [[ -d $BSTORE ]]; then "${B[@]}" rmi --all --force >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
say "SOURCE_DATE_EPOCH=$SDE ($TS) OUT=$OUT WORK=$WORK"

# -------------------------------------------------------------------------- .deb files
# apt-get download PKG... into DIR (cached: skipped when DIR/.done lists the same packages)
fetch_debs() {  # DIR ARCH PKG...
  local dir=$1 arch=$2; shift 2
  local want="$arch $*"
  if [[ -f $dir/.done && $(cat "$dir/.done") == "$want" ]]; then return 0; fi
  rm -rf "$dir"; mkdir -p "$dir"; chown _apt "$dir" 2>/dev/null || true
  local opts=()
  if [[ $arch != "$(dpkg --print-architecture)" ]]; then
    # a private apt state for a foreign architecture: the host's dpkg config is not touched
    local st=$DEBS/apt-$arch
    mkdir -p "$st/lists/partial" "$st/cache/archives/partial"
    chown -R _apt "$st" 2>/dev/null || true
    opts=(-o "APT::Architecture=$arch" -o "APT::Architectures::=$arch" -o "Dir::State::Lists=$st/lists"
      -o "Dir::Cache=$st/cache" -o "Dir::State::status=/dev/null")
    run apt-get -qq "${opts[@]}" update
  fi
  ( cd "$dir" && run apt-get -qq "${opts[@]}" download "$@" )
  echo "$want" > "$dir/.done"
}
ARCH=$(dpkg --print-architecture)
fetch_debs "$DEBS/busybox-$ARCH" "$ARCH" busybox-static
fetch_debs "$DEBS/busybox-arm64" arm64 busybox-static:arm64
DEB_HOST=$(ls "$DEBS/busybox-$ARCH"/busybox-static_*.deb)
DEB_ARM64=$(ls "$DEBS/busybox-arm64"/busybox-static_*_arm64.deb)
BB_VER=$(dpkg-deb -f "$DEB_HOST" Version)

# -------------------------------------------------------------------------- busybox
# build_busybox DEB ARCH LAYOUT TAG   (the recipe of ../shared/images/build.sh)
build_busybox() {
  local deb=$1 arch=$2 layout=$3 tag=$4 w
  w=$(mktemp -d "$WORK/bb-$arch.XXXXXX")
  [[ -d $layout ]] || run umoci init --layout "$layout"
  run umoci new --image "$layout:$tag"
  run umoci unpack --image "$layout:$tag" "$w/bundle"
  local R=$w/bundle/rootfs
  run dpkg-deb -x "$deb" "$w/deb"
  say "populate rootfs: /bin/busybox + applet symlinks (absolute target /bin/busybox) + passwd/group (root, app 1000)"
  install -d -m 0755 "$R"/{bin,sbin,usr/bin,usr/sbin,etc,home,proc,sys,dev,usr/share/doc/busybox-static}
  install -d -m 0700 "$R/root"
  install -d -m 1777 "$R/tmp"
  install -d -m 0755 -o 1000 -g 1000 "$R/home/app"
  install -m 0755 "$w/deb/bin/busybox" "$R/bin/busybox"
  install -m 0644 "$w/deb/usr/share/doc/busybox-static/copyright" "$R/usr/share/doc/busybox-static/copyright"
  # applet list from the host-architecture binary (same source version for every arch)
  local p
  "$APPLETS_FROM" --list-full | while read -r p; do
    [[ $p == bin/busybox ]] && continue
    ln -s /bin/busybox "$R/$p"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' > "$R/etc/passwd"
  printf 'root:x:0:\napp:x:1000:\n' > "$R/etc/group"
  chmod 0644 "$R/etc/passwd" "$R/etc/group"
  find "$R" -exec touch -h -d "@$SDE" {} +
  run umoci repack --image "$layout:$tag" --history.created "$TS" \
    --history.created_by "busybox-static $BB_VER ($arch) /bin/busybox + $("$APPLETS_FROM" --list-full | wc -l) applet symlinks + /etc/passwd,group (root, app:1000)" \
    "$w/bundle"
  run umoci config --image "$layout:$tag" --created "$TS" --history.created "$TS" \
    --author "ocilearn corpus build" --architecture "$arch" --os linux \
    --config.entrypoint /bin/sh --config.entrypoint -c \
    --config.cmd 'echo "$GREETING from $(id -un) in $(pwd)"' \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env GREETING=hello \
    --config.workingdir /home/app --config.user app \
    --config.exposedports 8080/tcp --config.stopsignal SIGTERM \
    --config.label org.opencontainers.image.title=ocilearn-busybox \
    --config.label "org.opencontainers.image.description=Debian busybox-static in one layer, for ocilearn tests" \
    --config.label "org.opencontainers.image.version=$BB_VER" \
    --config.label org.opencontainers.image.licenses=GPL-2.0-only \
    --manifest.annotation org.opencontainers.image.title=ocilearn-busybox \
    --manifest.annotation "org.opencontainers.image.created=$TS"
  run umoci gc --layout "$layout"
  rm -rf "$w"
}
mkdir -p "$WORK/host-bb"
dpkg-deb -x "$DEB_HOST" "$WORK/host-bb"
APPLETS_FROM=$WORK/host-bb/bin/busybox

if need busybox; then
  say "== busybox (busybox-static $BB_VER $ARCH)"
  build_busybox "$DEB_HOST" "$ARCH" "$WORK/busybox" latest
fi

# -------------------------------------------------------------------------- multiarch
if need multiarch; then
  say "== multiarch (buildah manifest: $ARCH = busybox, arm64/v8)"
  build_busybox "$DEB_ARM64" arm64 "$WORK/bb-arm64" latest
  run "${B[@]}" manifest create ocilearn-multiarch
  run "${B[@]}" manifest add ocilearn-multiarch "oci:$(src busybox):latest"
  run "${B[@]}" manifest add --arch arm64 --variant v8 ocilearn-multiarch "oci:$WORK/bb-arm64:latest"
  run "${B[@]}" manifest push --all --format oci ocilearn-multiarch "oci:$WORK/multiarch:latest"
  run "${B[@]}" manifest rm ocilearn-multiarch
fi

# -------------------------------------------------------------------------- docker-archive
if need busybox-docker-archive.tar; then
  say "== busybox-docker-archive.tar"
  run skopeo copy --quiet "oci:$(src busybox):latest" "docker-archive:$WORK/busybox-docker-archive.tar:busybox:latest"
fi

# -------------------------------------------------------------------------- debian
# Layer 1 is what debootstrap --variant=minbase would unpack, minus maintainer scripts:
# a real, closed set of bookworm packages (their Depends), each `dpkg-deb -x`-ed.
DEBIAN_PKGS=(adduser apt base-files base-passwd bash bsdutils coreutils dash debconf debian-archive-keyring
  debianutils diffutils dpkg findutils gcc-12-base gpgv grep gzip hostname init-system-helpers iproute2
  libacl1 libapt-pkg6.0 libattr1 libaudit-common libaudit1 libblkid1 libbpf1 libbsd0 libbz2-1.0 libc-bin
  libc6 libcap-ng0 libcap2 libcap2-bin libcom-err2 libcrypt1 libdb5.3 libelf1 libffi8 libgcc-s1 libgcrypt20
  libgmp10 libgnutls30 libgpg-error0 libgssapi-krb5-2 libhogweed6 libidn2-0 libk5crypto3 libkeyutils1
  libkrb5-3 libkrb5support0 liblz4-1 liblzma5 libmd0 libmnl0 libmount1 libncursesw6 libnettle8 libp11-kit0
  libpam-modules libpam-modules-bin libpam-runtime libpam0g libpcre2-8-0 libproc2-0 libseccomp2 libselinux1
  libsemanage-common libsemanage2 libsepol2 libsmartcols1 libssl3 libstdc++6 libsystemd0 libtasn1-6
  libtinfo6 libtirpc-common libtirpc3 libudev1 libunistring2 libuuid1 libxtables12 libxxhash0 libzstd1
  login mawk mount ncurses-base ncurses-bin passwd perl-base procps sed sensible-utils tar util-linux
  util-linux-extra zlib1g)
if need debian; then
  say "== debian (bookworm: ${#DEBIAN_PKGS[@]} packages, 3 layers)"
  fetch_debs "$DEBS/debian-$ARCH" "$ARCH" "${DEBIAN_PKGS[@]}"
  D=$WORK/debian
  run umoci init --layout "$D"
  run umoci new --image "$D:bookworm"
  run umoci unpack --image "$D:bookworm" "$WORK/deb"
  R=$WORK/deb/rootfs
  say "layer 1: dpkg-deb -x of ${#DEBIAN_PKGS[@]} packages into rootfs/"
  for deb in "$DEBS/debian-$ARCH"/*.deb; do dpkg-deb -x "$deb" "$R"; done
  # merged /usr, as debootstrap makes it for bookworm: /bin -> usr/bin, …
  for d in bin sbin lib lib64; do
    if [[ -d $R/$d && ! -L $R/$d ]]; then
      mkdir -p "$R/usr/$d"
      cp -a "$R/$d/." "$R/usr/$d/"
      rm -rf "${R:?}/$d"
    fi
    ln -s "usr/$d" "$R/$d"
  done
  # what the maintainer scripts would have made
  install -m 0644 "$R/usr/share/base-passwd/passwd.master" "$R/etc/passwd"
  install -m 0644 "$R/usr/share/base-passwd/group.master" "$R/etc/group"
  awk -F: '{print $1":*:19000:0:99999:7:::"}' "$R/etc/passwd" > "$R/etc/shadow"
  awk -F: '{print $1":*::"}' "$R/etc/group" > "$R/etc/gshadow"
  chown 0:42 "$R/etc/shadow" "$R/etc/gshadow"; chmod 0640 "$R/etc/shadow" "$R/etc/gshadow"
  BF=$R/usr/share/base-files   # base-files' postinst copies these
  install -m 0644 "$BF/motd" "$R/etc/motd"
  [[ -e $R/etc/profile ]] || install -m 0644 "$BF/profile" "$R/etc/profile"
  install -d -m 0700 "$R/root"
  install -m 0644 "$BF/dot.bashrc" "$R/root/.bashrc"
  install -m 0644 "$BF/dot.profile" "$R/root/.profile"
  echo localhost > "$R/etc/hostname"
  : > "$R/etc/resolv.conf"
  install -d -m 0755 "$R"/{proc,sys,run,dev,dev/pts,home,srv,media,mnt,var/lib/apt/lists}
  install -d -m 1777 "$R"/{tmp,var/tmp,dev/shm}
  install -d -m 0700 "$R/root"
  # character devices, as debootstrap leaves in /dev
  mknod -m 0666 "$R/dev/null" c 1 3; mknod -m 0666 "$R/dev/zero" c 1 5; mknod -m 0666 "$R/dev/full" c 1 7
  mknod -m 0666 "$R/dev/random" c 1 8; mknod -m 0666 "$R/dev/urandom" c 1 9
  mknod -m 0666 "$R/dev/tty" c 5 0; mknod -m 0600 "$R/dev/console" c 5 1; mknod -m 0666 "$R/dev/ptmx" c 5 2
  ln -s /proc/self/fd "$R/dev/fd"; ln -s /proc/self/fd/0 "$R/dev/stdin"
  ln -s /proc/self/fd/1 "$R/dev/stdout"; ln -s /proc/self/fd/2 "$R/dev/stderr"
  for deb in "$DEBS/debian-$ARCH"/*.deb; do dpkg-deb -f "$deb" Package Version Architecture | paste -sd' '; done \
    | awk '{print $2, $4, $6}' > "$WORK/debian-packages.txt"
  find "$R" -exec touch -h -d "@$SDE" {} +
  run umoci repack --refresh-bundle --image "$D:bookworm" --history.created "$TS" \
    --history.created_by "dpkg-deb -x of ${#DEBIAN_PKGS[@]} bookworm packages (merged /usr, passwd/group from base-passwd, /dev nodes)" \
    "$WORK/deb"

  say "layer 2 edits: whiteout, dir delete+recreate, hardlinks, symlinks, setuid/setgid/sticky, xattrs, fifo, long names, chmod"
  rm "$R/etc/motd"                                              # -> etc/.wh.motd
  rm -rf "$R/etc/skel"                                          # delete + recreate a directory
  install -d -m 0755 "$R/etc/skel"
  printf '# ocilearn skel profile (layer 2)\nexport PS1="ocilearn$ "\n' > "$R/etc/skel/.profile"
  printf 'This /etc/skel was deleted and recreated in layer 2.\n' > "$R/etc/skel/README.ocilearn"
  chmod 0644 "$R/etc/skel/.profile" "$R/etc/skel/README.ocilearn"
  O=$R/opt/ocilearn
  install -d -m 0755 "$O"
  printf 'same inode, two names\n' > "$O/hardlink-a"
  ln "$O/hardlink-a" "$O/hardlink-b"                            # hardlink pair
  ln -s hardlink-a "$O/symlink-relative"                        # relative symlink
  ln -s /etc/os-release "$O/symlink-absolute"                   # absolute symlink (resolve inside rootfs)
  ln -s ../../../../../../etc/shadow "$O/symlink-escaping"      # climbs above / (must stay inside rootfs)
  ln -s does-not-exist "$O/symlink-dangling"                    # dangling symlink
  cp "$R/usr/bin/true" "$O/setuid-true"; chmod 4755 "$O/setuid-true"   # setuid file
  install -d -m 2775 -g 50 "$O/setgid-dir"                     # setgid dir, group staff
  install -d -m 1777 "$O/sticky-dir"                            # sticky dir
  printf 'has a user xattr\n' > "$O/xattr-file"
  setfattr -n user.ocilearn.note -v "hello from an xattr" "$O/xattr-file"   # SCHILY.xattr.user.*
  cp "$R/usr/bin/true" "$O/filecap-true"
  setcap cap_net_bind_service+ep "$O/filecap-true"              # security.capability xattr
  printf 'owned by 1000:1000\n' > "$O/owned-by-1000"; chown 1000:1000 "$O/owned-by-1000"
  : > "$O/empty-file"
  install -d -m 0755 "$O/empty-dir"
  mkfifo -m 0644 "$O/fifo"                                      # tar type '6'
  printf 'space and utf-8 in the name\n' > "$O/name with spaces – ü.txt"   # PAX path (non-ASCII)
  LONG="$O/a-directory-name-that-is-quite-long-0123456789/another-long-directory-name-abcdefghijklmnopqrstuvwxyz"
  install -d -m 0755 "$LONG"
  printf 'path > 100 bytes, fits ustar prefix+name\n' > "$LONG/file-with-a-long-name-to-push-the-path-over-the-ustar-limit.txt"
  LONGBASE=$(printf 'basename-longer-than-100-bytes-%s' "$(printf 'x%.0s' $(seq 1 90))")
  printf 'basename > 100 bytes (needs a PAX path record)\n' > "$O/$LONGBASE"
  ln -s "${LONG#"$R"}/file-with-a-long-name-to-push-the-path-over-the-ustar-limit.txt" "$O/symlink-long-target"  # PAX linkpath
  chmod 0600 "$R/etc/issue"                                     # mode change only
  find "$R/opt" "$R/etc/skel" -exec touch -h -d "@$((SDE + 86400))" {} +
  touch -h -d "@$((SDE + 86400))" "$R" "$R/etc"
  run umoci repack --image "$D:bookworm" --history.created "$(date -u -d "@$((SDE + 86400))" +%Y-%m-%dT%H:%M:%SZ)" \
    --history.created_by "umoci repack: rm /etc/motd; rm -rf + recreate /etc/skel; /opt/ocilearn (hardlinks, symlinks, setuid, xattrs, fifo, long names); chmod 0600 /etc/issue" \
    "$WORK/deb"
  rm -rf "$WORK/deb"

  say "layer 3: opaque whiteout (crafted tar: etc/update-motd.d/.wh..wh..opq + 50-ocilearn), umoci raw add-layer"
  L3=$WORK/l3
  install -d -m 0755 "$L3/etc/update-motd.d"
  : > "$L3/etc/update-motd.d/.wh..wh..opq"
  printf '#!/bin/sh\necho "motd from layer 3: the opaque whiteout hid the older scripts"\n' > "$L3/etc/update-motd.d/50-ocilearn"
  chmod 0644 "$L3/etc/update-motd.d/.wh..wh..opq"; chmod 0755 "$L3/etc/update-motd.d/50-ocilearn"
  run tar --format=ustar --numeric-owner --owner=0 --group=0 --mtime="@$((SDE + 172800))" --sort=name \
    -C "$L3" -cf "$WORK/l3.tar" etc
  run umoci raw add-layer --image "$D:bookworm" --history.created "$(date -u -d "@$((SDE + 172800))" +%Y-%m-%dT%H:%M:%SZ)" \
    --history.created_by "rm -rf /etc/update-motd.d; mkdir; add 50-ocilearn (crafted tar with an opaque whiteout, umoci raw add-layer)" \
    "$WORK/l3.tar"
  run umoci config --image "$D:bookworm" --created "$TS" --history.created "$TS" \
    --author "ocilearn corpus build" \
    --config.cmd /bin/bash \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.label org.opencontainers.image.title=ocilearn-debian \
    --config.label "org.opencontainers.image.description=dpkg-deb -x of ${#DEBIAN_PKGS[@]} bookworm packages + 2 edit layers, for ocilearn tests" \
    --config.label "org.opencontainers.image.source=http://deb.debian.org/debian"
  run umoci gc --layout "$D"
fi

if need debian-zstd; then
  say "== debian-zstd (skopeo re-compresses the layers with zstd)"
  run skopeo copy --quiet --dest-compress-format zstd "oci:$(src debian):bookworm" "oci:$WORK/debian-zstd:bookworm"
fi

# -------------------------------------------------------------------------- README.md
describe() {  # LAYOUT: one block per ref: manifest/index digests, config, layers
  local lay=$1
  walk() {
    local d=$2 f indent=$3
    f="$lay/blobs/sha256/${d#sha256:}"
    if jq -e '.manifests' "$f" >/dev/null 2>&1; then
      echo "${indent}- image index \`$d\` ($(stat -c %s "$f") B)"
      jq -r '.manifests[] | "\(.digest) \(.platform.os // "")/\(.platform.architecture // "")\(.platform.variant // "" | if . == "" then "" else "/"+. end)"' "$f" |
        while read -r md plat; do echo "${indent}  - platform \`$plat\`:"; walk "$lay" "$md" "$indent    "; done
    else
      echo "${indent}- manifest \`$d\` ($(stat -c %s "$f") B)"
      jq -r --arg i "$indent" '"\($i)  - config `\(.config.digest)` (\(.config.size) B)", (.layers[] | "\($i)  - layer `\(.digest)` (\(.size) B, \(.mediaType))")' "$f"
    fi
  }
  jq -r '.manifests[] | "\(.digest) \(.annotations["org.opencontainers.image.ref.name"] // "")"' "$lay/index.json" |
    while read -r d ref; do echo "- ref \`$ref\`:"; walk "$lay" "$d" "  "; done
}
{
  cat <<EOF
# Test images (generated by scripts/build-test-images.sh — do not edit)

Built $(date -u +%Y-%m-%dT%H:%M:%SZ) with $(dpkg-query -W -f='${Package} ${Version}, ' umoci skopeo buildah 2>/dev/null)
SOURCE_DATE_EPOCH=$SDE ($TS). Script sha256 \`$SELF\` (in \`.stamp\`).
Recipe: ../shared/images/build.sh and README.md, without debootstrap.

## busybox (\`oci:busybox:latest\`)

\`busybox-static $BB_VER\` ($ARCH, .deb sha256 \`$(sha256sum "$DEB_HOST" | cut -d' ' -f1)\`), made with
\`umoci init/new/unpack\`, \`dpkg-deb -x\`, \`umoci repack/config/gc\`: /bin/busybox, applet symlinks to
the absolute target /bin/busybox, /etc/passwd and /etc/group (root, app 1000), /home/app 1000:1000,
/root 0700, /tmp 1777, empty /proc /sys /dev, the Debian copyright file. Config: Entrypoint
\`["/bin/sh","-c"]\`, Cmd \`["echo \"\$GREETING from \$(id -un) in \$(pwd)\""]\`, Env PATH + GREETING=hello,
WorkingDir /home/app, User app, ExposedPorts 8080/tcp, StopSignal SIGTERM, 4 labels, author.
Bit-for-bit reproducible; equals ../shared/images/busybox when the same .deb and umoci are used.

$(describe "$(src busybox)")

## multiarch (\`oci:multiarch:latest\`)

index.json → image index blob (written by \`buildah manifest create/add/push --all --format oci\`)
→ $ARCH (the busybox manifest above) and arm64/v8 (same recipe from busybox-static:arm64,
.deb sha256 \`$(sha256sum "$DEB_ARM64" | cut -d' ' -f1)\`, fetched with a private apt state for arm64).

$(describe "$(src multiarch)")

## busybox-docker-archive.tar

\`skopeo copy oci:busybox:latest docker-archive:busybox-docker-archive.tar:busybox:latest\`
(\`docker save\` format: manifest.json, repositories, config, the layer uncompressed).
File sha256 \`$(sha256sum "$(src busybox-docker-archive.tar)" | cut -d' ' -f1)\`.

## debian (\`oci:debian:bookworm\`)

1. \`dpkg-deb -x\` of ${#DEBIAN_PKGS[@]} bookworm packages (list with versions: \`debian-packages.txt\`),
   merged /usr (/bin → usr/bin, /sbin, /lib, /lib64), /etc/passwd and /etc/group from base-passwd,
   /etc/shadow, character devices in /dev (null, zero, full, random, urandom, tty, console, ptmx),
   the distro's setuid binaries (su, passwd, mount, …), \`umoci repack --refresh-bundle\`.
2. \`umoci repack\` of edits: \`rm /etc/motd\` (→ \`etc/.wh.motd\`), /etc/skel deleted and recreated
   (per-file whiteouts), /opt/ocilearn: hardlink pair, relative/absolute/escaping/dangling/long-target
   symlinks, setuid file, setgid dir (gid 50), sticky dir, user xattr, security.capability file
   capability, file owned by 1000:1000, empty file and dir, fifo, a unicode name with spaces, long paths;
   \`chmod 0600 /etc/issue\`.
3. A crafted tar appended with \`umoci raw add-layer\`: \`etc/update-motd.d/.wh..wh..opq\` (opaque whiteout)
   + \`etc/update-motd.d/50-ocilearn\`.
4. \`umoci config\`: Cmd \`["/bin/bash"]\`, Env PATH, labels, author; \`umoci gc\`.

After unpack: /etc/motd gone, /etc/skel = {.profile, README.ocilearn}, /etc/update-motd.d = {50-ocilearn},
/etc/issue mode 0600.

$(describe "$(src debian)")

## debian-zstd (\`oci:debian-zstd:bookworm\`)

\`skopeo copy --dest-compress-format zstd oci:debian:bookworm oci:debian-zstd:bookworm\`: same config
(same diff_ids), layers \`application/vnd.oci.image.layer.v1.tar+zstd\`, new manifest.

$(describe "$(src debian-zstd)")
EOF
} > "$WORK/README.md"
# swap the new outputs in: one rename each (the old copy goes to WORK, removed at exit)
for o in "${OUTPUTS[@]}" debian-packages.txt; do
  [[ -e $WORK/$o ]] || continue
  chmod -R a+rX "$WORK/$o"
  if [[ -e $OUT/$o ]]; then mv "$OUT/$o" "$WORK/.old-$o"; fi
  mv "$WORK/$o" "$OUT/$o"
done
echo "$SELF" > "$OUT/.stamp"
ensure_embedded || say "warning: embedded image could not be rebuilt (see above)"
say "done in $(( $(date +%s) - T0 )) s: $(du -sh --exclude=".work.*" "$OUT" | cut -f1) in $OUT"
