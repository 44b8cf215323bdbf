/* batch.h: one batch as the loader hands it to the trainer (host memory).
 * The loader owns the buffers (a ring of Batch slots); the trainer borrows one per step. */
#ifndef VQA_BATCH_H
#define VQA_BATCH_H

#include <stdint.h>

typedef struct Batch {
    int size;          /* rows filled (B); rows >= n_real are padding (weight 0) */
    int n_real;        /* real samples in this batch (last batch may be padded) */
    int image_size;    /* H = W */
    int max_len;       /* L */
    int n_answers;     /* A (answer vocabulary size) */
    float *images;     /* [B, 3, H, W] NCHW, ImageNet-normalized */
    int32_t *tokens;   /* [B, L] WordPiece ids, [CLS] q [SEP] then [PAD]=0 */
    float *attn_mask;  /* [B, L] 1 = token, 0 = padding */
    int32_t *token_types; /* [B, L] all 0 for single-sentence input */
    float *targets;    /* [B, A] soft scores (0, .3, .6, .9, 1); NULL for a split without answers */
    int64_t *question_ids; /* [B] */
    int64_t *sample_index; /* [B] index into the dataset (for evaluation bookkeeping) */
} Batch;

#endif
