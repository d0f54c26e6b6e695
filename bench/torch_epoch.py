#!/usr/bin/python3
"""torch_epoch.py -- one training epoch of the research log's PyTorch model on the same
samples that nb-train trains on, timed.

Usage: /usr/bin/python3 bench/torch_epoch.py --db STORE --limit-users N --threads T
           [--batch 32] [--seed 1] [--split 80/10/10]
Prints one line: "torch epoch_s <s> samples <n> samples/s <x> threads <T> ...".

Samples are built exactly as train/split.c (tr_samples_build) does: the first N users (ascending user_id),
the user split of train/split.c (splitmix64 of user_id ^ 0x5eed5b117, mod 10,000), one
sample per training user whose eval_set=train order has items and some history: the last
<= 5 orders with items before it (oldest first), each truncated to 145 products, and that
order's products as the target over the full catalogue. The model is bench/torch_model.py's
ResearchNet (orders padded to 145 products, users padded to 5 orders), BCEWithLogits
pos_weight 10, Adam lr 1e-3, batch 32, shuffled. The padded batch tensors are built BEFORE
the clock starts (generous to PyTorch: no data-loading time is counted), just as nb-train's
epoch time excludes loading and validation.
"""
import argparse
import os
import sqlite3
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_model import MAX_ORDERS, MAX_PRODUCTS, ResearchNet  # noqa: E402

M64 = (1 << 64) - 1


def hash64(x):
    """common/rng.c nb_hash64 (splitmix64 finaliser)."""
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def split_of(user_id, pct):
    b = hash64((user_id & 0xFFFFFFFF) ^ 0x5EED5B117) % 10000
    if b < pct[0] * 100:
        return 0
    return 1 if b < (pct[0] + pct[1]) * 100 else 2


def load_samples(db, limit, pct):
    con = sqlite3.connect(db)
    pids = [r[0] for r in con.execute("SELECT product_id FROM products ORDER BY product_id")]
    pidx = {p: i for i, p in enumerate(pids)}
    users = [r[0] for r in con.execute("SELECT user_id FROM users ORDER BY user_id LIMIT ?", (limit,))]
    last = users[-1]
    orders = {}
    for uid, oid, es in con.execute(
            "SELECT user_id, order_id, eval_set FROM orders WHERE user_id <= ? "
            "ORDER BY user_id, order_number", (last,)):
        orders.setdefault(uid, []).append((oid, es))
    items = {}
    for oid, pid in con.execute(
            "SELECT i.order_id, i.product_id FROM order_items i JOIN orders o USING (order_id) "
            "WHERE o.user_id <= ? ORDER BY i.order_id, i.add_to_cart_order", (last,)):
        items.setdefault(oid, []).append(pidx[pid])
    samples = []
    for uid in users:
        if split_of(uid, pct) != 0:
            continue
        ol = orders.get(uid, [])
        t = next((i for i in range(len(ol) - 1, -1, -1) if ol[i][1] == 1), None)
        if t is None or not items.get(ol[t][0]):
            continue
        hist = [items[o] for o, _ in ol[:t] if items.get(o)]
        if not hist:
            continue
        samples.append(([h[:MAX_PRODUCTS] for h in hist[-MAX_ORDERS:]], items[ol[t][0]]))
    return samples, len(pids)


def make_batches(samples, P, B, rng):
    perm = rng.permutation(len(samples))
    out = []
    for s in range(0, len(perm), B):
        idx = perm[s:s + B]
        n = len(idx)
        it = np.full((n, MAX_ORDERS, MAX_PRODUCTS), P, dtype=np.int64)
        ln = np.zeros((n, MAX_ORDERS), dtype=np.int64)
        no = np.zeros(n, dtype=np.int64)
        tg = np.zeros((n, P), dtype=np.float32)
        for b, k in enumerate(idx):
            hist, target = samples[k]
            no[b] = len(hist)
            for o, h in enumerate(hist):
                it[b, o, :len(h)] = h
                ln[b, o] = len(h)
            tg[b, target] = 1
        out.append(tuple(torch.from_numpy(a) for a in (it, ln, no, tg)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--limit-users", type=int, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--split", default="80/10/10")
    a = ap.parse_args()
    pct = [int(x) for x in a.split.split("/")]
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    samples, P = load_samples(a.db, a.limit_users, pct)
    if not samples:
        raise SystemExit("torch_epoch: no training samples")
    batches = make_batches(samples, P, a.batch, np.random.default_rng(a.seed))
    net = ResearchNet(P)
    net.train()
    crit = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([10.0]))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    total = 0.0
    for it, ln, no, tg in batches:
        opt.zero_grad()
        loss = crit(net(it, ln, no, None), tg)
        loss.backward()
        opt.step()
        total += loss.item()
    dt = time.perf_counter() - t0
    if not np.isfinite(total):
        raise SystemExit("torch_epoch: loss is not finite")
    print(f"torch epoch_s {dt:.3f} samples {len(samples)} samples/s {len(samples) / dt:.2f} "
          f"threads {torch.get_num_threads()} products {P} mean_loss {total / len(batches):.5f}")


if __name__ == "__main__":
    main()
