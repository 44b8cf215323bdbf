#!/usr/bin/env python3
"""Generates src/data/unicode_tables.c: the Unicode tables the WordPiece tokenizer needs to
agree with Hugging Face's (Python) BertTokenizer, taken from the running Python's
`unicodedata` and `str.lower()` -- which is exactly what BertTokenizer itself consults.

    python3 tools/gen_unicode_tables.py > src/data/unicode_tables.c

Use Python 3.11 (Unicode 14.0.0) to reproduce the committed file; the version is recorded
in the output (uni_version). A newer Python gives BertTokenizer a newer Unicode database
(3.12: 15.0.0, 3.13: 15.1.0), so regenerate with the Python the references come from.

Tables (all sorted, binary-searched in C; ASCII has a direct table):
  props  runs of (start, flags): DROP (BertTokenizer's _clean_text removes it: NUL, U+FFFD,
         any category C* except \\t \\n \\r), SPACE (_is_whitespace: ' ', \\t, \\n, \\r, Zs;
         plus U+2028/U+2029, which str.split() treats as whitespace), PUNCT (_is_punctuation:
         ASCII 33-47, 58-64, 91-96, 123-126 and every P*), MN (category Mn, stripped after
         NFD), CASED / CASE_IGNORABLE (the properties str.lower() consults for the Greek final
         sigma rule, measured from str.lower() itself), CJK (_is_chinese_char's blocks).
  lower  str.lower() for every code point whose lower case differs: ranges of
         (lo, hi, stride, delta); the only multi-code-point result (U+0130 -> 'i' U+0307)
         is asserted and handled in C.
  nfd    full canonical decomposition (recursive) of every code point except Hangul
         syllables, which C decomposes algorithmically.
  ccc    canonical combining class ranges (lo, hi, ccc) for NFD's canonical reordering.
"""
import sys
import unicodedata as ud

MAXCP = 0x110000
DROP, SPACE, PUNCT, MN, CASED, IGNORABLE, CJK = 1, 2, 4, 8, 16, 32, 64
HANGUL_S, HANGUL_N = 0xAC00, 11172


def is_cjk(cp):  # BertTokenizer._is_chinese_char, verbatim ranges
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def props(cp):
    c = chr(cp)
    cat = ud.category(c)
    f = 0
    if c not in "\t\n\r" and (cp == 0 or cp == 0xFFFD or cat.startswith("C")):
        f |= DROP
    if c in " \t\n\r" or cat == "Zs" or (c.isspace() and not cat.startswith("C")):
        f |= SPACE
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or cat.startswith("P"):
        f |= PUNCT
    if cat == "Mn":
        f |= MN
    if 0xD800 <= cp <= 0xDFFF:
        return f  # lone surrogates cannot be concatenated into a valid str test below
    # Final-sigma context, measured from str.lower(): CPython lowers U+03A3 to U+03C2 when
    # \p{cased} \p{case-ignorable}* U+03A3 !(\p{case-ignorable}* \p{cased}).
    # "a"+c+"Σ" ends in ς  <=>  c is case-ignorable, or cased;
    # c+"Σ" ends in ς      <=>  c is cased and not case-ignorable.
    t1 = ("a" + c + "\u03a3").lower()[-1] == "\u03c2"
    t2 = (c + "\u03a3").lower()[-1] == "\u03c2"
    if t2:
        f |= CASED
    elif t1:
        f |= IGNORABLE
    if is_cjk(cp):
        f |= CJK
    return f


def nfd_full(cp):
    return [ord(x) for x in ud.normalize("NFD", chr(cp))]


def main():
    out = []
    w = out.append
    # ---- props runs ----
    runs = []
    prev = None
    ascii_props = []
    for cp in range(MAXCP):
        f = props(cp)
        if cp < 128:
            ascii_props.append(f)
        if f != prev:
            runs.append((cp, f))
            prev = f
    # ---- lower ----
    pairs = []
    for cp in range(MAXCP):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        lo = chr(cp).lower()
        if lo == chr(cp):
            continue
        if len(lo) != 1:
            assert cp == 0x130 and lo == "i\u0307", (hex(cp), lo)
            continue
        pairs.append((cp, ord(lo) - cp))
    lranges = []  # [lo, hi, stride, delta]
    for cp, d in pairs:
        if lranges:
            r = lranges[-1]
            if r[3] == d and r[0] == r[1] and cp - r[1] in (1, 2):
                r[2] = cp - r[1]
                r[1] = cp
                continue
            if r[3] == d and r[0] != r[1] and cp - r[1] == r[2]:
                r[1] = cp
                continue
        lranges.append([cp, cp, 1, d])
    # ---- nfd ----
    nfd = []
    pool = []
    maxlen = 0
    for cp in range(MAXCP):
        if 0xD800 <= cp <= 0xDFFF or HANGUL_S <= cp < HANGUL_S + HANGUL_N:
            continue
        d = nfd_full(cp)
        if d != [cp]:
            nfd.append((cp, len(pool), len(d)))
            pool.extend(d)
            maxlen = max(maxlen, len(d))
    assert maxlen <= 4 and len(pool) < 65536
    # ---- ccc ----
    ccc = []
    for cp in range(MAXCP):
        v = ud.combining(chr(cp)) if not (0xD800 <= cp <= 0xDFFF) else 0
        if v:
            if ccc and ccc[-1][1] == cp - 1 and ccc[-1][2] == v:
                ccc[-1][1] = cp
            else:
                ccc.append([cp, cp, v])

    w("/* unicode_tables.c: GENERATED by tools/gen_unicode_tables.py -- do not edit by hand.")
    w(" * Unicode %s, from Python %d.%d.%d's unicodedata and str.lower() (what Hugging Face's"
      % (ud.unidata_version, *sys.version_info[:3]))
    w(" * BertTokenizer consults at run time). %d property runs, %d lower-case ranges,"
      % (len(runs), len(lranges)))
    w(" * %d canonical decompositions (%d code points), %d combining-class ranges. */"
      % (len(nfd), len(pool), len(ccc)))
    w('#include "data/unicode_data.h"')
    w("")
    w('const char uni_version[] = "%s";' % ud.unidata_version)
    w("")
    w("const uint8_t uni_ascii_props[128] = {")
    for i in range(0, 128, 16):
        w("    " + ", ".join("%d" % x for x in ascii_props[i:i + 16]) + ",")
    w("};")
    w("")
    w("/* (start << 8) | flags; each run lasts until the next start. */")
    w("const uint32_t uni_prop_runs[] = {")
    items = ["0x%x" % ((cp << 8) | f) for cp, f in runs]
    for i in range(0, len(items), 8):
        w("    " + ", ".join(items[i:i + 8]) + ",")
    w("};")
    w("const int uni_n_prop_runs = %d;" % len(runs))
    w("")
    w("/* lower(cp) = cp + delta for cp in lo..hi with (cp - lo) %% stride == 0. */")
    w("const UniLowerRange uni_lower_ranges[] = {")
    for lo, hi, st, d in lranges:
        w("    {0x%x, 0x%x, %d, %d}," % (lo, hi, st, d))
    w("};")
    w("const int uni_n_lower_ranges = %d;" % len(lranges))
    w("")
    w("const UniDecomp uni_nfd_table[] = {")
    items = ["{0x%x, %d, %d}" % t for t in nfd]
    for i in range(0, len(items), 6):
        w("    " + ", ".join(items[i:i + 6]) + ",")
    w("};")
    w("const int uni_n_nfd = %d;" % len(nfd))
    w("const uint32_t uni_nfd_pool[] = {")
    items = ["0x%x" % x for x in pool]
    for i in range(0, len(items), 10):
        w("    " + ", ".join(items[i:i + 10]) + ",")
    w("};")
    w("")
    w("const UniCccRange uni_ccc_ranges[] = {")
    items = ["{0x%x, 0x%x, %d}" % tuple(r) for r in ccc]
    for i in range(0, len(items), 5):
        w("    " + ", ".join(items[i:i + 5]) + ",")
    w("};")
    w("const int uni_n_ccc_ranges = %d;" % len(ccc))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
