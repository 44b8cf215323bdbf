/* synth.c: scenes, template questions, noisy annotators and the VQA v2 files of the
 * synthetic dataset (see synth.h). */
#include "data/synth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb_image_write.h>

#include "util/log.h"
#include "util/rng.h"

static const char *const color_names[SYNTH_N_COLORS] = {"red", "green", "blue", "yellow", "purple", "cyan"};
static const uint8_t palette[SYNTH_N_COLORS][3] = {
    {220, 40, 40}, {40, 180, 60}, {50, 90, 230}, {235, 215, 40}, {160, 60, 200}, {40, 210, 220}};
static const uint8_t background[3] = {32, 32, 32};
static const char *const shape_names[SYNTH_N_SHAPES] = {"circle", "square", "triangle"};
static const char *const shape_plural[SYNTH_N_SHAPES] = {"circles", "squares", "triangles"};

const char *synth_color_name(int c) { return c >= 0 && c < SYNTH_N_COLORS ? color_names[c] : "?"; }
const char *synth_shape_name(int s) { return s >= 0 && s < SYNTH_N_SHAPES ? shape_names[s] : "?"; }
void synth_color_rgb(int c, uint8_t rgb[3]) { memcpy(rgb, palette[c], 3); }
void synth_background_rgb(uint8_t rgb[3]) { memcpy(rgb, background, 3); }

/* ------------------------------------------------------------------ scenes */

void synth_scene(uint64_t seed, int size, int min_objects, int max_objects, int min_radius, int max_radius,
                 SynthScene *s) {
    Rng r = {seed};
    memset(s, 0, sizeof *s);
    s->size = size;
    int want = rng_range(&r, min_objects, max_objects);
    int rmin = min_radius, rmax = max_radius;
    if (rmin < 2) rmin = 2;
    if (rmax < rmin) rmax = rmin;
    for (int tries = 0; s->n < want && tries < 400; tries++) {
        SynthObject o;
        o.r = rng_range(&r, rmin, rmax);
        o.cx = rng_range(&r, o.r + 1, size - o.r - 2);
        o.cy = rng_range(&r, o.r + 1, size - o.r - 2);
        o.shape = rng_range(&r, 0, SYNTH_N_SHAPES - 1);
        o.color = rng_range(&r, 0, SYNTH_N_COLORS - 1);
        int ok = 1;
        for (int i = 0; i < s->n && ok; i++) {
            int dx = o.cx - s->o[i].cx, dy = o.cy - s->o[i].cy, m = o.r + s->o[i].r + 3;
            if (dx * dx + dy * dy < m * m) ok = 0;
        }
        if (ok) s->o[s->n++] = o;
    }
}

static int inside(const SynthObject *o, int x, int y) {
    int dx = x - o->cx, dy = y - o->cy, r = o->r;
    switch (o->shape) {
    case 0: return dx * dx + dy * dy <= r * r;
    case 1: return abs(dx) * 10 <= r * 8 && abs(dy) * 10 <= r * 8;
    default: {
        /* Upward triangle: apex (cx, cy - r), base at cy + r, half-width growing to r. */
        if (dy < -r || dy > r) return 0;
        return abs(dx) * 2 * r <= (dy + r) * r;
    }
    }
}

void synth_render(const SynthScene *s, uint8_t *px) {
    const int S = s->size;
    for (int i = 0; i < S * S; i++) memcpy(px + 3 * i, background, 3);
    for (int k = 0; k < s->n; k++) {
        const SynthObject *o = &s->o[k];
        for (int y = o->cy - o->r; y <= o->cy + o->r; y++)
            for (int x = o->cx - o->r; x <= o->cx + o->r; x++)
                if (x >= 0 && y >= 0 && x < S && y < S && inside(o, x, y))
                    memcpy(px + 3 * ((size_t)y * S + x), palette[o->color], 3);
    }
}

/* ------------------------------------------------------------------ questions */

static int count_shape(const SynthScene *s, int shape) {
    int c = 0;
    for (int i = 0; i < s->n; i++) c += s->o[i].shape == shape;
    return c;
}
static int count_color(const SynthScene *s, int color) {
    int c = 0;
    for (int i = 0; i < s->n; i++) c += s->o[i].color == color;
    return c;
}
static int count_both(const SynthScene *s, int color, int shape) {
    int c = 0;
    for (int i = 0; i < s->n; i++) c += s->o[i].color == color && s->o[i].shape == shape;
    return c;
}

/* A plausible wrong answer of the same kind. */
static void wrong_answer(Rng *r, const SynthQA *q, char *out, size_t cap) {
    const char *a = q->answer;
    if (!strcmp(q->answer_type, "yes/no")) {
        snprintf(out, cap, "%s", !strcmp(a, "yes") ? "no" : "yes");
    } else if (!strcmp(q->answer_type, "number")) {
        int v = atoi(a);
        v = (v == 0 || rng_range(r, 0, 1)) ? v + 1 : v - 1;
        snprintf(out, cap, "%d", v);
    } else {
        for (int c = 0; c < SYNTH_N_COLORS; c++)
            if (!strcmp(a, color_names[c])) {
                int w = (c + rng_range(r, 1, SYNTH_N_COLORS - 1)) % SYNTH_N_COLORS;
                snprintf(out, cap, "%s", color_names[w]);
                return;
            }
        for (int k = 0; k < SYNTH_N_SHAPES; k++)
            if (!strcmp(a, shape_names[k])) {
                int w = (k + rng_range(r, 1, SYNTH_N_SHAPES - 1)) % SYNTH_N_SHAPES;
                snprintf(out, cap, "%s", shape_names[w]);
                return;
            }
        snprintf(out, cap, "%s", a);
    }
}

static void annotate(Rng *r, SynthQA *q) {
    double p_wrong = 0.25 * rng_unit(r);
    for (int k = 0; k < 10; k++) {
        if (rng_unit(r) < p_wrong) wrong_answer(r, q, q->answers[k], sizeof q->answers[k]);
        else snprintf(q->answers[k], sizeof q->answers[k], "%s", q->answer);
    }
    int best = -1, best_n = 0;
    for (int k = 0; k < 10; k++) {
        int c = 0;
        for (int m = 0; m < 10; m++) c += !strcmp(q->answers[k], q->answers[m]);
        int is_true = !strcmp(q->answers[k], q->answer);
        if (c > best_n || (c == best_n && is_true)) { best = k; best_n = c; }
    }
    snprintf(q->mc_answer, sizeof q->mc_answer, "%s", q->answers[best]);
}

/* Tries one question of kind `kind`; 1 if made. */
static int make_question(const SynthScene *s, Rng *r, int kind, SynthQA *q) {
    memset(q, 0, sizeof *q);
    switch (kind) {
    case 0: { /* colour of the unique object of a shape */
        int sh = rng_range(r, 0, SYNTH_N_SHAPES - 1);
        for (int t = 0; t < SYNTH_N_SHAPES; t++, sh = (sh + 1) % SYNTH_N_SHAPES) {
            if (count_shape(s, sh) != 1) continue;
            for (int i = 0; i < s->n; i++)
                if (s->o[i].shape == sh) snprintf(q->answer, sizeof q->answer, "%s", color_names[s->o[i].color]);
            snprintf(q->question, sizeof q->question, "what color is the %s?", shape_names[sh]);
            q->question_type = "what color is the";
            q->answer_type = "other";
            return 1;
        }
        return 0;
    }
    case 1: { /* shape of the unique object of a colour */
        int c = rng_range(r, 0, SYNTH_N_COLORS - 1);
        for (int t = 0; t < SYNTH_N_COLORS; t++, c = (c + 1) % SYNTH_N_COLORS) {
            if (count_color(s, c) != 1) continue;
            for (int i = 0; i < s->n; i++)
                if (s->o[i].color == c) snprintf(q->answer, sizeof q->answer, "%s", shape_names[s->o[i].shape]);
            snprintf(q->question, sizeof q->question, "what shape is the %s object?", color_names[c]);
            q->question_type = "what shape is the";
            q->answer_type = "other";
            return 1;
        }
        return 0;
    }
    case 2: { /* count */
        q->question_type = "how many";
        q->answer_type = "number";
        if (rng_range(r, 0, 1)) {
            int sh = rng_range(r, 0, SYNTH_N_SHAPES - 1);
            snprintf(q->question, sizeof q->question, "how many %s are there?", shape_plural[sh]);
            snprintf(q->answer, sizeof q->answer, "%d", count_shape(s, sh));
        } else {
            int c = s->o[rng_range(r, 0, s->n - 1)].color; /* a colour that is there: counts >= 1 */
            snprintf(q->question, sizeof q->question, "how many %s shapes are there?", color_names[c]);
            snprintf(q->answer, sizeof q->answer, "%d", count_color(s, c));
        }
        return 1;
    }
    case 3: { /* existence, balanced */
        int c, sh;
        if (rng_range(r, 0, 1)) {
            const SynthObject *o = &s->o[rng_range(r, 0, s->n - 1)];
            c = o->color;
            sh = o->shape;
        } else {
            int t = 0;
            do {
                c = rng_range(r, 0, SYNTH_N_COLORS - 1);
                sh = rng_range(r, 0, SYNTH_N_SHAPES - 1);
            } while (count_both(s, c, sh) && ++t < 50);
        }
        snprintf(q->question, sizeof q->question, "is there a %s %s?", color_names[c], shape_names[sh]);
        snprintf(q->answer, sizeof q->answer, "%s", count_both(s, c, sh) ? "yes" : "no");
        q->question_type = "is there a";
        q->answer_type = "yes/no";
        return 1;
    }
    default: { /* relative position of two objects unique by colour + shape */
        int cand[SYNTH_MAX_OBJECTS * SYNTH_MAX_OBJECTS][2], nc = 0;
        for (int i = 0; i < s->n; i++)
            for (int j = 0; j < s->n; j++) {
                const SynthObject *a = &s->o[i], *b = &s->o[j];
                if (i == j || count_both(s, a->color, a->shape) != 1 || count_both(s, b->color, b->shape) != 1)
                    continue;
                if (abs(a->cx - b->cx) * 6 < s->size) continue;
                cand[nc][0] = i;
                cand[nc][1] = j;
                nc++;
            }
        if (!nc) return 0;
        int k = rng_range(r, 0, nc - 1);
        const SynthObject *a = &s->o[cand[k][0]], *b = &s->o[cand[k][1]];
        int ask_left = rng_range(r, 0, 1);
        snprintf(q->question, sizeof q->question, "is the %s %s %s of the %s %s?", color_names[a->color],
                 shape_names[a->shape], ask_left ? "left" : "right", color_names[b->color], shape_names[b->shape]);
        int is_left = a->cx < b->cx;
        snprintf(q->answer, sizeof q->answer, "%s", is_left == ask_left ? "yes" : "no");
        q->question_type = "is the";
        q->answer_type = "yes/no";
        return 1;
    }
    }
}

int synth_questions(const SynthScene *s, uint64_t seed, SynthQA *out, int max) {
    /* Mix (before skips): colour .25, shape .2, count .15, existence .25, position .15. */
    static const double cum[5] = {0.25, 0.45, 0.60, 0.85, 1.0};
    Rng r = {seed};
    int want = rng_range(&r, 3, 5);
    if (want > max) want = max;
    int n = 0;
    for (int tries = 0; n < want && tries < 40; tries++) {
        double u = rng_unit(&r);
        int kind = 0;
        while (kind < 4 && u >= cum[kind]) kind++;
        if (!make_question(s, &r, kind, &out[n])) continue;
        int dup = 0;
        for (int i = 0; i < n; i++) dup |= !strcmp(out[i].question, out[n].question);
        if (dup) continue;
        annotate(&r, &out[n]);
        n++;
    }
    return n;
}

/* ------------------------------------------------------------------ files */

static int mkdir_p(const char *path, Err *err) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return err_errno(err, "cannot create %s", tmp);
            *p = '/';
        }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return err_errno(err, "cannot create %s", tmp);
    return 0;
}

static uint64_t split_seed(uint64_t seed, int split, int64_t image) {
    Rng r = {seed ^ (0xA24BAED4963EE407ull * (uint64_t)(split + 1))};
    rng_next(&r);
    r.s ^= (uint64_t)image * 0x9FB21C651E98DF25ull;
    return rng_next(&r);
}

static void json_header(FILE *f, const char *subtype) {
    fprintf(f, "{\"info\": {\"description\": \"vqa_synth: synthetic shapes dataset in VQA v2 format\", "
               "\"version\": \"1.0\", \"year\": 2026}, \"license\": {\"name\": \"public domain\", "
               "\"url\": \"\"}, \"data_subtype\": \"%s\", ", subtype);
}

static int write_split(const SynthOpts *o, int split, int64_t n_questions, SynthStats *st, Err *err) {
    const char *name = split == 0 ? "train" : "val";
    char subtype[32], dir[4096], qpath[4096], apath[4096], ipath[4200];
    snprintf(subtype, sizeof subtype, "synth_%s", name);
    snprintf(dir, sizeof dir, "%s/images/%s", o->out_dir, name);
    if (mkdir_p(dir, err) != 0) return -1;
    snprintf(qpath, sizeof qpath, "%s/%s_questions.json", o->out_dir, name);
    snprintf(apath, sizeof apath, "%s/%s_annotations.json", o->out_dir, name);
    FILE *qf = fopen(qpath, "w"), *af = fopen(apath, "w");
    if (!qf || !af) {
        err_errno(err, "cannot create %s", !qf ? qpath : apath);
        if (qf) fclose(qf);
        if (af) fclose(af);
        return -1;
    }
    json_header(qf, subtype);
    fprintf(qf, "\"task_type\": \"Open-Ended\", \"data_type\": \"mscoco\", \"questions\": [");
    json_header(af, subtype);
    fprintf(af, "\"annotations\": [");
    const int S = o->size;
    uint8_t *px = malloc((size_t)S * S * 3);
    if (!px) {
        fclose(qf);
        fclose(af);
        return err_set(err, "out of memory");
    }
    int64_t done = 0, image = 0, answer_id = 1;
    int64_t id0 = split == 0 ? 1 : 1000001;
    int rc = 0;
    while (done < n_questions) {
        uint64_t seed = split_seed(o->seed, split, image);
        SynthScene sc;
        synth_scene(seed, S, o->min_objects, o->max_objects, o->min_radius, o->max_radius, &sc);
        SynthQA qa[5];
        int nq = synth_questions(&sc, seed ^ 0x5bd1e995ull, qa, 5);
        if (nq > n_questions - done) nq = (int)(n_questions - done);
        int64_t image_id = id0 + image;
        image++;
        if (nq == 0) continue;
        synth_render(&sc, px);
        snprintf(ipath, sizeof ipath, "%s/COCO_%s_%012lld.png", dir, subtype, (long long)image_id);
        if (!stbi_write_png(ipath, S, S, 3, px, S * 3)) {
            rc = err_set(err, "cannot write %s", ipath);
            break;
        }
        st->images++;
        for (int k = 0; k < nq; k++) {
            int64_t qid = image_id * 10 + k;
            const char *sep = done ? ", " : "";
            fprintf(qf, "%s{\"image_id\": %lld, \"question\": \"%s\", \"question_id\": %lld}", sep,
                    (long long)image_id, qa[k].question, (long long)qid);
            fprintf(af, "%s{\"question_type\": \"%s\", \"multiple_choice_answer\": \"%s\", \"answers\": [",
                    sep, qa[k].question_type, qa[k].mc_answer);
            for (int m = 0; m < 10; m++) {
                const char *conf = strcmp(qa[k].answers[m], qa[k].answer) ? (m % 2 ? "maybe" : "no")
                                                                         : (m % 4 == 3 ? "maybe" : "yes");
                fprintf(af, "%s{\"answer\": \"%s\", \"answer_confidence\": \"%s\", \"answer_id\": %d}",
                        m ? ", " : "", qa[k].answers[m], conf, m + 1);
            }
            fprintf(af, "], \"image_id\": %lld, \"answer_type\": \"%s\", \"question_id\": %lld}",
                    (long long)image_id, qa[k].answer_type, (long long)qid);
            done++;
            answer_id++;
        }
    }
    free(px);
    fprintf(qf, "]}\n");
    fprintf(af, "]}\n");
    int e1 = ferror(qf) | fclose(qf), e2 = ferror(af) | fclose(af);
    if (!rc && (e1 || e2)) rc = err_errno(err, "write failed: %s", e1 ? qpath : apath);
    st->questions += done;
    return rc;
}

/* Every word and punctuation mark the templates can produce, plus the answers. */
static const char *const vocab_words[] = {
    "?", "0", "1", "2", "3", "4", "5", "6", "7", "a", "are", "blue", "circle", "circles", "color",
    "cyan", "green", "how", "is", "left", "many", "no", "object", "of", "purple", "red", "right",
    "shape", "shapes", "square", "squares", "the", "there", "triangle", "triangles", "what",
    "yellow", "yes"};

static int write_vocab(const char *dir, Err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f) return err_errno(err, "cannot create %s", path);
    fprintf(f, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    for (size_t i = 0; i < sizeof vocab_words / sizeof *vocab_words; i++) fprintf(f, "%s\n", vocab_words[i]);
    if (fclose(f) != 0) return err_errno(err, "cannot write %s", path);
    return 0;
}

int synth_write(const SynthOpts *opts, SynthStats *st, Err *err) {
    SynthOpts oo = *opts, *o = &oo;
    if (!o->min_objects && !o->max_objects) {
        o->min_objects = 2;
        o->max_objects = SYNTH_MAX_OBJECTS;
    }
    if (o->min_objects < 1 || o->max_objects > SYNTH_MAX_OBJECTS || o->min_objects > o->max_objects)
        return err_set(err, "vqa_synth: objects per scene %d..%d (need 1 <= min <= max <= %d)", o->min_objects,
                       o->max_objects, SYNTH_MAX_OBJECTS);
    if (!o->min_radius && !o->max_radius) {
        o->min_radius = o->size * 6 / 64 < 2 ? 2 : o->size * 6 / 64;
        o->max_radius = o->size * 9 / 64 < o->min_radius ? o->min_radius : o->size * 9 / 64;
    }
    if (o->min_radius < 2 || o->min_radius > o->max_radius || 4 * o->max_radius > o->size)
        return err_set(err, "vqa_synth: object radius %d..%d pixels (need 2 <= min <= max <= size/4 = %d)",
                       o->min_radius, o->max_radius, o->size / 4);
    SynthStats local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    double t0 = time_now();
    if (!o->out_dir || !*o->out_dir) return err_set(err, "vqa_synth: no output directory");
    if (o->size < 16 || o->size > 1024)
        return err_set(err, "vqa_synth: image size %d outside [16, 1024]", o->size);
    if (o->n_train < 0 || o->n_val < 0)
        return err_set(err, "vqa_synth: negative question counts (%d, %d)", o->n_train, o->n_val);
    if (mkdir_p(o->out_dir, err) != 0) return -1;
    if (write_split(o, 0, o->n_train, st, err) != 0) return -1;
    if (write_split(o, 1, o->n_val, st, err) != 0) return -1;
    if (write_vocab(o->out_dir, err) != 0) return -1;
    st->seconds = time_now() - t0;
    return 0;
}
