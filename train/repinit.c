/* repinit.c -- see repinit.h. */
#include "repinit.h"
#include "repfeat.h"

#include <assert.h>
#include <string.h>

void tr_rep_init_prior(nn_model *m, const tr_product_stats *ps) {
    int F = m->cfg.rep_features, P = m->cfg.n_products;
    if (F <= 0) return;
    assert(F == TR_N_FEATURES && m->cfg.rep_hidden >= 2 && ps && ps->n_products == P);
    nn_params *p = &m->p;
    for (int j = 0; j < F; j++) p->rep_w1[j] = 0; /* row 0 of the [R, F] matrix */
    p->rep_w1[TR_F_SHARE] = 1;
    p->rep_w1[TR_F_RECENCY] = (nn_real)TR_REP_INIT_TIEBREAK;
    p->rep_b1[0] = 0;
    p->rep_w2[0] = (nn_real)TR_REP_INIT_SLOPE;
    /* unit 1 passes log popularity, subtracted again: cancels out.b on bought products */
    for (int j = 0; j < F; j++) p->rep_w1[F + j] = 0;
    p->rep_w1[F + TR_F_PROD_POP] = 1;
    p->rep_b1[1] = 0;
    p->rep_w2[1] = -1;
    for (int k = 2; k < m->cfg.rep_hidden; k++) p->rep_w2[k] = 0; /* the others: silent */
    p->rep_b2[0] = (nn_real)TR_REP_INIT_BIAS;
    memset(p->out_w, 0, (size_t)m->cfg.n_products * m->cfg.head * sizeof(nn_real));
    for (int i = 0; i < P; i++) p->out_b[i] = (nn_real)ps->log_pop[i] - 1;
}
