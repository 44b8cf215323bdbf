/* resnet.h: torchvision ResNet v1.5 (18/34/50/101) as the image encoder, with torchvision's
 * parameter names, so a torchvision state_dict (converted to safetensors) loads unchanged.
 *
 * Structure (C = base width = round(64 * width); torchvision: width 1):
 *   conv1 7x7/2 pad 3 (3 -> C) , bn1, relu, maxpool 3x3/2 pad 1
 *   layer1..layer4: blocks 2/2/2/2 (18), 3/4/6/3 (34, 50), 3/4/23/3 (101);
 *     planes = C, 2C, 4C, 8C; stage stride 1, 2, 2, 2
 *     BasicBlock (18/34, expansion 1): conv1 3x3/s, bn1, relu, conv2 3x3, bn2, + identity, relu
 *     Bottleneck (50/101, expansion 4, v1.5: the stride is on the 3x3):
 *       conv1 1x1, bn1, relu, conv2 3x3/s, bn2, relu, conv3 1x1 (-> 4 planes), bn3, + identity, relu
 *     downsample.0 (1x1/s conv) + downsample.1 (BN) on block 0 of a stage whose stride or
 *     channel count changes.
 *   avgpool (global) -> pooled [N, 8C*exp];  optional fc (pooled -> num_classes).
 * Convs have no bias. BN: eps 1e-5, momentum 0.1, PyTorch running-stat semantics.
 * Shapes: [N, 3, H, W] in, grid [N, Cout, h, w] out, h = ceil(H/32) for the usual sizes:
 * 7x7 at 224; with cfg.stages = S < 4 the network ends after layerS, h = ceil(H / 2^(S+1))
 * and Cout = planes of layerS * expansion.
 * Layout: the input x, r->grid and r->pooled are fp32 NCHW at the boundary, always. Inside,
 * activations and their gradients are stored in the format set by resnet_set_format
 * (ops.h ActFmt), which every image entry of the Backend receives in its descriptor; in
 * the default, plain {NCHW, fp32}, those entries are the plain ops, with their numbers. Any
 * other format (channels-last NHWC and/or bf16 / fp16 storage, the GPU's fast path)
 * imports x into that format, runs every conv on a weight prepared for it
 * (conv_weight_prep each forward: the fp32 master weights change every step), and leaves it only
 * at the edges: pooled comes out fp32 from avgpool_forward, the grid is exported to
 * fp32 NCHW only when the owner asked for it (need_grid), and a grid gradient is imported
 * back (act_import_add). Conv weight gradients accumulate in the prepared layout and type
 * (a zeroed arena buffer per conv) and are added into the fp32 ParamStore gradient
 * (conv_weight_grad_add). Arena sizes are in bytes of the format's type.
 *
 * Freezing is read from the ParamStore flags (set by name prefix before ps_finalize):
 *  - BN of a stage whose BN weight is frozen runs in eval mode (running stats, no update);
 *    BN of a trainable stage runs in train mode when forward is called with training = 1.
 *  - Activations are kept only from the lowest trainable module (stem, or a block) up;
 *    everything below runs forward-only through two ping-pong buffers and rewound scratch,
 *    and backward stops there. A fully frozen encoder keeps nothing for backward.
 * All step memory comes from the Arena: after the first step nothing is allocated. */
#ifndef VQA_RESNET_H
#define VQA_RESNET_H

#include <stdint.h>

#include "model/params.h"
#include "ops/backend.h"
#include "ops/tensor.h"
#include "util/err.h"

typedef struct ResnetConfig {
    int depth;        /* 18, 34, 50, 101 */
    float width;      /* channel multiplier: base width round(64 * width) >= 1 */
    int with_fc;      /* register fc.{weight,bias} (ImageNet head); the VQA model does not */
    int num_classes;  /* fc outputs (1000) */
    int stages;       /* 1..4 stages built (0 = 4, the whole network); fewer stages give an
                       * earlier, finer feature map (3 = "conv4" features, 1/16 of the input,
                       * as CLEVR-style VQA models use), and layerN beyond it do not exist */
} ResnetConfig;

/* conv (no bias) followed by BN: one unit of the network */
typedef struct RnConvBn {
    int w, g, b, rm, rv, nbt;    /* ParamStore indices: conv weight, BN weight/bias/buffers */
    int cin, cout, k, stride, pad;
    /* per forward */
    ConvShape cs;                /* cs.f = the activation format */
    const void *x;               /* input [N, cin, H, W] (in the activation format) */
    void *y;                     /* conv output [N, cout, P, Q] (BN input) */
    void *z;                     /* BN output (ReLU applied in place where the net has one) */
    void *wp;                    /* prepared weight: arena (non-plain format), the fp32 master (plain) */
    float *mean, *rstd;          /* [cout] saved by train-mode BN */
    int bn_train;
} RnConvBn;

typedef struct RnBlock {
    RnConvBn c[3];
    int nconv;                   /* 2 (basic) or 3 (bottleneck) */
    RnConvBn ds;
    int has_ds;
    int stage;                   /* 1..4 */
    int first_param, end_param;  /* ParamStore index range */
    /* per forward */
    const void *x;               /* input (activation format) */
    void *out;                   /* relu(main + identity) */
    size_t in_numel, out_numel;
} RnBlock;

typedef struct Resnet {
    ResnetConfig cfg;
    ParamStore *ps;              /* borrowed */
    char prefix[64];
    int first_param, end_param;  /* this encoder's ParamStore range */
    int base, out_channels;      /* C, and the channels of grid/pooled */
    RnConvBn stem;
    int stem_first, stem_end;
    PoolShape pool;
    int32_t *argmax;
    void *pool_out;              /* stem output (activation format) */
    RnBlock *blocks;             /* owned */
    int n_blocks;
    int fc_w, fc_b;              /* -1 without fc */
    /* gradient-ready reports of resnet_backward (params.h; set by the owner after
     * resnet_build, zero = none): after fc, after each block (top down) and after the
     * stem, X = ps_grads_from(the module's first tensor) */
    PsGradHook grad_ready;
    /* activation storage (resnet_set_format); plain = {0, DT_F32} */
    ActFmt fmt;
    int need_grid;               /* non-plain format: export the grid to r->grid */
    /* per forward */
    int N, H, W, gh, gw;
    int training;
    int bwd_from;                /* 0 = stem, i+1 = block i, n_blocks+1 = nothing kept */
    float *ws;                   /* conv workspace (max over convs) */
    size_t ws_floats;
    void *gbuf[2];               /* backward ping-pong gradient buffers (activation format) */
    size_t max_act;              /* elements */
    void *top;                   /* last block output [N, out_channels, gh, gw] (format) */
    float *grid;                 /* [N, out_channels, gh, gw] fp32 NCHW; NULL in a non-plain
                                  * format without need_grid */
    float *pooled;               /* [N, out_channels] */
    float *logits;               /* [N, num_classes] when with_fc */
    /* 1.0f in backend memory (owned; from one_be), so that num_batches_tracked += 1 is an
     * add entry queued like the other ops instead of a host round trip per BN layer */
    float *one;
    const Backend *one_be;
} Resnet;

/* Registers the parameters under prefix (e.g. "image_encoder.") in group. Errors: depth
 * not in {18, 34, 50, 101}, width giving < 1 channel. */
int resnet_build(Resnet *r, const ResnetConfig *c, ParamStore *ps, const char *prefix,
                 ParamGroup group, Err *e);
void resnet_free(Resnet *r);
/* The activation format of the forwards that follow (see Layout above; before the first
 * forward, or between a forward and the next one, never between forward and backward).
 * f: dt one of DT_F32, DT_BF16, DT_F16 (else an error). need_grid: the owner reads r->grid
 * (attention fusion) and may pass dgrid to backward; without it, a non-plain format leaves
 * r->grid NULL (no export) and backward rejects dgrid. The plain format always has a grid. */
int resnet_set_format(Resnet *r, const ActFmt *f, int need_grid, Err *e);
/* "NCHW fp32", "NHWC bf16", ... */
const char *resnet_format_name(const ActFmt *f, char *buf, size_t n);
/* Grid size for an input of H x W. */
void resnet_grid_size(const Resnet *r, int H, int W, int *gh, int *gw);

/* x [N, 3, H, W] (fp32 NCHW, normalized). Fills r->grid (see resnet_set_format), r->pooled
 * (and r->logits with fc), in arena memory. training: BN of trainable stages in train mode, activations kept for
 * backward from the lowest trainable module up. */
int resnet_forward(Resnet *r, const Backend *be, const float *x, int N, int H, int W,
                   int training, Arena *a, Err *e);
/* Accumulates gradients of trainable parameters. Any of dlogits [N, classes],
 * dpooled [N, C], dgrid [N, C, gh, gw] (fp32 NCHW, all three) may be NULL. Must follow a training forward. */
int resnet_backward(Resnet *r, const Backend *be, const float *dlogits, const float *dpooled,
                    const float *dgrid, Arena *a, Err *e);

#endif
