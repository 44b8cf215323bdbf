/* train_state.h: what a training checkpoint holds and how it goes in and out of the
 * safetensors file (io/checkpoint.h does the file handling: atomic save, rotation, best).
 *
 * Tensors:
 *   <every ParamStore name>   parameters (F32) and BN buffers (running stats F32,
 *                             num_batches_tracked I64), so a checkpoint also loads as
 *                             model weights (ps_load_safetensors with prefix "")
 *   optimizer.exp_avg         [n_grads] AdamW first moments (flat, ParamStore grad order)
 *   optimizer.exp_avg_sq      [n_grads] second moments
 * __metadata__: format_version, step, epoch, sampler_pos (global position in the epoch of
 * the next batch), rng_state (run seed, step: every random draw of the run is a function
 * of these), answers (JSON list), config_hash, config (the resolved YAML), adam_t,
 * loss_scale (float bits, hex), loss_scale_clean, loss_scale_skipped, best_accuracy,
 * best_step. Floats whose exact value matters are stored as bit patterns so a resumed run
 * continues bit for bit. */
#ifndef VQA_TRAIN_STATE_H
#define VQA_TRAIN_STATE_H

#include <stdint.h>

#include "data/answers.h"
#include "model/params.h"
#include "optim/loss_scaler.h"
#include "optim/optim.h"
#include "util/err.h"

typedef struct TrainState {
    int64_t step;         /* optimizer steps done */
    int64_t epoch;        /* epoch of the next batch */
    int64_t sampler_pos;  /* global sampler position of the next batch in that epoch */
    uint64_t seed;        /* run.seed */
    double best_acc;      /* best evaluation accuracy so far (x 100); < 0: none yet */
    int64_t best_step;
    LossScaler scaler;
} TrainState;

/* ps's buffers and opt's moments may be backend (device) memory of ps->be: they travel
 * through host copies (copy_d2h on save, copy_h2d on load).
 * Writes <dir>/step_<step>.safetensors atomically; path_out gets its path. opt may be NULL
 * (weights-only); config_yaml may be NULL. */
int tstate_save(const char *dir, const ParamStore *ps, const Optimizer *opt, const TrainState *st,
                const AnswerVocab *vocab, const char *config_yaml, uint64_t config_hash,
                char *path_out, size_t path_cap, Err *e);

/* Loads parameters and buffers into ps (every tensor must be present with its shape), and,
 * when non-NULL, the AdamW moments and counters into opt (t from adam_t, the schedule
 * position from step) and the counters into st. The answer
 * vocabulary of the file must equal vocab (when vocab is non-NULL). */
int tstate_load(const char *path, ParamStore *ps, Optimizer *opt, TrainState *st,
                const AnswerVocab *vocab, Err *e);

/* The answer vocabulary stored in a checkpoint (for --predict). */
int tstate_load_vocab(const char *path, AnswerVocab **out, Err *e);
/* The config hash stored in a checkpoint (0 if absent). */
uint64_t tstate_config_hash(const char *path);

#endif
