#!/usr/bin/env bash
# bench/soak.sh -- nb-serve under steady mixed traffic for a long time: no errors, flat memory,
# no descriptor leak.
#   bash bench/soak.sh                        (store var/nb.db, model var/model.nbw: `make train`)
#   DURATION=180 NB_DB=... NB_MODEL=... bash bench/soak.sh
# 64 connections (wrk, 2 threads) of mixed traffic against one nb-serve on 127.0.0.1:
# 80% POST /recommend (random user with history, k 1..100, either basket mode), 10% GET
# /health, 5% an unknown user (404), 5% a request with an unknown field (400). wrk runs in
# back-to-back windows of INTERVAL seconds (default 10; connections are made anew each
# window, so connection set-up is soaked too) for DURATION seconds (default 600); after
# each window the server's RSS and open descriptors are sampled, and a table row printed.
# Errors: socket errors (connect, read, write, timeout) and any status other than 200, 400
# and 404. Exit status 1 when there was any error, when the RSS at the end is more than 5%
# above the RSS after the first window (warm-up: every worker's context and the page caches
# are made then), or when the server holds more descriptors at the end than after warm-up.
set -euo pipefail
cd "$(dirname "$0")/.."
NB_BIN=${NB_BIN:-bin}
DB=${NB_DB:-var/nb.db}
MODEL=${NB_MODEL:-var/model.nbw}
DURATION=${DURATION:-600}
INTERVAL=${INTERVAL:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-$(nproc)}
RSS_TOL=${RSS_TOL:-5}   # percent
command -v wrk >/dev/null || { echo "bench/soak.sh: wrk is not installed (deploy/install-deps.sh --bench)"; exit 1; }
[[ -f $DB && -f $MODEL ]] || { echo "bench/soak.sh: $DB or $MODEL missing (make train, or NB_DB / NB_MODEL)"; exit 1; }
TMP=$(mktemp -d); PID=
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

sqlite3 "$DB" "SELECT DISTINCT o.user_id FROM orders o JOIN order_items i USING(order_id)
               ORDER BY o.user_id" >"$TMP/users.txt"
{
    echo "local path = \"$TMP/users.txt\""
    cat <<'LUA'
local users, n = {}, 0
local threads = {}
local thread_seed = 0
function setup(thread)
  thread_seed = thread_seed + 1
  thread:set("seed", thread_seed)
  table.insert(threads, thread)
end
function init(args)
  for line in io.lines(path) do n = n + 1; users[n] = tonumber(line) end
  math.randomseed(seed or 1)
  bad, expected4xx = 0, 0
end
local hdr = {["Content-Type"] = "application/json"}
function request()
  local r = math.random(100)
  if r <= 10 then
    return wrk.format("GET", "/health")
  elseif r <= 15 then
    return wrk.format("POST", "/recommend", hdr, '{"user_id": 2147483647}')
  elseif r <= 20 then
    return wrk.format("POST", "/recommend", hdr, '{"user_id": 1, "top_k": 5}')
  end
  local mode = math.random(4) == 1 and "expected-f1" or "threshold"
  return wrk.format("POST", "/recommend", hdr,
                    string.format('{"user_id": %d, "k": %d, "basket_mode": "%s"}',
                                  users[math.random(n)], math.random(100), mode))
end
function response(status, headers, body)
  if status == 400 or status == 404 then expected4xx = expected4xx + 1
  elseif status ~= 200 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local b, e4 = 0, 0
  for _, t in ipairs(threads) do b = b + t:get("bad"); e4 = e4 + t:get("expected4xx") end
  local sock = summary.errors.connect + summary.errors.read + summary.errors.write
             + summary.errors.timeout
  io.write(string.format("RESULT %.0f %.2f %.2f %d %d %d\n", summary.requests / (summary.duration / 1e6),
           latency:percentile(99) / 1000, latency.max / 1000, sock + b, e4, summary.requests))
end
LUA
} >"$TMP/mix.lua"

$NB_BIN/nb-serve --db "$DB" --model "$MODEL" --port 0 --threads "$THREADS" --quiet 2>"$TMP/serve.log" &
PID=$!
PORT=$(tools/serve_port.sh "$TMP/serve.log" $PID 600) ||
    { echo "nb-serve did not start"; cat "$TMP/serve.log"; exit 1; }
URL=http://127.0.0.1:$PORT
rss_kib() { awk '/^VmRSS/ {print $2}' /proc/$PID/status; }
fds() { ls /proc/$PID/fd | wc -l; }
grep -E "model " "$TMP/serve.log" | sed 's/^/# /'
echo "# $(wc -l <"$TMP/users.txt") users with history, $THREADS server threads, $CONNS connections," \
     "${DURATION}s in ${INTERVAL}s windows; RSS at start $(( $(rss_kib) / 1024 )) MiB, $(fds) descriptors"
printf '%7s %8s %8s %8s %7s %8s %9s %9s %5s\n' 't s' 'req/s' 'p99 ms' 'max ms' errors '4xx ok' requests 'RSS MiB' fds
T0=$SECONDS
errors=0; total=0; rss_first=; fds_first=; rss_max=0
while (( SECONDS - T0 < DURATION )); do
    line=$(wrk -t2 -c"$CONNS" -d"${INTERVAL}s" --timeout 5s -s "$TMP/mix.lua" "$URL" | grep '^RESULT') ||
        line="RESULT 0 0 0 1 0 0"
    read -r _ rps p99 pmax errs e4 reqs <<<"$line"
    kill -0 $PID 2>/dev/null || { echo "nb-serve died"; tail -5 "$TMP/serve.log"; exit 1; }
    r=$(rss_kib); f=$(fds)
    [[ -z $rss_first ]] && { rss_first=$r; fds_first=$f; }
    (( r > rss_max )) && rss_max=$r
    errors=$((errors + errs)); total=$((total + reqs))
    printf '%7d %8s %8s %8s %7s %8s %9s %9.1f %5s\n' $((SECONDS - T0)) "$rps" "$p99" "$pmax" "$errs" "$e4" \
        "$reqs" "$(awk -v k="$r" 'BEGIN {print k / 1024}')" "$f"
done
sleep 1   # the last window's connections close
r=$(rss_kib); f=$(fds)
growth=$(awk -v a="$rss_first" -v b="$r" 'BEGIN {printf "%.2f", (b - a) * 100 / a}')
echo "# $total requests, $errors errors; RSS after warm-up $(( rss_first / 1024 )) MiB, at the end" \
     "$(( r / 1024 )) MiB (${growth}%), peak $(( rss_max / 1024 )) MiB; descriptors after warm-up $fds_first, at the end $f"
kill -TERM $PID; wait $PID; PID=
fail=0
(( errors == 0 )) || { echo "soak: FAIL: $errors errors"; fail=1; }
awk -v g="$growth" -v t="$RSS_TOL" 'BEGIN {exit !(g > t)}' && { echo "soak: FAIL: RSS grew ${growth}% (limit ${RSS_TOL}%)"; fail=1; }
(( f <= fds_first )) || { echo "soak: FAIL: $f descriptors at the end, $fds_first after warm-up"; fail=1; }
(( fail == 0 )) && echo "soak: OK"
exit $fail
