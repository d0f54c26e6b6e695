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

# t_served_equals NAME URL DB MODEL RANKING USERS... -- one check: for every user, the top 15
# that the nb-serve at URL answers equal nb-train --score-user's (product ids and scores, in
# order, not empty); with RANKING non-empty, score-user must also name that ranking. A
# mismatch prints both lists as comments.
t_served_equals() {
    local name=$1 url=$2 db=$3 model=$4 ranking=$5 same=0 u a b
    shift 5
    local pairs='[(x["product_id"], x["score"]) for x in d["top_k"]]'
    for u in "$@"; do
        curl -s -o "$T_TMP/se_r.json" -X POST -H 'Content-Type: application/json' \
            --data-binary "{\"user_id\": $u, \"k\": 15}" "$url/recommend"
        $NB_BIN/nb-train --db "$db" --model "$model" --score-user "$u" --k 15 >"$T_TMP/se_s.json"
        a=$(/usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($pairs)" "$T_TMP/se_r.json")
        b=$(/usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d.get('ranking', '') if sys.argv[2] else '', $pairs)" "$T_TMP/se_s.json" "$ranking")
        if [[ "$ranking $a" == "$b" && "$a" != "[]" ]]; then same=$((same + 1)); else
            echo "# user $u: served $ranking $a"; echo "# user $u: score-user $b"; fi
    done
    t_eq "$name" "$same" "$#"
}
