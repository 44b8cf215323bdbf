/* params.h: the parameter store: every parameter and buffer of a model, by its PyTorch name.
 *
 * Life cycle:
 *   ps_init(&ps)
 *   ps_add(...) for every tensor          (modules register at build time; returns an index)
 *   ps_set_trainable_prefix(...)          (freezing: before finalize)
 *   ps_finalize(&ps, be, err)             (allocates the flat buffers through the Backend)
 *   ps_init_values(&ps, seed)             (PyTorch-default initialization, seeded)
 *   ps_load_safetensors(...)              (pretrained weights by name, optional)
 *   ... ps_value(&ps, i) / ps_grad(&ps, i) during training ...
 *   ps_free(&ps)
 *
 * Memory layout (what the optimizer and the all-reduce see):
 *  - values:  ONE flat float buffer with every parameter (trainable or frozen), in
 *             registration order; ParamInfo.offset is where each starts.
 *  - grads:   ONE flat float buffer with the gradients of the TRAINABLE parameters only, in
 *             registration order; ParamInfo.grad_offset (PS_NO_GRAD for frozen ones). The
 *             optimizer's moments use the same offsets: frozen parameters have no state.
 *  - buffers: a separate flat float buffer for BN running_mean / running_var /
 *             num_batches_tracked (the latter is I64 in files; kept here as a float count,
 *             exact up to 2^24 steps, and written back as I64).
 * All three live in Backend memory (host for the CPU backend, device for CUDA). */
#ifndef VQA_PARAMS_H
#define VQA_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "ops/backend.h"
#include "ops/tensor.h"
#include "util/err.h"

#define PS_NAME_MAX 128
#define PS_MAX_DIMS 4
#define PS_NO_GRAD ((size_t)-1)

typedef enum ParamKind {
    PK_WEIGHT = 0,  /* conv / linear weight: weight decay */
    PK_BIAS,        /* no decay */
    PK_NORM,        /* BN / LayerNorm weight and bias: no decay */
    PK_EMBEDDING,   /* embedding table: decay (as HF's no_decay = [bias, LayerNorm.weight]) */
    PK_BUFFER       /* not a parameter: running stats, never trained, never counted */
} ParamKind;

typedef enum ParamGroup {
    PG_IMAGE = 0,   /* image_encoder: lr * encoder_lr_mult */
    PG_TEXT,        /* text_encoder:  lr * encoder_lr_mult */
    PG_FUSION,      /* fusion projections / attention */
    PG_CLASSIFIER,  /* classifier MLP */
    PG_COUNT
} ParamGroup;

typedef enum InitKind {
    INIT_ZEROS = 0,
    INIT_ONES,
    INIT_CONST,          /* a */
    INIT_UNIFORM,        /* U(-a, a) */
    INIT_NORMAL,         /* N(0, a^2) */
    INIT_KAIMING_FANOUT  /* N(0, 2 / fan_out), fan_out = shape[0] * prod(shape[2:]) (torchvision conv) */
} InitKind;

typedef struct ParamInit {
    InitKind kind;
    float a;
    int padding_idx; /* embedding row set to 0 after init; -1: none */
} ParamInit;

static inline ParamInit pinit_zeros(void) { return (ParamInit){INIT_ZEROS, 0.f, -1}; }
static inline ParamInit pinit_ones(void) { return (ParamInit){INIT_ONES, 0.f, -1}; }
static inline ParamInit pinit_const(float v) { return (ParamInit){INIT_CONST, v, -1}; }
static inline ParamInit pinit_uniform(float bound) { return (ParamInit){INIT_UNIFORM, bound, -1}; }
static inline ParamInit pinit_normal(float std) { return (ParamInit){INIT_NORMAL, std, -1}; }
static inline ParamInit pinit_kaiming_fanout(void) { return (ParamInit){INIT_KAIMING_FANOUT, 0.f, -1}; }

typedef struct ParamInfo {
    char name[PS_NAME_MAX];     /* full name, e.g. "image_encoder.layer1.0.conv1.weight" */
    int ndim;
    int64_t shape[PS_MAX_DIMS];
    size_t numel;
    ParamKind kind;
    ParamGroup group;
    ParamInit init;
    DType file_dtype;           /* dtype when written: F32, or I64 for num_batches_tracked */
    int trainable;              /* buffers: always 0 */
    size_t offset;              /* into values (parameters) or buffers (PK_BUFFER) */
    size_t grad_offset;         /* into grads; PS_NO_GRAD when frozen or a buffer */
} ParamInfo;

typedef struct ParamStore {
    ParamInfo *items;
    int n, cap;
    const Backend *be;          /* set by ps_finalize */
    float *values, *grads, *buffers;
    size_t n_values, n_grads, n_buffers;
    int finalized;
} ParamStore;

void ps_init(ParamStore *ps);
void ps_free(ParamStore *ps);

/* Registers a tensor; returns its index (>= 0) or -1 (duplicate name, bad shape, after
 * finalize, out of memory). Buffers: kind PK_BUFFER. Parameters start trainable. */
int ps_add(ParamStore *ps, const char *name, int ndim, const int64_t *shape, ParamKind kind,
           ParamGroup group, ParamInit init, Err *e);
/* Marks num_batches_tracked-style buffers so they are written as I64. */
void ps_set_file_dtype(ParamStore *ps, int idx, DType dt);

/* Sets the trainable flag of every parameter whose name starts with prefix (buffers are
 * never trainable). Returns how many matched; -1 after finalize. */
int ps_set_trainable_prefix(ParamStore *ps, const char *prefix, int trainable);
/* Same for every parameter of a group. */
int ps_set_trainable_group(ParamStore *ps, ParamGroup g, int trainable);

/* Lays out and allocates values, grads (zeroed), buffers through be. */
int ps_finalize(ParamStore *ps, const Backend *be, Err *e);

/* PyTorch-default initialization of every parameter and buffer from seed. Each tensor's
 * stream is derived from (seed, name), so values do not depend on registration order. */
int ps_init_values(ParamStore *ps, uint64_t seed, Err *e);

int ps_count(const ParamStore *ps);
const ParamInfo *ps_info(const ParamStore *ps, int idx);
int ps_find(const ParamStore *ps, const char *name); /* -1 if absent */
/* Value pointer (values or buffers); NULL before finalize. */
float *ps_value(const ParamStore *ps, int idx);
/* Gradient pointer; NULL for frozen parameters, buffers, and before finalize. */
float *ps_grad(const ParamStore *ps, int idx);
int ps_trainable(const ParamStore *ps, int idx);
/* 1 if any parameter whose index is in [first, last) is trainable. */
int ps_any_trainable(const ParamStore *ps, int first, int last);
/* Where the gradients of the tensors [first, n) start in grads: the first trainable one's
 * grad_offset (n_grads when none is). Gradients are laid out in registration order. */
size_t ps_grads_from(const ParamStore *ps, int first);

/* Gradient-ready report, for the data-parallel all-reduce (train/grad_sync.h) without the
 * models knowing about communication: a module's backward calls fn(ctx, X) when every
 * gradient it writes at offsets >= X of ps.grads is final, i.e. it will not add to them
 * again in this backward. fn NULL = no reports. Within one backward the X a module reports
 * never increase (it walks its tensors from the last registered to the first). */
typedef struct PsGradHook {
    void (*fn)(void *ctx, size_t grad_offset);
    void *ctx;
} PsGradHook;
void ps_zero_grads(ParamStore *ps);

/* Parameter element counts (buffers excluded, as torch's parameters()).
 * group = -1: all groups. trainable_only: count only trainable ones. */
size_t ps_numel(const ParamStore *ps, int group, int trainable_only);
const char *ps_group_name(ParamGroup g); /* "image_encoder", "text_encoder", ... */

/* Optimizer facts per parameter: weight decay (weights and embeddings, not biases or
 * norms), learning-rate multiplier (encoder groups get encoder_lr_mult). */
int ps_decay(const ParamInfo *p);
float ps_lr_mult(const ParamInfo *p, float encoder_lr_mult);

/* ---- safetensors ----
 * Loading: every store tensor whose name starts with store_prefix (e.g. "image_encoder.")
 * is looked up in the file as file_prefix + rest (file_prefix e.g. "bert." or ""; either
 * may be NULL = ""). F32/F16/BF16 are converted; num_batches_tracked may be I64.
 * Errors: missing tensor, or shape mismatch (naming the tensor and both shapes).
 * File tensors that nothing asked for are counted and summarized in rep->unused. */
typedef struct PsLoadReport {
    int loaded;              /* store tensors filled from the file */
    int unused;              /* file tensors not used */
    char unused_summary[512]; /* "12 unused tensors: cls.predictions.bias, fit_dense.weight, ..." */
} PsLoadReport;
int ps_load_safetensors(ParamStore *ps, const char *path, const char *store_prefix,
                        const char *file_prefix, PsLoadReport *rep, Err *e);
/* Writes every tensor under store_prefix, named file_prefix + rest (F32; I64 where
 * file_dtype says so), atomically. */
int ps_save_safetensors(const ParamStore *ps, const char *path, const char *store_prefix,
                        const char *file_prefix, Err *e);

#endif
