#!/usr/bin/env bash
# Compare TissDB with PostgreSQL 15 on this machine, in the same run, with pgbench.
#
#   bash bench/compare.sh [--quick] [--tissdb-bin PATH] [--duration SEC] [--rounds N]
#                         [--rows N] [--workloads W1,W2,W3,W5]
#                         [--suite indexes|transactions|joins|documents|rest|everyday]
#                         [--keep]
#
# It starts a private PostgreSQL 15 cluster (initdb into a temp dir, 127.0.0.1 on a
# free port, default durability: fsync on, synchronous_commit on) and a TissDB server
# (temp data dir, free ports, default durability), loads the same table into both
# through psql (items: COPY items FROM STDIN (FORMAT csv) of one generated CSV file,
# timed as W6; the joins suite: plain multi-row INSERTs), then runs each workload with pgbench,
# alternating TissDB and PostgreSQL round by round, and prints the median TPS of each
# and the ratio TissDB/PostgreSQL, then TissDB's peak RSS against PostgreSQL's peak
# memory (all its processes, sampled each second). Everything it started is stopped on
# exit, also on error or Ctrl-C. Results also go to bench/results/last.tsv (one row per cell) and
# bench/results/last-info.tsv (key/value: versions, peak RSS, data sizes, ...); the
# pgbench output of failed cells and the TissDB server log go to bench/results/last-logs/.
#
# --quick: about 1.5 minutes (2 s runs, 2 rounds, per workload only "simple, 1 client"
#          and "prepared, 8 clients"). Default: about 12 minutes (5 s runs, 3 rounds,
#          simple and prepared, 1 and 8 clients for every workload, and extended (the
#          unnamed statement parsed for every query, as most drivers do) with 8).
# --tissdb-bin PATH   binary to test (default target/release/tissdb, built if missing);
#                     the script runs a private copy of it
# --duration SEC      pgbench -T per run (quick 2, default 5)
# --rounds N          TissDB/PostgreSQL alternations per cell (quick 2, default 3)
# --rows N            rows loaded into items (default 100000, at most 1000000); with
#                     --suite joins, rows of orders and of edges (customers and graph
#                     vertices are a tenth of that; default 1000000, quick 100000)
# --workloads LIST    subset, e.g. W2,W5 (run order is always W2 W5 W3 W1 W4; W4 first
#                     creates the index items_brand on both systems). W6, the COPY of
#                     --rows CSV rows into items (rows/s of each system, and the bytes on
#                     disk: TissDB's data dir, before and after VACUUM, against
#                     pg_total_relation_size('items')), is measured by every run that
#                     loads items; --workloads W6 alone measures it and runs no pgbench
# --suite indexes     instead, the secondary-index workloads, in phases that add
#                     indexes to both systems between them: I1 point lookup by price
#                     and W1 inserts with no secondary index; CREATE INDEX (brand,
#                     price), then I2 compound range and W1 with 1 index; CREATE INDEX
#                     (price) and (qty), then I1 again and W1 with 3 indexes
# --suite transactions  W7 (BEGIN; UPDATE; UPDATE; COMMIT between two random rows) and
#                     W7h (the same between two of 10 hot rows); pgbench retries
#                     serialization failures and deadlocks (--max-tries), and the report
#                     gives each system's retry rate (TissDB runs every transaction
#                     SERIALIZABLE, PostgreSQL at its default, READ COMMITTED)
# --suite joins       instead of items, loads customers(id PK, region, name), orders(id
#                     PK, customer_id, total) and edges(id PK, src, dst) (100k, 1M, 1M;
#                     --quick 10k, 100k, 100k; src/dst over 100k (10k) vertices) and
#                     runs slow queries, cells "simple 1" and "prepared 1" only: J1 join
#                     of all orders with customers, GROUP BY region; J2-0 the orders of
#                     one random customer (join WHERE c.id = ?) with no index on
#                     orders.customer_id; CREATE INDEX (customer_id), then J2-1 the same;
#                     CREATE INDEX edges (src), then T3, a WITH RECURSIVE 3-hop traversal
#                     from a random vertex. A run lasts at least its slowest query
#                     (pgbench -T finishes the transaction under way; tps counts it).
#                     About 1.5 minutes with --quick, 8 minutes without.
# --suite documents   instead of items, 100k (--rows) nested product documents of about
#                     600 bytes (bench/gen_products.awk: name, brand, price, category,
#                     specs {weight, dimensions {...}, ...}, tags, stock, reviews), loaded
#                     with the same multi-row INSERTs: PostgreSQL products (id text
#                     PRIMARY KEY, doc jsonb) with an index on ((doc->>'brand')); TissDB a
#                     schemaless collection products (top-level fields named in the
#                     INSERT, objects and arrays as '...'::jsonb) with CREATE INDEX ON
#                     products (brand). Each system runs its own form of one statement
#                     (bench/workloads/d*.tissdb.sql, d*.postgres.sql): D2 read a whole
#                     document by id; D3 filter on the indexed brand, project a nested
#                     field (specs.weight / doc->'specs'->>'weight'), LIMIT 10; D4 GROUP BY
#                     category with avg(price) over all documents (1 client only); D1
#                     insert one such document, autocommit (run last). About 1.5 minutes
#                     with --quick (D4: "simple 1" only), 8 without.
# --suite everyday    the items table with indexes on brand and on qty, and 20 queries
#                     people write every day (bench/workloads/e*.sql), 1 client ("simple
#                     1" and "prepared 1"; --quick "prepared 1"): counts, top-N, ORDER BY
#                     the key DESC LIMIT, key ranges, DISTINCT, filters without an index,
#                     LIKE, a join, IN lists, min/max of the key, two-key GROUP BY with
#                     ORDER BY LIMIT, a semi-join. Not targets: where TissDB stands on
#                     queries the other workloads do not cover. About 3 minutes with
#                     --quick, 22 without.
# --suite rest        TissDB's REST API driven by wrk (installed with apt-get if
#                     missing; bench/rest/*.lua), 1 and 8 connections (wrk -t 1 / -t 2):
#                     GET /docs/<random id>, POST /docs/_query (a point SELECT by id) and
#                     POST /docs (a ~300-byte nested document, id assigned by the
#                     server), against TissDB's own wire protocol doing the same in the
#                     same run (pgbench -M prepared: SELECT * ... WHERE id = $1, INSERT),
#                     and against pouchdb-server (the CouchDB API on LevelDB, npm package
#                     pinned in bench/rest/package-lock.json, installed into
#                     bench/rest/node_modules with npm ci on first use; skipped with the
#                     reason when it cannot be installed or started, or with
#                     --no-pouchdb). Rounds alternate REST, wire, pouchdb-server;
#                     reports requests/s and p99 latency of each, ratios REST/wire and
#                     REST/pouchdb-server. --rows documents loaded (quick 10000, default
#                     100000). No PostgreSQL server is started (pgbench and psql come
#                     from postgresql-15). About 1 minute with --quick, 4.5 without
#                     (the first run also installs pouchdb-server, about 2 minutes).
# --no-pouchdb        --suite rest without pouchdb-server
# --keep              keep the temp dir (data dirs, all pgbench and server logs)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
RESULTS_DIR="$SCRIPT_DIR/results"
WORKLOAD_DIR="$SCRIPT_DIR/workloads"
PG_MAJOR=15
PGBIN="/usr/lib/postgresql/$PG_MAJOR/bin"

QUICK=0
TISSDB_BIN=""
DURATION=""
ROUNDS=""
ROWS=""
BATCH=1000
WORKLOADS=""
SUITE=""
KEEP=0
NO_POUCHDB=0

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "compare.sh: error: $*" >&2; exit 1; }
log() { echo "== $*"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --tissdb-bin) TISSDB_BIN=${2:?--tissdb-bin needs a path}; shift ;;
        --tissdb-bin=*) TISSDB_BIN=${1#*=} ;;
        --duration) DURATION=${2:?}; shift ;;
        --duration=*) DURATION=${1#*=} ;;
        --rounds) ROUNDS=${2:?}; shift ;;
        --rounds=*) ROUNDS=${1#*=} ;;
        --rows) ROWS=${2:?}; shift ;;
        --rows=*) ROWS=${1#*=} ;;
        --workloads) WORKLOADS=${2:?}; shift ;;
        --workloads=*) WORKLOADS=${1#*=} ;;
        --suite) SUITE=${2:?}; shift ;;
        --suite=*) SUITE=${1#*=} ;;
        --keep) KEEP=1 ;;
        --no-pouchdb) NO_POUCHDB=1 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

if [ "$QUICK" = 1 ]; then
    : "${DURATION:=2}" "${ROUNDS:=2}"
else
    : "${DURATION:=5}" "${ROUNDS:=3}"
fi
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "--duration must be a positive integer"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
if [ "$SUITE" = joins ]; then
    if [ "$QUICK" = 1 ]; then : "${ROWS:=100000}"; else : "${ROWS:=1000000}"; fi
elif [ "$SUITE" = rest ]; then
    if [ "$QUICK" = 1 ]; then : "${ROWS:=10000}"; else : "${ROWS:=100000}"; fi
else
    : "${ROWS:=100000}"
fi
[[ "$ROWS" =~ ^[1-9][0-9]*$ ]] || die "--rows must be a positive integer"
if [ "$SUITE" = joins ]; then
    [ "$ROWS" -ge 10 ] || die "--rows must be at least 10 with --suite joins"
else
    [ "$ROWS" -le 1000000 ] || die "--rows must be at most 1000000 (W1 inserts ids from 1000001 up)"
fi

# Workloads: id, file, label. Run order: reads first, then the writes (W3 updates in
# place, W1 adds rows last) so that the reads and the aggregate see the loaded table;
# W4 last, after creating the secondary index it reads (so W1 and W3 run without it).
RUN_ORDER=(W2 W5 W3 W1 W4)
declare -A WL_FILE=([W1]=w1_insert.sql [W2]=w2_point_select.sql [W3]=w3_update.sql
    [W4]=w4_indexed_filter.sql [W5]=w5_group_by.sql)
declare -A WL_LABEL=([W1]=insert [W2]=point-select [W3]=update-by-pk [W4]=indexed-limit-10
    [W5]=group-by-agg)
# SQL run on both systems before a workload's cells (W4's index, the index suite's phases).
declare -A WL_BEFORE=([W4]="CREATE INDEX items_brand ON items (brand)")
# Tables loaded (the same plain SQL into both systems), pgbench -D variables, and the
# pgbench timeout (a hung server must not stall the run; slow suites get more).
TABLES=(items)
PGBENCH_DEFS=(-D rows="$ROWS")
BENCH_TIMEOUT=$((DURATION + 120))
if [ "$SUITE" = indexes ]; then
    RUN_ORDER=(I1-0 W1-0 I2-1 W1-1 I1-3 W1-3)
    WL_FILE=([I1-0]=i1_secondary_point.sql [W1-0]=w1_insert.sql [I2-1]=i2_compound_range.sql
        [W1-1]=w1_insert.sql [I1-3]=i1_secondary_point.sql [W1-3]=w1_insert.sql)
    WL_LABEL=([I1-0]="price=,no-index" [W1-0]="insert,0-idx" [I2-1]="brand=,price<" [W1-1]="insert,1-idx"
        [I1-3]="price=,indexed" [W1-3]="insert,3-idx")
    WL_BEFORE=([I2-1]="CREATE INDEX items_brand_price ON items (brand, price)"
        [I1-3]="CREATE INDEX items_price ON items (price); CREATE INDEX items_qty ON items (qty)")
elif [ "$SUITE" = transactions ]; then
    RUN_ORDER=(W7 W7h)
    WL_FILE=([W7]=w7_two_updates.sql [W7h]=w7_hot_two_updates.sql)
    WL_LABEL=([W7]="2-update-txn" [W7h]="2-update-txn,hot")
    WL_BEFORE=()
elif [ "$SUITE" = joins ]; then
    CUSTOMERS=$((ROWS / 10)) VERTICES=$((ROWS / 10))
    RUN_ORDER=(J1 J2-0 J2-1 T3)
    WL_FILE=([J1]=j1_join_group_by.sql [J2-0]=j2_selective_join.sql [J2-1]=j2_selective_join.sql
        [T3]=t3_recursive_3hop.sql)
    WL_LABEL=([J1]="join+group-by" [J2-0]="join-by-id,no-idx" [J2-1]="join-by-id,idx" [T3]="recursive-3-hop")
    WL_BEFORE=([J2-1]="CREATE INDEX orders_customer_id ON orders (customer_id)"
        [T3]="CREATE INDEX edges_src ON edges (src)")
    TABLES=(customers orders edges)
    PGBENCH_DEFS=(-D customers="$CUSTOMERS" -D vertices="$VERTICES")
    BENCH_TIMEOUT=$((DURATION + 600))
elif [ "$SUITE" = documents ]; then
    # Each system runs its own form of the statement: WL_FILE names the pair
    # d*.tissdb.sql / d*.postgres.sql (see wl_path). D1 (inserts) last: the reads and D4
    # see the loaded documents only.
    RUN_ORDER=(D2 D3 D4 D1)
    WL_FILE=([D1]=d1_insert_doc.sql [D2]=d2_doc_by_id.sql [D3]=d3_indexed_nested.sql
        [D4]=d4_group_by_avg.sql)
    WL_LABEL=([D1]="insert-doc" [D2]="doc-by-id" [D3]="idx-brand,nested" [D4]="group-by-avg,all")
    WL_BEFORE=()
    TABLES=(products)
elif [ "$SUITE" = rest ]; then
    # bench/rest/suite.sh: its own loop (wrk and pgbench against one TissDB server).
    RUN_ORDER=(GET QUERY POST)
elif [ "$SUITE" = everyday ]; then
    RUN_ORDER=()
    WL_FILE=()
    WL_LABEL=()
    for f in "$WORKLOAD_DIR"/e[0-9][0-9]_*.sql; do
        b=$(basename "$f" .sql)
        id="E${b:1:2}"
        RUN_ORDER+=("$id")
        WL_FILE[$id]=$b.sql
        WL_LABEL[$id]=${b:4}
    done
    WL_BEFORE=([E01]="CREATE INDEX items_brand ON items (brand); CREATE INDEX items_qty ON items (qty)")
elif [ -n "$SUITE" ]; then
    die "--suite: unknown suite '$SUITE' (known: indexes, transactions, joins, documents, rest, everyday)"
fi
TABLES_CSV=$(IFS=,; echo "${TABLES[*]}")
TABLES_CSV=${TABLES_CSV//,/, }
if [ -n "$WORKLOADS" ]; then
    sel=()
    for w in "${RUN_ORDER[@]}"; do
        [[ ",${WORKLOADS^^}," == *",$w,"* ]] && sel+=("$w")
    done
    # W6 (the COPY load) happens in every run that loads items; alone it runs nothing more.
    [ ${#sel[@]} -gt 0 ] || [[ ",${WORKLOADS^^}," == *",W6,"* && ! "$SUITE" =~ ^(joins|documents|rest)$ ]] ||
        die "--workloads: none of $(IFS=,; echo "${RUN_ORDER[*]}") in '$WORKLOADS'"
    RUN_ORDER=("${sel[@]+"${sel[@]}"}")
fi

# Cells: "mode clients" per workload.
if [ "$SUITE" = joins ]; then
    # Queries of seconds: one client (8 would only queue behind each other on 2 cores).
    CELLS=("simple 1" "prepared 1")
elif [ "$SUITE" = everyday ]; then
    # What one client waits for; --quick the prepared form only.
    if [ "$QUICK" = 1 ]; then CELLS=("prepared 1"); else CELLS=("simple 1" "prepared 1"); fi
elif [ "$QUICK" = 1 ]; then
    CELLS=("simple 1" "prepared 8")
else
    CELLS=("simple 1" "simple 8" "prepared 1" "prepared 8" "extended 8")
fi
# Workloads with cells of their own: "mode clients,mode clients".
declare -A WL_CELLS=()
if [ "$SUITE" = documents ]; then
    # D4 reads all documents per query: one client (8 would queue on 2 cores).
    if [ "$QUICK" = 1 ]; then WL_CELLS=([D4]="simple 1"); else WL_CELLS=([D4]="simple 1,prepared 1"); fi
fi
cells_of() { # wl -> the cells, one a line
    if [ -n "${WL_CELLS[$1]:-}" ]; then tr ',' '\n' <<<"${WL_CELLS[$1]}"; else printf '%s\n' "${CELLS[@]}"; fi
}

# ---------------------------------------------------------------------------------
# Prerequisites: PostgreSQL 15 (server, psql, pgbench) and the TissDB binary.
# ---------------------------------------------------------------------------------
need_pg() {
    local b
    for b in initdb pg_ctl postgres psql pgbench; do
        [ -x "$PGBIN/$b" ] || return 0
    done
    return 1
}
if need_pg; then
    [ "$(id -u)" = 0 ] || die "PostgreSQL $PG_MAJOR is missing in $PGBIN and we are not root to install it"
    log "installing postgresql-$PG_MAJOR (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "postgresql-$PG_MAJOR" "postgresql-client-$PG_MAJOR" >/dev/null
    ! need_pg || die "PostgreSQL $PG_MAJOR still incomplete in $PGBIN after apt-get install"
fi
PSQL="$PGBIN/psql"
PGBENCH="$PGBIN/pgbench"
if [ "$SUITE" = rest ]; then
    for tool in wrk curl; do
        command -v "$tool" >/dev/null && continue
        [ "$(id -u)" = 0 ] || die "$tool is missing and we are not root to install it"
        log "installing $tool (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "$tool" >/dev/null
        command -v "$tool" >/dev/null || die "$tool still missing after apt-get install"
    done
fi

if [ -z "$TISSDB_BIN" ]; then
    TISSDB_BIN="$REPO_DIR/target/release/tissdb"
    if [ ! -x "$TISSDB_BIN" ]; then
        log "building TissDB (cargo build --release)"
        (cd "$REPO_DIR" && cargo build --release --bin tissdb)
    fi
fi
[ -x "$TISSDB_BIN" ] || die "TissDB binary not found or not executable: $TISSDB_BIN"
TISSDB_BIN=$(cd "$(dirname "$TISSDB_BIN")" && pwd)/$(basename "$TISSDB_BIN")

# PostgreSQL runs as user postgres when we are root (initdb refuses root).
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "user postgres does not exist (is postgresql-$PG_MAJOR installed?)"
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

# ---------------------------------------------------------------------------------
# Temp dirs, cleanup.
# ---------------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/tissdb-bench.XXXXXX)
chmod 755 "$WORK"
PGROOT="$WORK/pg"
PGDATA_DIR="$PGROOT/data"
TDB_DATA="$WORK/tissdb-data"
LOGDIR="$WORK/logs"
mkdir -p "$PGROOT" "$LOGDIR"
[ "$(id -u)" = 0 ] && chown postgres: "$PGROOT"

TDB_PID=""
PG_STARTED=0

stop_tissdb() {
    # SIGTERM, wait up to 30 s, then SIGKILL. Prints how it ended.
    [ -n "$TDB_PID" ] || return 0
    local pid=$TDB_PID i st=0
    TDB_PID=""
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "   TissDB did not exit 30 s after SIGTERM: sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || st=$?
    [ "$st" = 0 ] || echo "   TissDB exited with status $st after SIGTERM" >&2
    TDB_EXIT_STATUS=$st
}

stop_pg() {
    [ "$PG_STARTED" = 1 ] || return 0
    PG_STARTED=0
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 stop >/dev/null 2>&1 ||
        echo "   pg_ctl stop failed (see $PGROOT/postgres.log)" >&2
}

POUCH_PID=""
stop_pouchdb() { # the rest suite's pouchdb-server (node): SIGTERM, then SIGKILL after 10 s
    [ -n "$POUCH_PID" ] || return 0
    local pid=$POUCH_PID i
    POUCH_PID=""
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# PostgreSQL's memory: the postmaster and all its children (backends come and go with
# pgbench's connections, so their peak is sampled), once a second while the workloads
# run. Two sums: PSS (each shared page divided among the processes that map it, so
# shared_buffers counts once) and RSS (shared pages counted in every process). Writes
# "peak_pss_kb peak_rss_kb" to $1 after every sample.
PG_MEM_PID=""
pg_memory_sampler() {
    local pm sums pss rss max_pss=0 max_rss=0
    while :; do
        pm=$(head -n 1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)
        if [ -n "$pm" ]; then
            sums=$(for p in $pm $(pgrep -P "$pm"); do cat "/proc/$p/smaps_rollup" 2>/dev/null; done |
                awk '$1 == "Pss:" { p += $2 } $1 == "Rss:" { r += $2 } END { print p + 0, r + 0 }') || true
            read -r pss rss <<<"$sums"
            [ "$pss" -le "$max_pss" ] || max_pss=$pss
            [ "$rss" -le "$max_rss" ] || max_rss=$rss
            echo "$max_pss $max_rss" >"$1"
        fi
        sleep 1
    done
}
stop_pg_memory_sampler() {
    [ -n "$PG_MEM_PID" ] || return 0
    kill "$PG_MEM_PID" 2>/dev/null || true
    wait "$PG_MEM_PID" 2>/dev/null || true
    PG_MEM_PID=""
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    stop_pg_memory_sampler
    if [ -n "${BENCH_PID:-}" ]; then
        kill -TERM "$BENCH_PID" 2>/dev/null
        wait "$BENCH_PID" 2>/dev/null
    fi
    stop_pouchdb
    stop_tissdb
    stop_pg
    if [ "$KEEP" = 1 ]; then
        echo "kept temp dir $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM

# Small helpers (also used by bench/rest/suite.sh).
now() { date +%s.%N; }
secs_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
vm_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2];
              else printf "%.6f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { # free_port "ports already picked" -> a port nothing listens on
    # Below the kernel's ephemeral range (32768-60999 by default): a port in it may be
    # the local end of some connection, which no listener check sees and which makes
    # the server's bind fail.
    local p i
    for ((i = 0; i < 500; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
        [[ " $1 " == *" $p "* ]] && continue
        port_in_use "$p" && continue
        echo "$p"
        return 0
    done
    die "no free port found"
}
PG_PORT=$(free_port "")
TDB_PG_PORT=$(free_port "$PG_PORT")
TDB_HTTP_PORT=$(free_port "$PG_PORT $TDB_PG_PORT")

# Run a private copy of the binary: a cargo build running meanwhile may replace
# target/release/tissdb, and a restart after a crash must run the same build.
TISSDB_BIN_MTIME=$(date -u -r "$TISSDB_BIN" +%Y-%m-%dT%H:%M:%SZ)
cp "$TISSDB_BIN" "$WORK/tissdb"
TISSDB_SHA=$(sha256sum "$WORK/tissdb" | cut -c1-16)

# ---------------------------------------------------------------------------------
# Start both servers.
# ---------------------------------------------------------------------------------
TDB_RESTARTS=0
start_tissdb() {
    local i
    "$WORK/tissdb" serve --data-dir "$TDB_DATA" \
        --pg-addr "127.0.0.1:$TDB_PG_PORT" --http-addr "127.0.0.1:$TDB_HTTP_PORT" \
        >>"$LOGDIR/tissdb.log" 2>&1 &
    TDB_PID=$!
    for ((i = 0; i < 600; i++)); do
        # The server's own line ("Address already in use" holds "ready" too).
        grep -q '^tissdb ready:' "$LOGDIR/tissdb.log" 2>/dev/null && return 0
        if ! kill -0 "$TDB_PID" 2>/dev/null; then
            tail -n 20 "$LOGDIR/tissdb.log" >&2
            TDB_PID=""
            die "TissDB exited before printing ready"
        fi
        sleep 0.1
    done
    tail -n 20 "$LOGDIR/tissdb.log" >&2
    die "TissDB did not print ready within 60 s"
}

PGSQL=("$PSQL" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1)
if [ "$SUITE" != rest ]; then
    log "PostgreSQL: initdb + start on 127.0.0.1:$PG_PORT (data $PGDATA_DIR)"
    as_pg "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --no-locale --no-sync \
        >"$LOGDIR/initdb.log" 2>&1 || { cat "$LOGDIR/initdb.log" >&2; die "initdb failed"; }
    cat >>"$PGDATA_DIR/postgresql.conf" <<EOF

# compare.sh: private benchmark cluster; durability settings are the defaults.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PGROOT'
EOF
    PG_STARTED=1
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGROOT/postgres.log" -w -t 60 start >/dev/null ||
        { cat "$PGROOT/postgres.log" >&2; die "pg_ctl start failed"; }
    "${PGSQL[@]}" -p "$PG_PORT" -U postgres -d postgres \
        -c "CREATE ROLE bench LOGIN SUPERUSER" -c "CREATE DATABASE bench OWNER bench"
    PG_VERSION=$("${PGSQL[@]}" -At -p "$PG_PORT" -U bench -d bench -c "SHOW server_version")
    PG_DURABILITY=$("${PGSQL[@]}" -At -F ' ' -p "$PG_PORT" -U bench -d bench \
        -c "SELECT 'fsync=' || current_setting('fsync') || ' synchronous_commit=' || current_setting('synchronous_commit') || ' wal_sync_method=' || current_setting('wal_sync_method') || ' shared_buffers=' || current_setting('shared_buffers')")
    echo "   PostgreSQL $PG_VERSION: $PG_DURABILITY"
fi

log "TissDB: start $TISSDB_BIN (built $TISSDB_BIN_MTIME, sha256 $TISSDB_SHA...) on 127.0.0.1:$TDB_PG_PORT (http 127.0.0.1:$TDB_HTTP_PORT, data $TDB_DATA)"
start_tissdb
"${PGSQL[@]}" -p "$TDB_PG_PORT" -U bench -d bench -c "SELECT 1" >/dev/null ||
    die "psql cannot run SELECT 1 against TissDB"

if [ "$SUITE" = rest ]; then
    # The REST suite's own load, loop and report; cleanup (the EXIT trap) stops
    # everything it started.
    # shellcheck source=bench/rest/suite.sh
    . "$SCRIPT_DIR/rest/suite.sh"
    exit 0
fi

# ---------------------------------------------------------------------------------
# Load the same data into both.
# ---------------------------------------------------------------------------------
if [ "$SUITE" = joins ]; then
    LOAD_DESC="$CUSTOMERS customers, $ROWS orders, $ROWS edges over $VERTICES vertices"
    log "generating $LOAD_DESC as INSERTs of $BATCH rows"
    for t in "${TABLES[@]}"; do
        awk -v table="$t" -v customers="$CUSTOMERS" -v orders="$ROWS" -v edges="$ROWS" \
            -v vertices="$VERTICES" -v batch="$BATCH" -f "$SCRIPT_DIR/gen_joins.awk" >"$WORK/$t.sql"
    done
elif [ "$SUITE" = documents ]; then
    LOAD_DESC="$ROWS nested documents (INSERTs of $BATCH)"
    log "generating $ROWS product documents as INSERTs of $BATCH, one form per system"
    for sys in tissdb postgres; do
        awk -v rows="$ROWS" -v batch="$BATCH" -v target="$sys" -f "$SCRIPT_DIR/gen_products.awk" \
            >"$WORK/products.$sys.sql"
    done
    echo "   products.tissdb.sql $(wc -c <"$WORK/products.tissdb.sql") bytes, products.postgres.sql $(wc -c <"$WORK/products.postgres.sql") bytes"
else
    LOAD_DESC="$ROWS rows (COPY FROM STDIN, CSV)"
    log "generating $ROWS rows as CSV for COPY"
    awk -v format=ddl -f "$SCRIPT_DIR/gen_items.awk" >"$WORK/items.sql"
    awk -v rows="$ROWS" -v format=csv -f "$SCRIPT_DIR/gen_items.awk" >"$WORK/items.csv"
    echo "   items.csv: $(wc -c <"$WORK/items.csv") bytes"
fi

load_into() { # name (tissdb|postgres) port -> sets LOAD_S (total seconds), LOAD_DETAIL (per table) and
    # COPY_S (the seconds of the COPY of a table loaded from CSV: W6)
    local t t0 start
    start=$(now)
    LOAD_DETAIL=""
    COPY_S=""
    for t in "${TABLES[@]}"; do
        t0=$(now)
        # $t.$1.sql when the two systems take different SQL (the documents suite).
        local f="$WORK/$t.sql"
        [ -f "$WORK/$t.$1.sql" ] && f="$WORK/$t.$1.sql"
        "${PGSQL[@]}" -p "$2" -U bench -d bench -f "$f" >"$LOGDIR/load-$1-$t.log" 2>&1 ||
            { tail -n 5 "$LOGDIR/load-$1-$t.log" >&2; die "loading $t into $1 failed"; }
        if [ -f "$WORK/$t.csv" ]; then
            # Plain SQL: the server reads the rows from psql's stdin.
            local c0
            c0=$(now)
            "${PGSQL[@]}" -p "$2" -U bench -d bench -c "COPY $t FROM STDIN WITH (FORMAT csv)" \
                <"$WORK/$t.csv" >>"$LOGDIR/load-$1-$t.log" 2>&1 ||
                { tail -n 5 "$LOGDIR/load-$1-$t.log" >&2; die "COPY into $t of $1 failed"; }
            COPY_S=$(secs_since "$c0")
        fi
        LOAD_DETAIL+="${LOAD_DETAIL:+, }$t $(secs_since "$t0")s"
    done
    LOAD_S=$(secs_since "$start")
    [ ${#TABLES[@]} -gt 1 ] || LOAD_DETAIL=""
}
load_into tissdb "$TDB_PG_PORT"
TDB_LOAD_S=$LOAD_S TDB_LOAD_DETAIL=$LOAD_DETAIL TDB_COPY_S=$COPY_S
load_into postgres "$PG_PORT"
PG_LOAD_S=$LOAD_S PG_LOAD_DETAIL=$LOAD_DETAIL PG_COPY_S=$COPY_S
echo "   load time: TissDB ${TDB_LOAD_S}s${TDB_LOAD_DETAIL:+ ($TDB_LOAD_DETAIL)}, PostgreSQL ${PG_LOAD_S}s${PG_LOAD_DETAIL:+ ($PG_LOAD_DETAIL)}"

# PostgreSQL: VACUUM ANALYZE (what autovacuum does soon after a bulk load anyway) and
# a CHECKPOINT so that the load's checkpoint does not land in the first measured runs.
# TissDB gets no such step (it has no SQL VACUUM yet; compaction runs in background).
"${PGSQL[@]}" -p "$PG_PORT" -U bench -d bench -c "VACUUM ANALYZE $TABLES_CSV" -c "CHECKPOINT"

# Same data in both? Also warms both up (one full scan each).
if [ "$SUITE" = joins ]; then
    # Counts and integer sums of every table, then each query once with fixed
    # parameters (before any secondary index): the same results on both systems?
    # Float sums are rounded to cents (the two sum in different orders).
    check_joins() { # port -> one line
        "${PGSQL[@]}" -At -F ' ' -p "$1" -U bench -d bench -c "SELECT count(*) FROM customers" \
            -c "SELECT count(*), sum(customer_id) FROM orders" \
            -c "SELECT count(*), sum(src), sum(dst) FROM edges" | tr '\n' ' '
    }
    TDB_CHECK=$(check_joins "$TDB_PG_PORT")
    PG_CHECK=$(check_joins "$PG_PORT")
    echo "   check (customers; orders, sum(customer_id); edges, sum(src), sum(dst)): TissDB [${TDB_CHECK% }], PostgreSQL [${PG_CHECK% }]"
    [ "$TDB_CHECK" = "$PG_CHECK" ] || echo "   WARNING: the two data sets differ after loading" >&2
    ref_sql() { # workload -> its statement with :id and :start set to 42
        grep -v -e '^--' -e '^\\' "$WORKLOAD_DIR/${WL_FILE[$1]}" | head -n 1 | sed 's/:id\b/42/g; s/:start\b/42/g'
    }
    ref_times=()
    for wl in J1 J2-0 T3; do
        for sys in tissdb postgres; do
            port=$TDB_PG_PORT; [ "$sys" = postgres ] && port=$PG_PORT
            t0=$(now)
            if "${PGSQL[@]}" -At -F ' ' -p "$port" -U bench -d bench -c "$(ref_sql "$wl")" \
                >"$LOGDIR/ref-$wl-$sys.out" 2>&1; then
                ref_times+=("$(secs_since "$t0")")
            else
                ref_times+=(FAILED)
                echo "   WARNING: $wl failed on $sys: $(tail -n 3 "$LOGDIR/ref-$wl-$sys.out" | tr '\n' ' ')" >&2
            fi
            awk '{ if ($NF ~ /\./) $NF = sprintf("%.2f", $NF); print }' "$LOGDIR/ref-$wl-$sys.out" | sort \
                >"$LOGDIR/ref-$wl-$sys.txt"
        done
        cmp -s "$LOGDIR/ref-$wl-tissdb.txt" "$LOGDIR/ref-$wl-postgres.txt" || {
            echo "   WARNING: $wl gives different results (TissDB / PostgreSQL):" >&2
            paste -d '|' "$LOGDIR/ref-$wl-tissdb.txt" "$LOGDIR/ref-$wl-postgres.txt" | head -n 12 | sed 's/^/     /' >&2
        }
    done
    echo "   one run of each, before any secondary index (J2 with id=42: sum $(cat "$LOGDIR/ref-J2-0-postgres.txt"); T3 from 42: $(cat "$LOGDIR/ref-T3-postgres.txt") paths), seconds:"
    echo "     TissDB J1 ${ref_times[0]}, J2 ${ref_times[2]}, T3 ${ref_times[4]}; PostgreSQL J1 ${ref_times[1]}, J2 ${ref_times[3]}, T3 ${ref_times[5]}"
elif [ "$SUITE" = documents ]; then
    # Counts, a sum, the documents of one brand (through each index), one document's
    # nested fields by id and D4's result rounded to cents: the same on both systems?
    CHECK_ID=$((ROWS < 4242 ? ROWS : 4242))
    DOC_CHECKS_TDB=("SELECT count(*), sum(stock) FROM products"
        "SELECT count(*) FROM products WHERE brand = 'brand_17'"
        "SELECT name, specs->>'weight', specs->'dimensions'->>'width_mm', tags->>1 FROM products WHERE id = '$CHECK_ID'"
        "SELECT category, round(avg(price)::numeric, 2) FROM products GROUP BY 1 ORDER BY 1")
    DOC_CHECKS_PG=("SELECT count(*), sum((doc->>'stock')::int) FROM products"
        "SELECT count(*) FROM products WHERE doc->>'brand' = 'brand_17'"
        "SELECT doc->>'name', doc->'specs'->>'weight', doc->'specs'->'dimensions'->>'width_mm', doc->'tags'->>1 FROM products WHERE id = '$CHECK_ID'"
        "SELECT doc->>'category', round(avg((doc->>'price')::float8)::numeric, 2) FROM products GROUP BY 1 ORDER BY 1")
    for i in "${!DOC_CHECKS_TDB[@]}"; do
        "${PGSQL[@]}" -At -F ' ' -p "$TDB_PG_PORT" -U bench -d bench -c "${DOC_CHECKS_TDB[$i]}" \
            >"$LOGDIR/check-$i-tissdb.txt" 2>&1 || true
        "${PGSQL[@]}" -At -F ' ' -p "$PG_PORT" -U bench -d bench -c "${DOC_CHECKS_PG[$i]}" \
            >"$LOGDIR/check-$i-postgres.txt" 2>&1 || true
        if cmp -s "$LOGDIR/check-$i-tissdb.txt" "$LOGDIR/check-$i-postgres.txt"; then
            echo "   check ok: ${DOC_CHECKS_TDB[$i]} -> $(head -n 1 "$LOGDIR/check-$i-tissdb.txt")$([ "$(wc -l <"$LOGDIR/check-$i-tissdb.txt")" -gt 1 ] && echo ' ...')"
        else
            echo "   WARNING: different results (TissDB | PostgreSQL) of: ${DOC_CHECKS_TDB[$i]}" >&2
            paste -d '|' "$LOGDIR/check-$i-tissdb.txt" "$LOGDIR/check-$i-postgres.txt" | head -n 12 | sed 's/^/     /' >&2
        fi
    done
else
    CHECK_SQL="SELECT count(*), sum(qty), count(DISTINCT brand) FROM items"
    CHECK_SQL_TDB="SELECT count(*), sum(qty) FROM items"
    PG_CHECK=$("${PGSQL[@]}" -At -F ' ' -p "$PG_PORT" -U bench -d bench -c "$CHECK_SQL")
    TDB_CHECK=$("${PGSQL[@]}" -At -F ' ' -p "$TDB_PG_PORT" -U bench -d bench -c "$CHECK_SQL_TDB")
    echo "   check (count, sum(qty)): TissDB [$TDB_CHECK], PostgreSQL [${PG_CHECK% *}] ($(echo "$PG_CHECK" | awk '{print $3}') brands)"
    [ "$TDB_CHECK" = "${PG_CHECK% *}" ] || echo "   WARNING: the two tables differ after loading" >&2
fi

dir_bytes() { du -sb "$1" | awk '{print $1}'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
TDB_SIZE_LOAD=$(dir_bytes "$TDB_DATA")
PG_SIZE_LOAD=$(dir_bytes "$PGDATA_DIR")
if [ ${#TABLES[@]} = 1 ]; then
    PG_TABLE_LABEL="${TABLES[0]} table+index"
else
    PG_TABLE_LABEL="tables+indexes"
fi
PG_TABLE_LOAD=$("${PGSQL[@]}" -At -p "$PG_PORT" -U bench -d bench \
    -c "SELECT $(printf "pg_total_relation_size('%s') + " "${TABLES[@]}")0")
PG_BASE_LOAD=$(dir_bytes "$PGDATA_DIR/base")
PG_WAL_LOAD=$(dir_bytes "$PGDATA_DIR/pg_wal")
echo "   data dir after load: TissDB $(mib "$TDB_SIZE_LOAD"); PostgreSQL $(mib "$PG_SIZE_LOAD") ($PG_TABLE_LABEL $(mib "$PG_TABLE_LOAD"), base/ $(mib "$PG_BASE_LOAD"), pg_wal/ $(mib "$PG_WAL_LOAD"))"

TDB_HWM_LOAD=$(vm_kb "$TDB_PID" VmHWM)
echo "   TissDB peak RSS after load: ${TDB_HWM_LOAD:-?} kB"

# W6: the COPY of the CSV rows, and what the table takes on disk. TissDB's data dir holds
# everything (WAL, segments, manifest); measured right after the load and again after
# VACUUM (a full compaction; the WAL before the flush point is dropped by then).
W6_LINE=""
if [ -n "$TDB_COPY_S" ] && [ -n "$PG_COPY_S" ]; then
    "${PGSQL[@]}" -p "$TDB_PG_PORT" -U bench -d bench -c "VACUUM items" >/dev/null
    TDB_SIZE_VACUUM=$(dir_bytes "$TDB_DATA")
    PG_ITEMS_BYTES=$("${PGSQL[@]}" -At -p "$PG_PORT" -U bench -d bench -c "SELECT pg_total_relation_size('items')")
    W6_RATIO=$(awk -v a="$TDB_COPY_S" -v b="$PG_COPY_S" 'BEGIN { if (a > 0) printf "%.3f", b / a; else print "-" }')
    rps() { awk -v n="$ROWS" -v s="$1" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'; }
    W6_LINE="W6 COPY of $ROWS CSV rows ($(wc -c <"$WORK/items.csv") bytes): TissDB ${TDB_COPY_S}s ($(rps "$TDB_COPY_S") rows/s), PostgreSQL ${PG_COPY_S}s ($(rps "$PG_COPY_S") rows/s), ratio $W6_RATIO; on disk: TissDB data dir $(mib "$TDB_SIZE_LOAD") after load, $(mib "$TDB_SIZE_VACUUM") after VACUUM; PostgreSQL pg_total_relation_size('items') $(mib "$PG_ITEMS_BYTES")"
    echo "   $W6_LINE"
fi

# ---------------------------------------------------------------------------------
# Benchmark.
# ---------------------------------------------------------------------------------
# Runs pgbench in the background and waits for it, so that Ctrl-C or SIGTERM reach the
# traps at once (cleanup then stops it); timeout guards against a server that hangs.
# Sets RUN_RESULT to the tps, or to "FAILED: <error lines>".
BENCH_PID=""
wl_path() { # sys wl -> its workload file: NAME.SYS.sql where the systems differ, else NAME.sql
    local f=${WL_FILE[$2]}
    if [ -f "$WORKLOAD_DIR/${f%.sql}.$1.sql" ]; then
        echo "$WORKLOAD_DIR/${f%.sql}.$1.sql"
    else
        echo "$WORKLOAD_DIR/$f"
    fi
}
# shellcheck disable=SC1003  # '^\\' is a regex for a backslash
stmt_of() { grep -v -e '^--' -e '^\\' "$(wl_path "$1" "$2")" | head -n 1; } # sys wl
run_pgbench() { # sys port wl mode clients round
    local sys=$1 port=$2 wl=$3 mode=$4 clients=$5 round=$6
    local jobs=1 rc=0 tps failed out err
    [ "$clients" -gt 1 ] && jobs=2
    out="$LOGDIR/pgbench-$wl-$mode-c$clients-$sys-r$round.log"
    local retry=()
    [ "$SUITE" = transactions ] && retry=(--max-tries=1000)
    timeout -k 5 "$BENCH_TIMEOUT" "$PGBENCH" -n -h 127.0.0.1 -p "$port" -U bench \
        -M "$mode" -c "$clients" -j "$jobs" -T "$DURATION" "${PGBENCH_DEFS[@]}" "${retry[@]}" \
        -f "$(wl_path "$sys" "$wl")" bench >"$out" 2>&1 &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    tps=$(awk '/^tps = / { print $3; exit }' "$out")
    failed=$(awk -F'[: ]+' '/^number of failed transactions/ { print $5; exit }' "$out")
    # Retried transactions (serialization failures, deadlocks) per transaction done.
    local done_tx retries
    done_tx=$(awk -F'[: ]+' '/^number of transactions actually processed/ { print $6; exit }' "$out")
    retries=$(awk -F'[: ]+' '/^total number of retries/ { print $5; exit }' "$out")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wl" "$mode" "$clients" "$sys" "$round" \
        "${done_tx:-0}" "${retries:-0}" >>"$LOGDIR/retries.tsv"
    if [ "$rc" = 0 ] && [ -n "$tps" ] && [ "${failed:-0}" = 0 ]; then
        RUN_RESULT=$tps
        return 0
    fi
    cp "$out" "$RESULTS_DIR/last-logs/" 2>/dev/null || true
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        err="pgbench timed out after $BENCH_TIMEOUT s"
    else
        # The first error line is usually the cause (e.g. the PREPARE that failed), the
        # last one the client that gave up; "Run was aborted" says nothing.
        local first last
        first=$(grep -iE 'error|fatal' "$out" | grep -v 'Run was aborted' | head -n 1 || true)
        last=$(grep -iE 'error|fatal' "$out" | grep -v 'Run was aborted' | tail -n 1 || true)
        err=$first
        [ "$last" = "$first" ] || err="$first | last: $last"
        [ -n "$err" ] || err=$(tail -n 1 "$out")
    fi
    RUN_RESULT="FAILED: round $round, pgbench exit $rc: $err"
    RUN_RESULT=${RUN_RESULT//[$'\t\n']/ }
}

# Below 1 tps (the joins suite's slow queries) three decimals, not "0.1".
fmt_tps() { if [ -z "$1" ] || [ "$1" = FAILED ]; then echo "${1:-FAILED}"; else awk -v x="$1" 'BEGIN { f = x < 1 ? "%.3f" : "%.1f"; printf f, x }'; fi; }

total_cells=0
for wl in "${RUN_ORDER[@]}"; do
    total_cells=$((total_cells + $(cells_of "$wl" | wc -l)))
done
est=$((total_cells * ROUNDS * 2 * DURATION))
log "benchmark: ${#RUN_ORDER[@]} workloads, $total_cells cells x $ROUNDS rounds x 2 systems x ${DURATION}s = ~${est}s of pgbench"
[ "$SUITE" != joins ] || echo "   (more: a run lasts until its last query ends, however long past ${DURATION}s)"
echo "   (rounds alternate TissDB, PostgreSQL, TissDB, PostgreSQL, ...; run order ${RUN_ORDER[*]})"

mkdir -p "$RESULTS_DIR"
rm -rf "$RESULTS_DIR/last-logs"
mkdir -p "$RESULTS_DIR/last-logs"

ROWS_OUT=()
ERRORS=()
cell_no=0
pg_memory_sampler "$WORK/pg-memory" &
PG_MEM_PID=$!
for wl in "${RUN_ORDER[@]}"; do
    if [ -n "${WL_BEFORE[$wl]:-}" ]; then
        log "before $wl on both systems: ${WL_BEFORE[$wl]}"
        for port in "$TDB_PG_PORT" "$PG_PORT"; do
            t0=$(now)
            "${PGSQL[@]}" -p "$port" -U bench -d bench -c "${WL_BEFORE[$wl]}" >/dev/null ||
                die "running '${WL_BEFORE[$wl]}' on port $port failed"
            echo "   $([ "$port" = "$PG_PORT" ] && echo PostgreSQL || echo TissDB): $(secs_since "$t0")s"
        done
        "${PGSQL[@]}" -p "$PG_PORT" -U bench -d bench -c "ANALYZE $TABLES_CSV" >/dev/null
    fi
    mapfile -t wl_cells < <(cells_of "$wl")
    for cell in "${wl_cells[@]}"; do
        read -r mode clients <<<"$cell"
        cell_no=$((cell_no + 1))
        tdb_vals=() pg_vals=() tdb_err="" pg_err=""
        progress=""
        for ((r = 1; r <= ROUNDS; r++)); do
            # A: TissDB
            if [ -z "$TDB_PID" ] || ! kill -0 "$TDB_PID" 2>/dev/null; then
                st=0; [ -n "$TDB_PID" ] && { wait "$TDB_PID" 2>/dev/null || st=$?; }
                msg="TissDB server had exited (status $st); restarted. Log tail: $(tail -n 3 "$LOGDIR/tissdb.log" | tr '\n' ' ')"
                ERRORS+=("[$wl ${WL_LABEL[$wl]} $mode c=$clients] $msg")
                echo "   !! $msg" >&2
                TDB_RESTARTS=$((TDB_RESTARTS + 1))
                TDB_PID=""
                start_tissdb
            fi
            run_pgbench tissdb "$TDB_PG_PORT" "$wl" "$mode" "$clients" "$r"
            v=$RUN_RESULT
            if [[ "$v" == FAILED* ]]; then
                [ -n "$tdb_err" ] || tdb_err=${v#FAILED: }
                v=FAILED
            else
                tdb_vals+=("$v")
            fi
            # B: PostgreSQL
            run_pgbench postgres "$PG_PORT" "$wl" "$mode" "$clients" "$r"
            w=$RUN_RESULT
            if [[ "$w" == FAILED* ]]; then
                [ -n "$pg_err" ] || pg_err=${w#FAILED: }
                w=FAILED
            else
                pg_vals+=("$w")
            fi
            progress+=" r$r: $(fmt_tps "$v")/$(fmt_tps "$w")"
        done
        printf '   [%2d/%d] %-5s %-17s %-8s c=%-2s TissDB/PostgreSQL tps:%s\n' \
            "$cell_no" "$total_cells" "$wl" "${WL_LABEL[$wl]}" "$mode" "$clients" "$progress"
        if [ -n "$tdb_err" ]; then tdb_med=FAILED; else tdb_med=$(median "${tdb_vals[@]}"); fi
        if [ -n "$pg_err" ]; then pg_med=FAILED; else pg_med=$(median "${pg_vals[@]}"); fi
        if [ "$tdb_med" != FAILED ] && [ "$pg_med" != FAILED ]; then
            ratio=$(awk -v a="$tdb_med" -v b="$pg_med" 'BEGIN { if (b > 0) { f = a / b < 0.1 ? "%.3g" : "%.3f"; printf f, a / b } else print "-" }')
        else
            ratio="-"
        fi
        [ -z "$tdb_err" ] || ERRORS+=("[$wl ${WL_LABEL[$wl]} -M $mode -c $clients] TissDB FAILED: $tdb_err -- statement: $(stmt_of tissdb "$wl")")
        [ -z "$pg_err" ] || ERRORS+=("[$wl ${WL_LABEL[$wl]} -M $mode -c $clients] PostgreSQL FAILED: $pg_err -- statement: $(stmt_of postgres "$wl")")
        err_field="${tdb_err:+tissdb: $tdb_err}${tdb_err:+${pg_err:+; }}${pg_err:+postgres: $pg_err}"
        ROWS_OUT+=("$wl	${WL_LABEL[$wl]}	$mode	$clients	$DURATION	$ROUNDS	$tdb_med	$pg_med	$ratio	$(IFS=,; echo "${tdb_vals[*]}")	$(IFS=,; echo "${pg_vals[*]}")	${err_field//	/ }")
    done
done

# ---------------------------------------------------------------------------------
# Report.
# ---------------------------------------------------------------------------------
TDB_HWM_END=$(vm_kb "$TDB_PID" VmHWM)
TDB_RSS_END=$(vm_kb "$TDB_PID" VmRSS)
stop_pg_memory_sampler
read -r PG_PSS_PEAK PG_RSS_PEAK <"$WORK/pg-memory" 2>/dev/null || true
TDB_SIZE_END=$(dir_bytes "$TDB_DATA")
PG_SIZE_END=$(dir_bytes "$PGDATA_DIR")
TDB_EXIT_STATUS=""
stop_tissdb
cp "$LOGDIR/tissdb.log" "$RESULTS_DIR/last-logs/tissdb-server.log" 2>/dev/null || true
stop_pg

echo
echo "Results (median TPS over $ROUNDS rounds of ${DURATION}s; ratio = TissDB / PostgreSQL; >1 means TissDB is faster)"
printf '%-5s %-17s %-9s %7s %14s %14s %9s\n' workload statement mode clients "TissDB tps" "PostgreSQL tps" ratio
for row in "${ROWS_OUT[@]}"; do
    IFS=$'\t' read -r wl label mode clients _dur _rounds tdb pg ratio _rest <<<"$row"
    printf '%-5s %-17s %-9s %7s %14s %14s %9s\n' "$wl" "$label" "$mode" "$clients" \
        "$(fmt_tps "$tdb")" "$(fmt_tps "$pg")" "$ratio"
done
echo
echo "TissDB peak RSS (VmHWM): $(mib $((${TDB_HWM_END:-0} * 1024))) at the end (${TDB_HWM_LOAD:-?} kB after load; VmRSS at end ${TDB_RSS_END:-?} kB)"
if [ -n "${PG_PSS_PEAK:-}" ]; then
    echo "PostgreSQL peak memory, all its processes (sampled each second during the workloads): PSS $(mib $((PG_PSS_PEAK * 1024))) (shared memory counted once), RSS $(mib $((PG_RSS_PEAK * 1024))) (shared pages counted in every process); TissDB VmHWM / PostgreSQL PSS $(awk -v a="${TDB_HWM_END:-0}" -v b="$PG_PSS_PEAK" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
fi
echo "Data dir after load:  TissDB $(mib "$TDB_SIZE_LOAD"), PostgreSQL $(mib "$PG_SIZE_LOAD") ($PG_TABLE_LABEL $(mib "$PG_TABLE_LOAD"), base/ $(mib "$PG_BASE_LOAD"), pg_wal/ $(mib "$PG_WAL_LOAD"))"
echo "Data dir at the end:  TissDB $(mib "$TDB_SIZE_END"), PostgreSQL $(mib "$PG_SIZE_END")"
echo "Load of $LOAD_DESC:  TissDB ${TDB_LOAD_S}s${TDB_LOAD_DETAIL:+ ($TDB_LOAD_DETAIL)}, PostgreSQL ${PG_LOAD_S}s${PG_LOAD_DETAIL:+ ($PG_LOAD_DETAIL)}"
[ -z "$W6_LINE" ] || echo "$W6_LINE"
if [ "$SUITE" = transactions ] && [ -s "$LOGDIR/retries.tsv" ]; then
    echo "Retries (serialization failures and deadlocks retried by pgbench, per committed transaction):"
    awk -F'\t' '{ k = $1 " " $2 " c=" $3 " " $4; d[k] += $6; r[k] += $7 }
        END { for (k in d) printf "  %-32s %9d committed %8d retries  %.2f%%\n", k, d[k], r[k], d[k] ? 100 * r[k] / d[k] : 0 }' \
        "$LOGDIR/retries.tsv" | sort
    cp "$LOGDIR/retries.tsv" "$RESULTS_DIR/last-retries.tsv"
fi
[ "${TDB_EXIT_STATUS:-0}" = 0 ] || ERRORS+=("TissDB exited with status $TDB_EXIT_STATUS after SIGTERM at the end")
[ "$TDB_RESTARTS" = 0 ] || echo "TissDB was restarted $TDB_RESTARTS time(s) after exiting during the run"
if [ ${#ERRORS[@]} -gt 0 ]; then
    echo
    echo "FAILURES (pgbench output in bench/results/last-logs/):"
    printf '  %s\n' "${ERRORS[@]}"
fi

{
    printf 'workload\tstatement\tmode\tclients\tduration_s\trounds\ttissdb_tps\tpostgres_tps\tratio\ttissdb_tps_rounds\tpostgres_tps_rounds\terror\n'
    printf '%s\n' "${ROWS_OUT[@]}"
} >"$RESULTS_DIR/last.tsv"
{
    printf 'key\tvalue\n'
    printf 'date\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'host_cpus\t%s\n' "$(nproc)"
    printf 'mode\t%s\n' "$([ "$QUICK" = 1 ] && echo quick || echo default)"
    printf 'tissdb_bin\t%s\n' "$TISSDB_BIN"
    printf 'tissdb_bin_mtime\t%s\n' "$TISSDB_BIN_MTIME"
    printf 'tissdb_bin_sha256_prefix\t%s\n' "$TISSDB_SHA"
    printf 'git_commit\t%s\n' "$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo -)$(git -C "$REPO_DIR" diff --quiet HEAD -- . ':!bench' 2>/dev/null || echo +dirty)"
    printf 'postgres_version\t%s\n' "$PG_VERSION"
    printf 'postgres_settings\t%s\n' "$PG_DURABILITY"
    printf 'suite\t%s\n' "${SUITE:-default}"
    printf 'rows\t%s\n' "$ROWS"
    if [ "$SUITE" = joins ]; then
        printf 'customers\t%s\norders\t%s\nedges\t%s\nvertices\t%s\n' "$CUSTOMERS" "$ROWS" "$ROWS" "$VERTICES"
        printf 'tissdb_load_detail\t%s\npostgres_load_detail\t%s\n' "$TDB_LOAD_DETAIL" "$PG_LOAD_DETAIL"
    fi
    if [ -n "$W6_LINE" ]; then
        printf 'w6_tissdb_copy_s\t%s\nw6_postgres_copy_s\t%s\nw6_ratio_tissdb_over_postgres_rows_per_s\t%s\n' \
            "$TDB_COPY_S" "$PG_COPY_S" "$W6_RATIO"
        printf 'w6_tissdb_datadir_bytes_after_vacuum\t%s\nw6_postgres_items_relation_bytes\t%s\n' \
            "$TDB_SIZE_VACUUM" "$PG_ITEMS_BYTES"
    fi
    printf 'tissdb_load_s\t%s\n' "$TDB_LOAD_S"
    printf 'postgres_load_s\t%s\n' "$PG_LOAD_S"
    printf 'tissdb_vmhwm_kb\t%s\n' "${TDB_HWM_END:-}"
    printf 'tissdb_vmhwm_after_load_kb\t%s\n' "${TDB_HWM_LOAD:-}"
    printf 'postgres_peak_pss_kb\t%s\n' "${PG_PSS_PEAK:-}"
    printf 'postgres_peak_rss_sum_kb\t%s\n' "${PG_RSS_PEAK:-}"
    printf 'tissdb_datadir_bytes_after_load\t%s\n' "$TDB_SIZE_LOAD"
    printf 'postgres_datadir_bytes_after_load\t%s\n' "$PG_SIZE_LOAD"
    printf 'postgres_%s_relation_bytes_after_load\t%s\n' "$(IFS=_; echo "${TABLES[*]}")" "$PG_TABLE_LOAD"
    printf 'tissdb_datadir_bytes_end\t%s\n' "$TDB_SIZE_END"
    printf 'postgres_datadir_bytes_end\t%s\n' "$PG_SIZE_END"
    printf 'tissdb_restarts\t%s\n' "$TDB_RESTARTS"
    printf 'failures\t%s\n' "${#ERRORS[@]}"
} >"$RESULTS_DIR/last-info.tsv"
echo
echo "Wrote $RESULTS_DIR/last.tsv and last-info.tsv"
