/* repinit.c -- see repinit.h. */
#include "repinit.h"
#include "repfeat.h"

#include <assert.h>

void tr_rep_init_prior(nn_model *m) {
    int F = m->cfg.rep_features;
    if (F <= 0) return;
    assert(F == TR_N_FEATURES && m->cfg.rep_hidden >= 1);
    nn_params *p = &m->p;
    for (int j = 0; j < F; j++) p->rep_w1[j] = 0;   /* row 0 of the [R, F] matrix */
    p->rep_w1[TR_F_SHARE] = 1;
    p->rep_b1[0] = 0;
    p->rep_w2[0] = (nn_real)TR_REP_INIT_SLOPE;
    p->rep_b2[0] = (nn_real)TR_REP_INIT_BIAS;
}
