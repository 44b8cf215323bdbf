// TEST_LIBS: vqa_config
// TEST_LABELS: unit
/* test_config.c: the config module: defaults, YAML loading, --set, round trips through
 * the dump, hashing, file checks, and that configs/README.md documents every key.
 * The bad-config messages of the binary are tested by tests/config_cases/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/cfg_table.h"
#include "config/config.h"
#include "testlib.h"
#include "vqa_version.h"

static char tmpdir[256];

static const char *src_dir(void) {
    const char *s = getenv("VQA_SRC");
    return s ? s : "..";
}

static void path_in_src(char *buf, size_t cap, const char *rel) { snprintf(buf, cap, "%s/%s", src_dir(), rel); }

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* A valid config body: the synthetic-data layout of the demo, on CPU. */
static const char *VALID =
    "device: cpu\n"
    "data:\n"
    "  train: {questions: gen/tq.json, annotations: gen/ta.json, images: gen/img}\n"
    "  val: {questions: gen/vq.json, annotations: gen/va.json, images: gen/img}\n"
    "  synth: {dir: gen}\n"
    "model:\n"
    "  text_encoder: {vocab: gen/vocab.txt}\n"
    "train:\n"
    "  precision: fp32\n";

/* load -> dump to a file -> load gives an equal config with an equal hash */
static void round_trip(const char *rel) {
    char path[512], out[600];
    path_in_src(path, sizeof path, rel);
    Config a, b;
    Err e;
    int rc = cfg_load(&a, path, NULL, 0, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc) return;
    snprintf(out, sizeof out, "%s/dump.yaml", tmpdir);
    FILE *f = fopen(out, "w");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(cfg_dump(&a, f) == 0);
    fclose(f);
    rc = cfg_load(&b, out, NULL, 0, &e);
    CHECK_MSG(rc == 0, "reloading the dump: %s", e.msg);
    if (rc == 0) {
        CHECK(cfg_equal(&a, &b));
        CHECK(cfg_hash(&a) == cfg_hash(&b));
        char *da = cfg_dump_string(&a), *db = cfg_dump_string(&b);
        CHECK(da && db && strcmp(da, db) == 0);
        free(da);
        free(db);
        cfg_free(&b);
    }
    cfg_free(&a);
}

static void defaults_match_the_design_sketch(void) {
    Config c;
    cfg_defaults(&c);
    CHECK(c.device == CFG_DEVICE_AUTO);
    CHECK(c.data.format == CFG_FORMAT_VQA2);
    CHECK(c.data.image_size == 224 && c.data.max_question_len == 20);
    CHECK(c.data.answers.min_count == 9 && c.data.answers.max_size == 3129);
    CHECK(c.data.workers == 4 && c.data.prefetch == 4);
    CHECK_NEAR(c.data.max_bad_fraction, 0.001, 0);
    CHECK(c.data.prepared == NULL && c.data.train.questions == NULL);
    CHECK(c.model.image_encoder.arch == CFG_ARCH_RESNET50 && c.model.image_encoder.freeze.mode == CFG_FREEZE_ALL);
    CHECK(c.model.image_encoder.weights == NULL);
    CHECK_NEAR(c.model.image_encoder.width, 1.0, 0);
    CHECK(c.model.text_encoder.layers == 4 && c.model.text_encoder.hidden == 312);
    CHECK(c.model.text_encoder.heads == 12 && c.model.text_encoder.ffn == 1200);
    CHECK(c.model.text_encoder.max_positions == 512 && c.model.text_encoder.type_vocab == 2);
    CHECK(strcmp(c.model.text_encoder.vocab, "vocab.txt") == 0);
    CHECK(c.model.text_encoder.freeze.mode == CFG_FREEZE_NONE);
    CHECK(c.model.fusion.type == CFG_FUSION_MUL && c.model.fusion.hidden == 1024);
    CHECK_NEAR(c.model.fusion.dropout, 0.3, 0);
    CHECK(c.train.epochs == 10 && c.train.batch_size == 64 && c.train.grad_accum == 1);
    CHECK_NEAR(c.train.lr, 1e-4, 0);
    CHECK_NEAR(c.train.encoder_lr_mult, 0.1, 0);
    CHECK_NEAR(c.train.weight_decay, 0.01, 0);
    CHECK(c.train.warmup_steps == 500 && c.train.schedule == CFG_SCHED_COSINE);
    CHECK_NEAR(c.train.clip_grad_norm, 1.0, 0);
    CHECK(c.train.precision == DT_BF16 && c.train.loss == CFG_LOSS_BCE);
    CHECK_NEAR(c.train.loss_scale.init, 65536, 0);
    CHECK(c.train.loss_scale.growth_interval == 2000);
    CHECK(c.eval.every == 1000 && c.eval.split == CFG_SPLIT_VAL);
    CHECK(c.checkpoint.every == 1000 && c.checkpoint.keep_last == 3);
    CHECK(c.log.every == 20 && !c.log.all_ranks && c.log.tensorboard);
    CHECK(c.dist.backend == CFG_DIST_AUTO);
    CHECK_NEAR(c.dist.bucket_mb, 25, 0);
    CHECK(c.run.seed == 42);
    cfg_free(&c);
}

static void every_default_parses_and_is_in_range(void) {
    Config c;
    memset(&c, 0, sizeof c);
    char why[512];
    for (int i = 0; i < cfg_n_keys; i++) {
        const CfgKey *k = &cfg_keys[i];
        int rc = cfg_set_scalar(&c, k, k->def ? k->def : "null", k->def == NULL, why, sizeof why);
        CHECK_MSG(rc == 0, "%s: default \"%s\": %s", k->path, k->def ? k->def : "null", why);
        CHECK_MSG(k->doc && strlen(k->doc) > 5, "%s has no doc", k->path);
    }
    cfg_free(&c);
}

/* The dump nests rows by section; a section split over two places would reload as a
 * duplicate key, so the round trip of the defaults also proves the table's order. */
static void defaults_round_trip_through_the_dump(void) {
    Config a, b;
    cfg_defaults(&a);
    char *text = cfg_dump_string(&a);
    CHECK(text != NULL);
    Err e;
    /* the defaults alone lack training data; add it with --set to pass validation */
    char *sets[] = {"data.train={questions: q, annotations: a, images: i}", "data.val={questions: q, annotations: a, images: i}"};
    int rc = cfg_load_string(&b, text, "defaults", sets, 2, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc == 0) {
        CHECK(!cfg_equal(&a, &b));
        CHECK(cfg_apply_set(&b, "data.train=null", &e) == 0 && cfg_apply_set(&b, "data.val=null", &e) == 0);
        CHECK(cfg_equal(&a, &b));
        cfg_free(&b);
    }
    free(text);
    cfg_free(&a);
}

static void demo_config_round_trips_and_has_its_values(void) {
    round_trip("configs/demo.yaml");
    char path[512];
    path_in_src(path, sizeof path, "configs/demo.yaml");
    Config c;
    Err e;
    if (cfg_load(&c, path, NULL, 0, &e) != 0) {
        CHECK_MSG(0, "%s", e.msg);
        return;
    }
    CHECK(c.device == CFG_DEVICE_CPU && c.train.precision == DT_F32);
    CHECK(c.data.image_size == 64 && c.train.batch_size == 64);
    CHECK_NEAR(c.train.lr, 1e-3, 0);
    CHECK(c.model.image_encoder.arch == CFG_ARCH_RESNET18 && c.model.image_encoder.freeze.mode == CFG_FREEZE_NONE);
    CHECK_NEAR(c.model.image_encoder.width, 0.5, 0);
    CHECK(c.model.image_encoder.stages == 2 && c.model.image_encoder.output == CFG_OUTPUT_GRID);
    CHECK(c.model.text_encoder.pool == CFG_POOL_MEAN);
    CHECK(c.model.text_encoder.layers == 2 && c.model.text_encoder.hidden == 64 && c.model.text_encoder.heads == 4);
    CHECK(c.model.text_encoder.ffn == 128 && c.model.text_encoder.max_positions == 32);
    CHECK(c.model.fusion.type == CFG_FUSION_ATTENTION && c.model.fusion.hidden == 256);
    CHECK_NEAR(c.model.fusion.dropout, 0.0, 0);
    CHECK_NEAR(c.model.fusion.att_scale, 5.0, 0);
    CHECK(c.model.fusion.prior_bias == 1);
    CHECK_NEAR(c.model.text_encoder.dropout, 0.0, 0);
    CHECK(c.data.synth.dir && strcmp(c.data.synth.dir, "data/synth") == 0);
    CHECK(strcmp(c.data.train.questions, "data/synth/train_questions.json") == 0);
    CHECK(strcmp(c.data.val.annotations, "data/synth/val_annotations.json") == 0);
    CHECK(strcmp(c.data.train.images, "data/synth/images/train") == 0);
    CHECK(strcmp(c.model.text_encoder.vocab, "data/synth/vocab.txt") == 0);
    /* synthetic data is generated on first run: the file check must not fail on it */
    CHECK(cfg_check_files(&c, &e) == 0);
    cfg_free(&c);
}

static void vqav2_config_round_trips(void) {
    round_trip("configs/vqav2_resnet50_tinybert.yaml");
    char path[512];
    path_in_src(path, sizeof path, "configs/vqav2_resnet50_tinybert.yaml");
    Config c;
    Err e;
    if (cfg_load(&c, path, NULL, 0, &e) != 0) {
        CHECK_MSG(0, "%s", e.msg);
        return;
    }
    CHECK(c.model.image_encoder.freeze.mode == CFG_FREEZE_LIST && c.model.image_encoder.freeze.n == 1);
    CHECK(c.model.image_encoder.freeze.n == 1 && strcmp(c.model.image_encoder.freeze.trainable[0], "layer4") == 0);
    CHECK(c.data.test.annotations == NULL && c.data.test.questions != NULL);
    CHECK(c.predict.split == CFG_SPLIT_TEST && c.train.precision == DT_BF16);
    cfg_free(&c);
}

static void vizwiz_config_round_trips(void) {
    round_trip("configs/vizwiz_resnet50_tinybert.yaml");
    char path[512];
    path_in_src(path, sizeof path, "configs/vizwiz_resnet50_tinybert.yaml");
    Config c;
    Err e;
    if (cfg_load(&c, path, NULL, 0, &e) != 0) {
        CHECK_MSG(0, "%s", e.msg);
        return;
    }
    CHECK(c.data.format == CFG_FORMAT_VIZWIZ && c.data.train.annotations == NULL);
    CHECK(c.data.max_question_len == 32 && c.data.answers.min_count == 3);
    cfg_free(&c);
}

static void set_overrides_file_values_in_order(void) {
    char *sets[] = {"train.lr=3e-4", "model.image_encoder.freeze=[layer3, layer4]",
                    "data.test={questions: t.json, images: timg}", "train.lr=5e-4", "run.name='x: y'"};
    Config c;
    Err e;
    int rc = cfg_load_string(&c, VALID, "valid.yaml", sets, 5, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc) return;
    CHECK_NEAR(c.train.lr, 5e-4, 0); /* the later --set wins */
    CHECK(c.model.image_encoder.freeze.mode == CFG_FREEZE_LIST && c.model.image_encoder.freeze.n == 2);
    CHECK(c.model.image_encoder.freeze.n == 2 && strcmp(c.model.image_encoder.freeze.trainable[1], "layer4") == 0);
    CHECK(c.data.test.questions && strcmp(c.data.test.questions, "t.json") == 0);
    CHECK(c.data.test.images && strcmp(c.data.test.images, "timg") == 0);
    CHECK(strcmp(c.run.name, "x: y") == 0);
    char w[256];
    cfg_where(&c, "train.lr", w, sizeof w);
    CHECK(strcmp(w, "--set") == 0);
    cfg_where(&c, "train.precision", w, sizeof w);
    CHECK(strcmp(w, "valid.yaml:9:14") == 0); /* line 9 "  precision: fp32", value at column 14 */
    cfg_where(&c, "train.epochs", w, sizeof w);
    CHECK(strcmp(w, "valid.yaml") == 0);
    cfg_free(&c);
}

static void set_null_empty_and_sections(void) {
    Config c;
    Err e;
    cfg_defaults(&c);
    CHECK(cfg_apply_set(&c, "data.prepared=prep.bin", &e) == 0);
    CHECK(c.data.prepared && strcmp(c.data.prepared, "prep.bin") == 0);
    CHECK(cfg_apply_set(&c, "data.prepared=", &e) == 0); /* empty = null */
    CHECK(c.data.prepared == NULL);
    CHECK(cfg_apply_set(&c, "data.prepared=\"\"", &e) == 0); /* quoted empty = empty string */
    CHECK(c.data.prepared && c.data.prepared[0] == '\0');
    CHECK(cfg_apply_set(&c, "data.prepared='null'", &e) == 0); /* quoted null is a string */
    CHECK(c.data.prepared && strcmp(c.data.prepared, "null") == 0);
    CHECK(cfg_apply_set(&c, "data.test={questions: q, annotations: a, images: i}", &e) == 0);
    CHECK(c.data.test.annotations && strcmp(c.data.test.annotations, "a") == 0);
    CHECK(cfg_apply_set(&c, "data.test=null", &e) == 0); /* a section of nullable paths */
    CHECK(!c.data.test.questions && !c.data.test.annotations && !c.data.test.images);
    CHECK(cfg_apply_set(&c, "train=null", &e) == -1);     /* not all nullable */
    CHECK_STR_CONTAINS(e.msg, "expected a mapping");
    CHECK(cfg_apply_set(&c, "train.max_steps=1e5", &e) == 0); /* integral float -> integer */
    CHECK(c.train.max_steps == 100000);
    CHECK(cfg_apply_set(&c, "data.drop_last=no", &e) == 0);
    CHECK(c.data.drop_last == 0);
    CHECK(cfg_apply_set(&c, "train.lr=[1]", &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "got a list");
    CHECK(cfg_apply_set(&c, "train.lr=inf", &e) == -1);
    CHECK(cfg_apply_set(&c, "train.lr=0x10", &e) == -1);
    cfg_free(&c);
}

static void errors_carry_one_based_line_and_column(void) {
    Config c;
    Err e;
    const char *text = "run:\n  name: x\ntrain:\n      lr: 20\n";
    CHECK(cfg_load_string(&c, text, "pos.yaml", NULL, 0, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "pos.yaml:4:11: train.lr: 20 is out of range");
    CHECK(cfg_load_string(&c, "model:\n  fusion:\n    tpye: mul\n", "typo.yaml", NULL, 0, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "typo.yaml:3:5: model.fusion.tpye: unknown key (did you mean \"model.fusion.type\"?)");
    CHECK(cfg_load_string(&c, "trian: {lr: 1}\n", "sec.yaml", NULL, 0, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "did you mean \"train\"");
    CHECK(cfg_load_string(&c, "device: gpu\n", "dev.yaml", NULL, 0, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "dev.yaml:1:9: device: expected one of: auto, cpu, cuda, got \"gpu\"");
    CHECK(cfg_load(&c, "/nonexistent/cfg.yaml", NULL, 0, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "/nonexistent/cfg.yaml: cannot open the config file");
    cfg_free(&c); /* safe after a failed load */
}

static void equal_and_hash_see_every_change(void) {
    Config a, b;
    Err e;
    CHECK(cfg_load_string(&a, VALID, "v", NULL, 0, &e) == 0);
    const char *changes[] = {"train.lr=0.00010000000000000002", "run.seed=43", "model.text_encoder.freeze=[pooler]",
                             "data.test.images=x", "log.tensorboard=false", "train.schedule=linear",
                             "model.image_encoder.weights_prefix=b."};
    for (size_t i = 0; i < sizeof changes / sizeof *changes; i++) {
        CHECK(cfg_load_string(&b, VALID, "v", NULL, 0, &e) == 0);
        CHECK(cfg_equal(&a, &b) && cfg_hash(&a) == cfg_hash(&b));
        CHECK_MSG(cfg_apply_set(&b, changes[i], &e) == 0, "%s", e.msg);
        CHECK_MSG(!cfg_equal(&a, &b), "%s not seen by cfg_equal", changes[i]);
        CHECK_MSG(cfg_hash(&a) != cfg_hash(&b), "%s not seen by cfg_hash", changes[i]);
        cfg_free(&b);
    }
    cfg_free(&a);
}

static void dump_writes_shortest_floats_and_escaped_strings(void) {
    Config a, b;
    Err e;
    char *sets[] = {"train.lr=0.1", "train.adam_eps=1e-8", "train.weight_decay=0.30000000000000004",
                    "run.name=\"na\\u00efve \\\"q\\\" \\\\ : # [x]\"", "model.image_encoder.width=2"};
    CHECK(cfg_load_string(&a, VALID, "v", sets, 5, &e) == 0);
    char *d = cfg_dump_string(&a);
    CHECK_STR_CONTAINS(d, "\n  lr: 0.1\n");
    CHECK_STR_CONTAINS(d, "\n  adam_eps: 1e-08\n");
    CHECK_STR_CONTAINS(d, "\n  weight_decay: 0.30000000000000004\n");
    CHECK_STR_CONTAINS(d, "\n    width: 2.0\n");
    CHECK_STR_CONTAINS(d, "name: \"na\xc3\xafve \\\"q\\\" \\\\ : # [x]\"");
    CHECK(strcmp(a.run.name, "na\xc3\xafve \"q\" \\ : # [x]") == 0);
    CHECK(cfg_load_string(&b, d, "dump", NULL, 0, &e) == 0);
    CHECK(cfg_equal(&a, &b));
    CHECK(b.train.weight_decay == 0.30000000000000004);
    free(d);
    cfg_free(&a);
    cfg_free(&b);
}

static void freeze_accepts_all_none_lists_and_strings(void) {
    Config c;
    Err e;
    char buf[128];
    cfg_defaults(&c);
    CHECK(cfg_apply_set(&c, "model.image_encoder.freeze=none", &e) == 0);
    CHECK(c.model.image_encoder.freeze.mode == CFG_FREEZE_NONE);
    CHECK(cfg_apply_set(&c, "model.image_encoder.freeze=layer3, layer4", &e) == 0);
    cfg_freeze_string(&c.model.image_encoder.freeze, buf, sizeof buf);
    CHECK(strcmp(buf, "layer3, layer4") == 0);
    CHECK(cfg_apply_set(&c, "model.image_encoder.freeze=[]", &e) == 0); /* nothing trainable = all */
    CHECK(c.model.image_encoder.freeze.mode == CFG_FREEZE_ALL);
    CHECK(cfg_apply_set(&c, "model.image_encoder.freeze=[[layer4]]", &e) == -1);
    CHECK(cfg_apply_set(&c, "model.image_encoder.freeze=[la-yer4]", &e) == -1);
    CHECK(cfg_apply_set(&c, "model.text_encoder.freeze=[layer3, pooler]", &e) == 0);
    cfg_freeze_string(&c.model.text_encoder.freeze, buf, sizeof buf);
    CHECK(strcmp(buf, "layer3, pooler") == 0);
    CHECK(cfg_validate(&c, &e) == -1); /* still no training data, but freeze names are fine: */
    CHECK_STR_CONTAINS(e.msg, "data.train.questions");
    cfg_free(&c);
}

static void device_checks_wait_for_auto_to_resolve(void) {
    Config c;
    Err e;
    char *sets[] = {"device=auto", "train.precision=bf16"};
    CHECK(cfg_load_string(&c, VALID, "v", sets, 2, &e) == 0);
    CHECK(cfg_validate_device(&c, CFG_DEVICE_CUDA, &e) == 0);
    CHECK(cfg_validate_device(&c, CFG_DEVICE_CPU, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "train.precision: bf16 needs device cuda, but device: auto chose cpu");
    cfg_free(&c);
}

static void check_files_lists_missing_and_skips_generated(void) {
    char d[300], f[400], text[2000];
    snprintf(d, sizeof d, "%s/data", tmpdir);
    mkdir(d, 0755);
    snprintf(f, sizeof f, "%s/q.json", d);
    write_file(f, "{}");
    snprintf(text, sizeof text,
             "device: cpu\n"
             "data:\n"
             "  train: {questions: %s/q.json, annotations: %s/missing_a.json, images: %s}\n"
             "  val: {questions: gen/vq.json, annotations: gen/va.json, images: %s/q.json}\n"
             "  synth: {dir: ./gen/}\n"
             "model: {text_encoder: {vocab: gen/vocab.txt}, image_encoder: {weights: %s}}\n"
             "train: {precision: fp32}\n",
             d, d, d, d, d);
    Config c;
    Err e;
    int rc = cfg_load_string(&c, text, "files.yaml", NULL, 0, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc) return;
    /* missing_a.json is absent; val.images is a file, not a folder; weights is a folder */
    CHECK(cfg_check_files(&c, &e) == 3);
    CHECK_STR_CONTAINS(e.msg, "data.train.annotations: ");
    CHECK_STR_CONTAINS(e.msg, "missing_a.json: not found (set at files.yaml:3:");
    CHECK_STR_CONTAINS(e.msg, "data.val.images: ");
    CHECK_STR_CONTAINS(e.msg, "not a folder");
    CHECK_STR_CONTAINS(e.msg, "model.image_encoder.weights: ");
    CHECK_STR_CONTAINS(e.msg, "a folder, expected a file");
    CHECK(strstr(e.msg, "gen/") == NULL); /* under data.synth.dir: generated */
    CHECK(cfg_apply_set(&c, "data.prepared=" "/nonexistent/prep.bin", &e) == 0);
    /* prepared replaces the raw train/val files: only prepared and weights remain */
    CHECK(cfg_check_files(&c, &e) == 2);
    CHECK_STR_CONTAINS(e.msg, "data.prepared: /nonexistent/prep.bin: not found (set at --set)");
    cfg_free(&c);
}

static void warnings_flag_frozen_random_encoders(void) {
    Config c;
    Err e;
    char buf[1024];
    CHECK(cfg_load_string(&c, VALID, "v", NULL, 0, &e) == 0);
    CHECK(cfg_warnings(&c, buf, sizeof buf) == 1); /* default image freeze: all, weights: null */
    CHECK_STR_CONTAINS(buf, "model.image_encoder.freeze");
    CHECK(cfg_apply_set(&c, "model.image_encoder.freeze=none", &e) == 0);
    CHECK(cfg_warnings(&c, buf, sizeof buf) == 0);
    cfg_free(&c);
}

static void every_key_is_documented_in_configs_readme(void) {
    char path[512];
    path_in_src(path, sizeof path, "configs/README.md");
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (!f) return;
    static char text[1 << 18];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    char want[160];
    for (int i = 0; i < cfg_n_keys; i++) {
        snprintf(want, sizeof want, "`%s`", cfg_keys[i].path);
        CHECK_MSG(strstr(text, want) != NULL, "configs/README.md does not document %s (vqa_train --print-keys)",
                  cfg_keys[i].path);
    }
}

/* train.cpu_kernels: onednn loads when the build has oneDNN, else the error names the key;
 * auto and reference load either way */
static void cpu_kernels_onednn_needs_a_build_with_onednn(void) {
    char path[512];
    path_in_src(path, sizeof path, "configs/demo.yaml");
    const char *vals[] = {"train.cpu_kernels=auto", "train.cpu_kernels=reference", "train.cpu_kernels=onednn"};
    const CfgCpuKernels want[] = {CFG_CPUK_AUTO, CFG_CPUK_REFERENCE, CFG_CPUK_ONEDNN};
    for (int i = 0; i < 3; i++) {
        Config c;
        Err e;
        char *set = (char *)vals[i];
        int rc = cfg_load(&c, path, &set, 1, &e);
        if (i < 2 || VQA_HAVE_ONEDNN) {
            CHECK_MSG(rc == 0, "%s: %s", vals[i], e.msg);
            if (rc == 0) CHECK(c.train.cpu_kernels == want[i]);
        } else {
            CHECK(rc == -1);
            CHECK_STR_CONTAINS(e.msg, "train.cpu_kernels");
            CHECK_STR_CONTAINS(e.msg, "no oneDNN");
        }
        if (rc == 0) cfg_free(&c);
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_config.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    RUN(defaults_match_the_design_sketch);
    RUN(every_default_parses_and_is_in_range);
    RUN(defaults_round_trip_through_the_dump);
    RUN(demo_config_round_trips_and_has_its_values);
    RUN(vqav2_config_round_trips);
    RUN(vizwiz_config_round_trips);
    RUN(set_overrides_file_values_in_order);
    RUN(set_null_empty_and_sections);
    RUN(errors_carry_one_based_line_and_column);
    RUN(equal_and_hash_see_every_change);
    RUN(dump_writes_shortest_floats_and_escaped_strings);
    RUN(freeze_accepts_all_none_lists_and_strings);
    RUN(device_checks_wait_for_auto_to_resolve);
    RUN(cpu_kernels_onednn_needs_a_build_with_onednn);
    RUN(check_files_lists_missing_and_skips_generated);
    RUN(warnings_flag_frozen_random_encoders);
    RUN(every_key_is_documented_in_configs_readme);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
