#!/usr/bin/python3
"""repeat_curve.py -- the next-order repeat curve of a data set in the Instacart CSV layout.

  /usr/bin/python3 bench/repeat_curve.py [--json] CSV_DIR

Prints P(product in the user's next order) by the product's share of the user's prior orders
(rows) and the orders since its last purchase (columns), the number of (user, product) pairs
in every cell, and the share of target items that are new to the user. With --json it prints
one JSON object instead (tests/synth_curve.sh reads it).

Definition (the one of issue 10's table, measured on real Instacart users):
  - Users: every user with a `train` order (eval_set == "train") that has at least one item,
    and at least one `prior` order with items. `test` orders and their users are ignored.
  - Target: the items of the user's `train` order.
  - History: the user's `prior` orders with items, in order_number order; n = their number.
  - Pairs: every distinct product p the user bought in the history.
      share(p) = (number of history orders containing p) / n
      since(p) = n - 1 - (index of the last history order containing p), indices 0..n-1:
                 0 = bought in the user's last prior order, 1 = in the one before and not
                 since, and so on.
      label    = p is in the target.
  - Rows: share in [0, 0.2), [0.2, 0.4), [0.4, 0.6), [0.6, 0.8), [0.8, 1.0] (row index
    min(floor(5 * share), 4), computed exactly with integers: min(5 * count // n, 4)).
  - Columns: since = 0, 1, 2-3, 4-7, 8+.
  - Cell value: mean label over the cell's pairs (pairs with equal weight, so users with long
    histories count more -- as in the issue's table). A cell with no pair prints "-".
  - New-item share: (target items not in the user's history) / (all target items), over the
    same users.
Standard library only; deterministic.
"""
import csv
import json
import sys
from collections import defaultdict

ROWS = ["0.0-0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0"]
COLS = ["0", "1", "2-3", "4-7", "8+"]


def col_of(since):
    """The column index of `since` orders since the last purchase."""
    if since <= 1:
        return since
    if since <= 3:
        return 2
    if since <= 7:
        return 3
    return 4


def curve(d):
    """Returns (hits[5][5], pairs[5][5], new target items, all target items, users) for the
    CSV folder d, by the definition in the header."""
    orders = defaultdict(list)  # user -> [(order_number, order_id, eval_set)]
    with open(d + "/orders.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r["eval_set"] in ("prior", "train"):
                orders[int(r["user_id"])].append((int(r["order_number"]), int(r["order_id"]),
                                                   r["eval_set"]))
    items = defaultdict(set)
    for name in ("order_products__prior.csv", "order_products__train.csv"):
        with open(d + "/" + name, newline="") as f:
            rd = csv.reader(f)
            next(rd)
            for row in rd:
                items[int(row[0])].add(int(row[1]))
    hits = [[0] * 5 for _ in range(5)]
    pairs = [[0] * 5 for _ in range(5)]
    new = total = users = 0
    for u in sorted(orders):
        ol = sorted(orders[u])
        target = [items[o[1]] for o in ol if o[2] == "train" and items.get(o[1])]
        hist = [items[o[1]] for o in ol if o[2] == "prior" and items.get(o[1])]
        if not target or not hist:
            continue
        target = target[0]
        users += 1
        n = len(hist)
        cnt, last = defaultdict(int), {}
        for i, h in enumerate(hist):
            for p in h:
                cnt[p] += 1
                last[p] = i
        for p, c in cnt.items():
            r, k = min(5 * c // n, 4), col_of(n - 1 - last[p])
            pairs[r][k] += 1
            hits[r][k] += p in target
        total += len(target)
        new += sum(p not in cnt for p in target)
    return hits, pairs, new, total, users


def main(argv):
    as_json = "--json" in argv
    args = [a for a in argv if a != "--json"]
    if len(args) != 1:
        sys.exit("usage: repeat_curve.py [--json] CSV_DIR")
    hits, pairs, new, total, users = curve(args[0])
    p = [[hits[r][k] / pairs[r][k] if pairs[r][k] else None for k in range(5)] for r in range(5)]
    newshare = new / total if total else None
    if as_json:
        print(json.dumps({"p": p, "pairs": pairs, "new_share": newshare, "users": users,
                          "target_items": total}))
        return
    print(f"# {args[0]}: {users} users with a train order, {total} target items")
    print("P(in next order) by share of prior orders (rows) and orders since last purchase "
          "(columns); [pairs]")
    print("| share | " + " | ".join(COLS) + " |")
    print("|---|" + "---|" * 5)
    for r in range(5):
        cells = [f"{p[r][k]:.3f} [{pairs[r][k]}]" if pairs[r][k] else "- [0]" for k in range(5)]
        print(f"| {ROWS[r]} | " + " | ".join(cells) + " |")
    print(f"new-to-user share of target items: {newshare:.3f}" if total else "no target items")


if __name__ == "__main__":
    main(sys.argv[1:])
