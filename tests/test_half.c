/* test_half.c: util/half.h, fp32 <-> bf16 / fp16, against bit patterns derived by hand
 * (comments give the reasoning), round-to-even ties, subnormals, overflow, inf / NaN, the
 * exhaustive round trip of every 16-bit pattern, nearest-value property on random floats
 * and, where the compiler has it, the compiler's own _Float16 conversion. */
// TEST_LIBS: vqa_util
// TEST_LABELS: unit
#include <float.h>
#include <math.h>

#include "testlib.h"
#include "util/half.h"

static uint32_t bits(float f) { return half_f32_to_bits(f); }
static float from_bits(uint32_t b) { return half_bits_to_f32(b); }

static void bf16_known_patterns(void) {
    /* 1.0 = 0x3f800000: the top half, exactly */
    CHECK(f32_to_bf16(1.0f) == 0x3f80);
    CHECK(f32_to_bf16(-2.0f) == 0xc000);
    /* bf16 has 7 mantissa bits: 1 + 2^-8 is half-way between 1 and 1 + 2^-7;
     * the tie goes to the even mantissa (1.0, 0x3f80) */
    CHECK(f32_to_bf16(1.0f + ldexpf(1, -8)) == 0x3f80);
    /* 1 + 3*2^-8 is half-way between 0x3f81 (odd) and 0x3f82 (even): up */
    CHECK(f32_to_bf16(1.0f + 3 * ldexpf(1, -8)) == 0x3f82);
    /* a hair above the tie rounds up */
    CHECK(f32_to_bf16(1.0f + ldexpf(1, -8) + ldexpf(1, -20)) == 0x3f81);
    /* pi = 0x40490fdb: low half 0x0fdb < 0x8000 -> 0x4049 (3.140625) */
    CHECK(f32_to_bf16((float)M_PI) == 0x4049);
    CHECK(bf16_to_f32(0x4049) == 3.140625f);
    /* FLT_MAX = 0x7f7fffff: the low half rounds up and carries into the exponent: inf */
    CHECK(f32_to_bf16(FLT_MAX) == 0x7f80);
    CHECK(f32_to_bf16(-INFINITY) == 0xff80);
    /* fp32 subnormals survive: 0x00010000 = 2^16 * 2^-149 = 2^-133 */
    CHECK(f32_to_bf16(ldexpf(1, -133)) == 0x0001);
    CHECK(bf16_to_f32(0x0001) == ldexpf(1, -133));
    CHECK(f32_to_bf16(-0.0f) == 0x8000);
    /* NaN stays NaN, also a signalling NaN whose payload lies only in the low half
     * (0x7f800001: the plain rounding add would leave 0x7f80 = inf) */
    uint16_t a = f32_to_bf16(from_bits(0x7f800001u)), b = f32_to_bf16(NAN);
    CHECK((a & 0x7f80) == 0x7f80 && (a & 0x7f) != 0);
    CHECK(isnan(bf16_to_f32(b)));
}

static void f16_known_patterns(void) {
    CHECK(f32_to_f16(1.0f) == 0x3c00);  /* exponent 15, mantissa 0 */
    CHECK(f32_to_f16(-2.0f) == 0xc000); /* sign, exponent 16 */
    CHECK(f32_to_f16(0.5f) == 0x3800);
    /* 10 mantissa bits: 1 + 2^-11 is a tie -> even (1.0); 1 + 3*2^-11 -> up to 0x3c02 */
    CHECK(f32_to_f16(1.0f + ldexpf(1, -11)) == 0x3c00);
    CHECK(f32_to_f16(1.0f + 3 * ldexpf(1, -11)) == 0x3c02);
    /* largest finite: (2 - 2^-10) * 2^15 = 65504 = 0x7bff; 65520 is the tie between 65504
     * and 65536 (= inf), and the even one is inf; just below stays finite */
    CHECK(f32_to_f16(65504.0f) == 0x7bff);
    CHECK(f32_to_f16(65519.0f) == 0x7bff);
    CHECK(f32_to_f16(65520.0f) == 0x7c00);
    CHECK(f32_to_f16(1e10f) == 0x7c00);
    CHECK(f32_to_f16(-INFINITY) == 0xfc00);
    CHECK(isinf(f16_to_f32(0x7c00)) && f16_to_f32(0xfc00) < 0);
    /* smallest normal 2^-14 = 0x0400; subnormals in units of 2^-24 */
    CHECK(f32_to_f16(ldexpf(1, -14)) == 0x0400);
    CHECK(f32_to_f16(ldexpf(1, -24)) == 0x0001);
    CHECK(f32_to_f16(1023 * ldexpf(1, -24)) == 0x03ff);
    CHECK(f16_to_f32(0x0001) == ldexpf(1, -24));
    CHECK(f16_to_f32(0x03ff) == 1023 * ldexpf(1, -24));
    CHECK(f16_to_f32(0x8001) == -ldexpf(1, -24));
    /* 2^-25 is the tie between 0 and 2^-24: even is 0; a hair above -> 1 unit */
    CHECK(f32_to_f16(ldexpf(1, -25)) == 0x0000);
    CHECK(f32_to_f16(ldexpf(1, -25) * 1.0001f) == 0x0001);
    /* 1.5 units is the tie between 1 and 2: even is 2; 2.5 units -> 2 */
    CHECK(f32_to_f16(1.5f * ldexpf(1, -24)) == 0x0002);
    CHECK(f32_to_f16(2.5f * ldexpf(1, -24)) == 0x0002);
    /* 1023.5 units: tie between 0x03ff (odd) and 0x0400 (the smallest normal, even) */
    CHECK(f32_to_f16(1023.5f * ldexpf(1, -24)) == 0x0400);
    CHECK(f32_to_f16(-0.0f) == 0x8000 && signbit(f16_to_f32(0x8000)));
    CHECK(f32_to_f16(1e-30f) == 0x0000);
    /* NaN stays NaN (exponent all ones, mantissa non-zero), also with a low payload */
    uint16_t a = f32_to_f16(from_bits(0x7f800001u)), b = f32_to_f16(NAN);
    CHECK((a & 0x7c00) == 0x7c00 && (a & 0x3ff) != 0);
    CHECK((b & 0x7c00) == 0x7c00 && (b & 0x3ff) != 0);
    CHECK(isnan(f16_to_f32(0x7e00)));
}

/* Every non-NaN 16-bit pattern widens exactly and narrows back to itself; widened bf16
 * values have zero low 16 bits. */
static void every_pattern_round_trips(void) {
    int bad_bf = 0, bad_h = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float fb = bf16_to_f32((uint16_t)h), fh = f16_to_f32((uint16_t)h);
        if (!isnan(fb) && (f32_to_bf16(fb) != h || (bits(fb) & 0xffffu))) bad_bf++;
        if (!isnan(fh) && f32_to_f16(fh) != h) bad_h++;
        if (isnan(fh) != (((h & 0x7c00) == 0x7c00) && (h & 0x3ff))) bad_h++;
    }
    CHECK(bad_bf == 0);
    CHECK(bad_h == 0);
}

/* Random floats over the whole fp16 range: the result is a nearest representable value
 * (neither neighbour is strictly closer), computed in double. */
static void f16_and_bf16_are_nearest(void) {
    TestRng r = {7};
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
        float x = ldexpf(trng_uniform(&r, 1.0f, 2.0f), (int)(trng_u64(&r) % 42) - 26);
        if (trng_u64(&r) & 1) x = -x;
        uint16_t h = f32_to_f16(x);
        if ((h & 0x7fff) == 0x7c00) { /* overflow: only right at |x| >= 65520 */
            if (fabsf(x) < 65520.0f) bad++;
            continue;
        }
        double d = fabs((double)f16_to_f32(h) - x);
        uint16_t up = (uint16_t)(h + 1), dn = (uint16_t)(h - 1);
        if ((up & 0x7c00) != 0x7c00 && fabs((double)f16_to_f32(up) - x) < d) bad++;
        if ((h & 0x7fff) && fabs((double)f16_to_f32(dn) - x) < d) bad++;
        uint16_t b = f32_to_bf16(x);
        double db = fabs((double)bf16_to_f32(b) - x);
        if (fabs((double)bf16_to_f32((uint16_t)(b + 1)) - x) < db) bad++;
        if ((b & 0x7fff) && fabs((double)bf16_to_f32((uint16_t)(b - 1)) - x) < db) bad++;
    }
    CHECK(bad == 0);
}

/* The compiler's own IEEE conversion (GCC >= 12 on x86-64 has _Float16), when present. */
static void f16_matches_compiler_float16(void) {
#ifdef __FLT16_MAX__
    TestRng r = {11};
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
        float x = from_bits((uint32_t)trng_u64(&r));
        if (isnan(x)) continue;
        _Float16 h = (_Float16)x;
        uint16_t hb;
        memcpy(&hb, &h, 2);
        if (f32_to_f16(x) != hb) bad++;
        if (f16_to_f32(hb) != (float)h) bad++;
    }
    CHECK(bad == 0);
#else
    fprintf(stderr, "  (no _Float16 in this compiler: case is empty)\n");
#endif
}

int main(void) {
    RUN(bf16_known_patterns);
    RUN(f16_known_patterns);
    RUN(every_pattern_round_trips);
    RUN(f16_and_bf16_are_nearest);
    RUN(f16_matches_compiler_float16);
    return test_summary();
}
