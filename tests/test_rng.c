// TEST_LIBS: vqa_util
// TEST_LABELS: unit
/* test_rng.c: util/rng.h against numbers it did not compute: the published splitmix64
 * outputs (seed 0 and seed 1234567, the reference vectors of Vigna's splitmix64.c), the
 * mixer's fixed point at 0, and the draws' ranges and edge cases. */
#include <stdint.h>

#include "testlib.h"
#include "util/rng.h"

static void stream_matches_published_splitmix64_vectors(void) {
    Rng r = {0};
    CHECK(rng_next(&r) == 0xE220A8397B1DCDAFull);
    CHECK(rng_next(&r) == 0x6E789E6AA1B965F4ull);
    CHECK(rng_next(&r) == 0x06C45D188009454Full);
    Rng q = {1234567};
    CHECK(rng_next(&q) == 6457827717110365317ull);
    CHECK(rng_next(&q) == 3203168211198807973ull);
    CHECK(rng_next(&q) == 9817491932198370423ull);
}

static void mix64_fixes_zero_and_scrambles_one(void) {
    CHECK(rng_mix64(0) == 0);
    CHECK(rng_mix64(1) == 0x5692161D100B05E5ull); /* worked out by hand in Python */
}

static void copies_of_a_stream_continue_alike(void) {
    Rng a = {42};
    rng_next(&a);
    Rng b = a;
    for (int i = 0; i < 10; i++) CHECK(rng_next(&a) == rng_next(&b));
}

/* A state one step before 0 makes the next output rng_mix64(0) = 0: the edge of both unit
 * draws. */
static void unit_open_never_returns_zero(void) {
    Rng a = {(uint64_t)0 - RNG_GAMMA}, b = a;
    CHECK(rng_unit(&a) == 0.0);
    double u = rng_unit_open(&b);
    CHECK(u > 0.0);
    CHECK(u == 1.0 / 18014398509481984.0); /* 2^-54: half of the 53-bit step */
}

static void unit_draws_stay_in_their_intervals(void) {
    Rng r = {7};
    double lo = 1, hi = 0, sum = 0;
    for (int i = 0; i < 100000; i++) {
        double u = rng_unit(&r);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
        sum += u;
        double v = rng_uniform(&r, -2.0, 3.0);
        CHECK(v >= -2.0 && v < 3.0);
    }
    CHECK(lo >= 0.0 && lo < 0.001);
    CHECK(hi < 1.0 && hi > 0.999);
    CHECK_NEAR(sum / 100000, 0.5, 0.005);
}

static void range_is_inclusive_at_both_ends(void) {
    Rng r = {3};
    int count[3] = {0};
    for (int i = 0; i < 30000; i++) {
        int k = rng_range(&r, 3, 5);
        CHECK(k >= 3 && k <= 5);
        if (k >= 3 && k <= 5) count[k - 3]++;
    }
    for (int k = 0; k < 3; k++) CHECK(count[k] > 9500 && count[k] < 10500);
    CHECK(rng_range(&r, 9, 9) == 9);
}

/* bound 2^32 never rejects (2^64 mod 2^32 = 0): the draw is the top 32 bits of the output. */
static void below_power_of_two_takes_the_top_bits(void) {
    Rng r = {0};
    CHECK(rng_below(&r, (uint64_t)1 << 32) == 0xE220A839ull);
    CHECK(rng_below(&r, (uint64_t)1 << 32) == 0x6E789E6Aull);
    CHECK(rng_below(&r, 1) == 0);
}

static void below_is_uniform_over_a_small_bound(void) {
    Rng r = {11};
    int count[6] = {0};
    for (int i = 0; i < 60000; i++) {
        uint64_t k = rng_below(&r, 6);
        CHECK(k < 6);
        if (k < 6) count[k]++;
    }
    for (int k = 0; k < 6; k++) CHECK(count[k] > 9500 && count[k] < 10500);
}

int main(void) {
    RUN(stream_matches_published_splitmix64_vectors);
    RUN(mix64_fixes_zero_and_scrambles_one);
    RUN(copies_of_a_stream_continue_alike);
    RUN(unit_open_never_returns_zero);
    RUN(unit_draws_stay_in_their_intervals);
    RUN(range_is_inclusive_at_both_ends);
    RUN(below_power_of_two_takes_the_top_bits);
    RUN(below_is_uniform_over_a_small_bound);
    return test_summary();
}
