/* fusion.h: the fusion of image and question features and the answer classifier.
 * tools/gen_model_refs.py (class FusionHead) implements exactly this in PyTorch.
 *
 * Inputs: image features img (pooled [B, Ci], or for `attention` the grid [B, Ci, G] in
 * NCHW order with G = h*w cells), question features txt [B, Ht] (BERT pooled output).
 * hid = fusion.hidden, A = number of answers. Linear(x) = x W^T + b, W [out, in].
 *
 *   concat:    vi = ReLU(img_proj(img))  [B, hid]      (fusion.img_proj: Ci -> hid)
 *              vq = ReLU(txt_proj(txt))  [B, hid]      (fusion.txt_proj: Ht -> hid)
 *              f  = [vi, vq]             [B, 2 hid]
 *   mul:       vi, vq as above;  f = vi * vq          [B, hid]
 *   attention: V[b, i] = ReLU(img_proj(grid[b, :, i]))  [B, G, hid]   (per cell)
 *              vq = ReLU(txt_proj(txt))                 [B, hid]
 *              s[b, i] = k att(V[b, i] * vq[b])         [B, G]        (fusion.att: hid -> 1)
 *              a = softmax_i(s);  v[b] = sum_i a[b, i] V[b, i]        [B, hid]
 *              f = v * vq                               [B, hid]
 *   classifier (nn.Sequential names): h = Dropout_p(ReLU(classifier.0(f)))   (F -> hid)
 *              logits = classifier.3(h)                 [B, A]        (hid -> A)
 *   with F = 2 hid for concat, hid otherwise; p = fusion.dropout (only when training);
 *   k = fusion.att_scale (1 = the plain linear score). k > 1 sharpens the softmax from the
 *   start and multiplies how fast an Adam step moves the scores: at PyTorch's init the raw
 *   scores are ~0.1 apart, the attention is uniform over the cells, and the gradient that
 *   would make it focus is divided by the G cells it is spread over.
 *
 * Parameters (PyTorch nn.Linear default init U(+-1/sqrt(in)) for weight and bias, except
 * classifier.3.bias = -log(A - 1) with fusion.prior_bias: every answer's sigmoid starts at
 * 1/A instead of 1/2, so the first steps of the BCE loss (sum over A answers: A log 2 at
 * 1/2) are not spent pushing all A logits down with large, clipped gradients):
 *   fusion.img_proj.{weight [hid, Ci], bias}, fusion.txt_proj.{weight [hid, Ht], bias},
 *   fusion.att.{weight [1, hid], bias [1]} (attention only)          group PG_FUSION
 *   classifier.0.{weight [hid, F], bias}, classifier.3.{weight [A, hid], bias}
 *                                                                    group PG_CLASSIFIER
 * Only Backend ops are used (the per-cell projection and the attention sums are GEMMs on
 * the NCHW grid, no transposes), so the head runs unchanged on the CUDA backend. */
#ifndef VQA_FUSION_H
#define VQA_FUSION_H

#include <stdint.h>

#include "model/params.h"
#include "ops/backend.h"
#include "ops/tensor.h"
#include "util/err.h"

typedef enum FusionType { FUSION_CONCAT = 0, FUSION_MUL = 1, FUSION_ATTENTION = 2 } FusionType;

typedef struct FusionConfig {
    FusionType type;
    int img_dim;      /* Ci */
    int txt_dim;      /* Ht */
    int hidden;       /* hid */
    int num_answers;  /* A */
    float dropout;    /* p */
    float att_scale;  /* k: attention scores multiplied by k (attention only; 0 is taken as 1) */
    int prior_bias;   /* 1: classifier.3.bias starts at -log(A - 1) (see below), 0: PyTorch's init */
} FusionConfig;

/* "concat" | "mul" | "attention" -> type; -1 if unknown */
int fusion_type_parse(const char *s, FusionType *out);
const char *fusion_type_name(FusionType t);

typedef struct Fusion {
    FusionConfig cfg;
    ParamStore *ps;   /* borrowed */
    int img_w, img_b, txt_w, txt_b, att_w, att_b; /* att_*: -1 unless attention */
    int c0_w, c0_b, c3_w, c3_b;
    /* per forward (arena memory) */
    int B, G, training;
    float p;
    const float *img, *txt;
    float *vi;        /* [B, hid] or [B, G, hid] (post-ReLU) */
    float *vq;        /* [B, hid] */
    float *u;         /* attention: vq[b] * att.weight  [B, hid] */
    float *alpha;     /* attention: [B, G] */
    float *v;         /* attention: [B, hid] */
    float *f;         /* [B, F] */
    float *h;         /* [B, hid] post-ReLU */
    float *hd;        /* [B, hid] after dropout (= h when no dropout) */
    uint8_t *mask;    /* dropout keep mask or NULL */
    float *logits;    /* [B, A] */
    const float *ones;/* attention: [G] of 1 (bias broadcast over cells) */
} Fusion;

int fusion_build(Fusion *m, const FusionConfig *c, ParamStore *ps, Err *e);
/* img: [B, Ci] (concat, mul) or [B, Ci, G] (attention, grid_cells = G). Fills m->logits. */
int fusion_forward(Fusion *m, const Backend *be, const float *img, int grid_cells,
                   const float *txt, int B, int training, uint64_t dropout_seed, Arena *a,
                   Err *e);
/* From dlogits [B, A]: accumulates parameter gradients (trainable ones) and, when non-NULL,
 * dimg (same shape as img) and dtxt [B, Ht]. */
int fusion_backward(Fusion *m, const Backend *be, const float *dlogits, float *dimg, float *dtxt,
                    Arena *a, Err *e);

#endif
