/* bert.h: the BERT text encoder, exactly Hugging Face BertModel (post-LN, GELU erf,
 * LayerNorm eps 1e-12, absolute position + token-type embeddings, tanh pooler over token 0),
 * with HF parameter names, so TinyBERT / MiniLM / bert-base weights load unchanged.
 * (Implementation: bert.c, written by the `bert` helper against this contract.)
 *
 * Parameters registered by bert_build(), each as prefix + HF name (prefix e.g.
 * "text_encoder."), shapes with H = hidden, F = ffn, V = vocab, P = max_positions,
 * T = type_vocab; linear weights are [out, in]:
 *   embeddings.word_embeddings.weight        [V, H]   PK_EMBEDDING  normal(0.02), row pad_token_id = 0
 *   embeddings.position_embeddings.weight    [P, H]   PK_EMBEDDING  normal(0.02)
 *   embeddings.token_type_embeddings.weight  [T, H]   PK_EMBEDDING  normal(0.02)
 *   embeddings.LayerNorm.{weight,bias}       [H]      PK_NORM       1 / 0
 *   encoder.layer.N.attention.self.{query,key,value}.weight [H, H]  PK_WEIGHT normal(0.02)
 *   encoder.layer.N.attention.self.{query,key,value}.bias   [H]     PK_BIAS   0
 *   encoder.layer.N.attention.output.dense.{weight [H, H], bias [H]}
 *   encoder.layer.N.attention.output.LayerNorm.{weight,bias} [H]
 *   encoder.layer.N.intermediate.dense.{weight [F, H], bias [F]}
 *   encoder.layer.N.output.dense.{weight [H, F], bias [H]}
 *   encoder.layer.N.output.LayerNorm.{weight,bias} [H]
 *   pooler.dense.{weight [H, H], bias [H]}
 * in exactly this order, all in the given ParamGroup (PG_TEXT in the VQA model).
 * TinyBERT 4L-312D: 14,350,248 parameters.
 *
 * Forward, per layer (x [B, L, H]; mask [B, L] 1 = token):
 *   e   = LN(word[tok] + pos[0..L) + type[tt]) ; dropout
 *   q,k,v = x Wq^T + bq, ...                    ([B, L, H], heads interleaved as HF)
 *   a   = attention(q, k, v, mask)  (probs dropout) ; x1 = LN(x + dropout(a Wo^T + bo))
 *   x2  = LN(x1 + dropout(gelu(x1 W1^T + b1) W2^T + b2))
 *   sequence = x2 of the last layer [B, L, H];  pooled = tanh(sequence[:, 0] Wp^T + bp) [B, H]
 * Dropout (p = cfg.dropout) only when training; keep decisions come from
 * (dropout_seed, a per-site counter: 0 = embeddings, 1+3l / 2+3l / 3+3l = layer l's attention
 * probs / attention output / FFN output), so a forward is reproducible from its seed.
 * The word embedding's row pad_token_id gets no gradient (HF padding_idx); the position and
 * token-type tables have none. Padding positions of `sequence` are computed as HF does.
 * Host reads: tokens and token_types are validated on the host, and position / type ids
 * are built in arena memory on the host (a device backend needs them copied over).
 *
 * Freezing: through the ParamStore (ps_set_trainable_prefix on prefix + "embeddings.",
 * prefix + "encoder.layer.N.", prefix + "pooler.") BEFORE ps_finalize. bert_forward reads
 * the trainable flags: when training, activations are kept only from the lowest trainable
 * layer up, and bert_backward stops there (no dx into frozen layers below, no grads for
 * frozen tensors). A fully frozen encoder keeps nothing and its backward is a no-op. */
#ifndef VQA_BERT_H
#define VQA_BERT_H

#include <stdint.h>

#include "model/params.h"
#include "ops/backend.h"
#include "ops/tensor.h"
#include "util/err.h"

typedef struct BertConfig {
    int layers;         /* 4 */
    int hidden;         /* 312 */
    int heads;          /* 12 (hidden % heads == 0) */
    int ffn;            /* 1200 */
    int vocab;          /* 30522 */
    int max_positions;  /* 512 */
    int type_vocab;     /* 2 */
    int pad_token_id;   /* 0: its word-embedding row is initialized to 0 and gets no gradient */
    float dropout;      /* 0.1: hidden and attention-probability dropout */
    float eps;          /* 1e-12 */
} BertConfig;

/* TinyBERT General 4L-312D defaults (above). */
void bert_config_tinybert(BertConfig *c);
/* Checks the config (positive sizes, hidden % heads == 0); errors name the field. */
int bert_config_check(const BertConfig *c, Err *e);

typedef struct BertState BertState; /* private to bert.c: parameter indices, saved activations */

typedef struct Bert {
    BertConfig cfg;
    ParamStore *ps;     /* borrowed */
    char prefix[64];
    int first_param;    /* this encoder's tensors are ps indices [first_param, end_param) */
    int end_param;
    BertState *st;      /* owned */
    /* outputs of the last bert_forward (arena memory, valid until the arena is reset): */
    int B, L;
    float *sequence;    /* [B, L, H] (padding positions computed too, as HF) */
    float *pooled;      /* [B, H] */
    const float *mask;  /* [B, L] the mask given to bert_forward (borrowed; NULL = all tokens);
                         * for a device backend, its copy in the device arena */
    /* gradient-ready reports of bert_backward (params.h; set by the owner after bert_build,
     * zero = none): after the pooler, after each layer (top down), after the embeddings,
     * X = ps_grads_from(the module's first tensor) */
    PsGradHook grad_ready;
} Bert;

/* Registers the parameters (above) in ps under prefix, in group. */
int bert_build(Bert *m, const BertConfig *c, ParamStore *ps, const char *prefix,
               ParamGroup group, Err *e);
void bert_free(Bert *m); /* safe on a zeroed or partially built Bert (callers free after a failed build) */

/* tokens, token_types [B, L] int32 (token_types may be NULL = all 0); mask [B, L]
 * (1 = token, 0 = padding; NULL = all tokens). L <= max_positions. Activations and the
 * outputs come from arena a. training: dropout on and activations kept for backward
 * (from the lowest trainable layer up). Errors: token id >= vocab (naming batch row and
 * position), L too long. */
int bert_forward(Bert *m, const Backend *be, const int32_t *tokens, const int32_t *token_types,
                 const float *mask, int B, int L, int training, uint64_t dropout_seed, Arena *a,
                 Err *e);
/* Accumulates parameter gradients into ps (trainable tensors only) from dsequence
 * [B, L, H] and/or dpooled [B, H] (either may be NULL). Must follow a training forward. */
int bert_backward(Bert *m, const Backend *be, const float *dsequence, const float *dpooled,
                  Arena *a, Err *e);

#endif
