/* vqa_model.c: assembles the VQA model (image encoder + text encoder + fusion head) on one
 * ParamStore, applies freezing, loads weights, runs forward/backward and writes the
 * start-up summary. */
#include "model/vqa_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

void vqa_model_config_default(VqaModelConfig *c, int num_answers) {
    memset(c, 0, sizeof *c);
    c->image_depth = 50;
    c->image_width = 1.0f;
    c->image_freeze.mode = FREEZE_ALL;
    bert_config_tinybert(&c->text);
    c->text_freeze.mode = FREEZE_NONE;
    c->fusion_type = FUSION_MUL;
    c->fusion_hidden = 1024;
    c->fusion_dropout = 0.3f;
    c->fusion_att_scale = 1.0f;
    c->num_answers = num_answers;
    c->seed = 42;
}

/* ---- freezing ---- */

static int set_prefix(ParamStore *ps, const char *prefix, const char *stage, Err *e,
                      const char *valid) {
    char p[PS_NAME_MAX];
    snprintf(p, sizeof p, "%s%s.", prefix, stage);
    if (ps_set_trainable_prefix(ps, p, 1) <= 0)
        return err_set(e, "freeze: unknown stage '%s' (valid: %s)", stage, valid);
    return 0;
}

int vqa_apply_freeze(ParamStore *ps, const char *prefix, const FreezeSpec *f, int kind, int bert_layers,
                     Err *e) {
    const char *valid = kind == 0 ? "all, none, or a list of stem, conv1, bn1, layer1..layer4"
                                  : "all, none, or a list of embeddings, layer0..layerN-1, pooler";
    FreezeMode mode = f ? f->mode : FREEZE_NONE;
    if (mode == FREEZE_NONE) {
        ps_set_trainable_prefix(ps, prefix, 1);
        return 0;
    }
    if (mode != FREEZE_ALL && mode != FREEZE_LIST)
        return err_set(e, "freeze: mode %d is not all, none or a list", (int)mode);
    ps_set_trainable_prefix(ps, prefix, 0);
    if (mode == FREEZE_ALL) return 0;
    if (f->n < 0 || f->n > FREEZE_MAX_STAGES)
        return err_set(e, "freeze: %d stages listed (0..%d fit)", f->n, FREEZE_MAX_STAGES);
    for (int i = 0; i < f->n; i++) {
        const char *tok = f->stage[i];
        if (!memchr(tok, '\0', FREEZE_NAME_MAX))
            return err_set(e, "freeze: stage %d: the name is longer than %d characters", i, FREEZE_NAME_MAX - 1);
        if (strcmp(tok, "all") == 0 || strcmp(tok, "none") == 0)
            return err_set(e, "freeze: '%s' cannot be combined with stage names (all and none stand alone)", tok);
        if (kind == 0) {
            if (strcmp(tok, "stem") == 0) {
                if (set_prefix(ps, prefix, "conv1", e, valid) || set_prefix(ps, prefix, "bn1", e, valid)) return -1;
            } else if (set_prefix(ps, prefix, tok, e, valid)) {
                return -1;
            }
        } else {
            char st[64];
            int li;
            char extra;
            if (sscanf(tok, "layer%d%c", &li, &extra) == 1) {
                if (li < 0 || li >= bert_layers)
                    return err_set(e, "freeze: '%s': the text encoder has layers 0..%d", tok, bert_layers - 1);
                snprintf(st, sizeof st, "encoder.layer.%d", li);
            } else {
                snprintf(st, sizeof st, "%s", tok);
            }
            if (set_prefix(ps, prefix, st, e, valid)) return -1;
        }
    }
    return 0;
}

void vqa_freeze_format(const FreezeSpec *f, char *buf, size_t cap) {
    if (!cap) return;
    FreezeMode mode = f ? f->mode : FREEZE_NONE;
    if (mode == FREEZE_LIST && f->n <= 0) mode = FREEZE_ALL; /* nothing left trainable */
    if (mode != FREEZE_LIST) {
        snprintf(buf, cap, "%s", mode == FREEZE_ALL ? "all" : mode == FREEZE_NONE ? "none" : "?");
        return;
    }
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < f->n && i < FREEZE_MAX_STAGES && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%.*s", i ? ", " : "", FREEZE_NAME_MAX - 1, f->stage[i]);
}

/* ---- init ---- */

static int load_weights(VqaModel *m, const char *path, const char *store_prefix, const char *file_prefix,
                        const char *what, Err *e) {
    PsLoadReport rep;
    if (ps_load_safetensors(&m->ps, path, store_prefix, file_prefix, &rep, e) != 0)
        return err_prefix(e, "%s weights", what);
    size_t off = strlen(m->load_notes);
    snprintf(m->load_notes + off, sizeof m->load_notes - off, "%s%s: loaded %d tensors from %s%s%s",
             off ? "\n" : "", what, rep.loaded, path, rep.unused ? "; " : "", rep.unused ? rep.unused_summary : "");
    return 0;
}

int vqa_model_init(VqaModel *m, const VqaModelConfig *c, const Backend *be, Err *e) {
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    m->be = be;
    ps_init(&m->ps);
    if (c->num_answers < 1) return err_set(e, "model: %d answers (the answer vocabulary is empty)", c->num_answers);
    ResnetConfig rc = {c->image_depth, c->image_width, 0, 0, c->image_stages};
    if (resnet_build(&m->image, &rc, &m->ps, "image_encoder.", PG_IMAGE, e) != 0)
        return err_prefix(e, "model.image_encoder");
    /* the fusion reads the grid only with attention (image_grid): no export otherwise */
    if (resnet_set_format(&m->image, &c->image_fmt, c->image_grid, e) != 0) return err_prefix(e, "model.image_encoder");
    if (bert_config_check(&c->text, e) != 0) return err_prefix(e, "model.text_encoder");
    if (bert_build(&m->text, &c->text, &m->ps, "text_encoder.", PG_TEXT, e) != 0)
        return err_prefix(e, "model.text_encoder");
    FusionConfig fc = {c->fusion_type, m->image.out_channels, c->text.hidden, c->fusion_hidden, c->num_answers,
                       c->fusion_dropout, c->fusion_att_scale, c->fusion_prior_bias};
    if (c->fusion_type == FUSION_ATTENTION && !c->image_grid)
        return err_set(e, "model.fusion.type attention needs model.image_encoder.output: grid");
    if (c->fusion_type != FUSION_ATTENTION && c->image_grid)
        return err_set(e, "model.fusion.type %s needs model.image_encoder.output: pooled", fusion_type_name(c->fusion_type));
    if (fusion_build(&m->fusion, &fc, &m->ps, e) != 0) return err_prefix(e, "model.fusion");

    if (vqa_apply_freeze(&m->ps, "image_encoder.", &c->image_freeze, 0, 0, e) != 0)
        return err_prefix(e, "model.image_encoder.freeze");
    if (vqa_apply_freeze(&m->ps, "text_encoder.", &c->text_freeze, 1, c->text.layers, e) != 0)
        return err_prefix(e, "model.text_encoder.freeze");
    /* mean pooling bypasses BERT's pooler: frozen, so it keeps no gradient or AdamW state
     * (and weight decay does not shrink weights nothing uses) */
    if (c->text_mean_pool) ps_set_trainable_prefix(&m->ps, "text_encoder.pooler.", 0);
    m->image_trainable = ps_any_trainable(&m->ps, m->image.first_param, m->image.end_param);
    m->text_trainable = ps_any_trainable(&m->ps, m->text.first_param, m->text.end_param);

    if (ps_finalize(&m->ps, be, e) != 0) return -1;
    if (ps_init_values(&m->ps, c->seed, e) != 0) return -1;
    if (c->image_weights[0] &&
        load_weights(m, c->image_weights, "image_encoder.", c->image_weights_prefix, "image_encoder", e) != 0)
        return -1;
    if (c->text_weights[0] &&
        load_weights(m, c->text_weights, "text_encoder.", c->text_weights_prefix, "text_encoder", e) != 0)
        return -1;
    return 0;
}

void vqa_model_free(VqaModel *m) {
    free(m->pool_w_host);
    m->pool_w_host = NULL;
    resnet_free(&m->image);
    bert_free(&m->text);
    ps_free(&m->ps);
}

/* ---- step ---- */

/* Mean pooling of the question tokens:
 *   w[b, l]   = mask[b, l] / sum_l mask[b, l]          (host; mask NULL = all L tokens)
 *   feat[b,:] = sum_l w[b, l] * seq[b, l, :]           [B, H]  (one [1,L]x[L,H] GEMM per row)
 * and backward  dseq[b, l, :] = w[b, l] * dfeat[b, :]  ([L,1]x[1,H] per row).
 * Built from the backend's GEMM so it runs unchanged on a device backend. */
static int text_mean_pool_forward(VqaModel *m, const float *mask, int B, int L, Arena *a, Err *e) {
    const Backend *be = m->be;
    int H = m->cfg.text.hidden;
    size_t n = (size_t)B * L;
    if (n > m->pool_w_cap) {
        float *w = realloc(m->pool_w_host, n * sizeof *w);
        if (!w) return err_set(e, "model: out of memory (mean-pool weights, %zu floats)", n);
        m->pool_w_host = w;
        m->pool_w_cap = n;
    }
    for (int b = 0; b < B; b++) {
        float *w = m->pool_w_host + (size_t)b * L;
        double len = 0;
        for (int l = 0; l < L; l++) len += mask ? mask[(size_t)b * L + l] : 1.0f;
        for (int l = 0; l < L; l++) {
            float mk = mask ? mask[(size_t)b * L + l] : 1.0f;
            w[l] = len > 0 ? (float)(mk / len) : 0.0f; /* an all-padding row pools to 0 */
        }
    }
    if (!(m->pool_w = arena_floats(a, n)) || !(m->text_feat = arena_floats(a, (size_t)B * H)))
        return err_set(e, "model: out of memory (arena)");
    be->copy_h2d(be, m->pool_w, m->pool_w_host, n * sizeof(float));
    for (int b = 0; b < B; b++)
        be->gemm(be, 0, 0, 1, H, L, 1.0f, m->pool_w + (size_t)b * L, L, m->text.sequence + (size_t)b * L * H, H, 0.0f,
                 m->text_feat + (size_t)b * H, H);
    return 0;
}

/* dseq [B, L, H] (arena) from dfeat [B, H]; NULL when out of memory. */
static float *text_mean_pool_backward(VqaModel *m, const float *dfeat, Arena *a) {
    int B = m->B, L = m->L, H = m->cfg.text.hidden;
    float *dseq = arena_floats(a, (size_t)B * L * H);
    if (!dseq) return NULL;
    for (int b = 0; b < B; b++)
        m->be->gemm(m->be, 1, 0, L, H, 1, 1.0f, m->pool_w + (size_t)b * L, L, dfeat + (size_t)b * H, H, 0.0f,
                    dseq + (size_t)b * L * H, H);
    return dseq;
}

int vqa_model_forward(VqaModel *m, const Batch *b, int training, uint64_t step_seed, Arena *a,
                      float **logits, Err *e) {
    const Backend *be = m->be;
    int B = b->size, S = b->image_size, L = b->max_len;
    if (b->n_answers && b->n_answers != m->cfg.num_answers)
        return err_set(e, "batch has %d answer classes, the model %d", b->n_answers, m->cfg.num_answers);
    m->B = B;
    m->step_seed = step_seed;
    if (resnet_forward(&m->image, be, b->images, B, S, S, training, a, e) != 0) return -1;
    /* distinct dropout streams for the text encoder and the head */
    uint64_t s_text = step_seed * RNG_GAMMA + 1, s_head = step_seed * RNG_GAMMA + 2;
    if (bert_forward(&m->text, be, b->tokens, b->token_types, b->attn_mask, B, L, training, s_text, a, e) != 0)
        return -1;
    m->L = L;
    m->text_feat = m->text.pooled;
    if (m->cfg.text_mean_pool && text_mean_pool_forward(m, b->attn_mask, B, L, a, e) != 0) return -1;
    const float *img = m->cfg.image_grid ? m->image.grid : m->image.pooled;
    int cells = m->cfg.image_grid ? m->image.gh * m->image.gw : 0;
    if (fusion_forward(&m->fusion, be, img, cells, m->text_feat, B, training, s_head, a, e) != 0) return -1;
    m->logits = m->fusion.logits;
    if (logits) *logits = m->logits;
    return 0;
}

int vqa_model_backward(VqaModel *m, const float *dlogits, Arena *a, Err *e) {
    const Backend *be = m->be;
    int B = m->B, C = m->image.out_channels, H = m->cfg.text.hidden;
    size_t nimg = (size_t)B * C * (m->cfg.image_grid ? (size_t)m->image.gh * m->image.gw : 1);
    float *dimg = NULL, *dtxt = NULL;
    /* input gradients only for an encoder that has something to train */
    if (m->image_trainable && !(dimg = arena_zeros(a, nimg))) return err_set(e, "model: out of memory (arena)");
    if (m->text_trainable && !(dtxt = arena_zeros(a, (size_t)B * H))) return err_set(e, "model: out of memory (arena)");
    /* Registration order is image, text, head, so the head's gradients end the buffer:
     * backward runs head, text, image (the encoders are independent) so that the
     * grad_ready hook sees a shrinking tail: after the head; inside bert_backward after
     * the pooler, each layer (top down) and the embeddings; inside resnet_backward after
     * each block (top down) and the stem; finally 0. Each encoder reports offsets of its
     * own tensors, and everything registered after it has finished by then, so every
     * report means "all of ps.grads from X on is final" and X never increases. */
    int tail_order = m->image.first_param == 0 && m->image.end_param == m->text.first_param;
    PsGradHook hook = {m->grad_ready && tail_order ? m->grad_ready : NULL, m->grad_ready_ctx};
    m->text.grad_ready = hook;
    m->image.grad_ready = hook;
    if (fusion_backward(&m->fusion, be, dlogits, dimg, dtxt, a, e) != 0) return -1;
    if (hook.fn) hook.fn(hook.ctx, ps_grads_from(&m->ps, m->text.end_param));
    if (dtxt && m->cfg.text_mean_pool) {
        float *dseq = text_mean_pool_backward(m, dtxt, a);
        if (!dseq) return err_set(e, "model: out of memory (arena)");
        if (bert_backward(&m->text, be, dseq, NULL, a, e) != 0) return -1;
    } else if (dtxt && bert_backward(&m->text, be, NULL, dtxt, a, e) != 0) {
        return -1;
    }
    if (hook.fn) hook.fn(hook.ctx, ps_grads_from(&m->ps, m->text.first_param));
    if (dimg && resnet_backward(&m->image, be, NULL, m->cfg.image_grid ? NULL : dimg,
                                m->cfg.image_grid ? dimg : NULL, a, e) != 0)
        return -1;
    if (m->grad_ready) m->grad_ready(m->grad_ready_ctx, 0);
    return 0;
}

/* ---- summary ---- */

static void fmt_count(size_t n, char *buf, size_t len) {
    /* 25557032 -> "25,557,032" */
    char raw[32];
    snprintf(raw, sizeof raw, "%zu", n);
    size_t L = strlen(raw), o = 0;
    for (size_t i = 0; i < L && o + 2 < len; i++) {
        if (i && (L - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = 0;
}

static double mib(size_t floats) { return (double)floats * 4.0 / (1024.0 * 1024.0); }

void vqa_model_summary(const VqaModel *m, char *buf, size_t n) {
    const ParamStore *ps = &m->ps;
    const VqaModelConfig *c = &m->cfg;
    char a[32], b[32], t[32];
    size_t off = 0;
#define OUT(...) (off += (size_t)snprintf(buf + (off < n ? off : n), off < n ? n - off : 0, __VA_ARGS__))
    char stg[32] = "";
    if (c->image_stages && c->image_stages < 4) snprintf(stg, sizeof stg, ", layer1..layer%d", c->image_stages);
    char ks[32] = "";
    if (c->fusion_type == FUSION_ATTENTION && c->fusion_att_scale != 1.f)
        snprintf(ks, sizeof ks, ", score scale %g", (double)c->fusion_att_scale);
    OUT("model: resnet%d (width %g%s, %s) + bert %dL-%dH (%d heads, ffn %d) + %s fusion (hidden %d, dropout %g%s) -> %d answers\n",
        c->image_depth, (double)c->image_width, stg, c->image_grid ? "grid" : "pooled", c->text.layers, c->text.hidden,
        c->text.heads, c->text.ffn, fusion_type_name(c->fusion_type), c->fusion_hidden, (double)c->fusion_dropout, ks,
        c->num_answers);
    OUT("  %-14s %14s %14s %14s\n", "module", "parameters", "trainable", "frozen");
    for (int g = 0; g < PG_COUNT; g++) {
        size_t all = ps_numel(ps, g, 0), tr = ps_numel(ps, g, 1);
        fmt_count(all, a, sizeof a);
        fmt_count(tr, b, sizeof b);
        fmt_count(all - tr, t, sizeof t);
        OUT("  %-14s %14s %14s %14s\n", ps_group_name((ParamGroup)g), a, b, t);
    }
    size_t all = ps_numel(ps, -1, 0), tr = ps_numel(ps, -1, 1);
    fmt_count(all, a, sizeof a);
    fmt_count(tr, b, sizeof b);
    fmt_count(all - tr, t, sizeof t);
    OUT("  %-14s %14s %14s %14s\n", "total", a, b, t);
    char fi[FREEZE_TEXT_MAX], ft[FREEZE_TEXT_MAX];
    vqa_freeze_format(&c->image_freeze, fi, sizeof fi);
    vqa_freeze_format(&c->text_freeze, ft, sizeof ft);
    OUT("  freeze: image_encoder %s, text_encoder %s; question feature: %s\n", fi, ft,
        c->text_mean_pool ? "mean of the tokens (pooler frozen)" : "BERT pooler over [CLS]");
    OUT("  memory (fp32): parameters %.1f MiB, buffers %.2f MiB, gradients %.1f MiB, AdamW state %.1f MiB\n",
        mib(ps->n_values), mib(ps->n_buffers), mib(ps->n_grads), mib(2 * ps->n_grads));
    if (m->load_notes[0]) OUT("%s\n", m->load_notes);
#undef OUT
}
