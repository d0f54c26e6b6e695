/* test_parity_layers.c -- the attention layers against PyTorch on committed fixtures
 * (tests/fixtures/parity_{mha,mha_causal,pool,tblock,tblock_causal}.bin, written by
 * tests/gen_torch_fixture.py from nn.MultiheadAttention, the pooling written in torch, and
 * nn.TransformerEncoderLayer(norm_first=True)). Packed sequences of lengths 1, 3 and 5 on our
 * side, padded with key_padding_mask (and a causal attn_mask) on torch's.
 *
 * For each fixture: load x, the weights and the upstream gradient G, run our float forward
 * and backward (dout = G), and compare the output, dx and every weight gradient under the
 * same scale-aware tolerance as tests/test_parity.c (PARITY_TOL 1e-4, fixture.h). The last
 * test perturbs one weight and requires the comparison to fail.
 */
#include "harness.h"
#include "nb_err.h"
#include "nn.h"

#include <stdlib.h>
#include <string.h>

#define PARITY_TOL 1e-4
#include "fixture.h"

/* A float copy of record `name` (malloc'd, caller frees), or NULL with a message. */
static nn_real *fx_reals(const fixture *fx, const char *name, size_t *n) {
    const fx_rec *r = fx_find(fx, name);
    if (!r) {
        printf("# record %s missing\n", name);
        return NULL;
    }
    nn_real *v = malloc(r->n * sizeof(nn_real));
    for (size_t i = 0; i < r->n; i++) v[i] = (nn_real)fx_get(r, i);
    if (n) *n = r->n;
    return v;
}

/* The offsets record as ints: off[0..n_seq]. Returns n_seq, or -1. */
static int fx_offsets(const fixture *fx, int *off, int cap) {
    const fx_rec *r = fx_find(fx, "off");
    if (!r || (int)r->n > cap) return -1;
    for (size_t i = 0; i < r->n; i++) off[i] = (int)fx_get(r, i);
    return (int)r->n - 1;
}

/* Compares ours[0..n) with record `name`. Returns 1 on mismatch. */
static int cmp(const char *fxn, const fixture *fx, const char *name, const nn_real *ours,
               size_t n) {
    return compare(fxn, name, ours, n, fx_find(fx, name));
}

/* The tensors of one layer fixture: names, our values (loaded) and our gradients. */
#define MAXT 12
typedef struct {
    int n;
    const char *name[MAXT];
    nn_real *w[MAXT], *g[MAXT];
    size_t sz[MAXT];
} wset;

/* Loads every named weight of fx into s, with zeroed gradients. Returns 0 or -1. */
static int wset_load(wset *s, const fixture *fx, const char *const *names, int n) {
    memset(s, 0, sizeof *s);
    s->n = n;
    for (int i = 0; i < n; i++) {
        s->name[i] = names[i];
        s->w[i] = fx_reals(fx, names[i], &s->sz[i]);
        s->g[i] = calloc(s->sz[i] ? s->sz[i] : 1, sizeof(nn_real));
        if (!s->w[i]) return -1;
    }
    return 0;
}
static void wset_free(wset *s) {
    for (int i = 0; i < s->n; i++) free(s->w[i]), free(s->g[i]);
}
/* Compares every gradient with its "d<name>" record. Returns the mismatch count. */
static int wset_cmp(const char *fxn, const fixture *fx, const wset *s) {
    int bad = 0;
    for (int i = 0; i < s->n; i++) {
        char d[64];
        snprintf(d, sizeof d, "d%s", s->name[i]);
        bad += cmp(fxn, fx, d, s->g[i], s->sz[i]);
    }
    return bad;
}

/* Runs fixture `fxname` (mha / mha_causal / pool / tblock / tblock_causal). perturb > 0
 * adds 1e-2 to the first weight before running (the comparison must then fail). Returns the
 * number of mismatching tensors, or -1 when the fixture cannot be read. */
static int run_layer(const char *fxname, int perturb) {
    static const char *const mha_w[] = {"w_in", "b_in", "w_out", "b_out"};
    static const char *const tb_w[] = {"ln1_w", "ln1_b", "w_in",  "b_in",  "w_out", "b_out",
                                       "ln2_w", "ln2_b", "ff1_w", "ff1_b", "ff2_w", "ff2_b"};
    static const char *const pool_w[] = {"q"};
    char path[256], err[NB_ERRLEN];
    snprintf(path, sizeof path, "tests/fixtures/parity_%s.bin", fxname);
    fixture fx;
    if (fx_load(&fx, path, err, sizeof err)) {
        printf("# %s\n", err);
        fx_free(&fx);
        return -1;
    }
    int off[16], n_seq = fx_offsets(&fx, off, 16), bad = -1,
                 causal = strstr(fxname, "causal") != NULL;
    size_t nx = 0;
    nn_real *x = fx_reals(&fx, "x", &nx), *G = fx_reals(&fx, "G", NULL);
    int T = n_seq > 0 ? off[n_seq] : 0, A = T > 0 ? (int)(nx / (size_t)T) : 0, nh = 2;
    wset s = {0};
    nn_real *out = NULL, *dx = NULL, *b1 = NULL, *b2 = NULL, *b3 = NULL, *b4 = NULL;
    const char *const *names = !strncmp(fxname, "mha", 3) ? mha_w
        : !strncmp(fxname, "pool", 4)                     ? pool_w
                                                          : tb_w;
    int nw = names == mha_w ? 4 : names == pool_w ? 1 : NN_TBLOCK_NTENSORS;
    if (n_seq <= 0 || !x || !G || wset_load(&s, &fx, names, nw)) goto done;
    if (perturb) s.w[0][0] += (nn_real)1e-2;
    dx = calloc(nx, sizeof(nn_real));
    if (names == mha_w) {
        out = calloc(nx, sizeof(nn_real));
        b1 = calloc(3 * nx, sizeof(nn_real));
        b2 = calloc(nn_mha_probs_size(off, n_seq, nh), sizeof(nn_real));
        b3 = calloc(nx, sizeof(nn_real));
        b4 = calloc(nn_mha_scratch_size(off, n_seq, A), sizeof(nn_real));
        nn_mha_forward(out, b1, b2, b3, x, s.w[0], s.w[1], s.w[2], s.w[3], off, n_seq, A, nh,
                       causal);
        nn_mha_backward(dx, s.g[0], s.g[1], s.g[2], s.g[3], b4, G, b1, b2, b3, x, s.w[0], s.w[2],
                        off, n_seq, A, nh, causal);
        bad = cmp(fxname, &fx, "out", out, nx);
    } else if (names == pool_w) {
        out = calloc((size_t)n_seq * A, sizeof(nn_real));
        b1 = calloc((size_t)T, sizeof(nn_real));
        nn_attnpool_forward(out, b1, x, s.w[0], off, n_seq, A);
        nn_attnpool_backward(dx, s.g[0], G, b1, x, s.w[0], off, n_seq, A);
        bad = cmp(fxname, &fx, "out", out, (size_t)n_seq * A);
    } else {
        int F = 4 * A;
        /* tb_w's order is nn_tblock_params' field order */
        nn_real **w = s.w, **d = s.g;
        nn_tblock_params p = {w[0], w[1], w[2], w[3], w[4],  w[5],
                              w[6], w[7], w[8], w[9], w[10], w[11]};
        nn_tblock_params g = {d[0], d[1], d[2], d[3], d[4],  d[5],
                              d[6], d[7], d[8], d[9], d[10], d[11]};
        out = calloc(nx, sizeof(nn_real));
        b1 = calloc(nn_tblock_act_size(off, n_seq, A, nh, F), sizeof(nn_real));
        b2 = calloc(nn_tblock_scratch_size(off, n_seq, A, F), sizeof(nn_real));
        nn_tblock_forward(out, b1, x, &p, off, n_seq, A, nh, F, causal);
        nn_tblock_backward(dx, &g, b2, G, b1, x, &p, off, n_seq, A, nh, F, causal);
        bad = cmp(fxname, &fx, "out", out, nx);
    }
    bad += cmp(fxname, &fx, "dx", dx, nx);
    bad += wset_cmp(fxname, &fx, &s);
done:
    wset_free(&s);
    free(x), free(G), free(out), free(dx), free(b1), free(b2), free(b3), free(b4);
    fx_free(&fx);
    return bad;
}

static int test_parity_mha(void) {
    int bad = run_layer("mha", 0);
    T_ASSERT(bad == 0, "nn.MultiheadAttention parity: %d mismatches", bad);
    bad = run_layer("mha_causal", 0);
    T_ASSERT(bad == 0, "causal nn.MultiheadAttention parity: %d mismatches", bad);
    return T_PASS;
}

static int test_parity_attnpool(void) {
    int bad = run_layer("pool", 0);
    T_ASSERT(bad == 0, "attention pooling parity: %d mismatches", bad);
    return T_PASS;
}

static int test_parity_tblock(void) {
    int bad = run_layer("tblock", 0);
    T_ASSERT(bad == 0, "nn.TransformerEncoderLayer(norm_first) parity: %d mismatches", bad);
    bad = run_layer("tblock_causal", 0);
    T_ASSERT(bad == 0, "causal TransformerEncoderLayer parity: %d mismatches", bad);
    return T_PASS;
}

/* The checker can fail: a 1e-2 change of one weight shows in every fixture. */
static int test_parity_layers_detect_perturbation(void) {
    printf("# perturbed runs follow (mismatches expected)\n");
    const char *fx[] = {"mha", "pool", "tblock_causal"};
    for (int i = 0; i < 3; i++) {
        int bad = run_layer(fx[i], 1);
        T_ASSERT(bad > 0, "%s: a perturbed weight passed the comparison (%d)", fx[i], bad);
    }
    return T_PASS;
}

int main(void) {
    T_RUN(test_parity_mha);
    T_RUN(test_parity_attnpool);
    T_RUN(test_parity_tblock);
    T_RUN(test_parity_layers_detect_perturbation);
    return t_summary();
}
