/* idmap.c -- see idmap.h. */
#include "idmap.h"
#include "nb_err.h"
#include "rng.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void st_idmap_init(st_idmap *m, size_t expect) {
    size_t cap = 16;
    while (cap < 2 * expect) cap *= 2;
    m->cap = cap;
    m->n = 0;
    m->keys = nb_xcalloc(cap, sizeof *m->keys);
    m->vals = nb_xcalloc(cap, sizeof *m->vals);
}

/* Doubles the table and reinserts every key. */
static void idmap_grow(st_idmap *m) {
    size_t ocap = m->cap;
    uint64_t *okeys = m->keys, *ovals = m->vals;
    m->cap = 2 * ocap;
    m->keys = nb_xcalloc(m->cap, sizeof *m->keys);
    m->vals = nb_xcalloc(m->cap, sizeof *m->vals);
    size_t mask = m->cap - 1;
    for (size_t i = 0; i < ocap; i++) {
        if (!okeys[i]) continue;
        size_t j = nb_hash64(okeys[i]) & mask;
        while (m->keys[j]) j = (j + 1) & mask;
        m->keys[j] = okeys[i];
        m->vals[j] = ovals[i];
    }
    free(okeys);
    free(ovals);
}

uint64_t *st_idmap_put(st_idmap *m, uint64_t key, int *found) {
    assert(key < UINT64_MAX);
    if (2 * (m->n + 1) > m->cap) idmap_grow(m);
    uint64_t k = key + 1;
    size_t mask = m->cap - 1;
    size_t j = nb_hash64(k) & mask;
    while (m->keys[j]) {
        if (m->keys[j] == k) {
            *found = 1;
            return &m->vals[j];
        }
        j = (j + 1) & mask;
    }
    m->keys[j] = k;
    m->vals[j] = 0;
    m->n++;
    *found = 0;
    return &m->vals[j];
}

uint64_t *st_idmap_get(const st_idmap *m, uint64_t key) {
    uint64_t k = key + 1;
    size_t mask = m->cap - 1;
    size_t j = nb_hash64(k) & mask;
    while (m->keys[j]) {
        if (m->keys[j] == k) return &m->vals[j];
        j = (j + 1) & mask;
    }
    return NULL;
}

void st_idmap_free(st_idmap *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
