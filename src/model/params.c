/* params.c: the parameter store: registration, flat layout, freezing, seeded
 * PyTorch-default initialization, counts and optimizer facts. (safetensors load/save is
 * in params_st.c.) */
#include "model/params.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/idmap.h"
#include "util/rng.h"

void ps_init(ParamStore *ps) { memset(ps, 0, sizeof *ps); }

void ps_free(ParamStore *ps) {
    if (ps->be) {
        ps->be->free(ps->be, ps->values);
        ps->be->free(ps->be, ps->grads);
        ps->be->free(ps->be, ps->buffers);
    }
    free(ps->items);
    memset(ps, 0, sizeof *ps);
}

int ps_add(ParamStore *ps, const char *name, int ndim, const int64_t *shape, ParamKind kind,
           ParamGroup group, ParamInit init, Err *e) {
    if (ps->finalized) return err_set(e, "parameter %s: registered after the store was finalized", name);
    if (strlen(name) >= PS_NAME_MAX)
        return err_set(e, "parameter name too long (%zu >= %d): %s", strlen(name), PS_NAME_MAX, name);
    if (ndim < 0 || ndim > PS_MAX_DIMS)
        return err_set(e, "parameter %s: %d dimensions (at most %d)", name, ndim, PS_MAX_DIMS);
    if (ps_find(ps, name) >= 0) return err_set(e, "parameter %s registered twice", name);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0) return err_set(e, "parameter %s: dimension %d is %lld", name, i, (long long)shape[i]);
        numel *= (size_t)shape[i];
    }
    if (ps->n == ps->cap) {
        int cap = ps->cap ? ps->cap * 2 : 64;
        ParamInfo *it = realloc(ps->items, (size_t)cap * sizeof *it);
        if (!it) return err_set(e, "out of memory registering %s", name);
        ps->items = it;
        ps->cap = cap;
    }
    ParamInfo *p = &ps->items[ps->n];
    memset(p, 0, sizeof *p);
    strcpy(p->name, name);
    p->ndim = ndim;
    for (int i = 0; i < ndim; i++) p->shape[i] = shape[i];
    p->numel = numel;
    p->kind = kind;
    p->group = group;
    p->init = init;
    p->file_dtype = DT_F32;
    p->trainable = kind != PK_BUFFER;
    p->grad_offset = PS_NO_GRAD;
    return ps->n++;
}

void ps_set_file_dtype(ParamStore *ps, int idx, DType dt) { ps->items[idx].file_dtype = dt; }

int ps_set_trainable_prefix(ParamStore *ps, const char *prefix, int trainable) {
    if (ps->finalized) return -1;
    size_t n = strlen(prefix);
    int count = 0;
    for (int i = 0; i < ps->n; i++) {
        ParamInfo *p = &ps->items[i];
        if (p->kind == PK_BUFFER || strncmp(p->name, prefix, n) != 0) continue;
        p->trainable = trainable != 0;
        count++;
    }
    return count;
}

int ps_set_trainable_group(ParamStore *ps, ParamGroup g, int trainable) {
    if (ps->finalized) return -1;
    int count = 0;
    for (int i = 0; i < ps->n; i++) {
        ParamInfo *p = &ps->items[i];
        if (p->kind == PK_BUFFER || p->group != g) continue;
        p->trainable = trainable != 0;
        count++;
    }
    return count;
}

int ps_finalize(ParamStore *ps, const Backend *be, Err *e) {
    if (ps->finalized) return err_set(e, "parameter store finalized twice");
    size_t nv = 0, ng = 0, nb = 0;
    for (int i = 0; i < ps->n; i++) {
        ParamInfo *p = &ps->items[i];
        if (p->kind == PK_BUFFER) {
            p->offset = nb;
            nb += p->numel;
            continue;
        }
        p->offset = nv;
        nv += p->numel;
        if (p->trainable) {
            p->grad_offset = ng;
            ng += p->numel;
        } else {
            p->grad_offset = PS_NO_GRAD;
        }
    }
    ps->be = be;
    ps->values = nv ? be->alloc(be, nv * sizeof(float)) : NULL;
    ps->grads = ng ? be->alloc(be, ng * sizeof(float)) : NULL;
    ps->buffers = nb ? be->alloc(be, nb * sizeof(float)) : NULL;
    if ((nv && !ps->values) || (ng && !ps->grads) || (nb && !ps->buffers))
        return err_set(e, "out of memory allocating parameters (%zu values, %zu grads, %zu buffer floats)",
                       nv, ng, nb);
    if (nv) be->memset_zero(be, ps->values, nv * sizeof(float));
    if (ng) be->memset_zero(be, ps->grads, ng * sizeof(float));
    if (nb) be->memset_zero(be, ps->buffers, nb * sizeof(float));
    ps->n_values = nv;
    ps->n_grads = ng;
    ps->n_buffers = nb;
    ps->finalized = 1;
    return 0;
}

/* ---- seeded initialization ---- */


static void fill_init(const ParamInfo *p, uint64_t seed, float *x) {
    Rng r = {seed ^ idmap_hash_str(p->name)}; /* FNV-1a of the name */
    rng_next(&r);
    size_t n = p->numel;
    double a = p->init.a;
    switch (p->init.kind) {
    case INIT_ZEROS: memset(x, 0, n * sizeof *x); break;
    case INIT_ONES: for (size_t i = 0; i < n; i++) x[i] = 1.f; break;
    case INIT_CONST: for (size_t i = 0; i < n; i++) x[i] = (float)a; break;
    case INIT_UNIFORM:
        for (size_t i = 0; i < n; i++) x[i] = (float)((2.0 * rng_unit_open(&r) - 1.0) * a);
        break;
    case INIT_NORMAL:
    case INIT_KAIMING_FANOUT: {
        double std = a;
        if (p->init.kind == INIT_KAIMING_FANOUT) {
            /* torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu"):
             * std = sqrt(2 / fan_out), fan_out = out_channels * receptive field. */
            double fan_out = (double)p->shape[0];
            for (int d = 2; d < p->ndim; d++) fan_out *= (double)p->shape[d];
            std = sqrt(2.0 / fan_out);
        }
        for (size_t i = 0; i < n; i += 2) { /* Box-Muller, two normals per draw */
            double u1 = rng_unit_open(&r), u2 = rng_unit_open(&r);
            double rad = sqrt(-2.0 * log(u1));
            x[i] = (float)(std * rad * cos(2.0 * M_PI * u2));
            if (i + 1 < n) x[i + 1] = (float)(std * rad * sin(2.0 * M_PI * u2));
        }
        break;
    }
    }
    if (p->init.padding_idx >= 0 && p->ndim == 2 && p->init.padding_idx < p->shape[0])
        memset(x + (size_t)p->init.padding_idx * (size_t)p->shape[1], 0, (size_t)p->shape[1] * sizeof *x);
}

int ps_init_values(ParamStore *ps, uint64_t seed, Err *e) {
    if (!ps->finalized) return err_set(e, "ps_init_values before ps_finalize");
    size_t maxn = 0;
    for (int i = 0; i < ps->n; i++)
        if (ps->items[i].numel > maxn) maxn = ps->items[i].numel;
    float *tmp = malloc((maxn ? maxn : 1) * sizeof *tmp);
    if (!tmp) return err_set(e, "out of memory (%zu floats) initializing parameters", maxn);
    for (int i = 0; i < ps->n; i++) {
        fill_init(&ps->items[i], seed, tmp);
        ps->be->copy_h2d(ps->be, ps_value(ps, i), tmp, ps->items[i].numel * sizeof *tmp);
    }
    free(tmp);
    return 0;
}

/* ---- lookup ---- */

int ps_count(const ParamStore *ps) { return ps->n; }
const ParamInfo *ps_info(const ParamStore *ps, int idx) { return &ps->items[idx]; }

int ps_find(const ParamStore *ps, const char *name) {
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->items[i].name, name) == 0) return i;
    return -1;
}

float *ps_value(const ParamStore *ps, int idx) {
    if (!ps->finalized || idx < 0) return NULL;
    const ParamInfo *p = &ps->items[idx];
    return (p->kind == PK_BUFFER ? ps->buffers : ps->values) + p->offset;
}

float *ps_grad(const ParamStore *ps, int idx) {
    if (!ps->finalized || idx < 0) return NULL;
    const ParamInfo *p = &ps->items[idx];
    return p->grad_offset == PS_NO_GRAD ? NULL : ps->grads + p->grad_offset;
}

int ps_trainable(const ParamStore *ps, int idx) { return idx >= 0 && ps->items[idx].trainable; }

int ps_any_trainable(const ParamStore *ps, int first, int last) {
    for (int i = first; i < last; i++)
        if (ps->items[i].trainable) return 1;
    return 0;
}

size_t ps_grads_from(const ParamStore *ps, int first) {
    for (int i = first < 0 ? 0 : first; i < ps->n; i++)
        if (ps->items[i].grad_offset != PS_NO_GRAD) return ps->items[i].grad_offset;
    return ps->n_grads;
}

void ps_zero_grads(ParamStore *ps) {
    if (ps->finalized && ps->n_grads) ps->be->memset_zero(ps->be, ps->grads, ps->n_grads * sizeof(float));
}

size_t ps_numel(const ParamStore *ps, int group, int trainable_only) {
    size_t n = 0;
    for (int i = 0; i < ps->n; i++) {
        const ParamInfo *p = &ps->items[i];
        if (p->kind == PK_BUFFER) continue;
        if (group >= 0 && (int)p->group != group) continue;
        if (trainable_only && !p->trainable) continue;
        n += p->numel;
    }
    return n;
}

const char *ps_group_name(ParamGroup g) {
    switch (g) {
    case PG_IMAGE: return "image_encoder";
    case PG_TEXT: return "text_encoder";
    case PG_FUSION: return "fusion";
    case PG_CLASSIFIER: return "classifier";
    case PG_COUNT: break;
    }
    return "?";
}

int ps_decay(const ParamInfo *p) { return p->kind == PK_WEIGHT || p->kind == PK_EMBEDDING; }

float ps_lr_mult(const ParamInfo *p, float encoder_lr_mult) {
    return (p->group == PG_IMAGE || p->group == PG_TEXT) ? encoder_lr_mult : 1.0f;
}
