/* opsa_ref.h: reader for the op reference files tests/ref/opsa_*.txt written by
 * tools/gen_op_refs_a.py, for test_{conv2d,batchnorm,pool,linear}.c.
 *
 * Format: "tensor <name> <ndim> <d0> ..." then the values (row-major, whitespace
 * separated); '#' lines are comments. Values are kept as double. A missing file or
 * tensor is a test failure reported by the caller, not a crash. */
#ifndef VQA_OPSA_REF_H
#define VQA_OPSA_REF_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

typedef struct RefTensor {
    char name[96];
    int ndim;
    int64_t shape[8];
    size_t n;
    double *v;
} RefTensor;

typedef struct RefSet {
    RefTensor *t;
    int n, cap;
} RefSet;

static inline void ref_free(RefSet *rs) {
    for (int i = 0; i < rs->n; i++) free(rs->t[i].v);
    free(rs->t);
    memset(rs, 0, sizeof *rs);
}

/* Loads tests/ref/<file> ($VQA_SRC/tests/ref when set, else ref/ relative to tests/).
 * Returns 0, or -1 with a message on stderr. */
static inline int ref_load(RefSet *rs, const char *file) {
    memset(rs, 0, sizeof *rs);
    char path[1024];
    test_ref_path(path, sizeof path, "%s", file);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open reference file %s (run tools/gen_op_refs_a.py)\n", path);
        return -1;
    }
    char word[128];
    while (fscanf(f, "%127s", word) == 1) {
        if (word[0] == '#') {
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n') {}
            continue;
        }
        if (strcmp(word, "tensor") != 0) {
            fprintf(stderr, "%s: expected 'tensor', got '%s'\n", path, word);
            fclose(f);
            ref_free(rs);
            return -1;
        }
        if (rs->n == rs->cap) {
            rs->cap = rs->cap ? 2 * rs->cap : 16;
            rs->t = realloc(rs->t, sizeof(RefTensor) * (size_t)rs->cap);
        }
        RefTensor *t = &rs->t[rs->n];
        memset(t, 0, sizeof *t);
        if (fscanf(f, "%95s %d", t->name, &t->ndim) != 2 || t->ndim < 0 || t->ndim > 8) {
            fprintf(stderr, "%s: bad tensor header after #%d\n", path, rs->n);
            fclose(f);
            ref_free(rs);
            return -1;
        }
        t->n = 1;
        for (int d = 0; d < t->ndim; d++) {
            long long v;
            if (fscanf(f, "%lld", &v) != 1) v = -1;
            t->shape[d] = v;
            t->n *= (size_t)(v > 0 ? v : 0);
        }
        t->v = malloc(sizeof(double) * (t->n ? t->n : 1));
        rs->n++;
        for (size_t i = 0; i < t->n; i++) {
            if (fscanf(f, "%lf", &t->v[i]) != 1) {
                fprintf(stderr, "%s: tensor %s: value %zu of %zu missing\n", path, t->name, i, t->n);
                fclose(f);
                ref_free(rs);
                return -1;
            }
        }
    }
    fclose(f);
    return 0;
}

static inline const RefTensor *ref_get(const RefSet *rs, const char *name) {
    for (int i = 0; i < rs->n; i++)
        if (strcmp(rs->t[i].name, name) == 0) return &rs->t[i];
    fprintf(stderr, "reference tensor '%s' not found\n", name);
    return NULL;
}

/* Copies the reference into a new float array (caller frees); NULL if t is NULL. */
static inline float *ref_floats(const RefTensor *t) {
    if (!t) return NULL;
    float *p = malloc(sizeof(float) * (t->n ? t->n : 1));
    for (size_t i = 0; i < t->n; i++) p[i] = (float)t->v[i];
    return p;
}

/* The generator's formula_fill: x[i] = ((i*7919 + seed*104729) mod 2039 - 1019) / div,
 * exact in float32 when div is a power of two. */
static inline void ref_formula_fill(float *x, size_t n, uint64_t seed, float div) {
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((int64_t)((i * 7919u + seed * 104729u) % 2039u) - 1019) / div;
}

/* Relative error of a[i*stride] against the reference values ref[i], i < r->n. */
static inline double ref_rel_err(const float *a, size_t stride, const RefTensor *r) {
    if (!r) return INFINITY;
    double num = 0, den = 0;
    for (size_t i = 0; i < r->n; i++) {
        double d = (double)a[i * stride] - r->v[i];
        num += d * d;
        den += r->v[i] * r->v[i];
    }
    return sqrt(num) / (den > 1e-30 ? sqrt(den) : 1e-15);
}

#endif
