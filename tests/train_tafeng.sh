#!/usr/bin/env bash
# train_tafeng.sh -- nb-train --csv on the real Ta-Feng data (../shared/data/tafeng): a quick
# run on the first 1,500 users with small dimensions must import, train, register, and rank
# better than G-TopFreq on the held-out test users. Skips when the data is absent.
source "$(dirname "$0")/lib.sh"
D=$NB_DATA/tafeng
if [[ ! -f $D/orders.csv ]]; then t_skip tafeng_train "$D absent"; t_exit; fi
R=$T_TMP/r.json
if "$NB_BIN/nb-train" --csv "$D" --db "$T_TMP/tf.db" --model "$T_TMP/m.nbw" --report "$R" \
        --limit-users 1500 --epochs 3 --emb 16 --cnn-out 32 --gru-hidden 64 --head 64 \
        --threads 1 --candidates 1000 --quiet >/dev/null 2>"$T_TMP/err"; then
    t_ok tafeng_train
else
    t_fail tafeng_train "$(tail -2 "$T_TMP/err")"; t_exit
fi
res=$(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["data"]["users"], r["data"]["products"], r["model"]["R@10"] > r["baselines"]["G-TopFreq"]["R@10"],
      r["model"]["R@10"], r["baselines"]["G-TopFreq"]["R@10"])' "$R")
read -r users products better m g <<<"$res"
t_eq tafeng_users "$users" 7384
t_eq tafeng_products "$products" 5000
echo "# model R@10 $m, G-TopFreq $g"
if [[ $better == True ]]; then t_ok tafeng_beats_gtopfreq; else t_fail tafeng_beats_gtopfreq "R@10 $m vs $g"; fi
t_exit
