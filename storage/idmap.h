/* idmap.h -- an open-addressing hash map from 64-bit keys to 64-bit values, for the id sets
 * the import must keep (order ids, products, (user, order_number) pairs). Linear probing,
 * grows at half load; memory is 16 bytes per slot, 32 to 64 bytes per key. Not thread-safe. */
#ifndef ST_IDMAP_H
#define ST_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t key; /* key + 1; 0 marks an empty slot */
    uint64_t val;
} st_idmap_slot; /* key and value side by side: one cache miss per lookup */

typedef struct {
    st_idmap_slot *slots;
    size_t cap; /* a power of two */
    size_t n;
} st_idmap;

/* Initialises an empty map sized for about `expect` keys. Free with st_idmap_free. */
void st_idmap_init(st_idmap *m, size_t expect);
/* Returns the value slot of key, inserting it with value 0 when absent; *found tells which.
 * The pointer is valid until the next st_idmap_put. key must be < UINT64_MAX. Returns NULL
 * (map unchanged) when the map had to grow and the memory could not be allocated. */
uint64_t *st_idmap_put(st_idmap *m, uint64_t key, int *found);
/* Returns the value slot of key, or NULL when absent. */
uint64_t *st_idmap_get(const st_idmap *m, uint64_t key);
void st_idmap_free(st_idmap *m);

#endif
