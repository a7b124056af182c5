#!/usr/bin/env bash
# ctest's python_client: installs the client with pip, as a user would, into a virtual environment
# made with Debian's venv over the system's grpcio, protobuf, NumPy and pytest, and runs this
# directory's tests against that installed copy (never the source tree).
#
# Usage: run_in_venv.sh BUILD_DIR SOURCE_DIR [PYTEST_ARG...]
# The package is built from a copy of clients/python in BUILD_DIR, so builds of several presets
# never write into the sources at the same time; BACKFLOW_PROTO_DIR points setup.py at proto/.
set -euo pipefail
build=$1 source=$2
shift 2
venv="$build/python-venv"
staging="$build/python-package"

if [[ ! -x "$venv/bin/python" ]]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
rm -rf "$staging"
mkdir -p "$staging"
cp -r "$source/clients/python/"{pyproject.toml,setup.py,README.md,backflow} "$staging/"
# --no-index: the dependencies must already be there (the system's, through the venv).
BACKFLOW_PROTO_DIR="$source/proto" PIP_NO_CACHE_DIR=1 "$venv/bin/python" -m pip install --quiet \
  --disable-pip-version-check --no-build-isolation --no-index "$staging"

unset PYTHONPATH
cd "$build"
installed=$("$venv/bin/python" -c 'import backflow; print(backflow.__file__)')
if [[ "$installed" != "$venv/"* ]]; then
  echo "run_in_venv: backflow imports from $installed, not from $venv" >&2
  exit 1
fi
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" "$source/clients/python/tests"
