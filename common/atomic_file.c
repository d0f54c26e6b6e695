/* atomic_file.c -- temporary name, fsync, rename. */
#include "atomic_file.h"
#include "nb_err.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *nb_tmp_name(const char *path) {
    size_t n = strlen(path) + 32;
    char *t = nb_xmalloc(n);
    snprintf(t, n, "%s.tmp.%ld", path, (long)getpid());
    return t;
}

int nb_fsync_dir(const char *path) {
    char *copy = strdup(path);
    if (!copy) return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int nb_afile_open(nb_afile *af, const char *path, char *err, size_t errlen) {
    memset(af, 0, sizeof *af);
    af->path = strdup(path);
    af->tmp = nb_tmp_name(path);
    af->f = fopen(af->tmp, "wb");
    if (!af->f) {
        int e = errno;
        nb_afile_abort(af);
        return nb_err(err, errlen, NB_EIO, "%s: cannot create temporary file: %s", path, strerror(e));
    }
    return NB_OK;
}

int nb_afile_commit(nb_afile *af, char *err, size_t errlen) {
    int rc = NB_OK;
    const char *what = NULL;
    if (fflush(af->f) != 0 || ferror(af->f)) what = "write";
    else if (fsync(fileno(af->f)) != 0) what = "fsync";
    int e = errno;
    if (fclose(af->f) != 0 && !what) { what = "close"; e = errno; }
    af->f = NULL;
    if (!what && rename(af->tmp, af->path) != 0) { what = "rename"; e = errno; }
    if (what) {
        rc = nb_err(err, errlen, NB_EIO, "%s: %s failed: %s", af->path, what, strerror(e));
        unlink(af->tmp);
    } else {
        nb_fsync_dir(af->path);
    }
    free(af->path);
    free(af->tmp);
    af->path = af->tmp = NULL;
    return rc;
}

void nb_afile_abort(nb_afile *af) {
    if (af->f) fclose(af->f);
    if (af->tmp) unlink(af->tmp);
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
}
