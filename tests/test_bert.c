/* test_bert.c: the Hugging Face BertModel text encoder: TinyBERT parameter count and names,
 * config errors, finite-difference gradients of every parameter kind (dropout off and on,
 * padding in the mask), freezing (no grad slots, unchanged gradients of the trainable rest,
 * backward stopping at the lowest trainable layer), deterministic dropout, a steady-state
 * arena, loading a `bert.`-prefixed checkpoint with extra tensors, and parity with Hugging
 * Face transformers (tests/ref/bert_*.safetensors from tools/gen_bert_refs.py): forward of
 * the full TinyBERT 4L-312D and forward + every parameter gradient of a small config.
 *
 *   test_bert --write-inputs DIR   writes the parity cases' weights and inputs for the script */
// TEST_LIBS: vqa_model
// TEST_LABELS: unit
// TEST_TIMEOUT: 300
#include <unistd.h>

#include "io/safetensors.h"
#include "model/bert.h"
#include "model/vqa_model.h"
#include "model_refs.h"
#include "testlib.h"

/* ---- a small net: store + encoder + arena ---- */

typedef struct Net {
    ParamStore ps;
    Bert m;
    Arena a;
} Net;

static BertConfig tiny_config(int layers) {
    BertConfig c;
    bert_config_tinybert(&c);
    c.layers = layers;
    c.hidden = 8;
    c.heads = 2;
    c.ffn = 12;
    c.vocab = 20;
    c.max_positions = 10;
    c.type_vocab = 2;
    c.dropout = 0.0f;
    return c;
}

/* Weights of O(1) effect (HF's N(0, 0.02) init would make attention nearly uniform and
 * hide mistakes): linear W ~ U(+-1.5/sqrt(in)), biases U(+-0.2), embeddings U(+-1),
 * LayerNorm weight U(0.6, 1.4), bias U(+-0.2). Drawn per tensor from (seed, name) order. */
static void randomize(ParamStore *ps, uint64_t seed) {
    TestRng r = {seed * 0x2545F4914F6CDD1Dull + 1};
    for (int i = 0; i < ps_count(ps); i++) {
        const ParamInfo *p = ps_info(ps, i);
        float *x = ps_value(ps, i);
        size_t L = strlen(p->name);
        int is_w = L >= 6 && strcmp(p->name + L - 6, "weight") == 0;
        if (p->kind == PK_WEIGHT) {
            float a = 1.5f / sqrtf((float)p->shape[1]);
            trng_fill(&r, x, p->numel, -a, a);
        } else if (p->kind == PK_EMBEDDING) {
            trng_fill(&r, x, p->numel, -1.f, 1.f);
        } else if (p->kind == PK_NORM && is_w) {
            trng_fill(&r, x, p->numel, 0.6f, 1.4f);
        } else {
            trng_fill(&r, x, p->numel, -0.2f, 0.2f);
        }
    }
}

/* frozen: NULL-terminated list of name prefixes (after prefix) to freeze */
static int net_build(Net *n, const BertConfig *c, const char *prefix, const char *const *frozen, uint64_t seed) {
    Err e;
    ps_init(&n->ps);
    arena_init(&n->a, 0);
    if (bert_build(&n->m, c, &n->ps, prefix, PG_TEXT, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    for (int i = 0; frozen && frozen[i]; i++) {
        char p[PS_NAME_MAX];
        snprintf(p, sizeof p, "%s%s", prefix, frozen[i]);
        if (ps_set_trainable_prefix(&n->ps, p, 0) <= 0) {
            fprintf(stderr, "freeze prefix %s matched nothing\n", p);
            return -1;
        }
    }
    if (ps_finalize(&n->ps, backend_cpu(), &e) != 0 || ps_init_values(&n->ps, seed, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    randomize(&n->ps, seed);
    return 0;
}

static void net_free(Net *n) {
    bert_free(&n->m);
    ps_free(&n->ps);
    arena_free(&n->a);
}

/* Inputs: row b has len[b] real tokens ([CLS]-like id first), then [PAD] = 0 with mask 0. */
typedef struct Inputs {
    int B, L;
    int32_t *tok, *tt;
    float *mask, *dseq, *dpool;
} Inputs;

static void inputs_make(Inputs *in, const BertConfig *c, int B, int L, uint64_t seed) {
    TestRng r = {seed * 7919 + 3};
    in->B = B;
    in->L = L;
    in->tok = malloc((size_t)B * L * sizeof *in->tok);
    in->tt = malloc((size_t)B * L * sizeof *in->tt);
    in->mask = malloc((size_t)B * L * sizeof *in->mask);
    in->dseq = malloc((size_t)B * L * c->hidden * sizeof *in->dseq);
    in->dpool = malloc((size_t)B * c->hidden * sizeof *in->dpool);
    for (int b = 0; b < B; b++) {
        int len = b == 0 ? L : L - 1 - (int)(trng_u64(&r) % (uint64_t)(L / 2)); /* row 0 full, others padded */
        int split = 1 + (int)(trng_u64(&r) % (uint64_t)len);                    /* types: 0 then 1 */
        for (int l = 0; l < L; l++) {
            size_t i = (size_t)b * L + l;
            int real = l < len;
            in->tok[i] = real ? 1 + (int32_t)(trng_u64(&r) % (uint64_t)(c->vocab - 1)) : 0;
            in->tt[i] = real && b % 2 == 1 && l >= split ? 1 : 0;
            in->mask[i] = real ? 1.f : 0.f;
        }
    }
    trng_fill(&r, in->dseq, (size_t)B * L * c->hidden, -1.f, 1.f);
    trng_fill(&r, in->dpool, (size_t)B * c->hidden, -1.f, 1.f);
}

static void inputs_free(Inputs *in) {
    free(in->tok);
    free(in->tt);
    free(in->mask);
    free(in->dseq);
    free(in->dpool);
}

static int forward(Net *n, const Inputs *in, int training, uint64_t seed) {
    Err e;
    arena_reset(&n->a);
    if (bert_forward(&n->m, backend_cpu(), in->tok, in->tt, in->mask, in->B, in->L, training, seed, &n->a, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    return 0;
}

/* loss = sum(sequence * dseq) + sum(pooled * dpool), in double */
static double loss_of(const Net *n, const Inputs *in) {
    size_t ns = (size_t)in->B * in->L * n->m.cfg.hidden, np = (size_t)in->B * n->m.cfg.hidden;
    double s = 0;
    for (size_t i = 0; i < ns; i++) s += (double)n->m.sequence[i] * in->dseq[i];
    for (size_t i = 0; i < np; i++) s += (double)n->m.pooled[i] * in->dpool[i];
    return s;
}

static int forward_backward(Net *n, const Inputs *in, uint64_t seed) {
    Err e;
    ps_zero_grads(&n->ps);
    if (forward(n, in, 1, seed) != 0) return -1;
    if (bert_backward(&n->m, backend_cpu(), in->dseq, in->dpool, &n->a, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    return 0;
}

/* ---- structure ---- */

static void tinybert_has_14350248_parameters_in_hf_order(void) {
    ParamStore ps;
    Bert m;
    Err e;
    BertConfig c;
    bert_config_tinybert(&c);
    ps_init(&ps);
    CHECK(bert_build(&m, &c, &ps, "text_encoder.", PG_TEXT, &e) == 0);
    /* by hand: embeddings 30522*312 + 512*312 + 2*312 + 2*312 = 9,683,856;
     * a layer 4*(312*312+312) + 2*312 + (312*1200+1200) + (1200*312+312) + 2*312 = 1,142,184;
     * pooler 312*312+312 = 97,656 -> 9,683,856 + 4*1,142,184 + 97,656 */
    CHECK_MSG(ps_numel(&ps, -1, 0) == 14350248, "%zu parameters", ps_numel(&ps, -1, 0));
    CHECK_MSG(ps_count(&ps) == 5 + 16 * 4 + 2, "%d tensors", ps_count(&ps));
    CHECK(m.first_param == 0 && m.end_param == ps_count(&ps));
    static const struct { const char *name; int ndim; int64_t s[2]; } want[] = {
        {"embeddings.word_embeddings.weight", 2, {30522, 312}},
        {"embeddings.position_embeddings.weight", 2, {512, 312}},
        {"embeddings.token_type_embeddings.weight", 2, {2, 312}},
        {"embeddings.LayerNorm.weight", 1, {312}},
        {"embeddings.LayerNorm.bias", 1, {312}},
        {"encoder.layer.0.attention.self.query.weight", 2, {312, 312}},
        {"encoder.layer.0.attention.self.query.bias", 1, {312}},
        {"encoder.layer.0.attention.self.key.weight", 2, {312, 312}},
        {"encoder.layer.0.attention.self.key.bias", 1, {312}},
        {"encoder.layer.0.attention.self.value.weight", 2, {312, 312}},
        {"encoder.layer.0.attention.self.value.bias", 1, {312}},
        {"encoder.layer.0.attention.output.dense.weight", 2, {312, 312}},
        {"encoder.layer.0.attention.output.dense.bias", 1, {312}},
        {"encoder.layer.0.attention.output.LayerNorm.weight", 1, {312}},
        {"encoder.layer.0.attention.output.LayerNorm.bias", 1, {312}},
        {"encoder.layer.0.intermediate.dense.weight", 2, {1200, 312}},
        {"encoder.layer.0.intermediate.dense.bias", 1, {1200}},
        {"encoder.layer.0.output.dense.weight", 2, {312, 1200}},
        {"encoder.layer.0.output.dense.bias", 1, {312}},
        {"encoder.layer.0.output.LayerNorm.weight", 1, {312}},
        {"encoder.layer.0.output.LayerNorm.bias", 1, {312}},
        {"encoder.layer.1.attention.self.query.weight", 2, {312, 312}},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const ParamInfo *p = ps_info(&ps, (int)i);
        char full[PS_NAME_MAX];
        snprintf(full, sizeof full, "text_encoder.%s", want[i].name);
        CHECK_MSG(strcmp(p->name, full) == 0, "tensor %zu is %s, expected %s", i, p->name, full);
        CHECK(p->ndim == want[i].ndim && p->shape[0] == want[i].s[0] && (p->ndim == 1 || p->shape[1] == want[i].s[1]));
        CHECK(p->group == PG_TEXT);
    }
    int n = ps_count(&ps);
    CHECK(strcmp(ps_info(&ps, n - 3)->name, "text_encoder.encoder.layer.3.output.LayerNorm.bias") == 0);
    CHECK(strcmp(ps_info(&ps, n - 2)->name, "text_encoder.pooler.dense.weight") == 0);
    CHECK(strcmp(ps_info(&ps, n - 1)->name, "text_encoder.pooler.dense.bias") == 0);
    /* kinds drive weight decay: HF's no_decay = bias and LayerNorm.weight */
    CHECK(ps_info(&ps, 0)->kind == PK_EMBEDDING && ps_decay(ps_info(&ps, 0)));
    CHECK(ps_info(&ps, 3)->kind == PK_NORM && !ps_decay(ps_info(&ps, 3)));
    CHECK(ps_info(&ps, 5)->kind == PK_WEIGHT && ps_decay(ps_info(&ps, 5)));
    CHECK(ps_info(&ps, 6)->kind == PK_BIAS && !ps_decay(ps_info(&ps, 6)));
    bert_free(&m);
    ps_free(&ps);
}

static void hf_init_zeroes_pad_row_and_uses_std_002(void) {
    BertConfig c = tiny_config(1);
    c.vocab = 2000; /* enough samples for the std */
    c.hidden = 16;
    ParamStore ps;
    Bert m;
    Err e;
    ps_init(&ps);
    CHECK(bert_build(&m, &c, &ps, "", PG_TEXT, &e) == 0);
    CHECK(ps_finalize(&ps, backend_cpu(), &e) == 0 && ps_init_values(&ps, 5, &e) == 0);
    const float *w = ps_value(&ps, ps_find(&ps, "embeddings.word_embeddings.weight"));
    double s2 = 0;
    int zero_row = 1;
    for (int d = 0; d < c.hidden; d++) zero_row &= w[d] == 0.f;
    for (size_t i = (size_t)c.hidden; i < (size_t)c.vocab * c.hidden; i++) s2 += (double)w[i] * w[i];
    double sd = sqrt(s2 / ((double)(c.vocab - 1) * c.hidden));
    CHECK_MSG(zero_row, "row pad_token_id = 0 is not zero");
    CHECK_MSG(fabs(sd - 0.02) < 0.001, "word embedding std %g", sd);
    const float *lw = ps_value(&ps, ps_find(&ps, "embeddings.LayerNorm.weight"));
    const float *qb = ps_value(&ps, ps_find(&ps, "encoder.layer.0.attention.self.query.bias"));
    CHECK(lw[0] == 1.f && lw[c.hidden - 1] == 1.f && qb[0] == 0.f && qb[c.hidden - 1] == 0.f);
    bert_free(&m);
    ps_free(&ps);
}

static void bad_configs_and_inputs_name_the_problem(void) {
    BertConfig c = tiny_config(1);
    Err e;
    c.heads = 3;
    CHECK(bert_config_check(&c, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "hidden = 8 is not a multiple of heads = 3");
    c = tiny_config(1);
    c.dropout = 1.0f;
    CHECK(bert_config_check(&c, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "dropout");
    c = tiny_config(1);
    c.ffn = 0;
    CHECK(bert_config_check(&c, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "ffn = 0");

    Net n;
    c = tiny_config(1);
    if (net_build(&n, &c, "", NULL, 1) != 0) { CHECK(0); return; }
    int32_t tok[2 * 3] = {1, 2, 3, 4, 20, 0};
    int32_t tt[2 * 3] = {0, 0, 0, 0, 0, 2};
    CHECK(bert_forward(&n.m, backend_cpu(), tok, NULL, NULL, 2, 3, 0, 0, &n.a, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "token id 20 at batch row 1, position 1");
    tok[4] = 5;
    CHECK(bert_forward(&n.m, backend_cpu(), tok, tt, NULL, 2, 3, 0, 0, &n.a, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "token type 2 at batch row 1, position 2");
    int32_t longtok[11] = {0};
    CHECK(bert_forward(&n.m, backend_cpu(), longtok, NULL, NULL, 1, 11, 0, 0, &n.a, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "sequence length 11 exceeds max_positions 10");
    CHECK(bert_backward(&n.m, backend_cpu(), NULL, NULL, &n.a, &e) != 0);
    CHECK(bert_forward(&n.m, backend_cpu(), tok, NULL, NULL, 2, 3, 0, 0, &n.a, &e) == 0);
    CHECK(bert_backward(&n.m, backend_cpu(), NULL, NULL, &n.a, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "inference forward");
    net_free(&n);
}

/* ---- finite differences ---- */

typedef struct FdCtx {
    Net *n;
    const Inputs *in;
    uint64_t seed;
} FdCtx;

static double fd_loss(void *p) {
    FdCtx *c = p;
    if (forward(c->n, c->in, 1, c->seed) != 0) return NAN;
    return loss_of(c->n, c->in);
}

/* Checks every tensor of the net on up to `per` evenly spaced elements (the word
 * embedding: the rows of two real tokens; its [PAD] row must get exactly 0, as HF's
 * padding_idx). Returns the worst relative error. */
static double fd_all(Net *n, const Inputs *in, uint64_t seed, int per, double tol) {
    FdCtx ctx = {n, in, seed};
    if (forward_backward(n, in, seed) != 0) return 1e30;
    double worst = 0;
    int H = n->m.cfg.hidden;
    for (int i = n->m.first_param; i < n->m.end_param; i++) {
        const ParamInfo *p = ps_info(&n->ps, i);
        float *v = ps_value(&n->ps, i), *g = ps_grad(&n->ps, i);
        if (!g) continue;
        double err;
        if (strstr(p->name, "key.bias")) {
            /* q.(k + bk) shifts a whole row of scores by q.bk: softmax ignores it, the exact
             * gradient is 0 (relative finite differences are meaningless here) */
            double mx = 0;
            for (size_t k = 0; k < p->numel; k++) mx = fmax(mx, fabs(g[k]));
            CHECK_MSG(mx < 1e-5, "%s: gradient %.3g, exactly 0 in exact arithmetic", p->name, mx);
            continue;
        }
        if (strstr(p->name, "word_embeddings")) {
            int pad_zero = 1;
            for (int d = 0; d < H; d++) pad_zero &= g[d] == 0.f;
            CHECK_MSG(pad_zero, "the [PAD] row of the word embedding has a gradient");
            int r1 = in->tok[1], r2 = in->tok[in->L + 1];
            double e1 = gradcheck(fd_loss, &ctx, v + (size_t)r1 * H, g + (size_t)r1 * H, (size_t)H, 1e-2, 0);
            double e2 = gradcheck(fd_loss, &ctx, v + (size_t)r2 * H, g + (size_t)r2 * H, (size_t)H, 1e-2, 0);
            err = e1 > e2 ? e1 : e2;
        } else {
            err = gradcheck(fd_loss, &ctx, v, g, p->numel, 1e-2, (size_t)per);
        }
        if (err > worst) worst = err;
        CHECK_MSG(err < tol, "%s: relative error %.3g vs finite differences", p->name, err);
    }
    return worst;
}

static void gradients_match_finite_differences_with_padding(void) {
    BertConfig c = tiny_config(2);
    Net n;
    if (net_build(&n, &c, "", NULL, 3) != 0) { CHECK(0); return; }
    Inputs in;
    inputs_make(&in, &c, 3, 6, 3);
    CHECK(in.mask[2 * 6 - 1] == 0.f && in.mask[3 * 6 - 1] == 0.f); /* rows 1, 2 padded */
    double worst = fd_all(&n, &in, 9, 12, 5e-3);
    fprintf(stderr, "  all %d tensors, worst relative error %.2g\n", ps_count(&n.ps), worst);
    inputs_free(&in);
    net_free(&n);
}

/* dropout masks are a function of the seed, so the same forward can be differenced */
static void gradients_match_finite_differences_with_dropout(void) {
    BertConfig c = tiny_config(2);
    c.dropout = 0.2f;
    Net n;
    if (net_build(&n, &c, "", NULL, 4) != 0) { CHECK(0); return; }
    Inputs in;
    inputs_make(&in, &c, 2, 7, 4);
    double worst = fd_all(&n, &in, 1234, 8, 5e-3);
    fprintf(stderr, "  dropout 0.2: worst relative error %.2g\n", worst);
    inputs_free(&in);
    net_free(&n);
}

/* ---- dropout and eval ---- */

static int same(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof *a) == 0; }

static void dropout_is_seeded_and_off_in_eval(void) {
    BertConfig c = tiny_config(2), c0 = tiny_config(2);
    c.dropout = 0.3f;
    Net n, n0;
    if (net_build(&n, &c, "", NULL, 6) != 0 || net_build(&n0, &c0, "", NULL, 6) != 0) { CHECK(0); return; }
    Inputs in;
    inputs_make(&in, &c, 2, 5, 6);
    size_t ns = (size_t)2 * 5 * c.hidden;
    float *a = malloc(ns * sizeof *a), *b = malloc(ns * sizeof *b);
    CHECK(forward(&n, &in, 1, 77) == 0);
    memcpy(a, n.m.sequence, ns * sizeof *a);
    CHECK(forward(&n, &in, 1, 77) == 0);
    CHECK_MSG(same(a, n.m.sequence, ns), "same seed, different output");
    CHECK(forward(&n, &in, 1, 78) == 0);
    CHECK_MSG(!same(a, n.m.sequence, ns), "different seed, same output");
    /* eval = the same weights with dropout 0 in training mode */
    CHECK(forward(&n, &in, 0, 77) == 0);
    memcpy(b, n.m.sequence, ns * sizeof *b);
    CHECK(forward(&n0, &in, 1, 77) == 0);
    CHECK_MSG(same(b, n0.m.sequence, ns), "eval forward still applies dropout");
    CHECK_MSG(!same(a, b, ns), "training forward applied no dropout");
    CHECK(n.m.mask == in.mask && n.m.B == 2 && n.m.L == 5);
    free(a);
    free(b);
    inputs_free(&in);
    net_free(&n);
    net_free(&n0);
}

static void second_step_allocates_nothing(void) {
    BertConfig c = tiny_config(2);
    c.dropout = 0.1f;
    Net n;
    if (net_build(&n, &c, "", NULL, 8) != 0) { CHECK(0); return; }
    Inputs in;
    inputs_make(&in, &c, 3, 8, 8);
    uint64_t before = 0;
    for (int step = 0; step < 3; step++) {
        if (step == 1) before = n.a.n_sys_allocs;
        CHECK(forward_backward(&n, &in, (uint64_t)step) == 0);
    }
    CHECK_MSG(n.a.n_sys_allocs == before, "steps 2-3 made %llu allocations",
              (unsigned long long)(n.a.n_sys_allocs - before));
    inputs_free(&in);
    net_free(&n);
}

/* ---- freezing ---- */

/* A Backend that counts the backward ops that prove where backward stopped. Test-only
 * counters (the library has no global state; this program may). */
static int g_ln_bwd, g_emb_bwd, g_attn_bwd;
static void count_ln_bwd(const Backend *be, int N, int D, const float *x, const float *w, const float *mean, const float *rstd,
                         const float *dy, float *dx, float *dw, float *db) {
    g_ln_bwd++;
    backend_cpu()->layernorm_backward(backend_cpu(), N, D, x, w, mean, rstd, dy, dx, dw, db);
}
static void count_emb_bwd(const Backend *be, int N, int V, int D, const int32_t *ids, int pad, const float *dy, float *dt) {
    g_emb_bwd++;
    backend_cpu()->embedding_backward(backend_cpu(), N, V, D, ids, pad, dy, dt);
}
static void count_attn_bwd(const Backend *be, int B, int L, int nh, int hd, const float *q, const float *k, const float *v,
                           const float *probs, const uint8_t *dm, float p, const float *dout, float *dq, float *dk,
                           float *dv, float *ws) {
    g_attn_bwd++;
    backend_cpu()->attention_backward(backend_cpu(), B, L, nh, hd, q, k, v, probs, dm, p, dout, dq, dk, dv, ws);
}

static Backend counting_backend(void) {
    Backend b = *backend_cpu();
    b.layernorm_backward = count_ln_bwd;
    b.embedding_backward = count_emb_bwd;
    b.attention_backward = count_attn_bwd;
    return b;
}

/* runs forward + backward through the counting backend; returns the arena bytes the
 * training forward kept */
static size_t counted_step(Net *n, const Inputs *in, int *ln, int *emb, int *attn) {
    Backend be = counting_backend();
    Err e;
    g_ln_bwd = g_emb_bwd = g_attn_bwd = 0;
    ps_zero_grads(&n->ps);
    arena_reset(&n->a);
    if (bert_forward(&n->m, &be, in->tok, in->tt, in->mask, in->B, in->L, 1, 5, &n->a, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        CHECK(0);
    }
    size_t kept = n->a.used;
    if (bert_backward(&n->m, &be, in->dseq, in->dpool, &n->a, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        CHECK(0);
    }
    *ln = g_ln_bwd;
    *emb = g_emb_bwd;
    *attn = g_attn_bwd;
    return kept;
}

static void frozen_bottom_has_no_grads_same_top_grads_and_stops_backward(void) {
    BertConfig c = tiny_config(3);
    c.dropout = 0.1f;
    static const char *const frozen[] = {"embeddings.", "encoder.layer.0.", NULL};
    Net all, part;
    if (net_build(&all, &c, "", NULL, 10) != 0 || net_build(&part, &c, "", frozen, 10) != 0) { CHECK(0); return; }
    Inputs in;
    inputs_make(&in, &c, 2, 6, 10);
    int ln, emb, attn;
    size_t kept_all = counted_step(&all, &in, &ln, &emb, &attn);
    CHECK_MSG(ln == 7 && emb == 3 && attn == 3, "all trainable: %d LN, %d embedding, %d attention backward", ln,
              emb, attn);
    size_t kept_part = counted_step(&part, &in, &ln, &emb, &attn);
    CHECK_MSG(ln == 4 && emb == 0 && attn == 2, "frozen bottom: %d LN, %d embedding, %d attention backward", ln,
              emb, attn);
    CHECK_MSG(kept_part < kept_all, "frozen layers still keep activations (%zu vs %zu bytes)", kept_part, kept_all);

    size_t want_grads = 0;
    for (int i = 0; i < ps_count(&part.ps); i++) {
        const ParamInfo *p = ps_info(&part.ps, i);
        int should = strncmp(p->name, "embeddings.", 11) != 0 && strncmp(p->name, "encoder.layer.0.", 16) != 0;
        CHECK_MSG((ps_grad(&part.ps, i) != NULL) == should, "%s: grad slot %s", p->name,
                  ps_grad(&part.ps, i) ? "present" : "absent");
        if (!should) continue;
        want_grads += p->numel;
        double err = rel_err(ps_grad(&part.ps, i), ps_grad(&all.ps, i), p->numel);
        CHECK_MSG(err < 1e-6, "%s: gradient changed by freezing the bottom (%.3g)", p->name, err);
    }
    CHECK(part.ps.n_grads == want_grads && want_grads == ps_numel(&part.ps, -1, 1));
    inputs_free(&in);
    net_free(&all);
    net_free(&part);
}

static void freeze_all_keeps_nothing_and_backward_is_a_noop(void) {
    BertConfig c = tiny_config(2);
    static const char *const frozen[] = {"", NULL};
    Net n;
    if (net_build(&n, &c, "", frozen, 11) != 0) { CHECK(0); return; }
    CHECK(n.ps.n_grads == 0);
    Inputs in;
    inputs_make(&in, &c, 2, 6, 11);
    CHECK(forward(&n, &in, 0, 1) == 0);
    size_t eval_used = n.a.used;
    int ln, emb, attn;
    size_t kept = counted_step(&n, &in, &ln, &emb, &attn);
    CHECK_MSG(kept == eval_used, "frozen training forward kept %zu bytes, eval %zu", kept, eval_used);
    CHECK(ln == 0 && emb == 0 && attn == 0);
    inputs_free(&in);
    net_free(&n);
}

/* the VQA model's freeze list [encoder.layer.2, encoder.layer.3, pooler] (vqa_apply_freeze) */
static void freeze_list_trains_only_the_named_layers(void) {
    BertConfig c = tiny_config(4);
    Net n;
    Err e;
    ps_init(&n.ps);
    arena_init(&n.a, 0);
    CHECK(bert_build(&n.m, &c, &n.ps, "text_encoder.", PG_TEXT, &e) == 0);
    const FreezeSpec f = {.mode = FREEZE_LIST, .n = 3, .stage = {"encoder.layer.2", "encoder.layer.3", "pooler"}};
    CHECK(vqa_apply_freeze(&n.ps, "text_encoder.", &f, 1, 4, &e) == 0);
    CHECK(ps_finalize(&n.ps, backend_cpu(), &e) == 0 && ps_init_values(&n.ps, 12, &e) == 0);
    randomize(&n.ps, 12);
    for (int i = 0; i < ps_count(&n.ps); i++) {
        const char *nm = ps_info(&n.ps, i)->name;
        int should = strstr(nm, "encoder.layer.2.") || strstr(nm, "encoder.layer.3.") || strstr(nm, "pooler.");
        CHECK_MSG(ps_trainable(&n.ps, i) == should, "%s trainable = %d", nm, ps_trainable(&n.ps, i));
    }
    Inputs in;
    inputs_make(&in, &c, 2, 5, 12);
    int ln, emb, attn;
    counted_step(&n, &in, &ln, &emb, &attn);
    CHECK_MSG(ln == 4 && emb == 0 && attn == 2, "%d LN, %d embedding, %d attention backward", ln, emb, attn);
    /* only the pooler trains: the layers are not entered at all */
    net_free(&n);
    static const char *const frozen[] = {"embeddings.", "encoder.", NULL};
    if (net_build(&n, &c, "", frozen, 12) != 0) { CHECK(0); return; }
    counted_step(&n, &in, &ln, &emb, &attn);
    CHECK_MSG(ln == 0 && emb == 0 && attn == 0, "pooler only: %d LN backward", ln);
    float *gp = ps_grad(&n.ps, ps_find(&n.ps, "pooler.dense.bias"));
    double s = 0;
    for (int d = 0; d < c.hidden; d++) s += fabs(gp[d]);
    CHECK(gp && s > 0);
    inputs_free(&in);
    net_free(&n);
}

/* ---- loading ---- */

static void tmp_path(char *buf, size_t n, const char *what) {
    snprintf(buf, n, "%s/test_bert_%d_%s.safetensors", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid(),
             what);
}

/* writes every store tensor as "bert." + name, except skip; reshape (if non-NULL) replaces
 * the shape of the named tensor (data: a zero buffer of the new size); plus extras */
static int write_hf_file(const char *path, const ParamStore *ps, const char *skip, const char *reshape,
                         const int64_t *new_shape) {
    StWriter *w = st_writer_new();
    static float zeros[4096];
    char names[80][PS_NAME_MAX];
    int k = 0;
    for (int i = 0; i < ps_count(ps) && k < 80; i++) {
        const ParamInfo *p = ps_info(ps, i);
        if (skip && strcmp(p->name, skip) == 0) continue;
        snprintf(names[k], PS_NAME_MAX, "bert.%s", p->name);
        if (reshape && strcmp(p->name, reshape) == 0) st_writer_add(w, names[k], DT_F32, 2, new_shape, zeros);
        else st_writer_add(w, names[k], DT_F32, p->ndim, p->shape, ps_value(ps, i));
        k++;
    }
    /* what an original TinyBERT checkpoint also carries */
    st_writer_add(w, "cls.predictions.bias", DT_F32, 1, (int64_t[]){20}, zeros);
    st_writer_add(w, "fit_dense.weight", DT_F32, 2, (int64_t[]){16, 8}, zeros);
    Err e;
    int rc = st_writer_save(w, path, &e);
    if (rc) fprintf(stderr, "%s\n", e.msg);
    st_writer_free(w);
    return rc;
}

static void loads_bert_prefixed_checkpoint_and_reports_extras(void) {
    BertConfig c = tiny_config(2);
    Net src, dst;
    if (net_build(&src, &c, "", NULL, 20) != 0 || net_build(&dst, &c, "text_encoder.", NULL, 21) != 0) {
        CHECK(0);
        return;
    }
    char path[512];
    tmp_path(path, sizeof path, "ok");
    CHECK(write_hf_file(path, &src.ps, NULL, NULL, NULL) == 0);
    PsLoadReport rep;
    Err e;
    CHECK(ps_load_safetensors(&dst.ps, path, "text_encoder.", "bert.", &rep, &e) == 0);
    CHECK(rep.loaded == ps_count(&dst.ps) && rep.unused == 2);
    CHECK_STR_CONTAINS(rep.unused_summary, "2 unused tensors");
    CHECK_STR_CONTAINS(rep.unused_summary, "cls.predictions.bias");
    CHECK_STR_CONTAINS(rep.unused_summary, "fit_dense.weight");
    CHECK(strchr(rep.unused_summary, '\n') == NULL);
    /* same weights -> same outputs */
    Inputs in;
    inputs_make(&in, &c, 2, 6, 20);
    CHECK(forward(&src, &in, 0, 0) == 0 && forward(&dst, &in, 0, 0) == 0);
    CHECK(same(src.m.sequence, dst.m.sequence, (size_t)2 * 6 * c.hidden));
    CHECK(same(src.m.pooled, dst.m.pooled, (size_t)2 * c.hidden));
    unlink(path);

    tmp_path(path, sizeof path, "missing");
    CHECK(write_hf_file(path, &src.ps, "encoder.layer.1.output.dense.bias", NULL, NULL) == 0);
    CHECK(ps_load_safetensors(&dst.ps, path, "text_encoder.", "bert.", &rep, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "bert.encoder.layer.1.output.dense.bias");
    CHECK_STR_CONTAINS(e.msg, "missing");
    unlink(path);

    tmp_path(path, sizeof path, "shape");
    CHECK(write_hf_file(path, &src.ps, NULL, "encoder.layer.0.intermediate.dense.weight", (int64_t[]){8, 12}) == 0);
    CHECK(ps_load_safetensors(&dst.ps, path, "text_encoder.", "bert.", &rep, &e) != 0);
    CHECK_STR_CONTAINS(e.msg, "bert.encoder.layer.0.intermediate.dense.weight");
    CHECK_STR_CONTAINS(e.msg, "[8, 12]");
    CHECK_STR_CONTAINS(e.msg, "[12, 8]");
    unlink(path);
    inputs_free(&in);
    net_free(&src);
    net_free(&dst);
}

/* ---- parity with Hugging Face transformers ---- */

typedef struct ParityCase {
    const char *name;
    int layers, hidden, heads, ffn, vocab, positions, types;
    int B, L, grads;
    uint64_t seed;
} ParityCase;

static const ParityCase k_cases[] = {
    {"small", 2, 32, 4, 48, 60, 16, 2, 3, 9, 1, 31},
    {"tinybert", 4, 312, 12, 1200, 30522, 512, 2, 2, 12, 0, 32},
};

static BertConfig case_config(const ParityCase *pc) {
    BertConfig c;
    bert_config_tinybert(&c);
    c.layers = pc->layers;
    c.hidden = pc->hidden;
    c.heads = pc->heads;
    c.ffn = pc->ffn;
    c.vocab = pc->vocab;
    c.max_positions = pc->positions;
    c.type_vocab = pc->types;
    c.dropout = pc->grads ? 0.0f : 0.1f; /* the forward-only case checks that eval drops nothing */
    return c;
}

static int write_case_inputs(const ParityCase *pc, const char *dir, const Net *n, const Inputs *in) {
    char wpath[600], ipath[600], v[16][32];
    Err e;
    snprintf(wpath, sizeof wpath, "%s/bert_%s_weights.safetensors", dir, pc->name);
    snprintf(ipath, sizeof ipath, "%s/bert_%s_in.safetensors", dir, pc->name);
    if (ps_save_safetensors(&n->ps, wpath, "", "", &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    const BertConfig *c = &n->m.cfg;
    int64_t bl[2] = {in->B, in->L}, blh[3] = {in->B, in->L, c->hidden}, bh[2] = {in->B, c->hidden};
    StWriter *w = st_writer_new();
    st_writer_add(w, "input.tokens", DT_I32, 2, bl, in->tok);
    st_writer_add(w, "input.token_types", DT_I32, 2, bl, in->tt);
    st_writer_add(w, "input.mask", DT_F32, 2, bl, in->mask);
    st_writer_add(w, "input.dsequence", DT_F32, 3, blh, in->dseq);
    st_writer_add(w, "input.dpooled", DT_F32, 2, bh, in->dpool);
    const char *keys[] = {"layers", "hidden", "heads", "ffn", "vocab", "positions", "types", "pad_token_id", "grads"};
    int vals[] = {c->layers, c->hidden, c->heads, c->ffn, c->vocab, c->max_positions, c->type_vocab, c->pad_token_id,
                  pc->grads};
    for (int i = 0; i < 9; i++) {
        snprintf(v[i], sizeof v[i], "%d", vals[i]);
        st_writer_set_meta(w, keys[i], v[i]);
    }
    snprintf(v[9], sizeof v[9], "%.9g", (double)c->eps);
    st_writer_set_meta(w, "eps", v[9]);
    st_writer_set_meta(w, "weights", wpath);
    int rc = st_writer_save(w, ipath, &e);
    if (rc) fprintf(stderr, "%s\n", e.msg);
    else fprintf(stderr, "wrote %s\n", ipath);
    st_writer_free(w);
    return rc;
}

static StFile *open_case_ref(const char *name) {
    char path[600];
    Err e;
    StFile *f = NULL;
    test_ref_path(path, sizeof path, "bert_%s.safetensors", name);
    if (st_open(&f, path, &e) != 0) {
        fprintf(stderr, "reference missing (run tools/gen_bert_refs.py): %s\n", e.msg);
        return NULL;
    }
    return f;
}

/* the reference's stored inputs must be the ones this program regenerates from the seed */
static int stored_inputs_match(const StFile *f, const Inputs *in) {
    const StTensor *t = st_find(f, "input.tokens"), *tt = st_find(f, "input.token_types");
    size_t n = (size_t)in->B * in->L;
    if (!t || !tt || t->dtype != DT_I32 || tt->dtype != DT_I32 || (size_t)t->numel != n || (size_t)tt->numel != n)
        return 0;
    if (memcmp(t->data, in->tok, n * 4) != 0 || memcmp(tt->data, in->tt, n * 4) != 0) return 0;
    return mr_rel_err(f, "input.mask", in->mask, n, NULL) == 0.0 &&
           mr_rel_err(f, "input.dpooled", in->dpool, (size_t)in->B * (size_t)st_find(f, "input.dpooled")->shape[1],
                      NULL) == 0.0;
}

static void run_parity(const ParityCase *pc, const char *dir) {
    BertConfig c = case_config(pc);
    Net n;
    if (net_build(&n, &c, "", NULL, pc->seed) != 0) { CHECK(0); return; }
    Inputs in;
    inputs_make(&in, &c, pc->B, pc->L, pc->seed);
    if (dir) {
        CHECK(write_case_inputs(pc, dir, &n, &in) == 0);
        goto done;
    }
    StFile *ref = open_case_ref(pc->name);
    CHECK(ref != NULL);
    if (!ref) goto done;
    CHECK_MSG(stored_inputs_match(ref, &in), "%s: the reference was made from other inputs", pc->name);
    size_t ns = (size_t)in.B * in.L * c.hidden, np = (size_t)in.B * c.hidden;
    CHECK(forward(&n, &in, 0, 0) == 0);
    double es = mr_rel_err(ref, "out.sequence", n.m.sequence, ns, NULL);
    double ep = mr_rel_err(ref, "out.pooled", n.m.pooled, np, NULL);
    CHECK_MSG(es < 1e-4, "%s sequence relative error %.3g", pc->name, es);
    CHECK_MSG(ep < 1e-4, "%s pooled relative error %.3g", pc->name, ep);
    fprintf(stderr, "  %s eval forward vs HF: sequence %.2g, pooled %.2g\n", pc->name, es, ep);
    if (pc->grads) {
        CHECK(forward_backward(&n, &in, 0) == 0);
        int cnt = 0;
        double worst = mr_check_grads(ref, &n.ps, 1e-3, &cnt);
        CHECK(cnt == ps_count(&n.ps));
        fprintf(stderr, "  %s: %d parameter gradients vs HF, worst relative error %.2g\n", pc->name, cnt, worst);
    }
    st_close(ref);
done:
    inputs_free(&in);
    net_free(&n);
}

static void small_config_forward_and_all_gradients_match_hf(void) { run_parity(&k_cases[0], NULL); }
static void tinybert_4l_312d_forward_matches_hf(void) { run_parity(&k_cases[1], NULL); }

int main(int argc, char **argv) {
    const char *dir = mr_write_dir(argc, argv);
    if (dir) {
        for (size_t i = 0; i < sizeof k_cases / sizeof *k_cases; i++) run_parity(&k_cases[i], dir);
        return test_summary();
    }
    RUN(tinybert_has_14350248_parameters_in_hf_order);
    RUN(hf_init_zeroes_pad_row_and_uses_std_002);
    RUN(bad_configs_and_inputs_name_the_problem);
    RUN(gradients_match_finite_differences_with_padding);
    RUN(gradients_match_finite_differences_with_dropout);
    RUN(dropout_is_seeded_and_off_in_eval);
    RUN(second_step_allocates_nothing);
    RUN(frozen_bottom_has_no_grads_same_top_grads_and_stops_backward);
    RUN(freeze_all_keeps_nothing_and_backward_is_a_noop);
    RUN(freeze_list_trains_only_the_named_layers);
    RUN(loads_bert_prefixed_checkpoint_and_reports_extras);
    RUN(small_config_forward_and_all_gradients_match_hf);
    RUN(tinybert_4l_312d_forward_matches_hf);
    return test_summary();
}
