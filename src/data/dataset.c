/* dataset.c: reading VQA v2 and VizWiz splits into a VqaDataset (see dataset.h).
 *
 * Memory: the big files are streamed element by element (io/json_stream.c); each
 * element's jansson tree lives only while its fields are copied. Strings go to one
 * StrPool and are interned (answers like "yes", question types, repeated questions,
 * image paths shared by several questions are stored once). */
#include "data/dataset.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/strpool.h"
#include "io/json_stream.h"
#include "util/idmap.h"

/* ---- question_id -> sample index (util/idmap.h; the ids are sample indices) ---- */

typedef struct QidKey {
    const VqaDataset *ds;
    int64_t qid;
} QidKey;

static int same_qid(const void *ctx, int64_t id) {
    const QidKey *k = ctx;
    return k->ds->samples[id].question_id == k->qid;
}

/* ---- loading context ---- */

typedef struct Loader {
    VqaDataset *ds;
    int64_t cap;
    Err *err;
    char where[1400];  /* "file:line:col (byte N), element i" of the element being read */
    /* The element's position, formatted into `where` only when a message needs it:
     * line:col counts lines from the file start, so formatting it per element made
     * loading quadratic in the file size. */
    const JsonStream *w_stream;
    size_t w_off;
    const char *w_what;
    long long w_index;
} Loader;

static const char *where_of(Loader *L) {
    if (L->w_stream) {
        char w[1200];
        js_where(L->w_stream, L->w_off, w, sizeof w);
        snprintf(L->where, sizeof L->where, "%s, %s %lld", w, L->w_what, L->w_index);
        L->w_stream = NULL;
    }
    return L->where;
}

static int lfail(Loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lfail(Loader *L, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(L->err, "%s: %s", where_of(L), msg);
}

static void set_where_stream(Loader *L, const JsonStream *s, const char *what) {
    L->w_stream = s;
    L->w_off = js_offset(s);
    L->w_what = what;
    L->w_index = (long long)js_index(s);
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Required (or, with opt, optional: returns 1 when absent) integer member. */
static int get_int(Loader *L, json_t *o, const char *key, int opt, int64_t *v) {
    json_t *x = json_object_get(o, key);
    if (!x) return opt ? 1 : lfail(L, "missing key \"%s\"", key);
    if (!json_is_integer(x)) return lfail(L, "key \"%s\" must be an integer, found %s", key, type_name(x));
    *v = (int64_t)json_integer_value(x);
    return 0;
}

/* String member interned into the pool; optional ones give 1 and *v = NULL when absent. */
static int get_str(Loader *L, json_t *o, const char *key, int opt, const char **v) {
    *v = NULL;
    json_t *x = json_object_get(o, key);
    if (!x) return opt ? 1 : lfail(L, "missing key \"%s\"", key);
    if (!json_is_string(x)) return lfail(L, "key \"%s\" must be a string, found %s", key, type_name(x));
    if (!(*v = sp_intern(L->ds->pool, json_string_value(x), json_string_length(x))))
        return lfail(L, "out of memory");
    return 0;
}

static VqaSample *new_sample(Loader *L) {
    VqaDataset *ds = L->ds;
    if (ds->n == L->cap) {
        int64_t nc = L->cap ? L->cap * 2 : 1024;
        VqaSample *ns = realloc(ds->samples, (size_t)nc * sizeof *ns);
        if (!ns) {
            lfail(L, "out of memory (%lld samples)", (long long)ds->n);
            return NULL;
        }
        ds->samples = ns;
        L->cap = nc;
    }
    VqaSample *s = &ds->samples[ds->n++];
    memset(s, 0, sizeof *s);
    s->question_type = "";
    s->answer_type_name = "";
    s->answer_type = AT_UNKNOWN;
    return s;
}

static AnswerType answer_type_of(const char *t) {
    if (!strcmp(t, "yes/no")) return AT_YES_NO;
    if (!strcmp(t, "number")) return AT_NUMBER;
    if (!strcmp(t, "other")) return AT_OTHER;
    if (!strcmp(t, "unanswerable")) return AT_UNANSWERABLE;
    return AT_UNKNOWN;
}

static void warn(Loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(Loader *L, const char *fmt, ...) {
    if (L->ds->n_warnings++ == 0) {
        char msg[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(L->ds->warning, sizeof L->ds->warning, "%s: %s", where_of(L), msg);
    }
}

/* "answers": list of {answer: string, ...}; fills s->answers / n_answers. */
static int read_answers(Loader *L, json_t *o, VqaSample *s, int required) {
    json_t *a = json_object_get(o, "answers");
    if (!a) return required ? lfail(L, "missing key \"answers\"") : 1;
    if (!json_is_array(a)) return lfail(L, "key \"answers\" must be a list, found %s", type_name(a));
    size_t n = json_array_size(a);
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(a, i);
        if (!json_is_object(r))
            return lfail(L, "answers[%zu] must be an object, found %s", i, type_name(r));
        json_t *t = json_object_get(r, "answer");
        if (!t) return lfail(L, "answers[%zu]: missing key \"answer\"", i);
        if (!json_is_string(t))
            return lfail(L, "answers[%zu]: key \"answer\" must be a string, found %s", i, type_name(t));
        if (i >= VQA_N_HUMAN_ANSWERS) continue;
        const char *v = sp_intern(L->ds->pool, json_string_value(t), json_string_length(t));
        if (!v) return lfail(L, "out of memory");
        s->answers[i] = v;
    }
    s->n_answers = n > VQA_N_HUMAN_ANSWERS ? VQA_N_HUMAN_ANSWERS : (int)n;
    if (n != VQA_N_HUMAN_ANSWERS)
        warn(L, "%zu answers instead of %d%s", n, VQA_N_HUMAN_ANSWERS,
             n > VQA_N_HUMAN_ANSWERS ? " (the first 10 are kept)" : "");
    return 0;
}

static int read_answer_type(Loader *L, json_t *o, VqaSample *s) {
    const char *t;
    int r = get_str(L, o, "answer_type", 1, &t);
    if (r < 0) return -1;
    if (r == 0) {
        s->answer_type_name = t;
        s->answer_type = answer_type_of(t);
    }
    return 0;
}

/* ---- VQA v2 ---- */

/* data_subtype from the questions file, else from a COCO_<x>_<12 digits>.jpg name. */
static int coco_subtype(const char *questions, const char *images, char *out, size_t cap, Err *err) {
    json_t *v;
    int r = js_get_member(questions, "data_subtype", &v, err);
    if (r < 0) return -1;
    if (r == 1) {
        int ok = json_is_string(v);
        if (ok) snprintf(out, cap, "%s", json_string_value(v));
        json_decref(v);
        if (!ok) return err_set(err, "%s: \"data_subtype\" must be a string (e.g. \"train2014\")", questions);
        return 0;
    }
    DIR *d = images && images[0] ? opendir(images) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *n = e->d_name;
        size_t l = strlen(n);
        if (l < 5 + 1 + 1 + 12 + 4 || strncmp(n, "COCO_", 5) || strcmp(n + l - 4, ".jpg")) continue;
        const char *digits = n + l - 16;
        int ok = digits[-1] == '_';
        for (int i = 0; i < 12 && ok; i++) ok = digits[i] >= '0' && digits[i] <= '9';
        if (!ok || digits - 1 - (n + 5) < 1) continue;
        snprintf(out, cap, "%.*s", (int)(digits - 1 - (n + 5)), n + 5);
        closedir(d);
        return 0;
    }
    if (d) closedir(d);
    return err_set(err, "%s: no \"data_subtype\" member, and no COCO_<split>_<id>.jpg file in the images "
                        "folder \"%s\" to take the split name from",
                   questions, images ? images : "");
}

static int load_vqa2_questions(Loader *L, const char *path, const char *images, const char *subtype,
                               IdMap *ids) {
    JsonStream *s;
    if (js_open(&s, path, "questions", L->err)) return -1;
    json_t *el;
    int rc;
    char buf[4096];
    const char *ext = "jpg";
    int ext_decided = 0;
    while ((rc = js_next(s, &el, L->err)) == 1) {
        set_where_stream(L, s, "question");
        VqaSample *q = NULL;
        int64_t prev;
        if (!json_is_object(el)) {
            rc = lfail(L, "each question must be an object, found %s", type_name(el));
        } else if (!(q = new_sample(L)) || get_int(L, el, "question_id", 0, &q->question_id) ||
                   get_int(L, el, "image_id", 0, &q->image_id) || get_str(L, el, "question", 0, &q->question)) {
            rc = -1;
        } else {
            QidKey k = {L->ds, q->question_id};
            int r = idmap_insert(ids, idmap_hash_int(q->question_id), L->ds->n - 1, same_qid, &k, &prev);
            if (r < 0) rc = lfail(L, "out of memory");
            if (r > 0)
                rc = lfail(L, "question_id %lld repeats question %lld", (long long)q->question_id, (long long)prev);
            int l = snprintf(buf, sizeof buf, "%s%sCOCO_%s_%012lld.%s", images ? images : "",
                             images && images[0] ? "/" : "", subtype, (long long)q->image_id, ext);
            /* COCO ships JPEGs; vqa_synth writes PNGs. Decide once, on the first question:
             * if its .jpg is missing but a .png is there, the whole split uses .png. */
            if (!ext_decided && l > 4 && (size_t)l < sizeof buf) {
                ext_decided = 1;
                if (access(buf, F_OK) != 0) {
                    memcpy(buf + l - 3, "png", 3);
                    if (access(buf, F_OK) == 0) ext = "png";
                    else memcpy(buf + l - 3, "jpg", 3);
                }
            }
            if (rc >= 0 && !(q->image_path = sp_intern(L->ds->pool, buf, (size_t)l)))
                rc = lfail(L, "out of memory");
        }
        json_decref(el);
        if (rc < 0) break;
    }
    js_close(s);
    return rc < 0 ? -1 : 0;
}

static int load_vqa2_annotations(Loader *L, const char *path, const char *questions, IdMap *ids) {
    JsonStream *s;
    if (js_open(&s, path, "annotations", L->err)) return -1;
    VqaDataset *ds = L->ds;
    unsigned char *seen = calloc((size_t)ds->n + 1, 1);
    if (!seen) {
        js_close(s);
        return err_set(L->err, "%s: out of memory", path);
    }
    json_t *el;
    int rc;
    while ((rc = js_next(s, &el, L->err)) == 1) {
        set_where_stream(L, s, "annotation");
        int64_t qid, iid, idx = -1;
        VqaSample *q = NULL;
        if (!json_is_object(el)) {
            rc = lfail(L, "each annotation must be an object, found %s", type_name(el));
        } else if (get_int(L, el, "question_id", 0, &qid)) {
            rc = -1;
        } else if ((idx = idmap_find(ids, idmap_hash_int(qid), same_qid, &(QidKey){L->ds, qid})) < 0) {
            rc = lfail(L, "question_id %lld has no question in %s", (long long)qid, questions);
        } else if (seen[idx]) {
            rc = lfail(L, "a second annotation for question_id %lld", (long long)qid);
        } else {
            q = &ds->samples[idx];
            seen[idx] = 1;
            int r = get_int(L, el, "image_id", 1, &iid);
            if (r < 0) {
                rc = -1;
            } else if (r == 0 && iid != q->image_id) {
                rc = lfail(L, "question_id %lld has image_id %lld here but %lld in %s", (long long)qid,
                           (long long)iid, (long long)q->image_id, questions);
            } else if (get_str(L, el, "question_type", 1, &q->question_type) < 0 ||
                       read_answer_type(L, el, q) || read_answers(L, el, q, 1) ||
                       get_str(L, el, "multiple_choice_answer", 1, &q->mc_answer) < 0) {
                rc = -1;
            }
            if (!q->question_type) q->question_type = "";
        }
        json_decref(el);
        if (rc < 0) break;
    }
    js_close(s);
    if (rc >= 0) {
        int64_t missing = 0, first = -1;
        for (int64_t i = 0; i < ds->n; i++)
            if (!seen[i] && missing++ == 0) first = i;
        if (missing)
            rc = err_set(L->err, "%s: %lld question(s) of %s have no annotation, the first question_id %lld "
                                 "(give no annotations file for a test split)",
                         path, (long long)missing, questions, (long long)ds->samples[first].question_id);
    }
    free(seen);
    return rc < 0 ? -1 : 0;
}

static int load_vqa2(Loader *L, const char *questions, const char *annotations, const char *images) {
    char subtype[256];
    if (coco_subtype(questions, images, subtype, sizeof subtype, L->err)) return -1;
    IdMap ids = {0};
    int rc = load_vqa2_questions(L, questions, images, subtype, &ids);
    if (!rc && annotations) {
        rc = load_vqa2_annotations(L, annotations, questions, &ids);
        L->ds->has_answers = 1;
    }
    idmap_free(&ids);
    return rc;
}

/* ---- VizWiz ---- */

/* One row {image, question, answers?, answer_type?, ...} as sample number ds->n. */
static int vizwiz_row(Loader *L, json_t *el, const char *images) {
    if (!json_is_object(el)) return lfail(L, "each entry must be an object, found %s", type_name(el));
    VqaSample *s = new_sample(L);
    if (!s) return -1;
    s->question_id = s->image_id = L->ds->n - 1;
    const char *image;
    if (get_str(L, el, "image", 0, &image) || get_str(L, el, "question", 0, &s->question)) return -1;
    char buf[4096];
    int l = snprintf(buf, sizeof buf, "%s%s%s", images ? images : "", images && images[0] ? "/" : "", image);
    if (l >= (int)sizeof buf) return lfail(L, "image name too long");
    if (!(s->image_path = sp_intern(L->ds->pool, buf, (size_t)l))) return lfail(L, "out of memory");
    int r = read_answers(L, el, s, 0);
    if (r < 0) return -1;
    int has = r == 0;
    if (L->ds->n == 1) {
        L->ds->has_answers = has;
    } else if (has != L->ds->has_answers) {
        return lfail(L, "%s \"answers\" while the first entry %s", has ? "has" : "has no",
                     has ? "has none (test split)" : "has them");
    }
    return read_answer_type(L, el, s);
}

static int load_vizwiz_list(Loader *L, const char *path, const char *images) {
    JsonStream *s;
    if (js_open(&s, path, NULL, L->err)) return -1;
    json_t *el;
    int rc;
    while ((rc = js_next(s, &el, L->err)) == 1) {
        set_where_stream(L, s, "entry");
        rc = vizwiz_row(L, el, images);
        json_decref(el);
        if (rc < 0) break;
    }
    js_close(s);
    return rc < 0 ? -1 : 0;
}

typedef struct RowKey {
    int64_t index;
    const char *key;
} RowKey;

static int rowkey_cmp(const void *a, const void *b) {
    int64_t x = ((const RowKey *)a)->index, y = ((const RowKey *)b)->index;
    return (x > y) - (x < y);
}

/* pandas column-JSON: {"image": {"0": ..}, "question": {"0": ..}, "answers": {...}, ...}.
 * Small (VizWiz train is ~20k rows): loaded whole, then each row is rebuilt as an
 * object and read like a list entry. */
static int load_vizwiz_columns(Loader *L, const char *path, const char *images) {
    json_t *root;
    if (js_load_file(&root, path, L->err)) return -1;
    int rc = 0;
    RowKey *keys = NULL;
    json_t *img = json_object_get(root, "image");
    L->w_stream = NULL;
    snprintf(L->where, sizeof L->where, "%s (column-JSON)", path);
    if (!img) {
        rc = lfail(L, "no column \"image\" (expected {\"image\": {\"0\": ...}, \"question\": {...}, ...})");
        goto out;
    }
    if (!json_is_object(img)) {
        rc = lfail(L, "column \"image\" must be an object of rows {\"0\": ...}, found %s", type_name(img));
        goto out;
    }
    const char *k;
    json_t *col;
    json_object_foreach(root, k, col) {
        if (!json_is_object(col)) {
            rc = lfail(L, "column \"%s\" must be an object of rows {\"0\": ...}, found %s", k, type_name(col));
            goto out;
        }
        if (json_object_size(col) != json_object_size(img)) {
            rc = lfail(L, "column \"%s\" has %zu rows but column \"image\" has %zu", k, json_object_size(col),
                       json_object_size(img));
            goto out;
        }
    }
    size_t n = json_object_size(img), i = 0;
    keys = malloc((n + 1) * sizeof *keys);
    if (!keys) {
        rc = lfail(L, "out of memory");
        goto out;
    }
    json_t *v;
    json_object_foreach(img, k, v) {
        char *end;
        long long x = strtoll(k, &end, 10);
        if (!k[0] || *end || x < 0 || k[0] == '+' || k[0] == '-') {
            rc = lfail(L, "row key \"%s\" of column \"image\" is not a row number", k);
            goto out;
        }
        keys[i++] = (RowKey){x, k};
    }
    qsort(keys, n, sizeof *keys, rowkey_cmp);
    for (i = 0; i < n && rc == 0; i++) {
        L->w_stream = NULL;
        snprintf(L->where, sizeof L->where, "%s (column-JSON), row \"%s\"", path, keys[i].key);
        if (i && keys[i].index == keys[i - 1].index) {
            rc = lfail(L, "row number %lld appears twice", (long long)keys[i].index);
            break;
        }
        json_t *row = json_object();
        if (!row) {
            rc = lfail(L, "out of memory");
            break;
        }
        json_object_foreach(root, k, col) {
            json_t *cell = json_object_get(col, keys[i].key);
            if (!cell) {
                rc = lfail(L, "column \"%s\" has no row \"%s\"", k, keys[i].key);
                break;
            }
            if (!json_is_null(cell)) json_object_set(row, k, cell);  /* pandas writes null for "absent" */
        }
        if (rc == 0) rc = vizwiz_row(L, row, images);
        json_decref(row);
    }
out:
    free(keys);
    json_decref(root);
    return rc;
}

/* ---- entry points ---- */

int ds_load(VqaDataset *ds, DatasetFormat fmt, const char *questions, const char *annotations,
            const char *images, Err *err) {
    memset(ds, 0, sizeof *ds);
    if (!questions) return err_set(err, "no questions file given");
    if (!(ds->pool = sp_new())) return err_set(err, "out of memory");
    Loader L = {.ds = ds, .err = err};
    int rc;
    if (fmt == DS_VQA2) {
        rc = load_vqa2(&L, questions, annotations, images);
    } else if (fmt == DS_VIZWIZ) {
        int top = js_peek_top(questions, err);
        if (top < 0)
            rc = -1;
        else if (top == '[')
            rc = load_vizwiz_list(&L, questions, images);
        else if (top == '{')
            rc = load_vizwiz_columns(&L, questions, images);
        else
            rc = err_set(err, "%s: expected a JSON list of entries or a column-JSON object", questions);
    } else {
        rc = err_set(err, "unknown dataset format %d", (int)fmt);
    }
    if (rc) {
        ds_free(ds);
        return -1;
    }
    /* give back the spare capacity of the doubling growth */
    if (ds->n) {
        VqaSample *s = realloc(ds->samples, (size_t)ds->n * sizeof *s);
        if (s) ds->samples = s;
    }
    return 0;
}

void ds_free(VqaDataset *ds) {
    if (!ds) return;
    free(ds->samples);
    sp_free(ds->pool);
    memset(ds, 0, sizeof *ds);
}
