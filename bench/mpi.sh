#!/usr/bin/env bash
# bench/mpi.sh -- nb-train's data-parallel training (train/dist.h) against one process, in
# the same run, on the same nb-synth store and flags: training samples/s of one epoch for
#   - 1 process with 2 threads (the reference),
#   - mpirun -np 1, 1 thread,
#   - mpirun -np 2, 1 thread each,
# with the gradient bytes allreduced per step and the share of the epoch spent in
# MPI_Allreduce, and the ratio of each to the reference. The model is the default one with
# the repeat term off (full 49,688-product head), so that the step is the real one.
#   bench/mpi.sh [USERS] [EPOCHS]   (defaults 3000 users, 1 epoch; env ROUNDS, default 2:
#                                    configurations interleaved, the best round kept)
# Exits non-zero when mpirun is missing or a run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-3000} EPOCHS=${2:-1} ROUNDS=${ROUNDS:-2} BIN=${NB_BIN:-bin}
command -v mpirun >/dev/null || { echo "mpirun not found: make deps"; exit 1; }
ldd "$BIN/nb-train" | grep -q libmpi || { echo "$BIN/nb-train built without MPI"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun --oversubscribe --allow-run-as-root --bind-to none)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$BIN/nb-synth" --users "$USERS" --seed 11 --out "$tmp/csv" 2>/dev/null
"$BIN/nb-import" --csv "$tmp/csv" --db "$tmp/base.db" >/dev/null 2>&1
FLAGS=(--epochs "$EPOCHS" --repeat off --patience 100)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# run NAME THREADS [mpirun... -np N] -- one training run; prints "samples/s epoch_s samples
# bytes_per_step allreduce_calls allreduce_s" (the last three "-" for a plain process)
run() {
    local name=$1 th=$2; shift 2
    cp "$tmp/base.db" "$tmp/$name.db"
    "$@" "$BIN/nb-train" --db "$tmp/$name.db" \
        --model "$tmp/$name.nbw" --report "$tmp/$name.json" --threads "$th" "${FLAGS[@]}" \
        >/dev/null 2>"$tmp/$name.err"
    /usr/bin/python3 - "$tmp/$name.json" "$tmp/$name.err" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
ep = r["epochs"]
secs = sum(e["seconds"] for e in ep)
n = r["data"]["train_samples"] * len(ep)
log = open(sys.argv[2]).read()
m = re.search(r"(\d+) gradient bytes allreduced per step", log)
a = re.search(r"allreduce: (\d+) calls, ([\d.]+) MB, ([\d.]+)s", log)
print("%.1f %.2f %d %s %s %s" % (n / secs, secs, n, m.group(1) if m else "-",
      a.group(1) if a else "-", a.group(3) if a else "-"))
PY
}
declare -A best
for round in $(seq "$ROUNDS"); do
    for cfg in p2 r1 r2; do
        case $cfg in
            p2) line=$(run p2 2) ;;
            r1) line=$(run r1 1 "${MPIRUN[@]}" -np 1) ;;
            r2) line=$(run r2 1 "${MPIRUN[@]}" -np 2) ;;
        esac
        echo "round $round $cfg: $line"
        sps=${line%% *}
        if [[ -z "${best[$cfg]:-}" ]] || (( $(echo "$sps > ${best[$cfg]%% *}" | bc) )); then
            best[$cfg]=$line
        fi
    done
done
ref=${best[p2]%% *}
printf '\n%-34s %10s %8s %9s %14s %9s %10s %6s\n' configuration samples/s epoch_s samples \
    "bytes/step" steps allreduce_s ratio
for cfg in p2 r1 r2; do
    read -r sps secs n bytes calls ars <<<"${best[$cfg]}"
    case $cfg in
        p2) label="1 process, 2 threads" ;;
        r1) label="mpirun -np 1, 1 thread" ;;
        r2) label="mpirun -np 2, 1 thread each" ;;
    esac
    printf '%-34s %10s %8s %9s %14s %9s %10s %6.2f\n' "$label" "$sps" "$secs" "$n" "$bytes" \
        "$calls" "$ars" "$(echo "$sps / $ref" | bc -l)"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
