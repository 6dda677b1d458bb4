#!/usr/bin/env bash
# Installs moto's server (PyPI moto[server], pinned below), the stand-in for
# the AWS EC2/SSM control plane that the tests run on loopback
# (internal/testbed/motoserver), into a virtualenv at .cache/moto. Its entry point is
# .cache/moto/bin/moto_server. About a minute the first time; a no-op while
# the pinned version is installed.
#
# Needs: python3 with the venv module and ensurepip (Debian: python3-venv).
set -euo pipefail
cd "$(dirname "$0")/.."

version=5.2.5
dir=.cache/moto
python=${PYTHON:-python3}

installed() {
  [[ -x $dir/bin/moto_server ]] &&
    "$dir/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("moto") != sys.argv[1])' "$version" 2>/dev/null
}
if installed; then
  exit 0
fi

command -v "$python" >/dev/null 2>&1 || { echo "fetch-moto: '$python' not found on PATH" >&2; exit 1; }
"$python" -c 'import venv, ensurepip' 2>/dev/null || {
  echo "fetch-moto: $python cannot create a virtualenv (Debian: apt-get install python3-venv)" >&2
  exit 1
}

# A venv cannot be moved once made, so it is built in place; whatever a
# failed or older install left there goes first.
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
echo "installing moto[server]==$version into $dir (about a minute, once)"
trap 'rm -rf "$dir"' ERR
"$python" -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$version"
trap - ERR
installed || { echo "fetch-moto: moto $version not importable from $dir after install" >&2; exit 1; }
"$dir/bin/python" -c 'import importlib.metadata as m; print("moto", m.version("moto"))'
