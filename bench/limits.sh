#!/usr/bin/env bash
# What the input limits cost: the same saturated XMPP load against confab with its default limits and
# with them off, alternating, REPEAT times each, on one machine in one run. Prints every xmpp-load report;
# the figures are copied into docs/robustness.md.
#
#   bench/limits.sh            (env: N=1000 MSGS=200 IN_FLIGHT=8 REPEAT=3 LIMITS="on off")
#   NO_BUILD=1 CONFAB_BIN=... LOAD_BIN=... bench/limits.sh   (binaries built before, e.g. another commit)
#
# "on" is the default configuration: per-session stanza and byte rates (100/s, 512 KiB/s, with their
# bursts), the XML depth/attribute bounds, the connection caps. "off" sets the rates and caps to 0 (off)
# and the XML bounds to their ceilings (the reader still counts depth: that check cannot be removed).
# Loads: N clients on fixed pairs (each sends to the next), MSGS messages each, IN_FLIGHT undelivered per
# client, no history; once without and once with XEP-0198 (each message followed by <r/>, so every
# message waits for its recipient's ack before it counts for its sender).
# Server CPU = utime+stime of the server process over the message phase (xmpp-load --pid).
set -euo pipefail
N="${N:-1000}"; MSGS="${MSGS:-200}"; IN_FLIGHT="${IN_FLIGHT:-8}"; REPEAT="${REPEAT:-3}"
LIMITS="${LIMITS:-on off}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
work="$(mktemp -d /tmp/confab-limits.XXXXXX)"
ulimit -n "$(ulimit -Hn)"
[ -n "${NO_BUILD:-}" ] || (cd "$repo" && cargo build --release -p confab -p confab-xmpp-load)
LOAD="${LOAD_BIN:-$target/release/xmpp-load}"
CONFAB="${CONFAB_BIN:-$target/release/confab}"
log() { echo "[$(date -u +%T)] $*" >&2; }

export CONFAB_DATA_DIR="$work/confab" CONFAB_HTTP_ADDR=127.0.0.1:0 CONFAB_XMPP_ADDR=127.0.0.1:0 NO_COLOR=1
APP_JSON="$("$CONFAB" app create --name bench)"
CF_PID=
trap '[ -n "$CF_PID" ] && kill $CF_PID 2>/dev/null || true' EXIT
cf_start() {
  env "$@" "$CONFAB" serve 2> "$work/confab.log" & CF_PID=$!
  for _ in $(seq 1 100); do
    grep -q "listening xmpp=" "$work/confab.log" && grep -q "listening http=" "$work/confab.log" && break
    sleep 0.1
  done
  HTTP="$(grep -o 'listening http=[^ ,;]*' "$work/confab.log" | head -1 | cut -d= -f2)"
  XMPP="$(grep -o 'listening xmpp=[^ ,;]*' "$work/confab.log" | head -1 | cut -d= -f2)"
  sleep 1
}
cf_stop() { kill "$CF_PID"; wait "$CF_PID" 2>/dev/null || true; CF_PID=; }

LIMITS_OFF=(CONFAB_XMPP_MAX_STANZAS_PER_SEC=0 CONFAB_XMPP_MAX_BYTES_PER_SEC=0
  CONFAB_XMPP_MAX_CONNECTIONS_PER_IP=0 CONFAB_MAX_CONNECTIONS=0
  CONFAB_XMPP_MAX_DEPTH=1000000 CONFAB_XMPP_MAX_ATTRIBUTES=1000000 CONFAB_XMPP_MAX_ATTRIBUTE_BYTES=1000000000)

cf_start
log "creating $N users and sessions over REST"
python3 "$repo/bench/lib/confab-users.py" "$HTTP" "$APP_JSON" "$N" benchpass1 "$work"
cf_stop

rev="${REV:-$(git -C "$repo" rev-parse --short HEAD)}"
for rep in $(seq 1 "$REPEAT"); do
  for sm in "" "--sm"; do
    for limits in $LIMITS; do
      if [ "$limits" = on ]; then cf_start; else cf_start "${LIMITS_OFF[@]}"; fi
      label="confab $rev limits $limits${sm:+, XEP-0198}, run $rep"
      log "$label"
      "$LOAD" --domain localhost --concurrency 50 --port "${XMPP##*:}" --users-file "$work/cf-token.txt" \
        --clients "$N" --messages "$MSGS" --interval-ms 0 --in-flight "$IN_FLIGHT" $sm \
        --pid "$CF_PID" --label "$label" > "$work/run-$rep-$limits$sm.txt"
      cf_stop
    done
  done
done

echo "N=$N messages/client=$MSGS in-flight=$IN_FLIGHT repeat=$REPEAT cpus=$(nproc)"
cat "$work"/run-*.txt
echo "(raw reports in $work)"
