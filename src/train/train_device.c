/* train_device.c: the run's backend and the host <-> backend plumbing of a step
 * (train_device.h). */
#include "train/train_device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/backend_cuda.h"
#include "cuda/gpu.h"
#include "ops/backend_dnnl.h"

static const char *prec_name(DType p) { return p == DT_BF16 ? "bf16" : p == DT_F16 ? "fp16" : "fp32"; }

int tdev_open(TrainDevice *d, const Config *cfg, CfgDevice device, int n_gpus, const Comm *comm,
              const Backend *given, Err *e) {
    memset(d, 0, sizeof *d);
    d->cuda_device = -1;
    if (given) {
        if (given->precision != cfg->train.precision)
            return err_set(e, "backend %s computes in %s, but train.precision is %s", given->name,
                           prec_name(given->precision), prec_name(cfg->train.precision));
        d->be = given;
        snprintf(d->desc, sizeof d->desc, "%s (given backend)", given->name);
        return 0;
    }
    if (device != CFG_DEVICE_CUDA) {
        CfgCpuKernels k = cfg->train.cpu_kernels;
        const char *how = k == CFG_CPUK_AUTO ? "auto" : "train.cpu_kernels";
        if (k == CFG_CPUK_AUTO) k = backend_cpu_dnnl_built() ? CFG_CPUK_ONEDNN : CFG_CPUK_REFERENCE;
        if (k == CFG_CPUK_ONEDNN) {
            if (!(d->be = backend_cpu_dnnl_create(e))) return err_prefix(e, "train.cpu_kernels: onednn");
            d->dnnl_started = 1;
            char v[64];
            snprintf(d->desc, sizeof d->desc, "cpu, fp32, image-encoder kernels: %s (%s)",
                     backend_cpu_dnnl_version(v, sizeof v), how);
        } else {
            snprintf(d->desc, sizeof d->desc, "cpu, fp32, image-encoder kernels: reference im2col + OpenBLAS (%s%s)",
                     how, backend_cpu_dnnl_built() ? "" : "; oneDNN not built");
            d->be = backend_cpu();
        }
        return 0;
    }
    int dev = 0;
    if (comm && comm_gpu_for_rank(comm, n_gpus, &dev, e) != 0) return -1;
    GpuOptions o;
    gpu_options_default(&o);
    o.device = dev;
    o.precision = cfg->train.precision;
    /* fp32 stays fp32 (no TF32): a fp32 GPU run is the one that tracks the CPU reference */
    o.allow_tf32 = 0;
    if (!(d->be = backend_cuda_create(&o, e))) return err_prefix(e, "device cuda");
    d->cuda_started = 1;
    d->cuda_device = dev;
    char g[200];
    gpu_describe(d->be, g, sizeof g);
    snprintf(d->desc, sizeof d->desc, "cuda device %d (%s), precision %s", dev, g, prec_name(cfg->train.precision));
    return 0;
}

void tdev_image_format(const Config *cfg, const Backend *be, ActFmt *f, char *why, size_t n) {
    int dev = be->device != DEV_CPU;
    CfgLayout l = cfg->model.image_encoder.layout;
    /* activations are stored in the backend's precision (fp32 on the host) */
    f->dt = be->precision;
    const char *prec = prec_name(f->dt);
    if (l == CFG_LAYOUT_AUTO) {
        /* channels-last: a GPU in half precision, and the oneDNN CPU backend, whose NHWC
         * kernels run the demo's training step ~1.2x its NCHW (blocked + reorders): 544-556
         * vs 452-470 samples/s at 1 thread, 890-909 vs 765-766 at 2 (bench/RESULTS.md) */
        int dnnl = backend_is_cpu_dnnl(be);
        f->nhwc = (dev && f->dt != DT_F32) || dnnl;
        snprintf(why, n, "auto: %s, precision %s%s", be->name, prec,
                 dnnl ? "; oneDNN runs NHWC natively (no reorders between layers)" : "");
    } else {
        f->nhwc = l == CFG_LAYOUT_NHWC;
        snprintf(why, n, "model.image_encoder.layout: %s; %s, precision %s", l == CFG_LAYOUT_NHWC ? "nhwc" : "nchw",
                 be->name, prec);
    }
}

void tdev_close(TrainDevice *d) {
    if (d->cuda_started) backend_cuda_destroy(d->be);
    if (d->dnnl_started) backend_cpu_dnnl_destroy(d->be);
    memset(d, 0, sizeof *d);
    d->cuda_device = -1;
}

int tdev_check(const TrainDevice *d, Err *e) { return d->be ? d->be->error(d->be, e) : 0; }

void tdev_arena_init(const Backend *be, Arena *a, size_t initial_bytes) {
    if (tdev_on_host(be)) {
        arena_init(a, initial_bytes);
        return;
    }
    ArenaMem m = backend_arena_mem(be);
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

/* ---- TdevFeed (train_device.h) ---- */

int tdev_feed_init(TdevFeed *f, const Backend *be, Loader *l, int batch_size, int image_size, int n_answers, Err *e) {
    memset(f, 0, sizeof *f);
    f->be = be;
    f->loader = l;
    f->cur = f->ahead = -1;
    if (tdev_on_host(be)) return 0; /* the CPU: no buffers, no events */
    f->device = 1;
    f->n_images = (size_t)batch_size * 3 * (size_t)image_size * (size_t)image_size;
    f->n_targets = (size_t)batch_size * (size_t)n_answers;
    for (int i = 0; i < 2; i++) {
        TdevFeedSlot *s = &f->slot[i];
        if (!(s->dev = be->alloc(be, (f->n_images + f->n_targets) * sizeof(float)))) {
            tdev_feed_free(f);
            return err_set(e, "batch prefetch: out of device memory for batch buffer %d (%zu floats)", i,
                           f->n_images + f->n_targets);
        }
        if (!(s->uploaded = be->event_create(be)) || !(s->consumed = be->event_create(be))) {
            tdev_feed_free(f);
            return err_set(e, "batch prefetch: cannot create the events of batch buffer %d", i);
        }
    }
    return 0;
}

/* Takes the loader's next batch into slot i and, on a device, queues its upload behind the
 * last use of the buffer. 1 / 0 (end of epoch) / -1 as loader_next. */
static int feed_take(TdevFeed *f, int i, Err *e) {
    TdevFeedSlot *s = &f->slot[i];
    Batch *b;
    int k = loader_next(f->loader, &b, e);
    if (k <= 0) return k;
    s->host = b;
    s->position = loader_position(f->loader);
    s->global_real = loader_last_global_real(f->loader);
    s->view = *b;
    if (!f->device) return 1;
    size_t ni = (size_t)b->size * 3 * (size_t)b->image_size * (size_t)b->image_size;
    size_t nt = b->targets ? (size_t)b->size * (size_t)b->n_answers : 0;
    if (ni > f->n_images || nt > f->n_targets) {
        loader_release(f->loader, b);
        s->host = NULL;
        return err_set(e, "batch prefetch: a batch of %d rows, %dx%d images, %d answers does not fit the buffers "
                       "(%zu image floats, %zu target floats)", b->size, b->image_size, b->image_size, b->n_answers,
                       f->n_images, f->n_targets);
    }
    const Backend *be = f->be;
    /* the step that used this buffer last may still be reading it on the compute queue */
    be->event_wait(be, s->consumed, BE_COPY);
    be->upload_async(be, s->dev, b->images, ni * sizeof(float));
    s->view.images = s->dev;
    if (b->targets) {
        be->upload_async(be, s->dev + f->n_images, b->targets, nt * sizeof(float));
        s->view.targets = s->dev + f->n_images;
    }
    be->event_record(be, s->uploaded, BE_COPY);
    return 1;
}

int tdev_feed_next(TdevFeed *f, int prefetch_next, const TdevFeedSlot **out, Err *e) {
    *out = NULL;
    if (f->cur >= 0) return err_set(e, "batch feed: tdev_feed_next before tdev_feed_done of the previous batch");
    int i = f->ahead;
    if (i < 0) { /* nothing prefetched (first batch of an epoch or of the run) */
        i = 0;
        int k = feed_take(f, i, e);
        if (k <= 0) return k;
    }
    f->ahead = -1;
    f->cur = i;
    /* this batch's ops wait for its upload, and for nothing queued on the copy queue later */
    if (f->device) f->be->event_wait(f->be, f->slot[i].uploaded, BE_COMPUTE);
    *out = &f->slot[i];
    if (f->device && prefetch_next) {
        int k = feed_take(f, 1 - i, e);
        if (k < 0) return -1; /* the current batch stays borrowed: tdev_feed_drop returns it */
        if (k > 0) {
            f->ahead = 1 - i;
            f->prefetched++;
        }
    }
    return 1;
}

/* Hands slot i back to the loader once the copy queue has finished reading it. */
static void feed_return(TdevFeed *f, int i) {
    TdevFeedSlot *s = &f->slot[i];
    if (!s->host) return;
    if (f->device) f->be->event_wait(f->be, s->uploaded, BE_HOST);
    loader_release(f->loader, s->host);
    s->host = NULL;
}

void tdev_feed_done(TdevFeed *f) {
    if (f->cur < 0) return;
    if (f->device) f->be->event_record(f->be, f->slot[f->cur].consumed, BE_COMPUTE);
    feed_return(f, f->cur);
    f->cur = -1;
}

void tdev_feed_drop(TdevFeed *f) {
    tdev_feed_done(f);
    if (f->ahead >= 0) feed_return(f, f->ahead);
    f->ahead = -1;
}

void tdev_feed_free(TdevFeed *f) {
    if (!f->be) return;
    tdev_feed_drop(f);
    for (int i = 0; i < 2; i++) {
        TdevFeedSlot *s = &f->slot[i];
        if (f->device) {
            f->be->event_wait(f->be, s->consumed, BE_HOST); /* no op may still read the buffer */
            f->be->event_destroy(f->be, s->uploaded);
            f->be->event_destroy(f->be, s->consumed);
            f->be->free(f->be, s->dev);
        }
    }
    memset(f, 0, sizeof *f);
    f->cur = f->ahead = -1;
}

const float *tdev_host_floats(const Backend *be, const float *src, size_t n, HostBuf *hb) {
    if (tdev_on_host(be)) return src;
    if (n > hb->cap) {
        float *p = realloc(hb->p, n * sizeof *p);
        if (!p) return NULL;
        hb->p = p;
        hb->cap = n;
    }
    be->copy_d2h(be, hb->p, src, n * sizeof(float));
    return hb->p;
}

void hostbuf_free(HostBuf *hb) {
    free(hb->p);
    hb->p = NULL;
    hb->cap = 0;
}
