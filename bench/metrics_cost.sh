#!/usr/bin/env bash
# bench/metrics_cost.sh -- what the metrics cost a request, in instructions (callgrind), which
# other jobs on the machine do not disturb the way they disturb requests/s:
#   NB_DB=var/nb.db NB_MODEL=var/model.nbw REQUESTS=300 bash bench/metrics_cost.sh
# (default: a small synthetic store and model built here, tools/small_model.sh). nb-serve runs
# under callgrind and gets REQUESTS POST /recommend (users in turn, one keep-alive connection)
# and then REQUESTS GET /health; callgrind_annotate gives the instructions of the request
# path (MHD's callbacks on_request and on_completed, inclusive: parsing, scoring, the
# response, the access accounting) and of the metrics calls in it (srv_metrics_begin,
# srv_metrics_end, srv_metrics_endpoint), for each endpoint in a separate run.
set -euo pipefail
cd "$(dirname "$0")/.."
NB_BIN=${NB_BIN:-bin}
REQUESTS=${REQUESTS:-300}
command -v valgrind >/dev/null || { echo "bench/metrics_cost.sh: valgrind is not installed"; exit 1; }
TMP=$(mktemp -d); PID=
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT
DB=${NB_DB:-} MODEL=${NB_MODEL:-}
if [[ -z $DB ]]; then tools/small_model.sh "$TMP/m"; DB=$TMP/m/nb.db MODEL=$TMP/m/m.nbw; fi
mapfile -t USERS < <(sqlite3 "$DB" "SELECT DISTINCT o.user_id FROM orders o JOIN order_items i
  USING(order_id) ORDER BY o.user_id LIMIT $REQUESTS")
# run KIND -> "REQUEST_PATH_Ir METRICS_Ir" of REQUESTS requests of KIND (recommend | health)
run() {
    valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.%p" $NB_BIN/nb-serve --db "$DB" \
        --model "$MODEL" --port 0 --threads 1 --quiet 2>"$TMP/serve.log" &
    PID=$!
    local port; port=$(tools/serve_port.sh "$TMP/serve.log" $PID 3000)
    local args=() i
    for ((i = 0; i < REQUESTS; i++)); do
        [[ $1 == recommend ]] || break
        args+=(-s -o /dev/null -X POST -H 'Content-Type: application/json'
               --data-binary "{\"user_id\": ${USERS[i % ${#USERS[@]}]}, \"k\": 10}"
               "http://127.0.0.1:$port/recommend" --next)
    done
    for ((i = 1; i < REQUESTS; i++)); do
        [[ $1 == health ]] || break
        args+=(-s -o /dev/null "http://127.0.0.1:$port/health" --next)
    done
    curl "${args[@]}" -s -o /dev/null "http://127.0.0.1:$port/${1/recommend/health}"
    kill -TERM $PID; wait $PID; PID=
    callgrind_annotate --inclusive=yes --threshold=100 "$TMP"/cg.* 2>/dev/null | awk '
        function ir(s) { gsub(",", "", s); return s + 0 }
        / [^ ]*:on_request / || / [^ ]*:on_completed / { path += ir($1) }
        / [^ ]*:srv_metrics_(begin|end|endpoint) / { m += ir($1) }
        END { print path, m }'
    rm -f "$TMP"/cg.*
}
for kind in recommend health; do
    read -r path m <<<"$(run $kind)"
    awk -v p="$path" -v m="$m" -v n="$REQUESTS" -v k="$kind" 'BEGIN {
        printf "%-9s %d requests: %.0f instructions per request, of which metrics %.0f (%.3f%%)\n",
               k, n, p / n, m / n, 100 * m / p }'
done
