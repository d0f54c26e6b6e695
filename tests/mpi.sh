#!/usr/bin/env bash
# mpi.sh -- nb-train data-parallel under mpirun (train/dist.h), on a small nb-synth store:
#   - 1 rank under mpirun gives the plain run's weight file, checkpoint and store rows byte
#     for byte;
#   - 2 ranks give the plain run's model within the stated tolerance (worst
#     |a-b| / (|a|+|b|+1e-3) over every parameter <= 1e-3; measured 1.2e-4, max |a-b| 3e-6,
#     docs/SCALING.md), with dropout 0 (each rank draws its own dropout masks);
#   - --stop-after 1 then --resume with 2 ranks (dropout 0.1) gives the uninterrupted 2-rank
#     bytes, and a
#     2-rank checkpoint is refused by a 1-process --resume;
#   - a rank killed with SIGKILL, or a rank failing with an error, ends the job with an error
#     and a message within 30 s (no hang).
# Skipped when mpirun is absent (a failure under CI=true: make test installs OpenMPI) or when
# nb-train was built with MPI=0.
source "$(dirname "$0")/lib.sh"
TRAIN=$NB_BIN/nb-train
TRAIN_TEST=$NB_TESTBIN/nb-train-test   # with --stop-after (test hooks, see tests/train.sh)
if ! command -v mpirun >/dev/null; then
    t_skip mpi "mpirun not found (make deps installs openmpi-bin and libopenmpi-dev)"; t_exit
fi
if ! ldd "$TRAIN" 2>/dev/null | grep -q libmpi; then
    echo "skip mpi: $TRAIN was built without MPI (make MPI=0, or OpenMPI missing at build time)"
    t_exit
fi
# We run as root in CI; Open MPI refuses root without these. ASan builds: Open MPI's own
# allocations are still live at exit, which LeakSanitizer would report.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
MPIRUN=(mpirun --oversubscribe --allow-run-as-root)
PY=/usr/bin/python3
TOL=1e-3
# dropout 0: the N-rank run draws other masks (dist.h); repeat off: trained epochs beat the
# start on this data, so the shipped model is a trained one
RUN=(--emb 8 --cnn-out 16 --kernel 3 --gru-hidden 32 --gru-layers 1 --head 32 --batch 16
     --threads 1 --candidates 500 --lr 0.005 --epochs 3 --patience 5 --dropout 0 --repeat off
     --quiet)

if ! "$NB_BIN/nb-synth" --users 500 --seed 3 --out "$T_TMP/synth" 2>/dev/null ||
   ! "$NB_BIN/nb-import" --csv "$T_TMP/synth" --db "$T_TMP/base.db" >/dev/null 2>&1; then
    t_fail mpi_data "nb-synth/nb-import failed"; t_exit
fi
# train NAME NP [nb-train flags...] -- trains into $T_TMP/NAME/{nb.db,m.nbw} with NP ranks
# under mpirun (NP 0: a plain process); returns the exit status. PROG: the program (default
# $TRAIN).
train() {
    local n=$1 np=$2; shift 2
    local pre=()
    [[ $np -gt 0 ]] && pre=("${MPIRUN[@]}" -np "$np")
    mkdir -p "$T_TMP/$n"
    cp "$T_TMP/base.db" "$T_TMP/$n/nb.db"
    "${pre[@]}" "${PROG:-$TRAIN}" --db "$T_TMP/$n/nb.db" --model "$T_TMP/$n/m.nbw" "${RUN[@]}" \
        --report "$T_TMP/$n/r.json" "$@" >"$T_TMP/$n/out" 2>"$T_TMP/$n/err"
}
# rows NAME -- the store rows nb-train wrote (models.path differs between runs: left out)
rows() {
    sqlite3 "$T_TMP/$1/nb.db" "SELECT checksum, hyper_params FROM models;
        SELECT * FROM candidates ORDER BY 1, 2; SELECT * FROM product_stats ORDER BY 1, 2" | md5sum
}

train plain 0 || { t_fail mpi_plain_run "$(tail -3 "$T_TMP/plain/err")"; t_exit; }

# ---- 1 rank: byte-identical ---------------------------------------------------------------
if train one 1; then
    t_ok mpi_1rank_runs
    t_check mpi_1rank_weights_identical cmp "$T_TMP/plain/m.nbw" "$T_TMP/one/m.nbw"
    t_eq mpi_1rank_store_rows_identical "$(rows one)" "$(rows plain)"
else
    t_fail mpi_1rank_runs "$(tail -3 "$T_TMP/one/err")"
fi
# the same with the defaults' dropout and repeat term (each rank's own masks: dist.h)
if train plain_d 0 --dropout 0.1 --repeat on && train one_d 1 --dropout 0.1 --repeat on; then
    t_check mpi_1rank_dropout_weights_identical cmp "$T_TMP/plain_d/m.nbw" "$T_TMP/one_d/m.nbw"
else
    t_fail mpi_1rank_dropout_weights_identical "$(tail -3 "$T_TMP/one_d/err")"
fi

# ---- 2 ranks: the same model up to summation order ----------------------------------------
if train two 2; then
    t_ok mpi_2rank_runs
    cmp_out=$($PY tests/nbw_compare.py "$T_TMP/plain/m.nbw" "$T_TMP/two/m.nbw" $TOL 2>&1)
    rc=$?
    echo "$cmp_out" | tail -1
    if [[ $rc -eq 0 ]]; then t_ok mpi_2rank_within_tolerance
    else t_fail mpi_2rank_within_tolerance "tolerance $TOL: $(echo "$cmp_out" | tail -3)"; fi
    if [[ "$cmp_out" == *"identical 1"* ]]; then
        t_fail mpi_2rank_really_distributed "bit-identical to the plain run: was the batch split?"
    else t_ok mpi_2rank_really_distributed; fi
    py=$($PY - "$T_TMP/plain/r.json" "$T_TMP/two/r.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
ea, eb = a["epochs"], b["epochs"]
same_ep = len(ea) == len(eb) and a["best_epoch"] == b["best_epoch"] > 0
d = max(abs(x[k] - y[k]) for x, y in zip(ea, eb) for k in ("train_loss", "val_loss", "val_R@10"))
dm = max(abs(a["model"][k] - b["model"][k]) for k in ("R@10", "NDCG@10", "P@10"))
print("mpi_2rank_same_best_epoch", same_ep, a["best_epoch"], b["best_epoch"])
print("mpi_2rank_epoch_figures_close", d < 1e-3, d)
print("mpi_2rank_test_metrics_close", dm < 1e-3, dm)
PY
)
    while read -r name ok rest; do
        if [[ $ok == True ]]; then t_ok "$name"; else t_fail "$name" "$rest"; fi
    done <<<"$py"
    t_eq mpi_2rank_one_models_row "$(sqlite3 "$T_TMP/two/nb.db" 'SELECT count(*) FROM models')" 1
    t_eq mpi_2rank_one_table "$(grep -c 'checksum' "$T_TMP/two/out")" 1
else
    t_fail mpi_2rank_runs "$(tail -3 "$T_TMP/two/err")"
fi

# ---- resume with the same N (with dropout: each rank's masks come back from the checkpoint) --
train twod 2 --dropout 0.1 || t_fail mpi_2rank_dropout_runs "$(tail -3 "$T_TMP/twod/err")"
PROG=$TRAIN_TEST train res 2 --dropout 0.1 --stop-after 1; rc=$?
t_eq mpi_stop_after_exit_3 $rc 3
# a 2-rank checkpoint is refused by one process (another summation order, other masks)
out=$("$TRAIN" --db "$T_TMP/res/nb.db" --model "$T_TMP/res/m.nbw" "${RUN[@]}" --dropout 0.1 \
      --resume 2>&1)
rc=$?
if [[ $rc -ne 0 && $rc -ne 3 && ! -e "$T_TMP/res/m.nbw" ]]; then
    t_contains mpi_resume_other_n_refused "$out" "--resume"
else t_fail mpi_resume_other_n_refused "rc=$rc: ${out:0:200}"; fi
"${MPIRUN[@]}" -np 2 "$TRAIN_TEST" --db "$T_TMP/res/nb.db" --model "$T_TMP/res/m.nbw" "${RUN[@]}" \
    --dropout 0.1 --resume >/dev/null 2>"$T_TMP/res/err2"
t_eq mpi_resume_exit_0 $? 0
t_check mpi_resume_identical cmp "$T_TMP/twod/m.nbw" "$T_TMP/res/m.nbw"

# ---- failures end the job, no hang ------------------------------------------------------------
# kill -9 rank 1 once training has started: mpirun aborts the job
mkdir -p "$T_TMP/kill"; cp "$T_TMP/base.db" "$T_TMP/kill/nb.db"
LONG=()
for a in "${RUN[@]}"; do [[ $a == --quiet ]] || LONG+=("$a"); done
"${MPIRUN[@]}" -np 2 "$TRAIN" --db "$T_TMP/kill/nb.db" --model "$T_TMP/kill/m.nbw" "${LONG[@]}" \
    --epochs 200 --patience 200 >/dev/null 2>"$T_TMP/kill/err" &
mp=$!
for _ in $(seq 300); do grep -q "batches" "$T_TMP/kill/err" 2>/dev/null && break; sleep 0.1; done
r1=""
for p in $(pgrep -P $mp); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && r1=$p
done
if [[ -z $r1 ]]; then
    t_fail mpi_kill_rank "rank 1's pid not found"; kill $mp 2>/dev/null; wait $mp
else
    t0=$SECONDS
    kill -9 "$r1"
    for _ in $(seq 300); do kill -0 $mp 2>/dev/null || break; sleep 0.1; done
    if kill -0 $mp 2>/dev/null; then
        t_fail mpi_kill_rank_ends_job "mpirun still running 30 s after rank 1 was killed"
        kill -9 $mp 2>/dev/null
    else
        wait $mp; rc=$?
        echo "killed rank 1: mpirun ended with status $rc after $((SECONDS - t0)) s"
        if [[ $rc -ne 0 ]]; then t_ok mpi_kill_rank_ends_job
        else t_fail mpi_kill_rank_ends_job "status 0"; fi
        t_contains mpi_kill_rank_message "$(cat "$T_TMP/kill/err")" "rank 1"
    fi
fi
# rank 1 fails (its --db does not exist) while rank 0 waits for it: MPI_Abort with its message
mkdir -p "$T_TMP/err"; cp "$T_TMP/base.db" "$T_TMP/err/nb.db"
t0=$SECONDS
out=$(timeout 60 "${MPIRUN[@]}" -np 1 "$TRAIN" --db "$T_TMP/err/nb.db" --model "$T_TMP/err/m.nbw" \
    "${RUN[@]}" : -np 1 "$TRAIN" --db "$T_TMP/err/missing.db" --model "$T_TMP/err/m.nbw" \
    "${RUN[@]}" 2>&1)
rc=$?
echo "rank 1 failing: mpirun ended with status $rc after $((SECONDS - t0)) s"
if [[ $rc -ne 0 && $rc -ne 124 && $((SECONDS - t0)) -le 30 ]]; then t_ok mpi_rank_error_ends_job
else t_fail mpi_rank_error_ends_job "status $rc after $((SECONDS - t0)) s"; fi
t_contains mpi_rank_error_message "$out" "rank 1 of 2:"
[[ -e "$T_TMP/err/m.nbw" ]] && t_fail mpi_rank_error_no_model "a weight file was written" \
    || t_ok mpi_rank_error_no_model
t_exit
