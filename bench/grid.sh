#!/usr/bin/env bash
# bench/grid.sh -- trains every combination of a small grid of nb-train flags on the same
# store and split, and compares them with the baselines in one table, a JSON file and two
# SVG charts.
#
# Usage: bench/grid.sh GRID_FILE OUT_DIR NB-TRAIN-FLAGS...
#   e.g. bench/grid.sh bench/grid.example var/grid --db var/nb.db --epochs 3 --ranker off
#
# GRID_FILE: whitespace-separated KEY=V1,V2,... tokens (newlines count as spaces; '#' starts
# a comment). Each KEY becomes the nb-train flag --KEY, so any flag works, including ones
# added later (e.g. "encoder=cnn,attention loss=bce,bce+bpr,bce+margin emb=16,32,64": 18
# variants). The variants are the cartesian product, the first key varying slowest. The
# flags after OUT_DIR are given to every run (--db is required; the split is the same for
# all variants unless the grid varies --seed, --split or --limit-users). The table holds the
# network's own test metrics (the report's "model"), so --ranker off saves time.
#
# For variant N (1-based): OUT_DIR/vN.nbw, vN.json (nb-train's --report), vN.log (its
# stderr). A run that fails (nb-train exits non-zero, or writes no report) gets a row that
# says why (nb-train's last "nb-train: ..." line) and the grid goes on.
# Outputs:
#   stdout and OUT_DIR/grid.txt: the table (F1_micro F1_macro P@10 R@10 P@20 R@20 NDCG@10
#     per variant, then the baselines' rows, read from the first successful report);
#   OUT_DIR/grid.json: {grid_file, flags, variants: [{id, variant, flags {KEY: V}, status
#     "ok" | "failed", error, metrics {...}, best_epoch, start_val_R@10, epochs [{epoch,
#     train_loss, val_R@10}]}], baselines: [{name, metrics {...}}], baselines_from,
#     over_seeds (when the grid varies seed): [{variant (without seed), runs, metrics
#     {KEY: {mean, sd}}}]}; the table then ends with the same mean +- sd rows;
#   OUT_DIR/grid.svg: R@10 and NDCG@10 per variant (bars) with the baselines as horizontal
#     lines; OUT_DIR/curves.svg: per variant, training loss and validation R@10 by epoch
#     (validation R@10 starts at epoch 0, the untrained start).
# Every nb-train run registers its model in the store, as nb-train always does: give the
# grid a copy of a store that a server is using.
# Exits 0 when the grid ran (even if variants failed), 2 on a bad grid file or usage, 1 if
# no variant succeeded. Needs jq (deploy/install-deps.sh). Environment: NB_BIN (default bin).
set -uo pipefail
NB_BIN=${NB_BIN:-bin}
METRICS=(F1_micro F1_macro "P@10" "R@10" "P@20" "R@20" "NDCG@10")

die() { echo "grid.sh: $*" >&2; exit 2; }
[[ $# -ge 2 ]] || die "usage: bench/grid.sh GRID_FILE OUT_DIR NB-TRAIN-FLAGS... (see the top of this file)"
GRID=$1 OUT=$2
shift 2
COMMON=("$@")
[[ -r $GRID ]] || die "$GRID: cannot read the grid file"
command -v jq >/dev/null || die "jq not found (deploy/install-deps.sh installs it)"
[[ -x $NB_BIN/nb-train ]] || die "$NB_BIN/nb-train not found (run make)"
mkdir -p "$OUT" || die "$OUT: cannot create"

# ---- the grid file: keys and their values ---------------------------------------------
keys=() vals=()
lineno=0
while IFS= read -r line || [[ -n $line ]]; do
    lineno=$((lineno + 1))
    line=${line%%#*}
    for tok in $line; do
        k=${tok%%=*} v=${tok#*=}
        [[ $tok == *=* && $k =~ ^[a-z][a-z0-9-]*$ ]] ||
            die "$GRID:$lineno: '$tok' is not KEY=V1,V2,... (KEY: a nb-train flag without --)"
        [[ -n $v && $v != *,,* && $v != ,* && $v != *, ]] || die "$GRID:$lineno: $k has an empty value"
        for k2 in "${keys[@]}"; do [[ $k2 != "$k" ]] || die "$GRID:$lineno: $k given twice"; done
        keys+=("$k") vals+=("$v")
    done
done <"$GRID"
[[ ${#keys[@]} -gt 0 ]] || die "$GRID: no KEY=V1,V2,... in the grid file"

# the variants, each as "k1=v k2=v ..." (cartesian product, the first key slowest)
combos=("")
for i in "${!keys[@]}"; do
    next=()
    IFS=, read -ra vs <<<"${vals[$i]}"
    for c in "${combos[@]}"; do
        for v in "${vs[@]}"; do next+=("${c:+$c }${keys[$i]}=$v"); done
    done
    combos=("${next[@]}")
done
[[ ${#combos[@]} -le 500 ]] || die "$GRID: ${#combos[@]} variants (more than 500)"
echo "grid: ${#combos[@]} variants from $GRID; runs in $OUT" >&2

# ---- the runs ------------------------------------------------------------------------
rows=()
first_ok=""
for n in "${!combos[@]}"; do
    id=v$((n + 1)) c=${combos[$n]}
    args=() fl='{}'
    for tok in $c; do
        args+=("--${tok%%=*}" "${tok#*=}")
        fl=$(jq -c --arg k "${tok%%=*}" --arg v "${tok#*=}" '. + {($k): $v}' <<<"$fl")
    done
    rm -f "$OUT/$id.json"
    echo "grid: $id [$c]" >&2
    t0=$SECONDS
    "$NB_BIN/nb-train" --quiet "${COMMON[@]}" "${args[@]}" --model "$OUT/$id.nbw" \
        --report "$OUT/$id.json" >"$OUT/$id.out" 2>"$OUT/$id.log"
    rc=$?
    if [[ $rc -eq 0 && -s $OUT/$id.json ]] && jq -e '.model["R@10"]' "$OUT/$id.json" >/dev/null 2>&1; then
        row=$(jq -c --arg id "$id" --arg v "$c" --argjson fl "$fl" --argjson s $((SECONDS - t0)) '
            {id: $id, variant: $v, flags: $fl, status: "ok", error: null, seconds: $s,
             metrics: (.model | {F1_micro, F1_macro, "P@10", "R@10", "P@20", "R@20", "NDCG@10"}),
             best_epoch, "start_val_R@10",
             epochs: [.epochs[] | {epoch, train_loss, "val_R@10"}]}' "$OUT/$id.json")
        [[ -n $first_ok ]] || first_ok=$id
    else
        why=$(grep '^nb-train: ' "$OUT/$id.log" | tail -n 1 | sed 's/^nb-train: //')
        [[ -n $why ]] || why=$(tail -n 1 "$OUT/$id.log")
        [[ $rc -ne 0 ]] || why="exited 0 but wrote no report with model metrics${why:+: $why}"
        [[ -n $why ]] || why="exited with status $rc"
        row=$(jq -cn --arg id "$id" --arg v "$c" --argjson fl "$fl" --arg e "$why" --argjson rc $rc \
            '{id: $id, variant: $v, flags: $fl, status: "failed", exit_status: $rc, error: $e}')
        echo "grid: $id failed: $why" >&2
    fi
    rows+=("$row")
done

# ---- grid.json ----------------------------------------------------------------------------
bl='[]'
if [[ -n $first_ok ]]; then
    bl=$(jq -c '[.baselines | to_entries[] | {name: .key, metrics: (.value |
        {F1_micro, F1_macro, "P@10", "R@10", "P@20", "R@20", "NDCG@10"})}]' "$OUT/$first_ok.json")
fi
common=$(printf '%s\n' "${COMMON[@]}" | jq -R . | jq -cs .)
printf '%s\n' "${rows[@]}" | jq -s --arg g "$GRID" --argjson bl "$bl" --arg from "$first_ok" \
    --argjson fl "$common" '{grid_file: $g, flags: $fl, variants: ., baselines: $bl,
             baselines_from: (if $from == "" then null else $from end)}' \
    >"$OUT/grid.json.tmp" && mv "$OUT/grid.json.tmp" "$OUT/grid.json" || die "$OUT/grid.json: cannot write"

# ---- the table ----------------------------------------------------------------------------
jq -r '
    def f: if . == null then "-" else (. * 10000 | round / 10000 | tostring) end;
    def cols: [.F1_micro, .F1_macro, .["P@10"], .["R@10"], .["P@20"], .["R@20"], .["NDCG@10"]] | map(f);
    (["variant", "F1_micro", "F1_macro", "P@10", "R@10", "P@20", "R@20", "NDCG@10", "status"] | @tsv),
    (.variants[] | if .status == "ok" then ([.id + " " + .variant] + (.metrics | cols) + ["ok"]) | @tsv
                   else ([.id + " " + .variant] + ["-","-","-","-","-","-","-"] + ["FAILED: " + .error]) | @tsv end),
    (.baselines[] | ([.name] + (.metrics | cols) + ["baseline"]) | @tsv)' "$OUT/grid.json" |
    awk -F'\t' '{ w = length($1) > 28 ? length($1) : 28
                  printf "%-*s", w + 1, $1
                  for (i = 2; i <= 8; i++) printf " %8s", $i
                  printf "  %s\n", $9 }' | tee "$OUT/grid.txt"

# ---- over seeds: when the grid varies --seed, the mean +- sd of the variants that differ
# only in their seed (ok runs only; sd is the sample standard deviation, 0 for one run)
if jq -e '[.variants[].flags | has("seed")] | any' "$OUT/grid.json" >/dev/null; then
    jq -c '
        def key: .variant | split(" ") | map(select(startswith("seed=") | not)) | join(" ");
        def ms: length as $n | (add / $n) as $m |
                {mean: $m, sd: (if $n > 1 then (map(. - $m | . * .) | add / ($n - 1) | sqrt) else 0 end)};
        [.variants[] | select(.status == "ok") | . + {key: key}] as $ok |
        [.variants[] | key] | reduce .[] as $k ([]; if index([$k]) then . else . + [$k] end) |
        map(. as $k | [$ok[] | select(.key == $k)] | select(length > 0) |
            {variant: $k, runs: length,
             metrics: (. as $rs | ["F1_micro", "F1_macro", "P@10", "R@10", "P@20", "R@20", "NDCG@10"] |
                       map({key: ., value: ([$rs[].metrics[.]] | ms)}) | from_entries)})' \
        "$OUT/grid.json" >"$OUT/seeds.tmp" &&
        jq --slurpfile s "$OUT/seeds.tmp" '. + {over_seeds: $s[0]}' "$OUT/grid.json" >"$OUT/grid.json.tmp" &&
        mv "$OUT/grid.json.tmp" "$OUT/grid.json" && rm -f "$OUT/seeds.tmp" || die "$OUT/grid.json: cannot write"
    { echo
      echo "mean +- sd over seeds"
      jq -r '(["variant", "runs", "F1_micro", "F1_macro", "P@10", "R@10", "P@20", "R@20", "NDCG@10"] | @tsv),
             (.over_seeds[] | ([.variant, (.runs | tostring)] + ([.metrics[] | "\(.mean * 10000 | round / 10000)+-\(.sd * 10000 | round / 10000)"])) | @tsv)' \
            "$OUT/grid.json" |
        awk -F'\t' '{ printf "%-28s %4s", $1, $2; for (i = 3; i <= 9; i++) printf " %15s", $i; printf "\n" }'
    } | tee -a "$OUT/grid.txt"
fi

# ---- the charts (SVG written by awk from lines that jq extracts) -------------------------
# grid.svg: two panels (R@10, NDCG@10); a bar per variant, a dashed line per baseline.
jq -r '(.variants[] | ["V", .id, (if .status == "ok" then .metrics["R@10"] else -1 end),
                             (if .status == "ok" then .metrics["NDCG@10"] else -1 end), .variant]),
       (.baselines[] | ["B", .name, .metrics["R@10"], .metrics["NDCG@10"], ""]) | @tsv' "$OUT/grid.json" |
awk -F'\t' '
function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s); return s }
$1 == "V" { nv++; vid[nv] = $2; v[nv, 1] = $3; v[nv, 2] = $4; vname[nv] = $5
            for (m = 1; m <= 2; m++) if ($(2 + m) > top[m]) top[m] = $(2 + m) }
$1 == "B" { nb++; bname[nb] = $2; b[nb, 1] = $3; b[nb, 2] = $4
            for (m = 1; m <= 2; m++) if ($(2 + m) > top[m]) top[m] = $(2 + m) }
END {
    split("#1f77b4 #d62728 #2ca02c #9467bd #8c564b #e377c2", bcol, " ")
    bw = 26; gap = 12; pw = 70 + nv * (bw + gap) + 150; ph = 300; H = ph + 60 + 16 * nv
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n", 2 * pw, H
    printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
    split("R@10 NDCG@10", mname, " ")
    for (m = 1; m <= 2; m++) {
        x0 = (m - 1) * pw + 50; y0 = 30; h = ph - 60
        mx = top[m] > 0 ? top[m] * 1.1 : 1
        printf "<text x=\"%d\" y=\"18\" font-size=\"14\">test %s per variant (dashed: baselines)</text>\n", x0, mname[m]
        printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", x0, y0, x0, y0 + h
        printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", x0, y0 + h, x0 + nv * (bw + gap) + 10, y0 + h
        for (t = 0; t <= 4; t++) {
            y = y0 + h - h * t / 4
            printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.3f</text>\n", x0 - 4, y + 4, mx * t / 4
            printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x0, y, x0 + nv * (bw + gap) + 10, y
        }
        for (i = 1; i <= nv; i++) {
            x = x0 + 10 + (i - 1) * (bw + gap)
            if (v[i, m] >= 0) {
                bh = h * v[i, m] / mx
                printf "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"#ff7f0e\"><title>%s %s %.4f</title></rect>\n", x, y0 + h - bh, bw, bh, esc(vname[i]), mname[m], v[i, m]
                printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"9\">%.3f</text>\n", x + bw / 2, y0 + h - bh - 3, v[i, m]
            } else
                printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#d62728\" font-size=\"9\">failed</text>\n", x + bw / 2, y0 + h - 4
            printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x + bw / 2, y0 + h + 14, vid[i]
        }
        for (j = 1; j <= nb; j++) {
            y = y0 + h - h * b[j, m] / mx
            printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" stroke-dasharray=\"6,3\" stroke-width=\"1.5\"/>\n", x0, y, x0 + nv * (bw + gap) + 10, y, bcol[j]
            printf "<text x=\"%d\" y=\"%d\" fill=\"%s\">- - %s %.4f</text>\n", x0 + nv * (bw + gap) + 16, y0 + 10 + 14 * (j - 1), bcol[j], esc(bname[j]), b[j, m]
        }
    }
    for (i = 1; i <= nv; i++)
        printf "<text x=\"50\" y=\"%d\">%s: %s</text>\n", ph + 16 * i, vid[i], esc(vname[i])
    print "</svg>"
}' >"$OUT/grid.svg"

# curves.svg: training loss (left) and validation R@10 (right) by epoch, a line per variant.
jq -r '.variants[] | select(.status == "ok") |
       (["S", .id, 0, .variant, .["start_val_R@10"]] | @tsv),
       (.epochs[] as $e | ["E", .id, $e.epoch, $e.train_loss, $e["val_R@10"]] | @tsv)' "$OUT/grid.json" |
awk -F'\t' '
function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s); return s }
$1 == "S" { if (!($2 in seen)) { seen[$2] = ++nv; ids[nv] = $2 }
            k = seen[$2]; r[k, 0] = $5; has[k, 0] = 1; name[k] = $4 }
$1 == "E" { if (!($2 in seen)) { seen[$2] = ++nv; ids[nv] = $2 }
            k = seen[$2]; e = $3 + 0; l[k, e] = $4; r[k, e] = $5; hasl[k, e] = 1; has[k, e] = 1
            if (e > me) me = e; if ($4 > ml) ml = $4; if ($5 > mr) mr = $5 }
END {
    split("#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f #bcbd22 #17becf", col, " ")
    pw = 380; ph = 260; H = ph + 40 + 14 * nv
    if (me < 1) me = 1; if (ml <= 0) ml = 1; if (mr <= 0) mr = 1
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n", 2 * pw + 20, H
    printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
    split("training loss|validation R@10", title, "|")
    for (p = 1; p <= 2; p++) {
        x0 = (p - 1) * (pw + 20) + 55; y0 = 30; w = pw - 75; h = ph - 70
        mx = (p == 1 ? ml : mr) * 1.1
        printf "<text x=\"%d\" y=\"18\" font-size=\"14\">%s by epoch</text>\n", x0, title[p]
        printf "<path d=\"M%d %d V%d H%d\" fill=\"none\" stroke=\"black\"/>\n", x0, y0, y0 + h, x0 + w
        for (t = 0; t <= 4; t++) {
            y = y0 + h - h * t / 4
            printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n", x0 - 4, y + 4, mx * t / 4
        }
        for (e = 0; e <= me; e++)
            printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", x0 + w * e / me, y0 + h + 14, e
        printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">epoch</text>\n", x0 + w / 2, y0 + h + 28
        for (k = 1; k <= nv; k++) {
            d = ""; pts = ""
            for (e = (p == 1 ? 1 : 0); e <= me; e++) {
                if (!(p == 1 ? hasl[k, e] : has[k, e])) continue
                val = p == 1 ? l[k, e] : r[k, e]
                x = x0 + w * e / me; y = y0 + h - h * val / mx
                d = d (d == "" ? "M" : " L") sprintf("%.1f %.1f", x, y)
                pts = pts sprintf("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", x, y, col[(k - 1) % 10 + 1])
            }
            if (d != "") printf "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"/>%s\n", d, col[(k - 1) % 10 + 1], pts
        }
    }
    for (k = 1; k <= nv; k++)
        printf "<text x=\"55\" y=\"%d\" fill=\"%s\">%s: %s</text>\n", ph + 14 * k, col[(k - 1) % 10 + 1], ids[k], esc(name[k])
    print "</svg>"
}' >"$OUT/curves.svg"

echo "grid: wrote $OUT/grid.txt, $OUT/grid.json, $OUT/grid.svg, $OUT/curves.svg" >&2
[[ -n $first_ok ]] || { echo "grid.sh: no variant succeeded" >&2; exit 1; }
exit 0
