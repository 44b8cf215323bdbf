/* train_device.h: where a training or prediction run computes — the CPU reference backend,
 * the CUDA backend, or a backend a test passes in — and the host <-> backend plumbing of a
 * step, so that nothing in src/train reads or writes backend memory on the host.
 *
 * The rules src/train follows on any backend (be->device != DEV_CPU means "device"):
 *  - parameters, gradients, BN buffers, AdamW moments and the step arena are backend
 *    memory: only Backend entries touch them (optimizer entries included);
 *  - a batch stays in the loader's host slot (pinned memory on a GPU); its images and
 *    targets are uploaded on the copy queue and the model gets a Batch whose
 *    images/targets are backend pointers (token ids, types and mask stay host pointers:
 *    bert_forward stages them itself): through TdevFeed (double-buffered, the next batch
 *    uploaded during the current step or evaluation forward) for training, evaluation and
 *    prediction alike;
 *  - values the host needs (logits for the arg-max) come back through copy_d2h
 *    (tdev_host_floats); losses and norms come back as return values of their entries. */
#ifndef VQA_TRAIN_DEVICE_H
#define VQA_TRAIN_DEVICE_H

#include <stddef.h>

#include "comm/comm.h"
#include "config/config.h"
#include "data/batch.h"
#include "data/loader.h"
#include "ops/backend.h"
#include "ops/tensor.h"
#include "util/err.h"

typedef struct TrainDevice {
    const Backend *be;
    int cuda_started;  /* backend_cuda_create ran here: tdev_close destroys the backend */
    int dnnl_started;  /* backend_cpu_dnnl_create ran here (train.cpu_kernels): tdev_close destroys it */
    int cuda_device;   /* the GPU ordinal this process drives; -1: host memory */
    char desc[256];    /* "cpu" / "cuda: NVIDIA H100 ..., precision bf16" / the test backend's name */
} TrainDevice;

/* device: the resolved run device (CFG_DEVICE_CPU or CFG_DEVICE_CUDA). cpu: the oneDNN
 * backend or the reference (train.cpu_kernels; auto: oneDNN when built in). cuda: the GPU of
 * this rank (comm_gpu_for_rank over n_gpus; comm may be NULL = device 0), precision from
 * train.precision. `given` non-NULL: use that backend as it is (tests: a CPU backend that
 * behaves like a device). */
int tdev_open(TrainDevice *d, const Config *cfg, CfgDevice device, int n_gpus, const Comm *comm,
              const Backend *given, Err *e);
void tdev_close(TrainDevice *d);
/* The first failed CUDA call since the last check (the backend's sticky error), as an
 * error; 0 when none or not on CUDA. */
int tdev_check(const TrainDevice *d, Err *e);

/* The image encoder's activation format (resnet.h Layout) for a run on be:
 * model.image_encoder.layout (auto: nhwc on a device with train.precision bf16 / fp16 and
 * on the oneDNN CPU backend, else nchw); the storage type follows train.precision on a device and is fp32 on the host. why:
 * the start-up line's reason, e.g. "auto: cuda, precision bf16". */
void tdev_image_format(const Config *cfg, const Backend *be, ActFmt *f, char *why, size_t n);

/* 1 when the backend's pointers are host memory. */
static inline int tdev_on_host(const Backend *be) { return be->device == DEV_CPU; }
/* A step arena over the backend's memory (host arena for the CPU backend). */
void tdev_arena_init(const Backend *be, Arena *a, size_t initial_bytes);
/* Where the loader's batch slots come from: pinned host memory for a device backend
 * (gpu_pinned_alloc), the loader's default otherwise. */
LoaderAlloc tdev_loader_alloc(const Backend *be);

/* ---- the batches: prefetched on a device ----
 *
 * TdevFeed hands the training loop its batches (and evaluate() the evaluation's, through
 * a second feed). On the CPU backend it is loader_next / loader_release and nothing else
 * (no buffers, no copies). On a device it double-buffers:
 * while the current batch's forward/backward run on the compute queue, the NEXT batch is
 * taken from the loader and uploaded on the copy queue into the other device buffer. Two
 * buffers of [B,3,S,S] images + [B,A] targets are allocated once (tdev_feed_init), outside
 * the step arena. Per buffer two events order the queues:
 *   uploaded: recorded on the copy queue after the buffer's upload; the compute queue
 *             waits on it (and only it) before the batch's first op; the host waits on it
 *             before handing the pinned slot back to the loader;
 *   consumed: recorded on the compute queue after the last op that reads the buffer
 *             (tdev_feed_done); the copy queue waits on it before overwriting the buffer.
 * The loader counts batches handed out, which runs one batch ahead of the optimizer:
 * each slot keeps the loader position and global real-row count from when it was taken,
 * and the trainer saves the consumed batch's position in checkpoints. The feed never
 * prefetches across an epoch end (loader_start_epoch needs every slot back) nor past the
 * run's last step. */
typedef struct TdevFeedSlot {
    Batch *host;         /* the loader's batch (borrowed), NULL when the slot is empty */
    Batch view;          /* *host with images / targets in backend memory (host: *host) */
    int64_t position;    /* loader_position() just after this batch was handed out */
    int64_t global_real; /* loader_last_global_real() then */
    float *dev;          /* device: [B*3*S*S] images then [B*A] targets; CPU: NULL */
    void *uploaded, *consumed; /* device: the events above */
} TdevFeedSlot;

typedef struct TdevFeed {
    const Backend *be;
    Loader *loader;
    int device;          /* 0: CPU backend, batches straight from the loader */
    size_t n_images, n_targets; /* floats per buffer */
    TdevFeedSlot slot[2];
    int cur;             /* slot handed out by tdev_feed_next, -1 none */
    int ahead;           /* slot holding the prefetched batch, -1 none */
    int64_t prefetched;  /* batches uploaded ahead of their step (for the log / tests) */
} TdevFeed;

/* batch_size rows of image_size^2 images and n_answers targets per batch. */
int tdev_feed_init(TdevFeed *f, const Backend *be, Loader *l, int batch_size, int image_size, int n_answers, Err *e);
/* The next batch into *out (valid until tdev_feed_done): 1; 0 at the end of the epoch; -1
 * on error. On a device the compute queue now waits for its upload; with prefetch_next the
 * batch after it is taken from the loader and its upload queued (pass 0 when the current
 * batch is the epoch's or the run's last). */
int tdev_feed_next(TdevFeed *f, int prefetch_next, const TdevFeedSlot **out, Err *e);
/* Every op that reads the current batch (forward, loss, backward) has been queued and the
 * host no longer reads its slot: the buffer is marked reusable after those ops, and the
 * slot goes back to the loader once its upload has completed. */
void tdev_feed_done(TdevFeed *f);
/* Hands every borrowed slot back (after its upload completed); a prefetched batch is
 * dropped (the loader hands it out again after loader_start_epoch at the saved position). */
void tdev_feed_drop(TdevFeed *f);
/* tdev_feed_drop, then frees the buffers and events. Before loader_close. */
void tdev_feed_free(TdevFeed *f);

/* A host copy of n floats of backend memory (src itself on the host), in a buffer that
 * grows as needed and is reused. NULL only when out of memory. */
typedef struct HostBuf {
    float *p;
    size_t cap;
} HostBuf;
const float *tdev_host_floats(const Backend *be, const float *src, size_t n, HostBuf *hb);
void hostbuf_free(HostBuf *hb);

#endif
