#!/usr/bin/env bash
# Chaos under load: `kill -9` the server at a random moment of every round while clients send 1:1
# messages (with and without save_to_history, to online and offline users) and group messages, restart
# it, and check that nothing it acknowledged is lost or delivered twice, that SQLite's integrity check
# passes and that it listens again within 5 s.
# The rounds and the checks are in scripts/chaos.py (Python 3, standard library only).
#
#   scripts/chaos.sh [rounds]                 (default 50; release binaries, as deployed)
#   CHAOS_PROFILE=debug scripts/chaos.sh 3    (what CI runs: a fat-LTO release build takes too long there)
# More knobs: CHAOS_ARGS="--clients 6 --messages 40 --interval-ms 25 --seed N".
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-50}"
profile="${CHAOS_PROFILE:-release}"
flag=()
[ "$profile" = release ] && flag=(--release)
cargo build "${flag[@]}" -p confab -p confab-xmpp-load
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
# The load generator binds one loopback source address per client (127.0.1.x) and opens a few sockets each.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# shellcheck disable=SC2086
exec python3 scripts/chaos.py --confab "$target_dir/$profile/confab" --load "$target_dir/$profile/xmpp-load" \
  --rounds "$rounds" ${CHAOS_ARGS:-}
