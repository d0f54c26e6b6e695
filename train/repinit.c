/* repinit.c -- see repinit.h. */
#include "repinit.h"
#include "repfeat.h"

#include <assert.h>
#include <string.h>

void tr_rep_init_prior(nn_model *m) {
    int F = m->cfg.rep_features;
    if (F <= 0) return;
    assert(F == TR_N_FEATURES && m->cfg.rep_hidden >= 1);
    nn_params *p = &m->p;
    for (int j = 0; j < F; j++) p->rep_w1[j] = 0;   /* row 0 of the [R, F] matrix */
    p->rep_w1[TR_F_SHARE] = 1;
    p->rep_w1[TR_F_RECENCY] = (nn_real)TR_REP_INIT_TIEBREAK;
    p->rep_b1[0] = 0;
    p->rep_w2[0] = (nn_real)TR_REP_INIT_SLOPE;
    for (int k = 1; k < m->cfg.rep_hidden; k++) p->rep_w2[k] = 0;   /* the other units: silent */
    p->rep_b2[0] = (nn_real)TR_REP_INIT_BIAS;
    memset(p->out_w, 0, (size_t)m->cfg.n_products * m->cfg.head * sizeof(nn_real));
    memset(p->out_b, 0, (size_t)m->cfg.n_products * sizeof(nn_real));
}
