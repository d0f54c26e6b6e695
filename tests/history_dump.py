#!/usr/bin/python3
"""history_dump.py CSV_DIR [CATALOG_DIR] -- the expected st_history of an Instacart-layout
data set, computed from the CSV files alone (Python's csv module), in the text form that
tests/test_history.c writes for the history it loads from the store:
  P product_id aisle_id department_id         (ascending product_id)
  U user_id                                   (ascending user_id)
  O order_id eval_set dow hour days : pid/reordered ...   (order_number order; cart order)
eval_set is 0/1/2, days is -1 when empty."""
import csv, os, sys
from collections import defaultdict

def rows(path):
    with open(path, newline='', encoding='utf-8-sig') as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            if row:
                yield row

def main():
    d = sys.argv[1]
    cat = sys.argv[2] if len(sys.argv) > 2 else d
    out = sys.stdout
    prods = sorted((int(r[0]), int(r[2]), int(r[3])) for r in rows(os.path.join(cat, 'products.csv')))
    for p in prods:
        out.write('P %d %d %d\n' % p)
    ev = {'prior': 0, 'train': 1, 'test': 2}
    users = defaultdict(list)
    for r in rows(os.path.join(d, 'orders.csv')):
        days = -1 if r[6] == '' else int(float(r[6]))
        users[int(r[1])].append((int(r[3]), int(r[0]), ev[r[2]], int(r[4]), int(r[5]), days))
    items = defaultdict(list)
    for name in ('order_products__prior.csv', 'order_products__train.csv'):
        path = os.path.join(d, name)
        if os.path.exists(path):
            for r in rows(path):
                items[int(r[0])].append((int(r[2]), int(r[1]), int(r[3])))
    for u in sorted(users):
        out.write('U %d\n' % u)
        for num, oid, e, dow, hour, days in sorted(users[u]):
            its = ''.join(' %d/%d' % (p, re) for _, p, re in sorted(items.get(oid, [])))
            out.write('O %d %d %d %d %d :%s\n' % (oid, e, dow, hour, days, its))

main()
