#!/usr/bin/env bash
# storage.sh -- how fast the store is built and read, at the full Instacart scale by default:
# nb-synth data -> nb-import (wall, CPU, peak RSS via /usr/bin/time -v, phase timings) ->
# nb-storebench (st_history_load time and peak RSS, st_userq_load latency per user).
#   USERS=206209 bash bench/storage.sh        (USERS=20000 for a quick run)
# The data and the store go to a temporary directory under /tmp, removed at the end.
# The machine's load average is printed because other jobs change wall times a lot;
# CPU times (user + sys) are the steadier figure.
set -euo pipefail
cd "$(dirname "$0")/.."
NB_BIN=${NB_BIN:-bin}
USERS=${USERS:-206209}
dir=$(mktemp -d "${TMPDIR:-/tmp}/nbbench-storage.XXXXXX")
trap 'rm -rf "$dir"' EXIT

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$NB_BIN/nb-synth" --users "$USERS" --seed 1 --out "$dir/csv" 2>&1 | head -n 1
du -sh "$dir/csv" | sed 's/^/csv size: /'

/usr/bin/time -v "$NB_BIN/nb-import" --quiet --csv "$dir/csv" --db "$dir/nb.db" >"$dir/import.out" 2>"$dir/import.time"
cat "$dir/import.out"
grep -E 'Elapsed|Maximum resident|User time|System time' "$dir/import.time" | sed 's/^\s*/  nb-import /'
ls -l "$dir/nb.db" | awk '{printf "store size: %.0f MiB\n", $5 / 1048576}'

/usr/bin/time -v "$NB_BIN/nb-storebench" --db "$dir/nb.db" --users 2000 >"$dir/read.out" 2>"$dir/read.time"
cat "$dir/read.out"
grep -E 'Elapsed|Maximum resident|User time|System time' "$dir/read.time" | sed 's/^\s*/  nb-storebench /'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
