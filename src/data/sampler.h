/* sampler.h: which dataset samples each rank reads, batch by batch (DistributedSampler).
 *
 * One epoch is a permutation perm[0..n) of the dataset, from (seed, epoch) when shuffling,
 * the identity otherwise. Global batches of G = world * B positions are cut from it:
 * global batch k = positions [k G, (k+1) G). Rank r of N takes the positions
 * r, r + N, r + 2N, ... of that range (DistributedSampler's interleaving), so N ranks with
 * batch B read exactly the samples one rank with batch N B reads, batch for batch.
 *
 * The end: with drop_last the epoch has floor(n / G) global batches; without it,
 * ceil(n / G), and the positions past n are padding: they repeat perm from its start
 * (perm[p mod n]) so every row holds a valid sample, but they are marked (rows >= n_real
 * of the rank's batch) and must carry weight 0 in the loss and metrics.
 *
 * A resume position is global: the number of positions consumed in the epoch, a multiple
 * of G. It means the same thing at any world size with the same global batch. */
#ifndef VQA_SAMPLER_H
#define VQA_SAMPLER_H

#include <stdint.h>

#include "util/err.h"

typedef struct Sampler {
    int64_t n;          /* dataset size */
    int world, rank;
    int batch;          /* per rank (B) */
    uint64_t seed;
    int shuffle, drop_last;
    int64_t epoch;
    int64_t *perm;      /* [n], owned */
} Sampler;

int sampler_init(Sampler *s, int64_t n, int world, int rank, int batch, uint64_t seed, int shuffle,
                 int drop_last, Err *err);
void sampler_free(Sampler *s);
/* Builds the epoch's permutation (splitmix64-seeded Fisher–Yates). */
void sampler_set_epoch(Sampler *s, int64_t epoch);
/* Global batches in one epoch (= batches of every rank). */
int64_t sampler_num_batches(const Sampler *s);
/* Positions in one epoch, padding included (num_batches * world * batch). */
int64_t sampler_epoch_positions(const Sampler *s);
/* This rank's batch k: idx[B] dataset indices, rows >= *n_real are padding. */
void sampler_batch(const Sampler *s, int64_t k, int64_t *idx, int *n_real);
/* Global position -> index of the first batch to read; error unless it is a multiple of
 * world * batch inside the epoch (names both numbers). */
int sampler_batch_of_position(const Sampler *s, int64_t position, int64_t *k, Err *err);

#endif
