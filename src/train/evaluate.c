/* evaluate.c: evaluation pass, losses and arg-max helpers (evaluate.h). */
#include "train/evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/train_device.h"
#include "util/log.h"

double train_loss(const Backend *be, LossKind kind, int rows, int n_real, int A, const float *logits,
                  const float *targets, float weight, float grad_scale, float *dlogits) {
    if (dlogits && rows > n_real) /* backend memory: zeroed by the backend */
        be->memset_zero(be, dlogits + (size_t)n_real * A, sizeof(float) * (size_t)(rows - n_real) * A);
    if (n_real <= 0) return 0.0;
    /* the ops average over the rows they see: only the real ones */
    double l = kind == LOSS_SOFTMAX ? be->soft_xent(be, n_real, A, logits, targets, weight * grad_scale, dlogits)
                                    : be->bce_logits(be, n_real, A, logits, targets, weight * grad_scale, dlogits);
    return l * weight; /* the ops scale only the gradient */
}

void train_argmax(int n, int A, const float *logits, int32_t *out) {
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * A;
        int best = 0;
        for (int k = 1; k < A; k++)
            if (z[k] > z[best]) best = k;
        out[i] = best;
    }
}

double train_argmax_score(int n, int A, const float *targets, const int32_t *argmax) {
    double s = 0;
    for (int i = 0; i < n; i++) s += targets[(size_t)i * A + argmax[i]];
    return s;
}

void eval_result_free(EvalResult *r) {
    if (r->has_accuracy) vqa_metric_free(&r->acc);
    free(r->preds);
    memset(r, 0, sizeof *r);
}

/* Per-sample table of the evaluation: [3 * n] (prediction + 1, loss, target score) and
 * one last slot counting the ranks that saw targets. */
enum { EV_PRED = 0, EV_LOSS = 1, EV_SCORE = 2, EV_COLS = 3 };

int evaluate(VqaModel *m, Loader *l, TdevFeed *feed, const VqaDataset *ds, const AnswerVocab *vocab, LossKind kind,
             Arena *a, Comm *comm, EvalResult *r, Err *e) {
    memset(r, 0, sizeof *r);
    double t0 = time_now();
    int A = ans_vocab_size(vocab);
    size_t n = (size_t)ds->n, ntab = EV_COLS * n + 1;
    if (ntab > (size_t)INT32_MAX) return err_set(e, "evaluation: %zu questions are too many for one reduction", n);
    double *tab = calloc(ntab, sizeof *tab);
    r->preds = calloc(n ? n : 1, sizeof *r->preds);
    if (!tab || !r->preds) {
        free(tab);
        free(r->preds);
        r->preds = NULL;
        return err_set(e, "evaluation: out of memory (%zu questions)", n);
    }
    /* per-question losses from the host copy of the logits, by the CPU ops (one call per
     * row: on a device backend that would be a launch and a sync per question) */
    const Backend *hbe = backend_cpu();
    int32_t *am = NULL;
    size_t am_cap = 0;
    HostBuf hlog = {NULL, 0};
    if (feed->loader != l) {
        err_set(e, "evaluation: the batch feed was opened on another loader");
        goto fail;
    }
    if (loader_start_epoch(l, 0, 0, e) != 0) goto fail;
    for (;;) {
        /* on a device the next batch uploads while this one's forward runs (TdevFeed);
         * the feed stops at the end of the split by itself */
        const TdevFeedSlot *fs;
        int k = tdev_feed_next(feed, 1, &fs, e);
        if (k < 0) goto fail;
        if (k == 0) break;
        const Batch *b = fs->host; /* host copy: n_real, sample_index, targets */
        arena_reset(a);
        float *logits;
        const float *hl;
        if (vqa_model_forward(m, &fs->view, 0, 0, a, &logits, e) != 0) {
            m->be->synchronize(m->be);
            goto fail;
        }
        if (!(hl = tdev_host_floats(m->be, logits, (size_t)b->n_real * A, &hlog))) {
            err_set(e, "evaluation: out of memory (host logits)");
            goto fail;
        }
        if ((size_t)b->size > am_cap) {
            free(am);
            am_cap = (size_t)b->size;
            if (!(am = malloc(am_cap * sizeof *am))) {
                err_set(e, "evaluation: out of memory");
                goto fail;
            }
        }
        train_argmax(b->n_real, A, hl, am);
        if (b->targets) tab[ntab - 1] = 1;
        /* rows >= n_real repeat samples another row (of some rank) scores: skipped */
        for (int i = 0; i < b->n_real; i++) {
            int64_t idx = b->sample_index[i];
            if (idx < 0 || idx >= ds->n) continue;
            double *row = tab + EV_COLS * (size_t)idx;
            row[EV_PRED] = (double)am[i] + 1.0;
            if (b->targets) {
                const float *z = hl + (size_t)i * A, *y = b->targets + (size_t)i * A;
                row[EV_LOSS] = train_loss(hbe, kind, 1, 1, A, z, y, 1.0f, 1.0f, NULL);
                row[EV_SCORE] = train_argmax_score(1, A, y, &am[i]);
            }
        }
        tdev_feed_done(feed); /* the logits copy has waited for the forward that read it */
    }
    free(am);
    am = NULL;
    hostbuf_free(&hlog);
    /* every sample is real on exactly one rank: the sum is that rank's entry */
    if (comm && comm_world(comm) > 1 && comm_allreduce_f64(comm, tab, (int)ntab, COMM_SUM, e) != 0) {
        err_prefix(e, "evaluation: gathering the per-question results of %d ranks", comm_world(comm));
        goto fail;
    }
    double loss_sum = 0, score_sum = 0;
    int have_targets = tab[ntab - 1] > 0;
    for (size_t i = 0; i < n; i++) {
        const double *row = tab + EV_COLS * i;
        if (row[EV_PRED] < 1) continue; /* never scored (cannot happen with a padded sampler) */
        r->preds[i] = ans_vocab_answer(vocab, (int)row[EV_PRED] - 1);
        loss_sum += row[EV_LOSS];
        score_sum += row[EV_SCORE];
        r->n++;
    }
    free(tab);
    tab = NULL;
    r->loss = have_targets && r->n ? loss_sum / (double)r->n : NAN;
    r->target_score = have_targets && r->n ? 100.0 * score_sum / (double)r->n : NAN;
    r->accuracy = NAN;
    if (ds->has_answers) {
        if (vqa_metric_eval(&r->acc, ds, r->preds, e) != 0) goto fail;
        r->has_accuracy = 1;
        r->accuracy = r->acc.overall;
    }
    r->seconds = time_now() - t0;
    return 0;
fail:
    tdev_feed_drop(feed); /* the batch in use and a prefetched one go back to the loader */
    free(am);
    free(tab);
    hostbuf_free(&hlog);
    eval_result_free(r);
    return -1;
}
