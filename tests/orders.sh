#!/usr/bin/env bash
# orders.sh -- POST /orders end to end (server/srv_orders.h): a small synthetic store and
# model, nb-serve with --admin-token-file, and curl: the token (401, 403, off = 404, never in
# the log, bad token files refused), an order that changes the user's next /recommend and its
# explanations, an idempotent retry, conflicting retries (409), unknown products (422),
# malformed bodies (400) -- nothing written by any refusal (row counts) --, a new user,
# a test order made history, concurrent posts of one order, and the stop line's counts.
set -uo pipefail
source tests/lib.sh

for p in nb-synth nb-import nb-train nb-serve; do
    if [[ ! -x $NB_BIN/$p ]]; then t_skip orders "$NB_BIN/$p not built"; t_exit; fi
done
command -v sqlite3 >/dev/null || { t_skip orders "sqlite3 not installed"; t_exit; }

D=$T_TMP
J() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $1" "${@:2}"; }
DB=$D/nb.db M=$D/m.nbw # the store and model of start, SQL and refuse (the last section changes them)
# (a busy timeout: the three readers below start together, and the first to open a WAL store
# after nb-train may hold it for recovery; without one the others fail "database is locked")
SQL() { sqlite3 -cmd ".timeout 10000" "$DB" "$@"; }

# ---- a small store and model (as tests/smoke.sh) ------------------------------------------
if ! $NB_BIN/nb-synth --users 300 --seed 11 --out "$D/csv" >"$D/synth.log" 2>&1 ||
   ! $NB_BIN/nb-import --csv "$D/csv" --db "$D/nb.db" --quiet >"$D/import.log" 2>&1 ||
   ! $NB_BIN/nb-train --db "$D/nb.db" --model "$D/m.nbw" --epochs 1 --emb 8 --cnn-out 16 \
        --gru-hidden 16 --gru-layers 1 --head 16 --candidates 300 --threads 1 --quiet \
        >"$D/train.log" 2>&1; then
    t_fail setup "$(tail -3 "$D/synth.log" "$D/import.log" "$D/train.log")"; t_exit
fi
cp "$D/nb.db" "$D/orig.db" # before any order, for the model-alone section at the end
TOKEN=$(head -c 32 /dev/urandom | base64 | tr -d '=\n')
umask 077
printf '%s\n' "$TOKEN" >"$D/token"
umask 022
ROWS() { SQL "SELECT (SELECT COUNT(*) FROM users) || ' ' || (SELECT COUNT(*) FROM orders) || ' '
                     || (SELECT COUNT(*) FROM order_items) || ' ' || (SELECT SUM(eval_set) FROM orders)"; }

# ---- off without --admin-token-file: 404, and bad token files are refused -----------------
start() {  # LOG ARGS...: starts nb-serve, sets PID and URL
    local log=$1; shift
    $NB_BIN/nb-serve --db "$DB" --model "$M" --port 0 --threads 2 "$@" 2>"$log" &
    PID=$!
    local port
    port=$(tools/serve_port.sh "$log" $PID 300) || { t_fail start "$(tail -3 "$log")"; t_exit; }
    URL=http://127.0.0.1:$port
}
stop() { kill -TERM "$PID"; wait "$PID"; }
trap 'kill $PID 2>/dev/null; rm -rf "$T_TMP"' EXIT
start "$D/off.log"
st=$(curl -s -o "$D/r.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
     -H 'Content-Type: application/json' -d '{}' "$URL/orders")
t_eq off_404 "$st $(J 'print(d["error"]["code"], "--admin-token-file" in d["error"]["message"])' "$D/r.json")" \
    "404 not_found True"
t_contains off_logged "$(cat "$D/off.log")" "writing endpoints off"
stop
refuse() {  # NAME NEEDLE TOKENFILE
    local out rc
    out=$(timeout 30 $NB_BIN/nb-serve --db "$D/nb.db" --model "$D/m.nbw" --port 0 \
          --admin-token-file "$3" 2>&1); rc=$?
    if [[ $rc -eq 1 && $out == *"$2"* && $out == *"$3"* ]]; then t_ok "$1"
    else t_fail "$1" "exit $rc: ${out:0:300}"; fi
}
: >"$D/empty"
refuse token_empty "is empty" "$D/empty"
refuse token_missing "No such file" "$D/absent"
printf 'two words\n' >"$D/spaced"
refuse token_bad_char "byte 3" "$D/spaced"

# ---- on ---------------------------------------------------------------------------------
cp "$D/token" "$D/token644"; chmod 644 "$D/token644"
start "$D/serve.log" --admin-token-file "$D/token644"
t_contains token_mode_warning "$(cat "$D/serve.log")" "warning: --admin-token-file $D/token644: readable"
stop
start "$D/serve.log" --admin-token-file "$D/token"
t_contains on_logged "$(cat "$D/serve.log")" "writing endpoints on"
# order BODY [OUT] -> response in OUT (default $D/r.json), prints the status; the headers
# sent are $AUTH (default the token) and $CTYPE (default JSON)
order() {
    curl -s -o "${2:-$D/r.json}" -w '%{http_code}' -X POST -H "Content-Type: ${CTYPE:-application/json}" \
        -H "Authorization: ${AUTH:-Bearer $TOKEN}" --data-binary "$1" "$URL/orders"
}
rec() {  # USER K -> $D/rec.json, prints the status
    curl -s -o "$D/rec.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d "{\"user_id\": $1, \"k\": $2}" "$URL/recommend"
}
err_case() {  # NAME WANT_STATUS WANT_CODE STATUS
    t_eq "$1" "$4 $(J 'print(d["error"]["code"], bool(d["error"]["message"]))' "$D/r.json" 2>&1)" "$2 $3 True"
}

# The user: the one with history and the fewest distinct products, whose last order is its
# 'train' order; X a product it never bought, Y one it did.
U=$(SQL "SELECT o.user_id FROM orders o JOIN order_items i USING(order_id)
         WHERE o.user_id IN (SELECT user_id FROM orders WHERE eval_set = 1)
         GROUP BY o.user_id ORDER BY COUNT(DISTINCT i.product_id), o.user_id LIMIT 1")
X=$(SQL "SELECT product_id FROM products WHERE product_id NOT IN (SELECT i.product_id FROM orders o
         JOIN order_items i USING(order_id) WHERE o.user_id = $U) ORDER BY product_id LIMIT 1 OFFSET 500")
Y=$(SQL "SELECT i.product_id FROM orders o JOIN order_items i USING(order_id) WHERE o.user_id = $U
         ORDER BY o.order_number, i.add_to_cart_order LIMIT 1")
LAST=$(SQL "SELECT MAX(order_number) FROM orders WHERE user_id = $U")
TRAIN=$(SQL "SELECT order_id FROM orders WHERE user_id = $U AND eval_set = 1")
OID=$(( $(SQL "SELECT MAX(order_id) FROM orders") + 1000 ))
BODY="{\"user_id\": $U, \"order_id\": $OID, \"products\": [$X, $Y], \"order_dow\": 2, \"order_hour_of_day\": 14, \"days_since_prior_order\": 3}"

# ---- authentication (before anything else, the body unread) -----------------------------
st=$(curl -s -D "$D/hdr" -o "$D/r.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
     --data-binary "$BODY" "$URL/orders")
err_case auth_missing_401 401 unauthorized "$st"
t_contains auth_www_authenticate "$(tr -d '\r' <"$D/hdr")" 'WWW-Authenticate: Bearer'
err_case auth_basic_401 401 unauthorized "$(AUTH="Basic $TOKEN" order "$BODY")"
err_case auth_wrong_403 403 forbidden "$(AUTH="Bearer ${TOKEN}x" order "$BODY")"
err_case auth_prefix_403 403 forbidden "$(AUTH="Bearer ${TOKEN:0:10}" order "$BODY")"
st=$(curl -s -o "$D/r.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$URL/orders")
err_case method_405 405 method_not_allowed "$st"
err_case type_415 415 unsupported_media_type "$(CTYPE=text/plain order "$BODY")"
ROWS0=$(ROWS)
t_eq auth_nothing_written "$(ROWS)" "$ROWS0"

# ---- malformed bodies: 400, nothing written ---------------------------------------------
B() { printf '{"user_id": %s, "order_id": %s, "products": %s, "order_dow": %s, "order_hour_of_day": %s%s}' "$@"; }
err_case bad_json 400 bad_json "$(order '{"user_id": 1,')"
err_case bad_unknown_field 400 unknown_field "$(order "$(B $U $OID "[$X]" 1 1 ', "eval_set": "prior"')")"
t_contains bad_unknown_field_named "$(cat "$D/r.json")" '\"eval_set\"'
err_case bad_duplicate_field 400 duplicate_field "$(order "$(B $U $OID "[$X]" 1 1 ', "order_dow": 2')")"
err_case bad_user 400 bad_user_id "$(order "$(B '"7"' $OID "[$X]" 1 1 '')")"
err_case bad_user_negative 400 bad_user_id "$(order "$(B -1 $OID "[$X]" 1 1 '')")"
err_case bad_order_id 400 bad_order_id "$(order "$(B $U 1.5 "[$X]" 1 1 '')")"
err_case bad_products_empty 400 bad_products "$(order "$(B $U $OID '[]' 1 1 '')")"
err_case bad_products_type 400 bad_products "$(order "$(B $U $OID "[$X, \"$Y\"]" 1 1 '')")"
t_contains bad_products_index "$(cat "$D/r.json")" 'products[1]'
err_case bad_products_dup 400 duplicate_product "$(order "$(B $U $OID "[$X, $Y, $X]" 1 1 '')")"
err_case bad_dow 400 bad_order_dow "$(order "$(B $U $OID "[$X]" 7 1 '')")"
err_case bad_hour 400 bad_order_hour_of_day "$(order "$(B $U $OID "[$X]" 1 24 '')")"
err_case bad_days 400 bad_days_since_prior_order "$(order "$(B $U $OID "[$X]" 1 1 ', "days_since_prior_order": 31')")"
err_case bad_missing_hour 400 bad_order_hour_of_day "$(order "{\"user_id\": $U, \"order_id\": $OID, \"products\": [$X], \"order_dow\": 1}")"
# unknown products: 422, every one named, nothing written
st=$(order "$(B $U $OID "[$X, 2147483000, $Y, 2147483001]" 1 1 '')")
t_eq unknown_422 "$st $(J 'e = d["error"]; print(e["code"], e["product_ids"], "2147483000, 2147483001" in e["message"])' "$D/r.json")" \
    "422 unknown_products [2147483000, 2147483001] True"
t_eq refusals_nothing_written "$(ROWS)" "$ROWS0"

# ---- an order: the next /recommend sees it ----------------------------------------------
t_eq rec_before "$(rec "$U" 100)" 200
cp "$D/rec.json" "$D/before.json"
st=$(order "$BODY")
t_eq order_200 "$st $(cat "$D/r.json")" \
    "200 {\"order_id\": $OID, \"user_id\": $U, \"order_number\": $((LAST + 1)), \"n_products\": 2, \"n_reordered\": 1}"
cp "$D/r.json" "$D/first.json"
t_eq order_rows "$(SQL "SELECT eval_set, order_number, order_dow, order_hour_of_day, days_since_prior_order
                        FROM orders WHERE order_id = $OID") $(SQL "SELECT group_concat(add_to_cart_order || ':' ||
                        product_id || ':' || reordered, ' ') FROM order_items WHERE order_id = $OID")" \
    "1|$((LAST + 1))|2|14|3 1:$X:0 2:$Y:1"
t_eq order_train_made_prior "$(SQL "SELECT eval_set FROM orders WHERE order_id = $TRAIN")" 0
NWITH=$(SQL "SELECT COUNT(DISTINCT o.order_id) FROM orders o JOIN order_items i USING(order_id) WHERE o.user_id = $U")
t_eq rec_after "$(rec "$U" 100)" 200
t_check rec_changed test "$(J 'print(d["top_k"])' "$D/rec.json")" != "$(J 'print(d["top_k"])' "$D/before.json")"
# X, bought once, in the last order: the explanation says so, over the new order count
t_eq rec_new_product_explained "$(J "
w = [x['why'] for x in d['top_k'] if x['product_id'] == $X]
print(w[0] if w else 'not in top_k')" "$D/rec.json")" \
    "you buy this in $(( (100 * 1 + NWITH / 2) / NWITH ))% of your orders (1 of $NWITH); last bought in your last order"
t_eq rec_before_not_bought "$(J "print([x['why'][:11] for x in d['top_k'] if x['product_id'] == $X][:1])" "$D/before.json")" \
    "$(J "print(['new for you'] if any(x['product_id'] == $X for x in d['top_k']) else [])" "$D/before.json")"

# ---- retries: the same order again (any formatting) is the same answer, nothing written --
ROWS1=$(ROWS)
st=$(order "{\"order_hour_of_day\":14,\"days_since_prior_order\":3,\"order_dow\":2,\"products\":[$X,$Y],\"order_id\":$OID,\"user_id\":$U}")
t_eq retry_same_answer "$st $(cmp -s "$D/r.json" "$D/first.json" && echo same)" "200 same"
t_eq retry_nothing_written "$(ROWS)" "$ROWS1"
err_case conflict_products 409 order_conflict "$(order "${BODY/\[$X, $Y\]/[$Y, $X]}")"
t_contains conflict_says_what "$(cat "$D/r.json")" "product 1 is $X, this request's $Y"
err_case conflict_user 409 order_conflict "$(order "${BODY/\"user_id\": $U/\"user_id\": $((U + 1))}")"
err_case conflict_days 409 order_conflict "$(order "${BODY/, \"days_since_prior_order\": 3/}")"
# an imported order's id is taken too
err_case conflict_imported 409 order_conflict "$(order "${BODY/\"order_id\": $OID/\"order_id\": $TRAIN}")"
t_eq conflicts_nothing_written "$(ROWS)" "$ROWS1"

# ---- a new user ---------------------------------------------------------------------------
NU=$(( $(SQL "SELECT MAX(user_id) FROM users") + 100 ))
USERS0=$(curl -s "$URL/health" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["users"])')
t_eq new_user_unknown_before "$(rec "$NU" 5)" 404
st=$(order "{\"user_id\": $NU, \"order_id\": $((OID + 1)), \"products\": [$Y, $X], \"order_dow\": 0, \"order_hour_of_day\": 8}")
t_eq new_user_order "$st $(J 'print(d["order_number"], d["n_reordered"])' "$D/r.json")" "200 1 0"
t_eq new_user_row "$(SQL "SELECT COUNT(*) FROM users WHERE user_id = $NU") $(SQL "SELECT days_since_prior_order IS NULL FROM orders WHERE order_id = $((OID + 1))")" "1 1"
t_eq new_user_health "$(curl -s "$URL/health" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["users"])')" $((USERS0 + 1))
# no candidate row for the model: the user's own products first, never a 500
t_eq new_user_recommend "$(rec "$NU" 10) $(J "
k = d['top_k']
print(d['cold_start'], len(k), sorted(x['product_id'] for x in k[:2]) == sorted([$X, $Y]),
      all(x['why'] == 'you buy this in 100% of your orders (1 of 1); last bought in your last order' for x in k[:2]),
      all(x['why'] for x in k))" "$D/rec.json")" "200 False 10 True True True"
st=$(order "{\"user_id\": $NU, \"order_id\": $((OID + 2)), \"products\": [$X], \"order_dow\": 1, \"order_hour_of_day\": 9, \"days_since_prior_order\": 1}")
t_eq new_user_second "$st $(J 'print(d["order_number"], d["n_reordered"])' "$D/r.json")" "200 2 1"
t_eq new_user_one_final "$(SQL "SELECT group_concat(eval_set, '') FROM (SELECT eval_set FROM orders WHERE user_id = $NU ORDER BY order_number)")" "01"

# ---- a user whose last order is a test order (items withheld): it becomes history --------
TU=$(SQL "SELECT user_id FROM orders WHERE eval_set = 2 ORDER BY user_id LIMIT 1")
TO=$(SQL "SELECT order_id FROM orders WHERE user_id = $TU AND eval_set = 2")
st=$(order "{\"user_id\": $TU, \"order_id\": $((OID + 3)), \"products\": [$X], \"order_dow\": 1, \"order_hour_of_day\": 9, \"days_since_prior_order\": 30}")
t_eq test_user_order "$st $(SQL "SELECT eval_set FROM orders WHERE order_id = $TO")$(SQL "SELECT eval_set FROM orders WHERE order_id = $((OID + 3))")" "200 01"

# ---- concurrency: 8 different orders and 8 posts of one order at once, /recommend beside --
ROWS2=$(ROWS)
PIDS=()
for i in $(seq 1 8); do
    order "{\"user_id\": $U, \"order_id\": $((OID + 10 + i)), \"products\": [$Y], \"order_dow\": 1, \"order_hour_of_day\": 9, \"days_since_prior_order\": 2}" \
        "$D/c$i.json" >"$D/c$i.st" &
    PIDS+=($!)
    order "{\"user_id\": $NU, \"order_id\": $((OID + 30)), \"products\": [$Y, $X], \"order_dow\": 1, \"order_hour_of_day\": 9}" \
        "$D/s$i.json" >"$D/s$i.st" &
    PIDS+=($!)
    curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d "{\"user_id\": $U, \"k\": 10}" "$URL/recommend" >"$D/r$i.st" &
    PIDS+=($!)
done
wait "${PIDS[@]}"
t_eq concurrent_status "$(for f in "$D"/[csr][0-9].st; do cat "$f"; echo; done | sort | uniq -c | tr -s ' ')" " 24 200"
t_eq concurrent_one_answer "$(cat "$D"/s*.json | sort -u | wc -l)" 1
t_eq concurrent_numbers "$(cat "$D"/c*.json | /usr/bin/python3 -c '
import json, sys
n = sorted(json.loads(l)["order_number"] for l in sys.stdin)
print(n == list(range(n[0], n[0] + 8)))')" True
t_eq concurrent_rows "$(SQL "SELECT COUNT(*) FROM orders WHERE order_id > $((OID + 10))")" 9
t_eq one_final_order_each "$(SQL "SELECT COUNT(*) FROM (SELECT user_id FROM orders WHERE eval_set <> 0 GROUP BY user_id HAVING COUNT(*) > 1)")" 0

# ---- the log: every request, never the token ---------------------------------------------
stop
t_contains stop_counts "$(cat "$D/serve.log")" "orders: 13 added, 8 retries answered, 4 conflicts, 1 with unknown products, 13 malformed, 0 store busy, 0 failed"
t_eq token_never_logged "$(grep -c -F "${TOKEN:0:12}" "$D/serve.log")" 0
t_contains access_logged "$(cat "$D/serve.log")" "POST /orders 403 "

# ---- the model alone (--ranker off): a product bought after training is scored too --------
# (the stored candidate set plus the user's own products, infer/ownprod.h), and nb-serve
# still equals nb-train --score-user. X2: a product outside U's history and stored set.
DB=$D/orig.db M=$D/m0.nbw
if ! $NB_BIN/nb-train --db "$DB" --model "$M" --epochs 1 --emb 8 --cnn-out 16 \
        --gru-hidden 16 --gru-layers 1 --head 16 --candidates 300 --threads 1 --quiet \
        --ranker off >"$D/train0.log" 2>&1; then
    t_fail model_alone_train "$(tail -3 "$D/train0.log")"; t_exit
fi
X2=$(SQL "SELECT hex(encoded) FROM candidates WHERE user_id = $U" | /usr/bin/python3 -c '
import sys, subprocess
b = bytes.fromhex(sys.stdin.read().strip()); idx, i, prev = set(), 0, -1
while i < len(b):
    v = s = 0
    while True:
        c = b[i]; i += 1; v |= (c & 0x7f) << s; s += 7
        if c < 0x80: break
    prev = v if prev < 0 else prev + v + 1; idx.add(prev)
ids = [int(l) for l in open(sys.argv[1])]
own = set(int(l) for l in open(sys.argv[2]))
print(next(p for k, p in enumerate(ids) if k not in idx and p not in own))' \
    <(SQL "SELECT product_id FROM products ORDER BY product_id") \
    <(SQL "SELECT i.product_id FROM orders o JOIN order_items i USING(order_id) WHERE o.user_id = $U"))
start "$D/serve0.log" --admin-token-file "$D/token"
st=$(order "{\"user_id\": $U, \"order_id\": $OID, \"products\": [$X2], \"order_dow\": 2, \"order_hour_of_day\": 14, \"days_since_prior_order\": 3}")
t_eq model_alone_order "$st $(rec "$U" 100)" "200 200"
t_eq model_alone_new_product "$(J "print([x['why'] for x in d['top_k'] if x['product_id'] == $X2])" "$D/rec.json")" \
    "['you buy this in $(( (100 + NWITH / 2) / NWITH ))% of your orders (1 of $NWITH); last bought in your last order']"
$NB_BIN/nb-train --db "$DB" --model "$M" --score-user "$U" --k 100 >"$D/t.json" 2>"$D/t.err"
t_eq model_alone_parity "$(J 'print([(x["product_id"], x["score"]) for x in d["top_k"]])' "$D/t.json" 2>&1)" \
    "$(J 'print([(x["product_id"], x["score"]) for x in d["top_k"]])' "$D/rec.json")"
stop
t_exit
