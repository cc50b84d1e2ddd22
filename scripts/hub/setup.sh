#!/usr/bin/env bash
# scripts/hub/setup.sh — what the workshop hub needs, idempotent (run by `make hub`).
#
#   HUB_VENV   the ONE shared installation learners use (default /opt/ocilearn-hub/venv):
#              a venv on Debian's /usr/bin/python3 (every user may execute it; a venv on an
#              interpreter under /root would not run for learners) with ocilearn installed
#              as a regular (non-editable) package plus the lab and hub extras. Owned by
#              root, readable and executable by everyone, writable by nobody else.
#   HUB_NODE   configurable-http-proxy from the npm registry, in a project-local prefix
#              (default .cache/node); only the hub (root) runs it.
#
# Debian packages: python3-venv, graphviz (the image graph), nodejs + npm (the proxy),
# uidmap (newuidmap for rootless containers with several ids, optional for the course).
set -euo pipefail
cd "$(dirname "$0")/../.."
HUB_VENV=${HUB_VENV:-/opt/ocilearn-hub/venv}
HUB_NODE=${HUB_NODE:-.cache/node}
CHP_VERSION=${CHP_VERSION:-5.3.0}
SYS_PY=${HUB_PYTHON:-/usr/bin/python3}
[[ $HUB_VENV == /* ]] || { echo "hub setup: HUB_VENV must be an absolute path (got '$HUB_VENV')" >&2; exit 1; }
[[ -n $HUB_NODE ]] || { echo "hub setup: HUB_NODE is empty" >&2; exit 1; }

if [[ $(id -u) -ne 0 ]]; then
  echo "hub setup: the hub runs each learner's server as their own Unix user, so it runs as root: sudo make hub" >&2
  exit 1
fi

missing=()
for pair in dot=graphviz node=nodejs npm=npm newuidmap=uidmap useradd=passwd; do
  command -v "${pair%%=*}" >/dev/null 2>&1 || missing+=("${pair#*=}")
done
[[ -x $SYS_PY ]] && "$SYS_PY" -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
  echo "hub setup: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
"$SYS_PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "hub setup: Python >= 3.11 needed ($SYS_PY is $("$SYS_PY" -V 2>&1))" >&2; exit 1; }

# --- the shared, read-only Python installation
umask 022
mkdir -p "$(dirname "$HUB_VENV")"
[[ -x $HUB_VENV/bin/python ]] || "$SYS_PY" -m venv "$HUB_VENV"
deps_stamp=$HUB_VENV/.ocilearn-deps-$(sha256sum pyproject.toml | cut -c1-16)
# ocilearn itself: installed as a copy, re-installed when any file of the package changes
src_hash=$( (cat pyproject.toml; find ocilearn -type f ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16)
src_stamp=$HUB_VENV/.ocilearn-src-$src_hash
if [[ ! -f $deps_stamp ]]; then
  echo "hub setup: installing ocilearn[lab,hub] into $HUB_VENV" >&2
  "$HUB_VENV/bin/pip" install -q --disable-pip-version-check ".[lab,hub]" 2> >(grep -v "is ignored: it is neither" >&2)
  rm -f "$HUB_VENV"/.ocilearn-deps-*; touch "$deps_stamp"
fi
if [[ ! -f $src_stamp ]]; then
  echo "hub setup: installing this checkout's ocilearn into $HUB_VENV" >&2
  "$HUB_VENV/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall . 2> >(grep -v "is ignored: it is neither" >&2)
  rm -f "$HUB_VENV"/.ocilearn-src-*; touch "$src_stamp"
  rm -rf build ocilearn.egg-info
fi
# the course as handed to learners: a read-only copy of the notebooks, next to the library
# it was installed with (the spawner copies it into each learner's home at first login)
course=$HUB_VENV/share/ocilearn/course
rm -rf "$course.new"; mkdir -p "$course.new"
cp notebooks/[0-9]*.ipynb "$course.new/"
rm -rf "$course"; mv "$course.new" "$course"
# JupyterLab defaults for every learner: no news/update toasts over the notebook
settings=$HUB_VENV/share/jupyter/lab/settings
mkdir -p "$settings"
echo '{"@jupyterlab/apputils-extension:notification": {"checkForUpdates": false, "fetchNews": "false"}}' > "$settings/overrides.json"
# readable and executable by learners, writable by root only
chown -R root:root "$HUB_VENV"
chmod -R u+rwX,go+rX,go-w "$HUB_VENV"
d=$HUB_VENV
while [[ $d != / ]]; do chmod go+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done

# --- configurable-http-proxy from npm, project-local
if [[ ! -x $HUB_NODE/node_modules/.bin/configurable-http-proxy ]] ||
   [[ $("$HUB_NODE/node_modules/.bin/configurable-http-proxy" --version 2>/dev/null) != "$CHP_VERSION" ]]; then
  echo "hub setup: npm install configurable-http-proxy@$CHP_VERSION into $HUB_NODE" >&2
  mkdir -p "$HUB_NODE"
  npm install --silent --no-audit --no-fund --prefix "$HUB_NODE" "configurable-http-proxy@$CHP_VERSION" >/dev/null
fi
echo "hub setup: ready ($HUB_VENV, $HUB_NODE/node_modules/.bin/configurable-http-proxy)" >&2
