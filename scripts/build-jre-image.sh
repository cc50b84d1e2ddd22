#!/usr/bin/env bash
# Builds .cache/images/jre: a large ONE-layer OCI image (ref "17") for the pull/unpack
# benchmarks (bench/), like the article's single big application layer. The layer is
# `dpkg-deb -x` of Debian bookworm's openjdk-17-jre-headless (about 190 MB unpacked,
# about 45 MB gzip) made into one gzip layer by `umoci repack`. Not used by `make test`
# (bench only), so the test image build stays as fast as before.
# Cached: nothing is done when .cache/images/jre exists and .cache/images/jre.stamp holds
# this script's sha256. Needs root (umoci unpack/repack keep owners). Built in a temp dir
# and renamed into place.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=$REPO/.cache/images
DEBS=$REPO/.cache/debs/jre-$(dpkg --print-architecture)
SELF=$(sha256sum "$0" | cut -d' ' -f1)
say() { printf 'build-jre-image: %s\n' "$*" >&2; }
if [[ -f $OUT/jre.stamp && $(cat "$OUT/jre.stamp") == "$SELF" && -f $OUT/jre/index.json ]]; then
  say "up to date ($OUT/jre)"; exit 0
fi
[[ $(id -u) -eq 0 ]] || { say "needs root: sudo $0"; exit 1; }
mkdir -p "$OUT"
exec 9>"$OUT/.jre.lock"; flock 9
PKGS=(openjdk-17-jre-headless)
if [[ ! -f $DEBS/.done || $(cat "$DEBS/.done") != "${PKGS[*]}" ]]; then
  rm -rf "$DEBS"; mkdir -p "$DEBS"; chown _apt "$DEBS" 2>/dev/null || true
  ( cd "$DEBS" && apt-get -qq download "${PKGS[@]}" )
  echo "${PKGS[*]}" > "$DEBS/.done"
fi
SDE=${SOURCE_DATE_EPOCH:-1735689600}
TS=$(date -u -d "@$SDE" +%Y-%m-%dT%H:%M:%SZ)
WORK=$(mktemp -d "$OUT/.jre-work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
D=$WORK/jre
umoci init --layout "$D"
umoci new --image "$D:17"
umoci unpack --image "$D:17" "$WORK/b"
for deb in "$DEBS"/*.deb; do dpkg-deb -x "$deb" "$WORK/b/rootfs"; done
find "$WORK/b/rootfs" -exec touch -h -d "@$SDE" {} +
umoci repack --image "$D:17" --history.created "$TS" \
  --history.created_by "dpkg-deb -x of bookworm openjdk-17-jre-headless (one layer)" "$WORK/b"
umoci config --image "$D:17" --created "$TS" --author "ocilearn bench build" \
  --config.env PATH=/usr/lib/jvm/java-17-openjdk-amd64/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.cmd /usr/lib/jvm/java-17-openjdk-amd64/bin/java --config.cmd -version \
  --config.label org.opencontainers.image.title=ocilearn-jre
umoci gc --layout "$D"
chmod -R a+rX "$D"   # readable by the rootless benchmark user (umoci writes blobs 0600)
rm -rf "$OUT/jre.old"
[[ -e $OUT/jre ]] && mv "$OUT/jre" "$OUT/jre.old"
mv "$D" "$OUT/jre"
rm -rf "$OUT/jre.old"
echo "$SELF" > "$OUT/jre.stamp"
say "built $OUT/jre"
