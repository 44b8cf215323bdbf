/* test_trainer_device.c: the trainer's device path — the code that runs `device: cuda` —
 * on the pretend device (tests/pretend_device.h: the CPU backend's arithmetic on memory
 * the host cannot touch outside Backend entries). The demo config's model and batch
 * (ResNet-18/0.25 + 2-layer BERT, batch 64, 64x64 images) on a small synthetic split:
 *  - 20 training steps + the final evaluation through the device path give the CPU run's
 *    losses (within 1e-6 relative; the arithmetic is the same, so expected equal), the
 *    same evaluation line, and a checkpoint whose every tensor (parameters, BN buffers
 *    with num_batches_tracked, AdamW moments) has the CPU checkpoint's bits;
 *  - --resume from that checkpoint continues on the device as on the CPU (5 more steps);
 *  - --predict on the device writes the CPU's predictions file (its batches, like the
 *    evaluation's, uploaded one ahead);
 *  - no host access to device memory (a SIGSEGV would end the test), no host pointer
 *    handed to an op, and no device memory left allocated after trainer_free;
 *  - model.image_encoder.layout nhwc (fp32) gives the NCHW losses (1e-4 over 8 steps), and a bf16
 *    run (NHWC bf16 activations, emulated exactly by the CPU act ops) tracks fp32.
 * Plus the pieces: optim_step on device memory against the CPU backend, and the
 * pinned-memory fallback on a machine without a GPU. */
// TEST_LIBS: vqa_core
// TEST_LABELS: unit
// TEST_TIMEOUT: 300
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cuda/gpu.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "pretend_device.h"
#include "synth_sets.h"
#include "testlib.h"
#include "train/predict.h"
#include "train/train_device.h"
#include "train/trainer.h"

static char g_tmp[256];
static char g_cfg_path[1024];

/* ---- helpers ---- */

static int load_cfg(Config *cfg, const char *out_dir, int max_steps, const char *extra) {
    char s[10][1024];
    char *sets[24];
    int n = 0;
    synth_sets(s, g_tmp);
    snprintf(s[4], sizeof s[4], "run.out_dir=%s", out_dir);
    snprintf(s[5], sizeof s[5], "train.max_steps=%d", max_steps);
    snprintf(s[6], sizeof s[6], "%s", extra ? extra : "log.every=1");
    for (int i = 0; i < 7; i++) sets[n++] = s[i];
    /* a small split of the demo's data; the demo's model, batch and optimizer as they are */
    static char *fixed[] = {"data.synth.train_questions=256", "data.synth.val_questions=72", "data.synth.seed=5",
                            "log.every=1", "log.tensorboard=false", "eval.every=0", "checkpoint.every=0", "train.warmup_steps=5", "train.epochs=100",
                            "predict.split=val",
                            /* the pretend device computes with the reference kernels: so must
                             * the CPU runs it is compared with bit for bit (not oneDNN) */
                            "train.cpu_kernels=reference",
                            /* dropout on (the demo trains without it) so the device path's
                             * dropout masks are compared too */
                            "model.text_encoder.dropout=0.1", "model.fusion.dropout=0.1"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) sets[n++] = fixed[i];
    /* the caller's extra settings last, so they win (several: separated by ';') */
    char *semi = strchr(s[6], ';');
    if (semi) {
        *semi = 0;
        snprintf(s[7], sizeof s[7], "%s", semi + 1);
        sets[n++] = s[7];
    }
    sets[n++] = s[6];
    Err e;
    if (cfg_load(cfg, g_cfg_path, sets, n, &e) != 0) {
        fprintf(stderr, "config: %s\n", e.msg);
        return -1;
    }
    return 0;
}

/* Trains to max_steps on be (NULL = the CPU backend via cli), with one extra config
 * setting (NULL: none). Returns 0 and the last checkpoint's path. */
static int train_with(const Backend *be, const char *out_dir, int max_steps, const char *resume, const char *extra,
                      char *ckpt, size_t cap) {
    Config cfg;
    if (load_cfg(&cfg, out_dir, max_steps, extra) != 0) return -1;
    CliArgs cli = {0};
    cli.config_path = g_cfg_path;
    cli.resume = resume;
    cli.device = CFG_DEVICE_CPU;
    Log log;
    log_init(&log, 0, 0);
    Trainer *t = calloc(1, sizeof *t);
    Err e;
    Comm *comm = NULL; /* a world of one, as train_main makes it */
    if (comm_init(&comm, NULL, NULL, &e) != 0) {
        fprintf(stderr, "comm: %s\n", e.msg);
        free(t);
        cfg_free(&cfg);
        return -1;
    }
    int rc = trainer_init_on(t, &cfg, &cli, &log, comm, be, &e);
    if (rc == 0) rc = trainer_run(t, &e);
    if (rc != 0) fprintf(stderr, "train (%s): %s\n", be ? be->name : "cpu", e.msg);
    if (rc == 0) snprintf(ckpt, cap, "%s", t->last_ckpt);
    trainer_free(t);
    free(t);
    comm_finalize(comm);
    cfg_free(&cfg);
    return rc;
}

static int train(const Backend *be, const char *out_dir, int max_steps, const char *resume, char *ckpt, size_t cap) {
    return train_with(be, out_dir, max_steps, resume, NULL, ckpt, cap);
}

/* "loss" of every train record of metrics.jsonl, by step (steps 1..max). */
static int read_losses(const char *out_dir, double *loss, int max) {
    char path[1100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096];
    int n = 0;
    for (int i = 0; i <= max; i++) loss[i] = NAN;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "\"split\": \"train\"")) continue;
        const char *st = strstr(line, "\"step\": "), *lo = strstr(line, "\"loss\": ");
        if (!st || !lo) continue;
        int step = atoi(st + 8);
        if (step >= 0 && step <= max) loss[step] = strtod(lo + 8, NULL), n++;
    }
    fclose(f);
    return n;
}

/* The val record of metrics.jsonl without its timing fields. */
static int read_eval(const char *out_dir, char *out, size_t cap) {
    char path[1100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096];
    out[0] = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "\"split\": \"val\"")) snprintf(out, cap, "%s", line);
    fclose(f);
    return out[0] ? 0 : -1;
}

/* Every tensor of a has b's bytes (and the same count). Returns the number that differ. */
static int ckpt_diff(const char *a, const char *b, int *count) {
    StFile *fa = NULL, *fb = NULL;
    Err e;
    if (st_open(&fa, a, &e) != 0 || st_open(&fb, b, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        st_close(fa);
        return -1;
    }
    int bad = st_count(fa) != st_count(fb);
    *count = st_count(fa);
    for (int i = 0; i < st_count(fa); i++) {
        const StTensor *ta = st_at(fa, i), *tb = st_find(fb, ta->name);
        if (!tb || tb->nbytes != ta->nbytes || memcmp(ta->data, tb->data, ta->nbytes) != 0) {
            if (bad < 5) fprintf(stderr, "checkpoint tensor %s differs\n", ta->name);
            bad++;
        }
    }
    st_close(fa);
    st_close(fb);
    return bad;
}

static double max_rel(const double *a, const double *b, int from, int to, int *missing) {
    double m = 0;
    *missing = 0;
    for (int s = from; s <= to; s++) {
        if (!isfinite(a[s]) || !isfinite(b[s])) {
            (*missing)++;
            continue;
        }
        double r = fabs(a[s] - b[s]) / (fabs(a[s]) > 1e-30 ? fabs(a[s]) : 1.0);
        if (r > m) m = r;
    }
    return m;
}

/* The largest relative difference between two runs' logged losses over steps from..to
 * (max_rel of their metrics); *missing counts steps either run did not log. */
static double run_loss_gap(const char *dir_a, const char *dir_b, int from, int to, int *missing) {
    double la[32], lb[32];
    read_losses(dir_a, la, 31);
    read_losses(dir_b, lb, 31);
    return max_rel(la, lb, from, to, missing);
}

/* ---- cases ---- */

static char g_ckpt_cpu[4096], g_ckpt_dev[4096];

static void device_path_trains_like_the_cpu(void) {
    char cpu_dir[512], dev_dir[512];
    snprintf(cpu_dir, sizeof cpu_dir, "%s/cpu", g_tmp);
    snprintf(dev_dir, sizeof dev_dir, "%s/dev", g_tmp);
    const Backend *pdb = pd_backend();
    CHECK(train(NULL, cpu_dir, 20, NULL, g_ckpt_cpu, sizeof g_ckpt_cpu) == 0);
    long calls0 = pd.calls, up0 = pd.uploads, over0 = pd.uploads_overlapped;
    CHECK(train(pdb, dev_dir, 20, NULL, g_ckpt_dev, sizeof g_ckpt_dev) == 0);
    /* the batches were prefetched: 256 questions / batch 64 = 4 batches an epoch; every
     * batch but an epoch's first was uploaded (images + targets: 2 uploads) during the
     * step before it, i.e. with entry calls between its upload and its landing; an
     * epoch's first batch is uploaded when its step starts. The final evaluation (72 val
     * questions: 2 batches, the second padded) prefetches the same way: its second batch
     * uploads during the first one's forward. */
    const int per_epoch = 256 / 64, epochs = (20 + per_epoch - 1) / per_epoch, eval_batches = (72 + 63) / 64;
    fprintf(stderr, "  uploads %ld, landed after other work (prefetched) %ld\n", pd.uploads - up0,
            pd.uploads_overlapped - over0);
    CHECK_MSG(pd.uploads - up0 == 2 * (20 + eval_batches), "%ld uploads", pd.uploads - up0);
    CHECK_MSG(pd.uploads_overlapped - over0 == 2 * (20 - epochs) + 2 * (eval_batches - 1), "%ld overlapped uploads",
              pd.uploads_overlapped - over0);
    CHECK(pd.n_pend == 0);
    /* the device path really ran on the pretend device: every op went through it and the
     * batches were uploaded (20 steps x 64 images x 3 x 64 x 64 floats at least) */
    CHECK_MSG(pd.calls - calls0 > 20 * 50, "%ld backend calls", pd.calls - calls0);
    fprintf(stderr, "  pretend device: %ld entry calls, %zu bytes up, %zu down, at most %d allocations live\n",
            pd.calls - calls0, pd.bytes_h2d, pd.bytes_d2h, pd.max_n);
    CHECK_MSG(pd.bytes_h2d >= (size_t)20 * 64 * 3 * 64 * 64 * 4, "%zu bytes uploaded", pd.bytes_h2d);
    CHECK_MSG(pd_violations() == 0, "%ld pretend-device violations (host pointers, upload order; see above)", pd_violations());
    CHECK_MSG(pd_live_regions() == 0, "%d device allocations left after trainer_free", pd_live_regions());

    double lc[32], ld[32];
    CHECK(read_losses(cpu_dir, lc, 31) == 20);
    CHECK(read_losses(dev_dir, ld, 31) == 20);
    int missing;
    double m = max_rel(lc, ld, 1, 20, &missing);
    fprintf(stderr, "  20 steps: largest relative loss difference device path vs CPU %.3g (step 1 loss %.6f, "
            "step 20 %.6f)\n", m, lc[1], lc[20]);
    CHECK(missing == 0);
    CHECK_MSG(m <= 1e-6, "relative loss difference %.3g", m);
    CHECK(lc[20] < lc[1]); /* it trains */

    char ec[4096], ed[4096];
    CHECK(read_eval(cpu_dir, ec, sizeof ec) == 0 && read_eval(dev_dir, ed, sizeof ed) == 0);
    /* the whole record but the timing fields */
    char *p;
    if ((p = strstr(ec, "\"seconds\""))) *p = 0;
    if ((p = strstr(ed, "\"seconds\""))) *p = 0;
    CHECK_MSG(strcmp(ec, ed) == 0, "eval records differ:\n%s\n%s", ec, ed);
    CHECK_STR_CONTAINS(ed, "\"accuracy\"");

    int count = 0;
    CHECK(g_ckpt_cpu[0] && g_ckpt_dev[0]);
    CHECK_MSG(ckpt_diff(g_ckpt_cpu, g_ckpt_dev, &count) == 0, "checkpoints differ");
    CHECK(count > 50);
    /* num_batches_tracked went through the backend add: 20 training forwards */
    StFile *f = NULL;
    Err e;
    CHECK(st_open(&f, g_ckpt_dev, &e) == 0);
    const StTensor *nbt = f ? st_find(f, "image_encoder.bn1.num_batches_tracked") : NULL;
    CHECK(nbt && nbt->dtype == DT_I64);
    if (nbt) {
        int64_t v;
        memcpy(&v, nbt->data, 8);
        CHECK_MSG(v == 20, "num_batches_tracked %lld", (long long)v);
    }
    st_close(f);
}

static void resume_on_device_continues_like_the_cpu(void) {
    if (!g_ckpt_cpu[0] || !g_ckpt_dev[0]) {
        CHECK(0);
        return;
    }
    char cpu_dir[512], dev_dir[512], a[4096], b[4096];
    snprintf(cpu_dir, sizeof cpu_dir, "%s/cpu", g_tmp);
    snprintf(dev_dir, sizeof dev_dir, "%s/dev", g_tmp);
    CHECK(train(NULL, cpu_dir, 25, g_ckpt_cpu, a, sizeof a) == 0);
    CHECK(train(pd_backend(), dev_dir, 25, g_ckpt_dev, b, sizeof b) == 0);
    int missing;
    double m = run_loss_gap(cpu_dir, dev_dir, 21, 25, &missing);
    fprintf(stderr, "  resumed steps 21..25: largest relative loss difference %.3g\n", m);
    CHECK(missing == 0);
    CHECK_MSG(m <= 1e-6, "relative loss difference %.3g after resume", m);
    int count;
    CHECK_MSG(ckpt_diff(a, b, &count) == 0, "checkpoints after resume differ");
    CHECK(pd_violations() == 0 && pd_live_regions() == 0);
}

/* The image encoder's activation format on the device path (model.image_encoder.layout):
 * channels-last fp32 gives the NCHW run's losses within summation-order rounding as
 * training amplifies it (1e-4 relative over the first 8 steps, 1e-2 over 20). bf16 storage: the pretend device is the CPU's arithmetic, and
 * the act ops emulate bf16 storage exactly, so a `device: cuda` config with train.precision
 * bf16 on it runs what a GPU's bf16 run stores (NHWC bf16 by auto); its losses track fp32
 * within a few %. (`device: cuda` is set in the config only, as a GPU run would: the CPU
 * device's validation, which keeps precision fp32, is not touched.) */
static void image_encoder_layouts_train_like_nchw(void) {
    char nchw_dir[512], nhwc_dir[512], bf16_dir[512], ck[4096];
    snprintf(nchw_dir, sizeof nchw_dir, "%s/dev", g_tmp); /* device_path_trains_like_the_cpu's run */
    snprintf(nhwc_dir, sizeof nhwc_dir, "%s/dev_nhwc", g_tmp);
    snprintf(bf16_dir, sizeof bf16_dir, "%s/dev_bf16", g_tmp);
    const Backend *pdb = pd_backend();
    CHECK(train_with(pdb, nhwc_dir, 20, NULL, "model.image_encoder.layout=nhwc", ck, sizeof ck) == 0);
    /* the two runs differ only in summation order (~1e-7 a step), which training then
     * amplifies (measured: < 1e-5 up to step 8, 1e-3 by step 15): 1e-4 over the first 8
     * steps, 1e-2 over all 20 */
    int missing, missing8;
    double m8 = run_loss_gap(nchw_dir, nhwc_dir, 1, 8, &missing8);
    double m = run_loss_gap(nchw_dir, nhwc_dir, 1, 20, &missing);
    fprintf(stderr, "  NHWC fp32 vs NCHW fp32: largest relative loss difference %.3g over steps 1-8, %.3g over 1-20\n",
            m8, m);
    CHECK(missing == 0 && missing8 == 0);
    CHECK_MSG(m8 <= 1e-4, "NHWC losses differ from NCHW by %.3g in the first 8 steps", m8);
    CHECK_MSG(m <= 1e-2, "NHWC losses differ from NCHW by %.3g", m);
    char *log = NULL;
    size_t nl = 0;
    char path[600];
    snprintf(path, sizeof path, "%s/train.log", nhwc_dir);
    log = test_read_file(path, &nl);
    CHECK(log != NULL);
    if (log) CHECK_STR_CONTAINS(log, "image encoder activations: NHWC fp32 (model.image_encoder.layout: nhwc");
    free(log);

    CHECK(train_with(pd_backend_prec(DT_BF16), bf16_dir, 20, NULL, "device=cuda;train.precision=bf16", ck, sizeof ck) == 0);
    double lf[32], lb[32], lh[32];
    read_losses(nchw_dir, lf, 31);
    read_losses(nhwc_dir, lh, 31);
    read_losses(bf16_dir, lb, 31);
    fprintf(stderr, "  losses NCHW fp32 / NHWC fp32 / NHWC bf16:");
    for (int s = 1; s <= 20; s++) fprintf(stderr, "%s%d: %.6f %.6f %.6f", s % 4 == 1 ? "\n   " : "; ", s, lf[s], lh[s], lb[s]);
    fprintf(stderr, "\n");
    m = max_rel(lf, lb, 1, 20, &missing);
    fprintf(stderr, "  NHWC bf16 vs NCHW fp32, 20 steps: largest relative loss difference %.3g (step 20: %.5f vs %.5f)\n",
            m, lb[20], lf[20]);
    CHECK(missing == 0);
    CHECK_MSG(m <= 0.03, "bf16 losses differ from fp32 by %.3g", m);
    CHECK_MSG(m > 1e-7, "bf16 losses equal fp32 (%.3g): the storage type made no difference", m);
    snprintf(path, sizeof path, "%s/train.log", bf16_dir);
    log = test_read_file(path, &nl);
    CHECK(log != NULL);
    if (log) CHECK_STR_CONTAINS(log, "image encoder activations: NHWC bf16 (auto: pretend-device, precision bf16)");
    free(log);
    CHECK(pd_violations() == 0 && pd_live_regions() == 0);
}

static int64_t ckpt_i64(const char *path, const char *key) {
    StFile *f = NULL;
    Err e;
    int64_t v = -1;
    if (ckpt_open(&f, path, &e) != 0 || ckpt_meta_i64(f, key, &v, &e) != 0) fprintf(stderr, "%s: %s\n", path, e.msg);
    st_close(f);
    return v;
}

/* A checkpoint written while the next batch is already prefetched (step 10 = batch 2 of
 * epoch 2's 4, not the run's last step: the feed has batch 3 uploaded) saves the position
 * of the batches the optimizer CONSUMED, and a run resumed from it repeats the
 * uninterrupted run: the same losses and the same final checkpoint, bit for bit. */
static void checkpoint_with_a_prefetched_batch_resumes_the_same(void) {
    char full[512], resumed[512], last_full[4096], last_resumed[4096], at10[4200];
    snprintf(full, sizeof full, "%s/prefetch_full", g_tmp);
    snprintf(resumed, sizeof resumed, "%s/prefetch_resumed", g_tmp);
    const Backend *pdb = pd_backend();
    CHECK(train_with(pdb, full, 14, NULL, "checkpoint.every=10", last_full, sizeof last_full) == 0);
    snprintf(at10, sizeof at10, "%s/checkpoints/step_00000010.safetensors", full);
    /* 10 steps of 4 batches an epoch: epoch 2, 2 batches of 64 consumed (1 rank) */
    CHECK(ckpt_i64(at10, CKPT_KEY_STEP) == 10);
    CHECK(ckpt_i64(at10, CKPT_KEY_EPOCH) == 10 / 4);
    int64_t pos = ckpt_i64(at10, CKPT_KEY_SAMPLER);
    CHECK_MSG(pos == (10 % 4) * 64, "sampler position %lld saved at step 10, expected %d", (long long)pos, (10 % 4) * 64);
    CHECK(train_with(pdb, resumed, 14, at10, "checkpoint.every=10", last_resumed, sizeof last_resumed) == 0);
    int missing;
    double m = run_loss_gap(full, resumed, 11, 14, &missing);
    fprintf(stderr, "  resumed from a checkpoint taken with a batch prefetched: steps 11..14 differ by %.3g\n", m);
    CHECK(missing == 0);
    CHECK_MSG(m == 0, "relative loss difference %.3g after resume", m);
    int count;
    CHECK_MSG(ckpt_diff(last_full, last_resumed, &count) == 0, "step-14 checkpoints differ");
    CHECK(pd_violations() == 0 && pd_live_regions() == 0);
}

static void predict_on_device_writes_the_cpu_predictions(void) {
    if (!g_ckpt_dev[0]) {
        CHECK(0);
        return;
    }
    char out_c[512], out_d[512], set_c[600], set_d[600];
    snprintf(out_c, sizeof out_c, "%s/pred_cpu/predictions.json", g_tmp);
    snprintf(out_d, sizeof out_d, "%s/pred_dev/predictions.json", g_tmp);
    snprintf(set_c, sizeof set_c, "predict.out=%s", out_c);
    snprintf(set_d, sizeof set_d, "predict.out=%s", out_d);
    Log log;
    log_init(&log, 0, 0);
    Err e;
    for (int k = 0; k < 2; k++) {
        Config cfg;
        char dir[512];
        snprintf(dir, sizeof dir, "%s/pred%d", g_tmp, k);
        if (load_cfg(&cfg, dir, 20, k ? set_d : set_c) != 0) {
            CHECK(0);
            return;
        }
        CliArgs cli = {0};
        cli.config_path = g_cfg_path;
        cli.predict = k ? g_ckpt_dev : g_ckpt_cpu;
        cli.device = CFG_DEVICE_CPU;
        long up0 = pd.uploads, over0 = pd.uploads_overlapped;
        int rc = predict_run_on(&cfg, &cli, &log, k ? pd_backend() : NULL, &e);
        if (rc != 0) fprintf(stderr, "predict: %s\n", e.msg);
        CHECK(rc == 0);
        if (k) { /* 72 val questions, 2 batches: the second uploaded during the first's forward */
            fprintf(stderr, "  --predict on the device: uploads %ld, prefetched %ld\n", pd.uploads - up0,
                    pd.uploads_overlapped - over0);
            CHECK_MSG(pd.uploads - up0 == 2 * 2 && pd.uploads_overlapped - over0 == 2 * 1, "%ld uploads, %ld prefetched",
                      pd.uploads - up0, pd.uploads_overlapped - over0);
            CHECK(pd.n_pend == 0);
        }
        cfg_free(&cfg);
    }
    size_t na = 0, nb = 0;
    char *a = test_read_file(out_c, &na), *b = test_read_file(out_d, &nb);
    CHECK(a && b && na > 100);
    if (a && b) CHECK_MSG(na == nb && memcmp(a, b, na) == 0, "predictions differ (%zu vs %zu bytes)", na, nb);
    free(a);
    free(b);
    CHECK(pd_violations() == 0 && pd_live_regions() == 0);
}

/* optim_step with every buffer in pretend-device memory (touched only through the table's
 * entries: a host access would crash the test) gives the bits of the same steps on the CPU
 * backend, clipping included, on an odd-sized buffer with two segments. */
static void optim_step_on_device_memory_matches_cpu(void) {
    const Backend *cpu = backend_cpu(), *dev = pd_backend();
    enum { N = 1001 };
    static float p1[N], p2[N], g1[N], g2[N], m2[N], v2[N];
    TestRng r = {7};
    for (int i = 0; i < N; i++) p1[i] = trng_uniform(&r, -1.f, 1.f), g1[i] = trng_uniform(&r, -0.1f, 0.1f);
    OptimSegment segs[2] = {{0, 0, 600, 1.0f, 1}, {600, 600, N - 600, 0.1f, 0}};
    OptimOptions oo = {.lr = 1e-3f, .schedule = SCHED_COSINE, .warmup_steps = 2, .total_steps = 5,
                       .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f, .clip_norm = 1.0f};
    Optimizer oc, od;
    Err e;
    CHECK(optim_init(&oc, cpu, &oo, segs, 2, N, &e) == 0);
    CHECK(optim_init(&od, dev, &oo, segs, 2, N, &e) == 0);
    float *dp = dev->alloc(dev, sizeof p1), *dg = dev->alloc(dev, sizeof g1);
    dev->copy_h2d(dev, dp, p1, sizeof p1);
    for (int t = 1; t <= 4; t++) {
        for (int i = 0; i < N; i++) g1[i] = g2[i] = trng_uniform(&r, -0.1f, 0.1f) * (float)(t * t);
        dev->copy_h2d(dev, dg, g2, sizeof g2);
        OptimStepInfo ic, id;
        optim_step(cpu, &oc, p1, g1, &ic);
        optim_step(dev, &od, dp, dg, &id);
        CHECK(ic.grad_norm == id.grad_norm && ic.lr == id.lr && ic.clip_coef == id.clip_coef);
        if (t == 4) CHECK(ic.clip_coef < 1.0f); /* the last steps' gradients are clipped */
    }
    dev->copy_d2h(dev, p2, dp, sizeof p2);
    dev->copy_d2h(dev, m2, od.m, sizeof m2);
    dev->copy_d2h(dev, v2, od.v, sizeof v2);
    CHECK(memcmp(p1, p2, sizeof p1) == 0 && memcmp(oc.m, m2, sizeof m2) == 0 && memcmp(oc.v, v2, sizeof v2) == 0);
    CHECK(od.t == 4 && od.step == 4);
    /* the norm by hand, in double */
    double s = 0;
    for (int i = 0; i < N; i++) s += (double)g1[i] * g1[i];
    CHECK_NEAR(cpu->global_norm(cpu, g1, N), sqrt(s), 1e-12 * sqrt(s));
    CHECK(dev->has_nonfinite(dev, dg, N) == 0);
    float bad = INFINITY;
    dev->copy_h2d(dev, dg + 500, &bad, sizeof bad);
    CHECK(dev->has_nonfinite(dev, dg, N) == 1);
    dev->free(dev, dp);
    dev->free(dev, dg);
    optim_free(&oc);
    optim_free(&od);
    CHECK(pd_violations() == 0 && pd_live_regions() == 0);
}

/* Arena bytes a ResNet-18/0.25 forward of a 4x3x64x64 batch takes on the pretend device
 * (input uploaded like a batch), training or not, with `trainable` stages trainable. */
static size_t resnet_forward_bytes(const FreezeSpec *trainable, int training) {
    const Backend *be = pd_backend();
    ParamStore ps;
    Resnet r;
    Err e;
    ps_init(&ps);
    ResnetConfig rc = {18, 0.25f, 0, 0, 4};
    size_t used = 0;
    if (resnet_build(&r, &rc, &ps, "image_encoder.", PG_IMAGE, &e) != 0 ||
        vqa_apply_freeze(&ps, "image_encoder.", trainable, 0, 0, &e) != 0 || ps_finalize(&ps, be, &e) != 0 ||
        ps_init_values(&ps, 1, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        CHECK(0);
        return 0;
    }
    enum { N = 4, S = 64 };
    static float x[N * 3 * S * S];
    TestRng g = {3};
    trng_fill(&g, x, sizeof x / sizeof *x, -2.f, 2.f);
    Arena a;
    tdev_arena_init(be, &a, 1 << 16);
    float *dx = arena_floats(&a, sizeof x / sizeof *x);
    be->copy_h2d(be, dx, x, sizeof x);
    size_t before = a.used;
    if (resnet_forward(&r, be, dx, N, S, S, training, &a, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        CHECK(0);
    }
    used = a.used - before;
    arena_free(&a);
    resnet_free(&r);
    ps_free(&ps);
    return used;
}

/* A frozen image encoder keeps nothing for backward on the device path either: its
 * training forward takes the arena bytes of an inference forward (and a trainable layer4
 * takes more, so the measure can tell). */
static void frozen_encoder_keeps_no_activations_on_device(void) {
    const FreezeSpec all = {.mode = FREEZE_ALL}, layer4 = {.mode = FREEZE_LIST, .n = 1, .stage = {"layer4"}};
    size_t eval = resnet_forward_bytes(&all, 0), frozen = resnet_forward_bytes(&all, 1);
    size_t top = resnet_forward_bytes(&layer4, 1);
    fprintf(stderr, "  arena bytes: inference %zu, frozen training %zu, layer4 trainable %zu\n", eval, frozen, top);
    CHECK(eval > 0);
    CHECK_MSG(frozen == eval, "frozen training forward %zu bytes vs inference %zu", frozen, eval);
    CHECK(top > eval);
    CHECK(pd_violations() == 0 && pd_live_regions() == 0);
}

/* Without a GPU driver the loader's slots are plain aligned host memory, usable as such. */
static void pinned_alloc_falls_back_to_host_memory(void) {
    float *p = gpu_pinned_alloc(1000 * sizeof(float));
    CHECK(p != NULL);
    if (!p) return;
    CHECK(((uintptr_t)p & 63) == 0);
    for (int i = 0; i < 1000; i++) p[i] = (float)i;
    CHECK(p[999] == 999.0f);
    int n = 0;
    char why[256];
    if (gpu_probe(&n, why, sizeof why) != 0) CHECK(gpu_pinned_is_locked(p) == 0);
    gpu_pinned_free(p);
    gpu_pinned_free(NULL);
}

static void remove_tree(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* The backend's precision is fixed when it is created; a given backend whose precision
 * is not train.precision is refused (a bf16 config would otherwise run fp32 silently). */
static void given_backend_must_have_the_configured_precision(void) {
    Config cfg;
    if (load_cfg(&cfg, g_tmp, 10, "device=cuda;train.precision=bf16") != 0) {
        CHECK(0);
        return;
    }
    TrainDevice d;
    Err e = {{0}};
    CHECK(tdev_open(&d, &cfg, CFG_DEVICE_CUDA, 1, NULL, pd_backend(), &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "pretend-device computes in fp32, but train.precision is bf16");
    CHECK(tdev_open(&d, &cfg, CFG_DEVICE_CUDA, 1, NULL, pd_backend_prec(DT_BF16), &e) == 0);
    CHECK(d.be->precision == DT_BF16);
    ActFmt f;
    char why[128];
    tdev_image_format(&cfg, d.be, &f, why, sizeof why);
    CHECK(f.dt == DT_BF16 && f.nhwc == 1);
    tdev_close(&d);
    cfg_free(&cfg);
}

int main(void) {
    const char *src = getenv("VQA_SRC");
    snprintf(g_cfg_path, sizeof g_cfg_path, "%s/configs/demo.yaml", src ? src : "..");
    snprintf(g_tmp, sizeof g_tmp, "/tmp/test_trainer_device.XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(optim_step_on_device_memory_matches_cpu);
    RUN(pinned_alloc_falls_back_to_host_memory);
    RUN(frozen_encoder_keeps_no_activations_on_device);
    RUN(device_path_trains_like_the_cpu);
    RUN(resume_on_device_continues_like_the_cpu);
    RUN(image_encoder_layouts_train_like_nchw);
    RUN(given_backend_must_have_the_configured_precision);
    RUN(checkpoint_with_a_prefetched_batch_resumes_the_same);
    RUN(predict_on_device_writes_the_cpu_predictions);
    remove_tree(g_tmp);
    return test_summary();
}
