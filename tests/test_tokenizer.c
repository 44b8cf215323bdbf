// TEST_LIBS: vqa_data vqa_util
// TEST_LABELS: unit
/* test_tokenizer.c: the WordPiece tokenizer against Hugging Face's Python BertTokenizer
 * (reference ids in tests/ref/tokenizer_cases.txt, made by tools/gen_tokenizer_refs.py
 * with the real uncased vocab tests/ref/bert_uncased_vocab.txt), plus hand-checked cases:
 * ids read off vocab line numbers, [CLS]/[SEP]/padding/truncation/mask, the 100-code-point
 * word limit, invalid UTF-8, vocab file errors, and concurrent use of one Tokenizer.
 *
 *   test_tokenizer            run everything
 *   test_tokenizer CASES      compare only the case file CASES (e.g. the exhaustive one:
 *                             python3 tools/gen_tokenizer_refs.py --exhaustive CASES) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/tokenizer.h"
#include "testlib.h"

#define VOCAB "ref/bert_uncased_vocab.txt"
#define CASES "ref/tokenizer_cases.txt"

static Tokenizer *g_tok; /* loaded once in main; read-only afterwards */

/* ---------------- the case file ---------------- */

typedef struct Case {
    char *esc;       /* the text as written in the file (for messages) */
    char *text;      /* unescaped bytes (may hold NUL) */
    size_t len;
    int32_t ids[256];
    int n_ids;       /* -1 if more than 256 */
    int has_enc;
    int32_t enc[16];
    float mask[16];
} Case;

static char *unescape(const char *s, size_t *len) {
    size_t n = strlen(s);
    char *o = malloc(n + 1), *p = o;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && s[i + 1] == 'x' && i + 3 < n + 1) {
            unsigned v;
            sscanf(s + i + 2, "%2x", &v);
            *p++ = (char)v;
            i += 3;
        } else {
            *p++ = s[i];
        }
    }
    *p = '\0';
    *len = (size_t)(p - o);
    return o;
}

static int parse_ints(char *s, int32_t *out, int cap) {
    int n = 0;
    for (char *tok = strtok(s, " "); tok; tok = strtok(NULL, " ")) {
        if (n < cap) out[n] = (int32_t)atoi(tok);
        n++;
    }
    return n > cap ? -1 : n;
}

static Case *load_cases(const char *path, int *n_out) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    int cap = 4096, n = 0;
    Case *cs = malloc((size_t)cap * sizeof *cs);
    size_t lcap = 1 << 16;
    char *line = malloc(lcap);
    ssize_t len;
    int lineno = 0;
    while ((len = getline(&line, &lcap, f)) > 0) {
        if (++lineno == 1) continue; /* the header; case texts may start with '#' too */
        if (line[len - 1] == '\n') line[--len] = '\0';
        char *fields[4] = {line, NULL, NULL, NULL};
        for (int k = 1; k < 4; k++) {
            char *tab = fields[k - 1] ? strchr(fields[k - 1], '\t') : NULL;
            if (tab) { *tab = '\0'; fields[k] = tab + 1; }
        }
        if (!fields[1]) continue;
        if (n == cap) cs = realloc(cs, (size_t)(cap *= 2) * sizeof *cs);
        Case *c = &cs[n++];
        memset(c, 0, sizeof *c);
        c->esc = strdup(fields[0]);
        c->text = unescape(fields[0], &c->len);
        c->n_ids = parse_ints(fields[1], c->ids, 256);
        if (fields[2] && fields[3] && strcmp(fields[2], "-") != 0 && strlen(fields[3]) == 16) {
            c->has_enc = parse_ints(fields[2], c->enc, 16) == 16;
            for (int i = 0; i < 16; i++) c->mask[i] = fields[3][i] == '1' ? 1.0f : 0.0f;
        }
    }
    free(line);
    fclose(f);
    *n_out = n;
    return cs;
}

static void free_cases(Case *cs, int n) {
    for (int i = 0; i < n; i++) {
        free(cs[i].esc);
        free(cs[i].text);
    }
    free(cs);
}

static void print_ids(const char *what, const int32_t *ids, int n) {
    fprintf(stderr, "    %s (%d):", what, n);
    for (int i = 0; i < n && i < 40; i++) fprintf(stderr, " %d:%s", ids[i], tok_token(g_tok, ids[i]));
    fputc('\n', stderr);
}

/* Compares every case of the file; prints the first mismatches. Returns mismatches. */
static int compare_case_file(const char *path, int *n_cases) {
    int n = 0;
    Case *cs = load_cases(path, &n);
    *n_cases = n;
    if (!cs) {
        fprintf(stderr, "cannot read %s\n", path);
        return -1;
    }
    int bad = 0;
    int32_t got[1024];
    for (int i = 0; i < n; i++) {
        const Case *c = &cs[i];
        int m = tok_tokenize_n(g_tok, c->text, c->len, got, 1024);
        /* the NUL-terminated entry point agrees wherever the text has no NUL */
        if (strlen(c->text) == c->len && tok_tokenize(g_tok, c->text, NULL, 0) != m) m = -2;
        int ok = c->n_ids >= 0 && m == c->n_ids && memcmp(got, c->ids, (size_t)m * 4) == 0;
        if (ok && c->has_enc) {
            int32_t enc[16];
            float mask[16];
            tok_encode_n(g_tok, c->text, c->len, 16, enc, mask);
            ok = memcmp(enc, c->enc, sizeof enc) == 0 && memcmp(mask, c->mask, sizeof mask) == 0;
            if (!ok && bad < 10) {
                fprintf(stderr, "  encode mismatch: \"%s\"\n", c->esc);
                print_ids("expected", c->enc, 16);
                print_ids("got     ", enc, 16);
            }
        } else if (!ok && bad < 10) {
            fprintf(stderr, "  mismatch: \"%s\"\n", c->esc);
            print_ids("expected", c->ids, c->n_ids);
            print_ids("got     ", got, m < 1024 ? m : 1024);
        }
        bad += !ok;
    }
    free_cases(cs, n);
    return bad;
}

static void matches_hf_bert_tokenizer_on_every_reference_case(void) {
    int n = 0;
    int bad = compare_case_file(CASES, &n);
    CHECK_MSG(n >= 2000, "only %d cases in %s", n, CASES);
    CHECK_MSG(bad == 0, "%d of %d cases differ from Hugging Face", bad, n);
}

/* ---------------- hand cases ---------------- */

static int tokenize(const char *text, int32_t *ids, int cap) { return tok_tokenize(g_tok, text, ids, cap); }

static void special_ids_are_the_uncased_vocab_lines(void) {
    /* [PAD] is line 1, [UNK] 101, [CLS] 102, [SEP] 103 of vocab.txt; id = line - 1 */
    CHECK(tok_vocab_size(g_tok) == 30522);
    CHECK(tok_pad_id(g_tok) == 0);
    CHECK(tok_unk_id(g_tok) == 100);
    CHECK(tok_cls_id(g_tok) == 101);
    CHECK(tok_sep_id(g_tok) == 102);
    CHECK(tok_id(g_tok, "[MASK]") == 103);
    CHECK(tok_id(g_tok, "what") == 2054);      /* line 2055 */
    CHECK(tok_id(g_tok, "##ization") == 3989); /* line 3990 */
    CHECK(tok_id(g_tok, "no-such-token") == -1);
    CHECK(strcmp(tok_token(g_tok, 2158), "man") == 0);
    CHECK(tok_token(g_tok, 30522) == NULL && tok_token(g_tok, -1) == NULL);
}

static void whats_the_mans_name_gives_vocab_line_ids(void) {
    /* what=2055 '=1006 s=1056 the=1997 man=2159 name=2172 ?=1030 (vocab lines, minus 1) */
    const int32_t want[] = {2054, 1005, 1055, 1996, 2158, 1005, 1055, 2171, 1029};
    int32_t got[32];
    int n = tokenize("What's the man's name?", got, 32);
    CHECK(n == 9);
    CHECK(n == 9 && memcmp(got, want, sizeof want) == 0);
}

static void wordpiece_splits_longest_match_first_with_continuations(void) {
    /* "tokenization" is not in the vocab; "token" (line 19205) + "##ization" (3990) are */
    int32_t got[8];
    CHECK(tokenize("Tokenization", got, 8) == 2);
    CHECK(got[0] == 19204 && got[1] == 3989);
}

static void encode_wraps_in_cls_sep_pads_and_masks(void) {
    int32_t ids[8];
    float mask[8];
    int n = tok_encode(g_tok, "What's", 8, ids, mask); /* what ' s */
    const int32_t want[8] = {101, 2054, 1005, 1055, 102, 0, 0, 0};
    CHECK(n == 5);
    CHECK(memcmp(ids, want, sizeof want) == 0);
    for (int i = 0; i < 8; i++) CHECK(mask[i] == (i < 5 ? 1.0f : 0.0f));
    CHECK(tok_encode(g_tok, "", 4, ids, NULL) == 2);
    CHECK(ids[0] == 101 && ids[1] == 102 && ids[2] == 0 && ids[3] == 0);
}

static void encode_truncates_keeping_sep_last(void) {
    /* a b c d e = ids 1037..1041 (lines 1038..1042); max_len 5 keeps three of them */
    int32_t ids[5];
    float mask[5];
    int n = tok_encode(g_tok, "a b c d e", 5, ids, mask);
    const int32_t want[5] = {101, 1037, 1038, 1039, 102};
    CHECK(n == 5);
    CHECK(memcmp(ids, want, sizeof want) == 0);
    for (int i = 0; i < 5; i++) CHECK(mask[i] == 1.0f);
    CHECK(tok_encode(g_tok, "a b", 2, ids, mask) == 2 && ids[0] == 101 && ids[1] == 102);
    CHECK(tok_encode(g_tok, "a b", 1, ids, mask) == -1);
}

static void tokenize_counts_beyond_cap_without_writing_past_it(void) {
    int32_t ids[4] = {-7, -7, -7, -7};
    CHECK(tokenize("a b c d e", ids, 2) == 5);
    CHECK(ids[0] == 1037 && ids[1] == 1038 && ids[2] == -7 && ids[3] == -7);
    CHECK(tokenize("a b c", NULL, 0) == 3);
}

static void word_of_101_chars_is_unk_but_100_is_split(void) {
    char w[202];
    int32_t ids[128];
    memset(w, 'x', 101);
    w[101] = '\0';
    CHECK(tokenize(w, ids, 128) == 1 && ids[0] == 100);
    w[100] = '\0'; /* 100 x: "xx" + 49 "##xx" */
    int n = tokenize(w, ids, 128);
    CHECK(n == 50);
    CHECK(ids[0] == tok_id(g_tok, "xx") && ids[1] == tok_id(g_tok, "##xx"));
    /* the limit counts code points, not bytes: 100 e-acute (200 bytes) is not [UNK] */
    for (int i = 0; i < 100; i++) memcpy(w + 2 * i, "\xC3\xA9", 2);
    w[200] = '\0';
    n = tokenize(w, ids, 128);
    CHECK(n > 1 && ids[0] != 100);
    /* punctuation splits before the limit applies: 60 "a." pairs are 120 pieces */
    for (int i = 0; i < 60; i++) memcpy(w + 2 * i, "a.", 2);
    w[120] = '\0';
    CHECK(tokenize(w, ids, 128) == 120);
}

static void invalid_utf8_bytes_are_dropped(void) {
    int32_t a[16], b[16];
    int na = tokenize("ab\xFF" "cd \xC3 is \xED\xA0\x80x", a, 16);
    int nb = tokenize("abcd  is x", b, 16);
    CHECK(na == nb && memcmp(a, b, (size_t)na * 4) == 0);
    /* a truncated sequence must not swallow the ASCII after it */
    na = tokenize("\xE2\x82" "a", a, 16);
    CHECK(na == 1 && a[0] == 1037);
}

static void accents_case_and_cjk_follow_bert(void) {
    int32_t a[16], b[16];
    /* "Café" -> lower + NFD + strip Mn -> "cafe"; decomposed input gives the same */
    int na = tokenize("Caf\xC3\xA9", a, 16), nb = tokenize("cafe", b, 16);
    CHECK(na == nb && memcmp(a, b, (size_t)na * 4) == 0);
    na = tokenize("CAFE\xCC\x81", a, 16);
    CHECK(na == nb && memcmp(a, b, (size_t)na * 4) == 0);
    /* U+0130 lowers to i + U+0307, the mark is stripped: "İstanbul" == "istanbul" */
    na = tokenize("\xC4\xB0stanbul", a, 16), nb = tokenize("istanbul", b, 16);
    CHECK(na == nb && memcmp(a, b, (size_t)na * 4) == 0);
    /* a CJK ideograph is a word of its own: "A中B" == "a 中 b" */
    na = tokenize("A\xE4\xB8\xAD" "B", a, 16), nb = tokenize("a \xE4\xB8\xAD b", b, 16);
    CHECK(na == 3 && na == nb && memcmp(a, b, (size_t)na * 4) == 0);
    /* NBSP and ideographic space separate words; soft hyphen and ZWSP join them */
    na = tokenize("red\xC2\xA0" "car\xE3\x80\x80" "ok", a, 16), nb = tokenize("red car ok", b, 16);
    CHECK(na == nb && memcmp(a, b, (size_t)na * 4) == 0);
    na = tokenize("to\xC2\xAD" "day\xE2\x80\x8B", a, 16), nb = tokenize("today", b, 16);
    CHECK(na == nb && memcmp(a, b, (size_t)na * 4) == 0);
}

static void long_text_equals_its_questions_tokenized_one_by_one(void) {
    /* > 512 bytes takes the heap-scratch path; words never span the joining spaces */
    const char *qs[3] = {"What color is the \xC3\x9C-bahn?", "\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3 \xE4\xB8\xAD!",
                         "Is the man's t-shirt red?"};
    static char text[16384];
    static int32_t want[4096], got[4096];
    int nw = 0, pos = 0;
    for (int i = 0; i < 300; i++) {
        const char *q = qs[i % 3];
        pos += snprintf(text + pos, sizeof text - (size_t)pos, "%s ", q);
        nw += tokenize(q, want + nw, 4096 - nw);
    }
    CHECK(pos > 4000);
    int ng = tokenize(text, got, 4096);
    CHECK(ng == nw && memcmp(got, want, (size_t)nw * 4) == 0);
}

/* ---------------- vocab errors ---------------- */

static char g_dir[64];

static const char *write_vocab(const char *name, const char *content, size_t n) {
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    fwrite(content, 1, n, f);
    fclose(f);
    return path;
}
#define WRITE_VOCAB(name, lit) write_vocab(name, lit, sizeof(lit) - 1)
#define BASIC "[PAD]\n[UNK]\n[CLS]\n[SEP]\n"

static void vocab_duplicate_names_both_lines(void) {
    Tokenizer *t = NULL;
    Err err;
    const char *p = WRITE_VOCAB("dup.txt", BASIC "cat\ndog\ncat\n");
    CHECK(tok_load(&t, p, &err) == -1 && t == NULL);
    CHECK_STR_CONTAINS(err.msg, "dup.txt:7:");
    CHECK_STR_CONTAINS(err.msg, "\"cat\"");
    CHECK_STR_CONTAINS(err.msg, "line 5");
}

static void vocab_missing_file_is_named(void) {
    Tokenizer *t = NULL;
    Err err;
    CHECK(tok_load(&t, "ref/no_such_vocab.txt", &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "ref/no_such_vocab.txt");
    CHECK_STR_CONTAINS(err.msg, "No such file");
}

static void vocab_missing_cls_is_named(void) {
    Tokenizer *t = NULL;
    Err err;
    CHECK(tok_load(&t, WRITE_VOCAB("nocls.txt", "[PAD]\n[UNK]\n[SEP]\nx\n"), &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "missing special token [CLS]");
}

static void vocab_malformed_files_are_rejected_with_their_place(void) {
    Tokenizer *t = NULL;
    Err err;
    CHECK(tok_load(&t, WRITE_VOCAB("empty.txt", ""), &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "empty");
    CHECK(tok_load(&t, WRITE_VOCAB("blank.txt", BASIC "a\n\nb\n"), &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "blank.txt:6: empty line");
    CHECK(tok_load(&t, WRITE_VOCAB("utf8.txt", BASIC "ok\nab\xC3(\n"), &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "utf8.txt:6: invalid UTF-8 at column 3");
    CHECK(tok_load(&t, WRITE_VOCAB("bom.txt", "\xEF\xBB\xBF" BASIC), &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "byte-order mark");
    char big[1100 + sizeof BASIC];
    memcpy(big, BASIC, sizeof BASIC - 1);
    memset(big + sizeof BASIC - 1, 'z', 1100);
    CHECK(tok_load(&t, write_vocab("long.txt", big, sizeof big - 1), &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "long.txt:5: line of 1100 bytes");
}

static void vocab_with_crlf_lines_keeps_ids_by_line(void) {
    Tokenizer *t = NULL;
    Err err;
    int rc = tok_load(&t, WRITE_VOCAB("crlf.txt", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhi\r\n##s"), &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return;
    CHECK(tok_vocab_size(t) == 6 && tok_id(t, "hi") == 4 && tok_id(t, "##s") == 5);
    int32_t ids[4];
    CHECK(tok_tokenize(t, "HIS hi?", ids, 4) == 4);
    CHECK(ids[0] == 4 && ids[1] == 5 && ids[2] == 4 && ids[3] == 1); /* '?' unknown: [UNK] */
    tok_free(t);
}

/* ---------------- concurrency ---------------- */

typedef struct Job { const Case *cs; int n, bad; } Job;

static void *tokenize_all(void *arg) {
    Job *j = arg;
    int32_t got[1024];
    for (int rep = 0; rep < 3; rep++)
        for (int i = 0; i < j->n; i++) {
            int m = tok_tokenize_n(g_tok, j->cs[i].text, j->cs[i].len, got, 1024);
            if (m != j->cs[i].n_ids || memcmp(got, j->cs[i].ids, (size_t)m * 4) != 0) j->bad++;
        }
    return NULL;
}

static void concurrent_tokenize_on_one_tokenizer_matches_reference(void) {
    int n = 0;
    Case *cs = load_cases(CASES, &n);
    CHECK(cs != NULL);
    if (!cs) return;
    pthread_t th[4];
    Job jobs[4];
    for (int k = 0; k < 4; k++) {
        jobs[k] = (Job){cs, n, 0};
        pthread_create(&th[k], NULL, tokenize_all, &jobs[k]);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        CHECK(jobs[k].bad == 0);
    }
    free_cases(cs, n);
}

int main(int argc, char **argv) {
    Err err;
    if (tok_load(&g_tok, VOCAB, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (argc > 1) { /* compare one case file only */
        int n = 0, bad = compare_case_file(argv[1], &n);
        fprintf(stderr, "%s: %d cases, %d differ\n", argv[1], n, bad);
        tok_free(g_tok);
        return bad != 0;
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/vqa_tok_XXXXXX");
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "mkdtemp failed\n");
        return 1;
    }
    RUN(matches_hf_bert_tokenizer_on_every_reference_case);
    RUN(special_ids_are_the_uncased_vocab_lines);
    RUN(whats_the_mans_name_gives_vocab_line_ids);
    RUN(wordpiece_splits_longest_match_first_with_continuations);
    RUN(encode_wraps_in_cls_sep_pads_and_masks);
    RUN(encode_truncates_keeping_sep_last);
    RUN(tokenize_counts_beyond_cap_without_writing_past_it);
    RUN(word_of_101_chars_is_unk_but_100_is_split);
    RUN(invalid_utf8_bytes_are_dropped);
    RUN(accents_case_and_cjk_follow_bert);
    RUN(long_text_equals_its_questions_tokenized_one_by_one);
    RUN(vocab_duplicate_names_both_lines);
    RUN(vocab_missing_file_is_named);
    RUN(vocab_missing_cls_is_named);
    RUN(vocab_malformed_files_are_rejected_with_their_place);
    RUN(vocab_with_crlf_lines_keeps_ids_by_line);
    RUN(concurrent_tokenize_on_one_tokenizer_matches_reference);
    tok_free(g_tok);
    const char *names[] = {"dup.txt", "nocls.txt", "empty.txt", "blank.txt", "utf8.txt",
                           "bom.txt", "long.txt", "crlf.txt"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", g_dir, names[i]);
        unlink(p);
    }
    rmdir(g_dir);
    return test_summary();
}
