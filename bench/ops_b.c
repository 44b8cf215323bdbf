/* ops_b.c: timings of the opsb CPU ops at TinyBERT / VQA sizes (B=64, L=20, hidden 312,
 * 12 heads, FFN 1200, 3129 answers), forward + backward, with all OpenMP threads against
 * a same-run baseline of one thread; attention also against naive loops (no GEMM).
 * Prints a table naming the machine. Not a test: timings are noisy on shared machines. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "util/log.h"

enum { B = 64, L = 20, H = 312, NH = 12, HD = 26, FFN = 1200, NA = 3129 };

typedef struct Bufs {
    float *x, *y, *dy, *dx, *w, *b, *dw, *db, *m, *r, *q, *k, *v, *probs, *ws, *t;
    uint8_t *mask;
    int32_t *ids;
} Bufs;

static void fill(float *p, size_t n, unsigned s) {
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)(s >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
}

/* which op runs: forward then backward, at the sizes above */
static void run_op(int op, Bufs *z) {
    const size_t nf = (size_t)B * L * FFN, nh = (size_t)B * L * H;
    switch (op) {
    case 0: op_gelu_forward(nf, z->x, z->y); op_gelu_backward(nf, z->x, z->dy, z->dx); break;
    case 1:
        op_layernorm_forward(B * L, H, z->x, z->w, z->b, 1e-12f, z->y, z->m, z->r);
        op_layernorm_backward(B * L, H, z->x, z->w, z->m, z->r, z->dy, z->dx, z->dw, z->db);
        break;
    case 2:
        op_dropout_forward(nf, 0.1f, 7, z->x, z->y, z->mask);
        op_dropout_backward(nf, 0.1f, z->mask, z->dy, z->dx);
        break;
    case 3:
        op_embedding_forward(B * L, 30522, H, z->ids, z->t, z->y);
        op_embedding_backward(B * L, 30522, H, z->ids, 0, z->dy, z->t);
        break;
    case 4:
        op_attention_forward(B, L, NH, HD, z->q, z->k, z->v, z->m, 0.1f, 9, z->probs, z->mask,
                             z->y, z->ws);
        op_attention_backward(B, L, NH, HD, z->q, z->k, z->v, z->probs, z->mask, 0.1f, z->dy,
                              z->dx, z->dw, z->db, z->ws);
        break;
    case 5: (void)op_bce_logits(B, NA, z->x, z->r, 1.0f, z->dx); break;
    }
    (void)nh;
}

/* naive attention forward (loops, no GEMM, one thread), the baseline for op 4's forward */
static void naive_attention(const float *q, const float *k, const float *v, float *out) {
    const int E = NH * HD;
    float s[L];
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < L; i++) {
                float mx = -1e30f, sum = 0;
                for (int j = 0; j < L; j++) {
                    float d = 0;
                    for (int c = 0; c < HD; c++)
                        d += q[(b * L + i) * E + h * HD + c] * k[(b * L + j) * E + h * HD + c];
                    s[j] = d / sqrtf(HD);
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int j = 0; j < L; j++) s[j] = expf(s[j] - mx), sum += s[j];
                for (int c = 0; c < HD; c++) {
                    float o = 0;
                    for (int j = 0; j < L; j++) o += s[j] / sum * v[(b * L + j) * E + h * HD + c];
                    out[(b * L + i) * E + h * HD + c] = o;
                }
            }
}

static double time_it(void (*f)(int, Bufs *), int op, Bufs *z, int reps) {
    f(op, z); /* warm-up */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = time_now();
        f(op, z);
        double t = time_now() - t0;
        best = t < best ? t : best;
    }
    return best;
}

static void run_naive(int op, Bufs *z) { (void)op; naive_attention(z->q, z->k, z->v, z->y); }
static void run_attn_fwd(int op, Bufs *z) {
    (void)op;
    op_attention_forward(B, L, NH, HD, z->q, z->k, z->v, NULL, 0.0f, 0, z->probs, NULL, z->y, z->ws);
}

int main(void) {
    const size_t big = (size_t)B * L * FFN + (size_t)NA * B;
    Bufs z;
    float **fs[] = {&z.x, &z.y, &z.dy, &z.dx, &z.q, &z.k, &z.v};
    for (size_t i = 0; i < sizeof fs / sizeof *fs; i++) {
        *fs[i] = malloc(big * 4);
        fill(*fs[i], big, (unsigned)i + 1);
    }
    z.w = malloc(4096 * 4), z.b = malloc(4096 * 4), z.dw = malloc((size_t)B * L * H * 4);
    z.db = malloc((size_t)B * L * H * 4), z.m = malloc(big * 4), z.r = malloc(big * 4);
    fill(z.w, 4096, 11), fill(z.b, 4096, 12), fill(z.r, big, 13);
    for (size_t i = 0; i < big; i++) z.m[i] = 1.0f, z.r[i] = z.r[i] > 0.8f ? 1.0f : 0.0f;
    z.probs = malloc((size_t)B * NH * L * L * 4);
    z.ws = malloc(op_attention_workspace(B, L, NH, HD) * 4);
    z.t = calloc((size_t)30522 * H, 4);
    z.mask = malloc(big);
    z.ids = malloc(sizeof(int32_t) * B * L);
    for (int i = 0; i < B * L; i++) z.ids[i] = (i * 7919) % 30522;

    char cpu[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            snprintf(cpu, sizeof cpu, "%s", strchr(line, ':') + 2);
            cpu[strcspn(cpu, "\n")] = 0;
            break;
        }
    if (f) fclose(f);
    const int nt = omp_get_max_threads();
    printf("machine: %s, %d OpenMP threads; best of 20 runs, fwd+bwd\n", cpu, nt);
    printf("%-34s %-22s %10s %14s %7s\n", "op", "size", "ours ms", "baseline ms", "ratio");
    const char *names[] = {"gelu", "layernorm", "dropout p=0.1", "embedding (V=30522)",
                           "attention (mask, p=0.1)", "bce_logits"};
    const char *sizes[] = {"[64*20, 1200]", "[64*20, 312]", "[64*20, 1200]", "[64*20] x 312",
                           "B64 L20 nh12 hd26", "[64, 3129]"};
    for (int op = 0; op < 6; op++) {
        omp_set_num_threads(1);
        double t1 = time_it(run_op, op, &z, 20);
        omp_set_num_threads(nt);
        double tn = time_it(run_op, op, &z, 20);
        char what[64];
        snprintf(what, sizeof what, "%s, %d thr vs 1", names[op], nt);
        printf("%-34s %-22s %10.3f %14.3f %7.2f\n", what, sizes[op], tn * 1e3, t1 * 1e3, t1 / tn);
    }
    omp_set_num_threads(1);
    double tnaive = time_it(run_naive, 0, &z, 20);
    double tours = time_it(run_attn_fwd, 0, &z, 20);
    printf("%-34s %-22s %10.3f %14.3f %7.2f\n", "attention fwd 1 thr vs naive loops",
           "B64 L20 nh12 hd26", tours * 1e3, tnaive * 1e3, tnaive / tours);
    return 0;
}
