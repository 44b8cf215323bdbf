/* vqa_model.h: the whole VQA fusion model: ResNet image encoder + BERT text encoder +
 * fusion head + classifier, sharing one ParamStore (so the optimizer and the all-reduce see
 * one flat parameter buffer and one flat gradient buffer).
 *
 * Parameter names (what checkpoints contain):
 *   image_encoder.<torchvision name>   e.g. image_encoder.layer4.2.conv3.weight  (PG_IMAGE)
 *   text_encoder.<HF BertModel name>   e.g. text_encoder.encoder.layer.3.output.dense.bias (PG_TEXT)
 *   fusion.{img_proj,txt_proj,att}.*   (PG_FUSION);  classifier.{0,3}.*   (PG_CLASSIFIER)
 *
 * Freezing (per encoder, a FreezeSpec): all | none | a list of the stages that stay
 * TRAINABLE, everything else frozen:
 *   ResNet: stem (= conv1 + bn1), conv1, bn1, layer1 .. layer4, e.g. [layer4]
 *   BERT:   embeddings, layerN (= encoder.layer.N), pooler, e.g. [layer2, layer3, pooler]
 * Frozen parameters have no gradient slot and no optimizer state; a frozen ResNet stage runs
 * its BN in eval mode; backward stops below the lowest trainable stage.
 *
 * Start-up order inside vqa_model_init: build -> freeze -> ps_finalize -> seeded init ->
 * load image weights -> load text weights (unused tensors summarized in load_notes). */
#ifndef VQA_MODEL_H
#define VQA_MODEL_H

#include <stdint.h>

#include "data/batch.h"
#include "model/bert.h"
#include "model/fusion.h"
#include "model/params.h"
#include "model/resnet.h"
#include "ops/backend.h"
#include "ops/tensor.h"
#include "util/err.h"

#define VQA_PATH_MAX 1024

/* What of an encoder is frozen. Zeroed = FREEZE_ALL. */
#define FREEZE_MAX_STAGES 32 /* a ResNet has 7 stage names, BERT-large 24 layers + 2 */
#define FREEZE_NAME_MAX 32   /* bytes of a stage name, with its NUL */
typedef enum FreezeMode { FREEZE_ALL = 0, FREEZE_NONE = 1, FREEZE_LIST = 2 } FreezeMode;
typedef struct FreezeSpec {
    FreezeMode mode;
    int n;                                          /* FREEZE_LIST: names in stage */
    char stage[FREEZE_MAX_STAGES][FREEZE_NAME_MAX]; /* FREEZE_LIST: the stages left trainable */
} FreezeSpec;
/* Room for vqa_freeze_format's text of any FreezeSpec: names joined by ", ", and the NUL. */
#define FREEZE_TEXT_MAX (FREEZE_MAX_STAGES * (FREEZE_NAME_MAX + 2))

typedef struct VqaModelConfig {
    /* model.image_encoder */
    int image_depth;                     /* arch resnet18/34/50/101 -> 18/34/50/101 */
    float image_width;                   /* 1.0 */
    char image_weights[VQA_PATH_MAX];    /* "" = none (random init) */
    char image_weights_prefix[64];       /* prefix of the names in the file, e.g. "" or "backbone." */
    FreezeSpec image_freeze;
    int image_grid;                      /* output: 1 = grid [B, C, h, w], 0 = pooled [B, C] */
    int image_stages;                    /* ResNet stages built, 1..4 (0 = 4) */
    ActFmt image_fmt;                    /* ResNet activation storage (resnet_set_format);
                                          * zeroed = plain {NCHW, fp32} */
    /* model.text_encoder */
    BertConfig text;
    char text_weights[VQA_PATH_MAX];
    char text_weights_prefix[64];        /* e.g. "bert." for original TinyBERT checkpoints */
    FreezeSpec text_freeze;
    int text_mean_pool;                  /* question feature: 0 = BERT pooler over [CLS] (HF),
                                          * 1 = mask-weighted mean of the last layer's tokens */
    /* model.fusion */
    FusionType fusion_type;
    int fusion_hidden;
    float fusion_dropout;
    float fusion_att_scale;              /* attention score scale k (fusion.h); 1 = plain */
    int fusion_prior_bias;               /* classifier.3.bias = -log(A - 1) (fusion.h) */
    int num_answers;                     /* from the answer vocabulary */
    uint64_t seed;                       /* run.seed: initialization of what is not loaded */
} VqaModelConfig;

/* The defaults of DESIGN.md §1b: resnet50 frozen (pooled), TinyBERT 4L-312D trainable,
 * mul fusion hidden 1024 dropout 0.3. */
void vqa_model_config_default(VqaModelConfig *c, int num_answers);

typedef struct VqaModel {
    VqaModelConfig cfg;
    const Backend *be;
    ParamStore ps;
    Resnet image;
    Bert text;
    Fusion fusion;
    int image_trainable, text_trainable;  /* any trainable tensor in the encoder */
    char load_notes[1200];                /* one line per loaded file: "... loaded N tensors; M unused: ..." */
    /* Gradient-ready hook, for the bucketed all-reduce (train/grad_sync.h; set by the
     * trainer after vqa_model_init; NULL = none): vqa_model_backward calls
     * grad_ready(grad_ready_ctx, X) each time every gradient at offsets >= X of ps.grads
     * is final, X never increasing within one backward: after the head, after the BERT
     * pooler / each layer / embeddings, after each ResNet block / the stem, finally 0
     * (passed down to the encoders as their PsGradHook for the backward). */
    void (*grad_ready)(void *ctx, size_t grad_offset);
    void *grad_ready_ctx;
    /* per forward */
    int B;
    float *logits;                        /* [B, A] (arena) */
    uint64_t step_seed;
    /* mean pooling (text_mean_pool): per-token weights mask/len [B, L], built on the host
     * (pool_w_host, owned, grown with B*L) and copied into the arena (pool_w) */
    float *pool_w_host;
    size_t pool_w_cap;
    float *pool_w;
    float *text_feat;                     /* [B, H] the question feature given to the fusion */
    int L;
} VqaModel;

int vqa_model_init(VqaModel *m, const VqaModelConfig *c, const Backend *be, Err *e);
void vqa_model_free(VqaModel *m);

/* batch->images [B, 3, S, S], tokens / token_types / attn_mask [B, L]. training: BN of
 * trainable stages in train mode, dropout on (seeded by step_seed), activations kept for
 * backward. Returns 0 and sets *logits ([B, A], arena memory). */
int vqa_model_forward(VqaModel *m, const Batch *batch, int training, uint64_t step_seed, Arena *a,
                      float **logits, Err *e);
/* Accumulates d(loss)/d(parameters) of the trainable parameters into m->ps.grads
 * (the caller zeroes them once per optimizer step). Must follow a training forward. */
int vqa_model_backward(VqaModel *m, const float *dlogits, Arena *a, Err *e);

/* The start-up / --dry-run summary: parameters per module (image encoder, text encoder,
 * fusion, classifier), trainable vs frozen, memory of parameters, buffers, gradients and
 * AdamW state. Multi-line, written into buf. */
void vqa_model_summary(const VqaModel *m, char *buf, size_t n);

/* Applies a freeze spec to the tensors under prefix (exposed for tests and tools); f NULL =
 * none. kind: 0 = ResNet stage names, 1 = BERT stage names (layerN for N in 0..bert_layers-1,
 * or the name under prefix, e.g. encoder.layer.2). Errors: a stage that names no tensor, a
 * BERT layer out of range, all / none as a name in a list, an unknown mode. A list of no
 * names leaves nothing trainable (= all). */
int vqa_apply_freeze(ParamStore *ps, const char *prefix, const FreezeSpec *f, int kind, int bert_layers,
                     Err *e);
/* "all" | "none" | the list's names joined by ", " (e.g. "layer3, layer4"), as the summary
 * prints it; a list of no names is "all", f NULL "none". cap >= FREEZE_TEXT_MAX holds any. */
void vqa_freeze_format(const FreezeSpec *f, char *buf, size_t cap);

#endif
