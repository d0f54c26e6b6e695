#!/usr/bin/python3
"""repeat_ceiling.py -- how far above P-TopFreq can a ranking of a user's own past products get
on this data?  A reference check for issue 6's target (model >= 1.05 x the best baseline).

  /usr/bin/python3 bench/repeat_ceiling.py CSV_DIR [CSV_DIR ...]   (Instacart CSV layout)

For every user with a `train` order (the target) and prior orders (the history), every product
of the history is a candidate with 16 features: the 10 of infer/repfeat.h that need no
days-to-target (share, last5, recency, in_last, days, share_since, user reorder rate, user
orders, product reorder rate, product popularity) and 6 more (decayed shares at 0.9 and 0.8,
due ratios in orders and days -- orders since the last purchase over the mean gap between
purchases --, a has-gap flag, log count). Users are split 80/20 by a hash of user_id; on the
20 % test users it prints Recall@10 / NDCG@10 (the definitions of train/metrics.c: recall
over the whole target basket, new products included) of
  - P-TopFreq (share, ties by the later purchase, then product id: train/baselines.h),
  - decayed-share frequency (0.9, 0.8),
  - logistic regression and gradient-boosted trees (scikit-learn) on the 16 features,
    trained on the 80 % users' targets.
Tree ensembles on rich per-(user, product) features are what won the Instacart competition;
their ratio to P-TopFreq bounds what a repeat term can add on the data set. Deterministic.
"""
import csv, math, sys, zlib
from collections import defaultdict

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression


def load(d):
    orders = defaultdict(list)
    for r in csv.DictReader(open(d + '/orders.csv')):
        ds = r['days_since_prior_order']
        orders[int(r['user_id'])].append((int(r['order_number']), int(r['order_id']), r['eval_set'],
                                          float(ds) if ds else None))
    items = defaultdict(list)
    for f in ('order_products__prior.csv', 'order_products__train.csv'):
        for r in csv.DictReader(open(d + '/' + f)):
            items[int(r['order_id'])].append(int(r['product_id']))
    return orders, items


def samples(orders, items):
    """(user, history baskets, days_since per history order, target set), plus product stats."""
    pcount, preord = defaultdict(int), defaultdict(int)
    out = []
    for u in sorted(orders):
        os_ = sorted(orders[u])
        seen = set()
        for _, oid, ev, _ in os_:
            if ev != 'prior':
                continue
            for p in items.get(oid, []):
                pcount[p] += 1
                preord[p] += p in seen
            seen.update(items.get(oid, []))
        tr = [o for o in os_ if o[2] == 'train']
        pri = [o for o in os_ if o[2] == 'prior' and items.get(o[1])]
        if tr and pri and items.get(tr[0][1]):
            out.append((u, [items[o[1]] for o in pri], [o[3] for o in pri], set(items[tr[0][1]])))
    return out, pcount, preord


def features(hist, days, pcount, preord, maxc):
    n = len(hist)
    cnt, first, last, l5 = defaultdict(int), {}, {}, defaultdict(int)
    d9, d8 = defaultdict(float), defaultdict(float)
    tot = reo = 0
    seen = set()
    for i, its in enumerate(hist):
        for p in set(its):
            cnt[p] += 1
            last[p] = i
            first.setdefault(p, i)
            l5[p] += i >= n - 5
            d9[p] += 0.9 ** (n - 1 - i)
            d8[p] += 0.8 ** (n - 1 - i)
        for p in its:
            tot += 1
            reo += p in seen
        seen.update(its)
    cum = [0.0] * n   # days from order i to the last order
    for i in range(n - 2, -1, -1):
        cum[i] = cum[i + 1] + (days[i + 1] or 0)
    z9, z8 = (1 - 0.9 ** n) / 0.1, (1 - 0.8 ** n) / 0.2
    prods = sorted(cnt)
    rows = []
    for p in prods:
        c, k = cnt[p], n - 1 - last[p]
        gap_o = (last[p] - first[p]) / (c - 1) if c > 1 else None
        gap_d = (cum[first[p]] - cum[last[p]]) / (c - 1) if c > 1 else None
        dl = cum[last[p]]
        rows.append([c / n, l5[p] / 5, 1 / (1 + k), float(k == 0), min(dl / 90, 1),
                     c / (n - first[p]), reo / max(tot, 1), min(math.log1p(n) / math.log1p(100), 1),
                     preord[p] / max(pcount[p], 1), math.log1p(pcount[p]) / math.log1p(maxc),
                     d9[p] / z9, d8[p] / z8,
                     (k + 1) / (gap_o + 1) if gap_o is not None else 0.0,
                     (dl + 7) / (gap_d + 7) if gap_d is not None else 0.0,
                     float(gap_o is not None), math.log1p(c)])
    return prods, np.array(rows), [last[p] for p in prods]


def metrics(prods, score, lastp, tgt):
    order = sorted(range(len(prods)), key=lambda j: (-score[j], -lastp[j], prods[j]))[:10]
    hits = [prods[j] in tgt for j in order]
    idcg = sum(1 / math.log2(i + 2) for i in range(min(10, len(tgt))))
    return sum(hits) / len(tgt), sum(h / math.log2(i + 2) for i, h in enumerate(hits)) / idcg


def run(d):
    orders, items = load(d)
    smp, pcount, preord = samples(orders, items)
    maxc = max(pcount.values())
    is_test = lambda u: zlib.crc32(str(u).encode()) % 5 == 0
    feats = [features(h, ds, pcount, preord, maxc) for _, h, ds, _ in smp]
    tr = [i for i, s in enumerate(smp) if not is_test(s[0])]
    te = [i for i, s in enumerate(smp) if is_test(s[0])]
    X = np.vstack([feats[i][1] for i in tr])
    y = np.concatenate([[p in smp[i][3] for p in feats[i][0]] for i in tr])
    models = {
        'logistic regression': LogisticRegression(max_iter=3000).fit(X, y),
        'gradient-boosted trees': HistGradientBoostingClassifier(max_iter=200, random_state=0).fit(X, y),
    }
    scorers = [('P-TopFreq', lambda F: F[:, 0]), ('decayed share 0.9', lambda F: F[:, 10]),
               ('decayed share 0.8', lambda F: F[:, 11])]
    scorers += [(k, (lambda m: lambda F: m.decision_function(F))(m)) for k, m in models.items()]
    print('%s: %d users with a target, %d test users, %d training rows (positive rate %.3f)'
          % (d, len(smp), len(te), len(y), y.mean()))
    base = None
    for name, f in scorers:
        r = np.array([metrics(feats[i][0], f(feats[i][1]), feats[i][2], smp[i][3]) for i in te])
        m = r.mean(axis=0)
        base = m if base is None else base
        print('  %-24s R@10 %.4f (%.3f x P-TopFreq)  NDCG@10 %.4f (%.3f x)'
              % (name, m[0], m[0] / base[0], m[1], m[1] / base[1]))


if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for d in sys.argv[1:]:
        run(d)
