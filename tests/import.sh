#!/usr/bin/env bash
# import.sh -- nb-import on the real data sets in ../shared/data: the store holds exactly the
# rows of the CSV files (counted here with awk), and "the last 5 orders of user 1 with their
# items in cart order" (the hot query) returns what the CSV files say (python3's csv module).
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

# rows DIR FILE -- data rows of a CSV file (non-empty lines after the header)
rows() { awk 'NR > 1 && NF' "$1/$2"; }

S64=$NB_DATA/instacart-sample64
CAT=$NB_DATA/instacart-catalog
if [[ ! -d $S64 || ! -d $CAT ]]; then
    t_skip import_sample64 "$S64 or $CAT absent"
else
    db=$T_TMP/s64.db
    out=$("$NB_BIN/nb-import" --csv "$S64" --catalog "$CAT" --db "$db" 2>&1)
    t_check import_sample64_runs test -s "$db"
    t_contains import_sample64_summary "$out" "64 users, 1000 orders (936 prior, 37 train, 27 test)"
    q() { $PY -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print("\n".join("|".join(map(str,r)) for r in c.execute(sys.argv[2])))' "$db" "$1"; }
    for ev in prior:0 train:1 test:2; do
        want=$(rows "$S64" orders.csv | awk -F, -v e="${ev%:*}" '$3 == e' | wc -l)
        t_eq "sample64_orders_${ev%:*}" "$(q "SELECT count(*) FROM orders WHERE eval_set = ${ev#*:}")" "$want"
    done
    t_eq sample64_orders_936_37_27 "$(q 'SELECT group_concat(n) FROM (SELECT count(*) n FROM orders GROUP BY eval_set ORDER BY eval_set)')" "936,37,27"
    for f in prior:0 train:1; do
        want=$(rows "$S64" "order_products__${f%:*}.csv" | wc -l)
        got=$(q "SELECT count(*) FROM order_items i JOIN orders o USING (order_id) WHERE o.eval_set = ${f#*:}")
        t_eq "sample64_items_${f%:*}" "$got" "$want"
    done
    # every item row, exactly: sorted dumps of the files and of the table agree
    want=$(cat <(rows "$S64" order_products__prior.csv) <(rows "$S64" order_products__train.csv) | tr -d '\r' | sort | md5sum)
    got=$(q "SELECT order_id || ',' || product_id || ',' || add_to_cart_order || ',' || reordered FROM order_items" | sort | md5sum)
    t_eq sample64_item_rows_identical "$got" "$want"
    want=$(rows "$S64" orders.csv | tr -d '\r' | sort | md5sum)
    got=$(q "SELECT order_id || ',' || user_id || ',' || (CASE eval_set WHEN 0 THEN 'prior' WHEN 1 THEN 'train' ELSE 'test' END) || ',' || order_number || ',' || order_dow || ',' || order_hour_of_day || ',' || coalesce(days_since_prior_order || '.0', '') FROM orders" | sort | md5sum)
    t_eq sample64_order_rows_identical "$got" "$want"
    t_eq sample64_users "$(q 'SELECT count(*) FROM users')" "$(rows "$S64" orders.csv | cut -d, -f2 | sort -u | wc -l)"
    t_eq sample64_products "$(q 'SELECT count(*) FROM products')" "$(rows "$CAT" products.csv | wc -l)"
    t_eq sample64_product_name_with_comma "$(q 'SELECT name FROM products WHERE product_id = 30')" \
        "$($PY -c 'import csv,sys; print([r[1] for r in csv.reader(open(sys.argv[1])) if r[0] == "30"][0])' "$CAT/products.csv")"

    # the hot query against the CSV files parsed independently
    got=$(q "SELECT o.order_id, o.order_number, i.add_to_cart_order, i.product_id
             FROM (SELECT order_id, order_number FROM orders WHERE user_id = 1
                   ORDER BY order_number DESC LIMIT 5) o
             JOIN order_items i ON i.order_id = o.order_id
             ORDER BY o.order_number, i.add_to_cart_order")
    want=$($PY - "$S64" <<'EOF'
import csv, os, sys
d = sys.argv[1]
orders = [r for r in csv.DictReader(open(os.path.join(d, 'orders.csv'))) if r['user_id'] == '1']
orders.sort(key=lambda r: int(r['order_number']))
last = orders[-5:]
items = []
for f in ('order_products__prior.csv', 'order_products__train.csv'):
    items += list(csv.DictReader(open(os.path.join(d, f))))
for o in last:
    its = sorted((int(r['add_to_cart_order']), r['product_id']) for r in items if r['order_id'] == o['order_id'])
    for pos, p in its:
        print('%s|%s|%d|%s' % (o['order_id'], o['order_number'], pos, p))
EOF
)
    t_eq sample64_last5_orders_user1 "$got" "$want"
    t_check sample64_last5_nonempty test "$(echo "$got" | cut -d'|' -f1 | sort -u | wc -l)" -eq 5
    t_eq sample64_wal "$(q 'PRAGMA journal_mode')" wal
    t_eq sample64_user_version "$(q 'PRAGMA user_version')" 1
    t_eq sample64_no_stray_files "$(ls "$T_TMP")" "s64.db"
fi

TF=$NB_DATA/tafeng
if [[ ! -d $TF ]]; then
    t_skip import_tafeng "$TF absent"
else
    db=$T_TMP/tf.db
    "$NB_BIN/nb-import" --csv "$TF" --db "$db" >/dev/null 2>&1
    t_check import_tafeng_runs test -s "$db"
    q() { $PY -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print("\n".join("|".join(map(str,r)) for r in c.execute(sys.argv[2])))' "$db" "$1"; }
    t_eq tafeng_orders "$(q 'SELECT count(*) FROM orders')" "$(rows "$TF" orders.csv | wc -l)"
    t_eq tafeng_train_orders "$(q 'SELECT count(*) FROM orders WHERE eval_set = 1')" \
        "$(rows "$TF" orders.csv | awk -F, '$3 == "train"' | wc -l)"
    t_eq tafeng_items "$(q 'SELECT count(*) FROM order_items')" \
        "$(( $(rows "$TF" order_products__prior.csv | wc -l) + $(rows "$TF" order_products__train.csv | wc -l) ))"
    t_eq tafeng_users "$(q 'SELECT count(*) FROM users')" "$(rows "$TF" orders.csv | cut -d, -f2 | sort -u | wc -l)"
    t_eq tafeng_products "$(q 'SELECT count(*) FROM products')" "$(rows "$TF" products.csv | wc -l)"
    want=$(cat <(rows "$TF" order_products__prior.csv) <(rows "$TF" order_products__train.csv) | tr -d '\r' | sort | md5sum)
    got=$(q "SELECT order_id || ',' || product_id || ',' || add_to_cart_order || ',' || reordered FROM order_items" | sort | md5sum)
    t_eq tafeng_item_rows_identical "$got" "$want"
fi
t_exit
