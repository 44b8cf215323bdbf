/* bert.c: the Hugging Face BertModel encoder (TinyBERT by default), forward and backward over
 * the Backend ops. The architecture, the parameter names and the freezing rules are in
 * bert.h; this file is the arithmetic and the bookkeeping of what is kept for backward.
 *
 * Modules, in order: 0 = embeddings, 1..layers = encoder.layer.0..layers-1,
 * layers+1 = pooler. A training forward keeps activations from the lowest module that has a
 * trainable tensor up (bwd_from); modules below run forward-only, their outputs in two
 * ping-pong buffers and their scratch rewound, and backward stops at bwd_from. */
#include "model/bert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

/* parameter indices of one encoder layer, in registration (= HF state_dict) order */
typedef struct BertLayerIdx {
    int q_w, q_b, k_w, k_b, v_w, v_b;   /* attention.self.{query,key,value} */
    int ao_w, ao_b, ln1_w, ln1_b;        /* attention.output.{dense,LayerNorm} */
    int i_w, i_b;                        /* intermediate.dense */
    int o_w, o_b, ln2_w, ln2_b;          /* output.{dense,LayerNorm} */
    int first, end;                      /* ps index range */
} BertLayerIdx;

/* what one layer keeps for backward ([N, H] unless said; N = B*L) */
typedef struct BertLayerAct {
    const float *x;                      /* layer input */
    float *q, *k, *v;                    /* projections */
    float *probs;                        /* [B, nh, L, L] softmax before dropout */
    uint8_t *dm_att;                     /* [B, nh, L, L] keep mask (dropout on) */
    float *ctx;                          /* attention output */
    uint8_t *dm1;                        /* keep mask of the attention-output dropout */
    float *r1, *mean1, *rstd1;           /* x + dropout(dense(ctx)); LN stats [N] */
    float *x1;                           /* LN(r1) */
    float *hpre, *hg;                    /* [N, F] intermediate dense, gelu */
    uint8_t *dm2;
    float *r2, *mean2, *rstd2;
    float *x2;                           /* layer output */
    uint64_t seed_att, seed1, seed2;
} BertLayerAct;

struct BertState {
    /* embeddings */
    int word, pos, type, eln_w, eln_b, emb_first, emb_end;
    BertLayerIdx *li;                    /* [layers] */
    int pool_w, pool_b, pool_first, pool_end;
    /* per forward */
    BertLayerAct *act;                   /* [layers] */
    const int32_t *tokens;               /* [N] in backend memory */
    int32_t *pos_ids, *type_ids;         /* [N] in backend memory */
    int32_t *host_ids;                   /* staging for a device backend: pos, type, tokens [3N] */
    size_t host_cap;                     /* elements of host_ids; grows only when N does */
    float *esum, *emean, *erstd;         /* word + pos + type, LN stats */
    uint8_t *edm;                        /* embedding dropout keep mask */
    uint64_t eseed;
    float *first;                        /* [B, H] sequence[:, 0] */
    float *ws;                           /* attention workspace */
    float *gbuf[2];                      /* backward ping-pong [N, H] */
    float p;                             /* dropout actually applied (0 in eval) */
    int training;
    int bwd_from;
};

void bert_config_tinybert(BertConfig *c) {
    c->layers = 4;
    c->hidden = 312;
    c->heads = 12;
    c->ffn = 1200;
    c->vocab = 30522;
    c->max_positions = 512;
    c->type_vocab = 2;
    c->pad_token_id = 0;
    c->dropout = 0.1f;
    c->eps = 1e-12f;
}

int bert_config_check(const BertConfig *c, Err *e) {
    if (c->layers < 0) return err_set(e, "bert: layers = %d (expected >= 0)", c->layers);
    if (c->hidden < 1) return err_set(e, "bert: hidden = %d (expected >= 1)", c->hidden);
    if (c->heads < 1) return err_set(e, "bert: heads = %d (expected >= 1)", c->heads);
    if (c->hidden % c->heads != 0)
        return err_set(e, "bert: hidden = %d is not a multiple of heads = %d", c->hidden, c->heads);
    if (c->ffn < 1) return err_set(e, "bert: ffn = %d (expected >= 1)", c->ffn);
    if (c->vocab < 1) return err_set(e, "bert: vocab = %d (expected >= 1)", c->vocab);
    if (c->max_positions < 1) return err_set(e, "bert: max_positions = %d (expected >= 1)", c->max_positions);
    if (c->type_vocab < 1) return err_set(e, "bert: type_vocab = %d (expected >= 1)", c->type_vocab);
    if (c->pad_token_id < -1 || c->pad_token_id >= c->vocab)
        return err_set(e, "bert: pad_token_id = %d (expected -1 or 0..%d)", c->pad_token_id, c->vocab - 1);
    if (!(c->dropout >= 0.f && c->dropout < 1.f))
        return err_set(e, "bert: dropout = %g (expected in [0, 1))", (double)c->dropout);
    if (!(c->eps > 0.f)) return err_set(e, "bert: eps = %g (expected > 0)", (double)c->eps);
    return 0;
}

/* ---- building ---- */

static int add_p(Bert *m, const char *local, int ndim, const int64_t *shape, ParamKind kind,
                 ParamInit init, ParamGroup g, Err *e) {
    char name[PS_NAME_MAX];
    snprintf(name, sizeof name, "%s%s", m->prefix, local);
    return ps_add(m->ps, name, ndim, shape, kind, g, init, e);
}

/* nn.Linear as HF initializes it: weight N(0, 0.02^2) [out, in], bias 0 [out] */
static int add_linear(Bert *m, const char *name, int in, int out, ParamGroup g, int *w, int *b, Err *e) {
    char n[PS_NAME_MAX];
    int64_t o = out;
    snprintf(n, sizeof n, "%s.weight", name);
    if ((*w = add_p(m, n, 2, (int64_t[]){out, in}, PK_WEIGHT, pinit_normal(0.02f), g, e)) < 0) return -1;
    snprintf(n, sizeof n, "%s.bias", name);
    if ((*b = add_p(m, n, 1, &o, PK_BIAS, pinit_zeros(), g, e)) < 0) return -1;
    return 0;
}

static int add_ln(Bert *m, const char *name, int H, ParamGroup g, int *w, int *b, Err *e) {
    char n[PS_NAME_MAX];
    int64_t h = H;
    snprintf(n, sizeof n, "%s.weight", name);
    if ((*w = add_p(m, n, 1, &h, PK_NORM, pinit_ones(), g, e)) < 0) return -1;
    snprintf(n, sizeof n, "%s.bias", name);
    if ((*b = add_p(m, n, 1, &h, PK_NORM, pinit_zeros(), g, e)) < 0) return -1;
    return 0;
}

int bert_build(Bert *m, const BertConfig *c, ParamStore *ps, const char *prefix, ParamGroup group,
               Err *e) {
    memset(m, 0, sizeof *m);
    if (bert_config_check(c, e) != 0) return -1;
    m->cfg = *c;
    m->ps = ps;
    snprintf(m->prefix, sizeof m->prefix, "%s", prefix ? prefix : "");
    BertState *s = calloc(1, sizeof *s);
    if (!s) return err_set(e, "bert: out of memory");
    m->st = s;
    s->li = calloc((size_t)(c->layers ? c->layers : 1), sizeof *s->li);
    s->act = calloc((size_t)(c->layers ? c->layers : 1), sizeof *s->act);
    if (!s->li || !s->act) return err_set(e, "bert: out of memory");
    const int H = c->hidden, F = c->ffn;

    m->first_param = ps_count(ps);
    s->emb_first = ps_count(ps);
    ParamInit wi = pinit_normal(0.02f);
    wi.padding_idx = c->pad_token_id;
    if ((s->word = add_p(m, "embeddings.word_embeddings.weight", 2, (int64_t[]){c->vocab, H}, PK_EMBEDDING,
                         wi, group, e)) < 0 ||
        (s->pos = add_p(m, "embeddings.position_embeddings.weight", 2, (int64_t[]){c->max_positions, H},
                        PK_EMBEDDING, pinit_normal(0.02f), group, e)) < 0 ||
        (s->type = add_p(m, "embeddings.token_type_embeddings.weight", 2, (int64_t[]){c->type_vocab, H},
                         PK_EMBEDDING, pinit_normal(0.02f), group, e)) < 0 ||
        add_ln(m, "embeddings.LayerNorm", H, group, &s->eln_w, &s->eln_b, e) != 0)
        return -1;
    s->emb_end = ps_count(ps);

    for (int l = 0; l < c->layers; l++) {
        BertLayerIdx *x = &s->li[l];
        char n[PS_NAME_MAX];
        x->first = ps_count(ps);
#define LIN(suffix, in, out, w, b)                                                  \
    snprintf(n, sizeof n, "encoder.layer.%d.%s", l, suffix);                        \
    if (add_linear(m, n, in, out, group, &x->w, &x->b, e) != 0) return -1;
        LIN("attention.self.query", H, H, q_w, q_b)
        LIN("attention.self.key", H, H, k_w, k_b)
        LIN("attention.self.value", H, H, v_w, v_b)
        LIN("attention.output.dense", H, H, ao_w, ao_b)
        snprintf(n, sizeof n, "encoder.layer.%d.attention.output.LayerNorm", l);
        if (add_ln(m, n, H, group, &x->ln1_w, &x->ln1_b, e) != 0) return -1;
        LIN("intermediate.dense", H, F, i_w, i_b)
        LIN("output.dense", F, H, o_w, o_b)
#undef LIN
        snprintf(n, sizeof n, "encoder.layer.%d.output.LayerNorm", l);
        if (add_ln(m, n, H, group, &x->ln2_w, &x->ln2_b, e) != 0) return -1;
        x->end = ps_count(ps);
    }
    s->pool_first = ps_count(ps);
    if (add_linear(m, "pooler.dense", H, H, group, &s->pool_w, &s->pool_b, e) != 0) return -1;
    s->pool_end = ps_count(ps);
    m->end_param = ps_count(ps);
    return 0;
}

void bert_free(Bert *m) {
    if (m->st) {
        free(m->st->li);
        free(m->st->act);
        free(m->st->host_ids);
        free(m->st);
    }
    m->st = NULL;
}

/* ---- forward ---- */

/* independent dropout streams per site from one step seed */
static uint64_t site_seed(uint64_t seed, int site) { return rng_mix64(seed + RNG_GAMMA * (uint64_t)(site + 1)); }

static int oom(Err *e, const char *what) { return err_set(e, "bert: out of memory (arena) for %s", what); }

static int module_trainable(const Bert *m, int mod) {
    const BertState *s = m->st;
    if (mod == 0) return ps_any_trainable(m->ps, s->emb_first, s->emb_end);
    if (mod <= m->cfg.layers) return ps_any_trainable(m->ps, s->li[mod - 1].first, s->li[mod - 1].end);
    return ps_any_trainable(m->ps, s->pool_first, s->pool_end);
}

/* e = LN(word[tok] + pos[l] + type[tt]) ; dropout.  -> out [N, H]
 *   N = B*L rows, row n = (b, l) */
static int embed_forward(Bert *m, const Backend *be, int keep, float *out, Arena *a, Err *e) {
    BertState *s = m->st;
    ParamStore *ps = m->ps;
    const int H = m->cfg.hidden, N = m->B * m->L;
    const size_t NH = (size_t)N * H;
    float *tmp = arena_floats(a, NH);
    s->esum = arena_floats(a, NH);
    s->emean = arena_floats(a, (size_t)N);
    s->erstd = arena_floats(a, (size_t)N);
    if (!tmp || !s->esum || !s->emean || !s->erstd) return oom(e, "embeddings");
    be->embedding_forward(be, N, m->cfg.vocab, H, s->tokens, ps_value(ps, s->word), s->esum);
    be->embedding_forward(be, N, m->cfg.max_positions, H, s->pos_ids, ps_value(ps, s->pos), tmp);
    be->add_forward(be, DT_F32, NH, s->esum, tmp, s->esum);
    be->embedding_forward(be, N, m->cfg.type_vocab, H, s->type_ids, ps_value(ps, s->type), tmp);
    be->add_forward(be, DT_F32, NH, s->esum, tmp, s->esum);
    be->layernorm_forward(be, N, H, s->esum, ps_value(ps, s->eln_w), ps_value(ps, s->eln_b), m->cfg.eps, out,
                          s->emean, s->erstd);
    s->edm = NULL;
    if (s->p > 0.f) {
        if (keep && !(s->edm = arena_alloc(a, NH))) return oom(e, "embedding dropout mask");
        be->dropout_forward(be, NH, s->p, s->eseed, out, out, s->edm);
    }
    return 0;
}

/* one post-LN encoder layer, x [N, H] -> out [N, H] (see bert.h for the math).
 * keep = 0: nothing needs to survive but out (the caller rewinds the arena). */
static int layer_forward(Bert *m, const Backend *be, int l, const float *x, const float *mask, int keep,
                         float *out, Arena *a, Err *e) {
    BertState *s = m->st;
    ParamStore *ps = m->ps;
    const BertLayerIdx *ix = &s->li[l];
    BertLayerAct *t = &s->act[l];
    const int B = m->B, L = m->L, H = m->cfg.hidden, F = m->cfg.ffn, nh = m->cfg.heads, hd = H / nh;
    const int N = B * L;
    const size_t NH = (size_t)N * H, NF = (size_t)N * F, P = (size_t)B * nh * L * L;
    const float eps = m->cfg.eps, p = s->p;
    t->x = x;
    t->q = arena_floats(a, NH);
    t->k = arena_floats(a, NH);
    t->v = arena_floats(a, NH);
    t->probs = arena_floats(a, P);
    t->ctx = arena_floats(a, NH);
    t->r1 = arena_floats(a, NH);
    t->mean1 = arena_floats(a, (size_t)N);
    t->rstd1 = arena_floats(a, (size_t)N);
    t->x1 = arena_floats(a, NH);
    t->hpre = arena_floats(a, NF);
    t->hg = arena_floats(a, NF);
    t->r2 = arena_floats(a, NH);
    t->mean2 = arena_floats(a, (size_t)N);
    t->rstd2 = arena_floats(a, (size_t)N);
    if (!t->q || !t->k || !t->v || !t->probs || !t->ctx || !t->r1 || !t->mean1 || !t->rstd1 || !t->x1 ||
        !t->hpre || !t->hg || !t->r2 || !t->mean2 || !t->rstd2)
        return oom(e, "layer activations");
    t->dm_att = t->dm1 = t->dm2 = NULL;
    if (p > 0.f && keep) {
        t->dm_att = arena_alloc(a, P);
        t->dm1 = arena_alloc(a, NH);
        t->dm2 = arena_alloc(a, NH);
        if (!t->dm_att || !t->dm1 || !t->dm2) return oom(e, "dropout masks");
    }
    /* self-attention */
    be->linear_forward(be, N, H, H, x, ps_value(ps, ix->q_w), ps_value(ps, ix->q_b), t->q);
    be->linear_forward(be, N, H, H, x, ps_value(ps, ix->k_w), ps_value(ps, ix->k_b), t->k);
    be->linear_forward(be, N, H, H, x, ps_value(ps, ix->v_w), ps_value(ps, ix->v_b), t->v);
    be->attention_forward(be, B, L, nh, hd, t->q, t->k, t->v, mask, p, t->seed_att, t->probs, t->dm_att, t->ctx,
                          s->ws);
    /* r1 = x + dropout(ctx Wo^T + bo); x1 = LN(r1) */
    be->linear_forward(be, N, H, H, t->ctx, ps_value(ps, ix->ao_w), ps_value(ps, ix->ao_b), t->r1);
    if (p > 0.f) be->dropout_forward(be, NH, p, t->seed1, t->r1, t->r1, t->dm1);
    be->add_forward(be, DT_F32, NH, t->r1, x, t->r1);
    be->layernorm_forward(be, N, H, t->r1, ps_value(ps, ix->ln1_w), ps_value(ps, ix->ln1_b), eps, t->x1, t->mean1,
                          t->rstd1);
    /* r2 = x1 + dropout(gelu(x1 W1^T + b1) W2^T + b2); out = LN(r2) */
    be->linear_forward(be, N, H, F, t->x1, ps_value(ps, ix->i_w), ps_value(ps, ix->i_b), t->hpre);
    be->gelu_forward(be, NF, t->hpre, t->hg);
    be->linear_forward(be, N, F, H, t->hg, ps_value(ps, ix->o_w), ps_value(ps, ix->o_b), t->r2);
    if (p > 0.f) be->dropout_forward(be, NH, p, t->seed2, t->r2, t->r2, t->dm2);
    be->add_forward(be, DT_F32, NH, t->r2, t->x1, t->r2);
    be->layernorm_forward(be, N, H, t->r2, ps_value(ps, ix->ln2_w), ps_value(ps, ix->ln2_b), eps, out, t->mean2,
                          t->rstd2);
    t->x2 = out;
    return 0;
}

/* token ids, token types and the length are checked on the host (the batch lives there) */
static int check_inputs(const Bert *m, const int32_t *tokens, const int32_t *token_types, int B, int L,
                        Err *e) {
    const BertConfig *c = &m->cfg;
    if (B < 1 || L < 1) return err_set(e, "bert: bad input size [%d, %d]", B, L);
    if (L > c->max_positions)
        return err_set(e, "bert: sequence length %d exceeds max_positions %d", L, c->max_positions);
    for (int b = 0; b < B; b++)
        for (int l = 0; l < L; l++) {
            int32_t t = tokens[(size_t)b * L + l];
            if (t < 0 || t >= c->vocab)
                return err_set(e, "bert: token id %d at batch row %d, position %d is outside the vocabulary (0..%d)",
                               (int)t, b, l, c->vocab - 1);
            if (token_types) {
                int32_t tt = token_types[(size_t)b * L + l];
                if (tt < 0 || tt >= c->type_vocab)
                    return err_set(e, "bert: token type %d at batch row %d, position %d is outside 0..%d", (int)tt,
                                   b, l, c->type_vocab - 1);
            }
        }
    return 0;
}

int bert_forward(Bert *m, const Backend *be, const int32_t *tokens, const int32_t *token_types,
                 const float *mask, int B, int L, int training, uint64_t dropout_seed, Arena *a, Err *e) {
    BertState *s = m->st;
    ParamStore *ps = m->ps;
    if (!s) return err_set(e, "bert_forward on an encoder that was not built");
    if (check_inputs(m, tokens, token_types, B, L, e) != 0) return -1;
    const int H = m->cfg.hidden, nl = m->cfg.layers, N = B * L, nm = nl + 2;
    const size_t NH = (size_t)N * H;
    m->B = B;
    m->L = L;
    m->mask = mask; /* replaced by its device copy below for a device backend */
    m->sequence = m->pooled = NULL;
    s->training = training;
    s->p = training ? m->cfg.dropout : 0.f;
    s->tokens = tokens;
    s->gbuf[0] = s->gbuf[1] = NULL;
    s->eseed = site_seed(dropout_seed, 0);
    for (int l = 0; l < nl; l++) {
        s->act[l].seed_att = site_seed(dropout_seed, 1 + 3 * l);
        s->act[l].seed1 = site_seed(dropout_seed, 2 + 3 * l);
        s->act[l].seed2 = site_seed(dropout_seed, 3 + 3 * l);
    }
    /* position ids 0..L-1 per row; token types 0 when not given (HF's buffered zeros).
     * The batch (tokens, types, mask) lives on the host; ids are built there. The CPU
     * backend writes them straight into the arena; a device backend builds them in a
     * host staging buffer (grown only when N grows, so the steady state allocates
     * nothing) and copies ids, tokens and mask into the device arena. */
    const int on_host = be->device == DEV_CPU;
    s->pos_ids = arena_alloc(a, (size_t)N * sizeof(int32_t));
    s->type_ids = arena_alloc(a, (size_t)N * sizeof(int32_t));
    s->ws = arena_floats(a, be->attention_workspace(be, B, L, m->cfg.heads, H / m->cfg.heads) + 1);
    if (!s->pos_ids || !s->type_ids || !s->ws) return oom(e, "position ids");
    if (!on_host && s->host_cap < (size_t)3 * N) {
        int32_t *grown = realloc(s->host_ids, (size_t)3 * N * sizeof(int32_t));
        if (!grown) return oom(e, "position ids (host staging)");
        s->host_ids = grown;
        s->host_cap = (size_t)3 * N;
    }
    int32_t *pos = on_host ? s->pos_ids : s->host_ids;
    int32_t *typ = on_host ? s->type_ids : s->host_ids + N;
    for (int b = 0; b < B; b++)
        for (int l = 0; l < L; l++) {
            pos[(size_t)b * L + l] = l;
            typ[(size_t)b * L + l] = token_types ? token_types[(size_t)b * L + l] : 0;
        }
    if (!on_host) {
        int32_t *dtok = arena_alloc(a, (size_t)N * sizeof(int32_t));
        float *dmask = mask ? arena_floats(a, (size_t)N) : NULL;
        if (!dtok || (mask && !dmask)) return oom(e, "token ids");
        be->copy_h2d(be, s->pos_ids, pos, (size_t)N * sizeof(int32_t));
        be->copy_h2d(be, s->type_ids, typ, (size_t)N * sizeof(int32_t));
        be->copy_h2d(be, dtok, tokens, (size_t)N * sizeof(int32_t));
        if (mask) be->copy_h2d(be, dmask, mask, (size_t)N * sizeof(float));
        s->tokens = dtok;
        mask = dmask;
        m->mask = dmask;
    }

    s->bwd_from = nm;
    if (training)
        for (int mod = 0; mod < nm; mod++)
            if (module_trainable(m, mod)) {
                s->bwd_from = mod;
                break;
            }
    /* modules 0..nl produce [N, H]; those below bwd_from write into ping-pong buffers */
    float *pp[2] = {NULL, NULL};
    if (s->bwd_from > 0) {
        pp[0] = arena_floats(a, NH);
        pp[1] = arena_floats(a, NH);
        if (!pp[0] || !pp[1]) return oom(e, "forward buffers");
    }
    const float *cur = NULL;
    for (int mod = 0; mod <= nl; mod++) {
        int keep = mod >= s->bwd_from;
        size_t mark = arena_mark(a);
        float *out = keep ? arena_floats(a, NH) : pp[mod & 1];
        if (!out) return oom(e, "layer output");
        int rc = mod == 0 ? embed_forward(m, be, keep, out, a, e)
                          : layer_forward(m, be, mod - 1, cur, mask, keep, out, a, e);
        if (rc != 0) return err_prefix(e, "%s", m->prefix);
        if (!keep) arena_rewind(a, mark);
        cur = out;
    }
    m->sequence = (float *)cur;
    /* pooled = tanh(sequence[:, 0] Wp^T + bp) */
    s->first = arena_floats(a, (size_t)B * H);
    m->pooled = arena_floats(a, (size_t)B * H);
    if (!s->first || !m->pooled) return oom(e, "pooler");
    for (int b = 0; b < B; b++) be->copy_d2d(be, s->first + (size_t)b * H, cur + (size_t)b * L * H, (size_t)H * sizeof(float));
    be->linear_forward(be, B, H, H, s->first, ps_value(ps, s->pool_w), ps_value(ps, s->pool_b), m->pooled);
    be->tanh_forward(be, (size_t)B * H, m->pooled, m->pooled);
    return 0;
}

/* ---- backward ---- */

/* dout: gradient w.r.t. the layer output. dx: accumulated input gradient (NULL: not needed).
 *   dr2 = LN2'(dout) ; dx1 = dr2 ; dhg = W2^T-backward of drop'(dr2) ; dhpre = gelu'(dhg)
 *   dx1 += W1-backward(dhpre) ; dr1 = LN1'(dx1) ; dx += dr1 ; dctx = Wo-backward(drop'(dr1))
 *   dq, dk, dv = attention'(dctx) ; dx += Wq/Wk/Wv-backward */
static int layer_backward(Bert *m, const Backend *be, int l, const float *dout, float *dx, Arena *a, Err *e) {
    BertState *s = m->st;
    ParamStore *ps = m->ps;
    const BertLayerIdx *ix = &s->li[l];
    const BertLayerAct *t = &s->act[l];
    const int B = m->B, L = m->L, H = m->cfg.hidden, F = m->cfg.ffn, nh = m->cfg.heads, hd = H / nh;
    const int N = B * L;
    const size_t NH = (size_t)N * H, NF = (size_t)N * F;
    const float p = s->p;
    size_t mark = arena_mark(a);
    float *dr2 = arena_zeros(a, NH), *dx1 = arena_zeros(a, NH), *do2 = arena_zeros(a, NH);
    float *dhg = arena_zeros(a, NF), *dhpre = arena_zeros(a, NF);
    float *dr1 = arena_zeros(a, NH), *dao = arena_zeros(a, NH), *dctx = arena_zeros(a, NH);
    float *dq = arena_zeros(a, NH), *dk = arena_zeros(a, NH), *dv = arena_zeros(a, NH);
    if (!dr2 || !dx1 || !do2 || !dhg || !dhpre || !dr1 || !dao || !dctx || !dq || !dk || !dv)
        return oom(e, "layer gradients");
    /* output block */
    be->layernorm_backward(be, N, H, t->r2, ps_value(ps, ix->ln2_w), t->mean2, t->rstd2, dout, dr2,
                           ps_grad(ps, ix->ln2_w), ps_grad(ps, ix->ln2_b));
    be->add_backward(be, NH, dr2, dx1, NULL);
    be->dropout_backward(be, NH, p, t->dm2, dr2, do2);
    be->linear_backward(be, N, F, H, t->hg, ps_value(ps, ix->o_w), do2, dhg, ps_grad(ps, ix->o_w),
                        ps_grad(ps, ix->o_b));
    be->gelu_backward(be, NF, t->hpre, dhg, dhpre);
    be->linear_backward(be, N, H, F, t->x1, ps_value(ps, ix->i_w), dhpre, dx1, ps_grad(ps, ix->i_w),
                        ps_grad(ps, ix->i_b));
    /* attention block */
    be->layernorm_backward(be, N, H, t->r1, ps_value(ps, ix->ln1_w), t->mean1, t->rstd1, dx1, dr1,
                           ps_grad(ps, ix->ln1_w), ps_grad(ps, ix->ln1_b));
    if (dx) be->add_backward(be, NH, dr1, dx, NULL);
    be->dropout_backward(be, NH, p, t->dm1, dr1, dao);
    be->linear_backward(be, N, H, H, t->ctx, ps_value(ps, ix->ao_w), dao, dctx, ps_grad(ps, ix->ao_w),
                        ps_grad(ps, ix->ao_b));
    be->attention_backward(be, B, L, nh, hd, t->q, t->k, t->v, t->probs, t->dm_att, p, dctx, dq, dk, dv, s->ws);
    be->linear_backward(be, N, H, H, t->x, ps_value(ps, ix->q_w), dq, dx, ps_grad(ps, ix->q_w), ps_grad(ps, ix->q_b));
    be->linear_backward(be, N, H, H, t->x, ps_value(ps, ix->k_w), dk, dx, ps_grad(ps, ix->k_w), ps_grad(ps, ix->k_b));
    be->linear_backward(be, N, H, H, t->x, ps_value(ps, ix->v_w), dv, dx, ps_grad(ps, ix->v_w), ps_grad(ps, ix->v_b));
    arena_rewind(a, mark);
    return 0;
}

/* dout: gradient w.r.t. the embedding output (after dropout) */
static int embed_backward(Bert *m, const Backend *be, const float *dout, Arena *a, Err *e) {
    BertState *s = m->st;
    ParamStore *ps = m->ps;
    const int H = m->cfg.hidden, N = m->B * m->L;
    const size_t NH = (size_t)N * H;
    float *dw = ps_grad(ps, s->word), *dp = ps_grad(ps, s->pos), *dt = ps_grad(ps, s->type);
    size_t mark = arena_mark(a);
    float *dln = arena_zeros(a, NH), *dsum = (dw || dp || dt) ? arena_zeros(a, NH) : NULL;
    if (!dln || ((dw || dp || dt) && !dsum)) return oom(e, "embedding gradients");
    be->dropout_backward(be, NH, s->p, s->edm, dout, dln);
    be->layernorm_backward(be, N, H, s->esum, ps_value(ps, s->eln_w), s->emean, s->erstd, dln, dsum,
                           ps_grad(ps, s->eln_w), ps_grad(ps, s->eln_b));
    /* HF: only the word embedding has padding_idx (no gradient into the [PAD] row) */
    if (dw) be->embedding_backward(be, N, m->cfg.vocab, H, s->tokens, m->cfg.pad_token_id, dsum, dw);
    if (dp) be->embedding_backward(be, N, m->cfg.max_positions, H, s->pos_ids, -1, dsum, dp);
    if (dt) be->embedding_backward(be, N, m->cfg.type_vocab, H, s->type_ids, -1, dsum, dt);
    arena_rewind(a, mark);
    return 0;
}

/* Gradient-ready report: the tensors from `first` on have their final gradients. */
static void report_ready(const Bert *m, int first) {
    if (m->grad_ready.fn) m->grad_ready.fn(m->grad_ready.ctx, ps_grads_from(m->ps, first));
}

int bert_backward(Bert *m, const Backend *be, const float *dsequence, const float *dpooled, Arena *a, Err *e) {
    BertState *s = m->st;
    ParamStore *ps = m->ps;
    if (!s || !m->pooled) return err_set(e, "bert_backward before bert_forward");
    if (!s->training) return err_set(e, "bert_backward after an inference forward");
    const int B = m->B, L = m->L, H = m->cfg.hidden, nl = m->cfg.layers;
    const size_t NH = (size_t)B * L * H;
    int into_seq = s->bwd_from <= nl; /* something at or below the last layer trains */
    if (s->bwd_from > nl + 1) return 0; /* fully frozen */

    /* pooler: dpre = tanh'(dpooled); dfirst = dpre Wp */
    float *dfirst = NULL;
    if (dpooled) {
        size_t mark = arena_mark(a);
        float *dpre = arena_zeros(a, (size_t)B * H);
        if (!dpre) return oom(e, "pooler gradient");
        if (into_seq && !(dfirst = arena_zeros(a, (size_t)B * H))) return oom(e, "pooler gradient");
        be->tanh_backward(be, (size_t)B * H, m->pooled, dpooled, dpre);
        be->linear_backward(be, B, H, H, s->first, ps_value(ps, s->pool_w), dpre, dfirst, ps_grad(ps, s->pool_w),
                            ps_grad(ps, s->pool_b));
        if (!dfirst) arena_rewind(a, mark);
        report_ready(m, s->pool_first);
    }
    if (!into_seq || (!dfirst && !dsequence)) return 0;

    /* d(sequence) = dsequence + dfirst scattered into position 0 of each row */
    if (!s->gbuf[0]) {
        s->gbuf[0] = arena_floats(a, NH);
        s->gbuf[1] = arena_floats(a, NH);
        if (!s->gbuf[0] || !s->gbuf[1]) return oom(e, "backward buffers");
    }
    float *dcur = s->gbuf[0];
    be->memset_zero(be, dcur, NH * sizeof(float));
    if (dsequence) be->add_forward(be, DT_F32, NH, dcur, dsequence, dcur);
    if (dfirst)
        for (int b = 0; b < B; b++)
            be->add_forward(be, DT_F32, (size_t)H, dcur + (size_t)b * L * H, dfirst + (size_t)b * H, dcur + (size_t)b * L * H);

    int k = 1;
    for (int mod = nl; mod >= s->bwd_from; mod--) {
        if (mod == 0) {
            if (embed_backward(m, be, dcur, a, e) != 0) return -1;
            report_ready(m, s->emb_first);
            break;
        }
        float *dprev = NULL;
        if (mod > s->bwd_from) { /* a trainable module below needs this layer's input gradient */
            dprev = s->gbuf[k];
            be->memset_zero(be, dprev, NH * sizeof(float));
        }
        if (layer_backward(m, be, mod - 1, dcur, dprev, a, e) != 0) return -1;
        report_ready(m, s->li[mod - 1].first);
        dcur = dprev;
        k ^= 1;
    }
    return 0;
}
