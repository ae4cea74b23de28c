#!/usr/bin/env bash
# Installs the S3-compatible test server (moto, from PyPI) into e2e/.venv, which the S3 blob tests
# run as `e2e/.venv/bin/python -m moto.server`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/../.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
