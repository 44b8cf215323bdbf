/* dnnl_conv.c: the oneDNN backend's conv2d entries, as op_conv2d_* of ops.h, for fp32
 * activations in either layout:
 *   plain (NCHW): x, y, dx, dy fp32 NCHW; w, dw the master [K, C, R, S]; optional fp32 [K]
 *                 b, db
 *   NHWC:         x, y, dx, dy fp32 NHWC (oneDNN's nhwc); w, dw the prepared weight
 *                 [K, R, S, C] (op_conv_weight_prep's NHWC layout, oneDNN's ohwi); no bias
 *                 (b, db ignored, as the reference does for a non-plain format)
 *
 *   y = conv(x, w) + b                     convolution forward
 *   dx += conv_transpose(dy, w)            convolution backward data    (dx NULL: skipped)
 *   dw += corr(x, dy),  db += sum dy       convolution backward weights (NULL: skipped)
 *
 * Three primitives per shape (and per bias / no bias), created on first use and cached.
 * NCHW: with conv_blocked (the default) they choose their own memory formats
 * (format_tag_any: nChw16c and friends, oneDNN's direct jit kernels) and DnnlOp reorders
 * x, w, dy in and y out through buffers in the caller's workspace; else they work on NCHW
 * itself (oneDNN's gemm kernels). NHWC: the activations are bound directly (oneDNN's jit
 * kernels take nhwc as it is); only the weight goes through a reorder, into the format the
 * primitive picks (blocked OIhw16i16o and friends; [K, R, S, C] back for dw).
 * oneDNN's backward primitives overwrite their outputs, so dx, dw and db are produced in a
 * workspace buffer and added by a reorder with a sum post-op.
 * The padding on the right/bottom is what the floor in P, Q leaves (may be below pad).
 * Other formats and shapes oneDNN refuses run on the reference (the decision is cached). */
#include "vqa_version.h"

#if VQA_HAVE_ONEDNN

#include <stdint.h>
#include <stdlib.h>

#include "ops/dnnl_internal.h"

/* fp32 in either layout: oneDNN's; bf16 / fp16 storage: the reference */
static int conv_on_dnnl(const ConvShape *s) { return s->f.dt == DT_F32; }

static void op_free_heap(void *p) {
    dnnl_op_free(p);
    free(p);
}

/* The shape in oneDNN's terms: memory descriptors of the caller's layouts (and of the
 * primitive's, format_tag_any when blocked), strides and paddings. */
typedef struct ConvDescs {
    dnnl_memory_desc_t x, w, b, y;       /* caller: NCHW, [K, C, R, S], [K], NCHW or
                                            NHWC, [K, R, S, C], -, NHWC */
    dnnl_memory_desc_t px, pw, py;       /* the primitive's (any or the caller's) */
    dnnl_dims_t strides, pad_l, pad_r;
} ConvDescs;

static dnnl_status_t conv_descs(const ConvShape *s, int blocked, ConvDescs *d) {
    dnnl_status_t st;
    int nhwc = s->f.nhwc;
    dnnl_dims_t dx = {s->N, s->C, s->H, s->W}, dw = {s->K, s->C, s->R, s->S}, dy = {s->N, s->K, s->P, s->Q};
    if ((st = dnnl_md_act(&d->x, s->N, s->C, s->H, s->W, nhwc)) ||
        (st = dnnl_memory_desc_init_by_tag(&d->w, 4, dw, dnnl_f32, nhwc ? dnnl_ohwi : dnnl_oihw)) ||
        (st = dnnl_md_1d(&d->b, s->K)) || (st = dnnl_md_act(&d->y, s->N, s->K, s->P, s->Q, nhwc)))
        return st;
    d->px = d->x, d->pw = d->w, d->py = d->y;
    if (blocked && !nhwc) {
        if ((st = dnnl_memory_desc_init_by_tag(&d->px, 4, dx, dnnl_f32, dnnl_format_tag_any)) ||
            (st = dnnl_memory_desc_init_by_tag(&d->py, 4, dy, dnnl_f32, dnnl_format_tag_any)))
            return st;
    }
    if (blocked || nhwc) /* the weight in whatever format the primitive prefers */
        if ((st = dnnl_memory_desc_init_by_tag(&d->pw, 4, dw, dnnl_f32, dnnl_format_tag_any))) return st;
    d->strides[0] = d->strides[1] = s->stride;
    d->pad_l[0] = d->pad_l[1] = s->pad;
    d->pad_r[0] = (int64_t)(s->P - 1) * s->stride + s->R - s->H - s->pad;
    d->pad_r[1] = (int64_t)(s->Q - 1) * s->stride + s->S - s->W - s->pad;
    return dnnl_success;
}

static dnnl_status_t fwd_pd(DnnlCtx *c, const ConvDescs *d, int bias, dnnl_primitive_desc_t *pd) {
    dnnl_convolution_desc_t cd;
    dnnl_status_t st = dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &d->px,
                                                          &d->pw, bias ? &d->b : NULL, &d->py, d->strides, d->pad_l,
                                                          d->pad_r);
    if (st) return st;
    return dnnl_primitive_desc_create(pd, &cd, NULL, c->engine, NULL);
}

/* Builds the primitive of `kind` (DK_CONV_*) for s; bias: with b (forward) / db (backward
 * weights). 0, or -1 with oneDNN's refusal in *st. */
static int conv_build(DnnlCtx *c, const ConvShape *s, int kind, int bias, DnnlOp *op, dnnl_status_t *st) {
    ConvDescs d;
    dnnl_primitive_desc_t hint = NULL, pd = NULL;
    if ((*st = conv_descs(s, c->conv_blocked, &d))) return -1;
    if (kind == DK_CONV_FWD) {
        if ((*st = fwd_pd(c, &d, bias, &pd))) return -1;
    } else {
        dnnl_convolution_desc_t cd;
        if ((*st = fwd_pd(c, &d, 0, &hint))) return -1;
        if (kind == DK_CONV_BWD_DATA)
            *st = dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &d.px, &d.pw, &d.py,
                                                           d.strides, d.pad_l, d.pad_r);
        else
            *st = dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &d.px, &d.pw,
                                                              bias ? &d.b : NULL, &d.py, d.strides, d.pad_l, d.pad_r);
        if (!*st) *st = dnnl_primitive_desc_create(&pd, &cd, NULL, c->engine, hint);
        dnnl_primitive_desc_destroy(hint);
        if (*st) return -1;
    }
    if (dnnl_op_init(c, op, pd, st)) return -1;
    switch (kind) {
    case DK_CONV_FWD:
        if (dnnl_op_arg(c, op, DNNL_ARG_SRC, DA_IN, &d.x, st) || dnnl_op_arg(c, op, DNNL_ARG_WEIGHTS, DA_IN, &d.w, st) ||
            (bias && dnnl_op_arg(c, op, DNNL_ARG_BIAS, DA_IN, &d.b, st)) ||
            dnnl_op_arg(c, op, DNNL_ARG_DST, DA_OUT, &d.y, st))
            return -1;
        break;
    case DK_CONV_BWD_DATA:
        if (dnnl_op_arg(c, op, DNNL_ARG_DIFF_DST, DA_IN, &d.y, st) ||
            dnnl_op_arg(c, op, DNNL_ARG_WEIGHTS, DA_IN, &d.w, st) ||
            dnnl_op_arg(c, op, DNNL_ARG_DIFF_SRC, DA_ACC, &d.x, st))
            return -1;
        break;
    default:
        if (dnnl_op_arg(c, op, DNNL_ARG_SRC, DA_IN, &d.x, st) || dnnl_op_arg(c, op, DNNL_ARG_DIFF_DST, DA_IN, &d.y, st) ||
            dnnl_op_arg(c, op, DNNL_ARG_DIFF_WEIGHTS, DA_ACC, &d.w, st) ||
            (bias && dnnl_op_arg(c, op, DNNL_ARG_DIFF_BIAS, DA_ACC, &d.b, st)))
            return -1;
    }
    return 0;
}

/* The cached primitive of kind for s (built on first use), or NULL: the reference runs. */
static DnnlOp *conv_op(DnnlCtx *c, const ConvShape *s, int kind, int bias) {
    int32_t key[DNNL_MAX_KEY];
    int n = dnnl_key_begin(key, kind);
    key[n++] = s->N, key[n++] = s->C, key[n++] = s->H, key[n++] = s->W;
    key[n++] = s->K, key[n++] = s->R, key[n++] = s->S, key[n++] = s->stride, key[n++] = s->pad;
    key[n++] = bias, key[n++] = c->conv_blocked, key[n++] = s->f.nhwc;
    DnnlCacheEntry *e = dnnl_cache_find(c, key, n);
    if (e) return e->obj;
    DnnlOp *op = calloc(1, sizeof *op);
    dnnl_status_t st = dnnl_success;
    if (op && conv_build(c, s, kind, bias, op, &st) != 0) { /* oneDNN refuses: the reference, from now on */
        op_free_heap(op);
        op = NULL;
    }
    e = dnnl_cache_add(c, key, n, op, op_free_heap);
    return e ? e->obj : NULL;
}

static char *ws_aligned(float *ws) {
    uintptr_t p = (uintptr_t)ws;
    return (char *)((p + DNNL_ALIGN - 1) / DNNL_ALIGN * DNNL_ALIGN);
}

/* Floats: the reference's workspace (a refused shape runs there) and, aligned, the
 * largest of the three primitives' buffers; a bias adds [K] to each. */
static size_t dnnl_conv2d_workspace(const Backend *be, const ConvShape *s) {
    const Backend *ref = dnnl_ref();
    size_t ref_ws = ref->conv2d_workspace(ref, s);
    if (!conv_on_dnnl(s)) return ref_ws;
    DnnlCtx *c = dnnl_ctx(be);
    size_t bytes = 0;
    for (int kind = DK_CONV_FWD; kind <= DK_CONV_BWD_W; kind++) {
        DnnlOp *op = conv_op(c, s, kind, 0);
        if (op && op->ws_bytes > bytes) bytes = op->ws_bytes;
    }
    bytes += (size_t)s->K * sizeof(float) + 2 * DNNL_ALIGN; /* bias buffer + alignment of ws */
    size_t f = (bytes + sizeof(float) - 1) / sizeof(float);
    return f > ref_ws ? f : ref_ws;
}

static void dnnl_conv2d_forward(const Backend *be, const ConvShape *s, const void *x, const void *w,
                                const float *b, void *y, float *ws) {
    const Backend *ref = dnnl_ref();
    if (s->f.nhwc) b = NULL; /* no bias outside the plain format */
    DnnlOp *op = conv_on_dnnl(s) ? conv_op(dnnl_ctx(be), s, DK_CONV_FWD, b != NULL) : NULL;
    if (!op) {
        dnnl_ctx(be)->fallbacks++;
        ref->conv2d_forward(ref, s, x, w, b, y, ws);
        return;
    }
    void *p[4] = {(void *)x, (void *)w, (void *)b, y};
    if (!b) p[2] = y; /* no bias argument: dst is the third */
    dnnl_op_run(dnnl_ctx(be), op, p, ws_aligned(ws));
}

static void dnnl_conv2d_backward(const Backend *be, const ConvShape *s, const void *x, const void *w,
                                 const void *dy, void *dx, void *dw, float *db, float *ws) {
    const Backend *ref = dnnl_ref();
    DnnlCtx *c = dnnl_ctx(be);
    if (!conv_on_dnnl(s)) {
        dnnl_ctx(be)->fallbacks++;
        ref->conv2d_backward(ref, s, x, w, dy, dx, dw, db, ws);
        return;
    }
    if (s->f.nhwc) db = NULL; /* no bias outside the plain format */
    if (dx) {
        DnnlOp *op = conv_op(c, s, DK_CONV_BWD_DATA, 0);
        if (op) {
            void *p[3] = {(void *)dy, (void *)w, dx};
            dnnl_op_run(c, op, p, ws_aligned(ws));
        } else {
            dnnl_ctx(be)->fallbacks++;
            ref->conv2d_backward(ref, s, x, w, dy, dx, NULL, NULL, ws);
        }
    }
    if (!dw) { /* a bias gradient alone: the reference's sum over dy */
        if (db) {
            dnnl_ctx(be)->fallbacks++;
            ref->conv2d_backward(ref, s, x, w, dy, NULL, NULL, db, ws);
        }
        return;
    }
    DnnlOp *op = conv_op(c, s, DK_CONV_BWD_W, db != NULL);
    if (!op) {
        dnnl_ctx(be)->fallbacks++;
        ref->conv2d_backward(ref, s, x, w, dy, NULL, dw, db, ws);
        return;
    }
    void *p[4] = {(void *)x, (void *)dy, dw, db};
    dnnl_op_run(c, op, p, ws_aligned(ws));
}

void dnnl_conv_install(Backend *t) {
    t->conv2d_workspace = dnnl_conv2d_workspace;
    t->conv2d_forward = dnnl_conv2d_forward;
    t->conv2d_backward = dnnl_conv2d_backward;
}

#endif
