# shellcheck shell=bash disable=SC2153  # REPO_DIR, POUCH_PID, ... come from compare.sh
# compare.sh --suite rest: sourced by bench/compare.sh once the TissDB server is up (no
# PostgreSQL server is started). Uses compare.sh's variables and helpers (WORK, LOGDIR,
# RESULTS_DIR, TDB_HTTP_PORT, TDB_PG_PORT, PGSQL, PGBENCH, ROWS, DURATION, ROUNDS,
# RUN_ORDER, BENCH_PID, POUCH_PID, log, die, now, secs_since, median, free_port, ...);
# its EXIT trap stops TissDB, pouchdb-server and a running wrk or pgbench.
#
# Operations (RUN_ORDER, a subset of GET QUERY POST), each with 1 and 8 connections:
#   GET    REST GET /docs/<random id>          wire SELECT * FROM docs WHERE id = $1
#   QUERY  REST POST /docs/_query, the same point SELECT with params (wire: as GET's)
#   POST   REST POST /docs, a ~300-byte doc    wire INSERT INTO docs (...) VALUES ($1, ...)
# REST runs are wrk (-t 1 -c 1, -t 2 -c 8), wire runs pgbench -M prepared (-j 1 -c 1,
# -j 2 -c 8) with a per-transaction log for the p99; pouchdb-server runs GET and POST
# with the same wrk scripts. Rounds alternate REST, wire, pouchdb-server.

REST_DIR="$SCRIPT_DIR/rest"
HTTP="http://127.0.0.1:$TDB_HTTP_PORT"
REST_CONNS=(1 8)

# ---------------------------------------------------------------------------------
# Load: the same ROWS ~300-byte documents ('1'..'N') into TissDB and pouchdb-server.
# ---------------------------------------------------------------------------------
log "generating $ROWS documents of about 300 bytes (NDJSON for TissDB, _bulk_docs for pouchdb-server)"
awk -v rows="$ROWS" -v size=small -v target=ndjson -f "$SCRIPT_DIR/gen_products.awk" >"$WORK/docs.ndjson"
awk -v rows="$ROWS" -v size=small -v target=couch -v batch=1000 -f "$SCRIPT_DIR/gen_products.awk" >"$WORK/docs.bulk"
echo "   docs.ndjson: $(wc -c <"$WORK/docs.ndjson") bytes"

http_status() { # method url [curl args...] -> the status code (000 when no answer)
    local m=$1 u=$2
    shift 2
    curl -s -o "$LOGDIR/curl-last.out" -w '%{http_code}' -X "$m" "$@" "$u" || true
}

t0=$(now)
st=$(http_status PUT "$HTTP/docs")
[ "$st" = 201 ] || die "TissDB: PUT /docs answered $st: $(cat "$LOGDIR/curl-last.out")"
# Imports in chunks of 10000 documents (about 3 MB; the body limit is 16 MiB).
split -l 10000 -d -a 4 "$WORK/docs.ndjson" "$WORK/docs-chunk."
for f in "$WORK"/docs-chunk.*; do
    st=$(http_status POST "$HTTP/docs" -H 'Content-Type: application/x-ndjson' --data-binary "@$f")
    [ "$st" = 201 ] || die "TissDB: NDJSON import into /docs answered $st: $(head -c 300 "$LOGDIR/curl-last.out")"
done
rm -f "$WORK"/docs-chunk.*
TDB_LOAD_S=$(secs_since "$t0")
TDB_COUNT=$("${PGSQL[@]}" -At -p "$TDB_PG_PORT" -U bench -d bench -c "SELECT count(*) FROM docs")
echo "   TissDB: $TDB_COUNT documents in ${TDB_LOAD_S}s (POST /docs, application/x-ndjson)"
[ "$TDB_COUNT" = "$ROWS" ] || echo "   WARNING: TissDB holds $TDB_COUNT documents, not $ROWS" >&2
st=$(http_status GET "$HTTP/docs/42")
[ "$st" = 200 ] || [ "$ROWS" -lt 42 ] || echo "   WARNING: TissDB GET /docs/42 answered $st" >&2

# pouchdb-server: npm ci into bench/rest/node_modules on first use, then one private
# server (temp dir, 127.0.0.1, a free port). Any failure skips it with the reason.
POUCH_SKIP=""
POUCH_VERSION=""
POUCH_LOAD_S=""
start_pouchdb() {
    local bin="$REST_DIR/node_modules/pouchdb-server/bin/pouchdb-server" i
    command -v node >/dev/null || { POUCH_SKIP="node is not installed"; return 0; }
    if [ ! -f "$bin" ]; then
        command -v npm >/dev/null || { POUCH_SKIP="npm is not installed"; return 0; }
        log "installing pouchdb-server (npm ci in bench/rest, pinned by package-lock.json)"
        if ! (cd "$REST_DIR" && timeout 900 npm ci --no-audit --no-fund) >"$LOGDIR/npm-ci.log" 2>&1; then
            POUCH_SKIP="npm ci of pouchdb-server failed: $(grep -i -m 1 'err' "$LOGDIR/npm-ci.log" || tail -n 1 "$LOGDIR/npm-ci.log")"
            return 0
        fi
        [ -f "$bin" ] || { POUCH_SKIP="npm ci did not install $bin"; return 0; }
    fi
    POUCH_PORT=$(free_port "$TDB_PG_PORT $TDB_HTTP_PORT")
    mkdir -p "$WORK/pouchdb"
    # In its own dir: it writes log.txt and config.json into the working directory.
    (cd "$WORK/pouchdb" && exec node "$bin" --host 127.0.0.1 --port "$POUCH_PORT" \
        --dir "$WORK/pouchdb" --config "$WORK/pouchdb/config.json" --no-stdout-logs) \
        >"$LOGDIR/pouchdb-server.log" 2>&1 &
    POUCH_PID=$!
    for ((i = 0; i < 300; i++)); do
        if ! kill -0 "$POUCH_PID" 2>/dev/null; then
            POUCH_SKIP="pouchdb-server exited at start: $(tail -n 3 "$LOGDIR/pouchdb-server.log" | tr '\n' ' ')"
            wait "$POUCH_PID" 2>/dev/null || true
            POUCH_PID=""
            return 0
        fi
        [ "$(http_status GET "http://127.0.0.1:$POUCH_PORT/")" = 200 ] && break
        sleep 0.1
    done
    if [ "$(http_status GET "http://127.0.0.1:$POUCH_PORT/")" != 200 ]; then
        POUCH_SKIP="pouchdb-server did not answer GET / within 30 s"
        stop_pouchdb
        return 0
    fi
    POUCH_VERSION=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' "$LOGDIR/curl-last.out")
    POUCH_HTTP="http://127.0.0.1:$POUCH_PORT"
    log "pouchdb-server $POUCH_VERSION on $POUCH_HTTP (pid $POUCH_PID, data $WORK/pouchdb)"
    local t0 st line n=0
    t0=$(now)
    st=$(http_status PUT "$POUCH_HTTP/docs")
    [ "$st" = 201 ] || { POUCH_SKIP="pouchdb-server: PUT /docs answered $st"; stop_pouchdb; return 0; }
    while IFS= read -r line; do
        n=$((n + 1))
        st=$(printf '%s' "$line" | http_status POST "$POUCH_HTTP/docs/_bulk_docs" \
            -H 'Content-Type: application/json' --data-binary @-)
        if [ "$st" != 201 ]; then
            POUCH_SKIP="pouchdb-server: _bulk_docs batch $n answered $st"
            stop_pouchdb
            return 0
        fi
    done <"$WORK/docs.bulk"
    POUCH_LOAD_S=$(secs_since "$t0")
    local count
    count=$(curl -s "$POUCH_HTTP/docs" | sed -n 's/.*"doc_count":\([0-9]*\).*/\1/p')
    echo "   pouchdb-server: ${count:-?} documents in ${POUCH_LOAD_S}s (_bulk_docs of 1000)"
    [ "$count" = "$ROWS" ] || echo "   WARNING: pouchdb-server holds ${count:-?} documents, not $ROWS" >&2
}
if [ "$NO_POUCHDB" = 1 ]; then
    POUCH_SKIP="--no-pouchdb"
elif ! printf '%s\n' "${RUN_ORDER[@]}" | grep -qx -e GET -e POST; then
    POUCH_SKIP="no GET or POST workload selected"
else
    start_pouchdb
fi
[ -z "$POUCH_SKIP" ] || echo "   pouchdb-server skipped: $POUCH_SKIP"

# ---------------------------------------------------------------------------------
# Runners. Each sets RUN_RESULT to "<per second> <p99 ms>" or "FAILED: <why>".
# ---------------------------------------------------------------------------------
to_ms() { # wrk's latency text (812.00us, 1.25ms, 1.02s, 1.00m) -> milliseconds
    awk -v x="$1" 'BEGIN { v = x + 0
        if (x ~ /us$/) v /= 1000; else if (x ~ /ms$/) v = v; else if (x ~ /m$/) v *= 60000;
        else if (x ~ /s$/) v *= 1000
        printf "%.3f", v }'
}
threads_for() { if [ "$1" -lt 2 ]; then echo 1; else echo 2; fi; }

run_wrk() { # sys url lua conns round [script args...]
    local sys=$1 url=$2 lua=$3 conns=$4 round=$5 rc=0 out rps p99 non2xx sockerr
    shift 5
    out="$LOGDIR/wrk-$sys-$lua-c$conns-r$round.log"
    timeout -k 5 "$BENCH_TIMEOUT" wrk -t "$(threads_for "$conns")" -c "$conns" -d "${DURATION}s" \
        --timeout 10s --latency -s "$REST_DIR/$lua" "$url" -- "$@" >"$out" 2>&1 &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    rps=$(awk '/^Requests\/sec:/ { print $2; exit }' "$out")
    p99=$(awk '$1 == "99%" { print $2; exit }' "$out")
    non2xx=$(awk -F': *' '/Non-2xx or 3xx responses/ { print $2; exit }' "$out")
    sockerr=$(awk '/Socket errors/ { sub(/^ *Socket errors: */, ""); print; exit }' "$out")
    if [ "$rc" = 0 ] && [ -n "$rps" ] && [ -n "$p99" ] && [ -z "$non2xx" ] && [ -z "$sockerr" ]; then
        RUN_RESULT="$rps $(to_ms "$p99")"
        return 0
    fi
    cp "$out" "$RESULTS_DIR/last-logs/" 2>/dev/null || true
    RUN_RESULT="FAILED: round $round, wrk exit $rc${non2xx:+, $non2xx non-2xx answers}${sockerr:+, socket errors $sockerr}$([ -n "$rps" ] || echo ", no Requests/sec: $(tail -n 1 "$out")")"
}

# The document of post.lua, field by field, for the wire's INSERT (wire_insert.sql).
WIRE_DOC=(-D 'name=Smart Watch 7' -D brand=brand_07 -D price=299.99 -D category=wearables
    -D is_available=true -D 'tags=["wearables", "new", "premium"]' -D stock=12
    -D 'specs={"weight": "250g", "dimensions": {"width_mm": 40, "height_mm": 44, "depth_mm": 11}, "bluetooth_version": 5.2}')

run_wire() { # script conns round
    local script=$1 conns=$2 round=$3 rc=0 out tps failed p99
    out="$LOGDIR/pgbench-$script-c$conns-r$round.log"
    rm -f "$LOGDIR/txlog".*
    timeout -k 5 "$BENCH_TIMEOUT" "$PGBENCH" -n -h 127.0.0.1 -p "$TDB_PG_PORT" -U bench -M prepared \
        -c "$conns" -j "$(threads_for "$conns")" -T "$DURATION" -D rows="$ROWS" "${WIRE_DOC[@]}" \
        -l --log-prefix="$LOGDIR/txlog" -f "$REST_DIR/$script.sql" bench >"$out" 2>&1 &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    tps=$(awk '/^tps = / { print $3; exit }' "$out")
    failed=$(awk -F'[: ]+' '/^number of failed transactions/ { print $5; exit }' "$out")
    # The per-transaction logs: the third field is the latency in microseconds.
    p99=$(cat "$LOGDIR/txlog".* 2>/dev/null | awk '{ print $3 }' | sort -n |
        awk '{ a[NR] = $1 } END { if (NR) { i = int(NR * 0.99); if (i < NR * 0.99) i++; printf "%.3f", a[i] / 1000 } }')
    rm -f "$LOGDIR/txlog".*
    if [ "$rc" = 0 ] && [ -n "$tps" ] && [ "${failed:-0}" = 0 ] && [ -n "$p99" ]; then
        RUN_RESULT="$tps $p99"
        return 0
    fi
    cp "$out" "$RESULTS_DIR/last-logs/" 2>/dev/null || true
    local err
    err=$(grep -iE 'error|fatal' "$out" | grep -v 'Run was aborted' | head -n 1 || true)
    RUN_RESULT="FAILED: round $round, pgbench exit $rc: ${err:-$(tail -n 1 "$out")}"
}

# ---------------------------------------------------------------------------------
# Benchmark.
# ---------------------------------------------------------------------------------
mkdir -p "$RESULTS_DIR"
rm -rf "$RESULTS_DIR/last-logs"
mkdir -p "$RESULTS_DIR/last-logs"

declare -A REST_LABEL=([GET]="GET /docs/<id>" [QUERY]="POST /docs/_query" [POST]="POST /docs")
declare -A WIRE_OF=([GET]=wire_select [QUERY]=wire_select [POST]=wire_insert)
declare -A WIRE_MED=() WIRE_P99=() WIRE_VALS=()
ROWS_OUT=()
ERRORS=()
total_cells=$((${#RUN_ORDER[@]} * ${#REST_CONNS[@]}))
log "benchmark: ${RUN_ORDER[*]} x connections ${REST_CONNS[*]} x $ROUNDS rounds of ${DURATION}s (REST, wire$([ -n "$POUCH_SKIP" ] || echo ", pouchdb-server for GET and POST"))"
echo "   (rounds alternate REST (wrk), wire (pgbench -M prepared), pouchdb-server (wrk); the wire figure of SELECT is measured once, with GET)"

# Formats a median (or FAILED) and a ratio.
fmt1() { if [ -z "$1" ] || [ "$1" = FAILED ] || [ "$1" = - ]; then echo "${1:--}"; else awk -v x="$1" 'BEGIN { printf "%.1f", x }'; fi; }
fmt2() { if [ -z "$1" ] || [ "$1" = FAILED ] || [ "$1" = - ]; then echo "${1:--}"; else awk -v x="$1" 'BEGIN { printf "%.2f", x }'; fi; }
ratio_of() { # a b -> a/b, or -
    if [[ "$1" =~ ^[0-9.]+$ ]] && [[ "$2" =~ ^[0-9.]+$ ]]; then
        awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'
    else
        echo -
    fi
}

cell_no=0
for op in "${RUN_ORDER[@]}"; do
    for conns in "${REST_CONNS[@]}"; do
        cell_no=$((cell_no + 1))
        wire=${WIRE_OF[$op]}
        wkey="$wire $conns"
        measure_wire=0
        [ -n "${WIRE_MED[$wkey]:-}" ] || measure_wire=1
        do_pouch=0
        [ -z "$POUCH_SKIP" ] && [ "$op" != QUERY ] && do_pouch=1
        rest_rps=() rest_p99=() wire_rps=() wire_p99=() pouch_rps=() pouch_p99=()
        rest_err="" wire_err="" pouch_err="" progress=""
        for ((r = 1; r <= ROUNDS; r++)); do
            if [ -z "$TDB_PID" ] || ! kill -0 "$TDB_PID" 2>/dev/null; then
                die "the TissDB server has exited; log tail: $(tail -n 3 "$LOGDIR/tissdb.log" | tr '\n' ' ')"
            fi
            case $op in
                GET) run_wrk tissdb "$HTTP" get.lua "$conns" "$r" /docs/ "$ROWS" ;;
                QUERY) run_wrk tissdb "$HTTP" query.lua "$conns" "$r" /docs/_query docs "$ROWS" ;;
                POST) run_wrk tissdb "$HTTP" post.lua "$conns" "$r" /docs ;;
            esac
            if [[ "$RUN_RESULT" == FAILED* ]]; then
                [ -n "$rest_err" ] || rest_err=${RUN_RESULT#FAILED: }
                progress+=" r$r: FAILED"
            else
                read -r a b <<<"$RUN_RESULT"
                rest_rps+=("$a") rest_p99+=("$b")
                progress+=" r$r: $(fmt1 "$a")"
            fi
            if [ "$measure_wire" = 1 ]; then
                run_wire "$wire" "$conns" "$r"
                if [[ "$RUN_RESULT" == FAILED* ]]; then
                    [ -n "$wire_err" ] || wire_err=${RUN_RESULT#FAILED: }
                    progress+="/FAILED"
                else
                    read -r a b <<<"$RUN_RESULT"
                    wire_rps+=("$a") wire_p99+=("$b")
                    progress+="/$(fmt1 "$a")"
                fi
            fi
            if [ "$do_pouch" = 1 ]; then
                case $op in
                    GET) run_wrk pouchdb "$POUCH_HTTP" get.lua "$conns" "$r" /docs/ "$ROWS" ;;
                    POST) run_wrk pouchdb "$POUCH_HTTP" post.lua "$conns" "$r" /docs ;;
                esac
                if [[ "$RUN_RESULT" == FAILED* ]]; then
                    [ -n "$pouch_err" ] || pouch_err=${RUN_RESULT#FAILED: }
                    progress+="/FAILED"
                else
                    read -r a b <<<"$RUN_RESULT"
                    pouch_rps+=("$a") pouch_p99+=("$b")
                    progress+="/$(fmt1 "$a")"
                fi
            fi
        done
        printf '   [%2d/%d] %-5s c=%-2s REST%s%s per s:%s\n' "$cell_no" "$total_cells" "$op" "$conns" \
            "$([ "$measure_wire" = 1 ] && echo /wire)" "$([ "$do_pouch" = 1 ] && echo /pouchdb)" "$progress"
        if [ "$measure_wire" = 1 ]; then
            if [ -n "$wire_err" ]; then
                WIRE_MED[$wkey]=FAILED WIRE_P99[$wkey]=FAILED
                ERRORS+=("[$op c=$conns] TissDB wire ($wire.sql) FAILED: $wire_err")
            else
                WIRE_MED[$wkey]=$(median "${wire_rps[@]}") WIRE_P99[$wkey]=$(median "${wire_p99[@]}")
            fi
            WIRE_VALS[$wkey]=$(IFS=,; echo "${wire_rps[*]}")
        fi
        if [ -n "$rest_err" ]; then
            rest_med=FAILED rest_p=FAILED
            ERRORS+=("[$op c=$conns] TissDB REST ${REST_LABEL[$op]} FAILED: $rest_err")
        else
            rest_med=$(median "${rest_rps[@]}") rest_p=$(median "${rest_p99[@]}")
        fi
        if [ "$do_pouch" = 0 ]; then
            pouch_med=- pouch_p=-
        elif [ -n "$pouch_err" ]; then
            pouch_med=FAILED pouch_p=FAILED
            ERRORS+=("[$op c=$conns] pouchdb-server ${REST_LABEL[$op]} FAILED: $pouch_err")
        else
            pouch_med=$(median "${pouch_rps[@]}") pouch_p=$(median "${pouch_p99[@]}")
        fi
        ROWS_OUT+=("$op	${REST_LABEL[$op]}	$conns	$DURATION	$ROUNDS	$rest_med	$rest_p	${WIRE_MED[$wkey]}	${WIRE_P99[$wkey]}	$(ratio_of "$rest_med" "${WIRE_MED[$wkey]}")	$pouch_med	$pouch_p	$(ratio_of "$rest_med" "$pouch_med")	$(IFS=,; echo "${rest_rps[*]}")	${WIRE_VALS[$wkey]}	$(IFS=,; echo "${pouch_rps[*]}")	${rest_err:+rest: $rest_err }${wire_err:+wire: $wire_err }${pouch_err:+pouchdb: $pouch_err}")
    done
done

# The documents POSTed and INSERTed (UUID ids) are alike (a parameter bound as text where jsonb
# was meant would store a string).
if printf '%s\n' "${RUN_ORDER[@]}" | grep -qx POST; then
    unlike=$("${PGSQL[@]}" -At -p "$TDB_PG_PORT" -U bench -d bench -c "SELECT count(*) FROM docs
        WHERE length(id) = 36 AND (specs->'dimensions'->>'depth_mm' = '11'
            AND tags->>1 = 'new' AND stock = 12 AND price = 299.99 AND is_available) IS NOT TRUE" 2>&1)
    [ "$unlike" = 0 ] || ERRORS+=("POST: $unlike of the documents POSTed or INSERTed differ from post.lua's")
fi

# ---------------------------------------------------------------------------------
# Report.
# ---------------------------------------------------------------------------------
TDB_HWM_END=$(vm_kb "$TDB_PID" VmHWM)
POUCH_HWM_END=""
[ -z "$POUCH_PID" ] || POUCH_HWM_END=$(vm_kb "$POUCH_PID" VmHWM)
TDB_EXIT_STATUS=""
stop_pouchdb
stop_tissdb
cp "$LOGDIR/tissdb.log" "$RESULTS_DIR/last-logs/tissdb-server.log" 2>/dev/null || true
[ "${TDB_EXIT_STATUS:-0}" = 0 ] || ERRORS+=("TissDB exited with status $TDB_EXIT_STATUS after SIGTERM at the end")

echo
echo "Results (median over $ROUNDS rounds of ${DURATION}s; requests or transactions per second, p99 latency in ms;"
echo "REST/wire and REST/pouchdb are ratios of per-second figures, >1 means TissDB's REST API is faster)"
printf '%-5s %-18s %5s %10s %8s %10s %8s %9s %10s %8s %9s\n' op "REST call" conns "REST/s" "p99 ms" \
    "wire tps" "p99 ms" REST/wire "pouchdb/s" "p99 ms" REST/pouch
for row in "${ROWS_OUT[@]}"; do
    IFS=$'\t' read -r op label conns _d _r rm rp wm wp rw pm pp rpouch _rest <<<"$row"
    printf '%-5s %-18s %5s %10s %8s %10s %8s %9s %10s %8s %9s\n' "$op" "$label" "$conns" \
        "$(fmt1 "$rm")" "$(fmt2 "$rp")" "$(fmt1 "$wm")" "$(fmt2 "$wp")" "$rw" "$(fmt1 "$pm")" "$(fmt2 "$pp")" "$rpouch"
done
echo
echo "wire: pgbench -M prepared against TissDB's PostgreSQL port: SELECT * FROM docs WHERE id = \$1 (GET, QUERY), INSERT of the same document, its values as parameters (POST)"
echo "Load of $ROWS documents: TissDB ${TDB_LOAD_S}s (NDJSON imports of 10000)${POUCH_LOAD_S:+, pouchdb-server ${POUCH_LOAD_S}s (_bulk_docs of 1000)}"
echo "Peak RSS (VmHWM) at the end: TissDB ${TDB_HWM_END:-?} kB${POUCH_HWM_END:+, pouchdb-server (node) $POUCH_HWM_END kB}"
if [ -n "$POUCH_SKIP" ]; then
    echo "pouchdb-server: skipped ($POUCH_SKIP)"
else
    echo "pouchdb-server $POUCH_VERSION (LevelDB; acknowledges writes without fsync, TissDB fsyncs its WAL before answering)"
fi
if [ ${#ERRORS[@]} -gt 0 ]; then
    echo
    echo "FAILURES (wrk and pgbench output in bench/results/last-logs/):"
    printf '  %s\n' "${ERRORS[@]}"
fi

{
    printf 'op\tcall\tconnections\tduration_s\trounds\trest_rps\trest_p99_ms\twire_tps\twire_p99_ms\trest_over_wire\tpouchdb_rps\tpouchdb_p99_ms\trest_over_pouchdb\trest_rps_rounds\twire_tps_rounds\tpouchdb_rps_rounds\terror\n'
    printf '%s\n' "${ROWS_OUT[@]}"
} >"$RESULTS_DIR/last.tsv"
{
    printf 'key\tvalue\n'
    printf 'date\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'host_cpus\t%s\n' "$(nproc)"
    printf 'mode\t%s\n' "$([ "$QUICK" = 1 ] && echo quick || echo default)"
    printf 'suite\trest\n'
    printf 'tissdb_bin\t%s\n' "$TISSDB_BIN"
    printf 'tissdb_bin_mtime\t%s\n' "$TISSDB_BIN_MTIME"
    printf 'tissdb_bin_sha256_prefix\t%s\n' "$TISSDB_SHA"
    printf 'git_commit\t%s\n' "$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo -)$(git -C "$REPO_DIR" diff --quiet HEAD -- . ':!bench' 2>/dev/null || echo +dirty)"
    printf 'wrk_version\t%s\n' "$(wrk --version 2>&1 | head -n 1 | awk '{ print $2 }')"
    printf 'pouchdb_server_version\t%s\n' "${POUCH_VERSION:--}"
    printf 'pouchdb_skipped\t%s\n' "${POUCH_SKIP:--}"
    printf 'rows\t%s\n' "$ROWS"
    printf 'tissdb_load_s\t%s\n' "$TDB_LOAD_S"
    printf 'pouchdb_load_s\t%s\n' "${POUCH_LOAD_S:--}"
    printf 'tissdb_vmhwm_kb\t%s\n' "${TDB_HWM_END:-}"
    printf 'pouchdb_vmhwm_kb\t%s\n' "${POUCH_HWM_END:-}"
    printf 'failures\t%s\n' "${#ERRORS[@]}"
} >"$RESULTS_DIR/last-info.tsv"
echo
echo "Wrote $RESULTS_DIR/last.tsv and last-info.tsv"
