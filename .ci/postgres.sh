#!/usr/bin/env bash
# Starts (start) or stops (stop) a throwaway PostgreSQL 15 cluster on 127.0.0.1:$PGPORT
# for the tests that check expected outputs against PostgreSQL. Installs PostgreSQL 15
# from Debian when it is missing. C locale, UTF-8, trust authentication.
set -euo pipefail
PGPORT="${PGPORT:-55432}"
PGDIR="${PGDIR:-/tmp/tissdb-ci-postgres}"
BIN=/usr/lib/postgresql/15/bin

case "${1:-start}" in
start)
    if [ ! -x "$BIN/postgres" ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
    fi
    if [ -f "$PGDIR/data/postmaster.pid" ]; then
        runuser -u postgres -- "$BIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$PGDIR"
    mkdir -p "$PGDIR"
    chown postgres:postgres "$PGDIR"
    runuser -u postgres -- "$BIN/initdb" -D "$PGDIR/data" --locale=C --encoding=UTF8 \
        --auth=trust -U postgres >/dev/null
    runuser -u postgres -- "$BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
        -o "-c listen_addresses=127.0.0.1 -c port=$PGPORT -c unix_socket_directories=$PGDIR" start >/dev/null
    echo "host=127.0.0.1 port=$PGPORT user=postgres dbname=postgres"
    ;;
stop)
    if [ -d "$PGDIR/data" ]; then
        runuser -u postgres -- "$BIN/pg_ctl" -D "$PGDIR/data" -m fast stop >/dev/null 2>&1 || true
    fi
    rm -rf "$PGDIR"
    ;;
esac
