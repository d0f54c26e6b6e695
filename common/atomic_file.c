/* atomic_file.c -- temporary name, fsync, rename. */
#include "atomic_file.h"
#include "nb_err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
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

/* See atomic_file.h. */
int nb_keep_mode(const char *like, int fd) {
    struct stat sb;
    if (stat(like, &sb) != 0) return errno == ENOENT ? 0 : -1;
    return fchmod(fd, sb.st_mode & 07777);
}

/* Returns the pid when name is "<base>.tmp.<digits>" plus an optional SQLite side-file
 * suffix, else 0. */
static long tmp_pid(const char *name, const char *base, size_t blen) {
    if (strncmp(name, base, blen) != 0 || strncmp(name + blen, ".tmp.", 5) != 0) return 0;
    const char *p = name + blen + 5;
    long pid = 0;
    const char *d = p;
    while (*p >= '0' && *p <= '9' && p - d < 10) pid = pid * 10 + (*p++ - '0');
    if (p == d || (*d == '0')) return 0; /* no digits, or a leading zero: not a name we write */
    if (*p && strcmp(p, "-wal") != 0 && strcmp(p, "-shm") != 0 && strcmp(p, "-journal") != 0)
        return 0;
    return pid;
}

/* See atomic_file.h. A pid is judged dead only on ESRCH: EPERM means a live process of
 * another user, whose file is not ours to remove. */
int nb_tmp_sweep(const char *path) {
    char *dcopy = strdup(path), *bcopy = strdup(path);
    int removed = 0;
    DIR *d = NULL;
    if (!dcopy || !bcopy) goto done;
    const char *dir = dirname(dcopy), *base = basename(bcopy);
    size_t blen = strlen(base), dlen = strlen(dir);
    if (!(d = opendir(dir))) goto done;
    long self = (long)getpid();
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = tmp_pid(e->d_name, base, blen);
        if (pid <= 0 || pid == self || (pid_t)pid != pid) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        size_t n = dlen + strlen(e->d_name) + 2;
        char *full = malloc(n);
        if (!full) break;
        snprintf(full, n, "%s/%s", dir, e->d_name);
        if (unlink(full) == 0) removed++;
        free(full);
    }
done:
    if (d) closedir(d);
    free(dcopy);
    free(bcopy);
    return removed;
}

/* See atomic_file.h. The temporary file gets the old file's mode before any byte is written,
 * so a private file's new content is never readable by others, not even while written. */
int nb_afile_open(nb_afile *af, const char *path, char *err, size_t errlen) {
    memset(af, 0, sizeof *af);
    nb_tmp_sweep(path);
    af->path = strdup(path);
    af->tmp = nb_tmp_name(path);
    af->f = fopen(af->tmp, "wb");
    if (!af->f) {
        int e = errno;
        nb_afile_abort(af);
        return nb_err(err, errlen, NB_EIO, "%s: cannot create temporary file: %s", path,
                      strerror(e));
    }
    if (nb_keep_mode(path, fileno(af->f)) != 0) {
        int e = errno;
        nb_afile_abort(af);
        return nb_err(err, errlen, NB_EIO,
                      "%s: cannot give the temporary file the mode of the old file: %s", path,
                      strerror(e));
    }
    return NB_OK;
}

int nb_afile_commit(nb_afile *af, char *err, size_t errlen) {
    return nb_afile_commit_as(af, af->path, err, errlen);
}

/* See atomic_file.h. */
int nb_afile_commit_as(nb_afile *af, const char *final, char *err, size_t errlen) {
    int rc = NB_OK;
    const char *what = NULL;
    if (fflush(af->f) != 0 || ferror(af->f))
        what = "write";
    else if (fsync(fileno(af->f)) != 0)
        what = "fsync";
    int e = errno;
    if (fclose(af->f) != 0 && !what) {
        what = "close";
        e = errno;
    }
    af->f = NULL;
    if (!what && rename(af->tmp, final) != 0) {
        what = "rename";
        e = errno;
    }
    if (what) {
        rc = nb_err(err, errlen, NB_EIO, "%s: %s failed: %s", final, what, strerror(e));
        unlink(af->tmp);
    } else {
        nb_fsync_dir(final);
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

/* See atomic_file.h. A hard link shares src's bytes and mode, so dst never exists half
 * written and costs no copy; the link goes to dst's temporary name first because link()
 * refuses to replace an existing name. */
int nb_link_replace(const char *src, const char *dst, char *err, size_t errlen) {
    nb_tmp_sweep(dst);
    char *tmp = nb_tmp_name(dst);
    int rc = NB_OK;
    unlink(tmp); /* ours from an earlier call of this process, if any */
    if (link(src, tmp) != 0) {
        rc = nb_err(err, errlen, NB_EIO, "%s: cannot link it to %s: %s", dst, src, strerror(errno));
        goto done;
    }
    if (rename(tmp, dst) != 0) {
        rc = nb_err(err, errlen, NB_EIO, "%s: rename failed: %s", dst, strerror(errno));
        unlink(tmp);
        goto done;
    }
    nb_fsync_dir(dst);
done:
    free(tmp);
    return rc;
}
