/* attention.c: multi-head scaled dot-product attention with a key padding mask, exactly
 * as Hugging Face BertSelfAttention (eager) computes it, forward and backward.
 *
 * Shapes: q, k, v, out [B, L, E] with E = nh * hd, heads interleaved in the last dim
 * (head h = columns h*hd .. h*hd+hd-1, as HF's transpose_for_scores). For each (b, h),
 * with Q, K, V, O the [L, hd] slices (row stride E) and m = key_mask[b, :] ([L]):
 *   S  = Q K^T / sqrt(hd) + (1 - m)[None, :] * (-FLT_MAX)      [L, L]  (HF: finfo(f32).min)
 *   P  = softmax_rows(S)                                        saved in probs [B, nh, L, L]
 *   Pd = P * keep / (1 - p)                                     dropout on probs, keep in drop_mask
 *   O  = Pd V
 * Backward (accumulating into dq, dk, dv; NULL skips):
 *   dV += Pd^T dO
 *   dPd = dO V^T ;  dP = dPd * keep / (1 - p)
 *   dS  = P * (dP - rowsum(dP * P))                               (softmax backward)
 *   dQ += dS K / sqrt(hd) ;  dK += dS^T Q / sqrt(hd)
 * A masked key gets probability ~exp(-FLT_MAX) = 0; a fully masked row has all scores
 * equal to -FLT_MAX (the |score| is below its rounding) and so is uniform, as in HF.
 * The dropout mask of element (b, h, i, j) is the one op_dropout_forward would give to the
 * flat index ((b*nh + h)*L + i)*L + j of probs, under the same seed.
 *
 * probs holds P BEFORE dropout: the softmax backward needs P everywhere, including where
 * dropout zeroed Pd; Pd is rebuilt from P and drop_mask.
 *
 * Parallelism: one (b, h) pair is three GEMMs on strided slices (cblas_sgemm with leading
 * dimension E, so no transposes are materialized). Pairs are spread over OpenMP threads;
 * each pair's GEMMs are small (L*L*hd) and run single-threaded inside OpenBLAS (below its
 * threading threshold; above it, OpenBLAS serializes concurrent callers, which stays correct).
 * Scratch comes in ATT_SLOTS fixed slots of 2*L*L floats: slot s serves pairs s, s+slots, ...
 * so the workspace size and the results do not depend on the thread count. */
#include <cblas.h>
#include <float.h>
#include <math.h>

#include "ops/ops.h"
#include "ops/ops_internal.h"

#define ATT_SLOTS 64

static int att_slots(int B, int nh) {
    long pairs = (long)B * nh;
    return pairs < ATT_SLOTS ? (int)(pairs > 0 ? pairs : 1) : ATT_SLOTS;
}

size_t op_attention_workspace(int B, int L, int nh, int hd) {
    (void)hd;
    return (size_t)att_slots(B, nh) * 2 * (size_t)L * L;
}

/* Pd = P * keep / (1 - p) for one pair, optionally storing keep. base = flat index of P[0]. */
static void att_dropout_probs(int LL, const float *P, float p, uint64_t seed_mixed, size_t base,
                              float *Pd, uint8_t *keep) {
    const float scale = 1.0f / (1.0f - p);
    for (int i = 0; i < LL; i++) {
        int k = p < 1.0f && opi_dropout_keep(seed_mixed, (uint64_t)(base + i), p);
        Pd[i] = k ? P[i] * scale : 0.0f;
        if (keep) keep[i] = (uint8_t)k;
    }
}

void op_attention_forward(int B, int L, int nh, int hd, const float *q, const float *k,
                          const float *v, const float *key_mask, float p, uint64_t seed,
                          float *probs, uint8_t *drop_mask, float *out, float *ws) {
    const int E = nh * hd, slots = att_slots(B, nh), npairs = B * nh;
    const size_t LL = (size_t)L * L;
    const float alpha = 1.0f / sqrtf((float)hd);
    const uint64_t sm = opi_dropout_seed(seed);
#pragma omp parallel for schedule(static)
    for (int s = 0; s < slots; s++) {
        float *Pd = ws + (size_t)s * 2 * LL;
        for (int pair = s; pair < npairs; pair += slots) {
            const int b = pair / nh, h = pair % nh;
            const size_t off = (size_t)b * L * E + (size_t)h * hd;
            float *P = probs + (size_t)pair * LL;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, hd, alpha, q + off, E,
                        k + off, E, 0.0f, P, L);
            if (key_mask) {
                const float *m = key_mask + (size_t)b * L;
                for (int i = 0; i < L; i++)
                    for (int j = 0; j < L; j++)
                        if (m[j] != 1.0f) P[(size_t)i * L + j] += (1.0f - m[j]) * -FLT_MAX;
            }
            for (int i = 0; i < L; i++) opi_softmax_row(L, P + (size_t)i * L, P + (size_t)i * L);
            const float *A = P;
            if (p > 0.0f) {
                att_dropout_probs((int)LL, P, p, sm, (size_t)pair * LL, Pd,
                                  drop_mask ? drop_mask + (size_t)pair * LL : NULL);
                A = Pd;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, hd, L, 1.0f, A, L,
                        v + off, E, 0.0f, out + off, E);
        }
    }
}

void op_attention_backward(int B, int L, int nh, int hd, const float *q, const float *k,
                           const float *v, const float *probs, const uint8_t *drop_mask, float p,
                           const float *dout, float *dq, float *dk, float *dv, float *ws) {
    const int E = nh * hd, slots = att_slots(B, nh), npairs = B * nh;
    const size_t LL = (size_t)L * L;
    const float alpha = 1.0f / sqrtf((float)hd);
    const float scale = p > 0.0f ? (p < 1.0f ? 1.0f / (1.0f - p) : 0.0f) : 1.0f;
    if (!dq && !dk && !dv) return;
#pragma omp parallel for schedule(static)
    for (int s = 0; s < slots; s++) {
        float *Pd = ws + (size_t)s * 2 * LL; /* dropped probs, then reused for dS */
        float *dP = Pd + LL;
        for (int pair = s; pair < npairs; pair += slots) {
            const int b = pair / nh, h = pair % nh;
            const size_t off = (size_t)b * L * E + (size_t)h * hd;
            const float *P = probs + (size_t)pair * LL;
            const uint8_t *keep = p > 0.0f ? drop_mask + (size_t)pair * LL : NULL;
            if (dv) {
                const float *A = P;
                if (keep) {
                    for (size_t i = 0; i < LL; i++) Pd[i] = keep[i] ? P[i] * scale : 0.0f;
                    A = Pd;
                }
                /* dV [L, hd] += Pd^T [L, L] @ dO [L, hd] */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, hd, L, 1.0f, A, L,
                            dout + off, E, 1.0f, dv + off, E);
            }
            if (!dq && !dk) continue;
            /* dPd [L, L] = dO [L, hd] @ V^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, hd, 1.0f, dout + off, E,
                        v + off, E, 0.0f, dP, L);
            if (keep)
                for (size_t i = 0; i < LL; i++) dP[i] = keep[i] ? dP[i] * scale : 0.0f;
            float *dS = Pd;
            for (size_t i = 0; i < LL; i++) dS[i] = 0.0f;
            for (int i = 0; i < L; i++)
                opi_softmax_row_backward(L, P + (size_t)i * L, dP + (size_t)i * L,
                                         dS + (size_t)i * L);
            /* dQ [L, hd] += alpha * dS [L, L] @ K [L, hd];  dK += alpha * dS^T @ Q */
            if (dq)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, hd, L, alpha, dS, L,
                            k + off, E, 1.0f, dq + off, E);
            if (dk)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, hd, L, alpha, dS, L,
                            q + off, E, 1.0f, dk + off, E);
        }
    }
}
