#!/usr/bin/env bash
# train.sh -- nb-train end to end on a small nb-synth data set: flags refused before any
# work, loss falls and the model beats G-TopFreq, the store holds the model and its
# candidates, --score-user, --resume (after --stop-after and after SIGTERM) gives the same
# weight file bytes as an uninterrupted run, a NaN stops the run with exit 4. The two test
# hooks (--stop-after, NB_TEST_NAN_BATCH) exist only in the test build, nb-train-test;
# bin/nb-train refuses the one and ignores the other.
source "$(dirname "$0")/lib.sh"
TRAIN=$NB_BIN/nb-train
TRAIN_TEST=$NB_TESTBIN/nb-train-test
S=$T_TMP/synth DB=$T_TMP/nb.db M=$T_TMP/m.nbw R=$T_TMP/report.json
SMALL=(--emb 8 --cnn-out 16 --kernel 3 --gru-hidden 32 --gru-layers 1 --head 32 --batch 16
       --threads 1 --candidates 500 --lr 0.005 --quiet)

# ---- bad flags: refused with a message naming the flag, nothing created -----------------
check_bad() {   # NAME NEEDLE ARGS...
    local name=$1 needle=$2; shift 2
    local out rc
    out=$("$TRAIN" "$@" 2>&1); rc=$?
    if [[ $rc -eq 2 && "$out" == *"$needle"* && ! -e $T_TMP/none.db ]]; then t_ok "$name"
    else t_fail "$name" "rc=$rc out=${out:0:200}"; fi
}
check_bad refuse_kernel0 --kernel --db "$T_TMP/none.db" --model "$M" --csv x --kernel 0
check_bad refuse_negative_lr --lr --db "$T_TMP/none.db" --model "$M" --csv x --lr -1
check_bad refuse_bad_split --split --db "$T_TMP/none.db" --model "$M" --csv x --split 80/10
check_bad refuse_unknown_flag --frobnicate --db "$T_TMP/none.db" --model "$M" --frobnicate 1
check_bad refuse_missing_db --db --model "$M" --csv x
out=$("$TRAIN" --help); t_contains help_lists_defaults "$out" "--gru-hidden V"

# ---- a small end-to-end run ---------------------------------------------------------------
if ! "$NB_BIN/nb-synth" --users 500 --seed 3 --out "$S" 2>/dev/null; then
    t_fail synth "nb-synth failed"; t_exit
fi
if "$TRAIN" --csv "$S" --db "$DB" --model "$M" --report "$R" "${SMALL[@]}" --epochs 8 \
        --patience 8 >"$T_TMP/table.txt" 2>"$T_TMP/log.txt"; then
    t_ok train_runs
else
    t_fail train_runs "$(tail -3 "$T_TMP/log.txt")"; t_exit
fi
t_contains table_printed "$(cat "$T_TMP/table.txt")" "TIFU-KNN"
t_contains table_tifu_tuned "$(cat "$T_TMP/table.txt")" "TIFU-KNN tuned on"
py=$(/usr/bin/python3 - "$R" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ep = r["epochs"]
print("loss_falls", ep[-1]["train_loss"] < 0.8 * ep[0]["train_loss"], ep[0]["train_loss"], ep[-1]["train_loss"])
m, g = r["model"]["R@10"], r["baselines"]["G-TopFreq"]["R@10"]
print("beats_gtopfreq", m > g, m, g)
keys = ["F1_micro", "F1_macro", "F1_example", "P@10", "R@10", "NDCG@10", "HR@10", "P@20", "R@20", "NDCG@20", "HR@20"]
ok = all(k in o and k in o["candidates"] for o in [r["model"]] + [r["baselines"][b] for b in ("G-TopFreq", "P-TopFreq", "TIFU-KNN", "TIFU-KNN tuned")] for k in keys)
print("report_keys", ok)
t = r["tifu_tuning"]
d = r["data"]
print("tifu_tuning", t["m"] in (3, 7, 11) and t["k"] in (100, 300, 900) and t["validation_users"] == d["val_users"]
      and 0.5 * d["train_users"] < t["training_users"] <= min(d["train_users"], 2000 - d["val_users"])
      and t["tuning_users"] == t["validation_users"] + t["training_users"]
      and t["tuning_R@10"] >= t["default_tuning_R@10"] >= 0 and 0 < t["configs"] <= t["grid"], t)
# the signal check (tifu_tune.h tr_tifu_crossfit): the tuned parameters are used only when,
# tuned on one half of the tuning users, they beat the defaults on the other half
cf, P = t["cross_fit"], ("m", "r_b", "r_g", "k", "alpha")
used = [t[x] for x in P]
kept = cf["R@10"] > cf["default_R@10"]
b = r["baselines"]
print("tifu_cross_fit", cf["users"] == t["tuning_users"] and 0 < cf["R@10"] <= 1 and 0 < cf["default_R@10"] <= 1
      and cf["used"] == ("tuned" if kept else "defaults")
      and used == ([cf["tuner_choice"][x] for x in P] if kept else [3, 0.9, 0.7, 300, 0.9])
      and (kept or b["TIFU-KNN tuned"]["R@10"] == b["TIFU-KNN"]["R@10"]), cf)
c = r["calibration"]
print("calibration", c["ece_after"] <= c["ece_before"] + 1e-9, c["ece_before"], c["ece_after"])
PY
)
while read -r name ok rest; do
    if [[ $ok == True ]]; then t_ok "$name"; else t_fail "$name" "$rest"; fi
done <<<"$py"

users=$(sqlite3 "$DB" "SELECT count(*) FROM users")
t_eq one_model "$(sqlite3 "$DB" "SELECT count(*) FROM models")" 1
t_eq candidates_for_every_user "$(sqlite3 "$DB" "SELECT count(*) FROM candidates")" "$users"
t_eq model_checksum_registered "$(sqlite3 "$DB" "SELECT path GLOB '*/m.nbw.[0-9a-f]*' AND checksum = substr(path, -8) FROM models")" 1

uid=$(sqlite3 "$DB" "SELECT user_id FROM orders WHERE eval_set = 1 LIMIT 1")
js=$("$TRAIN" --db "$DB" --model "$M" --score-user "$uid" --k 7 2>&1)
ok=$(/usr/bin/python3 -c '
import json, sys
j = json.loads(sys.argv[1]); s = [e["score"] for e in j["top_k"]]
print(len(s) == 7 and s == sorted(s, reverse=True) and all(0 <= x <= 1 for x in s))' "$js" 2>&1)
t_eq score_user_json "$ok" True

# ---- resume -------------------------------------------------------------------------------
RUN=(--db "$DB" "${SMALL[@]}" --epochs 3 --patience 9 --seed 5)
"$TRAIN" "${RUN[@]}" --model "$T_TMP/a.nbw" >/dev/null 2>&1 || t_fail resume_reference "run A failed"
"$TRAIN_TEST" "${RUN[@]}" --model "$T_TMP/b.nbw" --stop-after 1 >/dev/null 2>&1
t_eq stop_after_exit_3 $? 3
# issue 15 item 8: a checkpoint's temporary file left by a killed run (dead pid) is removed by
# the next run's checkpoint; one of a live process is not
dead=$(bash -c 'echo $BASHPID')
touch "$T_TMP/b.nbw.ckpt.tmp.$dead" "$T_TMP/b.nbw.ckpt.tmp.$$"
"$TRAIN" "${RUN[@]}" --model "$T_TMP/b.nbw" --resume >/dev/null 2>&1
t_eq resume_exit_0 $? 0
t_check stale_ckpt_tmp_removed test ! -e "$T_TMP/b.nbw.ckpt.tmp.$dead"
t_check live_ckpt_tmp_kept test -e "$T_TMP/b.nbw.ckpt.tmp.$$"
rm -f "$T_TMP/b.nbw.ckpt.tmp.$$"
t_check resume_identical_weights cmp "$T_TMP/a.nbw" "$T_TMP/b.nbw"
# a real signal: SIGTERM once the first checkpoint exists
"$TRAIN" "${RUN[@]}" --model "$T_TMP/c.nbw" >/dev/null 2>"$T_TMP/c.log" &
pid=$!
for _ in $(seq 1 600); do [[ -e $T_TMP/c.nbw.ckpt ]] && break; sleep 0.05; done
kill -TERM $pid 2>/dev/null
wait $pid; rc=$?
if [[ $rc -eq 3 ]]; then
    t_ok sigterm_clean_stop
    "$TRAIN" "${RUN[@]}" --model "$T_TMP/c.nbw" --resume >/dev/null 2>&1
    t_check sigterm_resume_identical cmp "$T_TMP/a.nbw" "$T_TMP/c.nbw"
elif [[ $rc -eq 0 ]]; then
    t_skip sigterm_clean_stop "the run finished before the signal arrived"
else
    t_fail sigterm_clean_stop "exit $rc: $(tail -2 "$T_TMP/c.log")"
fi
# resuming with other training flags is refused
out=$("$TRAIN" "${RUN[@]}" --lr 0.1 --model "$T_TMP/b.nbw" --resume 2>&1); rc=$?
if [[ $rc -ne 0 && "$out" == *"other training flags"* ]]; then t_ok resume_refuses_other_flags
else t_fail resume_refuses_other_flags "rc=$rc $out"; fi

# ---- NaN ----------------------------------------------------------------------------------
out=$(NB_TEST_NAN_BATCH=2 "$TRAIN_TEST" "${RUN[@]}" --model "$T_TMP/n.nbw" 2>&1); rc=$?
if [[ $rc -eq 4 && "$out" == *NaN* && ! -e $T_TMP/n.nbw ]]; then t_ok nan_stops_run
else t_fail nan_stops_run "rc=$rc ${out:0:200}"; fi

# ---- the production binary has no test hooks -----------------------------------------------
check_bad no_stop_after_flag --stop-after --db "$T_TMP/none.db" --model "$M" --stop-after 1
out=$(NB_TEST_NAN_BATCH=1 "$TRAIN" "${RUN[@]}" --epochs 1 --model "$T_TMP/p.nbw" 2>&1); rc=$?
if [[ $rc -eq 0 && -e $T_TMP/p.nbw ]]; then t_ok no_nan_hook
else t_fail no_nan_hook "rc=$rc ${out:0:200}"; fi
t_exit
