/* test_vqa_model.c: the whole model: parameter counts per module (ResNet-50 without fc
 * 23,508,032; TinyBERT with pooler 14,350,248), names, freeze specs (no gradient slots, bad
 * stage names), weight loading by prefix, the start-up summary, finite-difference gradients
 * through a whole small model, and a step that allocates nothing after the first. */
// TEST_LIBS: vqa_model
// TEST_LABELS: unit
#include <unistd.h>

#include "model/vqa_model.h"
#include "model_refs.h"
#include "testlib.h"

static void small_config(VqaModelConfig *c, FusionType t) {
    vqa_model_config_default(c, 6);
    c->image_depth = 18;
    c->image_width = 0.0625f;
    c->image_freeze = (FreezeSpec){.mode = FREEZE_NONE};
    c->image_grid = t == FUSION_ATTENTION;
    c->text = (BertConfig){2, 16, 2, 24, 50, 16, 2, 0, 0.0f, 1e-12f};
    c->fusion_type = t;
    c->fusion_hidden = 12;
    c->fusion_dropout = 0.0f;
    c->seed = 5;
}

static void default_model_counts_match_torchvision_and_hf(void) {
    VqaModelConfig c;
    VqaModel m;
    Err e;
    vqa_model_config_default(&c, 3129);
    CHECK(vqa_model_init(&m, &c, backend_cpu(), &e) == 0);
    CHECK_MSG(ps_numel(&m.ps, PG_IMAGE, 0) == 23508032, "image %zu", ps_numel(&m.ps, PG_IMAGE, 0));
    CHECK_MSG(ps_numel(&m.ps, PG_TEXT, 0) == 14350248, "text %zu", ps_numel(&m.ps, PG_TEXT, 0));
    /* mul, hidden 1024: img_proj 2048->1024, txt_proj 312->1024 */
    CHECK(ps_numel(&m.ps, PG_FUSION, 0) == 2048 * 1024 + 1024 + 312 * 1024 + 1024);
    CHECK(ps_numel(&m.ps, PG_CLASSIFIER, 0) == 1024 * 1024 + 1024 + 3129 * 1024 + 3129);
    /* freeze: all (image) -> no image gradients; the rest trainable */
    CHECK(ps_numel(&m.ps, PG_IMAGE, 1) == 0);
    CHECK(m.ps.n_grads == ps_numel(&m.ps, -1, 0) - 23508032);
    CHECK(m.image_trainable == 0 && m.text_trainable == 1);
    CHECK(ps_find(&m.ps, "image_encoder.layer4.2.bn3.running_var") >= 0);
    CHECK(ps_find(&m.ps, "text_encoder.encoder.layer.3.output.LayerNorm.bias") >= 0);
    CHECK(ps_find(&m.ps, "text_encoder.pooler.dense.weight") >= 0);
    CHECK(ps_find(&m.ps, "classifier.3.weight") >= 0);
    char buf[4096];
    vqa_model_summary(&m, buf, sizeof buf);
    CHECK_STR_CONTAINS(buf, "image_encoder");
    CHECK_STR_CONTAINS(buf, "23,508,032");
    CHECK_STR_CONTAINS(buf, "14,350,248");
    CHECK_STR_CONTAINS(buf, "AdamW state");
    fprintf(stderr, "%s", buf);
    vqa_model_free(&m);
}

static void freeze_lists_name_the_trainable_stages(void) {
    VqaModelConfig c;
    VqaModel m;
    Err e;
    small_config(&c, FUSION_MUL);
    c.image_freeze = (FreezeSpec){.mode = FREEZE_LIST, .n = 1, .stage = {"layer4"}};
    c.text_freeze = (FreezeSpec){.mode = FREEZE_LIST, .n = 2, .stage = {"layer1", "pooler"}};
    CHECK(vqa_model_init(&m, &c, backend_cpu(), &e) == 0);
    CHECK(ps_grad(&m.ps, ps_find(&m.ps, "image_encoder.conv1.weight")) == NULL);
    CHECK(ps_grad(&m.ps, ps_find(&m.ps, "image_encoder.layer3.1.conv2.weight")) == NULL);
    CHECK(ps_grad(&m.ps, ps_find(&m.ps, "image_encoder.layer4.0.conv1.weight")) != NULL);
    CHECK(ps_grad(&m.ps, ps_find(&m.ps, "text_encoder.embeddings.word_embeddings.weight")) == NULL);
    CHECK(ps_grad(&m.ps, ps_find(&m.ps, "text_encoder.encoder.layer.0.output.dense.weight")) == NULL);
    CHECK(ps_grad(&m.ps, ps_find(&m.ps, "text_encoder.encoder.layer.1.output.dense.weight")) != NULL);
    CHECK(ps_grad(&m.ps, ps_find(&m.ps, "text_encoder.pooler.dense.bias")) != NULL);
    CHECK(ps_grad(&m.ps, ps_find(&m.ps, "classifier.0.weight")) != NULL);
    char buf[4096];
    vqa_model_summary(&m, buf, sizeof buf);
    CHECK_STR_CONTAINS(buf, "freeze: image_encoder layer4, text_encoder layer1, pooler;");
    vqa_model_free(&m);

    small_config(&c, FUSION_MUL);
    c.image_freeze = (FreezeSpec){.mode = FREEZE_LIST, .n = 1, .stage = {"layer5"}};
    CHECK(vqa_model_init(&m, &c, backend_cpu(), &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "model.image_encoder.freeze");
    CHECK_STR_CONTAINS(e.msg, "layer5");
    vqa_model_free(&m);
    small_config(&c, FUSION_MUL);
    c.text_freeze = (FreezeSpec){.mode = FREEZE_LIST, .n = 1, .stage = {"layer7"}};
    CHECK(vqa_model_init(&m, &c, backend_cpu(), &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "layers 0..1");
    vqa_model_free(&m);
    vqa_freeze_format(&(FreezeSpec){.mode = FREEZE_ALL}, buf, sizeof buf);
    CHECK(!strcmp(buf, "all"));
    vqa_freeze_format(&(FreezeSpec){.mode = FREEZE_NONE}, buf, sizeof buf);
    CHECK(!strcmp(buf, "none"));
    vqa_freeze_format(&(FreezeSpec){.mode = FREEZE_LIST}, buf, sizeof buf); /* nothing trainable */
    CHECK(!strcmp(buf, "all"));
    small_config(&c, FUSION_MUL); /* all / none are modes, not stages */
    c.text_freeze = (FreezeSpec){.mode = FREEZE_LIST, .n = 2, .stage = {"pooler", "all"}};
    CHECK(vqa_model_init(&m, &c, backend_cpu(), &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "model.text_encoder.freeze");
    CHECK_STR_CONTAINS(e.msg, "'all'");
    vqa_model_free(&m);
    small_config(&c, FUSION_ATTENTION);
    c.image_grid = 0;
    CHECK(vqa_model_init(&m, &c, backend_cpu(), &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "output: grid");
    vqa_model_free(&m);
}

static void pretrained_weights_load_by_prefix_and_report_unused(void) {
    char dir[] = "/tmp/vqa_test_model_XXXXXX", path[128];
    if (!mkdtemp(dir)) { CHECK(0); return; }
    snprintf(path, sizeof path, "%s/bert.safetensors", dir);
    VqaModelConfig c;
    VqaModel src, m;
    Err e;
    small_config(&c, FUSION_MUL);
    c.seed = 77;
    CHECK(vqa_model_init(&src, &c, backend_cpu(), &e) == 0);
    /* an original-TinyBERT-style file: "bert." prefix (+ the model's own extra tensors) */
    CHECK(ps_save_safetensors(&src.ps, path, "text_encoder.", "bert.", &e) == 0);
    c.seed = 5;
    snprintf(c.text_weights, sizeof c.text_weights, "%s", path);
    snprintf(c.text_weights_prefix, sizeof c.text_weights_prefix, "bert.");
    CHECK(vqa_model_init(&m, &c, backend_cpu(), &e) == 0);
    int k = ps_find(&m.ps, "text_encoder.encoder.layer.1.intermediate.dense.weight");
    CHECK(memcmp(ps_value(&m.ps, k), ps_value(&src.ps, k), ps_info(&m.ps, k)->numel * 4) == 0);
    k = ps_find(&m.ps, "classifier.0.weight");
    CHECK(memcmp(ps_value(&m.ps, k), ps_value(&src.ps, k), ps_info(&m.ps, k)->numel * 4) != 0);
    CHECK_STR_CONTAINS(m.load_notes, "text_encoder: loaded");
    vqa_model_free(&m);
    /* wrong prefix: the first missing tensor is named */
    snprintf(c.text_weights_prefix, sizeof c.text_weights_prefix, "%s", "");
    CHECK(vqa_model_init(&m, &c, backend_cpu(), &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "missing tensor 'embeddings.word_embeddings.weight'");
    vqa_model_free(&m);
    vqa_model_free(&src);
    unlink(path);
    rmdir(dir);
}

/* ---- whole small model: finite differences and steady-state memory ---- */

enum { NB = 2, S = 48, L = 5 };

typedef struct Ctx {
    VqaModel *m;
    Batch b;
    Arena a;
    float dout[NB * 6];
} Ctx;

static void make_batch(Ctx *c, float *img, int32_t *tok, int32_t *tt, float *mask) {
    TestRng r = {123};
    trng_fill(&r, img, (size_t)NB * 3 * S * S, -1.5f, 1.5f);
    for (int i = 0; i < NB * L; i++) {
        tok[i] = 1 + (int32_t)(trng_u64(&r) % 49);
        tt[i] = 0;
        mask[i] = (i % L) < 4 ? 1.f : 0.f;
    }
    trng_fill(&r, c->dout, NB * 6, -1, 1);
    c->b = (Batch){.size = NB, .n_real = NB, .image_size = S, .max_len = L, .n_answers = 6, .images = img,
                   .tokens = tok, .attn_mask = mask, .token_types = tt};
}

static double loss_fn(void *vc) {
    Ctx *c = vc;
    Err e;
    float *lg;
    arena_reset(&c->a);
    if (vqa_model_forward(c->m, &c->b, 1, 9, &c->a, &lg, &e) != 0) return NAN;
    double s = 0;
    for (int i = 0; i < NB * 6; i++) s += (double)lg[i] * c->dout[i];
    return s;
}

/* Central-difference relative error of tensor `name`'s backward gradient (already in
 * ps.grads), over `count` entries from `first` (count 0 = the whole tensor, sampled at 30
 * entries; otherwise all `count`). -1 when the tensor is missing or has no gradient. */
static double fd_error(Ctx *c, const char *name, size_t first, size_t count) {
    ParamStore *ps = &c->m->ps;
    int k = ps_find(ps, name);
    if (k < 0 || !ps_grad(ps, k)) return -1;
    size_t n = count ? count : ps_info(ps, k)->numel;
    float *g = malloc(n * sizeof *g);
    if (!g) return -1;
    memcpy(g, ps_grad(ps, k) + first, n * sizeof *g); /* a copy: gradcheck reruns the forward */
    double err = gradcheck(loss_fn, c, ps_value(ps, k) + first, g, n, 3e-3, count ? 0 : 30);
    free(g);
    return err;
}

static void whole_model_gradients_match_finite_differences(FusionType t) {
    VqaModelConfig cfg;
    VqaModel m;
    Err e;
    small_config(&cfg, t);
    /* image trained from layer3 up (BN in train mode there), text fully trainable */
    cfg.image_freeze = (FreezeSpec){.mode = FREEZE_LIST, .n = 2, .stage = {"layer3", "layer4"}};
    if (vqa_model_init(&m, &cfg, backend_cpu(), &e) != 0) { fprintf(stderr, "%s\n", e.msg); CHECK(0); return; }
    static float img[NB * 3 * S * S], mask[NB * L];
    static int32_t tok[NB * L], tt[NB * L];
    Ctx c = {.m = &m};
    arena_init(&c.a, 0);
    make_batch(&c, img, tok, tt, mask);
    ps_zero_grads(&m.ps);
    loss_fn(&c);
    CHECK(vqa_model_backward(&m, c.dout, &c.a, &e) == 0);
    const char *names[] = {"image_encoder.layer3.0.conv1.weight", "image_encoder.layer4.1.bn2.weight",
                           "text_encoder.pooler.dense.weight", "text_encoder.embeddings.word_embeddings.weight",
                           "fusion.img_proj.weight", "fusion.txt_proj.bias", "classifier.0.weight", "classifier.3.bias"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        double err;
        if (strstr(names[i], "word_")) {
            /* word embeddings: only rows of tokens in the batch have gradients, so check the
             * whole row of the first token (H entries) instead of sampling the table; row 0
             * ([PAD], never a token here) must have none */
            size_t H = (size_t)cfg.text.hidden;
            const float *g = ps_grad(&m.ps, ps_find(&m.ps, names[i]));
            for (size_t j = 0; g && j < H; j++) CHECK(g[j] == 0.0f);
            err = fd_error(&c, names[i], (size_t)tok[0] * H, H);
        } else {
            err = fd_error(&c, names[i], 0, 0);
        }
        CHECK_MSG(err >= 0 && err < 0.1, "%s %s: FD relative error %.3g (-1: no gradient)", fusion_type_name(t),
                  names[i], err);
    }
    /* the frozen stem / layer1-2 got nothing and kept nothing */
    CHECK(ps_grad(&m.ps, ps_find(&m.ps, "image_encoder.layer2.0.conv1.weight")) == NULL);
    CHECK(m.image.bwd_from == 1 + 4);
    arena_free(&c.a);
    vqa_model_free(&m);
}

static void mul_model_gradients_match_finite_differences(void) { whole_model_gradients_match_finite_differences(FUSION_MUL); }
static void attention_model_gradients_match_finite_differences(void) {
    whole_model_gradients_match_finite_differences(FUSION_ATTENTION);
}

/* model.text_encoder.pool: mean — the question feature is the mask-weighted mean of the
 * last layer (checked against a host average of bert.sequence), the pooler is frozen (no
 * gradient slot), and gradients through the mean match finite differences. */
static void mean_pooled_question_feature(void) {
    VqaModelConfig cfg;
    VqaModel m;
    Err e;
    small_config(&cfg, FUSION_MUL);
    cfg.image_freeze = (FreezeSpec){.mode = FREEZE_ALL};
    cfg.text_mean_pool = 1;
    if (vqa_model_init(&m, &cfg, backend_cpu(), &e) != 0) { fprintf(stderr, "%s\n", e.msg); CHECK(0); return; }
    CHECK(ps_grad(&m.ps, ps_find(&m.ps, "text_encoder.pooler.dense.weight")) == NULL);
    static float img[NB * 3 * S * S], mask[NB * L];
    static int32_t tok[NB * L], tt[NB * L];
    Ctx c = {.m = &m};
    arena_init(&c.a, 0);
    make_batch(&c, img, tok, tt, mask);
    mask[L + 1] = 0.0f; /* row 1: tokens 0, 2, 3 only */
    ps_zero_grads(&m.ps);
    loss_fn(&c);
    int H = cfg.text.hidden;
    double worst = 0;
    for (int b = 0; b < NB; b++)
        for (int h = 0; h < H; h++) {
            double sum = 0, cnt = 0;
            for (int l = 0; l < L; l++) {
                sum += mask[b * L + l] * m.text.sequence[((size_t)b * L + l) * H + h];
                cnt += mask[b * L + l];
            }
            double d = fabs(sum / cnt - m.text_feat[(size_t)b * H + h]);
            if (d > worst) worst = d;
        }
    CHECK_MSG(worst < 1e-6, "mean pool differs from the host mean by %.3g", worst);
    CHECK(vqa_model_backward(&m, c.dout, &c.a, &e) == 0);
    const char *names[] = {"text_encoder.encoder.layer.1.output.dense.weight", "text_encoder.embeddings.LayerNorm.bias",
                           "fusion.txt_proj.weight"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        double err = fd_error(&c, names[i], 0, 0);
        CHECK_MSG(err >= 0 && err < 0.05, "mean pool %s: FD relative error %.3g (-1: no gradient)", names[i], err);
    }
    arena_free(&c.a);
    vqa_model_free(&m);
}

static void second_step_allocates_nothing(void) {
    VqaModelConfig cfg;
    VqaModel m;
    Err e;
    small_config(&cfg, FUSION_ATTENTION);
    cfg.fusion_dropout = 0.3f;
    cfg.text.dropout = 0.1f;
    if (vqa_model_init(&m, &cfg, backend_cpu(), &e) != 0) { CHECK(0); return; }
    static float img[NB * 3 * S * S], mask[NB * L];
    static int32_t tok[NB * L], tt[NB * L];
    Ctx c = {.m = &m};
    arena_init(&c.a, 0);
    make_batch(&c, img, tok, tt, mask);
    for (int step = 0; step < 3; step++) {
        arena_reset(&c.a);
        uint64_t before = c.a.n_sys_allocs;
        float *lg;
        CHECK(vqa_model_forward(&m, &c.b, 1, (uint64_t)step, &c.a, &lg, &e) == 0);
        CHECK(vqa_model_backward(&m, c.dout, &c.a, &e) == 0);
        if (step) CHECK(c.a.n_sys_allocs == before);
    }
    arena_free(&c.a);
    vqa_model_free(&m);
}

int main(void) {
    RUN(default_model_counts_match_torchvision_and_hf);
    RUN(freeze_lists_name_the_trainable_stages);
    RUN(pretrained_weights_load_by_prefix_and_report_unused);
    RUN(mul_model_gradients_match_finite_differences);
    RUN(attention_model_gradients_match_finite_differences);
    RUN(mean_pooled_question_feature);
    RUN(second_step_allocates_nothing);
    return test_summary();
}
