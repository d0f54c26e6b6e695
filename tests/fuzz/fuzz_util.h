/* fuzz_util.h -- helpers shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c): a file
 * holding the current input for the readers that take a path, and a UTF-8 check. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes data[size] to path (created or truncated). Aborts on failure: a harness that cannot
 * write its input tests nothing. */
static inline void fuzz_write(const char *path, const void *data, size_t size) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) abort();
    const char *p = data;
    while (size > 0) {
        ssize_t w = write(fd, p, size);
        if (w <= 0) abort();
        p += w;
        size -= (size_t)w;
    }
    close(fd);
}

static char fuzz_dir_path[256];

/* atexit: removes the files of fuzz_dir (it has no subdirectories) and the directory. */
static void fuzz_dir_remove(void) {
    DIR *d = opendir(fuzz_dir_path);
    if (d) {
        struct dirent *e;
        char path[600];
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/%s", fuzz_dir_path, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(fuzz_dir_path);
}

/* A directory of its own for this process under /dev/shm (memory, no disk I/O), or /tmp,
 * removed at exit (a crash leaves it: the input is in libFuzzer's artifact anyway).
 * Returns a static path; the directory is made once. */
static inline const char *fuzz_dir(void) {
    if (!fuzz_dir_path[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/nbfuzz.%d", base, (int)getpid());
        if (mkdir(fuzz_dir_path, 0700) != 0) abort();
        atexit(fuzz_dir_remove);
    }
    return fuzz_dir_path;
}

/* 1 when s[n] is well-formed UTF-8 (no overlong form, no surrogate, <= U+10FFFF). */
static inline int fuzz_utf8_ok(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int len = c >= 0xc2 && c < 0xe0 ? 2
            : c >= 0xe0 && c < 0xf0     ? 3
            : c >= 0xf0 && c < 0xf5     ? 4
                                        : 0;
        if (!len || i + (size_t)len > n) return 0;
        unsigned cp = c & (0x7fu >> len);
        for (int j = 1; j < len; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += (size_t)len;
    }
    return 1;
}

#endif
