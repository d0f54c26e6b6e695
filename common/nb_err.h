/* nb_err.h -- the error convention used by every module.
 *
 * A function that can fail returns an int: 0 (NB_OK) on success, a negative NB_E* code on
 * failure, and writes a one-line human-readable message into a caller-owned buffer
 * `char *err` of `size_t errlen` bytes (NB_ERRLEN is a good size). The message names the
 * file and line, field or parameter at fault. `err` may be NULL when the caller does not care.
 */
#ifndef NB_ERR_H
#define NB_ERR_H

#include <stddef.h>

#define NB_ERRLEN 512

enum {
    NB_OK = 0,
    NB_EIO = -1,       /* open/read/write/fsync/rename failed (errno text in message) */
    NB_EFORMAT = -2,   /* input is malformed: bad CSV, bad weight file, bad JSON */
    NB_EINVAL = -3,    /* invalid argument or flag value */
    NB_ENOMEM = -4,    /* an allocation sized by untrusted input failed (the importer only,
                          see the policy below) */
    NB_EDB = -5,       /* SQLite error */
    NB_ENOTFOUND = -6, /* a requested key (user, product, file) does not exist */
    NB_EMISMATCH = -7, /* two artefacts disagree (schema version, product list, dims) */
    NB_EINTR = -8,     /* stopped by a signal on request */
    NB_ENAN = -9,      /* a NaN or Inf appeared (training diverged) */
    NB_EBUSY = -10,    /* the same operation is already running (a model reload) */
};

/* Writes a printf-formatted message into err (if non-NULL) and returns `code`, so that
 * callers can write `return nb_err(err, errlen, NB_EINVAL, "--kernel must be > 0");`. */
int nb_err(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Like nb_err but prefixes the message already in err with a printf-formatted context,
 * e.g. "loading model.nbw: <previous message>". Returns `code`. */
int nb_err_wrap(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Out of memory: the one policy. An allocation that fails ends the process: every
 * allocation goes through nb_xmalloc / nb_xcalloc / nb_xrealloc / nb_xaligned, which print
 * "fatal: out of memory allocating N bytes" to stderr and abort(), and no caller checks for
 * NULL. Why: the programs' sizes follow from the data and the flags, a run that cannot get
 * its memory cannot do its job, and one rule keeps every cleanup path free of half-allocated
 * states. The one exception is the importer's reading of CSV input (storage/csv.c,
 * storage/import.c), where a size comes from a file a user handed us: there a failed
 * allocation returns NB_ENOMEM with the file and line, so the user learns which input is too
 * large, and the half-built store is removed. */
void *nb_xmalloc(size_t n);
void *nb_xcalloc(size_t n, size_t size);
void *nb_xrealloc(void *p, size_t n);
/* n zeroed bytes aligned to align (a power of two, multiple of sizeof(void *)); free(). */
void *nb_xaligned(size_t align, size_t n);

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
double nb_now(void);

/* Peak resident set size of this process in bytes (from getrusage), 0 if unknown. */
long long nb_peak_rss(void);

#endif
