/* loop.h -- the training loop: epochs of shuffled mini-batches, validation, early stopping,
 * checkpoints, clean stops on signals, NaN detection.
 *
 * Early stopping watches validation Recall@10 over the full catalogue (higher is better; a
 * tie does not count as an improvement). After --patience epochs without improvement the
 * run stops; the best epoch's parameters are kept (st->best_params) and restored at the end.
 * A checkpoint is written after every epoch; --resume restores it and continues with the
 * next epoch, reaching the same bits as an uninterrupted run (same flags and threads).
 */
#ifndef TR_LOOP_H
#define TR_LOOP_H

#include <signal.h>
#include <stdio.h>

#include "checkpoint.h"
#include "flags.h"
#include "split.h"

/* Set by the SIGINT/SIGTERM handler; the loop stops after the current batch. */
extern volatile sig_atomic_t tr_stop_requested;
/* Installs the handler for SIGINT and SIGTERM. */
void tr_install_signals(void);

/* CRC-32 of the canonical text of every flag that changes the trained bits (dims, lr,
 * batch, seed, split, targets, clip, pos_weight, limit-users, repeat; the ranking loss's
 * flags unless --loss is bce, so older checkpoints keep their signature). The thread count
 * is not part of it: resuming with another --threads works, but bit-identical results are
 * only promised with the same thread count (BLAS summation order). */
uint32_t tr_run_signature(const tr_flags *f, int n_products);

typedef struct {
    const tr_flags *f;
    nn_model *m; /* train-initialised */
    const st_history *h;
    const tr_samples *s;
    tr_rep_fn rep;      /* repeat features (NULL without the repeat term) */
    void *rep_ctx;      /* its context, e.g. a tr_rep_ctx (borrowed) */
    tr_train_state *st; /* st->best_params allocated by the caller */
    const char *ckpt_path;
    FILE *log; /* progress output (stderr), NULL = quiet */
    /* a NaN is injected into the loss at this global batch number (0 = off): set by tests,
     * and by the test build of nb-train from NB_TEST_NAN_BATCH */
    long nan_at_batch;
} tr_loop;

/* Runs epochs st->epochs_done+1 .. f->epochs (or until early stopping / f->stop_after
 * epochs of this call). Returns NB_OK (then m holds the best epoch's parameters), NB_EINTR
 * (a signal or --stop-after: the last checkpoint is valid), NB_ENAN (a NaN/Inf loss or
 * gradient; the last checkpoint is valid, message names epoch and batch), or an I/O error. */
int tr_train_run(tr_loop *L, char *err, size_t errlen);

#endif
