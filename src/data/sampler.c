/* sampler.c: the epoch permutation and its split over ranks (see sampler.h). */
#include "data/sampler.h"

#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

int sampler_init(Sampler *s, int64_t n, int world, int rank, int batch, uint64_t seed, int shuffle,
                 int drop_last, Err *err) {
    memset(s, 0, sizeof *s);
    if (n <= 0) return err_set(err, "sampler: dataset is empty (n = %lld)", (long long)n);
    if (world < 1 || rank < 0 || rank >= world)
        return err_set(err, "sampler: rank %d is not in a world of %d", rank, world);
    if (batch < 1) return err_set(err, "sampler: batch size %d must be >= 1", batch);
    s->perm = malloc(sizeof(int64_t) * (size_t)n);
    if (!s->perm) return err_set(err, "sampler: out of memory for %lld indices", (long long)n);
    s->n = n;
    s->world = world;
    s->rank = rank;
    s->batch = batch;
    s->seed = seed;
    s->shuffle = shuffle;
    s->drop_last = drop_last;
    sampler_set_epoch(s, 0);
    return 0;
}

void sampler_free(Sampler *s) {
    if (!s) return;
    free(s->perm);
    s->perm = NULL;
}

void sampler_set_epoch(Sampler *s, int64_t epoch) {
    s->epoch = epoch;
    for (int64_t i = 0; i < s->n; i++) s->perm[i] = i;
    if (!s->shuffle) return;
    Rng st = {s->seed * RNG_GAMMA ^ ((uint64_t)epoch + 0x632BE59BD9B4E019ull)};
    rng_next(&st);
    for (int64_t i = s->n - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_below(&st, (uint64_t)i + 1);
        int64_t t = s->perm[i];
        s->perm[i] = s->perm[j];
        s->perm[j] = t;
    }
}

int64_t sampler_num_batches(const Sampler *s) {
    int64_t g = (int64_t)s->world * s->batch;
    return s->drop_last ? s->n / g : (s->n + g - 1) / g;
}

int64_t sampler_epoch_positions(const Sampler *s) {
    return sampler_num_batches(s) * s->world * s->batch;
}

void sampler_batch(const Sampler *s, int64_t k, int64_t *idx, int *n_real) {
    int64_t base = k * s->world * s->batch + s->rank;
    int real = 0;
    for (int j = 0; j < s->batch; j++) {
        int64_t p = base + (int64_t)j * s->world;
        if (p < s->n) real++;
        idx[j] = s->perm[p % s->n];
    }
    *n_real = real; /* positions grow with j, so padding rows are the last ones */
}

int sampler_batch_of_position(const Sampler *s, int64_t position, int64_t *k, Err *err) {
    int64_t g = (int64_t)s->world * s->batch;
    if (position < 0 || position % g != 0 || position > sampler_epoch_positions(s))
        return err_set(err,
                       "sampler: resume position %lld is not a multiple of the global batch %lld "
                       "(world %d x batch %d) within the epoch's %lld positions",
                       (long long)position, (long long)g, s->world, s->batch,
                       (long long)sampler_epoch_positions(s));
    *k = position / g;
    return 0;
}
