#!/usr/bin/env bash
# Runs the slixmpp interoperability test against target/debug/confab (build it first:
# `cargo build -p confab`; or set CONFAB_BIN). Creates e2e/.venv on first use.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/../.venv"
"$here/../venv.sh" "$here/requirements.txt"
exec timeout 60 "$venv/bin/python" "$here/test_slixmpp.py"
