#!/usr/bin/env bash
# scripts/hub/reset.sh [NAME …] — reset learners' course copies (`make hub-reset [LEARNER=NAME]`).
# Without a name: every learner of the last `make hub` ($HUB_STATE/learners). Each learner's
# containers are deleted, their ~/ocilearn-course is moved to ~/ocilearn-course.before-reset-STAMP
# (nothing is lost) and a fresh copy of the course takes its place.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HUB_VENV=${HUB_VENV:-/opt/ocilearn-hub/venv}
export HUB_STATE=${HUB_STATE:-.cache/hub}
[[ $(id -u) -eq 0 ]] || { echo "hub-reset: runs as root (it acts as each learner): sudo make hub-reset" >&2; exit 1; }
[[ -x $HUB_VENV/bin/python ]] || { echo "hub-reset: $HUB_VENV is not set up (run make hub once)" >&2; exit 1; }
exec "$HUB_VENV/bin/python" scripts/hub/workshop.py reset "$@"
