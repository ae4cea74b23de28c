#!/usr/bin/env bash
# Scale-out benchmark (docs/benchmarks.md "Scale-out"): one node on SQLite, one on PostgreSQL, two
# and three on PostgreSQL + NATS, with the XMPP load generator; the rounds are in
# scripts/bench_cluster.py (Python 3, standard library only).
#
#   scripts/bench-cluster.sh [--clients N] [--messages M] [--rate R] [--setups sqlite,postgres,2,3] [--timeline] [--pause-ms N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p confab -p confab-xmpp-load
./scripts/nats.sh
if [[ -z "${CONFAB_TEST_DATABASE_URL:-}" ]]; then
    eval "$(scripts/postgres.sh start)"
    trap 'scripts/postgres.sh stop' EXIT
fi
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
python3 scripts/bench_cluster.py --confab "$target_dir/release/confab" --load "$target_dir/release/xmpp-load" "$@"
