/* evaluate.h: one pass of the model over a split (no gradients, BN in eval mode, no
 * dropout): loss, arg-max predictions, the official VQA accuracy (data/vqa_metric.h — the
 * same code vqa_eval runs on a results file) per answer type, and the train-style score
 * (target score at the arg-max). Also the losses and the arg-max score shared with the
 * training step. */
#ifndef VQA_TRAIN_EVALUATE_H
#define VQA_TRAIN_EVALUATE_H

#include <stdint.h>

#include "comm/comm.h"
#include "data/answers.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/vqa_metric.h"
#include "model/vqa_model.h"
#include "train/train_device.h"
#include "util/err.h"

typedef enum LossKind { LOSS_BCE = 0, LOSS_SOFTMAX = 1 } LossKind;

/* Loss of the first n_real rows of logits/targets [rows, A] (rows >= n_real are padding
 * and contribute nothing): BCE summed over classes or soft cross-entropy, mean over the
 * n_real rows, times `weight` (e.g. 1 / micro-batches). If dlogits is non-NULL it is
 * written for ALL rows (zero for padding) and scaled by weight * grad_scale. */
double train_loss(const Backend *be, LossKind kind, int rows, int n_real, int A, const float *logits,
                  const float *targets, float weight, float grad_scale, float *dlogits);

/* Index of the largest logit of each of the n rows into out[n] (first one on ties). */
void train_argmax(int n, int A, const float *logits, int32_t *out);
/* Sum over the n rows of targets[row, argmax[row]] (the train-time "accuracy"). */
double train_argmax_score(int n, int A, const float *targets, const int32_t *argmax);

typedef struct EvalResult {
    int64_t n;             /* questions scored by the loop (real rows) */
    double loss;           /* mean over them; NAN without targets */
    double target_score;   /* mean target score at the arg-max x 100; NAN without targets */
    double accuracy;       /* official VQA accuracy x 100; NAN when the split has no answers */
    int has_accuracy;
    VqaAccuracy acc;       /* per answer type / question type (when has_accuracy) */
    const char **preds;    /* [ds->n] predicted answer per sample (strings owned by the vocab) */
    double seconds;
} EvalResult;

/* Runs the model over this rank's shard of ds through the loader l (opened on ds with this
 * rank and world, no shuffling, padded: the sampler's rows >= n_real are padding and are
 * not scored), whose batches come through feed (tdev_feed_init on l, owned by the caller
 * so that its device buffers are allocated once per run: on a device each batch's upload
 * overlaps the previous batch's forward; give the loader one more prefetch slot there, as
 * for training). vocab: the model's classes. Fills r (free with eval_result_free).
 *
 * Several ranks (comm non-NULL, world > 1): every sample is real on exactly one rank, so
 * each rank fills its samples' slots of a per-sample table (prediction + 1, loss, target
 * score; 0 elsewhere) and one SUM all-reduce of that table gives every rank all of them.
 * The sums over samples are then taken in sample order on every rank, so the result (the
 * predictions, the VQA accuracy, and the loss and target score to the last bit, given the
 * same logits) does not depend on the world size; every rank ends with the same r (rank 0
 * logs and writes). comm NULL or a world of one: the same table, no communication.
 * Collective when world > 1: every rank must call it. */
int evaluate(VqaModel *m, Loader *l, TdevFeed *feed, const VqaDataset *ds, const AnswerVocab *vocab, LossKind kind,
             Arena *a, Comm *comm, EvalResult *r, Err *e);
void eval_result_free(EvalResult *r);

#endif
