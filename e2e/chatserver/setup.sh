#!/usr/bin/env bash
# Installs the ChatServer test client's libraries (e2e/chatserver/requirements.txt, from PyPI) into
# e2e/.venv, which test/chatserver-sdk.test.mjs runs `cs_peer.py` with.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/../.venv"
if [ ! -x "$venv/bin/pip" ]; then
  # Debian's python3 needs its venv package for this; install it when missing.
  if ! python3 -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
