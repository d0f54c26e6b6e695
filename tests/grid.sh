#!/usr/bin/env bash
# grid.sh -- the ranking losses end to end and bench/grid.sh on a tiny nb-synth store (1
# epoch, small dimensions): a 6-variant grid (loss=bce+margin,bpr,bogus x seed=1,2: bogus
# deliberately fails) gives a table and JSON with 4 ok rows carrying metrics, failed rows
# naming the bad value, the baselines' rows, per-epoch curves and the mean +- sd over seeds; both SVG charts convert
# to non-trivial PNGs with rsvg-convert; a bad grid file is refused with its file:line. The
# losses are deterministic by seed (same seed: same weight file bytes; another seed: other
# bytes, and --resume reaches the bytes of an uninterrupted run), the report's hyper_params
# and the models row name the loss, and a model trained with a ranking loss scores through
# --score-user like any other.
source "$(dirname "$0")/lib.sh"
TRAIN=$NB_BIN/nb-train
S=$T_TMP/synth DB=$T_TMP/nb.db G=$T_TMP/grid
SMALL=(--emb 8 --cnn-out 16 --kernel 3 --gru-hidden 16 --gru-layers 1 --head 16 --batch 32
       --threads 1 --candidates 300 --epochs 1 --ranker off --repeat off --lr 0.02)

for tool in jq rsvg-convert; do
    command -v $tool >/dev/null || { t_fail "have_$tool" "$tool missing (deploy/install-deps.sh)"; t_exit; }
done
if ! "$NB_BIN/nb-synth" --users 250 --seed 4 --out "$S" >/dev/null 2>&1 ||
   ! "$NB_BIN/nb-import" --csv "$S" --db "$DB" >/dev/null 2>&1; then
    t_fail synth_import "nb-synth or nb-import failed"; t_exit
fi

# ---- determinism and storage of the loss ---------------------------------------------------
for run in a b c; do
    seed=1; [[ $run == c ]] && seed=2
    "$TRAIN" --db "$DB" --model "$T_TMP/$run.nbw" --report "$T_TMP/$run.json" "${SMALL[@]}" --quiet \
        --loss bce+bpr --rank-weight 0.5 --negatives 2 --seed $seed >/dev/null 2>"$T_TMP/$run.log" ||
        { t_fail "train_bce_bpr_$run" "$(tail -2 "$T_TMP/$run.log")"; t_exit; }
done
sa=$(sha256sum <"$T_TMP/a.nbw") sb=$(sha256sum <"$T_TMP/b.nbw") sc=$(sha256sum <"$T_TMP/c.nbw")
t_eq loss_deterministic_by_seed "$sa" "$sb"
if [[ $sa != "$sc" ]]; then t_ok loss_seed_matters; else t_fail loss_seed_matters "seed 2 gave the same bytes"; fi
t_eq report_names_loss "$(jq -c '.hyper_params | [.loss, .rank_weight, .negatives, .negative_sampling]' "$T_TMP/a.json")" \
    '["bce+bpr",0.5,2,"uniform"]'
row=$(sqlite3 "$DB" "SELECT json_extract(hyper_params, '$.loss') FROM models ORDER BY model_id DESC LIMIT 1")
t_eq models_row_names_loss "$row" "bce+bpr"
out=$("$TRAIN" --db "$DB" --model "$T_TMP/c.nbw" --score-user 3 --k 5 2>&1)
t_contains score_user_ranking_loss "$out" '"product_id"'

# --resume after --stop-after 1 reaches the uninterrupted run's bytes (the negatives depend
# on seed, epoch and position only), and a resume with another --loss is refused
R2=(--db "$DB" "${SMALL[@]}" --epochs 2 --patience 2 --quiet --loss bce+margin --margin 0.5)
"$TRAIN" "${R2[@]}" --model "$T_TMP/r1.nbw" >/dev/null 2>&1
"$NB_TESTBIN/nb-train-test" "${R2[@]}" --model "$T_TMP/r2.nbw" --stop-after 1 >/dev/null 2>&1
rc=$?
if [[ $rc -ne 0 && ! -e $T_TMP/r2.nbw && -s $T_TMP/r2.nbw.ckpt ]]; then t_ok stop_after_one_epoch
else t_fail stop_after_one_epoch "rc=$rc; a weight file or no checkpoint"; fi
out=$("$TRAIN" "${R2[@]}" --loss bce+bpr --model "$T_TMP/r2.nbw" --resume 2>&1); rc=$?
if [[ $rc -ne 0 && $out == *"other training flags"* ]]; then t_ok resume_refuses_other_loss
else t_fail resume_refuses_other_loss "rc=$rc ${out:0:200}"; fi
"$TRAIN" "${R2[@]}" --model "$T_TMP/r2.nbw" --resume >/dev/null 2>&1
t_check resume_ranking_loss_identical cmp "$T_TMP/r1.nbw" "$T_TMP/r2.nbw"

# ---- the grid -------------------------------------------------------------------------------
printf '# ranking losses, one bad value\nloss=bce+margin,bpr,bogus   # x 2 seeds\nseed=1,2\n' >"$T_TMP/g.txt"
bash bench/grid.sh "$T_TMP/g.txt" "$G" --db "$DB" "${SMALL[@]}" >"$T_TMP/table.txt" 2>"$T_TMP/grid.log"
rc=$?
t_eq grid_exit_status "$rc" 0
J=$G/grid.json
t_eq grid_rows "$(jq -c '[.variants[] | [.id, .variant, .status]]' "$J" 2>&1)" \
    '[["v1","loss=bce+margin seed=1","ok"],["v2","loss=bce+margin seed=2","ok"],["v3","loss=bpr seed=1","ok"],["v4","loss=bpr seed=2","ok"],["v5","loss=bogus seed=1","failed"],["v6","loss=bogus seed=2","failed"]]'
t_contains grid_failed_row_says_why "$(jq -r '.variants[5].error' "$J")" "'bogus' is not"
t_eq grid_metrics_are_figures "$(jq '[.variants[0:4][] | .metrics | to_entries[] | .value |
    select(type == "number" and . >= 0 and . <= 1)] | length' "$J")" 28
# the rows are the reports' figures, not copies of one another
t_eq grid_metrics_from_reports "$(jq -c '.variants[1].metrics["R@10"]' "$J")" "$(jq -c '.model["R@10"]' "$G/v2.json")"
t_eq grid_epochs "$(jq -c '[.variants[0:2][] | (.epochs | length), (.epochs[0].train_loss > 0)]' "$J")" '[1,true,1,true]'
# mean +- sd over the seeds: the bce+margin pair's R@10 (two different non-zero figures at
# this learning rate), recomputed here with awk
want=$(jq -r '.variants[0:2][] | .metrics["R@10"]' "$J" | awk '{x[NR] = $1} END {m = (x[1] + x[2]) / 2;
    printf "%.10f %.10f %d", m, sqrt((x[1] - m) ^ 2 + (x[2] - m) ^ 2), (x[1] > 0 && x[2] > 0 && x[1] != x[2])}')
t_eq grid_over_seeds "$(jq -r '.over_seeds[0] | "\(.variant) \(.runs) \(.metrics["R@10"] | "\(.mean) \(.sd)")"' "$J" |
    awk '{printf "%s %s %.10f %.10f 1", $1, $2, $3, $4}')" "loss=bce+margin 2 $want"
t_eq grid_over_seeds_rows "$(jq '.over_seeds | length' "$J")" 2
t_eq grid_baselines "$(jq -c '[.baselines[].name][0:3]' "$J")" '["G-TopFreq","P-TopFreq","TIFU-KNN"]'
tab=$(cat "$T_TMP/table.txt")
t_contains table_ok_row "$tab" "v1 loss=bce+margin seed=1"
t_contains table_seed_rows "$tab" "mean +- sd over seeds"
t_contains table_failed_row "$tab" "FAILED: --loss: 'bogus' is not"
t_contains table_baseline_row "$tab" "TIFU-KNN"
t_eq table_file_same "$(cat "$G/grid.txt")" "$tab"
# one bar per ok variant and panel (4 x 2), one dashed line per baseline and panel
t_eq svg_bars "$(grep -c '<rect x=' "$G/grid.svg")" 8
nb=$(jq '.baselines | length' "$J")
t_eq svg_baseline_lines "$(grep -c 'stroke-dasharray' "$G/grid.svg")" $((2 * nb))
for svg in grid curves; do
    if rsvg-convert "$G/$svg.svg" -o "$T_TMP/$svg.png" 2>"$T_TMP/rsvg.log"; then
        # non-trivial: a PNG of real size whose pixels are not one colour (a blank image of
        # this size compresses to well under 2 KB)
        size=$(stat -c %s "$T_TMP/$svg.png")
        wh=$(od -An -tu1 -j16 -N8 "$T_TMP/$svg.png" | awk '{print $3*256+$4, $7*256+$8}')
        if [[ $size -gt 8000 && ${wh% *} -ge 300 && ${wh#* } -ge 200 ]]; then t_ok "png_$svg"
        else t_fail "png_$svg" "size $size bytes, ${wh/ /x} pixels"; fi
    else
        t_fail "png_$svg" "rsvg-convert: $(head -2 "$T_TMP/rsvg.log")"
    fi
done

# REUSE=1 builds the same rows from the reports already there, without training
before=$(jq -c '[.variants[] | [.id, .status, .metrics]]' "$J")
rm -f "$G"/v*.nbw
REUSE=1 bash bench/grid.sh "$T_TMP/g.txt" "$G" --db "$DB" "${SMALL[@]}" >/dev/null 2>&1
t_eq grid_reuse_same_rows "$(jq -c '[.variants[] | [.id, .status, .metrics]]' "$J")" "$before"
if ls "$G"/v*.nbw >/dev/null 2>&1; then t_fail grid_reuse_no_training "a weight file was written"
else t_ok grid_reuse_no_training; fi

# ---- bad grid files: refused, naming file and line ------------------------------------------
printf 'loss=bce\nemb=\n' >"$T_TMP/bad.txt"
out=$(bash bench/grid.sh "$T_TMP/bad.txt" "$T_TMP/g2" --db "$DB" 2>&1); rc=$?
t_eq grid_bad_file_status "$rc" 2
t_contains grid_bad_file_names_line "$out" "bad.txt:2: emb has an empty value"
printf 'loss bce\n' >"$T_TMP/bad.txt"
out=$(bash bench/grid.sh "$T_TMP/bad.txt" "$T_TMP/g2" --db "$DB" 2>&1)
t_contains grid_bad_token "$out" "bad.txt:1: 'loss' is not KEY=V1,V2"
t_exit
