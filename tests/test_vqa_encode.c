/* test_vqa_encode.c: vqa_encode end to end. Seeded weights are regenerated here (the
 * model's PyTorch-default init from the seed, then BN/LayerNorm affine parameters, biases and
 * BN running statistics set to seeded non-trivial values, so that a swapped or ignored tensor
 * changes the output), written with torchvision names (ResNet) and Hugging Face BertModel
 * names (BERT), and loaded by vqa_encode through model.*.weights. Its features must match
 * what torchvision's ResNet blocks + HF BertModel compute (float64) from the same weight
 * files on the committed 224x224 PNGs and questions (tests/ref/encode_*, made by
 * tools/gen_encode_refs.py, which calls this program with --write-weights DIR to get the
 * weights). Also: batch size independence, --pooled-only, and located errors in the lists.
 *
 *   test_vqa_encode                      run the tests (needs VQA_BUILD/vqa_encode)
 *   test_vqa_encode --write-weights DIR  only write DIR/encode_resnet.safetensors and
 *                                        DIR/encode_bert.safetensors */
// TEST_LIBS: vqa_model
// TEST_LABELS: e2e
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "model/vqa_model.h"
#include "testlib.h"

#define WEIGHT_SEED 20251128ull
#define N_IMAGES 3

static char g_tmp[256], g_src[1024], g_build[1024];

/* The small encoders of the parity config (the YAML in write_config says the same). */
static void small_model_config(VqaModelConfig *c) {
    vqa_model_config_default(c, 1);
    c->image_depth = 18;
    c->image_width = 0.25f;
    c->text = (BertConfig){2, 32, 2, 64, 30522, 32, 2, 0, 0.1f, 1e-12f};
    c->fusion_hidden = 16;
    c->seed = WEIGHT_SEED;
}

static int write_weights(const char *dir, Err *e) {
    VqaModelConfig c;
    VqaModel m;
    small_model_config(&c);
    if (vqa_model_init(&m, &c, backend_cpu(), e) != 0) {
        vqa_model_free(&m);
        return -1;
    }
    for (int i = 0; i < m.ps.n; i++) {
        const ParamInfo *p = ps_info(&m.ps, i);
        float *v = ps_value(&m.ps, i);
        TestRng r = {WEIGHT_SEED ^ (0x9E3779B97F4A7C15ull * (uint64_t)(i + 1))};
        size_t len = strlen(p->name);
        int is_weight = len > 6 && strcmp(p->name + len - 6, "weight") == 0;
        if (p->kind == PK_NORM)
            trng_fill(&r, v, p->numel, is_weight ? 0.6f : -0.2f, is_weight ? 1.4f : 0.2f);
        else if (p->kind == PK_BIAS)
            trng_fill(&r, v, p->numel, -0.2f, 0.2f);
        else if (strstr(p->name, "running_mean"))
            trng_fill(&r, v, p->numel, -0.3f, 0.3f);
        else if (strstr(p->name, "running_var"))
            trng_fill(&r, v, p->numel, 0.5f, 1.5f);
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/encode_resnet.safetensors", dir);
    int rc = ps_save_safetensors(&m.ps, path, "image_encoder.", "", e);
    snprintf(path, sizeof path, "%s/encode_bert.safetensors", dir);
    if (rc == 0) rc = ps_save_safetensors(&m.ps, path, "text_encoder.", "", e);
    vqa_model_free(&m);
    return rc;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void write_config(void) {
    char p[1400], y[4096];
    snprintf(y, sizeof y,
             "run: {seed: 3}\n"
             "device: cpu\n"
             "train: {precision: fp32}\n"
             /* a training config: the split files must be named (cfg_validate) but
              * vqa_encode never reads them */
             "data: {image_size: 224, max_question_len: 16, resize: direct,\n"
             "       train: {questions: unused_train.json, annotations: unused.json, images: unused},\n"
             "       val: {questions: unused_val.json, annotations: unused.json, images: unused}}\n"
             "model:\n"
             "  image_encoder: {arch: resnet18, width: 0.25, weights: %s/encode_resnet.safetensors, freeze: all}\n"
             "  text_encoder: {arch: bert, layers: 2, hidden: 32, heads: 2, ffn: 64, max_positions: 32,\n"
             "                 vocab: %s/tests/ref/bert_uncased_vocab.txt, weights: %s/encode_bert.safetensors}\n"
             "  fusion: {type: mul, hidden: 16}\n",
             g_tmp, g_src, g_tmp);
    snprintf(p, sizeof p, "%s/encode.yaml", g_tmp);
    write_text(p, y);
    char l[4096] = "";
    for (int i = 0; i < N_IMAGES; i++) {
        size_t o = strlen(l);
        snprintf(l + o, sizeof l - o, "%s/tests/ref/encode_img%d.png\n", g_src, i);
    }
    snprintf(p, sizeof p, "%s/images.txt", g_tmp);
    write_text(p, l);
}

/* Runs vqa_encode with the test config and extra arguments; stderr goes to g_tmp/err.txt.
 * Returns the exit status. */
static int encode(const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s/vqa_encode' '%s/encode.yaml' %s 2> '%s/err.txt'", g_build, g_tmp, args, g_tmp);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void read_err(char *buf, size_t cap) {
    char p[1200];
    snprintf(p, sizeof p, "%s/err.txt", g_tmp);
    buf[0] = '\0';
    FILE *f = fopen(p, "r");
    if (!f) return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* ‖a − b‖ / ‖b‖ of tensor `name` in two files (-1: missing or shapes differ). */
static double compare(const StFile *got, const StFile *want, const char *name) {
    const StTensor *a = st_find(got, name), *b = st_find(want, name);
    if (!a || !b || a->ndim != b->ndim || a->numel != b->numel) {
        fprintf(stderr, "  %s: missing or different shape\n", name);
        return -1;
    }
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return -1;
    if (a->dtype == DT_I32) return a->dtype == b->dtype && memcmp(a->data, b->data, a->nbytes) == 0 ? 0.0 : 1.0;
    float *x = malloc(sizeof(float) * a->numel), *y = malloc(sizeof(float) * b->numel);
    Err e;
    double r = -1;
    if (x && y && st_read_f32(a, x, a->numel, &e) == 0 && st_read_f32(b, y, b->numel, &e) == 0) {
        double num = 0, den = 0;
        for (int64_t i = 0; i < a->numel; i++) {
            double d = (double)x[i] - y[i];
            num += d * d;
            den += (double)y[i] * y[i];
        }
        r = sqrt(num) / (den > 0 ? sqrt(den) : 1e-30);
    }
    free(x);
    free(y);
    return r;
}

static StFile *open_out(const char *name) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", g_tmp, name);
    StFile *f = NULL;
    Err e;
    if (st_open(&f, p, &e) != 0) fprintf(stderr, "  %s\n", e.msg);
    return f;
}

static void features_match_torchvision_resnet_and_hf_bert(void) {
    char args[2048], err[8192];
    snprintf(args, sizeof args, "--images '%s/images.txt' --questions '%s/tests/ref/encode_questions.txt' --out '%s/f.safetensors' --batch 2",
             g_tmp, g_src, g_tmp);
    int rc = encode(args);
    read_err(err, sizeof err);
    CHECK_MSG(rc == 0, "vqa_encode exit %d:\n%s", rc, err);
    CHECK_STR_CONTAINS(err, "encode: images 3/3");
    CHECK_STR_CONTAINS(err, "encode: questions 4/4");
    CHECK_STR_CONTAINS(err, "image_encoder: loaded");
    CHECK_STR_CONTAINS(err, "text_encoder: loaded");
    char ref[1200];
    snprintf(ref, sizeof ref, "%s/tests/ref/encode_expected.safetensors", g_src);
    StFile *got = open_out("f.safetensors"), *want = NULL;
    Err e;
    CHECK(st_open(&want, ref, &e) == 0);
    if (!got || !want) goto done;
    const char *names[] = {"image_pooled", "image_grid", "text_pooled", "text_seq", "text_mask", "text_tokens"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        double r = compare(got, want, names[i]);
        fprintf(stderr, "  %-13s rel err vs PyTorch %.3g\n", names[i], r);
        CHECK_MSG(r >= 0 && r < 1e-4, "%s: relative error %.3g", names[i], r);
    }
done:
    st_close(got);
    st_close(want);
}

static void three_images_and_four_questions_give_their_own_rows(void) {
    StFile *f = open_out("f.safetensors");
    if (!f) {
        CHECK(0);
        return;
    }
    const StTensor *t;
    CHECK((t = st_find(f, "image_pooled")) && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 128);
    CHECK((t = st_find(f, "image_grid")) && t->ndim == 4 && t->shape[0] == 3 && t->shape[1] == 128 && t->shape[2] == 7 &&
          t->shape[3] == 7);
    CHECK((t = st_find(f, "text_pooled")) && t->ndim == 2 && t->shape[0] == 4 && t->shape[1] == 32);
    CHECK((t = st_find(f, "text_seq")) && t->ndim == 3 && t->shape[0] == 4 && t->shape[1] == 16 && t->shape[2] == 32);
    CHECK((t = st_find(f, "text_mask")) && t->ndim == 2 && t->shape[0] == 4 && t->shape[1] == 16);
    const char *m = st_metadata(f, "n_images");
    CHECK(m && strcmp(m, "3") == 0);
    m = st_metadata(f, "n_questions");
    CHECK(m && strcmp(m, "4") == 0);
    st_close(f);
}

static void batch_size_does_not_change_features(void) {
    char args[2048];
    snprintf(args, sizeof args, "--images '%s/images.txt' --questions '%s/tests/ref/encode_questions.txt' --out '%s/g.safetensors' --batch 1 --pooled-only",
             g_tmp, g_src, g_tmp);
    CHECK(encode(args) == 0);
    StFile *a = open_out("f.safetensors"), *b = open_out("g.safetensors");
    if (!a || !b) {
        CHECK(0);
    } else {
        double ri = compare(b, a, "image_pooled"), rt = compare(b, a, "text_pooled");
        CHECK_MSG(ri >= 0 && ri < 1e-6, "image_pooled batch 1 vs 2: %.3g", ri);
        CHECK_MSG(rt >= 0 && rt < 1e-6, "text_pooled batch 1 vs 2: %.3g", rt);
        CHECK(st_find(b, "image_grid") == NULL && st_find(b, "text_seq") == NULL);
        CHECK(st_find(b, "text_mask") != NULL);
    }
    st_close(a);
    st_close(b);
}

static void questions_alone_need_no_images(void) {
    char args[2048];
    snprintf(args, sizeof args, "--questions '%s/tests/ref/encode_questions.txt' --out '%s/q.safetensors'", g_src, g_tmp);
    CHECK(encode(args) == 0);
    StFile *f = open_out("q.safetensors");
    CHECK(f && st_find(f, "text_pooled") && !st_find(f, "image_pooled"));
    st_close(f);
}

static void list_errors_name_the_file_and_line(void) {
    char p[1200], args[2048], err[8192], list[2400];
    snprintf(p, sizeof p, "%s/bad.txt", g_tmp);
    /* line 2 missing */
    snprintf(list, sizeof list, "%s/tests/ref/encode_img0.png\n%s/nope.png\n", g_src, g_tmp);
    write_text(p, list);
    snprintf(args, sizeof args, "--images '%s' --out '%s/x.safetensors'", p, g_tmp);
    CHECK(encode(args) == 1);
    read_err(err, sizeof err);
    CHECK_STR_CONTAINS(err, "bad.txt:2:");
    CHECK_STR_CONTAINS(err, "nope.png");
    CHECK_STR_CONTAINS(err, "No such file");
    /* blank line 2 */
    snprintf(list, sizeof list, "%s/tests/ref/encode_img0.png\n\n%s/tests/ref/encode_img1.png\n", g_src, g_src);
    write_text(p, list);
    CHECK(encode(args) == 1);
    read_err(err, sizeof err);
    CHECK_STR_CONTAINS(err, "bad.txt:2: blank line");
    /* a file that is not an image, on line 1 */
    snprintf(list, sizeof list, "%s/images.txt\n", g_tmp);
    write_text(p, list);
    CHECK(encode(args) == 1);
    read_err(err, sizeof err);
    CHECK_STR_CONTAINS(err, "bad.txt:1:");
    CHECK_STR_CONTAINS(err, "images.txt");
    /* nothing written on failure */
    snprintf(p, sizeof p, "%s/x.safetensors", g_tmp);
    CHECK(access(p, F_OK) != 0);
    /* usage errors: exit 2 */
    snprintf(args, sizeof args, "--out '%s/x.safetensors'", g_tmp);
    CHECK(encode(args) == 2);
    read_err(err, sizeof err);
    CHECK_STR_CONTAINS(err, "nothing to encode");
    snprintf(args, sizeof args, "--images '%s/images.txt' --out x --batch 0", g_tmp);
    CHECK(encode(args) == 2);
}

static void rm_tmp(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
}

int main(int argc, char **argv) {
    Err e;
    if (argc == 3 && strcmp(argv[1], "--write-weights") == 0) {
        if (write_weights(argv[2], &e) != 0) {
            fprintf(stderr, "error: %s\n", e.msg);
            return 1;
        }
        return 0;
    }
    const char *src = getenv("VQA_SRC"), *build = getenv("VQA_BUILD");
    snprintf(g_src, sizeof g_src, "%s", src ? src : "..");
    snprintf(g_build, sizeof g_build, "%s", build ? build : "../build");
    char exe[1200];
    snprintf(exe, sizeof exe, "%s/vqa_encode", g_build);
    if (access(exe, X_OK) != 0) {
        fprintf(stderr, "FAIL: %s is not built (ninja vqa_encode)\n", exe);
        return 1;
    }
    snprintf(g_tmp, sizeof g_tmp, "/tmp/vqa_test_encode_XXXXXX");
    if (!mkdtemp(g_tmp)) return 1;
    if (write_weights(g_tmp, &e) != 0) {
        fprintf(stderr, "FAIL: writing the weights: %s\n", e.msg);
        rm_tmp();
        return 1;
    }
    write_config();
    RUN(features_match_torchvision_resnet_and_hf_bert);
    RUN(three_images_and_four_questions_give_their_own_rows);
    RUN(batch_size_does_not_change_features);
    RUN(questions_alone_need_no_images);
    RUN(list_errors_name_the_file_and_line);
    rm_tmp();
    return test_summary();
}
