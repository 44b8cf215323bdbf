/* dnnl_pool.c: the oneDNN backend's max-pool entries (fp32 NCHW or NHWC), as
 * op_maxpool_* of ops.h:
 *
 *   y[n,c,p,q] = max over the R x R window (padding never wins)
 *   dx[n,c,winner] += dy[n,c,p,q]
 *
 * oneDNN's forward (training) records the winners in a workspace of its own format (one
 * byte per output for small windows); it travels in the argmax buffer ([N, C, P, Q]
 * int32) to maxpool_backward of this backend, so argmax here is NOT the reference's flat
 * index. A shape whose workspace would not fit that buffer, and other formats, run on the
 * reference in both directions (the decision is per shape, so forward and backward agree).
 * The backward's dx goes through a scratch buffer and a reorder with a sum post-op. */
#include "vqa_version.h"

#if VQA_HAVE_ONEDNN

#include <stdlib.h>

#include "ops/dnnl_internal.h"

static int pool_on_dnnl(const PoolShape *s) { return s->f.dt == DT_F32; }

static void op_free_heap(void *p) {
    dnnl_op_free(p);
    free(p);
}

static int pool_build(DnnlCtx *c, const PoolShape *s, int bwd, DnnlOp *op, dnnl_status_t *st) {
    dnnl_memory_desc_t x, y;
    if ((*st = dnnl_md_act(&x, s->N, s->C, s->H, s->W, s->f.nhwc)) ||
        (*st = dnnl_md_act(&y, s->N, s->C, s->P, s->Q, s->f.nhwc)))
        return -1;
    dnnl_dims_t strides = {s->stride, s->stride}, kernel = {s->R, s->R}, pad_l = {s->pad, s->pad};
    dnnl_dims_t pad_r = {(int64_t)(s->P - 1) * s->stride + s->R - s->H - s->pad,
                         (int64_t)(s->Q - 1) * s->stride + s->R - s->W - s->pad};
    dnnl_pooling_desc_t d;
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    if ((*st = dnnl_pooling_forward_desc_init(&d, dnnl_forward_training, dnnl_pooling_max, &x, &y, strides, kernel,
                                              pad_l, pad_r)) ||
        (*st = dnnl_primitive_desc_create(&fpd, &d, NULL, c->engine, NULL)))
        return -1;
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0);
    if (!wmd || dnnl_memory_desc_get_size(wmd) > (size_t)s->N * s->C * s->P * s->Q * sizeof(int32_t)) {
        dnnl_primitive_desc_destroy(fpd);
        return *st = dnnl_unimplemented, -1; /* does not fit the argmax buffer */
    }
    dnnl_memory_desc_t ws = *wmd;
    if (!bwd) {
        pd = fpd;
    } else {
        *st = dnnl_pooling_backward_desc_init(&d, dnnl_pooling_max, &x, &y, strides, kernel, pad_l, pad_r);
        if (!*st) *st = dnnl_primitive_desc_create(&pd, &d, NULL, c->engine, fpd);
        dnnl_primitive_desc_destroy(fpd);
        if (*st) return -1;
    }
    if (dnnl_op_init(c, op, pd, st)) return -1;
    if (!bwd)
        return dnnl_op_arg(c, op, DNNL_ARG_SRC, DA_IN, &x, st) || dnnl_op_arg(c, op, DNNL_ARG_DST, DA_OUT, &y, st) ||
                       dnnl_op_arg(c, op, DNNL_ARG_WORKSPACE, DA_OUT, &ws, st)
                   ? -1 : 0;
    return dnnl_op_arg(c, op, DNNL_ARG_DIFF_DST, DA_IN, &y, st) ||
                   dnnl_op_arg(c, op, DNNL_ARG_WORKSPACE, DA_IN, &ws, st) ||
                   dnnl_op_arg(c, op, DNNL_ARG_DIFF_SRC, DA_ACC, &x, st)
               ? -1 : 0;
}

/* The cached primitive (bwd 0: forward, 1: backward), or NULL: the reference runs. The
 * forward decides for both: a backward is only looked for when the forward exists. */
static DnnlOp *pool_op(DnnlCtx *c, const PoolShape *s, int bwd) {
    int32_t key[DNNL_MAX_KEY];
    int n = dnnl_key_begin(key, DK_POOL);
    key[n++] = s->N, key[n++] = s->C, key[n++] = s->H, key[n++] = s->W, key[n++] = s->R;
    key[n++] = s->stride, key[n++] = s->pad, key[n++] = bwd, key[n++] = s->f.nhwc;
    DnnlCacheEntry *e = dnnl_cache_find(c, key, n);
    if (e) return e->obj;
    DnnlOp *op = calloc(1, sizeof *op);
    dnnl_status_t st = dnnl_success;
    if (op && pool_build(c, s, bwd, op, &st) != 0) {
        op_free_heap(op);
        op = NULL;
    }
    e = dnnl_cache_add(c, key, n, op, op_free_heap);
    return e ? e->obj : NULL;
}

static void dnnl_maxpool_forward(const Backend *be, const PoolShape *s, const void *x, void *y, int32_t *argmax) {
    const Backend *ref = dnnl_ref();
    DnnlCtx *c = dnnl_ctx(be);
    /* both directions must exist, or both run on the reference */
    DnnlOp *op = pool_on_dnnl(s) && pool_op(c, s, 1) ? pool_op(c, s, 0) : NULL;
    char *ws = op ? dnnl_scratch(c, op->ws_bytes) : NULL;
    if (!ws) {
        dnnl_ctx(be)->fallbacks++;
        ref->maxpool_forward(ref, s, x, y, argmax);
        return;
    }
    void *p[3] = {(void *)x, y, argmax};
    dnnl_op_run(c, op, p, ws);
}

static void dnnl_maxpool_backward(const Backend *be, const PoolShape *s, const int32_t *argmax, const void *dy,
                                  void *dx) {
    const Backend *ref = dnnl_ref();
    DnnlCtx *c = dnnl_ctx(be);
    if (!dx) return;
    DnnlOp *op = pool_on_dnnl(s) && pool_op(c, s, 0) ? pool_op(c, s, 1) : NULL;
    char *ws = op ? dnnl_scratch(c, op->ws_bytes) : NULL;
    if (!ws) {
        dnnl_ctx(be)->fallbacks++;
        ref->maxpool_backward(ref, s, argmax, dy, dx);
        return;
    }
    void *p[3] = {(void *)dy, (void *)argmax, dx};
    dnnl_op_run(c, op, p, ws);
}

void dnnl_pool_install(Backend *t) {
    t->maxpool_forward = dnnl_maxpool_forward;
    t->maxpool_backward = dnnl_maxpool_backward;
}

#endif
