/* unicode_data.c: lookups over the generated Unicode tables (unicode_tables.c): property
 * flags, str.lower(), canonical decomposition and combining classes. Binary searches over
 * sorted constant arrays; ASCII answers from a direct table because questions are mostly
 * ASCII. */
#include "data/unicode_data.h"

uint8_t uni_props(uint32_t cp) {
    if (cp < 128) return uni_ascii_props[cp];
    if (cp > 0x10FFFF) return UNI_DROP;
    /* last run whose start <= cp */
    int lo = 0, hi = uni_n_prop_runs - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if ((uni_prop_runs[mid] >> 8) <= cp) lo = mid;
        else hi = mid - 1;
    }
    return (uint8_t)(uni_prop_runs[lo] & 0xFF);
}

int uni_lower(uint32_t cp, uint32_t out[2]) {
    if (cp < 128) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    if (cp == 0x130) { /* the one multi-code-point lower case (SpecialCasing, unconditional) */
        out[0] = 'i';
        out[1] = 0x307;
        return 2;
    }
    int lo = 0, hi = uni_n_lower_ranges - 1, found = -1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (uni_lower_ranges[mid].lo <= cp) { found = mid; lo = mid + 1; }
        else hi = mid - 1;
    }
    out[0] = cp;
    if (found >= 0) {
        const UniLowerRange *r = &uni_lower_ranges[found];
        if (cp <= r->hi && (cp - r->lo) % (uint32_t)r->stride == 0)
            out[0] = (uint32_t)((int64_t)cp + r->delta);
    }
    return 1;
}

/* Hangul syllable S = SBase + (L * VCount + V) * TCount + T decomposes into the jamo
 * L = LBase + l, V = VBase + v and (when t > 0) T = TBase + t (Unicode ch. 3.12). */
enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7,
       VCOUNT = 21, TCOUNT = 28, NCOUNT = VCOUNT * TCOUNT, SCOUNT = 19 * NCOUNT };

int uni_nfd(uint32_t cp, uint32_t out[UNI_MAX_DECOMP]) {
    if (cp < 0xC0) { /* nothing below U+00C0 decomposes */
        out[0] = cp;
        return 1;
    }
    if (cp >= SBASE && cp < SBASE + SCOUNT) {
        uint32_t s = cp - SBASE;
        out[0] = LBASE + s / NCOUNT;
        out[1] = VBASE + (s % NCOUNT) / TCOUNT;
        if (s % TCOUNT == 0) return 2;
        out[2] = TBASE + s % TCOUNT;
        return 3;
    }
    int lo = 0, hi = uni_n_nfd - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (uni_nfd_table[mid].cp == cp) {
            for (int i = 0; i < uni_nfd_table[mid].len; i++) out[i] = uni_nfd_pool[uni_nfd_table[mid].off + i];
            return uni_nfd_table[mid].len;
        }
        if (uni_nfd_table[mid].cp < cp) lo = mid + 1;
        else hi = mid - 1;
    }
    out[0] = cp;
    return 1;
}

uint8_t uni_ccc(uint32_t cp) {
    if (cp < 0x300) return 0; /* the first combining mark is U+0300 */
    int lo = 0, hi = uni_n_ccc_ranges - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < uni_ccc_ranges[mid].lo) hi = mid - 1;
        else if (cp > uni_ccc_ranges[mid].hi) lo = mid + 1;
        else return uni_ccc_ranges[mid].ccc;
    }
    return 0;
}
