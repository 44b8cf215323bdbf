/* trainer.h: the training run: data, model, optimizer and run directory put together, and
 * the loop (DESIGN.md §2, §6, §8).
 *
 * One optimizer step = grad_accum micro-batches (fewer at the end of an epoch) of
 * train.batch_size rows per rank: forward, loss over the real rows (padding rows weigh 0;
 * each micro-batch's loss is the mean over the real rows of the whole global batch, so a
 * padded last batch split unevenly over the ranks weighs as on one rank),
 * backward accumulating into the flat gradient buffer; then (several ranks) the gradient
 * all-reduce, (fp16) the loss-scaler check, then optim_step (optim/optim.h: global-norm
 * clipping, AdamW with the scheduled learning rate times each segment's multiplier).
 *
 * Reproducibility: every random draw is a function of (run.seed, step, micro-batch) or of
 * (run.seed, epoch, sample) in the loader, and the loader restarts at the saved global
 * sampler position (of the batches consumed by optimizer steps: on a device the loader has
 * handed out one more, the prefetched batch, train_device.h), so a run resumed from a checkpoint repeats the uninterrupted run's
 * losses bit for bit (same seed, world size and thread count). */
#ifndef VQA_TRAIN_TRAINER_H
#define VQA_TRAIN_TRAINER_H

#include <stdint.h>

#include "comm/comm.h"
#include "config/config.h"
#include "data/answers.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/tokenizer.h"
#include "model/vqa_model.h"
#include "optim/loss_scaler.h"
#include "optim/optim.h"
#include "train/evaluate.h"
#include "train/grad_sync.h"
#include "train/prior.h"
#include "train/run_dir.h"
#include "train/train_main.h"
#include "train/train_device.h"
#include "train/train_state.h"
#include "util/err.h"
#include "util/log.h"

typedef struct Trainer {
    const Config *cfg;
    const CliArgs *cli;
    Log *log;
    Comm *comm;
    int rank, world;
    TrainDevice dev;               /* the backend and, for CUDA, its start-up (train_device.h) */
    const Backend *be;             /* = dev.be */
    HostBuf logits_host;           /* host copy of the logits for the arg-max (device backends) */

    VqaDataset train_ds, eval_ds;
    int have_eval;                 /* eval split loaded (has answers) */
    Tokenizer *tok;
    AnswerVocab *vocab;
    AnswerPrior *prior;
    double prior_acc;              /* the prior's accuracy on the eval split (NAN if none) */
    VqaModel model;
    int model_ready;
    GradSync gsync;                /* several ranks: bucketed gradient all-reduce (grad_sync.h) */
    Optimizer opt;                 /* AdamW, its schedule and segments, moments in be's memory */
    Loader *train_loader, *eval_loader;
    TdevFeed feed;                 /* training batches; on a device uploaded a step ahead */
    TdevFeed eval_feed;            /* evaluation batches (have_eval); on a device one ahead */
    Arena arena;
    RunDir rd;
    int rd_open;
    char *config_yaml;
    uint64_t config_hash;

    TrainState st;
    LossKind loss_kind;
    int64_t total_steps, steps_per_epoch, batches_per_epoch;
    char last_ckpt[4096];
    int64_t last_ckpt_step, last_eval_step;
    double last_eval_acc;
} Trainer;

/* Builds everything for training (rank 0 also the run directory) and, with cli->resume,
 * restores the checkpoint. Logs the start-up facts (datasets, vocabulary, model summary). */
int trainer_init(Trainer *t, const Config *cfg, const CliArgs *cli, Log *log, Comm *comm, Err *e);
/* The same on a given backend instead of the one cli->device names (NULL: that one). Tests
 * use it to run the device path on a CPU backend that behaves like a device. */
int trainer_init_on(Trainer *t, const Config *cfg, const CliArgs *cli, Log *log, Comm *comm, const Backend *be,
                    Err *e);
/* Trains until the last step, evaluating, logging and checkpointing as configured; ends
 * with a summary. */
int trainer_run(Trainer *t, Err *e);
void trainer_free(Trainer *t);

/* Optimizer segments from a ParamStore: one per trainable parameter (runs of equal
 * decay/lr merged), lr_mult = encoder_lr_mult for the encoders, decay per ps_decay.
 * *out is malloc'ed. */
int trainer_segments(const ParamStore *ps, float encoder_lr_mult, OptimSegment **out, int *n, Err *e);
/* Optimizer steps of the run: steps_per_epoch * epochs, capped by max_steps when > 0. */
int64_t trainer_total_steps(int64_t steps_per_epoch, int epochs, int64_t max_steps);
/* Steps per epoch: ceil(batches / grad_accum) (a last short accumulation still steps). */
int64_t trainer_steps_per_epoch(int64_t batches_per_epoch, int grad_accum);
/* Dropout seed of micro-batch `micro` of step `step`. */
uint64_t trainer_step_seed(uint64_t seed, int64_t step, int micro);

/* The fp16 loss-scaler decision after backward on the (all-reduced) gradients g[n] that
 * carry the factor scale: returns 1 when the step must be skipped (inf/NaN; the scale is
 * backed off), else unscales g in place (g /= old scale) and returns 0. */
int trainer_unscale(LossScaler *s, float *g, size_t n);
/* The same on backend memory through be's non-finite check and scale entries. */
int trainer_unscale_be(const Backend *be, LossScaler *s, float *g, size_t n);

#endif
