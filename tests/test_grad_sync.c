/* test_grad_sync.c: bucket planning (hand-cut cases and invariants on random layouts),
 * launch order as backward's ready offset decreases, accumulation micro-steps, the
 * world-of-one path, host staging of device buffers, the model's gradient-ready hook
 * (what it reports is really final), and — when run under
 * `mpirun -np 2` (tests/test_comm.sh does) — real averaging, broadcast and the
 * same-weights check across ranks. */
// TEST_LIBS: vqa_core
// TEST_LABELS: unit
#include <stdint.h>

#include "comm/comm.h"
#include "model/vqa_model.h"
#include "testlib.h"
#include "train/grad_sync.h"

static Comm *g_comm; /* the test's communicator */

/* cap in floats -> the bucket_mb that gives it */
static double mb_for(size_t cap_floats) { return (double)cap_floats * 4.0 / (1024.0 * 1024.0); }

static int same_buckets(const GsyncBucket *b, int nb, const size_t (*want)[2], int nwant) {
    if (nb != nwant) return 0;
    for (int i = 0; i < nb; i++)
        if (b[i].begin != want[i][0] || b[i].end != want[i][1]) return 0;
    return 1;
}

/* Worked by hand: params [0,10) [10,30) [30,35) [35,60) [60,100) [100,120), cap 40.
 * From the end: {p5}=20; +p4 -> 60 > 40: close [100,120). {p4}=40; +p3 -> 65: close [60,100).
 * {p3}=25; +p2 -> 30 ok; +p1 -> 50: close [30,60). {p1}=20; +p0 -> 30 ok: [0,30). */
static void plan_cuts_from_the_end_at_parameter_boundaries(void) {
    size_t bounds[] = {0, 10, 30, 35, 60, 100};
    GsyncBucket *b;
    int nb;
    Err e = {{0}};
    CHECK(gsync_plan(bounds, 6, 120, 40, &b, &nb, &e) == 0);
    static const size_t want[][2] = {{100, 120}, {60, 100}, {30, 60}, {0, 30}};
    CHECK(same_buckets(b, nb, want, 4));
    free(b);
}

/* A parameter larger than the cap is a bucket of its own; neighbours are not merged into it. */
static void plan_gives_oversized_parameter_its_own_bucket(void) {
    size_t bounds[] = {0, 5, 105};
    GsyncBucket *b;
    int nb;
    Err e = {{0}};
    CHECK(gsync_plan(bounds, 3, 110, 20, &b, &nb, &e) == 0);
    static const size_t want[][2] = {{105, 110}, {5, 105}, {0, 5}};
    CHECK(same_buckets(b, nb, want, 3));
    free(b);
    /* a cap above the whole buffer: one bucket */
    CHECK(gsync_plan(bounds, 3, 110, 1000, &b, &nb, &e) == 0);
    static const size_t one[][2] = {{0, 110}};
    CHECK(same_buckets(b, nb, one, 1));
    free(b);
}

/* Invariants on random layouts: buckets tile [0, n) from the end, start at parameter
 * starts, hold <= cap floats unless they are one parameter, and are maximal (the next
 * parameter towards the front would not have fit). */
static void plan_tiles_buffer_on_random_layouts(void) {
    TestRng r = {7};
    Err e = {{0}};
    for (int trial = 0; trial < 300; trial++) {
        int np = 1 + (int)(trng_u64(&r) % 60);
        size_t *bounds = malloc((size_t)np * sizeof *bounds);
        size_t at = 0;
        for (int i = 0; i < np; i++) {
            bounds[i] = at;
            at += 1 + trng_u64(&r) % (trng_u64(&r) % 4 == 0 ? 5000 : 300);
        }
        size_t n = at, cap = 1 + trng_u64(&r) % 2000;
        GsyncBucket *b;
        int nb;
        CHECK(gsync_plan(bounds, np, n, cap, &b, &nb, &e) == 0);
        CHECK(nb >= 1 && b[0].end == n && b[nb - 1].begin == 0);
        for (int i = 0; i < nb; i++) {
            CHECK(b[i].begin < b[i].end);
            if (i) CHECK(b[i].end == b[i - 1].begin);
            int first = -1, count = 0; /* parameters inside the bucket */
            for (int j = 0; j < np; j++)
                if (bounds[j] >= b[i].begin && bounds[j] < b[i].end) {
                    if (first < 0) first = j;
                    count++;
                }
            CHECK(first >= 0 && bounds[first] == b[i].begin);
            CHECK(b[i].end - b[i].begin <= cap || count == 1);
            if (first > 0) CHECK(b[i].end - bounds[first - 1] > cap); /* maximal */
        }
        free(b);
        free(bounds);
        if (tl_case_failed) break;
    }
}

static void plan_rejects_bad_parameter_starts(void) {
    GsyncBucket *b;
    int nb;
    Err e = {{0}};
    size_t not_zero[] = {3, 10};
    CHECK(gsync_plan(not_zero, 2, 20, 8, &b, &nb, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "offset 0");
    size_t descending[] = {0, 10, 5};
    CHECK(gsync_plan(descending, 3, 20, 8, &b, &nb, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "parameter start 2 (5)");
    size_t past_end[] = {0, 20};
    CHECK(gsync_plan(past_end, 2, 20, 8, &b, &nb, &e) != 0);
}

/* Trainable parameters only, in registration order; frozen ones and buffers have no slot. */
static void bounds_come_from_trainable_parameters(void) {
    ParamInfo items[5];
    memset(items, 0, sizeof items);
    size_t goff[5] = {0, PS_NO_GRAD, 6, PS_NO_GRAD, 10};
    size_t numel[5] = {6, 100, 4, 8, 3};
    for (int i = 0; i < 5; i++) {
        snprintf(items[i].name, sizeof items[i].name, "p%d", i);
        items[i].grad_offset = goff[i];
        items[i].numel = numel[i];
    }
    ParamStore ps;
    memset(&ps, 0, sizeof ps);
    ps.items = items;
    ps.n = 5;
    size_t *b;
    int nb;
    Err e = {{0}};
    CHECK(gsync_bounds_from_params(&ps, &b, &nb, &e) == 0);
    CHECK(nb == 3 && b[0] == 0 && b[1] == 6 && b[2] == 10);
    free(b);
    items[4].grad_offset = 2; /* out of order: a broken layout is reported, by name */
    CHECK(gsync_bounds_from_params(&ps, &b, &nb, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "p4");
}

static const size_t k_bounds[] = {0, 10, 30, 35, 60, 100}; /* buckets as in the first case */

static void launch_order_follows_ready_offset(void) {
    float g[120];
    for (int i = 0; i < 120; i++) g[i] = (float)i;
    GradSync gs;
    Err e = {{0}};
    CHECK(gsync_init(&gs, g_comm, NULL, g, 120, k_bounds, 6, mb_for(40), &e) == 0);
    CHECK(gs.nb == 4);
    gs.enabled = 1; /* exercise the launch logic with a world of one's identity collectives */
    gsync_begin(&gs, 1);
    gsync_ready(&gs, 110); /* inside the last parameter: nothing complete */
    CHECK(gs.next == 0);
    gsync_ready(&gs, 100);
    CHECK(gs.next == 1 && gs.launched_at[0] == 100);
    gsync_ready(&gs, 61);
    CHECK(gs.next == 1);
    gsync_ready(&gs, 35); /* [60,100) complete, [30,60) not yet */
    CHECK(gs.next == 2 && gs.launched_at[1] == 35);
    gsync_ready(&gs, 0);
    CHECK(gs.next == 4 && gs.launched_at[2] == 0 && gs.launched_at[3] == 0);
    CHECK(gsync_finish(&gs, &e) == 0);
    CHECK(gs.steps == 1 && gs.buckets_early == 4);
    for (int i = 0; i < 120; i++) CHECK(g[i] == (float)i); /* average over one rank */
    gsync_free(&gs);
}

static void finish_launches_what_backward_did_not_report(void) {
    float g[120] = {0};
    GradSync gs;
    Err e = {{0}};
    CHECK(gsync_init(&gs, g_comm, NULL, g, 120, k_bounds, 6, mb_for(40), &e) == 0);
    gs.enabled = 1;
    gsync_begin(&gs, 1);
    gsync_ready(&gs, 60);
    CHECK(gs.next == 2);
    CHECK(gsync_finish(&gs, &e) == 0);
    CHECK(gs.next == 4 && gs.launched_at[2] == SIZE_MAX && gs.launched_at[3] == SIZE_MAX);
    CHECK(gs.buckets_early == 2);
    /* the next step starts over */
    gsync_begin(&gs, 1);
    CHECK(gs.next == 0);
    gsync_ready(&gs, 100);
    CHECK(gs.next == 1);
    CHECK(gsync_finish(&gs, &e) == 0);
    CHECK(gs.steps == 2);
    gsync_free(&gs);
}

static void accumulation_micro_steps_do_not_reduce(void) {
    float g[120] = {0};
    GradSync gs;
    Err e = {{0}};
    CHECK(gsync_init(&gs, g_comm, NULL, g, 120, k_bounds, 6, mb_for(40), &e) == 0);
    gs.enabled = 1;
    gsync_begin(&gs, 0);
    gsync_ready(&gs, 0);
    CHECK(gs.next == 0);
    CHECK(gsync_finish(&gs, &e) == 0);
    CHECK(gs.steps == 0);
    gsync_free(&gs);
}

static void world_of_one_leaves_gradients_alone(void) {
    if (comm_world(g_comm) != 1) return;
    float g[120];
    for (int i = 0; i < 120; i++) g[i] = 0.1f * (float)i;
    GradSync gs;
    Err e = {{0}};
    CHECK(gsync_init(&gs, g_comm, NULL, g, 120, k_bounds, 6, mb_for(40), &e) == 0);
    CHECK(gs.enabled == 0);
    gsync_begin(&gs, 1);
    gsync_ready(&gs, 0);
    CHECK(gs.next == 0);
    CHECK(gsync_finish(&gs, &e) == 0);
    CHECK(gs.steps == 0);
    for (int i = 0; i < 120; i++) CHECK(g[i] == 0.1f * (float)i);
    CHECK(gsync_broadcast_params(g_comm, NULL, g, 120, &e) == 0);
    CHECK(gsync_check_same(g_comm, NULL, g, 120, "parameters", &e) == 0);
    gsync_free(&gs);
    CHECK(gsync_init(&gs, g_comm, NULL, g, 120, k_bounds, 6, 0.0, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "bucket_mb");
}

/* A "device" backend whose memory is host memory, counting the staging copies. */
typedef struct CopyCount { int d2h, h2d; size_t bytes; } CopyCount;
static CopyCount g_copies;
static void fake_d2h(const Backend *be, void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); g_copies.d2h++; g_copies.bytes += bytes; }
static void fake_h2d(const Backend *be, void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); g_copies.h2d++; g_copies.bytes += bytes; }

static void device_buffers_are_staged_through_host(void) {
    Backend dev;
    memset(&dev, 0, sizeof dev);
    dev.name = "fake-cuda";
    dev.device = DEV_CUDA;
    dev.copy_d2h = fake_d2h;
    dev.copy_h2d = fake_h2d;
    float g[120];
    for (int i = 0; i < 120; i++) g[i] = (float)(3 * i);
    GradSync gs;
    Err e = {{0}};
    memset(&g_copies, 0, sizeof g_copies);
    CHECK(gsync_init(&gs, g_comm, &dev, g, 120, k_bounds, 6, mb_for(40), &e) == 0);
    gs.enabled = 1;
    gsync_begin(&gs, 1);
    gsync_ready(&gs, 30);
    CHECK(g_copies.d2h == 3 && g_copies.h2d == 0); /* copied out at launch */
    CHECK(gsync_finish(&gs, &e) == 0);
    CHECK(g_copies.d2h == 4 && g_copies.h2d == 4 && g_copies.bytes == 2 * 120 * sizeof(float));
    CHECK(gs.host != NULL);
    for (int i = 0; i < 120; i++) CHECK(g[i] == (float)(3 * i)); /* the same on every rank: mean = itself */
    gsync_free(&gs);
}

/* ---- the model's gradient-ready hook (VqaModel.grad_ready) ---- */

enum { HB = 2, HS = 32, HL = 5, HA = 6, MAX_REPORTS = 64 };

typedef struct HookLog {
    const ParamStore *ps;
    int n;
    size_t at[MAX_REPORTS];
    float *snap[MAX_REPORTS]; /* the gradient buffer when the report came */
} HookLog;

static void record_ready(void *ctx, size_t off) {
    HookLog *h = ctx;
    if (h->n >= MAX_REPORTS) return;
    h->at[h->n] = off;
    h->snap[h->n] = malloc(h->ps->n_grads * sizeof(float));
    memcpy(h->snap[h->n], h->ps->grads, h->ps->n_grads * sizeof(float));
    h->n++;
}

/* 1 if some report was exactly the gradient offset of tensor `name` */
static int reported_at(const HookLog *h, const ParamStore *ps, const char *name) {
    int i = ps_find(ps, name);
    if (i < 0 || ps_info(ps, i)->grad_offset == PS_NO_GRAD) return 0;
    for (int k = 0; k < h->n; k++)
        if (h->at[k] == ps_info(ps, i)->grad_offset) return 1;
    return 0;
}

/* Each report X promises that grads[X..] will not change any more in this backward:
 * compare every snapshot's tail with the final gradients. Reports shrink to 0. The
 * reports are fine-grained: one at the start of every trainable ResNet block (ResNet-18:
 * layerS.B, S = 1..4, B = 0..1) and BERT layer, of the pooler and of the embeddings. */
static void check_hook_promises(const FreezeSpec *image_freeze, const FreezeSpec *text_freeze, int want_reports) {
    VqaModelConfig c;
    vqa_model_config_default(&c, HA);
    c.image_depth = 18;
    c.image_width = 0.0625f;
    c.image_freeze = *image_freeze;
    c.text_freeze = *text_freeze;
    c.text = (BertConfig){2, 16, 2, 24, 50, 16, 2, 0, 0.0f, 1e-12f};
    c.fusion_type = FUSION_MUL;
    c.fusion_hidden = 12;
    c.fusion_dropout = 0.0f;
    c.seed = 5;
    VqaModel m;
    Err e = {{0}};
    if (vqa_model_init(&m, &c, backend_cpu(), &e) != 0) {
        CHECK_MSG(0, "%s", e.msg);
        return;
    }
    static float img[HB * 3 * HS * HS], mask[HB * HL], dout[HB * HA];
    static int32_t tok[HB * HL], tt[HB * HL];
    TestRng r = {11};
    trng_fill(&r, img, sizeof img / sizeof *img, -1.5f, 1.5f);
    trng_fill(&r, dout, HB * HA, -1, 1);
    for (int i = 0; i < HB * HL; i++) {
        tok[i] = 1 + (int32_t)(trng_u64(&r) % 49);
        tt[i] = 0;
        mask[i] = 1.f;
    }
    Batch b = {.size = HB, .n_real = HB, .image_size = HS, .max_len = HL, .n_answers = HA, .images = img,
               .tokens = tok, .attn_mask = mask, .token_types = tt};
    Arena a;
    arena_init(&a, 0);
    HookLog h = {.ps = &m.ps};
    m.grad_ready = record_ready;
    m.grad_ready_ctx = &h;
    float *logits;
    ps_zero_grads(&m.ps);
    CHECK(vqa_model_forward(&m, &b, 1, 3, &a, &logits, &e) == 0);
    CHECK_MSG(vqa_model_backward(&m, dout, &a, &e) == 0, "%s", e.msg);
    CHECK_MSG(h.n == want_reports, "%d reports, expected %d", h.n, want_reports);
    CHECK(h.n > 0 && h.at[h.n - 1] == 0);
    size_t ng = m.ps.n_grads;
    for (int k = 0; k < h.n; k++) {
        if (k) CHECK(h.at[k] <= h.at[k - 1]);
        CHECK(h.at[k] <= ng);
        size_t changed = 0;
        for (size_t i = h.at[k]; i < ng; i++) changed += h.snap[k][i] != m.ps.grads[i];
        CHECK_MSG(changed == 0, "report %d (offset %zu): %zu gradients changed afterwards", k, h.at[k], changed);
        if (k + 1 < h.n && h.at[k] > 0) { /* and what was not yet promised did change */
            size_t later = 0;
            for (size_t i = 0; i < h.at[k]; i++) later += h.snap[k][i] != m.ps.grads[i];
            CHECK(later > 0);
        }
        free(h.snap[k]);
    }
    /* the head's report is where the fusion/classifier gradients begin */
    int f = ps_find(&m.ps, "fusion.img_proj.weight");
    CHECK(f >= 0 && h.at[0] == ps_info(&m.ps, f)->grad_offset);
    /* a report at the first tensor of every trainable module */
    char name[128];
    for (int st = 1; st <= 4; st++)
        for (int bl = 0; bl < 2; bl++) {
            snprintf(name, sizeof name, "image_encoder.layer%d.%d.conv1.weight", st, bl);
            if (ps_trainable(&m.ps, ps_find(&m.ps, name))) CHECK_MSG(reported_at(&h, &m.ps, name), "no report at %s", name);
        }
    for (int l = 0; l < 2; l++) {
        snprintf(name, sizeof name, "text_encoder.encoder.layer.%d.attention.self.query.weight", l);
        if (ps_trainable(&m.ps, ps_find(&m.ps, name))) CHECK_MSG(reported_at(&h, &m.ps, name), "no report at %s", name);
    }
    static const char *const ends[] = {"text_encoder.pooler.dense.weight", "text_encoder.embeddings.word_embeddings.weight",
                                       "image_encoder.conv1.weight"};
    for (int i = 0; i < 3; i++)
        if (ps_trainable(&m.ps, ps_find(&m.ps, ends[i]))) CHECK_MSG(reported_at(&h, &m.ps, ends[i]), "no report at %s", ends[i]);
    arena_free(&a);
    vqa_model_free(&m);
}

/* reports: head, after the text encoder, the final 0 (3) + BERT pooler, 2 layers,
 * embeddings (4) + ResNet-18 blocks from the lowest trainable one up, and the stem */
static const FreezeSpec freeze_none = {.mode = FREEZE_NONE}, freeze_all = {.mode = FREEZE_ALL};
static void model_hook_reports_only_final_gradients(void) { check_hook_promises(&freeze_none, &freeze_none, 3 + 4 + 8 + 1); }
static void model_hook_with_frozen_image_encoder(void) { check_hook_promises(&freeze_all, &freeze_none, 3 + 4); }
/* layer4 = 2 blocks; BERT: pooler + layer 1 only (backward stops above layer 0) */
static void model_hook_with_partly_frozen_encoders(void) {
    check_hook_promises(&(FreezeSpec){.mode = FREEZE_LIST, .n = 1, .stage = {"layer4"}},
                        &(FreezeSpec){.mode = FREEZE_LIST, .n = 2, .stage = {"layer1", "pooler"}}, 3 + 2 + 2);
}

/* ---- multi-rank (under mpirun) ---- */

/* rank r's gradient i: small integers, so the mean over W ranks is sum / W exactly */
static float grad_of(int r, size_t i) { return (float)((int)(i % 97) * (r + 1) - 40 * r); }

static void two_ranks_average_gradients_bucket_by_bucket(void) {
    int W = comm_world(g_comm), R = comm_rank(g_comm);
    if (W < 2) return;
    /* 200 parameters of varied sizes, ~1.2 M floats, ~40 buckets of 32k floats */
    enum { NP = 200 };
    size_t bounds[NP], n = 0;
    for (int j = 0; j < NP; j++) {
        bounds[j] = n;
        n += 1 + (size_t)((j * 7919) % 12000);
    }
    float *g = malloc(n * sizeof *g);
    GradSync gs;
    Err e = {{0}};
    CHECK_MSG(gsync_init(&gs, g_comm, NULL, g, n, bounds, NP, mb_for(32768), &e) == 0, "%s", e.msg);
    CHECK(gs.enabled == 1 && gs.nb > 10);
    for (int step = 0; step < 2; step++) { /* the second step reuses the plan */
        for (size_t i = 0; i < n; i++) g[i] = grad_of(R, i);
        gsync_begin(&gs, 1);
        volatile double sink = 0;
        for (int j = NP - 1; j >= 0; j -= 10) { /* "backward", module by module */
            for (int k = 0; k < 20000; k++) sink += k;
            gsync_ready(&gs, bounds[j]);
        }
        CHECK_MSG(gsync_finish(&gs, &e) == 0, "%s", e.msg);
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) {
            double s = 0;
            for (int r = 0; r < W; r++) s += grad_of(r, i);
            bad += g[i] != (float)s / (float)W;
        }
        CHECK_MSG(bad == 0, "step %d: %zu of %zu gradients differ from the mean", step, bad, n);
    }
    /* the front parameters [0, bounds[9]) were never reported: finish launched them */
    CHECK(gs.steps == 2 && gs.buckets_early > 0 && gs.buckets_early < 2L * gs.nb);
    CHECK(gs.launched_at[gs.nb - 1] == SIZE_MAX && gs.launched_at[0] != SIZE_MAX);
    gsync_free(&gs);
    free(g);
}

/* the same through the all-reduce thread */
static void two_ranks_average_gradients_on_the_thread(void) {
    if (comm_world(g_comm) < 2) return;
    Err e = {{0}};
    CHECK_MSG(comm_set_async(g_comm, 1, &e) == 0, "%s", e.msg);
    CHECK(comm_async(g_comm));
    two_ranks_average_gradients_bucket_by_bucket();
    CHECK_MSG(comm_set_async(g_comm, 0, &e) == 0, "%s", e.msg);
}

/* dist.comm_thread: auto's core arithmetic, and the decision (a world of one: always off;
 * 2 ranks: on / off / auto with no spare core) */
static void comm_thread_choice(void) {
    CHECK(gsync_rank_cores(16, 16, 4) == 4); /* a mask as wide as the node, shared by 4 ranks */
    CHECK(gsync_rank_cores(8, 16, 2) == 8);  /* bound to 8 cores of its own (--map-by slot:PE=8) */
    CHECK(gsync_rank_cores(1, 2, 2) == 1);   /* Open MPI's default binding: one core */
    CHECK(gsync_rank_cores(2, 2, 2) == 1);   /* --bind-to none, 2 ranks on 2 cores */
    CHECK(gsync_rank_cores(2, 2, 0) == 2);
    char why[400];
    Err e = {{0}};
    CHECK_MSG(gsync_setup_comm_thread(g_comm, 1, 1, why, sizeof why, &e) == 0, "%s", e.msg);
    if (comm_world(g_comm) == 1) {
        CHECK(!comm_async(g_comm));
        CHECK_STR_CONTAINS(why, "only the mpi backend");
        return;
    }
    CHECK(comm_async(g_comm));
    CHECK_STR_CONTAINS(why, "on (dist.comm_thread: on");
    CHECK_MSG(gsync_setup_comm_thread(g_comm, 0, 1 << 20, why, sizeof why, &e) == 0, "%s", e.msg);
    CHECK(!comm_async(g_comm));
    CHECK_STR_CONTAINS(why, "auto: some rank has no spare core");
    CHECK_MSG(gsync_setup_comm_thread(g_comm, 2, 1, why, sizeof why, &e) == 0, "%s", e.msg);
    CHECK(!comm_async(g_comm));
    CHECK_STR_CONTAINS(why, "dist.comm_thread: off");
}

static void broadcast_makes_parameters_identical(void) {
    int W = comm_world(g_comm), R = comm_rank(g_comm);
    if (W < 2) return;
    size_t n = 50000;
    float *v = malloc(n * sizeof *v);
    TestRng rng = {100 + (uint64_t)R};
    trng_fill(&rng, v, n, -1, 1);
    Err e = {{0}};
    CHECK(gsync_check_same(g_comm, NULL, v, n, "parameters", &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "parameters differ between ranks");
    CHECK_MSG(gsync_broadcast_params(g_comm, NULL, v, n, &e) == 0, "%s", e.msg);
    CHECK_MSG(gsync_check_same(g_comm, NULL, v, n, "parameters", &e) == 0, "%s", e.msg);
    TestRng r0 = {100};
    float first;
    trng_fill(&r0, &first, 1, -1, 1);
    CHECK(v[0] == first); /* rank 0's values everywhere */
    free(v);
}

static void hash_is_fnv1a(void) {
    /* FNV-1a 64 of the 4 bytes of 0.0f is the hash of "\0\0\0\0" */
    float z = 0.0f;
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < 4; i++) h = (h ^ 0u) * 0x100000001b3ull;
    CHECK(gsync_hash(&z, 1) == h);
    CHECK(gsync_hash(&z, 0) == 0xcbf29ce484222325ull);
}

int main(int argc, char **argv) {
    Err e = {{0}};
    if (comm_init(&g_comm, &argc, &argv, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    RUN(plan_cuts_from_the_end_at_parameter_boundaries);
    RUN(plan_gives_oversized_parameter_its_own_bucket);
    RUN(plan_tiles_buffer_on_random_layouts);
    RUN(plan_rejects_bad_parameter_starts);
    RUN(bounds_come_from_trainable_parameters);
    RUN(hash_is_fnv1a);
    RUN(launch_order_follows_ready_offset);
    RUN(finish_launches_what_backward_did_not_report);
    RUN(accumulation_micro_steps_do_not_reduce);
    RUN(world_of_one_leaves_gradients_alone);
    RUN(device_buffers_are_staged_through_host);
    RUN(model_hook_reports_only_final_gradients);
    RUN(model_hook_with_frozen_image_encoder);
    RUN(model_hook_with_partly_frozen_encoders);
    RUN(two_ranks_average_gradients_bucket_by_bucket);
    RUN(two_ranks_average_gradients_on_the_thread);
    RUN(comm_thread_choice);
    RUN(broadcast_makes_parameters_identical);
    int rc = test_summary();
    comm_finalize(g_comm);
    return rc;
}
