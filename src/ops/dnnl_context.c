/* dnnl_context.c: the oneDNN CPU backend's context (backend_dnnl.h): engine, stream,
 * per-shape cache, scratch, first failure; DnnlOp (a primitive bound to the caller's
 * memory through reorders); and the table: the reference table with the image entries of
 * dnnl_conv.c, dnnl_bn.c and dnnl_pool.c installed over it. A build without
 * oneDNN keeps only a create that says so. */
#include "ops/backend_dnnl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vqa_version.h"

#if !VQA_HAVE_ONEDNN

int backend_cpu_dnnl_built(void) { return 0; }
const Backend *backend_cpu_dnnl_create(Err *e) {
    err_set(e, "this build has no oneDNN (install libdnnl-dev and rebuild with -DVQA_ONEDNN=AUTO or ON): "
               "only the reference CPU kernels are available");
    return NULL;
}
void backend_cpu_dnnl_destroy(const Backend *be) { (void)be; }
int backend_is_cpu_dnnl(const Backend *be) { return (void)be, 0; }
const char *backend_cpu_dnnl_version(char *buf, size_t n) {
    snprintf(buf, n, "not built");
    return buf;
}
void backend_cpu_dnnl_set_conv_blocked(const Backend *be, int blocked) { (void)be, (void)blocked; }
long backend_cpu_dnnl_fallbacks(const Backend *be) { return (void)be, 0; }

#else

#include <omp.h>

#include "ops/desc_cache.h" /* dc_hash */
#include "ops/dnnl_internal.h"

int backend_cpu_dnnl_built(void) { return 1; }

const char *dnnl_status_str(dnnl_status_t s) {
    switch (s) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "unimplemented";
    case dnnl_iterator_ends: return "iterator ends";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "unknown status";
    }
}

int dnnl_check(DnnlCtx *c, dnnl_status_t s, const char *call, const char *file, int line) {
    if (s == dnnl_success) return 0;
    if (!c->failed) {
        c->failed = 1;
        err_set(&c->err, "%s:%d: %s: oneDNN %s (%d)", file, line, call, dnnl_status_str(s), (int)s);
    }
    return -1;
}

/* ---- cache ---- */

int dnnl_key_begin(int32_t key[DNNL_MAX_KEY], int kind) {
    key[0] = kind;
    key[1] = omp_get_max_threads();
    return 2;
}

DnnlCacheEntry *dnnl_cache_find(DnnlCtx *c, const int32_t *key, int n) {
    uint64_t h = dc_hash(key, n);
    for (int i = 0; i < c->n_cache; i++) {
        DnnlCacheEntry *e = &c->cache[i];
        if (e->hash == h && e->n == n && !memcmp(e->key, key, sizeof(int32_t) * (size_t)n)) return e;
    }
    return NULL;
}

DnnlCacheEntry *dnnl_cache_add(DnnlCtx *c, const int32_t *key, int n, void *obj, void (*free_obj)(void *)) {
    if (n > DNNL_MAX_KEY) goto fail;
    if (c->n_cache == c->cap_cache) {
        int cap = c->cap_cache ? 2 * c->cap_cache : 32;
        DnnlCacheEntry *ne = realloc(c->cache, sizeof *ne * (size_t)cap);
        if (!ne) goto fail;
        c->cache = ne, c->cap_cache = cap;
    }
    DnnlCacheEntry *e = &c->cache[c->n_cache++];
    memset(e, 0, sizeof *e);
    e->hash = dc_hash(key, n);
    e->n = n;
    memcpy(e->key, key, sizeof(int32_t) * (size_t)n);
    e->obj = obj;
    e->free_obj = free_obj;
    return e;
fail:
    if (obj && free_obj) free_obj(obj);
    dnnl_check(c, dnnl_out_of_memory, "cache entry", __FILE__, __LINE__);
    return NULL;
}

void *dnnl_scratch(DnnlCtx *c, size_t bytes) {
    if (bytes <= c->scratch_bytes && c->scratch) return c->scratch;
    free(c->scratch);
    c->scratch = NULL, c->scratch_bytes = 0;
    size_t n = (bytes + DNNL_ALIGN - 1) / DNNL_ALIGN * DNNL_ALIGN;
    if (n == 0) n = DNNL_ALIGN;
    if (posix_memalign(&c->scratch, DNNL_ALIGN, n) != 0) {
        c->scratch = NULL;
        dnnl_check(c, dnnl_out_of_memory, "scratch buffer", __FILE__, __LINE__);
        return NULL;
    }
    c->scratch_bytes = n;
    return c->scratch;
}

/* ---- memory descriptors ---- */

dnnl_status_t dnnl_md_act(dnnl_memory_desc_t *md, int N, int C, int H, int W, int nhwc) {
    dnnl_dims_t d = {N, C, H, W};
    return dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, nhwc ? dnnl_nhwc : dnnl_nchw);
}

dnnl_status_t dnnl_md_1d(dnnl_memory_desc_t *md, int64_t n) {
    dnnl_dims_t d = {n};
    return dnnl_memory_desc_init_by_tag(md, 1, d, dnnl_f32, dnnl_a);
}

/* ---- DnnlOp ---- */

int dnnl_op_init(DnnlCtx *c, DnnlOp *op, dnnl_primitive_desc_t pd, dnnl_status_t *st) {
    (void)c;
    memset(op, 0, sizeof *op);
    op->pd = pd;
    *st = dnnl_primitive_create(&op->prim, pd);
    return *st == dnnl_success ? 0 : -1;
}

/* A reorder from src to dst; with a sum post-op (dst = src + dst) when acc. */
static dnnl_status_t make_reorder(DnnlCtx *c, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst, int acc,
                                  dnnl_primitive_t *out) {
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_status_t s = dnnl_success;
    if (acc) {
        if ((s = dnnl_primitive_attr_create(&attr)) != dnnl_success) goto done;
        if ((s = dnnl_post_ops_create(&po)) != dnnl_success) goto done;
        if ((s = dnnl_post_ops_append_sum(po, 1.0f)) != dnnl_success) goto done;
        if ((s = dnnl_primitive_attr_set_post_ops(attr, po)) != dnnl_success) goto done;
    }
    if ((s = dnnl_reorder_primitive_desc_create(&rpd, src, c->engine, dst, c->engine, attr)) != dnnl_success) goto done;
    s = dnnl_primitive_create(out, rpd);
done:
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return s;
}

int dnnl_op_arg(DnnlCtx *c, DnnlOp *op, int arg, int dir, const dnnl_memory_desc_t *user_md, dnnl_status_t *st) {
    if (op->nargs == DNNL_MAX_ARGS) return *st = dnnl_invalid_arguments, -1;
    const dnnl_memory_desc_t *pmd = dnnl_primitive_desc_query_md(op->pd, dnnl_query_exec_arg_md, arg);
    if (!pmd || pmd->ndims == 0) return *st = dnnl_invalid_arguments, -1;
    DnnlArg *a = &op->a[op->nargs++];
    memset(a, 0, sizeof *a);
    a->arg = arg, a->dir = dir;
    if ((*st = dnnl_memory_create(&a->prim_mem, pmd, c->engine, DNNL_MEMORY_NONE)) != dnnl_success) return -1;
    if (dir != DA_ACC && dnnl_memory_desc_equal(pmd, user_md)) return *st = dnnl_success, 0; /* bound directly */
    if ((*st = dnnl_memory_create(&a->user_mem, user_md, c->engine, DNNL_MEMORY_NONE)) != dnnl_success) return -1;
    if (dir == DA_IN) *st = make_reorder(c, user_md, pmd, 0, &a->reorder);
    else *st = make_reorder(c, pmd, user_md, dir == DA_ACC, &a->reorder);
    if (*st != dnnl_success) return -1;
    a->off = op->ws_bytes;
    op->ws_bytes += (dnnl_memory_desc_get_size(pmd) + DNNL_ALIGN - 1) / DNNL_ALIGN * DNNL_ALIGN;
    return 0;
}

static int run_reorder(DnnlCtx *c, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return DNNL_CHECK(c, dnnl_primitive_execute(r, c->stream, 2, args));
}

int dnnl_op_run(DnnlCtx *c, DnnlOp *op, void *const *ptr, void *ws) {
    dnnl_exec_arg_t args[DNNL_MAX_ARGS];
    for (int i = 0; i < op->nargs; i++) {
        DnnlArg *a = &op->a[i];
        if (!a->reorder) {
            if (DNNL_CHECK(c, dnnl_memory_set_data_handle_v2(a->prim_mem, ptr[i], c->stream))) return -1;
        } else {
            if (DNNL_CHECK(c, dnnl_memory_set_data_handle_v2(a->prim_mem, (char *)ws + a->off, c->stream)) ||
                DNNL_CHECK(c, dnnl_memory_set_data_handle_v2(a->user_mem, ptr[i], c->stream)))
                return -1;
            if (a->dir == DA_IN && run_reorder(c, a->reorder, a->user_mem, a->prim_mem)) return -1;
        }
        args[i].arg = a->arg;
        args[i].memory = a->prim_mem;
    }
    if (DNNL_CHECK(c, dnnl_primitive_execute(op->prim, c->stream, op->nargs, args))) return -1;
    for (int i = 0; i < op->nargs; i++) {
        DnnlArg *a = &op->a[i];
        if (a->reorder && a->dir != DA_IN && run_reorder(c, a->reorder, a->prim_mem, a->user_mem)) return -1;
    }
    return DNNL_CHECK(c, dnnl_stream_wait(c->stream));
}

void dnnl_op_free(DnnlOp *op) {
    for (int i = 0; i < op->nargs; i++) {
        DnnlArg *a = &op->a[i];
        if (a->reorder) dnnl_primitive_destroy(a->reorder);
        if (a->user_mem) dnnl_memory_destroy(a->user_mem);
        if (a->prim_mem) dnnl_memory_destroy(a->prim_mem);
    }
    if (op->prim) dnnl_primitive_destroy(op->prim);
    if (op->pd) dnnl_primitive_desc_destroy(op->pd);
    memset(op, 0, sizeof *op);
}

void dnnl_add_into(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n >= 16384)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

/* ---- the backend ---- */

static int dnnl_error(const Backend *be, Err *e) {
    DnnlCtx *c = dnnl_ctx(be);
    if (!c->failed) return 0;
    if (e) *e = c->err;
    c->failed = 0;
    err_clear(&c->err);
    return -1;
}

static void dnnl_synchronize(const Backend *be) { dnnl_stream_wait(dnnl_ctx(be)->stream); }

const Backend *backend_cpu_dnnl_create(Err *e) {
    DnnlCtx *c = calloc(1, sizeof *c);
    if (!c) return err_set(e, "oneDNN backend: out of memory"), NULL;
    dnnl_status_t s = dnnl_engine_create(&c->engine, dnnl_cpu, 0);
    if (s != dnnl_success) {
        err_set(e, "oneDNN backend: dnnl_engine_create(cpu): %s", dnnl_status_str(s));
        free(c);
        return NULL;
    }
    if ((s = dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags)) != dnnl_success) {
        err_set(e, "oneDNN backend: dnnl_stream_create: %s", dnnl_status_str(s));
        dnnl_engine_destroy(c->engine);
        free(c);
        return NULL;
    }
    c->conv_blocked = 1;
    c->table = *backend_cpu();
    c->table.name = "cpu-onednn";
    c->table.ctx = c;
    c->table.error = dnnl_error;
    c->table.synchronize = dnnl_synchronize;
    dnnl_conv_install(&c->table);
    dnnl_bn_install(&c->table);
    dnnl_pool_install(&c->table);
    return &c->table;
}

int backend_is_cpu_dnnl(const Backend *be) { return be && be->error == dnnl_error; }

void backend_cpu_dnnl_destroy(const Backend *be) {
    if (!be) return;
    DnnlCtx *c = dnnl_ctx(be);
    for (int i = 0; i < c->n_cache; i++)
        if (c->cache[i].obj && c->cache[i].free_obj) c->cache[i].free_obj(c->cache[i].obj);
    free(c->cache);
    free(c->scratch);
    dnnl_stream_destroy(c->stream);
    dnnl_engine_destroy(c->engine);
    free(c);
}

const char *backend_cpu_dnnl_version(char *buf, size_t n) {
    const dnnl_version_t *v = dnnl_version();
    const char *rt = v->cpu_runtime == DNNL_RUNTIME_OMP   ? "OpenMP"
                     : v->cpu_runtime == DNNL_RUNTIME_TBB ? "TBB"
                     : v->cpu_runtime == DNNL_RUNTIME_SEQ ? "sequential"
                                                          : "other runtime";
    snprintf(buf, n, "oneDNN %d.%d.%d (%s)", v->major, v->minor, v->patch, rt);
    return buf;
}

void backend_cpu_dnnl_set_conv_blocked(const Backend *be, int blocked) { dnnl_ctx(be)->conv_blocked = blocked != 0; }
long backend_cpu_dnnl_fallbacks(const Backend *be) { return dnnl_ctx(be)->fallbacks; }

#endif
