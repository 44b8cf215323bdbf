/* conv2d.c: 2-D convolution (cross-correlation, as PyTorch) by im2col + GEMM, NCHW.
 *
 *   x [N, C, H, W], w [K, C, R, S], b [K] (optional), y [N, K, P, Q]
 *   P = (H + 2*pad - R) / stride + 1,  Q = (W + 2*pad - S) / stride + 1
 *   y[n,k,p,q] = b[k] + sum_{c,r,s} w[k,c,r,s] * x[n, c, p*stride - pad + r, q*stride - pad + s]
 *   (x outside the image reads as 0)
 *
 * With col[(c*R + r)*S + s, p*Q + q] = x[n, c, p*stride - pad + r, q*stride - pad + s]
 * (im2col, [CRS, PQ] per image) the convolution is one GEMM per image:
 *   y_n [K, PQ] = w [K, CRS] @ col_n [CRS, PQ] + b
 * and backward is
 *   dw [K, CRS] += dy_n [K, PQ] @ col_n^T          (GEMM, beta = 1)
 *   db [K]      += sum_{n,p,q} dy[n, k, p, q]
 *   dcol_n      =  w^T [CRS, K] @ dy_n [K, PQ],  dx += col2im(dcol_n)   (scatter-add)
 *
 * Small feature maps (deep ResNet stages: 14x14, 7x7) make a per-image GEMM thin (PQ
 * columns only), which sgemm runs well below its peak. So images are processed in
 * groups of G: col is [CRS, G*PQ] (image i in columns i*PQ ..), the GEMM has G*PQ
 * columns, and its [K, G*PQ] result is scattered into the NCHW output (a cheap copy
 * next to 2*CRS flops per output). G = 1 for large maps: the GEMM writes y directly.
 * 1x1 stride-1 unpadded convolutions need no im2col: with G = 1 x_n itself is col_n;
 * with G > 1 im2col degenerates to a gather of G images into adjacent columns.
 *
 * Every element of col is written by im2col (zeros included), so the workspace is never
 * re-zeroed. im2col runs in parallel over (channel, kernel row), col2im over channels:
 * a channel owns its dx planes, so the scatter-add has no races. */
#include <string.h>

#include "ops/ops.h"

/* Aim for at least this many GEMM columns per group. A 7x7 map alone gives 49-column
 * GEMMs, too thin for sgemm's blocking; with groups of >= 1024 columns the 14x14 and 7x7
 * stages run at 0.8-1.07 of whole-batch sgemm (bench/RESULTS.md). */
#define CONV_TARGET_COLS 1024
/* Rows of at least this many floats are filled by memcpy/memset, shorter ones by loops. */
#define ROW_CALL_MIN 24

void conv_shape_init(ConvShape *s, int N, int C, int H, int W, int K, int R, int S, int stride,
                     int pad) {
    s->N = N, s->C = C, s->H = H, s->W = W;
    s->K = K, s->R = R, s->S = S;
    s->stride = stride, s->pad = pad;
    s->P = (H + 2 * pad - R) / stride + 1;
    s->Q = (W + 2 * pad - S) / stride + 1;
    s->f = (ActFmt){0, DT_F32};
}

static int conv_is_pointwise(const ConvShape *s) {
    return s->R == 1 && s->S == 1 && s->stride == 1 && s->pad == 0;
}

/* Images per group: enough for CONV_TARGET_COLS columns, balanced over the batch. */
static int conv_group(const ConvShape *s) {
    int pq = s->P * s->Q;
    if (pq <= 0 || s->N <= 1) return 1;
    int g = (CONV_TARGET_COLS + pq - 1) / pq;
    if (g >= s->N) return s->N;
    if (g <= 1) return 1;
    int nchunks = (s->N + g - 1) / g;
    return (s->N + nchunks - 1) / nchunks;
}

size_t op_conv2d_workspace(const ConvShape *s) {
    int g = conv_group(s);
    size_t pq = (size_t)s->P * s->Q;
    size_t crs = (size_t)s->C * s->R * s->S;
    size_t col = (conv_is_pointwise(s) && g == 1) ? 0 : crs * g * pq;
    size_t tmp = g > 1 ? (size_t)s->K * g * pq : 0;
    return col + tmp;
}

/* Valid output columns [q0, q1] for kernel column s_: 0 <= q*stride - pad + s_ < W. */
static void valid_range(const ConvShape *s, int s_, int *q0, int *q1) {
    int lo = s->pad - s_, hi = s->W - 1 + s->pad - s_;
    *q0 = lo > 0 ? (lo + s->stride - 1) / s->stride : 0;
    *q1 = hi < 0 ? -1 : hi / s->stride;
    if (*q1 > s->Q - 1) *q1 = s->Q - 1;
}

/* One image's P x Q block of col row (c, r, s_): x plane xp shifted by (r, s_), zeros
 * where the tap falls into the padding. [q0, q1] = valid_range(s_). */
static void im2col_block(const ConvShape *s, const float *xp, int r, int s_, int q0, int q1,
                         float *dst) {
    const int H = s->H, W = s->W, P = s->P, Q = s->Q, st = s->stride, pad = s->pad;
    const int off = s_ - pad; /* may be negative; q >= q0 keeps every index >= 0 */
    for (int p = 0; p < P; p++) {
        float *d = dst + (size_t)p * Q;
        int ih = p * st - pad + r;
        /* Rows are short in deep stages (7 floats at 7x7): below ROW_CALL_MIN floats
         * plain loops beat the memset/memcpy calls. */
        if (ih < 0 || ih >= H || q1 < q0) {
            if (Q >= ROW_CALL_MIN) memset(d, 0, sizeof(float) * (size_t)Q);
            else for (int q = 0; q < Q; q++) d[q] = 0.0f;
            continue;
        }
        const float *xr = xp + (size_t)ih * W;
        for (int q = 0; q < q0; q++) d[q] = 0.0f;
        if (st == 1 && q1 - q0 + 1 >= ROW_CALL_MIN) {
            memcpy(d + q0, xr + q0 + off, sizeof(float) * (size_t)(q1 - q0 + 1));
        } else if (st == 1) {
#pragma omp simd
            for (int q = q0; q <= q1; q++) d[q] = xr[q + off];
        } else {
            for (int q = q0; q <= q1; q++) d[q] = xr[q * st + off];
        }
        for (int q = q1 + 1; q < Q; q++) d[q] = 0.0f;
    }
}

/* col [CRS, gn*PQ] (leading dim gn*PQ) from images x[0 .. gn) of the group.
 * Each col row is written start to end, image after image: a row is one sequential
 * stream instead of gn passes over the whole buffer that each touch a fraction of every
 * cache line (measured 2-3x slower at 7x7). Parallel over (c, r): enough units even for
 * the 3-channel stem. */
static void im2col(const ConvShape *s, const float *x, int gn, float *col) {
    const int C = s->C, H = s->H, W = s->W, R = s->R, S = s->S;
    const size_t pq = (size_t)s->P * s->Q, ld = (size_t)gn * pq;
#pragma omp parallel for collapse(2) schedule(static)
    for (int c = 0; c < C; c++) {
        for (int r = 0; r < R; r++) {
            for (int s_ = 0; s_ < S; s_++) {
                float *row = col + ((size_t)(c * R + r) * S + s_) * ld;
                int q0, q1;
                valid_range(s, s_, &q0, &q1);
                for (int i = 0; i < gn; i++)
                    im2col_block(s, x + ((size_t)i * C + c) * H * W, r, s_, q0, q1, row + i * pq);
            }
        }
    }
}

/* dx[0 .. gn) += col2im(dcol), dcol [CRS, gn*PQ]. Parallel over channels: all taps of
 * channel c, for every image, add into the planes dx[i, c] only, so no two threads
 * write the same element. */
static void col2im_add(const ConvShape *s, const float *dcol, int gn, float *dx) {
    const int C = s->C, H = s->H, W = s->W, R = s->R, S = s->S, P = s->P, Q = s->Q;
    const int st = s->stride, pad = s->pad;
    const size_t pq = (size_t)P * Q, ld = (size_t)gn * pq;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        for (int r = 0; r < R; r++) {
            for (int s_ = 0; s_ < S; s_++) {
                const float *row = dcol + ((size_t)(c * R + r) * S + s_) * ld;
                const int off = s_ - pad;
                int q0, q1;
                valid_range(s, s_, &q0, &q1);
                for (int i = 0; i < gn; i++) {
                    float *xp = dx + ((size_t)i * C + c) * H * W;
                    const float *src = row + i * pq;
                    for (int p = 0; p < P; p++) {
                        int ih = p * st - pad + r;
                        if (ih < 0 || ih >= H) continue;
                        const float *d = src + (size_t)p * Q;
                        float *xr = xp + (size_t)ih * W;
                        if (st == 1) {
#pragma omp simd
                            for (int q = q0; q <= q1; q++) xr[q + off] += d[q];
                        } else {
                            for (int q = q0; q <= q1; q++) xr[q * st + off] += d[q];
                        }
                    }
                }
            }
        }
    }
}

/* y[n0+i, k, :] = tmp[k, i*PQ ..] (+ b[k]) for the gn images of a group. */
static void scatter_out(const ConvShape *s, const float *tmp, const float *b, int gn, float *y) {
    const int K = s->K;
    const size_t pq = (size_t)s->P * s->Q, ld = (size_t)gn * pq;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < gn; i++) {
        for (int k = 0; k < K; k++) {
            const float *src = tmp + (size_t)k * ld + (size_t)i * pq;
            float *dst = y + ((size_t)i * K + k) * pq;
            if (b) {
                float bk = b[k];
                for (size_t j = 0; j < pq; j++) dst[j] = src[j] + bk;
            } else {
                memcpy(dst, src, sizeof(float) * pq);
            }
        }
    }
}

/* tmp[k, i*PQ ..] = dy[n0+i, k, :]: the group's output gradient as one [K, gn*PQ] matrix. */
static void gather_dy(const ConvShape *s, const float *dy, int gn, float *tmp) {
    const int K = s->K;
    const size_t pq = (size_t)s->P * s->Q, ld = (size_t)gn * pq;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < gn; i++)
        for (int k = 0; k < K; k++)
            memcpy(tmp + (size_t)k * ld + (size_t)i * pq, dy + ((size_t)i * K + k) * pq,
                   sizeof(float) * pq);
}

void op_conv2d_forward(const ConvShape *s, const float *x, const float *w, const float *b,
                       float *y, float *ws) {
    const int K = s->K, g = conv_group(s), pw = conv_is_pointwise(s);
    const int crs = s->C * s->R * s->S;
    const size_t pq = (size_t)s->P * s->Q, chw = (size_t)s->C * s->H * s->W;
    float *col = ws;
    float *tmp = ws + ((pw && g == 1) ? 0 : (size_t)crs * g * pq);
    for (int n0 = 0; n0 < s->N; n0 += g) {
        int gn = s->N - n0 < g ? s->N - n0 : g;
        const float *xn = x + (size_t)n0 * chw;
        float *yn = y + (size_t)n0 * K * pq;
        const float *cm = xn;
        if (!(pw && gn == 1)) {
            im2col(s, xn, gn, col);
            cm = col;
        }
        int cols = gn * (int)pq;
        if (gn == 1) {
            if (b) { /* start from the bias; the GEMM adds onto it (beta = 1) */
#pragma omp parallel for schedule(static)
                for (int k = 0; k < K; k++)
                    for (size_t j = 0; j < pq; j++) yn[(size_t)k * pq + j] = b[k];
            }
            op_gemm(0, 0, K, cols, crs, 1.0f, w, crs, cm, cols, b ? 1.0f : 0.0f, yn, cols);
        } else {
            op_gemm(0, 0, K, cols, crs, 1.0f, w, crs, cm, cols, 0.0f, tmp, cols);
            scatter_out(s, tmp, b, gn, yn);
        }
    }
}

void op_conv2d_backward(const ConvShape *s, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db, float *ws) {
    const int K = s->K, g = conv_group(s), pw = conv_is_pointwise(s);
    const int crs = s->C * s->R * s->S;
    const size_t pq = (size_t)s->P * s->Q, chw = (size_t)s->C * s->H * s->W;
    float *col = ws;
    float *tmp = ws + ((pw && g == 1) ? 0 : (size_t)crs * g * pq);

    if (db) {
#pragma omp parallel for schedule(static)
        for (int k = 0; k < K; k++) {
            double acc = 0.0;
            for (int n = 0; n < s->N; n++) {
                const float *d = dy + ((size_t)n * K + k) * pq;
                for (size_t j = 0; j < pq; j++) acc += d[j];
            }
            db[k] += (float)acc;
        }
    }
    if (!dw && !dx) return;

    for (int n0 = 0; n0 < s->N; n0 += g) {
        int gn = s->N - n0 < g ? s->N - n0 : g;
        int cols = gn * (int)pq;
        const float *xn = x + (size_t)n0 * chw;
        float *dxn = dx ? dx + (size_t)n0 * chw : NULL;
        const float *dyg = dy + (size_t)n0 * K * pq;
        if (gn > 1) {
            gather_dy(s, dyg, gn, tmp);
            dyg = tmp;
        }
        if (pw && gn == 1) {
            /* x_n is its own col matrix; dx_n accumulates straight from the GEMM. */
            if (dw) op_gemm(0, 1, K, crs, cols, 1.0f, dyg, cols, xn, cols, 1.0f, dw, crs);
            if (dxn) op_gemm(1, 0, crs, cols, K, 1.0f, w, crs, dyg, cols, 1.0f, dxn, cols);
            continue;
        }
        if (dw) {
            im2col(s, xn, gn, col);
            op_gemm(0, 1, K, crs, cols, 1.0f, dyg, cols, col, cols, 1.0f, dw, crs);
        }
        if (dxn) {
            /* col is free again: reuse it for dcol. */
            op_gemm(1, 0, crs, cols, K, 1.0f, w, crs, dyg, cols, 0.0f, col, cols);
            col2im_add(s, col, gn, dxn);
        }
    }
}
