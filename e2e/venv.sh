#!/usr/bin/env bash
# Creates e2e/.venv when missing (installing Debian's python3-venv if python3 needs it) and installs
# the PyPI requirements files given as arguments into it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
if [ ! -x "$venv/bin/pip" ]; then
  if ! python3 -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
fi
for requirements in "$@"; do
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
done
