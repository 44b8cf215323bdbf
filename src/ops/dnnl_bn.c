/* dnnl_bn.c: the oneDNN backend's batch-norm entries (x, y, dx, dy fp32 [N, C, HW] in
 * NHWC, seen by oneDNN as [N, C, HW, 1] in nhwc; gamma, beta and statistics fp32 [C]),
 * with the reference's semantics (batchnorm.c):
 *
 *   train: mean, var (biased) over N*HW;  y = (x - mean) / sqrt(var + eps) * gamma + beta
 *          saved: mean and rstd = 1/sqrt(var + eps)  (oneDNN gives var: converted here)
 *          running_mean = (1-m) running_mean + m mean
 *          running_var  = (1-m) running_var  + m var * M/(M-1)   (unbiased, M = N*HW)
 *   eval:  the same map with the running statistics (oneDNN's use_global_stats)
 *   backward: dx += ..., dgamma += sum dy * xhat, dbeta += sum dy (oneDNN overwrites its
 *          outputs: they go through workspace buffers and a reorder with a sum post-op);
 *          the train backward hands oneDNN var = 1/rstd^2 - eps, so var + eps is the
 *          forward's to float rounding.
 * NCHW (see act_on_dnnl), bf16 / fp16 storage, gamma / beta NULL (affine off) and dx NULL run on the reference. The
 * buffers come from the context's scratch (these entries have no workspace argument). */
#include "vqa_version.h"

#if VQA_HAVE_ONEDNN

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/dnnl_internal.h"

/* fp32 NHWC only. On NCHW, oneDNN's batch-norm measured 0.87-0.91x of the reference
 * forward and 0.50-0.53x backward on the demo's shapes at 1 thread; on NHWC 2.3-3.3x
 * forward and 0.82-0.92x backward of the reference's NCHW (10-23x of the reference's
 * strided NHWC), so NHWC runs here and NCHW on the reference (bench_cpu_dnnl, 2-core
 * Xeon, 2026-12-07). */
static int act_on_dnnl(const ActDesc *d) { return d->f.dt == DT_F32 && d->f.nhwc; }

static void op_free_heap(void *p) {
    dnnl_op_free(p);
    free(p);
}

static const unsigned BN_AFFINE = dnnl_use_scale | dnnl_use_shift;

/* The primitive of kind (DK_BN_*) for [N, C, HW] and eps. The backward kinds always
 * compute dgamma and dbeta (dnnl_backward; oneDNN 2.6 builds no dnnl_backward_data
 * primitive for these flags): a gradient not asked for goes to a dummy. */
static int bn_build(DnnlCtx *c, const ActDesc *a, int kind, float eps, DnnlOp *op, dnnl_status_t *st) {
    dnnl_memory_desc_t x, v;
    if ((*st = dnnl_md_act(&x, a->N, a->C, a->HW, 1, a->f.nhwc)) || (*st = dnnl_md_1d(&v, a->C))) return -1;
    int eval = kind == DK_BN_FWD_EVAL || kind == DK_BN_BWD_EVAL;
    unsigned flags = BN_AFFINE | (eval ? (unsigned)dnnl_use_global_stats : 0u);
    dnnl_batch_normalization_desc_t bd;
    dnnl_primitive_desc_t pd = NULL, hint = NULL;
    dnnl_prop_kind_t fwd_prop = kind == DK_BN_FWD_EVAL ? dnnl_forward_inference : dnnl_forward_training;
    if ((*st = dnnl_batch_normalization_forward_desc_init(&bd, fwd_prop, &x, eps, flags))) return -1;
    if (kind == DK_BN_FWD_TRAIN || kind == DK_BN_FWD_EVAL) {
        if ((*st = dnnl_primitive_desc_create(&pd, &bd, NULL, c->engine, NULL))) return -1;
    } else {
        if ((*st = dnnl_primitive_desc_create(&hint, &bd, NULL, c->engine, NULL))) return -1;
        *st = dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &x, &x,
                                                          eps, flags);
        if (!*st) *st = dnnl_primitive_desc_create(&pd, &bd, NULL, c->engine, hint);
        dnnl_primitive_desc_destroy(hint);
        if (*st) return -1;
    }
    if (dnnl_op_init(c, op, pd, st)) return -1;
    /* argument order = the pointer order of the entries below */
    int stats_dir = kind == DK_BN_FWD_TRAIN ? DA_OUT : DA_IN;
    if (dnnl_op_arg(c, op, DNNL_ARG_SRC, DA_IN, &x, st) || dnnl_op_arg(c, op, DNNL_ARG_SCALE, DA_IN, &v, st) ||
        dnnl_op_arg(c, op, DNNL_ARG_MEAN, stats_dir, &v, st) || dnnl_op_arg(c, op, DNNL_ARG_VARIANCE, stats_dir, &v, st))
        return -1;
    if (kind == DK_BN_FWD_TRAIN || kind == DK_BN_FWD_EVAL)
        return dnnl_op_arg(c, op, DNNL_ARG_SHIFT, DA_IN, &v, st) || dnnl_op_arg(c, op, DNNL_ARG_DST, DA_OUT, &x, st)
                   ? -1 : 0;
    if (dnnl_op_arg(c, op, DNNL_ARG_DIFF_DST, DA_IN, &x, st) || dnnl_op_arg(c, op, DNNL_ARG_DIFF_SRC, DA_ACC, &x, st))
        return -1;
    /* with use_shift the backward wants a shift argument too (its values are not used) */
    return dnnl_op_arg(c, op, DNNL_ARG_DIFF_SCALE, DA_ACC, &v, st) ||
                   dnnl_op_arg(c, op, DNNL_ARG_DIFF_SHIFT, DA_ACC, &v, st) ||
                   dnnl_op_arg(c, op, DNNL_ARG_SHIFT, DA_IN, &v, st)
               ? -1 : 0;
}

static DnnlOp *bn_op(DnnlCtx *c, const ActDesc *a, int kind, float eps) {
    int32_t key[DNNL_MAX_KEY];
    int n = dnnl_key_begin(key, kind);
    int32_t eps_bits;
    memcpy(&eps_bits, &eps, sizeof eps_bits);
    key[n++] = a->N, key[n++] = a->C, key[n++] = a->HW, key[n++] = eps_bits, key[n++] = a->f.nhwc;
    DnnlCacheEntry *e = dnnl_cache_find(c, key, n);
    if (e) return e->obj;
    DnnlOp *op = calloc(1, sizeof *op);
    dnnl_status_t st = dnnl_success;
    if (op && bn_build(c, a, kind, eps, op, &st) != 0) {
        op_free_heap(op);
        op = NULL;
    }
    e = dnnl_cache_add(c, key, n, op, op_free_heap);
    return e ? e->obj : NULL;
}

/* The scratch for op's buffers followed by nv aligned [C] vectors (vec[0..nv)). */
static char *bn_scratch(DnnlCtx *c, const DnnlOp *op, int C, int nv, float **vec) {
    size_t vb = ((size_t)C * sizeof(float) + DNNL_ALIGN - 1) / DNNL_ALIGN * DNNL_ALIGN;
    char *s = dnnl_scratch(c, op->ws_bytes + (size_t)nv * vb);
    if (!s) return NULL;
    for (int i = 0; i < nv; i++) vec[i] = (float *)(s + op->ws_bytes + (size_t)i * vb);
    return s;
}

static void dnnl_bn_forward_train(const Backend *be, const ActDesc *d, const void *x, const float *gamma,
                                  const float *beta, float momentum, float eps, float *rm, float *rv, void *y,
                                  float *save_mean, float *save_rstd) {
    const Backend *ref = dnnl_ref();
    DnnlCtx *c = dnnl_ctx(be);
    DnnlOp *op = act_on_dnnl(d) && gamma && beta ? bn_op(c, d, DK_BN_FWD_TRAIN, eps) : NULL;
    float *v[2];
    char *s = op ? bn_scratch(c, op, d->C, 2, v) : NULL;
    if (!s) {
        dnnl_ctx(be)->fallbacks++;
        ref->batchnorm_forward_train(ref, d, x, gamma, beta, momentum, eps, rm, rv, y, save_mean, save_rstd);
        return;
    }
    float *mean = save_mean ? save_mean : v[0], *var = v[1];
    void *p[6] = {(void *)x, (void *)gamma, mean, var, (void *)beta, y};
    if (dnnl_op_run(c, op, p, s)) return;
    const double M = (double)d->N * d->HW;
    for (int ch = 0; ch < d->C; ch++) {
        double vr = var[ch];
        if (save_rstd) save_rstd[ch] = (float)(1.0 / sqrt(vr + eps));
        if (rm) rm[ch] = (float)((1.0 - momentum) * rm[ch] + momentum * (double)mean[ch]);
        if (rv) rv[ch] = (float)((1.0 - momentum) * rv[ch] + momentum * (M > 1 ? vr * M / (M - 1) : vr));
    }
}

static void dnnl_bn_backward_train(const Backend *be, const ActDesc *d, const void *x, const float *gamma,
                                   const float *save_mean, const float *save_rstd, const void *dy, void *dx,
                                   float *dgamma, float *dbeta) {
    const Backend *ref = dnnl_ref();
    DnnlCtx *c = dnnl_ctx(be);
    /* any eps works here: oneDNN gets var = 1/rstd^2 - eps and adds eps back */
    const float eps = 1e-5f;
    DnnlOp *op = act_on_dnnl(d) && gamma && dx ? bn_op(c, d, DK_BN_BWD_TRAIN, eps) : NULL;
    float *v[3];
    char *s = op ? bn_scratch(c, op, d->C, 3, v) : NULL;
    if (!s) {
        dnnl_ctx(be)->fallbacks++;
        ref->batchnorm_backward_train(ref, d, x, gamma, save_mean, save_rstd, dy, dx, dgamma, dbeta);
        return;
    }
    float *var = v[0];
    for (int ch = 0; ch < d->C; ch++) {
        double r = save_rstd[ch];
        var[ch] = (float)(1.0 / (r * r) - eps);
    }
    /* a gradient not asked for accumulates into a dummy */
    void *p[9] = {(void *)x, (void *)gamma, (void *)save_mean, var, (void *)dy, dx,
                  dgamma ? dgamma : v[1], dbeta ? dbeta : v[2], (void *)gamma};
    dnnl_op_run(c, op, p, s);
}

static void dnnl_bn_forward_eval(const Backend *be, const ActDesc *d, const void *x, const float *gamma,
                                 const float *beta, const float *rm, const float *rv, float eps, void *y) {
    const Backend *ref = dnnl_ref();
    DnnlCtx *c = dnnl_ctx(be);
    DnnlOp *op = act_on_dnnl(d) && gamma && beta ? bn_op(c, d, DK_BN_FWD_EVAL, eps) : NULL;
    char *s = op ? dnnl_scratch(c, op->ws_bytes) : NULL;
    if (!s) {
        dnnl_ctx(be)->fallbacks++;
        ref->batchnorm_forward_eval(ref, d, x, gamma, beta, rm, rv, eps, y);
        return;
    }
    void *p[6] = {(void *)x, (void *)gamma, (void *)rm, (void *)rv, (void *)beta, y};
    dnnl_op_run(c, op, p, s);
}

static void dnnl_bn_backward_eval(const Backend *be, const ActDesc *d, const void *x, const float *gamma,
                                  const float *rm, const float *rv, float eps, const void *dy, void *dx,
                                  float *dgamma, float *dbeta) {
    const Backend *ref = dnnl_ref();
    DnnlCtx *c = dnnl_ctx(be);
    DnnlOp *op = act_on_dnnl(d) && gamma && dx ? bn_op(c, d, DK_BN_BWD_EVAL, eps) : NULL;
    float *v[2];
    char *s = op ? bn_scratch(c, op, d->C, 2, v) : NULL;
    if (!s) {
        dnnl_ctx(be)->fallbacks++;
        ref->batchnorm_backward_eval(ref, d, x, gamma, rm, rv, eps, dy, dx, dgamma, dbeta);
        return;
    }
    void *p[9] = {(void *)x, (void *)gamma, (void *)rm, (void *)rv, (void *)dy, dx,
                  dgamma ? dgamma : v[0], dbeta ? dbeta : v[1], (void *)gamma};
    dnnl_op_run(c, op, p, s);
}

void dnnl_bn_install(Backend *t) {
    t->batchnorm_forward_train = dnnl_bn_forward_train;
    t->batchnorm_backward_train = dnnl_bn_backward_train;
    t->batchnorm_forward_eval = dnnl_bn_forward_eval;
    t->batchnorm_backward_eval = dnnl_bn_backward_eval;
}

#endif
