/* cpu_dnnl.c: the demo model's image-encoder ops (configs/demo.yaml: ResNet-18 x0.5 cut
 * after layer2, 64x64 images, batch 64, fp32) through the reference backend and the
 * oneDNN backend, with the activations in NCHW (oneDNN: blocked formats with reorders, its
 * default for NCHW) and in NHWC (oneDNN on the NHWC memory itself), in the same run.
 *
 *   bench_cpu_dnnl [threads]
 *
 * Per layer shape: forward, and backward (conv: dx + dw, the stem dw only as in the
 * model; BN train: dx + dgamma + dbeta; max-pool, ReLU: dx), each the minimum over several calls, alternating backends in
 * rounds so that a burst of load from another process does not hit one side only; a
 * "model" line sums the shapes times how often the model runs them. The machine and the
 * load average (before and after) are printed with the table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/backend_dnnl.h"
#include "util/log.h"

#define REPS 5
#define ROUNDS 3

typedef struct Job {
    const Backend *be;
    int kind; /* 0 conv, 1 bn, 2 pool, 3 relu */
    int bwd;
    int no_dx; /* conv backward without dx (the stem: its input is the image) */
    ConvShape cs;
    PoolShape ps;
    ActDesc ad;
    float *x, *w, *y, *dy, *dx, *dw, *ws, *g, *b, *m, *r, *rm, *rv;
    int32_t *am;
    size_t n;
} Job;

static float *buf(size_t n) {
    float *p = NULL;
    if (posix_memalign((void **)&p, 64, (n ? n : 1) * sizeof(float)) != 0) exit(1);
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    return p;
}

static void run(Job *j) {
    const Backend *be = j->be;
    switch (j->kind) {
    case 0:
        if (!j->bwd) be->conv2d_forward(be, &j->cs, j->x, j->w, NULL, j->y, j->ws);
        else be->conv2d_backward(be, &j->cs, j->x, j->w, j->dy, j->no_dx ? NULL : j->dx, j->dw, NULL, j->ws);
        break;
    case 1:
        if (!j->bwd)
            be->batchnorm_forward_train(be, &j->ad, j->x, j->g, j->b, 0.1f, 1e-5f, j->rm, j->rv, j->y, j->m, j->r);
        else be->batchnorm_backward_train(be, &j->ad, j->x, j->g, j->m, j->r, j->dy, j->dx, j->dw, j->b);
        break;
    case 2:
        if (!j->bwd) be->maxpool_forward(be, &j->ps, j->x, j->y, j->am);
        else be->maxpool_backward(be, &j->ps, j->am, j->dy, j->dx);
        break;
    default:
        if (!j->bwd) be->relu_forward(be, DT_F32, j->n, j->x, j->y);
        else be->relu_backward(be, DT_F32, j->n, j->y, j->dy, j->dx);
    }
}

static double time_min(Job *j) {
    run(j);
    double best = 1e30;
    for (int i = 0; i < REPS; i++) {
        double t0 = time_now();
        run(j);
        double t = time_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

/* The job's buffers for its shape (shared by the backends: each backend gets its own
 * workspace and argmax). */
static void job_alloc(Job *j) {
    size_t in = 0, out = 0, wn = 1;
    if (j->kind == 0) {
        in = (size_t)j->cs.N * j->cs.C * j->cs.H * j->cs.W, out = (size_t)j->cs.N * j->cs.K * j->cs.P * j->cs.Q;
        wn = (size_t)j->cs.K * j->cs.C * j->cs.R * j->cs.S;
    } else if (j->kind == 1) {
        in = out = (size_t)j->ad.N * j->ad.C * j->ad.HW, wn = (size_t)j->ad.C;
    } else if (j->kind == 2) {
        in = (size_t)j->ps.N * j->ps.C * j->ps.H * j->ps.W, out = (size_t)j->ps.N * j->ps.C * j->ps.P * j->ps.Q;
    } else {
        in = out = j->n;
    }
    j->x = buf(in), j->dx = buf(in), j->y = buf(out), j->dy = buf(out), j->w = buf(wn), j->dw = buf(wn);
    j->g = buf(wn), j->b = buf(wn), j->m = buf(wn), j->r = buf(wn), j->rm = buf(wn), j->rv = buf(wn);
    for (size_t i = 0; i < wn; i++) j->r[i] = 1.0f, j->rv[i] = 1.0f;
    j->am = calloc(out ? out : 1, sizeof(int32_t));
}

static void job_free(Job *j) {
    free(j->x), free(j->dx), free(j->y), free(j->dy), free(j->w), free(j->dw), free(j->g), free(j->b);
    free(j->m), free(j->r), free(j->rm), free(j->rv), free(j->am);
}

static double loadavg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

#define NB 4 /* reference NCHW, oneDNN NCHW (blocked), reference NHWC, oneDNN NHWC */
static const int k_nhwc[NB] = {0, 0, 1, 1};

/* Times one shape in both directions on every backend; adds count x the times to tot. */
static void bench(const char *what, const char *size, Job *proto, int count, const Backend *const *bes,
                  double tot[2][NB]) {
    job_alloc(proto);
    Job jobs[NB];
    float *wss[NB] = {0};
    for (int k = 0; k < NB; k++) {
        jobs[k] = *proto;
        jobs[k].be = bes[k];
        jobs[k].cs.f.nhwc = jobs[k].ps.f.nhwc = jobs[k].ad.f.nhwc = k_nhwc[k];
        jobs[k].am = calloc(proto->kind == 2 ? (size_t)proto->ps.N * proto->ps.C * proto->ps.P * proto->ps.Q : 1, 4);
        if (proto->kind == 0) wss[k] = buf(bes[k]->conv2d_workspace(bes[k], &jobs[k].cs) + 16);
        jobs[k].ws = wss[k];
    }
    for (int bwd = 0; bwd < 2; bwd++) {
        double t[NB];
        for (int k = 0; k < NB; k++) t[k] = 1e30;
        for (int r = 0; r < ROUNDS; r++) {
            for (int k = 0; k < NB; k++) {
                if (bwd) { /* the forward first: max-pool's backward reads its argmax */
                    jobs[k].bwd = 0;
                    run(&jobs[k]);
                }
                jobs[k].bwd = bwd;
                double tk = time_min(&jobs[k]);
                if (tk < t[k]) t[k] = tk;
            }
        }
        printf("| %-14s | %-22s | %s | %2d | %7.3f | %7.3f | %7.3f | %7.3f | %5.2f | %5.2f | %5.2f |\n", what, size,
               bwd ? "bwd" : "fwd", count, t[0] * 1e3, t[1] * 1e3, t[2] * 1e3, t[3] * 1e3, t[0] / t[1], t[2] / t[3],
               t[0] / t[3]);
        for (int k = 0; k < NB; k++) tot[bwd][k] += count * t[k];
    }
    for (int k = 0; k < NB; k++) free(jobs[k].am), free(wss[k]);
    job_free(proto);
}

static void conv(const char *what, int count, int N, int C, int H, int K, int R, int st, int pad,
                 const Backend *const *bes, double tot[2][NB]) {
    Job j = {0};
    j.kind = 0;
    j.no_dx = C == 3;
    conv_shape_init(&j.cs, N, C, H, H, K, R, R, st, pad);
    char size[64];
    snprintf(size, sizeof size, "%dx%dx%d->%d %dx%d/%d", C, H, H, K, R, R, st);
    bench(what, size, &j, count, bes, tot);
}

static void bn(const char *what, int count, int N, int C, int HW, const Backend *const *bes, double tot[2][NB]) {
    Job j = {0};
    j.kind = 1;
    j.ad = act_desc(N, C, HW, (ActFmt){0, DT_F32});
    char size[64];
    snprintf(size, sizeof size, "%d x %d", C, HW);
    bench(what, size, &j, count, bes, tot);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    op_set_threads(threads);
    Err e;
    const Backend *dn = backend_cpu_dnnl_create(&e);
    if (!dn) {
        fprintf(stderr, "bench_cpu_dnnl: %s\n", e.msg);
        return 1;
    }
    const Backend *bes[NB] = {backend_cpu(), dn, backend_cpu(), dn};
    char model[256] = "unknown", line[512], v[64];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    }
    if (f) fclose(f);
    printf("machine: %s, %ld cores; op threads: %d; %s; load average at start: %.2f\n", model,
           sysconf(_SC_NPROCESSORS_ONLN), op_get_threads(), backend_cpu_dnnl_version(v, sizeof v), loadavg());
    printf("demo image encoder (ResNet-18 x0.5, layers up to layer2), batch 64, 64x64, fp32; ms per call "
           "(min of %d x %d); ref = the reference backend (im2col + OpenBLAS; NHWC: through NCHW for conv); "
           "dnn = the oneDNN backend (NCHW: blocked formats + reorders; NHWC: on the NHWC memory; it runs NCHW "
           "batch-norm and ReLU on the reference)\n\n",
           ROUNDS, REPS);
    printf("| op             | size                   | dir | x  | ref nchw | dnn nchw | ref nhwc | dnn nhwc | "
           "ref/dnn nchw | ref/dnn nhwc | ref nchw / dnn nhwc |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    double tot[2][NB] = {{0}};
    const int N = 64;
    conv("conv stem", 1, N, 3, 64, 32, 7, 2, 3, bes, tot);
    conv("conv layer1", 4, N, 32, 16, 32, 3, 1, 1, bes, tot);
    conv("conv layer2.0", 1, N, 32, 16, 64, 3, 2, 1, bes, tot);
    conv("conv layer2 ds", 1, N, 32, 16, 64, 1, 2, 0, bes, tot);
    conv("conv layer2", 3, N, 64, 8, 64, 3, 1, 1, bes, tot);
    bn("bn stem", 1, N, 32, 32 * 32, bes, tot);
    bn("bn layer1", 4, N, 32, 16 * 16, bes, tot);
    bn("bn layer2", 5, N, 64, 8 * 8, bes, tot);
    Job p = {0};
    p.kind = 2;
    pool_shape_init(&p.ps, N, 32, 32, 32, 3, 2, 1);
    bench("maxpool", "32x32x32 3x3/2", &p, 1, bes, tot);
    Job r = {0};
    r.kind = 3;
    r.n = (size_t)N * 32 * 32 * 32;
    bench("relu stem", "64x32x32x32", &r, 1, bes, tot);
    r.n = (size_t)N * 32 * 16 * 16;
    bench("relu layer1", "64x32x16x16", &r, 4, bes, tot);
    r.n = (size_t)N * 64 * 8 * 8;
    bench("relu layer2", "64x64x8x8", &r, 4, bes, tot);
    for (int bwd = 0; bwd < 2; bwd++)
        printf("| model total    | (sum of count x time)  | %s |    | %7.2f | %7.2f | %7.2f | %7.2f | %5.2f | %5.2f | %5.2f |\n",
               bwd ? "bwd" : "fwd", tot[bwd][0] * 1e3, tot[bwd][1] * 1e3, tot[bwd][2] * 1e3, tot[bwd][3] * 1e3,
               tot[bwd][0] / tot[bwd][1], tot[bwd][2] / tot[bwd][3], tot[bwd][0] / tot[bwd][3]);
    printf("\nload average at end: %.2f\n", loadavg());
    backend_cpu_dnnl_destroy(dn);
    return 0;
}
