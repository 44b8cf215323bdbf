/* rng.h: the one seeded random number generator of the tree, splitmix64 (Steele, Lea and
 * Flood 2014; the seeding generator of xoshiro), and the draws built on it.
 *
 * Everything random in a run comes from here: the epoch permutation (data/sampler.c),
 * augmentation (data/image.c), dropout masks (ops/ops_internal.h, model/bert.c, the step
 * seed of train/trainer.c), weight initialization (model/params.c) and the synthetic
 * dataset (data/synth.c). One definition, so every stream is specified once:
 *
 *   state += RNG_GAMMA;  out = rng_mix64(state)
 *   rng_mix64(z): z = (z ^ z>>30) * 0xBF58476D1CE4E5B9; z = (z ^ z>>27) * 0x94D049BB133111EB;
 *                 z ^ z>>31
 *
 * The draws differ on purpose and each keeps its own caller's numbers bit for bit:
 * rng_unit [0, 1) and rng_unit_open (0, 1) (53 bits each), rng_range (modulo: a bias of
 * under 2^-32 for the small ranges it is used for) and rng_below (Lemire's unbiased
 * multiply-and-reject). Checkpoints and the demo's data depend on these streams: change
 * one and the same seed gives another run. cuda/dropout_hash.cuh repeats rng_mix64 on the
 * device (tests/test_dropout.c pins both to the same reference).
 *
 * Header-only: the dropout hash calls rng_mix64 per element. */
#ifndef VQA_RNG_H
#define VQA_RNG_H

#include <stdint.h>

/* 2^64 / golden ratio: splitmix64's state increment (Weyl sequence step). */
#define RNG_GAMMA 0x9E3779B97F4A7C15ull

/* The splitmix64 output function: a bijective 64-bit mixer (also used alone to hash ids
 * and to derive independent seeds). */
static inline uint64_t rng_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A splitmix64 stream; {seed} starts it. Copy freely (the state is the value). */
typedef struct Rng {
    uint64_t s;
} Rng;

/* The next 64 random bits. */
static inline uint64_t rng_next(Rng *r) { return rng_mix64(r->s += RNG_GAMMA); }

/* Uniform in [0, 1): the top 53 bits. */
static inline double rng_unit(Rng *r) { return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

/* Uniform in [lo, hi): lo + (hi - lo) * rng_unit. */
static inline double rng_uniform(Rng *r, double lo, double hi) { return lo + (hi - lo) * rng_unit(r); }

/* Uniform in (0, 1): the top 53 bits, centred in their interval (never 0, safe for log). */
static inline double rng_unit_open(Rng *r) {
    return ((double)(rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* An integer in [lo, hi] (inclusive) by modulo; hi - lo must be small (bias (hi-lo+1)/2^64). */
static inline int rng_range(Rng *r, int lo, int hi) { return lo + (int)(rng_next(r) % (uint64_t)(hi - lo + 1)); }

/* Uniform in [0, bound), bound >= 1, without modulo bias (Lemire 2019: multiply, reject the
 * few low products that would favour some values). */
static inline uint64_t rng_below(Rng *r, uint64_t bound) {
    __uint128_t m = (__uint128_t)rng_next(r) * bound;
    uint64_t lo = (uint64_t)m;
    if (lo < bound) {
        uint64_t t = -bound % bound;
        while (lo < t) {
            m = (__uint128_t)rng_next(r) * bound;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

#endif
