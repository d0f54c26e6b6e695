#!/usr/bin/env bash
# bench/serve.sh -- nb-serve throughput and latency with wrk.
#   bash bench/serve.sh                  (store var/nb.db, model var/model.nbw: `make train`)
#   NB_DB=... NB_MODEL=... DURATION=10 THREADS=2 bash bench/serve.sh
# Runs /health (the HTTP floor) and POST /recommend with a random user per request (a Lua
# script over the users that have history) at 1, 16 and 64 connections, DURATION seconds
# each, and prints requests/s, p50/p99 latency, errors, and the server's resident memory
# at start and end. Then what the metrics cost (issue 13: < 2 %): a second server with
# --no-metrics beside the first, and AB_ROUNDS (default 5; 0 skips) pairs of AB_SECONDS
# (default 5) runs at 16 connections alternating between the two, so that both see the
# same machine; medians of req/s and of server CPU per request, and their ratio. Targets on the 2-core machine: >= 2,000 recommendations/s at 64
# connections with p99 <= 25 ms, no errors, flat memory.
set -euo pipefail
cd "$(dirname "$0")/.."
NB_BIN=${NB_BIN:-bin}
DB=${NB_DB:-var/nb.db}
MODEL=${NB_MODEL:-var/model.nbw}
DURATION=${DURATION:-10}
THREADS=${THREADS:-$(nproc)}
command -v wrk >/dev/null || { echo "bench/serve.sh: wrk is not installed (deploy/install-deps.sh --bench)"; exit 1; }
if [[ ! -f $DB || ! -f $MODEL ]]; then
    echo "bench/serve.sh: $DB or $MODEL missing; building them with make train"
    make --no-print-directory train
fi
AB_ROUNDS=${AB_ROUNDS:-5}
AB_SECONDS=${AB_SECONDS:-5}
TMP=$(mktemp -d); PID=; PID_OFF=
cleanup() { for p in $PID $PID_OFF; do kill "$p" 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT

# The users wrk draws from: every user with at least one order with items.
sqlite3 "$DB" "SELECT DISTINCT o.user_id FROM orders o JOIN order_items i USING(order_id)
               ORDER BY o.user_id" >"$TMP/users.txt"
N=$(wc -l <"$TMP/users.txt")
# bench/recommend.lua: POST /recommend for a random one of these users (NB_USERS), or with
# NB_USERS unset a plain GET; both end with the RESULT line that run() reads.
export NB_USERS=$TMP/users.txt

$NB_BIN/nb-serve --db "$DB" --model "$MODEL" --port 0 --threads "$THREADS" --quiet 2>"$TMP/serve.log" &
PID=$!
PORT=$(tools/serve_port.sh "$TMP/serve.log" $PID 600) ||
    { echo "nb-serve did not start"; cat "$TMP/serve.log"; exit 1; }
URL=http://127.0.0.1:$PORT
rss() { awk '/^VmRSS/ {printf "%.1f MiB", $2 / 1024}' /proc/$PID/status; }
grep -E "OpenBLAS|model " "$TMP/serve.log" | sed 's/^/# /'
echo "# $N users with history, $THREADS server threads, ${DURATION}s per run, wrk 2 threads"
RSS_START=$(rss)
# Warm-up: every worker thread creates its context (connection, statements, model clone)
# and the SQLite page caches fill; RSS is flat from there on.
wrk -t2 -c64 -d5s -s bench/recommend.lua "$URL" >/dev/null
RSS0=$(rss)
printf '%-10s %5s %10s %9s %9s %7s %9s %10s\n' endpoint conns 'req/s' 'p50 ms' 'p99 ms' errors requests 'CPU ms/req'
# The server's CPU time (user + system, all threads) from /proc, in ms: on a shared machine
# CPU per request is steadier than requests/s.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' /proc/${1:-$PID}/stat; }
# measure CONNS SCRIPT SECONDS URL PID -> "req/s p50 p99 errors requests CPU-ms-per-request"
measure() {
    local t=$(( $1 < 2 ? 1 : 2 ))
    local line c0 c1 rps p50 p99 errs reqs
    c0=$(cpu_ms "$5")
    line=$(wrk -t$t -c"$1" -d"$3s" --latency -s "$2" "$4" | grep '^RESULT')
    c1=$(cpu_ms "$5")
    read -r _ rps p50 p99 errs reqs <<<"$line"
    echo "$rps $p50 $p99 $errs $reqs $(awk -v a="$c0" -v b="$c1" -v n="$reqs" 'BEGIN {printf "%.4f", (n > 0 ? (b - a) / n : 0)}')"
}
run() {  # ENDPOINT CONNS SCRIPT PATH
    local rps p50 p99 errs reqs cpu
    read -r rps p50 p99 errs reqs cpu <<<"$(measure "$2" "$3" "$DURATION" "$URL$4" $PID)"
    printf '%-10s %5d %10s %9s %9s %7s %9s %10s\n' "$1" "$2" "$rps" "$p50" "$p99" "$errs" "$reqs" "$cpu"
}
NB_USERS= run health 64 bench/recommend.lua /health
for c in 1 16 64; do run recommend $c bench/recommend.lua ""; done
RSS1=$(rss)
echo "# server RSS at start: $RSS_START, after warm-up: $RSS0, after the runs: $RSS1"

# ---- the metrics' cost: the same load alternating between a server with and one without ----
if [[ $AB_ROUNDS -gt 0 ]]; then
    $NB_BIN/nb-serve --db "$DB" --model "$MODEL" --port 0 --threads "$THREADS" --quiet --no-metrics \
        2>"$TMP/serve_off.log" &
    PID_OFF=$!
    PORT_OFF=$(tools/serve_port.sh "$TMP/serve_off.log" $PID_OFF 600) ||
        { echo "nb-serve --no-metrics did not start"; cat "$TMP/serve_off.log"; exit 1; }
    wrk -t2 -c64 -d5s -s bench/recommend.lua "http://127.0.0.1:$PORT_OFF" >/dev/null
    : >"$TMP/ab_on"; : >"$TMP/ab_off"
    for r in $(seq "$AB_ROUNDS"); do  # the order alternates too: on first, then off first
        for side in $( ((r % 2)) && echo "on off" || echo "off on"); do
            if [[ $side == on ]]; then measure 16 bench/recommend.lua "$AB_SECONDS" "$URL" $PID >>"$TMP/ab_on"
            else measure 16 bench/recommend.lua "$AB_SECONDS" "http://127.0.0.1:$PORT_OFF" $PID_OFF >>"$TMP/ab_off"; fi
        done
    done
    med() { sort -g | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
    ON_RPS=$(cut -d' ' -f1 "$TMP/ab_on" | med); OFF_RPS=$(cut -d' ' -f1 "$TMP/ab_off" | med)
    ON_CPU=$(cut -d' ' -f6 "$TMP/ab_on" | med); OFF_CPU=$(cut -d' ' -f6 "$TMP/ab_off" | med)
    ERRS=$(cat "$TMP/ab_on" "$TMP/ab_off" | awk '{e += $4} END {print e}')
    echo "# metrics cost, recommend at 16 connections, $AB_ROUNDS x ${AB_SECONDS}s each, medians:"
    printf '#   with /metrics %s req/s, %s CPU ms/req; --no-metrics %s req/s, %s CPU ms/req; errors %s\n' \
        "$ON_RPS" "$ON_CPU" "$OFF_RPS" "$OFF_CPU" "$ERRS"
    awk -v a="$ON_RPS" -v b="$OFF_RPS" -v c="$ON_CPU" -v d="$OFF_CPU" \
        'BEGIN {printf "#   throughput with/without %.4f, CPU per request with/without %.4f\n", a / b, c / d}'
    echo "#   each run (req/s p50 p99 errors requests CPU-ms/req): with: $(paste -sd'|' "$TMP/ab_on"); without: $(paste -sd'|' "$TMP/ab_off")"
    kill -TERM $PID_OFF; wait $PID_OFF; PID_OFF=
fi
kill -TERM $PID; wait $PID; PID=
