/* attention_cuda.c: multi-head scaled dot-product attention on the GPU, the math of
 * src/ops/attention.c (HF BertSelfAttention), with strided-batched cuBLAS products.
 *
 * q, k, v, out [B, L, E], E = nh * hd, head h = columns h*hd .. (interleaved, as HF). For a
 * fixed head h the (b, h) slices are L*E floats apart, and their probs [B, nh, L, L] slices
 * nh*L*L apart, so each product is ONE strided-batched GEMM over b, per head (nh launches):
 *   S  = Q K^T / sqrt(hd)                      -> probs (scores on entry to the row kernel)
 *   P  = softmax(S + (1 - m) * -FLT_MAX)        saved in probs (before dropout)
 *   Pd = P * keep / (1 - p)                     -> ws (keep: the CPU's mask on the flat index)
 *   O  = Pd V
 * Backward (accumulating):
 *   dV += Pd^T dO ;  dPd = dO V^T ;  dP = dPd keep/(1-p) ;  dS = P (dP - rowsum(dP P))
 *   dQ += dS K / sqrt(hd) ;  dK += dS^T Q / sqrt(hd)
 * ws: 2 * B*nh*L*L floats (Pd, then dS; and dP). */
#include <math.h>

#include "cuda/gpu_internal.h"

size_t cu_attention_workspace(const Backend *be, int B, int L, int nh, int hd) {
    (void)be, (void)hd;
    return 2 * (size_t)B * nh * L * L;
}

void cu_attention_forward(const Backend *be, int B, int L, int nh, int hd, const float *q, const float *k,
                          const float *v, const float *key_mask, float p, uint64_t seed, float *probs,
                          uint8_t *drop_mask, float *out, float *ws) {
    GpuContext *g = be->ctx;
    if (gpu_failed(g) || B <= 0 || L <= 0) return;
    const int E = nh * hd;
    const long long LL = (long long)L * L, sx = (long long)L * E, sp = (long long)nh * LL;
    const float alpha = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < nh; h++)
        cu_gemm_strided(g, 0, 1, L, L, hd, alpha, q + (size_t)h * hd, E, sx, k + (size_t)h * hd, E, sx, 0.0f,
                        probs + (size_t)h * LL, L, sp, B);
    cu_attn_softmax_dropout(g, B, nh, L, key_mask, p, seed, probs, ws, drop_mask);
    const float *A = p > 0.0f ? ws : probs;
    for (int h = 0; h < nh; h++)
        cu_gemm_strided(g, 0, 0, L, hd, L, 1.0f, A + (size_t)h * LL, L, sp, v + (size_t)h * hd, E, sx, 0.0f,
                        out + (size_t)h * hd, E, sx, B);
}

void cu_attention_backward(const Backend *be, int B, int L, int nh, int hd, const float *q, const float *k,
                           const float *v, const float *probs, const uint8_t *drop_mask, float p, const float *dout,
                           float *dq, float *dk, float *dv, float *ws) {
    GpuContext *g = be->ctx;
    if (gpu_failed(g) || B <= 0 || L <= 0 || (!dq && !dk && !dv)) return;
    const int E = nh * hd;
    const long long LL = (long long)L * L, sx = (long long)L * E, sp = (long long)nh * LL;
    const size_t n = (size_t)B * nh * LL;
    const float alpha = 1.0f / sqrtf((float)hd);
    float *Pd = ws, *dP = ws + n;
    if (dv) {
        const float *A = probs;
        if (p > 0.0f) {
            cu_attn_dropped_probs(g, n, p, probs, drop_mask, Pd);
            A = Pd;
        }
        for (int h = 0; h < nh; h++) /* dV [L, hd] += Pd^T [L, L] @ dO [L, hd] */
            cu_gemm_strided(g, 1, 0, L, hd, L, 1.0f, A + (size_t)h * LL, L, sp, dout + (size_t)h * hd, E, sx, 1.0f,
                            dv + (size_t)h * hd, E, sx, B);
    }
    if (!dq && !dk) return;
    for (int h = 0; h < nh; h++) /* dPd [L, L] = dO [L, hd] @ V^T */
        cu_gemm_strided(g, 0, 1, L, L, hd, 1.0f, dout + (size_t)h * hd, E, sx, v + (size_t)h * hd, E, sx, 0.0f,
                        dP + (size_t)h * LL, L, sp, B);
    float *dS = Pd; /* Pd is no longer needed */
    cu_attn_softmax_backward(g, B * nh * L, L, p, probs, drop_mask, dP, dS);
    for (int h = 0; h < nh; h++) {
        if (dq) /* dQ [L, hd] += alpha dS [L, L] @ K [L, hd] */
            cu_gemm_strided(g, 0, 0, L, hd, L, alpha, dS + (size_t)h * LL, L, sp, k + (size_t)h * hd, E, sx, 1.0f,
                            dq + (size_t)h * hd, E, sx, B);
        if (dk) /* dK += alpha dS^T @ Q */
            cu_gemm_strided(g, 1, 0, L, hd, L, alpha, dS + (size_t)h * LL, L, sp, q + (size_t)h * hd, E, sx, 1.0f,
                            dk + (size_t)h * hd, E, sx, B);
    }
}
