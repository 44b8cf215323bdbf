/* train_device.h: where a training or prediction run computes — the CPU reference backend,
 * the CUDA backend, or a backend a test passes in — and the host <-> backend plumbing of a
 * step, so that nothing in src/train reads or writes backend memory on the host.
 *
 * The rules src/train follows on any backend (be->device != DEV_CPU means "device"):
 *  - parameters, gradients, BN buffers, AdamW moments and the step arena are backend
 *    memory: only Backend entries touch them (optimizer entries included);
 *  - a batch stays in the loader's host slot (pinned memory on a GPU); tdev_batch_view
 *    uploads its images and targets into the step arena (the copy stream) and gives the
 *    model a Batch whose images/targets are backend pointers (token ids, types and mask
 *    stay host pointers: bert_forward stages them itself);
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
    int cuda_started;  /* backend_cuda_init ran here: tdev_close shuts it down */
    int cuda_device;   /* the GPU ordinal this process drives; -1: host memory */
    char desc[256];    /* "cpu" / "cuda: NVIDIA H100 ..., precision bf16" / the test backend's name */
} TrainDevice;

/* device: the resolved run device (CFG_DEVICE_CPU or CFG_DEVICE_CUDA). cuda: the GPU of
 * this rank (comm_gpu_for_rank over n_gpus; comm may be NULL = device 0), precision from
 * train.precision. `given` non-NULL: use that backend as it is (tests: a CPU backend that
 * behaves like a device). */
int tdev_open(TrainDevice *d, const Config *cfg, CfgDevice device, int n_gpus, const Comm *comm,
              const Backend *given, Err *e);
void tdev_close(TrainDevice *d);
/* The first failed CUDA call since the last check (the backend's sticky error), as an
 * error; 0 when none or not on CUDA. */
int tdev_check(const TrainDevice *d, Err *e);

/* 1 when the backend's pointers are host memory. */
static inline int tdev_on_host(const Backend *be) { return be->device == DEV_CPU; }
/* A step arena over the backend's memory (host arena for the CPU backend). */
void tdev_arena_init(const Backend *be, Arena *a, size_t initial_bytes);
/* Where the loader's batch slots come from: pinned host memory for a device backend
 * (gpu_pinned_alloc), the loader's default otherwise. */
LoaderAlloc tdev_loader_alloc(const Backend *be);

/* The Batch the model and the loss see: *b itself on the host; for a device backend a
 * copy of *b whose images and targets point at arena copies (uploaded with
 * copy_h2d_async: keep b unreleased until the loss has returned). */
int tdev_batch_view(const Backend *be, const Batch *b, Arena *a, Batch *view, Err *e);

/* A host copy of n floats of backend memory (src itself on the host), in a buffer that
 * grows as needed and is reused. NULL only when out of memory. */
typedef struct HostBuf {
    float *p;
    size_t cap;
} HostBuf;
const float *tdev_host_floats(const Backend *be, const float *src, size_t n, HostBuf *hb);
void hostbuf_free(HostBuf *hb);

#endif
