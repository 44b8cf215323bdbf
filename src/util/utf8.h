/* utf8.h: strict UTF-8 decoding and encoding of one code point, for the text code of
 * data/ (the tokenizer's cleaning, the answer normalizer).
 *
 * Strict: a sequence is valid exactly when Python's bytes.decode("utf-8") accepts it, so
 * the tokenizer and the answer normalizer agree with the Python references they
 * reproduce: overlong forms, UTF-16 surrogates (U+D800..DFFF), values over U+10FFFF,
 * truncated sequences and stray continuation bytes are invalid. An invalid sequence is
 * reported one byte at a time (the bytes after its first are decoded afresh; Python's
 * errors="replace" would give one U+FFFD for a truncated prefix, which matters only to a
 * caller that keeps the replacements). train/npy.c keeps a lenient decoder of its own
 * (see there).
 *
 * Header-only: the tokenizer decodes every byte of every question. */
#ifndef VQA_UTF8_H
#define VQA_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the code point at s[0..n), n >= 1. Returns its byte length and sets *cp; for a
 * byte that does not start a valid sequence returns 1 and sets *cp = -1. */
static inline size_t utf8_decode(const unsigned char *s, size_t n, int32_t *cp) {
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    int32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, v = c & 0x07, min = 0x10000;
    else len = 0, v = 0, min = 0; /* C0, C1, F5..FF or a continuation byte: never a start */
    if (len == 0 || len > n) {
        *cp = -1;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = -1;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = -1;
        return 1;
    }
    *cp = v;
    return len;
}

/* Writes cp (a code point, <= U+10FFFF) to o as 1 to 4 bytes (no NUL); returns the count. */
static inline size_t utf8_encode(uint32_t cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

#endif
