/* synth_catalog.c -- the catalogue nb-synth generates orders over: invented (fixed word
 * lists, synth_words.c) or a real one read from products/aisles/departments.csv. */
#include "synth.h"

#include "atomic_file.h"
#include "nb_err.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CATALOG_ID 100000000 /* ids above this are refused (they size dense maps) */

void sy_catalog_invent(sy_catalog *c) {
    memset(c, 0, sizeof *c);
    c->n_products = SY_N_PRODUCTS;
    c->n_aisles = SY_N_AISLES;
    c->n_depts = SY_N_DEPTS;
    c->product_id = nb_xmalloc(sizeof(int32_t) * SY_N_PRODUCTS);
    c->aisle = nb_xmalloc(sizeof(int32_t) * SY_N_PRODUCTS);
    c->dept = nb_xmalloc(sizeof(int32_t) * SY_N_PRODUCTS);
    /* Aisle sizes vary a lot in a real store (10 to 1,000+ products): lognormal weights.
     * A fixed seed: the invented catalogue is the same for every --seed. */
    nb_rng r;
    nb_rng_seed(&r, 0xCA7A1065ull);
    double cum[SY_N_AISLES], tot = 0;
    for (int a = 0; a < SY_N_AISLES; a++) {
        tot += exp(0.8 * nb_rng_normal(&r));
        cum[a] = tot;
    }
    for (int p = 0; p < SY_N_PRODUCTS; p++) {
        double x = nb_rng_uniform(&r) * tot;
        int lo = 0, hi = SY_N_AISLES - 1;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (cum[mid] > x)
                hi = mid;
            else
                lo = mid + 1;
        }
        c->product_id[p] = p + 1;
        c->aisle[p] = lo;
        c->dept[p] = sy_aisle_dept(lo);
    }
}

void sy_catalog_free(sy_catalog *c) {
    free(c->product_id);
    free(c->aisle);
    free(c->dept);
    free(c->dir);
    memset(c, 0, sizeof *c);
}

/* Reads the whole file `dir/name` into a NUL-terminated malloc'd buffer. Returns NB_OK and
 * *buf (caller frees), *len; or NB_ENOTFOUND / NB_EIO naming the file. */
static int slurp(const char *dir, const char *name, char **buf, size_t *len, char *err,
                 size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return nb_err(err, errlen, errno == ENOENT ? NB_ENOTFOUND : NB_EIO, "%s: %s", path,
                      strerror(errno));
    size_t cap = 1 << 16, n = 0, k;
    char *b = nb_xmalloc(cap);
    while ((k = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (cap - n - 1 == 0) b = nb_xrealloc(b, cap *= 2);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return nb_err(err, errlen, NB_EIO, "%s: read error", path);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return NB_OK;
}

/* Splits the CSV record starting at *pos into at most `maxf` fields (RFC 4180: quoted fields
 * may hold commas, doubled quotes and newlines). Unquoted fields are [start,end) ranges of s;
 * a quoted field's range includes its quotes (only ids are interpreted here, names are
 * copied verbatim). Advances *pos past the record and its line ending and *line by the
 * newlines consumed. Returns the number of fields, 0 at end of text, or -1 on an unterminated
 * quote. */
static int split(const char *s, size_t len, size_t *pos, long *line, size_t *fs, size_t *fe,
                 int maxf) {
    size_t i = *pos;
    int nf = 0;
    while (i < len && (s[i] == '\n' || s[i] == '\r')) { /* blank lines */
        if (s[i] == '\n') (*line)++;
        i++;
    }
    if (i >= len) {
        *pos = i;
        return 0;
    }
    for (;;) {
        size_t st = i;
        if (s[i] == '"') {
            i++;
            for (;;) {
                if (i >= len) return -1;
                if (s[i] == '"') {
                    if (i + 1 < len && s[i + 1] == '"') {
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                if (s[i] == '\n') (*line)++;
                i++;
            }
            while (i < len && s[i] != ',' && s[i] != '\n' && s[i] != '\r') i++;
        } else {
            while (i < len && s[i] != ',' && s[i] != '\n' && s[i] != '\r') i++;
        }
        if (nf < maxf) {
            fs[nf] = st;
            fe[nf] = i;
        }
        nf++;
        if (i < len && s[i] == ',') {
            i++;
            continue;
        }
        break;
    }
    if (i < len && s[i] == '\r') i++;
    if (i < len && s[i] == '\n') {
        i++;
        (*line)++;
    }
    *pos = i;
    return nf;
}

/* Parses s[a,b) as an integer in [1, MAX_CATALOG_ID]; Instacart writes some ids plainly. */
static int parse_id(const char *s, size_t a, size_t b, int32_t *v) {
    long x = 0;
    if (a >= b || b - a > 9) return -1;
    for (size_t i = a; i < b; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        x = x * 10 + (s[i] - '0');
    }
    if (x < 1 || x > MAX_CATALOG_ID) return -1;
    *v = (int32_t)x;
    return 0;
}

/* Checks that the first line of s is exactly `want` (ignoring a UTF-8 BOM and CR) and
 * returns the offset after it, or (size_t)-1. */
static size_t check_header(const char *s, size_t len, const char *want) {
    size_t i = 0, w = strlen(want);
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) i = 3;
    if (len - i < w || memcmp(s + i, want, w) != 0) return (size_t)-1;
    i += w;
    if (i < len && s[i] == '\r') i++;
    if (i < len && s[i] != '\n') return (size_t)-1;
    return i < len ? i + 1 : i;
}

/* Reads an id,name file (aisles.csv / departments.csv) into a dense map id -> index.
 * Returns NB_OK and *map (caller frees; -1 for unknown ids), *mapn (max id + 1), *count; or
 * an error naming the file and line. */
static int load_names(const char *dir, const char *file, const char *header, int32_t **map,
                      int32_t *mapn, int *count, char *err, size_t errlen) {
    char *s = NULL;
    size_t len, pos;
    long line = 2;
    int rc = slurp(dir, file, &s, &len, err, errlen);
    *map = NULL;
    *mapn = 0;
    *count = 0;
    if (rc) goto done;
    if ((pos = check_header(s, len, header)) == (size_t)-1) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s/%s:1: header is not \"%s\"", dir, file, header);
        goto done;
    }
    size_t fs[3], fe[3];
    int nf;
    for (;;) {
        long at = line;
        if ((nf = split(s, len, &pos, &line, fs, fe, 3)) == 0) break;
        int32_t id;
        if (nf != 2 || parse_id(s, fs[0], fe[0], &id)) {
            rc = nb_err(err, errlen, NB_EFORMAT, "%s/%s:%ld: expected \"id,name\" with id in 1..%d",
                        dir, file, at, MAX_CATALOG_ID);
            goto done;
        }
        if (id >= *mapn) {
            int32_t n = id + 1;
            *map = nb_xrealloc(*map, sizeof(int32_t) * (size_t)n);
            for (int32_t k = *mapn; k < n; k++) (*map)[k] = -1;
            *mapn = n;
        }
        if ((*map)[id] >= 0) {
            rc = nb_err(err, errlen, NB_EFORMAT, "%s/%s:%ld: duplicate id %d", dir, file, at, id);
            goto done;
        }
        (*map)[id] = (*count)++;
    }
    if (*count == 0) rc = nb_err(err, errlen, NB_EFORMAT, "%s/%s: no rows", dir, file);
done:
    free(s);
    if (rc) {
        free(*map);
        *map = NULL;
    }
    return rc;
}

int sy_catalog_load(sy_catalog *c, const char *dir, char *err, size_t errlen) {
    int32_t *amap = NULL, *dmap = NULL, amapn, dmapn;
    char *s = NULL;
    size_t len, pos;
    long line = 2;
    int cap = 0, rc;
    memset(c, 0, sizeof *c);
    rc = load_names(dir, "aisles.csv", "aisle_id,aisle", &amap, &amapn, &c->n_aisles, err, errlen);
    if (!rc)
        rc = load_names(dir, "departments.csv", "department_id,department", &dmap, &dmapn,
                        &c->n_depts, err, errlen);
    if (!rc) rc = slurp(dir, "products.csv", &s, &len, err, errlen);
    if (rc) goto done;
    if ((pos = check_header(s, len, "product_id,product_name,aisle_id,department_id")) ==
        (size_t)-1) {
        rc = nb_err(
            err, errlen, NB_EFORMAT,
            "%s/products.csv:1: header is not \"product_id,product_name,aisle_id,department_id\"",
            dir);
        goto done;
    }
    for (;;) {
        size_t fs[5], fe[5];
        long at = line;
        int nf = split(s, len, &pos, &line, fs, fe, 5);
        if (nf == 0) break;
        int32_t id, aid, did;
        if (nf != 4) {
            rc = nb_err(err, errlen, NB_EFORMAT, "%s/products.csv:%ld: %d fields, expected 4%s",
                        dir, at, nf, nf < 0 ? " (unterminated quote)" : "");
            goto done;
        }
        if (parse_id(s, fs[0], fe[0], &id) || parse_id(s, fs[2], fe[2], &aid) ||
            parse_id(s, fs[3], fe[3], &did)) {
            rc = nb_err(err, errlen, NB_EFORMAT,
                        "%s/products.csv:%ld: bad product_id, aisle_id or department_id", dir, at);
            goto done;
        }
        if (aid >= amapn || amap[aid] < 0 || did >= dmapn || dmap[did] < 0) {
            rc = nb_err(err, errlen, NB_EFORMAT, "%s/products.csv:%ld: %s %d not in %s.csv", dir,
                        at, aid >= amapn || amap[aid] < 0 ? "aisle_id" : "department_id",
                        aid >= amapn || amap[aid] < 0 ? aid : did,
                        aid >= amapn || amap[aid] < 0 ? "aisles" : "departments");
            goto done;
        }
        if (c->n_products > 0 && id <= c->product_id[c->n_products - 1]) {
            rc = nb_err(err, errlen, NB_EFORMAT, "%s/products.csv:%ld: product_id %d not ascending",
                        dir, at, id);
            goto done;
        }
        if (c->n_products == cap) {
            cap = cap ? cap * 2 : 65536;
            c->product_id = nb_xrealloc(c->product_id, sizeof(int32_t) * (size_t)cap);
            c->aisle = nb_xrealloc(c->aisle, sizeof(int32_t) * (size_t)cap);
            c->dept = nb_xrealloc(c->dept, sizeof(int32_t) * (size_t)cap);
        }
        c->product_id[c->n_products] = id;
        c->aisle[c->n_products] = amap[aid];
        c->dept[c->n_products] = dmap[did];
        c->n_products++;
    }
    if (c->n_products == 0)
        rc = nb_err(err, errlen, NB_EFORMAT, "%s/products.csv: no rows", dir);
    else
        c->dir = strdup(dir);
done:
    free(s);
    free(amap);
    free(dmap);
    if (rc) sy_catalog_free(c);
    return rc;
}

/* Writes `name` with RFC 4180 quoting when it holds a comma, quote or line break. */
static void put_csv_text(FILE *f, const char *name) {
    if (!strpbrk(name, ",\"\r\n")) {
        fputs(name, f);
        return;
    }
    fputc('"', f);
    for (const char *q = name; *q; q++) {
        if (*q == '"') fputc('"', f);
        fputc(*q, f);
    }
    fputc('"', f);
}

/* Writes one catalogue file of the invented catalogue (which: 0 products, 1 aisles,
 * 2 departments) through af. */
static void write_invented(const sy_catalog *c, int which, FILE *f) {
    char name[256];
    if (which == 0) {
        fputs("product_id,product_name,aisle_id,department_id\n", f);
        for (int p = 0; p < c->n_products; p++) {
            sy_product_name(p, c->aisle[p], name, sizeof name);
            fprintf(f, "%d,", c->product_id[p]);
            put_csv_text(f, name);
            fprintf(f, ",%d,%d\n", c->aisle[p] + 1, c->dept[p] + 1);
        }
    } else if (which == 1) {
        fputs("aisle_id,aisle\n", f);
        for (int a = 0; a < c->n_aisles; a++) {
            fprintf(f, "%d,", a + 1);
            put_csv_text(f, sy_aisle_name(a));
            fputc('\n', f);
        }
    } else {
        fputs("department_id,department\n", f);
        for (int d = 0; d < c->n_depts; d++) {
            fprintf(f, "%d,", d + 1);
            put_csv_text(f, sy_dept_name(d));
            fputc('\n', f);
        }
    }
}

int sy_catalog_write(const sy_catalog *c, const char *out_dir, char *err, size_t errlen) {
    static const char *const files[3] = {"products.csv", "aisles.csv", "departments.csv"};
    int rc = NB_OK;
    for (int i = 0; i < 3 && !rc; i++) {
        char path[4096];
        nb_afile af;
        snprintf(path, sizeof path, "%s/%s", out_dir, files[i]);
        if ((rc = nb_afile_open(&af, path, err, errlen))) break;
        if (c->dir) {
            char *s;
            size_t len;
            if ((rc = slurp(c->dir, files[i], &s, &len, err, errlen))) {
                nb_afile_abort(&af);
                break;
            }
            fwrite(s, 1, len, af.f);
            free(s);
        } else {
            write_invented(c, i, af.f);
        }
        rc = nb_afile_commit(&af, err, errlen);
    }
    return rc;
}
