/* dist.c -- data-parallel training: MPI when compiled with NB_MPI, else one process.
 * See dist.h for the scheme; every function is an identity with one rank. */
#include "dist.h"
#include "crc32.h"
#include "nb_err.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NB_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1; /* the ranks taking part (size 1 after tr_dist_solo) */
static int g_world = 1;            /* MPI_COMM_WORLD's size, for messages and abort */
static int g_started = 0;          /* MPI_Init was called by tr_dist_init */
static uint64_t g_bytes = 0, g_calls = 0;
static double g_secs = 0;

/* The launcher's world size from the environment (0: not started by a launcher). Open
 * MPI's mpirun sets OMPI_COMM_WORLD_SIZE; PMIx / PMI launchers set PMIX_RANK / PMI_SIZE. */
static int launcher_size(void) {
    const char *v = getenv("OMPI_COMM_WORLD_SIZE");
    if (!v) v = getenv("PMI_SIZE");
    if (v) return atoi(v) > 0 ? atoi(v) : 1;
    return getenv("PMIX_RANK") ? 1 : 0;
}

int tr_dist_init(int *argc, char ***argv, char *err, size_t errlen) {
    int n = launcher_size();
    if (n == 0) return NB_OK;
#ifdef NB_MPI
    if (MPI_Init(argc, argv) != MPI_SUCCESS)
        return nb_err(err, errlen, NB_EINVAL, "MPI_Init failed");
    g_started = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_world = g_size;
    /* MPI errors stay fatal (MPI_ERRORS_ARE_FATAL): the job ends with MPI's own message
     * rather than ranks continuing on a broken communicator. */
    return NB_OK;
#else
    (void)argc, (void)argv;
    if (n > 1)
        return nb_err(err, errlen, NB_EINVAL,
                      "started by an MPI launcher with %d ranks, but this nb-train was built "
                      "without MPI (rebuild with make MPI=1 after make deps)",
                      n);
    return NB_OK;
#endif
}

void tr_dist_finalize(void) {
#ifdef NB_MPI
    if (g_started) MPI_Finalize();
#endif
    g_started = 0;
}

void tr_dist_abort(int exit_code, const char *msg) {
    if (g_world > 1)
        fprintf(stderr, "nb-train: rank %d of %d: %s\n", g_rank, g_world, msg);
    else
        fprintf(stderr, "nb-train: %s\n", msg);
#ifdef NB_MPI
    /* the other ranks may be waiting in a collective for this one: end them all */
    if (g_started && g_world > 1) {
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, exit_code);
    }
#else
    (void)exit_code;
#endif
}

int tr_dist_rank(void) { return g_rank; }
int tr_dist_size(void) { return g_size; }

int tr_dist_compiled(void) {
#ifdef NB_MPI
    return 1;
#else
    return 0;
#endif
}

void tr_dist_solo(void) { g_size = 1; }

void tr_dist_slice(int n, int *lo, int *hi) {
    *lo = (int)((int64_t)n * g_rank / g_size);
    *hi = (int)((int64_t)n * (g_rank + 1) / g_size);
    if (g_size == 1) *lo = 0, *hi = n; /* rank 0 alone after tr_dist_solo */
}

uint32_t tr_dist_signature(uint32_t sig) {
    if (g_size == 1) return sig;
    char s[32];
    int n = snprintf(s, sizeof s, " ranks=%d", g_size);
    return nb_crc32(sig, s, (size_t)n);
}

void tr_dist_epoch_rng(nn_model *m, const nb_rng *shuffle) {
    if (g_size == 1) return;
    uint64_t x =
        shuffle->s[0] ^ nb_hash64(shuffle->s[1] ^ nb_hash64(shuffle->s[2] ^ shuffle->s[3]));
    nb_rng_seed(&m->rng, nb_hash64(x ^ 0x6469737472616e6bull) + (uint64_t)g_rank);
}

#ifdef NB_MPI
/* MPI datatype of nn_real (float in the trainer; double in the -DNN_DOUBLE test build). */
#define NN_MPI_REAL (sizeof(nn_real) == sizeof(double) ? MPI_DOUBLE : MPI_FLOAT)
/* Chunk for counts past INT_MAX elements (MPI counts are int); one call below that. */
#define MAX_CHUNK ((size_t)1 << 30)
#endif

int tr_dist_step_agree(double *loss, int *stop, int n_mine, int n_all, char *err, size_t errlen) {
    (void)err, (void)errlen;
    if (g_size == 1) return NB_OK;
#ifdef NB_MPI
    double v[2] = {n_mine ? *loss * n_mine / n_all : 0, *stop ? 1 : 0};
    MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    *loss = v[0];
    *stop = v[1] > 0;
#else
    (void)loss, (void)stop, (void)n_mine, (void)n_all;
#endif
    return NB_OK;
}

int tr_dist_sum_grad(nn_model *m, int n_mine, int n_all, char *err, size_t errlen) {
    (void)err, (void)errlen;
    if (g_size == 1) return NB_OK;
#ifdef NB_MPI
    nn_real *g = m->grad_mem;
    size_t n = m->n_params;
    if (n_mine == 0) {
        /* no forward/backward ran here: the contribution is zero. grad_stale is cleared
         * because the reduced sum written into grad_mem is the real gradient now (the
         * Adam step would otherwise zero it). */
        memset(g, 0, n * sizeof(nn_real));
        m->grad_stale = 0;
    } else if (n_mine != n_all) {
        /* backward gave the mean over this rank's n_mine samples; the global batch's mean
         * is the sum over ranks of (n_mine / n_all) times it */
        nn_real s = (nn_real)((double)n_mine / n_all);
        for (size_t i = 0; i < n; i++) g[i] *= s;
    }
    double t0 = nb_now();
    for (size_t off = 0; off < n; off += MAX_CHUNK) {
        size_t c = n - off < MAX_CHUNK ? n - off : MAX_CHUNK;
        MPI_Allreduce(MPI_IN_PLACE, g + off, (int)c, NN_MPI_REAL, MPI_SUM, MPI_COMM_WORLD);
        g_calls++;
    }
    g_bytes += n * sizeof(nn_real);
    g_secs += nb_now() - t0;
#else
    (void)m, (void)n_mine, (void)n_all;
#endif
    return NB_OK;
}

int tr_dist_any(int flag) {
    if (g_size == 1) return flag != 0;
#ifdef NB_MPI
    int v = flag != 0;
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return v;
#else
    return flag != 0;
#endif
}

/* Integer fields of one accumulator, in a fixed order (10), then its 3 per-product arrays. */
#define ACC_INTS 10
#define ACC_DBLS (1 + 4 * TR_METRICS_NK)

int tr_dist_reduce_eval(tr_metrics *acc, int n_acc, double *loss, tr_reliability *rel_a,
                        tr_reliability *rel_b, char *err, size_t errlen) {
    (void)err, (void)errlen;
    if (g_size == 1) return NB_OK;
#ifdef NB_MPI
    tr_reliability *rel[2] = {rel_a, rel_b};
    size_t P = n_acc ? (size_t)acc[0].n_products : 0;
    size_t ni = (size_t)n_acc * (ACC_INTS + 3 * P) + 2 * TR_CAL_BINS;
    size_t nd = (size_t)n_acc * ACC_DBLS + 1 + 4 * TR_CAL_BINS;
    int64_t *I = nb_xcalloc(ni, sizeof(int64_t));
    double *D = nb_xcalloc(nd, sizeof(double));
    /* pack (direction 0) and unpack (1) share one walk over the fields */
    for (int dir = 0; dir < 2; dir++) {
        size_t i = 0, d = 0;
#define XI(f) (dir ? (void)((f) = I[i++]) : (void)(I[i++] = (f)))
#define XD(f) (dir ? (void)((f) = D[d++]) : (void)(D[d++] = (f)))
        for (int a = 0; a < n_acc; a++) {
            tr_metrics *m = &acc[a];
            XI(m->n_users), XI(m->tp), XI(m->fp), XI(m->fn), XI(m->sum_pred_size);
            XI(m->sum_true_size), XI(m->cand_users), XI(m->cand_hits), XI(m->cand_truth);
            XI(m->cand_size);
            for (size_t p = 0; p < P; p++) XI(m->prod_tp[p]);
            for (size_t p = 0; p < P; p++) XI(m->prod_fp[p]);
            for (size_t p = 0; p < P; p++) XI(m->prod_fn[p]);
            XD(m->sum_f1_example);
            for (int k = 0; k < TR_METRICS_NK; k++) {
                XD(m->sum_p[k]), XD(m->sum_r[k]), XD(m->sum_ndcg[k]), XD(m->sum_hit[k]);
            }
        }
        XD(*loss);
        for (int r = 0; r < 2; r++) {
            for (int b = 0; b < TR_CAL_BINS; b++) {
                if (rel[r]) {
                    XI(rel[r]->count[b]), XD(rel[r]->sum_pred[b]), XD(rel[r]->sum_pos[b]);
                } else {
                    i++, d += 2;
                }
            }
        }
#undef XI
#undef XD
        if (dir == 0) {
            MPI_Allreduce(MPI_IN_PLACE, I, (int)ni, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
            MPI_Allreduce(MPI_IN_PLACE, D, (int)nd, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        }
    }
    free(I);
    free(D);
#else
    (void)acc, (void)n_acc, (void)loss, (void)rel_a, (void)rel_b;
#endif
    return NB_OK;
}

int tr_dist_check_same(const nn_model *m, char *err, size_t errlen) {
    if (g_size == 1) return NB_OK;
#ifdef NB_MPI
    long long c = (long long)nb_crc32(0, m->mem, m->n_params * sizeof(nn_real));
    long long v[2] = {c, -c};
    MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    if (v[0] != c || -v[1] != c)
        return nb_err(err, errlen, NB_EMISMATCH,
                      "the ranks' parameters differ (CRC-32 from %08llx to %08llx): the "
                      "allreduce did not give every rank the same sum",
                      -v[1], v[0]);
#else
    (void)m, (void)err, (void)errlen;
#endif
    return NB_OK;
}

void tr_dist_barrier(void) {
#ifdef NB_MPI
    if (g_size > 1) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

uint64_t tr_dist_bytes_reduced(void) { return g_bytes; }
uint64_t tr_dist_reduce_calls(void) { return g_calls; }
double tr_dist_reduce_seconds(void) { return g_secs; }
