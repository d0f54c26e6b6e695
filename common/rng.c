/* rng.c -- xoshiro256** (Blackman & Vigna), seeded by splitmix64. */
#include "rng.h"

#include <math.h>

uint64_t nb_hash64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void nb_rng_seed(nb_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        r->s[i] = nb_hash64(x);
        x += 0x9E3779B97F4A7C15ull;
    }
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t nb_rng_u64(nb_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t nb_rng_below(nb_rng *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = nb_rng_u64(r);
    while (x >= limit);
    return x % n;
}

double nb_rng_uniform(nb_rng *r) { return (double)(nb_rng_u64(r) >> 11) * 0x1.0p-53; }

double nb_rng_normal(nb_rng *r) {
    double u1 = nb_rng_uniform(r), u2 = nb_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
