/* atomic_file.h -- write a file so that readers see either the old or the complete new one.
 *
 *   nb_afile af;
 *   if (nb_afile_open(&af, "model.nbw", err, sizeof err)) return ...;
 *   fwrite(..., af.f);                       // write through af.f
 *   if (nb_afile_commit(&af, err, sizeof err)) return ...;   // or nb_afile_abort(&af)
 *
 * The data goes to "<path>.tmp.<pid>" in the same directory; commit flushes, fsyncs, renames
 * it over <path> and fsyncs the directory. Abort (or a failed commit) removes the temporary
 * file, so no stray files are left behind.
 */
#ifndef NB_ATOMIC_FILE_H
#define NB_ATOMIC_FILE_H
#include <stddef.h>
#include <stdio.h>

typedef struct {
    FILE *f;        /* write here between open and commit/abort */
    char *path;     /* final name (owned) */
    char *tmp;      /* temporary name (owned) */
} nb_afile;

/* Returns NB_OK and an open af->f, or NB_EIO with a message naming the file. */
int nb_afile_open(nb_afile *af, const char *path, char *err, size_t errlen);
/* Returns NB_OK once the data is durable under af->path; NB_EIO otherwise (temporary file
 * removed). Either way af's resources are released. */
int nb_afile_commit(nb_afile *af, char *err, size_t errlen);
/* Discards the temporary file and releases af. Safe to call on a zeroed af. */
void nb_afile_abort(nb_afile *af);
/* The temporary name for `path` used by this process, malloc'd (caller frees).
 * Used by other writers that need the same discipline (e.g. the SQLite import). */
char *nb_tmp_name(const char *path);
/* fsync the directory containing `path`, so that a rename in it is durable. Returns 0 or -1. */
int nb_fsync_dir(const char *path);

#endif
