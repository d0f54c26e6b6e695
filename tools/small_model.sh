#!/usr/bin/env bash
# small_model.sh DIR [USERS] -- a small synthetic store DIR/nb.db and model DIR/m.nbw for
# tests and scripts that need a running nb-serve but not a good model (nb-synth, nb-import,
# nb-train with small dimensions and one epoch: a few seconds). Programs from NB_BIN
# (default bin). Exits non-zero with the failing step's log tail on stderr.
set -uo pipefail
dir=$1 users=${2:-300} bin=${NB_BIN:-bin}
mkdir -p "$dir"
step() {  # NAME CMD...
    local name=$1; shift
    "$@" >"$dir/$name.log" 2>&1 || { echo "small_model.sh: $name failed: $(tail -3 "$dir/$name.log")" >&2; exit 1; }
}
step synth "$bin/nb-synth" --users "$users" --seed 7 --out "$dir/csv"
step import "$bin/nb-import" --csv "$dir/csv" --db "$dir/nb.db" --quiet
step train "$bin/nb-train" --db "$dir/nb.db" --model "$dir/m.nbw" --epochs 1 --emb 8 --cnn-out 16 \
    --gru-hidden 16 --gru-layers 1 --head 16 --candidates 300 --threads 1 --quiet
