# lib.sh -- helpers for shell tests; source it. Each check prints one line that
# tests/run.sh counts: "ok <name>", "not ok <name>: <why>" or "skip <name>: <why>".
# Paths: NB_BIN (built programs, default bin), NB_TESTBIN (test builds such as
# nb-train-test, default build/tests), NB_DATA (real data, default ../shared/data).
# The working directory is the repository root.
NB_BIN=${NB_BIN:-bin}
NB_TESTBIN=${NB_TESTBIN:-build/tests}
NB_DATA=${NB_DATA:-../shared/data}
T_FAILED=0
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/nbtest.XXXXXX")
trap 'rm -rf "$T_TMP"' EXIT

t_ok()   { echo "ok $1"; }
t_fail() { echo "not ok $1: ${2:-failed}"; T_FAILED=1; }
# t_skip NAME REASON -- a skip is a failure under CI=true (the data must be there).
t_skip() {
    if [[ "${CI:-}" == "true" ]]; then t_fail "$1" "skipped under CI=true: $2"; else echo "skip $1: $2"; fi
}
# t_check NAME CMD... -- ok if CMD succeeds.
t_check() { local n=$1; shift; if "$@" >/dev/null 2>&1; then t_ok "$n"; else t_fail "$n" "command failed: $*"; fi; }
# t_eq NAME GOT WANT
t_eq() { if [[ "$2" == "$3" ]]; then t_ok "$1"; else t_fail "$1" "got '$2', want '$3'"; fi; }
# t_contains NAME HAYSTACK NEEDLE
t_contains() { if [[ "$2" == *"$3"* ]]; then t_ok "$1"; else t_fail "$1" "'$3' not in: ${2:0:300}"; fi; }
t_exit() { exit $T_FAILED; }
