#!/usr/bin/env bash
# metrics_sklearn.sh -- train/metrics.c (through nb-metrics) against scikit-learn's f1_score
# (micro, macro, samples) and numpy @K metrics on random data, to 1e-6.
source tests/lib.sh
PY=/usr/bin/python3
if ! $PY -c 'import sklearn, numpy' 2>/dev/null; then
    t_skip metrics_sklearn "python3 with sklearn and numpy not available"
    t_exit
fi
# (seed, products, users): a small dense catalogue, and a wide one where most products are
# never true nor predicted (they count 0 in F1_macro). One python run generates all cases
# (importing sklearn is the slow part).
cases=("1 30 300" "2 400 150" "3 12 500")
if ! $PY tests/metrics_sklearn.py gen "$T_TMP" $(printf '%s\n' "${cases[@]}" | tr ' ' ',') 2>"$T_TMP/gen.err"; then
    t_fail metrics_sklearn_gen "generator failed: $(head -c 300 "$T_TMP/gen.err")"
fi
for c in "${cases[@]}"; do
    set -- $c
    name="metrics_sklearn_seed$1_P$2_U$3"
    d="$T_TMP/$1"
    [[ -f $d/want.txt ]] || { t_fail "$name" "no reference values"; continue; }
    if ! "$NB_BIN/nb-metrics" --products "$2" --in "$d/in.txt" >"$d/got.txt" 2>"$d/err.txt"; then
        t_fail "$name" "nb-metrics failed: $(head -c 300 "$d/err.txt")"; continue
    fi
    if out=$($PY tests/metrics_sklearn.py compare "$d/want.txt" "$d/got.txt"); then
        t_ok "$name"
    else
        t_fail "$name" "$out"
    fi
done
# bad input is refused with the line number
printf '0 1|0|1\n0 0|0|1\n' >"$T_TMP/bad.txt"
out=$("$NB_BIN/nb-metrics" --products 5 --in "$T_TMP/bad.txt" 2>&1); rc=$?
if [[ $rc -ne 0 && $out == *":2:"*"repeats"* ]]; then t_ok metrics_bad_input; else t_fail metrics_bad_input "rc $rc: $out"; fi
t_exit
