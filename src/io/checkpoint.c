/* checkpoint.c: save / rotate / mark-best / find-latest / load for training checkpoints
 * (see checkpoint.h). Everything that touches a real checkpoint name goes through a
 * rename or a link, so a crash never leaves a half-written file under that name. */
#include "io/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic.h"

#define CKPT_SUFFIX ".safetensors"

/* ---------------------------------------------------------------- names */

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int ckpt_parse_name(const char *path, int64_t *step) {
    const char *b = base_name(path);
    if (strncmp(b, "step_", 5) != 0) return -1;
    const char *p = b + 5, *d = p;
    int64_t v = 0;
    while (*d >= '0' && *d <= '9') {
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (*d - '0');
        d++;
    }
    if (d == p || strcmp(d, CKPT_SUFFIX) != 0) return -1;
    *step = v;
    return 0;
}

static int join(char *out, size_t cap, const char *dir, const char *name, Err *e) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return err_set(e, "%s/%s: path too long", dir, name);
    return 0;
}

/* mkdir -p */
static int make_dirs(const char *dir, Err *e) {
    char buf[CKPT_PATH_MAX];
    if (strlen(dir) >= sizeof buf) return err_set(e, "%s: directory path too long", dir);
    strcpy(buf, dir);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return err_errno(e, "cannot create directory %s", buf);
            *p = c;
            if (c == '\0') break;
        }
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return err_set(e, "%s: not a directory", dir);
    return 0;
}

/* ---------------------------------------------------------------- listing */

typedef struct CkptEntry { int64_t step; char *name; } CkptEntry;

static int cmp_entry_desc(const void *a, const void *b) {
    const CkptEntry *x = a, *y = b;
    if (x->step != y->step) return x->step > y->step ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void free_entries(CkptEntry *v, int n) {
    for (int i = 0; i < n; i++) free(v[i].name);
    free(v);
}

/* step_* checkpoints in dir, newest first. A missing dir is an empty list. */
static int list_ckpts(const char *dir, CkptEntry **out, int *n_out, Err *e) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return 0;
        return err_errno(e, "cannot list checkpoint directory %s", dir);
    }
    CkptEntry *v = NULL;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        int64_t step;
        if (ckpt_parse_name(de->d_name, &step)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            CkptEntry *nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) goto oom;
            v = nv;
        }
        size_t len = strlen(de->d_name) + 1;
        v[n].name = malloc(len);
        if (!v[n].name) goto oom;
        memcpy(v[n].name, de->d_name, len);
        v[n].step = step;
        n++;
    }
    closedir(d);
    if (n) qsort(v, (size_t)n, sizeof *v, cmp_entry_desc);
    *out = v;
    *n_out = n;
    return 0;
oom:
    closedir(d);
    free_entries(v, n);
    return err_set(e, "%s: out of memory listing checkpoints", dir);
}

/* ---------------------------------------------------------------- metadata */

int ckpt_meta_set_i64(StWriter *w, const char *key, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return st_writer_set_meta(w, key, buf);
}

int ckpt_meta_i64(const StFile *f, const char *key, int64_t *out, Err *e) {
    const char *s = st_metadata(f, key);
    if (!s) return err_set(e, "%s: __metadata__ has no '%s'", st_path(f), key);
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno)
        return err_set(e, "%s: __metadata__['%s'] = '%s', expected an integer", st_path(f), key, s);
    *out = (int64_t)v;
    return 0;
}

int ckpt_meta_set_u64s(StWriter *w, const char *key, const uint64_t *v, int n) {
    size_t cap = (size_t)(n > 0 ? n : 1) * 17 + 1;
    char *buf = malloc(cap);
    if (!buf) return -1;
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%016" PRIx64, i ? " " : "", v[i]);
    int rc = st_writer_set_meta(w, key, buf);
    free(buf);
    return rc;
}

int ckpt_meta_u64s(const StFile *f, const char *key, uint64_t *out, int n, Err *e) {
    const char *s = st_metadata(f, key);
    if (!s) return err_set(e, "%s: __metadata__ has no '%s'", st_path(f), key);
    const char *p = s;
    for (int i = 0; i < n; i++) {
        while (*p == ' ') p++;
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 16);
        if (end == p || errno || (*end && *end != ' '))
            return err_set(e, "%s: __metadata__['%s']: word %d is not a hex number (expected %d words)",
                           st_path(f), key, i, n);
        out[i] = (uint64_t)v;
        p = end;
    }
    while (*p == ' ') p++;
    if (*p) return err_set(e, "%s: __metadata__['%s'] has more than %d words", st_path(f), key, n);
    return 0;
}

int ckpt_meta_set_answers(StWriter *w, const char *const *answers, int n, Err *e) {
    json_t *a = json_array();
    if (!a) return err_set(e, "out of memory encoding the answer vocabulary");
    for (int i = 0; i < n; i++)
        if (json_array_append_new(a, json_string(answers[i]))) {
            json_decref(a);
            return err_set(e, "answer vocabulary entry %d is not valid UTF-8", i);
        }
    char *s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    if (!s) return err_set(e, "out of memory encoding the answer vocabulary");
    int rc = st_writer_set_meta(w, CKPT_KEY_ANSWERS, s);
    free(s);
    if (rc) return err_set(e, "out of memory storing the answer vocabulary");
    return 0;
}

void ckpt_answers_free(char **answers, int n) {
    if (!answers) return;
    for (int i = 0; i < n; i++) free(answers[i]);
    free(answers);
}

int ckpt_meta_answers(const StFile *f, char ***answers_out, int *n_out, Err *e) {
    *answers_out = NULL;
    *n_out = 0;
    const char *s = st_metadata(f, CKPT_KEY_ANSWERS);
    if (!s) return err_set(e, "%s: __metadata__ has no '" CKPT_KEY_ANSWERS "'", st_path(f));
    json_error_t je;
    json_t *a = json_loads(s, 0, &je);
    if (!a || !json_is_array(a)) {
        json_decref(a);
        return err_set(e, "%s: __metadata__['" CKPT_KEY_ANSWERS "'] is not a JSON list of strings%s%s",
                       st_path(f), a ? "" : ": ", a ? "" : je.text);
    }
    int n = (int)json_array_size(a);
    char **v = calloc((size_t)(n ? n : 1), sizeof *v);
    if (!v) {
        json_decref(a);
        return err_set(e, "%s: out of memory", st_path(f));
    }
    for (int i = 0; i < n; i++) {
        const json_t *x = json_array_get(a, (size_t)i);
        if (!json_is_string(x)) {
            ckpt_answers_free(v, i);
            json_decref(a);
            return err_set(e, "%s: __metadata__['" CKPT_KEY_ANSWERS "'][%d] is not a string", st_path(f), i);
        }
        size_t len = json_string_length(x) + 1;
        v[i] = malloc(len);
        if (!v[i]) {
            ckpt_answers_free(v, i);
            json_decref(a);
            return err_set(e, "%s: out of memory", st_path(f));
        }
        memcpy(v[i], json_string_value(x), len);
    }
    json_decref(a);
    *answers_out = v;
    *n_out = n;
    return 0;
}

void ckpt_hash_hex(const void *data, size_t n, char out[17]) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    snprintf(out, 17, "%016" PRIx64, h);
}

/* ---------------------------------------------------------------- save / rotate / best */

int ckpt_save(StWriter *w, const char *dir, int64_t step, char *path_out, size_t path_cap, Err *e) {
    if (step < 0) return err_set(e, "%s: checkpoint step %" PRId64 " is negative", dir, step);
    char name[64], path[CKPT_PATH_MAX];
    snprintf(name, sizeof name, "step_%08" PRId64 CKPT_SUFFIX, step);
    if (join(path, sizeof path, dir, name, e)) return -1;
    if (make_dirs(dir, e)) return -1;
    char ver[16];
    snprintf(ver, sizeof ver, "%d", CKPT_FORMAT_VERSION);
    if (st_writer_set_meta(w, CKPT_KEY_VERSION, ver) || ckpt_meta_set_i64(w, CKPT_KEY_STEP, step))
        return err_set(e, "%s: out of memory setting checkpoint metadata", path);
    if (st_writer_save(w, path, e)) return err_prefix(e, "saving checkpoint");
    if (path_out) {
        if (strlen(path) >= path_cap) return err_set(e, "%s: path longer than the caller's buffer", path);
        strcpy(path_out, path);
    }
    return 0;
}

/* The step best.safetensors was made from, or -1 if there is no (readable) best. */
static int64_t best_step(const char *dir) {
    char p[CKPT_PATH_MAX];
    Err e;
    if (join(p, sizeof p, dir, CKPT_BEST_NAME, &e) || access(p, F_OK) != 0) return -1;
    StFile *f = NULL;
    int64_t s = -1;
    if (st_open(&f, p, &e) == 0 && ckpt_meta_i64(f, CKPT_KEY_STEP, &s, &e) != 0) s = -1;
    st_close(f);
    return s;
}

/* Removes step_*.tmp.<pid> / best.safetensors.tmp.<pid> of processes that no longer exist. */
static int clean_stale_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *de;
    char p[CKPT_PATH_MAX];
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (strncmp(nm, "step_", 5) != 0 && strncmp(nm, CKPT_BEST_NAME ".tmp.", strlen(CKPT_BEST_NAME) + 5) != 0)
            continue;
        const char *t = strstr(nm, CKPT_SUFFIX ".tmp.");
        if (!t) continue;
        char *end = NULL;
        long pid = strtol(t + strlen(CKPT_SUFFIX ".tmp."), &end, 10);
        if (pid <= 0 || *end || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* still running (or not ours) */
        if (snprintf(p, sizeof p, "%s/%s", dir, nm) < (int)sizeof p && unlink(p) == 0) removed++;
    }
    closedir(d);
    return removed;
}

int ckpt_rotate(const char *dir, int keep_last, Err *e) {
    int removed = clean_stale_temps(dir);
    CkptEntry *v;
    int n;
    if (list_ckpts(dir, &v, &n, e)) return -1;
    int64_t best = keep_last > 0 && n > keep_last ? best_step(dir) : -1;
    char p[CKPT_PATH_MAX];
    int rc = 0;
    for (int i = keep_last > 0 ? keep_last : n; i < n && !rc; i++) {
        if (v[i].step == best) continue;
        if (join(p, sizeof p, dir, v[i].name, e)) rc = -1;
        else if (unlink(p) != 0 && errno != ENOENT) rc = err_errno(e, "cannot delete old checkpoint %s", p);
        else removed++;
    }
    free_entries(v, n);
    if (!rc && removed) {
        if (join(p, sizeof p, dir, CKPT_BEST_NAME, e)) return -1;
        rc = atomic_fsync_dir_of(p, e);
    }
    return rc;
}

static int copy_atomic(const char *src, const char *dst, Err *e) {
    FILE *in = fopen(src, "rb");
    if (!in) return err_errno(e, "cannot open %s to copy it to %s", src, dst);
    AtomicFile af;
    if (atomic_open(&af, dst, e)) {
        fclose(in);
        return -1;
    }
    char buf[1 << 16];
    size_t k;
    int ok = 1;
    while (ok && (k = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, k, af.fp) == k;
    if (ferror(in)) ok = 0;
    fclose(in);
    if (!ok) {
        err_errno(e, "copying %s to %s", src, dst);
        atomic_abort(&af);
        return -1;
    }
    return atomic_commit(&af, e);
}

int ckpt_mark_best(const char *dir, const char *ckpt_path, Err *e) {
    char best[CKPT_PATH_MAX], tmp[CKPT_PATH_MAX + 32];
    if (join(best, sizeof best, dir, CKPT_BEST_NAME, e)) return -1;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", best, (long)getpid());
    unlink(tmp);
    if (link(ckpt_path, tmp) == 0) {
        if (rename(tmp, best) != 0) {
            err_errno(e, "cannot rename %s to %s", tmp, best);
            unlink(tmp);
            return -1;
        }
        return atomic_fsync_dir_of(best, e);
    }
    if (errno == ENOENT) return err_errno(e, "cannot mark %s as best", ckpt_path);
    /* cross-device, or a filesystem without hard links: copy */
    return copy_atomic(ckpt_path, best, e);
}

/* ---------------------------------------------------------------- find / open / load */

int ckpt_open(StFile **out, const char *path, Err *e) {
    StFile *f = NULL;
    if (st_open(&f, path, e)) return -1;
    int64_t ver, step, want;
    if (!st_metadata(f, CKPT_KEY_VERSION)) {
        err_set(e, "%s: not a vqa_train checkpoint (no '" CKPT_KEY_VERSION "' in __metadata__)", path);
        goto fail;
    }
    if (ckpt_meta_i64(f, CKPT_KEY_VERSION, &ver, e)) goto fail;
    if (ver < 1 || ver > CKPT_FORMAT_VERSION) {
        err_set(e, "%s: checkpoint format_version %" PRId64 " is not supported (this build reads 1..%d)", path,
                ver, CKPT_FORMAT_VERSION);
        goto fail;
    }
    if (ckpt_meta_i64(f, CKPT_KEY_STEP, &step, e)) goto fail;
    if (ckpt_parse_name(path, &want) == 0 && want != step) {
        err_set(e, "%s: file name says step %" PRId64 " but __metadata__ step is %" PRId64, path, want, step);
        goto fail;
    }
    *out = f;
    return 0;
fail:
    st_close(f);
    *out = NULL;
    return -1;
}

static void warn_append(char *warn, size_t cap, const char *msg) {
    if (!warn || !cap) return;
    size_t len = strlen(warn);
    if (len + 1 < cap) snprintf(warn + len, cap - len, "skipped invalid checkpoint: %s\n", msg);
}

int ckpt_find_latest(const char *dir, char *path_out, size_t path_cap, char *warn, size_t warn_cap,
                     Err *e) {
    if (path_cap) path_out[0] = '\0';
    if (warn && warn_cap) warn[0] = '\0';
    CkptEntry *v;
    int n;
    if (list_ckpts(dir, &v, &n, e)) return -1;
    char p[CKPT_PATH_MAX];
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (join(p, sizeof p, dir, v[i].name, e)) {
            rc = -1;
            break;
        }
        StFile *f = NULL;
        Err why;
        if (ckpt_open(&f, p, &why) == 0) {
            st_close(f);
            if (strlen(p) >= path_cap) rc = err_set(e, "%s: path longer than the caller's buffer", p);
            else strcpy(path_out, p);
            break;
        }
        warn_append(warn, warn_cap, why.msg);
    }
    free_entries(v, n);
    return rc;
}

static void fmt_shape(const int64_t *shape, int ndim, char *buf, size_t cap) {
    size_t off = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (off < cap) snprintf(buf + off, cap - off, "]");
}

int ckpt_load_f32(const StFile *f, const char *name, float *dst, int ndim, const int64_t *shape, Err *e) {
    const StTensor *t;
    if (st_get(f, name, &t, e)) return -1;
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char a[160], b[160];
        fmt_shape(t->shape, t->ndim, a, sizeof a);
        fmt_shape(shape, ndim, b, sizeof b);
        return err_set(e, "%s: tensor '%s' has shape %s in the checkpoint, expected %s", st_path(f), name, a, b);
    }
    return st_read_f32(t, dst, (size_t)t->numel, e);
}

int ckpt_load_raw(const StFile *f, const char *name, DType dtype, void *dst, size_t nbytes, Err *e) {
    const StTensor *t;
    if (st_get(f, name, &t, e)) return -1;
    if (t->dtype != dtype)
        return err_set(e, "%s: tensor '%s' is %s in the checkpoint, expected %s", st_path(f), name,
                       st_dtype_str(t->dtype), st_dtype_str(dtype));
    if (t->nbytes != nbytes)
        return err_set(e, "%s: tensor '%s' holds %zu bytes in the checkpoint, expected %zu", st_path(f), name,
                       t->nbytes, nbytes);
    if (nbytes) memcpy(dst, t->data, nbytes);
    return 0;
}
