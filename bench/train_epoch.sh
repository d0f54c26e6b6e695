#!/usr/bin/env bash
# train_epoch.sh -- one training epoch of nb-train vs the research log's PyTorch model on the
# same samples of the same store, same thread count, same model (the repeat term off, full
# 49,688-product head), reported as a ratio measured in the same run.
#   bench/train_epoch.sh [USERS] [THREADS]      (defaults 4000 users, 2 threads)
# Builds its own nb-synth store under a temporary directory (env DB=... to use another
# store: nb-train writes its model and candidates into it). Target: nb-train >= 3x faster.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${1:-4000} THREADS=${2:-2} BIN=${NB_BIN:-bin}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if [[ -z "${DB:-}" ]]; then
    "$BIN/nb-synth" --users "$USERS" --seed 11 --out "$tmp/csv" 2>/dev/null
    "$BIN/nb-import" --csv "$tmp/csv" --db "$tmp/nb.db" >/dev/null 2>&1
    DB=$tmp/nb.db
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN/nb-train" --db "$DB" --model "$tmp/m.nbw" --report "$tmp/r.json" --epochs 1 --repeat off \
    --limit-users "$USERS" --threads "$THREADS" --quiet >/dev/null
c_line=$(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("%.3f %d" % (r["epochs"][0]["seconds"], r["data"]["train_samples"]))' "$tmp/r.json")
read -r c_s c_n <<<"$c_line"
t_line=$(/usr/bin/python3 bench/torch_epoch.py --db "$DB" --limit-users "$USERS" --threads "$THREADS")
echo "$t_line"
t_s=$(awk '{print $3}' <<<"$t_line"); t_n=$(awk '{print $5}' <<<"$t_line")
printf '%-10s %10s %8s %12s\n' "" "epoch_s" "samples" "samples/s"
printf '%-10s %10.2f %8d %12.1f\n' nb-train "$c_s" "$c_n" "$(echo "$c_n / $c_s" | bc -l)"
printf '%-10s %10.2f %8d %12.1f\n' pytorch "$t_s" "$t_n" "$(echo "$t_n / $t_s" | bc -l)"
[[ "$c_n" == "$t_n" ]] || { echo "sample counts differ: $c_n vs $t_n"; exit 1; }
echo "speed-up (PyTorch epoch time / nb-train epoch time): $(echo "$t_s / $c_s" | bc -l | cut -c1-5)x (target >= 3x)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
