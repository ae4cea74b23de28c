#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, the real ConnectyCube SDK end to end (on one
# node, then on a three-node cluster), and a standard XMPP client (slixmpp).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -p confab
# The S3-compatible server (moto, from PyPI) that the S3 blob tests start.
./e2e/s3/setup.sh
# nats-server (Debian) for the tests of several nodes on one bus.
./scripts/nats.sh
# A private PostgreSQL cluster for the PostgreSQL store's conformance tests (installed with apt-get
# when missing), stopped and removed however the script ends; unless the caller names a server.
if [[ -z "${CONFAB_TEST_DATABASE_URL:-}" ]]; then
    eval "$(scripts/postgres.sh start)"
    trap 'scripts/postgres.sh stop' EXIT
fi
cargo test --workspace
# The behaviour tests once more with every test server on PostgreSQL (CONFAB_TEST_BACKEND), so that
# neither store drifts from the other (tests that touch the database directly do it through the
# testkit's `db`, on either backend). Left out: those that pick their backends themselves (cluster*,
# xmpp_kill9) and the fuzzing of the stanza parser.
pg_suites=(rest_accounts rest_chat rest_chat_roles rest_bad_input rest_limits delivery_rules
    xmpp_tcp xmpp_ws xmpp_muc xmpp_group_privacy xmpp_privacy xmpp_roster xmpp_receipts xmpp_limits
    xmpp_offline xmpp_history hostile_input
    chatserver_users chatserver_chats chatserver_messages chatserver_ws chatserver_original
    blobs blobs_s3 push push_apns_webpush)
CONFAB_TEST_BACKEND=postgres cargo test -p confab "${pg_suites[@]/#/--test=}"

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export CONFAB_BIN="$target_dir/debug/confab"
(cd e2e && npm ci --no-audit --no-fund && npm test)
# The real-time SDK suites again on three nodes (PostgreSQL + NATS), each peer on the next node, so
# sender and recipient are on different nodes.
(cd e2e && npm run test:cluster)
# A standard XMPP client library (slixmpp from PyPI) against the same binary.
./e2e/slixmpp/run.sh
