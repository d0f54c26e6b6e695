/* rkserve.h -- the ranking stage at serving time (nb-serve, nb-train --score-user): the
 * registered ranker file and statistics, and one user's ranked candidates. */
#ifndef TR_RKSERVE_H
#define TR_RKSERVE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "ranker.h"
#include "rkfeat.h"
#include "prerank.h"
#include "score.h"

typedef struct {
    int present;      /* a ranker is registered with the model */
    int ship_ranker;  /* 1: the trees rank; 0: baseline `shipped` ranks (safeguard) */
    int model_input;  /* the trees read the CNN->GRU model's probability (else it is NaN) */
    char shipped[32]; /* "ranker", "ranker -model" (without the model's input) or the
                         baseline's name (train/rktrain.h tr_rk_shipped) */
    char *path;       /* ranker file */
    uint32_t crc;
    tr_ranker rk;
    tr_rk_pstats ps;
    tr_rk_tifu tifu; /* the stored TIFU-KNN feature parameters (defaults for older stores) */
    int cal;         /* a shipped baseline's scores are calibrated (rkscore.h tr_rk_calibrate) */
    double cal_a, cal_b;
} tr_rk_serving;

/* Loads model_id's ranking stage for catalog: registration, ranker file (its checksum must
 * equal the registered one), product statistics. Returns NB_OK (present = 0 when nothing is
 * registered, e.g. --ranker off or a store from before the ranking stage), NB_EMISMATCH (the
 * file's checksum differs from the registered one: message names both and the file),
 * NB_EIO / NB_EFORMAT (the file), NB_EDB. s owns everything; free with tr_rk_serving_free
 * (safe on a zeroed s). */
int tr_rk_serving_open(tr_rk_serving *s, sqlite3 *db, int64_t model_id, const st_history *catalog,
                       char *err, size_t errlen);
void tr_rk_serving_free(tr_rk_serving *s);

/* Ranks user u of h (whose catalogue arrays are the served catalogue's) for the order after
 * [start, hist_end): the stored neighbour pairs of the user, the cosine candidate set
 * cos[n_cos], the model's probabilities through sc, then the trees rk (s->rk or a
 * per-thread tr_ranker_clone of it: XGBoost's predictor is not shared between threads), or
 * the shipped baseline's scores; ru->tifu is set to s->tifu first. On return ru holds the
 * candidates and score[ru->n] their scores (ranker probabilities, or the baseline's scores,
 * calibrated to probabilities when the store has the baseline's calibration). Scratch: nbr_idx/nbr_val/prob [n_products].
 * Returns NB_OK, NB_ENOTFOUND (cold start) or an error. */
int tr_rk_serving_rank(const tr_rk_serving *s, tr_ranker *rk, tr_rk_user *ru, tr_scorer *sc, sqlite3 *db,
                       int64_t model_id, const st_history *h, int u, int64_t hist_end,
                       const int32_t *cos, int n_cos, int32_t *nbr_idx, float *nbr_val, float *prob,
                       int32_t *list, float *score, char *err, size_t errlen);

/* What one thread needs to rank users with a serving stage s: its own copy of the trees
 * (XGBoost's predictor is not shared between threads), the user being ranked, and scratch
 * of the catalogue's size. nb-serve has one per worker thread and model, nb-train one per
 * worker of train/prerank_build.h. */
typedef struct {
    tr_rk_user ru;            /* the last ranked user's candidates and features */
    tr_ranker rk;             /* this thread's copy of s's trees (when they ship) */
    float *score;             /* [P] score[i] of candidate ru.cand[i] */
    int32_t *pos;             /* [P] product -> position in ru, -1 for the others */
    tr_prerank_entry *pre;    /* [P] a stored ranking, built or read (infer/prerank.h) */
    int32_t *nbr_idx, *list;  /* [P] scratch of tr_rk_serving_rank */
    float *nbr_val, *prob;    /* [P] */
} tr_rk_thread;

/* Sets up t for s (present) over catalog. Returns NB_OK or an error; free with
 * tr_rk_thread_free (safe on a zeroed or partly set-up t). */
int tr_rk_thread_init(tr_rk_thread *t, const tr_rk_serving *s, const st_history *catalog,
                      char *err, size_t errlen);
void tr_rk_thread_free(tr_rk_thread *t);

/* tr_rk_serving_rank of user u of h (history [.., hist_end)) with t's trees and scratch:
 * t->ru and t->score hold the result and t->pos its positions (the previous user's are
 * cleared first). Returns as tr_rk_serving_rank (NB_ENOTFOUND: cold, t->ru.n = 0). */
int tr_rk_thread_rank(tr_rk_thread *t, const tr_rk_serving *s, tr_scorer *sc, sqlite3 *db,
                      int64_t model_id, const st_history *h, int u, int64_t hist_end,
                      const int32_t *cos, int n_cos, char *err, size_t errlen);

/* The explanation of candidate c of ru (rkfeat.h sources): a product proposed by the
 * neighbour source that the user never bought is TR_WHY_NEIGHBOURS ("people who buy what
 * you buy also buy this"); every other one tr_why_of's (explain.h: x and f as there).
 * Returns 0, or -1 when c is out of range (*w zeroed). */
#include "explain.h"
int tr_rk_why(tr_why *w, const tr_explainer *x, const tr_features *f, const tr_rk_user *ru, int c);

/* Writes into top[0..k) the positions in ru of the k best scores (score descending, ties by
 * lower product index); returns k (<= ru->n). */
int tr_rk_top(const tr_rk_user *ru, const float *score, int k, int32_t *top);

#endif
