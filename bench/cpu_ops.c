/* cpu_ops.c: GFLOP/s of the CPU convolution and linear ops at ResNet-50 / TinyBERT sizes,
 * next to plain cblas_sgemm on the same M, N, K measured in the same run.
 *
 *   bench_cpu_ops [threads] [--quick] [--only=SUBSTRING]
 *
 * Convolutions at batch 8, 224x224 input: the 3x3 convs of each stage, the 1x1 convs, the
 * stem, without bias as in ResNet; forward and backward (dx + dw). The sgemm baseline of
 * a conv forward is its whole-batch GEMM: M = K, N = batch*P*Q, K = C*R*S (NN); of a
 * backward, the dW GEMM (NT) plus the dcol GEMM (TN) of the same sizes. BERT: tokens =
 * 64*20 rows through the TinyBERT linears (312x312, 312->1200, 1200->312, with bias),
 * baseline = the same sgemm(s) threaded by OpenBLAS itself. Each time is the minimum of
 * several runs (see time_pair). The machine (CPU model, threads, OpenBLAS core type,
 * OPENBLAS_* and OMP_* settings, load average) is printed above the table. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/ops.h"
#include "util/log.h"

typedef void (*bench_fn)(void *ctx);

/* Minimum seconds per call over `reps` calls after one warm-up call: on a shared machine
 * the minimum is the least disturbed run. */
static double time_min(bench_fn fn, void *ctx, int reps) {
    fn(ctx);
    double best = 1e30;
    for (int i = 0; i < reps; i++) {
        double t0 = time_now();
        fn(ctx);
        double t = time_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

/* Ours, then the baseline, in ROUNDS rounds; each keeps its best. The baseline wakes
 * OpenBLAS's own thread pool, whose idle threads then spin (OPENBLAS_THREAD_TIMEOUT,
 * 2^28 cycles = ~0.1 s) and would steal the cores from our OpenMP threads: each round
 * first waits them out. Rounds spread both over time, so a burst of load from another
 * process does not hit one side only. */
#define ROUNDS 3
static void time_pair(bench_fn fa, void *ca, bench_fn fb, void *cb, int reps, double *ta,
                      double *tb) {
    *ta = *tb = 1e30;
    for (int r = 0; r < ROUNDS; r++) {
        usleep(150 * 1000);
        double a = time_min(fa, ca, reps);
        double b = time_min(fb, cb, reps);
        if (a < *ta) *ta = a;
        if (b < *tb) *tb = b;
    }
}

static float *alloc_rand(size_t n, unsigned seed) {
    float *p = NULL;
    if (posix_memalign((void **)&p, 64, (n ? n : 1) * sizeof(float)) != 0) return NULL;
    unsigned s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((s >> 8) & 0xFFFF) / 65536.0f - 0.5f;
    }
    return p;
}

/* --only=SUBSTRING: run just the rows whose name contains it (for experiments). */
static const char *g_only = NULL;

/* ---- conv ---- */
typedef struct ConvB {
    ConvShape s;
    float *x, *w, *b, *y, *ws, *dx, *dw, *db;
} ConvB;

/* No bias: ResNet's convolutions have none (a batch-norm follows each). */
static void conv_fwd(void *c_) {
    ConvB *c = c_;
    op_conv2d_forward(&c->s, c->x, c->w, NULL, c->y, c->ws);
}
static void conv_bwd(void *c_) {
    ConvB *c = c_;
    op_conv2d_backward(&c->s, c->x, c->w, c->y, c->dx, c->dw, NULL, c->ws);
}

/* ---- plain sgemm: one or two products (a backward needs two) ---- */
typedef struct GemmB {
    int n;
    int tA[2], tB[2], M[2], N[2], K[2];
    float *A[2], *B[2], *C[2];
} GemmB;

static void gemm_add(GemmB *g, int tA, int tB, int M, int N, int K) {
    int i = g->n++;
    g->tA[i] = tA, g->tB[i] = tB, g->M[i] = M, g->N[i] = N, g->K[i] = K;
    g->A[i] = alloc_rand((size_t)M * K, 1 + i);
    g->B[i] = alloc_rand((size_t)K * N, 3 + i);
    g->C[i] = alloc_rand((size_t)M * N, 5 + i);
}

/* The baseline is OpenBLAS as a user gets it: threaded by OpenBLAS itself over the
 * same number of threads; ours runs with OpenBLAS at one thread (see gemm.c). */
static void gemm_run(void *g_) {
    GemmB *g = g_;
    openblas_set_num_threads(op_get_threads());
    for (int i = 0; i < g->n; i++) {
        int lda = g->tA[i] ? g->M[i] : g->K[i], ldb = g->tB[i] ? g->K[i] : g->N[i];
        cblas_sgemm(CblasRowMajor, g->tA[i] ? CblasTrans : CblasNoTrans,
                    g->tB[i] ? CblasTrans : CblasNoTrans, g->M[i], g->N[i], g->K[i], 1.0f, g->A[i],
                    lda, g->B[i], ldb, 0.0f, g->C[i], g->N[i]);
    }
    openblas_set_num_threads(1);
}

static void gemm_release(GemmB *g) {
    for (int i = 0; i < g->n; i++) free(g->A[i]), free(g->B[i]), free(g->C[i]);
    g->n = 0;
}

static void row(const char *what, const char *size, const char *mnk, double flops, double t_ours,
                double t_base) {
    double ours = flops / t_ours * 1e-9, base = flops / t_base * 1e-9;
    printf("| %-27s | %-20s | %-17s | %6.1f | %6.1f | %5.2f |\n", what, size, mnk, ours, base,
           ours / base);
    fflush(stdout);
}

static void bench_conv(const char *name, int N, int C, int H, int K, int R, int st, int pad,
                       int reps, int backward) {
    if (g_only && !strstr(name, g_only)) return;
    ConvB c;
    conv_shape_init(&c.s, N, C, H, H, K, R, R, st, pad);
    size_t nx = (size_t)N * C * H * H, nw = (size_t)K * C * R * R;
    size_t ny = (size_t)N * K * c.s.P * c.s.Q;
    c.x = alloc_rand(nx, 4), c.w = alloc_rand(nw, 5), c.b = alloc_rand((size_t)K, 6);
    c.y = alloc_rand(ny, 7), c.ws = alloc_rand(op_conv2d_workspace(&c.s), 8);
    c.dx = alloc_rand(nx, 9), c.dw = alloc_rand(nw, 10), c.db = alloc_rand((size_t)K, 11);
    int M = K, Ncols = N * c.s.P * c.s.Q, Kd = C * R * R;
    double flops = 2.0 * M * Ncols * Kd;
    char size[64], mnk[64], what[64];
    snprintf(size, sizeof size, "%d->%d %dx%d/%d @%d", C, K, R, R, st, H);
    snprintf(mnk, sizeof mnk, "%dx%dx%d", M, Ncols, Kd);
    GemmB g = {0};
    double t_ours, t_base;
    gemm_add(&g, 0, 0, M, Ncols, Kd);
    time_pair(conv_fwd, &c, gemm_run, &g, reps, &t_ours, &t_base);
    gemm_release(&g);
    snprintf(what, sizeof what, "conv %s fwd", name);
    row(what, size, mnk, flops, t_ours, t_base);
    if (backward) {
        gemm_add(&g, 0, 1, M, Kd, Ncols); /* dW = dy col^T */
        gemm_add(&g, 1, 0, Kd, Ncols, M); /* dcol = W^T dy */
        time_pair(conv_bwd, &c, gemm_run, &g, reps, &t_ours, &t_base);
        gemm_release(&g);
        snprintf(what, sizeof what, "conv %s bwd", name);
        row(what, size, mnk, 2 * flops, t_ours, t_base);
    }
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.ws), free(c.dx), free(c.dw), free(c.db);
}

/* ---- linear ---- */
typedef struct LinB {
    int N, in, out;
    float *x, *w, *b, *y, *dx, *dw, *db;
} LinB;

static void lin_fwd(void *l_) {
    LinB *l = l_;
    op_linear_forward(l->N, l->in, l->out, l->x, l->w, l->b, l->y);
}
static void lin_bwd(void *l_) {
    LinB *l = l_;
    op_linear_backward(l->N, l->in, l->out, l->x, l->w, l->y, l->dx, l->dw, l->db);
}

static void bench_linear(const char *name, int T, int in, int out, int reps) {
    if (g_only && !strstr(name, g_only)) return;
    LinB l = {T, in, out, alloc_rand((size_t)T * in, 12), alloc_rand((size_t)out * in, 13),
              alloc_rand((size_t)out, 14), alloc_rand((size_t)T * out, 15),
              alloc_rand((size_t)T * in, 16), alloc_rand((size_t)out * in, 17),
              alloc_rand((size_t)out, 18)};
    double flops = 2.0 * T * in * out;
    char size[64], mnk[64], what[64];
    snprintf(size, sizeof size, "%d tok, %d->%d", T, in, out);
    snprintf(mnk, sizeof mnk, "%dx%dx%d", T, out, in);
    GemmB g = {0};
    double t_ours, t_base;
    gemm_add(&g, 0, 1, T, out, in);
    time_pair(lin_fwd, &l, gemm_run, &g, reps, &t_ours, &t_base);
    gemm_release(&g);
    snprintf(what, sizeof what, "linear %s fwd", name);
    row(what, size, mnk, flops, t_ours, t_base);
    gemm_add(&g, 0, 0, T, in, out); /* dx = dy w */
    gemm_add(&g, 1, 0, out, in, T); /* dw = dy^T x */
    time_pair(lin_bwd, &l, gemm_run, &g, reps, &t_ours, &t_base);
    gemm_release(&g);
    snprintf(what, sizeof what, "linear %s bwd", name);
    row(what, size, mnk, 2 * flops, t_ours, t_base);
    free(l.x), free(l.w), free(l.b), free(l.y), free(l.dx), free(l.dw), free(l.db);
}

static void print_machine(void) {
    char model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *p = strchr(line, ':');
                if (p) {
                    snprintf(model, sizeof model, "%s", p + 2);
                    model[strcspn(model, "\n")] = 0;
                }
                break;
            }
        }
        fclose(f);
    }
    const char *ct = getenv("OPENBLAS_CORETYPE"), *l2 = getenv("OPENBLAS_L2_SIZE");
    const char *bind = getenv("OMP_PROC_BIND"), *wait = getenv("OMP_WAIT_POLICY");
    double load[3] = {0, 0, 0};
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
        fclose(lf);
    }
    printf("machine: %s; threads: %d (OpenMP; OpenBLAS single-threaded inside op_gemm)\n", model,
           op_get_threads());
    printf("OpenBLAS core: %s; OPENBLAS_CORETYPE=%s; OPENBLAS_L2_SIZE=%s; OMP_PROC_BIND=%s; "
           "OMP_WAIT_POLICY=%s; load average at start: %.2f\n",
           openblas_get_corename(), ct ? ct : "(unset)", l2 ? l2 : "(unset)",
           bind ? bind : "(unset)", wait ? wait : "(unset)", load[0]);
}

int main(int argc, char **argv) {
    int threads = 0, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = 1;
        else if (strncmp(argv[i], "--only=", 7) == 0) g_only = argv[i] + 7;
        else threads = atoi(argv[i]);
    }
    op_set_threads(threads);
    int reps = quick ? 2 : 5;
    print_machine();
    printf("GFLOP/s (best of %d rounds x %d runs); baseline = cblas_sgemm of the same M x N x K in this run\n\n",
           ROUNDS, reps);
    printf("| %-27s | %-20s | %-17s | %6s | %6s | %5s |\n", "what", "size", "M x N x K", "ours",
           "sgemm", "ratio");
    printf("|%s|%s|%s|%s|%s|%s|\n", "-----------------------------", "----------------------",
           "-------------------", "--------", "--------", "-------");
    const int B = 8;
    bench_conv("stage1 3x3", B, 64, 56, 64, 3, 1, 1, reps, 1);
    bench_conv("stage2 3x3", B, 128, 28, 128, 3, 1, 1, reps, 1);
    bench_conv("stage3 3x3", B, 256, 14, 256, 3, 1, 1, reps, 1);
    bench_conv("stage4 3x3", B, 512, 7, 512, 3, 1, 1, reps, 1);
    bench_conv("stage2 3x3 s2", B, 128, 56, 128, 3, 2, 1, reps, 1);
    bench_conv("stem 7x7 s2", B, 3, 224, 64, 7, 2, 3, reps, 1);
    bench_conv("stage1 1x1 in", B, 256, 56, 64, 1, 1, 0, reps, 1);
    bench_conv("stage1 1x1 out", B, 64, 56, 256, 1, 1, 0, reps, 1);
    bench_conv("stage2 1x1 in", B, 512, 28, 128, 1, 1, 0, reps, 1);
    bench_conv("stage3 1x1 in", B, 1024, 14, 256, 1, 1, 0, reps, 1);
    bench_conv("stage4 1x1 in", B, 2048, 7, 512, 1, 1, 0, reps, 1);
    bench_conv("stage4 1x1 out", B, 512, 7, 2048, 1, 1, 0, reps, 1);
    bench_conv("stage2 down 1x1 s2", B, 256, 56, 512, 1, 2, 0, reps, 1);
    const int T = 64 * 20;
    bench_linear("qkv/out 312", T, 312, 312, reps);
    bench_linear("ffn up", T, 312, 1200, reps);
    bench_linear("ffn down", T, 1200, 312, reps);
    return 0;
}
