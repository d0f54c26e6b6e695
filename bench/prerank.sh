#!/usr/bin/env bash
# bench/prerank.sh -- what the precomputed rankings (infer/prerank.h) buy at serving time.
#   bash bench/prerank.sh            (store var/nb.db, model var/model.nbw: `make train`)
#   NB_DB=... NB_MODEL=... ROUNDS=3 REQUESTS=3000 DURATION=10 bash bench/prerank.sh
# Three copies of one store, the same weights and users, measured in the same run:
#   model  the CNN->GRU model alone, no ranking stage (the serving path before issue 10:
#          the reference, "today's throughput")
#   live   the ranking stage computed per request (user_rankings emptied)
#   ahead  the ranking stage read from user_rankings (what nb-train writes by default)
# Prints, per variant: nb-servebench's CPU ms per /recommend (one thread, no HTTP; ROUNDS
# interleaved runs, the median), then bench/serve.sh's /recommend at 64 connections (req/s,
# p50, p99, errors, CPU ms/request), each with its ratio to "model". Issue 10's targets:
# ahead's throughput >= 0.70x model's, p99 <= 25 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
NB_BIN=${NB_BIN:-bin}
DB=${NB_DB:-var/nb.db}
MODEL=${NB_MODEL:-var/model.nbw}
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-3000}
export DURATION=${DURATION:-10}
if [[ ! -f $DB || ! -f $MODEL ]]; then
    echo "bench/prerank.sh: $DB or $MODEL missing; building them with make train"
    make --no-print-directory train
fi
[[ -n $(sqlite3 "$DB" "SELECT 1 FROM sqlite_master WHERE name = 'user_rankings'") &&
   $(sqlite3 "$DB" "SELECT count(*) FROM user_rankings") -gt 0 ]] ||
    { echo "bench/prerank.sh: $DB has no precomputed rankings (train with --precompute on, the default)"; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# the copies share the weight and ranker files (the store names them by absolute path)
sqlite3 "$DB" ".backup '$TMP/ahead.db'"
cp "$TMP/ahead.db" "$TMP/live.db"
sqlite3 "$TMP/live.db" "DELETE FROM user_rankings"
cp "$TMP/live.db" "$TMP/model.db"
sqlite3 "$TMP/model.db" "DELETE FROM ranker_models"
echo "# $DB, $MODEL: $(sqlite3 "$DB" "SELECT count(*) || ' rows, ' || round(sum(length(ranking)) / 1e6, 1) || ' MB' FROM user_rankings") of precomputed rankings"
VARIANTS=(model live ahead)

echo "# nb-servebench: one thread, $REQUESTS requests, $ROUNDS rounds interleaved (median)"
declare -A CPU
for r in $(seq "$ROUNDS"); do
    for v in "${VARIANTS[@]}"; do
        ms=$($NB_BIN/nb-servebench --db "$TMP/$v.db" --model "$MODEL" --requests "$REQUESTS" 2>&1 |
             sed -n 's|.*: \([0-9.]*\) ms CPU/request.*|\1|p')
        [[ -n $ms ]] || { echo "nb-servebench failed on $v"; exit 1; }
        CPU[$v]+="$ms "
    done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
printf '%-6s %12s %8s   %s\n' variant 'CPU ms/req' ratio rounds
ref=$(median <<<"${CPU[model]}")
for v in "${VARIANTS[@]}"; do
    m=$(median <<<"${CPU[$v]}")
    printf '%-6s %12s %8s   %s\n' "$v" "$m" "$(awk -v a="$m" -v b="$ref" 'BEGIN {printf "%.2f", a / b}')" "${CPU[$v]}"
done

echo "# bench/serve.sh, /recommend at 64 connections, ${DURATION}s each (ratio: req/s over model's)"
printf '%-6s %10s %9s %9s %7s %10s %8s\n' variant 'req/s' 'p50 ms' 'p99 ms' errors 'CPU ms/req' ratio
ref=
for v in "${VARIANTS[@]}"; do
    line=$(NB_BIN=$NB_BIN NB_DB=$TMP/$v.db NB_MODEL=$MODEL MIXED=0 bash bench/serve.sh |
           awk '$1 == "recommend" && $2 == 64')
    [[ -n $line ]] || { echo "bench/serve.sh failed on $v"; exit 1; }
    read -r _ _ rps p50 p99 errs _ cpu <<<"$line"
    ref=${ref:-$rps}
    printf '%-6s %10s %9s %9s %7s %10s %8s\n' "$v" "$rps" "$p50" "$p99" "$errs" "$cpu" \
        "$(awk -v a="$rps" -v b="$ref" 'BEGIN {printf "%.2f", a / b}')"
done
