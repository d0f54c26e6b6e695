#!/usr/bin/env bash
# prerank.sh -- rankings precomputed by nb-train (infer/prerank.h, train/prerank_build.h):
# one row per user with history; nb-serve's answer from a row is byte-identical to its live
# answer (a copy of the store without the rows) for every user, k and basket mode; POST
# /orders deletes the user's rows in its transaction and writes back the ranking of the new
# history, which equals nb-train --score-user and the live answer; a row that does not decode is
# logged and ranked live; retired models' rows go with them; --precompute off writes none.
set -uo pipefail
source tests/lib.sh

for p in nb-synth nb-import nb-train nb-serve; do
    if [[ ! -x $NB_BIN/$p ]]; then t_skip prerank "$NB_BIN/$p not built"; t_exit; fi
done
command -v sqlite3 >/dev/null || { t_skip prerank "sqlite3 not installed"; t_exit; }
D=$T_TMP
SQL() { sqlite3 -cmd ".timeout 10000" "$D/nb.db" "$@"; }
J() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $1" "${@:2}"; }
SMALL=(--epochs 1 --emb 8 --cnn-out 16 --gru-hidden 16 --gru-layers 1 --head 16
       --candidates 100 --threads 2)

if ! $NB_BIN/nb-synth --users 300 --seed 12 --out "$D/csv" >/dev/null 2>&1 ||
   ! $NB_BIN/nb-import --csv "$D/csv" --db "$D/nb.db" --quiet >/dev/null 2>&1; then
    t_fail synth_import "nb-synth / nb-import failed"; t_exit
fi
if ! $NB_BIN/nb-train --db "$D/nb.db" --model "$D/m.nbw" "${SMALL[@]}" >"$D/m.out" 2>"$D/m.log"; then
    t_fail train "$(tail -3 "$D/m.log")"; t_exit
fi

# ---- one row per user with history (every user here has a candidate set) ----------------
WITH_ITEMS=$(SQL "SELECT count(DISTINCT o.user_id) FROM orders o JOIN order_items i USING(order_id)")
t_eq one_row_per_user_with_history "$(SQL "SELECT count(*) FROM user_rankings")" "$WITH_ITEMS"
t_contains train_logs_rows "$(cat "$D/m.log")" "ranked $WITH_ITEMS users ahead of time"
t_contains train_logs_rows_written "$(cat "$D/m.log")" "$WITH_ITEMS rows"
t_eq rows_of_the_model "$(SQL "SELECT count(DISTINCT model_id), min(model_id) = (SELECT max(model_id) FROM models) FROM user_rankings")" "1|1"
t_eq rows_have_magic "$(SQL "SELECT count(*) FROM user_rankings WHERE substr(ranking, 1, 4) != CAST('NBR1' AS BLOB)")" 0

# ---- the answer from a row equals the live answer ------------------------------------------
cp "$D/nb.db" "$D/live.db"
sqlite3 "$D/live.db" "DELETE FROM user_rankings"
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$TOKEN" >"$D/token"; chmod 600 "$D/token"
start() {  # DB LOG [FLAGS] -> PID, URL
    $NB_BIN/nb-serve --db "$1" --model "$D/m.nbw" --port 0 --threads 2 "${@:3}" 2>"$2" &
    PID=$!
    PIDS+=" $PID"
    local port
    port=$("$(dirname "$0")"/../tools/serve_port.sh "$2" $PID 300)
    if [[ -z $port ]]; then t_fail "serve_start_$(basename "$2")" "$(tail -5 "$2")"; t_exit; fi
    URL=http://127.0.0.1:$port
}
PIDS=
trap 'kill $PIDS 2>/dev/null; rm -rf "$T_TMP"' EXIT
start "$D/nb.db" "$D/a.log" --admin-token-file "$D/token"; A=$URL; APID=$PID
start "$D/live.db" "$D/b.log"; B=$URL
SQL "SELECT user_id FROM users ORDER BY user_id" >"$D/users.txt"
# every user, k 10 and 100, both basket modes, plus an unknown user: the bodies, byte by byte
/usr/bin/python3 - "$A" "$B" "$D/users.txt" >"$D/cmp.txt" <<'PY'
import sys, urllib.request
a, b, users = sys.argv[1], sys.argv[2], [int(x) for x in open(sys.argv[3])]
def post(url, body):
    req = urllib.request.Request(url + "/recommend", data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r: return r.status, r.read()
    except urllib.error.HTTPError as e: return e.code, e.read()
same = diff = 0
for u in users + [max(users) + 7]:
    for k in (10, 100):
        for mode in ("threshold", "expected-f1"):
            body = '{"user_id": %d, "k": %d, "basket_mode": "%s"}' % (u, k, mode)
            ra, rb = post(a, body), post(b, body)
            if ra == rb and ra[0] in (200, 404): same += 1
            else:
                diff += 1
                if diff <= 3: print("# differs:", body, ra[0], ra[1][:300], rb[0], rb[1][:300])
print(same, diff)
PY
N_REQ=$(( ($(wc -l <"$D/users.txt") + 1) * 4 ))
t_eq precomputed_equals_live "$(tail -1 "$D/cmp.txt")" "$N_REQ 0"
grep '^#' "$D/cmp.txt"
metric() { curl -s "$1/metrics" | awk -v m="nb_recommendations_total{ranking=\"$2\"}" '$1 == m {print $2}'; }
t_eq served_from_rows "$(metric "$A" precomputed)" "$(( WITH_ITEMS * 4 ))"
t_eq live_server_all_live "$(metric "$B" precomputed) $(metric "$B" live)" "0 $(( $(wc -l <"$D/users.txt") * 4 ))"

# ---- POST /orders: the order's transaction deletes the user's rows, then the server ranks
# the user again and writes the row back (the ranking of the new history, counted as the user's
# orders now); the next /recommend reads it and equals nb-train --score-user on that history ----
U=$(SQL "SELECT o.user_id FROM orders o JOIN order_items i USING(order_id) GROUP BY o.user_id
         ORDER BY count(*) DESC, o.user_id LIMIT 1")
X=$(SQL "SELECT product_id FROM products WHERE product_id NOT IN (SELECT i.product_id FROM orders o
         JOIN order_items i USING(order_id) WHERE o.user_id = $U) ORDER BY product_id LIMIT 1 OFFSET 40")
OID=$(( $(SQL "SELECT MAX(order_id) FROM orders") + 1000 ))
OTHER=$(SQL "SELECT count(*), sum(length(ranking)) FROM user_rankings WHERE user_id != $U")
ROW0=$(SQL "SELECT hex(ranking) FROM user_rankings WHERE user_id = $U")
st=$(curl -s -o "$D/o.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
     -H "Authorization: Bearer $TOKEN" "$A/orders" --data-binary \
     "{\"user_id\": $U, \"order_id\": $OID, \"products\": [$X], \"order_dow\": 1, \"order_hour_of_day\": 9, \"days_since_prior_order\": 2}")
t_eq order_added "$st" 200
ROW1=$(SQL "SELECT hex(ranking) FROM user_rankings WHERE user_id = $U")
t_eq order_row_rewritten "$([[ -n $ROW1 && $ROW1 != "$ROW0" ]] && echo yes)" yes
t_eq order_keeps_other_rows "$(SQL "SELECT count(*), sum(length(ranking)) FROM user_rankings WHERE user_id != $U")" "$OTHER"
P0=$(metric "$A" precomputed); L0=$(metric "$A" live)
t_served_equals after_order_equals_score_user "$A" "$D/nb.db" "$D/m.nbw" "" "$U"
t_eq after_order_read_from_row "$(metric "$A" precomputed) $(metric "$A" live)" "$((P0 + 1)) $L0"
# the row is the live ranking of the new history: the same answer from the server without rows
sqlite3 "$D/nb.db" ".backup '$D/live2.db'"
sqlite3 "$D/live2.db" "DELETE FROM user_rankings"
start "$D/live2.db" "$D/c.log"; C=$URL
for mode in threshold expected-f1; do
    body="{\"user_id\": $U, \"k\": 100, \"basket_mode\": \"$mode\"}"
    a=$(curl -s -X POST -H 'Content-Type: application/json' -d "$body" "$A/recommend" | md5sum)
    b=$(curl -s -X POST -H 'Content-Type: application/json' -d "$body" "$C/recommend" | md5sum)
    t_eq "after_order_row_equals_live_$mode" "$a" "$b"
done

# ---- a row that does not decode: logged, ranked live, same answer --------------------------
V=$(SQL "SELECT user_id FROM user_rankings ORDER BY user_id LIMIT 1 OFFSET 5")
body="{\"user_id\": $V, \"k\": 30, \"basket_mode\": \"expected-f1\"}"
curl -s -o "$D/v_row.json" -X POST -H 'Content-Type: application/json' -d "$body" "$A/recommend"
SQL "UPDATE user_rankings SET ranking = substr(ranking, 1, length(ranking) - 3) WHERE user_id = $V"
st=$(curl -s -o "$D/v_bad.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d "$body" "$A/recommend")
t_eq corrupt_row_still_200 "$st" 200
t_check corrupt_row_same_answer cmp "$D/v_row.json" "$D/v_bad.json"
t_contains corrupt_row_logged "$(cat "$D/a.log")" "user $V: stored ranking of model"
# a reordered row is refused as well (two entries swapped: the serving order is checked)
SQL "UPDATE user_rankings SET ranking = substr(ranking, 1, 12) || substr(ranking, 34, 21) ||
     substr(ranking, 13, 21) || substr(ranking, 55) WHERE user_id = $(SQL "SELECT user_id FROM user_rankings ORDER BY user_id LIMIT 1 OFFSET 6")"
W=$(SQL "SELECT user_id FROM user_rankings ORDER BY user_id LIMIT 1 OFFSET 6")
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -d "{\"user_id\": $W}" "$A/recommend"
t_contains reordered_row_logged "$(cat "$D/a.log")" "user $W: stored ranking of model"
t_contains reordered_row_says_why "$(grep "user $W:" "$D/a.log")" "out of order"
kill $PIDS 2>/dev/null; wait 2>/dev/null; PIDS=

# ---- retired with their model; none with --precompute off -----------------------------------
if $NB_BIN/nb-train --db "$D/nb.db" --model "$D/m.nbw" "${SMALL[@]}" --seed 2 --keep-models 1 \
        --precompute off >"$D/m2.out" 2>"$D/m2.log"; then
    t_eq retired_rows_go "$(SQL "SELECT count(*) FROM user_rankings")" 0
    t_eq precompute_off_logs_nothing "$(grep -c 'ahead of time' "$D/m2.log")" 0
else t_fail retrain "$(tail -3 "$D/m2.log")"; fi
t_exit
