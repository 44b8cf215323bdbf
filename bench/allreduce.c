/* allreduce.c: speed of the communication layer. Run under mpirun (2+ ranks):
 *
 *   mpirun -np 2 build/bench/bench_allreduce            bus bandwidth, 1 MB .. 256 MB
 *   mpirun -np 2 build/bench/bench_allreduce --step     step-time breakdown of the demo
 *                                                       model: how much of the gradient
 *                                                       all-reduce hides under backward
 *
 * Bandwidth table (nccl-tests' definitions): algbw = bytes / time, busbw = algbw * 2(n-1)/n
 * (the bytes each rank's link moves in a ring all-reduce). Rows: blocking comm_allreduce
 * and comm_iallreduce + comm_wait; baseline in the same run: memcpy of the same bytes on
 * one rank (the memory system the shared-memory transport is made of).
 *
 * Step table (--step): per rank, a model of resnet18 x0.25 at 64 px + a BERT sized by
 * --text-layers/--text-hidden/--vocab (default a small 2L-64H, vocab 1000), batch
 * --batch (32). Four timed regions, each started after a barrier so one rank's lateness is
 * not timed as communication, each repeat's time the slower rank's, median over --steps:
 * backward alone; the blocking all-reduce of the whole gradient buffer after it; grad_sync's
 * buckets all launched after backward; and backward with the buckets launched by the
 * grad_ready hook and progressed (comm_progress) at every report, plus the final wait.
 * hidden = (T_bwd + T_ar - T_ovl) / T_ar. Also printed: the process CPU time of the
 * all-reduce and the time spent inside comm_progress during backward (on CPU ranks the
 * shared-memory copies and sums run there, on the rank's own core).
 * Third variant: the same buckets given to the all-reduce thread (comm_set_async), rows
 * T_thr / T_arbt. --pin puts rank r's computing thread on CPU 2r and its all-reduce thread
 * on CPU 2r+1 (2 CPUs per rank): what the thread does when it has a core of its own.
 * Rank 0 prints; the machine is named. */
#define _GNU_SOURCE /* sched_setaffinity */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "comm/comm.h"
#include "model/vqa_model.h"
#include "ops/ops.h"
#include "train/grad_sync.h"
#include "util/log.h"

static void machine(char *buf, size_t cap) {
    char cpu[256] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            snprintf(cpu, sizeof cpu, "%s", c ? c + 2 : line);
            cpu[strcspn(cpu, "\n")] = '\0';
            break;
        }
    if (f) fclose(f);
    struct utsname u;
    uname(&u);
    const char *mm = getenv("MALLOC_MMAP_THRESHOLD_");
    snprintf(buf, cap, "%s, %s, %ld cores; MALLOC_MMAP_THRESHOLD_=%s", u.nodename, cpu, sysconf(_SC_NPROCESSORS_ONLN),
             mm ? mm : "(unset)");
}

static int die(Comm *c, const Err *e) {
    fprintf(stderr, "bench_allreduce: %s\n", e->msg);
    comm_abort(c, e->msg);
    return 1;
}

static int bandwidth(Comm *c) {
    int W = comm_world(c), R = comm_rank(c);
    size_t max_mb = 256;
    float *buf = malloc(max_mb << 20), *cp = malloc(max_mb << 20);
    if (!buf || !cp) return 1;
    memset(buf, 0, max_mb << 20);
    memset(cp, 0, max_mb << 20);
    Err e = {{0}};
    if (R == 0) {
        char m[512];
        machine(m, sizeof m);
        printf("comm all-reduce bandwidth: %d ranks, backend %s; machine: %s\n", W, comm_backend_name(c), m);
        printf("| %8s | %18s | %10s | %10s | %21s | %10s | %21s |\n", "size", "op", "time", "algbw", "busbw",
               "memcpy", "busbw / memcpy");
        printf("|---:|---|---:|---:|---:|---:|---:|\n");
    }
    for (size_t mb = 1; mb <= max_mb; mb *= 2) {
        size_t n = (mb << 20) / sizeof(float);
        int iters = (int)(512 / mb);
        if (iters < 3) iters = 3;
        if (iters > 20) iters = 20;
        for (int mode = 0; mode < 2; mode++) {
            double best = 1e30;
            for (int it = -1; it < iters; it++) { /* it = -1: warm-up */
                if (comm_barrier(c, &e) != 0) return die(c, &e);
                double t0 = time_now();
                if (mode == 0) {
                    if (comm_allreduce(c, buf, n, COMM_SUM, &e) != 0) return die(c, &e);
                } else {
                    int h;
                    if (comm_iallreduce(c, buf, n, COMM_SUM, &h, &e) != 0 || comm_wait(c, h, &e) != 0) return die(c, &e);
                }
                double t = time_now() - t0;
                /* the slowest rank's time is the collective's time */
                if (comm_allreduce_f64(c, &t, 1, COMM_MAX, &e) != 0) return die(c, &e);
                if (it >= 0 && t < best) best = t;
            }
            double t_cp = 1e30;
            if (R == 0)
                for (int it = 0; it < 3; it++) {
                    double t0 = time_now();
                    memcpy(cp, buf, mb << 20);
                    double t = time_now() - t0;
                    if (t < t_cp) t_cp = t;
                }
            if (R == 0) {
                double algbw = (double)(mb << 20) / best / 1e9, busbw = algbw * 2.0 * (W - 1) / W;
                double cpbw = (double)(mb << 20) / t_cp / 1e9;
                printf("| %5zu MB | %18s | %7.2f ms | %5.2f GB/s | %16.2f GB/s | %5.2f GB/s | %21.2f |\n", mb,
                       mode ? "iallreduce + wait" : "allreduce", best * 1e3, algbw, busbw, cpbw, busbw / cpbw);
            }
        }
    }
    free(buf);
    free(cp);
    return 0;
}

/* ---- step-time breakdown ---- */

/* The model of the breakdown: resnet18 x0.25 at 64 px and a BERT whose size the command
 * line sets (a wider/longer text encoder gives gradients big enough for the all-reduce to
 * matter next to backward), mul fusion 256, 100 answers. */
typedef struct StepOpts {
    int steps;          /* timed repeats (after one warm-up) */
    double bucket_mb;
    int batch, text_layers, text_hidden, vocab;
    int pin;            /* --pin: rank r computes on CPU 2r, its all-reduce thread on 2r+1 */
} StepOpts;

/* Pins the calling thread to one CPU (threads created afterwards inherit it). */
static int pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

enum { SS = 64, SL = 16, SA = 100 };

/* CPU time of this process (all its threads), seconds */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Timed regions, each after a barrier (so one rank's lateness is not timed as the other's
 * communication), each repeat's time the slower rank's, medians over repeats:
 *   T_bwd   backward alone, no hook (what a world of one pays)
 *   T_ar    blocking comm_allreduce of the whole gradient buffer, after backward
 *   T_arb   the same buckets grad_sync uses, all launched after backward, then waited
 *   T_ovl   backward with the grad_ready hook (buckets launched and progressed during
 *           backward) + gsync_finish
 * hidden = (T_bwd + T_ar - T_ovl) / T_ar  (and the same with T_arb). */
/* step_breakdown's timed regions (the rows of its table) */
enum { NT = 11 };

/* The benchmark's model: resnet18 x0.25, a BERT of o's size, mul fusion, all trainable. */
static void breakdown_model_config(VqaModelConfig *mc, const StepOpts *o) {
    vqa_model_config_default(mc, SA);
    mc->image_depth = 18;
    mc->image_width = 0.25f;
    mc->image_freeze.mode = FREEZE_NONE;
    int heads = o->text_hidden % 64 == 0 ? o->text_hidden / 64 : 1;
    mc->text = (BertConfig){o->text_layers, o->text_hidden, heads, 4 * o->text_hidden, o->vocab, 32, 2, 0, 0.0f, 1e-12f};
    mc->fusion_type = FUSION_MUL;
    mc->fusion_hidden = 256;
    mc->fusion_dropout = 0.0f;
    mc->seed = 1;
}

/* Deterministic per-rank inputs: images in [-1, 1), token ids in 1..vocab-1 (no padding),
 * every 17th answer a target. */
static void fill_inputs(float *img, size_t nimg, int32_t *tok, float *mask, float *tgt, int B, int R, int vocab) {
    for (size_t i = 0; i < nimg; i++) img[i] = (float)((i * 2654435761u + (unsigned)R) % 1000) / 500.f - 1.f;
    for (int i = 0; i < B * SL; i++) {
        tok[i] = 1 + (int32_t)(((unsigned)i * 7919u + (unsigned)R) % (unsigned)(vocab - 1));
        mask[i] = 1.f;
    }
    for (int i = 0; i < B * SA; i++) tgt[i] = (i % 17 == 0) ? 1.f : 0.f;
}

/* The breakdown table (rank 0): the medians med[NT] of step_breakdown's regions. */
static void print_breakdown(Comm *c, const StepOpts *o, const VqaModel *m, const GradSync *gs, const double *med,
                            int have_thread, const Err *te, long early, long done_early) {
    int W = comm_world(c), B = o->batch, n = o->steps;
    char pins[160] = "threads not pinned";
    if (o->pin)
        snprintf(pins, sizeof pins, "--pin: rank r computes on CPU 2r, its all-reduce thread runs on CPU 2r+1");
    char mstr[512];
    machine(mstr, sizeof mstr);
    printf("step-time breakdown: %d ranks (backend %s), batch %d per rank, resnet18 x0.25 %dpx + bert %dL-%dH vocab %d, "
           "%zu gradients (%.1f MB), %d buckets of <= %g MB, median of %d repeats (each the slower rank's time, "
           "after a barrier); machine: %s; OMP_NUM_THREADS=%s OPENBLAS_CORETYPE=%s; %s\n",
           W, comm_backend_name(c), B, SS, o->text_layers, o->text_hidden, o->vocab, m->ps.n_grads,
           m->ps.n_grads * 4.0 / 1048576.0, gs->nb, o->bucket_mb, n, mstr,
           getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "(unset)",
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)", pins);
    printf("| %-58s | %10s |\n", "region", "median");
    printf("|---|---:|\n");
    const char *names[NT] = {"T_bwd: backward alone (world-of-one equivalent)",
                             "T_ar: blocking all-reduce of all gradients, after backward",
                             "T_arb: grad_sync buckets, all launched after backward",
                             "T_ovl: backward + buckets overlapped (grad_ready) + wait",
                             "  T_ar's process CPU time (copies + sums on this core)",
                             "  T_arb's process CPU time",
                             "  T_ovl: inside comm_progress during backward",
                             "  T_ovl: waiting in gsync_finish after backward",
                             "T_thr: backward + buckets on the all-reduce thread + wait",
                             "  T_thr: waiting in gsync_finish after backward",
                             "T_arbt: the buckets on the thread, launched after backward"};
    for (int k = 0; k < NT; k++) {
        if (k >= 8 && !have_thread) continue;
        printf("| %-58s | %7.2f ms |\n", names[k], 1e3 * med[k]);
    }
    printf("buckets per step (rank 0): %d; launched during backward %.1f; complete when backward ended %.1f\n", gs->nb,
           (double)early / n, (double)done_early / n);
    printf("hidden (vs blocking) = (T_bwd + T_ar - T_ovl) / T_ar = (%.2f + %.2f - %.2f) / %.2f = %.0f%%\n", 1e3 * med[0],
           1e3 * med[1], 1e3 * med[3], 1e3 * med[1], 100 * (med[0] + med[1] - med[3]) / med[1]);
    printf("hidden (vs same buckets) = (T_bwd + T_arb - T_ovl) / T_arb = (%.2f + %.2f - %.2f) / %.2f = %.0f%%\n",
           1e3 * med[0], 1e3 * med[2], 1e3 * med[3], 1e3 * med[2], 100 * (med[0] + med[2] - med[3]) / med[2]);
    if (have_thread)
        printf("hidden by the all-reduce thread (vs blocking) = (T_bwd + T_ar - T_thr) / T_ar = (%.2f + %.2f - %.2f) / "
               "%.2f = %.0f%%\n",
               1e3 * med[0], 1e3 * med[1], 1e3 * med[8], 1e3 * med[1], 100 * (med[0] + med[1] - med[8]) / med[1]);
    else
        printf("all-reduce thread: not measured (%s)\n", te->msg);
}

static int step_breakdown(Comm *c, const StepOpts *o) {
    int R = comm_rank(c), B = o->batch, n = o->steps;
    Err e = {{0}};
    VqaModelConfig mc;
    breakdown_model_config(&mc, o);
    VqaModel m;
    const Backend *be = backend_cpu();
    if (vqa_model_init(&m, &mc, be, &e) != 0) return die(c, &e);
    size_t nimg = (size_t)B * 3 * SS * SS;
    float *img = malloc(nimg * sizeof *img), *mask = malloc((size_t)B * SL * sizeof *mask);
    float *tgt = malloc((size_t)B * SA * sizeof *tgt), *dl = malloc((size_t)B * SA * sizeof *dl);
    int32_t *tok = malloc((size_t)B * SL * sizeof *tok), *tt = calloc((size_t)B * SL, sizeof *tt);
    /* [NT][n]: bwd, ar, arb, ovl wall; ar, arb process CPU time; ovl: inside progress
     * calls during backward, waiting in gsync_finish; the same with the all-reduce thread:
     * ovl wall, waiting, buckets launched after backward */
    double *tm = calloc((size_t)NT * n, sizeof *tm);
    if (!img || !mask || !tgt || !dl || !tok || !tt || !tm) {
        err_set(&e, "out of memory");
        return die(c, &e);
    }
    fill_inputs(img, nimg, tok, mask, tgt, B, R, o->vocab);
    Batch b = {.size = B, .n_real = B, .image_size = SS, .max_len = SL, .n_answers = SA, .images = img,
               .tokens = tok, .attn_mask = mask, .token_types = tt, .targets = tgt};
    GradSync gs;
    if (gsync_init_params(&gs, c, &m.ps, o->bucket_mb, &e) != 0) return die(c, &e);
    Arena a;
    arena_init(&a, 0);
    long early = 0, done_early = 0;
    /* the all-reduce thread needs MPI_THREAD_MULTIPLE: without it, those rows stay empty */
    Err te = {{0}};
    /* --pin: the all-reduce thread is created on CPU 2r+1 (it inherits the creator's mask),
     * then the computing thread moves to CPU 2r; needs 2 CPUs per rank on the node */
    int cpu_compute = 2 * comm_local_rank(c), cpu_comm = cpu_compute + 1;
    if (o->pin && (cpu_comm >= sysconf(_SC_NPROCESSORS_ONLN) || pin_to(cpu_comm) != 0)) {
        err_set(&e, "--pin: rank %d needs CPUs %d and %d; %ld online", R, cpu_compute, cpu_comm,
                sysconf(_SC_NPROCESSORS_ONLN));
        return die(c, &e);
    }
    int have_thread = comm_set_async(c, 1, &te) == 0 && comm_async(c);
    if (o->pin && pin_to(cpu_compute) != 0) {
        err_set(&e, "--pin: cannot pin rank %d to CPU %d", R, cpu_compute);
        return die(c, &e);
    }
    if (comm_set_async(c, 0, &e) != 0) return die(c, &e);
    for (int s = -1; s < n; s++) { /* s = -1: warm-up */
        double t0, t1;
        float *logits;
        /* mode 0: backward alone, then the all-reduces after it; 1: overlapped, progressed
         * by the hook; 2: overlapped on the all-reduce thread */
        for (int mode = 0; mode < 3; mode++) {
            if (mode == 2 && !have_thread) break;
            int ovl = mode > 0;
            if (comm_set_async(c, mode == 2, &e) != 0) return die(c, &e);
            arena_reset(&a);
            ps_zero_grads(&m.ps);
            if (vqa_model_forward(&m, &b, 1, (uint64_t)s + 7, &a, &logits, &e) != 0) return die(c, &e);
            op_bce_logits(B, SA, logits, tgt, 1.0f, dl);
            m.grad_ready = ovl ? gsync_ready_hook : NULL;
            m.grad_ready_ctx = ovl ? &gs : NULL;
            if (comm_barrier(c, &e) != 0) return die(c, &e);
            t0 = time_now();
            if (ovl) gsync_begin(&gs, 1);
            long e0 = gs.buckets_early, d0 = gs.buckets_done_early;
            double p0 = gs.t_progress, w0 = gs.t_wait;
            if (vqa_model_backward(&m, dl, &a, &e) != 0) return die(c, &e);
            if (ovl && gsync_finish(&gs, &e) != 0) return die(c, &e);
            t1 = time_now();
            if (s >= 0 && mode < 2) tm[(ovl ? 3 : 0) * n + s] = t1 - t0;
            if (mode == 1 && s >= 0) tm[6 * n + s] = gs.t_progress - p0, tm[7 * n + s] = gs.t_wait - w0;
            if (mode == 1 && s >= 0) early += gs.buckets_early - e0, done_early += gs.buckets_done_early - d0;
            if (mode == 2 && s >= 0) tm[8 * n + s] = t1 - t0, tm[9 * n + s] = gs.t_wait - w0;
            if (mode == 2) {
                /* the same buckets on the thread, all launched after backward */
                if (comm_barrier(c, &e) != 0) return die(c, &e);
                t0 = time_now();
                gsync_begin(&gs, 1);
                if (gsync_finish(&gs, &e) != 0) return die(c, &e);
                t1 = time_now();
                if (s >= 0) tm[10 * n + s] = t1 - t0;
            }
            if (comm_set_async(c, 0, &e) != 0) return die(c, &e);
            if (ovl) continue;
            /* the blocking all-reduce alone, on backward's gradients */
            if (comm_barrier(c, &e) != 0) return die(c, &e);
            double c0 = cpu_now();
            t0 = time_now();
            if (comm_allreduce(c, m.ps.grads, m.ps.n_grads, COMM_AVG, &e) != 0) return die(c, &e);
            t1 = time_now();
            if (s >= 0) tm[1 * n + s] = t1 - t0, tm[4 * n + s] = cpu_now() - c0;
            /* grad_sync's buckets, all launched after backward */
            if (comm_barrier(c, &e) != 0) return die(c, &e);
            c0 = cpu_now();
            t0 = time_now();
            gsync_begin(&gs, 1);
            if (gsync_finish(&gs, &e) != 0) return die(c, &e);
            t1 = time_now();
            if (s >= 0) tm[2 * n + s] = t1 - t0, tm[5 * n + s] = cpu_now() - c0;
        }
    }
    /* each repeat: the slower rank */
    if (comm_allreduce_f64(c, tm, NT * n, COMM_MAX, &e) != 0) return die(c, &e);
    double med[NT];
    for (int k = 0; k < NT; k++) med[k] = median(tm + (size_t)k * n, n);
    if (R == 0) print_breakdown(c, o, &m, &gs, med, have_thread, &te, early, done_early);
    arena_free(&a);
    gsync_free(&gs);
    vqa_model_free(&m);
    free(img), free(mask), free(tgt), free(dl), free(tok), free(tt), free(tm);
    return 0;
}

int main(int argc, char **argv) {
    Comm *c;
    Err e = {{0}};
    if (comm_init(&c, &argc, &argv, &e) != 0) {
        fprintf(stderr, "bench_allreduce: %s\n", e.msg);
        return 1;
    }
    int step = 0;
    StepOpts so = {10, 1.0, 32, 2, 64, 1000, 0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--step")) step = 1;
        else if (!strncmp(argv[i], "--steps=", 8)) so.steps = atoi(argv[i] + 8);
        else if (!strncmp(argv[i], "--bucket-mb=", 12)) so.bucket_mb = atof(argv[i] + 12);
        else if (!strncmp(argv[i], "--batch=", 8)) so.batch = atoi(argv[i] + 8);
        else if (!strncmp(argv[i], "--text-layers=", 14)) so.text_layers = atoi(argv[i] + 14);
        else if (!strncmp(argv[i], "--text-hidden=", 14)) so.text_hidden = atoi(argv[i] + 14);
        else if (!strncmp(argv[i], "--vocab=", 8)) so.vocab = atoi(argv[i] + 8);
        else if (!strcmp(argv[i], "--pin")) so.pin = 1;
        else {
            if (comm_rank(c) == 0)
                fprintf(stderr, "bench_allreduce: unknown option %s (--step --steps=N --bucket-mb=X --batch=B "
                        "--text-layers=N --text-hidden=H --vocab=V --pin)\n", argv[i]);
            comm_finalize(c);
            return 2;
        }
    }
    if (so.steps < 1 || so.batch < 1 || so.text_hidden < 1 || so.vocab < 2 || !(so.bucket_mb > 0)) {
        if (comm_rank(c) == 0) fprintf(stderr, "bench_allreduce: bad --steps/--batch/--text-hidden/--vocab/--bucket-mb\n");
        comm_finalize(c);
        return 2;
    }
    if (comm_world(c) < 2 && comm_rank(c) == 0)
        fprintf(stderr, "bench_allreduce: a world of one (start with mpirun -np 2): numbers mean nothing\n");
    int rc = step ? step_breakdown(c, &so) : bandwidth(c);
    comm_finalize(c);
    return rc;
}
