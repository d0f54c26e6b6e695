/* publish.h -- a trained model becomes servable all at once, or not at all.
 *
 * What a served model is made of: its weight file, its ranker file (when it has a ranking
 * stage) and its rows in the store (models, candidates, product statistics, ranking-stage
 * tables). They change together in this order:
 *   1. tr_pub_save: the weights go to "<model>.<crc>" (nbw_save_versioned), a name no later
 *      training overwrites with other bytes, and the ranker file to
 *      "<model>.<crc>.<ranker crc>.xgb";
 *      <model> itself, the name operators and nb-serve use, is untouched;
 *   2. the registration transaction (st_model_register) names those files and gives the
 *      model an id never used before; the previous model stays registered (--keep-models);
 *   3. tr_pub_commit: <model> becomes a hard link to the new weights in one rename, and
 *      the files no registered model names any more are deleted.
 * A process killed or failing anywhere leaves <model> naming a registered model: before 3
 * the previous one (its rows are still there), after 3 the new one. tr_pub_abort removes
 * what step 1 wrote when registration did not happen.
 */
#ifndef TR_PUBLISH_H
#define TR_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "models.h"
#include "nn.h"
#include "ranker.h"

typedef struct {
    char *wpath;     /* the weight file "<model>.<crc>", absolute (owned) */
    char *rkpath;    /* "<wpath>.<rkcrc>.xgb" (owned), once tr_pub_save_ranker ran */
    uint32_t crc;    /* the weights' checksum */
    uint32_t rkcrc;  /* the ranker file's checksum */
} tr_pub;

/* Writes m's weight file as "<model>.<crc>", loads it back to check it against the store's
 * product list ids[n], and fills *p. Returns NB_OK, or the save/load error with nothing
 * left behind. */
int tr_pub_save(tr_pub *p, const nn_model *m, const int32_t *ids, int n, const char *model,
                char *err, size_t errlen);

/* Writes the ranker file of p's model as "<wpath>.<ranker crc>.xgb" (p->rkpath, p->rkcrc).
 * Returns NB_OK or tr_ranker_save's error (nothing left behind). */
int tr_pub_save_ranker(tr_pub *p, const tr_ranker *r, char *err, size_t errlen);

/* Step 3: links `model` to p->wpath, then deletes the checksum-named files ("<x>.<8 hex>",
 * "<x>.<8 hex>.<8 hex>.xgb") other than p's that no model registered in db names: those in
 * unused (st_model_register's list of retired models' files) and those beside `model`
 * that a training killed before registering left. Other names an older nb-train registered
 * are left alone. Two nb-train runs on one --model at the same time are not supported.
 * Returns NB_OK or NB_EIO (the model is registered either way: nb-serve --model p->wpath
 * serves it). */
int tr_pub_commit(tr_pub *p, const char *model, sqlite3 *db, const st_strlist *unused, char *err,
                  size_t errlen);

/* Removes p's files unless a model registered in db names them (an identical earlier
 * training wrote the same bytes under the same name), then frees p. For a training that
 * stops between tr_pub_save and a committed registration. Safe on a zeroed p. */
void tr_pub_abort(tr_pub *p, sqlite3 *db);

/* Frees p's strings (the files stay). Safe on a zeroed p. */
void tr_pub_free(tr_pub *p);

#endif
