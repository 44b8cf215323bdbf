/* params_st.c: ParamStore <-> safetensors, by name: pretrained weights in (with a name
 * prefix mapping, dtype conversion and a summary of unused tensors), weights out. Data
 * travels through host staging buffers, so the store may live in device memory. */
#include "model/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t off = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (off < n) snprintf(buf + off, n - off, "]");
}

/* file name for store name, or NULL when the tensor is outside store_prefix */
static int map_name(const char *store_name, const char *store_prefix, const char *file_prefix,
                    char *out, size_t n) {
    size_t sp = strlen(store_prefix);
    if (strncmp(store_name, store_prefix, sp) != 0) return 0;
    snprintf(out, n, "%s%s", file_prefix, store_name + sp);
    return 1;
}

/* I64 counters (num_batches_tracked) and the float dtypes st_read_f32 converts. */
static int read_as_f32(const StTensor *t, float *dst, size_t n, Err *e) {
    if (t->dtype == DT_I64 || t->dtype == DT_I32) {
        size_t es = t->dtype == DT_I64 ? 8 : 4;
        for (size_t i = 0; i < n; i++) {
            int64_t v = 0;
            if (es == 8) {
                memcpy(&v, (const uint8_t *)t->data + i * 8, 8);
            } else {
                int32_t v32;
                memcpy(&v32, (const uint8_t *)t->data + i * 4, 4);
                v = v32;
            }
            dst[i] = (float)v;
        }
        return 0;
    }
    return st_read_f32(t, dst, n, e);
}

int ps_load_safetensors(ParamStore *ps, const char *path, const char *store_prefix,
                        const char *file_prefix, PsLoadReport *rep, Err *e) {
    if (!store_prefix) store_prefix = "";
    if (!file_prefix) file_prefix = "";
    PsLoadReport local;
    if (!rep) rep = &local;
    memset(rep, 0, sizeof *rep);
    if (!ps->finalized) return err_set(e, "%s: loading weights before the parameter store is finalized", path);

    StFile *f = NULL;
    if (st_open(&f, path, e) != 0) return -1;
    int nf = st_count(f);
    char *used = calloc((size_t)(nf ? nf : 1), 1);
    size_t maxn = 0;
    for (int i = 0; i < ps->n; i++)
        if (ps->items[i].numel > maxn) maxn = ps->items[i].numel;
    float *tmp = malloc((maxn ? maxn : 1) * sizeof *tmp);
    int rc = 0;
    if (!used || !tmp) {
        rc = err_set(e, "%s: out of memory loading weights", path);
        goto done;
    }
    char fname[PS_NAME_MAX + 64];
    for (int i = 0; i < ps->n; i++) {
        const ParamInfo *p = &ps->items[i];
        if (!map_name(p->name, store_prefix, file_prefix, fname, sizeof fname)) continue;
        const StTensor *t = st_find(f, fname);
        if (!t) {
            char want[96];
            shape_str(p->ndim, p->shape, want, sizeof want);
            rc = err_set(e, "%s: missing tensor '%s' (model parameter %s expects shape %s)", path,
                         fname, p->name, want);
            goto done;
        }
        int same = t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
        if (!same) {
            char want[96], got[96];
            shape_str(p->ndim, p->shape, want, sizeof want);
            shape_str(t->ndim, t->shape, got, sizeof got);
            rc = err_set(e, "%s: tensor '%s' has shape %s, but model parameter %s expects %s", path,
                         fname, got, p->name, want);
            goto done;
        }
        if (read_as_f32(t, tmp, p->numel, e) != 0) {
            rc = err_prefix(e, "%s: tensor '%s'", path, fname);
            goto done;
        }
        ps->be->copy_h2d(ps->be, ps_value(ps, i), tmp, p->numel * sizeof *tmp);
        for (int j = 0; j < nf; j++)
            if (st_at(f, j) == t) used[j] = 1;
        rep->loaded++;
    }
    /* one-line summary of what the file had and nobody asked for */
    size_t off = 0;
    for (int j = 0; j < nf; j++)
        if (!used[j]) rep->unused++;
    if (rep->unused) {
        off = (size_t)snprintf(rep->unused_summary, sizeof rep->unused_summary, "%d unused tensor%s:",
                               rep->unused, rep->unused == 1 ? "" : "s");
        int shown = 0;
        for (int j = 0; j < nf && off < sizeof rep->unused_summary; j++) {
            if (used[j]) continue;
            if (shown == 8) {
                snprintf(rep->unused_summary + off, sizeof rep->unused_summary - off, " ...");
                break;
            }
            off += (size_t)snprintf(rep->unused_summary + off, sizeof rep->unused_summary - off,
                                    "%s %s", shown ? "," : "", st_at(f, j)->name);
            shown++;
        }
    }
done:
    free(tmp);
    free(used);
    st_close(f);
    return rc;
}

int ps_save_safetensors(const ParamStore *ps, const char *path, const char *store_prefix,
                        const char *file_prefix, Err *e) {
    if (!store_prefix) store_prefix = "";
    if (!file_prefix) file_prefix = "";
    if (!ps->finalized) return err_set(e, "%s: saving weights before the parameter store is finalized", path);
    /* host staging for everything written: 8 bytes per element covers I64 too */
    size_t total = 0;
    char fname[PS_NAME_MAX + 64];
    for (int i = 0; i < ps->n; i++)
        if (map_name(ps->items[i].name, store_prefix, file_prefix, fname, sizeof fname))
            total += ps->items[i].numel * (ps->items[i].file_dtype == DT_I64 ? 8 : 4);
    uint8_t *host = malloc(total ? total : 1);
    StWriter *w = st_writer_new();
    int rc = 0;
    if (!host || !w) {
        rc = err_set(e, "%s: out of memory saving weights (%zu bytes)", path, total);
        goto done;
    }
    size_t off = 0;
    for (int i = 0; i < ps->n; i++) {
        const ParamInfo *p = &ps->items[i];
        if (!map_name(p->name, store_prefix, file_prefix, fname, sizeof fname)) continue;
        float *dst = (float *)(host + off);
        ps->be->copy_d2h(ps->be, dst, ps_value(ps, i), p->numel * sizeof(float));
        if (p->file_dtype == DT_I64) {
            /* widen in place from the back so no element is overwritten before it is read */
            int64_t *d64 = (int64_t *)(host + off);
            for (size_t k = p->numel; k-- > 0;) d64[k] = (int64_t)dst[k];
            st_writer_add(w, fname, DT_I64, p->ndim, p->shape, d64);
            off += p->numel * 8;
        } else {
            st_writer_add(w, fname, DT_F32, p->ndim, p->shape, dst);
            off += p->numel * 4;
        }
    }
    rc = st_writer_save(w, path, e);
done:
    st_writer_free(w);
    free(host);
    return rc;
}
