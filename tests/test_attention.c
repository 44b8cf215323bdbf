/* test_attention.c: multi-head attention with key padding mask (HF BertSelfAttention):
 * reference values from tools/gen_op_refs_b.py (numpy einsum), masked keys get 0 probability
 * and fully masked rows are uniform, gradients w.r.t. q, k, v by finite differences with
 * p = 0 and with p > 0 (fixed seed: the dropout mask is deterministic), accumulation,
 * thread-count independence, and a naive-loop check at a size where OpenBLAS threads. */
// TEST_LIBS: vqa_ops
// TEST_LABELS: unit
#include <omp.h>

#include "opsb_ref.h"
#include "ops/ops.h"
#include "testlib.h"

/* Buffers for one attention problem. */
typedef struct Att {
    int B, L, nh, hd;
    float p;
    uint64_t seed;
    float *q, *k, *v, *mask, *probs, *out, *ws, *r;
    uint8_t *drop;
} Att;

static void att_alloc(Att *a, int B, int L, int nh, int hd, float p, uint64_t seed) {
    const size_t n = (size_t)B * L * nh * hd, pp = (size_t)B * nh * L * L;
    *a = (Att){B, L, nh, hd, p, seed, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    a->q = malloc(n * 4), a->k = malloc(n * 4), a->v = malloc(n * 4), a->r = malloc(n * 4);
    a->out = malloc(n * 4), a->mask = malloc((size_t)B * L * 4), a->probs = malloc(pp * 4);
    a->drop = malloc(pp);
    a->ws = malloc(op_attention_workspace(B, L, nh, hd) * 4);
    for (int i = 0; i < B * L; i++) a->mask[i] = 1.0f;
}

static void att_free(Att *a) {
    free(a->q), free(a->k), free(a->v), free(a->r), free(a->out), free(a->mask);
    free(a->probs), free(a->drop), free(a->ws);
}

static void att_fwd(Att *a) {
    op_attention_forward(a->B, a->L, a->nh, a->hd, a->q, a->k, a->v, a->mask, a->p, a->seed,
                         a->probs, a->drop, a->out, a->ws);
}

static double att_loss(void *ctx) {
    Att *a = ctx;
    att_fwd(a);
    double s = 0;
    for (size_t i = 0; i < (size_t)a->B * a->L * a->nh * a->hd; i++) s += (double)a->out[i] * a->r[i];
    return s;
}

static void matches_hf_reference_with_padding_mask(void) {
    enum { B = 3, L = 5, NH = 3, HD = 4, N = B * L * NH * HD, P = B * NH * L * L };
    const char *F = "opsb_attention.txt";
    Att a;
    att_alloc(&a, B, L, NH, HD, 0.0f, 0);
    if (ref_load_f(F, "q", a.q, N) || ref_load_f(F, "k", a.k, N) || ref_load_f(F, "v", a.v, N) ||
        ref_load_f(F, "mask", a.mask, B * L)) {
        CHECK(0);
        att_free(&a);
        return;
    }
    static double want_out[N], want_p[P];
    CHECK(ref_load(F, "out", want_out, N) == 0);
    CHECK(ref_load(F, "probs", want_p, P) == 0);
    att_fwd(&a);
    CHECK_MSG(ref_max_abs_diff(a.out, want_out, N) < 1e-5, "out %g", ref_max_abs_diff(a.out, want_out, N));
    CHECK_MSG(ref_max_abs_diff(a.probs, want_p, P) < 1e-6, "probs %g", ref_max_abs_diff(a.probs, want_p, P));
    att_free(&a);
}

static void masked_keys_get_zero_probability_and_full_mask_is_uniform(void) {
    const int B = 2, L = 6, nh = 2, hd = 3, n = B * L * nh * hd;
    Att a;
    att_alloc(&a, B, L, nh, hd, 0.0f, 0);
    TestRng rng = {51};
    trng_fill(&rng, a.q, n, -3, 3);
    trng_fill(&rng, a.k, n, -3, 3);
    trng_fill(&rng, a.v, n, -3, 3);
    a.mask[0 * L + 2] = 0.0f;                    /* batch 0: key 2 is padding */
    a.k[(0 * L + 2) * nh * hd] = 50.0f;          /* even with a huge score it stays at 0 */
    a.q[0] = 50.0f;
    for (int j = 0; j < L; j++) a.mask[1 * L + j] = 0.0f; /* batch 1: all padding */
    att_fwd(&a);
    for (int h = 0; h < nh; h++)
        for (int i = 0; i < L; i++) {
            const float *P0 = a.probs + (((size_t)0 * nh + h) * L + i) * L;
            const float *P1 = a.probs + (((size_t)1 * nh + h) * L + i) * L;
            CHECK(P0[2] < 1e-30f);
            double s = 0;
            for (int j = 0; j < L; j++) {
                s += P0[j];
                CHECK_NEAR(P1[j], 1.0 / L, 1e-7);
            }
            CHECK_NEAR(s, 1.0, 1e-6);
        }
    /* the output of a fully masked batch is the mean of V over the keys */
    for (int i = 0; i < L; i++)
        for (int c = 0; c < nh * hd; c++) {
            double m = 0;
            for (int j = 0; j < L; j++) m += a.v[((size_t)1 * L + j) * nh * hd + c];
            CHECK_NEAR(a.out[((size_t)1 * L + i) * nh * hd + c], m / L, 1e-5);
        }
    att_free(&a);
}

/* Gradcheck of q, k, v on odd sizes with a padding mask; returns the worst relative error. */
static double att_gradcheck(float p, uint64_t seed, int *n_dropped) {
    const int B = 2, L = 7, nh = 3, hd = 5, n = B * L * nh * hd;
    Att a;
    att_alloc(&a, B, L, nh, hd, p, seed);
    TestRng rng = {52};
    trng_fill(&rng, a.q, n, -1, 1);
    trng_fill(&rng, a.k, n, -1, 1);
    trng_fill(&rng, a.v, n, -1, 1);
    trng_fill(&rng, a.r, n, -1, 1);
    a.mask[L - 1] = a.mask[L - 2] = 0.0f; /* batch 0: two padded keys */
    float *dq = calloc(n, 4), *dk = calloc(n, 4), *dv = calloc(n, 4);
    att_fwd(&a);
    *n_dropped = 0;
    for (int i = 0; p > 0 && i < B * nh * L * L; i++) *n_dropped += !a.drop[i];
    float *wsb = malloc(op_attention_workspace(B, L, nh, hd) * 4);
    op_attention_backward(B, L, nh, hd, a.q, a.k, a.v, a.probs, a.drop, p, a.r, dq, dk, dv, wsb);
    double e = 0;
    e = fmax(e, gradcheck(att_loss, &a, a.q, dq, n, 1e-2, 0));
    e = fmax(e, gradcheck(att_loss, &a, a.k, dk, n, 1e-2, 0));
    e = fmax(e, gradcheck(att_loss, &a, a.v, dv, n, 1e-2, 0));
    free(dq), free(dk), free(dv), free(wsb);
    att_free(&a);
    return e;
}

static void gradients_match_finite_differences_without_dropout(void) {
    int nd;
    double e = att_gradcheck(0.0f, 0, &nd);
    CHECK_MSG(e < 1e-3, "rel err %g", e);
}

static void gradients_match_finite_differences_with_seeded_dropout(void) {
    int nd;
    double e = att_gradcheck(0.2f, 2024, &nd);
    CHECK_MSG(nd > 0, "no element was dropped");
    CHECK_MSG(e < 1e-3, "rel err %g", e);
}

static void dropout_mask_is_op_dropout_on_the_flat_probs_index(void) {
    const int B = 2, L = 5, nh = 3, hd = 4, n = B * L * nh * hd, np_ = B * nh * L * L;
    const float p = 0.3f;
    Att a;
    att_alloc(&a, B, L, nh, hd, p, 777);
    TestRng rng = {55};
    trng_fill(&rng, a.q, n, -1, 1);
    trng_fill(&rng, a.k, n, -1, 1);
    trng_fill(&rng, a.v, n, -1, 1);
    att_fwd(&a);
    float *ones = malloc(np_ * 4), *tmp = malloc(np_ * 4);
    uint8_t *m = malloc(np_);
    for (int i = 0; i < np_; i++) ones[i] = 1.0f;
    op_dropout_forward(np_, p, 777, ones, tmp, m);
    CHECK(memcmp(m, a.drop, np_) == 0);
    /* out = (P * keep / (1 - p)) V, with P the saved pre-dropout probabilities */
    const int E = nh * hd;
    double worst = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < L; i++)
                for (int c = 0; c < hd; c++) {
                    double o = 0;
                    for (int j = 0; j < L; j++) {
                        size_t pi = (((size_t)b * nh + h) * L + i) * L + j;
                        o += (m[pi] ? a.probs[pi] / (1.0 - p) : 0.0) * a.v[((size_t)b * L + j) * E + h * hd + c];
                    }
                    worst = fmax(worst, fabs(o - a.out[((size_t)b * L + i) * E + h * hd + c]));
                }
    CHECK_MSG(worst < 1e-5, "max diff %g", worst);
    free(ones), free(tmp), free(m);
    att_free(&a);
}

static void backward_accumulates_and_skips_null(void) {
    const int B = 1, L = 4, nh = 2, hd = 3, n = B * L * nh * hd;
    Att a;
    att_alloc(&a, B, L, nh, hd, 0.0f, 0);
    TestRng rng = {53};
    trng_fill(&rng, a.q, n, -1, 1);
    trng_fill(&rng, a.k, n, -1, 1);
    trng_fill(&rng, a.v, n, -1, 1);
    trng_fill(&rng, a.r, n, -1, 1);
    att_fwd(&a);
    float g0[3][24] = {{0}}, g1[3][24];
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < n; i++) g1[t][i] = 0.5f;
    op_attention_backward(B, L, nh, hd, a.q, a.k, a.v, a.probs, NULL, 0.0f, a.r, g0[0], g0[1],
                          g0[2], a.ws);
    op_attention_backward(B, L, nh, hd, a.q, a.k, a.v, a.probs, NULL, 0.0f, a.r, g1[0], NULL,
                          g1[2], a.ws);
    for (int i = 0; i < n; i++) {
        CHECK_NEAR(g1[0][i], 0.5f + g0[0][i], 1e-6);
        CHECK(g1[1][i] == 0.5f); /* dk NULL: untouched */
        CHECK_NEAR(g1[2][i], 0.5f + g0[2][i], 1e-6);
    }
    att_free(&a);
}

/* Naive attention in double with plain loops (no GEMM), for one (b, h). */
static void naive_attention(const Att *a, double *out) {
    const int L = a->L, E = a->nh * a->hd;
    double *s = malloc(sizeof(double) * L);
    for (int b = 0; b < a->B; b++)
        for (int h = 0; h < a->nh; h++)
            for (int i = 0; i < L; i++) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < L; j++) {
                    double d = 0;
                    for (int c = 0; c < a->hd; c++)
                        d += (double)a->q[((size_t)b * L + i) * E + h * a->hd + c] *
                             a->k[((size_t)b * L + j) * E + h * a->hd + c];
                    s[j] = d / sqrt(a->hd) + (1.0 - a->mask[b * L + j]) * -3.4028234663852886e38;
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < L; j++) s[j] = exp(s[j] - mx), sum += s[j];
                for (int c = 0; c < a->hd; c++) {
                    double o = 0;
                    for (int j = 0; j < L; j++) o += s[j] / sum * a->v[((size_t)b * L + j) * E + h * a->hd + c];
                    out[((size_t)b * L + i) * E + h * a->hd + c] = o;
                }
            }
    free(s);
}

static void large_heads_match_naive_loops_and_any_thread_count(void) {
    /* L*L*hd = 67*67*64 > 262144: past OpenBLAS's single-thread threshold, so concurrent
     * threaded GEMM calls from the pair loop are exercised too. */
    const int B = 3, L = 67, nh = 2, hd = 64;
    const size_t n = (size_t)B * L * nh * hd;
    Att a;
    att_alloc(&a, B, L, nh, hd, 0.0f, 0);
    TestRng rng = {54};
    trng_fill(&rng, a.q, n, -1, 1);
    trng_fill(&rng, a.k, n, -1, 1);
    trng_fill(&rng, a.v, n, -1, 1);
    for (int j = 50; j < L; j++) a.mask[1 * L + j] = 0.0f;
    double *want = malloc(n * sizeof(double));
    float *out1 = malloc(n * 4);
    naive_attention(&a, want);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    att_fwd(&a);
    memcpy(out1, a.out, n * 4);
    omp_set_num_threads(4);
    att_fwd(&a);
    omp_set_num_threads(saved);
    CHECK(memcmp(out1, a.out, n * 4) == 0);
    CHECK_MSG(ref_max_abs_diff(a.out, want, n) < 1e-5, "max diff %g", ref_max_abs_diff(a.out, want, n));
    free(want), free(out1);
    att_free(&a);
}

int main(void) {
    RUN(matches_hf_reference_with_padding_mask);
    RUN(masked_keys_get_zero_probability_and_full_mask_is_uniform);
    RUN(gradients_match_finite_differences_without_dropout);
    RUN(gradients_match_finite_differences_with_seeded_dropout);
    RUN(dropout_mask_is_op_dropout_on_the_flat_probs_index);
    RUN(backward_accumulates_and_skips_null);
    RUN(large_heads_match_naive_loops_and_any_thread_count);
    return test_summary();
}
