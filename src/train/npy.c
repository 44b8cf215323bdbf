/* npy.c: the hand-written .npy (v1.0) writer for arrays of unicode strings (npy.h). */
#include "train/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic.h"

/* Not util/utf8.h's strict decoder, on purpose: a sequence with the right shape but an
 * invalid value (overlong, surrogate, over U+10FFFF) is one U+FFFD for all its bytes here,
 * where the strict decoder reports each byte, so the .npy files written stay as they were.
 * (The answers written are valid UTF-8, where the two agree.) */
size_t npy_utf8_decode(const char *s, uint32_t *out, size_t cap) {
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = 0;
    while (*p) {
        uint32_t cp = 0xFFFD;
        int len = 1;
        unsigned c = p[0];
        if (c < 0x80) {
            cp = c;
        } else if ((c & 0xE0) == 0xC0 && (p[1] & 0xC0) == 0x80) {
            cp = ((c & 0x1Fu) << 6) | (p[1] & 0x3Fu);
            len = 2;
            if (cp < 0x80) cp = 0xFFFD;
        } else if ((c & 0xF0) == 0xE0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80) {
            cp = ((c & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
            len = 3;
            if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
        } else if ((c & 0xF8) == 0xF0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80 &&
                   (p[3] & 0xC0) == 0x80) {
            cp = ((c & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
            len = 4;
            if (cp < 0x10000 || cp > 0x10FFFF) cp = 0xFFFD;
        }
        if (out && n < cap) out[n] = cp;
        n++;
        p += len;
    }
    return n;
}

size_t npy_unicode_header(char *buf, size_t cap, int64_t n, size_t maxlen) {
    char dict[160];
    int dl = snprintf(dict, sizeof dict, "{'descr': '<U%zu', 'fortran_order': False, 'shape': (%lld,), }",
                      maxlen, (long long)n);
    /* 10 bytes of preamble + dict + padding + '\n' = a multiple of 64 (numpy >= 1.? aligns to 64) */
    size_t total = 10 + (size_t)dl + 1;
    total = (total + 63) / 64 * 64;
    if (total > cap || total - 10 > 65535) return 0;
    size_t hlen = total - 10;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)(hlen & 0xFF);
    buf[9] = (char)(hlen >> 8);
    memcpy(buf + 10, dict, (size_t)dl);
    memset(buf + 10 + dl, ' ', total - 10 - (size_t)dl - 1);
    buf[total - 1] = '\n';
    return total;
}

int npy_write_unicode(const char *path, const char *const *strs, int64_t n, Err *e) {
    size_t maxlen = 1;
    for (int64_t i = 0; i < n; i++) {
        size_t l = npy_utf8_decode(strs[i], NULL, 0);
        if (l > maxlen) maxlen = l;
    }
    char hdr[256];
    size_t hl = npy_unicode_header(hdr, sizeof hdr, n, maxlen);
    if (!hl) return err_set(e, "%s: npy header too long", path);
    uint32_t *cps = calloc(maxlen, sizeof *cps);
    unsigned char *row = malloc(maxlen * 4);
    if (!cps || !row) {
        free(cps);
        free(row);
        return err_set(e, "%s: out of memory", path);
    }
    AtomicFile af;
    if (atomic_open(&af, path, e) != 0) {
        free(cps);
        free(row);
        return -1;
    }
    int ok = fwrite(hdr, 1, hl, af.fp) == hl;
    for (int64_t i = 0; ok && i < n; i++) {
        memset(cps, 0, maxlen * sizeof *cps);
        npy_utf8_decode(strs[i], cps, maxlen);
        for (size_t k = 0; k < maxlen; k++) { /* UTF-32 little-endian */
            row[4 * k] = (unsigned char)(cps[k] & 0xFF);
            row[4 * k + 1] = (unsigned char)((cps[k] >> 8) & 0xFF);
            row[4 * k + 2] = (unsigned char)((cps[k] >> 16) & 0xFF);
            row[4 * k + 3] = (unsigned char)(cps[k] >> 24);
        }
        ok = fwrite(row, 1, maxlen * 4, af.fp) == maxlen * 4;
    }
    free(cps);
    free(row);
    if (!ok) {
        atomic_abort(&af);
        return err_errno(e, "%s: write failed", path);
    }
    return atomic_commit(&af, e);
}
