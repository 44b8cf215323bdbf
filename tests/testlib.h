/* testlib.h: the tiny test harness every tests/test_*.c uses.
 *
 *   static void bn_running_var_is_unbiased(void) { ... CHECK(x); CHECK_NEAR(a, b, tol); }
 *   int main(void) { RUN(bn_running_var_is_unbiased); return test_summary(); }
 *
 * A failed CHECK prints file:line and the expression and marks the case failed; the
 * program exits 1 if any case failed. test_skip("why") makes the whole program report
 * SKIP (exit 77) — for GPU tests on a machine with no GPU. Also: a seeded RNG and a
 * central-difference gradient checker (loss accumulated in double). */
#ifndef VQA_TESTLIB_H
#define VQA_TESTLIB_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tl_failed_cases = 0, tl_cases = 0, tl_case_failed = 0;
static const char *tl_case = "";

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: [%s] CHECK failed: %s\n", __FILE__, __LINE__,      \
                    tl_case, #cond);                                                   \
            tl_case_failed = 1;                                                        \
        }                                                                              \
    } while (0)

#define CHECK_MSG(cond, ...)                                                           \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: [%s] CHECK failed: %s: ", __FILE__, __LINE__,      \
                    tl_case, #cond);                                                   \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
            tl_case_failed = 1;                                                        \
        }                                                                              \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                          \
    do {                                                                               \
        double tl_a = (double)(a), tl_b = (double)(b);                                 \
        if (!(fabs(tl_a - tl_b) <= (tol)) || isnan(tl_a) || isnan(tl_b)) {            \
            fprintf(stderr, "%s:%d: [%s] CHECK_NEAR failed: %s = %.9g, %s = %.9g (tol %g)\n", \
                    __FILE__, __LINE__, tl_case, #a, tl_a, #b, tl_b, (double)(tol));   \
            tl_case_failed = 1;                                                        \
        }                                                                              \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                                \
    do {                                                                               \
        const char *tl_h = (hay), *tl_n = (needle);                                    \
        if (!tl_h || !strstr(tl_h, tl_n)) {                                            \
            fprintf(stderr, "%s:%d: [%s] expected \"%s\" in \"%s\"\n", __FILE__,        \
                    __LINE__, tl_case, tl_n, tl_h ? tl_h : "(null)");                  \
            tl_case_failed = 1;                                                        \
        }                                                                              \
    } while (0)

#define RUN(fn)                                                                        \
    do {                                                                               \
        tl_case = #fn;                                                                 \
        tl_case_failed = 0;                                                            \
        tl_cases++;                                                                    \
        fn();                                                                          \
        if (tl_case_failed) tl_failed_cases++;                                         \
        fprintf(stderr, "%s %s\n", tl_case_failed ? "FAIL" : "ok  ", #fn);             \
    } while (0)

static inline int test_summary(void) {
    fprintf(stderr, "%d cases, %d failed\n", tl_cases, tl_failed_cases);
    return tl_failed_cases ? 1 : 0;
}

static inline void test_skip(const char *why) {
    fprintf(stderr, "SKIP: %s\n", why);
    exit(77);
}

/* Path of a committed reference file: $VQA_SRC/tests/ref/<name> (CTest sets VQA_SRC), else
 * ref/<name> relative to tests/, the working directory CTest gives. name is printf-style. */
static inline char *test_ref_path(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline char *test_ref_path(char *buf, size_t cap, const char *fmt, ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const char *src = getenv("VQA_SRC");
    if (src) snprintf(buf, cap, "%s/tests/ref/%s", src, name);
    else snprintf(buf, cap, "ref/%s", name);
    return buf;
}

/* The whole file, NUL-terminated (not counted in *n); free() it. NULL when it cannot be
 * opened or read. */
static inline char *test_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = NULL;
    long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (len >= 0 && fseek(f, 0, SEEK_SET) == 0 && (b = malloc((size_t)len + 1))) {
        *n = fread(b, 1, (size_t)len, f);
        b[*n] = 0;
    }
    fclose(f);
    return b;
}

/* ---- deterministic RNG for test data (splitmix64) ---- */
typedef struct TestRng { uint64_t s; } TestRng;
static inline uint64_t trng_u64(TestRng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* uniform in [lo, hi) */
static inline float trng_uniform(TestRng *r, float lo, float hi) {
    return lo + (hi - lo) * (float)((trng_u64(r) >> 40) * (1.0 / 16777216.0));
}
static inline void trng_fill(TestRng *r, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = trng_uniform(r, lo, hi);
}

/* Relative error ||a - b|| / max(||b||, tiny) in double. */
static inline double rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return sqrt(num) / (den > 1e-30 ? sqrt(den) : 1e-15);
}

/* ---- gradient check ----
 * loss(ctx) must compute a scalar (in double) from the current inputs. For a parameter
 * array p[n] with analytic gradient g[n], compares g with central differences
 * (loss(p+h) - loss(p-h)) / 2h on every element (or `max_checks` evenly spaced ones),
 * and returns the relative error ||g - fd|| / ||fd||. */
typedef double (*tl_loss_fn)(void *ctx);
static inline double gradcheck(tl_loss_fn loss, void *ctx, float *p, const float *g, size_t n,
                               double h, size_t max_checks) {
    size_t step = (max_checks && n > max_checks) ? n / max_checks : 1;
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i += step) {
        float saved = p[i];
        p[i] = (float)(saved + h);
        double lp = loss(ctx);
        p[i] = (float)(saved - h);
        double lm = loss(ctx);
        p[i] = saved;
        double fd = (lp - lm) / (2.0 * h);
        double d = fd - (double)g[i];
        num += d * d;
        den += fd * fd;
    }
    return sqrt(num) / (den > 1e-30 ? sqrt(den) : 1e-15);
}

#endif
