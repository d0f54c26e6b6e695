#!/usr/bin/env bash
# bench/model.sh -- training throughput of our C model against the research log's PyTorch
# version, on this machine, in the same run.
#
# One training step = forward + backward + Adam on a batch of 32 users with realistic shapes
# (1..5 orders per user, ~10 products per order), with the full 49,688-product head and with a
# 3,000-product candidate head. C: $NB_BIN/nb-bench-model (model/nb-bench-model.c);
# PyTorch: bench/torch_model.py (orders padded to 145 products, users to 5 orders, Conv1d over
# the padded tensor + masked max, nn.GRU, same head, BCEWithLogits pos_weight 10, Adam), both
# with the same thread count. The machine is shared, so C and PyTorch runs are interleaved
# over ROUNDS rounds and the best steps/s of each is kept (the least-disturbed run); the
# ratio is C / PyTorch. PyTorch's odd rounds run with its default OpenMP wait policy, even
# rounds with OMP_WAIT_POLICY=PASSIVE (so ROUNDS >= 2 gives it both), and it keeps its best.
# Exits non-zero if a program fails to run or prints no steps/s.
#
# Environment: NB_BIN (default bin), THREADS (default 2; e.g. "1 2"), ROUNDS (default 2),
# C_STEPS (default 10), TORCH_STEPS (default 3), BATCH (default 32), PRODUCTS (default 49688),
# CAND (default 3000). Run time with the defaults: about a minute on 2 idle cores; on a
# loaded machine much longer (the load average before and after is printed with the table,
# since other processes on the same cores slow both sides, PyTorch's spinning OpenMP threads
# usually more).
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
PY=/usr/bin/python3

die() { echo "bench/model.sh: $*" >&2; exit 1; }
[[ -x $NB_BIN/nb-bench-model ]] || die "$NB_BIN/nb-bench-model not built (make)"
$PY -c 'import torch' 2>/dev/null || die "python3-torch missing (deploy/install-deps.sh --bench)"

# steps_per_s CMD... -- runs CMD, prints the number next to "steps/s" in its output.
steps_per_s() {
    local out v
    out=$("$@" 2>&1) || die "failed ($?): $* -- ${out: -400}"
    v=$(grep -oE 'steps/s[ =:]+[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?|[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)? *steps/s' <<<"$out" \
        | head -n1 | grep -oE '[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?' | head -n1) || true
    [[ -n $v ]] || die "no steps/s in the output of: $* -- ${out: -400}"
    echo "$v"
}
# max A B
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 > a + 0) ? b : a }'; }

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
load0=$(loadavg)
echo "C model vs PyTorch, batch $BATCH, threads $THREADS, $ROUNDS interleaved rounds"
declare -A best
for t in $THREADS; do
    for r in $(seq 1 "$ROUNDS"); do
        for s in 0 "$CAND"; do
            c=$(steps_per_s "$NB_BIN/nb-bench-model" --batch "$BATCH" --products "$PRODUCTS" \
                --cand "$s" --steps "$C_STEPS" --threads "$t" --warmup 1)
            # PyTorch alternates its OpenMP wait policy between rounds (default, then
            # PASSIVE) and keeps the better: on a loaded machine its spinning threads can lose
            # several times their speed, which would flatter the C side.
            if [[ $((r % 2)) == 1 ]]; then pol=${OMP_WAIT_POLICY:-}; else pol=PASSIVE; fi
            if [[ -n $pol ]]; then envset=(env OMP_WAIT_POLICY="$pol"); else envset=(env -u OMP_WAIT_POLICY); fi
            p=$(steps_per_s "${envset[@]}" $PY bench/torch_model.py --batch "$BATCH" --products "$PRODUCTS" \
                --cand "$s" --steps "$TORCH_STEPS" --threads "$t" --warmup 1)
            echo "  round $r threads $t cand $s: C $c steps/s, PyTorch $p steps/s (OMP_WAIT_POLICY=${pol:-default})"
            best[c,$t,$s]=$(max "${best[c,$t,$s]:-}" "$c")
            best[p,$t,$s]=$(max "${best[p,$t,$s]:-}" "$p")
        done
    done
done

printf '\n%-22s %7s %12s %14s %9s\n' "head (batch $BATCH)" threads "C steps/s" "torch steps/s" "C/torch"
for t in $THREADS; do
    for s in 0 "$CAND"; do
        if [[ $s == 0 ]]; then h="full $PRODUCTS"; else h="candidates $s"; fi
        awk -v h="$h" -v t="$t" -v c="${best[c,$t,$s]}" -v p="${best[p,$t,$s]}" \
            'BEGIN { printf "%-22s %7d %12.2f %14.2f %8.2fx\n", h, t, c, p, c / p }'
    done
done
if [[ " $THREADS " == *" 2 "* ]]; then
    awk -v c="${best[c,2,0]}" -v p="${best[p,2,0]}" 'BEGIN {
        r = c / p; printf "\ntarget: >= 3x PyTorch with the full head on 2 threads: %.2fx (%s)\n",
        r, (r >= 3 ? "met" : "NOT met") }'
fi
echo "(best of $ROUNDS interleaved rounds; per run C $C_STEPS steps, PyTorch $TORCH_STEPS steps, after 1 warm-up step;"
echo " load average before: $load0, after: $(loadavg); $(nproc) cores)"
