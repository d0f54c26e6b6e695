#!/usr/bin/env bash
# cands.sh -- candidate generation and the candidate table at full Instacart scale
# (206,209 users x 49,688 products, E=32, 3,000 candidates), on synthetic histories and an
# aisle-clustered synthetic embedding matrix (nb-candbench). Needs ~3 GB of memory and a
# few minutes of CPU. Usage: bench/cands.sh [extra nb-candbench flags]
set -euo pipefail
cd "$(dirname "$0")/.."
NB_BIN=${NB_BIN:-bin}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nbcands.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$NB_BIN/nb-candbench" --db "$tmp/cands.db" --page-size 16384 "$@"
