#!/usr/bin/env bash
# retrain.sh -- a retraining never leaves nothing servable, and a running server never mixes
# two models (issue 15 items 1 and 2; train/publish.h). On one small synthetic store:
#   A is trained and served; B is trained while A's server runs (A keeps answering exactly
#   as before: its rows are kept); a training killed after writing its files but before
#   registering, and one that finds the store's write lock held, leave --model naming B and
#   nothing behind; one killed after registering C (A retired) leaves --model naming B,
#   servable, while A's server answers 503 model_retired -- never a response from C's rows;
#   a last training D deletes the retired and orphaned files. Kill points come from the test
#   build's NB_TEST_KILL_AT (build/tests/nb-train-test).
source "$(dirname "$0")/lib.sh"
TRAIN_TEST=$NB_TESTBIN/nb-train-test
for p in $NB_BIN/nb-synth $NB_BIN/nb-import $NB_BIN/nb-train $NB_BIN/nb-serve $TRAIN_TEST; do
    [[ -x $p ]] || { t_fail build "$p not built"; t_exit; }
done
D=$T_TMP
J() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $1" "${@:2}"; }
SMALL=(--epochs 1 --emb 8 --cnn-out 16 --gru-hidden 16 --gru-layers 1 --head 16 --candidates 300
    --threads 1 --quiet --db "$D/nb.db" --model "$D/m.nbw")
$NB_BIN/nb-synth --users 200 --seed 11 --out "$D/csv" >/dev/null 2>&1 &&
    $NB_BIN/nb-import --csv "$D/csv" --db "$D/nb.db" --quiet >/dev/null 2>&1 ||
    { t_fail setup "synth or import failed"; t_exit; }
sum() { sha256sum "$1" | cut -c1-16; }
rows() { sqlite3 "$D/nb.db" "SELECT group_concat(model_id || ':' || checksum, ' ') FROM
    (SELECT * FROM models ORDER BY model_id)"; }
# files beside the model other than the store, csv and checkpoint, sorted
files() { (cd "$D" && ls m.nbw* | grep -v ckpt | sort | tr '\n' ' '); }

$NB_BIN/nb-train "${SMALL[@]}" --seed 1 >/dev/null 2>&1 || { t_fail train_a "exit $?"; t_exit; }
A_SUM=$(sum "$D/m.nbw")
A=$(rows)

# ---- A served ------------------------------------------------------------------------------
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; rm -rf "$T_TMP"' EXIT
serve() { # serve MODEL LOG -> $PORT (empty when it did not start)
    $NB_BIN/nb-serve --db "$D/nb.db" --model "$1" --port 0 --threads 1 >/dev/null 2>"$2" &
    PIDS+=($!)
    PORT=$("$(dirname "$0")"/../tools/serve_port.sh "$2" $! 300)
}
serve "$D/m.nbw" "$D/a.log"
[[ -n $PORT ]] || { t_fail serve_a "$(tail -3 "$D/a.log")"; t_exit; }
mapfile -t USERS < <(sqlite3 "$D/nb.db" "SELECT user_id FROM candidates ORDER BY user_id LIMIT 40")
# answers PORT -> "user status body-digest" per user, one line each
answers() {
    for u in "${USERS[@]}"; do
        st=$(curl -s -o "$D/r.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
            --data-binary "{\"user_id\": $u, \"k\": 20}" "http://127.0.0.1:$1/recommend")
        echo "$u $st $(sum "$D/r.json")"
    done
}
answers "$PORT" >"$D/a0.txt"
t_eq a_all_200 "$(awk '$2 != 200' "$D/a0.txt" | wc -l)" 0

# ---- B trained while A is served: A's answers do not change ---------------------------------
$NB_BIN/nb-train "${SMALL[@]}" --seed 2 >/dev/null 2>&1 || { t_fail train_b "exit $?"; t_exit; }
B_SUM=$(sum "$D/m.nbw")
B=$(rows)
t_eq b_registered_beside_a "$(wc -w <<<"$B") $([[ $B == "$A "* ]] && echo kept)" "2 kept"
[[ $A_SUM != "$B_SUM" ]] && t_ok b_switched_model || t_fail b_switched_model "m.nbw still A"
answers "$PORT" >"$D/a1.txt"
t_eq a_unchanged_after_b "$(diff "$D/a0.txt" "$D/a1.txt" | grep -c '^>')" 0
B_FILES=$(files)

# ---- killed after writing its files, before registering -------------------------------------
# (in a subshell that reports the kill to /dev/null, not to the test's output)
killed() { (NB_TEST_KILL_AT=$1 $TRAIN_TEST "${SMALL[@]}" --seed "$2" >/dev/null 2>&1; echo $?) 2>/dev/null; }
t_eq killed_saved_exit "$(killed saved 6)" 137
t_eq killed_saved_model "$(sum "$D/m.nbw") $(rows)" "$B_SUM $B"
K_FILES=$(files)
# two new files (weights and trees of one checksum) are the killed run's orphans
NEW=$(comm -13 <(tr ' ' '\n' <<<"$B_FILES" | grep . | sort) <(tr ' ' '\n' <<<"$K_FILES" | grep . | sort))
t_eq killed_saved_orphans "$(wc -l <<<"$NEW") $(cut -c1-14 <<<"$NEW" | sort -u | wc -l)" "2 1"

# ---- the store's write lock held by another process for longer than the busy timeout -------
/usr/bin/python3 - "$D/nb.db" "$D/locked" "$D/done" <<'PYEOF' &
import sqlite3, sys, time, pathlib
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
pathlib.Path(sys.argv[2]).touch()
for _ in range(1200):  # until the training has given up (at most 120 s)
    if pathlib.Path(sys.argv[3]).exists(): break
    time.sleep(0.1)
c.execute("ROLLBACK")
PYEOF
LOCKER=$!
for _ in $(seq 100); do [[ -e $D/locked ]] && break; sleep 0.1; done
$NB_BIN/nb-train "${SMALL[@]}" --seed 5 >/dev/null 2>"$D/locked.err"
rc=$?
touch "$D/done"
wait $LOCKER
t_eq locked_exit "$rc $(grep -c 'database is locked' "$D/locked.err")" "1 1"
t_eq locked_model "$(sum "$D/m.nbw") $(rows)" "$B_SUM $B"
t_eq locked_left_nothing "$(files)" "$K_FILES"

# ---- killed after registering C (A retired), before m.nbw switched --------------------------
t_eq killed_registered_exit "$(killed registered 3)" 137
C=$(rows)
t_eq killed_registered_rows "$(wc -w <<<"$C") $([[ $C == "${B#* }"* ]] && echo b_kept)" "2 b_kept"
t_eq killed_registered_model "$(sum "$D/m.nbw")" "$B_SUM"
A_PORT=$PORT
serve "$D/m.nbw" "$D/b.log"
[[ -n $PORT ]] && t_ok b_servable_after_kill || t_fail b_servable_after_kill "$(tail -3 "$D/b.log")"
C_FILE=$(sqlite3 "$D/nb.db" "SELECT path FROM models ORDER BY model_id DESC LIMIT 1")
serve "$C_FILE" "$D/c.log"
[[ -n $PORT ]] && t_ok c_servable_by_name || t_fail c_servable_by_name "$(tail -3 "$D/c.log")"
# A's server: every answer is A's own (unchanged) or a 503 naming the retirement
PORT=$A_PORT
answers "$PORT" >"$D/a2.txt"
mixed=$(join "$D/a0.txt" "$D/a2.txt" | awk '$4 == 200 && $5 != $3' | wc -l)
t_eq a_never_mixed "$mixed $(awk '$2 == 503' "$D/a2.txt" | wc -l)" "0 ${#USERS[@]}"
curl -s -X POST -H 'Content-Type: application/json' --data-binary "{\"user_id\": ${USERS[0]}}" "http://127.0.0.1:$PORT/recommend" >"$D/r.json"
t_eq a_503_says_retired "$(J 'print(d["error"]["code"])' "$D/r.json" 2>&1)" model_retired
t_eq a_health_503 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" 503
t_contains a_retirement_logged "$(cat "$D/a.log")" "is gone in the store"

# ---- D: a normal training deletes what no registered model names ----------------------------
$NB_BIN/nb-train "${SMALL[@]}" --seed 4 --keep-models 1 >/dev/null 2>&1 || { t_fail train_d "exit $?"; t_exit; }
DR=$(rows)
t_eq d_only_one_kept "$(wc -w <<<"$DR")" 1
last_c=$(awk '{print $NF}' <<<"$C" | cut -d: -f1)
t_eq d_id_never_reused "$(( ${DR%%:*} > last_c ))" 1
D_CRC=${DR#*:}
t_eq d_files "$(files)" "m.nbw m.nbw.$D_CRC $(cd "$D" && ls "m.nbw.$D_CRC".*.xgb) "
t_eq d_model_is_link "$(stat -c %i "$D/m.nbw")" "$(stat -c %i "$D/m.nbw.$D_CRC")"
t_exit
