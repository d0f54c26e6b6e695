#!/usr/bin/env bash
# run.sh -- runs every test program (build/tests/test_*) and shell test (tests/*.sh but
# lib.sh and run.sh itself),
# counts their "ok" / "not ok" / "skip" lines, and ends with exactly "N passed, N failed".
# A program that exits non-zero without reporting a failure (a crash, a sanitizer report)
# counts as one more failure. Usage: tests/run.sh [TESTDIR]   (default build/tests)
set -uo pipefail
cd "$(dirname "$0")/.."
tdir=${1:-build/tests}
pass=0; fail=0; skip=0
log=$(mktemp); trap 'rm -f "$log"' EXIT

run_one() {
    local name=$1; shift
    local t0=$SECONDS
    "$@" >"$log" 2>&1
    local rc=$?
    local p f s
    p=$(grep -c '^ok ' "$log"); f=$(grep -c '^not ok ' "$log"); s=$(grep -c '^skip ' "$log")
    grep -E '^(not ok |skip )' "$log"
    if [[ $rc -ne 0 && $f -eq 0 ]]; then
        echo "not ok $name: exited with status $rc without reporting a failure; its output:"
        tail -n 30 "$log" | sed 's/^/    /'
        f=1
    elif [[ $f -ne 0 ]]; then
        grep -vE '^(ok |not ok |skip )' "$log" | tail -n 20 | sed 's/^/    /'
    fi
    printf '%-32s %3d ok %3d failed %3d skipped  (%ds)\n' "$name" "$p" "$f" "$s" $((SECONDS - t0))
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
}

for t in "$tdir"/test_*; do
    [[ -x "$t" ]] || continue
    run_one "$(basename "$t")" "$t"
done
for t in tests/*.sh; do
    case "$(basename "$t")" in lib.sh|run.sh) continue ;; esac
    run_one "$(basename "$t")" bash "$t"
done
[[ $skip -gt 0 ]] && echo "$skip skipped"
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
