/* vqa_model.h: the whole VQA fusion model: ResNet image encoder + BERT text encoder +
 * fusion head + classifier, sharing one ParamStore (so the optimizer and the all-reduce see
 * one flat parameter buffer and one flat gradient buffer).
 *
 * Parameter names (what checkpoints contain):
 *   image_encoder.<torchvision name>   e.g. image_encoder.layer4.2.conv3.weight  (PG_IMAGE)
 *   text_encoder.<HF BertModel name>   e.g. text_encoder.encoder.layer.3.output.dense.bias (PG_TEXT)
 *   fusion.{img_proj,txt_proj,att}.*   (PG_FUSION);  classifier.{0,3}.*   (PG_CLASSIFIER)
 *
 * Freezing (per encoder, a string): "all" | "none" | a list of the stages that stay
 * TRAINABLE, separated by commas/spaces (brackets allowed), everything else frozen:
 *   ResNet: stem (= conv1 + bn1), conv1, bn1, layer1 .. layer4, e.g. "[layer4]"
 *   BERT:   embeddings, layerN (= encoder.layer.N), pooler, e.g. "layer2, layer3, pooler"
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

typedef struct VqaModelConfig {
    /* model.image_encoder */
    int image_depth;                     /* arch resnet18/34/50/101 -> 18/34/50/101 */
    float image_width;                   /* 1.0 */
    char image_weights[VQA_PATH_MAX];    /* "" = none (random init) */
    char image_weights_prefix[64];       /* prefix of the names in the file, e.g. "" or "backbone." */
    char image_freeze[256];              /* "all" | "none" | trainable stage list */
    int image_grid;                      /* output: 1 = grid [B, C, h, w], 0 = pooled [B, C] */
    int image_stages;                    /* ResNet stages built, 1..4 (0 = 4) */
    ActFmt image_fmt;                    /* ResNet activation storage (resnet_set_format);
                                          * zeroed = plain {NCHW, fp32} */
    /* model.text_encoder */
    BertConfig text;
    char text_weights[VQA_PATH_MAX];
    char text_weights_prefix[64];        /* e.g. "bert." for original TinyBERT checkpoints */
    char text_freeze[256];
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

/* Applies a freeze spec to the tensors under prefix (exposed for tests and tools).
 * kind: 0 = ResNet stage names, 1 = BERT stage names. */
int vqa_apply_freeze(ParamStore *ps, const char *prefix, const char *spec, int kind, int bert_layers,
                     Err *e);

#endif
