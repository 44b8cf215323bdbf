/* throughput.c: training throughput of the full fusion model (ResNet-50 + TinyBERT 4L-312D +
 * mul fusion, 3129 answers) on the CUDA backend: samples/s and the step-time split (batch
 * upload / forward / loss / backward / optimizer), for a frozen and a trainable image
 * encoder, plus peak device memory. PyTorch's number for the same model comes from
 * bench/compare_pytorch.py in the same device_check.sh run (bench/device_check.sh prints
 * the ratio). Random inputs (never zeros: they can run faster than real data).
 *
 *   bench_throughput [--batch 256] [--steps 10] [--warmup 3] [--precision bf16|fp32|fp16]
 *                    [--image-size 224] [--len 20] [--mode both|frozen|trainable]
 *                    [--act both|nhwc|plain]
 *
 * --act: how the ResNet stores its activations. "nhwc" is what the trainer picks on a GPU
 * with bf16/fp16 (model.image_encoder.layout auto): channels-last in the precision's type;
 * "plain" is fp32 NCHW storage with only the matrix products in the precision's type (the
 * trainer before activation formats existed, and layout: nchw). "both" (default) runs plain
 * first, then nhwc, so one run gives the ratio of the two on the same GPU.
 *
 * Phases are timed on the host between stream synchronizations, so the split adds a few
 * synchronizations per step that the trainer does not need; the "step" column is the
 * whole step. Without a usable GPU it prints why and exits 0 (nothing to measure). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda/backend_cuda.h"
#include "cuda/gpu.h"
#include "model/vqa_model.h"
#include "train/trainer.h"
#include "util/rng.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static Rng bench_rng = {0x1234567ull};
static float frand(void) { return (float)(rng_next(&bench_rng) >> 40) * (1.0f / 16777216.0f); } /* [0, 1), 24 bits */

typedef struct Split { double data, fwd, loss, bwd, opt, step; } Split;

static int run_mode(const Backend *be, const char *mode, int nhwc, int B, int S, int L, int A, int steps, int warmup,
                    const char *prec, Err *e) {
    VqaModelConfig c;
    vqa_model_config_default(&c, A);
    if (nhwc) c.image_fmt = (ActFmt){1, !strcmp(prec, "bf16") ? DT_BF16 : !strcmp(prec, "fp16") ? DT_F16 : DT_F32};
    c.image_freeze = (FreezeSpec){.mode = strcmp(mode, "frozen") == 0 ? FREEZE_ALL : FREEZE_NONE};
    c.text_freeze = (FreezeSpec){.mode = FREEZE_NONE};
    VqaModel m;
    gpu_mem_peak_reset(be); /* the previous configuration's buffers are freed */
    if (vqa_model_init(&m, &c, be, e) != 0) return -1;
    /* batch: images on the device (uploaded from pinned memory each step, the loader's path);
     * token ids / types / mask in pinned host memory: bert_forward checks them on the host
     * and copies them into the device arena */
    const size_t nimg = (size_t)B * 3 * S * S, ntok = (size_t)B * L, ntgt = (size_t)B * A;
    float *h_img = gpu_host_alloc(nimg * 4), *h_tgt = gpu_host_alloc(ntgt * 4);
    int32_t *tok = gpu_host_alloc(ntok * 4), *typ = gpu_host_alloc(ntok * 4);
    float *mask = gpu_host_alloc(ntok * 4);
    float *d_img = be->alloc(be, nimg * 4), *d_tgt = be->alloc(be, ntgt * 4);
    if (!h_img || !h_tgt || !tok || !typ || !mask || !d_img || !d_tgt) return err_set(e, "out of memory for the batch");
    for (size_t i = 0; i < nimg; i++) h_img[i] = 4.0f * frand() - 2.0f;
    for (size_t i = 0; i < ntgt; i++) h_tgt[i] = frand() < 0.002f ? 0.3f * (float)(1 + (int)(frand() * 3.3f)) : 0.0f;
    for (int b = 0; b < B; b++) {
        int len = 6 + (int)(frand() * (float)(L - 6));
        for (int l = 0; l < L; l++) {
            size_t i = (size_t)b * L + l;
            tok[i] = l == 0 ? 101 : l == len - 1 ? 102 : l < len ? 1000 + (int32_t)(frand() * 20000) : 0;
            typ[i] = 0;
            mask[i] = l < len ? 1.0f : 0.0f;
        }
    }
    be->copy_h2d(be, d_tgt, h_tgt, ntgt * 4);
    Batch batch = {.size = B, .n_real = B, .image_size = S, .max_len = L, .n_answers = A, .images = d_img,
                   .tokens = tok, .attn_mask = mask, .token_types = typ, .targets = d_tgt};
    OptimSegment *segs = NULL;
    int nseg = 0;
    if (trainer_segments(&m.ps, 0.1f, &segs, &nseg, e) != 0) return -1;
    /* AdamW at a constant 1e-4, gradients clipped to norm 1 */
    OptimOptions oo = {.lr = 1e-4f, .schedule = SCHED_CONSTANT, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                       .weight_decay = 0.01f, .clip_norm = 1.0f};
    Optimizer opt;
    if (optim_init(&opt, be, &oo, segs, nseg, m.ps.n_grads, e) != 0) return -1;
    ArenaMem am = backend_arena_mem(be);
    Arena arena;
    arena_init_mem(&arena, 0, &am);
    Split sum = {0};
    uint64_t allocs_after_warmup = 0;
    double loss = 0;
    for (int it = 0; it < warmup + steps; it++) {
        Split t;
        double t0 = now_s();
        arena_reset(&arena);
        be->copy_h2d_async(be, d_img, h_img, nimg * 4);
        gpu_copy_wait(be);
        double t1 = now_s();
        float *logits = NULL;
        if (vqa_model_forward(&m, &batch, 1, (uint64_t)it, &arena, &logits, e) != 0) return -1;
        be->synchronize(be);
        double t2 = now_s();
        float *dlogits = arena_floats(&arena, ntgt);
        if (!dlogits) return err_set(e, "arena: out of device memory");
        loss = be->bce_logits(be, B, A, logits, d_tgt, 1.0f, dlogits); /* waits for the value */
        double t3 = now_s();
        ps_zero_grads(&m.ps);
        if (vqa_model_backward(&m, dlogits, &arena, e) != 0) return -1;
        be->synchronize(be);
        double t4 = now_s();
        optim_step(be, &opt, m.ps.values, m.ps.grads, NULL);
        be->synchronize(be);
        double t5 = now_s();
        if (be->error(be, e) != 0) return -1;
        t = (Split){t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0};
        if (it == warmup) allocs_after_warmup = arena.n_sys_allocs;
        if (it >= warmup) {
            sum.data += t.data, sum.fwd += t.fwd, sum.loss += t.loss;
            sum.bwd += t.bwd, sum.opt += t.opt, sum.step += t.step;
        }
    }
    const double k = 1000.0 / steps;
    char act[32];
    snprintf(act, sizeof act, "%s %s", nhwc ? "NHWC" : "NCHW", dtype_name(c.image_fmt.dt));
    printf("| %-9s | %-9s | %-4s | %5d | %9.1f | %8.1f | %6.1f | %6.1f | %6.1f | %6.1f | %6.1f | %7.2f | %8.4f | %s |\n",
           mode, act, prec, B, B * steps / sum.step, sum.step * k, sum.data * k, sum.fwd * k, sum.loss * k, sum.bwd * k,
           sum.opt * k, (double)gpu_mem_peak(be) / (1 << 30), loss,
           arena.n_sys_allocs == allocs_after_warmup ? "no" : "YES");
    fflush(stdout);
    arena_free(&arena);
    optim_free(&opt);
    be->free(be, d_img), be->free(be, d_tgt);
    gpu_host_free(h_img), gpu_host_free(h_tgt), gpu_host_free(tok), gpu_host_free(typ), gpu_host_free(mask);
    free(segs);
    vqa_model_free(&m);
    return 0;
}

int main(int argc, char **argv) {
    int B = 256, steps = 10, warmup = 3, S = 224, L = 20, A = 3129;
    const char *prec = "bf16", *mode = "both", *act = "both";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--precision")) prec = argv[i + 1];
        else if (!strcmp(argv[i], "--image-size")) S = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--len")) L = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mode")) mode = argv[i + 1];
        else if (!strcmp(argv[i], "--act")) act = argv[i + 1];
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (steps < 1 || B < 1) return 2;
    if (strcmp(act, "both") && strcmp(act, "nhwc") && strcmp(act, "plain")) {
        fprintf(stderr, "--act %s: expected both, nhwc or plain\n", act);
        return 2;
    }
    GpuOptions o;
    gpu_options_default(&o);
    o.precision = !strcmp(prec, "fp32") ? DT_F32 : !strcmp(prec, "fp16") ? DT_F16 : DT_BF16;
    Err e;
    const Backend *be = backend_cuda_create(&o, &e);
    if (!be) {
        printf("bench_throughput: nothing to measure: %s\n", e.msg);
        return 0;
    }
    char dev[256];
    gpu_describe(be, dev, sizeof dev);
    printf("bench_throughput: ResNet-50 (224) + TinyBERT 4L-312D (len %d) + mul fusion, %d answers, %d timed steps "
           "after %d warm-up; device %s\n", L, A, steps, warmup, dev);
    printf("| image enc | resnet activations | prec | batch | samples/s | step ms | data | fwd | loss | bwd | opt | "
           "peak GiB | loss | arena allocs in steady state |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    int rc = 0;
    const char *modes[2] = {"frozen", "trainable"};
    for (int i = 0; i < 2; i++) {
        if (strcmp(mode, "both") && strcmp(mode, modes[i])) continue;
        for (int nhwc = 0; nhwc <= 1; nhwc++) {
            if (strcmp(act, "both") && strcmp(act, nhwc ? "nhwc" : "plain")) continue;
            if (run_mode(be, modes[i], nhwc, B, S, L, A, steps, warmup, prec, &e) != 0) {
                printf("| %-9s | %-9s | %-4s | %5d | failed: %s |\n", modes[i], nhwc ? "NHWC" : "NCHW F32", prec, B,
                       e.msg);
                rc = 1;
                be->error(be, &e);
            }
        }
    }
    backend_cuda_destroy(be);
    return rc;
}
