/* train_state.c: checkpoint content of a training run (train_state.h). */
#include "train/train_state.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"

#define KEY_ADAM_T "adam_t"
#define KEY_SCALE "loss_scale"
#define KEY_SCALE_CLEAN "loss_scale_clean"
#define KEY_SCALE_SKIPPED "loss_scale_skipped"
#define KEY_BEST_ACC "best_accuracy"
#define KEY_BEST_STEP "best_step"
#define KEY_CONFIG "config"
#define T_EXP_AVG "optimizer.exp_avg"
#define T_EXP_AVG_SQ "optimizer.exp_avg_sq"

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint64_t f64_bits(double f) {
    uint64_t u;
    memcpy(&u, &f, 8);
    return u;
}
static double bits_f64(uint64_t u) {
    double f;
    memcpy(&f, &u, 8);
    return f;
}

/* Host copies of backend memory (the CPU backend's pointers are host already). */
static const float *host_view(const ParamStore *ps, const float *src, size_t n, float **owned) {
    *owned = NULL;
    if (!ps->be || ps->be->device == DEV_CPU || n == 0) return src;
    float *h = malloc(n * sizeof *h);
    if (!h) return NULL;
    ps->be->copy_d2h(ps->be, h, src, n * sizeof *h);
    *owned = h;
    return h;
}

int tstate_save(const char *dir, const ParamStore *ps, const Optimizer *opt, const TrainState *st,
                const AnswerVocab *vocab, const char *config_yaml, uint64_t config_hash,
                char *path_out, size_t path_cap, Err *e) {
    StWriter *w = st_writer_new();
    float *hv = NULL, *hb = NULL, *hm = NULL, *hvv = NULL;
    int64_t *i64 = NULL;
    const char **ans = NULL;
    int rc = -1;
    if (!w) return err_set(e, "checkpoint: out of memory");
    const float *values = host_view(ps, ps->values, ps->n_values, &hv);
    const float *buffers = host_view(ps, ps->buffers, ps->n_buffers, &hb);
    if ((ps->n_values && !values) || (ps->n_buffers && !buffers)) goto oom;
    /* I64 buffers (num_batches_tracked): converted copies, one slot per buffer element */
    if (!(i64 = calloc(ps->n_buffers ? ps->n_buffers : 1, sizeof *i64))) goto oom;
    for (int i = 0; i < ps->n; i++) {
        const ParamInfo *p = &ps->items[i];
        int64_t shape[PS_MAX_DIMS];
        for (int d = 0; d < p->ndim; d++) shape[d] = p->shape[d];
        if (p->kind == PK_BUFFER) {
            if (p->file_dtype == DT_I64) {
                for (size_t k = 0; k < p->numel; k++) i64[p->offset + k] = (int64_t)buffers[p->offset + k];
                st_writer_add(w, p->name, DT_I64, p->ndim, shape, i64 + p->offset);
            } else {
                st_writer_add(w, p->name, DT_F32, p->ndim, shape, buffers + p->offset);
            }
        } else {
            st_writer_add(w, p->name, DT_F32, p->ndim, shape, values + p->offset);
        }
    }
    char buf[64];
    if (opt) {
        /* the moments live in the same backend memory as the parameters */
        int64_t n = (int64_t)opt->n;
        const float *m = host_view(ps, opt->m, opt->n, &hm), *v = host_view(ps, opt->v, opt->n, &hvv);
        if (opt->n && (!m || !v)) goto oom;
        st_writer_add(w, T_EXP_AVG, DT_F32, 1, &n, m);
        st_writer_add(w, T_EXP_AVG_SQ, DT_F32, 1, &n, v);
        ckpt_meta_set_i64(w, KEY_ADAM_T, opt->t);
    }
    if (st) {
        ckpt_meta_set_i64(w, CKPT_KEY_EPOCH, st->epoch);
        ckpt_meta_set_i64(w, CKPT_KEY_SAMPLER, st->sampler_pos);
        uint64_t rng[2] = {st->seed, (uint64_t)st->step};
        ckpt_meta_set_u64s(w, CKPT_KEY_RNG, rng, 2);
        snprintf(buf, sizeof buf, "%08" PRIx32, f32_bits(st->scaler.scale));
        st_writer_set_meta(w, KEY_SCALE, buf);
        ckpt_meta_set_i64(w, KEY_SCALE_CLEAN, st->scaler.clean_steps);
        ckpt_meta_set_i64(w, KEY_SCALE_SKIPPED, st->scaler.skipped);
        snprintf(buf, sizeof buf, "%016" PRIx64, f64_bits(st->best_acc));
        st_writer_set_meta(w, KEY_BEST_ACC, buf);
        ckpt_meta_set_i64(w, KEY_BEST_STEP, st->best_step);
    }
    if (vocab) {
        int n = ans_vocab_size(vocab);
        if (!(ans = malloc((size_t)(n ? n : 1) * sizeof *ans))) goto oom;
        for (int i = 0; i < n; i++) ans[i] = ans_vocab_answer(vocab, i);
        if (ckpt_meta_set_answers(w, ans, n, e) != 0) goto done;
    }
    snprintf(buf, sizeof buf, "%016" PRIx64, config_hash);
    st_writer_set_meta(w, CKPT_KEY_CONFIG_HASH, buf);
    if (config_yaml) st_writer_set_meta(w, KEY_CONFIG, config_yaml);
    rc = ckpt_save(w, dir, st ? st->step : 0, path_out, path_cap, e);
    goto done;
oom:
    err_set(e, "checkpoint: out of memory");
done:
    st_writer_free(w);
    free(hv);
    free(hb);
    free(hm);
    free(hvv);
    free(i64);
    free(ans);
    return rc;
}

static int meta_hex(const StFile *f, const char *key, uint64_t *out, Err *e) {
    const char *s = st_metadata(f, key);
    if (!s) return err_set(e, "%s: __metadata__ has no '%s'", st_path(f), key);
    char *end;
    *out = strtoull(s, &end, 16);
    if (!*s || *end) return err_set(e, "%s: __metadata__['%s'] = '%s', expected hex digits", st_path(f), key, s);
    return 0;
}

static int check_vocab(const StFile *f, const AnswerVocab *vocab, Err *e) {
    char **ans = NULL;
    int n = 0;
    if (ckpt_meta_answers(f, &ans, &n, e) != 0) return -1;
    int rc = 0;
    if (n != ans_vocab_size(vocab)) {
        rc = err_set(e, "%s: the checkpoint's answer vocabulary has %d answers, this run's %d (same data and "
                     "data.answers settings needed to resume)", st_path(f), n, ans_vocab_size(vocab));
    } else {
        for (int i = 0; i < n; i++)
            if (strcmp(ans[i], ans_vocab_answer(vocab, i)) != 0) {
                rc = err_set(e, "%s: answer %d is '%s' in the checkpoint but '%s' in this run", st_path(f), i, ans[i],
                             ans_vocab_answer(vocab, i));
                break;
            }
    }
    ckpt_answers_free(ans, n);
    return rc;
}

int tstate_load(const char *path, ParamStore *ps, Optimizer *opt, TrainState *st,
                const AnswerVocab *vocab, Err *e) {
    StFile *f = NULL;
    if (ckpt_open(&f, path, e) != 0) return -1;
    int rc = -1;
    int on_host = !ps->be || ps->be->device == DEV_CPU;
    float *tmp = NULL;
    if (vocab && check_vocab(f, vocab, e) != 0) goto done;
    size_t tmp_n = 0;
    for (int i = 0; i < ps->n; i++)
        if (ps->items[i].numel > tmp_n) tmp_n = ps->items[i].numel;
    if (!(tmp = malloc((tmp_n ? tmp_n : 1) * sizeof *tmp))) {
        err_set(e, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < ps->n; i++) {
        const ParamInfo *p = &ps->items[i];
        float *dst = ps_value(ps, i);
        if (p->kind == PK_BUFFER && p->file_dtype == DT_I64) {
            const StTensor *t;
            if (st_get(f, p->name, &t, e) != 0) goto done;
            if (t->dtype != DT_I64 || (size_t)t->numel != p->numel) {
                err_set(e, "%s: tensor %s: expected I64 with %zu elements, found %s with %lld", path, p->name,
                        p->numel, st_dtype_str(t->dtype), (long long)t->numel);
                goto done;
            }
            for (size_t k = 0; k < p->numel; k++) {
                int64_t v;
                memcpy(&v, (const char *)t->data + 8 * k, 8);
                tmp[k] = (float)v;
            }
        } else if (ckpt_load_f32(f, p->name, tmp, p->ndim, p->shape, e) != 0) {
            goto done;
        }
        if (on_host)
            memcpy(dst, tmp, p->numel * sizeof *tmp);
        else
            ps->be->copy_h2d(ps->be, dst, tmp, p->numel * sizeof *tmp);
    }
    if (opt) {
        /* backend memory: read into a host buffer, then copy_h2d */
        int64_t n = (int64_t)opt->n;
        float *mv[2] = {opt->m, opt->v};
        const char *names[2] = {T_EXP_AVG, T_EXP_AVG_SQ};
        if (!on_host && opt->n > tmp_n) {
            float *p = realloc(tmp, opt->n * sizeof *tmp);
            if (!p) {
                err_set(e, "%s: out of memory", path);
                goto done;
            }
            tmp = p;
        }
        for (int k = 0; k < 2; k++) {
            if (ckpt_load_f32(f, names[k], on_host ? mv[k] : tmp, 1, &n, e) != 0) {
                err_prefix(e, "optimizer state (were different parameters frozen?)");
                goto done;
            }
            if (!on_host) ps->be->copy_h2d(ps->be, mv[k], tmp, opt->n * sizeof *tmp);
        }
        if (ckpt_meta_i64(f, KEY_ADAM_T, &opt->t, e) != 0 || ckpt_meta_i64(f, CKPT_KEY_STEP, &opt->step, e) != 0) {
            err_prefix(e, "optimizer state");
            goto done;
        }
    }
    if (st) {
        uint64_t rng[2], bits;
        int64_t v;
        if (ckpt_meta_i64(f, CKPT_KEY_STEP, &st->step, e) || ckpt_meta_i64(f, CKPT_KEY_EPOCH, &st->epoch, e) ||
            ckpt_meta_i64(f, CKPT_KEY_SAMPLER, &st->sampler_pos, e) || ckpt_meta_u64s(f, CKPT_KEY_RNG, rng, 2, e))
            goto done;
        st->seed = rng[0];
        if (meta_hex(f, KEY_SCALE, &bits, e)) goto done;
        st->scaler.scale = bits_f32((uint32_t)bits);
        if (ckpt_meta_i64(f, KEY_SCALE_CLEAN, &v, e)) goto done;
        st->scaler.clean_steps = (int)v;
        if (ckpt_meta_i64(f, KEY_SCALE_SKIPPED, &st->scaler.skipped, e)) goto done;
        if (meta_hex(f, KEY_BEST_ACC, &bits, e)) goto done;
        st->best_acc = bits_f64(bits);
        if (ckpt_meta_i64(f, KEY_BEST_STEP, &st->best_step, e)) goto done;
    }
    rc = 0;
done:
    free(tmp);
    st_close(f);
    return rc;
}

int tstate_load_vocab(const char *path, AnswerVocab **out, Err *e) {
    StFile *f = NULL;
    *out = NULL;
    if (ckpt_open(&f, path, e) != 0) return -1;
    char **ans = NULL;
    int n = 0;
    int rc = ckpt_meta_answers(f, &ans, &n, e);
    if (rc == 0) rc = ans_vocab_from_list(out, (const char *const *)ans, n, e);
    ckpt_answers_free(ans, n);
    st_close(f);
    return rc;
}

uint64_t tstate_config_hash(const char *path) {
    StFile *f = NULL;
    Err e;
    if (st_open(&f, path, &e) != 0) return 0;
    const char *s = st_metadata(f, CKPT_KEY_CONFIG_HASH);
    uint64_t h = s ? strtoull(s, NULL, 16) : 0;
    st_close(f);
    return h;
}
