/* test_fusion.c: the fusion head (concat / mul / attention + classifier MLP): names and
 * counts, finite-difference gradients w.r.t. parameters and both inputs (with dropout on,
 * and for attention also with a score scale fusion.att_scale != 1),
 * input-kind errors, and float64 PyTorch parity of the head alone and of a small ResNet grid
 * + attention head trained end to end. */
// TEST_LIBS: vqa_model
// TEST_LABELS: unit
#include "model/fusion.h"
#include "model/resnet.h"
#include "model_refs.h"
#include "testlib.h"

enum { B = 3, CI = 24, HT = 20, HID = 16, A = 10, G = 6 };

typedef struct Head {
    ParamStore ps;
    Fusion f;
    Arena a;
} Head;

/* k: fusion.att_scale */
static int head_build_k(Head *h, FusionType t, float dropout, uint64_t seed, float k) {
    Err e;
    ps_init(&h->ps);
    FusionConfig c = {t, CI, HT, HID, A, dropout, k, 0};
    if (fusion_build(&h->f, &c, &h->ps, &e) != 0 || ps_finalize(&h->ps, backend_cpu(), &e) != 0 ||
        ps_init_values(&h->ps, seed, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    arena_init(&h->a, 0);
    return 0;
}

static int head_build(Head *h, FusionType t, float dropout, uint64_t seed) {
    return head_build_k(h, t, dropout, seed, 1.f);
}

static void head_free(Head *h) {
    ps_free(&h->ps);
    arena_free(&h->a);
}

static void names_and_counts_per_type(void) {
    Head h;
    size_t proj = (size_t)HID * CI + HID + (size_t)HID * HT + HID, cls_out = (size_t)A * HID + A;
    if (head_build(&h, FUSION_CONCAT, 0, 1) == 0) {
        CHECK(ps_numel(&h.ps, PG_FUSION, 0) == proj);
        CHECK(ps_numel(&h.ps, PG_CLASSIFIER, 0) == (size_t)HID * 2 * HID + HID + cls_out);
        CHECK(ps_find(&h.ps, "fusion.att.weight") == -1);
        CHECK(ps_find(&h.ps, "classifier.3.bias") >= 0);
        head_free(&h);
    }
    if (head_build(&h, FUSION_ATTENTION, 0, 1) == 0) {
        CHECK(ps_numel(&h.ps, PG_FUSION, 0) == proj + HID + 1);
        CHECK(ps_numel(&h.ps, PG_CLASSIFIER, 0) == (size_t)HID * HID + HID + cls_out);
        int k = ps_find(&h.ps, "fusion.att.weight");
        CHECK(k >= 0 && ps_info(&h.ps, k)->shape[0] == 1 && ps_info(&h.ps, k)->shape[1] == HID);
        head_free(&h);
    }
    FusionType t;
    CHECK(fusion_type_parse("mul", &t) == 0 && t == FUSION_MUL);
    CHECK(fusion_type_parse("sum", &t) == -1);
}

static void attention_needs_the_grid_and_mul_needs_pooled(void) {
    Head h;
    Err e;
    float img[B * CI * G] = {0}, txt[B * HT] = {0};
    if (head_build(&h, FUSION_ATTENTION, 0, 1) == 0) {
        CHECK(fusion_forward(&h.f, backend_cpu(), img, 0, txt, B, 0, 0, &h.a, &e) == -1);
        CHECK_STR_CONTAINS(e.msg, "grid");
        head_free(&h);
    }
    if (head_build(&h, FUSION_MUL, 0, 1) == 0) {
        CHECK(fusion_forward(&h.f, backend_cpu(), img, G, txt, B, 0, 0, &h.a, &e) == -1);
        CHECK_STR_CONTAINS(e.msg, "pooled");
        head_free(&h);
    }
}

/* ---- finite differences ----
 * fp32 central differences across three ReLUs and dropout: a step small enough to avoid
 * kinks meets rounding noise, so the tolerance (10% for parameters, 5% for inputs) only catches missing terms and wrong
 * signs; the float64 PyTorch parity below checks every gradient to 1e-4. */

typedef struct Ctx {
    Head *h;
    float *img, *txt;
    const float *dout;
    int cells;
} Ctx;

static double loss_fn(void *vc) {
    Ctx *c = vc;
    Err e;
    arena_reset(&c->h->a);
    if (fusion_forward(&c->h->f, backend_cpu(), c->img, c->cells, c->txt, B, 1, 77, &c->h->a, &e) != 0) return NAN;
    double s = 0;
    for (int i = 0; i < B * A; i++) s += (double)c->h->f.logits[i] * c->dout[i];
    return s;
}

static void gradcheck_type_k(FusionType t, float k) {
    Head h;
    Err e;
    if (head_build_k(&h, t, 0.3f, 5, k) != 0) { CHECK(0); return; }
    int cells = t == FUSION_ATTENTION ? G : 0;
    size_t nimg = (size_t)B * CI * (cells ? cells : 1);
    TestRng r = {100 + t};
    float *img = malloc(nimg * 4), *txt = malloc(B * HT * 4), dout[B * A];
    float *dimg = calloc(nimg, 4), *dtxt = calloc(B * HT, 4);
    trng_fill(&r, img, nimg, -1, 1);
    trng_fill(&r, txt, B * HT, -1, 1);
    trng_fill(&r, dout, B * A, -1, 1);
    Ctx c = {&h, img, txt, dout, cells};
    loss_fn(&c);
    CHECK(fusion_backward(&h.f, backend_cpu(), dout, dimg, dtxt, &h.a, &e) == 0);
    double worst = 0;
    for (int i = 0; i < ps_count(&h.ps); i++) {
        const ParamInfo *p = ps_info(&h.ps, i);
        float *g = malloc(p->numel * 4);
        memcpy(g, ps_grad(&h.ps, i), p->numel * 4);
        double err = gradcheck(loss_fn, &c, ps_value(&h.ps, i), g, p->numel, 3e-3, 40);
        if (!(strcmp(p->name, "fusion.att.bias") == 0)) { /* d/d(att.bias) = 0 exactly (softmax shift) */
            CHECK_MSG(err < 0.1, "%s %s: relative error %.3g", fusion_type_name(t), p->name, err);
            if (err > worst) worst = err;
        } else {
            CHECK_NEAR(g[0], 0.0, 1e-5);
        }
        free(g);
    }
    double ei = gradcheck(loss_fn, &c, img, dimg, nimg, 3e-3, 60), et = gradcheck(loss_fn, &c, txt, dtxt, B * HT, 3e-3, 60);
    CHECK_MSG(ei < 5e-2, "%s: d img relative error %.3g", fusion_type_name(t), ei);
    CHECK_MSG(et < 5e-2, "%s: d txt relative error %.3g", fusion_type_name(t), et);
    fprintf(stderr, "  %s (score scale %g): worst parameter FD error %.2g, img %.2g, txt %.2g\n", fusion_type_name(t),
            (double)k, worst, ei, et);
    free(img); free(txt); free(dimg); free(dtxt);
    head_free(&h);
}

static void concat_gradients_match_finite_differences(void) { gradcheck_type_k(FUSION_CONCAT, 1.f); }
static void mul_gradients_match_finite_differences(void) { gradcheck_type_k(FUSION_MUL, 1.f); }
static void attention_gradients_match_finite_differences(void) { gradcheck_type_k(FUSION_ATTENTION, 1.f); }
/* k = 4 makes the attention peaked on these inputs, so the softmax's curvature is exercised */
static void scaled_attention_gradients_match_finite_differences(void) { gradcheck_type_k(FUSION_ATTENTION, 4.f); }

/* att_scale k is s = k (V u + ba): the same logits as k = 1 with fusion.att.{weight, bias}
 * multiplied by k, computed here through the unscaled head; and k outside (0, 1000] is refused. */
static void att_scale_equals_scaled_score_weights(void) {
    Head h1, hk;
    Err e;
    const float k = 3.5f;
    if (head_build_k(&h1, FUSION_ATTENTION, 0, 9, 1.f) != 0) { CHECK(0); return; }
    if (head_build_k(&hk, FUSION_ATTENTION, 0, 9, k) != 0) { CHECK(0); head_free(&h1); return; }
    TestRng r = {31};
    float img[B * CI * G], txt[B * HT], l1[B * A], lk[B * A];
    trng_fill(&r, img, B * CI * G, -1, 1);
    trng_fill(&r, txt, B * HT, -1, 1);
    CHECK(fusion_forward(&hk.f, backend_cpu(), img, G, txt, B, 0, 0, &hk.a, &e) == 0);
    memcpy(lk, hk.f.logits, sizeof lk);
    CHECK(fusion_forward(&h1.f, backend_cpu(), img, G, txt, B, 0, 0, &h1.a, &e) == 0);
    memcpy(l1, h1.f.logits, sizeof l1);
    double diff = 0;
    for (int i = 0; i < B * A; i++) diff = fmax(diff, fabs((double)l1[i] - lk[i]));
    CHECK_MSG(diff > 1e-4, "k = %g changed no logit (max diff %.3g)", (double)k, diff);
    for (const char *n = "fusion.att.weight"; n; n = strcmp(n, "fusion.att.weight") == 0 ? "fusion.att.bias" : NULL) {
        int i = ps_find(&h1.ps, n);
        float *w = ps_value(&h1.ps, i);
        for (size_t j = 0; j < ps_info(&h1.ps, i)->numel; j++) w[j] *= k;
    }
    CHECK(fusion_forward(&h1.f, backend_cpu(), img, G, txt, B, 0, 0, &h1.a, &e) == 0);
    for (int i = 0; i < B * A; i++) CHECK_NEAR(h1.f.logits[i], lk[i], 1e-5 * (1 + fabs(lk[i])));
    head_free(&h1);
    head_free(&hk);
    Fusion f;
    ParamStore ps;
    ps_init(&ps);
    FusionConfig bad = {FUSION_ATTENTION, CI, HT, HID, A, 0, -1.f, 0};
    CHECK(fusion_build(&f, &bad, &ps, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "att_scale");
    ps_free(&ps);
}

static void dropout_only_in_training_and_seeded(void) {
    Head h;
    Err e;
    if (head_build(&h, FUSION_MUL, 0.5f, 3) != 0) { CHECK(0); return; }
    TestRng r = {8};
    float img[B * CI], txt[B * HT], l0[B * A], l1[B * A];
    trng_fill(&r, img, B * CI, -1, 1);
    trng_fill(&r, txt, B * HT, -1, 1);
    CHECK(fusion_forward(&h.f, backend_cpu(), img, 0, txt, B, 0, 1, &h.a, &e) == 0);
    CHECK(h.f.mask == NULL);
    memcpy(l0, h.f.logits, sizeof l0);
    CHECK(fusion_forward(&h.f, backend_cpu(), img, 0, txt, B, 0, 2, &h.a, &e) == 0);
    CHECK(memcmp(l0, h.f.logits, sizeof l0) == 0); /* eval: seed irrelevant */
    CHECK(fusion_forward(&h.f, backend_cpu(), img, 0, txt, B, 1, 1, &h.a, &e) == 0);
    memcpy(l1, h.f.logits, sizeof l1);
    CHECK(memcmp(l0, l1, sizeof l0) != 0);
    CHECK(fusion_forward(&h.f, backend_cpu(), img, 0, txt, B, 1, 1, &h.a, &e) == 0);
    CHECK(memcmp(l1, h.f.logits, sizeof l1) == 0); /* same seed, same mask */
    head_free(&h);
}

/* prior_bias: classifier.3.bias starts where sigmoid gives 1/A, everything else as without it
 * (same seed, same values), and the mean sigmoid of the logits at init is near 1/A */
static void prior_bias_starts_every_answer_at_one_over_a(void) {
    Head h0, hp;
    Err e;
    if (head_build(&h0, FUSION_MUL, 0, 4) != 0) { CHECK(0); return; }
    ps_init(&hp.ps);
    FusionConfig c = {FUSION_MUL, CI, HT, HID, A, 0, 1.f, 1};
    if (fusion_build(&hp.f, &c, &hp.ps, &e) != 0 || ps_finalize(&hp.ps, backend_cpu(), &e) != 0 ||
        ps_init_values(&hp.ps, 4, &e) != 0) {
        CHECK_MSG(0, "%s", e.msg);
        head_free(&h0);
        return;
    }
    arena_init(&hp.a, 0);
    for (int i = 0; i < ps_count(&hp.ps); i++) {
        const ParamInfo *p = ps_info(&hp.ps, i);
        const float *v = ps_value(&hp.ps, i), *v0 = ps_value(&h0.ps, i);
        if (strcmp(p->name, "classifier.3.bias") == 0) {
            for (size_t j = 0; j < p->numel; j++) CHECK_NEAR(1.0 / (1.0 + exp(-(double)v[j])), 1.0 / A, 1e-6);
        } else {
            CHECK_MSG(memcmp(v, v0, p->numel * 4) == 0, "%s differs with prior_bias", p->name);
        }
    }
    TestRng r = {12};
    float img[B * CI], txt[B * HT];
    trng_fill(&r, img, B * CI, -1, 1);
    trng_fill(&r, txt, B * HT, -1, 1);
    CHECK(fusion_forward(&hp.f, backend_cpu(), img, 0, txt, B, 0, 0, &hp.a, &e) == 0);
    double mean = 0;
    for (int i = 0; i < B * A; i++) mean += 1.0 / (1.0 + exp(-(double)hp.f.logits[i])) / (B * A);
    CHECK_MSG(fabs(mean - 1.0 / A) < 0.05, "mean answer probability at init %.3f, 1/A = %.3f", mean, 1.0 / A);
    head_free(&h0);
    head_free(&hp);
}

/* ---- parity with the PyTorch head (tools/gen_model_refs.py FusionHead) ---- */

static void parity_head(FusionType t, const char *name, const char *dir) {
    Head h;
    Err e;
    if (head_build(&h, t, 0.f, 21 + t) != 0) { CHECK(0); return; }
    int cells = t == FUSION_ATTENTION ? G : 0;
    size_t nimg = (size_t)B * CI * (cells ? cells : 1);
    TestRng r = {900 + t};
    float *img = malloc(nimg * 4), txt[B * HT], dout[B * A];
    float *dimg = calloc(nimg, 4), dtxt[B * HT] = {0};
    trng_fill(&r, img, nimg, -1, 1);
    trng_fill(&r, txt, B * HT, -1, 1);
    trng_fill(&r, dout, B * A, -1, 1);
    if (dir) {
        char ci[16], hid[16], ans[16];
        snprintf(ci, sizeof ci, "%d", CI);
        snprintf(hid, sizeof hid, "%d", HID);
        snprintf(ans, sizeof ans, "%d", A);
        const char *meta[] = {"kind", "fusion", "type", fusion_type_name(t), "img_dim", ci, "hidden", hid,
                              "answers", ans, "train", "1"};
        MrTensor ex[] = {
            {"img", img, cells ? 3 : 2, {B, CI, cells ? cells : 0}},
            {"txt", txt, 2, {B, HT}},
            {"dout.logits", dout, 2, {B, A}},
        };
        CHECK(mr_write_inputs(dir, name, &h.ps, ex, 3, meta, 12) == 0);
    } else {
        StFile *ref = mr_open_ref(name);
        CHECK(ref != NULL);
        if (ref) {
            CHECK(fusion_forward(&h.f, backend_cpu(), img, cells, txt, B, 1, 0, &h.a, &e) == 0);
            double el = mr_rel_err(ref, "out.logits", h.f.logits, B * A, NULL);
            CHECK_MSG(el < 1e-5, "%s logits relative error %.3g", name, el);
            CHECK(fusion_backward(&h.f, backend_cpu(), dout, dimg, dtxt, &h.a, &e) == 0);
            int n = 0;
            double wg = mr_check_grads(ref, &h.ps, 1e-4, &n);
            double ei = mr_rel_err(ref, "grad.input.img", dimg, nimg, NULL);
            double et = mr_rel_err(ref, "grad.input.txt", dtxt, B * HT, NULL);
            CHECK(ei < 1e-4 && et < 1e-4 && n == ps_count(&h.ps));
            fprintf(stderr, "  %s: logits %.2g, %d parameter grads worst %.2g, d img %.2g, d txt %.2g\n", name, el, n,
                    wg, ei, et);
            st_close(ref);
        }
    }
    free(img);
    free(dimg);
    head_free(&h);
}

static void concat_head_matches_pytorch(void) { parity_head(FUSION_CONCAT, "fusion_concat", NULL); }
static void mul_head_matches_pytorch(void) { parity_head(FUSION_MUL, "fusion_mul", NULL); }
static void attention_head_matches_pytorch(void) { parity_head(FUSION_ATTENTION, "fusion_attention", NULL); }

/* small ResNet-18 (grid 2x3) + attention head, one train step, all gradients */
static void parity_resnet_attention(const char *dir) {
    ParamStore ps;
    Resnet rn;
    Fusion f;
    Arena a;
    Err e;
    const int N = 2, H = 64, W = 80, Ht = 12, hid = 8, nA = 7;
    ps_init(&ps);
    arena_init(&a, 0);
    ResnetConfig rc = {18, 0.0625f, 0, 0, 4};
    CHECK(resnet_build(&rn, &rc, &ps, "image_encoder.", PG_IMAGE, &e) == 0);
    FusionConfig fc = {FUSION_ATTENTION, rn.out_channels, Ht, hid, nA, 0.f, 1.f, 0};
    CHECK(fusion_build(&f, &fc, &ps, &e) == 0);
    CHECK(ps_finalize(&ps, backend_cpu(), &e) == 0 && ps_init_values(&ps, 31, &e) == 0);
    mr_perturb_norms(&ps, 31);
    TestRng r = {3131};
    int gh, gw;
    resnet_grid_size(&rn, H, W, &gh, &gw);
    size_t nx = (size_t)N * 3 * H * W, ng = (size_t)N * rn.out_channels * gh * gw;
    float *x = malloc(nx * 4), txt[2 * 12], dout[2 * 7], dtxt[2 * 12] = {0};
    trng_fill(&r, x, nx, -2, 2);
    trng_fill(&r, txt, N * Ht, -1, 1);
    trng_fill(&r, dout, N * nA, -1, 1);
    if (dir) {
        char hs[16], as[16];
        snprintf(hs, sizeof hs, "%d", hid);
        snprintf(as, sizeof as, "%d", nA);
        const char *meta[] = {"kind", "resnet_fusion", "depth", "18", "width", "0.0625", "type", "attention",
                              "hidden", hs, "answers", as, "train", "1"};
        MrTensor ex[] = {{"x", x, 4, {N, 3, H, W}}, {"txt", txt, 2, {N, Ht}}, {"dout.logits", dout, 2, {N, nA}}};
        CHECK(mr_write_inputs(dir, "resnet_attention", &ps, ex, 3, meta, 14) == 0);
    } else {
        StFile *ref = mr_open_ref("resnet_attention");
        CHECK(ref != NULL);
        if (ref) {
            CHECK(resnet_forward(&rn, backend_cpu(), x, N, H, W, 1, &a, &e) == 0);
            CHECK(gh == 2 && gw == 3);
            CHECK(fusion_forward(&f, backend_cpu(), rn.grid, gh * gw, txt, N, 1, 0, &a, &e) == 0);
            double el = mr_rel_err(ref, "out.logits", f.logits, (size_t)N * nA, NULL);
            CHECK_MSG(el < 1e-4, "logits relative error %.3g", el);
            float *dgrid = arena_zeros(&a, ng);
            CHECK(fusion_backward(&f, backend_cpu(), dout, dgrid, dtxt, &a, &e) == 0);
            CHECK(resnet_backward(&rn, backend_cpu(), NULL, NULL, dgrid, &a, &e) == 0);
            int n = 0;
            double wg = mr_check_grads(ref, &ps, 1e-3, &n);
            double et = mr_rel_err(ref, "grad.input.txt", dtxt, (size_t)N * Ht, NULL);
            CHECK(et < 1e-3);
            fprintf(stderr, "  resnet_attention: logits %.2g, %d parameter grads worst %.2g, d txt %.2g\n", el, n, wg, et);
            st_close(ref);
        }
    }
    free(x);
    resnet_free(&rn);
    ps_free(&ps);
    arena_free(&a);
}

static void resnet_grid_attention_train_step_matches_pytorch(void) { parity_resnet_attention(NULL); }

int main(int argc, char **argv) {
    const char *dir = mr_write_dir(argc, argv);
    if (dir) {
        parity_head(FUSION_CONCAT, "fusion_concat", dir);
        parity_head(FUSION_MUL, "fusion_mul", dir);
        parity_head(FUSION_ATTENTION, "fusion_attention", dir);
        parity_resnet_attention(dir);
        return test_summary();
    }
    RUN(names_and_counts_per_type);
    RUN(attention_needs_the_grid_and_mul_needs_pooled);
    RUN(concat_gradients_match_finite_differences);
    RUN(mul_gradients_match_finite_differences);
    RUN(attention_gradients_match_finite_differences);
    RUN(scaled_attention_gradients_match_finite_differences);
    RUN(att_scale_equals_scaled_score_weights);
    RUN(prior_bias_starts_every_answer_at_one_over_a);
    RUN(dropout_only_in_training_and_seeded);
    RUN(concat_head_matches_pytorch);
    RUN(mul_head_matches_pytorch);
    RUN(attention_head_matches_pytorch);
    RUN(resnet_grid_attention_train_step_matches_pytorch);
    return test_summary();
}
