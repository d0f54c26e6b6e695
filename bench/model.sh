#!/usr/bin/env bash
# bench/model.sh -- training throughput of our C model against the research log's PyTorch
# version, on this machine, in the same run.
#
# One training step = forward + backward + Adam on a batch of 32 users with realistic shapes
# (1..5 orders per user, ~10 products per order), with the full 49,688-product head and with a
# 3,000-product candidate head. C: $NB_BIN/nb-bench-model (bench/nb-bench-model.c);
# PyTorch: bench/torch_model.py (orders padded to 145 products, users to 5 orders, Conv1d over
# the padded tensor + masked max, nn.GRU, same head, BCEWithLogits pos_weight 10, Adam), both
# with the same thread count.
#
# Two measures, both as C / PyTorch ratios:
#  - steps/s (wall clock), the figure that matters on an idle machine. The machine is shared,
#    so C and PyTorch runs are interleaved over ROUNDS rounds and the best of each is kept.
#    PyTorch's odd rounds use its default OpenMP wait policy, even rounds
#    OMP_WAIT_POLICY=PASSIVE (on a loaded machine its spinning threads can lose several times
#    their speed, which would flatter C), and it keeps its best.
#  - CPU milliseconds per step (user + system, all threads), which hardly depends on the
#    load; with 1 thread it is what the wall time per step would be on an idle core. C's is
#    the CPU-time difference between a run of C_STEPS steps and a run of 1 step (both with
#    the same start-up and warm-up); PyTorch's is measured around its timed steps.
# The load average before and after is printed with the table.
# Exits non-zero if a program fails to run or prints no figure.
#
# MODEL_FLAGS (default none; e.g. "--encoder attention" or "--sequence transformer") picks
# one of the research log's other designs, passed to both programs alike.
# Environment: NB_BIN (default bin), THREADS (default 2; e.g. "1 2"), ROUNDS (default 2),
# C_STEPS (default 10), TORCH_STEPS (default 3), BATCH (default 32), PRODUCTS (default 49688),
# CAND (default 3000). Run time with the defaults: about a minute and a half on 2 idle cores,
# several times that on a loaded machine.
set -euo pipefail
cd "$(dirname "$0")/.."
NB_BIN=${NB_BIN:-bin}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
C_STEPS=${C_STEPS:-10}
TORCH_STEPS=${TORCH_STEPS:-3}
BATCH=${BATCH:-32}
PRODUCTS=${PRODUCTS:-49688}
CAND=${CAND:-3000}
read -r -a MODEL_FLAGS <<<"${MODEL_FLAGS:-}"
PY=/usr/bin/python3
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/nbbench.XXXXXX")
trap 'rm -rf "$TMPD"' EXIT

die() { echo "bench/model.sh: $*" >&2; exit 1; }
[[ -x $NB_BIN/nb-bench-model ]] || die "$NB_BIN/nb-bench-model not built (make)"
$PY -c 'import torch' 2>/dev/null || die "python3-torch missing (deploy/install-deps.sh --bench)"
(( C_STEPS >= 2 )) || die "C_STEPS must be >= 2"

NUM='[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?'
# field FILE KEY -- the number following KEY in FILE (e.g. "steps/s 1.23").
field() {
    local v
    v=$(grep -oE "$2[ =:]+$NUM" "$1" | head -n1 | grep -oE "$NUM\$") || true
    [[ -n $v ]] || die "no '$2' in the output: $(tail -c 400 "$1")"
    echo "$v"
}
# run OUT CMD... -- runs CMD with its output in OUT; prints the CPU seconds (user + system)
# it used, children included.
run() {
    local out=$1; shift
    local t
    t=$( ( "$@" >"$out" 2>&1 || echo "exit status $?" >"$out.failed"; times ) | tail -n1 )
    [[ ! -e $out.failed ]] || die "failed ($(cat "$out.failed")): $* -- $(tail -c 400 "$out")"
    # "XmY.YYYs XmY.YYYs" (children's user, system)
    awk '{ n = split($0, f, /[ ms]+/); s = 0; for (i = 1; i + 1 <= n; i += 2) s += f[i] * 60 + f[i + 1]; print s }' <<<"$t"
}
# keep ARRAYKEY VALUE MODE -- best[ARRAYKEY] = max (MODE max) or min (MODE min) so far.
declare -A best
keep() {
    local cur=${best[$1]:-}
    best[$1]=$(awk -v a="$cur" -v b="$2" -v m="$3" 'BEGIN {
        if (a == "" || (m == "max" && b + 0 > a + 0) || (m == "min" && b + 0 < a + 0)) print b; else print a }')
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

load0=$(loadavg)
echo "C model vs PyTorch${MODEL_FLAGS[*]+ (${MODEL_FLAGS[*]})}, batch $BATCH, threads $THREADS, $ROUNDS interleaved rounds"
for t in $THREADS; do
    for r in $(seq 1 "$ROUNDS"); do
        for s in 0 "$CAND"; do
            c_args=(--batch "$BATCH" --products "$PRODUCTS" --cand "$s" --threads "$t" --warmup 1
                    ${MODEL_FLAGS[@]+"${MODEL_FLAGS[@]}"})
            cpu_n=$(run "$TMPD/c" "$NB_BIN/nb-bench-model" "${c_args[@]}" --steps "$C_STEPS")
            c=$(field "$TMPD/c" steps/s)
            cpu_1=$(run "$TMPD/c1" "$NB_BIN/nb-bench-model" "${c_args[@]}" --steps 1)
            c_cpu=$(awk -v a="$cpu_n" -v b="$cpu_1" -v n="$C_STEPS" 'BEGIN { printf "%.2f", 1000 * (a - b) / (n - 1) }')
            if [[ $((r % 2)) == 1 ]]; then pol=${OMP_WAIT_POLICY:-}; else pol=PASSIVE; fi
            if [[ -n $pol ]]; then envset=(env OMP_WAIT_POLICY="$pol"); else envset=(env -u OMP_WAIT_POLICY); fi
            run "$TMPD/p" "${envset[@]}" $PY bench/torch_model.py --batch "$BATCH" \
                --products "$PRODUCTS" --cand "$s" --steps "$TORCH_STEPS" --threads "$t" \
                --warmup 1 ${MODEL_FLAGS[@]+"${MODEL_FLAGS[@]}"} >/dev/null
            p=$(field "$TMPD/p" steps/s)
            p_cpu=$(field "$TMPD/p" cpu_ms/step)
            printf '  round %d threads %d cand %-5s C %7.3f steps/s %8.1f cpu-ms/step | PyTorch %7.3f steps/s %8.1f cpu-ms/step (OMP_WAIT_POLICY=%s)\n' \
                "$r" "$t" "$s" "$c" "$c_cpu" "$p" "$p_cpu" "${pol:-default}"
            keep "c,$t,$s" "$c" max
            keep "p,$t,$s" "$p" max
            keep "cc,$t,$s" "$c_cpu" min
            keep "pc,$t,$s" "$p_cpu" min
        done
    done
done

printf '\n%-20s %7s | %9s %9s %8s | %10s %10s %8s\n' "batch $BATCH" threads "C step/s" "PT step/s" "C/PT" \
    "C cpu-ms" "PT cpu-ms" "C/PT"
for t in $THREADS; do
    for s in 0 "$CAND"; do
        if [[ $s == 0 ]]; then h="full $PRODUCTS"; else h="candidates $s"; fi
        awk -v h="$h" -v t="$t" -v c="${best[c,$t,$s]}" -v p="${best[p,$t,$s]}" \
            -v cc="${best[cc,$t,$s]}" -v pc="${best[pc,$t,$s]}" 'BEGIN {
            printf "%-20s %7d | %9.2f %9.2f %7.2fx | %10.1f %10.1f %7.2fx\n", h, t, c, p, c / p,
                cc, pc, (cc > 0 ? pc / cc : 0) }'
    done
done
if [[ " $THREADS " == *" 2 "* ]]; then
    awk -v c="${best[c,2,0]}" -v p="${best[p,2,0]}" 'BEGIN {
        r = c / p; printf "\ntarget: >= 3x PyTorch steps/s with the full head on 2 threads: %.2fx (%s)\n",
        r, (r >= 3 ? "met" : "NOT met") }'
fi
echo "(steps/s: best of $ROUNDS interleaved rounds, C $C_STEPS steps and PyTorch $TORCH_STEPS steps per run after"
echo " 1 warm-up step; cpu-ms: CPU time per step, all threads, the lowest of the rounds; C/PT is the"
echo " speed ratio in both cases. Load average before: $load0, after: $(loadavg); $(nproc) cores)"
