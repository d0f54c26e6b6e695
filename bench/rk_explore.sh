#!/usr/bin/env bash
# rk_explore.sh -- what else could the ranking stage's trees get out of its rows? nb-train
# with default flags and --ranker-dump on each data set (seed 1), then bench/rk_explore.py on
# the rows it wrote: the stage's own cross-validation repeated offline (checked against
# nb-train's curve), and beside it one change at a time -- learner parameters, objectives,
# row weights, extra features, candidates -- each with its R@10 / NDCG@10 difference from the
# tuned TIFU-KNN over the same cross-validated training users. Prints one markdown table.
#   bench/rk_explore.sh [EXPERIMENT ...]     (default: all; names in bench/rk_explore.py)
# Env: SETS (default "tafeng dunnhumby-cj dunnhumby-carbo synth"), SEED (default 1),
# KEEP=DIR keeps the stores, rows and reports (a store or rows already there are reused).
# Installs python3-xgboost if missing (deploy/install-deps.sh --bench). ~1 hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${NB_BIN:-bin} DATA=${NB_DATA:-../shared/data}
SETS=${SETS:-tafeng dunnhumby-cj dunnhumby-carbo synth} SEED=${SEED:-1}
deploy/install-deps.sh --bench
if [[ -n "${KEEP:-}" ]]; then tmp=$KEEP; mkdir -p "$tmp"
else tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT; fi
source bench/sets.sh
prepare_sets "$tmp" $SETS
for s in "${sets[@]}"; do
    d=$tmp/$s-$SEED
    if [[ ! -s $d/train.nbrows || ! -s $d.json ]]; then
        mkdir -p "$d"
        "$BIN/nb-train" --db "$tmp/$s.db" --model "$d.nbw" --report "$d.json" --seed "$SEED" \
            --precompute off --ranker-dump "$d" --quiet >"$d.out" 2>"$d.log" ||
            { echo "nb-train failed on $s:" >&2; tail -n 5 "$d.log" >&2; exit 1; }
    fi
    /usr/bin/python3 bench/rk_explore.py "$s" "$d" "$d.json" "$@"
done
