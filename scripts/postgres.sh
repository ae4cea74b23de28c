#!/usr/bin/env bash
# A private, throwaway PostgreSQL cluster for the tests of the PostgreSQL store backend.
#
#   eval "$(scripts/postgres.sh start)"   # exports CONFAB_TEST_DATABASE_URL and CONFAB_PG_DIR
#   scripts/postgres.sh stop              # stops the cluster in $CONFAB_PG_DIR and removes it
#
# The cluster lives in a temporary directory, listens on 127.0.0.1 on a free port (and on a
# socket in that directory), trusts local connections (nothing but the tests can reach it) and
# runs with fsync off: its data is not meant to survive. PostgreSQL is installed from the
# distribution's packages when missing (CI machines start without it). initdb refuses to run as
# root, so as root the cluster belongs to the `postgres` user the package creates.
# Only `export` lines go to stdout (for eval); progress goes to stderr.
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

pg_bindir() {
    local dir
    # Debian and Ubuntu: the newest installed major version.
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$dir" && -x "$dir/initdb" ]]; then
        echo "$dir"
        return
    fi
    # Elsewhere the server's programs may be on the PATH.
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v initdb)"
    fi
}

install_postgres() {
    log "PostgreSQL not found; installing it with apt-get"
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q >&2
    "${sudo[@]}" apt-get install -y -q postgresql >&2
}

# Runs a command as the cluster's owner: ourselves, or `postgres` when we are root.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        if command -v runuser >/dev/null; then
            runuser -u postgres -- "$@"
        else
            su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
        fi
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
        2>/dev/null || echo $((20000 + RANDOM % 40000))
}

start() {
    local bin
    bin=$(pg_bindir)
    if [[ -z "$bin" ]]; then
        install_postgres
        bin=$(pg_bindir)
        [[ -n "$bin" ]] || { log "no initdb under /usr/lib/postgresql/*/bin after installing"; exit 1; }
    fi
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/confab-pg.XXXXXX")
    chmod 755 "$dir"
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres: "$dir"
    fi
    # C.UTF-8 where the C library has it; the plain C locale otherwise (the schema compares ids
    # byte-wise either way).
    if ! as_owner "$bin/initdb" -D "$dir/data" -U confab --auth=trust --encoding=UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1; then
        rm -rf "$dir/data"
        as_owner "$bin/initdb" -D "$dir/data" -U confab --auth=trust --encoding=UTF8 \
            --no-locale >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    # A port can be taken between the probe and the start: try a few. The cluster tests run their
    # tests in parallel, up to three nodes each with a pool of 16 connections (and a killed node's
    # connections linger until PostgreSQL notices): 300 slots ran out once, refusing connections
    # with "too many clients" until a test's connect timed out.
    local port attempt
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off \
                -c synchronous_commit=off -c full_page_writes=off -c max_connections=1000" >&2; then
            log "cluster in $dir listening on 127.0.0.1:$port"
            echo "export CONFAB_PG_DIR='$dir'"
            echo "export CONFAB_TEST_DATABASE_URL='postgres://confab@127.0.0.1:$port/postgres'"
            return 0
        fi
        log "start on port $port failed (attempt $attempt)"
        tail -n 5 "$dir/server.log" >&2 || true
    done
    exit 1
}

stop() {
    local dir=${1:-${CONFAB_PG_DIR:-}}
    if [[ -z "$dir" || ! -d "$dir/data" ]]; then
        log "no cluster to stop (pass its directory or set CONFAB_PG_DIR)"
        return 0
    fi
    local bin
    bin=$(pg_bindir)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    rm -rf "$dir"
    log "stopped and removed $dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *)
        echo "usage: eval \"\$($0 start)\"; ... ; $0 stop [DIR]" >&2
        exit 2
        ;;
esac
