/* rng: small deterministic random numbers. splitmix64 for streams, and a counter-based
 * hash (rng_hash) so a value at any index can be regenerated without state (dropout masks,
 * exact resume). */
#pragma once
#include <math.h>
#include <stdint.h>

static inline uint64_t rng_hash(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline uint64_t rng_next(uint64_t *state) { return rng_hash(*state += 0x9e3779b97f4a7c15ull); }

/* Uniform in [0, 1) with 24 bits. */
static inline float rng_uniform(uint64_t *state) { return (float)(rng_next(state) >> 40) * (1.0f / 16777216.0f); }

static inline float rng_normal(uint64_t *state) {
    double u1 = ((rng_next(state) >> 11) + 1.0) * (1.0 / 9007199254740993.0), u2 = (rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

/* Seed of micro-batch i following seed s (dropout masks differ per micro-batch and step). */
static inline uint64_t rng_step_seed(uint64_t s, int i) { return rng_hash(s ^ (0x5851f42d4c957f2dull * (uint64_t)(i + 1))); }
