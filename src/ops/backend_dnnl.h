/* backend_dnnl.h: the CPU backend with the image encoder's ops on oneDNN (libdnnl).
 *
 * Its table is the CPU reference table (backend_cpu.c) with these entries replaced, for
 * fp32 activations in NCHW (the plain format) and NHWC (channels-last, with the conv
 * weight prepared as [K, R, S, C]), where oneDNN measured faster (bench_cpu_dnnl):
 *   conv2d_workspace / conv2d_forward / conv2d_backward   (dnnl_conv.c; NCHW and NHWC)
 *   batchnorm_forward_train / _backward_train / _forward_eval / _backward_eval
 *                                                          (dnnl_bn.c; NHWC only)
 *   maxpool_forward / maxpool_backward                     (dnnl_pool.c; NCHW and NHWC)
 * ReLU is the reference's: with `omp simd` it measured the same as oneDNN's eltwise
 * (0.92-1.02x forward and backward, bench_cpu_dnnl, 2-core Xeon, 2026-12-07), and it
 * keeps the reference's NaN handling (oneDNN's keeps a NaN, the reference writes 0).
 * bf16 / fp16 storage and whatever oneDNN cannot build go to the reference
 * entries, decided once per shape. The op contract is the reference's (ops.h): gradients
 * ACCUMULATE, a NULL gradient skips its work, in-place forward as the reference allows.
 * oneDNN's max-pool workspace travels in the argmax buffer between maxpool_forward and
 * maxpool_backward of this backend: its argmax is not the reference's flat index.
 *
 * The context (dnnl_context.c) holds the oneDNN engine and stream, primitives and memory
 * objects created once per shape (cached; nothing is created per call after the first
 * step), a scratch buffer for entries that have no workspace argument, and the first
 * failure (be->error). One host thread drives a backend; two backends never share state. */
#ifndef VQA_BACKEND_DNNL_H
#define VQA_BACKEND_DNNL_H

#include "ops/backend.h"
#include "util/err.h"

/* 1 when this build has oneDNN (VQA_ONEDNN found libdnnl), else 0. */
int backend_cpu_dnnl_built(void);
/* A new oneDNN CPU backend, or NULL with the reason in e (no oneDNN in this build, the
 * engine or stream cannot be created, out of memory). backend_cpu_dnnl_destroy frees it. */
const Backend *backend_cpu_dnnl_create(Err *e);
void backend_cpu_dnnl_destroy(const Backend *be); /* NULL allowed */
/* 1 when be is a table from backend_cpu_dnnl_create, else 0 (NULL allowed). */
int backend_is_cpu_dnnl(const Backend *be);
/* "oneDNN 2.6.3 (OpenMP)" or "not built"; for the start-up line and benchmarks. */
const char *backend_cpu_dnnl_version(char *buf, size_t n);
/* NCHW convolutions in oneDNN's own (blocked) formats with reorders from and to NCHW
 * around each primitive (1, the default) or on plain NCHW memory (0: oneDNN's gemm
 * kernels); NHWC convolutions always run on the NHWC memory itself. For benchmarks;
 * affects shapes first seen after the call. */
void backend_cpu_dnnl_set_conv_blocked(const Backend *be, int blocked);
/* How many entry calls ran on the reference since create (other formats, shapes or
 * arguments oneDNN is not used for). For tests; 0 in a build without oneDNN. */
long backend_cpu_dnnl_fallbacks(const Backend *be);

#endif
