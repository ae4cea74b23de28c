#!/usr/bin/env bash
# Runs the same XMPP load (crates/confab-xmpp-load) against ejabberd (Debian package) and confab on
# this machine, one after the other, and prints both reports side by side.
#
#   bench/ejabberd.sh [CLIENTS] [MESSAGES_PER_CLIENT] [INTERVAL_MS]     (defaults: 1000 20 100)
#
# BENCH_CONFAB_AUTH=token makes confab's clients log in with REST session tokens (what the ConnectyCube SDK
# usually does) instead of the account password (Argon2id verification per login).
#
# Needs root (apt-get, ejabberd runs as its own user). Builds confab and xmpp-load in release mode.
# Both servers get plain TCP (no TLS), SASL PLAIN with the account password, no traffic shaper.
# ejabberd keeps its default SCRAM password storage; confab verifies Argon2id hashes — both are what
# each server does by default, and the per-login hashing cost dominates the connect phase.
set -euo pipefail
N="${1:-1000}"
MSGS="${2:-20}"
INTERVAL="${3:-100}"
CONCURRENCY="${CONCURRENCY:-50}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
work="$(mktemp -d /tmp/confab-bench.XXXXXX)"
chmod 755 "$work"
ulimit -n "$(ulimit -Hn)" || true
PASS=benchpass1

if ! command -v ejabberdctl >/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y ejabberd
fi
(cd "$repo" && cargo build --release -p confab -p confab-xmpp-load)
LOAD="$target/release/xmpp-load"
CONFAB="$target/release/confab"

# ---------- ejabberd ----------
# ejabberdctl starts the node through `su`, whose pam_limits would give it 1024 descriptors.
. "$repo/bench/lib/ejabberd.sh"
ejabberd_prepare "$work"
ej() { ejabberdctl --ctl-config "$work/ejabberd/ejabberdctl.cfg" "$@"; }
ej --logs "$work/ejabberd/logs" --spool "$work/ejabberd/spool" start
ej started
# One user the documented way; the rest by in-band registration (XEP-0077), because every
# `ejabberdctl register` starts an Erlang VM (~1 s each).
ej register u1 bench.localhost "$PASS" >/dev/null
for i in $(seq 1 "$N"); do echo "u$i $PASS"; done > "$work/ejabberd-users.txt"
"$LOAD" --port 5322 --domain bench.localhost --users-file "$work/ejabberd-users.txt" \
  --clients "$N" --messages 0 --register --label "ejabberd registration" >/dev/null
EJ_PID="$(pgrep -u ejabberd -f beam.smp | head -1)"
"$LOAD" --port 5322 --domain bench.localhost --users-file "$work/ejabberd-users.txt" \
  --clients "$N" --messages "$MSGS" --interval-ms "$INTERVAL" --concurrency "$CONCURRENCY" \
  --pid "$EJ_PID" --label "ejabberd $(dpkg-query -W -f='${Version}' ejabberd)" > "$work/ejabberd.txt"
ej stop >/dev/null
ej stopped >/dev/null || true

# ---------- confab ----------
AUTH_MODE="${BENCH_CONFAB_AUTH:-password}"; unset BENCH_CONFAB_AUTH
export CONFAB_DATA_DIR="$work/confab" CONFAB_HTTP_ADDR=127.0.0.1:0 CONFAB_XMPP_ADDR=127.0.0.1:0 NO_COLOR=1
APP_JSON="$("$CONFAB" app create --name bench)"
"$CONFAB" serve 2> "$work/confab.log" &
CF_PID=$!
trap 'kill $CF_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "listening xmpp=" "$work/confab.log" && grep -q "listening http=" "$work/confab.log" && break
  sleep 0.1
done
HTTP="$(grep -o 'listening http=[^ ,;]*' "$work/confab.log" | head -1 | cut -d= -f2)"
XMPP="$(grep -o 'listening xmpp=[^ ,;]*' "$work/confab.log" | head -1 | cut -d= -f2)"
python3 - "$HTTP" "$APP_JSON" "$N" "$PASS" "$AUTH_MODE" > "$work/confab-users.txt" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
http, app, n, pw, auth = sys.argv[1], json.loads(sys.argv[2][sys.argv[2].index("{"):]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
def post(path, body, headers):
    req = urllib.request.Request(f"http://{http}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)
def signup(i):
    login = f"bench{i}"
    uid = post("/users.json", {"user": {"login": login, "password": pw}}, {"CB-AuthKey": app["auth_key"]})["user"]["id"]
    if auth != "token":
        return uid, pw
    s = post("/session.json", {"application_id": app["id"], "auth_key": app["auth_key"],
                               "user": {"login": login, "password": pw}}, {})
    return uid, s["session"]["token"]
with ThreadPoolExecutor(8) as ex:
    for uid, secret in ex.map(signup, range(1, n + 1)):
        print(f"{uid}-{app['id']} {secret}")
PY
"$LOAD" --port "${XMPP##*:}" --domain localhost --users-file "$work/confab-users.txt" \
  --clients "$N" --messages "$MSGS" --interval-ms "$INTERVAL" --concurrency "$CONCURRENCY" \
  --pid "$CF_PID" --label "confab $(git -C "$repo" rev-parse --short HEAD) ($AUTH_MODE login)" > "$work/confab.txt"
kill "$CF_PID"; wait "$CF_PID" 2>/dev/null || true

echo "clients=$N messages/client=$MSGS interval=${INTERVAL}ms concurrency=$CONCURRENCY cpus=$(nproc)"
pr -m -t -w 240 "$work/ejabberd.txt" "$work/confab.txt"
echo "(raw reports in $work)"
