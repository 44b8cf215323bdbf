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
 * Step table: per rank, batch 32 of the demo-sized model (resnet18 x0.25 at 64 px, BERT
 * 2L-64H, mul fusion 256, 100 answers), forward + backward, then the gradient all-reduce
 * either (a) blocking after backward (one comm_allreduce of the whole buffer) or (b) in
 * buckets launched by backward's grad_ready hook (grad_sync) and waited at the end.
 * (a) first waits at a barrier for the slower rank, so skew and all-reduce are apart;
 * hidden = 1 - (b's time after backward - a's skew) / (a's all-reduce time).
 * Rank 0 prints; the machine is named. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
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

enum { SB = 32, SS = 64, SL = 16, SA = 100 };

static int step_breakdown(Comm *c, int steps, double bucket_mb) {
    int W = comm_world(c), R = comm_rank(c);
    Err e = {{0}};
    VqaModelConfig mc;
    vqa_model_config_default(&mc, SA);
    mc.image_depth = 18;
    mc.image_width = 0.25f;
    snprintf(mc.image_freeze, sizeof mc.image_freeze, "none");
    mc.text = (BertConfig){2, 64, 4, 128, 1000, 32, 2, 0, 0.1f, 1e-12f};
    mc.fusion_type = FUSION_MUL;
    mc.fusion_hidden = 256;
    mc.fusion_dropout = 0.1f;
    mc.seed = 1;
    VqaModel m;
    const Backend *be = backend_cpu();
    if (vqa_model_init(&m, &mc, be, &e) != 0) return die(c, &e);
    static float img[SB * 3 * SS * SS], mask[SB * SL], tgt[SB * SA], dl[SB * SA];
    static int32_t tok[SB * SL], tt[SB * SL];
    for (size_t i = 0; i < sizeof img / sizeof *img; i++) img[i] = (float)((i * 2654435761u + (unsigned)R) % 1000) / 500.f - 1.f;
    for (int i = 0; i < SB * SL; i++) {
        tok[i] = 1 + (int32_t)((i * 7 + R) % 999);
        tt[i] = 0;
        mask[i] = 1.f;
    }
    for (int i = 0; i < SB * SA; i++) tgt[i] = (i % 17 == 0) ? 1.f : 0.f;
    Batch b = {.size = SB, .n_real = SB, .image_size = SS, .max_len = SL, .n_answers = SA, .images = img,
               .tokens = tok, .attn_mask = mask, .token_types = tt, .targets = tgt};
    GradSync gs;
    if (gsync_init_params(&gs, c, &m.ps, bucket_mb, &e) != 0) return die(c, &e);
    Arena a;
    arena_init(&a, 0);
    /* per mode: forward, backward, wait for the slower rank (mode 0 only: a barrier),
     * comm after backward (seconds, summed over steps) */
    double t[2][4] = {{0}};
    for (int mode = 0; mode < 2; mode++) {
        m.grad_ready = mode ? gsync_ready_hook : NULL;
        m.grad_ready_ctx = mode ? &gs : NULL;
        for (int s = -1; s < steps; s++) { /* s = -1: warm-up */
            if (comm_barrier(c, &e) != 0) return die(c, &e);
            arena_reset(&a);
            ps_zero_grads(&m.ps);
            float *logits;
            double t0 = time_now();
            if (vqa_model_forward(&m, &b, 1, (uint64_t)s + 7, &a, &logits, &e) != 0) return die(c, &e);
            op_bce_logits(SB, SA, logits, tgt, 1.0f, dl);
            double t1 = time_now();
            if (mode) gsync_begin(&gs, 1);
            if (vqa_model_backward(&m, dl, &a, &e) != 0) return die(c, &e);
            double t2 = time_now(), t2b = t2;
            if (mode) {
                if (gsync_finish(&gs, &e) != 0) return die(c, &e);
            } else {
                /* separate the ranks' skew (the slower one's backward) from the all-reduce */
                if (comm_barrier(c, &e) != 0) return die(c, &e);
                t2b = time_now();
                if (comm_allreduce(c, m.ps.grads, m.ps.n_grads, COMM_AVG, &e) != 0) return die(c, &e);
            }
            double t3 = time_now();
            if (s >= 0) {
                t[mode][0] += t1 - t0;
                t[mode][1] += t2 - t1;
                t[mode][2] += t2b - t2;
                t[mode][3] += t3 - t2b;
            }
        }
    }
    /* the slowest rank per entry */
    if (comm_allreduce_f64(c, &t[0][0], 8, COMM_MAX, &e) != 0) return die(c, &e);
    if (R == 0) {
        char mstr[512];
        machine(mstr, sizeof mstr);
        printf("step-time breakdown: %d ranks (backend %s), batch %d per rank, %zu gradients (%.1f MB), "
               "%d buckets of <= %g MB, %d steps; machine: %s; OMP_NUM_THREADS=%s\n",
               W, comm_backend_name(c), SB, m.ps.n_grads, m.ps.n_grads * 4.0 / 1048576.0, gs.nb, bucket_mb, steps,
               mstr, getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "(unset)");
        printf("| %-32s | %10s | %10s | %16s | %20s | %10s |\n", "mode", "forward", "backward",
               "wait slower rank", "all-reduce after bwd", "step");
        printf("|---|---:|---:|---:|---:|---:|\n");
        const char *names[2] = {"blocking, after backward", "buckets overlapped (grad_sync)"};
        for (int mode = 0; mode < 2; mode++) {
            char skew[32];
            if (mode) snprintf(skew, sizeof skew, "(in next column)");
            else snprintf(skew, sizeof skew, "%.2f ms", 1e3 * t[mode][2] / steps);
            printf("| %-32s | %7.2f ms | %7.2f ms | %16s | %17.2f ms | %7.2f ms |\n", names[mode],
                   1e3 * t[mode][0] / steps, 1e3 * t[mode][1] / steps, skew, 1e3 * t[mode][3] / steps,
                   1e3 * (t[mode][0] + t[mode][1] + t[mode][2] + t[mode][3]) / steps);
        }
        /* overlapped: what is left after backward, less the skew the blocking mode measured */
        double left = t[1][2] + t[1][3] - t[0][2], full = t[0][3];
        double hidden = full > 0 ? 1.0 - left / full : 0;
        if (t[0][2] > full || hidden < 0 || hidden > 1)
            printf("hidden under backward: not measurable here: the ranks' skew (%.2f ms per step) is not small next "
                   "to the all-reduce (%.2f ms); rerun on an idle machine\n",
                   1e3 * t[0][2] / steps, 1e3 * full / steps);
        else
            printf("hidden under backward: %.0f%% (1 - (%.2f ms left after backward - %.2f ms skew) / %.2f ms "
                   "blocking all-reduce)\n",
                   100 * hidden, 1e3 * (t[1][2] + t[1][3]) / steps, 1e3 * t[0][2] / steps, 1e3 * full / steps);
    }
    arena_free(&a);
    gsync_free(&gs);
    vqa_model_free(&m);
    return 0;
}

int main(int argc, char **argv) {
    Comm *c;
    Err e = {{0}};
    if (comm_init(&c, &argc, &argv, &e) != 0) {
        fprintf(stderr, "bench_allreduce: %s\n", e.msg);
        return 1;
    }
    int step = 0, steps = 10;
    double bucket_mb = 1.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--step")) step = 1;
        else if (!strncmp(argv[i], "--steps=", 8)) steps = atoi(argv[i] + 8);
        else if (!strncmp(argv[i], "--bucket-mb=", 12)) bucket_mb = atof(argv[i] + 12);
    }
    if (comm_world(c) < 2 && comm_rank(c) == 0)
        fprintf(stderr, "bench_allreduce: a world of one (start with mpirun -np 2): numbers mean nothing\n");
    int rc = step ? step_breakdown(c, steps, bucket_mb) : bandwidth(c);
    comm_finalize(c);
    return rc;
}
