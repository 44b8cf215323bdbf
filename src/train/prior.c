/* prior.c: most frequent answer per question type (prior.h). Counting by sorting
 * (question_type, answer) pairs: O(n log n), no hash table to get wrong. */
#include "train/prior.h"

#include <stdlib.h>
#include <string.h>

#include "data/answers.h"
#include "data/vqa_metric.h"

typedef struct PriorEntry {
    char *qtype;
    char *answer;
} PriorEntry;

struct AnswerPrior {
    PriorEntry *types; /* sorted by qtype */
    int n_types;
    char *global;
};

typedef struct Pair {
    const char *qtype;
    char *answer;
} Pair;

static int cmp_pair(const void *a, const void *b) {
    const Pair *x = a, *y = b;
    int c = strcmp(x->qtype, y->qtype);
    return c ? c : strcmp(x->answer, y->answer);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The most frequent string of sorted[0..n) (ties: the first = smallest). */
static const char *mode_of(char *const *sorted, int64_t n) {
    const char *best = n ? sorted[0] : "";
    int64_t best_c = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && strcmp(sorted[j], sorted[i]) == 0) j++;
        if (j - i > best_c) {
            best_c = j - i;
            best = sorted[i];
        }
        i = j;
    }
    return best;
}

void prior_free(AnswerPrior *p) {
    if (!p) return;
    for (int i = 0; i < p->n_types; i++) {
        free(p->types[i].qtype);
        free(p->types[i].answer);
    }
    free(p->types);
    free(p->global);
    free(p);
}

int prior_build(AnswerPrior **out, const VqaDataset *train, Err *err) {
    *out = NULL;
    if (!train->has_answers || train->n == 0)
        return err_set(err, "answer prior: the training split has no answers");
    AnswerPrior *p = calloc(1, sizeof *p);
    Pair *pairs = calloc((size_t)train->n, sizeof *pairs);
    char **answers = calloc((size_t)train->n, sizeof *answers);
    int64_t n = 0;
    int rc = -1;
    if (!p || !pairs || !answers) {
        err_set(err, "answer prior: out of memory");
        goto done;
    }
    char buf[ANS_MAX_LEN];
    for (int64_t i = 0; i < train->n; i++) {
        const VqaSample *s = &train->samples[i];
        if (ans_candidate(s, buf, sizeof buf) != 0 || !buf[0]) continue;
        pairs[n].qtype = s->question_type ? s->question_type : "";
        if (!(pairs[n].answer = strdup(buf))) {
            err_set(err, "answer prior: out of memory");
            goto done;
        }
        answers[n] = pairs[n].answer;
        n++;
    }
    if (n == 0) {
        err_set(err, "answer prior: no training question has an answer");
        goto done;
    }
    qsort(answers, (size_t)n, sizeof *answers, cmp_str);
    if (!(p->global = strdup(mode_of(answers, n)))) goto oom;
    qsort(pairs, (size_t)n, sizeof *pairs, cmp_pair);
    int n_types = 0;
    for (int64_t i = 0; i < n; i++)
        if (i == 0 || strcmp(pairs[i].qtype, pairs[i - 1].qtype)) n_types++;
    if (!(p->types = calloc((size_t)n_types, sizeof *p->types))) goto oom;
    for (int64_t i = 0; i < n;) {
        int64_t j = i, best_c = 0;
        const char *best = pairs[i].answer;
        /* runs of equal answers inside the run of one question type */
        while (j < n && strcmp(pairs[j].qtype, pairs[i].qtype) == 0) {
            int64_t k = j;
            while (k < n && strcmp(pairs[k].qtype, pairs[i].qtype) == 0 && strcmp(pairs[k].answer, pairs[j].answer) == 0) k++;
            if (k - j > best_c) {
                best_c = k - j;
                best = pairs[j].answer;
            }
            j = k;
        }
        PriorEntry *e = &p->types[p->n_types];
        e->qtype = strdup(pairs[i].qtype);
        e->answer = strdup(best);
        p->n_types++;
        if (!e->qtype || !e->answer) goto oom;
        i = j;
    }
    rc = 0;
    goto done;
oom:
    err_set(err, "answer prior: out of memory");
done:
    for (int64_t i = 0; i < n; i++) free(pairs[i].answer);
    free(pairs);
    free(answers);
    if (rc == 0)
        *out = p;
    else
        prior_free(p);
    return rc;
}

static int cmp_entry(const void *key, const void *e) {
    return strcmp((const char *)key, ((const PriorEntry *)e)->qtype);
}

const char *prior_answer(const AnswerPrior *p, const char *question_type) {
    const PriorEntry *e = bsearch(question_type ? question_type : "", p->types, (size_t)p->n_types,
                                  sizeof *p->types, cmp_entry);
    return e ? e->answer : p->global;
}

int prior_n_types(const AnswerPrior *p) { return p->n_types; }

void prior_predict(const AnswerPrior *p, const VqaDataset *ds, const char **preds) {
    for (int64_t i = 0; i < ds->n; i++) preds[i] = prior_answer(p, ds->samples[i].question_type);
}

int prior_accuracy(const AnswerPrior *p, const VqaDataset *ds, double *accuracy, Err *err) {
    const char **preds = calloc((size_t)(ds->n ? ds->n : 1), sizeof *preds);
    if (!preds) return err_set(err, "answer prior: out of memory");
    prior_predict(p, ds, preds);
    VqaAccuracy acc;
    int rc = vqa_metric_eval(&acc, ds, preds, err);
    free(preds);
    if (rc != 0) return err_prefix(err, "answer prior");
    *accuracy = acc.overall;
    vqa_metric_free(&acc);
    return 0;
}
