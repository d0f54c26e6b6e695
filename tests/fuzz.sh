#!/usr/bin/env bash
# fuzz.sh -- the libFuzzer harnesses (tests/fuzz/fuzz_*.c, built by make fuzz-build into
# $NB_FUZZBIN under ASan + UBSan) in the normal test run: each replays its committed corpus
# (tests/fuzz/<name>/, the crashes found so far among it as regressions), then all of them
# fuzz at once for FUZZ_TEST_SECONDS from a copy of their corpus: 60 s under CI=true (the
# issue's CI run), 15 s otherwise. Running them side by side keeps make test's wall time at
# one period, not five. A crash, a sanitizer report, a leak or a broken invariant (the
# harness aborts) fails. make fuzz runs them longer (FUZZ_SECONDS or FUZZ_RUNS).
# Skipped when NB_FUZZBIN is not set (make asan: the harnesses carry both sanitizers anyway).
source "$(dirname "$0")/lib.sh"
if [[ -z ${NB_FUZZBIN:-} ]]; then t_skip fuzz "NB_FUZZBIN not set (make test sets it)"; t_exit; fi
if [[ ${CI:-} == true ]]; then secs=${FUZZ_TEST_SECONDS:-60}; else secs=${FUZZ_TEST_SECONDS:-15}; fi
names=() pids=()
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c); name=${name#fuzz_}
    bin=$NB_FUZZBIN/fuzz_$name
    if [[ ! -x $bin ]]; then t_fail "fuzz_${name}_built" "$bin missing (make fuzz-build)"; continue; fi
    n_seeds=$(ls tests/fuzz/"$name" | wc -l)
    t_check "fuzz_${name}_has_seeds" test "$n_seeds" -gt 0
    if "$bin" -runs=0 tests/fuzz/"$name" >"$T_TMP/replay_$name.log" 2>&1; then t_ok "fuzz_${name}_replay"
    else t_fail "fuzz_${name}_replay" "$(grep -E 'ERROR|SUMMARY|Test unit' "$T_TMP/replay_$name.log" | head -3)"; fi
    mkdir -p "$T_TMP/corpus_$name"
    cp tests/fuzz/"$name"/* "$T_TMP/corpus_$name"/
    nice -n 5 "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$T_TMP/crash-$name-" "$T_TMP/corpus_$name" >"$T_TMP/$name.log" 2>&1 &
    names+=("$name") pids+=($!)
done
for i in "${!names[@]}"; do
    name=${names[$i]}
    if wait "${pids[$i]}"; then
        t_ok "fuzz_${name}_${secs}s"
        echo "# fuzz_$name: $(sed -n 's/^stat::number_of_executed_units: *//p' "$T_TMP/$name.log") executions in ${secs} s"
    else
        t_fail "fuzz_${name}_${secs}s" "$(grep -E 'ERROR|SUMMARY|Test unit|Base64' "$T_TMP/$name.log" | head -4)"
    fi
done
t_exit
