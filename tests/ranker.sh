#!/usr/bin/env bash
# ranker.sh -- the ranking stage end to end (issue 10): the safeguard (a data set on which a
# baseline is perfect must ship that baseline, and say so in the report, --score-user and
# /health), the registration (ranker file beside the weights, its checksum in the store,
# neighbour rows for every user), served scores equal to nb-train --score-user, and
# nb-serve's refusal of a ranker file whose checksum differs from the registered one.
set -uo pipefail
source tests/lib.sh

for p in nb-synth nb-import nb-train nb-serve; do
    if [[ ! -x $NB_BIN/$p ]]; then t_skip ranker "$NB_BIN/$p not built"; t_exit; fi
done
D=$T_TMP
J() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $1" "${@:2}"; }

SMALL=(--epochs 1 --emb 8 --cnn-out 16 --gru-hidden 16 --gru-layers 1 --head 16
       --candidates 100 --threads 1 --quiet)

# ---- the safeguard: every user buys the same 3 products in every order, so P-TopFreq
# (and TIFU-KNN) rank the next basket perfectly; the ranker cannot be ahead, so the
# baseline ships ------------------------------------------------------------------------------
mkdir -p "$D/same"
/usr/bin/python3 - "$D/same" <<'PY'
import sys, random
d = sys.argv[1]
rnd = random.Random(5)
P, U, N = 60, 400, 6
with open(d + "/products.csv", "w") as f:
    f.write("product_id,product_name,aisle_id,department_id\n")
    for p in range(1, P + 1): f.write("%d,item %d,1,1\n" % (p, p))
open(d + "/aisles.csv", "w").write("aisle_id,aisle\n1,all\n")
open(d + "/departments.csv", "w").write("department_id,department\n1,all\n")
o = open(d + "/orders.csv", "w"); o.write("order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,days_since_prior_order\n")
pr = open(d + "/order_products__prior.csv", "w"); pr.write("order_id,product_id,add_to_cart_order,reordered\n")
tr = open(d + "/order_products__train.csv", "w"); tr.write("order_id,product_id,add_to_cart_order,reordered\n")
oid = 0
for u in range(1, U + 1):
    basket = rnd.sample(range(1, P + 1), 3)
    for n in range(1, N + 1):
        oid += 1
        last = n == N
        o.write("%d,%d,%s,%d,1,10,%s\n" % (oid, u, "train" if last else "prior", n, "" if n == 1 else "7"))
        for i, p in enumerate(basket):
            (tr if last else pr).write("%d,%d,%d,%d\n" % (oid, p, i + 1, 0 if n == 1 else 1))
PY
if ! $NB_BIN/nb-train --csv "$D/same" --db "$D/same.db" --model "$D/same.nbw" \
        --report "$D/same.json" "${SMALL[@]}" >"$D/same.out" 2>"$D/same.log"; then
    t_fail safeguard_train "$(tail -3 "$D/same.log")"; t_exit
fi
t_eq safeguard_baseline_perfect "$(J 'print(d["ranker"]["validation_baselines"]["P-TopFreq"]["R@10"])' "$D/same.json")" 1
t_eq safeguard_ships_baseline "$(J 'print(d["ranker"]["shipped"])' "$D/same.json")" P-TopFreq
t_contains safeguard_table "$(cat "$D/same.out")" "P-TopFreq ships"
t_eq safeguard_registered "$(sqlite3 "$D/same.db" "SELECT shipped FROM ranker_models")" P-TopFreq
U1=$(sqlite3 "$D/same.db" "SELECT MIN(user_id) FROM users")
want=$(sqlite3 "$D/same.db" "SELECT group_concat(product_id) FROM (SELECT DISTINCT i.product_id
  FROM orders o JOIN order_items i USING(order_id) WHERE o.user_id = $U1 ORDER BY i.product_id)")
$NB_BIN/nb-train --db "$D/same.db" --model "$D/same.nbw" --score-user "$U1" --k 3 >"$D/su.json"
t_eq safeguard_score_user "$(J 'print(d["ranking"], ",".join(str(p) for p in sorted(x["product_id"] for x in d["top_k"])))' "$D/su.json")" \
    "P-TopFreq $want"

# ---- a ranker that ships: registration, parity with nb-serve, checksum refusal ------------
if ! $NB_BIN/nb-synth --users 300 --seed 11 --out "$D/csv" >/dev/null 2>&1 ||
   ! $NB_BIN/nb-import --csv "$D/csv" --db "$D/nb.db" --quiet >/dev/null 2>&1; then
    t_fail synth_import "nb-synth / nb-import failed"; t_exit
fi
mkdir -p "$D/dump"
if ! $NB_BIN/nb-train --db "$D/nb.db" --model "$D/m.nbw" --report "$D/m.json" "${SMALL[@]}" \
        --ranker-dump "$D/dump" >"$D/m.out" 2>"$D/m.log"; then
    t_fail train "$(tail -3 "$D/m.log")"; t_exit
fi
# the trees beside the weights, named by both checksums (train/publish.h)
RK=$(sqlite3 "$D/nb.db" "SELECT path FROM ranker_models")
t_check ranker_file_beside_weights test -s "$RK"
t_eq ranker_registered "$(sqlite3 "$D/nb.db" "SELECT count(*), path GLOB '*/m.nbw.[0-9a-f]*.[0-9a-f]*.xgb' FROM ranker_models")" "1|1"
t_eq neighbour_rows "$(sqlite3 "$D/nb.db" "SELECT count(*) > 0.9 * (SELECT count(*) FROM users) FROM neighbour_cands")" 1
t_eq ranker_stats_rows "$(sqlite3 "$D/nb.db" "SELECT (SELECT count(*) FROM ranker_product_stats) = (SELECT count(*) FROM products)")" 1
SHIPPED=$(sqlite3 "$D/nb.db" "SELECT shipped FROM ranker_models")
mapfile -t USERS < <(sqlite3 "$D/nb.db" "SELECT DISTINCT o.user_id FROM orders o JOIN order_items i
  USING(order_id) ORDER BY o.user_id LIMIT 5")

LOG=$D/serve.log
$NB_BIN/nb-serve --db "$D/nb.db" --model "$D/m.nbw" --port 0 --threads 2 2>"$LOG" &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$T_TMP"' EXIT
PORT=$("$(dirname "$0")"/../tools/serve_port.sh "$LOG" $PID 300)
if [[ -z $PORT ]]; then t_fail serve_start "$(tail -5 "$LOG")"; t_exit; fi
URL=http://127.0.0.1:$PORT
curl -s -o "$D/h.json" "$URL/health"
t_eq health_says_ranking "$(J 'print(d["ranking"])' "$D/h.json")" "$SHIPPED"
t_served_equals served_equals_score_user "$URL" "$D/nb.db" "$D/m.nbw" \
    "$(J 'print(d["ranking"])' "$D/h.json")" "${USERS[@]}"
kill $PID; wait $PID 2>/dev/null

# a ranker file that is not the registered one is refused at start-up, naming the file
cp "$RK" "$D/keep.xgb"
/usr/bin/python3 -c "
import sys; b = bytearray(open(sys.argv[1], 'rb').read()); b[40] ^= 1; open(sys.argv[1], 'wb').write(b)" "$RK"
out=$(timeout 60 $NB_BIN/nb-serve --db "$D/nb.db" --model "$D/m.nbw" --port 0 2>&1); rc=$?
if [[ $rc -ne 0 && "$out" == *"$(basename "$RK")"* && "$out" == *"checksum"* ]]; then t_ok serve_refuses_corrupt_ranker
else t_fail serve_refuses_corrupt_ranker "rc=$rc ${out:0:300}"; fi
# a valid ranker file that is not the registered one (another training's): same refusal
$NB_BIN/nb-train --db "$D/same.db" --model "$D/other.nbw" "${SMALL[@]}" --seed 2 >/dev/null 2>&1
cp "$(sqlite3 "$D/same.db" "SELECT path FROM ranker_models ORDER BY model_id DESC LIMIT 1")" "$RK"
out=$(timeout 60 $NB_BIN/nb-serve --db "$D/nb.db" --model "$D/m.nbw" --port 0 2>&1); rc=$?
if [[ $rc -ne 0 && "$out" == *"registered"* ]]; then t_ok serve_refuses_unregistered_ranker
else t_fail serve_refuses_unregistered_ranker "rc=$rc ${out:0:300}"; fi
cp "$D/keep.xgb" "$RK"

# ---- the tuned TIFU-KNN parameters are stored with the stage; a store from before them loads
t_eq tifu_params_stored "$(sqlite3 "$D/nb.db" "SELECT tifu_m, tifu_k, tifu_r_b, tifu_r_g, tifu_alpha FROM ranker_models")" \
    "$(J 't = d["tifu_tuning"]; print("|".join(str(t[x]) for x in ("m", "k")) + "|" + "|".join(str(float(t[x])) for x in ("r_b", "r_g", "alpha")))' "$D/m.json")"
cp "$D/nb.db" "$D/old.db"
sqlite3 "$D/old.db" "CREATE TABLE r0 AS SELECT model_id, path, checksum, shipped FROM ranker_models;
  DROP TABLE ranker_models; ALTER TABLE r0 RENAME TO ranker_models"
t_eq older_store_made "$(sqlite3 "$D/old.db" "SELECT count(*) FROM pragma_table_info('ranker_models') WHERE name LIKE 'tifu%'")" 0
if $NB_BIN/nb-train --db "$D/old.db" --model "$D/m.nbw" --score-user "${USERS[0]}" --k 5 >"$D/old.json" 2>"$D/old.log" &&
   [[ "$(J 'print(len(d["top_k"]))' "$D/old.json")" == 5 ]]; then t_ok older_store_loads
else t_fail older_store_loads "$(tail -3 "$D/old.log")"; fi

# forced_ship NAME SHIP [FLAGS...] -- nb-train's test build (with FLAGS) on a copy of the store
# with NB_TEST_RK_SHIP=SHIP ($D/NAME.*): SHIP is registered and reported, then nb-serve's
# /health names it and serves exactly nb-train --score-user's scores. Leaves the server
# running ($PID).
forced_ship() {
    local n=$1 ship=$2
    cp "$D/nb.db" "$D/$n.db"
    if ! NB_TEST_RK_SHIP="$ship" $TRAIN_TEST --db "$D/$n.db" --model "$D/$n.nbw" \
            --report "$D/$n.json" "${SMALL[@]}" "${@:3}" >"$D/$n.out" 2>"$D/$n.log"; then
        t_fail "${n}_train" "$(tail -3 "$D/$n.log")"; t_exit
    fi
    t_eq "${n}_ships" "$(sqlite3 "$D/$n.db" "SELECT shipped FROM ranker_models ORDER BY model_id DESC LIMIT 1")" "$ship"
    t_eq "${n}_report" "$(J 'print(d["ranker"]["shipped"])' "$D/$n.json")" "$ship"
    $NB_BIN/nb-serve --db "$D/$n.db" --model "$D/$n.nbw" --port 0 --threads 2 2>"$LOG.$n" &
    PID=$!
    PORT=$("$(dirname "$0")"/../tools/serve_port.sh "$LOG.$n" $PID 300)
    if [[ -z $PORT ]]; then t_fail "${n}_serve_start" "$(tail -5 "$LOG.$n")"; t_exit; fi
    URL=http://127.0.0.1:$PORT
    curl -s -o "$D/h.json" "$URL/health"
    t_eq "${n}_health" "$(J 'print(d["ranking"])' "$D/h.json")" "$ship"
    t_served_equals "${n}_served_equals_score_user" "$URL" "$D/$n.db" "$D/$n.nbw" "$ship" "${USERS[@]}"
}
TRAIN_TEST=$NB_TESTBIN/nb-train-test

# ---- the safeguard can ship the tuned TIFU-KNN (forced through the test build's hook): it is
# registered with its parameters, and nb-serve serves exactly nb-train --score-user's scores
forced_ship tuned "TIFU-KNN tuned"
kill $PID; wait $PID 2>/dev/null
# its scores are calibrated to probabilities (infer/rkscore.h tr_rk_calibrate: a logistic
# fit on the training rows, registered with it and reported): without the stored calibration
# (a store from before it) the same products come in the same order with the raw scores, and
# the calibrated scores are sigmoid(a + b * raw)
cp "$D/tuned.db" "$D/raw.db"
sqlite3 "$D/raw.db" "UPDATE ranker_models SET bl_cal_a = NULL, bl_cal_b = NULL"
$NB_BIN/nb-train --db "$D/tuned.db" --model "$D/tuned.nbw" --score-user "${USERS[0]}" --k 10 >"$D/cal.json"
$NB_BIN/nb-train --db "$D/raw.db" --model "$D/tuned.nbw" --score-user "${USERS[0]}" --k 10 >"$D/raw.json"
t_eq tuned_calibrated "$(/usr/bin/python3 - "$D/tuned.json" "$D/cal.json" "$D/raw.json" \
    "$(sqlite3 "$D/tuned.db" "SELECT bl_cal_a, bl_cal_b FROM ranker_models ORDER BY model_id DESC LIMIT 1")" <<'PY'
import json, math, sys
c = json.load(open(sys.argv[1]))["ranker"]["served"]["calibration"]
cal, raw = (json.load(open(f))["top_k"] for f in sys.argv[2:4])
a, b = (float(x) for x in sys.argv[4].split("|"))
print(abs(a - c["a"]) < 1e-9 * abs(a) and abs(b - c["b"]) < 1e-9 * abs(b), b > 0,
      len(cal) == 10 and [x["product_id"] for x in cal] == [x["product_id"] for x in raw],
      all(0 < x["score"] < 1 for x in cal),
      all(abs(x["score"] - 1 / (1 + math.exp(-(a + b * y["score"])))) < 1e-6 for x, y in zip(cal, raw)))
PY
)" "True True True True True"

# ---- the trees that may ship are those without the model's input (its probability is in
# sample for the training rows), the trees with it are trained only for --ranker-ablation, and
# the selection is over the validation users and the cross-validated training users (the
# rule, checked on the run above); served end to end when they ship (forced by the hook) -----
t_eq variant_rule "$(J '
r = d["ranker"]
print(r["shipped"] in ("ranker -model", r["best_baseline_on_validation"]),
      sorted(r["variants"]), r["selection_users"] > r["validation_users"] + 100)' "$D/m.json")" \
    "True ['ranker -model'] True"
# the one-standard-error rule (rktrain.h): the trees ship when their selection R@10 is ahead
# of the best baseline's by more than the standard error of the difference and their NDCG@10
# is ahead too, else that baseline ships
t_eq one_se_rule "$(J '
r = d["ranker"]
ahead = r["val_R@10_difference"] > r["val_R@10_difference_se"] > 0 and r["selection_NDCG@10"] > r["selection_baseline_NDCG@10"]
print(r["shipped"] == ("ranker -model" if ahead else r["best_baseline_on_validation"]),
      abs(r["selection_R@10"] - r["selection_baseline_R@10"] - r["val_R@10_difference"]) < 1e-12)' "$D/m.json")" "True True"
# TIFU-KNN is tuned on the validation users and on training users at the order before their
# target (never the trees' labels); the safeguard's tuned TIFU-KNN is cross-fitted on every
# validation user (tuned at its selection target), and the report gives the in-sample figure
t_eq tifu_cross_fitted "$(J '
r, t = d["ranker"], d["tifu_tuning"]
print(t["validation_users"] == r["validation_users"] and 0 < t["training_users"] <= d["data"]["train_users"],
      r["selection_tuned_baseline_cross_fitted"], r["selection_users_cross_fitted"] == r["validation_users"],
      0 < r["selection_tuned_baseline_R@10"] <= 1, 0 < r["selection_tuned_baseline_in_sample_R@10"] <= 1)' "$D/m.json")" \
    "True True True True True"
# the trees get the count of rounds with the best cross-validated R@10 (the fewest on ties)
t_eq rounds_rule "$(J '
c = d["ranker"]["cv_R@10_by_rounds"]; n = sorted(c, key=int)
best = max(n, key=lambda k: (c[k], -int(k)))
print(len(n), int(best) == d["ranker"]["trees"], all(0 < c[k] <= 1 for k in n))' "$D/m.json")" "6 True True"

# ---- --ranker-dump (train/rkdump.h), read back by an independent reader of the documented
# layout: the training rows are the report's; each row's purchase bits agree with its own
# features (bit 0 = last1; for users of at most 64 orders the bits' count = count and the
# lowest bit = since; no bit for never-bought candidates); labels within each user's target size; the model
# column NaN in x and the model's value beside it; product and user ids from the store
t_eq ranker_dump "$(/usr/bin/python3 - "$D/dump" "$D/m.json" "$D/nb.db" <<'PY'
import json, sqlite3, sys
import numpy as np
d, rep, db = sys.argv[1:4]
out = []
con = sqlite3.connect(db)
pids = {r[0] for r in con.execute("SELECT product_id FROM products")}
uids = {r[0] for r in con.execute("SELECT user_id FROM users")}
for name in ("train", "val", "test"):
    b = open(f"{d}/{name}.nbrows", "rb").read()
    n, nf, nu = (int(v) for v in np.frombuffer(b, np.int64, 3, 8))
    o = 32 + 32 * nf
    names = [b[32 + 32 * i:64 + 32 * i].split(b"\0")[0].decode() for i in range(nf)]
    def take(dt, c):
        global o
        a = np.frombuffer(b, dt, c, o); o += a.nbytes; return a
    X = take(np.float32, n * nf).reshape(n, nf); y = take(np.float32, n); m = take(np.float32, n)
    pid = take(np.int32, n); off = take(np.int64, nu + 1); uid = take(np.int32, nu)
    nt = take(np.int32, nu); bits = take(np.uint64, n)
    c = names.index
    u = np.repeat(np.arange(nu), np.diff(off))
    nord = X[:, c("u_orders")].astype(np.int64)
    low = np.minimum(nord, 64)
    mask = np.where(low >= 64, np.uint64(2**64 - 1), (np.uint64(1) << low.astype(np.uint64)) - np.uint64(1))
    pop = np.array([bin(int(x)).count("1") for x in bits & mask])
    own = X[:, c("src_own")] == 1
    lowest = np.array([(int(x) & -int(x)).bit_length() - 1 for x in bits])
    small = own & (nord <= 64)
    out.append(all([b[:8] == b"NBRKRW1\n", o == len(b), off[0] == 0, off[-1] == n, names[0] == "share",
                    names[-1] == "tifu_rank", (X[:, c("last1")] == (bits & np.uint64(1))).all(),
                    (pop[small] == X[small, c("count")]).all(), (bits[~own] == 0).all(),
                    (lowest[small] == X[small, c("since")]).all(),
                    (np.bincount(u, y, nu) <= nt).all(), (nt > 0).all(), set(np.unique(y)) <= {0.0, 1.0},
                    np.isnan(X[:, c("model")]).all(), np.isfinite(m).all(),
                    set(pid.tolist()) <= pids, set(uid.tolist()) <= uids]))
    if name == "train":
        out.append(n == json.load(open(rep))["ranker"]["train_rows"] and small.sum() > 0)
print(*out)
PY
)" "True True True True"
# a directory that is not there is refused before training, naming it
$NB_BIN/nb-train --db "$D/nb.db" --model "$D/nd.nbw" --ranker-dump "$D/no/such" >/dev/null 2>"$D/nd.log"
t_eq ranker_dump_no_dir "$? $(grep -c "ranker-dump $D/no/such: not a writable directory" "$D/nd.log")" "2 1"
forced_ship nm "ranker -model" --ranker-prior off
t_contains nm_table "$(cat "$D/nm.out")" "the ranker without the model's input ships"
# the ranker file says whether its trees start from TIFU-KNN's score (infer/ranker.h: the
# prior's feature at bytes 12-15, -1 for none): on by default, off with --ranker-prior off
prior_col() { /usr/bin/python3 -c 'import struct,sys; print(struct.unpack_from("<i", open(sys.argv[1], "rb").read(), 12)[0])' "$1"; }
t_eq prior_default "$(prior_col "$RK")" 31
t_eq prior_off "$(prior_col "$(sqlite3 "$D/nm.db" "SELECT path FROM ranker_models ORDER BY model_id DESC LIMIT 1")")" -1
# and its scores are not the full trees' (the model's column is read as missing)
a=$($NB_BIN/nb-train --db "$D/nm.db" --model "$D/nm.nbw" --score-user "${USERS[0]}" --k 5)
sqlite3 "$D/nm.db" "UPDATE ranker_models SET shipped = 'ranker' WHERE model_id = (SELECT max(model_id) FROM models)"
b=$($NB_BIN/nb-train --db "$D/nm.db" --model "$D/nm.nbw" --score-user "${USERS[0]}" --k 5)
t_eq nomodel_column_blanked "$([[ "$a" != "$b" ]] && echo differ)" differ
kill $PID; wait $PID 2>/dev/null

# ---- a signal during the ranking stage (its rows are built, the cross-validation runs)
# stops nb-train at the next fold of the cross-validation, exit status 3, before anything is
# registered
LOUD=(); for x in "${SMALL[@]}"; do [[ $x != --quiet ]] && LOUD+=("$x"); done
cp "$D/nb.db" "$D/sig.db"
n0=$(sqlite3 "$D/sig.db" "SELECT count(*) FROM models")
$NB_BIN/nb-train --db "$D/sig.db" --model "$D/sig.nbw" "${LOUD[@]}" >/dev/null 2>"$D/sig.log" &
spid=$!
for i in $(seq 1 6000); do grep -q "training rows" "$D/sig.log" 2>/dev/null && break; sleep 0.05; done
kill -TERM $spid; wait $spid; src=$?
t_eq signal_in_ranking_stage \
    "$src $(grep -c "stopped by a signal in the ranking stage's cross-validation" "$D/sig.log") $(sqlite3 "$D/sig.db" "SELECT count(*) FROM models")" \
    "3 1 $n0"
t_exit
