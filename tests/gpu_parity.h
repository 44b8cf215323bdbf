/* gpu_parity.h: what the GPU parity tests share (test_gpu_parity.c: the plain format and
 * the GPU-only pieces; test_gpu_parity_act.c: the act formats): the CPU and CUDA backends,
 * host / device buffers freed per case, tolerances, and the start-up that SKIPs (exit 77)
 * without a CUDA build or a usable GPU. Test-program state (a test may have globals). */
#ifndef VQA_TEST_GPU_PARITY_H
#define VQA_TEST_GPU_PARITY_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/backend_cuda.h"
#include "cuda/gpu.h"
#include "ops/backend.h"
#include "testlib.h"

static const Backend *CPU, *GPU;
static TestRng rng = {12345};
static int bf16_mode;

/* ---- small helpers: host buffers and their device copies, freed per case ---- */
#define MAXBUF 128
static void *hbuf[MAXBUF], *dbuf[MAXBUF];
static int nh, nd;

static inline float *hrand(size_t n, float lo, float hi) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    trng_fill(&rng, p, n, lo, hi);
    hbuf[nh++] = p;
    return p;
}
static inline void *hzero(size_t bytes) {
    void *p = calloc(bytes ? bytes : 1, 1);
    hbuf[nh++] = p;
    return p;
}
static inline void *dput(const void *h, size_t bytes) {
    void *d = GPU->alloc(GPU, bytes ? bytes : 4);
    if (h && bytes) GPU->copy_h2d(GPU, d, h, bytes);
    else GPU->memset_zero(GPU, d, bytes ? bytes : 4);
    dbuf[nd++] = d;
    return d;
}
static inline float *dputf(const float *h, size_t n) { return dput(h, n * sizeof(float)); }
static inline float *dget(const float *d, size_t n) {
    float *h = hzero(n * sizeof *h);
    GPU->copy_d2h(GPU, h, d, n * sizeof *h);
    return h;
}
static inline void release(void) {
    for (int i = 0; i < nh; i++) free(hbuf[i]);
    for (int i = 0; i < nd; i++) GPU->free(GPU, dbuf[i]);
    nh = nd = 0;
    Err e;
    CHECK_MSG(GPU->error(GPU, &e) == 0, "%s", e.msg);
}

/* rel error of a device array against a host reference */
static inline double drel(const float *d, const float *ref, size_t n) { return rel_err(dget(d, n), ref, n); }
static inline double tol(void) { return bf16_mode ? 1e-2 : 1e-5; }
static inline double tol_conv(void) { return bf16_mode ? 1e-2 : 1e-4; }
#define CHECK_REL(d, ref, n, t)                                                                     \
    do {                                                                                            \
        double r_ = drel(d, ref, n);                                                                \
        CHECK_MSG(r_ < (t), "%s: rel err %.3g >= %.1g", #d, r_, (double)(t));                       \
    } while (0)


/* SKIPs without a CUDA build or a usable GPU; else creates the CUDA backend GPU with o
 * (NULL: fp32, TF32 off), sets CPU and prints the device. gpu_parity_stop destroys GPU. */
static inline void gpu_parity_start(const GpuOptions *o) {
    if (!gpu_compiled()) test_skip("no usable GPU: this build has no CUDA backend (VQA_CUDA=OFF)");
    int ndev = 0;
    char why[512];
    if (gpu_probe(&ndev, why, sizeof why) != 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s%s", strstr(why, "no usable GPU") ? "" : "no usable GPU: ", why);
        test_skip(msg);
    }
    Err e;
    GpuOptions def;
    gpu_options_default(&def); /* fp32, TF32 off */
    if (!(GPU = backend_cuda_create(o ? o : &def, &e))) {
        fprintf(stderr, "%s\n", e.msg);
        exit(1);
    }
    CPU = backend_cpu();
    char dev[256];
    gpu_describe(GPU, dev, sizeof dev);
    fprintf(stderr, "device: %s\n", dev);
}

static inline void gpu_parity_stop(void) {
    backend_cuda_destroy(GPU);
    GPU = NULL;
}

#endif
