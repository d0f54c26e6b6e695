#!/usr/bin/env bash
# import_errors.sh -- every kind of bad input makes nb-import fail with a message naming the
# file, line and field, a non-zero exit, the previous store at the target path untouched and
# no stray files next to it. Also: a good import replaces the store; flag errors.
source "$(dirname "$0")/lib.sh"

good=$T_TMP/good
mkdir -p "$good"
cat >"$good/departments.csv" <<'EOF'
department_id,department
1,produce
2,dairy eggs
EOF
cat >"$good/aisles.csv" <<'EOF'
aisle_id,aisle
1,fresh fruits
2,milk
EOF
cat >"$good/products.csv" <<'EOF'
product_id,product_name,aisle_id,department_id
1,"Bag of Organic Bananas, 2 lb",1,1
2,"Milk ""Whole""",2,2
3,Apples,1,1
EOF
cat >"$good/orders.csv" <<'EOF'
order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,days_since_prior_order
10,1,prior,1,2,8,
11,1,prior,2,3,7,15.0
12,1,train,3,4,9,7
20,2,prior,1,0,0,
21,2,test,2,6,23,30
EOF
cat >"$good/order_products__prior.csv" <<'EOF'
order_id,product_id,add_to_cart_order,reordered
10,1,1,0
10,2,2,0
11,1,1,1
20,3,1,0
EOF
cat >"$good/order_products__train.csv" <<'EOF'
order_id,product_id,add_to_cart_order,reordered
12,1,1,1
12,3,2,0
EOF

store=$T_TMP/db/store.db
mkdir -p "$T_TMP/db"
out=$("$NB_BIN/nb-import" --csv "$good" --db "$store" 2>&1)
t_eq good_import_exit $? 0
t_contains good_import_summary "$out" "2 users, 5 orders (3 prior, 1 train, 1 test), 6 items, 3 products"
before=$(md5sum <"$store")
t_eq good_import_no_stray_files "$(ls "$T_TMP/db")" "store.db"

# bad NAME FILE 'SED-SCRIPT' EXPECTED-MESSAGE -- copy the good set, edit FILE with sed (or
# delete it when the script is "rm"), import over the store, check the outcome.
bad() {
    local name=$1 file=$2 script=$3 want=$4 dir=$T_TMP/case_$1
    rm -rf "$dir"
    cp -r "$good" "$dir"
    if [[ $script == rm ]]; then rm "$dir/$file"; else sed -i "$script" "$dir/$file"; fi
    local msg rc
    msg=$("$NB_BIN/nb-import" --csv "$dir" --db "$store" 2>&1)
    rc=$?
    if [[ $rc -eq 0 ]]; then t_fail "bad_$name" "exit status 0; output: $msg"; return; fi
    t_contains "bad_${name}_message" "$msg" "$dir/$file:$want"
    t_eq "bad_${name}_store_intact" "$(md5sum <"$store")" "$before"
    t_eq "bad_${name}_no_stray_files" "$(ls "$T_TMP/db")" "store.db"
}

bad missing_file orders.csv rm " cannot open: No such file"
bad missing_prior order_products__prior.csv rm " cannot open"
bad wrong_header orders.csv '1s/user_id/user/' "1: header field 2 is 'user', expected 'user_id'"
bad missing_header products.csv '1d' "1: header field 1 is '1', expected 'product_id'"
bad header_columns aisles.csv '1s/$/,extra/' "1: header has 3 fields, expected 2"
bad too_many_fields orders.csv '3s/$/,9/' "3: 8 fields, expected 7"
bad too_few_fields order_products__train.csv '2s/,1$//' "2: 3 fields, expected 4"
bad nonint_order_id order_products__prior.csv '2s/^10,/1x0,/' "2: field order_id: '1x0' is not an integer"
bad nonint_user_id orders.csv '4s/^12,1,/12,one,/' "4: field user_id: 'one' is not an integer"
bad nonint_product_id products.csv '3s/^2,/2.5,/' "3: field product_id: '2.5' is not an integer"
bad unknown_order order_products__prior.csv '3s/^10,/99,/' "3: field order_id: unknown order_id 99"
bad unknown_product order_products__train.csv '3s/^12,3,/12,77,/' "3: field product_id: unknown product_id 77"
bad unknown_aisle products.csv '3s/,2,2$/,9,2/' "3: field aisle_id: unknown aisle_id 9"
bad unknown_department products.csv '4s/,1,1$/,1,5/' "4: field department_id: unknown department_id 5"
bad duplicate_order orders.csv '6s/^21,/10,/' "6: field order_id: duplicate order_id 10 (first on line 2)"
bad duplicate_order_number orders.csv '3s/,prior,2,/,prior,1,/' "3: field order_number: user_id 1 has order_number 1 twice (first on line 2)"
bad duplicate_product products.csv '4s/^3,/1,/' "4: field product_id: duplicate product_id 1 (first on line 2)"
bad bad_eval_set orders.csv '4s/train/valid/' "4: field eval_set: 'valid' is not prior, train or test"
bad dow_range orders.csv '3s/,3,7,15.0$/,7,7,15.0/' "3: field order_dow: 7 is out of range 0..6"
bad hour_range orders.csv '5s/,0,0,$/,0,24,/' "5: field order_hour_of_day: 24 is out of range 0..23"
bad days_range orders.csv '3s/15.0$/31/' "3: field days_since_prior_order: 31 is out of range 0..30"
bad days_fraction orders.csv '3s/15.0$/15.5/' "3: field days_since_prior_order: '15.5' is not an integer"
bad days_negative orders.csv '4s/,7$/,-1/' "4: field days_since_prior_order: -1 is out of range 0..30"
bad duplicate_cart_position order_products__prior.csv '3s/^10,2,2,/10,2,1,/' "3: field add_to_cart_order: duplicate (order_id 10, add_to_cart_order 1)"
bad reordered_range order_products__prior.csv '4s/,1$/,2/' "4: field reordered: 2 is out of range 0..1"
bad item_of_test_order order_products__prior.csv '$a21,1,1,0' "6: field order_id: order_id 21 is a 'test' order"
bad train_item_of_prior_order order_products__train.csv '2s/^12,/11,/' "2: field order_id: order_id 11 is a 'prior' order"
bad unterminated_quote products.csv '4s/^3,/3,"/' "4: field 2: unterminated quoted field"
bad empty_order_id orders.csv '2s/^10,/,/' "2: field order_id: empty"

# a writer-side error (duplicate cart position, found by SQLite) early in a large file: the
# parser thread, blocked on a full queue, must be stopped cleanly
big=$T_TMP/case_big
rm -rf "$big"; cp -r "$good" "$big"
awk 'BEGIN { print "order_id,product_id,add_to_cart_order,reordered"; print "10,1,1,0"; print "10,2,1,0";
             for (i = 2; i <= 300000; i++) printf "11,%d,%d,0\n", 1 + i % 3, i }' >"$big/order_products__prior.csv"
out=$("$NB_BIN/nb-import" --csv "$big" --db "$store" 2>&1)
t_check big_duplicate_exit test $? -ne 0
t_contains big_duplicate_message "$out" "$big/order_products__prior.csv:3: field add_to_cart_order: duplicate (order_id 10, add_to_cart_order 1)"
t_eq big_duplicate_store_intact "$(md5sum <"$store")" "$before"
t_eq big_duplicate_no_stray_files "$(ls "$T_TMP/db")" "store.db"
# ... and a parser-side error late in the same file comes out after all rows before it
sed -i '3s/^10,2,1,0$/10,2,2,0/; 250000s/^11,/11x,/' "$big/order_products__prior.csv"
out=$("$NB_BIN/nb-import" --csv "$big" --db "$store" 2>&1)
t_contains big_late_error_message "$out" "$big/order_products__prior.csv:250000: field order_id: '11x' is not an integer"
t_eq big_late_error_store_intact "$(md5sum <"$store")" "$before"

# on a terminal, progress lines (rows, rows/s) go to stderr; the summary line always ends the output
if command -v script >/dev/null; then
    sed -i '250000s/^11x,/11,/' "$big/order_products__prior.csv"
    tty_out=$(script -qec "$NB_BIN/nb-import --csv '$big' --db '$T_TMP/db/tty.db'" /dev/null 2>&1 | tr '\r' '\n')
    t_contains progress_on_tty "$tty_out" "rows/s"
    t_contains progress_summary_last "$(echo "$tty_out" | grep -v '^$' | tail -n 1)" "nb-import: 2 users, 5 orders"
    out=$("$NB_BIN/nb-import" --csv "$big" --db "$T_TMP/db/tty.db" 2>&1)
    t_eq no_progress_off_tty "$(echo "$out" | grep -c 'rows/s')" "0"
    rm -f "$T_TMP/db/tty.db"
else
    t_skip progress_on_tty "no script(1) to fake a terminal"
fi

# a failed first import creates nothing at all
rm -rf "$T_TMP/fresh"; mkdir -p "$T_TMP/fresh"
cp -r "$good" "$T_TMP/case_fresh"; sed -i '3s/15.0$/31/' "$T_TMP/case_fresh/orders.csv"
"$NB_BIN/nb-import" --csv "$T_TMP/case_fresh" --db "$T_TMP/fresh/new.db" >/dev/null 2>&1
t_check failed_first_import_exits_nonzero test $? -ne 0
t_eq failed_first_import_leaves_nothing "$(ls -A "$T_TMP/fresh")" ""

# --catalog takes products/aisles/departments from another folder
mkdir -p "$T_TMP/orders_only" "$T_TMP/cat"
cp "$good"/order* "$T_TMP/orders_only/"; cp "$good"/{products,aisles,departments}.csv "$T_TMP/cat/"
out=$("$NB_BIN/nb-import" --csv "$T_TMP/orders_only" --db "$store" 2>&1)
t_contains catalog_needed "$out" "$T_TMP/orders_only/departments.csv: cannot open"
t_eq catalog_needed_store_intact "$(md5sum <"$store")" "$before"
out=$("$NB_BIN/nb-import" --csv "$T_TMP/orders_only" --catalog "$T_TMP/cat" --db "$store" 2>&1)
t_eq catalog_import_exit $? 0
t_contains catalog_import_summary "$out" "6 items, 3 products"

# the train file is optional; a good import replaces the previous store
rm "$T_TMP/orders_only/order_products__train.csv"
out=$("$NB_BIN/nb-import" --csv "$T_TMP/orders_only" --catalog "$T_TMP/cat" --db "$store" 2>&1)
t_eq no_train_file_exit $? 0
t_contains no_train_file_summary "$out" ", 4 items,"
t_check store_replaced test "$(md5sum <"$store")" != "$before"
t_eq store_replaced_no_stray_files "$(ls "$T_TMP/db")" "store.db"

# flags
"$NB_BIN/nb-import" --csv "$good" >/dev/null 2>&1
t_eq flag_missing_db_exit $? 2
out=$("$NB_BIN/nb-import" --csv "$good" --db "$store" --bogus 2>&1)
t_contains flag_unknown "$out" "unknown flag '--bogus'"
out=$("$NB_BIN/nb-import" --db "$store" 2>&1)
t_contains flag_missing_csv "$out" "--csv DIR is required"
t_exit
