#!/usr/bin/python3
"""rk_explore.py -- offline experiments on the ranking stage's own rows (issue 10).

  /usr/bin/python3 bench/rk_explore.py NAME DUMP_DIR REPORT.json [EXPERIMENT ...]

DUMP_DIR/train.nbrows is written by `nb-train --ranker-dump DUMP_DIR` (format: train/rkdump.h);
REPORT.json is that run's --report. The script repeats the stage's cross-validation
(train/rktrain.c cv_rows): the first 4,000 training users in 5 user folds (tr_rk_fold's
hash), each fold ranked by trees trained on the rows of every training user outside it (up to
1M rows), boosted from the logistic prior on TIFU-KNN's score, R@10 / NDCG@10 over the
candidates with the whole target basket as the denominator, after 25 ... 300 rounds.
Experiment "default" must give nb-train's own curve (cv_R@10_by_rounds of the report: the
script exits 1 when it differs by more than .001; dunnhumby-carbo's is reproduced to the last
digit, nb-synth's to 4 decimals up to 200 rounds and by .0006 at 300, a difference not traced), so every other row differs from it by
one change only: a learner parameter, an objective, row weights, or extra features computed
from the rows (within-user ranks and ratios, the purchase bits of the last orders). The
candidate sources are measured by nb-train itself (--ranker-ablation, bench/quality.sh): a
short list is filled with popular products there, which this script does not model. Each row gives the curve, the best count's R@10 minus the tuned TIFU-KNN's on
the same users (the selection's baseline) with its standard error, and the same for
NDCG@10. Deterministic (fixed seed, exact hist trees).
Needs python3-xgboost and python3-numpy (deploy/install-deps.sh --bench).
"""
import json, sys

import numpy as np
import xgboost as xgb

ROUNDS = [25, 50, 100, 150, 200, 300]
CV_USERS, CV_ROWS, FOLDS = 4000, 1_000_000, 5  # train/rktrain.h TR_RK_CV_USERS, ..._ROWS
M64 = (1 << 64) - 1


def nb_hash64(x):  # common/rng.c
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def fold(uid):  # train/rktrain.c tr_rk_fold
    return nb_hash64((uid & 0xFFFFFFFF) ^ 0xF01D5EED) % FOLDS


def load(path):
    """The rows of one .nbrows file (train/rkdump.h) as a dict of numpy arrays."""
    b = open(path, "rb").read()
    if b[:8] != b"NBRKRW1\n":
        sys.exit(f"{path}: not a ranker rows file (magic {b[:8]!r}; write it with nb-train --ranker-dump)")
    n, nf, nu = (int(v) for v in np.frombuffer(b, np.int64, 3, 8))
    o = 32
    names = [b[o + 32 * i:o + 32 * (i + 1)].split(b"\0")[0].decode() for i in range(nf)]
    o += 32 * nf

    def take(dt, count, shape=None):
        nonlocal o
        a = np.frombuffer(b, dt, count, o)
        o += a.nbytes
        return a.reshape(shape) if shape else a
    d = dict(names=names, X=take(np.float32, n * nf, (n, nf)), y=take(np.float32, n))
    d["model"], d["pid"] = take(np.float32, n), take(np.int32, n)
    d["off"], d["uid"] = take(np.int64, nu + 1), take(np.int32, nu)
    d["nt"], d["bits"] = take(np.int32, nu), take(np.uint64, n)
    if o != len(b):
        sys.exit(f"{path}: {len(b) - o} bytes after the last array: a different format version?")
    d["nu"] = nu
    return d


def users(d, js):
    """The rows of users js of d, in that order."""
    js = np.asarray(js, dtype=np.int64)
    lens = d["off"][js + 1] - d["off"][js]
    idx = np.concatenate([np.arange(d["off"][j], d["off"][j + 1]) for j in js]) if len(js) else np.zeros(0, np.int64)
    out = {k: d[k][idx] for k in ("X", "y", "pid", "bits")}
    out.update(names=d["names"], off=np.concatenate([[0], np.cumsum(lens)]), nt=d["nt"][js],
               uid=d["uid"][js], nu=len(js))
    return out


def per_user(d, s):
    """Per-user R@10 and NDCG@10 of scores s over the candidates (train/rktrain.c
    user_metrics; ties by product, as eval_scores breaks them)."""
    nu, off = d["nu"], d["off"]
    u = np.repeat(np.arange(nu), np.diff(off))
    order = np.lexsort((d["pid"], -s.astype(np.float64), u))
    rank = np.arange(len(s)) - off[u[order]]
    top, rk = order[rank < 10], rank[rank < 10]
    hit = (d["y"][top] > 0).astype(np.float64)
    hits = np.bincount(u[top], hit, nu)
    dcg = np.bincount(u[top], hit / np.log2(rk + 2), nu)
    idcg = np.concatenate([[0], np.cumsum(1 / np.log2(np.arange(10) + 2))])[np.minimum(d["nt"], 10)]
    return hits / np.maximum(d["nt"], 1), np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1), 0)


def prior(d, col):
    """The logistic regression of the label on column col (infer/ranker.c tr_ranker_fit_prior:
    Newton on the standardised value; missing values get the intercept): margins for any X."""
    x = d["X"][:, col].astype(np.float64)
    ok = ~np.isnan(x)
    mu, sd = x[ok].mean(), x[ok].std() or 1.0
    z, t, a, b = (x[ok] - mu) / sd, d["y"][ok].astype(np.float64), 0.0, 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-(a + b * z)))
        w = p * (1 - p)
        H = np.array([[w.sum(), (w * z).sum()], [(w * z).sum(), (w * z * z).sum()]])
        step = np.linalg.solve(H + 1e-12 * np.eye(2), [np.sum(t - p), np.sum((t - p) * z)])
        a, b = a + step[0], b + step[1]
        if np.abs(step).max() < 1e-12:
            break
    m0, m1 = a - b * mu / sd, b / sd
    return lambda X: np.where(np.isnan(X[:, col]), m0, m0 + m1 * X[:, col]).astype(np.float32)


def matrix(d, pf, weight_pow=0.0, group=False, label=True):
    """A training matrix (label=True) is a QuantileDMatrix of 256 bins, as nb-train's
    (infer/ranker.c): a plain DMatrix sketches other bin edges, and the trees drift apart
    after a few hundred rounds."""
    if label:
        m = xgb.QuantileDMatrix(d["X"], label=d["y"], missing=np.nan, max_bin=256,
                                base_margin=pf(d["X"]))
    else:
        m = xgb.DMatrix(d["X"], missing=np.nan)
        m.set_base_margin(pf(d["X"]))
    if weight_pow:
        w = np.repeat(1.0 / np.maximum(d["nt"], 1) ** weight_pow, np.diff(d["off"]))
        m.set_weight(w * len(w) / w.sum())
    if group:
        m.set_group(np.diff(d["off"]))
    return m


def cv(d, params, weight_pow=0.0):
    """Cross-validated per-user R@10 / NDCG@10 after each count of ROUNDS (cv_rows)."""
    nu = min(d["nu"], CV_USERS)
    f = np.array([fold(int(u)) for u in d["uid"]])
    r10 = {r: np.zeros(nu) for r in ROUNDS}
    nd10 = {r: np.zeros(nu) for r in ROUNDS}
    tifu = d["names"].index("tifu")
    p = dict(objective="binary:logistic", tree_method="hist", max_depth=6, eta=0.05, subsample=1.0,
             nthread=2, seed=1, min_child_weight=1, max_bin=256, verbosity=0)
    p.update(params)
    for k in range(FOLDS):
        test = [j for j in range(nu) if f[j] == k]
        train, n = [], 0
        for j in range(d["nu"]):
            if f[j] != k and n + d["off"][j + 1] - d["off"][j] <= CV_ROWS:
                train.append(j)
                n += d["off"][j + 1] - d["off"][j]
        a, b = users(d, train), users(d, test)
        if not test or not len(a["y"]):
            continue
        pf = prior(a, tifu)
        bst = xgb.train(p, matrix(a, pf, weight_pow, p["objective"].startswith("rank:")), ROUNDS[-1])
        mb = matrix(b, pf, label=False)
        for r in ROUNDS:
            # float32 probabilities, as nb-train ranks by: near 1 they tie, and ties go to
            # the lower product id
            rr, nn = per_user(b, bst.predict(mb, iteration_range=(0, r)).astype(np.float32))
            r10[r][test], nd10[r][test] = rr, nn
    return r10, nd10


def add_columns(d, cols):
    out = dict(d)
    out["X"] = np.hstack([d["X"], np.array(cols, dtype=np.float32).T])
    return out


def within_user(d, names, ratio):
    """Each named feature's rank among the user's candidates (0 = highest), and with ratio its
    value over the user's highest value."""
    nu, off, n = d["nu"], d["off"], len(d["y"])
    u = np.repeat(np.arange(nu), np.diff(off))
    cols = []
    for name in names:
        x = d["X"][:, d["names"].index(name)].astype(np.float64)
        xn = np.where(np.isnan(x), -np.inf, x)
        order = np.lexsort((np.arange(n), -xn, u))
        rank = np.empty(n)
        rank[order] = np.arange(n) - off[u[order]]
        cols.append(np.where(np.isnan(x), np.nan, rank))
        if ratio:
            mx = np.full(nu, -np.inf)
            np.maximum.at(mx, u, xn)
            m = mx[u]
            cols.append(np.where(np.isnan(x) | (m <= 0), np.nan, x / np.where(m > 0, m, 1)))
    return add_columns(d, cols)


def bought(d):
    """The purchase bits as an [n_rows, 64] 0/1 matrix: column k is the (k+1)-th latest order."""
    return np.stack([((d["bits"] >> np.uint64(k)) & np.uint64(1)).astype(np.int64) for k in range(64)], 1)


def sequence(d, what):
    """Features of the purchase bits (the 64 latest orders): the last 8 orders one by one
    ("bits"), the gaps between the last three purchases ("gaps"), the run of consecutive
    latest orders holding it and the share of the last 10 orders minus the overall share
    ("streak"), the orders since its first purchase ("age")."""
    n = len(d["y"])
    B = bought(d)
    X, col = d["X"], d["names"].index
    nord = X[:, col("u_orders")]
    cols = []
    if "bits" in what:
        cols += [np.where(k < nord, B[:, k], np.nan) for k in range(8)]
    if "gaps" in what:
        pos, cnt = np.full((n, 3), np.nan), np.zeros(n, np.int64)
        for k in range(64):
            for j in range(3):
                pos[(B[:, k] == 1) & (cnt == j), j] = k
            cnt += B[:, k]
        cols += [pos[:, 1] - pos[:, 0], pos[:, 2] - pos[:, 1]]
    if "streak" in what:
        alive, run = np.ones(n, bool), np.zeros(n)
        for k in range(64):
            alive &= B[:, k] == 1
            run += alive
        cols += [run, B[:, :10].sum(1) / np.minimum(nord, 10) - X[:, col("share")]]
    if "age" in what:
        ssf = X[:, col("share_since_first")]
        with np.errstate(divide="ignore", invalid="ignore"):
            cols.append(np.where(ssf > 0, X[:, col("count")] / ssf, np.nan))
    return add_columns(d, cols)


def pattern_rate(d, K=6):
    """+ the repeat rate of the product's purchase pattern over its K latest orders, estimated
    out of fold from every earlier position of the other folds' users' purchase bits (all the
    history's transitions, ~10x the target rows): P(bought in an order | the pattern of the K
    orders before it), among products bought before; Laplace-smoothed."""
    B = bought(d)
    nord = np.minimum(d["X"][:, d["names"].index("u_orders")].astype(np.int64), 64)
    ever = np.flip(np.cumsum(np.flip(B, 1), 1), 1) > 0  # bought at position >= j
    w = 2 ** np.arange(K)
    fr = np.repeat(np.array([fold(int(u)) for u in d["uid"]]), np.diff(d["off"]))
    num, den = np.zeros((FOLDS, 2 ** K)), np.zeros((FOLDS, 2 ** K))
    for k in range(64 - K):
        ok = (k + K < nord) & ever[:, k + 1]
        pat = (B[:, k + 1:k + 1 + K] * w).sum(1)
        for f in range(FOLDS):
            m = ok & (fr == f)
            num[f] += np.bincount(pat[m], B[m, k], 2 ** K)
            den[f] += np.bincount(pat[m], None, 2 ** K)
    pat0, rate = (B[:, :K] * w).sum(1), np.full(len(d["y"]), np.nan)
    for f in range(FOLDS):
        r = (num.sum(0) - num[f] + 1) / (den.sum(0) - den[f] + 10)
        m = (fr == f) & ever[:, 0]
        rate[m] = r[pat0[m]]
    return add_columns(d, [rate])


def transitions(d, beta=5.0):
    """+ item-to-item transitions (a first-order Markov chain over baskets, as FPMC's MC part):
    P(j in the next order | i in this order), counted out of fold over every consecutive pair
    of orders in the other folds' users' purchase bits, smoothed towards j's share of next
    orders with weight beta; per row (u, j), over the items i of u's latest order: the mean,
    the max, and the mean over j's smoothed share (lift)."""
    from scipy import sparse
    B = bought(d)
    nord = np.minimum(d["X"][:, d["names"].index("u_orders")].astype(np.int64), 64)
    pids, pix = np.unique(d["pid"], return_inverse=True)
    P, off, nu = len(pids), d["off"], d["nu"]
    fu = np.array([fold(int(u)) for u in d["uid"]])
    src, dst, fs = [], [], []
    S, D, T = np.zeros((FOLDS, P)), np.zeros((FOLDS, P)), np.zeros(FOLDS)
    for j in range(nu):
        a, b = off[j], off[j + 1]
        if a == b:
            continue
        it, Bu, n, f = pix[a:b], B[a:b], int(nord[a]), fu[j]
        for k in range(n - 1):
            s_, t_ = it[Bu[:, k + 1] == 1], it[Bu[:, k] == 1]
            if not len(s_):
                continue
            S[f, s_] += 1
            D[f, t_] += 1
            T[f] += 1
            src.append(np.repeat(s_, len(t_)))
            dst.append(np.tile(t_, len(s_)))
            fs.append(np.full(len(s_) * len(t_), f))
    src, dst, fs = np.concatenate(src), np.concatenate(dst), np.concatenate(fs)
    C = [sparse.csr_matrix((np.ones((fs == f).sum()), (src[fs == f], dst[fs == f])), shape=(P, P))
         for f in range(FOLDS)]
    Ct, St, Dt, Tt = sum(C), S.sum(0), D.sum(0), T.sum()
    n = len(d["y"])
    mean, mx, lift = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for j in range(nu):
        a, b = off[j], off[j + 1]
        if a == b:
            continue
        f = fu[j]
        Cf, Sf, Df, Tf = Ct - C[f], St - S[f], Dt - D[f], Tt - T[f]
        it = pix[a:b]
        last = it[B[a:b, 0] == 1]
        if not len(last):
            continue
        base = (Df[it] + 1) / (Tf + P)
        M = (Cf[last][:, it].toarray() + beta * base) / (Sf[last][:, None] + beta)
        mean[a:b], mx[a:b] = M.mean(0), M.max(0)
        lift[a:b] = mean[a:b] / base
    return add_columns(d, [mean, mx, lift])


REL = ["share", "dshare90", "dshare70", "dshare50", "count", "since", "due", "tifu_own", "tifu_nbr",
       "p_pop", "aisle_share"]
# name: (what it changes, params, weight power, row transform)
EXPERIMENTS = {
    "default": ("nb-train's stage as it is", {}, 0, None),
    "mcw20": ("min_child_weight 20", {"min_child_weight": 20}, 0, None),
    "mcw100": ("min_child_weight 100", {"min_child_weight": 100}, 0, None),
    "sub8": ("subsample and colsample_bytree 0.8", {"subsample": 0.8, "colsample_bytree": 0.8}, 0, None),
    "lambda10": ("L2 lambda 10", {"lambda": 10}, 0, None),
    "depth4": ("max_depth 4", {"max_depth": 4}, 0, None),
    "depth3": ("max_depth 3", {"max_depth": 3}, 0, None),
    "eta02": ("eta 0.02", {"eta": 0.02}, 0, None),
    "gamma1": ("min split loss (gamma) 1", {"gamma": 1}, 0, None),
    "ndcg": ("objective rank:ndcg (users as groups)", {"objective": "rank:ndcg"}, 0, None),
    "pairwise": ("objective rank:pairwise", {"objective": "rank:pairwise"}, 0, None),
    "w_sqrt": ("rows weighted 1/sqrt(target size): R@10's per-user weight, halfway", {}, 0.5, None),
    "w_inv": ("rows weighted 1/target size: R@10's per-user weight", {}, 1.0, None),
    "rank": ("+ within-user ranks of 11 features", {}, 0, lambda d: within_user(d, REL, False)),
    "rank_ratio": ("+ within-user ranks and ratios to the user's highest", {}, 0,
                   lambda d: within_user(d, REL, True)),
    "bits8": ("+ bought in each of the last 8 orders", {}, 0, lambda d: sequence(d, {"bits"})),
    "gaps": ("+ gaps between the last three purchases", {}, 0, lambda d: sequence(d, {"gaps"})),
    "streak": ("+ latest run length, last-10 share minus share", {}, 0, lambda d: sequence(d, {"streak"})),
    "age": ("+ orders since the first purchase", {}, 0, lambda d: sequence(d, {"age"})),
    "seq_all": ("+ bits8, gaps, streak and age", {}, 0,
                lambda d: sequence(d, {"bits", "gaps", "streak", "age"})),
    "pattern": ("+ repeat rate of the last-6-orders pattern, from all history transitions", {}, 0,
                pattern_rate),
    "trans": ("+ item-to-item transitions from the latest order (out of fold)", {}, 0, transitions),
}


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    name, dump, report = sys.argv[1:4]
    todo = sys.argv[4:] or list(EXPERIMENTS)
    for e in todo:
        if e not in EXPERIMENTS:
            sys.exit(f"unknown experiment '{e}': one of {', '.join(EXPERIMENTS)}")
    d = load(f"{dump}/train.nbrows")
    nb_curve = json.load(open(report))["ranker"]["cv_R@10_by_rounds"]
    nu = min(d["nu"], CV_USERS)
    head = users(d, range(nu))
    bl_r, bl_n = per_user(head, np.nan_to_num(head["X"][:, d["names"].index("tifu")], nan=-np.inf))
    print(f"{name}: {len(d['y'])} training rows, {d['nu']} users, {nu} cross-validated; "
          f"TIFU-KNN tuned R@10 {bl_r.mean():.4f} NDCG@10 {bl_n.mean():.4f} on them")
    print("| data set | experiment | change | CV R@10 after " + "/".join(map(str, ROUNDS))
          + " rounds | best | R@10 - TIFU-KNN tuned (s.e.) | NDCG@10 - TIFU-KNN tuned |")
    print("|---|---|---|---|---|---|---|")
    status = 0
    for e in todo:
        what, params, wp, transform = EXPERIMENTS[e]
        dd = transform(d) if transform else d
        r10, nd10 = cv(dd, params, wp)
        if e == "default":
            gap = max(abs(r10[r].mean() - nb_curve[str(r)]) for r in ROUNDS)
            if gap > 1e-3:
                print(f"default differs from nb-train's curve by {gap:.6f}: not the stage's CV",
                      file=sys.stderr)
                status = 1
        best = max(ROUNDS, key=lambda r: (r10[r].mean(), -r))
        diff = r10[best] - bl_r
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        print(f"| {name} | {e} | {what} | " + "/".join(f"{r10[r].mean():.4f}" for r in ROUNDS)
              + f" | {best} | {diff.mean():+.4f} ({se:.4f}) | {nd10[best].mean() - bl_n.mean():+.4f} |",
              flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
