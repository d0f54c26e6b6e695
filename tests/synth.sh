#!/usr/bin/env bash
# synth.sh -- nb-synth: flags, determinism, the written CSV files' structure and statistics
# (computed here from the files, not taken from nb-synth's printout), the --catalog copy.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
SYNTH=$NB_BIN/nb-synth
USERS=2500

# ---- flags ----------------------------------------------------------------------------------
out=$("$SYNTH" --help 2>&1); rc=$?
t_eq help_exit "$rc" 0
t_contains help_text "$out" "usage: nb-synth --users N --seed S --out DIR"
# refused_flag NAME WANT_IN_MESSAGE ARGS... -- nb-synth must fail and name the parameter
refused_flag() {
    local name=$1 want=$2; shift 2
    local msg rc
    msg=$("$SYNTH" "$@" 2>&1); rc=$?
    if [[ $rc -ne 0 && "$msg" == *"$want"* ]]; then t_ok "$name"
    else t_fail "$name" "exit $rc, message '${msg:0:200}' should name '$want'"; fi
}
refused_flag refuses_users_0 "--users" --users 0 --out "$T_TMP/x"
refused_flag refuses_users_text "--users" --users 12ab --out "$T_TMP/x"
refused_flag refuses_negative_seed "--seed" --users 5 --seed -3 --out "$T_TMP/x"
refused_flag refuses_unknown_flag "--colour" --users 5 --colour red --out "$T_TMP/x"
refused_flag refuses_missing_out "--out" --users 5
refused_flag refuses_missing_users "--users" --out "$T_TMP/x"
refused_flag refuses_flag_without_value "--seed" --users 5 --out "$T_TMP/x" --seed
refused_flag refuses_missing_catalog "$T_TMP/nocat/aisles.csv" --users 5 --out "$T_TMP/x" --catalog "$T_TMP/nocat"
mkdir -p "$T_TMP/badcat"
printf 'aisle_id,aisle\n1,fruit\n' > "$T_TMP/badcat/aisles.csv"
printf 'department_id,department\n1,produce\n' > "$T_TMP/badcat/departments.csv"
printf 'product_id,product_name,aisle_id,department_id\n1,"Apples, Red",1,1\n2,Pears,7,1\n' > "$T_TMP/badcat/products.csv"
refused_flag refuses_catalog_bad_aisle "products.csv:3: aisle_id 7" --users 5 --out "$T_TMP/x" --catalog "$T_TMP/badcat"
printf 'product_id,product_name,aisle_id,department_id\n3,"Pie 9"" Round, ""Deep""",1,1\n5,Pears,1,1\n9,"Fig,\nJam",1,1\n' > "$T_TMP/badcat/products.csv"
"$SYNTH" --users 20 --seed 2 --out "$T_TMP/small" --catalog "$T_TMP/badcat" 2>/dev/null; t_eq small_catalog_run "$?" 0
cmp -s "$T_TMP/badcat/products.csv" "$T_TMP/small/products.csv" && t_ok small_catalog_copied || t_fail small_catalog_copied "differs"
used=$(awk -F, 'FNR > 1 { print $2 }' "$T_TMP/small"/order_products__*.csv | sort -u | tr '\n' ' ')
[[ "$used" =~ ^((3|5|9)\ )+$ ]] && t_ok small_catalog_ids_used || t_fail small_catalog_ids_used "products used: $used"
printf 'product_id,product_name,aisle_id,department_id\n1,"Apples, Red,1,1\n' > "$T_TMP/badcat/products.csv"
refused_flag refuses_catalog_open_quote "products.csv:2" --users 5 --out "$T_TMP/x" --catalog "$T_TMP/badcat"
[[ ! -e "$T_TMP/x/orders.csv" ]] && t_ok refused_runs_write_no_orders || t_fail refused_runs_write_no_orders "orders.csv written"

# ---- determinism ----------------------------------------------------------------------------
FILES="orders.csv order_products__prior.csv order_products__train.csv products.csv aisles.csv departments.csv"
"$SYNTH" --users $USERS --seed 7 --out "$T_TMP/a" 2>"$T_TMP/a.log"; t_eq run_a_exit $? 0
"$SYNTH" --users $USERS --seed 7 --out "$T_TMP/nested/dir/b" 2>/dev/null; t_eq run_b_exit_nested_out $? 0
"$SYNTH" --users $USERS --seed 8 --out "$T_TMP/c" 2>/dev/null; t_eq run_c_exit $? 0
same=1
for f in $FILES; do cmp -s "$T_TMP/a/$f" "$T_TMP/nested/dir/b/$f" || { same=0; t_fail same_seed_identical "$f differs"; }; done
[[ $same == 1 ]] && t_ok same_seed_identical
for f in orders.csv order_products__prior.csv order_products__train.csv; do
    cmp -s "$T_TMP/a/$f" "$T_TMP/c/$f" && t_fail "other_seed_differs_$f" "identical" || t_ok "other_seed_differs_$f"
done
left=$(ls "$T_TMP/a" | grep -c tmp)
t_eq no_temporary_files_left "$left" 0
t_contains prints_statistics "$(cat "$T_TMP/a.log")" "reorder share"

# ---- structure and statistics, from the files ----------------------------------------------------
"$PY" - "$T_TMP/a" <<'EOF' || t_fail file_checks "the python checks exited with status $? (see above)"
import collections, csv, io, math, os, random, sys
d = sys.argv[1]
failed = 0
def ok(name, cond, why=""):
    global failed
    failed += not cond
    print(("ok " if cond else "not ok ") + name + ("" if cond else ": " + why), flush=True)
def read(name):
    with open(os.path.join(d, name), newline="") as f:
        r = csv.reader(f, strict=True)
        return next(r), list(r)
H = {"orders.csv": "order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,days_since_prior_order",
     "order_products__prior.csv": "order_id,product_id,add_to_cart_order,reordered",
     "order_products__train.csv": "order_id,product_id,add_to_cart_order,reordered",
     "products.csv": "product_id,product_name,aisle_id,department_id",
     "aisles.csv": "aisle_id,aisle", "departments.csv": "department_id,department"}
data = {}
for f, h in H.items():
    hdr, rows = read(f)
    data[f] = rows
    ok("header_" + f, ",".join(hdr) == h, ",".join(hdr))

# catalogue: sizes, ids, names with commas and quotes quoted as RFC 4180 (csv.writer's
# minimal quoting must reproduce the file byte for byte)
prods, aisles, depts = data["products.csv"], data["aisles.csv"], data["departments.csv"]
ok("catalog_sizes", (len(prods), len(aisles), len(depts)) == (49688, 134, 21), str((len(prods), len(aisles), len(depts))))
def good_product(p):
    return len(p) == 4 and all(x.isdigit() for x in (p[0], p[2], p[3])) and p[1] and \
        1 <= int(p[2]) <= 134 and 1 <= int(p[3]) <= 21
badp = [p for p in prods if not good_product(p)]
ok("catalog_rows", not badp and [int(p[0]) for p in prods] == list(range(1, 49689)), f"bad rows {badp[:3]}")
ncomma = sum("," in p[1] for p in prods); nquote = sum('"' in p[1] for p in prods)
ok("names_with_commas_and_quotes", ncomma >= 100 and nquote >= 50, f"{ncomma} with commas, {nquote} with quotes")
buf = io.StringIO(); w = csv.writer(buf, lineterminator="\n")
w.writerow(H["products.csv"].split(",")); w.writerows(prods)
with open(os.path.join(d, "products.csv"), newline="") as f: raw = f.read()
ok("products_quoting_rfc4180", buf.getvalue() == raw, "re-serialised products.csv differs")
aisle_of = {int(p[0]): int(p[2]) for p in prods if good_product(p)}

# orders
by_user = collections.defaultdict(list); info = {}
bad = []
for oid, u, es, num, dow, hour, ds in data["orders.csv"]:
    oid, u, num = int(oid), int(u), int(num)
    if oid in info: bad.append(f"duplicate order_id {oid}")
    info[oid] = (u, es, num)
    if not (0 <= int(dow) <= 6 and 0 <= int(hour) <= 23): bad.append(f"order {oid}: dow {dow} hour {hour}")
    if (ds == "") != (num == 1): bad.append(f"order {oid}: order_number {num}, days_since '{ds}'")
    if ds != "" and not (ds.endswith(".0") and ds[:-2].isdigit() and 0 <= int(ds[:-2]) <= 30):
        bad.append(f"order {oid}: days_since '{ds}'")
    by_user[u].append((num, oid, es, ds))
for u, ol in by_user.items():
    ol.sort()
    if [o[0] for o in ol] != list(range(1, len(ol) + 1)): bad.append(f"user {u}: order numbers not 1..n")
    if any(o[2] != "prior" for o in ol[:-1]) or ol[-1][2] not in ("train", "test"): bad.append(f"user {u}: eval_set")
ok("orders_well_formed", not bad, "; ".join(bad[:5]))
nusers = len(by_user)
ok("all_users_present", sorted(by_user) == list(range(1, nusers + 1)), "user ids not 1..N")
n = sorted(len(v) for v in by_user.values())
mean_n, med_n = sum(n) / len(n), n[len(n) // 2]
ok("orders_per_user_4_100", n[0] >= 4 and n[-1] <= 100, f"min {n[0]} max {n[-1]}")
ok("orders_per_user_skewed", 13 <= mean_n <= 20.5 and 8 <= med_n <= 12 and n.count(4) / len(n) >= 0.05,
   f"mean {mean_n:.2f} median {med_n} share with 4 {n.count(4)/len(n):.3f}")
train = sum(v[-1][2] == "train" for v in by_user.values()) / nusers
ok("train_test_share", 0.58 <= train <= 0.70, f"train share {train:.3f}")
dss = [int(o[3][:-2]) for v in by_user.values() for o in v if o[3]]
share30 = dss.count(30) / len(dss); mean_ds = sum(dss) / len(dss)
ok("days_since_realistic", 0.03 <= share30 <= 0.25 and 7 <= mean_ds <= 16, f"share of 30: {share30:.3f}, mean {mean_ds:.1f}")
inc = [ol[i][1] < ol[i + 1][1] for ol in by_user.values() for i in range(len(ol) - 1)]
ok("order_ids_shuffled", 0.4 <= sum(inc) / len(inc) <= 0.6, f"{sum(inc)/len(inc):.3f} of consecutive ids increase")

# items
items = collections.defaultdict(list); bad = []
for f, want in (("order_products__prior.csv", "prior"), ("order_products__train.csv", "train")):
    for oid, pid, cart, re in data[f]:
        oid = int(oid)
        if oid not in info or info[oid][1] != want: bad.append(f"{f}: order {oid} is not a {want} order"); continue
        if int(pid) not in aisle_of: bad.append(f"{f}: unknown product {pid}")
        items[oid].append((int(cart), int(pid), int(re)))
for oid, (u, es, num) in info.items():
    b = sorted(items.get(oid, []))
    if es == "test":
        if b: bad.append(f"test order {oid} has items")
        continue
    if not 1 <= len(b) <= 145: bad.append(f"order {oid}: basket of {len(b)}")
    if [x[0] for x in b] != list(range(1, len(b) + 1)): bad.append(f"order {oid}: add_to_cart_order not 1..k")
    if len({x[1] for x in b}) != len(b): bad.append(f"order {oid}: a product twice")
ok("items_well_formed", not bad, "; ".join(bad[:5]))
bad = []
for u, ol in by_user.items():   # reordered == 1 exactly when bought in an earlier order
    seen = set()
    for num, oid, es, ds in ol:
        for cart, p, re in items.get(oid, []):
            if re != (p in seen): bad.append(f"user {u} order {num} product {p}: reordered {re}")
        seen.update(p for _, p, _ in items.get(oid, []))
ok("reordered_flag_matches_history", not bad, "; ".join(bad[:5]))
rows = [x for b in items.values() for x in b]
basket = len(rows) / len(items); reorder = sum(x[2] for x in rows) / len(rows)
ok("mean_basket_8_12", 8 <= basket <= 12, f"{basket:.2f}")
ok("reorder_share_050_068", 0.50 <= reorder <= 0.68, f"{reorder:.3f}")

# Zipf-like popularity: a heavy head and a rank-frequency slope near -1
cnt = collections.Counter(x[1] for x in rows)
top = [c for _, c in cnt.most_common(1000)]
xs = [math.log(r) for r in range(10, 1001)]; ys = [math.log(top[r - 1]) for r in range(10, 1001)]
mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
slope = sum((a - mx) * (b - my) for a, b in zip(xs, ys)) / sum((a - mx) ** 2 for a in xs)
ok("zipf_like_popularity", 0.005 <= top[0] / len(rows) <= 0.03 and -1.3 <= slope <= -0.5,
   f"top share {top[0]/len(rows):.4f}, slope {slope:.2f}")

# users concentrate on a few aisles; items of one order share aisles (co-purchase)
shares = []
aisle_tot = collections.Counter(aisle_of[x[1]] for x in rows)
glob3 = sum(c for _, c in aisle_tot.most_common(3)) / len(rows)
for ol in by_user.values():
    ac = collections.Counter(aisle_of[p] for _, oid, _, _ in ol for _, p, _ in items.get(oid, []))
    if sum(ac.values()) >= 50: shares.append(sum(c for _, c in ac.most_common(3)) / sum(ac.values()))
u3 = sum(shares) / len(shares)
ok("users_prefer_few_aisles", u3 >= 2 * glob3, f"users' top-3 aisle share {u3:.3f}, overall {glob3:.3f}")
rnd = random.Random(1); oids = [o for o in items if len(items[o]) >= 2]; same = other = 0
for _ in range(30000):
    b = items[rnd.choice(oids)]; x, y = rnd.sample(b, 2); z = rnd.choice(items[rnd.choice(oids)])
    same += aisle_of[x[1]] == aisle_of[y[1]]; other += aisle_of[x[1]] == aisle_of[z[1]]
ok("co_purchase_within_orders", same >= 2 * other, f"same-aisle pairs in an order {same}, across orders {other}")

# staples: "the user's most frequent items" is a strong baseline, but not a perfect one
f1s = []
for ol in by_user.values():
    if ol[-1][2] != "train": continue
    truth = {p for _, p, _ in items[ol[-1][1]]}
    hist = [[p for _, p, _ in items[o[1]]] for o in ol[:-1]]
    c = collections.Counter(p for h in hist for p in h)
    k = max(1, round(sum(map(len, hist)) / len(hist) * 0.6))
    pred = {p for p, _ in sorted(c.items(), key=lambda x: (-x[1], x[0]))[:k]}
    tp = len(pred & truth); f1s.append(2 * tp / (len(pred) + len(truth)))
f1 = sum(f1s) / len(f1s)
ok("top_frequency_baseline_strong_not_perfect", 0.2 <= f1 <= 0.6, f"F1 {f1:.3f}")
sys.exit(1 if failed else 0)
EOF

# ---- a sequence model has something to learn ------------------------------------------------
# For each train user's past products, predict "in the train order" with gradient boosting
# from frequency features alone, then with recency and periodicity features added (orders
# and days since the last purchase, the product's typical gap): the held-out AUC must rise
# clearly, i.e. frequency is a strong baseline but timing carries signal beyond it.
OMP_NUM_THREADS=1 "$PY" - "$T_TMP/a" <<'EOF' || t_fail timing_signal "the python check exited with status $?"
import collections, csv, math, os, sys
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
d = sys.argv[1]
def read(name):
    with open(os.path.join(d, name), newline="") as f:
        r = csv.reader(f); next(r); return list(r)
by_user = collections.defaultdict(list)
for oid, u, es, num, dow, hour, ds in read("orders.csv"):
    by_user[int(u)].append((int(num), int(oid), es, int(ds[:-2]) if ds else 0))
items = collections.defaultdict(set)
for f in ("order_products__prior.csv", "order_products__train.csv"):
    for oid, pid, cart, re in read(f): items[int(oid)].add(int(pid))
X, y, grp = [], [], []
for u, ol in by_user.items():
    ol.sort()
    if ol[-1][2] != "train": continue
    truth = items[ol[-1][1]]; hist = [items[o[1]] for o in ol[:-1]]; L = len(hist)
    day = np.cumsum([o[3] for o in ol])
    cnt = collections.Counter(); first = {}; last = {}
    for i, h in enumerate(hist):
        for p in h: cnt[p] += 1; first.setdefault(p, i); last[p] = i
    for p, c in cnt.items():
        gap_days = (day[last[p]] - day[first[p]]) / (c - 1) if c > 1 else 60.0
        since_days = day[L] - day[last[p]]
        X.append([c / L, c, L, L - 1 - last[p], L - first[p], c / (L - first[p]), since_days,
                  gap_days, since_days / max(gap_days, 1.0)])
        y.append(p in truth); grp.append(u)
X, y, grp = np.array(X), np.array(y), np.array(grp)
tr, te = grp % 2 == 0, grp % 2 == 1
auc = {}
for name, cols in (("frequency", [0, 1, 2]), ("timing", list(range(9)))):
    m = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(X[tr][:, cols], y[tr])
    auc[name] = roc_auc_score(y[te], m.predict_proba(X[te][:, cols])[:, 1])
print(f"# held-out AUC: frequency {auc['frequency']:.4f}, with recency/periodicity {auc['timing']:.4f}")
good = auc["timing"] - auc["frequency"] >= 0.01 and auc["frequency"] >= 0.7
print(("ok" if good else "not ok") + " recency_and_periodicity_add_signal" +
      ("" if good else f": AUC frequency {auc['frequency']:.4f}, with timing {auc['timing']:.4f}"))
EOF

# ---- the real files' layout ---------------------------------------------------------------------
REAL="$NB_DATA/instacart-sample64"
if [[ -f "$REAL/orders.csv" ]]; then
    for f in orders.csv order_products__prior.csv order_products__train.csv; do
        t_eq "same_header_as_instacart_$f" "$(head -1 "$T_TMP/a/$f")" "$(head -1 "$REAL/$f")"
    done
    # days_since_prior_order is written like Instacart's: "15.0", empty for a first order
    t_eq days_since_format_as_instacart \
        "$(awk -F, 'NR > 1 { print ($7 == "" ? "empty" : ($7 ~ /^[0-9]+\.0$/ ? "N.0" : "other")) }' "$REAL/orders.csv" | sort -u | tr '\n' ' ')" \
        "$(awk -F, 'NR > 1 { print ($7 == "" ? "empty" : ($7 ~ /^[0-9]+\.0$/ ? "N.0" : "other")) }' "$T_TMP/a/orders.csv" | sort -u | tr '\n' ' ')"
else
    t_skip same_header_as_instacart "$REAL absent"
fi

# ---- a real catalogue ------------------------------------------------------------------------
CAT="$NB_DATA/instacart-catalog"
if [[ -f "$CAT/products.csv" ]]; then
    "$SYNTH" --users 300 --seed 3 --out "$T_TMP/r" --catalog "$CAT" 2>/dev/null; t_eq catalog_run_exit $? 0
    for f in products.csv aisles.csv departments.csv; do
        cmp -s "$CAT/$f" "$T_TMP/r/$f" && t_ok "catalog_copied_$f" || t_fail "catalog_copied_$f" "differs from $CAT/$f"
    done
    unknown=$(awk -F, 'FNR == 1 { next } NR == FNR { known[$1] = 1; next } !($2 in known) { n++ } END { print n + 0 }' \
        "$CAT/products.csv" "$T_TMP/r/order_products__prior.csv" "$T_TMP/r/order_products__train.csv")
    t_eq catalog_items_use_catalog_ids "$unknown" 0
else
    t_skip catalog_copied "$CAT absent"
fi
t_exit
