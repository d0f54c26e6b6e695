/* test_ranker.c -- the ranking stage (issue 10): every feature of infer/rkfeat.h against a
 * hand-computed case, the candidate sources, the out-of-fold product statistics (a target
 * order cannot reach its own user's features), the ranker file's round trip, determinism
 * and checksum refusal. */
#include "baselines.h"
#include "crc32.h"
#include "harness.h"
#include "hist_fixture.h"
#include "nb_err.h"
#include "ranker.h"
#include "rkfeat.h"
#include "rkscore.h"
#include "rkstore.h"
#include "rktrain.h"
#include "store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FEQ(a, b) (fabs((double)(a) - (double)(b)) < 1e-6)
#define X(c, f) (ru.x[(size_t)(c)*TR_RK_NF + (f)])

/* User 7: four prior orders and a train order (the target, hist_end excludes it).
 *   o0 (days NULL) {0, 1}   o1 (+7) {0, 2, 0}   o2 (+14) {1}   o3 (+7) {0, 3}   train {0, 5}
 * Aisles: products 0, 1, 4 -> 10; 2 -> 20; 3 -> 30; 5 -> 40. */
static void user7(st_history *h) {
    hf_build b;
    hf_begin(&b, h, 6, 1, 1);
    const int32_t aisle[6] = {10, 10, 20, 30, 10, 40};
    for (int p = 0; p < 6; p++) h->product_aisle[p] = aisle[p], h->product_dept[p] = aisle[p] / 20;
    hf_user(&b, 7);
    hf_order(&b, 1, ST_PRIOR, -1);
    hf_item(&b, 0);
    hf_item(&b, 1);
    hf_order(&b, 2, ST_PRIOR, 7);
    hf_item(&b, 0);
    hf_item(&b, 2);
    hf_item(&b, 0);
    hf_order(&b, 3, ST_PRIOR, 14);
    hf_item(&b, 1);
    hf_order(&b, 4, ST_PRIOR, 7);
    hf_item(&b, 0);
    hf_item(&b, 3);
    hf_order(&b, 5, ST_TRAIN, 3);
    hf_item(&b, 0);
    hf_item(&b, 5);
    hf_end(&b);
}

static int test_features_hand(void) {
    st_history h;
    user7(&h);
    char err[NB_ERRLEN];
    tr_rk_user ru = {0};
    tr_rk_pstats ps = {6, NULL, NULL, NULL};
    float pop[6] = {.1f, .2f, .3f, .4f, .5f, .6f}, reo[6] = {0}, reb[6] = {0};
    ps.pop = pop, ps.reorder = reo, ps.rebuy = reb;
    float prob[6] = {.9f, .8f, .7f, .6f, .5f, .4f};
    int32_t ni[4] = {4, 5, 0, 2};
    float nv[4] = {.3f, .2f, .1f, 0.0f};
    int32_t cos[6] = {0, 1, 2, 3, 4, 5};
    T_ASSERT(tr_rk_user_init(&ru, &h, err, sizeof err) == NB_OK, "%s", err);
    int64_t end = 4; /* the train order */
    T_ASSERT(tr_rk_user_build(&ru, &h, 0, end, &ps, ni, nv, 4, cos, 6, prob, 1, err, sizeof err) ==
                 NB_OK,
             "%s", err);
    /* own 0..3 ascending, then neighbours 4 (0.3), 5 (0.2); nothing unseen is left for cos */
    T_ASSERT(ru.n == 6 && ru.n_own == 4, "n %d own %d", ru.n, ru.n_own);
    const int32_t want[6] = {0, 1, 2, 3, 4, 5};
    const uint8_t wsrc[6] = {1, 1, 1, 1, 2, 2};
    for (int c = 0; c < 6; c++)
        T_ASSERT(ru.cand[c] == want[c] && ru.src[c] == wsrc[c], "candidate %d: %d src %d", c,
                 ru.cand[c], ru.src[c]);
    /* product 0: in o0, o1, o3 (n = 4, once in o1 despite two lines) */
    T_ASSERT(FEQ(X(0, TR_RK_SHARE), 0.75), "share %g", X(0, TR_RK_SHARE));
    double s90 = 1 + .9 + .81 + .729, s70 = 1 + .7 + .49 + .343, s50 = 1 + .5 + .25 + .125;
    T_ASSERT(FEQ(X(0, TR_RK_DSHARE90), (1 + .81 + .729) / s90), "dshare90 %g",
             X(0, TR_RK_DSHARE90));
    T_ASSERT(FEQ(X(0, TR_RK_DSHARE70), (1 + .49 + .343) / s70), "dshare70");
    T_ASSERT(FEQ(X(0, TR_RK_DSHARE50), (1 + .25 + .125) / s50), "dshare50");
    T_ASSERT(X(0, TR_RK_LAST1) == 1 && X(0, TR_RK_LAST3) == 2 && X(0, TR_RK_LAST5) == 3 &&
                 X(0, TR_RK_COUNT) == 3,
             "last1/3/5/count %g %g %g %g", X(0, TR_RK_LAST1), X(0, TR_RK_LAST3), X(0, TR_RK_LAST5),
             X(0, TR_RK_COUNT));
    T_ASSERT(X(0, TR_RK_SINCE) == 0 && X(0, TR_RK_DAYS_SINCE) == 0, "since");
    T_ASSERT(FEQ(X(0, TR_RK_GAP), 1.5) && FEQ(X(0, TR_RK_DUE), 0), "gap %g", X(0, TR_RK_GAP));
    T_ASSERT(FEQ(X(0, TR_RK_GAP_DAYS), 14) && FEQ(X(0, TR_RK_DUE_DAYS), 0), "gap days %g",
             X(0, TR_RK_GAP_DAYS));
    T_ASSERT(FEQ(X(0, TR_RK_SHARE_SINCE_FIRST), 0.75), "share since first");
    /* product 1: o0, o2 */
    T_ASSERT(FEQ(X(1, TR_RK_SHARE), 0.5) && X(1, TR_RK_LAST1) == 0 && X(1, TR_RK_LAST3) == 1 &&
                 X(1, TR_RK_LAST5) == 2,
             "product 1 counts");
    T_ASSERT(X(1, TR_RK_SINCE) == 1 && FEQ(X(1, TR_RK_DAYS_SINCE), 7), "product 1 since %g days %g",
             X(1, TR_RK_SINCE), X(1, TR_RK_DAYS_SINCE));
    T_ASSERT(FEQ(X(1, TR_RK_GAP), 2) && FEQ(X(1, TR_RK_DUE), 0.5), "product 1 gap/due");
    T_ASSERT(FEQ(X(1, TR_RK_GAP_DAYS), 21) && FEQ(X(1, TR_RK_DUE_DAYS), 7.0 / 21), "days gap/due");
    /* product 2: o1 only */
    T_ASSERT(X(2, TR_RK_SINCE) == 2 && FEQ(X(2, TR_RK_DAYS_SINCE), 21) && isnan(X(2, TR_RK_GAP)) &&
                 isnan(X(2, TR_RK_DUE)) && isnan(X(2, TR_RK_GAP_DAYS)),
             "product 2 once");
    T_ASSERT(FEQ(X(2, TR_RK_SHARE_SINCE_FIRST), 1.0 / 3), "product 2 share since first");
    /* an unseen candidate: zeros and missing values */
    T_ASSERT(X(4, TR_RK_SHARE) == 0 && X(4, TR_RK_COUNT) == 0 && isnan(X(4, TR_RK_SINCE)) &&
                 isnan(X(4, TR_RK_DAYS_SINCE)) && X(4, TR_RK_TIFU_OWN) == 0,
             "unseen product 4");
    /* user level: 7 distinct items in 4 orders, 3 of them repeats, 4 products, 28 days */
    for (int c = 0; c < 6; c++)
        T_ASSERT(X(c, TR_RK_U_ORDERS) == 4 && FEQ(X(c, TR_RK_U_BASKET), 1.75) &&
                     FEQ(X(c, TR_RK_U_REORDER), 3.0 / 7) && X(c, TR_RK_U_DISTINCT) == 4 &&
                     FEQ(X(c, TR_RK_U_DAYS), 28.0 / 3),
                 "user features of candidate %d", c);
    /* product statistics, aisles, sources, model */
    T_ASSERT(X(3, TR_RK_P_POP) == .4f && X(5, TR_RK_P_POP) == .6f, "p_pop");
    T_ASSERT(FEQ(X(4, TR_RK_AISLE_SHARE), 1.0) && FEQ(X(2, TR_RK_AISLE_SHARE), 0.25) &&
                 X(5, TR_RK_AISLE_SHARE) == 0,
             "aisle shares %g %g", X(4, TR_RK_AISLE_SHARE), X(2, TR_RK_AISLE_SHARE));
    /* departments: aisle/20 -> 10, 20 -> 0 (products 0, 1, 4), 1 (2, 3), 2 (5) */
    T_ASSERT(FEQ(X(4, TR_RK_DEPT_SHARE), 1.0) && FEQ(X(3, TR_RK_DEPT_SHARE), 0.5), "dept shares");
    T_ASSERT(X(0, TR_RK_SRC_OWN_F) == 1 && X(4, TR_RK_SRC_NBR_F) == 1 &&
                 X(4, TR_RK_SRC_OWN_F) == 0 && X(0, TR_RK_SRC_COS_F) == 0,
             "source flags");
    T_ASSERT(X(0, TR_RK_TIFU_NBR) == .1f && X(4, TR_RK_TIFU_NBR) == .3f &&
                 X(1, TR_RK_TIFU_NBR) == 0,
             "neighbour part");
    T_ASSERT(X(2, TR_RK_MODEL) == .7f && X(5, TR_RK_MODEL) == .4f, "model probability");
    /* TIFU personal part: groups of 3 from the most recent, G = 2: weights o3 1/6, o2 0.15,
     * o1 0.135, o0 0.35 (its own group of one, decayed by r_g) */
    T_ASSERT(FEQ(X(0, TR_RK_TIFU_OWN), 0.35 + 0.135 + 1.0 / 6), "tifu_own %g",
             X(0, TR_RK_TIFU_OWN));
    T_ASSERT(FEQ(X(1, TR_RK_TIFU_OWN), 0.35 + 0.15), "tifu_own 1");
    /* TIFU-KNN's score with the default alpha 0.9, and its rank among the 6 candidates */
    T_ASSERT(FEQ(X(0, TR_RK_TIFU), 0.9 * (0.35 + 0.135 + 1.0 / 6) + 0.1 * 0.1) &&
                 FEQ(X(1, TR_RK_TIFU), 0.9 * 0.5) && FEQ(X(4, TR_RK_TIFU), 0.03) &&
                 FEQ(X(5, TR_RK_TIFU), 0.02),
             "tifu %g %g %g %g", X(0, TR_RK_TIFU), X(1, TR_RK_TIFU), X(4, TR_RK_TIFU),
             X(5, TR_RK_TIFU));
    int seen_rank[6] = {0};
    for (int c = 0; c < 6; c++) {
        int r = (int)X(c, TR_RK_TIFU_RANK), above = 0;
        for (int d = 0; d < 6; d++)
            above += X(d, TR_RK_TIFU) > X(c, TR_RK_TIFU) ||
                     (X(d, TR_RK_TIFU) == X(c, TR_RK_TIFU) && d < c);
        T_ASSERT(r == above && !seen_rank[r], "tifu_rank of %d: %d, %d above it", c, r, above);
        seen_rank[r] = 1;
    }
    T_ASSERT(X(0, TR_RK_TIFU_RANK) == 0 && X(4, TR_RK_TIFU_RANK) == 4 &&
                 X(5, TR_RK_TIFU_RANK) == 5,
             "tifu_rank %g %g %g", X(0, TR_RK_TIFU_RANK), X(4, TR_RK_TIFU_RANK),
             X(5, TR_RK_TIFU_RANK));
    /* ... and the same as baselines.h's user vector */
    tr_tifu_params tp;
    tr_tifu_defaults(&tp);
    tr_bl_ws *ws = NULL;
    int32_t vi[6];
    float vv[6];
    int nnz = 0;
    T_ASSERT(tr_bl_ws_new(&ws, 6, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_tifu_user_vector(&h, 0, end, &tp, ws, vi, vv, &nnz, err, sizeof err) == NB_OK, "%s",
             err);
    T_ASSERT(nnz == 4, "nnz %d", nnz);
    for (int i = 0; i < nnz; i++)
        T_ASSERT(fabs(vv[i] - X(vi[i], TR_RK_TIFU_OWN)) < 1e-6,
                 "tifu_own of %d: %g vs baselines %g", vi[i], X(vi[i], TR_RK_TIFU_OWN), vv[i]);
    tr_bl_ws_free(ws);
    /* without a neighbour source: the model's best unseen products of the cosine set */
    T_ASSERT(tr_rk_user_build(&ru, &h, 0, end, &ps, NULL, NULL, 0, cos, 6, prob, 1, err,
                              sizeof err) == NB_OK,
             "%s", err);
    T_ASSERT(ru.n == 6 && ru.cand[4] == 4 && ru.src[4] == TR_RK_SRC_COS && ru.cand[5] == 5,
             "cos source: %d %d", ru.cand[4], ru.src[4]);
    /* own only; and without model probabilities the model feature is missing */
    T_ASSERT(tr_rk_user_build(&ru, &h, 0, end, &ps, ni, nv, 4, cos, 6, NULL, 0, err, sizeof err) ==
                     NB_OK &&
                 ru.n == 4 && isnan(X(0, TR_RK_MODEL)),
             "own only");
    /* bad input is named */
    T_ASSERT(tr_rk_user_build(&ru, &h, 0, 99, &ps, NULL, NULL, 0, NULL, 0, NULL, 1, err,
                              sizeof err) == NB_EINVAL &&
                 strstr(err, "history end"),
             "%s", err);
    ni[0] = 6;
    T_ASSERT(tr_rk_user_build(&ru, &h, 0, end, &ps, ni, nv, 1, NULL, 0, NULL, 1, err, sizeof err) ==
                     NB_EINVAL &&
                 strstr(err, "neighbour product"),
             "%s", err);
    /* a user without history: no candidates */
    T_ASSERT(tr_rk_user_build(&ru, &h, 0, 0, &ps, NULL, NULL, 0, NULL, 0, NULL, 1, err,
                              sizeof err) == NB_OK &&
                 ru.n == 0,
             "empty history");
    tr_rk_user_free(&ru);
    st_history_free(&h);
    return T_PASS;
}

/* The neighbour source keeps only the TR_RK_NBR_TOP best unseen products (ties: index). */
static int test_nbr_cap(void) {
    st_history h;
    hf_build b;
    int P = TR_RK_NBR_TOP + 20;
    hf_begin(&b, &h, P, 1, 1);
    hf_user(&b, 1);
    hf_order(&b, 1, ST_PRIOR, -1);
    hf_item(&b, 0);
    hf_end(&b);
    char err[NB_ERRLEN];
    tr_rk_user ru = {0};
    float *z = calloc((size_t)P, sizeof(float)), *nv = malloc((size_t)P * sizeof(float));
    int32_t *ni = malloc((size_t)P * sizeof(int32_t));
    tr_rk_pstats ps = {P, z, z, z};
    for (int p = 0; p < P; p++) ni[p] = p, nv[p] = p < 10 ? 0.5f : 1.0f / (float)(p + 1);
    T_ASSERT(tr_rk_user_init(&ru, &h, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_rk_user_build(&ru, &h, 0, 1, &ps, ni, nv, P, NULL, 0, NULL, 1, err, sizeof err) ==
                 NB_OK,
             "%s", err);
    T_ASSERT(ru.n == 1 + TR_RK_NBR_TOP, "n %d", ru.n);
    T_ASSERT(ru.cand[1] == 1 && ru.cand[9] == 9 && ru.cand[10] == 10,
             "order: ties by index, then score");
    T_ASSERT(ru.cand[ru.n - 1] == TR_RK_NBR_TOP, "last %d", ru.cand[ru.n - 1]);
    tr_rk_user_free(&ru);
    free(z), free(nv), free(ni);
    st_history_free(&h);
    return T_PASS;
}

/* Out-of-fold statistics: product 5 is bought only in the target orders of users of one
 * fold; the statistics that fold's users see do not contain it, the others' do. */
static int test_oof_stats(void) {
    st_history h;
    hf_build b;
    hf_begin(&b, &h, 6, 1, 1);
    /* pick user ids: two in one fold f, one in another fold */
    int32_t ids[3] = {0, 0, 0};
    int f = -1, n = 0;
    for (int32_t id = 1; n < 3 && id < 1000; id++) {
        int k = tr_rk_fold(id);
        if (n == 0)
            f = k, ids[n++] = id;
        else if (n == 1 && k == f)
            ids[n++] = id;
        else if (n == 2 && k != f)
            ids[n++] = id;
    }
    T_ASSERT(n == 3, "user ids");
    int32_t sorted[3] = {ids[0], ids[1], ids[2]};
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (sorted[j] < sorted[i]) {
                int32_t t = sorted[i];
                sorted[i] = sorted[j];
                sorted[j] = t;
            }
    int oid = 1;
    for (int i = 0; i < 3; i++) {
        int32_t id = sorted[i];
        int in_f = tr_rk_fold(id) == f;
        hf_user(&b, id);
        hf_order(&b, oid++, ST_PRIOR, -1);
        hf_item(&b, 0);
        hf_item(&b, 1);
        hf_order(&b, oid++, ST_PRIOR, 5);
        hf_item(&b, 0);
        hf_order(&b, oid++, ST_TRAIN, 5);
        hf_item(&b, 0);
        if (in_f)
            hf_item(&b, 5); /* the fold's users' targets hold product 5 */
        else
            hf_item(&b, 2);
    }
    hf_end(&b);
    tr_sample smp[3];
    for (int u = 0; u < 3; u++) smp[u] = (tr_sample){u, h.user_order_off[u] + 2};
    tr_rk_pstats all, oof[TR_RK_FOLDS];
    char err[NB_ERRLEN];
    T_ASSERT(tr_rk_oof_stats(&h, smp, 3, &all, oof, err, sizeof err) == NB_OK, "%s", err);
    /* all: 9 orders, product 5 in 2 of them; product 0 in all 9, 6 of its items repeats */
    T_ASSERT(FEQ(all.pop[5], 2.0 / 9) && FEQ(all.pop[0], 1.0) && FEQ(all.reorder[0], 6.0 / 9) &&
                 FEQ(all.rebuy[0], 1.0) && all.rebuy[5] == 0,
             "all: pop5 %g", all.pop[5]);
    /* fold f: only the other user (3 orders) */
    T_ASSERT(oof[f].pop[5] == 0 && oof[f].reorder[5] == 0 && oof[f].rebuy[5] == 0,
             "the fold's own targets leak: pop %g", oof[f].pop[5]);
    T_ASSERT(FEQ(oof[f].pop[2], 1.0 / 3) && FEQ(oof[f].pop[1], 1.0 / 3),
             "fold f sees the other user");
    int g = tr_rk_fold(ids[2]);
    T_ASSERT(FEQ(oof[g].pop[5], 2.0 / 6) && oof[g].pop[2] == 0, "fold g: pop5 %g pop2 %g",
             oof[g].pop[5], oof[g].pop[2]);
    tr_rk_pstats_free(&all);
    for (int k = 0; k < TR_RK_FOLDS; k++) tr_rk_pstats_free(&oof[k]);
    st_history_free(&h);
    return T_PASS;
}

/* Deterministic rows: label = x0 + 0.5 x1 > 0.8 with a little structure in x2. */
static void toy_rows(float *X, float *y, int n, int nf) {
    uint64_t s = 12345;
    for (int i = 0; i < n; i++) {
        for (int f = 0; f < nf; f++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            X[(size_t)i * nf + f] = (float)((s >> 40) & 0xffff) / 65536.0f;
        }
        if (i % 7 == 0) X[(size_t)i * nf + 3] = NAN;
        y[i] = X[(size_t)i * nf] + 0.5f * X[(size_t)i * nf + 1] > 0.8f ? 1.0f : 0.0f;
    }
}

static int test_ranker_file(void) {
    enum { N = 2000, NF = 5 };
    float *X = malloc(sizeof(float) * N * NF), *y = malloc(sizeof(float) * N);
    float *p1 = malloc(sizeof(float) * N), *p2 = malloc(sizeof(float) * N);
    toy_rows(X, y, N, NF);
    tr_ranker_params prm;
    tr_ranker_defaults(&prm);
    prm.trees = 40;
    tr_ranker a = {0}, b = {0}, c = {0};
    char err[NB_ERRLEN], path[512], bad[512];
    uint32_t crc = 0, crc2 = 0;
    T_ASSERT(tr_ranker_train(&a, X, y, N, NF, &prm, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_ranker_train(&b, X, y, N, NF, &prm, err, sizeof err) == NB_OK, "%s", err);
    /* same data, parameters and seed: the same model bytes */
    uint8_t *ba = NULL, *bb = NULL;
    size_t la = 0, lb = 0;
    T_ASSERT(tr_ranker_serialize(&a, &ba, &la, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_ranker_serialize(&b, &bb, &lb, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(la == lb && memcmp(ba, bb, la) == 0, "two trainings differ (%zu vs %zu bytes)", la,
             lb);
    free(ba), free(bb);
    T_ASSERT(tr_ranker_predict(&a, X, N, NF, p1, err, sizeof err) == NB_OK, "%s", err);
    int right = 0;
    for (int i = 0; i < N; i++) right += (p1[i] >= 0.5f) == (y[i] > 0);
    T_ASSERT(right > N * 9 / 10, "the trees learned the rule: %d of %d", right, N);
    snprintf(path, sizeof path, "%s/r.xgb", t_tmpdir());
    T_ASSERT(tr_ranker_save(&a, path, &crc, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_ranker_load(&c, path, &crc2, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(crc == crc2 && c.n_features == NF, "checksum %08x vs %08x", crc, crc2);
    T_ASSERT(tr_ranker_predict(&c, X, N, NF, p2, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(memcmp(p1, p2, sizeof(float) * N) == 0, "predictions after the round trip differ");
    tr_ranker_free(&c);
    /* one row at a time gives the same bits as the batch (serving scores one user) */
    for (int i = 0; i < 50; i++) {
        float q;
        T_ASSERT(tr_ranker_predict(&a, X + (size_t)i * NF, 1, NF, &q, err, sizeof err) == NB_OK, "%s",
                 err);
        T_ASSERT(memcmp(&q, &p1[i], sizeof q) == 0, "row %d: %g vs %g", i, q, p1[i]);
    }
    /* a flipped byte, a truncation, a wrong magic: refused with the file named */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)len);
    T_ASSERT(fread(buf, 1, (size_t)len, f) == (size_t)len, "read");
    fclose(f);
    snprintf(bad, sizeof bad, "%s/bad.xgb", t_tmpdir());
    long offs[3] = {30, len / 2, len - 2};
    for (int k = 0; k < 3; k++) {
        buf[offs[k]] ^= 0x10;
        f = fopen(bad, "wb");
        fwrite(buf, 1, (size_t)len, f);
        fclose(f);
        buf[offs[k]] ^= 0x10;
        T_ASSERT(tr_ranker_load(&c, bad, &crc2, err, sizeof err) == NB_EFORMAT &&
                     strstr(err, "checksum") && strstr(err, "bad.xgb"),
                 "flip at %ld: %s", offs[k], err);
    }
    f = fopen(bad, "wb");
    fwrite(buf, 1, (size_t)len - 5, f);
    fclose(f);
    T_ASSERT(tr_ranker_load(&c, bad, &crc2, err, sizeof err) == NB_EFORMAT &&
                 strstr(err, "truncated"),
             "truncated: %s", err);
    t_put(t_tmpdir(), "bad.xgb", "not a ranker file at all, just text");
    T_ASSERT(tr_ranker_load(&c, bad, &crc2, err, sizeof err) == NB_EFORMAT && strstr(err, "magic"),
             "magic: %s", err);
    T_ASSERT(tr_ranker_train(&c, X, y, 0, NF, &prm, err, sizeof err) == NB_EINVAL, "no rows");
    free(buf);
    tr_ranker_free(&a);
    tr_ranker_free(&b);
    free(X), free(y), free(p1), free(p2);
    return T_PASS;
}

/* The shipped baseline's scores from the features (the safeguard's serving path). */
static int test_baseline_scores(void) {
    st_history h;
    user7(&h);
    char err[NB_ERRLEN];
    tr_rk_user ru = {0};
    float pop[6] = {.1f, .2f, .3f, .4f, .5f, .6f}, z[6] = {0};
    tr_rk_pstats ps = {6, pop, z, z};
    int32_t ni[2] = {4, 0};
    float nv[2] = {.3f, .1f}, out[6];
    T_ASSERT(tr_rk_user_init(&ru, &h, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_rk_user_build(&ru, &h, 0, 4, &ps, ni, nv, 2, NULL, 0, NULL, 1, err, sizeof err) ==
                     NB_OK &&
                 ru.n == 5,
             "build");
    T_ASSERT(tr_rk_baseline_scores(&ru, "P-TopFreq", out, err, sizeof err) == NB_OK, "%s", err);
    /* shares 0.75, 0.5, 0.25, 0.25, 0: product 3 (bought later) before product 2 */
    T_ASSERT(out[0] > out[1] && out[1] > out[3] && out[3] > out[2] && out[2] > out[4] &&
                 out[4] == 0,
             "P-TopFreq order %g %g %g %g %g", out[0], out[1], out[2], out[3], out[4]);
    T_ASSERT(tr_rk_baseline_scores(&ru, "TIFU-KNN", out, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(FEQ(out[0], 0.9 * (0.35 + 0.135 + 1.0 / 6) + 0.1 * 0.1) && FEQ(out[4], 0.1 * 0.3f),
             "TIFU-KNN blend %g %g", out[0], out[4]);
    T_ASSERT(tr_rk_baseline_scores(&ru, "G-TopFreq", out, err, sizeof err) == NB_OK &&
                 out[4] == .5f,
             "G-TopFreq");
    T_ASSERT(tr_rk_baseline_scores(&ru, "nope", out, err, sizeof err) == NB_EINVAL &&
                 strstr(err, "nope"),
             "unknown: %s", err);
    /* the row form (the training job's) gives the same bits, alpha passed in */
    float rows[6];
    ru.tifu.alpha = 0.6;
    T_ASSERT(tr_rk_baseline_scores(&ru, "TIFU-KNN tuned", out, err, sizeof err) == NB_OK &&
                 tr_rk_baseline_rows(ru.x, ru.n, 0.6, "TIFU-KNN tuned", rows, err, sizeof err) ==
                     NB_OK &&
                 !memcmp(out, rows, (size_t)ru.n * sizeof *out) && FEQ(out[4], 0.4 * 0.3f),
             "rows == scores: %g %g", out[4], rows[4]);
    /* the calibration by hand: 1 / (1 + exp(-(a + b s))), order kept with b > 0 */
    float cs[3] = {0.0f, 0.5f, 0.25f};
    tr_rk_calibrate(cs, 3, -1.0, 4.0);
    T_ASSERT(FEQ(cs[0], 1 / (1 + exp(1.0))) && FEQ(cs[1], 1 / (1 + exp(-1.0))) &&
                 FEQ(cs[2], 0.5) && cs[1] > cs[2] && cs[2] > cs[0],
             "calibrated %g %g %g", cs[0], cs[1], cs[2]);
    tr_rk_user_free(&ru);
    st_history_free(&h);
    return T_PASS;
}

/* The TIFU-KNN features with tuned parameters, by hand: user 7 with m 2, r_b 0.5, r_g 0.8.
 * Orders with items, newest first e = 0..3: o3, o2 (group 0), o1, o0 (group 1), G = 2; weight
 * r_b^(e % m) / |group| * r_g^group / G: o3 0.25, o2 0.125, o1 0.2, o0 0.1. So product 0
 * (o0, o1, o3) 0.55, product 1 (o0, o2) 0.225, product 2 (o1) 0.2, product 3 (o3) 0.25; the
 * tuned baseline with alpha 0.6 is 0.6 * own + 0.4 * nbr. Also: the defaults equal
 * baselines.h's, the personal part equals tr_tifu_user_vector's, and bad parameters are
 * refused. */
static int test_tuned_features_hand(void) {
    st_history h;
    user7(&h);
    char err[NB_ERRLEN];
    tr_rk_user ru = {0};
    float pop[6] = {.1f, .2f, .3f, .4f, .5f, .6f}, z[6] = {0}, out[6];
    tr_rk_pstats ps = {6, pop, z, z};
    int32_t ni[2] = {4, 0};
    float nv[2] = {.3f, .1f};
    tr_tifu_params dp;
    tr_tifu_defaults(&dp);
    tr_rk_tifu dr;
    tr_rk_tifu_defaults(&dr);
    T_ASSERT(dr.m == dp.m && dr.k == dp.k && dr.r_b == dp.r_b && dr.r_g == dp.r_g &&
                 dr.alpha == dp.alpha,
             "defaults differ from tr_tifu_defaults");
    T_ASSERT(tr_rk_user_init(&ru, &h, err, sizeof err) == NB_OK, "%s", err);
    ru.tifu = (tr_rk_tifu){.m = 2, .k = 5, .r_b = 0.5, .r_g = 0.8, .alpha = 0.6};
    T_ASSERT(tr_rk_user_build(&ru, &h, 0, 4, &ps, ni, nv, 2, NULL, 0, NULL, 1, err, sizeof err) ==
                     NB_OK &&
                 ru.n == 5,
             "build: %s", err);
    const double want[4] = {0.55, 0.225, 0.2, 0.25};
    for (int c = 0; c < 4; c++)
        T_ASSERT(ru.cand[c] == c && FEQ(X(c, TR_RK_TIFU_OWN), want[c]), "tifu_own of %d: %g vs %g",
                 ru.cand[c], X(c, TR_RK_TIFU_OWN), want[c]);
    /* the same personal part as the baseline's user vector with these parameters */
    tr_tifu_params tp = {.r_b = 0.5, .r_g = 0.8, .m = 2, .k = 5, .alpha = 0.6};
    tr_bl_ws *ws = NULL;
    int32_t vi[6];
    float vv[6];
    int nnz = 0;
    T_ASSERT(tr_bl_ws_new(&ws, 6, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_tifu_user_vector(&h, 0, 4, &tp, ws, vi, vv, &nnz, err, sizeof err) == NB_OK &&
                 nnz == 4,
             "user vector: %s", err);
    for (int i = 0; i < nnz; i++)
        T_ASSERT(FEQ(vv[i], X(vi[i], TR_RK_TIFU_OWN)), "user vector %d: %g vs feature %g", vi[i],
                 vv[i], X(vi[i], TR_RK_TIFU_OWN));
    tr_bl_ws_free(ws);
    T_ASSERT(tr_rk_baseline_scores(&ru, "TIFU-KNN tuned", out, err, sizeof err) == NB_OK, "%s",
             err);
    T_ASSERT(FEQ(out[0], 0.6 * 0.55 + 0.4 * 0.1) && FEQ(out[1], 0.6 * 0.225) &&
                 FEQ(out[4], 0.4 * 0.3f),
             "tuned blend %g %g %g", out[0], out[1], out[4]);
    ru.tifu.m = 0;
    T_ASSERT(tr_rk_user_build(&ru, &h, 0, 4, &ps, ni, nv, 2, NULL, 0, NULL, 1, err, sizeof err) ==
                     NB_EINVAL &&
                 strstr(err, "TIFU-KNN"),
             "m 0 accepted: %s", err);
    tr_rk_user_free(&ru);
    st_history_free(&h);
    return T_PASS;
}

/* The shipped "TIFU-KNN tuned" serves the tuned baseline's scores: on 6 users over 8
 * products, the neighbour pairs nb-train stores (tr_rk_serving_nbr with the tuned
 * parameters) and the features with them, blended by tr_rk_baseline_scores, give every
 * candidate the score tr_tifu_score gives it with the same parameters (alpha included), and
 * every product that baseline scores above 0 is a candidate: the same ranking. */
static int test_tuned_baseline_parity(void) {
    st_history h;
    hf_build b;
    enum { P = 8, U = 6 };
    hf_begin(&b, &h, P, 1, 1);
    int oid = 0;
    tr_sample tr[U];
    for (int u = 0; u < U; u++) {
        hf_user(&b, 100 + u);
        for (int o = 0; o < 5; o++) {
            hf_order(&b, ++oid, o == 4 ? ST_TRAIN : ST_PRIOR, o ? 7 : -1);
            for (int p = 0; p < P; p++)
                if ((p * 7 + u * 3 + o * 5) % 11 < 4) hf_item(&b, p);
        }
    }
    hf_end(&b);
    for (int u = 0; u < U; u++) tr[u] = (tr_sample){u, h.user_order_off[u + 1] - 1};
    tr_samples s = {.train = tr, .n_train = U};
    tr_tifu_params tp = {.r_b = 0.6, .r_g = 0.9, .m = 2, .k = 2, .alpha = 0.3};
    char err[NB_ERRLEN];
    tr_rk_nbr nb = {0};
    T_ASSERT(tr_rk_serving_nbr(&h, &s, &tp, &nb, err, sizeof err) == NB_OK, "%s", err);
    tr_popularity pop = {0};
    tr_bl_ws *ws = NULL;
    tr_tifu *t = NULL;
    int32_t ru_ids[U], list[P];
    int64_t ref_end[U];
    float score[P], out[P], z[P] = {0};
    for (int u = 0; u < U; u++) ru_ids[u] = tr[u].user, ref_end[u] = tr[u].target;
    T_ASSERT(tr_popularity_build(&pop, &h, err, sizeof err) == NB_OK &&
                 tr_bl_ws_new(&ws, P, err, sizeof err) == NB_OK &&
                 tr_tifu_build(&t, &h, ru_ids, ref_end, U, &tp, err, sizeof err) == NB_OK,
             "%s", err);
    tr_rk_user ru = {0};
    tr_rk_pstats ps = {P, z, z, z};
    T_ASSERT(tr_rk_user_init(&ru, &h, err, sizeof err) == NB_OK, "%s", err);
    ru.tifu = (tr_rk_tifu){.m = tp.m, .k = tp.k, .r_b = tp.r_b, .r_g = tp.r_g, .alpha = tp.alpha};
    int checked = 0;
    for (int u = 0; u < U; u++) {
        int64_t end = h.user_order_off[u + 1], a = nb.off[u];
        int nl = 0, nn = (int)(nb.off[u + 1] - a);
        T_ASSERT(tr_tifu_score(t, &pop, &h, u, end, ws, P, list, score, &nl, err, sizeof err) ==
                     NB_OK,
                 "%s", err);
        T_ASSERT(tr_rk_user_build(&ru, &h, u, end, &ps, nb.idx + a, nb.val + a, nn, NULL, 0, NULL,
                                  1, err, sizeof err) == NB_OK,
                 "%s", err);
        T_ASSERT(tr_rk_baseline_scores(&ru, "TIFU-KNN tuned", out, err, sizeof err) == NB_OK, "%s",
                 err);
        for (int j = 0; j < nl; j++) {
            int c = 0;
            while (c < ru.n && ru.cand[c] != list[j]) c++;
            if (score[j] <= 0) continue; /* the popularity fill: not a ranking of the method */
            T_ASSERT(c < ru.n, "user %d: product %d (score %g) is not a candidate", u, list[j],
                     score[j]);
            T_ASSERT(fabs(out[c] - score[j]) < 1e-6,
                     "user %d product %d: served %.9g, baseline %.9g", u, list[j], out[c],
                     score[j]);
            checked++;
        }
    }
    T_ASSERT(checked > 2 * U, "only %d products compared", checked);
    tr_rk_user_free(&ru);
    tr_tifu_free(t);
    tr_bl_ws_free(ws);
    tr_popularity_free(&pop);
    tr_rk_nbr_free(&nb);
    st_history_free(&h);
    return T_PASS;
}

/* An in-memory store made by sql (an older store's ranker_models), or NULL. */
static sqlite3 *mem_store(const char *sql) {
    sqlite3 *db = NULL;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* A store whose ranker_models predates the TIFU-KNN columns: st_rk_load_tifu reports the
 * defaults (stored 0) without touching the caller's values, st_rk_ensure_tables adds the
 * columns in place, its old row still reads as "not stored", and a written row reads back. */
static int test_store_tifu_columns(void) {
    char err[NB_ERRLEN];
    sqlite3 *db = mem_store("CREATE TABLE ranker_models (model_id INTEGER PRIMARY KEY, path TEXT "
                            "NOT NULL, checksum TEXT NOT NULL, shipped TEXT NOT NULL);"
                            "INSERT INTO ranker_models VALUES (1, 'x.xgb', '00000000', 'ranker')");
    T_ASSERT(db, "old table");
    int m = 3, k = 300, stored = 9;
    double rb = 0.9, rg = 0.7, al = 0.9;
    T_ASSERT(st_rk_load_tifu(db, 1, &m, &k, &rb, &rg, &al, &stored, err, sizeof err) == NB_OK &&
                 stored == 0 && m == 3 && rb == 0.9,
             "old store: %s", err);
    T_ASSERT(st_rk_ensure_tables(db, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_rk_ensure_tables(db, err, sizeof err) == NB_OK, "twice: %s", err);
    T_ASSERT(st_rk_load_tifu(db, 1, &m, &k, &rb, &rg, &al, &stored, err, sizeof err) == NB_OK &&
                 stored == 0,
             "old row after the columns: %s", err);
    T_ASSERT(sqlite3_exec(db,
                          "UPDATE ranker_models SET tifu_m = 7, tifu_k = 900, tifu_r_b = 0.6, "
                          "tifu_r_g = 1.0, tifu_alpha = 0.3",
                          NULL, NULL, NULL) == SQLITE_OK,
             "update");
    T_ASSERT(st_rk_load_tifu(db, 1, &m, &k, &rb, &rg, &al, &stored, err, sizeof err) == NB_OK &&
                 stored == 1 && m == 7 && k == 900 && rb == 0.6 && rg == 1.0 && al == 0.3,
             "stored row: %s", err);
    T_ASSERT(st_rk_load_tifu(db, 2, &m, &k, &rb, &rg, &al, &stored, err, sizeof err) ==
                 NB_ENOTFOUND,
             "no row");
    sqlite3_close(db);
    return T_PASS;
}

/* The calibration columns (bl_cal_a, bl_cal_b) on a store whose ranker_models has the
 * TIFU-KNN columns but predates them (every store written before this change): none read
 * as "not stored", st_rk_ensure_tables adds them in place, NULL reads as not stored and a
 * written row reads back; a model without a row is NB_ENOTFOUND. */
static int test_store_cal_columns(void) {
    char err[NB_ERRLEN];
    sqlite3 *db = mem_store("CREATE TABLE ranker_models (model_id INTEGER PRIMARY KEY, path TEXT "
                            "NOT NULL, checksum TEXT NOT NULL, shipped TEXT NOT NULL, tifu_m "
                            "INTEGER, tifu_k INTEGER, tifu_r_b REAL, tifu_r_g REAL, tifu_alpha "
                            "REAL);"
                            "INSERT INTO ranker_models VALUES (1, 'x.xgb', '00000000', "
                            "'TIFU-KNN tuned', 3, 300, 0.9, 0.7, 0.5)");
    T_ASSERT(db, "old table");
    double a = 7, b = 8;
    int stored = 9;
    T_ASSERT(st_rk_load_cal(db, 1, &a, &b, &stored, err, sizeof err) == NB_OK && stored == 0 &&
                 a == 7 && b == 8,
             "old store: %s", err);
    T_ASSERT(st_rk_ensure_tables(db, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_rk_ensure_tables(db, err, sizeof err) == NB_OK, "twice: %s", err);
    T_ASSERT(st_rk_load_cal(db, 1, &a, &b, &stored, err, sizeof err) == NB_OK && stored == 0,
             "old row after the columns: %s", err);
    T_ASSERT(sqlite3_exec(db, "UPDATE ranker_models SET bl_cal_a = -4.5, bl_cal_b = 13.25", NULL,
                          NULL, NULL) == SQLITE_OK,
             "update");
    T_ASSERT(st_rk_load_cal(db, 1, &a, &b, &stored, err, sizeof err) == NB_OK && stored == 1 &&
                 a == -4.5 && b == 13.25,
             "stored row: %s", err);
    T_ASSERT(st_rk_load_cal(db, 2, &a, &b, &stored, err, sizeof err) == NB_ENOTFOUND, "no row");
    sqlite3_close(db);
    return T_PASS;
}

/* The prior (ranker.h): its fit solves the logistic regression's score equations; trees
 * boosted from it start at its logit; it survives the file, a clone and a slice; a file of
 * version 1 (no prior) still loads; rows wider than the ranker's features are read by
 * their prefix; a slice of k rounds is the training of k rounds. */
static int test_ranker_prior(void) {
    enum { N = 20000, NF = 4, W = 6 };
    float *X = malloc(sizeof(float) * N * NF), *y = malloc(sizeof(float) * N);
    float *Xw = malloc(sizeof(float) * N * W), *p1 = malloc(sizeof(float) * N),
          *p2 = malloc(sizeof(float) * N);
    uint64_t st = 77;
    for (int i = 0; i < N; i++) {
        for (int f = 0; f < NF; f++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            X[(size_t)i * NF + f] = (float)((st >> 40) & 0xffff) / 65536.0f;
        }
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)((st >> 40) & 0xffff) / 65536.0, x = X[(size_t)i * NF + 2];
        y[i] = u < 1 / (1 + exp(-(-2.0 + 3.0 * x))) ? 1.0f : 0.0f;
        for (int f = 0; f < W; f++) Xw[(size_t)i * W + f] = f < NF ? X[(size_t)i * NF + f] : 9.0f;
    }
    char err[NB_ERRLEN], path[512];
    double m0 = 0, m1 = 0, g0 = 0, g1 = 0;
    T_ASSERT(tr_ranker_fit_prior(X, y, N, NF, 2, &m0, &m1, err, sizeof err) == NB_OK, "%s", err);
    for (int i = 0; i < N; i++) {
        double x = X[(size_t)i * NF + 2], e = 1 / (1 + exp(-(m0 + m1 * x))) - y[i];
        g0 += e, g1 += e * x;
    }
    T_ASSERT(fabs(g0) / N < 1e-9 && fabs(g1) / N < 1e-9, "score equations %g %g", g0, g1);
    T_ASSERT(fabs(m0 + 2) < 0.15 && fabs(m1 - 3) < 0.25, "fit %g %g (drawn from -2, 3)", m0, m1);
    float one[1] = {1};
    T_ASSERT(tr_ranker_fit_prior(X, one, 1, NF, 2, &m0, &m1, err, sizeof err) == NB_EINVAL,
             "one class only");

    tr_ranker_params prm;
    tr_ranker_defaults(&prm);
    T_ASSERT(prm.prior_col == -1, "no prior by default");
    prm.prior_col = 2, prm.trees = 1, prm.eta = 1e-6;
    tr_ranker a = {0}, b = {0}, c = {0};
    T_ASSERT(tr_ranker_train(&a, X, y, N, NF, &prm, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(a.has_prior && a.prior_col == 2, "prior kept");
    T_ASSERT(tr_ranker_predict(&a, X, N, NF, p1, err, sizeof err) == NB_OK, "%s", err);
    for (int i = 0; i < N; i += 997) {
        double want = 1 / (1 + exp(-(a.m0 + a.m1 * X[(size_t)i * NF + 2])));
        T_ASSERT(fabs(p1[i] - want) < 1e-4, "row %d starts at the prior: %g vs %g", i, p1[i], want);
    }
    tr_ranker_free(&a);

    prm.trees = 30, prm.eta = 0.1;
    T_ASSERT(tr_ranker_train(&a, X, y, N, NF, &prm, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_ranker_predict(&a, X, N, NF, p1, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_ranker_predict(&a, Xw, N, W, p2, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(memcmp(p1, p2, sizeof(float) * N) == 0, "wider rows: the prefix is read");
    T_ASSERT(tr_ranker_predict(&a, X, N, NF - 1, p2, err, sizeof err) == NB_EINVAL,
             "narrower rows refused");
    uint32_t crc = 0, crc2 = 0;
    snprintf(path, sizeof path, "%s/p.xgb", t_tmpdir());
    T_ASSERT(tr_ranker_save(&a, path, &crc, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_ranker_load(&c, path, &crc2, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(crc == crc2 && c.has_prior && c.prior_col == 2 &&
                 memcmp(&c.m0, &a.m0, sizeof c.m0) == 0 && memcmp(&c.m1, &a.m1, sizeof c.m1) == 0,
             "prior after the round trip");
    T_ASSERT(tr_ranker_predict(&c, X, N, NF, p2, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(memcmp(p1, p2, sizeof(float) * N) == 0, "predictions after the round trip");
    tr_ranker_free(&c);
    T_ASSERT(tr_ranker_clone(&c, &a, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_ranker_predict(&c, X, N, NF, p2, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(memcmp(p1, p2, sizeof(float) * N) == 0, "a clone predicts the same");
    tr_ranker_free(&c);
    /* a slice of 10 rounds is the training of 10 */
    prm.trees = 10;
    T_ASSERT(tr_ranker_train(&b, X, y, N, NF, &prm, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_ranker_slice(&c, &a, 10, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_ranker_predict(&b, X, N, NF, p1, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_ranker_predict(&c, X, N, NF, p2, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(memcmp(p1, p2, sizeof(float) * N) == 0, "slice of 10 rounds vs 10 rounds");
    tr_ranker_free(&c);
    T_ASSERT(tr_ranker_slice(&c, &a, 31, err, sizeof err) == NB_EINVAL, "slice past the end");
    tr_ranker_free(&a);
    tr_ranker_free(&b);

    /* version 1: "NBXGB1" | nf | 0 | n | model | CRC, no prior */
    prm.prior_col = -1;
    T_ASSERT(tr_ranker_train(&a, X, y, N, NF, &prm, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_ranker_predict(&a, X, N, NF, p1, err, sizeof err) == NB_OK, "%s", err);
    uint8_t *body = NULL;
    size_t bl = 0;
    T_ASSERT(tr_ranker_serialize(&a, &body, &bl, err, sizeof err) == NB_OK, "%s", err);
    uint8_t *v1 = calloc(24 + bl + 4, 1);
    memcpy(v1, "NBXGB1\n", 8);
    v1[8] = NF;
    for (int i = 0; i < 8; i++) v1[16 + i] = (uint8_t)((uint64_t)bl >> (8 * i));
    memcpy(v1 + 24, body, bl);
    uint32_t k = nb_crc32(0, v1, 24 + bl);
    for (int i = 0; i < 4; i++) v1[24 + bl + i] = (uint8_t)(k >> (8 * i));
    snprintf(path, sizeof path, "%s/v1.xgb", t_tmpdir());
    FILE *f = fopen(path, "wb");
    fwrite(v1, 1, 24 + bl + 4, f);
    fclose(f);
    T_ASSERT(tr_ranker_load(&c, path, &crc2, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(!c.has_prior && c.n_features == NF && crc2 == k, "version 1 loads without a prior");
    T_ASSERT(tr_ranker_predict(&c, Xw, N, W, p2, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(memcmp(p1, p2, sizeof(float) * N) == 0, "version 1 predicts as before");
    tr_ranker_free(&c);
    tr_ranker_free(&a);
    free(body), free(v1);
    free(X), free(y), free(Xw), free(p1), free(p2);
    return T_PASS;
}

int main(void) {
    T_RUN(test_features_hand);
    T_RUN(test_nbr_cap);
    T_RUN(test_oof_stats);
    T_RUN(test_ranker_file);
    T_RUN(test_ranker_prior);
    T_RUN(test_baseline_scores);
    T_RUN(test_tuned_features_hand);
    T_RUN(test_tuned_baseline_parity);
    T_RUN(test_store_tifu_columns);
    T_RUN(test_store_cal_columns);
    return t_summary();
}
