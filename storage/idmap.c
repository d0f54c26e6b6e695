/* idmap.c -- see idmap.h. */
#include "idmap.h"
#include "nb_err.h"
#include "rng.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* See idmap.h: capacity a power of two at least twice expect. */
void st_idmap_init(st_idmap *m, size_t expect) {
    size_t cap = 16;
    while (cap < 2 * expect) cap *= 2;
    m->cap = cap;
    m->n = 0;
    m->slots = nb_xcalloc(cap, sizeof *m->slots);
}

/* Doubles the table and reinserts every key. Returns 0, or -1 when the larger table cannot
 * be allocated (m unchanged): the map grows with the input, so running out of memory here is
 * an input too large for the machine, which the caller reports with its file and line. */
static int idmap_grow(st_idmap *m) {
    size_t ocap = m->cap;
    st_idmap_slot *old = m->slots;
    st_idmap_slot *slots =
        ocap <= SIZE_MAX / 2 / sizeof *slots ? calloc(2 * ocap, sizeof *slots) : NULL;
    if (!slots) return -1;
    m->cap = 2 * ocap;
    m->slots = slots;
    size_t mask = m->cap - 1;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].key) continue;
        size_t j = nb_hash64(old[i].key) & mask;
        while (m->slots[j].key) j = (j + 1) & mask;
        m->slots[j] = old[i];
    }
    free(old);
    return 0;
}

/* See idmap.h: linear probing from the key's hash; grows before the load passes 1/2. */
uint64_t *st_idmap_put(st_idmap *m, uint64_t key, int *found) {
    assert(key < UINT64_MAX);
    if (2 * (m->n + 1) > m->cap) {
        /* an existing key needs no room: look it up before growing */
        uint64_t *v = st_idmap_get(m, key);
        if (v) {
            *found = 1;
            return v;
        }
        if (idmap_grow(m) != 0) return NULL;
    }
    uint64_t k = key + 1;
    size_t mask = m->cap - 1;
    size_t j = nb_hash64(k) & mask;
    while (m->slots[j].key) {
        if (m->slots[j].key == k) {
            *found = 1;
            return &m->slots[j].val;
        }
        j = (j + 1) & mask;
    }
    m->slots[j].key = k;
    m->slots[j].val = 0;
    m->n++;
    *found = 0;
    return &m->slots[j].val;
}

/* See idmap.h: the value slot of key, or NULL. */
uint64_t *st_idmap_get(const st_idmap *m, uint64_t key) {
    uint64_t k = key + 1;
    size_t mask = m->cap - 1;
    size_t j = nb_hash64(k) & mask;
    while (m->slots[j].key) {
        if (m->slots[j].key == k) return &m->slots[j].val;
        j = (j + 1) & mask;
    }
    return NULL;
}

/* See idmap.h: frees the slots and zeroes m. */
void st_idmap_free(st_idmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}
