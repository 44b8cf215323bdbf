/* test_trainer.c: the trainer's pieces that need no dataset on disk: the .npy writer
 * (against bytes numpy wrote), the answer prior (hand-made splits), schedule and step
 * wiring, freeze lists into the model config, optimizer segments from a ParamStore, the
 * loss over padded batches, the fp16 unscale decision, and the checkpoint content round
 * trip. */
// TEST_LIBS: vqa_core
// TEST_LABELS: unit
#include <unistd.h>

#include "config/config.h"
#include "io/checkpoint.h"
#include "testlib.h"
#include "train/evaluate.h"
#include "train/npy.h"
#include "train/prior.h"
#include "train/setup.h"
#include "train/train_state.h"
#include "train/trainer.h"

/* tests/ref/npy_unicode.npy was written by numpy.save (tools/gen_npy_refs.py). */
static void npy_writer_matches_numpy_bytes(void) {
    const char *answers[] = {"yes", "no", "2", "blue", "caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", ""};
    char path[256];
    snprintf(path, sizeof path, "/tmp/test_trainer_%d.npy", (int)getpid());
    Err e;
    CHECK(npy_write_unicode(path, answers, 7, &e) == 0);
    size_t na = 0, nb = 0;
    char *a = test_read_file(path, &na), *b = test_read_file("ref/npy_unicode.npy", &nb);
    CHECK(a && b);
    CHECK_MSG(na == nb, "%zu vs %zu bytes", na, nb);
    if (a && b && na == nb) CHECK(memcmp(a, b, na) == 0);
    free(a);
    free(b);
    unlink(path);
}

static void npy_header_is_aligned_and_names_dtype_and_shape(void) {
    char h[256];
    size_t n = npy_unicode_header(h, sizeof h, 12345, 17);
    CHECK(n % 64 == 0 && n >= 64);
    CHECK(memcmp(h, "\x93NUMPY\x01\x00", 8) == 0);
    CHECK((size_t)((unsigned char)h[8] | ((unsigned char)h[9] << 8)) == n - 10);
    CHECK(h[n - 1] == '\n');
    h[n - 1] = '\0';
    CHECK_STR_CONTAINS(h + 10, "'descr': '<U17'");
    CHECK_STR_CONTAINS(h + 10, "'shape': (12345,)");
    /* UTF-8 decoding counts code points; a bad byte is one U+FFFD */
    uint32_t cp[4];
    CHECK(npy_utf8_decode("\xc3\xa9x\xff", cp, 4) == 3);
    CHECK(cp[0] == 0xE9 && cp[1] == 'x' && cp[2] == 0xFFFD);
}

/* A hand-made split: question types and 10 answers per question. */
typedef struct MiniSplit {
    VqaSample s[8];
    VqaDataset ds;
} MiniSplit;

static void mini_add(MiniSplit *m, const char *qtype, const char *mc, const char *ans10[10]) {
    VqaSample *s = &m->s[m->ds.n];
    memset(s, 0, sizeof *s);
    s->question_id = 100 + m->ds.n;
    s->question = "q";
    s->image_path = "";
    s->question_type = qtype;
    s->answer_type_name = "other";
    s->answer_type = AT_OTHER;
    s->n_answers = 10;
    for (int i = 0; i < 10; i++) s->answers[i] = ans10[i];
    s->mc_answer = mc;
    m->ds.n++;
    m->ds.samples = m->s;
    m->ds.has_answers = 1;
}

static void prior_picks_most_frequent_answer_per_question_type(void) {
    static const char *all_red[10] = {"red", "red", "red", "red", "red", "red", "red", "red", "red", "red"};
    MiniSplit tr = {0};
    /* "what color": red x2, blue x1 -> red; "how many": 2 x1, 3 x1 -> tie -> "2" (smaller) */
    mini_add(&tr, "what color", "red", all_red);
    mini_add(&tr, "what color", "Red", all_red); /* canonical form: lower-cased */
    mini_add(&tr, "what color", "blue", all_red);
    mini_add(&tr, "how many", "3", all_red);
    mini_add(&tr, "how many", "two", all_red); /* normalizes to "2" */
    AnswerPrior *p;
    Err e;
    CHECK(prior_build(&p, &tr.ds, &e) == 0);
    CHECK(prior_n_types(p) == 2);
    CHECK(strcmp(prior_answer(p, "what color"), "red") == 0);
    CHECK(strcmp(prior_answer(p, "how many"), "2") == 0);
    /* unseen type -> global mode: red (2) beats blue, 2, 3 (1 each) */
    CHECK(strcmp(prior_answer(p, "is there"), "red") == 0);

    /* val: one "what color" question where exactly 2 of 10 humans said red:
     * leave-one-out mean = (2 * 1/3 + 8 * 2/3) / 10 = 0.6 -> 60% */
    static const char *two_red[10] = {"red", "red", "blue", "blue", "blue", "blue", "blue", "blue", "blue", "blue"};
    MiniSplit va = {0};
    mini_add(&va, "what color", "blue", two_red);
    double acc = -1;
    CHECK(prior_accuracy(p, &va.ds, &acc, &e) == 0);
    CHECK_NEAR(acc, 60.0, 1e-9);
    prior_free(p);
}

static void schedule_wiring_follows_config(void) {
    Config c;
    cfg_defaults(&c);
    c.train.lr = 1e-3;
    c.train.warmup_steps = 10;
    c.train.schedule = CFG_SCHED_COSINE;
    c.train.clip_grad_norm = 0.5;
    OptimOptions oo;
    setup_optim_options(&c, 110, &oo);
    CHECK_NEAR(optim_lr_at(&oo, 0), 1e-4, 1e-10);             /* warm-up: lr * 1/10 */
    CHECK_NEAR(optim_lr_at(&oo, 9), 1e-3, 1e-10);
    CHECK_NEAR(optim_lr_at(&oo, 60), 5e-4, 1e-9);             /* half-way down the cosine */
    CHECK(oo.clip_norm == 0.5f && oo.beta1 == 0.9f && oo.beta2 == 0.999f && oo.eps == 1e-8f);
    c.train.schedule = CFG_SCHED_LINEAR;
    setup_optim_options(&c, 110, &oo);
    CHECK_NEAR(optim_lr_at(&oo, 85), 2.5e-4, 1e-9);           /* 3/4 of the way to 0 */
    c.train.schedule = CFG_SCHED_CONSTANT;
    c.train.clip_grad_norm = 0;
    setup_optim_options(&c, 110, &oo);
    CHECK_NEAR(optim_lr_at(&oo, 100), 1e-3, 1e-10);
    CHECK(oo.clip_norm == 0.0f);
    cfg_free(&c);
    /* steps: ceil(batches / accum); epochs x that, capped by max_steps when set */
    CHECK(trainer_steps_per_epoch(125, 1) == 125);
    CHECK(trainer_steps_per_epoch(125, 4) == 32);
    CHECK(trainer_total_steps(125, 4, 0) == 500);
    CHECK(trainer_total_steps(125, 4, 100) == 100);
    CHECK(trainer_total_steps(125, 4, 1000) == 500);
    /* dropout seeds differ across steps and micro-batches, and repeat for the same pair */
    CHECK(trainer_step_seed(42, 7, 0) == trainer_step_seed(42, 7, 0));
    CHECK(trainer_step_seed(42, 7, 0) != trainer_step_seed(42, 7, 1));
    CHECK(trainer_step_seed(42, 7, 0) != trainer_step_seed(42, 8, 0));
    CHECK(trainer_step_seed(42, 7, 0) != trainer_step_seed(43, 7, 0));
}

static void build_store(ParamStore *ps, int freeze_txt) {
    Err e;
    ps_init(ps);
    ps_add(ps, "image_encoder.conv.weight", 2, (int64_t[]){4, 3}, PK_WEIGHT, PG_IMAGE, pinit_normal(0.1f), &e);
    ps_add(ps, "image_encoder.bn.weight", 1, (int64_t[]){4}, PK_NORM, PG_IMAGE, pinit_ones(), &e);
    ps_add(ps, "image_encoder.bn.running_mean", 1, (int64_t[]){4}, PK_BUFFER, PG_IMAGE, pinit_zeros(), &e);
    int nbt = ps_add(ps, "image_encoder.bn.num_batches_tracked", 0, NULL, PK_BUFFER, PG_IMAGE, pinit_zeros(), &e);
    ps_set_file_dtype(ps, nbt, DT_I64);
    ps_add(ps, "text_encoder.emb.weight", 2, (int64_t[]){5, 2}, PK_EMBEDDING, PG_TEXT, pinit_normal(0.1f), &e);
    ps_add(ps, "classifier.0.weight", 2, (int64_t[]){3, 2}, PK_WEIGHT, PG_CLASSIFIER, pinit_normal(0.1f), &e);
    ps_add(ps, "classifier.0.bias", 1, (int64_t[]){3}, PK_BIAS, PG_CLASSIFIER, pinit_zeros(), &e);
    if (freeze_txt) ps_set_trainable_prefix(ps, "text_encoder.", 0);
    CHECK(ps_finalize(ps, backend_cpu(), &e) == 0);
    CHECK(ps_init_values(ps, 7, &e) == 0);
}

/* The config's freeze lists reach the model as FreezeSpecs; a list or a name too long for
 * one is an error naming the key (not a shorter list). */
static void freeze_lists_reach_the_model_config(void) {
    Config c;
    Err e = {{0}};
    VqaModelConfig mc;
    cfg_defaults(&c);
    CHECK(cfg_apply_set(&c, "model.image_encoder.freeze=[layer3, layer4]", &e) == 0);
    CHECK_MSG(setup_model_config(&c, 10, 100, 0, &mc, &e) == 0, "%s", e.msg);
    CHECK(mc.image_freeze.mode == FREEZE_LIST && mc.image_freeze.n == 2);
    CHECK(!strcmp(mc.image_freeze.stage[0], "layer3") && !strcmp(mc.image_freeze.stage[1], "layer4"));
    CHECK(mc.text_freeze.mode == FREEZE_NONE);
    char set[1024];
    size_t n = (size_t)snprintf(set, sizeof set, "model.text_encoder.freeze=[");
    for (int i = 0; i <= FREEZE_MAX_STAGES; i++) n += (size_t)snprintf(set + n, sizeof set - n, "%slayer%d", i ? ", " : "", i);
    snprintf(set + n, sizeof set - n, "]");
    CHECK_MSG(cfg_apply_set(&c, set, &e) == 0, "%s", e.msg);
    CHECK(setup_model_config(&c, 10, 100, 0, &mc, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "model.text_encoder.freeze");
    CHECK_STR_CONTAINS(e.msg, "at most");
    CHECK(cfg_apply_set(&c, "model.text_encoder.freeze=all", &e) == 0);
    CHECK(setup_model_config(&c, 10, 100, 0, &mc, &e) == 0 && mc.text_freeze.mode == FREEZE_ALL);
    char name[FREEZE_NAME_MAX + 1];
    memset(name, 'x', FREEZE_NAME_MAX);
    name[FREEZE_NAME_MAX] = '\0';
    snprintf(set, sizeof set, "model.image_encoder.freeze=[layer4, %s]", name);
    CHECK_MSG(cfg_apply_set(&c, set, &e) == 0, "%s", e.msg);
    CHECK(setup_model_config(&c, 10, 100, 0, &mc, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "model.image_encoder.freeze");
    CHECK_STR_CONTAINS(e.msg, "longer than");
    cfg_free(&c);
}

static void segments_split_decay_and_encoder_lr(void) {
    ParamStore ps;
    build_store(&ps, 1);
    OptimSegment *s;
    int n;
    Err e;
    CHECK(trainer_segments(&ps, 0.1f, &s, &n, &e) == 0);
    /* conv.weight (decay, x0.1) | bn.weight (no decay, x0.1) | [text frozen] | cls.weight (decay, x1) | cls.bias (no, x1) */
    CHECK(n == 4);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += s[i].n;
    CHECK(total == ps.n_grads && total == 12 + 4 + 6 + 3);
    CHECK(s[0].n == 12 && s[0].decay == 1 && s[0].lr_mult == 0.1f);
    CHECK(s[1].n == 4 && s[1].decay == 0 && s[1].lr_mult == 0.1f);
    CHECK(s[2].n == 6 && s[2].decay == 1 && s[2].lr_mult == 1.0f);
    CHECK(s[3].n == 3 && s[3].decay == 0 && s[3].lr_mult == 1.0f);
    /* the frozen embedding's values sit between bn and classifier in values, not in grads */
    CHECK(s[2].param_off == (size_t)ps_info(&ps, ps_find(&ps, "classifier.0.weight"))->offset);
    CHECK(s[2].grad_off == 16);
    free(s);
    ps_free(&ps);
}

/* BCE at logit 0: ln 2 per class; padding rows must not change the loss or get gradient. */
static void loss_ignores_padding_rows(void) {
    const int A = 3;
    float logits[9] = {0, 0, 0, 0, 0, 0, 5, -5, 5};
    float targets[9] = {1, 0, 0, 0, 0.3f, 0, 1, 1, 1};
    float d[9];
    for (int i = 0; i < 9; i++) d[i] = 99.f;
    double l = train_loss(backend_cpu(), LOSS_BCE, 3, 2, A, logits, targets, 0.5f, 1.0f, d);
    CHECK_NEAR(l, 0.5 * 3 * log(2.0), 1e-9);
    /* d = weight * (sigmoid(0) - t) / n_real */
    CHECK_NEAR(d[0], 0.5 * (0.5 - 1.0) / 2, 1e-7);
    CHECK_NEAR(d[4], 0.5 * (0.5 - 0.3) / 2, 1e-7);
    CHECK(d[6] == 0 && d[7] == 0 && d[8] == 0);
    int32_t am[2];
    float lg[6] = {0.1f, 0.9f, 0.2f, 3, 3, 1};
    train_argmax(2, 3, lg, am);
    CHECK(am[0] == 1 && am[1] == 0); /* ties: the first */
    CHECK_NEAR(train_argmax_score(2, 3, (float[]){0, 0.6f, 1, 0.3f, 1, 1}, am), 0.9, 1e-6);
}

static void unscale_skips_on_inf_and_divides_otherwise(void) {
    LossScaler s;
    loss_scaler_init(&s, 1024.f, 2.f, 0.5f, 3);
    float g[3] = {1024.f, -512.f, INFINITY};
    CHECK(trainer_unscale(&s, g, 3) == 1);
    CHECK(s.scale == 512.f && s.skipped == 1);
    float h[2] = {512.f, -256.f};
    CHECK(trainer_unscale(&s, h, 2) == 0);
    CHECK(h[0] == 1.f && h[1] == -0.5f);
}

static void checkpoint_round_trip_is_bit_exact(void) {
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/test_trainer_ckpt_%d", (int)getpid());
    ParamStore a, b;
    build_store(&a, 0);
    build_store(&b, 0);
    /* make a differ from b everywhere, buffers included */
    for (size_t i = 0; i < a.n_values; i++) a.values[i] = (float)i * 0.37f - 1.1f;
    for (size_t i = 0; i < a.n_buffers; i++) a.buffers[i] = (float)i + 0.25f;
    a.buffers[ps_info(&a, ps_find(&a, "image_encoder.bn.num_batches_tracked"))->offset] = 123456.f;
    Optimizer oa, ob;
    OptimOptions oo = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
    Err e;
    CHECK(optim_init(&oa, backend_cpu(), &oo, NULL, 0, a.n_grads, &e) == 0);
    CHECK(optim_init(&ob, backend_cpu(), &oo, NULL, 0, b.n_grads, &e) == 0);
    for (size_t i = 0; i < oa.n; i++) oa.m[i] = 1e-3f * (float)i, oa.v[i] = 1.0f / (float)(i + 3);
    oa.t = 77;
    TrainState sa = {.step = 40, .epoch = 3, .sampler_pos = 128, .seed = 42, .best_acc = 81.23456789012345, .best_step = 30};
    loss_scaler_init(&sa.scaler, 3.0e4f, 2.f, 0.5f, 100);
    sa.scaler.clean_steps = 17;
    sa.scaler.skipped = 2;
    const char *answers[] = {"yes", "no", "2"};
    AnswerVocab *v, *v2;
    CHECK(ans_vocab_from_list(&v, answers, 3, &e) == 0);
    char path[4096];
    CHECK(tstate_save(dir, &a, &oa, &sa, v, "run: {seed: 42}\n", 0xabcdef0123456789ull, path, sizeof path, &e) == 0);
    CHECK_STR_CONTAINS(path, "step_00000040.safetensors");
    TrainState sb = {0};
    CHECK(tstate_load(path, &b, &ob, &sb, v, &e) == 0);
    CHECK(memcmp(a.values, b.values, a.n_values * 4) == 0);
    CHECK(memcmp(a.buffers, b.buffers, a.n_buffers * 4) == 0);
    CHECK(memcmp(oa.m, ob.m, oa.n * 4) == 0 && memcmp(oa.v, ob.v, oa.n * 4) == 0 && ob.t == 77);
    CHECK(ob.step == 40); /* the schedule goes on from the saved step */
    CHECK(sb.step == 40 && sb.epoch == 3 && sb.sampler_pos == 128 && sb.seed == 42 && sb.best_step == 30);
    CHECK(sb.best_acc == sa.best_acc);
    CHECK(sb.scaler.scale == 3.0e4f && sb.scaler.clean_steps == 17 && sb.scaler.skipped == 2);
    CHECK(tstate_config_hash(path) == 0xabcdef0123456789ull);
    CHECK(tstate_load_vocab(path, &v2, &e) == 0 && ans_vocab_size(v2) == 3 && !strcmp(ans_vocab_answer(v2, 2), "2"));
    ans_vocab_free(v2);
    /* another vocabulary is refused, naming both */
    const char *other[] = {"yes", "no", "3"};
    CHECK(ans_vocab_from_list(&v2, other, 3, &e) == 0);
    CHECK(tstate_load(path, &b, &ob, &sb, v2, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "answer 2 is '2' in the checkpoint but '3'");
    ans_vocab_free(v2);
    /* a checkpoint is loadable as plain model weights by name */
    PsLoadReport rep;
    CHECK(ps_load_safetensors(&b, path, "", "", &rep, &e) == 0);
    CHECK(rep.unused == 2); /* the two optimizer tensors */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    ans_vocab_free(v);
    optim_free(&oa);
    optim_free(&ob);
    ps_free(&a);
    ps_free(&b);
}

int main(void) {
    RUN(npy_writer_matches_numpy_bytes);
    RUN(npy_header_is_aligned_and_names_dtype_and_shape);
    RUN(prior_picks_most_frequent_answer_per_question_type);
    RUN(schedule_wiring_follows_config);
    RUN(freeze_lists_reach_the_model_config);
    RUN(segments_split_decay_and_encoder_lr);
    RUN(loss_ignores_padding_rows);
    RUN(unscale_skips_on_inf_and_divides_otherwise);
    RUN(checkpoint_round_trip_is_bit_exact);
    return test_summary();
}
