/* loop.c -- epochs, batches, validation, checkpoints. */
#include "loop.h"
#include "crc32.h"
#include "dist.h"
#include "evaluate.h"
#include "nb_err.h"
#include "rankloss.h"
#include "score.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t tr_stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    tr_stop_requested = 1;
}

void tr_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

uint32_t tr_run_signature(const tr_flags *f, int n_products) {
    char s[1024];
    int n = 0;
    /* issue 11's flags only when not at their defaults: the default run's signature, and so
     * its checkpoints, stay what they were */
    if (f->encoder || f->order_info || f->sequence || f->heads != 4 || f->warmup)
        n = snprintf(s, sizeof s, "enc=%d oi=%d seq=%d heads=%d warmup=%d ", f->encoder,
                     f->order_info, f->sequence, f->heads, f->warmup);
    n += snprintf(s + n, sizeof s - (size_t)n,
                  "P=%d emb=%d cnn=%d k=%d gru=%d/%d head=%d drop=%.17g lr=%.17g batch=%d "
                  "pw=%.17g orders=%d maxp=%d split=%d/%d/%d targets=%d repeat=%d rh=%d "
                  "clip=%.17g seed=%lld limit=%d",
                  n_products, f->emb, f->cnn_out, f->kernel, f->gru_hidden, f->gru_layers, f->head,
                  f->dropout, f->lr, f->batch, f->pos_weight, f->orders, f->max_products,
                  f->split[0], f->split[1], f->split[2], f->targets_all, f->repeat, f->rep_hidden,
                  f->clip, f->seed, f->limit_users);
    /* only a ranking loss adds to the text, so a --loss bce checkpoint keeps its signature */
    if (f->loss != TR_LOSS_BCE && n > 0 && (size_t)n < sizeof s)
        n += snprintf(s + n, sizeof s - (size_t)n, " loss=%s w=%.17g margin=%.17g neg=%d",
                      tr_loss_names[f->loss], f->rank_weight, f->margin, f->negatives);
    return nb_crc32(0, s, (size_t)n);
}

/* Prints progress: a bar redrawn in place on a terminal; otherwise a plain log line at
 * every tenth of the epoch. ETA is for the rest of the epoch's training. */
static void progress(FILE *log, int tty, int epoch, int done, int total, int batch, double loss,
                     double sps) {
    if (!log) return;
    double eta = sps > 0 ? (double)(total - done) * batch / sps : 0;
    if (!tty) {
        int step = total >= 10 ? total / 10 : 1;
        if (done % step == 0 && done < total)
            fprintf(log, "epoch %d: %d/%d batches, loss %.5f, %.0f samples/s, ETA %.0fs\n", epoch,
                    done, total, loss, sps, eta);
        return;
    }
    int w = 30, fill = total ? (int)((double)done / total * w) : w;
    fprintf(log, "\repoch %3d [", epoch);
    for (int i = 0; i < w; i++) fputc(i < fill ? '#' : '.', log);
    fprintf(log, "] %d/%d batches  loss %.5f  %.0f samples/s  ETA %.0fs   ", done, total, loss, sps,
            eta);
    fflush(log);
}

int tr_train_run(tr_loop *L, char *err, size_t errlen) {
    const tr_flags *f = L->f;
    nn_model *m = L->m;
    tr_train_state *st = L->st;
    const tr_samples *s = L->s;
    int rc = NB_OK, B = f->batch, N = s->n_train;
    int tty = L->log && isatty(fileno(L->log));
    tr_batch tb = {0};
    tr_pairs pairs = {0};
    tr_scorer *sc = NULL;
    int has_rep = m->cfg.rep_features > 0;
    int32_t *perm = nb_xmalloc(((size_t)N + 1) * sizeof(int32_t));
    tr_sample *bs = nb_xmalloc((size_t)B * sizeof(tr_sample));
    int epochs_this_call = 0;
    long batch_no = (long)st->epochs_done * ((N + B - 1) / B);
    if (N == 0) {
        rc = nb_err(err, errlen, NB_EINVAL, "no training samples (too few users for the split?)");
        goto done;
    }
    if (has_rep && !L->rep) {
        rc = nb_err(err, errlen, NB_EINVAL, "the model has a repeat term but no feature source");
        goto done;
    }
    rc = tr_scorer_new(&sc, m, err, errlen);
    if (rc == NB_OK && has_rep) tr_scorer_set_rep(sc, L->rep, L->rep_ctx, NULL);
    if (rc == NB_OK && st->epochs_done == 0 && s->n_val > 0) {
        /* Epoch 0, the starting point, competes with the trained epochs: with a repeat term
         * it already ranks like P-TopFreq (train/repinit.h), and on data whose signal that
         * rule already exhausts, training on few users can only add noise -- validation
         * decides, so the model never ships worse than its start on validation. */
        tr_eval_result ev;
        rc = tr_eval_model(sc, m, L->h, s->val, s->n_val, NULL, f->threshold, 0,
                           (float)f->pos_weight, NULL, NULL, &ev, err, errlen);
        if (rc == NB_OK) {
            st->start_metric = st->best_metric = ev.thr[0].r_at[0];
            st->best_epoch = 0;
            st->bad_epochs = 0;
            memcpy(st->best_params, m->mem, m->n_params * sizeof(nn_real));
            if (L->log)
                fprintf(L->log, "epoch 0 (start): val loss %.5f  val R@10 %.4f  NDCG@10 %.4f\n",
                        ev.loss, ev.thr[0].r_at[0], ev.thr[0].ndcg_at[0]);
        }
    }
    while (rc == NB_OK && st->epochs_done < f->epochs && st->bad_epochs < f->patience) {
        int epoch = st->epochs_done + 1, nb = (N + B - 1) / B;
        /* the permutation depends only on the rng state, which the checkpoint keeps */
        for (int i = 0; i < N; i++) perm[i] = i;
        for (int i = N - 1; i > 0; i--) {
            int j = (int)nb_rng_below(&st->shuffle_rng, (uint64_t)i + 1);
            int32_t t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        tr_dist_epoch_rng(m, &st->shuffle_rng); /* ranks > 1: each its own masks */
        double t0 = nb_now(), sum_loss = 0;
        for (int k = 0; k < nb && rc == NB_OK; k++) {
            int b0 = k * B, bn = N - b0 < B ? N - b0 : B, lo, hi, stop;
            /* this rank's slice of the global batch (all of it with one rank: dist.h) */
            tr_dist_slice(bn, &lo, &hi);
            for (int i = lo; i < hi; i++) bs[i - lo] = s->train[perm[b0 + i]];
            double loss = 0;
            if (hi > lo) {
                rc = tr_batch_fill(&tb, L->h, bs, hi - lo, &m->cfg, NULL, 0, 1,
                                   has_rep ? L->rep : NULL, L->rep_ctx, err, errlen);
                if (rc) break;
                nn_model_zero_grad(m);
                loss = nn_model_forward(m, &tb.nb, 1, (float)f->pos_weight);
                loss = tr_rank_apply(&pairs, m, tb.nb.targets, hi - lo, f, epoch, b0 + lo, loss);
            }
            batch_no++;
            if (L->nan_at_batch && batch_no == L->nan_at_batch) loss = NAN;
            /* every rank sees the global batch's loss (so a NaN stops all of them at the
             * same batch) and the same stop decision */
            stop = tr_stop_requested;
            rc = tr_dist_step_agree(&loss, &stop, hi - lo, bn, err, errlen);
            if (rc) break;
            if (!isfinite(loss)) {
                rc = nb_err(err, errlen, NB_ENAN,
                            "training diverged: loss is %s at epoch %d batch %d (try a lower "
                            "--lr or --clip); the last checkpoint stays valid",
                            isnan(loss) ? "NaN" : "Inf", epoch, k + 1);
                break;
            }
            if (hi > lo) nn_model_backward(m, &tb.nb, (float)f->pos_weight);
            rc = tr_dist_sum_grad(m, hi - lo, bn, err, errlen);
            if (rc) break;
            /* linear warm-up over the first --warmup steps (adam_t: steps taken, checkpointed) */
            double lr = f->lr;
            if (f->warmup > 0 && m->adam_t < f->warmup) lr *= (double)(m->adam_t + 1) / f->warmup;
            double gn = nn_model_adam_step(m, (float)lr, 0.9f, 0.999f, 1e-8f, (float)f->clip);
            if (!isfinite(gn)) {
                rc = nb_err(err, errlen, NB_ENAN,
                            "training diverged: gradient norm is not finite at epoch %d batch %d",
                            epoch, k + 1);
                break;
            }
            sum_loss += loss;
            double el = nb_now() - t0;
            progress(L->log, tty, epoch, k + 1, nb, B, sum_loss / (k + 1),
                     el > 0 ? (b0 + bn) / el : 0);
            if (tr_dist_size() > 1 ? stop : tr_stop_requested) {
                rc = nb_err(err, errlen, NB_EINTR,
                            "stopped by a signal in epoch %d; resume with --resume", epoch);
                break;
            }
        }
        if (tty) fputc('\n', L->log);
        if (rc) break;
        double secs = nb_now() - t0;
        /* validation */
        tr_eval_result ev;
        rc = tr_eval_model(sc, m, L->h, s->val, s->n_val, NULL, f->threshold, 0,
                           (float)f->pos_weight, NULL, NULL, &ev, err, errlen);
        if (rc) break;
        tr_epoch_stat es = {sum_loss / nb,        ev.loss, ev.thr[0].r_at[0],
                            ev.thr[0].ndcg_at[0], secs,    N / (secs > 0 ? secs : 1e-9)};
        if (st->n_hist < TR_MAX_EPOCHS_HIST) st->hist[st->n_hist++] = es;
        st->epochs_done = epoch;
        st->train_seconds += secs;
        /* without validation samples (a store too small for the split to give validation a
         * user with a target) there is nothing to select on: the latest epoch is the model */
        if (s->n_val == 0 || es.val_recall10 > st->best_metric) {
            st->best_metric = es.val_recall10;
            st->best_epoch = epoch;
            st->bad_epochs = 0;
            memcpy(st->best_params, m->mem, m->n_params * sizeof(nn_real));
        } else {
            st->bad_epochs++;
        }
        if (L->log)
            fprintf(L->log,
                    "epoch %d: train loss %.5f  val loss %.5f  val R@10 %.4f  NDCG@10 %.4f  "
                    "%.1fs (%.0f samples/s)%s\n",
                    epoch, es.train_loss, es.val_loss, es.val_recall10, es.val_ndcg10, secs,
                    es.samples_per_s, st->best_epoch == epoch ? "  *best" : "");
        rc = tr_dist_check_same(m, err, errlen);
        if (rc == NB_OK && tr_dist_rank() == 0) /* rank 0 alone writes */
            rc = tr_ckpt_save(L->ckpt_path, m, st, err, errlen);
        if (rc) break;
        epochs_this_call++;
        if (st->bad_epochs >= f->patience) {
            if (L->log)
                fprintf(L->log,
                        "early stop: no better validation R@10 for %d epochs (best: "
                        "epoch %d, %.4f)\n",
                        st->bad_epochs, st->best_epoch, st->best_metric);
            break;
        }
        if (tr_dist_any(tr_stop_requested) ||
            (f->stop_after && epochs_this_call >= f->stop_after)) {
            rc = nb_err(err, errlen, NB_EINTR, "stopped after epoch %d; resume with --resume",
                        epoch);
            break;
        }
    }
    if (rc == NB_OK) memcpy(m->mem, st->best_params, m->n_params * sizeof(nn_real));
done:
    tr_batch_free(&tb);
    tr_pairs_free(&pairs);
    tr_scorer_free(sc);
    free(perm);
    free(bs);
    return rc;
}
