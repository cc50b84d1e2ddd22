#!/usr/bin/env bash
# start-registry.sh - run a real registry (Debian's docker-registry, i.e.
# github.com/docker/distribution 2.8) on 127.0.0.1 only, for ocilearn's tests,
# benchmarks and the course's "pull it yourself" section.
#
# Usage:
#   start-registry.sh [start] PORT STORAGE_DIR [HTPASSWD_FILE] [options]
#     options:
#       --htpasswd FILE                   basic auth (bcrypt entries: htpasswd -Bbn u p)
#       --tls CERT KEY                    serve HTTPS with this certificate and key
#       --token REALM ISSUER SERVICE ROOTCERT
#                                         token auth: clients get Bearer tokens from
#                                         REALM; tokens are JWTs signed by the key of
#                                         a certificate in ROOTCERT (PEM bundle)
#     Prints the PID and exits 0 once GET /v2/ answers (200, or 401 with auth).
#     Idempotent: same PORT and settings -> same PID; other settings -> restart.
#   start-registry.sh stop PORT      SIGTERM (SIGKILL after 10 s); exit 0 if none
#   start-registry.sh status PORT    print PID, exit 1 if not running
#
# Environment:
#   OCILEARN_REGISTRY_RUNDIR  state dir (default ${TMPDIR:-/tmp}/ocilearn-registry);
#                             per port: PORT/config.yml, registry.pid, registry.log
#   REGISTRY_BIN              registry binary (default docker-registry, else registry)
#   OCILEARN_REGISTRY_TIMEOUT seconds to wait for readiness (default 20)
#
# Never listens on anything but 127.0.0.1.
set -euo pipefail

RUNDIR_BASE=${OCILEARN_REGISTRY_RUNDIR:-${TMPDIR:-/tmp}/ocilearn-registry}
TIMEOUT=${OCILEARN_REGISTRY_TIMEOUT:-20}

die() { echo "start-registry.sh: $*" >&2; exit 1; }
log() { echo "start-registry.sh: $*" >&2; }
usage() { sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
check_port() { [[ "$1" =~ ^[0-9]+$ ]] && (( $1 >= 1 && $1 <= 65535 )) || die "bad port: '$1'"; }
abspath() { echo "$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")"; }

find_bin() {
  if [[ -n "${REGISTRY_BIN:-}" ]]; then command -v "$REGISTRY_BIN" && return; die "REGISTRY_BIN=$REGISTRY_BIN not found"; fi
  command -v docker-registry || command -v registry || die "no registry binary (apt-get install docker-registry)"
}

running_pid() {
  local dir="$RUNDIR_BASE/$1" pid
  [[ -f "$dir/registry.pid" ]] || return 1
  pid=$(cat "$dir/registry.pid" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "serve $dir/config.yml" || return 1
  echo "$pid"
}

http_code() {  # http_code PORT SCHEME -> status of GET /v2/ (000 if no answer)
  curl -sk -o /dev/null -m 2 -w '%{http_code}' "$2://127.0.0.1:$1/v2/" 2>/dev/null || true
}

do_stop() {
  local port=$1 pid i
  check_port "$port"
  if pid=$(running_pid "$port"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then log "PID $pid ignored SIGTERM; sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
    log "stopped registry PID $pid on 127.0.0.1:$port"
  fi
  rm -f "$RUNDIR_BASE/$port/registry.pid"
}

do_start() {
  local port=$1 storage=$2; shift 2
  local htpasswd="" cert="" key="" realm="" issuer="" service="" rootcert="" scheme=http
  check_port "$port"
  if [[ $# -gt 0 && "$1" != --* ]]; then htpasswd=$1; shift; fi
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --htpasswd) htpasswd=$2; shift 2 ;;
      --tls) cert=$2; key=$3; shift 3 ;;
      --token) realm=$2; issuer=$3; service=$4; rootcert=$5; shift 5 ;;
      *) die "unknown option: $1" ;;
    esac
  done
  mkdir -p "$storage"; storage=$(cd "$storage" && pwd -P)
  [[ -z "$htpasswd" ]] || { [[ -f "$htpasswd" ]] || die "htpasswd file not found: $htpasswd"; htpasswd=$(abspath "$htpasswd"); }
  if [[ -n "$cert" ]]; then
    [[ -f "$cert" && -f "$key" ]] || die "TLS certificate or key not found"; cert=$(abspath "$cert"); key=$(abspath "$key"); scheme=https
  fi
  [[ -z "$rootcert" ]] || { [[ -f "$rootcert" ]] || die "token root cert not found: $rootcert"; rootcert=$(abspath "$rootcert"); }
  [[ -z "$htpasswd" || -z "$realm" ]] || die "--htpasswd and --token exclude each other"

  local dir="$RUNDIR_BASE/$port" pid code i
  mkdir -p "$dir"
  local want="storage=$storage htpasswd=$htpasswd tls=$cert,$key token=$realm,$issuer,$service,$rootcert"
  if pid=$(running_pid "$port"); then
    if [[ "$(cat "$dir/settings" 2>/dev/null)" == "$want" ]]; then echo "$pid"; return 0; fi
    log "registry on port $port runs with other settings; restarting"
    do_stop "$port"
  fi
  local bin; bin=$(find_bin)
  code=$(http_code "$port" http); [[ "$code" == 000 ]] || die "127.0.0.1:$port already answers HTTP ($code) - not ours"
  code=$(http_code "$port" https); [[ "$code" == 000 ]] || die "127.0.0.1:$port already answers HTTPS ($code) - not ours"

  local secret; secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  {
    echo "version: 0.1"
    echo "log: {level: info, formatter: text, fields: {service: ocilearn-registry}}"
    echo "storage:"
    echo "  filesystem: {rootdirectory: \"$storage\"}"
    echo "  cache: {blobdescriptor: inmemory}"
    echo "  delete: {enabled: true}"
    echo "  maintenance: {uploadpurging: {enabled: false}}"
    echo "http:"
    echo "  addr: 127.0.0.1:$port"
    echo "  secret: $secret"
    echo "  headers: {X-Content-Type-Options: [nosniff]}"
    echo "  draintimeout: 1s"
    if [[ -n "$cert" ]]; then echo "  tls: {certificate: \"$cert\", key: \"$key\"}"; fi
    if [[ -n "$htpasswd" ]]; then
      echo "auth:"; echo "  htpasswd: {realm: ocilearn-registry, path: \"$htpasswd\"}"
    elif [[ -n "$realm" ]]; then
      echo "auth:"; echo "  token: {realm: \"$realm\", service: \"$service\", issuer: \"$issuer\", rootcertbundle: \"$rootcert\"}"
    fi
  } > "$dir/config.yml"
  grep -q "^  addr: 127.0.0.1:$port\$" "$dir/config.yml" || die "rendered config does not bind 127.0.0.1:$port"
  echo "$want" > "$dir/settings"

  setsid "$bin" serve "$dir/config.yml" > "$dir/registry.log" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" > "$dir/registry.pid"
  for ((i = 0; i < TIMEOUT * 10; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$dir/registry.pid"; tail -n 20 "$dir/registry.log" >&2 || true
      die "registry exited during start-up (log: $dir/registry.log)"
    fi
    code=$(http_code "$port" "$scheme")
    if [[ "$code" == 200 || "$code" == 401 ]]; then
      log "registry PID $pid ready on $scheme://127.0.0.1:$port (GET /v2/ -> $code; log $dir/registry.log)"
      echo "$pid"; return 0
    fi
    sleep 0.1
  done
  do_stop "$port"
  die "registry not ready after ${TIMEOUT}s (log: $dir/registry.log)"
}

cmd=${1:-}
case "$cmd" in
  start) shift; [[ $# -ge 2 ]] || usage; do_start "$@" ;;
  stop) [[ $# -eq 2 ]] || usage; do_stop "$2" ;;
  status) [[ $# -eq 2 ]] || usage; check_port "$2"; running_pid "$2" || exit 1 ;;
  ""|-h|--help|help) usage ;;
  *) [[ $# -ge 2 ]] || usage; do_start "$@" ;;
esac
