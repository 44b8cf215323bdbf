/* unicode_data.h: the Unicode facts the WordPiece tokenizer needs, as compact sorted tables
 * generated from Python's unicodedata / str.lower() by tools/gen_unicode_tables.py
 * (Unicode version in uni_version; 14.0.0 = Python 3.11). Hugging Face's BertTokenizer uses
 * the *running* Python's unicodedata, so references made with a newer Python may differ on
 * code points assigned after that version. All tables are constant; every function here is
 * pure and thread-safe. */
#ifndef VQA_UNICODE_DATA_H
#define VQA_UNICODE_DATA_H

#include <stdint.h>

/* Property flags of one code point (uni_props). */
#define UNI_DROP 1      /* removed by BertTokenizer's cleaning: NUL, U+FFFD, C* but \t \n \r */
#define UNI_SPACE 2     /* a word separator: ' ' \t \n \r, Zs, U+2028, U+2029 */
#define UNI_PUNCT 4     /* split off as its own token: ASCII 33-47 58-64 91-96 123-126, P* */
#define UNI_MN 8        /* nonspacing mark: dropped after NFD (accent stripping) */
#define UNI_CASED 16    /* cased and not case-ignorable (Greek final-sigma context) */
#define UNI_CASE_IGNORABLE 32
#define UNI_CJK 64      /* a CJK ideograph block: becomes a word of its own */

#define UNI_MAX_DECOMP 4 /* longest full canonical decomposition */

typedef struct UniLowerRange { uint32_t lo, hi; int32_t stride, delta; } UniLowerRange;
typedef struct UniDecomp { uint32_t cp; uint16_t off, len; } UniDecomp;
typedef struct UniCccRange { uint32_t lo, hi; uint8_t ccc; } UniCccRange;

/* Generated tables (unicode_tables.c). */
extern const char uni_version[];
extern const uint8_t uni_ascii_props[128];
extern const uint32_t uni_prop_runs[];
extern const int uni_n_prop_runs;
extern const UniLowerRange uni_lower_ranges[];
extern const int uni_n_lower_ranges;
extern const UniDecomp uni_nfd_table[];
extern const int uni_n_nfd;
extern const uint32_t uni_nfd_pool[];
extern const UniCccRange uni_ccc_ranges[];
extern const int uni_n_ccc_ranges;

/* UNI_* flags of cp (cp > 0x10FFFF: UNI_DROP). */
uint8_t uni_props(uint32_t cp);
/* str.lower() of cp without context: writes 1 or 2 code points (U+0130 -> i U+0307) and
 * returns the count. U+03A3 gives U+03C3; the final-sigma rule is the caller's (it needs the
 * whole word). */
int uni_lower(uint32_t cp, uint32_t out[2]);
/* Full canonical decomposition (NFD without reordering) of cp: writes 1..UNI_MAX_DECOMP
 * code points, returns the count; Hangul syllables are decomposed algorithmically. */
int uni_nfd(uint32_t cp, uint32_t out[UNI_MAX_DECOMP]);
/* Canonical combining class (0 for starters). */
uint8_t uni_ccc(uint32_t cp);

#endif
