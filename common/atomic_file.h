/* atomic_file.h -- write a file so that readers see either the old or the complete new one.
 *
 *   nb_afile af;
 *   if (nb_afile_open(&af, "model.nbw", err, sizeof err)) return ...;
 *   fwrite(..., af.f);                       // write through af.f
 *   if (nb_afile_commit(&af, err, sizeof err)) return ...;   // or nb_afile_abort(&af)
 *
 * The data goes to "<path>.tmp.<pid>" in the same directory; commit flushes, fsyncs, renames
 * it over <path> and fsyncs the directory. Abort (or a failed commit) removes the temporary
 * file, so no stray files are left behind. The new file keeps the permission bits of the file
 * it replaces (a store or weight file chmod'ed 600 stays 600); a first file gets the usual
 * 0666 & ~umask. Temporary files of processes that died (kill -9) are removed by the next
 * open for the same path (nb_tmp_sweep).
 */
#ifndef NB_ATOMIC_FILE_H
#define NB_ATOMIC_FILE_H
#include <stddef.h>
#include <stdio.h>

typedef struct {
    FILE *f;    /* write here between open and commit/abort */
    char *path; /* final name (owned) */
    char *tmp;  /* temporary name (owned) */
} nb_afile;

/* Returns NB_OK and an open af->f, or NB_EIO with a message naming the file. Removes stale
 * temporary files of `path` left by dead processes first. */
int nb_afile_open(nb_afile *af, const char *path, char *err, size_t errlen);
/* Returns NB_OK once the data is durable under af->path; NB_EIO otherwise (temporary file
 * removed). Either way af's resources are released. */
int nb_afile_commit(nb_afile *af, char *err, size_t errlen);
/* nb_afile_commit, but the data ends up under `final` (same directory as af->path: the
 * rename must not cross file systems) instead of af->path, which is left alone. For names
 * known only once the content is written (a weight file named by its checksum). */
int nb_afile_commit_as(nb_afile *af, const char *final, char *err, size_t errlen);
/* Discards the temporary file and releases af. Safe to call on a zeroed af. */
void nb_afile_abort(nb_afile *af);
/* The temporary name for `path` used by this process, malloc'd (caller frees).
 * Used by other writers that need the same discipline (e.g. the SQLite import). */
char *nb_tmp_name(const char *path);
/* Makes dst another name of the existing file src (a hard link, same directory), replacing
 * whatever dst was in one rename: readers of dst see the old file or src, never a mix.
 * Returns NB_OK or NB_EIO naming dst (dst is then unchanged). */
int nb_link_replace(const char *src, const char *dst, char *err, size_t errlen);
/* fsync the directory containing `path`, so that a rename in it is durable. Returns 0 or -1. */
int nb_fsync_dir(const char *path);

/* Gives the open file fd the permission bits (07777) of the existing file `like`, so that a
 * replacement keeps the mode of what it replaces. Returns 0 when done or when `like` does not
 * exist (nothing to keep: fd keeps its umask-derived mode), -1 with errno otherwise. */
int nb_keep_mode(const char *like, int fd);

/* Removes the leftovers of writers of `path` that were killed before they could clean up:
 * entries of path's directory named exactly "<basename>.tmp.<pid>", optionally followed by
 * "-wal", "-shm" or "-journal" (SQLite's side files of a temporary store), where <pid> is a
 * decimal process id other than ours that no longer exists (kill(pid, 0) fails with ESRCH).
 * Files of live processes (another import or training still running, or one of another
 * user: EPERM) and every other name are left alone. Returns the number of files removed
 * (best effort: an unreadable directory removes nothing). */
int nb_tmp_sweep(const char *path);

#endif
