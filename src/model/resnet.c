/* resnet.c: torchvision ResNet v1.5 forward and backward over the Backend ops (see
 * resnet.h for the structure, the names, the freezing rules and the activation format).
 *
 * One code path for every format: every image op goes through the Backend with r->fmt in
 * its descriptor (in the plain format, fp32 NCHW, those entries are the plain ops, with
 * their numbers and speed), and every activation buffer is sized in
 * bytes of the format's type. What the plain format skips: the input import (the batch is
 * already fp32 NCHW), the conv weight preparation (the fp32 master is the prepared weight,
 * and its gradient the prepared gradient) and the grid export (the last block's output is
 * the grid). */
#include "model/resnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

/* ---- building ---- */

static int add_p(Resnet *r, const char *local, int ndim, const int64_t *shape, ParamKind kind,
                 ParamInit init, Err *e, int group) {
    char name[PS_NAME_MAX];
    snprintf(name, sizeof name, "%s%s", r->prefix, local);
    return ps_add(r->ps, name, ndim, shape, kind, (ParamGroup)group, init, e);
}

/* conv weight then the BN tensors, in torchvision's state_dict order */
static int add_convbn(Resnet *r, RnConvBn *c, const char *conv_name, const char *bn_name, int cin,
                      int cout, int k, int stride, ParamGroup g, Err *e) {
    char n[PS_NAME_MAX];
    c->cin = cin;
    c->cout = cout;
    c->k = k;
    c->stride = stride;
    c->pad = k / 2;
    int64_t co = cout;
    snprintf(n, sizeof n, "%s.weight", conv_name);
    if ((c->w = add_p(r, n, 4, (int64_t[]){cout, cin, k, k}, PK_WEIGHT, pinit_kaiming_fanout(), e, g)) < 0) return -1;
    snprintf(n, sizeof n, "%s.weight", bn_name);
    if ((c->g = add_p(r, n, 1, &co, PK_NORM, pinit_ones(), e, g)) < 0) return -1;
    snprintf(n, sizeof n, "%s.bias", bn_name);
    if ((c->b = add_p(r, n, 1, &co, PK_NORM, pinit_zeros(), e, g)) < 0) return -1;
    snprintf(n, sizeof n, "%s.running_mean", bn_name);
    if ((c->rm = add_p(r, n, 1, &co, PK_BUFFER, pinit_zeros(), e, g)) < 0) return -1;
    snprintf(n, sizeof n, "%s.running_var", bn_name);
    if ((c->rv = add_p(r, n, 1, &co, PK_BUFFER, pinit_ones(), e, g)) < 0) return -1;
    snprintf(n, sizeof n, "%s.num_batches_tracked", bn_name);
    if ((c->nbt = add_p(r, n, 0, NULL, PK_BUFFER, pinit_zeros(), e, g)) < 0) return -1;
    ps_set_file_dtype(r->ps, c->nbt, DT_I64);
    return 0;
}

int resnet_build(Resnet *r, const ResnetConfig *c, ParamStore *ps, const char *prefix,
                 ParamGroup group, Err *e) {
    static const int blocks18[4] = {2, 2, 2, 2}, blocks34[4] = {3, 4, 6, 3},
                     blocks101[4] = {3, 4, 23, 3};
    memset(r, 0, sizeof *r);
    r->cfg = *c;
    r->ps = ps;
    r->fc_w = r->fc_b = -1;
    snprintf(r->prefix, sizeof r->prefix, "%s", prefix ? prefix : "");
    const int *nb;
    int bottleneck;
    switch (c->depth) {
    case 18: nb = blocks18; bottleneck = 0; break;
    case 34: nb = blocks34; bottleneck = 0; break;
    case 50: nb = blocks34; bottleneck = 1; break;
    case 101: nb = blocks101; bottleneck = 1; break;
    default: return err_set(e, "resnet: depth %d is not one of 18, 34, 50, 101", c->depth);
    }
    r->base = (int)(64.0f * c->width + 0.5f);
    if (r->base < 1) return err_set(e, "resnet: width %g gives %d base channels (need >= 1)", (double)c->width, r->base);
    if (c->with_fc && c->num_classes < 1) return err_set(e, "resnet: fc with %d classes", c->num_classes);
    int exp = bottleneck ? 4 : 1;
    int stages = c->stages ? c->stages : 4;
    if (stages < 1 || stages > 4) return err_set(e, "resnet: %d stages (need 1..4)", c->stages);
    r->n_blocks = 0;
    for (int s = 0; s < stages; s++) r->n_blocks += nb[s];
    r->blocks = calloc((size_t)r->n_blocks, sizeof *r->blocks);
    if (!r->blocks) return err_set(e, "resnet: out of memory");

    r->first_param = ps_count(ps);
    r->stem_first = ps_count(ps);
    if (add_convbn(r, &r->stem, "conv1", "bn1", 3, r->base, 7, 2, group, e) != 0) return -1;
    r->stem.pad = 3;
    r->stem_end = ps_count(ps);

    int inplanes = r->base, bi = 0;
    for (int s = 0; s < stages; s++) {
        int planes = r->base << s, stride = s == 0 ? 1 : 2;
        for (int j = 0; j < nb[s]; j++, bi++) {
            RnBlock *b = &r->blocks[bi];
            int st = j == 0 ? stride : 1;
            char cn[64], bn[64];
            b->stage = s + 1;
            b->first_param = ps_count(ps);
            b->nconv = bottleneck ? 3 : 2;
            for (int k = 0; k < b->nconv; k++) {
                int cin, cout, ks, kst;
                if (bottleneck) {
                    cin = k == 0 ? inplanes : planes;
                    cout = k == 2 ? planes * exp : planes;
                    ks = k == 1 ? 3 : 1;
                    kst = k == 1 ? st : 1;
                } else {
                    cin = k == 0 ? inplanes : planes;
                    cout = planes;
                    ks = 3;
                    kst = k == 0 ? st : 1;
                }
                snprintf(cn, sizeof cn, "layer%d.%d.conv%d", s + 1, j, k + 1);
                snprintf(bn, sizeof bn, "layer%d.%d.bn%d", s + 1, j, k + 1);
                if (add_convbn(r, &b->c[k], cn, bn, cin, cout, ks, kst, group, e) != 0) return -1;
            }
            if (j == 0 && (st != 1 || inplanes != planes * exp)) {
                b->has_ds = 1;
                snprintf(cn, sizeof cn, "layer%d.%d.downsample.0", s + 1, j);
                snprintf(bn, sizeof bn, "layer%d.%d.downsample.1", s + 1, j);
                if (add_convbn(r, &b->ds, cn, bn, inplanes, planes * exp, 1, st, group, e) != 0) return -1;
            }
            b->end_param = ps_count(ps);
            inplanes = planes * exp;
        }
    }
    r->out_channels = inplanes;
    if (c->with_fc) {
        /* nn.Linear default: U(+-1/sqrt(fan_in)) for weight (kaiming_uniform a=sqrt(5)) and bias */
        float bound = 1.0f / sqrtf((float)inplanes);
        int64_t nc = c->num_classes;
        if ((r->fc_w = add_p(r, "fc.weight", 2, (int64_t[]){nc, inplanes}, PK_WEIGHT, pinit_uniform(bound), e, group)) < 0) return -1;
        if ((r->fc_b = add_p(r, "fc.bias", 1, &nc, PK_BIAS, pinit_uniform(bound), e, group)) < 0) return -1;
    }
    r->end_param = ps_count(ps);
    return 0;
}

void resnet_free(Resnet *r) {
    if (r->one) r->one_be->free(r->one_be, r->one);
    r->one = NULL;
    free(r->blocks);
    r->blocks = NULL;
    r->n_blocks = 0;
}

/* ---- the activation format ---- */

static int fmt_plain(const ActFmt *f) { return !f->nhwc && f->dt == DT_F32; }

const char *resnet_format_name(const ActFmt *f, char *buf, size_t n) {
    snprintf(buf, n, "%s %s", f->nhwc ? "NHWC" : "NCHW",
             f->dt == DT_BF16 ? "bf16" : f->dt == DT_F16 ? "fp16" : f->dt == DT_F32 ? "fp32" : "?");
    return buf;
}

int resnet_set_format(Resnet *r, const ActFmt *f, int need_grid, Err *e) {
    if (f->dt != DT_F32 && f->dt != DT_BF16 && f->dt != DT_F16)
        return err_set(e, "resnet: activation storage type %s (need F32, BF16 or F16)", dtype_name(f->dt));
    r->fmt = *f;
    r->need_grid = need_grid ? 1 : 0;
    return 0;
}

/* Arena buffers of n activation elements in the format's type (plain: arena_floats). */
static void *act_buf(const Resnet *r, Arena *a, size_t n) { return arena_alloc(a, n * dtype_size(r->fmt.dt)); }
static void *act_zeros(const Resnet *r, Arena *a, size_t n) {
    return arena_zeros(a, (n * dtype_size(r->fmt.dt) + sizeof(float) - 1) / sizeof(float));
}

static size_t conv_ws(const Backend *be, const ConvShape *cs) { return be->conv2d_workspace(be, cs); }

/* ---- shape planning ---- */

static size_t cs_out_numel(const ConvShape *s) { return (size_t)s->N * s->K * s->P * s->Q; }
static size_t cs_in_numel(const ConvShape *s) { return (size_t)s->N * s->C * s->H * s->W; }

static void plan_cb(const Resnet *r, RnConvBn *c, int N, int H, int W) {
    conv_shape_init(&c->cs, N, c->cin, H, W, c->cout, c->k, c->k, c->stride, c->pad);
    c->cs.f = r->fmt;
}

/* Computes every conv shape for this input, the max activation size and the max conv
 * workspace. */
static void plan(Resnet *r, const Backend *be, int N, int H, int W, size_t *max_act, size_t *max_ws) {
    size_t ma = 0, mw = 0;
    plan_cb(r, &r->stem, N, H, W);
    mw = conv_ws(be, &r->stem.cs);
    ma = cs_out_numel(&r->stem.cs);
    pool_shape_init(&r->pool, N, r->stem.cout, r->stem.cs.P, r->stem.cs.Q, 3, 2, 1);
    r->pool.f = r->fmt;
    int h = r->pool.P, w = r->pool.Q;
    for (int i = 0; i < r->n_blocks; i++) {
        RnBlock *b = &r->blocks[i];
        int hh = h, ww = w;
        b->in_numel = (size_t)N * b->c[0].cin * h * w;
        for (int k = 0; k < b->nconv; k++) {
            plan_cb(r, &b->c[k], N, hh, ww);
            hh = b->c[k].cs.P;
            ww = b->c[k].cs.Q;
            size_t ws = conv_ws(be, &b->c[k].cs);
            if (ws > mw) mw = ws;
            if (cs_out_numel(&b->c[k].cs) > ma) ma = cs_out_numel(&b->c[k].cs);
        }
        if (b->has_ds) {
            plan_cb(r, &b->ds, N, h, w);
            size_t ws = conv_ws(be, &b->ds.cs);
            if (ws > mw) mw = ws;
        }
        b->out_numel = cs_out_numel(&b->c[b->nconv - 1].cs);
        h = hh;
        w = ww;
    }
    r->gh = h;
    r->gw = w;
    *max_act = ma;
    *max_ws = mw;
}

void resnet_grid_size(const Resnet *r, int H, int W, int *gh, int *gw) {
    /* stem conv 7/2 p3, maxpool 3/2 p1, then one 3x3(or 1x1)/2 per stage 2..stages */
    int h = (H + 2 * 3 - 7) / 2 + 1, w = (W + 2 * 3 - 7) / 2 + 1;
    h = (h + 2 - 3) / 2 + 1;
    w = (w + 2 - 3) / 2 + 1;
    int stages = r->cfg.stages ? r->cfg.stages : 4;
    for (int s = 0; s < stages - 1; s++) {
        h = (h + 2 - 3) / 2 + 1;
        w = (w + 2 - 3) / 2 + 1;
    }
    *gh = h;
    *gw = w;
}

/* ---- forward ---- */

static int oom(Err *e, const char *what) { return err_set(e, "resnet: out of memory (arena) for %s", what); }

/* y = conv(x); z = BN(y) [; relu(z)]. z_out: where z goes (NULL: new arena buffer). */
static int cb_forward(Resnet *r, const Backend *be, RnConvBn *c, const void *x, int relu,
                      void *z_out, Arena *a, Err *e) {
    ParamStore *ps = r->ps;
    const ActFmt *f = &r->fmt;
    size_t n = cs_out_numel(&c->cs);
    ActDesc d = act_desc(c->cs.N, c->cout, c->cs.P * c->cs.Q, *f);
    c->x = x;
    c->y = act_buf(r, a, n);
    c->z = z_out ? z_out : act_buf(r, a, n);
    if (!c->y || !c->z) return oom(e, "conv output");
    c->wp = ps_value(ps, c->w); /* the plain format's prepared weight is the master */
    if (!fmt_plain(f)) {
        /* the weight in the format's layout and type, prepared every forward (the fp32
         * master changes every step); kept with the activations for the backward */
        size_t nw = (size_t)c->cout * c->cin * c->k * c->k;
        if (!(c->wp = arena_alloc(a, nw * dtype_size(f->dt)))) return oom(e, "prepared conv weight");
        be->conv_weight_prep(be, &c->cs, ps_value(ps, c->w), c->wp);
    }
    be->conv2d_forward(be, &c->cs, x, c->wp, NULL, c->y, r->ws);
    c->bn_train = r->training && ps_trainable(ps, c->g);
    if (c->bn_train) {
        c->mean = arena_floats(a, (size_t)c->cout);
        c->rstd = arena_floats(a, (size_t)c->cout);
        if (!c->mean || !c->rstd) return oom(e, "BN statistics");
        be->batchnorm_forward_train(be, &d, c->y, ps_value(ps, c->g), ps_value(ps, c->b), BN_MOMENTUM, BN_EPS,
                                    ps_value(ps, c->rm), ps_value(ps, c->rv), c->z, c->mean, c->rstd);
        /* num_batches_tracked += 1: a scalar in backend memory, added on the backend (no
         * host round trip; exact in float up to 2^24 batches) */
        be->add_forward(be, DT_F32, 1, ps_value(ps, c->nbt), r->one, ps_value(ps, c->nbt));
    } else {
        c->mean = c->rstd = NULL;
        be->batchnorm_forward_eval(be, &d, c->y, ps_value(ps, c->g), ps_value(ps, c->b), ps_value(ps, c->rm),
                                   ps_value(ps, c->rv), BN_EPS, c->z);
    }
    if (relu) be->relu_forward(be, f->dt, n, c->z, c->z);
    return 0;
}

/* stem: conv1, bn1, relu, maxpool -> out (NULL: new arena buffer) */
static int stem_forward(Resnet *r, const Backend *be, const void *x, void *out, Arena *a, Err *e) {
    if (cb_forward(r, be, &r->stem, x, 1, NULL, a, e) != 0) return -1;
    size_t n = (size_t)r->pool.N * r->pool.C * r->pool.P * r->pool.Q;
    r->pool_out = out ? out : act_buf(r, a, n);
    r->argmax = arena_alloc(a, n * sizeof(int32_t));
    if (!r->pool_out || !r->argmax) return oom(e, "maxpool output");
    be->maxpool_forward(be, &r->pool, r->stem.z, r->pool_out, r->argmax);
    return 0;
}

static int block_forward(Resnet *r, const Backend *be, RnBlock *b, const void *x, void *out,
                         Arena *a, Err *e) {
    b->x = x;
    const void *cur = x;
    for (int k = 0; k < b->nconv; k++) {
        int last = k == b->nconv - 1;
        /* the last BN writes straight into the block output, where identity is added */
        if (cb_forward(r, be, &b->c[k], cur, !last, last ? out : NULL, a, e) != 0) return -1;
        cur = b->c[k].z;
    }
    b->out = b->c[b->nconv - 1].z;
    const void *idn = x;
    if (b->has_ds) {
        if (cb_forward(r, be, &b->ds, x, 0, NULL, a, e) != 0) return -1;
        idn = b->ds.z;
    }
    be->add_forward(be, r->fmt.dt, b->out_numel, b->out, idn, b->out);
    be->relu_forward(be, r->fmt.dt, b->out_numel, b->out, b->out);
    return 0;
}

static int module_trainable(const Resnet *r, int m) {
    if (m == 0) return ps_any_trainable(r->ps, r->stem_first, r->stem_end);
    const RnBlock *b = &r->blocks[m - 1];
    return ps_any_trainable(r->ps, b->first_param, b->end_param);
}

int resnet_forward(Resnet *r, const Backend *be, const float *x, int N, int H, int W,
                   int training, Arena *a, Err *e) {
    if (N < 1 || H < 1 || W < 1) return err_set(e, "resnet: bad input size [%d, 3, %d, %d]", N, H, W);
    size_t max_act, max_ws;
    plan(r, be, N, H, W, &max_act, &max_ws);
    if (r->gh < 1 || r->gw < 1)
        return err_set(e, "resnet: input %dx%d is too small (grid %dx%d)", H, W, r->gh, r->gw);
    r->N = N;
    r->H = H;
    r->W = W;
    r->training = training;
    r->max_act = max_act;
    r->gbuf[0] = r->gbuf[1] = NULL;
    r->ws_floats = max_ws ? max_ws : 1;
    r->ws = arena_floats(a, r->ws_floats);
    if (!r->ws) return oom(e, "conv workspace");
    if (training && !r->one) { /* once per model: the constant for num_batches_tracked */
        static const float k_one = 1.0f;
        if (!(r->one = be->alloc(be, sizeof k_one))) return err_set(e, "resnet: out of memory (backend scalar)");
        r->one_be = be;
        be->copy_h2d(be, r->one, &k_one, sizeof k_one);
    }

    /* modules 0 (stem) .. n_blocks: keep activations from the lowest trainable one up */
    int nm = r->n_blocks + 1;
    r->bwd_from = nm;
    if (training)
        for (int m = 0; m < nm; m++)
            if (module_trainable(r, m)) {
                r->bwd_from = m;
                break;
            }
    void *pp[2] = {NULL, NULL};
    if (r->bwd_from > 0) { /* forward-only prefix: ping-pong outputs, rewound scratch */
        pp[0] = act_buf(r, a, max_act);
        pp[1] = act_buf(r, a, max_act);
        if (!pp[0] || !pp[1]) return oom(e, "forward buffers");
    }
    const void *cur = x;
    if (!fmt_plain(&r->fmt)) { /* the fp32 NCHW batch into the activation format */
        void *xin = act_buf(r, a, (size_t)N * 3 * H * W);
        if (!xin) return oom(e, "input in the activation format");
        ActDesc din = act_desc(N, 3, H * W, r->fmt);
        be->act_import(be, &din, x, xin);
        cur = xin;
    }
    for (int m = 0; m < nm; m++) {
        int keep = m >= r->bwd_from;
        void *dst = keep ? NULL : pp[m & 1];
        size_t mark = arena_mark(a);
        int rc;
        if (m == 0) {
            rc = stem_forward(r, be, cur, dst, a, e);
            cur = r->pool_out;
        } else {
            RnBlock *b = &r->blocks[m - 1];
            if (!dst) {
                dst = act_buf(r, a, b->out_numel);
                if (!dst) return oom(e, "block output");
            }
            rc = block_forward(r, be, b, cur, dst, a, e);
            cur = b->out;
        }
        if (rc != 0) return err_prefix(e, "%s", r->prefix);
        if (!keep) arena_rewind(a, mark);
    }
    r->top = (void *)cur;
    r->pooled = arena_floats(a, (size_t)N * r->out_channels);
    if (!r->pooled) return oom(e, "pooled features");
    int C = r->out_channels, HW = r->gh * r->gw;
    ActDesc dout = act_desc(N, C, HW, r->fmt);
    be->avgpool_forward(be, &dout, cur, r->pooled);
    if (fmt_plain(&r->fmt)) {
        r->grid = (float *)cur;
    } else {
        r->grid = NULL;
        if (r->need_grid) { /* the fusion reads fp32 NCHW */
            if (!(r->grid = arena_floats(a, (size_t)N * C * HW))) return oom(e, "grid");
            be->act_export(be, &dout, cur, r->grid);
        }
    }
    r->logits = NULL;
    if (r->fc_w >= 0) {
        r->logits = arena_floats(a, (size_t)N * r->cfg.num_classes);
        if (!r->logits) return oom(e, "logits");
        be->linear_forward(be, N, r->out_channels, r->cfg.num_classes, r->pooled, ps_value(r->ps, r->fc_w),
                           ps_value(r->ps, r->fc_b), r->logits);
    }
    return 0;
}

/* ---- backward ---- */

/* dz = d(loss)/d(BN output). Accumulates into dx (may be NULL) and the parameter grads. */
static int cb_backward(Resnet *r, const Backend *be, RnConvBn *c, const void *dz, void *dx,
                       Arena *a, Err *e) {
    ParamStore *ps = r->ps;
    const ActFmt *f = &r->fmt;
    float *dw = ps_grad(ps, c->w), *dg = ps_grad(ps, c->g), *db = ps_grad(ps, c->b);
    if (!dx && !dw && !dg && !db) return 0;
    int need_dy = dx || dw;
    size_t mark = arena_mark(a);
    size_t n = cs_out_numel(&c->cs);
    void *dy = NULL;
    if (need_dy && !(dy = act_zeros(r, a, n))) return oom(e, "BN gradient");
    ActDesc d = act_desc(c->cs.N, c->cout, c->cs.P * c->cs.Q, *f);
    if (c->bn_train)
        be->batchnorm_backward_train(be, &d, c->y, ps_value(ps, c->g), c->mean, c->rstd, dz, dy, dg, db);
    else
        be->batchnorm_backward_eval(be, &d, c->y, ps_value(ps, c->g), ps_value(ps, c->rm), ps_value(ps, c->rv),
                                    BN_EPS, dz, dy, dg, db);
    if (need_dy) {
        /* the weight gradient accumulates in the prepared layout and type (zeroed here),
         * then goes into the fp32 master gradient; in the plain format the master's
         * gradient is the prepared one */
        int plain = fmt_plain(f);
        void *dwp = plain ? dw : NULL;
        if (dw && !plain && !(dwp = act_zeros(r, a, (size_t)c->cout * c->cin * c->k * c->k)))
            return oom(e, "prepared weight gradient");
        be->conv2d_backward(be, &c->cs, c->x, c->wp, dy, dx, dwp, NULL, r->ws);
        if (dw && !plain) be->conv_weight_grad_add(be, &c->cs, dwp, dw);
    }
    arena_rewind(a, mark);
    return 0;
}

/* dout: gradient w.r.t. the block output. dx: accumulated input gradient (NULL: not needed). */
static int block_backward(Resnet *r, const Backend *be, RnBlock *b, const void *dout, void *dx,
                          Arena *a, Err *e) {
    size_t mark = arena_mark(a);
    void *dpre = act_zeros(r, a, b->out_numel);
    if (!dpre) return oom(e, "block gradient");
    be->relu_backward(be, r->fmt.dt, b->out_numel, b->out, dout, dpre); /* d(main + identity) */
    if (b->has_ds) {
        if (cb_backward(r, be, &b->ds, dpre, dx, a, e) != 0) return -1;
    } else if (dx) {
        be->add_forward(be, r->fmt.dt, b->in_numel, dx, dpre, dx);
    }
    const void *dz = dpre;
    for (int k = b->nconv - 1; k >= 0; k--) {
        RnConvBn *c = &b->c[k];
        void *din = dx;
        if (k > 0 && !(din = act_zeros(r, a, cs_in_numel(&c->cs)))) return oom(e, "block gradient");
        if (cb_backward(r, be, c, dz, din, a, e) != 0) return -1;
        if (k > 0) { /* through the ReLU that produced this conv's input (in place on z) */
            void *dzp = act_zeros(r, a, cs_in_numel(&c->cs));
            if (!dzp) return oom(e, "block gradient");
            be->relu_backward(be, r->fmt.dt, cs_in_numel(&c->cs), b->c[k - 1].z, din, dzp);
            dz = dzp;
        }
    }
    arena_rewind(a, mark);
    return 0;
}

/* Gradient-ready report: the tensors from `first` on have their final gradients. */
static void report_ready(const Resnet *r, int first) {
    if (r->grad_ready.fn) r->grad_ready.fn(r->grad_ready.ctx, ps_grads_from(r->ps, first));
}

int resnet_backward(Resnet *r, const Backend *be, const float *dlogits, const float *dpooled,
                    const float *dgrid, Arena *a, Err *e) {
    ParamStore *ps = r->ps;
    int N = r->N, C = r->out_channels, nm = r->n_blocks + 1;
    if (!r->training) return err_set(e, "resnet_backward after an inference forward");
    if (dgrid && !r->grid)
        return err_set(e, "resnet_backward: a grid gradient, but the grid was not asked for (resnet_set_format need_grid)");
    int into_blocks = r->bwd_from < nm;
    float *dp = NULL; /* gradient w.r.t. pooled */
    if (into_blocks && (dlogits || dpooled)) {
        if (!(dp = arena_zeros(a, (size_t)N * C))) return oom(e, "pooled gradient");
        if (dpooled) be->add_forward(be, DT_F32, (size_t)N * C, dp, dpooled, dp);
    }
    if (dlogits && r->fc_w >= 0)
        be->linear_backward(be, N, C, r->cfg.num_classes, r->pooled, ps_value(ps, r->fc_w), dlogits, dp,
                            ps_grad(ps, r->fc_w), ps_grad(ps, r->fc_b));
    if (dlogits && r->fc_w >= 0) report_ready(r, r->fc_w);
    if (!into_blocks || (!dp && !dgrid)) return 0;

    size_t max_act = r->max_act;
    const ActFmt *f = &r->fmt;
    size_t es = dtype_size(f->dt);
    if (!r->gbuf[0]) {
        r->gbuf[0] = act_buf(r, a, max_act);
        r->gbuf[1] = act_buf(r, a, max_act);
        if (!r->gbuf[0] || !r->gbuf[1]) return oom(e, "backward buffers");
    }
    size_t ng = (size_t)N * C * r->gh * r->gw;
    void *dcur = r->gbuf[0];
    be->memset_zero(be, dcur, ng * es);
    /* fp32 NCHW gradients into the format */
    ActDesc dgd = act_desc(N, C, r->gh * r->gw, *f);
    if (dgrid) be->act_import_add(be, &dgd, dgrid, dcur);
    if (dp) be->avgpool_backward(be, &dgd, dp, dcur);

    int k = 1;
    for (int m = nm - 1; m >= r->bwd_from; m--) {
        void *dprev = NULL;
        if (m > r->bwd_from) { /* something below needs this module's input gradient */
            dprev = r->gbuf[k];
            size_t n = m == 1 ? (size_t)r->pool.N * r->pool.C * r->pool.P * r->pool.Q : r->blocks[m - 2].out_numel;
            be->memset_zero(be, dprev, n * es);
        }
        if (m == 0) {
            size_t mark = arena_mark(a);
            size_t n = cs_out_numel(&r->stem.cs);
            void *dz = act_zeros(r, a, n), *dpre = act_zeros(r, a, n);
            if (!dz || !dpre) return oom(e, "stem gradient");
            be->maxpool_backward(be, &r->pool, r->argmax, dcur, dz);
            be->relu_backward(be, f->dt, n, r->stem.z, dz, dpre);
            if (cb_backward(r, be, &r->stem, dpre, NULL, a, e) != 0) return -1;
            arena_rewind(a, mark);
        } else if (block_backward(r, be, &r->blocks[m - 1], dcur, dprev, a, e) != 0) {
            return -1;
        }
        report_ready(r, m == 0 ? r->stem_first : r->blocks[m - 1].first_param);
        dcur = dprev;
        k ^= 1;
    }
    return 0;
}
