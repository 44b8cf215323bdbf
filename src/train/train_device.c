/* train_device.c: the run's backend and the host <-> backend plumbing of a step
 * (train_device.h). */
#include "train/train_device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/backend_cuda.h"
#include "cuda/gpu.h"

static const char *prec_name(CfgPrecision p) {
    return p == CFG_PREC_BF16 ? "bf16" : p == CFG_PREC_FP16 ? "fp16" : "fp32";
}

int tdev_open(TrainDevice *d, const Config *cfg, CfgDevice device, int n_gpus, const Comm *comm,
              const Backend *given, Err *e) {
    memset(d, 0, sizeof *d);
    d->cuda_device = -1;
    if (given) {
        d->be = given;
        snprintf(d->desc, sizeof d->desc, "%s (given backend)", given->name);
        return 0;
    }
    if (device != CFG_DEVICE_CUDA) {
        d->be = backend_cpu();
        snprintf(d->desc, sizeof d->desc, "cpu, fp32");
        return 0;
    }
    int dev = 0;
    if (comm && comm_gpu_for_rank(comm, n_gpus, &dev, e) != 0) return -1;
    GpuOptions o;
    gpu_options_default(&o);
    o.device = dev;
    o.precision = cfg->train.precision == CFG_PREC_BF16   ? GPU_PREC_BF16
                  : cfg->train.precision == CFG_PREC_FP16 ? GPU_PREC_FP16
                                                          : GPU_PREC_FP32;
    /* fp32 stays fp32 (no TF32): a fp32 GPU run is the one that tracks the CPU reference */
    o.allow_tf32 = 0;
    if (backend_cuda_init(&o, e) != 0) return err_prefix(e, "device cuda");
    d->be = backend_cuda();
    d->cuda_started = 1;
    d->cuda_device = dev;
    char g[200];
    gpu_describe(g, sizeof g);
    snprintf(d->desc, sizeof d->desc, "cuda device %d (%s), precision %s", dev, g, prec_name(cfg->train.precision));
    return 0;
}

void tdev_close(TrainDevice *d) {
    if (d->cuda_started) backend_cuda_shutdown();
    memset(d, 0, sizeof *d);
    d->cuda_device = -1;
}

int tdev_check(const TrainDevice *d, Err *e) { return d->cuda_started ? gpu_error(e) : 0; }

void tdev_arena_init(const Backend *be, Arena *a, size_t initial_bytes) {
    if (tdev_on_host(be)) {
        arena_init(a, initial_bytes);
        return;
    }
    ArenaMem m = {be->alloc, be->free, be->memset_zero};
    arena_init_mem(a, initial_bytes, &m);
}

static void *pinned_alloc(void *ctx, size_t bytes) {
    (void)ctx;
    return gpu_pinned_alloc(bytes);
}
static void pinned_free(void *ctx, void *p) {
    (void)ctx;
    gpu_pinned_free(p);
}

LoaderAlloc tdev_loader_alloc(const Backend *be) {
    LoaderAlloc a = {NULL, NULL, NULL};
    if (!tdev_on_host(be)) {
        a.alloc = pinned_alloc;
        a.free = pinned_free;
    }
    return a;
}

int tdev_batch_view(const Backend *be, const Batch *b, Arena *a, Batch *view, Err *e) {
    *view = *b;
    if (tdev_on_host(be)) return 0;
    size_t ni = (size_t)b->size * 3 * (size_t)b->image_size * (size_t)b->image_size;
    if (!(view->images = arena_floats(a, ni))) return err_set(e, "batch upload: out of device memory (arena, %zu images floats)", ni);
    be->copy_h2d_async(view->images, b->images, ni * sizeof(float));
    if (b->targets) {
        size_t nt = (size_t)b->size * (size_t)b->n_answers;
        if (!(view->targets = arena_floats(a, nt)))
            return err_set(e, "batch upload: out of device memory (arena, %zu target floats)", nt);
        be->copy_h2d_async(view->targets, b->targets, nt * sizeof(float));
    }
    return 0;
}

const float *tdev_host_floats(const Backend *be, const float *src, size_t n, HostBuf *hb) {
    if (tdev_on_host(be)) return src;
    if (n > hb->cap) {
        float *p = realloc(hb->p, n * sizeof *p);
        if (!p) return NULL;
        hb->p = p;
        hb->cap = n;
    }
    be->copy_d2h(hb->p, src, n * sizeof(float));
    return hb->p;
}

void hostbuf_free(HostBuf *hb) {
    free(hb->p);
    hb->p = NULL;
    hb->cap = 0;
}
