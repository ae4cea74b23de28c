#!/usr/bin/env bash
# Issue 14: WebSocket fan-out of the ChatServer face and its memory per open socket, with
# crates/confab-cs-load (`cs-fanout`) against the release `confab` binary on a fresh SQLite data
# directory. Prints every report; the figures are copied into docs/benchmarks.md.
#
#   bench/cs-fanout.sh    (env: USERS=10000 GROUP=1000 CONCURRENCY=4 LOGINS=200 SEQ_MSGS=200
#                          RATES=10,30 STEADY_SECS=10 POSTERS=8 SAT_MSGS=1000)
#   NO_BUILD=1 CONFAB_BIN=... LOAD_BIN=... bench/cs-fanout.sh   (binaries built before)
#
# USERS users register over REST (one device session each, Argon2 per registration, CONCURRENCY in
# flight); GROUP of them form one group chat and open their sockets; the fan-out scenarios run; then
# every other user opens a socket too (USERS sockets in all, idle) and some scenarios run again.
# Server memory is VmRSS / Pss of the server process, CPU its utime+stime (cs-fanout --pid).
# The machine's load average is sampled every 10 s during the run and printed at the end.
set -euo pipefail
USERS="${USERS:-10000}"; GROUP="${GROUP:-1000}"; CONC="${CONCURRENCY:-4}"; LOGINS="${LOGINS:-200}"
SEQ_MSGS="${SEQ_MSGS:-200}"; RATES="${RATES:-10,30}"; STEADY_SECS="${STEADY_SECS:-10}"
POSTERS="${POSTERS:-8}"; SAT_MSGS="${SAT_MSGS:-1000}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
work="$(mktemp -d /tmp/confab-cs-fanout.XXXXXX)"
# Client and server each hold up to USERS sockets (one process may open at most 20,000 files here).
ulimit -n "$(ulimit -Hn)" || true
[ -n "${NO_BUILD:-}" ] || (cd "$repo" && cargo build --release -p confab -p confab-cs-load)
LOAD="${LOAD_BIN:-$target/release/cs-fanout}"
CONFAB="${CONFAB_BIN:-$target/release/confab}"

export CONFAB_DATA_DIR="$work/data" CONFAB_HTTP_ADDR=127.0.0.1:0 CONFAB_XMPP_ADDR=127.0.0.1:0 NO_COLOR=1
APP_JSON="$("$CONFAB" app create --name fanout)"
APP_ID="$(printf '%s' "$APP_JSON" | grep -o '"id":[0-9]*' | head -1 | cut -d: -f2)"
export CONFAB_CHATSERVER_ADDR=127.0.0.1:0 CONFAB_CHATSERVER_APP_ID="$APP_ID"
# Room for every socket the run opens (the default cap is 10,000 per node).
export CONFAB_CHATSERVER_MAX_SOCKETS=$((USERS + 1000))

CF_PID=; SAMPLER=
cleanup() {
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
  [ -n "$CF_PID" ] && kill "$CF_PID" 2>/dev/null || true
}
trap cleanup EXIT
: > "$work/confab.log"
"$CONFAB" serve 2> "$work/confab.log" & CF_PID=$!
for _ in $(seq 1 100); do
  grep -q "listening chatserver=" "$work/confab.log" && break
  sleep 0.1
done
CS="$(grep -o 'listening chatserver=[^ ,;]*' "$work/confab.log" | head -1 | cut -d= -f2)"
[ -n "$CS" ] || { echo "the ChatServer face did not start:" >&2; cat "$work/confab.log" >&2; exit 1; }
sleep 1

( while sleep 10; do cut -d' ' -f1-3 /proc/loadavg; done ) > "$work/load.txt" & SAMPLER=$!
echo "confab $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes') (release), $(date -u '+%F %T') UTC, $(nproc) cpus, open files $(ulimit -n)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
"$LOAD" --addr "$CS" --pid "$CF_PID" --users "$USERS" --group "$GROUP" --concurrency "$CONC" \
  --logins "$LOGINS" --seq-msgs "$SEQ_MSGS" --rates "$RATES" --steady-secs "$STEADY_SECS" \
  --posters "$POSTERS" --sat-msgs "$SAT_MSGS"
kill "$SAMPLER" 2>/dev/null || true; SAMPLER=
echo "load average every 10 s during the run (1/5/15 min): $(tr '\n' ';' < "$work/load.txt")"
echo "server log: $(grep -c ' WARN ' "$work/confab.log" || true) warnings, $(grep -c ' ERROR ' "$work/confab.log" || true) errors"
grep -E ' (WARN|ERROR) ' "$work/confab.log" | sed -E 's/^[^ ]+ //' | sort | uniq -c | sort -rn | head -5 || true
kill "$CF_PID"; wait "$CF_PID" 2>/dev/null || true; CF_PID=
echo "data directory after the run: $(du -sh "$work/data" | cut -f1)"
rm -rf "$work"
