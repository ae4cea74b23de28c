#!/usr/bin/env bash
# Installs the ChatServer test client's libraries (e2e/chatserver/requirements.txt, from PyPI) into
# e2e/.venv, which test/chatserver-sdk.test.mjs runs `cs_peer.py` with.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../venv.sh" "$here/requirements.txt"
