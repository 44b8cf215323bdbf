/* test_optim.c: AdamW, schedules, clipping and the dynamic loss scaler, against values
 * derived by hand from the update rules (not by re-running the same code). */
// TEST_LIBS: vqa_optim
// TEST_LABELS: unit
#include "testlib.h"
#include "train/optim.h"

/* With bias correction, AdamW's first step is p -= lr * g / (|g| + eps) ~= lr * sign(g),
 * after the decoupled decay p *= (1 - lr * wd). A constant gradient keeps m^ = g, v^ = g^2,
 * so every later step moves by the same amount. */
static void adamw_first_steps_move_by_lr_times_sign(void) {
    float p[4] = {1.0f, -2.0f, 0.5f, 3.0f};
    const float g[4] = {0.3f, -4.0f, 2.0f, 1e-3f};
    OptimSegment seg = {.param_off = 0, .grad_off = 0, .n = 4, .lr_mult = 1.0f, .decay = 1};
    AdamW o;
    CHECK(adamw_init(&o, 4, 0.9f, 0.999f, 1e-8f, 0.1f) == 0);
    double expect[4] = {1.0, -2.0, 0.5, 3.0};
    const double lr = 0.01;
    for (int step = 0; step < 3; step++) {
        adamw_step(&o, p, g, &seg, 1, (float)lr);
        for (int i = 0; i < 4; i++) {
            expect[i] *= 1.0 - lr * 0.1;
            expect[i] -= lr * g[i] / (fabs(g[i]) + 1e-8);
        }
    }
    for (int i = 0; i < 4; i++) CHECK_NEAR(p[i], expect[i], 1e-5);
    CHECK(o.t == 3);
    adamw_free(&o);
}

/* Segments: encoder parameters use lr * mult, biases get no weight decay, and the
 * gradient offset is independent of the parameter offset (frozen parameters in between). */
static void adamw_segments_apply_lr_mult_and_decay_mask(void) {
    float p[5] = {1, 1, 1, 1, 1};
    const float g[3] = {1, 1, 1};
    OptimSegment segs[2] = {
        {.param_off = 0, .grad_off = 0, .n = 2, .lr_mult = 0.1f, .decay = 1},
        {.param_off = 4, .grad_off = 2, .n = 1, .lr_mult = 1.0f, .decay = 0},
    };
    AdamW o;
    CHECK(adamw_init(&o, 3, 0.9f, 0.999f, 1e-8f, 0.5f) == 0);
    adamw_step(&o, p, g, segs, 2, 0.1f);
    CHECK_NEAR(p[0], 1.0 * (1 - 0.01 * 0.5) - 0.01, 1e-6);
    CHECK_NEAR(p[1], p[0], 0);
    CHECK_NEAR(p[2], 1.0, 0); /* frozen: untouched */
    CHECK_NEAR(p[3], 1.0, 0);
    CHECK_NEAR(p[4], 1.0 - 0.1, 1e-6); /* no decay */
    adamw_free(&o);
}

static void schedules_warmup_cosine_linear(void) {
    CHECK_NEAR(lr_at(SCHED_COSINE, 1.0f, 0, 10, 110), 0.1, 1e-7);
    CHECK_NEAR(lr_at(SCHED_COSINE, 1.0f, 9, 10, 110), 1.0, 1e-7);
    CHECK_NEAR(lr_at(SCHED_COSINE, 1.0f, 10, 10, 110), 1.0, 1e-7);
    CHECK_NEAR(lr_at(SCHED_COSINE, 1.0f, 60, 10, 110), 0.5, 1e-6);
    CHECK_NEAR(lr_at(SCHED_COSINE, 1.0f, 110, 10, 110), 0.0, 1e-7);
    CHECK_NEAR(lr_at(SCHED_LINEAR, 2.0f, 35, 10, 110), 1.5, 1e-6);
    CHECK_NEAR(lr_at(SCHED_CONSTANT, 2.0f, 1000, 10, 110), 2.0, 0);
    CHECK_NEAR(lr_at(SCHED_LINEAR, 2.0f, 500, 0, 110), 0.0, 0);
}

static void clip_scales_to_max_norm_only_when_above(void) {
    float g[2] = {3, 4};
    double n = grad_global_norm(g, 2);
    CHECK_NEAR(n, 5.0, 1e-12);
    float c = grad_clip(g, 2, n, 1.0f);
    CHECK_NEAR(c, 1.0 / (5.0 + 1e-6), 1e-7);
    CHECK_NEAR(grad_global_norm(g, 2), 1.0, 1e-5);
    float h[2] = {0.3f, 0.4f};
    CHECK_NEAR(grad_clip(h, 2, grad_global_norm(h, 2), 1.0f), 1.0, 0);
    CHECK_NEAR(h[0], 0.3f, 0);
}

static void loss_scaler_skips_halves_and_grows(void) {
    LossScaler s;
    loss_scaler_init(&s, 1024.0f, 2.0f, 0.5f, 3);
    float g[3] = {1, 2, 3};
    CHECK(!grads_have_nonfinite(g, 3));
    g[1] = INFINITY;
    CHECK(grads_have_nonfinite(g, 3));
    CHECK(loss_scaler_update(&s, 1) == 1);
    CHECK_NEAR(s.scale, 512, 0);
    g[1] = NAN;
    CHECK(grads_have_nonfinite(g, 3));
    CHECK(loss_scaler_update(&s, 1) == 1);
    CHECK_NEAR(s.scale, 256, 0);
    CHECK(s.skipped == 2);
    CHECK(loss_scaler_update(&s, 0) == 0);
    CHECK(loss_scaler_update(&s, 0) == 0);
    CHECK_NEAR(s.scale, 256, 0);
    CHECK(loss_scaler_update(&s, 0) == 0); /* third clean step: grow */
    CHECK_NEAR(s.scale, 512, 0);
    CHECK(s.clean_steps == 0);
}

int main(void) {
    RUN(adamw_first_steps_move_by_lr_times_sign);
    RUN(adamw_segments_apply_lr_mult_and_decay_mask);
    RUN(schedules_warmup_cosine_linear);
    RUN(clip_scales_to_max_norm_only_when_above);
    RUN(loss_scaler_skips_halves_and_grows);
    return test_summary();
}
