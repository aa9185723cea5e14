#!/usr/bin/env bash
# Runs every compat suite (real clients, really connected) against one server and prints
# PASS or FAIL per suite; exits non-zero if any suite failed.
#
#   compat/run.sh                          start target/release/tissdb on free loopback ports
#   compat/run.sh --server-bin PATH        start that tissdb binary (temp data dir, free ports)
#   compat/run.sh --conninfo "host=127.0.0.1 port=55432 user=postgres dbname=postgres"
#                                          use a running server (e.g. PostgreSQL 15 from
#                                          `bash .ci/postgres.sh start`)
# Options: --only SUITE[,SUITE...]   run only these suites
#          --verbose                 print every suite's full output, not only failures'
# Suites: psycopg psycopg2 asyncpg sqlalchemy pandas node jdbc
#         bi-drivers bi-dbeaver bi-metabase bi-grafana bi-superset bi-powerbi
set -uo pipefail
COMPAT="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$COMPAT")"
SUITE_TIMEOUT="${COMPAT_SUITE_TIMEOUT:-300}"

server_bin="" conninfo="" only="" verbose=0
while [ $# -gt 0 ]; do
    case "$1" in
    --server-bin) server_bin="$2"; shift 2 ;;
    --conninfo) conninfo="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --verbose) verbose=1; shift ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "compat/run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -n "$server_bin" ] && [ -n "$conninfo" ]; then
    echo "compat/run.sh: give --server-bin or --conninfo, not both" >&2
    exit 2
fi

# The clients: installed by compat/install.sh (quick when they already are).
if [ ! -x "$COMPAT/.venv/bin/python" ] || [ ! -d "$COMPAT/node/node_modules/pg" ] \
    || ! command -v javac >/dev/null || [ ! -f /usr/share/java/postgresql.jar ]; then
    bash "$COMPAT/install.sh" || { echo "compat/run.sh: compat/install.sh failed" >&2; exit 1; }
fi

WORK="$(mktemp -d -t tissdb-compat.XXXXXX)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$COMPAT/.venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [ -z "$conninfo" ]; then
    server_bin="${server_bin:-$ROOT/target/release/tissdb}"
    [ -x "$server_bin" ] || { echo "compat/run.sh: no tissdb binary at $server_bin" >&2; exit 2; }
    pg_port="$(free_port)"
    http_port="$(free_port)"
    "$server_bin" serve --data-dir "$WORK/data" --pg-addr "127.0.0.1:$pg_port" \
        --http-addr "127.0.0.1:$http_port" >"$WORK/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 300); do
        grep -q '^tissdb ready:' "$WORK/server.log" 2>/dev/null && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^tissdb ready:' "$WORK/server.log"; then
        echo "compat/run.sh: tissdb did not print 'ready'; its log:" >&2
        cat "$WORK/server.log" >&2
        exit 1
    fi
    conninfo="host=127.0.0.1 port=$pg_port user=compat dbname=tissdb"
    echo "compat: started $server_bin (pid $server_pid) at $conninfo"
else
    echo "compat: using the server at $conninfo"
fi

# host=.. port=.. user=.. dbname=.. -> COMPAT_* for every suite.
export COMPAT_HOST=127.0.0.1 COMPAT_PORT=5432 COMPAT_USER=compat COMPAT_DBNAME=tissdb
for pair in $conninfo; do
    case "$pair" in
    host=*) COMPAT_HOST="${pair#host=}" ;;
    port=*) COMPAT_PORT="${pair#port=}" ;;
    user=*) COMPAT_USER="${pair#user=}" ;;
    dbname=*) COMPAT_DBNAME="${pair#dbname=}" ;;
    *) echo "compat/run.sh: ignoring conninfo part $pair" >&2 ;;
    esac
done
# Nothing from the caller's environment may redirect libpq-based clients.
unset PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS

PY="$COMPAT/.venv/bin/python"
PYTEST=("$PY" -m pytest -q -rfE --tb=short -p no:cacheprovider --color=no)
ALL_SUITES=(psycopg psycopg2 asyncpg sqlalchemy pandas node jdbc bi-drivers bi-dbeaver bi-metabase bi-grafana bi-superset bi-powerbi)

run_suite() {
    case "$1" in
    psycopg | psycopg2 | asyncpg | sqlalchemy | pandas)
        (cd "$COMPAT/python" && "${PYTEST[@]}" "test_$1.py") ;;
    node)
        (cd "$COMPAT/node" && node compat.js) ;;
    jdbc)
        mkdir -p "$WORK/java" &&
            javac -d "$WORK/java" -cp /usr/share/java/postgresql.jar "$COMPAT/java/Compat.java" &&
            java -cp "$WORK/java:/usr/share/java/postgresql.jar" Compat ;;
    bi-*)
        "$PY" "$COMPAT/bi/replay.py" "$COMPAT/bi/${1#bi-}.sql" ;;
    *)
        echo "unknown suite $1"; return 2 ;;
    esac
}

suites=("${ALL_SUITES[@]}")
[ -n "$only" ] && IFS=, read -r -a suites <<<"$only"
passed=() failed=()
for suite in "${suites[@]}"; do
    log="$WORK/$suite.log"
    start=$(date +%s)
    timeout "$SUITE_TIMEOUT" bash -c "$(declare -f run_suite); $(declare -p PY PYTEST COMPAT WORK); run_suite $suite" >"$log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    if [ $rc -eq 0 ]; then
        passed+=("$suite")
        echo "PASS $suite (${secs}s)"
        [ $verbose = 1 ] && sed 's/^/    /' "$log"
    else
        failed+=("$suite")
        [ $rc -eq 124 ] && echo "     (timed out after ${SUITE_TIMEOUT}s)" >>"$log"
        echo "FAIL $suite (${secs}s, exit $rc)"
        sed 's/^/    /' "$log"
    fi
    if [ -n "$server_pid" ] && ! kill -0 "$server_pid" 2>/dev/null; then
        echo "compat: the server died during suite $suite; its log:"
        sed 's/^/    /' "$WORK/server.log"
        break
    fi
done

echo "compat: ${#passed[@]} suites passed, ${#failed[@]} failed${failed:+ (${failed[*]})}"
[ ${#failed[@]} -eq 0 ] && [ ${#passed[@]} -eq ${#suites[@]} ]
