/* vqa_metric.c: the official VQA accuracy and the results file (see vqa_metric.h). */
#include "data/vqa_metric.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/answers.h"
#include "data/strpool.h"
#include "io/atomic.h"
#include "io/json_stream.h"

/* Longest answer compared in full; longer ones are cut (no real answer comes close). */
#define METRIC_MAX_LEN 1024

double vqa_metric_question(const char *const *answers, int n, const char *prediction) {
    if (n <= 0) return 0.0;
    static const int cap = METRIC_MAX_LEN;
    char (*a)[METRIC_MAX_LEN] = malloc((size_t)(n + 2) * METRIC_MAX_LEN);
    if (!a) return 0.0;
    char *pred = a[n], *tmp = a[n + 1];
    ans_clean(prediction, pred, cap);
    int same = 1;
    for (int i = 0; i < n; i++) {
        ans_clean(answers[i], a[i], cap);
        if (i && strcmp(a[i], a[0]) != 0) same = 0;
    }
    if (!same) {  /* only when the humans disagree does the tool normalize */
        for (int i = 0; i < n; i++) {
            ans_normalize(a[i], tmp, cap);
            memcpy(a[i], tmp, cap);
        }
        ans_normalize(pred, tmp, cap);
        memcpy(pred, tmp, cap);
    }
    int match = 0;
    for (int i = 0; i < n; i++) match += strcmp(a[i], pred) == 0;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        int others = match - (strcmp(a[i], pred) == 0);
        double acc = (double)others / 3.0;
        sum += acc < 1.0 ? acc : 1.0;
    }
    free(a);
    return sum / n;
}

double vqa_metric_round2(double x) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.2f", x);  /* correctly rounded, as Python's round() */
    return strtod(buf, NULL);
}

/* ---- groups ---- */

typedef struct Groups {
    VqaAccGroup *g;
    double *sum;
    int n, cap;
} Groups;

static int group_add(Groups *G, const char *name, double acc) {
    if (!name || !name[0]) name = "(none)";
    int i = 0;
    /* names are interned by the dataset: pointer equality is the common hit */
    while (i < G->n && G->g[i].name != name && strcmp(G->g[i].name, name) != 0) i++;
    if (i == G->n) {
        if (G->n == G->cap) {
            int nc = G->cap ? G->cap * 2 : 16;
            VqaAccGroup *ng = realloc(G->g, (size_t)nc * sizeof *ng);
            if (ng) G->g = ng;
            double *ns = realloc(G->sum, (size_t)nc * sizeof *ns);
            if (ns) G->sum = ns;
            if (!ng || !ns) return -1;
            G->cap = nc;
        }
        G->g[i] = (VqaAccGroup){name, 0, 0.0};
        G->sum[i] = 0.0;
        G->n++;
    }
    G->g[i].n++;
    G->sum[i] += acc;
    return 0;
}

static int group_cmp(const void *a, const void *b) {
    return strcmp(((const VqaAccGroup *)a)->name, ((const VqaAccGroup *)b)->name);
}

static void groups_finish(Groups *G) {
    for (int i = 0; i < G->n; i++) G->g[i].accuracy = 100.0 * G->sum[i] / (double)G->g[i].n;
    if (G->n) qsort(G->g, (size_t)G->n, sizeof *G->g, group_cmp);
    free(G->sum);
    G->sum = NULL;
}

/* Copies the group names out of the dataset's pool, so acc outlives ds. */
static int own_names(VqaAccuracy *acc) {
    size_t total = 0;
    for (int i = 0; i < acc->n_answer_types; i++) total += strlen(acc->answer_types[i].name) + 1;
    for (int i = 0; i < acc->n_question_types; i++) total += strlen(acc->question_types[i].name) + 1;
    if (!(acc->names = malloc(total + 1))) return -1;
    char *p = acc->names;
    VqaAccGroup *lists[2] = {acc->answer_types, acc->question_types};
    int counts[2] = {acc->n_answer_types, acc->n_question_types};
    for (int l = 0; l < 2; l++) {
        for (int i = 0; i < counts[l]; i++) {
            size_t n = strlen(lists[l][i].name) + 1;
            memcpy(p, lists[l][i].name, n);
            lists[l][i].name = p;
            p += n;
        }
    }
    return 0;
}

void vqa_metric_free(VqaAccuracy *acc) {
    if (!acc) return;
    free(acc->answer_types);
    free(acc->question_types);
    free(acc->per_question);
    free(acc->names);
    memset(acc, 0, sizeof *acc);
}

int vqa_metric_eval(VqaAccuracy *acc, const VqaDataset *ds, const char *const *preds, Err *err) {
    memset(acc, 0, sizeof *acc);
    if (!ds->has_answers) return err_set(err, "VQA accuracy: the split has no human answers to score against");
    Groups at = {0}, qt = {0};
    acc->per_question = malloc(((size_t)ds->n + 1) * sizeof *acc->per_question);
    if (!acc->per_question) return err_set(err, "VQA accuracy: out of memory");
    double sum = 0.0;
    for (int64_t i = 0; i < ds->n; i++) {
        const VqaSample *s = &ds->samples[i];
        acc->per_question[i] = NAN;
        if (s->n_answers <= 0) continue;
        if (!preds[i]) {
            free(at.g), free(at.sum), free(qt.g), free(qt.sum);
            vqa_metric_free(acc);
            return err_set(err, "VQA accuracy: no prediction for question_id %lld", (long long)s->question_id);
        }
        double a = vqa_metric_question(s->answers, s->n_answers, preds[i]);
        acc->per_question[i] = a;
        sum += a;
        acc->n++;
        if (group_add(&at, s->answer_type_name, a) || group_add(&qt, s->question_type, a)) {
            free(at.g), free(at.sum), free(qt.g), free(qt.sum);
            vqa_metric_free(acc);
            return err_set(err, "VQA accuracy: out of memory");
        }
    }
    if (!acc->n) {
        vqa_metric_free(acc);
        return err_set(err, "VQA accuracy: no question has human answers");
    }
    acc->overall = 100.0 * sum / (double)acc->n;
    groups_finish(&at);
    groups_finish(&qt);
    acc->answer_types = at.g, acc->n_answer_types = at.n;
    acc->question_types = qt.g, acc->n_question_types = qt.n;
    if (own_names(acc)) {
        vqa_metric_free(acc);
        return err_set(err, "VQA accuracy: out of memory");
    }
    return 0;
}

void vqa_metric_print(const VqaAccuracy *acc, FILE *f, int question_types) {
    fprintf(f, "Overall Accuracy is: %.2f\n\n", vqa_metric_round2(acc->overall));
    if (question_types) {
        fprintf(f, "Per Question Type Accuracy is the following:\n");
        for (int i = 0; i < acc->n_question_types; i++)
            fprintf(f, "%s : %.2f\n", acc->question_types[i].name, vqa_metric_round2(acc->question_types[i].accuracy));
        fprintf(f, "\n");
    }
    fprintf(f, "Per Answer Type Accuracy is the following:\n");
    for (int i = 0; i < acc->n_answer_types; i++)
        fprintf(f, "%s : %.2f\n", acc->answer_types[i].name, vqa_metric_round2(acc->answer_types[i].accuracy));
}

static json_t *groups_json(const VqaAccGroup *g, int n) {
    json_t *o = json_object();
    for (int i = 0; o && i < n; i++) json_object_set_new(o, g[i].name, json_real(vqa_metric_round2(g[i].accuracy)));
    return o;
}

int vqa_metric_write_json(const VqaAccuracy *acc, const char *path, Err *err) {
    json_t *o = json_object();
    if (!o) return err_set(err, "%s: out of memory", path);
    json_object_set_new(o, "overall", json_real(vqa_metric_round2(acc->overall)));
    json_object_set_new(o, "perAnswerType", groups_json(acc->answer_types, acc->n_answer_types));
    json_object_set_new(o, "perQuestionType", groups_json(acc->question_types, acc->n_question_types));
    json_object_set_new(o, "n_questions", json_integer((json_int_t)acc->n));
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(o);
    if (!text) return err_set(err, "%s: out of memory", path);
    size_t n = strlen(text);
    text[n] = '\n';  /* json_dumps leaves room only for the NUL: rewrite it as a newline */
    int rc = atomic_write_file(path, text, n + 1, err);
    free(text);
    return rc;
}

/* ---- results files ---- */

void vqa_metric_results_free(VqaResults *r) {
    if (!r) return;
    free(r->answers);
    sp_free(r->pool);
    memset(r, 0, sizeof *r);
}

/* question_id -> sample index, sorted pairs for bsearch (built once per read). */
typedef struct IdIdx {
    int64_t id, idx;
} IdIdx;

static int ididx_cmp(const void *a, const void *b) {
    int64_t x = ((const IdIdx *)a)->id, y = ((const IdIdx *)b)->id;
    return (x > y) - (x < y);
}

int vqa_metric_read_results(VqaResults *r, const char *path, const VqaDataset *ds, Err *err) {
    memset(r, 0, sizeof *r);
    IdIdx *ids = malloc(((size_t)ds->n + 1) * sizeof *ids);
    size_t *where = malloc(((size_t)ds->n + 1) * sizeof *where);
    r->answers = calloc((size_t)ds->n + 1, sizeof *r->answers);
    r->pool = sp_new();
    r->n = ds->n;
    JsonStream *s = NULL;
    int rc = -1;
    if (!ids || !where || !r->answers || !r->pool) {
        err_set(err, "%s: out of memory", path);
        goto out;
    }
    for (int64_t i = 0; i < ds->n; i++) ids[i] = (IdIdx){ds->samples[i].question_id, i};
    qsort(ids, (size_t)ds->n, sizeof *ids, ididx_cmp);
    if (js_open(&s, path, NULL, err)) goto out;
    json_t *el;
    int more;
    char w[1300];
    while ((more = js_next(s, &el, err)) == 1) {
        /* the position is formatted only for a message: line:col counts from the file
         * start, so doing it for every result made reading quadratic in the file size */
        size_t off = js_offset(s);
#define W (js_where(s, off, w, sizeof w), w)
        long long k = (long long)js_index(s);
        json_t *q = json_is_object(el) ? json_object_get(el, "question_id") : NULL;
        json_t *a = json_is_object(el) ? json_object_get(el, "answer") : NULL;
        int bad = 1;
        if (!json_is_object(el))
            err_set(err, "%s: result %lld must be an object {\"question_id\": N, \"answer\": \"...\"}", W, k);
        else if (!q)
            err_set(err, "%s: result %lld has no key \"question_id\"", W, k);
        else if (!json_is_integer(q))
            err_set(err, "%s: result %lld: \"question_id\" must be an integer", W, k);
        else if (!a)
            err_set(err, "%s: result %lld has no key \"answer\"", W, k);
        else if (!json_is_string(a))
            err_set(err, "%s: result %lld: \"answer\" must be a string", W, k);
        else
            bad = 0;
        if (!bad) {
            IdIdx key = {(int64_t)json_integer_value(q), 0};
            IdIdx *hit = bsearch(&key, ids, (size_t)ds->n, sizeof *ids, ididx_cmp);
            if (!hit) {
                err_set(err, "%s: result %lld: question_id %lld is not among the %lld questions being scored", W,
                        k, (long long)key.id, (long long)ds->n);
                bad = 1;
            } else if (r->answers[hit->idx]) {
                char w0[1300];
                js_where(s, where[hit->idx], w0, sizeof w0);
                err_set(err, "%s: result %lld: question_id %lld given twice (first at %s)", W, k,
                        (long long)key.id, w0);
                bad = 1;
            } else if (!(r->answers[hit->idx] = sp_intern(r->pool, json_string_value(a), json_string_length(a)))) {
                err_set(err, "%s: out of memory", path);
                bad = 1;
            } else {
                where[hit->idx] = js_offset(s);
            }
        }
#undef W
        json_decref(el);
        if (bad) goto out;
    }
    if (more < 0) goto out;
    int64_t missing = 0, first = -1;
    for (int64_t i = 0; i < ds->n; i++)
        if (!r->answers[i] && missing++ == 0) first = i;
    if (missing) {
        err_set(err, "%s: no result for %lld of the %lld questions, the first question_id %lld", path,
                (long long)missing, (long long)ds->n, (long long)ds->samples[first].question_id);
        goto out;
    }
    rc = 0;
out:
    js_close(s);
    free(ids);
    free(where);
    if (rc) vqa_metric_results_free(r);
    return rc;
}

int vqa_metric_write_results(const char *path, const VqaDataset *ds, const char *const *preds, Err *err) {
    AtomicFile af;
    if (atomic_open(&af, path, err)) return -1;
    int first = 1;
    fputs("[", af.fp);
    for (int64_t i = 0; i < ds->n; i++) {
        if (!preds[i]) continue;
        json_t *o = json_object();
        json_t *a = json_string(preds[i]);
        if (!o || !a) {
            json_decref(o);
            atomic_abort(&af);
            if (!a) return err_set(err, "%s: the prediction for question_id %lld is not valid UTF-8", path,
                                   (long long)ds->samples[i].question_id);
            return err_set(err, "%s: out of memory", path);
        }
        json_object_set_new(o, "question_id", json_integer((json_int_t)ds->samples[i].question_id));
        json_object_set_new(o, "answer", a);
        char *t = json_dumps(o, JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!t) {
            atomic_abort(&af);
            return err_set(err, "%s: out of memory", path);
        }
        fprintf(af.fp, "%s\n%s", first ? "" : ",", t);
        free(t);
        first = 0;
    }
    fputs("\n]\n", af.fp);
    if (ferror(af.fp)) {
        atomic_abort(&af);
        return err_set(err, "%s: write error", path);
    }
    return atomic_commit(&af, err);
}
