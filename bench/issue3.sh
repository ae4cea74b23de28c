#!/usr/bin/env bash
# Issue 3 targets: confab vs ejabberd (Debian package), measured one after the other in ONE run on this
# machine with crates/confab-xmpp-load. Prints every report; figures are copied into docs/benchmarks.md.
#
#   bench/issue3.sh            (env: N=1000 IDLE=19000 MSGS=20 INTERVAL=100 RATE=5000 RATE_MSGS=50 CONCURRENCY=50)
#   SERVERS=confab RUNS="I H" bench/issue3.sh   (a subset while iterating; the docs quote full runs only)
#
# Per server, in this order, each run on a freshly (re)started server process (a first version ran I, P, R
# on one process: ejabberd was then still busy with the 19,000 closed idle sessions during R):
#   I  IDLE idle connections (connect, wait 3 s, read RSS)          -> memory per connection (target 4)
#   P  N clients, password logins, MSGS msgs/client every INTERVAL ms -> login rate (3), msgs per CPU-s (1)
#   R  N clients, steady RATE msg/s for RATE_MSGS msgs/client         -> p99 latency (2)
#   H  like P but every message carries save_to_history=1            -> msgs per CPU-s with history (1)
# First contacts (issue 11): every message goes to a random other client (--random-peers), so nearly
# every message is the first between its two users:
#   X  saturated: N clients, SAT_MSGS msgs each, IN_FLIGHT undelivered per client, no history
#   Y  like X with save_to_history=1 (ejabberd: mod_mam)
#   Z  steady RATE msg/s for RATE_MSGS msgs/client to random peers  -> p99 latency
# Each of X, Y, Z starts on a fresh database copy of its own where it matters (confab), so every pair
# is new to the server when the run begins.
# confab logs in with session tokens in I, R, H (its fast path) and with the password in P;
# ejabberd always with the password (SCRAM-SHA-1 stored credentials, PLAIN on the wire).
# ejabberd runs H with mod_mam (mnesia, default: always) so it archives every message too.
# Server CPU = utime+stime of the server process (/proc/<pid>/stat) over the message phase.
#
# Needs root. Builds confab and xmpp-load in release mode.
set -euo pipefail
N="${N:-1000}"; IDLE="${IDLE:-19000}"; MSGS="${MSGS:-20}"; INTERVAL="${INTERVAL:-100}"
RATE="${RATE:-5000}"; RATE_MSGS="${RATE_MSGS:-50}"; CONC="${CONCURRENCY:-50}"
SAT_MSGS="${SAT_MSGS:-40}"; IN_FLIGHT="${IN_FLIGHT:-8}"
SERVERS="${SERVERS:-ejabberd confab}"; RUNS="${RUNS:-I P R H X Y Z}"
want() { [[ " $SERVERS " == *" $1 "* && " $RUNS " == *" $2 "* ]]; }
repo="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
work="$(mktemp -d /tmp/confab-issue3.XXXXXX)"
chmod 755 "$work"
ulimit -n "$(ulimit -Hn)"
PASS=benchpass1
if [[ " $SERVERS " == *" ejabberd "* ]] && ! command -v ejabberdctl >/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y ejabberd
fi
# NO_BUILD=1 with CONFAB_BIN and LOAD_BIN: measure binaries built before.
[ -n "${NO_BUILD:-}" ] || (cd "$repo" && cargo build --release -p confab -p confab-xmpp-load)
LOAD="${LOAD_BIN:-$target/release/xmpp-load}"
# CONFAB_BIN measures another build (e.g. the commit before a change) with the same load generator.
CONFAB="${CONFAB_BIN:-$target/release/confab}"
log() { echo "[$(date -u +%T)] $*" >&2; }

# ---------- ejabberd ----------
if [[ " $SERVERS " == *" ejabberd "* ]]; then
. "$repo/bench/lib/ejabberd.sh"
ejabberd_prepare "$work"
EJCFG="$work/ejabberd/ejabberdctl.cfg"
ej() { ejabberdctl --ctl-config "$EJCFG" "$@"; }
ej_start() { ej --logs "$work/ejabberd/logs" --spool "$work/ejabberd/spool" start; ej started; sleep 2
  EJ_PID="$(pgrep -u ejabberd -f beam.smp | head -1)"; log "ejabberd pid $EJ_PID, fd limit $(grep 'open files' /proc/$EJ_PID/limits)"; }
ej_stop() { ej stop >/dev/null; ej stopped >/dev/null || true; sleep 1; }
EJ_VER="ejabberd $(dpkg-query -W -f='${Version}' ejabberd)"
ej_start
ej register u1 bench.localhost "$PASS" >/dev/null
for i in $(seq 1 "$IDLE"); do echo "u$i $PASS"; done > "$work/ejabberd-users.txt"
log "ejabberd: registering $IDLE users (XEP-0077)"
"$LOAD" --port 5322 --domain bench.localhost --users-file "$work/ejabberd-users.txt" \
  --clients "$IDLE" --messages 0 --register --concurrency "$CONC" --label "ejabberd registration" > "$work/ejabberd-reg.txt"
cat "$work/ejabberd-reg.txt" >&2
ej_stop; ej_start
EJ="--port 5322 --domain bench.localhost --users-file $work/ejabberd-users.txt --concurrency $CONC"
if want ejabberd I; then
log "ejabberd I"
"$LOAD" $EJ --clients "$IDLE" --messages 0 --settle-ms 3000 --pid "$EJ_PID" --label "$EJ_VER I: $IDLE idle" > "$work/ej-I.txt"
fi
ej_stop; ej_start
if want ejabberd P; then
log "ejabberd P"
"$LOAD" $EJ --clients "$N" --messages "$MSGS" --interval-ms "$INTERVAL" --pid "$EJ_PID" --label "$EJ_VER P: password, no history" > "$work/ej-P.txt"
fi
ej_stop; ej_start
if want ejabberd R; then
log "ejabberd R"
"$LOAD" $EJ --clients "$N" --messages "$RATE_MSGS" --rate "$RATE" --pid "$EJ_PID" --label "$EJ_VER R: steady $RATE msg/s" > "$work/ej-R.txt"
fi
ej_stop; ej_start
if want ejabberd X; then
log "ejabberd X"
"$LOAD" $EJ --clients "$N" --messages "$SAT_MSGS" --interval-ms 0 --in-flight "$IN_FLIGHT" --random-peers --pid "$EJ_PID" --label "$EJ_VER X: random peers, saturated, no history" > "$work/ej-X.txt"
fi
ej_stop; ej_start
if want ejabberd Z; then
log "ejabberd Z"
"$LOAD" $EJ --clients "$N" --messages "$RATE_MSGS" --rate "$RATE" --random-peers --pid "$EJ_PID" --label "$EJ_VER Z: random peers, steady $RATE msg/s" > "$work/ej-Z.txt"
fi
ej_stop
EJCFG="$work/ejabberd/ejabberdctl-mam.cfg"
ej_start
if want ejabberd H; then
log "ejabberd H"
"$LOAD" $EJ --clients "$N" --messages "$MSGS" --interval-ms "$INTERVAL" --history --pid "$EJ_PID" --label "$EJ_VER H: password, save_to_history (mod_mam)" > "$work/ej-H.txt"
fi
ej_stop; ej_start
if want ejabberd Y; then
log "ejabberd Y"
"$LOAD" $EJ --clients "$N" --messages "$SAT_MSGS" --interval-ms 0 --in-flight "$IN_FLIGHT" --random-peers --history --pid "$EJ_PID" --label "$EJ_VER Y: random peers, saturated, save_to_history (mod_mam)" > "$work/ej-Y.txt"
fi
ej_stop
fi

# ---------- confab ----------
if [[ " $SERVERS " == *" confab "* ]]; then
export CONFAB_DATA_DIR="$work/confab" CONFAB_HTTP_ADDR=127.0.0.1:0 CONFAB_XMPP_ADDR=127.0.0.1:0 NO_COLOR=1
APP_JSON="$("$CONFAB" app create --name bench)"
CF_PID=
trap '[ -n "$CF_PID" ] && kill $CF_PID 2>/dev/null || true' EXIT
cf_start() {
  "$CONFAB" serve 2> "$work/confab.log" & CF_PID=$!
  for _ in $(seq 1 100); do
    grep -q "listening xmpp=" "$work/confab.log" && grep -q "listening http=" "$work/confab.log" && break
    sleep 0.1
  done
  HTTP="$(grep -o 'listening http=[^ ,;]*' "$work/confab.log" | head -1 | cut -d= -f2)"
  XMPP="$(grep -o 'listening xmpp=[^ ,;]*' "$work/confab.log" | head -1 | cut -d= -f2)"
  sleep 1; log "confab pid $CF_PID xmpp $XMPP"
}
cf_stop() { kill "$CF_PID"; wait "$CF_PID" 2>/dev/null || true; CF_PID=; }
cf_start
log "confab: creating $N users and sessions over REST"
python3 "$repo/bench/lib/confab-users.py" "$HTTP" "$APP_JSON" "$N" "$PASS" "$work"
cf_stop
# The other IDLE-N users for the idle run are copied in SQL (same password hash as user bench1, one
# session each): 36,000 more Argon2 hashes over REST would take longer than the whole comparison.
log "confab: cloning users to $IDLE in SQL"
python3 - "$CONFAB_DATA_DIR" "$APP_JSON" "$N" "$IDLE" "$work" <<'PY'
import glob, hashlib, json, os, secrets, sqlite3, sys, time
d, app, n, idle, work = sys.argv[1], json.loads(sys.argv[2][sys.argv[2].index("{"):]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
db = [p for p in glob.glob(f"{d}/**/*", recursive=True) if p.endswith((".db", ".sqlite", ".sqlite3"))][0]
c = sqlite3.connect(db)
h, = c.execute("SELECT password_hash FROM users WHERE app_id=? AND login='bench1'", (app["id"],)).fetchone()
now = int(time.time() * 1000)
out = open(f"{work}/cf-idle.txt", "w")
out.write(open(f"{work}/cf-token.txt").read())
for i in range(n + 1, idle + 1):
    cur = c.execute("INSERT INTO users (app_id, login, password_hash, created_at, updated_at) VALUES (?,?,?,?,?)",
                    (app["id"], f"bench{i}", h, now, now))
    uid = cur.lastrowid
    tok = secrets.token_hex(20)
    c.execute("INSERT INTO sessions (app_id, user_id, token_hash, created_at, updated_at, expires_at) VALUES (?,?,?,?,?,?)",
              (app["id"], uid, hashlib.sha256(tok.encode()).digest(), now, now, now + 86400000))
    out.write(f"{uid}-{app['id']} {tok}\n")
c.commit()
PY
CF="--domain localhost --concurrency $CONC"
# The random-peer runs each start from this database, before any conversation exists.
cp -a "$CONFAB_DATA_DIR" "$work/confab-fresh"
cf_fresh() { rm -rf "$CONFAB_DATA_DIR"; cp -a "$work/confab-fresh" "$CONFAB_DATA_DIR"; cf_start; }
cf_start
if want confab I; then
log "confab I"
"$LOAD" $CF --port "${XMPP##*:}" --users-file "$work/cf-idle.txt" --clients "$IDLE" --messages 0 --settle-ms 3000 --pid "$CF_PID" --label "confab $(git -C "$repo" rev-parse --short HEAD) I: $IDLE idle (token)" > "$work/cf-I.txt"
fi
cf_stop; cf_start
if want confab P; then
log "confab P"
"$LOAD" $CF --port "${XMPP##*:}" --users-file "$work/cf-pass.txt" --clients "$N" --messages "$MSGS" --interval-ms "$INTERVAL" --pid "$CF_PID" --label "confab P: password, no history" > "$work/cf-P.txt"
fi
cf_stop; cf_start
if want confab R; then
log "confab R"
"$LOAD" $CF --port "${XMPP##*:}" --users-file "$work/cf-token.txt" --clients "$N" --messages "$RATE_MSGS" --rate "$RATE" --pid "$CF_PID" --label "confab R: token, steady $RATE msg/s" > "$work/cf-R.txt"
fi
cf_stop; cf_start
if want confab H; then
log "confab H"
"$LOAD" $CF --port "${XMPP##*:}" --users-file "$work/cf-token.txt" --clients "$N" --messages "$MSGS" --interval-ms "$INTERVAL" --history --pid "$CF_PID" --label "confab H: token, save_to_history=1" > "$work/cf-H.txt"
fi
cf_stop; cf_fresh
if want confab X; then
log "confab X"
"$LOAD" $CF --port "${XMPP##*:}" --users-file "$work/cf-token.txt" --clients "$N" --messages "$SAT_MSGS" --interval-ms 0 --in-flight "$IN_FLIGHT" --random-peers --pid "$CF_PID" --label "confab X: token, random peers, saturated, no history" > "$work/cf-X.txt"
fi
cf_stop; cf_fresh
if want confab Y; then
log "confab Y"
"$LOAD" $CF --port "${XMPP##*:}" --users-file "$work/cf-token.txt" --clients "$N" --messages "$SAT_MSGS" --interval-ms 0 --in-flight "$IN_FLIGHT" --random-peers --history --pid "$CF_PID" --label "confab Y: token, random peers, saturated, save_to_history=1" > "$work/cf-Y.txt"
fi
cf_stop; cf_fresh
if want confab Z; then
log "confab Z"
"$LOAD" $CF --port "${XMPP##*:}" --users-file "$work/cf-token.txt" --clients "$N" --messages "$RATE_MSGS" --rate "$RATE" --random-peers --pid "$CF_PID" --label "confab Z: token, random peers, steady $RATE msg/s" > "$work/cf-Z.txt"
fi
cf_stop
fi

echo "N=$N idle=$IDLE messages/client=$MSGS interval=${INTERVAL}ms rate=$RATE x $RATE_MSGS/client saturated=$SAT_MSGS/client in-flight=$IN_FLIGHT concurrency=$CONC cpus=$(nproc) clk_tck=$(getconf CLK_TCK)"
for r in $RUNS; do cat "$work/ej-$r.txt" "$work/cf-$r.txt" 2>/dev/null || true; echo; done
echo "(raw reports in $work)"
