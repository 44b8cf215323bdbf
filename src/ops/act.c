/* act.c: the CPU reference of the activation-format ops (ops.h, "ops on activations in an
 * ActFmt"): the encoder's edges (import / export between fp32 NCHW and a format),
 * element-wise ReLU and add in a storage type, and the entries of max / global-average
 * pooling in a format (their bodies are pool_impl.h's, shared with pool.c). Batch-norm is
 * in batchnorm_act.c, convolution in conv2d_act.c.
 *
 * Element (n, c, hw) of an [N, C, HW] activation sits at act_index(f, C, HW, n, c, hw):
 *   NCHW (n*C + c)*HW + hw,   NHWC (n*HW + hw)*C + c.
 * Every value is converted to fp32 on load, the arithmetic is the plain op's (fp32, or
 * double for sums), and the result is rounded to nearest even once on store
 * (act_internal.h). Gradients accumulate in storage type: dx = round(dx + g).
 *
 * Planes (n, c) are independent: parallel over them (each owns its elements in either
 * layout, so there are no races); the plain format {NCHW, fp32} calls the plain ops. */
#include "ops/act_internal.h"
#include "ops/pool_impl.h"

/* Below this many elements a parallel region costs more than it saves. */
#define ACT_PAR_MIN 16384

/* ---- layout / type conversion ----
 *   to_nchw:   y[(n*C + c)*HW + hw] (=|+=) x[act_index(n, c, hw)]
 *   from_nchw: y[act_index(n, c, hw)] (=|+=) x[(n*C + c)*HW + hw], rounded in f->dt */
void act_to_nchw(const ActFmt *f, int N, int C, int HW, const void *x, float *y, int add) {
    const long planes = (long)N * C;
    const DType dt = f->dt;
#pragma omp parallel for schedule(static) if (planes * HW >= ACT_PAR_MIN)
    for (long pl = 0; pl < planes; pl++) {
        const long n = pl / C, c = pl % C;
        float *o = y + (size_t)pl * HW;
        for (int j = 0; j < HW; j++) {
            float v = act_ld(dt, x, act_index(f, C, HW, n, c, j));
            o[j] = add ? o[j] + v : v;
        }
    }
}

void act_from_nchw(const ActFmt *f, int N, int C, int HW, const float *x, void *y, int add) {
    const long planes = (long)N * C;
    const DType dt = f->dt;
#pragma omp parallel for schedule(static) if (planes * HW >= ACT_PAR_MIN)
    for (long pl = 0; pl < planes; pl++) {
        const long n = pl / C, c = pl % C;
        const float *p = x + (size_t)pl * HW;
        for (int j = 0; j < HW; j++) {
            size_t i = act_index(f, C, HW, n, c, j);
            act_st(dt, y, i, add ? act_ld(dt, y, i) + p[j] : p[j]);
        }
    }
}

void op_act_import(const ActFmt *f, int N, int C, int HW, const float *x, void *y) {
    act_from_nchw(f, N, C, HW, x, y, 0);
}
void op_act_import_add(const ActFmt *f, int N, int C, int HW, const float *x, void *y) {
    act_from_nchw(f, N, C, HW, x, y, 1);
}
void op_act_export(const ActFmt *f, int N, int C, int HW, const void *x, float *y) {
    act_to_nchw(f, N, C, HW, x, y, 0);
}

/* ---- element-wise, in storage type dt (the layout does not matter) ----
 *   y = max(x, 0)  (NaN -> 0, as op_relu_forward),  dx += dy * [y > 0],  y = a + b */
void op_act_relu_forward(DType dt, size_t n, const void *x, void *y) {
    if (dt == DT_F32) {
        op_relu_forward(n, x, y);
        return;
    }
    const long nn = (long)n;
#pragma omp parallel for schedule(static) if (nn >= ACT_PAR_MIN)
    for (long i = 0; i < nn; i++) {
        float v = act_ld(dt, x, (size_t)i);
        act_st(dt, y, (size_t)i, v > 0.0f ? v : 0.0f);
    }
}

void op_act_relu_backward(DType dt, size_t n, const void *y, const void *dy, void *dx) {
    if (!dx) return;
    if (dt == DT_F32) {
        op_relu_backward(n, y, dy, dx);
        return;
    }
    const long nn = (long)n;
#pragma omp parallel for schedule(static) if (nn >= ACT_PAR_MIN)
    for (long i = 0; i < nn; i++)
        if (act_ld(dt, y, (size_t)i) > 0.0f) act_acc(dt, dx, (size_t)i, act_ld(dt, dy, (size_t)i));
}

void op_act_add_forward(DType dt, size_t n, const void *a, const void *b, void *y) {
    if (dt == DT_F32) {
        op_add_forward(n, a, b, y);
        return;
    }
    const long nn = (long)n;
#pragma omp parallel for schedule(static) if (nn >= ACT_PAR_MIN)
    for (long i = 0; i < nn; i++)
        act_st(dt, y, (size_t)i, act_ld(dt, a, (size_t)i) + act_ld(dt, b, (size_t)i));
}

/* ---- max-pool and global average pool in a format: the bodies are pool_impl.h's (the
 * math is there), called with the run-time format; the plain format goes to pool.c, where
 * the same bodies are specialized for fp32 NCHW. ---- */
/* Forward (dy == NULL: y, amax_out from x) or backward (dx += dy routed by amax): one
 * entry for both directions of the max-pool, so the plain-format test and the plane loop
 * are written once (as avgpool_act below). */
static void maxpool_act(const PoolShape *s, const void *x, void *y, int32_t *amax_out,
                        const int32_t *amax, const void *dy, void *dx) {
    const ActFmt *f = &s->f;
    if (act_is_plain(f)) {
        if (dy) op_maxpool_backward(s, amax, dy, dx);
        else op_maxpool_forward(s, x, y, amax_out);
        return;
    }
    const long planes = (long)s->N * s->C;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        if (dy) maxpool_bwd_plane(s, f->nhwc, f->dt, pl, amax, dy, dx);
        else maxpool_fwd_plane(s, f->nhwc, f->dt, pl, x, y, amax_out);
    }
}

void op_maxpool_act_forward(const PoolShape *s, const void *x, void *y, int32_t *argmax) {
    maxpool_act(s, x, y, argmax, NULL, NULL, NULL);
}

void op_maxpool_act_backward(const PoolShape *s, const int32_t *argmax, const void *dy, void *dx) {
    if (dx) maxpool_act(s, NULL, NULL, NULL, argmax, dy, dx);
}

/* Forward (dy == NULL: y = mean of x) or backward (dx += dy / HW): the global average
 * pool's two directions in one entry, as maxpool_act. */
static void avgpool_act(const ActFmt *f, int N, int C, int HW, const void *x, float *y,
                        const float *dy, void *dx) {
    if (act_is_plain(f)) {
        if (dy) op_avgpool_global_backward(N, C, HW, dy, dx);
        else op_avgpool_global_forward(N, C, HW, x, y);
        return;
    }
    const long planes = (long)N * C;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        if (dy) avgpool_bwd_plane(f->nhwc, f->dt, C, HW, pl, dy, dx);
        else avgpool_fwd_plane(f->nhwc, f->dt, C, HW, pl, x, y);
    }
}

void op_avgpool_act_forward(const ActFmt *f, int N, int C, int HW, const void *x, float *y) {
    avgpool_act(f, N, C, HW, x, y, NULL, NULL);
}

void op_avgpool_act_backward(const ActFmt *f, int N, int C, int HW, const float *dy, void *dx) {
    if (dx) avgpool_act(f, N, C, HW, NULL, NULL, dy, dx);
}
