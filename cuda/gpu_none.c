/* gpu_none.c: the GPU backend of a build without CUDA. It only answers that there is
 * none, so that `device: cuda` fails with a message instead of a missing symbol; the rest
 * of backend_cuda.h is stubs (never reached: backend_cuda_create fails first). */
#include "cuda/gpu.h"

#include <stdio.h>
#include <stdlib.h>

#include "cuda/backend_cuda.h"

#define NOT_BUILT                                                                            \
    "this vqa_train was built without the CUDA backend (VQA_CUDA=OFF or no CUDA toolkit at " \
    "configure time); use device: cpu, or rebuild with -DVQA_CUDA=ON"

int gpu_compiled(void) { return 0; }

int gpu_probe(int *n_devices, char *why, size_t why_len) {
    *n_devices = 0;
    snprintf(why, why_len, "%s", NOT_BUILT);
    return -1;
}

void gpu_options_default(GpuOptions *o) {
    o->device = 0;
    o->precision = DT_F32;
    o->allow_tf32 = 0;
    o->conv_ws_limit = (size_t)512 << 20;
}
const Backend *backend_cuda_create(const GpuOptions *o, Err *e) {
    (void)o;
    err_set(e, "%s", NOT_BUILT);
    return NULL;
}
void backend_cuda_destroy(const Backend *be) { (void)be; }
void gpu_describe(const Backend *be, char *buf, size_t n) {
    (void)be;
    snprintf(buf, n, "no GPU backend in this build");
}
size_t gpu_mem_in_use(const Backend *be) { return (void)be, 0; }
size_t gpu_mem_peak(const Backend *be) { return (void)be, 0; }
void gpu_mem_peak_reset(const Backend *be) { (void)be; }
uint64_t gpu_malloc_count(const Backend *be) { return (void)be, 0; }
void *gpu_host_alloc(size_t bytes) {
    (void)bytes;
    return NULL;
}
void gpu_host_free(void *p) { (void)p; }
void gpu_copy_wait(const Backend *be) { (void)be; }
void *gpu_compute_stream(const Backend *be) { return (void)be, NULL; }
void gpu_cast_f32_to_bf16(const Backend *be, const float *x, uint16_t *y, size_t n) { (void)be, (void)x, (void)y, (void)n; }
void gpu_cast_bf16_to_f32(const Backend *be, const uint16_t *x, float *y, size_t n) { (void)be, (void)x, (void)y, (void)n; }
void gpu_cast_f32_to_f16(const Backend *be, const float *x, uint16_t *y, size_t n) { (void)be, (void)x, (void)y, (void)n; }
void gpu_cast_f16_to_f32(const Backend *be, const uint16_t *x, float *y, size_t n) { (void)be, (void)x, (void)y, (void)n; }

/* no CUDA: loader slots are plain aligned host memory */
void *gpu_pinned_alloc(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    return p;
}
void gpu_pinned_free(void *p) { free(p); }
int gpu_pinned_is_locked(const void *p) {
    (void)p;
    return 0;
}
