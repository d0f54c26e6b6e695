#!/usr/bin/env bash
# metrics.sh -- GET /metrics of a live nb-serve: known requests are sent (with concurrency,
# through several connections), then the exposition is checked line by line against the
# Prometheus text format 0.0.4 (a grammar of our own below) and parsed by Debian's
# python3-prometheus-client; the request counter of each endpoint and code equals what this
# test sent, the histogram counts equal it too, in flight is 1 (the /metrics request itself),
# the info metric names the model /health reports, memory is the process's RSS. --no-metrics
# leaves /metrics 404.
set -uo pipefail
source tests/lib.sh
PY=/usr/bin/python3
if ! $PY -c 'import prometheus_client' 2>/dev/null; then
    t_skip metrics "python3-prometheus-client is not installed (deploy/install-deps.sh)"; t_exit
fi
for p in nb-synth nb-import nb-train nb-serve; do
    if [[ ! -x $NB_BIN/$p ]]; then t_skip metrics "$NB_BIN/$p not built"; t_exit; fi
done
D=$T_TMP/m
if ! tools/small_model.sh "$D" 2>"$T_TMP/model.err"; then t_fail model "$(cat "$T_TMP/model.err")"; t_exit; fi
LOG=$T_TMP/serve.log
$NB_BIN/nb-serve --db "$D/nb.db" --model "$D/m.nbw" --port 0 --threads 2 --quiet 2>"$LOG" &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$T_TMP"' EXIT
PORT=$(tools/serve_port.sh "$LOG" $PID 300)
if [[ -z $PORT ]]; then t_fail start "$(tail -3 "$LOG")"; t_exit; fi
URL=http://127.0.0.1:$PORT
mapfile -t USERS < <(sqlite3 "$D/nb.db" "SELECT DISTINCT user_id FROM orders JOIN order_items
  USING(order_id) ORDER BY user_id LIMIT 30")

# 4 clients at once, each 30 /recommend (200) on one keep-alive connection, then 3 bad
# requests (400), 2 /health, 1 unknown path (404)
client() {
    local args=() u
    for u in "${USERS[@]}"; do
        args+=(-s -o /dev/null -X POST -H 'Content-Type: application/json'
               --data-binary "{\"user_id\": $u, \"k\": 3}" "$URL/recommend" --next)
    done
    curl "${args[@]}" -s -o /dev/null "$URL/health"
    for _ in 1 2 3; do curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
        --data-binary '{"user_id": "x"}' "$URL/recommend"; done
    curl -s -o /dev/null "$URL/health"
    curl -s -o /dev/null "$URL/nope"
}
CLIENTS=()
for c in 1 2 3 4; do client & CLIENTS+=($!); done
wait "${CLIENTS[@]}"
curl -s -D "$T_TMP/m.hdr" -o "$T_TMP/m1.txt" "$URL/metrics"
curl -s -o "$T_TMP/m2.txt" "$URL/metrics"
curl -s -o "$T_TMP/h.json" "$URL/health"
MODEL=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"])' "$T_TMP/h.json")
RSS_KB=$(awk '/^VmRSS/ {print $2}' /proc/$PID/status)
t_contains content_type "$(tr -d '\r' <"$T_TMP/m.hdr")" "Content-Type: text/plain; version=0.0.4"

# every line: a comment (HELP/TYPE) or a sample; a sample's metric has a TYPE line before it
lines=$($PY - "$T_TMP/m1.txt" <<'PY'
import re, sys
name = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
value = r"(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?Inf|NaN)"
sample = re.compile(rf"^({name})(?:\{{(?:{label}(?:,{label})*)?\}})? {value}(?: -?[0-9]+)?$")
help_ = re.compile(rf"^# HELP ({name}) .*$")
type_ = re.compile(rf"^# TYPE ({name}) (counter|gauge|histogram|summary|untyped)$")
typed, bad, n = {}, [], 0
text = open(sys.argv[1]).read()
if not text.endswith("\n"): bad.append("no final newline")
for i, l in enumerate(text.split("\n")[:-1], 1):
    n += 1
    m = type_.match(l)
    if m: typed[m.group(1)] = m.group(2); continue
    if help_.match(l): continue
    m = sample.match(l)
    if not m: bad.append(f"line {i}: {l!r}"); continue
    base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
    if m.group(1) not in typed and not (base in typed and typed[base] == "histogram"):
        bad.append(f"line {i}: no TYPE before {m.group(1)}")
print(n, *bad[:5], sep="\n")
PY
)
t_eq lines_valid "$(tail -n +2 <<<"$lines")" ""
t_check lines_many test "$(head -1 <<<"$lines")" -ge 40

# parsed by the Prometheus client library; the values
got=$($PY - "$T_TMP/m1.txt" "$T_TMP/m2.txt" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families as parse
def load(path):
    v = {}
    for fam in parse(open(path).read()):
        for s in fam.samples:
            v[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return v
a, b = load(sys.argv[1]), load(sys.argv[2])
req = lambda v, ep, code: v.get(("nb_http_requests_total", (("code", code), ("endpoint", ep))), 0)
hist = lambda v, ep, suffix, le=None: v.get(("nb_http_request_duration_seconds_" + suffix,
    tuple(sorted({"endpoint": ep, **({"le": le} if le else {})}.items()))), 0)
info = [dict(k[1]) for k in a if k[0] == "nb_model_info"]
print(int(req(a, "/recommend", "200")), int(req(a, "/recommend", "400")), int(req(a, "/health", "200")),
      int(req(a, "other", "404")), int(req(a, "/metrics", "200")), int(req(b, "/metrics", "200")),
      int(hist(a, "/recommend", "count")), int(hist(a, "/recommend", "bucket", "+Inf")),
      hist(a, "/recommend", "sum") > 0, int(a[("nb_http_requests_in_flight", ())]),
      info[0]["checksum"] if len(info) == 1 else info, len(info[0].get("loaded_at", "")) if info else 0,
      int(a[("nb_model_reloads_total", ())]), int(a[("nb_model_reload_failures_total", ())]),
      int(a[("nb_orders_ingested_total", ())]), int(a[("process_resident_memory_bytes", ())]) // 1024,
      int(sum(v for k, v in a.items() if k[0] == "nb_recommendations_total")),
      len([k for k in a if k[0] == "nb_recommendations_total"]))
PY
)
read -r rec200 rec400 h200 o404 met1 met2 hcount hinf hsum inflight ck loaded rl rlf ord rss nrec nlab <<<"$got"
N=${#USERS[@]}
t_eq requests_counted "$rec200 $rec400 $h200 $o404" "$((4 * N)) 12 8 4"
t_eq metrics_counts_itself "$met1 $met2" "0 1"
t_eq histogram_counts "$hcount $hinf $hsum" "$((4 * N + 12)) $((4 * N + 12)) True"
t_eq in_flight_is_this_request "$inflight" 1
t_eq info_checksum "$ck $loaded" "$MODEL 20"
t_eq reloads_orders_zero "$rl $rlf $ord" "0 0 0"
# every 200 of /recommend is counted once, as precomputed or live (the two labels)
t_eq recommendations_by_ranking "$nrec $nlab" "$rec200 2"
# RSS read by the test a moment after the server's own reading: within 10 %
t_check rss_matches awk -v a="$rss" -v b="$RSS_KB" 'BEGIN {exit !(a > 0.9 * b && a < 1.1 * b)}'
kill -TERM $PID; wait $PID

# --no-metrics: no route, and /recommend still served
$NB_BIN/nb-serve --db "$D/nb.db" --model "$D/m.nbw" --port 0 --threads 1 --quiet --no-metrics 2>"$LOG" &
PID=$!
PORT=$(tools/serve_port.sh "$LOG" $PID 300)
t_eq no_metrics_404 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metrics")" 404
t_eq no_metrics_serves "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary "{\"user_id\": ${USERS[0]}}" "http://127.0.0.1:$PORT/recommend")" 200
kill -TERM $PID; wait $PID
t_exit
