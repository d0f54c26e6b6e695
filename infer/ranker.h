/* ranker.h -- the ranking stage's gradient-boosted trees: Debian's XGBoost (C API) behind
 * our error convention, and the ranker file saved beside the weight file.
 *
 * Ranker file (<model>.xgb), little-endian:
 *   "NBXGB1\n\0" (8 bytes) | u32 n_features | u32 reserved 0 | u64 n bytes of XGBoost's
 *   UBJSON model | those bytes | u32 CRC-32 of everything before it.
 * The file's checksum (that trailing CRC) is registered in the store with the model
 * (storage/rkstore.h); nb-serve refuses a file whose checksum differs.
 */
#ifndef TR_RANKER_H
#define TR_RANKER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    void *booster; /* BoosterHandle */
    int n_features;
} tr_ranker;

/* The training parameters: one set of defaults for every data set. */
typedef struct {
    int trees;        /* 300 */
    int depth;        /* 6 */
    double eta;       /* 0.05 */
    double subsample; /* 1.0: no row sampling, so no randomness besides the seed */
    int threads;      /* XGBoost's nthread (fixed: results do not depend on the machine) */
    int seed;
} tr_ranker_params;
void tr_ranker_defaults(tr_ranker_params *p);

/* Trains binary:logistic trees on rows X[n, nf] (NAN = missing) with 0/1 labels y[n].
 * Returns NB_OK and r (free with tr_ranker_free), NB_EINVAL (n == 0, nf <= 0) or NB_EIO
 * naming XGBoost's message. */
int tr_ranker_train(tr_ranker *r, const float *X, const float *y, int64_t n, int nf,
                    const tr_ranker_params *p, char *err, size_t errlen);
/* Probabilities of rows X[n, r->n_features] into out[n]. Not safe to call concurrently on
 * one r (XGBoost's predictor caches): one tr_ranker per thread (tr_ranker_clone).
 * Returns NB_OK or NB_EIO. */
int tr_ranker_predict(tr_ranker *r, const float *X, int64_t n, float *out, char *err,
                      size_t errlen);
/* The model as bytes (malloc'd into *buf, caller frees). Returns NB_OK or NB_EIO. */
int tr_ranker_serialize(const tr_ranker *r, uint8_t **buf, size_t *len, char *err, size_t errlen);
/* A ranker from bytes of tr_ranker_serialize. Returns NB_OK or NB_EFORMAT. */
int tr_ranker_deserialize(tr_ranker *r, const uint8_t *buf, size_t len, int nf, char *err,
                          size_t errlen);
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
