#!/usr/bin/env bash
# replicas.sh -- two nb-serve replicas behind nginx on this machine, verified:
#   deploy/replicas.sh                      (a small synthetic store and model, built here)
#   NB_DB=var/nb.db NB_MODEL=var/model.nbw LOAD_SECONDS=20 deploy/replicas.sh
# As the current user, everything in a temporary directory, 127.0.0.1 only, free ports:
#  1. starts two replicas (nb-serve --port 0) and nginx with deploy/nginx/nextbasket.conf
#     (its ports replaced by the replicas' and a free one);
#  2. a curl smoke test through nginx: /health, /recommend, errors passed through as JSON,
#     /openapi.json, the per-replica endpoints refused;
#  3. load on POST /recommend through nginx (wrk, LOAD_SECONDS, 16 connections; a loop of
#     curl where wrk is missing), one replica killed with SIGKILL after a third of it: every
#     request must still succeed (nginx retries /recommend on the other replica: the
#     location's proxy_next_upstream ... non_idempotent), and the access log shows it;
#  4. stops everything. Exit 0 when every check passed; the last line counts the errors.
set -uo pipefail
cd "$(dirname "$0")/.."
NB_BIN=${NB_BIN:-bin}
LOAD_SECONDS=${LOAD_SECONDS:-9}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[[ -x $NGINX ]] || { echo "replicas.sh: nginx is not installed (deploy/install-deps.sh)"; exit 1; }
[[ -x $NB_BIN/nb-serve ]] || { echo "replicas.sh: $NB_BIN/nb-serve is not built (make)"; exit 1; }
P=$(mktemp -d "${TMPDIR:-/tmp}/nb-replicas.XXXXXX")
PIDS=()
FAILED=0
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$P"
}
trap cleanup EXIT
check() {  # NAME GOT WANT
    if [[ "$2" == "$3" ]]; then echo "ok $1"; else echo "not ok $1: got '$2', want '$3'"; FAILED=1; fi
}

DB=${NB_DB:-} MODEL=${NB_MODEL:-}
if [[ -z $DB ]]; then
    tools/small_model.sh "$P/m" || exit 1
    DB=$P/m/nb.db MODEL=$P/m/m.nbw
fi

# ---- 1. two replicas and nginx ----------------------------------------------------------------
PORTS=()
for r in 1 2; do
    $NB_BIN/nb-serve --db "$DB" --model "$MODEL" --port 0 --threads 1 --quiet 2>"$P/replica$r.log" &
    PIDS+=($!)
    port=$(tools/serve_port.sh "$P/replica$r.log" $! 600) ||
        { echo "replicas.sh: replica $r did not start: $(tail -3 "$P/replica$r.log")"; exit 1; }
    PORTS+=("$port")
done
R1=${PORTS[0]} R2=${PORTS[1]} R1PID=${PIDS[0]}
# a free port for nginx: bound by the kernel's choice, released, then taken by nginx
NPORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$P/tmp"
sed -e "s/127\.0\.0\.1:8081 /127.0.0.1:$R1 /" -e "s/127\.0\.0\.1:8082 /127.0.0.1:$R2 /" \
    -e "s/listen 127\.0\.0\.1:8080;/listen 127.0.0.1:$NPORT;/" deploy/nginx/nextbasket.conf >"$P/nextbasket.conf"
n_sub=$(grep -c -e "127.0.0.1:$R1 " -e "127.0.0.1:$R2 " -e "listen 127.0.0.1:$NPORT;" "$P/nextbasket.conf")
check nginx_conf_ports "$n_sub" 3
{
    # as root the workers would switch to nobody, who cannot write the temporary directory
    [[ $(id -u) -eq 0 ]] && echo "user $(id -un) $(id -gn);"
    cat <<EOF
daemon off;
worker_processes 1;
pid $P/nginx.pid;
error_log $P/error.log warn;
events { worker_connections 1024; }
http {
    log_format replicas '\$status \$request_method \$uri upstream=\$upstream_addr upstream_status=\$upstream_status';
    access_log $P/access.log replicas;
    client_body_temp_path $P/tmp/body;
    proxy_temp_path $P/tmp/proxy;
    fastcgi_temp_path $P/tmp/fastcgi;
    uwsgi_temp_path $P/tmp/uwsgi;
    scgi_temp_path $P/tmp/scgi;
    include $P/nextbasket.conf;
}
EOF
} >"$P/nginx.conf"
if ! "$NGINX" -t -p "$P" -c "$P/nginx.conf" -e "$P/error.log" >"$P/nginx-t.log" 2>&1; then
    echo "replicas.sh: nginx -t failed:"; cat "$P/nginx-t.log"; exit 1
fi
"$NGINX" -p "$P" -c "$P/nginx.conf" -e "$P/error.log" &
PIDS+=($!)
URL=http://127.0.0.1:$NPORT
for _ in $(seq 100); do curl -s -o /dev/null "$URL/health" && break; sleep 0.1; done
echo "# replicas on 127.0.0.1:$R1 and 127.0.0.1:$R2, nginx on 127.0.0.1:$NPORT, files in $P"

# ---- 2. curl smoke test through nginx -----------------------------------------------------------
J() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $1" "${@:2}" 2>&1; }
USER_ID=$(sqlite3 "$DB" "SELECT o.user_id FROM orders o JOIN order_items i USING(order_id) LIMIT 1")
post() { curl -s -o "$P/r.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
         --data-binary "$1" "$URL/recommend"; }
st=$(curl -s -o "$P/h.json" -w '%{http_code}' "$URL/health")
check health "$st $(J 'print(d["status"])' "$P/h.json")" "200 ok"
MODEL_CK=$(J 'print(d["model"])' "$P/h.json")
st=$(post "{\"user_id\": $USER_ID, \"k\": 5}")
check recommend "$st $(J 'print(d["user_id"], d["model"], len(d["top_k"]))' "$P/r.json")" "200 $USER_ID $MODEL_CK 5"
st=$(post '{"user_id": 1')
check error_400_json "$st $(J 'print(d["error"]["code"])' "$P/r.json")" "400 bad_json"
st=$(post '{"user_id": 2147483647}')
check error_404_user "$st $(J 'print(d["error"]["code"])' "$P/r.json")" "404 unknown_user"
st=$(curl -s -D "$P/hdr" -o "$P/r.json" -w '%{http_code}' "$URL/recommend")
check error_405_allow "$st $(J 'print(d["error"]["code"])' "$P/r.json") $(tr -d '\r' <"$P/hdr" | grep -c '^Allow: POST$')" \
    "405 method_not_allowed 1"
st=$(curl -s -o "$P/r.json" -w '%{http_code}' "$URL/no/such/path")
check error_404_path "$st $(J 'print(d["error"]["code"])' "$P/r.json")" "404 not_found"
st=$(curl -s -o "$P/r.json" -w '%{http_code}' "$URL/openapi.json")
check openapi "$st $(J 'print(d["openapi"][:2])' "$P/r.json")" "200 3."
check metrics_not_balanced "$(curl -s -o /dev/null -w '%{http_code}' "$URL/metrics")" 403
check reload_not_balanced "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/admin/reload")" 403
# both replicas take requests: round robin over a few /health
for _ in 1 2 3 4; do curl -s -o /dev/null "$URL/health"; done
check both_replicas_used "$(grep -c "upstream=127.0.0.1:$R1$\|upstream=127.0.0.1:$R1 " "$P/access.log" | awk '{print ($1 > 0)}') $(grep -c "upstream=127.0.0.1:$R2" "$P/access.log" | awk '{print ($1 > 0)}')" "1 1"

# ---- 3. load, and one replica killed in the middle -------------------------------------------------
sqlite3 "$DB" "SELECT DISTINCT o.user_id FROM orders o JOIN order_items i USING(order_id)" >"$P/users.txt"
: >"$P/access.log.before"; cp "$P/access.log" "$P/access.log.before"
KILL_AT=$(awk -v s="$LOAD_SECONDS" 'BEGIN {printf "%.1f", s / 3}')
( sleep "$KILL_AT"; kill -KILL "$R1PID"; echo "# replica 127.0.0.1:$R1 killed (SIGKILL) after ${KILL_AT}s of load" ) &
KILLER=$!
if command -v wrk >/dev/null; then
    line=$(NB_USERS=$P/users.txt wrk -t2 -c16 -d"${LOAD_SECONDS}s" -s bench/recommend.lua "$URL" | grep '^RESULT')
    read -r _ rps _ p99 errors requests <<<"$line"
    echo "# wrk: $requests requests, $rps req/s, p99 $p99 ms"
else  # 4 loops of curl, each bounded by the duration
    loop() {
        local end=$((SECONDS + LOAD_SECONDS)) ok=0 bad=0 u
        mapfile -t us <"$P/users.txt"
        while ((SECONDS < end)); do
            u=${us[RANDOM % ${#us[@]}]}
            if [[ $(curl -s -o /dev/null -w '%{http_code}' -m 5 -X POST -H 'Content-Type: application/json' \
                    --data-binary "{\"user_id\": $u, \"k\": 10}" "$URL/recommend") == 200 ]]; then
                ok=$((ok + 1)); else bad=$((bad + 1)); fi
        done
        echo "$ok $bad"
    }
    for c in 1 2 3 4; do loop >"$P/loop$c" & done
    wait $(jobs -p | grep -v "^$KILLER$")
    read -r requests errors <<<"$(cat "$P"/loop? | awk '{o += $1; b += $2} END {print o + b, b}')"
    echo "# curl loops: $requests requests"
fi
wait $KILLER
kill -0 "$R1PID" 2>/dev/null && { echo "not ok replica_killed: still running"; FAILED=1; }
check recommend_errors_under_kill "${errors:-missing}" 0
check requests_made "$(( ${requests:-0} > 50 ))" 1
# what nginx did: requests retried on the survivor (upstream "R1, R2") and none answered 5xx
during=$(diff "$P/access.log.before" "$P/access.log" | grep '^> ' | grep ' /recommend ')
retried=$(grep -c "upstream=127.0.0.1:$R1, 127.0.0.1:$R2" <<<"$during")
check none_5xx "$(grep -c '^> 5' <<<"$during")" 0
echo "# nginx: $(wc -l <<<"$during") requests to /recommend during the load, $retried of them retried on the other replica after the kill"
st=$(curl -s -o "$P/h.json" -w '%{http_code}' "$URL/health")
check health_after_kill "$st $(J 'print(d["status"])' "$P/h.json")" "200 ok"

# ---- 4. stop --------------------------------------------------------------------------------------
echo "replicas.sh: ${requests:-0} requests through nginx, ${errors:-?} errors, $retried retried after the kill; $([[ $FAILED == 0 ]] && echo PASS || echo FAIL)"
exit $FAILED
