#!/usr/bin/env bash
# variants.sh -- issue 11's model options end to end: --encoder attention, --order-info on,
# --sequence transformer and all three together each train one epoch on a small nb-synth
# store, write a version-2 weight file that records them (and the report's hyper-parameters
# name them), and nb-serve, given only the store and the weight file, answers every user
# with exactly the products and scores of `nb-train --score-user`. The transformer with
# default flags trains to a finite, falling loss on real data (dunnhumby-carbo; skipped when
# ../shared/data is absent, a failure under CI=true). Then a NaN forced into
# the transformer's training (the test build's NB_TEST_NAN_BATCH) stops the run with exit 4
# and a message, and writes no weight file.
set -uo pipefail
source tests/lib.sh
for p in nb-synth nb-import nb-train nb-serve; do
    if [[ ! -x $NB_BIN/$p ]]; then t_skip variants "$NB_BIN/$p not built"; t_exit; fi
done
D=$T_TMP
J() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $1" "${@:2}"; }
SMALL=(--epochs 1 --emb 8 --cnn-out 16 --gru-hidden 16 --gru-layers 1 --head 16 --heads 2
       --candidates 100 --threads 1 --ranker off --quiet)

if ! $NB_BIN/nb-synth --users 300 --seed 7 --out "$D/csv" >"$D/synth.log" 2>&1 ||
   ! $NB_BIN/nb-import --csv "$D/csv" --db "$D/nb.db" --quiet >"$D/import.log" 2>&1; then
    t_fail store "$(tail -3 "$D/synth.log" "$D/import.log")"; t_exit
fi
mapfile -t USERS < <(sqlite3 "$D/nb.db" "SELECT DISTINCT user_id FROM orders JOIN order_items
  USING(order_id) ORDER BY user_id LIMIT 4")
trap 'kill $PID 2>/dev/null; rm -rf "$T_TMP"' EXIT
PID=

# variant NAME FLAGS...: trains, checks the file and the report, serves, compares.
variant() {
    local name=$1; shift
    local m=$D/$name.nbw log=$D/$name.serve.log
    if ! $NB_BIN/nb-train --db "$D/nb.db" --model "$m" --report "$D/$name.json" "${SMALL[@]}" \
            "$@" >/dev/null 2>"$D/$name.train.log"; then
        t_fail "${name}_trains" "$(tail -3 "$D/$name.train.log")"; return
    fi
    t_ok "${name}_trains"
    t_eq "${name}_file_version_2" "$(od -An -tu4 -j8 -N4 "$m" | tr -d ' ')" 2
    t_eq "${name}_report_names_it" "$(J 'h=d["hyper_params"]; print(h["encoder"], h["order_info"], h["sequence"])' "$D/$name.json")" "$EXPECT"
    $NB_BIN/nb-serve --db "$D/nb.db" --model "$m" --port 0 --threads 1 2>"$log" &
    PID=$!
    local port
    port=$("$(dirname "$0")"/../tools/serve_port.sh "$log" $PID 300)
    if [[ -z $port ]]; then t_fail "${name}_serves" "$(tail -3 "$log")"; return; fi
    t_served_equals "${name}_served_equals_score_user" "http://127.0.0.1:$port" "$D/nb.db" "$m" "" \
        "${USERS[@]}"
    kill $PID; wait $PID 2>/dev/null
}
EXPECT="attention off gru" variant attention --encoder attention
EXPECT="cnn on gru" variant order_info --order-info on
EXPECT="cnn off transformer" variant transformer --sequence transformer
EXPECT="attention on transformer" variant all_three --encoder attention --order-info on \
    --sequence transformer --gru-layers 2
t_eq transformer_defaults "$(J 'h=d["hyper_params"]; print(h["clip"], h["warmup"])' "$D/transformer.json")" "1 200"

# ---- real data: the transformer with default flags trains to a finite, falling loss on
# dunnhumby-carbo (the quickest folder; bench/transformer_real.sh runs every folder) ---------
RD=$NB_DATA/dunnhumby-carbo
if [[ -f $RD/orders.csv ]]; then
    if $NB_BIN/nb-train --csv "$RD" --db "$D/carbo.db" --model "$D/carbo.nbw" --report \
            "$D/carbo.json" --sequence transformer --epochs 2 --threads 1 --ranker off --quiet \
            >/dev/null 2>"$D/carbo.err"; then
        t_eq transformer_real_finite_falling "$(J 'import math; l=[e["train_loss"] for e in d["epochs"]]
print(len(l) == 2 and all(math.isfinite(x) for x in l) and l[1] < l[0], l)' "$D/carbo.json" | cut -d' ' -f1)" True
    else
        t_fail transformer_real_finite_falling "$(tail -2 "$D/carbo.err")"
    fi
else
    t_skip transformer_real_finite_falling "$RD absent"
fi

# ---- a forced NaN stops the transformer's run cleanly ----------------------------------------
if [[ -x $NB_TESTBIN/nb-train-test ]]; then
    out=$(NB_TEST_NAN_BATCH=3 "$NB_TESTBIN/nb-train-test" --db "$D/nb.db" --model "$D/nan.nbw" \
          "${SMALL[@]}" --sequence transformer 2>&1); rc=$?
    if [[ $rc -eq 4 && "$out" == *"loss is NaN"* && ! -e $D/nan.nbw ]]; then
        t_ok transformer_nan_stops_run
    else t_fail transformer_nan_stops_run "rc=$rc ${out:0:200}"; fi
else
    t_fail transformer_nan_stops_run "$NB_TESTBIN/nb-train-test not built"
fi
t_exit
