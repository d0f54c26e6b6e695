/* publish.c -- checksum-named model files and the switch of <model> (see publish.h). */
#include "publish.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"
#include "nb_err.h"
#include "weights.h"

/* See publish.h. */
int tr_pub_save(tr_pub *p, const nn_model *m, const int32_t *ids, int n, const char *model,
                char *err, size_t errlen) {
    char *v = NULL;
    nn_model chk = {0};
    uint32_t crc = 0, loaded = 0;
    memset(p, 0, sizeof *p);
    int rc = nbw_save_versioned(m, ids, model, &crc, &v, err, errlen);
    if (rc) return rc;
    /* read back: what is registered must be what a server will load */
    rc = nbw_load(&chk, v, ids, n, NULL, &loaded, err, errlen);
    nn_model_free(&chk);
    if (rc == NB_OK && loaded != crc)
        rc = nb_err(err, errlen, NB_EMISMATCH, "%s: checksum %08x read back, %08x written", v,
                    loaded, crc);
    if (rc) {
        unlink(v);
        free(v);
        return rc;
    }
    p->wpath = realpath(v, NULL);
    if (!p->wpath) p->wpath = v, v = NULL;
    free(v);
    p->crc = crc;
    return NB_OK;
}

/* See publish.h. The trees go to a fixed staging name first because their checksum is
 * known only once written; the rename to the checksum name is atomic. */
int tr_pub_save_ranker(tr_pub *p, const tr_ranker *r, char *err, size_t errlen) {
    size_t len = strlen(p->wpath) + 24;
    char *staging = nb_xmalloc(len), *final = nb_xmalloc(len);
    uint32_t crc = 0;
    snprintf(staging, len, "%s.xgb", p->wpath);
    int rc = tr_ranker_save(r, staging, &crc, err, errlen);
    if (rc == NB_OK) {
        snprintf(final, len, "%s.%08x.xgb", p->wpath, crc);
        if (rename(staging, final) != 0) {
            rc = nb_err(err, errlen, NB_EIO, "%s: rename to %s failed: %s", staging, final,
                        strerror(errno));
            unlink(staging);
        } else {
            nb_fsync_dir(final);
        }
    }
    free(staging);
    if (rc) {
        free(final);
        return rc;
    }
    free(p->rkpath);
    p->rkpath = final;
    p->rkcrc = crc;
    return NB_OK;
}

/* 1 when the file name of path ends in ".<8 lower-case hex digits>", optionally followed by
 * ".xgb": a name tr_pub_save gives. */
static int checksum_named(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 4 && strcmp(b + n - 4, ".xgb") == 0) n -= 4;
    if (n < 10 || b[n - 9] != '.') return 0;
    for (size_t i = n - 8; i < n; i++)
        if (!((b[i] >= '0' && b[i] <= '9') || (b[i] >= 'a' && b[i] <= 'f'))) return 0;
    return 1;
}

/* Deletes path when it is a checksum-named file other than p's that no registered model
 * names (a retired model's, or one a killed training left behind). */
static void remove_if_unnamed(const tr_pub *p, sqlite3 *db, const char *path) {
    char err[NB_ERRLEN];
    if (!checksum_named(path) || strcmp(path, p->wpath) == 0 ||
        (p->rkpath && strcmp(path, p->rkpath) == 0))
        return;
    if (st_model_file_named(db, path, err, sizeof err) == 0) unlink(path);
}

/* See publish.h. */
int tr_pub_commit(tr_pub *p, const char *model, sqlite3 *db, const st_strlist *unused, char *err,
                  size_t errlen) {
    int rc = nb_link_replace(p->wpath, model, err, errlen);
    if (rc) return rc;
    for (int i = 0; i < unused->n; i++) remove_if_unnamed(p, db, unused->v[i]);
    /* leftovers beside <model>: "<model>.<crc>..." files of trainings killed before
     * registering (paths as the models table has them: absolute) */
    char *abs = realpath(model, NULL);
    if (!abs) return NB_OK;
    char *slash = strrchr(abs, '/');
    *slash = 0;
    const char *dir = *abs ? abs : "/", *base = slash + 1;
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, base, blen) != 0 || de->d_name[blen] != '.') continue;
        size_t n = strlen(dir) + strlen(de->d_name) + 2;
        char *full = nb_xmalloc(n);
        snprintf(full, n, "%s/%s", strcmp(dir, "/") ? dir : "", de->d_name);
        remove_if_unnamed(p, db, full);
        free(full);
    }
    if (d) closedir(d);
    free(abs);
    return NB_OK;
}

/* See publish.h. */
void tr_pub_abort(tr_pub *p, sqlite3 *db) {
    char err[NB_ERRLEN];
    const char *files[2] = {p->wpath, p->rkpath};
    for (int i = 0; i < 2; i++) /* kept when named, or when the store cannot tell */
        if (files[i] && st_model_file_named(db, files[i], err, sizeof err) == 0) unlink(files[i]);
    tr_pub_free(p);
}

/* See publish.h. */
void tr_pub_free(tr_pub *p) {
    free(p->wpath);
    free(p->rkpath);
    memset(p, 0, sizeof *p);
}
