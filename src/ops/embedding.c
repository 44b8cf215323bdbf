/* embedding.c: table lookup (token, position and token-type embeddings of BERT).
 *
 * y[n, :] = table[ids[n], :]                       ids [N], table [V, D], y [N, D]
 * dtable[ids[n], :] += dy[n, :]  for every n with ids[n] != padding_idx   (PyTorch semantics)
 *
 * ids must lie in [0, V): the tokenizer and the model check them where the facts are
 * known (file, position); the op trusts them.
 *
 * The backward is a scatter-add, where two rows n with the same id would race if the
 * loop ran over n in parallel. Instead each thread owns a block of COLUMNS of dtable and
 * walks all n in order: no two threads ever touch the same float, and every element sums
 * its contributions in the order n = 0, 1, ..., so the result is bit-identical for any
 * thread count. */
#include "ops/ops.h"

#define EMB_PAR_MIN 16384
/* Columns per block: 16 floats = one 64-byte cache line, so threads do not share lines. */
#define EMB_COL_BLOCK 16

void op_embedding_forward(int N, int V, int D, const int32_t *ids, const float *table, float *y) {
    (void)V;
#pragma omp parallel for schedule(static) if ((size_t)N * D >= EMB_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *src = table + (size_t)ids[n] * D;
        float *dst = y + (size_t)n * D;
        for (int d = 0; d < D; d++) dst[d] = src[d];
    }
}

void op_embedding_backward(int N, int V, int D, const int32_t *ids, int padding_idx,
                           const float *dy, float *dtable) {
    (void)V;
    if (!dtable) return;
    const int nblocks = (D + EMB_COL_BLOCK - 1) / EMB_COL_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)N * D >= EMB_PAR_MIN)
    for (int blk = 0; blk < nblocks; blk++) {
        const int d0 = blk * EMB_COL_BLOCK;
        const int d1 = d0 + EMB_COL_BLOCK < D ? d0 + EMB_COL_BLOCK : D;
        for (int n = 0; n < N; n++) {
            if (ids[n] == padding_idx) continue; /* padding row gets no gradient */
            float *dst = dtable + (size_t)ids[n] * D;
            const float *g = dy + (size_t)n * D;
            for (int d = d0; d < d1; d++) dst[d] += g[d];
        }
    }
}
