// TEST_LIBS: vqa_data
// TEST_LABELS: unit
/* test_loader.c: the threaded loader and the prepared file: same batches whatever the
 * number of workers, rows equal to what the image / tokenizer / answer functions make,
 * bad images counted, reported once and fatal over the threshold, prepared (raw and JPEG)
 * equal to decoding, resume by position, and the prepared header's validation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb_image_write.h>

#include "data/loader.h"
#include "data/prep.h"
#include "testlib.h"

#define DIR "/tmp/vqa_test_loader"
#define NS 23
#define NI 9

static VqaSample g_samples[NS];
static char g_paths[NI][128];
static const char *g_questions[] = {
    "what color is the circle?", "is the square left of the circle?",
    "what is on the right?", "is the leftover circle red?", "Is the RIGHT one blue?"};
static const char *g_answers[] = {"red", "blue", "yes", "no", "left"};
static Tokenizer *g_tok;
static AnswerVocab *g_vocab;

static void make_image(const char *path, int w, int h, int seed) {
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = px + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(x * 255 / w);
            p[1] = (uint8_t)((x / 4 + y / 4 + seed) % 2 ? 220 : 30);
            p[2] = (uint8_t)((y * 7 + seed * 40) % 256);
        }
    stbi_write_png(path, w, h, 3, px, w * 3);
    free(px);
}

static int setup(void) {
    mkdir(DIR, 0755);
    for (int i = 0; i < NI; i++) {
        snprintf(g_paths[i], sizeof g_paths[i], DIR "/COCO_t_%012d.png", i);
        make_image(g_paths[i], 30 + 7 * i, 50 - 3 * i, i);
    }
    for (int i = 0; i < NS; i++) {
        VqaSample *s = &g_samples[i];
        memset(s, 0, sizeof *s);
        s->question_id = 1000 + i;
        s->image_id = i % NI;
        s->question = g_questions[i % 5];
        s->image_path = g_paths[i % NI];
        s->question_type = "";
        s->answer_type = AT_OTHER;
        s->n_answers = 10;
        for (int k = 0; k < 10; k++) s->answers[k] = g_answers[(i + (k < 6 ? 0 : k)) % 5];
        s->mc_answer = g_answers[i % 5];
    }
    FILE *f = fopen(DIR "/vocab.txt", "w");
    const char *words[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "what", "color", "is", "the",
                           "circle", "?", "square", "left", "of", "on", "right", "##over", "red",
                           "one", "blue"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) fprintf(f, "%s\n", words[i]);
    fclose(f);
    Err e;
    if (tok_load(&g_tok, DIR "/vocab.txt", &e) != 0) {
        fprintf(stderr, "tok_load: %s\n", e.msg);
        return -1;
    }
    if (ans_vocab_from_list(&g_vocab, g_answers, 5, &e) != 0) {
        fprintf(stderr, "ans_vocab_from_list: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static VqaDataset dataset(void) {
    VqaDataset ds;
    memset(&ds, 0, sizeof ds);
    ds.samples = g_samples;
    ds.n = NS;
    ds.has_answers = 1;
    return ds;
}

static LoaderOpts opts(int workers) {
    LoaderOpts o;
    loader_opts_default(&o);
    o.batch_size = 4;
    o.image_size = 16;
    o.max_len = 8;
    o.workers = workers;
    o.prefetch = 2;
    o.seed = 11;
    o.max_bad_fraction = 0.5;
    return o;
}

/* Every batch of one epoch, concatenated: images, tokens, mask, targets, ids, n_real. */
typedef struct Dump { float *img, *mask, *tgt; int32_t *tok; int64_t *qid, *idx; int *n_real; int nb; } Dump;

static void dump_free(Dump *d) {
    free(d->img); free(d->mask); free(d->tgt); free(d->tok); free(d->qid); free(d->idx); free(d->n_real);
    memset(d, 0, sizeof *d);
}

static int run_epoch(Loader *l, Dump *d, const LoaderOpts *o) {
    const int B = o->batch_size, S = o->image_size, L = o->max_len, A = 5;
    int cap = (int)loader_num_batches(l);
    d->img = calloc((size_t)cap * B * 3 * S * S, sizeof(float));
    d->mask = calloc((size_t)cap * B * L, sizeof(float));
    d->tgt = calloc((size_t)cap * B * A, sizeof(float));
    d->tok = calloc((size_t)cap * B * L, sizeof(int32_t));
    d->qid = calloc((size_t)cap * B, sizeof(int64_t));
    d->idx = calloc((size_t)cap * B, sizeof(int64_t));
    d->n_real = calloc((size_t)cap, sizeof(int));
    d->nb = 0;
    Batch *b;
    Err e;
    int rc;
    while ((rc = loader_next(l, &b, &e)) == 1) {
        int k = d->nb++;
        memcpy(d->img + (size_t)k * B * 3 * S * S, b->images, sizeof(float) * B * 3 * S * S);
        memcpy(d->mask + (size_t)k * B * L, b->attn_mask, sizeof(float) * B * L);
        if (b->targets) memcpy(d->tgt + (size_t)k * B * A, b->targets, sizeof(float) * B * A);
        memcpy(d->tok + (size_t)k * B * L, b->tokens, sizeof(int32_t) * B * L);
        memcpy(d->qid + (size_t)k * B, b->question_ids, sizeof(int64_t) * B);
        memcpy(d->idx + (size_t)k * B, b->sample_index, sizeof(int64_t) * B);
        d->n_real[k] = b->n_real;
        loader_release(l, b);
    }
    if (rc < 0) fprintf(stderr, "loader_next: %s\n", e.msg);
    return rc;
}

static int dump_equal(const Dump *a, const Dump *b, const LoaderOpts *o) {
    const size_t B = (size_t)o->batch_size, S = (size_t)o->image_size, L = (size_t)o->max_len;
    size_t nb = (size_t)a->nb;
    return a->nb == b->nb && !memcmp(a->img, b->img, sizeof(float) * nb * B * 3 * S * S) &&
           !memcmp(a->tok, b->tok, sizeof(int32_t) * nb * B * L) &&
           !memcmp(a->mask, b->mask, sizeof(float) * nb * B * L) &&
           !memcmp(a->tgt, b->tgt, sizeof(float) * nb * B * 5) &&
           !memcmp(a->qid, b->qid, sizeof(int64_t) * nb * B) && !memcmp(a->n_real, b->n_real, sizeof(int) * nb);
}

static void same_batches_with_1_and_3_workers(void) {
    VqaDataset ds = dataset();
    Dump d[2];
    LoaderOpts o;
    for (int t = 0; t < 2; t++) {
        o = opts(t == 0 ? 1 : 3);
        o.prefetch = t == 0 ? 1 : 3;
        o.augment = (ImgAugment){1, 1, 0.2f};
        Loader *l;
        Err e;
        CHECK(loader_open(&l, &o, &ds, g_tok, g_vocab, &e) == 0);
        CHECK(loader_start_epoch(l, 2, 0, &e) == 0);
        CHECK(run_epoch(l, &d[t], &o) == 0);
        loader_close(l);
    }
    CHECK(d[0].nb == 6); /* ceil(23 / 4) */
    CHECK(d[0].n_real[5] == 3);
    CHECK(dump_equal(&d[0], &d[1], &o));
    dump_free(&d[0]);
    dump_free(&d[1]);
}

static void rows_are_the_image_text_and_answer_functions(void) {
    VqaDataset ds = dataset();
    LoaderOpts o = opts(2);
    o.augment.hflip = 1;
    Loader *l;
    Err e;
    CHECK(loader_open(&l, &o, &ds, g_tok, g_vocab, &e) == 0);
    Dump d;
    CHECK(run_epoch(l, &d, &o) == 0);
    loader_close(l);
    const int S = 16, L = 8;
    int seen[NS] = {0}, flips = 0;
    uint8_t resized[16 * 16 * 3];
    float img[3 * 16 * 16], tgt[5], mask[8];
    int32_t ids[8];
    for (int r = 0; r < d.nb * 4; r++) {
        int64_t i = d.idx[r];
        if (r % 4 < d.n_real[r / 4]) seen[i]++;
        const VqaSample *s = &g_samples[i];
        CHECK(d.qid[r] == s->question_id);
        ImgAugDraw ad;
        img_aug_draw(&o.augment, img_sample_seed(o.seed, 0, i), 1, 1, &ad);
        Image im;
        CHECK(img_decode_file(&im, s->image_path, &e) == 0);
        ImgAugDraw none = {0};
        none.brightness = none.contrast = none.saturation = 1;
        CHECK(img_pipeline(im.px, im.w, im.h, S, IMG_RESIZE_SHORTER_CROP, &none, NULL, resized, img) == 0);
        img_free(&im);
        const float *got = d.img + (size_t)r * 3 * S * S;
        int ok = 1;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                    if (got[(c * S + y) * S + x] != img[(c * S + y) * S + (ad.flip ? S - 1 - x : x)]) ok = 0;
        CHECK_MSG(ok, "row %d (sample %lld, flip %d): image differs", r, (long long)i, ad.flip);
        char q[256];
        if (ad.flip) {
            img_swap_left_right(s->question, q, sizeof q);
            flips++;
        } else {
            snprintf(q, sizeof q, "%s", s->question);
        }
        tok_encode(g_tok, q, L, ids, mask);
        CHECK(!memcmp(ids, d.tok + (size_t)r * L, sizeof ids));
        CHECK(!memcmp(mask, d.mask + (size_t)r * L, sizeof mask));
        ans_soft_targets(g_vocab, s, tgt);
        CHECK(!memcmp(tgt, d.tgt + (size_t)r * 5, sizeof tgt));
    }
    int once = 1;
    for (int i = 0; i < NS; i++) once &= seen[i] == 1;
    CHECK(once);
    CHECK(flips > 0 && flips < d.nb * 4);
    /* The hand-checked case: "is the square left of the circle?" flipped asks "right". */
    int32_t a[8], b2[8];
    float m[8];
    tok_encode(g_tok, "is the square right of the circle?", 8, a, m);
    tok_encode(g_tok, "is the square left of the circle?", 8, b2, m);
    loader_swap_left_right_ids(g_tok, b2, 8);
    CHECK(!memcmp(a, b2, sizeof a));
    tok_encode(g_tok, "is the leftover circle red?", 8, a, m);
    memcpy(b2, a, sizeof a);
    loader_swap_left_right_ids(g_tok, b2, 8); /* "left" "##over" is one word: kept */
    CHECK(!memcmp(a, b2, sizeof a));
    dump_free(&d);
}

static void bad_images_counted_zeroed_and_reported_once(void) {
    VqaDataset ds = dataset();
    char empty[128], missing[128];
    snprintf(empty, sizeof empty, DIR "/empty.jpg");
    FILE *f = fopen(empty, "wb");
    fclose(f);
    snprintf(missing, sizeof missing, DIR "/missing.jpg");
    remove(missing);
    /* Samples 0, 9, 18 use image 0 and 1, 10, 19 image 1: make those bad. */
    for (int i = 0; i < NS; i++) {
        if (i % NI == 0) g_samples[i].image_path = empty;
        if (i % NI == 1) g_samples[i].image_path = missing;
    }
    LoaderOpts o = opts(3);
    Loader *l;
    Err e;
    CHECK(loader_open(&l, &o, &ds, g_tok, g_vocab, &e) == 0);
    Batch *b;
    int rc, bad_rows = 0, zero_ok = 1;
    while ((rc = loader_next(l, &b, &e)) == 1) {
        const uint8_t *bad = loader_batch_bad(l, b);
        for (int j = 0; j < b->size; j++) {
            int64_t i = b->sample_index[j];
            int want = (i % NI) <= 1;
            CHECK(bad[j] == want);
            bad_rows += bad[j];
            if (bad[j])
                for (int p = 0; p < 3 * 16 * 16; p++) zero_ok &= b->images[(size_t)j * 768 + p] == 0.0f;
        }
        loader_release(l, b);
    }
    CHECK(rc == 0);
    CHECK(zero_ok);
    LoaderStats st = loader_stats(l);
    CHECK(st.bad_images == bad_rows);
    CHECK(bad_rows >= 6);
    CHECK(st.bad_distinct == 2);
    CHECK(st.images_decoded == 24);
    char msg[1024];
    int n_reports = 0, saw_empty = 0, saw_missing = 0;
    while (loader_pop_bad_report(l, msg, sizeof msg)) {
        n_reports++;
        saw_empty |= strstr(msg, empty) != NULL && strstr(msg, "0 bytes") != NULL;
        saw_missing |= strstr(msg, missing) != NULL;
    }
    CHECK(n_reports == 2 && saw_empty && saw_missing);
    loader_close(l);

    /* Threshold: 0.1 of 24 rows allows 2 bad rows; the third one handed out is fatal, and
     * the error lists the bad images handed out so far (at least one of the two). */
    o.max_bad_fraction = 0.1;
    CHECK(loader_open(&l, &o, &ds, g_tok, g_vocab, &e) == 0);
    while ((rc = loader_next(l, &b, &e)) == 1) loader_release(l, b);
    CHECK(rc == -1);
    CHECK_STR_CONTAINS(e.msg, "max_bad_fraction");
    CHECK(strstr(e.msg, empty) || strstr(e.msg, missing));
    CHECK_STR_CONTAINS(e.msg, "0.1");
    loader_close(l);
    for (int i = 0; i < NS; i++) g_samples[i].image_path = g_paths[i % NI];
}

static void prepared_raw_and_jpeg_match_decoding(void) {
    VqaDataset ds = dataset();
    LoaderOpts o = opts(2);
    Err e;
    PrepOpts po = {16, 8, IMG_RESIZE_SHORTER_CROP, 0, 2};
    PrepStats ps;
    CHECK(prep_write(DIR "/raw.vqaprep", &ds, g_tok, g_vocab, &po, NULL, NULL, &ps, &e) == 0);
    CHECK(ps.n_samples == NS && ps.n_images == NI && ps.bad_images == 0);
    po.jpeg_quality = 95;
    CHECK(prep_write(DIR "/jpg.vqaprep", &ds, g_tok, g_vocab, &po, NULL, NULL, &ps, &e) == 0);
    Dump d[3];
    const char *files[3] = {NULL, DIR "/raw.vqaprep", DIR "/jpg.vqaprep"};
    for (int t = 0; t < 3; t++) {
        LoaderOpts ot = o;
        ot.prepared = files[t];
        Loader *l;
        CHECK(loader_open(&l, &ot, t ? NULL : &ds, g_tok, g_vocab, &e) == 0);
        CHECK(loader_start_epoch(l, 1, 0, &e) == 0);
        CHECK(run_epoch(l, &d[t], &o) == 0);
        loader_close(l);
    }
    CHECK(dump_equal(&d[0], &d[1], &o)); /* raw pixels: identical */
    size_t n = (size_t)d[0].nb * 4 * 3 * 16 * 16;
    double sum = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        double dd = fabs(d[0].img[i] - d[2].img[i]);
        sum += dd;
        if (dd > mx) mx = dd;
    }
    /* JPEG q95 of a 16x16 image with sharp 4-px checkers: small mean error in normalized
     * units (1 level = 1/255/0.225 = 0.017). */
    CHECK_MSG(sum / n < 0.1, "mean abs diff %g (max %g)", sum / n, mx);
    CHECK(!memcmp(d[0].tok, d[2].tok, sizeof(int32_t) * d[0].nb * 4 * 8));
    CHECK(!memcmp(d[0].tgt, d[2].tgt, sizeof(float) * d[0].nb * 4 * 5));
    CHECK(!memcmp(d[0].qid, d[2].qid, sizeof(int64_t) * d[0].nb * 4));
    for (int t = 0; t < 3; t++) dump_free(&d[t]);

    /* Augmentation still applies on the prepared path, and is thread-count independent. */
    Dump a[2];
    for (int t = 0; t < 2; t++) {
        LoaderOpts ot = o;
        ot.prepared = files[1];
        ot.workers = t ? 3 : 1;
        ot.augment = (ImgAugment){1, 1, 0.2f};
        Loader *l;
        CHECK(loader_open(&l, &ot, NULL, g_tok, g_vocab, &e) == 0);
        CHECK(run_epoch(l, &a[t], &ot) == 0);
        loader_close(l);
    }
    CHECK(dump_equal(&a[0], &a[1], &o));
    dump_free(&a[0]);
    dump_free(&a[1]);

    /* Mismatched settings are named. */
    LoaderOpts bad = o;
    bad.prepared = files[1];
    bad.image_size = 32;
    Loader *l;
    CHECK(loader_open(&l, &bad, NULL, g_tok, g_vocab, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "image_size 16");
}

static void resume_from_a_position_continues_the_epoch(void) {
    VqaDataset ds = dataset();
    LoaderOpts o = opts(2);
    o.augment = (ImgAugment){1, 1, 0};
    Loader *l;
    Err e;
    Dump full, tail;
    CHECK(loader_open(&l, &o, &ds, g_tok, g_vocab, &e) == 0);
    CHECK(loader_start_epoch(l, 4, 0, &e) == 0);
    CHECK(run_epoch(l, &full, &o) == 0);
    CHECK(loader_position(l) == 24);
    /* Restart mid-epoch (while nothing is borrowed) at position 8 = after 2 batches. */
    CHECK(loader_start_epoch(l, 4, 8, &e) == 0);
    CHECK(run_epoch(l, &tail, &o) == 0);
    CHECK(tail.nb == full.nb - 2);
    CHECK(!memcmp(tail.img, full.img + 2 * 4 * 768, sizeof(float) * (size_t)tail.nb * 4 * 768));
    CHECK(!memcmp(tail.qid, full.qid + 8, sizeof(int64_t) * (size_t)tail.nb * 4));
    CHECK(loader_start_epoch(l, 4, 6, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "resume position 6");
    loader_close(l);
    dump_free(&full);
    dump_free(&tail);
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

static void prepared_header_is_validated(void) {
    VqaDataset ds = dataset();
    Err e;
    PrepOpts po = {16, 8, IMG_RESIZE_DIRECT, 0, 1};
    const char *good = DIR "/v.vqaprep", *bad = DIR "/bad.vqaprep";
    CHECK(prep_write(good, &ds, g_tok, g_vocab, &po, NULL, NULL, NULL, &e) == 0);
    size_t n = 0;
    uint8_t *b = (uint8_t *)test_read_file(good, &n);
    CHECK(b != NULL && n > 0);
    if (!b || n == 0) return;
    PrepFile *p;
    CHECK(prep_open(&p, good, &e) == 0);
    CHECK(prep_header(p)->n_images == NI);
    CHECK(!strcmp(prep_answer(p, 1), "blue"));
    prep_close(p);

    uint8_t *c = malloc(n);
    PrepHeader *h = (PrepHeader *)c;
    memcpy(c, b, n); c[0] = 'X';
    write_file(bad, c, n);
    CHECK(prep_open(&p, bad, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, bad);
    CHECK_STR_CONTAINS(e.msg, "magic");
    memcpy(c, b, n); h->version = 99;
    write_file(bad, c, n);
    CHECK(prep_open(&p, bad, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "version 99");
    write_file(bad, b, n - 100); /* truncated: the last section no longer fits */
    CHECK(prep_open(&p, bad, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "does not fit");
    memcpy(c, b, n); h->n_samples = 1ull << 40; /* huge count: sections no longer match */
    write_file(bad, c, n);
    CHECK(prep_open(&p, bad, &e) == -1);
    memcpy(c, b, n); h->sec[PREP_SEC_TOKENS][0] = (uint64_t)n + 64;
    write_file(bad, c, n);
    CHECK(prep_open(&p, bad, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "tokens");
    memcpy(c, b, n); /* an image index past the end */
    ((int32_t *)(c + h->sec[PREP_SEC_SAMPLE_IMG][0]))[3] = NI;
    write_file(bad, c, n);
    CHECK(prep_open(&p, bad, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "sample_image[3]");
    memcpy(c, b, n); /* a target class past the vocabulary */
    ((PrepPair *)(c + h->sec[PREP_SEC_TARGETS][0]))[2].cls = 5;
    write_file(bad, c, n);
    CHECK(prep_open(&p, bad, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "targets[0]");
    write_file(bad, b, 100);
    CHECK(prep_open(&p, bad, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "too small");
    free(c);
    free(b);
    remove(bad);
}

int main(void) {
    if (setup() != 0) return 1;
    RUN(same_batches_with_1_and_3_workers);
    RUN(rows_are_the_image_text_and_answer_functions);
    RUN(bad_images_counted_zeroed_and_reported_once);
    RUN(prepared_raw_and_jpeg_match_decoding);
    RUN(resume_from_a_position_continues_the_epoch);
    RUN(prepared_header_is_validated);
    tok_free(g_tok);
    ans_vocab_free(g_vocab);
    return test_summary();
}
