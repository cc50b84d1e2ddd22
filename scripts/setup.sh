#!/usr/bin/env bash
# setup.sh — everything ocilearn needs on a fresh Debian/Ubuntu machine, idempotent.
#
#   scripts/setup.sh lab    system packages for the course + .venv with the lab extra
#   scripts/setup.sh test   the above + the reference tools and test dependencies
#
# As root, missing Debian packages are installed with apt-get. As an ordinary user the
# script prints the exact apt-get command to run and stops (exit 1) when a package the
# chosen target needs is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-test}

# Debian packages per target (binary to look for = package)
LAB_PKGS=(dot=graphviz)
TEST_PKGS=(dot=graphviz skopeo=skopeo umoci=umoci runc=runc crun=crun docker-registry=docker-registry
  htpasswd=apache2-utils chromium=chromium chromedriver=chromium-driver fc-list=fontconfig
  ping=iputils-ping busybox=busybox-static jq=jq setfattr=attr setcap=libcap2-bin ip=iproute2
  newuidmap=uidmap curl=curl buildah=buildah tree=tree hyperfine=hyperfine setpriv=util-linux openssl=openssl
  node=nodejs npm=npm podman=podman conmon=conmon containerd=containerd ctr=containerd)
pkgs=("${LAB_PKGS[@]}")
[[ $target == test ]] && pkgs=("${TEST_PKGS[@]}")

missing=()
for pair in "${pkgs[@]}"; do
  bin=${pair%%=*}; pkg=${pair#*=}
  command -v "$bin" >/dev/null 2>&1 || missing+=("$pkg")
done
# fonts for readable screenshots
[[ $target == test && ! -d /usr/share/fonts/truetype/liberation ]] && missing+=(fonts-liberation)
# The interpreter of .venv: $PYTHON, else the distribution's /usr/bin/python3 (if 3.11 or
# later), else python3 from PATH. The distribution's rather than the first on PATH (a pyenv
# build, say): every user of the machine can execute it (a learner's server runs as that
# user; an interpreter built under root's home is out of their reach), and Debian builds
# into it the extension modules the runtime imports (_socket, select, _struct, fcntl),
# which a source build loads as shared libraries: ≈ 0.8 ms of every `ocilearn run`
# (BENCHMARKS.md "Run").
if [[ -n ${PYTHON:-} ]]; then PY=$PYTHON
elif /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then PY=/usr/bin/python3
else PY=python3
fi
# python3-venv on Debian/Ubuntu when the venv module is incomplete
"$PY" -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)

if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages: ${missing[*]}" >&2
    echo "setup: install them with:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "setup: Python >= 3.11 needed ($PY is $("$PY" -V 2>&1))" >&2; exit 1; }
# A .venv copied from another checkout (or another user's) looks ready but runs the other
# checkout's code, or an interpreter this user cannot execute: detect and rebuild it.
if [[ -e .venv ]]; then
  if ! .venv/bin/python -c 'pass' 2>/dev/null; then
    echo "setup: .venv's interpreter does not run for $(id -un) ($(readlink -f .venv/bin/python 2>/dev/null)): recreating .venv" >&2
    rm -rf .venv
  # -I: isolated, so the current directory cannot stand in for the installed package;
  # pip's shebang names the interpreter (of this .venv, or of the one it was copied from)
  elif { compgen -G ".venv/.ocilearn-*" >/dev/null &&
         ! .venv/bin/python -I -c "import sys, ocilearn; sys.exit(not ocilearn.__file__.startswith('$PWD/ocilearn/'))" 2>/dev/null; } ||
       { [[ -f .venv/bin/pip ]] && [[ "$(head -1 .venv/bin/pip)" != "#!$PWD/.venv/bin/python"* ]]; }; then
    echo "setup: .venv belongs to another checkout (ocilearn is imported from elsewhere): recreating .venv" >&2
    rm -rf .venv
  fi
fi
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
extras=lab
[[ $target == test ]] && extras=lab,test
# keyed on bin/ocilearn too: the install copies that script into .venv/bin (an editable
# install as well), so a change to it needs a reinstall
key=$(cat pyproject.toml bin/ocilearn | sha256sum | cut -c1-16)
stamp=.venv/.ocilearn-$extras-compat-$key
# an install with the test extras has the lab ones too: `make lab` after `make test`
# needs nothing more
if [[ ! -f $stamp && ! -f .venv/.ocilearn-lab,test-compat-$key ]]; then
  echo "setup: installing ocilearn[$extras] into .venv" >&2
  # editable_mode=compat: the install is one line in a .pth naming this checkout, which
  # `site` adds to sys.path for free; setuptools' default editable finder is a module that
  # `site` imports at every start (with pathlib, re, urllib.parse): ~10 ms of every
  # `ocilearn` command, the runtime under podman or containerd included (BENCHMARKS "Run")
  .venv/bin/pip install -q --disable-pip-version-check -e ".[$extras]" --config-settings editable_mode=compat \
    2> >(grep -v "is ignored: it is neither" >&2)
  rm -f .venv/.ocilearn-*-compat-*  # the stamps of earlier installs
  touch "$stamp"
fi
# Bytecode for ocilearn itself (an editable install is not compiled by pip): with
# PYTHONDONTWRITEBYTECODE set, every `ocilearn` process would otherwise recompile it.
.venv/bin/python -m compileall -q -j 0 ocilearn >/dev/null
# JupyterLab: no news/update toasts (they cover the notebook in workshops and screenshots)
settings=.venv/share/jupyter/lab/settings
mkdir -p "$settings"
[[ -f $settings/overrides.json ]] || echo '{"@jupyterlab/apputils-extension:notification": {"checkForUpdates": false, "fetchNews": "false"}}' > "$settings/overrides.json"
echo "setup: ready ($target)" >&2
