/* splitmix.h - the one pseudo-random generator of the compiler (random
 * weights, test inputs, benchmark inputs): splitmix64, deterministic from a
 * seed, no state but the caller's. */
#ifndef LAYERC_SPLITMIX_H
#define LAYERC_SPLITMIX_H

#include <stdint.h>

/* What each draw adds to the state: the n-th draw from state s is the mix of s + n * SPLITMIX64_STEP. */
#define SPLITMIX64_STEP 0x9e3779b97f4a7c15ull

static inline uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += SPLITMIX64_STEP);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* n token ids uniform in [0, limit) (limit >= 1): random inputs of a model with an i64 input. */
static inline void splitmix64_ids(int64_t *ids, int64_t n, int64_t limit, uint64_t *state)
{
    for (int64_t i = 0; i < n; i++) ids[i] = (int64_t)(splitmix64(state) % (uint64_t)limit);
}

#endif
