/* loader.h: the data loader: worker threads turn this rank's shard of the dataset into
 * ready batches, ahead of the training step.
 *
 *   sampler (rank's positions of the epoch) -> rows claimed by worker threads:
 *     image: decode file (or read the prepared file's pixels) -> resize / augment -> [3, S, S]
 *     text:  question (left/right swapped when flipped) -> tok_encode -> [L] ids + mask
 *     target: ans_soft_targets (or the prepared file's sparse pairs) -> [A]
 *   -> a ring of prefetch + 1 Batch slots, filled strictly in batch order.
 *
 * Determinism: every row's work depends only on (seed, epoch, sample index), never on the
 * thread that did it, so any number of workers gives the same batches bit for bit.
 *
 * Bad images (missing, zero bytes, corrupt, truncated, too large) do not stop training: the
 * row gets a zero image (the normalized mean colour), is marked in loader_batch_bad(), is
 * counted, and its path + reason is queued once for the caller to log
 * (loader_pop_bad_report), in the order the batches are handed out. When the bad rows handed out in the epoch exceed
 * max_bad_fraction of the rank's rows in the epoch, loader_next fails with a message that
 * lists them. The check runs in batch order on the consumer side, so it is deterministic. */
#ifndef VQA_LOADER_H
#define VQA_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "data/answers.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/tokenizer.h"
#include "util/err.h"

/* Batch buffers come from here (e.g. cudaHostAlloc'ed pinned memory later); NULL ->
 * 64-byte aligned malloc. Called only from loader_open / loader_close. */
typedef struct LoaderAlloc {
    void *(*alloc)(void *ctx, size_t bytes);
    void (*free)(void *ctx, void *p);
    void *ctx;
} LoaderAlloc;

typedef struct LoaderOpts {
    int batch_size;        /* per rank */
    int rank, world;
    uint64_t seed;
    int shuffle;
    int drop_last;
    int image_size;        /* S */
    int max_len;           /* L */
    ImgResizeMode resize;
    ImgAugment augment;
    int workers;           /* threads (>= 1) */
    int prefetch;          /* batches prepared ahead (>= 1) */
    double max_bad_fraction;
    const char *prepared;  /* vqa_prep file to read instead of decoding images, or NULL */
    LoaderAlloc alloc;
} LoaderOpts;

/* Defaults: batch 32, world 1, seed 0, shuffle, keep last, 224, L 20, shorter_crop,
 * no augmentation, 4 workers, prefetch 2, max_bad_fraction 0.001. */
void loader_opts_default(LoaderOpts *o);

typedef struct LoaderStats {
    double data_wait_s;     /* time loader_next spent waiting for a batch */
    int64_t images_decoded; /* images produced (decoded or read from the prepared file) */
    int64_t bad_images;     /* bad rows handed out (a bad image used twice counts twice) */
    int64_t bad_distinct;   /* distinct bad images handed out so far (= reports) */
    int64_t batches;        /* batches handed out */
} LoaderStats;

typedef struct Loader Loader;

/* ds: the split (must outlive the loader; with `prepared` it may be NULL, the file then
 * provides everything). tok: may be NULL (tokens all [PAD], mask 0). vocab: NULL for no
 * targets (Batch.targets = NULL). Starts epoch 0 at position 0. */
int loader_open(Loader **out, const LoaderOpts *o, const VqaDataset *ds, const Tokenizer *tok,
                const AnswerVocab *vocab, Err *err);
/* Stops the workers and frees everything; batches still borrowed become invalid. */
void loader_close(Loader *l);

/* (Re)starts: epoch's permutation, first batch at global position start_position (number
 * of samples consumed in the epoch over all ranks, a multiple of world * batch_size).
 * Every borrowed batch must have been released. */
int loader_start_epoch(Loader *l, int64_t epoch, int64_t start_position, Err *err);
/* 1: *b is the next batch (borrowed until loader_release); 0: end of epoch; -1: error. */
int loader_next(Loader *l, Batch **b, Err *err);
void loader_release(Loader *l, Batch *b);

/* Batches per epoch for this rank, and the global position after the batches handed out
 * so far (what a checkpoint stores). */
int64_t loader_num_batches(const Loader *l);
int64_t loader_position(const Loader *l);
/* Real (not padding) rows of the last global batch handed out, over all ranks: the
 * sampler pads only an epoch's last global batch, so this is world * batch except there. */
int64_t loader_last_global_real(const Loader *l);
/* [B] 1 where the row's image was bad (zero image); valid while b is borrowed. */
const uint8_t *loader_batch_bad(const Loader *l, const Batch *b);
LoaderStats loader_stats(const Loader *l);
/* Pops one "path: reason" report of a newly seen bad image into buf; 1 if one was popped. */
int loader_pop_bad_report(Loader *l, char *buf, size_t cap);

/* Text side of the flip on token ids (the prepared path has no text): every whole-word
 * token "left" becomes "right" and back (a token followed by a "##" continuation is part
 * of a longer word and stays). ids [n]. */
void loader_swap_left_right_ids(const Tokenizer *tok, int32_t *ids, int n);

#endif
