/* cfg_validate.c: checks across keys (required inputs, conflicting options, names in
 * freeze lists), the device-dependent checks, the input-file check of --dry-run, and
 * advisory warnings. Every message names the key and where it was set. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/cfg_table.h"
#include "vqa_version.h" /* VQA_HAVE_ONEDNN */

/* "WHERE(at): key: message"; at is the key whose position the message points to (for a
 * required key that was never written, the key next to which it belongs). */
static int vbad(const Config *c, Err *err, const char *at, const char *key, const char *fmt, va_list ap) {
    char w[1100], msg[1500];
    vsnprintf(msg, sizeof msg, fmt, ap);
    cfg_where(c, at, w, sizeof w);
    return err_set(err, "%s: %s: %s", w, key, msg);
}
static int bad(const Config *c, Err *err, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(const Config *c, Err *err, const char *key, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vbad(c, err, key, key, fmt, ap);
    va_end(ap);
    return -1;
}
static int bad_at(const Config *c, Err *err, const char *at, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int bad_at(const Config *c, Err *err, const char *at, const char *key, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vbad(c, err, at, key, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *val(const Config *c, const char *key, char *buf, size_t cap) {
    int i = cfg_key_find(key);
    if (i < 0) return "?";
    cfg_format_value(c, &cfg_keys[i], buf, cap);
    return buf;
}

/* ResNet: output side after the stem (two stride-2 steps) and one stride-2 step per stage
 * after the first, each rounding up as torchvision's padded convolutions do. */
static int resnet_grid_side(int image_size, int stages) {
    int s = image_size;
    for (int i = 0; i < stages + 1; i++) s = (s + 1) / 2;
    return s;
}

static int check_freeze_names(const Config *c, Err *err, const char *key, const CfgFreeze *f, int bert_layers) {
    static const char *const resnet_stages[] = {"stem", "conv1", "bn1", "layer1", "layer2", "layer3", "layer4", NULL};
    if (f->mode != CFG_FREEZE_LIST) return 0;
    for (int i = 0; i < f->n; i++) {
        const char *s = f->trainable[i];
        int ok = 0;
        if (bert_layers > 0) {
            if (!strcmp(s, "embeddings") || !strcmp(s, "pooler")) ok = 1;
            if (!strncmp(s, "layer", 5) && s[5]) {
                char *end;
                long n = strtol(s + 5, &end, 10);
                if (!*end && n >= 0 && n < bert_layers) ok = 1;
                else if (!*end)
                    return bad(c, err, key, "\"%s\": the text encoder has layers layer0..layer%d "
                               "(model.text_encoder.layers = %d)", s, bert_layers - 1, bert_layers);
            }
            if (!ok)
                return bad(c, err, key, "\"%s\" is not a part of the text encoder: expected all, none or a "
                           "list of embeddings, layer0..layer%d, pooler", s, bert_layers - 1);
        } else {
            for (int j = 0; resnet_stages[j]; j++) ok |= !strcmp(s, resnet_stages[j]);
            if (!ok)
                return bad(c, err, key, "\"%s\" is not a ResNet stage: expected all, none or a list of "
                           "stem, conv1, bn1, layer1, layer2, layer3, layer4", s);
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(s, f->trainable[j])) return bad(c, err, key, "\"%s\" is listed twice", s);
    }
    return 0;
}

/* A split's files: questions decides whether the split exists; then the rest must fit. */
static int check_split(const Config *c, Err *err, const char *name, const CfgSplitPaths *p, int need,
                       int need_answers) {
    char kq[64], ka[64], ki[64];
    snprintf(kq, sizeof kq, "data.%s.questions", name);
    snprintf(ka, sizeof ka, "data.%s.annotations", name);
    snprintf(ki, sizeof ki, "data.%s.images", name);
    int vqa2 = c->data.format == CFG_FORMAT_VQA2;
    if (!p->questions) {
        if (need) return -2; /* the caller says why it is needed */
        if (p->annotations) return bad(c, err, ka, "set, but %s is null", kq);
        if (p->images) return bad(c, err, ki, "set, but %s is null", kq);
        return 0;
    }
    if (!p->images) return bad_at(c, err, kq, ki, "required when %s is set (the folder of the images)", kq);
    if (!vqa2 && p->annotations)
        return bad(c, err, ka, "not used by data.format vizwiz (its questions file holds the answers): "
                   "remove it or set data.format: vqa2");
    if (vqa2 && need_answers && !p->annotations)
        return bad_at(c, err, kq, ka, "required: data.format vqa2 keeps the answers of the %s split in an "
                   "annotations file", name);
    return 0;
}

int cfg_validate(const Config *c, Err *err) {
    char why[1024], v1[64], v2[64];
    for (int i = 0; i < cfg_n_keys; i++)
        if (cfg_check_range(c, &cfg_keys[i], why, sizeof why) != 0) return bad(c, err, cfg_keys[i].path, "%s", why);
    if (!*c->run.name) return bad(c, err, "run.name", "must not be empty");
    if (!*c->run.out_dir) return bad(c, err, "run.out_dir", "must not be empty");
    if (!*c->model.text_encoder.vocab) return bad(c, err, "model.text_encoder.vocab", "must not be empty");

    /* data: train always, the evaluated split when evaluation runs */
    int raw = c->data.prepared == NULL;
    int evaluating = c->eval.every > 0 || c->eval.at_end;
    const CfgSplitPaths *splits[3] = {&c->data.train, &c->data.val, &c->data.test};
    const char *names[3] = {"train", "val", "test"};
    for (int s = 0; s < 3; s++) {
        int need = raw && (s == CFG_SPLIT_TRAIN || (evaluating && (int)c->eval.split == s));
        int need_answers = s == CFG_SPLIT_TRAIN || (evaluating && (int)c->eval.split == s);
        int rc = check_split(c, err, names[s], splits[s], need, need_answers);
        if (rc == -1) return -1;
        if (rc == -2 && s == CFG_SPLIT_TRAIN)
            return bad(c, err, "data.train.questions", "not set: required, the training questions file (or data.prepared)");
        if (rc == -2) {
            char k[64];
            snprintf(k, sizeof k, "data.%s.questions", names[s]);
            return bad_at(c, err, "eval.split", k, "not set: required because eval.split is %s and evaluation runs (eval.every %s, eval.at_end %s); "
                       "set the %s files or eval.every: 0 and eval.at_end: false",
                       names[s], val(c, "eval.every", v1, sizeof v1), val(c, "eval.at_end", v2, sizeof v2), names[s]);
        }
    }

    /* model shapes */
    int hidden = c->model.text_encoder.hidden, heads = c->model.text_encoder.heads;
    int max_pos = c->model.text_encoder.max_positions, layers = c->model.text_encoder.layers;
    if (hidden % heads != 0)
        return bad(c, err, "model.text_encoder.heads", "%d does not divide model.text_encoder.hidden = %d",
                   heads, hidden);
    if (c->data.max_question_len > max_pos)
        return bad(c, err, "data.max_question_len", "%d exceeds model.text_encoder.max_positions = %d",
                   c->data.max_question_len, max_pos);
    if (check_freeze_names(c, err, "model.image_encoder.freeze", &c->model.image_encoder.freeze, 0) != 0) return -1;
    const CfgFreeze *imf = &c->model.image_encoder.freeze;
    for (int i = 0; imf->mode == CFG_FREEZE_LIST && i < imf->n; i++)
        if (!strncmp(imf->trainable[i], "layer", 5) && imf->trainable[i][5] - '0' > c->model.image_encoder.stages)
            return bad(c, err, "model.image_encoder.freeze", "\"%s\" is not built: model.image_encoder.stages is %d",
                       imf->trainable[i], c->model.image_encoder.stages);
    if ((c->data.synth.min_radius || c->data.synth.max_radius) &&
        (c->data.synth.min_radius < 2 || c->data.synth.min_radius > c->data.synth.max_radius ||
         4 * c->data.synth.max_radius > c->data.image_size))
        return bad(c, err, "data.synth.min_radius", "%d..%d pixels (data.synth.max_radius): need 2 <= min <= max <= "
                   "data.image_size / 4 = %d, or both 0 for the default", c->data.synth.min_radius,
                   c->data.synth.max_radius, c->data.image_size / 4);
    if (c->data.synth.min_objects > c->data.synth.max_objects)
        return bad(c, err, "data.synth.min_objects", "%d is above data.synth.max_objects = %d",
                   c->data.synth.min_objects, c->data.synth.max_objects);
    if (check_freeze_names(c, err, "model.text_encoder.freeze", &c->model.text_encoder.freeze, layers) != 0)
        return -1;

    /* fusion needs the image features in its shape */
    int grid = c->model.image_encoder.output == CFG_OUTPUT_GRID;
    if (c->model.fusion.type == CFG_FUSION_ATTENTION && !grid)
        return bad(c, err, "model.fusion.type", "attention attends over the image grid: it needs "
                   "model.image_encoder.output: grid (now pooled)");
    if (c->model.fusion.type != CFG_FUSION_ATTENTION && grid)
        return bad(c, err, "model.image_encoder.output", "grid is only used by model.fusion.type: attention; "
                   "%s fusion takes the pooled vector (set output: pooled)", cfg_enum_name(c, "model.fusion.type"));
    if (c->model.fusion.type == CFG_FUSION_ATTENTION) {
        int st = c->model.image_encoder.stages, g = resnet_grid_side(c->data.image_size, st);
        if (g < 2)
            return bad(c, err, "data.image_size", "%d gives a %dx%d %s grid (%d stages): attention over one "
                       "cell is the pooled vector; use data.image_size >= %d (224 gives %dx%d)", c->data.image_size,
                       g, g, cfg_enum_name(c, "model.image_encoder.arch"), st, (1 << st) + 1,
                       resnet_grid_side(224, st), resnet_grid_side(224, st));
    }

    /* training length and schedule */
    if (c->train.epochs == 0 && c->train.max_steps == 0)
        return bad(c, err, "train.epochs", "0 with train.max_steps 0: nothing to train (set one of them)");
    if (c->train.max_steps > 0 && c->train.warmup_steps >= c->train.max_steps)
        return bad(c, err, "train.warmup_steps", "%lld is not below train.max_steps = %lld: the learning rate "
                   "would never leave warm-up", (long long)c->train.warmup_steps, (long long)c->train.max_steps);

    if (c->train.cpu_kernels == CFG_CPUK_ONEDNN && !VQA_HAVE_ONEDNN)
        return bad(c, err, "train.cpu_kernels", "onednn, but this build has no oneDNN (install libdnnl-dev and "
                   "rebuild; or set auto or reference)");

    /* an explicit device: the rest is checked once auto is resolved */
    if (c->device != CFG_DEVICE_AUTO && cfg_validate_device(c, c->device, err) != 0) return -1;
    return 0;
}

int cfg_validate_device(const Config *c, CfgDevice resolved, Err *err) {
    if (resolved != CFG_DEVICE_CPU) return 0;
    const char *how = c->device == CFG_DEVICE_AUTO ? "device: auto chose cpu (no usable GPU)" : "device is cpu";
    if (c->train.precision != DT_F32)
        return bad(c, err, "train.precision", "%s needs device cuda, but %s; the CPU backend computes in fp32 "
                   "(set train.precision: fp32)", cfg_enum_name(c, "train.precision"), how);
    if (c->dist.backend == CFG_DIST_NCCL)
        return bad(c, err, "dist.backend", "nccl all-reduces GPU buffers, but %s (use mpi or auto)", how);
    return 0;
}

/* p lies inside dir (both as written, a leading "./" ignored). */
static int under_dir(const char *p, const char *dir) {
    while (!strncmp(p, "./", 2)) p += 2;
    while (!strncmp(dir, "./", 2)) dir += 2;
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    return n > 0 && !strncmp(p, dir, n) && (p[n] == '/' || p[n] == '\0');
}

int cfg_check_files(const Config *c, Err *err) {
    int missing = 0;
    size_t len = 0;
    char line[1400], w[1100];
    err_clear(err);
    for (int i = 0; i < cfg_n_keys; i++) {
        const CfgKey *k = &cfg_keys[i];
        if (!(k->flags & (CF_IN_FILE | CF_IN_DIR))) continue;
        const char *p = *(char *const *)cfg_cfield(c, k);
        if (!p) continue;
        if (c->data.synth.dir && under_dir(p, c->data.synth.dir)) continue; /* generated on first run */
        if (c->data.prepared && (!strncmp(k->path, "data.train.", 11) || !strncmp(k->path, "data.val.", 9)))
            continue;
        struct stat st;
        const char *reason = NULL;
        if (stat(p, &st) != 0)
            reason = "not found";
        else if ((k->flags & CF_IN_DIR) && !S_ISDIR(st.st_mode))
            reason = "not a folder";
        else if ((k->flags & CF_IN_FILE) && S_ISDIR(st.st_mode))
            reason = "a folder, expected a file";
        if (!reason) continue;
        missing++;
        cfg_where(c, k->path, w, sizeof w);
        int n = snprintf(line, sizeof line, "%s%s: %s: %s (set at %s)", missing > 1 ? "\n" : "", k->path, p,
                         reason, w);
        if (err && n > 0 && len + (size_t)n < sizeof err->msg) {
            memcpy(err->msg + len, line, (size_t)n + 1);
            len += (size_t)n;
        }
    }
    return missing;
}

int cfg_warnings(const Config *c, char *buf, size_t cap) {
    int n = 0;
    size_t len = 0;
    buf[0] = '\0';
#define WARN(...)                                                                           \
    do {                                                                                    \
        if (len < cap) len += (size_t)snprintf(buf + len, cap - len, "%s", n ? "\n" : ""); \
        if (len < cap) len += (size_t)snprintf(buf + len, cap - len, __VA_ARGS__);          \
        n++;                                                                                \
    } while (0)
    if (c->model.image_encoder.freeze.mode != CFG_FREEZE_NONE && !c->model.image_encoder.weights)
        WARN("model.image_encoder.freeze is not none but model.image_encoder.weights is null: "
             "frozen parts keep their random initialization");
    if (c->model.text_encoder.freeze.mode != CFG_FREEZE_NONE && !c->model.text_encoder.weights)
        WARN("model.text_encoder.freeze is not none but model.text_encoder.weights is null: "
             "frozen parts keep their random initialization");
    if (c->data.augment.hflip)
        WARN("data.augment.hflip is on: questions about left and right get mirrored images");
#undef WARN
    return n;
}
