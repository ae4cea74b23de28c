#!/usr/bin/env bash
# Installs the S3-compatible test server (moto, from PyPI) into e2e/.venv, which the S3 blob tests
# run as `e2e/.venv/bin/python -m moto.server`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../venv.sh" "$here/requirements.txt"
