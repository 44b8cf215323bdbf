/* dnnl_relu.c: the oneDNN backend's ReLU forward (fp32 only; other storage types run on
 * the reference), as op_relu_forward of ops.h on a flat [n], any layout:
 *
 *   y = max(x, 0)              (in place allowed: y may equal x)
 *
 * One difference from the reference: oneDNN's ReLU keeps a NaN input as NaN where the
 * reference writes 0. The backward (dx += dy * [y > 0]) is the reference's: oneDNN's
 * (relu_use_dst_for_bwd into a scratch buffer, added by a reorder with a sum post-op,
 * since oneDNN overwrites diff_src) measured 0.84-0.95x of the reference on the demo's
 * shapes at 1 thread, forward 1.5-2.7x (bench_cpu_dnnl, 2-core Xeon, 2026-12-07). */
#include "vqa_version.h"

#if VQA_HAVE_ONEDNN

#include <stdlib.h>

#include "ops/dnnl_internal.h"

static void op_free_heap(void *p) {
    dnnl_op_free(p);
    free(p);
}

static int relu_build(DnnlCtx *c, size_t n, DnnlOp *op, dnnl_status_t *st) {
    dnnl_memory_desc_t md;
    if ((*st = dnnl_md_1d(&md, (int64_t)n))) return -1;
    dnnl_eltwise_desc_t d;
    dnnl_primitive_desc_t pd = NULL;
    if ((*st = dnnl_eltwise_forward_desc_init(&d, dnnl_forward_inference, dnnl_eltwise_relu, &md, 0.0f, 0.0f)) ||
        (*st = dnnl_primitive_desc_create(&pd, &d, NULL, c->engine, NULL)))
        return -1;
    if (dnnl_op_init(c, op, pd, st)) return -1;
    return dnnl_op_arg(c, op, DNNL_ARG_SRC, DA_IN, &md, st) || dnnl_op_arg(c, op, DNNL_ARG_DST, DA_OUT, &md, st)
               ? -1 : 0;
}

static DnnlOp *relu_op(DnnlCtx *c, size_t n) {
    int32_t key[DNNL_MAX_KEY];
    int k = dnnl_key_begin(key, DK_RELU_FWD);
    key[k++] = (int32_t)(uint32_t)(n & 0xFFFFFFFFu), key[k++] = (int32_t)(uint32_t)((uint64_t)n >> 32);
    DnnlCacheEntry *e = dnnl_cache_find(c, key, k);
    if (e) return e->obj;
    DnnlOp *op = calloc(1, sizeof *op);
    dnnl_status_t st = dnnl_success;
    if (op && relu_build(c, n, op, &st) != 0) {
        op_free_heap(op);
        op = NULL;
    }
    e = dnnl_cache_add(c, key, k, op, op_free_heap);
    return e ? e->obj : NULL;
}

static void dnnl_relu_forward(const Backend *be, DType dt, size_t n, const void *x, void *y) {
    const Backend *ref = dnnl_ref();
    DnnlCtx *c = dnnl_ctx(be);
    DnnlOp *op = dt == DT_F32 && n > 0 ? relu_op(c, n) : NULL;
    char *ws = op ? dnnl_scratch(c, op->ws_bytes) : NULL;
    if (!ws) {
        dnnl_ctx(be)->fallbacks++;
        ref->relu_forward(ref, dt, n, x, y);
        return;
    }
    void *p[2] = {(void *)x, y};
    dnnl_op_run(c, op, p, ws);
}

void dnnl_relu_install(Backend *t) {
    t->relu_forward = dnnl_relu_forward;
}

#endif
