#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, then the real ConnectyCube SDK end to end.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -p confab
cargo test --workspace

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export CONFAB_BIN="$target_dir/debug/confab"
(cd e2e && npm ci --no-audit --no-fund && npm test)
