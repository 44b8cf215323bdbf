/* ops_internal.h: small kernels shared between files of src/ops/ (not part of the op
 * contract): the dropout keep-hash and a single-row softmax, so attention.c applies
 * exactly the same dropout and softmax as dropout.c and softmax.c.
 *
 * The dropout hash is specified here bit for bit so the CUDA backend can reproduce the
 * same mask for the same (seed, i):
 *   h    = mix64(mix64(seed) + i * 0x9E3779B97F4A7C15)      (mix64 = rng_mix64, util/rng.h)
 *   u    = (h >> 40) * 2^-24                                 (uniform in [0, 1), 24 bits)
 *   keep = u >= p */
#ifndef VQA_OPS_INTERNAL_H
#define VQA_OPS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "util/rng.h"


/* 1 if element i survives dropout with probability p under this seed. */
static inline int opi_dropout_keep(uint64_t seed_mixed, uint64_t i, float p) {
    uint64_t h = rng_mix64(seed_mixed + i * RNG_GAMMA);
    float u = (float)(h >> 40) * (1.0f / 16777216.0f); /* exact: 24-bit integer * 2^-24 */
    return u >= p;
}
/* seed_mixed = rng_mix64(seed), computed once per call. */
static inline uint64_t opi_dropout_seed(uint64_t seed) { return rng_mix64(seed); }

/* One row of the stable softmax: y = exp(x - max x) / sum exp(x - max x), in place allowed. */
void opi_softmax_row(int cols, const float *x, float *y);
/* One row of its backward: dx += y * (dy - sum(dy * y)). */
void opi_softmax_row_backward(int cols, const float *y, const float *dy, float *dx);

#endif
