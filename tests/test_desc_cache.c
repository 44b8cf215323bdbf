/* test_desc_cache.c: the host logic of the CUDA backend's convolution-algorithm cache
 * (src/ops/desc_cache.c): hashing, hit/miss, replacement, least-recently-used eviction,
 * and convolution keys that tell shapes, activation formats, directions and math modes apart. */
// TEST_LIBS: vqa_ops
// TEST_LABELS: unit
#include <string.h>

#include "ops/desc_cache.h"
#include "testlib.h"

typedef struct Val { int algo; size_t ws; } Val;

static void hash_is_fnv1a_over_key_bytes_then_length(void) {
    /* Independent values: FNV-1a 64 by hand (Python) over 01 00 00 00 | 01 00 00 00 and
     * over 00 00 00 00 (the empty key's length only). */
    int32_t one = 1;
    CHECK(dc_hash(&one, 1) == 0x29C7DD317360AC35ull);
    CHECK(dc_hash(NULL, 0) == 0x4D25767F9DCE13F5ull);
    int32_t a[2] = {1, 0};
    CHECK(dc_hash(a, 1) != dc_hash(a, 2)); /* [1] and [1, 0] differ */
}

static void get_returns_what_put_stored_and_counts_hits(void) {
    DescCache c;
    CHECK(dc_init(&c, 4) == 0);
    int32_t k[3] = {7, 8, 9};
    CHECK(dc_get(&c, k, 3) == NULL);
    Val v = {5, 1234};
    CHECK(dc_put(&c, k, 3, &v, sizeof v) != NULL);
    Val *g = dc_get(&c, k, 3);
    CHECK(g && g->algo == 5 && g->ws == 1234);
    int32_t k2[3] = {7, 8, 10};
    CHECK(dc_get(&c, k2, 3) == NULL);
    CHECK(dc_get(&c, k, 2) == NULL); /* a prefix is another key */
    CHECK(c.hits == 1 && c.misses == 3 && c.count == 1);
    dc_free(&c);
}

static void put_on_existing_key_replaces_without_growing(void) {
    DescCache c;
    CHECK(dc_init(&c, 2) == 0);
    int32_t k = 42;
    Val v1 = {1, 10}, v2 = {2, 20};
    dc_put(&c, &k, 1, &v1, sizeof v1);
    dc_put(&c, &k, 1, &v2, sizeof v2);
    Val *g = dc_get(&c, &k, 1);
    CHECK(g && g->algo == 2 && g->ws == 20);
    CHECK(c.count == 1 && c.evictions == 0);
    dc_free(&c);
}

static void full_cache_evicts_least_recently_used(void) {
    DescCache c;
    CHECK(dc_init(&c, 3) == 0);
    Val v = {0, 0};
    for (int32_t k = 0; k < 3; k++) {
        v.algo = (int)k;
        dc_put(&c, &k, 1, &v, sizeof v);
    }
    int32_t k0 = 0, k1 = 1, k2 = 2, k3 = 3;
    CHECK(dc_get(&c, &k0, 1) != NULL); /* touch 0: now 1 is the oldest */
    v.algo = 3;
    dc_put(&c, &k3, 1, &v, sizeof v);
    CHECK(c.evictions == 1 && c.count == 3);
    CHECK(dc_get(&c, &k1, 1) == NULL);
    Val *g0 = dc_get(&c, &k0, 1), *g2 = dc_get(&c, &k2, 1), *g3 = dc_get(&c, &k3, 1);
    CHECK(g0 && g0->algo == 0 && g2 && g2->algo == 2 && g3 && g3->algo == 3);
    dc_free(&c);
}

static void out_of_range_sizes_are_refused(void) {
    DescCache c;
    CHECK(dc_init(&c, 2) == 0);
    int32_t k[DC_MAX_KEY + 1] = {0};
    unsigned char big[DC_MAX_VAL + 1] = {0};
    CHECK(dc_put(&c, k, DC_MAX_KEY + 1, big, 1) == NULL);
    CHECK(dc_put(&c, k, 1, big, DC_MAX_VAL + 1) == NULL);
    CHECK(dc_put(&c, k, DC_MAX_KEY, big, DC_MAX_VAL) != NULL);
    CHECK(c.count == 1);
    dc_free(&c);
}

static void conv_keys_tell_shape_direction_and_math_apart(void) {
    ConvShape a, b;
    conv_shape_init(&a, 8, 64, 56, 56, 64, 3, 3, 1, 1);
    conv_shape_init(&b, 8, 64, 56, 56, 64, 3, 3, 2, 1); /* stride differs */
    int32_t ka[DC_MAX_KEY], kb[DC_MAX_KEY], kc[DC_MAX_KEY], kd[DC_MAX_KEY];
    int na = dc_conv_key(&a, DC_CONV_FWD, 0, ka);
    int nb = dc_conv_key(&b, DC_CONV_FWD, 0, kb);
    int nc = dc_conv_key(&a, DC_CONV_BWD_FILTER, 0, kc);
    int nd = dc_conv_key(&a, DC_CONV_FWD, 1, kd);
    CHECK(na == nb && na == nc && na == nd && na <= DC_MAX_KEY);
    DescCache c;
    CHECK(dc_init(&c, 8) == 0);
    Val v = {1, 0};
    dc_put(&c, ka, na, &v, sizeof v);
    CHECK(dc_get(&c, kb, nb) == NULL);
    CHECK(dc_get(&c, kc, nc) == NULL);
    CHECK(dc_get(&c, kd, nd) == NULL);
    int32_t ka2[DC_MAX_KEY];
    ConvShape a2;
    conv_shape_init(&a2, 8, 64, 56, 56, 64, 3, 3, 1, 1);
    CHECK(dc_get(&c, ka2, dc_conv_key(&a2, DC_CONV_FWD, 0, ka2)) != NULL);
    dc_free(&c);
}

/* The act entries' formats (ops.h ActFmt): the same shape in NHWC and/or bf16 / fp16 is
 * another cuDNN problem, so each of the four formats below gets its own entry, and a shape
 * whose format is set back to plain finds the plain entry again. */
static void conv_keys_tell_activation_formats_apart(void) {
    const ActFmt fmts[4] = {{0, DT_F32}, {1, DT_F32}, {0, DT_BF16}, {1, DT_F16}};
    ConvShape s[4];
    int32_t k[4][DC_MAX_KEY];
    int n[4];
    for (int i = 0; i < 4; i++) {
        conv_shape_init(&s[i], 8, 64, 56, 56, 64, 3, 3, 1, 1);
        s[i].f = fmts[i];
        n[i] = dc_conv_key(&s[i], DC_CONV_FWD, 0, k[i]);
        CHECK(n[i] <= DC_MAX_KEY);
    }
    CHECK(s[0].f.nhwc == 0 && s[0].f.dt == DT_F32); /* conv_shape_init: the plain format */
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            CHECK_MSG(n[i] != n[j] || memcmp(k[i], k[j], (size_t)n[i] * sizeof k[i][0]) != 0,
                      "formats %d and %d give the same key", i, j);
    DescCache c;
    CHECK(dc_init(&c, 8) == 0);
    for (int i = 0; i < 4; i++) {
        Val v = {i, (size_t)i * 100};
        dc_put(&c, k[i], n[i], &v, sizeof v);
    }
    CHECK(c.count == 4);
    for (int i = 0; i < 4; i++) {
        const Val *got = dc_get(&c, k[i], n[i]);
        CHECK(got && got->algo == i && got->ws == (size_t)i * 100);
    }
    ConvShape back = s[3];
    back.f = (ActFmt){0, DT_F32};
    int32_t kb[DC_MAX_KEY];
    const Val *got = dc_get(&c, kb, dc_conv_key(&back, DC_CONV_FWD, 0, kb));
    CHECK(got && got->algo == 0);
    dc_free(&c);
}

/* A ResNet-50-like stream of lookups: every shape misses once, then always hits. */
static void repeated_steps_hit_after_the_first(void) {
    DescCache c;
    CHECK(dc_init(&c, 128) == 0);
    const int shapes[][4] = {{3, 224, 64, 7}, {64, 56, 64, 1}, {64, 56, 64, 3}, {64, 56, 256, 1},
                             {256, 56, 128, 1}, {128, 28, 128, 3}, {512, 28, 256, 1}, {1024, 14, 512, 1}};
    const int ns = (int)(sizeof shapes / sizeof shapes[0]);
    for (int step = 0; step < 5; step++)
        for (int i = 0; i < ns; i++)
            for (int dir = 0; dir < 3; dir++) {
                ConvShape s;
                conv_shape_init(&s, 32, shapes[i][0], shapes[i][1], shapes[i][1], shapes[i][2], shapes[i][3],
                                shapes[i][3], 1, shapes[i][3] / 2);
                int32_t k[DC_MAX_KEY];
                int n = dc_conv_key(&s, dir, 0, k);
                if (!dc_get(&c, k, n)) {
                    Val v = {dir, (size_t)i};
                    dc_put(&c, k, n, &v, sizeof v);
                }
            }
    CHECK(c.misses == (uint64_t)ns * 3);
    CHECK(c.hits == (uint64_t)ns * 3 * 4);
    CHECK(c.count == ns * 3 && c.evictions == 0);
    dc_free(&c);
}

int main(void) {
    RUN(hash_is_fnv1a_over_key_bytes_then_length);
    RUN(get_returns_what_put_stored_and_counts_hits);
    RUN(put_on_existing_key_replaces_without_growing);
    RUN(full_cache_evicts_least_recently_used);
    RUN(out_of_range_sizes_are_refused);
    RUN(conv_keys_tell_shape_direction_and_math_apart);
    RUN(conv_keys_tell_activation_formats_apart);
    RUN(repeated_steps_hit_after_the_first);
    return test_summary();
}
