#!/usr/bin/env bash
# bench/metrics_ab.sh -- /recommend throughput with and without the metrics, in the same run
# (issue 13: the metrics may cost < 2 %):
#   bash bench/metrics_ab.sh             (store var/nb.db, model var/model.nbw: `make train`)
#   NB_DB=... NB_MODEL=... ROUNDS=9 SECONDS_PER_RUN=5 CONNS=16 THREADS=2 bash bench/metrics_ab.sh
# Two servers side by side, one with --no-metrics, both warmed up; then ROUNDS pairs of wrk runs
# (bench/recommend.lua: random users with history) alternating between them, the order
# alternating too, so that both see the same machine. Prints the median req/s and server CPU
# per request of each, and their ratios. On a machine shared with other jobs single runs
# vary far more than 2 %: bench/metrics_cost.sh counts instructions instead.
set -euo pipefail
cd "$(dirname "$0")/.."
NB_BIN=${NB_BIN:-bin}
DB=${NB_DB:-var/nb.db}
MODEL=${NB_MODEL:-var/model.nbw}
ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_PER_RUN:-5}
CONNS=${CONNS:-16}
THREADS=${THREADS:-$(nproc)}
command -v wrk >/dev/null || { echo "bench/metrics_ab.sh: wrk is not installed (deploy/install-deps.sh)"; exit 1; }
[[ -f $DB && -f $MODEL ]] || { echo "bench/metrics_ab.sh: $DB or $MODEL missing (make train)"; exit 1; }
TMP=$(mktemp -d); PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$TMP"' EXIT
sqlite3 "$DB" "SELECT DISTINCT o.user_id FROM orders o JOIN order_items i USING(order_id)" >"$TMP/users.txt"
export NB_USERS=$TMP/users.txt
declare -A URL PID
for side in on off; do
    $NB_BIN/nb-serve --db "$DB" --model "$MODEL" --port 0 --threads "$THREADS" --quiet \
        $([[ $side == off ]] && echo --no-metrics) 2>"$TMP/$side.log" &
    PID[$side]=$!; PIDS+=($!)
    port=$(tools/serve_port.sh "$TMP/$side.log" $! 600) || { echo "nb-serve did not start"; cat "$TMP/$side.log"; exit 1; }
    URL[$side]=http://127.0.0.1:$port
    wrk -t2 -c64 -d5s -s bench/recommend.lua "${URL[$side]}" >/dev/null  # contexts, page cache
done
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' /proc/"$1"/stat; }
# measure SIDE -> "req/s p50 p99 errors requests CPU-ms-per-request"
measure() {
    local c0 c1 line rps p50 p99 errs reqs
    c0=$(cpu_ms "${PID[$1]}")
    line=$(wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s bench/recommend.lua "${URL[$1]}" | grep '^RESULT')
    c1=$(cpu_ms "${PID[$1]}")
    read -r _ rps p50 p99 errs reqs <<<"$line"
    echo "$rps $p50 $p99 $errs $reqs $(awk -v a="$c0" -v b="$c1" -v n="$reqs" 'BEGIN {printf "%.4f", (n > 0 ? (b - a) / n : 0)}')"
}
: >"$TMP/on"; : >"$TMP/off"
for r in $(seq "$ROUNDS"); do
    for side in $( ((r % 2)) && echo "on off" || echo "off on"); do measure $side >>"$TMP/$side"; done
done
med() { sort -g | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
ON_RPS=$(cut -d' ' -f1 "$TMP/on" | med); OFF_RPS=$(cut -d' ' -f1 "$TMP/off" | med)
ON_CPU=$(cut -d' ' -f6 "$TMP/on" | med); OFF_CPU=$(cut -d' ' -f6 "$TMP/off" | med)
echo "# /recommend, $CONNS connections, $THREADS server threads, $ROUNDS x ${SECS}s per side, medians"
printf 'with metrics   %8s req/s  %s CPU ms/req\n--no-metrics   %8s req/s  %s CPU ms/req\n' \
    "$ON_RPS" "$ON_CPU" "$OFF_RPS" "$OFF_CPU"
awk -v a="$ON_RPS" -v b="$OFF_RPS" -v c="$ON_CPU" -v d="$OFF_CPU" \
    'BEGIN {printf "throughput with/without %.4f; CPU per request with/without %.4f\n", a / b, c / d}'
echo "errors: $(cat "$TMP/on" "$TMP/off" | awk '{e += $4} END {print e}')"
echo "runs (req/s p50 p99 errors requests CPU-ms/req), with: $(paste -sd'|' "$TMP/on")"
echo "runs, without: $(paste -sd'|' "$TMP/off")"
for p in "${PIDS[@]}"; do kill -TERM "$p"; wait "$p"; done; PIDS=()
