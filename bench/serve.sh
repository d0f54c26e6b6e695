#!/usr/bin/env bash
# bench/serve.sh -- nb-serve throughput and latency with wrk.
#   bash bench/serve.sh                  (store var/nb.db, model var/model.nbw: `make train`)
#   NB_DB=... NB_MODEL=... DURATION=10 THREADS=2 bash bench/serve.sh
# Runs /health (the HTTP floor) and POST /recommend with a random user per request (a Lua
# script over the users that have history) at 1, 16 and 64 connections, DURATION seconds
# each, and prints requests/s, p50/p99 latency, errors, and the server's resident memory
# at start and end. Targets on the 2-core machine: >= 2,000 recommendations/s at 64
# connections with p99 <= 25 ms, no errors, flat memory.
# Then the writing side, on a copy of the store (the store itself is never written) served
# with --admin-token-file: POST /orders alone (1 and 16 connections: each order a random
# user, 1-12 distinct random products, a new order_id) and a mixed load of ORDER_PCT % orders
# (default 5) and the rest /recommend at 16 and 64 connections; the orders written are
# counted in the copy afterwards. MIXED=0 skips this part.
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
TMP=$(mktemp -d); PID=
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

# The users wrk draws from: every user with at least one order with items.
sqlite3 "$DB" "SELECT DISTINCT o.user_id FROM orders o JOIN order_items i USING(order_id)
               ORDER BY o.user_id" >"$TMP/users.txt"
N=$(wc -l <"$TMP/users.txt")
{
    echo "local path = \"$TMP/users.txt\""
    cat <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local users, n = {}, 0
local thread_seed = 0
function setup(thread) thread_seed = thread_seed + 1; thread:set("seed", thread_seed) end
function init(args)
  for line in io.lines(path) do n = n + 1; users[n] = tonumber(line) end
  math.randomseed(seed or 1)
end
function request()
  return wrk.format(nil, "/recommend", nil,
                    string.format('{"user_id": %d, "k": 10}', users[math.random(n)]))
end
LUA
} >"$TMP/rec.lua"
# the RESULT line at the end of each run: the done function of bench/recommend.lua
sed -n '/^done = function/,$p' bench/recommend.lua >"$TMP/report.lua"
cat "$TMP/report.lua" >>"$TMP/rec.lua"

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
wrk -t2 -c64 -d5s -s "$TMP/rec.lua" "$URL" >/dev/null
RSS0=$(rss)
printf '%-10s %5s %10s %9s %9s %7s %9s %10s\n' endpoint conns 'req/s' 'p50 ms' 'p99 ms' errors requests 'CPU ms/req'
# The server's CPU time (user + system, all threads) from /proc, in ms: on a shared machine
# CPU per request is steadier than requests/s.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' /proc/$PID/stat; }
run() {  # ENDPOINT CONNS SCRIPT
    local t=$(( $2 < 2 ? 1 : 2 ))
    local line c0 c1
    c0=$(cpu_ms)
    line=$(wrk -t$t -c"$2" -d"${DURATION}s" --latency -s "$3" "$URL$4" | grep '^RESULT')
    c1=$(cpu_ms)
    read -r _ rps p50 p99 errs reqs <<<"$line"
    printf '%-10s %5d %10s %9s %9s %7s %9s %10s\n' "$1" "$2" "$rps" "$p50" "$p99" "$errs" "$reqs" \
        "$(awk -v a="$c0" -v b="$c1" -v n="$reqs" 'BEGIN {printf "%.3f", (n > 0 ? (b - a) / n : 0)}')"
}
run health 64 "$TMP/report.lua" /health
for c in 1 16 64; do run recommend $c "$TMP/rec.lua" ""; done
RSS1=$(rss)
echo "# server RSS at start: $RSS_START, after warm-up: $RSS0, after the runs: $RSS1"
kill -TERM $PID; wait $PID; PID=
[[ ${MIXED:-1} == 0 ]] && exit 0

# ---- the writing side: POST /orders alone and mixed with /recommend, on a copy -----------
ORDER_PCT=${ORDER_PCT:-5}
sqlite3 "$DB" ".backup '$TMP/w.db'"
sqlite3 "$TMP/w.db" "PRAGMA journal_mode=WAL" >/dev/null
sqlite3 "$TMP/w.db" "SELECT product_id FROM products" >"$TMP/products.txt"
BASE=$(( $(sqlite3 "$TMP/w.db" "SELECT MAX(order_id) FROM orders") + 1 ))
ORDERS0=$(sqlite3 "$TMP/w.db" "SELECT COUNT(*) FROM orders")
( umask 077; head -c 32 /dev/urandom | base64 | tr -d '=\n' >"$TMP/token" )
# mixed.lua PCT: PCT % of the requests are orders; order ids are BASE + n * 2 + thread - 1
# (wrk -t2: two threads), so that no two requests share one
mixed_lua() {
    {
        echo "local upath, ppath = \"$TMP/users.txt\", \"$TMP/products.txt\""
        echo "local share, base, token = $1 / 100, $BASE, \"$(cat "$TMP/token")\""
        cat <<'LUA'
local users, nu, prods, np, counter = {}, 0, {}, 0, 0
local n_threads = 0
function setup(thread) n_threads = n_threads + 1; thread:set("tid", n_threads) end
function init(args)
  for line in io.lines(upath) do nu = nu + 1; users[nu] = tonumber(line) end
  for line in io.lines(ppath) do np = np + 1; prods[np] = tonumber(line) end
  math.randomseed(tid or 1)
end
local rec_h = {["Content-Type"] = "application/json"}
local ord_h = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
function request()
  if math.random() < share then
    counter = counter + 1
    local n, seen, list = math.random(12), {}, {}
    while #list < n do
      local p = prods[math.random(np)]
      if not seen[p] then seen[p] = true; list[#list + 1] = p end
    end
    return wrk.format("POST", "/orders", ord_h, string.format(
      '{"user_id": %d, "order_id": %d, "products": [%s], "order_dow": %d, ' ..
      '"order_hour_of_day": %d, "days_since_prior_order": %d}', users[math.random(nu)],
      base + counter * 2 + (tid or 1) - 1, table.concat(list, ", "), math.random(0, 6),
      math.random(0, 23), math.random(0, 30)))
  end
  return wrk.format("POST", "/recommend", rec_h,
                    string.format('{"user_id": %d, "k": 10}', users[math.random(nu)]))
end
LUA
        cat "$TMP/report.lua"
    } >"$TMP/mixed$1.lua"
}
$NB_BIN/nb-serve --db "$TMP/w.db" --model "$MODEL" --port 0 --threads "$THREADS" --quiet \
    --admin-token-file "$TMP/token" 2>"$TMP/serve.log" &
PID=$!
PORT=$(tools/serve_port.sh "$TMP/serve.log" $PID 600) ||
    { echo "nb-serve did not start"; cat "$TMP/serve.log"; exit 1; }
URL=http://127.0.0.1:$PORT
mixed_lua 100
mixed_lua "$ORDER_PCT"
wrk -t2 -c64 -d5s -s "$TMP/rec.lua" "$URL" >/dev/null # warm-up, as above
echo "# writing: a copy of the store, --admin-token-file; orders are new, 1-12 random products"
# The base moves on past the orders already written, so every run's ids are new: wrk stops
# with up to one request per connection still in flight, which the server writes after it
# has gone, so first a second for those, then a margin above them (ids step by 2 per thread).
next_base() { sleep 1; BASE=$(( $(sqlite3 "$TMP/w.db" "SELECT MAX(order_id) FROM orders") + 1000 )); }
for c in 1 16; do
    next_base; mixed_lua 100
    run orders $c "$TMP/mixed100.lua" ""
done
for c in 16 64; do
    next_base; mixed_lua "$ORDER_PCT"
    n0=$(sqlite3 "$TMP/w.db" "SELECT COUNT(*) FROM orders")
    run "mixed-$ORDER_PCT%" $c "$TMP/mixed$ORDER_PCT.lua" ""
    echo "#   of which orders written: $(( $(sqlite3 "$TMP/w.db" "SELECT COUNT(*) FROM orders") - n0 ))"
done
echo "# orders written in all: $(( $(sqlite3 "$TMP/w.db" "SELECT COUNT(*) FROM orders") - ORDERS0 )); server RSS at the end: $(rss)"
kill -TERM $PID; wait $PID; PID=
