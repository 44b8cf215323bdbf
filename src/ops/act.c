/* act.c: the CPU reference of the activation-format ops (ops.h, "ops on activations in an
 * ActFmt"): the encoder's edges (import / export between fp32 NCHW and a format),
 * element-wise ReLU and add in a storage type, and max / global-average pooling in a
 * format. Batch-norm is in batchnorm_act.c, convolution in conv2d_act.c.
 *
 * Element (n, c, hw) of an [N, C, HW] activation sits at act_index(f, C, HW, n, c, hw):
 *   NCHW (n*C + c)*HW + hw,   NHWC (n*HW + hw)*C + c.
 * Every value is converted to fp32 on load, the arithmetic is the plain op's (fp32, or
 * double for sums), and the result is rounded to nearest even once on store
 * (act_internal.h). Gradients accumulate in storage type: dx = round(dx + g).
 *
 * Planes (n, c) are independent: parallel over them (each owns its elements in either
 * layout, so there are no races); the plain format {NCHW, fp32} calls the plain ops. */
#include <math.h>

#include "ops/act_internal.h"

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

/* ---- max-pool in s->f (pool.c has the math): padding is -inf, the first maximum in
 * window scan order wins, a NaN wins and propagates. argmax is laid out like y (element
 * (n, c, p*Q + q) at act_index(f, C, P*Q, ...)) and holds ih*W + iw in the input plane.
 *   backward: dx[n, c, argmax] += dy[n, c, p, q] ---- */
void op_maxpool_act_forward(const PoolShape *s, const void *x, void *y, int32_t *argmax) {
    const ActFmt *f = &s->f;
    if (act_is_plain(f)) {
        op_maxpool_forward(s, x, y, argmax);
        return;
    }
    const int C = s->C, H = s->H, W = s->W, P = s->P, Q = s->Q, R = s->R;
    const int st = s->stride, pad = s->pad, HW = H * W, PQ = P * Q;
    const DType dt = f->dt;
    const long planes = (long)s->N * C;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        const long n = pl / C, c = pl % C;
        for (int p = 0; p < P; p++) {
            int h0 = p * st - pad, h1 = h0 + R;
            if (h0 < 0) h0 = 0;
            if (h1 > H) h1 = H;
            for (int q = 0; q < Q; q++) {
                int w0 = q * st - pad, w1 = w0 + R;
                if (w0 < 0) w0 = 0;
                if (w1 > W) w1 = W;
                float best = -INFINITY;
                int32_t bi = -1;
                for (int ih = h0; ih < h1; ih++) {
                    for (int iw = w0; iw < w1; iw++) {
                        float v = act_ld(dt, x, act_index(f, C, HW, n, c, ih * W + iw));
                        if (bi < 0 || v > best || isnan(v)) {
                            best = v;
                            bi = ih * W + iw;
                            if (isnan(v)) goto done; /* NaN wins; later values cannot beat it */
                        }
                    }
                }
            done:;
                size_t o = act_index(f, C, PQ, n, c, p * Q + q);
                act_st(dt, y, o, best); /* a loaded value: exact in dt */
                argmax[o] = bi;
            }
        }
    }
}

void op_maxpool_act_backward(const PoolShape *s, const int32_t *argmax, const void *dy, void *dx) {
    if (!dx) return;
    const ActFmt *f = &s->f;
    if (act_is_plain(f)) {
        op_maxpool_backward(s, argmax, dy, dx);
        return;
    }
    const int C = s->C, HW = s->H * s->W, PQ = s->P * s->Q;
    const DType dt = f->dt;
    const long planes = (long)s->N * C;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        const long n = pl / C, c = pl % C;
        for (int j = 0; j < PQ; j++) {
            size_t o = act_index(f, C, PQ, n, c, j);
            if (argmax[o] >= 0)
                act_acc(dt, dx, act_index(f, C, HW, n, c, argmax[o]), act_ld(dt, dy, o));
        }
    }
}

/* ---- global average pool: x [N, C, HW] in f -> fp32 y [N, C]
 *   y[n,c] = sum_j x[n,c,j] / HW (sum in double),   dx[n,c,j] += dy[n,c] / HW ---- */
void op_avgpool_act_forward(const ActFmt *f, int N, int C, int HW, const void *x, float *y) {
    if (act_is_plain(f)) {
        op_avgpool_global_forward(N, C, HW, x, y);
        return;
    }
    const long planes = (long)N * C;
    const DType dt = f->dt;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        const long n = pl / C, c = pl % C;
        double acc = 0.0;
        for (int j = 0; j < HW; j++) acc += act_ld(dt, x, act_index(f, C, HW, n, c, j));
        y[pl] = (float)(acc / HW);
    }
}

void op_avgpool_act_backward(const ActFmt *f, int N, int C, int HW, const float *dy, void *dx) {
    if (!dx) return;
    if (act_is_plain(f)) {
        op_avgpool_global_backward(N, C, HW, dy, dx);
        return;
    }
    const long planes = (long)N * C;
    const DType dt = f->dt;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        const long n = pl / C, c = pl % C;
        float g = dy[pl] / (float)HW;
        for (int j = 0; j < HW; j++) act_acc(dt, dx, act_index(f, C, HW, n, c, j), g);
    }
}
