/* test_common.c -- the shared utilities: CRC-32, RNG determinism, atomic files, errors. */
#include "atomic_file.h"
#include "crc32.h"
#include "harness.h"
#include "nb_err.h"
#include "rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <math.h>

static int test_crc32_check_value(void) {
    T_ASSERT(nb_crc32(0, "123456789", 9) == 0xCBF43926u, "CRC-32 check value");
    uint32_t c = nb_crc32(0, "1234", 4);
    T_ASSERT(nb_crc32(c, "56789", 5) == 0xCBF43926u, "incremental CRC-32");
    return T_PASS;
}

/* The bitwise definition of CRC-32 (reflected, polynomial 0xEDB88320), one bit at a time. */
static uint32_t crc32_bitwise(uint32_t crc, const unsigned char *p, size_t n) {
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
    }
    return ~crc;
}

/* The 8-bytes-at-a-time path against the definition: every length 0..70 at every start
 * offset 0..7 (both the 8-byte loop and the tail, any alignment), and split points. */
static int test_crc32_slices(void) {
    unsigned char buf[80];
    nb_rng r;
    nb_rng_seed(&r, 7);
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)nb_rng_u64(&r);
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= 70; n++) {
            uint32_t want = crc32_bitwise(0, buf + off, n);
            T_ASSERT(nb_crc32(0, buf + off, n) == want, "offset %zu length %zu", off, n);
            size_t cut = n / 3;
            T_ASSERT(nb_crc32(nb_crc32(0, buf + off, cut), buf + off + cut, n - cut) == want,
                     "offset %zu length %zu split at %zu", off, n, cut);
        }
    return T_PASS;
}

static int test_rng_deterministic(void) {
    nb_rng a, b;
    nb_rng_seed(&a, 42);
    nb_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++) T_ASSERT(nb_rng_u64(&a) == nb_rng_u64(&b), "step %d", i);
    nb_rng_seed(&b, 43);
    T_ASSERT(nb_rng_u64(&a) != nb_rng_u64(&b), "different seeds differ");
    double s = 0, s2 = 0;
    for (int i = 0; i < 100000; i++) {
        double x = nb_rng_normal(&a);
        s += x;
        s2 += x * x;
    }
    T_ASSERT(fabs(s / 1e5) < 0.02 && fabs(s2 / 1e5 - 1) < 0.02, "normal mean %g var %g", s / 1e5,
             s2 / 1e5);
    for (int i = 0; i < 1000; i++) T_ASSERT(nb_rng_below(&a, 7) < 7, "below");
    return T_PASS;
}

static int test_atomic_file(void) {
    char path[512], err[NB_ERRLEN];
    snprintf(path, sizeof path, "%s/f.bin", t_tmpdir());
    nb_afile af;
    T_ASSERT(nb_afile_open(&af, path, err, sizeof err) == NB_OK, "%s", err);
    fputs("hello", af.f);
    struct stat st;
    T_ASSERT(stat(path, &st) != 0, "final name must not exist before commit");
    T_ASSERT(nb_afile_commit(&af, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(stat(path, &st) == 0 && st.st_size == 5, "committed file has 5 bytes");
    T_ASSERT(nb_afile_open(&af, path, err, sizeof err) == NB_OK, "%s", err);
    fputs("partial", af.f);
    char *tmp = nb_tmp_name(path);
    nb_afile_abort(&af);
    T_ASSERT(stat(tmp, &st) != 0, "abort removes the temporary file");
    free(tmp);
    T_ASSERT(stat(path, &st) == 0 && st.st_size == 5, "abort leaves the old file intact");
    T_ASSERT(nb_afile_open(&af, "/nonexistent-dir/x", err, sizeof err) == NB_EIO, "bad dir");
    T_ASSERT(strstr(err, "/nonexistent-dir/x") != NULL, "message names the file: %s", err);
    return T_PASS;
}

/* Creates dir/name (empty). Returns 0 or -1. */
static int touch(const char *dir, const char *name) {
    char p[2048];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    return f ? fclose(f) : -1;
}

static int exists(const char *dir, const char *name) {
    char p[2048];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

/* The pid of a process that has exited and been reaped: dead for kill(pid, 0). */
static long dead_pid(void) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    waitpid(p, NULL, 0);
    return (long)p;
}

/* Issue 15 item 8: after a kill -9, "<path>.tmp.<pid>" (and a temporary store's side files)
 * stay behind; the next nb_afile_open for that path removes those of dead processes only,
 * and nothing whose name merely resembles the pattern. */
static int test_tmp_sweep(void) {
    char dir[512], path[600], name[128], err[NB_ERRLEN];
    snprintf(dir, sizeof dir, "%s/sweep", t_tmpdir());
    T_ASSERT(mkdir(dir, 0700) == 0, "mkdir %s", dir);
    snprintf(path, sizeof path, "%s/model.nbw.ckpt", dir);
    long dead = dead_pid(), live = (long)getppid(), self = (long)getpid();
    const char *gone[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "model.nbw.ckpt.tmp.%ld%s", dead, gone[i]);
        T_ASSERT(touch(dir, name) == 0, "create %s", name);
    }
    char kept[8][128];
    snprintf(kept[0], 128, "model.nbw.ckpt.tmp.%ld", live);        /* a live writer */
    snprintf(kept[1], 128, "model.nbw.ckpt.tmp.%ld.bak", dead);    /* not the exact pattern */
    snprintf(kept[2], 128, "model.nbw.tmp.%ld", dead);             /* another target */
    snprintf(kept[3], 128, "xmodel.nbw.ckpt.tmp.%ld", dead);       /* another target */
    snprintf(kept[4], 128, "model.nbw.ckpt.tmp.0%ld", dead);       /* not a name we write */
    snprintf(kept[5], 128, "model.nbw.ckpt.tmp.");                 /* no pid */
    snprintf(kept[6], 128, "model.nbw.ckpt.tmp.%ldx", dead);       /* not a number */
    /* too many digits: 11, whatever the dead pid's length (a 3-digit pid made "1<pid>000000"
     * a 10-digit name, which is a pid the sweep may remove) */
    snprintf(kept[7], 128, "model.nbw.ckpt.tmp.12345678901");
    for (int i = 0; i < 8; i++) T_ASSERT(touch(dir, kept[i]) == 0, "create %s", kept[i]);
    T_ASSERT(nb_afile_open((nb_afile[]){{0}}, "/nonexistent-dir/x", err, sizeof err) == NB_EIO,
             "bad dir");
    nb_afile af;
    T_ASSERT(nb_afile_open(&af, path, err, sizeof err) == NB_OK, "%s", err);
    snprintf(name, sizeof name, "model.nbw.ckpt.tmp.%ld", self);
    T_ASSERT(exists(dir, name), "our own temporary file is being written");
    fputs("x", af.f);
    T_ASSERT(nb_afile_commit(&af, err, sizeof err) == NB_OK, "%s", err);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "model.nbw.ckpt.tmp.%ld%s", dead, gone[i]);
        T_ASSERT(!exists(dir, name), "%s (dead pid) removed", name);
    }
    for (int i = 0; i < 8; i++) T_ASSERT(exists(dir, kept[i]), "%s kept", kept[i]);
    T_ASSERT(nb_tmp_sweep(path) == 0, "nothing more to remove");
    return T_PASS;
}

/* Issue 15 item 13: a replacement keeps the old file's permission bits (a store or weight
 * file chmod'ed 600 must not come back 644), also while the new content is being written. */
static int test_atomic_keeps_mode(void) {
    char path[512], err[NB_ERRLEN];
    snprintf(path, sizeof path, "%s/mode.bin", t_tmpdir());
    mode_t um = umask(022);
    nb_afile af;
    struct stat st;
    T_ASSERT(nb_afile_open(&af, path, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(nb_afile_commit(&af, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644, "first file 0644, got %o",
             (unsigned)(st.st_mode & 07777));
    const mode_t modes[] = {0600, 0640, 0604, 0444};
    for (int i = 0; i < 4; i++) {
        T_ASSERT(chmod(path, modes[i]) == 0, "chmod");
        T_ASSERT(nb_afile_open(&af, path, err, sizeof err) == NB_OK, "%s", err);
        T_ASSERT(fstat(fileno(af.f), &st) == 0 && (st.st_mode & 07777) == modes[i],
                 "temporary file %o while written, want %o", (unsigned)(st.st_mode & 07777),
                 (unsigned)modes[i]);
        fputs("new", af.f);
        T_ASSERT(nb_afile_commit(&af, err, sizeof err) == NB_OK, "%s", err);
        T_ASSERT(stat(path, &st) == 0 && (st.st_mode & 07777) == modes[i] && st.st_size == 3,
                 "replaced file %o, want %o", (unsigned)(st.st_mode & 07777), (unsigned)modes[i]);
    }
    umask(um);
    return T_PASS;
}

static int test_err_wrap(void) {
    char err[NB_ERRLEN];
    nb_err(err, sizeof err, NB_EINVAL, "bad %s", "kernel");
    T_ASSERT(nb_err_wrap(err, sizeof err, NB_EINVAL, "flag %d", 3) == NB_EINVAL, "code returned");
    T_ASSERT(strcmp(err, "flag 3: bad kernel") == 0, "got '%s'", err);
    return T_PASS;
}

int main(void) {
    T_RUN(test_crc32_check_value);
    T_RUN(test_crc32_slices);
    T_RUN(test_rng_deterministic);
    T_RUN(test_atomic_file);
    T_RUN(test_tmp_sweep);
    T_RUN(test_atomic_keeps_mode);
    T_RUN(test_err_wrap);
    return t_summary();
}
