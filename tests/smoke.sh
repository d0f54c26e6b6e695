#!/usr/bin/env bash
# smoke.sh -- nb-serve end to end: a small synthetic store and model (nb-synth, nb-import,
# nb-train with small dimensions), the daemon on a free port, and curl against every
# documented behaviour: /health, /recommend fields and ordering, the basket rule, parity of
# the scores with nb-train --score-user, each error status, a cold-start user, start-up
# refusals (corrupt weights, catalogue mismatch, unregistered model) and a clean SIGTERM.
set -uo pipefail
source tests/lib.sh

for p in nb-synth nb-import nb-train nb-serve; do
    if [[ ! -x $NB_BIN/$p ]]; then t_skip smoke "$NB_BIN/$p not built"; t_exit; fi
done

D=$T_TMP
J() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $1" "${@:2}"; }

# ---- a small store and model --------------------------------------------------------------
if ! $NB_BIN/nb-synth --users 300 --seed 7 --out "$D/csv" >"$D/synth.log" 2>&1; then
    t_fail synth "$(tail -3 "$D/synth.log")"; t_exit
fi
if ! $NB_BIN/nb-import --csv "$D/csv" --db "$D/nb.db" --quiet >"$D/import.log" 2>&1; then
    t_fail import "$(tail -3 "$D/import.log")"; t_exit
fi
if ! $NB_BIN/nb-train --db "$D/nb.db" --model "$D/m.nbw" --epochs 1 --emb 8 --cnn-out 16 \
        --gru-hidden 16 --gru-layers 1 --head 16 --candidates 300 --threads 1 --quiet \
        >"$D/train.log" 2>&1; then
    t_fail train "$(tail -3 "$D/train.log")"; t_exit
fi
# A user who exists but has no order with items: cold start (added after training, so it
# has no candidate row either). Its one order is a test order, whose items are withheld.
COLD=$(sqlite3 "$D/nb.db" "SELECT MAX(user_id) + 1 FROM users")
sqlite3 "$D/nb.db" "INSERT INTO users(user_id) VALUES ($COLD);
  INSERT INTO orders VALUES ((SELECT MAX(order_id) + 1 FROM orders), $COLD, 2, 1, 3, 10, NULL);"
# And one with no order at all.
COLD2=$((COLD + 1))
sqlite3 "$D/nb.db" "INSERT INTO users(user_id) VALUES ($COLD2)"
N_USERS=$(sqlite3 "$D/nb.db" "SELECT COUNT(*) FROM users")
N_PRODUCTS=$(sqlite3 "$D/nb.db" "SELECT COUNT(*) FROM products")
mapfile -t USERS < <(sqlite3 "$D/nb.db" "SELECT user_id FROM users WHERE user_id IN
  (SELECT user_id FROM orders o JOIN order_items i USING(order_id)) ORDER BY user_id LIMIT 4")

# ---- start ------------------------------------------------------------------------------
LOG=$D/serve.log
$NB_BIN/nb-serve --db "$D/nb.db" --model "$D/m.nbw" --port 0 --threads 2 2>"$LOG" &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$T_TMP"' EXIT
PORT=$("$(dirname "$0")"/../tools/serve_port.sh "$LOG" $PID 300)
if [[ -z $PORT ]]; then t_fail start "no 'listening on' line: $(tail -5 "$LOG")"; t_exit; fi
t_ok start
t_contains openblas_logged "$(cat "$LOG")" "OpenBLAS"
URL=http://127.0.0.1:$PORT

# post BODY [CURL ARGS...] -> response in $D/r.json, prints the status
post() {
    local body=$1; shift
    curl -s -o "$D/r.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data-binary "$body" "$@" "$URL/recommend"
}

# ---- /health ----------------------------------------------------------------------------
st=$(curl -s -o "$D/h.json" -w '%{http_code}' "$URL/health")
t_eq health_status "$st" 200
t_eq health_body "$(J 'print(d["status"], len(d["model"]), d["users"], d["products"], d["uptime_s"] >= 0)' "$D/h.json")" \
    "ok 8 $N_USERS $N_PRODUCTS True"
MODEL=$(J 'print(d["model"])' "$D/h.json")

# ---- /recommend: fields, ordering, k, basket rule ---------------------------------------
U=${USERS[0]}
st=$(post "{\"user_id\": $U, \"k\": 7}")
t_eq rec_status "$st" 200
t_eq rec_fields "$(J '
print(sorted(d) == ["basket", "basket_mode", "cold_start", "model", "threshold", "top_k", "user_id"],
      all(sorted(x) == ["aisle", "department", "name", "product_id", "score", "why"] for x in d["top_k"]),
      all(isinstance(x["why"], str) and x["why"] and x["name"] for x in d["top_k"]),
      d["user_id"], d["model"], d["basket_mode"], d["cold_start"], len(d["top_k"]))' "$D/r.json")" \
    "True True True $U $MODEL threshold False 7"
t_eq rec_sorted "$(J 's=[x["score"] for x in d["top_k"]]; print(s == sorted(s, reverse=True) and all(0 <= v <= 1 for v in s))' "$D/r.json")" True
# With k = 100 the basket must be exactly the prefix of the ranking scoring >= threshold.
for U in "${USERS[@]}"; do
    st=$(post "{\"user_id\": $U, \"k\": 100}")
    r=$(J '
t, b, k = d["threshold"], d["basket"], d["top_k"]
ids = lambda l: [(x["product_id"], x["score"]) for x in l]
n = len(b)
ok = n <= len(k) and ids(b) == ids(k[:n]) and all(x["score"] >= t for x in b) \
     and (n == len(k) or k[n]["score"] < t) and len(k) == len(set(x["product_id"] for x in k))
print(ok, len(k) <= 100)' "$D/r.json")
    t_eq "basket_rule_user_$U" "$st $r" "200 True True"
done
st=$(post "{\"user_id\": ${USERS[0]}, \"basket_mode\": \"expected-f1\", \"k\": 100}")
t_eq basket_ef1 "$st $(J '
b, k = d["basket"], d["top_k"]
n = min(len(b), len(k))
print(d["basket_mode"], len(b) >= 1 and [x["product_id"] for x in b[:n]] == [x["product_id"] for x in k[:n]])' "$D/r.json")" \
    "200 expected-f1 True"

# ---- parity with nb-train --score-user --------------------------------------------------
for U in "${USERS[@]}"; do
    for K in 5 20; do
        $NB_BIN/nb-train --db "$D/nb.db" --model "$D/m.nbw" --score-user "$U" --k $K \
            >"$D/t.json" 2>"$D/t.err"
        post "{\"user_id\": $U, \"k\": $K}" >/dev/null
        want=$(J 'print([(x["product_id"], x["score"]) for x in d["top_k"]])' "$D/t.json" 2>&1)
        got=$(J 'print([(x["product_id"], x["score"]) for x in d["top_k"]])' "$D/r.json" 2>&1)
        t_eq "parity_user_${U}_k$K" "$got" "$want"
    done
done

# ---- nb-servebench: the same engine in-process, deterministic answers ---------------------
sb() { $NB_BIN/nb-servebench --db "$D/nb.db" --model "$D/m.nbw" --requests 40 --seed 3 "$@" 2>&1 |
       sed -n 's/.* \([0-9]*\) errors, responses digest \([0-9a-f]*\)$/\1 \2/p'; }
SB1=$(sb); SB2=$(sb); SB3=$(sb --basket expected-f1)
t_eq servebench_runs "${SB1%% *} ${SB3%% *} ${#SB1}" "0 0 10"
t_eq servebench_deterministic "$SB2" "$SB1"
t_check servebench_modes_differ test "${SB3#* }" != "${SB1#* }"

# ---- errors -----------------------------------------------------------------------------
err_case() {  # NAME WANT_STATUS WANT_CODE STATUS
    local code
    code=$(J 'print(d["error"]["code"], bool(d["error"]["message"]))' "$D/r.json" 2>/dev/null)
    t_eq "$1" "$4 $code" "$2 $3 True"
}
err_case err_malformed 400 bad_json "$(post '{"user_id": 1')"
err_case err_not_object 400 bad_json "$(post '[1]')"
err_case err_missing_id 400 bad_user_id "$(post '{"k": 3}')"
err_case err_float_id 400 bad_user_id "$(post '{"user_id": 42.5}')"
err_case err_string_id 400 bad_user_id "$(post '{"user_id": "42"}')"
err_case err_bool_id 400 bad_user_id "$(post '{"user_id": true}')"
err_case err_big_id 400 bad_user_id "$(post '{"user_id": 2147483648}')"
err_case err_k_zero 400 bad_k "$(post "{\"user_id\": $U, \"k\": 0}")"
err_case err_k_big 400 bad_k "$(post "{\"user_id\": $U, \"k\": 101}")"
err_case err_k_float 400 bad_k "$(post "{\"user_id\": $U, \"k\": 2.5}")"
err_case err_mode 400 bad_basket_mode "$(post "{\"user_id\": $U, \"basket_mode\": \"all\"}")"
err_case err_unknown_user 404 unknown_user "$(post '{"user_id": 2147483647}')"
# issue 15 item 11: unknown and duplicate fields are refused, the unknown one named
err_case err_unknown_field 400 unknown_field "$(post "{\"user_id\": $U, \"top_k\": 1000000000}")"
t_contains err_unknown_field_named "$(cat "$D/r.json")" '\"top_k\"'
err_case err_duplicate_field 400 duplicate_field "$(post "{\"user_id\": $U, \"user_id\": 1}")"
err_case err_path 404 not_found "$(curl -s -o "$D/r.json" -w '%{http_code}' "$URL/nope")"
st=$(curl -s -D "$D/hdr" -o "$D/r.json" -w '%{http_code}' "$URL/recommend")
err_case err_method 405 method_not_allowed "$st"
t_contains err_method_allow "$(tr -d '\r' <"$D/hdr")" "Allow: POST"
st=$(curl -s -D "$D/hdr" -o "$D/r.json" -w '%{http_code}' -X POST "$URL/health")
t_contains err_method_allow_health "$st $(tr -d '\r' <"$D/hdr")" "Allow: GET, HEAD"
err_case err_type 415 unsupported_media_type "$(curl -s -o "$D/r.json" -w '%{http_code}' \
    -H 'Content-Type: text/plain' --data-binary "{\"user_id\": $U}" "$URL/recommend")"
head -c 70000 /dev/zero | tr '\0' ' ' >"$D/big.json"
err_case err_413_length 413 body_too_large "$(post @"$D/big.json")"
err_case err_413_chunked 413 body_too_large "$(post @"$D/big.json" -H 'Transfer-Encoding: chunked')"
t_eq charset_ok "$(post "{\"user_id\": $U}" -H 'Content-Type: application/json; charset=utf-8')" 200

# ---- cold start ---------------------------------------------------------------------------
st=$(post "{\"user_id\": $COLD, \"k\": 5}")
t_eq cold_start "$st $(J '
s = [x["score"] for x in d["top_k"]]
print(d["cold_start"], len(d["top_k"]), s == sorted(s, reverse=True) and all(0 < v <= 1 for v in s))' "$D/r.json")" \
    "200 True 5 True"

st=$(post "{\"user_id\": $COLD2, \"k\": 3}")
t_eq cold_start_no_orders "$st $(J 'print(d["cold_start"], len(d["top_k"]), all(x["why"] for x in d["top_k"]))' "$D/r.json")" \
    "200 True 3 True"

# ---- access log, then SIGTERM -----------------------------------------------------------
t_contains access_log "$(cat "$LOG")" "POST /recommend 200 "
t_contains access_log_413 "$(cat "$LOG")" "POST /recommend 413 "
# issue 15 item 7: a path that would forge a log line is logged escaped, on one line
curl -sg -o /dev/null "$URL/x%0aPOST%20/recommend%20200%201us%0a%1b[31m"
t_contains access_log_escaped "$(cat "$LOG")" 'GET /x\x0aPOST /recommend 200 1us\x0a\x1b[31m 404 '
t_eq access_log_no_forged_line "$(grep -c '^POST /recommend 200 1us' "$LOG")" 0
# raw bytes in the path: the 404 body is valid UTF-8 JSON without them
curl -s -o "$D/r.json" "$URL/%ff%fe%c3"
t_eq not_found_valid_utf8 "$(/usr/bin/python3 -c 'import json,sys; print(json.loads(open(sys.argv[1], "rb").read().decode("utf-8", "strict"))["error"]["code"])' "$D/r.json" 2>&1)" not_found
# issue 15 item 10: the library's own error lines go to the log (and not with --quiet, below)
raw_req() {  # PORT TEXT: sends TEXT on a fresh connection, waits for the close
    exec 4<>/dev/tcp/127.0.0.1/"$1"; printf "$2" >&4; timeout 3 cat <&4 >/dev/null; exec 4<&-
}
raw_req "$PORT" 'POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'
t_contains library_log "$(cat "$LOG")" "nb-serve: libmicrohttpd: "
# A request in flight when SIGTERM arrives is finished: headers and half the body now,
# the signal, then the rest of the body; the answer must still be a 200.
exec 3<>/dev/tcp/127.0.0.1/"$PORT"
BODY="{\"user_id\": $U, \"k\": 2}"
printf 'POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "${#BODY}" "${BODY:0:10}" >&3
sleep 0.5
kill -TERM $PID
sleep 0.5
# New connections are no longer served (they wait in the kernel backlog: MHD forbids closing
# the quiesced listen socket before MHD_stop_daemon), so this one times out.
t_eq not_served_after_sigterm "$(curl -s -m 1 -o /dev/null -w '%{http_code}' "$URL/health")" 000
printf '%s' "${BODY:10}" >&3
inflight=$(timeout 10 cat <&3 | tr -d '\r' | head -1)
exec 3<&-
t_eq inflight_finished "$inflight" "HTTP/1.1 200 OK"
rc=0
for _ in $(seq 100); do kill -0 $PID 2>/dev/null || break; sleep 0.1; done
if kill -0 $PID 2>/dev/null; then t_fail sigterm "still running 10 s after SIGTERM"; kill -9 $PID
else wait $PID; rc=$?; t_eq sigterm_exit "$rc" 0; fi
t_contains sigterm_log "$(cat "$LOG")" "stopped"

# ---- start-up refusals ------------------------------------------------------------------
refuse() {  # NAME NEEDLE ARGS...
    local name=$1 needle=$2; shift 2
    local out rc
    out=$(timeout 30 $NB_BIN/nb-serve --port 0 --threads 1 "$@" 2>&1); rc=$?
    if [[ $rc -ne 0 && $rc -ne 124 && $out == *"$needle"* ]]; then t_ok "$name"
    else t_fail "$name" "exit $rc, output: ${out:0:300}"; fi
}
cp "$D/m.nbw" "$D/bad.nbw"
printf '\x55' | dd of="$D/bad.nbw" bs=1 seek=200 conv=notrunc status=none
refuse refuse_corrupt "checksum" --db "$D/nb.db" --model "$D/bad.nbw"
cp "$D/nb.db" "$D/other.db"
sqlite3 "$D/other.db" "DELETE FROM products WHERE product_id = (SELECT MAX(product_id) FROM products)"
refuse refuse_catalogue "product list" --db "$D/other.db" --model "$D/m.nbw"
cp "$D/nb.db" "$D/unreg.db"
sqlite3 "$D/unreg.db" "DELETE FROM candidates; DELETE FROM product_stats; DELETE FROM models"
refuse refuse_unregistered "not registered" --db "$D/unreg.db" --model "$D/m.nbw"
refuse refuse_no_db "nb-serve" --db "$D/missing.db" --model "$D/m.nbw"

# ---- issue 15 item 12: /health reads the store; --quiet silences the library too ---------
cp "$D/nb.db" "$D/h.db"
HLOG=$D/health.log
$NB_BIN/nb-serve --db "$D/h.db" --model "$D/m.nbw" --port 0 --threads 1 --quiet 2>"$HLOG" &
PID=$!
HPORT=$("$(dirname "$0")"/../tools/serve_port.sh "$HLOG" $PID 300)
if [[ -z $HPORT ]]; then t_fail health_start "$(tail -3 "$HLOG")"; t_exit; fi
HURL=http://127.0.0.1:$HPORT
t_eq health_ok "$(curl -s -o /dev/null -w '%{http_code}' "$HURL/health")" 200
raw_req "$HPORT" 'POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'
t_eq quiet_library_log "$(grep -c 'libmicrohttpd\|POST /recommend' "$HLOG")" 0
CK=$(sqlite3 "$D/h.db" "SELECT checksum FROM models")
sqlite3 "$D/h.db" "UPDATE models SET checksum = '00000000'"
st=$(curl -s -o "$D/h.json" -w '%{http_code}' "$HURL/health")
t_eq health_model_replaced "$st $(J 'print(d["status"], "not the served weights" in d["reason"])' "$D/h.json")" "503 error True"
sqlite3 "$D/h.db" "UPDATE models SET checksum = '$CK'"
t_eq health_back "$(curl -s -o /dev/null -w '%{http_code}' "$HURL/health")" 200
# the store overwritten under the server: every /recommend fails, and /health says why
PAGES=$(sqlite3 "$D/h.db" "PRAGMA page_count")
dd if=/dev/zero of="$D/h.db" bs=4096 seek=1 count="$PAGES" conv=notrunc status=none
st=$(curl -s -o "$D/h.json" -w '%{http_code}' "$HURL/health")
t_eq health_store_broken "$st $(J 'print(d["status"], "malformed" in d["reason"])' "$D/h.json")" "503 error True"
kill -TERM $PID; wait $PID
t_exit
