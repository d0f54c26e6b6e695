/* ranker.h -- the ranking stage's gradient-boosted trees: Debian's XGBoost (C API) behind
 * our error convention, and the ranker file saved beside the weight file.
 *
 * Boosting from a prior: with prior_col >= 0 the trees do not start from a constant but
 * from each row's m0 + m1 * x[prior_col], the logit of a one-feature logistic regression
 * fitted on the training rows (the ranking stage passes TIFU-KNN's score), so that they
 * learn corrections to that ranking rather than rebuild it from axis-aligned splits.
 *
 * Ranker file (<model>.xgb), little-endian:
 *   "NBXGB2\n\0" (8 bytes) | u32 n_features | i32 prior_col (-1: none) | u64 n bytes of
 *   XGBoost's UBJSON model | f64 m0 | f64 m1 | those bytes | u32 CRC-32 of everything
 *   before it.
 * Files of version 1 ("NBXGB1\n\0" | u32 n_features | u32 0 | u64 n | bytes | CRC) load
 * with no prior. The file's checksum (that trailing CRC) is registered in the store with
 * the model (storage/rkstore.h); nb-serve refuses a file whose checksum differs.
 */
#ifndef TR_RANKER_H
#define TR_RANKER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    void *booster; /* BoosterHandle */
    int n_features;
    int has_prior;  /* 1: boosted from the prior (a zeroed tr_ranker has none) */
    int prior_col;  /* the prior's feature */
    double m0, m1;  /* the prior's logit: m0 + m1 * x[prior_col] */
} tr_ranker;

/* The training parameters: one set of defaults for every data set. */
typedef struct {
    int trees;        /* 300 */
    int depth;        /* 6 */
    double eta;       /* 0.05 */
    double subsample; /* 1.0: no row sampling, so no randomness besides the seed */
    int threads;      /* XGBoost's nthread (fixed: results do not depend on the machine) */
    int seed;
    int prior_col;    /* -1: no prior; else boost from the logistic fit on that feature */
} tr_ranker_params;
void tr_ranker_defaults(tr_ranker_params *p);

/* Trains binary:logistic trees on rows X[n, nf] (NAN = missing) with 0/1 labels y[n], from
 * the prior of p->prior_col (fitted here) when it is >= 0. Returns NB_OK and r (free with
 * tr_ranker_free), NB_EINVAL (n == 0, nf <= 0, prior_col >= nf) or NB_EIO naming XGBoost's
 * message. */
int tr_ranker_train(tr_ranker *r, const float *X, const float *y, int64_t n, int nf,
                    const tr_ranker_params *p, char *err, size_t errlen);
/* Probabilities of rows X[n, stride] into out[n]: the trees read the first r->n_features
 * values of each row (a ranker trained on fewer features than the caller computes reads its
 * prefix). Not safe to call concurrently on one r (XGBoost's predictor caches): one
 * tr_ranker per thread (tr_ranker_clone). Returns NB_OK, NB_EINVAL (stride < n_features) or
 * NB_EIO. */
int tr_ranker_predict(tr_ranker *r, const float *X, int64_t n, int stride, float *out, char *err,
                      size_t errlen);
/* The prior's logit m0 + m1 * x for a feature value x, the logistic regression of y on x
 * fitted by Newton's method over rows X[n, nf] (deterministic; NAN values are skipped).
 * Returns NB_OK or NB_EINVAL (no finite value, or both classes absent). */
int tr_ranker_fit_prior(const float *X, const float *y, int64_t n, int nf, int col, double *m0,
                        double *m1, char *err, size_t errlen);
/* The model as bytes (malloc'd into *buf, caller frees). Returns NB_OK or NB_EIO. */
int tr_ranker_serialize(const tr_ranker *r, uint8_t **buf, size_t *len, char *err, size_t errlen);
/* A ranker from bytes of tr_ranker_serialize. Returns NB_OK or NB_EFORMAT. */
int tr_ranker_deserialize(tr_ranker *r, const uint8_t *buf, size_t len, int nf, char *err,
                          size_t errlen);
/* The first `rounds` boosting rounds of src as a new ranker dst (src unchanged; free dst with
 * tr_ranker_free): the trees a training of `rounds` rounds gives, since each round only adds
 * trees. Returns NB_OK or NB_EINVAL (rounds out of range) / NB_EIO naming XGBoost's message. */
int tr_ranker_slice(tr_ranker *dst, const tr_ranker *src, int rounds, char *err, size_t errlen);
/* A second, independent copy of r (for another thread). Returns NB_OK or an error. */
int tr_ranker_clone(tr_ranker *dst, const tr_ranker *src, char *err, size_t errlen);
void tr_ranker_free(tr_ranker *r);

/* Writes r to path (temporary name, fsync, rename). *crc receives the file's checksum.
 * Returns NB_OK or NB_EIO / NB_EIO naming path. */
int tr_ranker_save(const tr_ranker *r, const char *path, uint32_t *crc, char *err, size_t errlen);
/* Reads path. Returns NB_OK (r owns the booster, *crc the file's checksum), NB_EIO (cannot
 * read), NB_EFORMAT (bad magic, truncated, checksum wrong; message names path and what). */
int tr_ranker_load(tr_ranker *r, const char *path, uint32_t *crc, char *err, size_t errlen);

#endif
