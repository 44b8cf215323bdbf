/* pretend_device.h: for tests only — the CPU backend dressed as a device, so that the
 * trainer's device path (the code that runs `device: cuda`) runs in CI on a machine
 * without a GPU.
 *
 *   const Backend *be = pd_backend();   (device DEV_CUDA, name "pretend-device")
 *
 * What makes it a device for the code under test: each allocation is a shared-memory
 * object mapped TWICE — the address alloc returns (the "device" view) is PROT_NONE for
 * ever, and a second, private read-write view is what the CPU ops work on. Every entry of
 * the table translates its tensor arguments from the device view to the working view
 * before calling the CPU backend's entry. So:
 *  - a host read or write of device memory outside the Backend entries (what the device
 *    path must never do) is a SIGSEGV, reported with its address by the handler that
 *    pd_backend() installs; the test ends with exit status 4;
 *  - a host pointer handed to an entry as a tensor (e.g. the loader's batch) is counted in
 *    pd_violations() and named on stderr (it is passed through unchanged);
 *  - copy_h2d / copy_d2h / copy_d2d / copy_h2d_async check which side is which;
 *  - upload_async (the trainer's batch prefetch) is DEFERRED like a copy queue that has not
 *    run yet: the bytes land only when an event recorded after it is waited on
 *    (event_wait on BE_COMPUTE or BE_HOST). An entry that reads a buffer whose upload is
 *    still pending is a violation (and reads stale bytes, so the numbers go wrong too); an
 *    upload into a buffer that a compute entry used after the copy queue's last wait on a
 *    compute event is a violation (the copy could overwrite what that op still reads); a
 *    source that changed between the upload and its completion (a pinned slot handed back
 *    to the loader too early) is a violation.
 * The arithmetic is the CPU backend's, unchanged, so a run through it gives the CPU run's
 * numbers bit for bit. The wrappers below were written by a script from the entries of
 * src/ops/backend.h (one per compute entry; tensor arguments are the float / int32_t /
 * uint8_t / void pointers; the ActDesc / ConvShape / PoolShape / AdamwSegment descriptors
 * are host arguments). An entry added to the table without a wrapper here gets
 * untranslated device-view pointers and crashes the test, which is the reminder to add one.
 *
 * Test-program state (a test may have globals; the library may not). */
#ifndef VQA_TEST_PRETEND_DEVICE_H
#define VQA_TEST_PRETEND_DEVICE_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ops/backend.h"

#define PD_MAX_REGIONS 512
#define PD_MAX_PENDING 16

/* An event: how far the copy queue (uploads queued) or the compute queue (entry calls;
 * compute is synchronous here, so everything called is done) had got when recorded. */
typedef struct PdEvent {
    int on_copy;       /* recorded on BE_COPY (else BE_COMPUTE; neither: never recorded) */
    int recorded;
    long copy_seq;     /* uploads queued before the record */
    long calls;        /* entry calls before the record */
} PdEvent;

static struct {
    const Backend *cpu;
    Backend table[3];        /* per precision: fp32, bf16, fp16 */
    struct {
        unsigned char *dev;  /* what alloc returned: PROT_NONE */
        unsigned char *rw;   /* the same pages, read-write, used inside entries */
        size_t len;
        long last_use;       /* the entry call that last translated a pointer into it */
    } r[PD_MAX_REGIONS];
    struct {
        void *dst;
        const void *src;
        size_t bytes;
        long seq;            /* 1, 2, ... in queue order */
        long calls;          /* pd.calls when queued */
        uint64_t sum;        /* FNV-1a of src when queued */
    } pend[PD_MAX_PENDING];
    int n_pend;
    long copy_seq;           /* uploads queued so far */
    long copy_fence;         /* entry calls the copy queue has waited for (event_wait BE_COPY) */
    long uploads, uploads_overlapped; /* uploads; those with entry calls between queue and landing */
    int n, max_n;
    long violations;         /* tensor arguments that were not device memory */
    long calls;              /* entries called */
    size_t bytes_h2d, bytes_d2h;
} pd;

static int pd_find(const void *p) {
    const unsigned char *c = p;
    for (int i = 0; i < pd.n; i++)
        if (c >= pd.r[i].dev && c < pd.r[i].dev + pd.r[i].len) return i;
    return -1;
}

static void pd_fault(const char *entry, const char *what, const void *p);

/* An entry may not read a buffer whose deferred upload has not landed. */
static void pd_check_pending(const char *entry, const char *arg, int region) {
    for (int k = 0; k < pd.n_pend; k++)
        if (pd_find(pd.pend[k].dst) == region) {
            char what[160];
            snprintf(what, sizeof what, "%s is read before its upload was waited for", arg);
            pd_fault(entry, what, pd.pend[k].dst);
            return;
        }
}

/* A misuse of the table: counted in pd_violations(), the first 10 named on stderr. */
static void pd_fault(const char *entry, const char *what, const void *p) {
    pd.violations++;
    if (pd.violations <= 10) fprintf(stderr, "pretend_device: %s: %s (%p)\n", entry, what, p);
}
static void pd_violation(const char *entry, const char *what, const void *p) {
    char m[200];
    snprintf(m, sizeof m, "%s is not device memory", what);
    pd_fault(entry, m, p);
}

/* The working address of device pointer p (NULL stays NULL; a host pointer is a
 * violation and passes through). */
static void *pd_t(const char *entry, const char *arg, const void *p) {
    if (!p) return NULL;
    int i = pd_find(p);
    if (i < 0) {
        pd_violation(entry, arg, p);
        return (void *)p;
    }
    pd.r[i].last_use = pd.calls;
    if (pd.n_pend) pd_check_pending(entry, arg, i);
    return pd.r[i].rw + ((const unsigned char *)p - pd.r[i].dev);
}

/* ---- memory ---- */

static void *pd_alloc(const Backend *be, size_t bytes) {
    if (pd.n == PD_MAX_REGIONS) return NULL;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), len = ((bytes ? bytes : 1) + pg - 1) / pg * pg;
    char name[] = "/tmp/pretend_device.XXXXXX";
    int fd = mkstemp(name);
    if (fd < 0) return NULL;
    unlink(name);
    void *dev = MAP_FAILED, *rw = MAP_FAILED;
    if (ftruncate(fd, (off_t)len) == 0) {
        dev = mmap(NULL, len, PROT_NONE, MAP_SHARED, fd, 0);
        rw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    close(fd);
    if (dev == MAP_FAILED || rw == MAP_FAILED) {
        if (dev != MAP_FAILED) munmap(dev, len);
        if (rw != MAP_FAILED) munmap(rw, len);
        return NULL;
    }
    pd.r[pd.n].dev = dev;
    pd.r[pd.n].rw = rw;
    pd.r[pd.n].len = len;
    pd.r[pd.n].last_use = 0; /* new memory: no op has used it */
    if (++pd.n > pd.max_n) pd.max_n = pd.n;
    return dev;
}
static void pd_free(const Backend *be, void *p) {
    if (!p) return;
    int i = pd_find(p);
    if (i < 0 || pd.r[i].dev != p) {
        pd_violation("free", "pointer", p);
        return;
    }
    /* an upload still pending into a freed buffer never lands */
    for (int k = 0; k < pd.n_pend; k++)
        if (pd_find(pd.pend[k].dst) == i) pd.pend[k--] = pd.pend[--pd.n_pend];
    munmap(pd.r[i].dev, pd.r[i].len);
    munmap(pd.r[i].rw, pd.r[i].len);
    pd.r[i] = pd.r[--pd.n];
}
static void pd_memset_zero(const Backend *be, void *p, size_t bytes) {
    pd.calls++;
    if (bytes) memset(pd_t("memset_zero", "p", p), 0, bytes);
}
static void pd_copy(const char *entry, void *dst, const void *src, size_t bytes, int dst_dev, int src_dev) {
    pd.calls++;
    if (!bytes) return;
    if ((pd_find(dst) >= 0) != dst_dev) pd_violation(entry, dst_dev ? "destination (host)" : "destination (device)", dst);
    if ((pd_find(src) >= 0) != src_dev) pd_violation(entry, src_dev ? "source (host)" : "source (device)", src);
    memmove(dst_dev ? pd_t(entry, "dst", dst) : dst, src_dev ? pd_t(entry, "src", src) : src, bytes);
}
static void pd_copy_h2d(const Backend *be, void *dst, const void *src, size_t bytes) {
    pd.bytes_h2d += bytes;
    pd_copy("copy_h2d", dst, src, bytes, 1, 0);
}
static void pd_copy_h2d_async(const Backend *be, void *dst, const void *src, size_t bytes) {
    pd.bytes_h2d += bytes;
    pd_copy("copy_h2d_async", dst, src, bytes, 1, 0);
}
static void pd_copy_d2h(const Backend *be, void *dst, const void *src, size_t bytes) {
    pd.bytes_d2h += bytes;
    pd_copy("copy_d2h", dst, src, bytes, 0, 1);
}
static void pd_copy_d2d(const Backend *be, void *dst, const void *src, size_t bytes) { pd_copy("copy_d2d", dst, src, bytes, 1, 1); }

/* ---- the copy queue and events (deferred uploads) ---- */

static uint64_t pd_fnv(const void *p, size_t n) {
    const unsigned char *c = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 1099511628211ull;
    return h;
}
static void *pd_event_create(const Backend *be) { return calloc(1, sizeof(PdEvent)); }
static void pd_event_destroy(const Backend *be, void *ev) { free(ev); }
static void pd_event_record(const Backend *be, void *ev, BeQueue q) {
    PdEvent *e = ev;
    if (!e) return;
    e->recorded = 1;
    e->on_copy = q == BE_COPY;
    e->copy_seq = pd.copy_seq;
    e->calls = pd.calls;
}
/* Lands the uploads queued up to seq, in order (the copy queue runs in order). */
static void pd_land(long seq) {
    for (int k = 0; k < pd.n_pend;) {
        if (pd.pend[k].seq > seq) {
            k++;
            continue;
        }
        if (pd_fnv(pd.pend[k].src, pd.pend[k].bytes) != pd.pend[k].sum)
            pd_fault("upload_async", "the source (host slot) changed before the upload completed", pd.pend[k].src);
        if (pd.calls > pd.pend[k].calls) pd.uploads_overlapped++;
        int i = pd_find(pd.pend[k].dst);
        memcpy(pd.r[i].rw + ((unsigned char *)pd.pend[k].dst - pd.r[i].dev), pd.pend[k].src, pd.pend[k].bytes);
        pd.pend[k] = pd.pend[--pd.n_pend];
    }
}
static void pd_event_wait(const Backend *be, void *ev, BeQueue q) {
    PdEvent *e = ev;
    if (!e || !e->recorded) return;
    if (e->on_copy && q != BE_COPY) pd_land(e->copy_seq);
    if (!e->on_copy && q == BE_COPY && e->calls > pd.copy_fence) pd.copy_fence = e->calls;
}
static void pd_upload_async(const Backend *be, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    pd.bytes_h2d += bytes;
    int i = pd_find(dst);
    if (i < 0 || pd_find(src) >= 0) {
        pd_violation("upload_async", i < 0 ? "destination (host)" : "source (device)", i < 0 ? dst : src);
        return;
    }
    if (pd.r[i].last_use > pd.copy_fence) {
        char what[160];
        snprintf(what, sizeof what, "the destination was used by entry call %ld, after the last compute event the "
                 "copy queue waited for (call %ld)", pd.r[i].last_use, pd.copy_fence);
        pd_fault("upload_async", what, dst);
    }
    if (pd.n_pend == PD_MAX_PENDING) {
        pd_fault("upload_async", "too many pending uploads (never waited for?)", dst);
        return;
    }
    pd.uploads++;
    int k = pd.n_pend++;
    pd.pend[k].dst = dst;
    pd.pend[k].src = src;
    pd.pend[k].bytes = bytes;
    pd.pend[k].seq = ++pd.copy_seq;
    pd.pend[k].calls = pd.calls;
    pd.pend[k].sum = pd_fnv(src, bytes);
}

/* ---- compute entries (written by a script from src/ops/backend.h) ---- */

#define PD_ENTRY(name) \
    const char *pd_entry = name; \
    pd.calls++
#define T(p) pd_t(pd_entry, #p, p)
static void pd_gemm(const Backend *be, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    PD_ENTRY("gemm");
    pd.cpu->gemm(pd.cpu, transA, transB, M, N, K, alpha, T(A), lda, T(B), ldb, beta, T(C), ldc);
}
static void pd_conv2d_forward(const Backend *be, const ConvShape *s, const void *x, const void *w, const float *b, void *y, float *ws) {
    PD_ENTRY("conv2d_forward");
    pd.cpu->conv2d_forward(pd.cpu, s, T(x), T(w), T(b), T(y), T(ws));
}
static void pd_conv2d_backward(const Backend *be, const ConvShape *s, const void *x, const void *w, const void *dy, void *dx, void *dw, float *db, float *ws) {
    PD_ENTRY("conv2d_backward");
    pd.cpu->conv2d_backward(pd.cpu, s, T(x), T(w), T(dy), T(dx), T(dw), T(db), T(ws));
}
static void pd_conv_weight_prep(const Backend *be, const ConvShape *s, const float *w, void *wp) {
    PD_ENTRY("conv_weight_prep");
    pd.cpu->conv_weight_prep(pd.cpu, s, T(w), T(wp));
}
static void pd_conv_weight_grad_add(const Backend *be, const ConvShape *s, const void *dwp, float *dw) {
    PD_ENTRY("conv_weight_grad_add");
    pd.cpu->conv_weight_grad_add(pd.cpu, s, T(dwp), T(dw));
}
static void pd_batchnorm_forward_train(const Backend *be, const ActDesc *d, const void *x, const float *gamma, const float *beta, float momentum, float eps, float *running_mean, float *running_var, void *y, float *save_mean, float *save_rstd) {
    PD_ENTRY("batchnorm_forward_train");
    pd.cpu->batchnorm_forward_train(pd.cpu, d, T(x), T(gamma), T(beta), momentum, eps, T(running_mean), T(running_var), T(y), T(save_mean), T(save_rstd));
}
static void pd_batchnorm_backward_train(const Backend *be, const ActDesc *d, const void *x, const float *gamma, const float *save_mean, const float *save_rstd, const void *dy, void *dx, float *dgamma, float *dbeta) {
    PD_ENTRY("batchnorm_backward_train");
    pd.cpu->batchnorm_backward_train(pd.cpu, d, T(x), T(gamma), T(save_mean), T(save_rstd), T(dy), T(dx), T(dgamma), T(dbeta));
}
static void pd_batchnorm_forward_eval(const Backend *be, const ActDesc *d, const void *x, const float *gamma, const float *beta, const float *running_mean, const float *running_var, float eps, void *y) {
    PD_ENTRY("batchnorm_forward_eval");
    pd.cpu->batchnorm_forward_eval(pd.cpu, d, T(x), T(gamma), T(beta), T(running_mean), T(running_var), eps, T(y));
}
static void pd_batchnorm_backward_eval(const Backend *be, const ActDesc *d, const void *x, const float *gamma, const float *running_mean, const float *running_var, float eps, const void *dy, void *dx, float *dgamma, float *dbeta) {
    PD_ENTRY("batchnorm_backward_eval");
    pd.cpu->batchnorm_backward_eval(pd.cpu, d, T(x), T(gamma), T(running_mean), T(running_var), eps, T(dy), T(dx), T(dgamma), T(dbeta));
}
static void pd_act_import(const Backend *be, const ActDesc *d, const float *x, void *y) {
    PD_ENTRY("act_import");
    pd.cpu->act_import(pd.cpu, d, T(x), T(y));
}
static void pd_act_import_add(const Backend *be, const ActDesc *d, const float *x, void *y) {
    PD_ENTRY("act_import_add");
    pd.cpu->act_import_add(pd.cpu, d, T(x), T(y));
}
static void pd_act_export(const Backend *be, const ActDesc *d, const void *x, float *y) {
    PD_ENTRY("act_export");
    pd.cpu->act_export(pd.cpu, d, T(x), T(y));
}
static void pd_relu_forward(const Backend *be, DType dt, size_t n, const void *x, void *y) {
    PD_ENTRY("relu_forward");
    pd.cpu->relu_forward(pd.cpu, dt, n, T(x), T(y));
}
static void pd_relu_backward(const Backend *be, DType dt, size_t n, const void *y, const void *dy, void *dx) {
    PD_ENTRY("relu_backward");
    pd.cpu->relu_backward(pd.cpu, dt, n, T(y), T(dy), T(dx));
}
static void pd_add_forward(const Backend *be, DType dt, size_t n, const void *a, const void *b, void *y) {
    PD_ENTRY("add_forward");
    pd.cpu->add_forward(pd.cpu, dt, n, T(a), T(b), T(y));
}
static void pd_add_backward(const Backend *be, size_t n, const float *dy, float *da, float *db) {
    PD_ENTRY("add_backward");
    pd.cpu->add_backward(pd.cpu, n, T(dy), T(da), T(db));
}
static void pd_gelu_forward(const Backend *be, size_t n, const float *x, float *y) {
    PD_ENTRY("gelu_forward");
    pd.cpu->gelu_forward(pd.cpu, n, T(x), T(y));
}
static void pd_gelu_backward(const Backend *be, size_t n, const float *x, const float *dy, float *dx) {
    PD_ENTRY("gelu_backward");
    pd.cpu->gelu_backward(pd.cpu, n, T(x), T(dy), T(dx));
}
static void pd_tanh_forward(const Backend *be, size_t n, const float *x, float *y) {
    PD_ENTRY("tanh_forward");
    pd.cpu->tanh_forward(pd.cpu, n, T(x), T(y));
}
static void pd_tanh_backward(const Backend *be, size_t n, const float *y, const float *dy, float *dx) {
    PD_ENTRY("tanh_backward");
    pd.cpu->tanh_backward(pd.cpu, n, T(y), T(dy), T(dx));
}
static void pd_mul_forward(const Backend *be, size_t n, const float *a, const float *b, float *y) {
    PD_ENTRY("mul_forward");
    pd.cpu->mul_forward(pd.cpu, n, T(a), T(b), T(y));
}
static void pd_mul_backward(const Backend *be, size_t n, const float *a, const float *b, const float *dy, float *da, float *db) {
    PD_ENTRY("mul_backward");
    pd.cpu->mul_backward(pd.cpu, n, T(a), T(b), T(dy), T(da), T(db));
}
static void pd_concat_forward(const Backend *be, int N, int Da, int Db, const float *a, const float *b, float *y) {
    PD_ENTRY("concat_forward");
    pd.cpu->concat_forward(pd.cpu, N, Da, Db, T(a), T(b), T(y));
}
static void pd_concat_backward(const Backend *be, int N, int Da, int Db, const float *dy, float *da, float *db) {
    PD_ENTRY("concat_backward");
    pd.cpu->concat_backward(pd.cpu, N, Da, Db, T(dy), T(da), T(db));
}
static void pd_maxpool_forward(const Backend *be, const PoolShape *s, const void *x, void *y, int32_t *argmax) {
    PD_ENTRY("maxpool_forward");
    pd.cpu->maxpool_forward(pd.cpu, s, T(x), T(y), T(argmax));
}
static void pd_maxpool_backward(const Backend *be, const PoolShape *s, const int32_t *argmax, const void *dy, void *dx) {
    PD_ENTRY("maxpool_backward");
    pd.cpu->maxpool_backward(pd.cpu, s, T(argmax), T(dy), T(dx));
}
static void pd_avgpool_forward(const Backend *be, const ActDesc *d, const void *x, float *y) {
    PD_ENTRY("avgpool_forward");
    pd.cpu->avgpool_forward(pd.cpu, d, T(x), T(y));
}
static void pd_avgpool_backward(const Backend *be, const ActDesc *d, const float *dy, void *dx) {
    PD_ENTRY("avgpool_backward");
    pd.cpu->avgpool_backward(pd.cpu, d, T(dy), T(dx));
}
static void pd_linear_forward(const Backend *be, int N, int in, int out, const float *x, const float *w, const float *b, float *y) {
    PD_ENTRY("linear_forward");
    pd.cpu->linear_forward(pd.cpu, N, in, out, T(x), T(w), T(b), T(y));
}
static void pd_linear_backward(const Backend *be, int N, int in, int out, const float *x, const float *w, const float *dy, float *dx, float *dw, float *db) {
    PD_ENTRY("linear_backward");
    pd.cpu->linear_backward(pd.cpu, N, in, out, T(x), T(w), T(dy), T(dx), T(dw), T(db));
}
static void pd_embedding_forward(const Backend *be, int N, int V, int D, const int32_t *ids, const float *table, float *y) {
    PD_ENTRY("embedding_forward");
    pd.cpu->embedding_forward(pd.cpu, N, V, D, T(ids), T(table), T(y));
}
static void pd_embedding_backward(const Backend *be, int N, int V, int D, const int32_t *ids, int padding_idx, const float *dy, float *dtable) {
    PD_ENTRY("embedding_backward");
    pd.cpu->embedding_backward(pd.cpu, N, V, D, T(ids), padding_idx, T(dy), T(dtable));
}
static void pd_layernorm_forward(const Backend *be, int N, int D, const float *x, const float *w, const float *b, float eps, float *y, float *mean, float *rstd) {
    PD_ENTRY("layernorm_forward");
    pd.cpu->layernorm_forward(pd.cpu, N, D, T(x), T(w), T(b), eps, T(y), T(mean), T(rstd));
}
static void pd_layernorm_backward(const Backend *be, int N, int D, const float *x, const float *w, const float *mean, const float *rstd, const float *dy, float *dx, float *dw, float *db) {
    PD_ENTRY("layernorm_backward");
    pd.cpu->layernorm_backward(pd.cpu, N, D, T(x), T(w), T(mean), T(rstd), T(dy), T(dx), T(dw), T(db));
}
static void pd_softmax_forward(const Backend *be, int rows, int cols, const float *x, float *y) {
    PD_ENTRY("softmax_forward");
    pd.cpu->softmax_forward(pd.cpu, rows, cols, T(x), T(y));
}
static void pd_softmax_backward(const Backend *be, int rows, int cols, const float *y, const float *dy, float *dx) {
    PD_ENTRY("softmax_backward");
    pd.cpu->softmax_backward(pd.cpu, rows, cols, T(y), T(dy), T(dx));
}
static void pd_dropout_forward(const Backend *be, size_t n, float p, uint64_t seed, const float *x, float *y, uint8_t *mask) {
    PD_ENTRY("dropout_forward");
    pd.cpu->dropout_forward(pd.cpu, n, p, seed, T(x), T(y), T(mask));
}
static void pd_dropout_backward(const Backend *be, size_t n, float p, const uint8_t *mask, const float *dy, float *dx) {
    PD_ENTRY("dropout_backward");
    pd.cpu->dropout_backward(pd.cpu, n, p, T(mask), T(dy), T(dx));
}
static void pd_attention_forward(const Backend *be, int B, int L, int nh, int hd, const float *q, const float *k, const float *v, const float *key_mask, float p, uint64_t seed, float *probs, uint8_t *drop_mask, float *out, float *ws) {
    PD_ENTRY("attention_forward");
    pd.cpu->attention_forward(pd.cpu, B, L, nh, hd, T(q), T(k), T(v), T(key_mask), p, seed, T(probs), T(drop_mask), T(out), T(ws));
}
static void pd_attention_backward(const Backend *be, int B, int L, int nh, int hd, const float *q, const float *k, const float *v, const float *probs, const uint8_t *drop_mask, float p, const float *dout, float *dq, float *dk, float *dv, float *ws) {
    PD_ENTRY("attention_backward");
    pd.cpu->attention_backward(pd.cpu, B, L, nh, hd, T(q), T(k), T(v), T(probs), T(drop_mask), p, T(dout), T(dq), T(dk), T(dv), T(ws));
}
static double pd_bce_logits(const Backend *be, int N, int A, const float *logits, const float *targets, float grad_scale, float *dlogits) {
    PD_ENTRY("bce_logits");
    return pd.cpu->bce_logits(pd.cpu, N, A, T(logits), T(targets), grad_scale, T(dlogits));
}
static double pd_soft_xent(const Backend *be, int N, int A, const float *logits, const float *targets, float grad_scale, float *dlogits) {
    PD_ENTRY("soft_xent");
    return pd.cpu->soft_xent(pd.cpu, N, A, T(logits), T(targets), grad_scale, T(dlogits));
}
static void pd_adamw_update(const Backend *be, float *params, const float *grads, float *m, float *v, const AdamwSegment *segs, int n_segs) {
    PD_ENTRY("adamw_update");
    pd.cpu->adamw_update(pd.cpu, T(params), T(grads), T(m), T(v), segs, n_segs);
}
static double pd_global_norm(const Backend *be, const float *g, size_t n) {
    PD_ENTRY("global_norm");
    return pd.cpu->global_norm(pd.cpu, T(g), n);
}
static int pd_has_nonfinite(const Backend *be, const float *g, size_t n) {
    PD_ENTRY("has_nonfinite");
    return pd.cpu->has_nonfinite(pd.cpu, T(g), n);
}
static void pd_scale(const Backend *be, float *x, size_t n, float s) {
    PD_ENTRY("scale");
    pd.cpu->scale(pd.cpu, T(x), n, s);
}
/* every compute entry, for the table */
#define PD_COMPUTE_ENTRIES(X) \
    X(gemm) X(conv2d_forward) X(conv2d_backward) X(conv_weight_prep) \
    X(conv_weight_grad_add) X(batchnorm_forward_train) X(batchnorm_backward_train) X(batchnorm_forward_eval) \
    X(batchnorm_backward_eval) X(act_import) X(act_import_add) X(act_export) X(relu_forward) X(relu_backward) \
    X(add_forward) X(add_backward) X(gelu_forward) X(gelu_backward) X(tanh_forward) X(tanh_backward) \
    X(mul_forward) X(mul_backward) X(concat_forward) X(concat_backward) X(maxpool_forward) \
    X(maxpool_backward) X(avgpool_forward) X(avgpool_backward) X(linear_forward) X(linear_backward) \
    X(embedding_forward) X(embedding_backward) X(layernorm_forward) X(layernorm_backward) X(softmax_forward) \
    X(softmax_backward) X(dropout_forward) X(dropout_backward) X(attention_forward) \
    X(attention_backward) X(bce_logits) X(soft_xent) X(adamw_update) X(global_norm) X(has_nonfinite) X(scale)
#undef T
#undef PD_ENTRY

static void pd_segv(int sig, siginfo_t *si, void *ctx) {
    (void)sig, (void)ctx;
    char msg[160];
    int in = pd_find(si->si_addr) >= 0;
    int n = snprintf(msg, sizeof msg, "pretend_device: SIGSEGV at %p%s\n", si->si_addr,
                     in ? ": the host touched device memory outside a Backend entry" : "");
    if (write(2, msg, (size_t)n) < 0) _exit(4);
    _exit(4);
}

/* The table in precision prec (DT_F32, DT_BF16 or DT_F16: what the trainer then stores the
 * image encoder's activations in; the arithmetic is the CPU's either way). Built once per
 * precision, all sharing the same memory; installs the SIGSEGV reporter. */
static const Backend *pd_backend_prec(DType prec) {
    Backend *t = &pd.table[prec == DT_BF16 ? 1 : prec == DT_F16 ? 2 : 0];
    if (!pd.cpu) {
        pd.cpu = backend_cpu();
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = pd_segv;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSEGV, &sa, NULL);
    }
    if (!t->name) {
        *t = *pd.cpu;
        t->name = "pretend-device";
        t->device = DEV_CUDA;
        t->precision = prec;
        t->alloc = pd_alloc;
        t->free = pd_free;
        t->memset_zero = pd_memset_zero;
        t->copy_h2d = pd_copy_h2d;
        t->copy_h2d_async = pd_copy_h2d_async;
        t->copy_d2h = pd_copy_d2h;
        t->copy_d2d = pd_copy_d2d;
        t->upload_async = pd_upload_async;
        t->event_create = pd_event_create;
        t->event_destroy = pd_event_destroy;
        t->event_record = pd_event_record;
        t->event_wait = pd_event_wait;
#define PD_SET(name) t->name = pd_##name;
        PD_COMPUTE_ENTRIES(PD_SET)
#undef PD_SET
    }
    return t;
}
static const Backend *pd_backend(void) { return pd_backend_prec(DT_F32); }
static long pd_violations(void) { return pd.violations; }
static int pd_live_regions(void) { return pd.n; }

#endif
