#!/usr/bin/env bash
# bench/transformer_real.sh -- the transformer over orders (--sequence transformer, every
# other model flag at its default: warm-up 200 steps, clip 1) trained on every folder of the
# real data (../shared/data), one thread; prints one markdown row per folder with the
# training loss of every epoch, the best validation R@10 and whether the weight file loads
# (nbw_load refuses a non-finite weight). The ranking stage is off (--ranker off): it does not
# touch the network's training and would only add minutes.
# Environment: NB_BIN (default bin), NB_DATA (default ../shared/data), EPOCHS (default 10,
# nb-train's; early stopping after 3 epochs without a better validation R@10 as by default).
# Exits non-zero when a run fails or a loss is not finite.
set -uo pipefail
cd "$(dirname "$0")/.."
NB_BIN=${NB_BIN:-bin}
NB_DATA=${NB_DATA:-../shared/data}
EPOCHS=${EPOCHS:-10}
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/nbtf.XXXXXX")
trap 'rm -rf "$TMPD"' EXIT
status=0
echo "| data | users (train) | train loss per epoch | best val R@10 (epoch) | s/epoch | weights |"
echo "|---|---|---|---|---|---|"
for dir in "$NB_DATA"/*/; do
    name=$(basename "$dir")
    if [[ ! -f $dir/orders.csv ]]; then
        echo "| $name | - | no orders (a catalogue only): nothing to train | | | |"
        continue
    fi
    cat=()
    [[ -f $dir/products.csv ]] || cat=(--catalog "$NB_DATA/instacart-catalog")
    if ! "$NB_BIN/nb-train" --csv "$dir" "${cat[@]}" --db "$TMPD/$name.db" \
            --model "$TMPD/$name.nbw" --report "$TMPD/$name.json" --sequence transformer \
            --threads 1 --epochs "$EPOCHS" --ranker off --quiet \
            >/dev/null 2>"$TMPD/$name.err"; then
        echo "| $name | FAILED: $(tail -1 "$TMPD/$name.err") | | | | |"
        status=1
        continue
    fi
    # the written weights load (nbw_load refuses a non-finite value) and score a user
    uid=$(sqlite3 "$TMPD/$name.db" "SELECT user_id FROM orders WHERE eval_set = 1 LIMIT 1")
    loads=0
    "$NB_BIN/nb-train" --db "$TMPD/$name.db" --model "$TMPD/$name.nbw" --score-user "$uid" \
        >/dev/null 2>&1 && loads=1
    /usr/bin/python3 - "$TMPD/$name.json" "$name" "$loads" <<'PY' || status=1
import json, math, sys
r = json.load(open(sys.argv[1]))
ep = r["epochs"]
loss = [e["train_loss"] for e in ep]
ok = all(math.isfinite(x) for x in loss) and sys.argv[3] == "1"
best = max(range(len(ep)), key=lambda i: ep[i]["val_R@10"]) if ep else 0
sec = sum(e["seconds"] for e in ep) / max(len(ep), 1)
print(f"| {sys.argv[2]} | {r['data']['train_users']} | {', '.join(f'{x:.4f}' for x in loss)} | "
      f"{ep[best]['val_R@10']:.4f} ({best + 1}) | {sec:.1f} | {'load and score' if sys.argv[3] == '1' else 'DO NOT LOAD'} |")
sys.exit(0 if ok else 1)
PY
done
exit $status
