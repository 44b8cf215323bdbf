// TEST_LIBS: vqa_util
// TEST_LABELS: unit
/* test_utf8.c: util/utf8.h on byte sequences written out by hand (from the Unicode
 * standard's table 3-7 of well-formed sequences): every length, the edges of each range,
 * and each kind of ill-formed input (overlong, surrogate, over U+10FFFF, truncated, stray
 * continuation byte), which must be reported one byte at a time. */
#include <stdint.h>

#include "testlib.h"
#include "util/utf8.h"

static int32_t dec(const char *s, size_t n, size_t *len) {
    int32_t cp = 12345;
    *len = utf8_decode((const unsigned char *)s, n, &cp);
    return cp;
}

static void decodes_each_length_and_range_edge(void) {
    static const struct { const char *b; size_t n; int32_t cp; } ok[] = {
        {"A", 1, 0x41},           {"\x7F", 1, 0x7F},         {"\xC2\x80", 2, 0x80},
        {"\xC3\xA9", 2, 0xE9},    {"\xDF\xBF", 2, 0x7FF},    {"\xE0\xA0\x80", 3, 0x800},
        {"\xE2\x82\xAC", 3, 0x20AC}, {"\xED\x9F\xBF", 3, 0xD7FF}, {"\xEE\x80\x80", 3, 0xE000},
        {"\xEF\xBF\xBD", 3, 0xFFFD}, {"\xEF\xBF\xBF", 3, 0xFFFF}, {"\xF0\x90\x80\x80", 4, 0x10000},
        {"\xF0\x9F\x98\x80", 4, 0x1F600}, {"\xF4\x8F\xBF\xBF", 4, 0x10FFFF},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t len;
        int32_t cp = dec(ok[i].b, ok[i].n, &len);
        CHECK_MSG(cp == ok[i].cp && len == ok[i].n, "case %zu: U+%04X in %zu bytes, want U+%04X in %zu", i,
                  (unsigned)cp, len, (unsigned)ok[i].cp, ok[i].n);
    }
}

static void rejects_ill_formed_sequences_one_byte_at_a_time(void) {
    static const struct { const char *b; size_t n; } bad[] = {
        {"\x80", 1},                 /* stray continuation */
        {"\xBF\x41", 2},
        {"\xC0\xAF", 2},             /* overlong '/' */
        {"\xC1\xBF", 2},
        {"\xE0\x80\xAF", 3},         /* overlong, 3 bytes */
        {"\xE0\x9F\xBF", 3},         /* overlong U+07FF */
        {"\xF0\x80\x80\xAF", 4},     /* overlong, 4 bytes */
        {"\xF0\x8F\xBF\xBF", 4},     /* overlong U+FFFF */
        {"\xED\xA0\x80", 3},         /* surrogate U+D800 */
        {"\xED\xBF\xBF", 3},         /* surrogate U+DFFF */
        {"\xF4\x90\x80\x80", 4},     /* U+110000 */
        {"\xF5\x80\x80\x80", 4},     /* lead byte past F4 */
        {"\xFF", 1},
        {"\xE2\x82", 2},             /* truncated by the end of the input */
        {"\xE2\x41\x41", 3},         /* truncated by a non-continuation byte */
        {"\xF0\x9F\x98", 3},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len;
        int32_t cp = dec(bad[i].b, bad[i].n, &len);
        CHECK_MSG(cp == -1 && len == 1, "case %zu: got %d in %zu bytes, want -1 in 1", i, (int)cp, len);
    }
}

/* n bounds the read: a valid sequence cut short by n is invalid, not read past. */
static void respects_the_length_limit(void) {
    size_t len;
    CHECK(dec("\xE2\x82\xAC", 2, &len) == -1 && len == 1);
    CHECK(dec("\xE2\x82\xAC", 3, &len) == 0x20AC && len == 3);
    CHECK(dec("\xF0\x9F\x98\x80", 3, &len) == -1 && len == 1);
}

static void encodes_each_length_to_the_standard_bytes(void) {
    static const struct { uint32_t cp; const char *b; size_t n; } enc[] = {
        {0x41, "A", 1},                 {0x7F, "\x7F", 1},        {0x80, "\xC2\x80", 2},
        {0x7FF, "\xDF\xBF", 2},         {0x800, "\xE0\xA0\x80", 3}, {0x307, "\xCC\x87", 2},
        {0xFFFF, "\xEF\xBF\xBF", 3},    {0x10000, "\xF0\x90\x80\x80", 4},
        {0x10FFFF, "\xF4\x8F\xBF\xBF", 4},
    };
    for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++) {
        char o[4] = {0};
        size_t n = utf8_encode(enc[i].cp, o);
        CHECK_MSG(n == enc[i].n && memcmp(o, enc[i].b, n) == 0, "U+%04X", (unsigned)enc[i].cp);
    }
}

int main(void) {
    RUN(decodes_each_length_and_range_edge);
    RUN(rejects_ill_formed_sequences_one_byte_at_a_time);
    RUN(respects_the_length_limit);
    RUN(encodes_each_length_to_the_standard_bytes);
    return test_summary();
}
