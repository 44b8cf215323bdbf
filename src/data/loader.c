/* loader.c: worker threads filling a ring of Batch slots in order (see loader.h).
 *
 * Concurrency, all under one mutex: workers claim single rows (batch k, row j) in
 * increasing order; batch k lives in slot k % nslots and may start only once that slot's
 * previous batch (k - nslots) was released. A slot turns READY when all its rows are done;
 * the consumer takes slots strictly in batch order. Row work happens outside the lock and
 * depends only on (seed, epoch, dataset index), which makes the batches independent of the
 * number of threads and of scheduling. A new epoch bumps a generation counter and waits
 * for in-flight rows to finish; rows of an old generation are dropped. */
#include "data/loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/prep.h"
#include "data/sampler.h"
#include "util/idmap.h"
#include "util/log.h"

enum { SLOT_EMPTY = 0, SLOT_FILLING, SLOT_READY, SLOT_BORROWED };

typedef struct Slot {
    Batch b;
    uint8_t *bad;   /* [B] */
    char **bad_key, **bad_msg; /* [B] for bad rows (owned), else NULL */
    int64_t k;      /* batch number held */
    int state;
    int rows_done;
    int n_bad;
} Slot;

/* Set of strings (bad image keys), so each bad image is reported once. */
typedef struct StrSet { IdMap map; char **keys; size_t cap, n; } StrSet; /* keys[i] is id i */

struct Loader {
    LoaderOpts o;
    const VqaDataset *ds;
    const Tokenizer *tok;
    const AnswerVocab *vocab;
    PrepFile *prep;
    int64_t n;
    int A, S, L, B;
    int left_id, right_id;
    Sampler sampler;

    Slot *slots;
    int nslots;
    pthread_t *threads;
    int nthreads;
    struct Worker *workers;
    int nworkers;

    pthread_mutex_t mu;
    pthread_cond_t work_cv, ready_cv;
    int stop;
    uint64_t gen;
    int inflight;
    int64_t epoch, nb, claim_k, next_k, first_k;
    int claim_j;

    LoaderStats st;
    int64_t epoch_bad_rows;
    StrSet bad_keys;
    char **bad_list;     /* every distinct bad report, in the order found */
    int64_t n_bad_list, cap_bad_list, report_head;
};

/* ------------------------------------------------------------------ helpers */

static void *default_alloc(void *ctx, size_t bytes) {
    (void)ctx;
    return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}
static void default_free(void *ctx, void *p) {
    (void)ctx;
    free(p);
}

typedef struct SetKey {
    const StrSet *s;
    const char *key;
} SetKey;

static int same_key(const void *ctx, int64_t id) {
    const SetKey *k = ctx;
    return strcmp(k->s->keys[id], k->key) == 0;
}

/* 1 if key was new (and is now in the set), 0 if present, -1 out of memory. */
static int strset_add(StrSet *s, const char *key) {
    uint64_t h = idmap_hash_str(key);
    SetKey k = {s, key};
    if (idmap_find(&s->map, h, same_key, &k) >= 0) return 0;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        char **nk = realloc(s->keys, nc * sizeof *nk);
        if (!nk) return -1;
        s->keys = nk;
        s->cap = nc;
    }
    if (!(s->keys[s->n] = strdup(key))) return -1;
    if (idmap_insert(&s->map, h, (int64_t)s->n, same_key, &k, NULL) < 0) {
        free(s->keys[s->n]);
        return -1;
    }
    s->n++;
    return 1;
}

static void strset_free(StrSet *s) {
    for (size_t i = 0; i < s->n; i++) free(s->keys[i]);
    free(s->keys);
    idmap_free(&s->map);
    memset(s, 0, sizeof *s);
}

void loader_opts_default(LoaderOpts *o) {
    memset(o, 0, sizeof *o);
    o->batch_size = 32;
    o->world = 1;
    o->shuffle = 1;
    o->image_size = 224;
    o->max_len = 20;
    o->resize = IMG_RESIZE_SHORTER_CROP;
    o->workers = 4;
    o->prefetch = 2;
    o->max_bad_fraction = 0.001;
}

void loader_swap_left_right_ids(const Tokenizer *tok, int32_t *ids, int n) {
    if (!tok) return;
    int l = tok_id(tok, "left"), r = tok_id(tok, "right");
    if (l < 0 || r < 0) return;
    for (int i = 0; i < n; i++) {
        if (ids[i] != l && ids[i] != r) continue;
        if (i + 1 < n) { /* "left" + "##over" is the word "leftover" */
            const char *next = tok_token(tok, ids[i + 1]);
            if (next && next[0] == '#' && next[1] == '#') continue;
        }
        ids[i] = ids[i] == l ? r : l;
    }
}

/* ------------------------------------------------------------------ one row */

struct Worker {
    Loader *l;
    void *scratch;
    size_t scratch_cap;
    uint8_t *src;     /* [S, S, 3] prepared pixels */
    uint8_t *resized; /* [S, S, 3] */
    char *text;
    size_t text_cap;
};
typedef struct Worker Worker;

static int ensure(void **p, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    void *np = realloc(*p, need);
    if (!np) return -1;
    *p = np;
    *cap = need;
    return 0;
}

/* Fills row j of b with sample idx. Returns 0, or 1 for a bad image (key/msg filled). */
static int process_row(Worker *w, Batch *b, int j, int64_t idx, char *key, size_t key_cap,
                       char *msg, size_t msg_cap) {
    Loader *l = w->l;
    const int S = l->S, L = l->L;
    float *img = b->images + (size_t)j * 3 * S * S;
    uint64_t seed = img_sample_seed(l->o.seed, l->epoch, idx);
    ImgAugDraw d;
    int bad = 0;
    Err e;
    if (l->prep) {
        img_aug_draw(&l->o.augment, seed, S, S, &d);
        if (prep_image(l->prep, idx, w->src, &e) != 0) {
            bad = 1;
            snprintf(key, key_cap, "prep image id %lld", (long long)prep_image_id(l->prep, idx));
            snprintf(msg, msg_cap, "%s", e.msg);
        } else {
            if (d.has_box) {
                if (img_resample(w->src, S, S, d.box[0], d.box[1], d.box[2], d.box[3], w->resized, S,
                                 S, w->scratch) != 0) bad = 1;
            } else {
                memcpy(w->resized, w->src, (size_t)S * S * 3);
            }
            if (bad) {
                snprintf(key, key_cap, "prep image id %lld", (long long)prep_image_id(l->prep, idx));
                snprintf(msg, msg_cap, "%s: sample %lld: resize failed", prep_path(l->prep), (long long)idx);
            } else {
                if (d.flip) img_hflip(w->resized, S, S);
                img_normalize(w->resized, S, S, &d, img);
            }
        }
    } else {
        const VqaSample *s = &l->ds->samples[idx];
        Image im;
        if (img_decode_file(&im, s->image_path, &e) != 0) {
            bad = 1;
            img_aug_draw(&l->o.augment, seed, S, S, &d);
            snprintf(key, key_cap, "%s", s->image_path);
            snprintf(msg, msg_cap, "%s", e.msg);
        } else {
            img_aug_draw(&l->o.augment, seed, im.w, im.h, &d);
            if (ensure(&w->scratch, &w->scratch_cap, img_pipeline_scratch_size(im.w, im.h, S)) != 0 ||
                img_pipeline(im.px, im.w, im.h, S, l->o.resize, &d, w->scratch, w->resized, img) != 0) {
                bad = 1;
                snprintf(key, key_cap, "%s", s->image_path);
                snprintf(msg, msg_cap, "%s: out of memory resizing %d x %d", s->image_path, im.w, im.h);
            }
            img_free(&im);
        }
    }
    if (bad) memset(img, 0, sizeof(float) * 3 * S * S); /* 0 after normalization = mean colour */

    int32_t *ids = b->tokens + (size_t)j * L;
    float *mask = b->attn_mask + (size_t)j * L;
    memset(b->token_types + (size_t)j * L, 0, sizeof(int32_t) * L);
    if (l->prep) {
        memcpy(ids, prep_tokens(l->prep, idx), sizeof(int32_t) * L);
        int len = prep_length(l->prep, idx);
        for (int t = 0; t < L; t++) mask[t] = t < len ? 1.0f : 0.0f;
        if (d.flip) loader_swap_left_right_ids(l->tok, ids, len);
        b->question_ids[j] = prep_question_id(l->prep, idx);
        if (b->targets) prep_targets(l->prep, idx, b->targets + (size_t)j * l->A);
    } else {
        const VqaSample *s = &l->ds->samples[idx];
        const char *q = s->question ? s->question : "";
        if (l->tok) {
            if (d.flip) {
                size_t need = img_swap_left_right(q, NULL, 0) + 1;
                if (ensure((void **)&w->text, &w->text_cap, need) == 0) {
                    img_swap_left_right(q, w->text, w->text_cap);
                    q = w->text;
                }
            }
            tok_encode(l->tok, q, L, ids, mask);
        } else {
            memset(ids, 0, sizeof(int32_t) * L);
            memset(mask, 0, sizeof(float) * L);
        }
        b->question_ids[j] = s->question_id;
        if (b->targets) ans_soft_targets(l->vocab, s, b->targets + (size_t)j * l->A);
    }
    return bad;
}

/* ------------------------------------------------------------------ workers */

static void record_bad_locked(Loader *l, const char *key, const char *msg) {
    if (strset_add(&l->bad_keys, key) != 1) return;
    l->st.bad_distinct++;
    if (l->n_bad_list == l->cap_bad_list) {
        int64_t nc = l->cap_bad_list ? l->cap_bad_list * 2 : 16;
        char **nl = realloc(l->bad_list, sizeof(char *) * (size_t)nc);
        if (!nl) return;
        l->bad_list = nl;
        l->cap_bad_list = nc;
    }
    char *m = strdup(msg);
    if (m) l->bad_list[l->n_bad_list++] = m;
}

static void *worker_main(void *arg) {
    Worker *w = arg;
    Loader *l = w->l;
    char key[4096], msg[ERR_MSG_MAX];
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        Slot *sl = NULL;
        if (l->claim_k < l->nb) {
            sl = &l->slots[l->claim_k % l->nslots];
            if (sl->state == SLOT_EMPTY) {
                sl->state = SLOT_FILLING;
                sl->k = l->claim_k;
                sl->rows_done = 0;
                sl->n_bad = 0;
                memset(sl->bad, 0, (size_t)l->B);
                sampler_batch(&l->sampler, sl->k, sl->b.sample_index, &sl->b.n_real);
            } else if (!(sl->state == SLOT_FILLING && sl->k == l->claim_k)) {
                sl = NULL;
            }
        }
        if (!sl) {
            pthread_cond_wait(&l->work_cv, &l->mu);
            continue;
        }
        int j = l->claim_j;
        if (++l->claim_j == l->B) {
            l->claim_j = 0;
            l->claim_k++;
        }
        uint64_t gen = l->gen;
        int64_t idx = sl->b.sample_index[j];
        l->inflight++;
        pthread_mutex_unlock(&l->mu);

        int bad = process_row(w, &sl->b, j, idx, key, sizeof key, msg, sizeof msg);

        pthread_mutex_lock(&l->mu);
        l->inflight--;
        if (gen == l->gen) {
            l->st.images_decoded++;
            if (bad) {
                sl->bad[j] = 1;
                sl->n_bad++;
                free(sl->bad_key[j]);
                free(sl->bad_msg[j]);
                sl->bad_key[j] = strdup(key);
                sl->bad_msg[j] = strdup(msg);
            }
            if (++sl->rows_done == l->B) sl->state = SLOT_READY;
        }
        pthread_cond_broadcast(&l->ready_cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ------------------------------------------------------------------ open / close */

static int alloc_slot(Loader *l, Slot *s, Err *err) {
    const LoaderAlloc *a = &l->o.alloc;
    size_t B = (size_t)l->B, S = (size_t)l->S, L = (size_t)l->L;
    Batch *b = &s->b;
    b->size = l->B;
    b->image_size = l->S;
    b->max_len = l->L;
    b->n_answers = l->A;
    b->images = a->alloc(a->ctx, sizeof(float) * B * 3 * S * S);
    b->tokens = a->alloc(a->ctx, sizeof(int32_t) * B * L);
    b->attn_mask = a->alloc(a->ctx, sizeof(float) * B * L);
    b->token_types = a->alloc(a->ctx, sizeof(int32_t) * B * L);
    b->targets = (l->vocab) ? a->alloc(a->ctx, sizeof(float) * B * (size_t)l->A) : NULL;
    b->question_ids = a->alloc(a->ctx, sizeof(int64_t) * B);
    b->sample_index = a->alloc(a->ctx, sizeof(int64_t) * B);
    s->bad = calloc(B, 1);
    s->bad_key = calloc(B, sizeof(char *));
    s->bad_msg = calloc(B, sizeof(char *));
    if (!s->bad_key || !s->bad_msg || !b->images || !b->tokens || !b->attn_mask || !b->token_types || (l->vocab && !b->targets) ||
        !b->question_ids || !b->sample_index || !s->bad)
        return err_set(err, "loader: out of memory for a batch of %d x [3, %d, %d]", l->B, l->S, l->S);
    return 0;
}

static void free_slot(Loader *l, Slot *s) {
    const LoaderAlloc *a = &l->o.alloc;
    Batch *b = &s->b;
    void *ps[] = {b->images, b->tokens, b->attn_mask, b->token_types, b->targets, b->question_ids,
                  b->sample_index};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        if (ps[i]) a->free(a->ctx, ps[i]);
    for (int j = 0; s->bad_key && j < l->B; j++) free(s->bad_key[j]);
    for (int j = 0; s->bad_msg && j < l->B; j++) free(s->bad_msg[j]);
    free(s->bad_key);
    free(s->bad_msg);
    free(s->bad);
}

static int check_prepared(Loader *l, Err *err) {
    const PrepHeader *h = prep_header(l->prep);
    const char *p = prep_path(l->prep);
    if ((int)h->image_size != l->S || (int)h->max_len != l->L)
        return err_set(err, "%s: prepared with image_size %u and max_len %u, but the run asks for "
                       "%d and %d (re-run vqa_prep)", p, h->image_size, h->max_len, l->S, l->L);
    if (l->ds && (uint64_t)l->ds->n != h->n_samples)
        return err_set(err, "%s: holds %llu samples, the dataset has %lld", p,
                       (unsigned long long)h->n_samples, (long long)l->ds->n);
    if (l->tok && h->tok_vocab && (int)h->tok_vocab != tok_vocab_size(l->tok))
        return err_set(err, "%s: tokenized with a vocabulary of %u tokens, the run's has %d", p,
                       h->tok_vocab, tok_vocab_size(l->tok));
    if (l->vocab) {
        if (!(h->flags & PREP_FLAG_TARGETS))
            return err_set(err, "%s: has no answer targets (prepared without answers)", p);
        if ((int)h->n_answers != ans_vocab_size(l->vocab))
            return err_set(err, "%s: answer vocabulary of %u answers, the run's has %d", p,
                           h->n_answers, ans_vocab_size(l->vocab));
        for (int a = 0; a < l->A; a++)
            if (strcmp(prep_answer(l->prep, a), ans_vocab_answer(l->vocab, a)) != 0)
                return err_set(err, "%s: answer %d is \"%s\", the run's vocabulary has \"%s\"", p, a,
                               prep_answer(l->prep, a), ans_vocab_answer(l->vocab, a));
    }
    return 0;
}

int loader_open(Loader **out, const LoaderOpts *o, const VqaDataset *ds, const Tokenizer *tok,
                const AnswerVocab *vocab, Err *err) {
    *out = NULL;
    if (o->batch_size < 1 || o->image_size < 1 || o->max_len < 2 || o->world < 1 || o->rank < 0 ||
        o->rank >= o->world)
        return err_set(err, "loader: bad options (batch_size %d, image_size %d, max_len %d, rank %d "
                       "of %d)", o->batch_size, o->image_size, o->max_len, o->rank, o->world);
    if (!o->prepared && !ds) return err_set(err, "loader: no dataset and no prepared file");
    Loader *l = calloc(1, sizeof *l);
    if (!l) return err_set(err, "loader: out of memory");
    l->o = *o;
    if (!l->o.alloc.alloc || !l->o.alloc.free) {
        l->o.alloc.alloc = default_alloc;
        l->o.alloc.free = default_free;
        l->o.alloc.ctx = NULL;
    }
    l->o.prepared = NULL; /* the caller's string need not outlive open */
    l->ds = ds;
    l->tok = tok;
    l->vocab = vocab;
    l->S = o->image_size;
    l->L = o->max_len;
    l->B = o->batch_size;
    l->A = vocab ? ans_vocab_size(vocab) : 0;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work_cv, NULL);
    pthread_cond_init(&l->ready_cv, NULL);
    if (o->prepared) {
        if (prep_open(&l->prep, o->prepared, err) != 0 || check_prepared(l, err) != 0) {
            loader_close(l);
            return -1;
        }
        l->n = (int64_t)prep_header(l->prep)->n_samples;
    } else {
        l->n = ds->n;
    }
    if (sampler_init(&l->sampler, l->n, o->world, o->rank, o->batch_size, o->seed, o->shuffle,
                     o->drop_last, err) != 0) {
        err_prefix(err, "loader");
        loader_close(l);
        return -1;
    }
    l->nslots = (o->prefetch < 1 ? 1 : o->prefetch) + 1; /* + the one the trainer holds */
    l->slots = calloc((size_t)l->nslots, sizeof *l->slots);
    if (!l->slots) {
        loader_close(l);
        return err_set(err, "loader: out of memory");
    }
    for (int i = 0; i < l->nslots; i++)
        if (alloc_slot(l, &l->slots[i], err) != 0) {
            loader_close(l);
            return -1;
        }
    if (loader_start_epoch(l, 0, 0, err) != 0) {
        loader_close(l);
        return -1;
    }
    int nw = o->workers < 1 ? 1 : o->workers;
    l->threads = calloc((size_t)nw, sizeof *l->threads);
    l->workers = calloc((size_t)nw, sizeof *l->workers);
    if (!l->threads || !l->workers) {
        loader_close(l);
        return err_set(err, "loader: out of memory");
    }
    for (int i = 0; i < nw; i++) {
        Worker *w = &l->workers[i];
        w->l = l;
        w->src = malloc((size_t)l->S * l->S * 3);
        w->resized = malloc((size_t)l->S * l->S * 3);
        /* The prepared path resamples S x S -> S x S; the raw path grows it per image. */
        w->scratch_cap = img_resample_scratch_size(l->S, l->S, l->S, l->S);
        w->scratch = malloc(w->scratch_cap);
        if (!w->src || !w->resized || !w->scratch ||
            pthread_create(&l->threads[i], NULL, worker_main, w) != 0) {
            l->nworkers = i + 1; /* frees this one's buffers too */
            loader_close(l);
            return err_set(err, "loader: cannot start worker thread %d of %d", i + 1, nw);
        }
        l->nworkers = l->nthreads = i + 1;
    }
    *out = l;
    return 0;
}

void loader_close(Loader *l) {
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->nthreads; i++) pthread_join(l->threads[i], NULL);
    for (int i = 0; i < l->nworkers; i++) {
        free(l->workers[i].src);
        free(l->workers[i].resized);
        free(l->workers[i].scratch);
        free(l->workers[i].text);
    }
    free(l->workers);
    free(l->threads);
    if (l->slots)
        for (int i = 0; i < l->nslots; i++) free_slot(l, &l->slots[i]);
    free(l->slots);
    sampler_free(&l->sampler);
    prep_close(l->prep);
    for (int64_t i = 0; i < l->n_bad_list; i++) free(l->bad_list[i]);
    free(l->bad_list);
    strset_free(&l->bad_keys);
    pthread_cond_destroy(&l->work_cv);
    pthread_cond_destroy(&l->ready_cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* ------------------------------------------------------------------ epochs and batches */

int loader_start_epoch(Loader *l, int64_t epoch, int64_t start_position, Err *err) {
    pthread_mutex_lock(&l->mu);
    l->gen++;
    while (l->inflight > 0) pthread_cond_wait(&l->ready_cv, &l->mu);
    sampler_set_epoch(&l->sampler, epoch);
    int64_t k0;
    if (sampler_batch_of_position(&l->sampler, start_position, &k0, err) != 0) {
        l->nb = l->claim_k = l->next_k = 0; /* nothing to hand out until a valid start */
        pthread_mutex_unlock(&l->mu);
        return err_prefix(err, "loader");
    }
    for (int i = 0; i < l->nslots; i++) l->slots[i].state = SLOT_EMPTY;
    l->epoch = epoch;
    l->nb = sampler_num_batches(&l->sampler);
    l->claim_k = l->next_k = l->first_k = k0;
    l->claim_j = 0;
    l->epoch_bad_rows = 0;
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

static void bad_fraction_error(Loader *l, Err *err) {
    int64_t rows = l->nb * l->B;
    int n = 0;
    char list[ERR_MSG_MAX];
    list[0] = '\0';
    for (int64_t i = 0; i < l->n_bad_list && n < 8; i++, n++) {
        size_t u = strlen(list);
        snprintf(list + u, sizeof list - u, "\n  %s", l->bad_list[i]);
    }
    if (l->n_bad_list > n) {
        size_t u = strlen(list);
        snprintf(list + u, sizeof list - u, "\n  ... and %lld more", (long long)(l->n_bad_list - n));
    }
    err_set(err, "loader: %lld bad images among the %lld rows of this epoch so far, over "
            "data.max_bad_fraction %g of the epoch's %lld rows (rank %d); the bad images:%s",
            (long long)l->epoch_bad_rows, (long long)((l->next_k - l->first_k) * l->B),
            l->o.max_bad_fraction, (long long)rows, l->o.rank, list);
}

int loader_next(Loader *l, Batch **b, Err *err) {
    *b = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->next_k >= l->nb) {
        pthread_mutex_unlock(&l->mu);
        return 0;
    }
    Slot *s = &l->slots[l->next_k % l->nslots];
    double t0 = time_now();
    while (!(s->state == SLOT_READY && s->k == l->next_k)) pthread_cond_wait(&l->ready_cv, &l->mu);
    l->st.data_wait_s += time_now() - t0;
    s->state = SLOT_BORROWED;
    l->next_k++;
    l->st.batches++;
    l->st.bad_images += s->n_bad;
    l->epoch_bad_rows += s->n_bad;
    /* Reports are recorded here, in batch order, so they and the error are deterministic. */
    for (int j = 0; j < l->B; j++)
        if (s->bad[j] && s->bad_key[j] && s->bad_msg[j]) record_bad_locked(l, s->bad_key[j], s->bad_msg[j]);
    if (s->n_bad && (double)l->epoch_bad_rows > l->o.max_bad_fraction * (double)(l->nb * l->B)) {
        bad_fraction_error(l, err);
        s->state = SLOT_EMPTY;
        pthread_cond_broadcast(&l->work_cv);
        pthread_mutex_unlock(&l->mu);
        return -1;
    }
    pthread_mutex_unlock(&l->mu);
    *b = &s->b;
    return 1;
}

void loader_release(Loader *l, Batch *b) {
    if (!b) return;
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < l->nslots; i++)
        if (&l->slots[i].b == b && l->slots[i].state == SLOT_BORROWED) {
            l->slots[i].state = SLOT_EMPTY;
            pthread_cond_broadcast(&l->work_cv);
        }
    pthread_mutex_unlock(&l->mu);
}

int64_t loader_num_batches(const Loader *l) { return l->nb; }

int64_t loader_position(const Loader *l) {
    return l->next_k * (int64_t)l->o.world * l->B;
}

int64_t loader_last_global_real(const Loader *l) {
    int64_t G = (int64_t)l->o.world * l->B, left = l->sampler.n - (loader_position(l) - G);
    return left < 0 ? 0 : left < G ? left : G;
}

const uint8_t *loader_batch_bad(const Loader *l, const Batch *b) {
    for (int i = 0; i < l->nslots; i++)
        if (&l->slots[i].b == b) return l->slots[i].bad;
    return NULL;
}

LoaderStats loader_stats(const Loader *l) {
    pthread_mutex_lock((pthread_mutex_t *)&l->mu);
    LoaderStats s = l->st;
    pthread_mutex_unlock((pthread_mutex_t *)&l->mu);
    return s;
}

int loader_pop_bad_report(Loader *l, char *buf, size_t cap) {
    pthread_mutex_lock(&l->mu);
    int got = 0;
    if (l->report_head < l->n_bad_list) {
        snprintf(buf, cap, "%s", l->bad_list[l->report_head++]);
        got = 1;
    }
    pthread_mutex_unlock(&l->mu);
    return got;
}
