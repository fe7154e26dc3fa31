#!/usr/bin/env bash
# Our own PostgreSQL cluster for development and tests, separate from Debian's
# default cluster: data in $CERTROTATE_LOCAL_DIR/pg, TCP on 127.0.0.1 only,
# port $CERTROTATE_PG_PORT (55432), socket inside the data dir.
#
#   postgres.sh start    init on first use, start, wait until ready (reuses
#                        whatever already answers on the port)
#   postgres.sh stop     stop our cluster only
#   postgres.sh status   exit 0 if something is ready on the port, 3 if not
#   postgres.sh dsn      print the connection URL for role/database certrotate
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL_DIR="${CERTROTATE_LOCAL_DIR:-$REPO/.local}"
PGDATA="$LOCAL_DIR/pg"
PORT="${CERTROTATE_PG_PORT:-55432}"
HOST=127.0.0.1
START_TIMEOUT="${CERTROTATE_PG_START_TIMEOUT:-60}"
export PGCONNECT_TIMEOUT=5

die() { echo "postgres: $*" >&2; exit 1; }

dsn() { echo "postgresql://certrotate@$HOST:$PORT/certrotate"; }

# Debian installs each major version side by side; use the newest one.
pg_bin() {
    local dirs=(/usr/lib/postgresql/*/bin) bin
    bin="$(printf '%s\n' "${dirs[@]}" | sort -V | tail -n1)"
    if [ ! -x "$bin/initdb" ]; then
        die "no PostgreSQL server binaries under /usr/lib/postgresql; run deploy/local/install-prereqs.sh"
    fi
    echo "$bin"
}

# initdb and postgres refuse to run as root, so as root we run them as the
# 'postgres' OS user (created by Debian's postgresql-common) and let it own the dir.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

is_ready() { "$(pg_bin)/pg_isready" -q -h "$HOST" -p "$PORT" >/dev/null 2>&1; }

ours_running() {
    [ -f "$PGDATA/PG_VERSION" ] && as_owner "$(pg_bin)/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1
}

log_tail() {
    echo "---- last lines of $PGDATA/server.log ----" >&2
    tail -n 30 "$PGDATA/server.log" >&2 2>/dev/null || echo "(no log)" >&2
}

init_cluster() {
    local bin; bin="$(pg_bin)"
    mkdir -p "$PGDATA"
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$PGDATA"; fi
    chmod 700 "$PGDATA"
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        # An empty dir is fine; anything else is a half-done init we should not guess about.
        [ -z "$(ls -A "$PGDATA")" ] || die "$PGDATA is not empty and holds no cluster; remove it and retry"
        echo "postgres: initialising a new cluster in $PGDATA"
        # trust for local and 127.0.0.1 connections: a dev cluster reachable from this machine only.
        as_owner "$bin/initdb" -D "$PGDATA" -U postgres --auth-local=trust --auth-host=trust \
            --encoding=UTF8 --no-locale >/dev/null
        echo "include_if_exists = 'certrotate.conf'" >>"$PGDATA/postgresql.conf"
    fi

    # Unix sockets are capped at ~107 bytes; fall back to /tmp for deep data dirs.
    local sockdir="$PGDATA"
    if [ $(( ${#PGDATA} + 20 )) -gt 100 ]; then sockdir=/tmp; fi

    # Rewritten on every start so a changed CERTROTATE_PG_PORT takes effect.
    cat >"$PGDATA/certrotate.conf" <<EOF
# Written by deploy/local/postgres.sh on every start; edits here are overwritten.
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = '$sockdir'
max_connections = 300
# Durability matters to certrotate's tests: never trade it for speed here.
fsync = on
synchronous_commit = on
full_page_writes = on
EOF
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$PGDATA/certrotate.conf"; fi
}

# Role and database certrotate; cheap enough to check on every start.
ensure_db() {
    local psql; psql="$(pg_bin)/psql"
    local q=("$psql" -X -q -h "$HOST" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -tA)
    if [ "$("${q[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'certrotate'")" != 1 ]; then
        "${q[@]}" -c "CREATE ROLE certrotate LOGIN SUPERUSER"
        echo "postgres: created role certrotate"
    fi
    if [ "$("${q[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'certrotate'")" != 1 ]; then
        "${q[@]}" -c "CREATE DATABASE certrotate OWNER certrotate"
        echo "postgres: created database certrotate"
    fi
}

start() {
    if is_ready; then
        if ours_running; then
            echo "postgres: already running on $HOST:$PORT ($PGDATA)"
        else
            echo "postgres: something already answers on $HOST:$PORT; reusing it"
        fi
        ensure_db || echo "postgres: warning: could not ensure role/database certrotate on $HOST:$PORT" >&2
        dsn
        return 0
    fi

    init_cluster
    echo "postgres: starting on $HOST:$PORT"
    # -w waits for readiness and returns early if the postmaster dies (port taken, bad config).
    if ! as_owner "$(pg_bin)/pg_ctl" start -D "$PGDATA" -l "$PGDATA/server.log" -w -t "$START_TIMEOUT" -s; then
        log_tail
        die "failed to start or not ready within ${START_TIMEOUT}s (log above)"
    fi
    is_ready || { log_tail; die "pg_ctl says started but $HOST:$PORT does not answer"; }
    ensure_db
    echo "postgres: ready"
    dsn
}

stop() {
    if ours_running; then
        as_owner "$(pg_bin)/pg_ctl" stop -D "$PGDATA" -m fast -w -s
        echo "postgres: stopped"
    elif is_ready; then
        echo "postgres: $HOST:$PORT is served by another cluster, not ours; leaving it alone"
    else
        echo "postgres: not running"
    fi
}

status() {
    if is_ready; then
        echo "postgres: ready on $HOST:$PORT"
    else
        echo "postgres: not ready on $HOST:$PORT"
        exit 3
    fi
}

case "${1:-}" in
    start)  start ;;
    stop)   stop ;;
    status) status ;;
    dsn)    dsn ;;
    *) echo "usage: $0 start|stop|status|dsn" >&2; exit 2 ;;
esac
