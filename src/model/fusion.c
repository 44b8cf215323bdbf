/* fusion.c: concat / mul / attention fusion and the classifier MLP, forward and backward
 * (the exact head is written out in fusion.h). */
#include "model/fusion.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int fusion_type_parse(const char *s, FusionType *out) {
    if (strcmp(s, "concat") == 0) *out = FUSION_CONCAT;
    else if (strcmp(s, "mul") == 0) *out = FUSION_MUL;
    else if (strcmp(s, "attention") == 0) *out = FUSION_ATTENTION;
    else return -1;
    return 0;
}

const char *fusion_type_name(FusionType t) {
    switch (t) {
    case FUSION_CONCAT: return "concat";
    case FUSION_MUL: return "mul";
    case FUSION_ATTENTION: return "attention";
    }
    return "?";
}

/* nn.Linear(in, out) with PyTorch's default init U(+-1/sqrt(in)) */
static int add_linear(ParamStore *ps, const char *name, int in, int out, ParamGroup g, int *w,
                      int *b, Err *e) {
    char n[PS_NAME_MAX];
    float bound = 1.0f / sqrtf((float)in);
    int64_t o = out;
    snprintf(n, sizeof n, "%s.weight", name);
    if ((*w = ps_add(ps, n, 2, (int64_t[]){out, in}, PK_WEIGHT, g, pinit_uniform(bound), e)) < 0) return -1;
    snprintf(n, sizeof n, "%s.bias", name);
    if ((*b = ps_add(ps, n, 1, &o, PK_BIAS, g, pinit_uniform(bound), e)) < 0) return -1;
    return 0;
}

static int fused_dim(const FusionConfig *c) { return c->type == FUSION_CONCAT ? 2 * c->hidden : c->hidden; }

int fusion_build(Fusion *m, const FusionConfig *c, ParamStore *ps, Err *e) {
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    m->ps = ps;
    m->att_w = m->att_b = -1;
    if (c->img_dim < 1 || c->txt_dim < 1 || c->hidden < 1 || c->num_answers < 1)
        return err_set(e, "fusion: bad sizes (image %d, text %d, hidden %d, answers %d)", c->img_dim,
                       c->txt_dim, c->hidden, c->num_answers);
    if (!(c->dropout >= 0.f && c->dropout < 1.f))
        return err_set(e, "fusion: dropout %g is not in [0, 1)", (double)c->dropout);
    if (m->cfg.att_scale == 0.f) m->cfg.att_scale = 1.f; /* configs built before the field existed */
    if (!(m->cfg.att_scale > 0.f && m->cfg.att_scale <= 1000.f))
        return err_set(e, "fusion: att_scale %g is not in (0, 1000]", (double)c->att_scale);
    if (add_linear(ps, "fusion.img_proj", c->img_dim, c->hidden, PG_FUSION, &m->img_w, &m->img_b, e) ||
        add_linear(ps, "fusion.txt_proj", c->txt_dim, c->hidden, PG_FUSION, &m->txt_w, &m->txt_b, e))
        return -1;
    if (c->type == FUSION_ATTENTION &&
        add_linear(ps, "fusion.att", c->hidden, 1, PG_FUSION, &m->att_w, &m->att_b, e))
        return -1;
    if (add_linear(ps, "classifier.0", fused_dim(c), c->hidden, PG_CLASSIFIER, &m->c0_w, &m->c0_b, e) ||
        add_linear(ps, "classifier.3", c->hidden, c->num_answers, PG_CLASSIFIER, &m->c3_w, &m->c3_b, e))
        return -1;
    if (c->prior_bias && c->num_answers > 1) /* sigmoid(-log(A - 1)) = 1/A (fusion.h) */
        ps->items[m->c3_b].init = pinit_const(-logf((float)(c->num_answers - 1)));
    return 0;
}

static int oom(Err *e) { return err_set(e, "fusion: out of memory (arena)"); }

/* a vector of ones in backend memory, filled from a constant host table */
static const float k_ones[256] = {
#define O8 1, 1, 1, 1, 1, 1, 1, 1
#define O64 O8, O8, O8, O8, O8, O8, O8, O8
    O64, O64, O64, O64
#undef O64
#undef O8
};
static float *ones_vec(const Backend *be, Arena *a, int n) {
    float *v = arena_floats(a, (size_t)n);
    if (!v) return NULL;
    for (int i = 0; i < n; i += 256) be->copy_h2d(be, v + i, k_ones, (size_t)(n - i < 256 ? n - i : 256) * sizeof(float));
    return v;
}

int fusion_forward(Fusion *m, const Backend *be, const float *img, int grid_cells,
                   const float *txt, int B, int training, uint64_t dropout_seed, Arena *a,
                   Err *e) {
    const FusionConfig *c = &m->cfg;
    ParamStore *ps = m->ps;
    int hid = c->hidden, Ci = c->img_dim, Ht = c->txt_dim, A = c->num_answers, F = fused_dim(c);
    size_t Bh = (size_t)B * hid;
    if (c->type == FUSION_ATTENTION && grid_cells < 1)
        return err_set(e, "fusion: attention needs the image grid (image_encoder.output: grid), got pooled features");
    if (c->type != FUSION_ATTENTION && grid_cells > 0)
        return err_set(e, "fusion: %s needs pooled image features, got a grid of %d cells",
                       fusion_type_name(c->type), grid_cells);
    m->B = B;
    m->G = grid_cells;
    m->training = training;
    m->p = training ? c->dropout : 0.f;
    m->img = img;
    m->txt = txt;

    if (!(m->vq = arena_floats(a, Bh))) return oom(e);
    be->linear_forward(be, B, Ht, hid, txt, ps_value(ps, m->txt_w), ps_value(ps, m->txt_b), m->vq);
    be->relu_forward(be, DT_F32, Bh, m->vq, m->vq);

    if (!(m->f = arena_floats(a, (size_t)B * F))) return oom(e);
    if (c->type != FUSION_ATTENTION) {
        if (!(m->vi = arena_floats(a, Bh))) return oom(e);
        be->linear_forward(be, B, Ci, hid, img, ps_value(ps, m->img_w), ps_value(ps, m->img_b), m->vi);
        be->relu_forward(be, DT_F32, Bh, m->vi, m->vi);
        if (c->type == FUSION_CONCAT) be->concat_forward(be, B, hid, hid, m->vi, m->vq, m->f);
        else be->mul_forward(be, Bh, m->vi, m->vq, m->f);
    } else {
        int G = grid_cells;
        const float *Wi = ps_value(ps, m->img_w), *bi = ps_value(ps, m->img_b);
        const float *wa = ps_value(ps, m->att_w), *ba = ps_value(ps, m->att_b);
        m->vi = arena_floats(a, (size_t)B * G * hid);
        m->u = arena_floats(a, Bh);
        m->alpha = arena_floats(a, (size_t)B * G);
        m->v = arena_floats(a, Bh);
        float *s = arena_floats(a, (size_t)B * G);
        m->ones = ones_vec(be, a, G);
        if (!m->vi || !m->u || !m->alpha || !m->v || !s || !m->ones) return oom(e);
        for (int b = 0; b < B; b++) {
            const float *gb = img + (size_t)b * Ci * G;   /* [Ci, G] */
            float *Vb = m->vi + (size_t)b * G * hid;       /* [G, hid] */
            /* V_b = grid_b^T Wi^T + 1 bi^T */
            be->gemm(be, 1, 1, G, hid, Ci, 1.f, gb, G, Wi, Ci, 0.f, Vb, hid);
            be->gemm(be, 0, 0, G, hid, 1, 1.f, m->ones, 1, bi, hid, 1.f, Vb, hid);
        }
        be->relu_forward(be, DT_F32, (size_t)B * G * hid, m->vi, m->vi);
        for (int b = 0; b < B; b++) {
            const float *Vb = m->vi + (size_t)b * G * hid;
            float *ub = m->u + (size_t)b * hid, *sb = s + (size_t)b * G;
            /* s_b = (V_b * vq_b) wa^T + ba = V_b (vq_b * wa) + ba */
            be->mul_forward(be, (size_t)hid, m->vq + (size_t)b * hid, wa, ub);
            be->gemm(be, 0, 0, G, 1, hid, 1.f, Vb, hid, ub, 1, 0.f, sb, 1);
            be->gemm(be, 0, 0, G, 1, 1, 1.f, m->ones, 1, ba, 1, 1.f, sb, 1);
        }
        /* s = k (V u + ba): the score temperature (fusion.h) */
        if (m->cfg.att_scale != 1.f) be->scale(be, s, (size_t)B * G, m->cfg.att_scale);
        be->softmax_forward(be, B, G, s, m->alpha);
        for (int b = 0; b < B; b++) /* v_b = alpha_b V_b */
            be->gemm(be, 0, 0, 1, hid, G, 1.f, m->alpha + (size_t)b * G, G, m->vi + (size_t)b * G * hid, hid,
                     0.f, m->v + (size_t)b * hid, hid);
        be->mul_forward(be, Bh, m->v, m->vq, m->f);
    }

    if (!(m->h = arena_floats(a, Bh))) return oom(e);
    be->linear_forward(be, B, F, hid, m->f, ps_value(ps, m->c0_w), ps_value(ps, m->c0_b), m->h);
    be->relu_forward(be, DT_F32, Bh, m->h, m->h);
    m->mask = NULL;
    m->hd = m->h;
    if (m->p > 0.f) {
        m->hd = arena_floats(a, Bh);
        m->mask = arena_alloc(a, Bh);
        if (!m->hd || !m->mask) return oom(e);
        be->dropout_forward(be, Bh, m->p, dropout_seed, m->h, m->hd, m->mask);
    }
    if (!(m->logits = arena_floats(a, (size_t)B * A))) return oom(e);
    be->linear_forward(be, B, hid, A, m->hd, ps_value(ps, m->c3_w), ps_value(ps, m->c3_b), m->logits);
    return 0;
}

int fusion_backward(Fusion *m, const Backend *be, const float *dlogits, float *dimg, float *dtxt,
                    Arena *a, Err *e) {
    const FusionConfig *c = &m->cfg;
    ParamStore *ps = m->ps;
    int B = m->B, G = m->G, hid = c->hidden, Ci = c->img_dim, Ht = c->txt_dim, A = c->num_answers;
    int F = fused_dim(c);
    size_t Bh = (size_t)B * hid;
    size_t mark = arena_mark(a);

    float *dhd = arena_zeros(a, Bh), *dh = dhd, *dhpre = arena_zeros(a, Bh);
    float *df = arena_zeros(a, (size_t)B * F), *dvq = arena_zeros(a, Bh);
    if (!dhd || !dhpre || !df || !dvq) return oom(e);
    be->linear_backward(be, B, hid, A, m->hd, ps_value(ps, m->c3_w), dlogits, dhd, ps_grad(ps, m->c3_w),
                        ps_grad(ps, m->c3_b));
    if (m->mask) {
        if (!(dh = arena_zeros(a, Bh))) return oom(e);
        be->dropout_backward(be, Bh, m->p, m->mask, dhd, dh);
    }
    be->relu_backward(be, DT_F32, Bh, m->h, dh, dhpre);
    be->linear_backward(be, B, F, hid, m->f, ps_value(ps, m->c0_w), dhpre, df, ps_grad(ps, m->c0_w),
                        ps_grad(ps, m->c0_b));

    float *dWi = ps_grad(ps, m->img_w), *dbi = ps_grad(ps, m->img_b);
    if (c->type != FUSION_ATTENTION) {
        float *dvi = arena_zeros(a, Bh), *dvpre = arena_zeros(a, Bh);
        if (!dvi || !dvpre) return oom(e);
        if (c->type == FUSION_CONCAT) be->concat_backward(be, B, hid, hid, df, dvi, dvq);
        else be->mul_backward(be, Bh, m->vi, m->vq, df, dvi, dvq);
        be->relu_backward(be, DT_F32, Bh, m->vi, dvi, dvpre);
        be->linear_backward(be, B, Ci, hid, m->img, ps_value(ps, m->img_w), dvpre, dimg, dWi, dbi);
    } else {
        size_t n = (size_t)B * G * hid;
        float *dv = arena_zeros(a, Bh), *dvi = arena_zeros(a, n), *dvpre = arena_zeros(a, n);
        float *dalpha = arena_zeros(a, (size_t)B * G), *ds = arena_zeros(a, (size_t)B * G);
        float *du = arena_zeros(a, Bh);
        if (!dv || !dvi || !dvpre || !dalpha || !ds || !du) return oom(e);
        const float *Wi = ps_value(ps, m->img_w), *wa = ps_value(ps, m->att_w);
        float *dwa = ps_grad(ps, m->att_w), *dba = ps_grad(ps, m->att_b);
        be->mul_backward(be, Bh, m->v, m->vq, df, dv, dvq);
        for (int b = 0; b < B; b++) { /* v_b = alpha_b V_b */
            const float *Vb = m->vi + (size_t)b * G * hid, *dvb = dv + (size_t)b * hid;
            be->gemm(be, 0, 1, 1, G, hid, 1.f, dvb, hid, Vb, hid, 0.f, dalpha + (size_t)b * G, G);
            be->gemm(be, 1, 0, G, hid, 1, 1.f, m->alpha + (size_t)b * G, G, dvb, hid, 1.f,
                     dvi + (size_t)b * G * hid, hid);
        }
        be->softmax_backward(be, B, G, m->alpha, dalpha, ds);
        /* ds/d(V u + ba) = k */
        if (m->cfg.att_scale != 1.f) be->scale(be, ds, (size_t)B * G, m->cfg.att_scale);
        for (int b = 0; b < B; b++) { /* s_b = V_b u_b + ba, u_b = vq_b * wa */
            const float *Vb = m->vi + (size_t)b * G * hid, *dsb = ds + (size_t)b * G;
            float *dub = du + (size_t)b * hid;
            if (dba) be->gemm(be, 0, 0, 1, 1, G, 1.f, dsb, G, m->ones, 1, 1.f, dba, 1);
            be->gemm(be, 0, 0, G, hid, 1, 1.f, dsb, 1, m->u + (size_t)b * hid, hid, 1.f, dvi + (size_t)b * G * hid, hid);
            be->gemm(be, 1, 0, hid, 1, G, 1.f, Vb, hid, dsb, 1, 0.f, dub, 1);
            be->mul_backward(be, (size_t)hid, m->vq + (size_t)b * hid, wa, dub, dvq + (size_t)b * hid, dwa);
        }
        be->relu_backward(be, DT_F32, n, m->vi, dvi, dvpre);
        for (int b = 0; b < B; b++) { /* V_b = grid_b^T Wi^T + 1 bi^T */
            const float *gb = m->img + (size_t)b * Ci * G, *dVb = dvpre + (size_t)b * G * hid;
            if (dWi) be->gemm(be, 1, 1, hid, Ci, G, 1.f, dVb, hid, gb, G, 1.f, dWi, Ci);
            if (dbi) be->gemm(be, 1, 0, 1, hid, G, 1.f, m->ones, 1, dVb, hid, 1.f, dbi, hid);
            if (dimg) be->gemm(be, 1, 1, Ci, G, hid, 1.f, Wi, Ci, dVb, hid, 1.f, dimg + (size_t)b * Ci * G, G);
        }
    }
    float *dvqpre = arena_zeros(a, Bh);
    if (!dvqpre) return oom(e);
    be->relu_backward(be, DT_F32, Bh, m->vq, dvq, dvqpre);
    be->linear_backward(be, B, Ht, hid, m->txt, ps_value(ps, m->txt_w), dvqpre, dtxt, ps_grad(ps, m->txt_w),
                        ps_grad(ps, m->txt_b));
    arena_rewind(a, mark);
    return 0;
}
