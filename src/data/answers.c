/* answers.c: the official VQA answer normalization, soft scores, the answer vocabulary.
 *
 * Normalization reproduces PythonEvaluationTools/vqaEvaluation/vqaEval.py of the official
 * VQA tools as fixed in March 2021 (shared/VQA_FORMATS.md §1):
 *   clean:      '\n' and '\t' -> ' ', then Python str.strip()
 *   punctuation: for each of the 21 characters p, tested against the input: delete every
 *               p when "p " or " p" occurs or when digit,digit occurs anywhere, else
 *               replace every p by ' '; then delete the first 32 '.' not followed by a
 *               digit (the tool passes re.UNICODE == 32 where re.sub takes its count)
 *   digits/articles: lower(), split(), none/zero..ten -> 0..10, drop a/an/the, then map
 *               contraction keys (looked up after lower-casing: the capitalised keys of
 *               the official map, "Im", "Ive", "Id've", "I'dve", never match), join by ' '.
 *
 * Beyond ASCII (Python applies Unicode semantics to str.strip/split/lower):
 *   - whitespace for strip/split is exactly Python 3's str.isspace set: \t\n\v\f\r,
 *     U+001C..U+001F, space, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029,
 *     U+202F, U+205F, U+3000;
 *   - lower() maps ASCII, Latin-1 (U+00C0..U+00DE), Latin Extended-A (U+0100..U+017F,
 *     incl. U+0130 -> "i" U+0307), Greek capitals (U+0386..U+03AB; capital sigma always
 *     to U+03C3: Python's word-final U+03C2 rule is not reproduced) and Cyrillic
 *     (U+0400..U+042F); other characters are left as they are;
 *   - "digit" in the comma and period rules is ASCII 0-9 (the official tool runs under
 *     Python 2, where \d without re.UNICODE is ASCII);
 *   - bytes that are not valid UTF-8 are kept unchanged and are never whitespace.
 * The punctuation step works on bytes: all 21 characters and '.' are ASCII, and no byte
 * of a multi-byte UTF-8 sequence is ASCII, so this equals the code-point version. */
#include "data/answers.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/strpool.h"
#include "io/atomic.h"
#include "util/file.h"
#include "util/idmap.h"
#include "util/utf8.h"

/* Python 3 str.isspace(). */
static int py_space(int32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Byte length of the whitespace code point at s (0 if none). */
static size_t space_len(const char *s, size_t n) {
    int32_t cp;
    size_t l = utf8_decode((const unsigned char *)s, n, &cp);
    return (cp >= 0 && py_space(cp)) ? l : 0;
}

/* Simple lower-case mapping (see the file comment for the ranges covered). */
static int32_t py_lower(int32_t cp) {
    if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 0x20;
    if (cp >= 0x100 && cp <= 0x17F) {
        if ((cp >= 0x100 && cp <= 0x12F) || (cp >= 0x132 && cp <= 0x137) || (cp >= 0x14A && cp <= 0x177))
            return cp | 1;
        if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E)) return (cp & 1) ? cp + 1 : cp;
        if (cp == 0x178) return 0xFF;
        return cp;
    }
    if (cp >= 0x386 && cp <= 0x3AB) {
        if (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) return cp + 0x20;
        if (cp == 0x386) return 0x3AC;
        if (cp >= 0x388 && cp <= 0x38A) return cp + 0x25;
        if (cp == 0x38C) return 0x3CC;
        if (cp == 0x38E || cp == 0x38F) return cp + 0x3F;
        return cp;
    }
    if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50;
    if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;
    return cp;
}

/* ---- bounded output ---- */

typedef struct Out {
    char *p;
    size_t cap, n;
} Out;

static void out_put(Out *o, const char *s, size_t n) {
    if (!o->cap) return;
    size_t room = o->cap - 1 - o->n;
    if (n > room) n = room;
    memcpy(o->p + o->n, s, n);
    o->n += n;
    o->p[o->n] = '\0';
}

/* ---- step 1 ---- */

void ans_clean(const char *in, char *out, size_t cap) {
    if (!cap) return;
    out[0] = '\0';
    size_t n = strlen(in), b = 0, e = 0, i = 0;
    int seen = 0;
    /* [b, e): from the first to the end of the last non-whitespace code point */
    while (i < n) {
        int32_t cp;
        size_t l = utf8_decode((const unsigned char *)in + i, n - i, &cp);
        if (cp < 0 || !py_space(cp)) {
            if (!seen) b = i;
            seen = 1;
            e = i + l;
        }
        i += l;
    }
    Out o = {out, cap, 0};
    for (i = b; i < e; i++) {
        char c = in[i];
        if (c == '\n' || c == '\t') c = ' ';
        out_put(&o, &c, 1);
    }
}

/* ---- step 3 ---- */

static const char PUNCT[] = ";/[]\"{}()=+\\_-><@`,?!";

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Writes the punctuation-processed text of in[0..n) into t (n + 1 bytes). */
static void process_punctuation(const char *in, size_t n, char *t) {
    int comma_digits = 0;
    for (size_t i = 0; i + 2 < n && !comma_digits; i++)
        comma_digits = is_digit(in[i]) && in[i + 1] == ',' && is_digit(in[i + 2]);
    unsigned char del[128] = {0}, is_p[128] = {0};
    for (const char *p = PUNCT; *p; p++) {
        unsigned char c = (unsigned char)*p;
        is_p[c] = 1;
        del[c] = (unsigned char)comma_digits;
    }
    /* "p " or " p" anywhere in the original: p is deleted rather than spaced */
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned char a = (unsigned char)in[i], b = (unsigned char)in[i + 1];
        if (b == ' ' && a < 128 && is_p[a]) del[a] = 1;
        if (a == ' ' && b < 128 && is_p[b]) del[b] = 1;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 128 && is_p[c]) {
            if (!del[c]) t[m++] = ' ';
        } else {
            t[m++] = (char)c;
        }
    }
    t[m] = '\0';
    /* periods not followed by a digit: the first 32 are deleted */
    size_t k = 0, removed = 0;
    for (size_t i = 0; i < m; i++) {
        if (t[i] == '.' && removed < 32 && !(i + 1 < m && is_digit(t[i + 1]))) {
            removed++;
            continue;
        }
        t[k++] = t[i];
    }
    t[k] = '\0';
}

/* ---- step 4 ---- */

typedef struct Pair {
    const char *key, *value;
} Pair;

static const Pair NUMBERS[] = {{"none", "0"}, {"zero", "0"}, {"one", "1"},   {"two", "2"},
                               {"three", "3"}, {"four", "4"}, {"five", "5"}, {"six", "6"},
                               {"seven", "7"}, {"eight", "8"}, {"nine", "9"}, {"ten", "10"}};

/* The official contraction map, all 120 keys, sorted by key bytes for bsearch. Its
 * oddities are kept: "somebody'd" -> "somebodyd", identity keys "let's" and "she's". */
static const Pair CONTRACTIONS[] = {
    {"'ow'sat", "'ow's'at"}, {"'ows'at", "'ow's'at"}, {"I'dve", "I'd've"}, {"Id've", "I'd've"},
    {"Im", "I'm"}, {"Ive", "I've"}, {"aint", "ain't"}, {"arent", "aren't"}, {"cant", "can't"},
    {"couldn'tve", "couldn't've"}, {"couldnt", "couldn't"}, {"couldnt've", "couldn't've"},
    {"couldve", "could've"}, {"didnt", "didn't"}, {"doesnt", "doesn't"}, {"dont", "don't"},
    {"hadn'tve", "hadn't've"}, {"hadnt", "hadn't"}, {"hadnt've", "hadn't've"}, {"hasnt", "hasn't"},
    {"havent", "haven't"}, {"he'dve", "he'd've"}, {"hed", "he'd"}, {"hed've", "he'd've"},
    {"hes", "he's"}, {"howd", "how'd"}, {"howll", "how'll"}, {"hows", "how's"}, {"isnt", "isn't"},
    {"it'dve", "it'd've"}, {"itd", "it'd"}, {"itd've", "it'd've"}, {"itll", "it'll"},
    {"let's", "let's"}, {"maam", "ma'am"}, {"mightn'tve", "mightn't've"}, {"mightnt", "mightn't"},
    {"mightnt've", "mightn't've"}, {"mightve", "might've"}, {"mustnt", "mustn't"},
    {"mustve", "must've"}, {"neednt", "needn't"}, {"notve", "not've"}, {"oclock", "o'clock"},
    {"oughtnt", "oughtn't"}, {"ow's'at", "'ow's'at"}, {"shant", "shan't"}, {"she'dve", "she'd've"},
    {"she's", "she's"}, {"shed've", "she'd've"}, {"shouldn'tve", "shouldn't've"},
    {"shouldnt", "shouldn't"}, {"shouldnt've", "shouldn't've"}, {"shouldve", "should've"},
    {"somebody'd", "somebodyd"}, {"somebody'dve", "somebody'd've"},
    {"somebodyd've", "somebody'd've"}, {"somebodyll", "somebody'll"}, {"somebodys", "somebody's"},
    {"someone'dve", "someone'd've"}, {"someoned", "someone'd"}, {"someoned've", "someone'd've"},
    {"someonell", "someone'll"}, {"someones", "someone's"}, {"something'dve", "something'd've"},
    {"somethingd", "something'd"}, {"somethingd've", "something'd've"},
    {"somethingll", "something'll"}, {"thats", "that's"}, {"there'dve", "there'd've"},
    {"thered", "there'd"}, {"thered've", "there'd've"}, {"therere", "there're"},
    {"theres", "there's"}, {"they'dve", "they'd've"}, {"theyd", "they'd"},
    {"theyd've", "they'd've"}, {"theyll", "they'll"}, {"theyre", "they're"}, {"theyve", "they've"},
    {"twas", "'twas"}, {"wasnt", "wasn't"}, {"we'dve", "we'd've"}, {"wed've", "we'd've"},
    {"werent", "weren't"}, {"weve", "we've"}, {"whatll", "what'll"}, {"whatre", "what're"},
    {"whats", "what's"}, {"whatve", "what've"}, {"whens", "when's"}, {"whered", "where'd"},
    {"wheres", "where's"}, {"whereve", "where've"}, {"who'dve", "who'd've"}, {"whod", "who'd"},
    {"whod've", "who'd've"}, {"wholl", "who'll"}, {"whos", "who's"}, {"whove", "who've"},
    {"whyll", "why'll"}, {"whyre", "why're"}, {"whys", "why's"}, {"wont", "won't"},
    {"wouldn'tve", "wouldn't've"}, {"wouldnt", "wouldn't"}, {"wouldnt've", "wouldn't've"},
    {"wouldve", "would've"}, {"y'all'dve", "y'all'd've"}, {"y'alld've", "y'all'd've"},
    {"y'allll", "y'all'll"}, {"yall", "y'all"}, {"yall'd've", "y'all'd've"},
    {"yall'll", "y'all'll"}, {"you'dve", "you'd've"}, {"youd", "you'd"}, {"youd've", "you'd've"},
    {"youll", "you'll"}, {"youre", "you're"}, {"youve", "you've"},
};

static int pair_cmp(const void *k, const void *p) { return strcmp((const char *)k, ((const Pair *)p)->key); }

int ans_contraction_count(void) { return (int)(sizeof CONTRACTIONS / sizeof CONTRACTIONS[0]); }

static const char *map_word(const char *w) {
    for (size_t i = 0; i < sizeof NUMBERS / sizeof NUMBERS[0]; i++)
        if (strcmp(w, NUMBERS[i].key) == 0) return NUMBERS[i].value;
    return w;
}

/* lower(), split(), number words, articles, contractions, ' '.join(). */
static void process_digit_article(const char *t, Out *o) {
    size_t n = strlen(t), i = 0;
    /* lower-casing grows a code point by at most half (U+0130: 2 bytes -> 3) */
    char sbuf[768];
    char *w = 3 * n / 2 + 8 <= sizeof sbuf ? sbuf : malloc(3 * n / 2 + 8);
    if (!w) return;
    int first = 1;
    while (i < n) {
        size_t l = space_len(t + i, n - i);
        if (l) {
            i += l;
            continue;
        }
        size_t wn = 0;
        while (i < n && !space_len(t + i, n - i)) {
            int32_t cp;
            size_t cl = utf8_decode((const unsigned char *)t + i, n - i, &cp);
            if (cp < 0) {
                w[wn++] = t[i];
            } else if (cp == 0x130) {
                w[wn++] = 'i';
                wn += utf8_encode(0x307, w + wn);
            } else {
                wn += utf8_encode((uint32_t)py_lower(cp), w + wn);
            }
            i += cl;
        }
        w[wn] = '\0';
        const char *word = map_word(w);
        if (!strcmp(word, "a") || !strcmp(word, "an") || !strcmp(word, "the")) continue;
        const Pair *c = bsearch(word, CONTRACTIONS, sizeof CONTRACTIONS / sizeof CONTRACTIONS[0],
                                sizeof CONTRACTIONS[0], pair_cmp);
        if (c) word = c->value;
        if (!first) out_put(o, " ", 1);
        out_put(o, word, strlen(word));
        first = 0;
    }
    if (w != sbuf) free(w);
}

void ans_normalize(const char *in, char *out, size_t cap) {
    if (!cap) return;
    out[0] = '\0';
    size_t n = strlen(in);
    char sbuf[512];
    char *t = n + 1 <= sizeof sbuf ? sbuf : malloc(n + 1);
    if (!t) return;
    process_punctuation(in, n, t);
    Out o = {out, cap, 0};
    process_digit_article(t, &o);
    if (t != sbuf) free(t);
}

void ans_canonical(const char *in, char *out, size_t cap) {
    char sbuf[512];
    size_t n = strlen(in);
    char *c = n + 1 <= sizeof sbuf ? sbuf : malloc(n + 1);
    if (!c) {
        if (cap) out[0] = '\0';
        return;
    }
    ans_clean(in, c, n + 1);
    ans_normalize(c, out, cap);
    if (c != sbuf) free(c);
}

float ans_soft_score(int k) {
    static const float s[5] = {0.0f, 0.3f, 0.6f, 0.9f, 1.0f};
    if (k <= 0) return 0.0f;
    return s[k >= 4 ? 4 : k];
}

/* ---- candidates and vocabulary ---- */

int ans_candidate(const VqaSample *s, char *out, size_t cap) {
    if (cap) out[0] = '\0';
    if (s->mc_answer) {
        ans_canonical(s->mc_answer, out, cap);
        return 0;
    }
    if (s->n_answers <= 0) return -1;
    char norm[VQA_N_HUMAN_ANSWERS][ANS_MAX_LEN];
    int best = -1, best_k = 0;
    for (int i = 0; i < s->n_answers; i++) ans_canonical(s->answers[i], norm[i], ANS_MAX_LEN);
    for (int i = 0; i < s->n_answers; i++) {
        int k = 0;
        for (int j = 0; j < s->n_answers; j++) k += strcmp(norm[i], norm[j]) == 0;
        if (k > best_k) best = i, best_k = k;
    }
    Out o = {out, cap, 0};
    out_put(&o, norm[best], strlen(norm[best]));
    return 0;
}

/* Answer -> index lookups (util/idmap.h): the ids index a list of answer strings. */
typedef struct AnsKey {
    const char *const *list;
    const char *a;
} AnsKey;

static int same_answer(const void *ctx, int64_t id) {
    const AnsKey *k = ctx;
    return strcmp(k->list[id], k->a) == 0;
}

struct AnswerVocab {
    int n;
    const char **answers;  /* [n], in the pool */
    IdMap index;           /* answer -> class */
    StrPool *pool;
};

void ans_vocab_free(AnswerVocab *v) {
    if (!v) return;
    free(v->answers);
    idmap_free(&v->index);
    sp_free(v->pool);
    free(v);
}

int ans_vocab_size(const AnswerVocab *v) { return v->n; }

const char *ans_vocab_answer(const AnswerVocab *v, int index) {
    return (index >= 0 && index < v->n) ? v->answers[index] : NULL;
}

int ans_vocab_find(const AnswerVocab *v, const char *normalized) {
    AnsKey k = {v->answers, normalized};
    return (int)idmap_find(&v->index, idmap_hash_str(normalized), same_answer, &k);
}

/* Builds a vocabulary from a list; where (may be NULL) names the list's origin and
 * line_base != 0 means entries are lines of a file (for messages). */
static int vocab_from(AnswerVocab **out, const char *const *answers, int n, const char *where,
                      Err *err) {
    *out = NULL;
    AnswerVocab *v = calloc(1, sizeof *v);
    if (!v || !(v->pool = sp_new()) || !(v->answers = malloc(((size_t)n + 1) * sizeof(char *)))) {
        ans_vocab_free(v);
        return err_set(err, "answer vocabulary: out of memory");
    }
    for (int i = 0; i < n; i++) {
        const char *a = answers[i];
        if (!a[0]) {
            ans_vocab_free(v);
            return err_set(err, "%s: entry %d (line %d) is an empty answer", where, i, i + 1);
        }
        AnsKey k = {v->answers, a};
        int64_t prev = -1;
        int r = idmap_insert(&v->index, idmap_hash_str(a), i, same_answer, &k, &prev);
        if (r == 1) {
            ans_vocab_free(v);
            return err_set(err, "%s: answer \"%s\" on line %d repeats line %d", where, a, i + 1,
                           (int)prev + 1);
        }
        if (r < 0 || !(v->answers[i] = sp_add(v->pool, a, strlen(a)))) {
            ans_vocab_free(v);
            return err_set(err, "answer vocabulary: out of memory");
        }
        v->n++;
    }
    *out = v;
    return 0;
}

int ans_vocab_from_list(AnswerVocab **out, const char *const *answers, int n, Err *err) {
    return vocab_from(out, answers, n, "answer list", err);
}

typedef struct Cand {
    const char *a;
    int count;
} Cand;

static int cand_cmp(const void *x, const void *y) {
    const Cand *a = x, *b = y;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return strcmp(a->a, b->a);
}

/* Answers seen so far and how often, in order of first sight (id i of map is item i). */
typedef struct Counts {
    IdMap map;
    Cand *item; /* answers in the build's pool */
    size_t n, cap;
} Counts;

typedef struct CountKey {
    const Counts *t;
    const char *a;
} CountKey;

static int same_counted(const void *ctx, int64_t id) {
    const CountKey *k = ctx;
    return strcmp(k->t->item[id].a, k->a) == 0;
}

/* Counts one more a, adding it (copied into pool) when new; -1 when out of memory. */
static int counts_add(Counts *t, StrPool *pool, const char *a) {
    uint64_t h = idmap_hash_str(a);
    CountKey k = {t, a};
    int64_t id = idmap_find(&t->map, h, same_counted, &k);
    if (id < 0) {
        if (t->n == t->cap) {
            size_t nc = t->cap ? 2 * t->cap : 256;
            Cand *ni = realloc(t->item, nc * sizeof *ni);
            if (!ni) return -1;
            t->item = ni;
            t->cap = nc;
        }
        const char *copy = sp_add(pool, a, strlen(a));
        if (!copy || idmap_insert(&t->map, h, (int64_t)t->n, same_counted, &k, NULL) < 0) return -1;
        id = (int64_t)t->n;
        t->item[t->n++] = (Cand){copy, 0};
    }
    t->item[id].count++;
    return 0;
}

int ans_vocab_build(AnswerVocab **out, const VqaDataset *const *splits, int n_splits,
                    int min_count, int max_size, Err *err) {
    *out = NULL;
    Counts counts = {0};
    StrPool *pool = sp_new();
    Cand *c = NULL;
    int rc = -1;
    if (!pool) return err_set(err, "answer vocabulary: out of memory");
    char buf[ANS_MAX_LEN];
    for (int s = 0; s < n_splits; s++) {
        for (int64_t i = 0; i < splits[s]->n; i++) {
            if (ans_candidate(&splits[s]->samples[i], buf, sizeof buf) || !buf[0]) continue;
            if (counts_add(&counts, pool, buf) != 0) {
                err_set(err, "answer vocabulary: out of memory");
                goto out;
            }
        }
    }
    c = malloc((counts.n + 1) * sizeof *c);
    if (!c) {
        err_set(err, "answer vocabulary: out of memory");
        goto out;
    }
    size_t m = 0;
    for (size_t i = 0; i < counts.n; i++)
        if (counts.item[i].count >= min_count) c[m++] = counts.item[i];
    qsort(c, m, sizeof *c, cand_cmp);
    if (max_size > 0 && m > (size_t)max_size) m = (size_t)max_size;
    if (m > (size_t)INT32_MAX) m = INT32_MAX;
    const char **list = malloc((m + 1) * sizeof *list);
    if (!list) {
        err_set(err, "answer vocabulary: out of memory");
        goto out;
    }
    for (size_t i = 0; i < m; i++) list[i] = c[i].a;
    rc = vocab_from(out, list, (int)m, "answer vocabulary", err);
    free(list);
out:
    free(c);
    idmap_free(&counts.map);
    free(counts.item);
    sp_free(pool);
    return rc;
}

int ans_vocab_save(const AnswerVocab *v, const char *path, Err *err) {
    AtomicFile af;
    if (atomic_open(&af, path, err)) return -1;
    for (int i = 0; i < v->n; i++) {
        if (fputs(v->answers[i], af.fp) == EOF || fputc('\n', af.fp) == EOF) {
            atomic_abort(&af);
            return err_errno(err, "%s: cannot write the answer vocabulary", path);
        }
    }
    return atomic_commit(&af, err);
}

int ans_vocab_load(AnswerVocab **out, const char *path, Err *err) {
    *out = NULL;
    char *text;
    size_t len;
    if (file_read_all(path, "the answer vocabulary", 0, &text, &len, err) != 0) return -1;
    if (len == 0) {
        free(text);
        return err_set(err, "%s: empty answer vocabulary", path);
    }
    if (memchr(text, '\0', len)) {
        free(text);
        return err_set(err, "%s: contains a NUL byte (not a text file)", path);
    }
    size_t nl = 0;
    for (size_t i = 0; i < len; i++) nl += text[i] == '\n';
    const char **lines = malloc((nl + 2) * sizeof *lines);
    if (!lines) {
        free(text);
        return err_set(err, "%s: out of memory", path);
    }
    int n = 0;
    char *p = text;
    while (*p) {
        char *e = strchr(p, '\n');
        char *next = e ? e + 1 : p + strlen(p);
        if (e) *e = '\0';
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r') p[l - 1] = '\0';
        lines[n++] = p;
        p = next;
    }
    int rc = vocab_from(out, lines, n, path, err);
    free(lines);
    free(text);
    return rc;
}

void ans_soft_targets(const AnswerVocab *v, const VqaSample *s, float *target) {
    memset(target, 0, (size_t)v->n * sizeof *target);
    int cls[VQA_N_HUMAN_ANSWERS], cnt[VQA_N_HUMAN_ANSWERS], m = 0;
    char buf[ANS_MAX_LEN];
    for (int i = 0; i < s->n_answers && i < VQA_N_HUMAN_ANSWERS; i++) {
        ans_canonical(s->answers[i], buf, sizeof buf);
        int c = ans_vocab_find(v, buf);
        if (c < 0) continue;
        int j = 0;
        while (j < m && cls[j] != c) j++;
        if (j == m) cls[m] = c, cnt[m++] = 0;
        cnt[j]++;
    }
    for (int j = 0; j < m; j++) target[cls[j]] = ans_soft_score(cnt[j]);
}
