#!/usr/bin/python3
"""metrics_sklearn.py -- reference values for tests/metrics_sklearn.sh.

  metrics_sklearn.py gen DIR SEED,P,USERS...  for each case writes DIR/SEED/in.txt (nb-metrics
                                              input) and DIR/SEED/want.txt (sklearn / numpy)
  metrics_sklearn.py compare WANT GOT       exits 1 and lists every metric that differs > 1e-6

F1s come from sklearn.metrics.f1_score on users x P indicator matrices (micro; macro with
zero_division=0 over all P labels; samples with zero_division=1, which is the Kaggle
convention "empty truth and empty prediction score 1"). @K metrics are computed with numpy
independently of the C code's formulas.
"""
import sys


def gen(seed, P, U, d):
    import numpy as np
    from sklearn.metrics import f1_score
    rng = np.random.default_rng(seed)
    rows = []
    Y = np.zeros((U, P), dtype=np.int64)
    Yh = np.zeros((U, P), dtype=np.int64)
    # popularity skew so that some products are often true and most are rare
    w = rng.pareto(1.2, P) + 0.05
    w /= w.sum()
    at = {k: dict(p=[], r=[], n=[], h=[]) for k in (10, 20)}
    cand_hits = cand_truth = cand_size = 0
    for u in range(U):
        nt = 0 if rng.random() < 0.03 else int(rng.integers(1, min(12, P) + 1))
        truth = rng.choice(P, size=nt, replace=False, p=w) if nt else np.array([], int)
        nr = int(rng.integers(0, min(25, P) + 1))
        # rankings favour true products so that hits at all depths happen
        s = rng.random(P) + 0.6 * np.isin(np.arange(P), truth)
        ranked = np.argsort(-s, kind="stable")[:nr]
        npred = 0 if rng.random() < 0.05 else int(rng.integers(1, min(10, P) + 1))
        pred = list(ranked[:npred]) if rng.random() < 0.7 else list(rng.choice(P, npred, replace=False))
        # repeats in pred / truth must count once
        truth_l = list(truth) + ([truth[0]] if nt and rng.random() < 0.1 else [])
        pred_l = pred + ([pred[0]] if pred and rng.random() < 0.1 else [])
        cand = rng.choice(P, size=int(rng.integers(0, P + 1)), replace=False)
        Y[u, truth] = 1
        Yh[u, pred] = 1
        tset = set(int(x) for x in truth)
        for K in (10, 20):
            top = [int(x) for x in ranked[:K]]
            hit = np.array([1.0 if x in tset else 0.0 for x in top])
            nh = hit.sum()
            at[K]["p"].append(nh / K)
            if nt:
                disc = 1.0 / np.log2(np.arange(2, len(top) + 2))
                idcg = (1.0 / np.log2(np.arange(2, min(K, nt) + 2))).sum()
                at[K]["r"].append(nh / nt)
                at[K]["n"].append((hit * disc).sum() / idcg)
                at[K]["h"].append(1.0 if nh > 0 else 0.0)
            else:
                for key in "rnh":
                    at[K][key].append(0.0)
        cs = set(int(x) for x in cand)
        cand_hits += len(tset & cs)
        cand_truth += len(tset)
        cand_size += len(cs)
        rows.append("%s|%s|%s|%s" % tuple(" ".join(str(int(x)) for x in l)
                                          for l in (ranked, pred_l, truth_l, cand)))
    want = {
        "users": U,
        "f1_micro": f1_score(Y, Yh, average="micro", zero_division=0),
        "f1_macro": f1_score(Y, Yh, average="macro", zero_division=0),
        "f1_example": f1_score(Y, Yh, average="samples", zero_division=1),
        "mean_pred_size": Yh.sum() / U,
        "mean_true_size": Y.sum() / U,
        "cand_recall": cand_hits / cand_truth,
        "mean_cand_size": cand_size / U,
    }
    for K in (10, 20):
        want["p@%d" % K] = np.mean(at[K]["p"])
        want["r@%d" % K] = np.mean(at[K]["r"])
        want["ndcg@%d" % K] = np.mean(at[K]["n"])
        want["hit@%d" % K] = np.mean(at[K]["h"])
    with open(d + "/in.txt", "w") as f:
        f.write("\n".join(rows) + "\n")
    with open(d + "/want.txt", "w") as f:
        for k, v in want.items():
            f.write("%s %.17g\n" % (k, v))


def read(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, v = line.split()
            out[k] = float(v)
    return out


def compare(wp, gp):
    want, got = read(wp), read(gp)
    bad = []
    for k, v in want.items():
        if k not in got:
            bad.append("%s missing" % k)
        elif not abs(got[k] - v) <= 1e-6:
            bad.append("%s got %.10g want %.10g" % (k, got[k], v))
    print("; ".join(bad) if bad else "%d metrics agree" % len(want))
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "gen":
        import os
        for c in sys.argv[3:]:
            seed, P, U = (int(x) for x in c.split(","))
            d = os.path.join(sys.argv[2], str(seed))
            os.makedirs(d, exist_ok=True)
            gen(seed, P, U, d)
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
