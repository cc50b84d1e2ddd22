#!/usr/bin/env bash
# scripts/hub/start.sh — the workshop hub in the foreground (what `make hub` runs; Ctrl-C stops
# it and every learner's server).
#
#   HUB_PORT=8000 LEARNERS="ana ben" HUB_PASSWORD=... scripts/hub/start.sh
#
# Variables (Makefile variables of the same names): HUB_PORT, LEARNERS, HUB_PASSWORD (at least
# 8 characters; generated and kept in $HUB_STATE/password when empty), HUB_STATE (default
# .cache/hub, mode 0700), HUB_VENV, HUB_NODE, HUB_HOME_BASE. HUB_SETUP=0 skips scripts/hub/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HUB_PORT=${HUB_PORT:-8000}
export LEARNERS=${LEARNERS:-"learner1 learner2 learner3"}
export HUB_STATE=${HUB_STATE:-.cache/hub}
export HUB_VENV=${HUB_VENV:-/opt/ocilearn-hub/venv}
export HUB_NODE=${HUB_NODE:-.cache/node}
export HUB_HOME_BASE=${HUB_HOME_BASE:-/home}
[[ -n $HUB_STATE ]] || { echo "hub: HUB_STATE is empty" >&2; exit 1; }
[[ $HUB_PORT =~ ^[0-9]+$ ]] && ((HUB_PORT > 0 && HUB_PORT < 65534)) || { echo "hub: HUB_PORT must be a port number (got '$HUB_PORT')" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "hub: runs as root (it starts each learner's server as that learner): sudo make hub" >&2; exit 1; }

[[ ${HUB_SETUP:-1} == 0 ]] || scripts/hub/setup.sh
LEARNERS=$(python3 scripts/hub/workshop.py check-names $LEARNERS) || exit 1
export LEARNERS

mkdir -p "$HUB_STATE"
chmod 0700 "$HUB_STATE"
export HUB_STATE=$(cd "$HUB_STATE" && pwd)
password_note="(given)"
if [[ -z ${HUB_PASSWORD:-} ]]; then
  if [[ ! -s $HUB_STATE/password ]]; then
    (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(9))' > "$HUB_STATE/password")
  fi
  HUB_PASSWORD=$(<"$HUB_STATE/password")
  password_note="(generated, kept in $HUB_STATE/password)"
fi
export HUB_PASSWORD
(umask 077; echo "$LEARNERS" > "$HUB_STATE/learners")

cat >&2 <<INFO
hub: JupyterHub for the ocilearn workshop
  URL          http://127.0.0.1:$HUB_PORT/   (loopback only: tunnel it, ssh -L $HUB_PORT:127.0.0.1:$HUB_PORT HOST)
  LEARNERS     $LEARNERS
  HUB_PASSWORD $HUB_PASSWORD $password_note
  HUB_STATE    $HUB_STATE (sqlite, cookie secret, proxy token; mode 0700)
  HUB_VENV     $HUB_VENV (shared, read-only for learners)
  ports        proxy API ${HUB_PROXY_API_PORT:-$((HUB_PORT + 1))}, hub ${HUB_INTERNAL_PORT:-$((HUB_PORT + 2))} (127.0.0.1)
  reset        make hub-reset LEARNER=NAME   (all: make hub-reset)
INFO
export HUB_NODE=$(realpath -m "$HUB_NODE")
exec "$HUB_VENV/bin/jupyterhub" -f scripts/hub/jupyterhub_config.py
