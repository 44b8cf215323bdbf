/* setup.h: what training and prediction both build from the config before the first
 * step: the synthetic dataset on first use, the splits, the loader options, the model
 * config (from the tokenizer's vocabulary size) and the optimizer's options. */
#ifndef VQA_TRAIN_SETUP_H
#define VQA_TRAIN_SETUP_H

#include "config/config.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "model/vqa_model.h"
#include "optim/optim.h"
#include "util/err.h"
#include "util/log.h"

/* data.synth.dir set: writes the synthetic dataset there (vqa_synth) when it is missing or
 * was made with other data.synth / data.image_size settings (a stamp file records them).
 * Otherwise nothing. */
int setup_synth(const Config *cfg, const Log *log, Err *e);

/* Loads split (train / val / test) of the config; error if its questions file is null. */
int setup_load_split(const Config *cfg, CfgSplit split, VqaDataset *ds, Err *e);
const char *setup_split_name(CfgSplit s);

/* The loader options of a run's split: train = 1 for the training split (shuffle,
 * data.drop_last, data.augment.*), 0 for evaluation (in order, padded, no augmentation;
 * eval.batch_size or else train.batch_size). `prepared` is left NULL: set it to
 * prep_split_path(data.prepared, split) when data.prepared is set. */
void setup_loader_opts(LoaderOpts *o, const Config *cfg, int train, int rank, int world);

/* The model config (model.*) for a vocabulary of n_answers classes and a tokenizer of
 * tok_vocab entries with [PAD] = pad_id. Error when model.num_answers contradicts it, or
 * when a freeze list does not fit the model's FreezeSpec (FREEZE_MAX_STAGES names of at
 * most FREEZE_NAME_MAX - 1 characters). */
int setup_model_config(const Config *cfg, int n_answers, int tok_vocab, int pad_id, VqaModelConfig *mc, Err *e);

/* The optimizer's options from train.* (lr, schedule, warmup_steps, adam_*, weight_decay,
 * clip_grad_norm) for a run of total_steps optimizer steps. */
void setup_optim_options(const Config *cfg, int64_t total_steps, OptimOptions *oo);

#endif
