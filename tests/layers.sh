#!/usr/bin/env bash
# layers.sh -- the layering rules, checked on the sources (the Makefile's per-folder include
# paths enforce them at compile time; this names the offending file and line):
#   - nothing under server/ or infer/ includes a header that lives in train/
#   - nothing under infer/ includes a header of server/; storage/ and model/ include
#     nothing of infer/, train/ or server/
#   - no .c file outside storage/ calls sqlite3_* (tests/ and bench/ aside)
source "$(dirname "$0")/lib.sh"

# headers of a folder, as an alternation for grep -E: a|b|c
hdrs() { (cd "$1" && ls *.h 2>/dev/null) | sed 's/\./\\./g' | paste -sd'|'; }

# includes_none NAME "FROM_DIRS" TO_DIR -- no file of FROM_DIRS includes a header of TO_DIR
includes_none() {
    local name=$1 from=$2 to=$3 pat hits
    pat=$(hdrs "$to")
    [[ -n "$pat" ]] || { t_ok "$name"; return; }
    # shellcheck disable=SC2086
    hits=$(grep -nE "#[[:space:]]*include[[:space:]]*\"($pat)\"" $(for d in $from; do ls "$d"/*.[ch]; done) 2>/dev/null)
    if [[ -z "$hits" ]]; then t_ok "$name"; else t_fail "$name" "$(echo "$hits" | head -5 | tr '\n' ';')"; fi
}

includes_none layers_server_not_train "server" train
includes_none layers_infer_not_train "infer" train
includes_none layers_infer_not_server "infer" server
includes_none layers_storage_not_above "storage" infer
includes_none layers_storage_not_train "storage" train
includes_none layers_storage_not_server "storage" server
includes_none layers_model_not_storage "model" storage
includes_none layers_model_not_infer "model" infer

hits=$(find . -name '*.c' -not -path './build*' -not -path './.git/*' |
       grep -vE '^\./(storage|tests|bench)/' | xargs grep -nE '\bsqlite3_[a-z0-9_]+[[:space:]]*\(' 2>/dev/null)
if [[ -z "$hits" ]]; then t_ok layers_sql_only_in_storage
else t_fail layers_sql_only_in_storage "$(echo "$hits" | head -5 | tr '\n' ';')"; fi

# the check itself must see a violation: a copy of the rule on a planted file
mkdir -p "$T_TMP/server"
printf '#include "loop.h"\nint f(void) { return sqlite3_close(0); }\n' > "$T_TMP/server/x.c"
pat=$(hdrs train)
if grep -qE "#[[:space:]]*include[[:space:]]*\"($pat)\"" "$T_TMP/server/x.c" &&
   grep -qE '\bsqlite3_[a-z0-9_]+[[:space:]]*\(' "$T_TMP/server/x.c"; then t_ok layers_check_sees_violation
else t_fail layers_check_sees_violation "the patterns miss a planted violation"; fi
t_exit
