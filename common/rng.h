/* rng.h -- our own seeded random numbers, so that results never depend on libc's rand().
 * xoshiro256** seeded through splitmix64. The state is a plain struct: copy it to
 * checkpoint it, and the sequence continues bit-identically after a restore. */
#ifndef NB_RNG_H
#define NB_RNG_H
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} nb_rng;

void nb_rng_seed(nb_rng *r, uint64_t seed);
uint64_t nb_rng_u64(nb_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t nb_rng_below(nb_rng *r, uint64_t n);
/* Uniform double in [0, 1) with 53 random bits. */
double nb_rng_uniform(nb_rng *r);
/* Standard normal N(0,1) (Box-Muller; no cached second value, so the state is just s[]). */
double nb_rng_normal(nb_rng *r);
/* 64-bit mix of x (splitmix64 finaliser): a fixed hash, e.g. for splitting users. */
uint64_t nb_hash64(uint64_t x);

#endif
