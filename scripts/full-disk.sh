#!/usr/bin/env bash
# Full disk: the data directory on an 8 MiB tmpfs, filled up under REST and XMPP writes, then freed.
# Checks clear errors (REST 5xx with `{"errors": …}`, XMPP bounces), no lost acknowledged data, recovery
# without a restart and SQLite's integrity check (scripts/full_disk.py). Needs root (`mount -t tmpfs`).
#
#   scripts/full-disk.sh                       (debug binaries; FULL_DISK_PROFILE=release for release)
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${FULL_DISK_PROFILE:-debug}"
flag=()
[ "$profile" = release ] && flag=(--release)
cargo build "${flag[@]}" -p confab -p confab-xmpp-load
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
exec python3 scripts/full_disk.py "$target_dir/$profile/confab" "$target_dir/$profile/xmpp-load"
