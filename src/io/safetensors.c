/* safetensors.c: the safetensors reader (mmap + validation), writer, and the fp16/bf16
 * scalar conversions (see safetensors.h for the format). */
#include "io/safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/atomic.h"
#include "util/file.h"
#include "util/half.h"

/* safetensors data is little-endian; the reader hands out pointers to it unchanged. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define ST_META_KEY "__metadata__"
#define ST_DTYPE_LIST "F32, F16, BF16, I64, I32, U8, BOOL"

/* ---------------------------------------------------------------- dtypes */

static const struct { const char *name; DType dt; size_t size; } k_dtypes[] = {
    {"F32", DT_F32, 4}, {"F16", DT_F16, 2}, {"BF16", DT_BF16, 2}, {"I64", DT_I64, 8},
    {"I32", DT_I32, 4}, {"U8", DT_U8, 1},   {"BOOL", DT_BOOL, 1},
};
#define N_DTYPES (int)(sizeof k_dtypes / sizeof k_dtypes[0])

int st_dtype_parse(const char *s, DType *out) {
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(s, k_dtypes[i].name) == 0) {
            *out = k_dtypes[i].dt;
            return 0;
        }
    return -1;
}

const char *st_dtype_str(DType t) {
    for (int i = 0; i < N_DTYPES; i++)
        if (k_dtypes[i].dt == t) return k_dtypes[i].name;
    return "?";
}

size_t st_dtype_size(DType t) {
    for (int i = 0; i < N_DTYPES; i++)
        if (k_dtypes[i].dt == t) return k_dtypes[i].size;
    return 0;
}

/* ---------------------------------------------------------------- conversions */

/* The conversions themselves live in util/half.h (shared with the activation ops). */
float st_f16_to_f32(uint16_t h) { return f16_to_f32(h); }
float st_bf16_to_f32(uint16_t b) { return bf16_to_f32(b); }
uint16_t st_f32_to_bf16(float f) { return f32_to_bf16(f); }
uint16_t st_f32_to_f16(float f) { return f32_to_f16(f); }

void st_f32_to_bf16_n(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = st_f32_to_bf16(src[i]);
}

void st_f32_to_f16_n(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = st_f32_to_f16(src[i]);
}

/* ---------------------------------------------------------------- reader */

struct StFile {
    char *path;
    FileMap map;        /* the whole file */
    json_t *root;       /* kept alive: tensor names and metadata strings point into it */
    StTensor *tensors;  /* sorted by name */
    int n;
    const char **meta_keys, **meta_vals; /* sorted by key */
    int n_meta;
    /* validation scratch: data offsets per tensor (same order as tensors) */
    uint64_t *begin, *end;
};

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const StTensor *)a)->name, ((const StTensor *)b)->name);
}

typedef struct OffIdx { uint64_t begin, end; const char *name; } OffIdx;

static int cmp_off(const void *a, const void *b) {
    const OffIdx *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void shape_str(const int64_t *shape, int ndim, char *buf, size_t cap) {
    size_t off = 0;
    off += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (off < cap) snprintf(buf + off, cap - off, "]");
}

/* Reads a JSON integer >= 0 (not a real, not a bool). */
static int json_nonneg_int(const json_t *v, int64_t *out) {
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    if (x < 0) return -1;
    *out = (int64_t)x;
    return 0;
}

static void json_brief(const json_t *v, char *buf, size_t cap) {
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(buf, cap, "%s", s ? s : "?");
    free(s);
}

static int parse_tensor(StFile *f, const char *name, const json_t *obj, int idx, uint64_t data_size,
                        Err *e) {
    const char *p = f->path;
    StTensor *t = &f->tensors[idx];
    t->name = name;
    t->file = f->path;
    if (!json_is_object(obj))
        return err_set(e, "%s: tensor '%s': header entry must be an object with dtype, shape and data_offsets", p, name);

    const json_t *jd = json_object_get(obj, "dtype");
    if (!jd) return err_set(e, "%s: tensor '%s': missing \"dtype\"", p, name);
    if (!json_is_string(jd)) return err_set(e, "%s: tensor '%s': \"dtype\" must be a string", p, name);
    if (st_dtype_parse(json_string_value(jd), &t->dtype))
        return err_set(e, "%s: tensor '%s': unsupported dtype '%s' (expected one of " ST_DTYPE_LIST ")",
                       p, name, json_string_value(jd));

    const json_t *js = json_object_get(obj, "shape");
    if (!js) return err_set(e, "%s: tensor '%s': missing \"shape\"", p, name);
    if (!json_is_array(js)) return err_set(e, "%s: tensor '%s': \"shape\" must be a list of non-negative integers", p, name);
    size_t nd = json_array_size(js);
    if (nd > TENSOR_MAX_DIMS)
        return err_set(e, "%s: tensor '%s': %zu dimensions, at most %d supported", p, name, nd, TENSOR_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        int64_t d;
        if (json_nonneg_int(json_array_get(js, i), &d)) {
            char b[64];
            json_brief(json_array_get(js, i), b, sizeof b);
            return err_set(e, "%s: tensor '%s': shape[%zu] = %s, expected a non-negative integer", p, name, i, b);
        }
        t->shape[i] = d;
        /* numel * 8 must not overflow: the byte count is compared below */
        if (d != 0 && numel > (UINT64_C(1) << 59) / (uint64_t)d)
            return err_set(e, "%s: tensor '%s': shape too large", p, name);
        numel *= (uint64_t)d;
    }
    t->numel = (int64_t)numel;

    const json_t *jo = json_object_get(obj, "data_offsets");
    if (!jo) return err_set(e, "%s: tensor '%s': missing \"data_offsets\"", p, name);
    int64_t b = 0, en = 0;
    if (!json_is_array(jo) || json_array_size(jo) != 2 || json_nonneg_int(json_array_get(jo, 0), &b) ||
        json_nonneg_int(json_array_get(jo, 1), &en)) {
        char buf[96];
        json_brief(jo, buf, sizeof buf);
        return err_set(e, "%s: tensor '%s': data_offsets = %s, expected [begin, end] of two non-negative integers",
                       p, name, buf);
    }
    char sh[160];
    shape_str(t->shape, t->ndim, sh, sizeof sh);
    if (en < b)
        return err_set(e, "%s: tensor '%s': data_offsets [%lld, %lld] end before begin", p, name,
                       (long long)b, (long long)en);
    size_t esz = st_dtype_size(t->dtype);
    uint64_t want = numel * esz;
    if ((uint64_t)(en - b) != want)
        return err_set(e, "%s: tensor '%s' (%s %s): data_offsets [%lld, %lld] span %lld bytes, expected %llu "
                       "(%llu elements x %zu bytes)", p, name, st_dtype_str(t->dtype), sh, (long long)b,
                       (long long)en, (long long)(en - b), (unsigned long long)want,
                       (unsigned long long)numel, esz);
    if ((uint64_t)en > data_size)
        return err_set(e, "%s: tensor '%s': data_offsets [%lld, %lld] extend past the end of the data section "
                       "(%llu bytes; file truncated?)", p, name, (long long)b, (long long)en,
                       (unsigned long long)data_size);
    f->begin[idx] = (uint64_t)b;
    f->end[idx] = (uint64_t)en;
    t->nbytes = (size_t)want;
    return 0;
}

static int parse_metadata(StFile *f, const json_t *meta, Err *e) {
    if (!json_is_object(meta))
        return err_set(e, "%s: \"" ST_META_KEY "\" must be an object of string values", f->path);
    size_t n = json_object_size(meta);
    f->meta_keys = calloc(n ? n : 1, sizeof *f->meta_keys);
    f->meta_vals = calloc(n ? n : 1, sizeof *f->meta_vals);
    if (!f->meta_keys || !f->meta_vals) return err_set(e, "%s: out of memory", f->path);
    const char *k;
    json_t *v;
    int i = 0;
    json_object_foreach((json_t *)meta, k, v) {
        if (!json_is_string(v))
            return err_set(e, "%s: " ST_META_KEY "['%s'] must be a string", f->path, k);
        f->meta_keys[i] = k;
        f->meta_vals[i] = json_string_value(v);
        i++;
    }
    f->n_meta = i;
    /* insertion sort by key: metadata is small */
    for (int a = 1; a < f->n_meta; a++)
        for (int b = a; b > 0 && strcmp(f->meta_keys[b - 1], f->meta_keys[b]) > 0; b--) {
            const char *tk = f->meta_keys[b], *tv = f->meta_vals[b];
            f->meta_keys[b] = f->meta_keys[b - 1];
            f->meta_vals[b] = f->meta_vals[b - 1];
            f->meta_keys[b - 1] = tk;
            f->meta_vals[b - 1] = tv;
        }
    return 0;
}

/* Data offsets sorted by begin must tile [0, data_size) exactly. */
static int check_layout(StFile *f, uint64_t data_size, uint64_t header_len, Err *e) {
    if (f->n == 0) {
        if (data_size != 0)
            return err_set(e, "%s: no tensors but %llu bytes follow the header", f->path,
                           (unsigned long long)data_size);
        return 0;
    }
    OffIdx *ix = malloc((size_t)f->n * sizeof *ix);
    if (!ix) return err_set(e, "%s: out of memory", f->path);
    for (int i = 0; i < f->n; i++) ix[i] = (OffIdx){f->begin[i], f->end[i], f->tensors[i].name};
    qsort(ix, (size_t)f->n, sizeof *ix, cmp_off);
    int rc = 0;
    uint64_t pos = 0;
    const OffIdx *prev = NULL;
    for (int i = 0; i < f->n && !rc; i++) {
        if (ix[i].begin < pos) {
            rc = err_set(e, "%s: tensor '%s' data_offsets [%llu, %llu] overlap tensor '%s' [%llu, %llu]", f->path,
                         ix[i].name, (unsigned long long)ix[i].begin, (unsigned long long)ix[i].end,
                         prev->name, (unsigned long long)prev->begin, (unsigned long long)prev->end);
        } else if (ix[i].begin > pos) {
            if (prev)
                rc = err_set(e, "%s: gap of %llu bytes in the data section between tensor '%s' (ends at %llu) "
                             "and tensor '%s' (begins at %llu); tensors must be contiguous", f->path,
                             (unsigned long long)(ix[i].begin - pos), prev->name, (unsigned long long)pos,
                             ix[i].name, (unsigned long long)ix[i].begin);
            else
                rc = err_set(e, "%s: gap of %llu bytes at the start of the data section before tensor '%s' "
                             "(begins at %llu, expected 0)", f->path, (unsigned long long)ix[i].begin,
                             ix[i].name, (unsigned long long)ix[i].begin);
        }
        pos = ix[i].end;
        prev = &ix[i];
    }
    if (!rc && pos != data_size)
        rc = err_set(e, "%s: %llu bytes after the last tensor '%s': file size is %llu, expected 8 + %llu + %llu",
                     f->path, (unsigned long long)(data_size - pos), prev->name,
                     (unsigned long long)(8 + header_len + data_size), (unsigned long long)header_len,
                     (unsigned long long)pos);
    free(ix);
    return rc;
}

static int parse_header(StFile *f, const char *hdr, size_t n, uint64_t data_size, Err *e) {
    json_error_t je;
    f->root = json_loadb(hdr, n, JSON_REJECT_DUPLICATES, &je);
    if (!f->root)
        return err_set(e, "%s: header JSON invalid at line %d, column %d (byte %d of the header, file offset %d): %s",
                       f->path, je.line, je.column, je.position, je.position + 8, je.text);
    if (!json_is_object(f->root)) return err_set(e, "%s: header JSON must be an object", f->path);

    size_t total = json_object_size(f->root);
    const json_t *meta = json_object_get(f->root, ST_META_KEY);
    size_t nt = total - (meta ? 1 : 0);
    f->tensors = calloc(nt ? nt : 1, sizeof *f->tensors);
    f->begin = calloc(nt ? nt : 1, sizeof *f->begin);
    f->end = calloc(nt ? nt : 1, sizeof *f->end);
    if (!f->tensors || !f->begin || !f->end) return err_set(e, "%s: out of memory", f->path);
    if (meta && parse_metadata(f, meta, e)) return -1;

    const char *k;
    json_t *v;
    int i = 0;
    json_object_foreach(f->root, k, v) {
        if (strcmp(k, ST_META_KEY) == 0) continue;
        if (parse_tensor(f, k, v, i, data_size, e)) return -1;
        i++;
    }
    f->n = i;
    if (check_layout(f, data_size, n, e)) return -1;

    const uint8_t *data = f->map.data + 8 + n;
    for (int j = 0; j < f->n; j++) f->tensors[j].data = data + f->begin[j];
    qsort(f->tensors, (size_t)f->n, sizeof *f->tensors, cmp_tensor_name);
    for (int j = 1; j < f->n; j++) /* jansson rejects duplicates already; belt and braces */
        if (strcmp(f->tensors[j - 1].name, f->tensors[j].name) == 0)
            return err_set(e, "%s: tensor '%s' appears twice in the header", f->path, f->tensors[j].name);
    return 0;
}

int st_open(StFile **out, const char *path, Err *e) {
    *out = NULL;
    StFile *f = calloc(1, sizeof *f);
    if (!f) return err_set(e, "%s: out of memory", path);
    size_t plen = strlen(path) + 1;
    f->path = malloc(plen);
    if (!f->path) {
        free(f);
        return err_set(e, "%s: out of memory", path);
    }
    memcpy(f->path, path, plen);

    if (file_map(&f->map, path, "safetensors file", 0, e) != 0) {
        st_close(f);
        return -1;
    }
    uint64_t size = (uint64_t)f->map.size;
    if (size < 8) {
        err_set(e, "%s: file is %llu bytes, too short for the 8-byte header length (truncated file?)", path,
                (unsigned long long)size);
        st_close(f);
        return -1;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->map.data[i];
    /* Validate N before any allocation that depends on it. */
    if (n > ST_MAX_HEADER_BYTES) {
        err_set(e, "%s: header length %llu bytes exceeds the %u-byte limit (corrupt file or not safetensors)", path,
                (unsigned long long)n, ST_MAX_HEADER_BYTES);
        st_close(f);
        return -1;
    }
    if (n > size - 8) {
        err_set(e, "%s: header length %llu bytes but only %llu bytes follow the length field (truncated header?)",
                path, (unsigned long long)n, (unsigned long long)(size - 8));
        st_close(f);
        return -1;
    }
    if (parse_header(f, (const char *)f->map.data + 8, (size_t)n, size - 8 - n, e)) {
        st_close(f);
        return -1;
    }
    free(f->begin);
    free(f->end);
    f->begin = f->end = NULL;
    *out = f;
    return 0;
}

void st_close(StFile *f) {
    if (!f) return;
    file_unmap(&f->map);
    if (f->root) json_decref(f->root);
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_vals);
    free(f->begin);
    free(f->end);
    free(f->path);
    free(f);
}

const char *st_path(const StFile *f) { return f->path; }
int st_count(const StFile *f) { return f->n; }

const StTensor *st_at(const StFile *f, int i) {
    return (i >= 0 && i < f->n) ? &f->tensors[i] : NULL;
}

const StTensor *st_find(const StFile *f, const char *name) {
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(f->tensors[mid].name, name);
        if (c == 0) return &f->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

int st_get(const StFile *f, const char *name, const StTensor **out, Err *e) {
    *out = st_find(f, name);
    if (!*out) return err_set(e, "%s: tensor '%s' not found (the file has %d tensors)", f->path, name, f->n);
    return 0;
}

const char *st_metadata(const StFile *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

int st_metadata_count(const StFile *f) { return f->n_meta; }

int st_metadata_at(const StFile *f, int i, const char **key, const char **value) {
    if (i < 0 || i >= f->n_meta) return -1;
    *key = f->meta_keys[i];
    *value = f->meta_vals[i];
    return 0;
}

int st_read_f32(const StTensor *t, float *dst, size_t n, Err *e) {
    if ((uint64_t)t->numel != (uint64_t)n)
        return err_set(e, "%s: tensor '%s' has %lld elements, expected %zu", t->file, t->name,
                       (long long)t->numel, n);
    const uint8_t *src = t->data;
    switch (t->dtype) {
    case DT_F32:
        if (n) memcpy(dst, src, n * 4);
        return 0;
    case DT_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = st_f16_to_f32(h);
        }
        return 0;
    case DT_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = st_bf16_to_f32(h);
        }
        return 0;
    default:
        return err_set(e, "%s: tensor '%s' is %s, expected a floating-point dtype (F32, F16 or BF16)", t->file,
                       t->name, st_dtype_str(t->dtype));
    }
}

/* ---------------------------------------------------------------- writer */

typedef struct StWEntry {
    char *name;
    DType dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    const void *data;
    uint64_t nbytes;
} StWEntry;

struct StWriter {
    StWEntry *t;
    int n, cap;
    char **mk, **mv;
    int nm, mcap;
    char first_err[512];
};

StWriter *st_writer_new(void) { return calloc(1, sizeof(StWriter)); }

void st_writer_free(StWriter *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->t[i].name);
    for (int i = 0; i < w->nm; i++) {
        free(w->mk[i]);
        free(w->mv[i]);
    }
    free(w->t);
    free(w->mk);
    free(w->mv);
    free(w);
}

static char *wdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static int writer_fail(StWriter *w, const char *msg, const char *name) {
    if (!w->first_err[0]) snprintf(w->first_err, sizeof w->first_err, "tensor '%s': %s", name ? name : "?", msg);
    return -1;
}

int st_writer_add(StWriter *w, const char *name, DType dtype, int ndim, const int64_t *shape,
                  const void *data) {
    if (!name || !name[0]) return writer_fail(w, "empty name", name);
    if (strcmp(name, ST_META_KEY) == 0) return writer_fail(w, "reserved name", name);
    if (st_dtype_size(dtype) == 0) return writer_fail(w, "unknown dtype", name);
    if (ndim < 0 || ndim > TENSOR_MAX_DIMS || (ndim > 0 && !shape))
        return writer_fail(w, "bad number of dimensions", name);
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return writer_fail(w, "negative dimension", name);
        numel *= (uint64_t)shape[i];
    }
    uint64_t nbytes = numel * st_dtype_size(dtype);
    if (nbytes && !data) return writer_fail(w, "NULL data", name);
    if (w->n == w->cap) {
        int nc = w->cap ? 2 * w->cap : 16;
        StWEntry *nt = realloc(w->t, (size_t)nc * sizeof *nt);
        if (!nt) return writer_fail(w, "out of memory", name);
        w->t = nt;
        w->cap = nc;
    }
    StWEntry *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = wdup(name);
    if (!t->name) return writer_fail(w, "out of memory", name);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    t->nbytes = nbytes;
    w->n++;
    return 0;
}

int st_writer_set_meta(StWriter *w, const char *key, const char *value) {
    for (int i = 0; i < w->nm; i++)
        if (strcmp(w->mk[i], key) == 0) {
            char *v = wdup(value);
            if (!v) return writer_fail(w, "out of memory (metadata)", key);
            free(w->mv[i]);
            w->mv[i] = v;
            return 0;
        }
    if (w->nm == w->mcap) {
        int nc = w->mcap ? 2 * w->mcap : 8;
        char **a = realloc(w->mk, (size_t)nc * sizeof *a);
        if (!a) return writer_fail(w, "out of memory (metadata)", key);
        w->mk = a;
        char **b = realloc(w->mv, (size_t)nc * sizeof *b);
        if (!b) return writer_fail(w, "out of memory (metadata)", key);
        w->mv = b;
        w->mcap = nc;
    }
    char *k = wdup(key), *v = wdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return writer_fail(w, "out of memory (metadata)", key);
    }
    w->mk[w->nm] = k;
    w->mv[w->nm] = v;
    w->nm++;
    return 0;
}

static int cmp_wname(const void *a, const void *b) {
    return strcmp((*(const StWEntry *const *)a)->name, (*(const StWEntry *const *)b)->name);
}

/* Larger elements first so every tensor starts at a multiple of its element size. */
static int cmp_wlayout(const void *a, const void *b) {
    const StWEntry *x = *(const StWEntry *const *)a, *y = *(const StWEntry *const *)b;
    size_t sx = st_dtype_size(x->dtype), sy = st_dtype_size(y->dtype);
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

static json_t *build_header(StWriter *w, StWEntry **order, Err *e, const char *path) {
    json_t *root = json_object();
    if (!root) goto oom;
    if (w->nm) {
        json_t *m = json_object();
        if (!m || json_object_set_new(root, ST_META_KEY, m)) goto oom;
        for (int i = 0; i < w->nm; i++)
            if (json_object_set_new(m, w->mk[i], json_string(w->mv[i]))) {
                err_set(e, "%s: metadata key '%s': value is not valid UTF-8", path, w->mk[i]);
                json_decref(root);
                return NULL;
            }
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        StWEntry *t = order[i];
        json_t *o = json_object(), *sh = json_array(), *of = json_array();
        if (!o || !sh || !of) {
            json_decref(o);
            json_decref(sh);
            json_decref(of);
            goto oom;
        }
        for (int d = 0; d < t->ndim; d++) json_array_append_new(sh, json_integer((json_int_t)t->shape[d]));
        json_array_append_new(of, json_integer((json_int_t)off));
        json_array_append_new(of, json_integer((json_int_t)(off + t->nbytes)));
        off += t->nbytes;
        json_object_set_new(o, "dtype", json_string(st_dtype_str(t->dtype)));
        json_object_set_new(o, "shape", sh);
        json_object_set_new(o, "data_offsets", of);
        if (json_object_set_new(root, t->name, o)) {
            err_set(e, "%s: tensor name '%s' is not valid UTF-8", path, t->name);
            json_decref(root);
            return NULL;
        }
    }
    return root;
oom:
    json_decref(root);
    err_set(e, "%s: out of memory building the header", path);
    return NULL;
}

int st_writer_save(StWriter *w, const char *path, Err *e) {
    if (w->first_err[0]) return err_set(e, "%s: %s", path, w->first_err);
    StWEntry **order = malloc((size_t)(w->n ? w->n : 1) * sizeof *order);
    if (!order) return err_set(e, "%s: out of memory", path);
    for (int i = 0; i < w->n; i++) order[i] = &w->t[i];
    qsort(order, (size_t)w->n, sizeof *order, cmp_wname);
    for (int i = 1; i < w->n; i++)
        if (strcmp(order[i - 1]->name, order[i]->name) == 0) {
            err_set(e, "%s: tensor '%s' added twice", path, order[i]->name);
            free(order);
            return -1;
        }
    qsort(order, (size_t)w->n, sizeof *order, cmp_wlayout);

    json_t *root = build_header(w, order, e, path);
    if (!root) {
        free(order);
        return -1;
    }
    char *hdr = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (!hdr) {
        free(order);
        return err_set(e, "%s: out of memory serializing the header", path);
    }
    size_t hlen = strlen(hdr), padded = (hlen + 7) & ~(size_t)7;
    uint8_t lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (uint8_t)((uint64_t)padded >> (8 * i));

    AtomicFile af;
    if (atomic_open(&af, path, e)) {
        free(hdr);
        free(order);
        return -1;
    }
    int ok = fwrite(lenb, 1, 8, af.fp) == 8 && fwrite(hdr, 1, hlen, af.fp) == hlen;
    for (size_t i = hlen; ok && i < padded; i++) ok = fputc(' ', af.fp) != EOF;
    for (int i = 0; ok && i < w->n; i++)
        if (order[i]->nbytes) ok = fwrite(order[i]->data, 1, (size_t)order[i]->nbytes, af.fp) == order[i]->nbytes;
    free(hdr);
    free(order);
    if (!ok) {
        err_errno(e, "%s: write to %s failed", path, af.tmp);
        atomic_abort(&af);
        return -1;
    }
    return atomic_commit(&af, e);
}
