/* checkpoint.h -- the training state after an epoch, so that --resume continues exactly.
 *
 * File layout (little-endian, as written by this machine's C types):
 *   "NBCKPT01" magic, u32 version (2), u32 run signature (CRC-32 of the canonical text of
 *   every flag that changes the trained bits: see tr_run_signature in loop.h),
 *   i32 x 12 nn_config fields, f32 dropout, u64 n_params,
 *   i32 epochs_done, i32 best_epoch, i32 bad_epochs, i64 adam_t, f64 best_metric,
 *   f64 start_metric,
 *   4 x u64 model rng (dropout), 4 x u64 shuffle rng, f64 train_seconds,
 *   i32 n_hist, n_hist x tr_epoch_stat (TR_EPOCH_FIELDS f64 each),
 *   u8 same (1: the best parameters are the current ones and are not stored again),
 *   f32 params[n_params], adam_m[n_params], adam_v[n_params], best_params[n_params] (only
 *   when same == 0),
 *   u32 CRC-32 of every byte before it.
 * Written atomically (common/atomic_file.h), so a crash or a signal during the write
 * leaves the previous checkpoint intact.
 */
#ifndef TR_CHECKPOINT_H
#define TR_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "nn.h"
#include "rng.h"

#define TR_CKPT_MAGIC "NBCKPT01"
#define TR_CKPT_VERSION \
    3 /* 2: start_metric; best_epoch 0 = the starting point; 3: the
                             configuration's encoder, order_info, sequence, heads */
#define TR_MAX_EPOCHS_HIST 1000

/* One epoch's figures (all doubles so the file layout is trivial). */
typedef struct {
    double train_loss;    /* mean batch loss over the epoch */
    double val_loss;      /* mean BCE over validation samples */
    double val_recall10;  /* validation Recall@10 (full catalogue) */
    double val_ndcg10;    /* validation NDCG@10 */
    double seconds;       /* wall time of the epoch's training */
    double samples_per_s; /* training samples per second */
} tr_epoch_stat;
#define TR_EPOCH_FIELDS 6

/* Everything besides the model that the loop needs to continue. */
typedef struct {
    uint32_t signature;
    int epochs_done;     /* completed epochs */
    int best_epoch;      /* epoch of best_metric; 0 = the starting point (train/loop.c
                              * evaluates it before epoch 1) */
    int bad_epochs;      /* epochs since the best one (early stopping counter) */
    double best_metric;  /* best validation Recall@10 so far */
    double start_metric; /* validation Recall@10 of the untrained starting point */
    nb_rng shuffle_rng;
    double train_seconds;
    int n_hist;
    tr_epoch_stat hist[TR_MAX_EPOCHS_HIST];
    nn_real *best_params; /* [n_params], owned by the caller */
} tr_train_state;

/* Writes m (parameters, Adam m/v/t, rng) and st to path atomically. m must have been
 * through nn_model_train_init. Returns NB_OK or NB_EIO (the old file stays). */
int tr_ckpt_save(const char *path, const nn_model *m, const tr_train_state *st, char *err,
                 size_t errlen);

/* Reads path into m (same config, train-initialised) and st (st->best_params must point to
 * n_params reals). Checks magic, version, size, CRC, config and the run signature before
 * touching m or st. Returns NB_OK, NB_EIO (cannot open), NB_EFORMAT (truncated, bad magic,
 * checksum mismatch) or NB_EMISMATCH (another configuration or flags). */
int tr_ckpt_load(const char *path, nn_model *m, tr_train_state *st, char *err, size_t errlen);

#endif
