/* weights.h -- the weight file (.nbw): save and load a model. Format: model/WEIGHTS.md.
 *
 * The file carries the hyper-parameters, the product-id list that the output rows and
 * embedding rows refer to, the calibration (calib_a, calib_b), every tensor, and a CRC-32 of
 * all preceding bytes. It is written atomically (temporary name, fsync, rename).
 */
#ifndef NN_WEIGHTS_H
#define NN_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "nn.h"

#define NBW_MAGIC "NBWEIGHT" /* 8 bytes at offset 0 */
#define NBW_VERSION 2        /* the newest; 1 is still read and written (model/WEIGHTS.md) */

/* Writes m (float build only) with its product list product_ids[m->cfg.n_products].
 * Returns NB_OK or NB_EIO (nothing left behind on failure). */
int nbw_save(const nn_model *m, const int32_t *product_ids, const char *path, char *err,
             size_t errlen);

/* nbw_save, but the file is committed under "<path>.<checksum %08x>" (*vpath, malloc'd,
 * caller frees; *crc its checksum, the one nbw_load reports) and path itself is left alone:
 * a weight file that is never overwritten, so that a registry row naming it stays true
 * (train/publish.h). Like nbw_save, it takes the mode of an existing file at path. Returns
 * NB_OK or NB_EIO (nothing left behind, *vpath NULL). */
int nbw_save_versioned(const nn_model *m, const int32_t *product_ids, const char *path,
                       uint32_t *crc, char **vpath, char *err, size_t errlen);

/* Loads path into a freshly initialised *m (scoring-only; call nn_model_train_init to train
 * further). If expect_ids != NULL the file's product list must equal expect_ids[n_expect]
 * exactly, else NB_EMISMATCH. On success *product_ids (if non-NULL) receives a malloc'd copy
 * of the file's list (caller frees) and *crc (if non-NULL) the file's checksum, which names
 * the model ("model": "%08x" in the server). Each failed check has its own message:
 * "cannot open", "truncated", "bad magic", "unsupported version N (this build reads 1 to 2)",
 * "checksum mismatch", "bad hyper-parameters", "product list differs from the store".
 * Returns NB_OK, NB_EIO, NB_EFORMAT or NB_EMISMATCH; on error *m is left zeroed. */
int nbw_load(nn_model *m, const char *path, const int32_t *expect_ids, int n_expect,
             int32_t **product_ids, uint32_t *crc, char *err, size_t errlen);

#endif
