# sets.sh -- sourced by the quality scripts: the data sets they run on, as stores.
# prepare_sets DIR SET...: imports each set into DIR/<set>.db unless it is there (synth:
# nb-synth --users 3000 --seed 1, the built-in data of `make train`; the others:
# $DATA/<set>, skipped with a message when absent) and lists the sets ready in the array
# `sets`. Needs BIN and DATA.
prepare_sets() {
    local dir=$1 s
    shift
    sets=()
    for s in "$@"; do
        if [[ -e $dir/$s.db ]]; then sets+=("$s"); continue; fi
        case $s in
        synth)
            "$BIN/nb-synth" --users 3000 --seed 1 --out "$dir/synth.csv" >/dev/null 2>&1
            "$BIN/nb-import" --csv "$dir/synth.csv" --db "$dir/synth.db" >/dev/null
            sets+=(synth) ;;
        *)
            if [[ ! -e $DATA/$s/orders.csv ]]; then
                echo "skipping $s: $DATA/$s is absent (see ../shared/data/README.md)"; continue
            fi
            "$BIN/nb-import" --csv "$DATA/$s" --db "$dir/$s.db" >/dev/null
            sets+=("$s") ;;
        esac
    done
}
