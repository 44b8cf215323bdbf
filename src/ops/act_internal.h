/* act_internal.h: element load / store in an activation storage type, shared by the
 * *_act ops of src/ops (act.c, batchnorm_act.c, conv2d_act.c); not part of the op contract.
 *
 * act_ld converts element i of p (stored as dt) to fp32 exactly; act_st rounds v to dt
 * (nearest even, util/half.h) and stores it. Every *_act op does its arithmetic on
 * act_ld'ed values in fp32 (or double) and writes through act_st, so the rounding happens
 * once per stored result, as in the GPU kernels. The switch is per element; a body
 * inlined with a constant dt (ACT_INLINE, below) loses it, and a body called with a
 * run-time dt keeps it (the *_act reference path, where that is acceptable).
 *
 * pool_impl.h and batchnorm_impl.h hold the ops that exist once for both the plain and
 * the ActFmt entry points, as ACT_INLINE bodies taking the format as (nhwc, dt). */
#ifndef VQA_ACT_INTERNAL_H
#define VQA_ACT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ops/ops.h"
#include "util/half.h"

/* An op body shared by the plain and the *_act entry points: always inlined, so a call
 * with constant (nhwc, dt) compiles to code specialized for that format. */
#define ACT_INLINE static inline __attribute__((always_inline))

static inline float act_ld(DType dt, const void *p, size_t i) {
    switch (dt) {
    case DT_BF16: return bf16_to_f32(((const uint16_t *)p)[i]);
    case DT_F16: return f16_to_f32(((const uint16_t *)p)[i]);
    default: return ((const float *)p)[i];
    }
}

static inline void act_st(DType dt, void *p, size_t i, float v) {
    switch (dt) {
    case DT_BF16: ((uint16_t *)p)[i] = f32_to_bf16(v); break;
    case DT_F16: ((uint16_t *)p)[i] = f32_to_f16(v); break;
    default: ((float *)p)[i] = v; break;
    }
}

/* p[i] += v, rounded once in dt (a gradient accumulating in its storage type). */
static inline void act_acc(DType dt, void *p, size_t i, float v) {
    act_st(dt, p, i, act_ld(dt, p, i) + v);
}

/* Where plane pl = n*C + c of an [N, C, HW] activation starts: act_index(n, c, 0), with
 * NCHW's pl*HW written out (no division for the plain ops' plane walks); its element hw
 * is at + hw * (nhwc ? C : 1). */
static inline size_t act_plane(int nhwc, int C, int HW, long pl) {
    return nhwc ? (size_t)(pl / C) * HW * C + (size_t)(pl % C) : (size_t)pl * HW;
}

/* 1 for the plain format (fp32 NCHW): the *_act ops then call the plain op_* functions. */
static inline int act_is_plain(const ActFmt *f) { return !f->nhwc && f->dt == DT_F32; }

/* Between a [N, C, HW] activation in f and fp32 NCHW (act.c): mode 0: y = x (fp32 NCHW
 * from f), 1: y += x (fp32 NCHW accumulating what is in f). */
void act_to_nchw(const ActFmt *f, int N, int C, int HW, const void *x, float *y, int add);
/* mode 0: y = x (into f), 1: y += x (accumulated and rounded in f's type). */
void act_from_nchw(const ActFmt *f, int N, int C, int HW, const float *x, void *y, int add);

#endif
