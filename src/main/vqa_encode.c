/* vqa_encode.c: feature extraction with the model's encoders.
 *
 *   vqa_encode CONFIG [--images LIST.txt] [--questions QUESTIONS.txt] --out FEATS.safetensors
 *              [--set KEY=VALUE]... [--batch N] [--image-root DIR] [--pooled-only]
 *
 * The config says which encoders (model.image_encoder / model.text_encoder: arch, width,
 * layers, weights, weights_prefix), the image size, the resize mode and the question length
 * (data.image_size, data.resize, data.max_question_len) and the vocabulary
 * (model.text_encoder.vocab). Images and questions go through exactly the code training
 * uses (img_decode_file + img_pipeline without augmentation, tok_encode_n, resnet_forward /
 * bert_forward in eval mode: BN with running statistics, no dropout).
 *
 * LIST.txt holds one image path per line (relative paths are relative to the working
 * directory, or to --image-root); QUESTIONS.txt one question per line. The two lists are
 * independent: N images and M questions give N image rows and M text rows (row i = line i;
 * blank lines are refused so that rows and lines never drift apart). Either list may be
 * left out; at least one is needed. Written (F32 unless said):
 *   image_pooled [N, C]          global average of the last stage (C = 2048 for resnet50)
 *   image_grid   [N, C, h, w]    the last stage before pooling (7 x 7 at 224)
 *   text_pooled  [M, H]          BERT pooler output, tanh(W h_[CLS] + b)
 *   text_seq     [M, L, H]       last hidden states (padding positions included, as HF)
 *   text_mask    [M, L]          1 = token, 0 = padding
 *   text_tokens  [M, L] (I32)    the WordPiece ids fed to the encoder
 * (--pooled-only leaves out image_grid and text_seq.) The metadata records the config hash,
 * the sizes, the weight files and the two list files. Everything is held in memory until
 * the file is written atomically. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "data/image.h"
#include "data/tokenizer.h"
#include "io/safetensors.h"
#include "model/vqa_model.h"
#include "ops/backend.h"
#include "train/setup.h"
#include "util/cli.h"
#include "util/err.h"
#include "util/file.h"
#include "util/log.h"

#define MAX_SETS 256

static void usage(FILE *f) {
    fprintf(f,
            "usage: vqa_encode CONFIG [--images LIST.txt] [--questions QUESTIONS.txt] --out FEATS.safetensors\n"
            "                  [--set KEY=VALUE]... [--batch N] [--image-root DIR] [--pooled-only]\n"
            "\n"
            "Encodes images and questions with the encoders of CONFIG (eval mode, no augmentation, the\n"
            "same preprocessing as training) and writes the features as safetensors:\n"
            "  image_pooled [N, C], image_grid [N, C, h, w]       (one row per line of --images)\n"
            "  text_pooled [M, H], text_seq [M, L, H], text_mask [M, L], text_tokens [M, L] (I32)\n"
            "                                                      (one row per line of --questions)\n"
            "\n"
            "  --images LIST.txt        one image path per line (JPEG or PNG)\n"
            "  --questions FILE.txt     one question per line\n"
            "                           (either list may be left out; N and M need not be equal)\n"
            "  --out FILE               output safetensors file (written atomically)\n"
            "  --set KEY=VALUE          override a config key, e.g. --set model.image_encoder.weights=r50.safetensors\n"
            "  --batch N                rows per forward pass (default: eval.batch_size, else train.batch_size)\n"
            "  --image-root DIR         prefix for relative paths in LIST.txt\n"
            "  --pooled-only            leave out image_grid and text_seq (much smaller files)\n");
}

typedef struct Args {
    const char *config, *images, *questions, *out, *image_root;
    char *sets[MAX_SETS];
    int nsets, batch, pooled_only;
} Args;

/* 0 = go on, 1 = help printed, -1 = usage error (printed). */
static int parse_args(int argc, char **argv, Args *a) {
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(s, "--pooled-only")) {
            a->pooled_only = 1;
            continue;
        }
        static const char *const opts[] = {"--images", "--questions", "--out", "--set", "--batch", "--image-root", NULL};
        const char *val = NULL;
        int which = cli_option_value(argc, argv, &i, opts, &val, "vqa_encode");
        if (which == -2) return -1;
        switch (which) {
        case 0: a->images = val; break;
        case 1: a->questions = val; break;
        case 2: a->out = val; break;
        case 3:
            if (a->nsets == MAX_SETS) {
                fprintf(stderr, "vqa_encode: more than %d --set options\n", MAX_SETS);
                return -1;
            }
            a->sets[a->nsets++] = (char *)val;
            break;
        case 4: {
            char *end;
            long b = strtol(val, &end, 10);
            if (*val == '\0' || *end != '\0' || b < 1 || b > 65536) {
                fprintf(stderr, "vqa_encode: --batch %s: expected an integer from 1 to 65536\n", val);
                return -1;
            }
            a->batch = (int)b;
            break;
        }
        case 5: a->image_root = val; break;
        default:
            if (s[0] == '-' && s[1] != '\0') {
                fprintf(stderr, "vqa_encode: unknown option %s (vqa_encode --help)\n", s);
                return -1;
            }
            if (a->config) {
                fprintf(stderr, "vqa_encode: two configs given (%s and %s)\n", a->config, s);
                return -1;
            }
            a->config = s;
        }
    }
    if (!a->config) {
        fprintf(stderr, "vqa_encode: no CONFIG given\n");
        usage(stderr);
        return -1;
    }
    if (!a->out) {
        fprintf(stderr, "vqa_encode: --out FEATS.safetensors is required\n");
        return -1;
    }
    if (!a->images && !a->questions) {
        fprintf(stderr, "vqa_encode: nothing to encode: give --images LIST.txt and/or --questions FILE.txt\n");
        return -1;
    }
    return 0;
}

/* ---- line lists ---- */

typedef struct Lines {
    char *buf;   /* the whole file, lines NUL-terminated in place */
    char **line; /* [n] */
    size_t *len; /* [n] bytes (a question may hold NUL bytes: tok_encode_n) */
    int n;
} Lines;

static void lines_free(Lines *l) {
    free(l->buf);
    free(l->line);
    free(l->len);
    memset(l, 0, sizeof *l);
}

/* One entry per line (\n or \r\n; the last line needs no newline). A blank line (only
 * spaces) is an error naming it: it would shift every row after it. what: "image path". */
static int lines_read(Lines *l, const char *path, const char *what, Err *e) {
    memset(l, 0, sizeof *l);
    char role[80];
    snprintf(role, sizeof role, "the %s list", what);
    size_t n;
    if (file_read_all(path, role, 0, &l->buf, &n, e) != 0) return -1;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) count += l->buf[i] == '\n';
    count += n > 0 && l->buf[n - 1] != '\n';
    l->line = malloc((count ? count : 1) * sizeof *l->line);
    l->len = malloc((count ? count : 1) * sizeof *l->len);
    if (!l->line || !l->len) return err_set(e, "%s: out of memory", path);
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && l->buf[i] != '\n') continue;
        if (i == n && start == n) break; /* no text after the last newline */
        size_t end = i;
        if (end > start && l->buf[end - 1] == '\r') end--;
        l->buf[end] = '\0';
        int blank = 1;
        for (size_t k = start; k < end; k++)
            if (l->buf[k] != ' ' && l->buf[k] != '\t') blank = 0;
        if (blank)
            return err_set(e, "%s:%d: blank line (one %s per line; rows follow line numbers)", path, l->n + 1, what);
        l->line[l->n] = l->buf + start;
        l->len[l->n] = end - start;
        l->n++;
        start = i + 1;
    }
    if (l->n == 0) return err_set(e, "%s: empty file (one %s per line)", path, what);
    return 0;
}

/* ---- encoding ---- */

typedef struct Enc {
    const Config *cfg;
    const Args *args;
    const Backend *be;
    VqaModel model;
    Tokenizer *tok;
    Arena arena;
    Log log;
    int batch;
} Enc;

static void image_path(const Enc *en, const char *line, char *buf, size_t cap) {
    if (en->args->image_root && line[0] != '/')
        snprintf(buf, cap, "%s/%s", en->args->image_root, line);
    else
        snprintf(buf, cap, "%s", line);
}

/* Fails early (before any forward pass) on the first image that is not a readable file. */
static int images_check(const Enc *en, const Lines *im, Err *e) {
    char p[4200];
    for (int i = 0; i < im->n; i++) {
        image_path(en, im->line[i], p, sizeof p);
        struct stat st;
        if (stat(p, &st) != 0)
            return err_set(e, "%s:%d: %s: %s", en->args->images, i + 1, p, strerror(errno));
        if (!S_ISREG(st.st_mode)) return err_set(e, "%s:%d: %s: not a regular file", en->args->images, i + 1, p);
    }
    return 0;
}

static void progress(const Enc *en, const char *what, int done, int total, double t0, double *last) {
    double now = time_now();
    if (done < total && now - *last < 2.0) return;
    *last = now;
    double dt = now - t0;
    log_info(&en->log, "encode: %s %d/%d (%.1f%%, %.1f per s)", what, done, total, 100.0 * done / total,
             dt > 0 ? done / dt : 0.0);
}

/* pooled [N, C]; grid [N, C, gh, gw] (NULL with --pooled-only). */
static int encode_images(Enc *en, const Lines *im, float *pooled, float **grid_out, int *gh, int *gw, Err *e) {
    const Backend *be = en->be;
    Resnet *r = &en->model.image;
    int S = en->cfg->data.image_size, C = r->out_channels, B = en->batch;
    ImgResizeMode mode = en->cfg->data.resize == CFG_RESIZE_DIRECT ? IMG_RESIZE_DIRECT : IMG_RESIZE_SHORTER_CROP;
    resnet_grid_size(r, S, S, gh, gw);
    size_t cells = (size_t)*gh * *gw, px = (size_t)3 * S * S;
    float *grid = NULL;
    if (!en->args->pooled_only && !(grid = malloc(sizeof(float) * im->n * C * cells)))
        return err_set(e, "out of memory: image_grid needs %.1f MiB (use --pooled-only)",
                       (double)im->n * C * cells * 4 / 1048576.0);
    *grid_out = grid;
    float *x = malloc(sizeof(float) * px * B);
    uint8_t *resized = malloc((size_t)S * S * 3);
    void *scratch = NULL;
    size_t scratch_cap = 0;
    if (!x || !resized) {
        free(x);
        free(resized);
        return err_set(e, "out of memory: input batch of %d images of %dx%d", B, S, S);
    }
    int rc = -1;
    char p[4200];
    double t0 = time_now(), last = t0;
    for (int i0 = 0; i0 < im->n; i0 += B) {
        int nb = im->n - i0 < B ? im->n - i0 : B;
        for (int j = 0; j < nb; j++) {
            int i = i0 + j;
            image_path(en, im->line[i], p, sizeof p);
            Image img;
            if (img_decode_file(&img, p, e) != 0) {
                err_prefix(e, "%s:%d", en->args->images, i + 1);
                goto done;
            }
            size_t need = img_pipeline_scratch_size(img.w, img.h, S);
            if (need > scratch_cap) {
                free(scratch);
                scratch_cap = need;
                scratch = malloc(need);
            }
            int bad = !scratch || img_pipeline(img.px, img.w, img.h, S, mode, NULL, scratch, resized, x + px * j) != 0;
            img_free(&img);
            if (bad) {
                err_set(e, "%s:%d: %s: out of memory resizing to %dx%d", en->args->images, i + 1, p, S, S);
                goto done;
            }
        }
        arena_reset(&en->arena);
        if (resnet_forward(r, be, x, nb, S, S, 0, &en->arena, e) != 0) {
            err_prefix(e, "image rows %d..%d", i0, i0 + nb - 1);
            goto done;
        }
        be->copy_d2h(be, pooled + (size_t)i0 * C, r->pooled, sizeof(float) * nb * C);
        if (grid) be->copy_d2h(be, grid + (size_t)i0 * C * cells, r->grid, sizeof(float) * nb * C * cells);
        progress(en, "images", i0 + nb, im->n, t0, &last);
    }
    rc = 0;
done:
    free(x);
    free(resized);
    free(scratch);
    return rc;
}

static int encode_questions(Enc *en, const Lines *q, float *pooled, float *seq, float *mask, int32_t *tokens, Err *e) {
    const Backend *be = en->be;
    Bert *t = &en->model.text;
    int L = en->cfg->data.max_question_len, H = t->cfg.hidden, B = en->batch;
    for (int i = 0; i < q->n; i++)
        if (tok_encode_n(en->tok, q->line[i], q->len[i], L, tokens + (size_t)i * L, mask + (size_t)i * L) < 0)
            return err_set(e, "%s:%d: tokenization failed (out of memory)", en->args->questions, i + 1);
    double t0 = time_now(), last = t0;
    for (int i0 = 0; i0 < q->n; i0 += B) {
        int nb = q->n - i0 < B ? q->n - i0 : B;
        arena_reset(&en->arena);
        if (bert_forward(t, be, tokens + (size_t)i0 * L, NULL, mask + (size_t)i0 * L, nb, L, 0, 0, &en->arena, e) != 0)
            return err_prefix(e, "%s: lines %d..%d", en->args->questions, i0 + 1, i0 + nb);
        be->copy_d2h(be, pooled + (size_t)i0 * H, t->pooled, sizeof(float) * nb * H);
        if (seq) be->copy_d2h(be, seq + (size_t)i0 * L * H, t->sequence, sizeof(float) * nb * L * H);
        progress(en, "questions", i0 + nb, q->n, t0, &last);
    }
    return 0;
}

static void describe_encoders(const Config *cfg, char *img, size_t ni, char *txt, size_t nt) {
    const __typeof__(cfg->model.image_encoder) *ie = &cfg->model.image_encoder;
    const __typeof__(cfg->model.text_encoder) *te = &cfg->model.text_encoder;
    snprintf(img, ni, "resnet%d width %g, weights %s", cfg_arch_depth(ie->arch), ie->width,
             ie->weights ? ie->weights : "none (random init)");
    snprintf(txt, nt, "bert %dL-%dH (%d heads, ffn %d), weights %s", te->layers, te->hidden, te->heads, te->ffn,
             te->weights ? te->weights : "none (random init)");
}

/* The feature buffers run fills; the writer references them until it saves, so they live
 * in run's frame and feats_free releases them after. */
typedef struct Feats {
    float *img_pooled, *img_grid; /* [N, C], [N, C, gh, gw] (grid NULL with --pooled-only) */
    float *txt_pooled, *txt_seq;  /* [M, H], [M, L, H] (seq NULL with --pooled-only) */
    float *txt_mask;              /* [M, L] */
    int32_t *txt_tokens;          /* [M, L] */
} Feats;

static void feats_free(Feats *f) {
    free(f->img_pooled);
    free(f->img_grid);
    free(f->txt_pooled);
    free(f->txt_seq);
    free(f->txt_mask);
    free(f->txt_tokens);
}

/* Tokenizer, then the model as training builds it; only the encoders that will run load weights. */
static int model_init(Enc *en, VqaModelConfig *mc, Err *e) {
    const Config *cfg = en->cfg;
    if (!cfg->model.text_encoder.vocab) return err_set(e, "model.text_encoder.vocab is null: the vocabulary is needed");
    if (tok_load(&en->tok, cfg->model.text_encoder.vocab, e) != 0) return err_prefix(e, "model.text_encoder.vocab");
    /* the classifier head is built (same start-up as training) but never run: its size
     * only has to agree with model.num_answers */
    int n_answers = cfg->model.num_answers > 0 ? cfg->model.num_answers : 1;
    if (setup_model_config(cfg, n_answers, tok_vocab_size(en->tok), tok_pad_id(en->tok), mc, e) != 0) return -1;
    /* only the encoders that run need weights */
    if (!en->args->images) mc->image_weights[0] = '\0';
    if (!en->args->questions) mc->text_weights[0] = '\0';
    return vqa_model_init(&en->model, mc, en->be, e);
}

/* Says which encoders run on what, and warns when their features come from random weights. */
static void log_encoders(const Enc *en, const Lines *im, const Lines *q, const char *dimg, const char *dtxt) {
    const Config *cfg = en->cfg;
    const Args *a = en->args;
    if (a->images) {
        log_info(&en->log, "image encoder: %s; %d images (%s), %dx%d %s", dimg, im->n, a->images, cfg->data.image_size,
                 cfg->data.image_size, cfg_enum_name(cfg, "data.resize"));
        if (!cfg->model.image_encoder.weights)
            log_warn(&en->log, "model.image_encoder.weights is null: image features come from random weights");
    }
    if (a->questions) {
        log_info(&en->log, "text encoder: %s; %d questions (%s), max length %d", dtxt, q->n, a->questions,
                 cfg->data.max_question_len);
        if (!cfg->model.text_encoder.weights)
            log_warn(&en->log, "model.text_encoder.weights is null: text features come from random weights");
    }
    if (en->model.load_notes[0]) log_info(&en->log, "%s", en->model.load_notes);
}

/* image_pooled and (unless --pooled-only) image_grid, added to w. */
static int add_image_features(Enc *en, StWriter *w, const Lines *im, Feats *f, Err *e) {
    int C = en->model.image.out_channels, gh = 0, gw = 0;
    if (!(f->img_pooled = malloc(sizeof(float) * im->n * C)))
        return err_set(e, "out of memory: image_pooled [%d, %d]", im->n, C);
    if (encode_images(en, im, f->img_pooled, &f->img_grid, &gh, &gw, e) != 0) return -1;
    int64_t sp[2] = {im->n, C}, sg[4] = {im->n, C, gh, gw};
    st_writer_add(w, "image_pooled", DT_F32, 2, sp, f->img_pooled);
    if (f->img_grid) st_writer_add(w, "image_grid", DT_F32, 4, sg, f->img_grid);
    return 0;
}

/* text_pooled, text_seq (unless --pooled-only), text_mask and text_tokens, added to w. */
static int add_text_features(Enc *en, StWriter *w, const Lines *q, int H, Feats *f, Err *e) {
    int L = en->cfg->data.max_question_len, pooled_only = en->args->pooled_only;
    size_t ml = (size_t)q->n * L;
    f->txt_pooled = malloc(sizeof(float) * q->n * H);
    f->txt_mask = malloc(sizeof(float) * ml);
    f->txt_tokens = malloc(sizeof(int32_t) * ml);
    if (!pooled_only) f->txt_seq = malloc(sizeof(float) * ml * H);
    if (!f->txt_pooled || !f->txt_mask || !f->txt_tokens || (!pooled_only && !f->txt_seq))
        return err_set(e, "out of memory: text features of %d questions (use --pooled-only)", q->n);
    if (encode_questions(en, q, f->txt_pooled, f->txt_seq, f->txt_mask, f->txt_tokens, e) != 0) return -1;
    int64_t sp[2] = {q->n, H}, ss[3] = {q->n, L, H}, sm[2] = {q->n, L};
    st_writer_add(w, "text_pooled", DT_F32, 2, sp, f->txt_pooled);
    if (f->txt_seq) st_writer_add(w, "text_seq", DT_F32, 3, ss, f->txt_seq);
    st_writer_add(w, "text_mask", DT_F32, 2, sm, f->txt_mask);
    st_writer_add(w, "text_tokens", DT_I32, 2, sm, f->txt_tokens);
    return 0;
}

/* Where the features came from: config hash, sizes, list files, encoders. A failed set is
 * remembered by the writer and reported by st_writer_save. */
static void set_metadata(const Enc *en, StWriter *w, int n_images, int n_questions, const char *dimg,
                         const char *dtxt) {
    const Config *cfg = en->cfg;
    const Args *a = en->args;
    char v[64];
    st_writer_set_meta(w, "producer", "vqa_encode");
    snprintf(v, sizeof v, "%016" PRIx64, cfg_hash(cfg));
    st_writer_set_meta(w, "config_hash", v);
    st_writer_set_meta(w, "config", a->config);
    snprintf(v, sizeof v, "%d", n_images);
    st_writer_set_meta(w, "n_images", v);
    snprintf(v, sizeof v, "%d", n_questions);
    st_writer_set_meta(w, "n_questions", v);
    snprintf(v, sizeof v, "%d", cfg->data.image_size);
    st_writer_set_meta(w, "image_size", v);
    st_writer_set_meta(w, "resize", cfg_enum_name(cfg, "data.resize"));
    snprintf(v, sizeof v, "%d", cfg->data.max_question_len);
    st_writer_set_meta(w, "max_question_len", v);
    if (a->images) {
        st_writer_set_meta(w, "images", a->images);
        st_writer_set_meta(w, "image_encoder", dimg);
    }
    if (a->questions) {
        st_writer_set_meta(w, "questions", a->questions);
        st_writer_set_meta(w, "text_encoder", dtxt);
    }
}

static int run(Enc *en, Err *e) {
    const Args *a = en->args;
    Lines im = {0}, q = {0};
    Feats f = {0};
    StWriter *w = NULL;
    int rc = -1;

    if (a->images && (lines_read(&im, a->images, "image path", e) != 0 || images_check(en, &im, e) != 0)) goto done;
    if (a->questions && lines_read(&q, a->questions, "question", e) != 0) goto done;
    VqaModelConfig mc;
    if (model_init(en, &mc, e) != 0) goto done;
    char dimg[1300], dtxt[1300];
    describe_encoders(en->cfg, dimg, sizeof dimg, dtxt, sizeof dtxt);
    log_encoders(en, &im, &q, dimg, dtxt);
    w = st_writer_new();
    if (!w) {
        err_set(e, "out of memory");
        goto done;
    }
    if (a->images && add_image_features(en, w, &im, &f, e) != 0) goto done;
    if (a->questions && add_text_features(en, w, &q, mc.text.hidden, &f, e) != 0) goto done;
    set_metadata(en, w, im.n, q.n, dimg, dtxt);
    if (st_writer_save(w, a->out, e) != 0) goto done;
    log_info(&en->log, "features: %s (%d image rows, %d text rows%s)", a->out, im.n, q.n,
             a->pooled_only ? ", pooled only" : "");
    rc = 0;
done:
    st_writer_free(w);
    feats_free(&f);
    lines_free(&im);
    lines_free(&q);
    return rc;
}

int main(int argc, char **argv) {
    Args a;
    int prc = parse_args(argc, argv, &a);
    if (prc != 0) return prc > 0 ? 0 : 2;
    Config cfg;
    Err err;
    if (cfg_load(&cfg, a.config, a.sets, a.nsets, &err) != 0) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    Enc en;
    memset(&en, 0, sizeof en);
    en.cfg = &cfg;
    en.args = &a;
    log_init(&en.log, 0, 0);
    /* a training config for GPUs is fine here: encoding runs in fp32 on the CPU backend,
     * and the first line says so rather than pretending to use the device */
    if (cfg.device == CFG_DEVICE_CPU)
        log_info(&en.log, "device: cpu (fp32)");
    else
        log_warn(&en.log, "device: cpu (fp32): vqa_encode runs on the CPU backend only; the config's device: %s is not used",
                 cfg_enum_name(&cfg, "device"));
    en.be = backend_cpu();
    en.be->set_threads(en.be, cfg.train.threads);
    en.batch = a.batch ? a.batch : cfg.eval.batch_size > 0 ? cfg.eval.batch_size : cfg.train.batch_size;
    arena_init(&en.arena, 1 << 20);
    int rc = run(&en, &err);
    if (rc != 0) fprintf(stderr, "error: %s\n", err.msg);
    if (en.model.be) vqa_model_free(&en.model);
    tok_free(en.tok);
    arena_free(&en.arena);
    cfg_free(&cfg);
    return rc == 0 ? 0 : 1;
}
