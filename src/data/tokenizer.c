/* tokenizer.c: BERT WordPiece (uncased), token for token as Hugging Face's Python
 * BertTokenizer (BasicTokenizer + WordpieceTokenizer, do_lower_case=True,
 * tokenize_chinese_chars=True, strip_accents=None). The steps, in HF's order:
 *
 *   clean       drop NUL, U+FFFD and every C* code point except \t \n \r; whitespace -> ' '
 *   CJK         put spaces around each CJK ideograph (each becomes a word)
 *   split       on whitespace (str.split(), so U+2028 / U+2029 separate words too)
 *   per word    str.lower() (with the Greek final-sigma rule), NFD, drop Mn, then split off
 *               every punctuation code point as its own piece
 *   WordPiece   greedy longest-match-first with "##" continuations; a piece of more than
 *               100 code points, or one with no match at some position, is one [UNK]
 *
 * HF also NFC-normalizes each word before lower-casing; since NFD follows, that only
 * matters where lower() is not canonical-equivalence preserving, which it is for every
 * code point and composition of Unicode 14 (checked by tools/gen_tokenizer_refs.py
 * --exhaustive), so it is not done here.
 *
 * Text is treated as plain text: a literal "[SEP]" in a question is '[', 'sep', ']' -- the
 * same as HF with split_special_tokens=True, never an injected separator.
 *
 * Bytes that are not valid UTF-8 (overlong forms, surrogates, > U+10FFFF, truncated
 * sequences, stray continuation bytes) each become U+FFFD, which cleaning drops -- what HF
 * gives for bytes.decode("utf-8", errors="replace").
 *
 * Thread safety: a loaded Tokenizer is read-only; tok_tokenize/tok_encode keep their
 * scratch on the stack (or the heap for text longer than TOK_STACK_CPS code points). */
#include "data/tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/unicode_data.h"
#include "util/file.h"
#include "util/idmap.h"
#include "util/utf8.h"

#define TOK_MAX_WORD_CHARS 100   /* HF's max_input_chars_per_word */
#define TOK_MAX_TOKEN_BYTES 1024 /* longest vocab line accepted */
#define TOK_STACK_CPS 512        /* words up to this many code points need no malloc */

struct Tokenizer {
    char *pool;        /* every token, NUL-terminated, in id order */
    uint32_t *off;     /* [n] offset of token id in pool */
    uint32_t *len;     /* [n] byte length of token id */
    int n;
    IdMap index;       /* token -> id (util/idmap.h), keyed by the 32-bit hash below */
    int max_len;       /* longest token in bytes (bounds the WordPiece search) */
    int pad, unk, cls, sep;
};

/* ---------------- hashing (FNV-1a, with the "##" prefix fed in virtually) ---------------- */

#define FNV_INIT 2166136261u
static inline uint32_t fnv_bytes(uint32_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}
static inline uint32_t fnv_prefix(int cont) {
    return cont ? fnv_bytes(FNV_INIT, "##", 2) : FNV_INIT;
}

/* The key ("##" if cont) + s[0..n), compared with token id without building it. */
typedef struct TokKey {
    const Tokenizer *t;
    int cont;
    const char *s;
    size_t n;
} TokKey;

static int same_token(const void *ctx, int64_t id) {
    const TokKey *k = ctx;
    const Tokenizer *t = k->t;
    if (t->len[id] != k->n + (k->cont ? 2 : 0)) return 0;
    const char *p = t->pool + t->off[id];
    return (!k->cont || (p[0] == '#' && p[1] == '#')) && memcmp(p + (k->cont ? 2 : 0), k->s, k->n) == 0;
}

/* Id of ("##" if cont) + s[0..n), or -1. */
static int lookup(const Tokenizer *t, int cont, const char *s, size_t n) {
    TokKey k = {t, cont, s, n};
    return (int)idmap_find(&t->index, fnv_bytes(fnv_prefix(cont), s, n), same_token, &k);
}

/* ---------------- UTF-8 ---------------- */

/* The code point at *p (< end), advancing *p past it; invalid input gives U+FFFD and
 * advances one byte (util/utf8.h), so the bytes after it are decoded afresh. */
static uint32_t utf8_next(const unsigned char **p, const unsigned char *end) {
    int32_t c;
    *p += utf8_decode(*p, (size_t)(end - *p), &c);
    return c < 0 ? 0xFFFD : (uint32_t)c;
}

/* ---------------- vocab loading ---------------- */

void tok_free(Tokenizer *t) {
    if (!t) return;
    free(t->pool);
    free(t->off);
    free(t->len);
    idmap_free(&t->index);
    free(t);
}

/* Byte offset of the first invalid UTF-8 sequence in s[0..n), or -1. */
static long utf8_invalid_at(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        const unsigned char *q = p;
        uint32_t c = utf8_next(&p, end);
        /* a literal U+FFFD (EF BF BD) is valid; a replacement from a bad byte is not */
        if (c == 0xFFFD && p - q == 1) return (long)(q - (const unsigned char *)s);
    }
    return -1;
}

static int insert(Tokenizer *t, int id, const char *path, const int *line_of_id, Err *err) {
    const char *s = t->pool + t->off[id];
    TokKey k = {t, 0, s, t->len[id]};
    int64_t prev = -1;
    int r = idmap_insert(&t->index, fnv_bytes(FNV_INIT, s, t->len[id]), id, same_token, &k, &prev);
    if (r == 1)
        return err_set(err, "vocab %s:%d: duplicate token \"%s\" (first at line %d)", path, line_of_id[id], s,
                       line_of_id[prev]);
    return r < 0 ? err_set(err, "vocab %s: out of memory", path) : 0;
}

int tok_load(Tokenizer **out, const char *vocab_path, Err *err) {
    *out = NULL;
    char *buf = NULL;
    size_t n = 0;
    if (file_read_all(vocab_path, "the vocab file", 0, &buf, &n, err)) return -1;
    if (n == 0) {
        free(buf);
        return err_set(err, "vocab %s: empty file (expected one token per line)", vocab_path);
    }
    if (n >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
        free(buf);
        return err_set(err, "vocab %s:1: starts with a UTF-8 byte-order mark; save it without "
                       "one (it would become part of the first token)", vocab_path);
    }
    Tokenizer *t = calloc(1, sizeof *t);
    int *line_of_id = NULL;
    if (!t) { free(buf); return err_set(err, "vocab %s: out of memory", vocab_path); }
    /* Lines end at \n, \r\n or a lone \r: Python's universal newlines, as HF reads it. */
    size_t lines = 0;
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\n' || (buf[i] == '\r' && (i + 1 >= n || buf[i + 1] != '\n'))) lines++;
    if (buf[n - 1] != '\n' && buf[n - 1] != '\r') lines++;
    if (lines > (size_t)INT32_MAX / 2) {
        free(buf);
        tok_free(t);
        return err_set(err, "vocab %s: too many lines", vocab_path);
    }
    t->pool = buf; /* tokens are NUL-terminated in place */
    t->off = malloc(lines * sizeof *t->off);
    t->len = malloc(lines * sizeof *t->len);
    line_of_id = malloc(lines * sizeof *line_of_id);
    if (!t->off || !t->len || !line_of_id || idmap_reserve(&t->index, lines) != 0) {
        err_set(err, "vocab %s: out of memory", vocab_path);
        goto fail;
    }
    size_t pos = 0;
    int line = 0;
    while (pos < n) {
        size_t e = pos;
        while (e < n && buf[e] != '\n' && buf[e] != '\r') e++;
        line++;
        size_t len = e - pos;
        if (len == 0) {
            err_set(err, "vocab %s:%d: empty line (id %d would be the empty token)", vocab_path,
                    line, line - 1);
            goto fail;
        }
        if (len > TOK_MAX_TOKEN_BYTES) {
            err_set(err, "vocab %s:%d: line of %zu bytes (a token has at most %d)", vocab_path,
                    line, len, TOK_MAX_TOKEN_BYTES);
            goto fail;
        }
        const char *nul = memchr(buf + pos, '\0', len);
        if (nul) {
            err_set(err, "vocab %s:%d: NUL byte at column %ld", vocab_path, line,
                    (long)(nul - (buf + pos)) + 1);
            goto fail;
        }
        long bad = utf8_invalid_at(buf + pos, len);
        if (bad >= 0) {
            err_set(err, "vocab %s:%d: invalid UTF-8 at column %ld (file byte offset %zu): byte "
                    "0x%02X", vocab_path, line, bad + 1, pos + (size_t)bad,
                    (unsigned)(uint8_t)buf[pos + (size_t)bad]);
            goto fail;
        }
        int id = t->n++;
        t->off[id] = (uint32_t)pos;
        t->len[id] = (uint32_t)len;
        line_of_id[id] = line;
        if ((int)len > t->max_len) t->max_len = (int)len;
        /* terminate the token in place; a \r\n pair ends at the \n */
        if (e < n && buf[e] == '\r' && e + 1 < n && buf[e + 1] == '\n') e++;
        buf[pos + len] = '\0';
        if (insert(t, id, vocab_path, line_of_id, err)) goto fail;
        pos = e + 1;
    }
    static const char *const specials[4] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]"};
    int *dst[4] = {&t->pad, &t->unk, &t->cls, &t->sep};
    for (int i = 0; i < 4; i++) {
        *dst[i] = tok_id(t, specials[i]);
        if (*dst[i] < 0) {
            err_set(err, "vocab %s: missing special token %s (a BERT vocab needs [PAD], [UNK], "
                    "[CLS] and [SEP], one per line)", vocab_path, specials[i]);
            goto fail;
        }
    }
    free(line_of_id);
    *out = t;
    return 0;
fail:
    free(line_of_id);
    tok_free(t);
    return -1;
}

int tok_vocab_size(const Tokenizer *t) { return t->n; }
int tok_pad_id(const Tokenizer *t) { return t->pad; }
int tok_cls_id(const Tokenizer *t) { return t->cls; }
int tok_sep_id(const Tokenizer *t) { return t->sep; }
int tok_unk_id(const Tokenizer *t) { return t->unk; }

int tok_id(const Tokenizer *t, const char *token) {
    return lookup(t, 0, token, strlen(token));
}

const char *tok_token(const Tokenizer *t, int id) {
    return (id >= 0 && id < t->n) ? t->pool + t->off[id] : NULL;
}

/* ---------------- tokenization ---------------- */

typedef struct Out {
    int32_t *ids;
    int cap, n;
} Out;

static inline void emit(Out *o, int32_t id) {
    if (o->n < o->cap) o->ids[o->n] = id;
    o->n++;
}

/* WordPiece of one piece (cps[0..n), no whitespace, no punctuation inside unless alone). */
static void wordpiece(const Tokenizer *t, const uint32_t *cps, int n, Out *o) {
    if (n > TOK_MAX_WORD_CHARS) {
        emit(o, t->unk);
        return;
    }
    char bytes[TOK_MAX_WORD_CHARS * 4];
    int at[TOK_MAX_WORD_CHARS + 1]; /* byte offset of code point i */
    int nb = 0;
    for (int i = 0; i < n; i++) {
        at[i] = nb;
        nb += (int)utf8_encode(cps[i], bytes + nb);
    }
    at[n] = nb;
    int32_t sub[TOK_MAX_WORD_CHARS];
    int nsub = 0, start = 0;
    while (start < n) {
        int cont = start > 0, found = -1, end = n;
        /* no token is longer than max_len bytes: skip ends that cannot match */
        while (end > start && at[end] - at[start] + 2 * cont > t->max_len) end--;
        for (; end > start; end--) {
            found = lookup(t, cont, bytes + at[start], (size_t)(at[end] - at[start]));
            if (found >= 0) break;
        }
        if (found < 0) {
            emit(o, t->unk);
            return;
        }
        sub[nsub++] = found;
        start = end;
    }
    for (int i = 0; i < nsub; i++) emit(o, sub[i]);
}

/* Python's str.lower() lowers U+03A3 to final sigma U+03C2 in the context
 * \p{cased} \p{case-ignorable}* U+03A3 !(\p{case-ignorable}* \p{cased}), within the word. */
static int is_final_sigma(const uint32_t *w, int n, int i) {
    int j = i - 1;
    while (j >= 0 && (uni_props(w[j]) & UNI_CASE_IGNORABLE)) j--;
    if (j < 0 || !(uni_props(w[j]) & UNI_CASED)) return 0;
    j = i + 1;
    while (j < n && (uni_props(w[j]) & UNI_CASE_IGNORABLE)) j++;
    return j == n || !(uni_props(w[j]) & UNI_CASED);
}

/* One whitespace-separated word w[0..n) -> lower, NFD, drop Mn, punctuation split,
 * WordPiece. d has room for UNI_MAX_DECOMP * n code points. */
static void word(const Tokenizer *t, const uint32_t *w, int n, uint32_t *d, Out *o) {
    int nd = 0, ascii = 1;
    for (int i = 0; i < n; i++) ascii &= w[i] < 128;
    if (ascii) {
        for (int i = 0; i < n; i++) d[i] = (w[i] >= 'A' && w[i] <= 'Z') ? w[i] + 32 : w[i];
        nd = n;
    } else {
        for (int i = 0; i < n; i++) {
            uint32_t low[2];
            int nl;
            if (w[i] == 0x3A3) {
                low[0] = is_final_sigma(w, n, i) ? 0x3C2 : 0x3C3;
                nl = 1;
            } else {
                nl = uni_lower(w[i], low);
            }
            for (int k = 0; k < nl; k++) nd += uni_nfd(low[k], d + nd);
        }
        /* canonical ordering: stable sort of each run of non-starters by combining class
         * (runs are short; insertion sort). Done before dropping Mn, since an Mn starter
         * (ccc 0) bounds a run. */
        for (int i = 1; i < nd; i++) {
            uint8_t c = uni_ccc(d[i]);
            if (!c) continue;
            uint32_t x = d[i];
            int j = i;
            while (j > 0) {
                uint8_t cp = uni_ccc(d[j - 1]);
                if (cp <= c) break; /* a starter (0) or an equal/lower class stops it */
                d[j] = d[j - 1];
                j--;
            }
            d[j] = x;
        }
        int k = 0;
        for (int i = 0; i < nd; i++)
            if (!(uni_props(d[i]) & UNI_MN)) d[k++] = d[i];
        nd = k;
    }
    int start = 0;
    for (int i = 0; i < nd; i++) {
        if (uni_props(d[i]) & UNI_PUNCT) {
            if (i > start) wordpiece(t, d + start, i - start, o);
            wordpiece(t, d + i, 1, o);
            start = i + 1;
        }
    }
    if (nd > start) wordpiece(t, d + start, nd - start, o);
}

int tok_tokenize(const Tokenizer *t, const char *text, int32_t *ids, int cap) {
    return tok_tokenize_n(t, text, strlen(text), ids, cap);
}

int tok_encode(const Tokenizer *t, const char *text, int max_len, int32_t *ids, float *mask) {
    return tok_encode_n(t, text, strlen(text), max_len, ids, mask);
}

int tok_tokenize_n(const Tokenizer *t, const char *text, size_t len, int32_t *ids, int cap) {
    Out o = {ids, cap < 0 ? 0 : cap, 0};
    /* a word has at most len code points (one per byte at most) */
    uint32_t wst[TOK_STACK_CPS], dst[TOK_STACK_CPS * UNI_MAX_DECOMP];
    uint32_t *w = wst, *d = dst;
    if (len > TOK_STACK_CPS) {
        w = malloc(len * sizeof *w);
        d = malloc(len * UNI_MAX_DECOMP * sizeof *d);
        if (!w || !d) {
            free(w);
            free(d);
            return -1;
        }
    }
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    int n = 0;
    while (p < end) {
        uint32_t c = utf8_next(&p, end);
        uint8_t f = uni_props(c);
        if (f & UNI_DROP) continue;
        if (f & (UNI_SPACE | UNI_CJK)) {
            if (n) word(t, w, n, d, &o);
            n = 0;
            if (f & UNI_CJK) {
                w[0] = c;
                word(t, w, 1, d, &o);
            }
            continue;
        }
        w[n++] = c;
    }
    if (n) word(t, w, n, d, &o);
    if (w != wst) {
        free(w);
        free(d);
    }
    return o.n;
}

int tok_encode_n(const Tokenizer *t, const char *text, size_t len, int max_len, int32_t *ids,
                 float *mask) {
    if (max_len < 2) return -1;
    int n = tok_tokenize_n(t, text, len, ids + 1, max_len - 2);
    if (n < 0) return -1;
    if (n > max_len - 2) n = max_len - 2;
    ids[0] = t->cls;
    ids[n + 1] = t->sep;
    for (int i = 0; i < max_len; i++) {
        if (i >= n + 2) ids[i] = t->pad;
        if (mask) mask[i] = i < n + 2 ? 1.0f : 0.0f;
    }
    return n + 2;
}
