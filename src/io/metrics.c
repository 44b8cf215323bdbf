/* metrics.c: metrics.jsonl writer (see metrics.h). */
#include "io/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic.h"

struct MetricsWriter {
    FILE *f;
    char *path;
    char *line; /* the line being built */
    size_t len, cap;
    int oom;
    int open; /* metrics_begin called, metrics_end not yet */
};

static void put(MetricsWriter *m, const char *s, size_t n) {
    if (m->oom) return;
    if (m->len + n + 2 > m->cap) {
        size_t nc = m->cap ? m->cap : 256;
        while (m->len + n + 2 > nc) nc *= 2;
        char *nl = realloc(m->line, nc);
        if (!nl) {
            m->oom = 1;
            return;
        }
        m->line = nl;
        m->cap = nc;
    }
    memcpy(m->line + m->len, s, n);
    m->len += n;
}

static void puts_(MetricsWriter *m, const char *s) { put(m, s, strlen(s)); }

/* JSON string: quotes, backslash and control characters escaped; UTF-8 passed through. */
static void put_json_str(MetricsWriter *m, const char *s) {
    put(m, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            put(m, esc, 2);
        } else if (*p == '\n') {
            put(m, "\\n", 2);
        } else if (*p == '\t') {
            put(m, "\\t", 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            put(m, esc, 6);
        } else {
            put(m, (const char *)p, 1);
        }
    }
    put(m, "\"", 1);
}

void metrics_format_double(double v, char *buf, size_t cap) {
    if (!isfinite(v)) {
        snprintf(buf, cap, "null");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static void put_key(MetricsWriter *m, const char *name) {
    put(m, ", ", 2);
    put_json_str(m, name);
    put(m, ": ", 2);
}

void metrics_begin(MetricsWriter *m, int64_t step, int64_t epoch) {
    char buf[96];
    m->len = 0;
    m->oom = 0;
    m->open = 1;
    snprintf(buf, sizeof buf, "{\"step\": %" PRId64 ", \"epoch\": %" PRId64, step, epoch);
    puts_(m, buf);
}

void metrics_add(MetricsWriter *m, const char *name, double value) {
    char buf[40];
    metrics_format_double(value, buf, sizeof buf);
    put_key(m, name);
    puts_(m, buf);
}

void metrics_add_int(MetricsWriter *m, const char *name, int64_t value) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, value);
    put_key(m, name);
    puts_(m, buf);
}

void metrics_add_str(MetricsWriter *m, const char *name, const char *value) {
    put_key(m, name);
    put_json_str(m, value);
}

int metrics_end(MetricsWriter *m, Err *e) {
    if (!m->open) return err_set(e, "%s: metrics_end without metrics_begin", m->path);
    m->open = 0;
    put(m, "}\n", 2);
    if (m->oom) return err_set(e, "%s: out of memory building a metrics line", m->path);
    if (fwrite(m->line, 1, m->len, m->f) != m->len || fflush(m->f) != 0)
        return err_errno(e, "%s: cannot write metrics line", m->path);
    return 0;
}

int metrics_write(MetricsWriter *m, int64_t step, int64_t epoch, int n, const char *const *names,
                  const double *values, Err *e) {
    metrics_begin(m, step, epoch);
    for (int i = 0; i < n; i++) metrics_add(m, names[i], values[i]);
    return metrics_end(m, e);
}

/* Rewrites path atomically keeping only complete lines whose "step" <= resume_step. */
static int trim_for_resume(const char *path, int64_t resume_step, Err *e) {
    FILE *in = fopen(path, "rb");
    if (!in) {
        if (errno == ENOENT) return 0;
        return err_errno(e, "%s: cannot open metrics file to resume it", path);
    }
    AtomicFile af;
    if (atomic_open(&af, path, e)) {
        fclose(in);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int ok = 1;
    while (ok && (n = getline(&line, &cap, in)) > 0) {
        if (line[n - 1] != '\n') break; /* torn last line of a crashed run */
        json_t *o = json_loadb(line, (size_t)n, 0, NULL);
        const json_t *s = o ? json_object_get(o, "step") : NULL;
        int keep = s && json_is_integer(s) && json_integer_value(s) <= resume_step;
        json_decref(o);
        if (keep) ok = fwrite(line, 1, (size_t)n, af.fp) == (size_t)n;
    }
    if (ferror(in)) ok = 0;
    free(line);
    fclose(in);
    if (!ok) {
        err_errno(e, "%s: rewriting metrics for resume", path);
        atomic_abort(&af);
        return -1;
    }
    return atomic_commit(&af, e);
}

int metrics_open(MetricsWriter **out, const char *path, int64_t resume_step, Err *e) {
    *out = NULL;
    if (resume_step >= 0 && trim_for_resume(path, resume_step, e)) return -1;
    MetricsWriter *m = calloc(1, sizeof *m);
    size_t pl = strlen(path) + 1;
    if (!m || !(m->path = malloc(pl))) {
        free(m);
        return err_set(e, "%s: out of memory", path);
    }
    memcpy(m->path, path, pl);
    m->f = fopen(path, resume_step >= 0 ? "ab" : "wb");
    if (!m->f) {
        err_errno(e, "%s: cannot open metrics file for writing", path);
        metrics_close(m);
        return -1;
    }
    *out = m;
    return 0;
}

void metrics_close(MetricsWriter *m) {
    if (!m) return;
    if (m->f) fclose(m->f);
    free(m->line);
    free(m->path);
    free(m);
}
