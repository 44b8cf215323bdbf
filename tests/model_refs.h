/* model_refs.h: PyTorch-parity plumbing shared by test_resnet, test_fusion, test_vqa_model.
 *
 * Each parity case is a seed: the C test builds the model, initializes it from the seed,
 * perturbs norm parameters and BN running statistics (so eval-mode BN and affine terms are
 * exercised), and draws the inputs and the output gradients (dout) from the same seed.
 *   test_xxx --write-inputs DIR   writes DIR/model_<case>_in.safetensors (weights + inputs +
 *                                 dout + metadata describing the case) and exits;
 *   tools/gen_model_refs.py       runs torchvision / the PyTorch head on those, and writes
 *                                 tests/ref/model_<case>.safetensors (outputs, "grad.<name>"
 *                                 of every trainable tensor and input, "buf.<name>" of BN
 *                                 running stats after a train-mode forward) — small files;
 *   test_xxx                      regenerates everything from the seed and compares.
 * The loss whose gradients are compared is sum(out * dout) over all outputs. */
#ifndef VQA_TEST_MODEL_REFS_H
#define VQA_TEST_MODEL_REFS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "model/params.h"
#include "testlib.h"

/* non-NULL when the program was started with --write-inputs DIR */
static inline const char *mr_write_dir(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--write-inputs") == 0) return argv[i + 1];
    return NULL;
}

/* Random BN/LayerNorm affine terms and running statistics (PyTorch inits them to 1/0/0/1,
 * which would hide a swapped gamma/beta or an ignored running_var). */
static inline void mr_perturb_norms(ParamStore *ps, uint64_t seed) {
    TestRng r = {seed ^ 0x5eedull};
    for (int i = 0; i < ps_count(ps); i++) {
        const ParamInfo *p = ps_info(ps, i);
        float *x = ps_value(ps, i);
        size_t n = p->numel;
        const char *nm = p->name;
        size_t L = strlen(nm);
        if (L > 12 && strcmp(nm + L - 12, "running_mean") == 0) trng_fill(&r, x, n, -0.2f, 0.2f);
        else if (L > 11 && strcmp(nm + L - 11, "running_var") == 0) trng_fill(&r, x, n, 0.5f, 1.5f);
        else if (p->kind == PK_NORM && strcmp(nm + L - 6, "weight") == 0) trng_fill(&r, x, n, 0.6f, 1.4f);
        else if (p->kind == PK_NORM) trng_fill(&r, x, n, -0.2f, 0.2f);
    }
}

typedef struct MrTensor {
    const char *name;
    const float *data;
    int ndim;
    int64_t shape[4];
} MrTensor;

/* Writes weights (every store tensor, under its store name) + extra tensors + metadata. */
static inline int mr_write_inputs(const char *dir, const char *case_name, const ParamStore *ps,
                           const MrTensor *extra, int n_extra, const char *const *meta, int n_meta) {
    char wpath[600], ipath[600];
    Err e;
    snprintf(wpath, sizeof wpath, "%s/model_%s_weights.safetensors", dir, case_name);
    snprintf(ipath, sizeof ipath, "%s/model_%s_in.safetensors", dir, case_name);
    if (ps_save_safetensors(ps, wpath, "", "", &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    StWriter *w = st_writer_new();
    for (int i = 0; i < n_extra; i++)
        st_writer_add(w, extra[i].name, DT_F32, extra[i].ndim, extra[i].shape, extra[i].data);
    for (int i = 0; i + 1 < n_meta; i += 2) st_writer_set_meta(w, meta[i], meta[i + 1]);
    st_writer_set_meta(w, "weights", wpath);
    int rc = st_writer_save(w, ipath, &e);
    if (rc) fprintf(stderr, "%s\n", e.msg);
    st_writer_free(w);
    if (!rc) fprintf(stderr, "wrote %s\n", ipath);
    return rc;
}

/* The committed reference of a case (tests/ref/, the working directory is tests/). */
static inline StFile *mr_open_ref(const char *case_name) {
    char path[600];
    Err e;
    StFile *f = NULL;
    test_ref_path(path, sizeof path, "model_%s.safetensors", case_name);
    if (st_open(&f, path, &e) != 0) {
        fprintf(stderr, "reference missing (run tools/gen_model_refs.py): %s\n", e.msg);
        return NULL;
    }
    return f;
}

/* ||x - ref|| / ||ref|| for the named reference tensor; 1e30 if absent or mis-sized. */
static inline double mr_rel_err(const StFile *f, const char *name, const float *x, size_t n,
                         double *ref_norm) {
    const StTensor *t = st_find(f, name);
    if (!t || (size_t)t->numel != n) {
        fprintf(stderr, "reference tensor %s: %s\n", name, t ? "size differs" : "absent");
        return 1e30;
    }
    float *r = malloc(n * sizeof *r);
    Err e;
    double err = 1e30;
    if (r && st_read_f32(t, r, n, &e) == 0) {
        err = rel_err(x, r, n);
        if (ref_norm) {
            double s = 0;
            for (size_t i = 0; i < n; i++) s += (double)r[i] * r[i];
            *ref_norm = sqrt(s);
        }
    }
    free(r);
    return err;
}

/* Compares every trainable parameter's gradient with "grad.<name>" (names in the file
 * without store_prefix). A tensor passes with relative error < tol, or when its reference
 * is ~0 (e.g. a bias before a softmax) and the absolute error is tiny. Returns the worst
 * relative error among tensors with a non-negligible reference. */
static inline double mr_check_grads(const StFile *f, const ParamStore *ps, double tol, int *n_checked) {
    double worst = 0;
    int n = 0;
    for (int i = 0; i < ps_count(ps); i++) {
        const ParamInfo *p = ps_info(ps, i);
        const float *g = ps_grad(ps, i);
        if (!g) continue;
        char name[PS_NAME_MAX + 8];
        snprintf(name, sizeof name, "grad.%s", p->name);
        double rn = 0, err = mr_rel_err(f, name, g, p->numel, &rn);
        double gn = 0;
        for (size_t k = 0; k < p->numel; k++) gn += (double)g[k] * g[k];
        n++;
        if (rn < 1e-7 && sqrt(gn) < 1e-6) continue; /* both ~0 */
        if (err > worst) worst = err;
        CHECK_MSG(err < tol, "gradient of %s: relative error %.3g (|ref| %.3g)", p->name, err, rn);
    }
    if (n_checked) *n_checked = n;
    return worst;
}

#endif
