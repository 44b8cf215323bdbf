/* bench/tokenizer.c: WordPiece tokenizer throughput (questions/s on one core) on the
 * reference questions of tests/ref/tokenizer_cases.txt, against a same-run floor: a plain
 * ASCII whitespace split with one hash lookup per word (what any tokenizer must at least
 * do), and -- when python3 with transformers is present -- Hugging Face's Python
 * BertTokenizer and its Rust "fast" tokenizer on the same questions (tools/bench_tokenizer_hf.py).
 *
 *   bench_tokenizer [REPO_ROOT]      (default: $VQA_SRC or .) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"
#include "util/log.h"

typedef struct Q { char *text; size_t len; } Q;

static Q *load(const char *path, int ascii_short, int *n_out) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    int cap = 4096, n = 0;
    Q *qs = malloc((size_t)cap * sizeof *qs);
    char *line = NULL;
    size_t lcap = 0;
    int lineno = 0;
    while (getline(&line, &lcap, f) > 0) {
        if (++lineno == 1) continue;
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = '\0';
        /* unescape \xHH */
        char *o = line;
        for (char *s = line; *s; s++) {
            unsigned v;
            if (s[0] == '\\' && s[1] == 'x' && sscanf(s + 2, "%2x", &v) == 1) {
                *o++ = (char)v;
                s += 3;
            } else {
                *o++ = *s;
            }
        }
        size_t len = (size_t)(o - line);
        int ascii = 1;
        for (size_t i = 0; i < len; i++) ascii &= (unsigned char)line[i] < 127 && line[i] >= 32;
        if (ascii_short && (!ascii || len > 80 || len == 0)) continue;
        if (n == cap) qs = realloc(qs, (size_t)(cap *= 2) * sizeof *qs);
        qs[n].text = malloc(len + 1);
        memcpy(qs[n].text, line, len);
        qs[n].text[len] = '\0';
        qs[n++].len = len;
    }
    free(line);
    fclose(f);
    *n_out = n;
    return qs;
}

/* The floor: split on ASCII spaces, look each lower-cased word up once. */
static int floor_split(const Tokenizer *t, const char *s, size_t len, int32_t *ids, int cap) {
    char w[128];
    int n = 0, k = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? s[i] : ' ';
        if (c == ' ') {
            if (k) {
                w[k] = '\0';
                int id = tok_id(t, w);
                if (n < cap) ids[n] = id;
                n++;
                k = 0;
            }
        } else if (k < 127) {
            w[k++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
    }
    return n;
}

typedef int (*tok_fn)(const Tokenizer *, const char *, size_t, int32_t *, int);

static double rate(tok_fn fn, const Tokenizer *t, const Q *qs, int n, long *sink) {
    int32_t ids[512];
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = time_now();
        long iters = 0;
        do {
            for (int i = 0; i < n; i++) *sink += fn(t, qs[i].text, qs[i].len, ids, 512);
            iters += n;
        } while (time_now() - t0 < 0.2);
        double r = (double)iters / (time_now() - t0);
        if (r > best) best = r;
    }
    return best;
}

static void machine(char *out, size_t cap) {
    snprintf(out, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) snprintf(out, cap, "%s", c + 2);
            out[strcspn(out, "\n")] = '\0';
            break;
        }
    fclose(f);
}

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : (getenv("VQA_SRC") ? getenv("VQA_SRC") : ".");
    char vocab[1024], cases[1024], cpu[160];
    snprintf(vocab, sizeof vocab, "%s/tests/ref/bert_uncased_vocab.txt", root);
    snprintf(cases, sizeof cases, "%s/tests/ref/tokenizer_cases.txt", root);
    Tokenizer *t;
    Err err;
    if (tok_load(&t, vocab, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int n_short = 0, n_all = 0;
    Q *qs_short = load(cases, 1, &n_short), *qs_all = load(cases, 0, &n_all);
    if (!qs_short || !qs_all) {
        fprintf(stderr, "%s: cannot read\n", cases);
        return 1;
    }
    long sink = 0;
    double ours_s = rate(tok_tokenize_n, t, qs_short, n_short, &sink);
    double floor_s = rate(floor_split, t, qs_short, n_short, &sink);
    double ours_a = rate(tok_tokenize_n, t, qs_all, n_all, &sink);
    double floor_a = rate(floor_split, t, qs_all, n_all, &sink);
    machine(cpu, sizeof cpu);
    printf("tokenizer throughput, 1 thread, machine: %s\n", cpu);
    printf("%-34s %7s %14s %14s %7s\n", "what", "n", "ours q/s", "floor q/s", "ratio");
    printf("%-34s %7d %14.0f %14.0f %7.2f\n", "short ASCII questions (<=80 B)", n_short, ours_s,
           floor_s, ours_s / floor_s);
    printf("%-34s %7d %14.0f %14.0f %7.2f\n", "all reference cases (adversarial)", n_all, ours_a,
           floor_a, ours_a / floor_a);
    printf("(floor = ASCII space split + one vocab lookup per word; sink %ld)\n", sink & 1);
    fflush(stdout);
    /* peers, same run, when python3 + transformers are installed */
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "python3 '%s/tools/bench_tokenizer_hf.py' '%s' %.0f %.0f 2>/dev/null",
             root, cases, ours_s, ours_a);
    if (system(cmd) != 0) printf("HF peers: n/a (python3 with transformers not found)\n");
    for (int i = 0; i < n_short; i++) free(qs_short[i].text);
    for (int i = 0; i < n_all; i++) free(qs_all[i].text);
    free(qs_short);
    free(qs_all);
    tok_free(t);
    return 0;
}
