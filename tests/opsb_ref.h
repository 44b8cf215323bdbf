/* opsb_ref.h: reads the reference files tests/ref/opsb_*.txt written by
 * tools/gen_op_refs_b.py (one array per line: "<name> <count> <v0> <v1> ...", '#' comments).
 * Used by the op tests of the opsb half (activation, layernorm, softmax, attention, loss).
 * Files are found under $VQA_SRC/tests/ref, else ref/ (tests run in tests/). */
#ifndef VQA_OPSB_REF_H
#define VQA_OPSB_REF_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

/* Loads array `name` of exactly n values from ref file `file` (e.g. "opsb_loss.txt") into
 * out (double). Returns 0, or -1 after printing why (missing file/array, wrong count). */
static inline int ref_load(const char *file, const char *name, double *out, size_t n) {
    char path[1024];
    test_ref_path(path, sizeof path, "%s", file);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "ref_load: cannot open %s\n", path);
        return -1;
    }
    char tok[256];
    int rc = -1, found = 0;
    while (fscanf(f, "%255s", tok) == 1) {
        if (tok[0] == '#') { /* skip the comment line */
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n') {}
            continue;
        }
        size_t cnt;
        if (fscanf(f, "%zu", &cnt) != 1) break;
        if (strcmp(tok, name) != 0) {
            for (size_t i = 0; i < cnt; i++)
                if (fscanf(f, "%255s", tok) != 1) break;
            continue;
        }
        found = 1;
        if (cnt != n) {
            fprintf(stderr, "ref_load: %s: array %s has %zu values, expected %zu\n", path, name,
                    cnt, n);
            break;
        }
        size_t i = 0;
        for (; i < n; i++)
            if (fscanf(f, "%lf", &out[i]) != 1) break;
        if (i == n) rc = 0;
        else fprintf(stderr, "ref_load: %s: array %s truncated at value %zu\n", path, name, i);
        break;
    }
    if (!found)
        fprintf(stderr, "ref_load: %s: no array named %s\n", path, name);
    fclose(f);
    return rc;
}

/* Same, into floats (inputs, which the generator wrote as exact float32 values). */
static inline int ref_load_f(const char *file, const char *name, float *out, size_t n) {
    double *tmp = malloc(n * sizeof(double));
    if (!tmp) return -1;
    int rc = ref_load(file, name, tmp, n);
    for (size_t i = 0; rc == 0 && i < n; i++) out[i] = (float)tmp[i];
    free(tmp);
    return rc;
}

/* max_i |a[i] - b[i]| */
static inline double ref_max_abs_diff(const float *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || d != d) m = d != d ? INFINITY : d;
    }
    return m;
}

#endif
