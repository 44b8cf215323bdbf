/* desc_cache.h: a small fixed-capacity LRU map from a short integer key to a fixed-size
 * value. The CUDA backend keeps one per process for its cuDNN convolution choices (key =
 * shape + direction + math mode, value = algorithm + workspace bytes), so the algorithm
 * search runs once per shape, not once per call. Plain host C with no CUDA in it, so it is
 * unit-tested on any machine (tests/test_desc_cache.c).
 *
 * Lookup is a scan of at most `capacity` entries comparing a 64-bit FNV-1a hash first (a
 * ResNet-50 has ~25 distinct convolution shapes, x3 directions); when full, the least
 * recently used entry (oldest stamp of get/put) is replaced. Not thread-safe: one host
 * thread drives a GPU stream. */
#ifndef VQA_DESC_CACHE_H
#define VQA_DESC_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "ops/ops.h"

#define DC_MAX_KEY 16 /* int32 words */
#define DC_MAX_VAL 64 /* bytes */

typedef struct DescCacheEntry {
    uint64_t hash;
    uint64_t stamp; /* clock value of the last get/put; 0 = empty slot */
    int nkey;
    int32_t key[DC_MAX_KEY];
    unsigned char val[DC_MAX_VAL];
} DescCacheEntry;

typedef struct DescCache {
    DescCacheEntry *e; /* owned, capacity entries */
    int capacity, count;
    uint64_t clock;
    uint64_t hits, misses, evictions;
} DescCache;

/* capacity >= 1. Returns -1 when out of memory. */
int dc_init(DescCache *c, int capacity);
void dc_free(DescCache *c);
/* FNV-1a 64 over the little-endian bytes of key[0..n), then of n (so [1] and [1, 0] differ). */
uint64_t dc_hash(const int32_t *key, int n);
/* The value stored under key (and marks it recently used), or NULL (counts a miss). */
void *dc_get(DescCache *c, const int32_t *key, int n);
/* Stores val_size (<= DC_MAX_VAL) bytes under key, replacing a value already there or the
 * least recently used entry when full. Returns the stored copy; NULL if n or val_size is
 * out of range. */
void *dc_put(DescCache *c, const int32_t *key, int n, const void *val, size_t val_size);

/* Convolution key: the shape fields of s, its activation format (s->f: layout and dtype),
 * then direction (0 fwd, 1 bwd data, 2 bwd filter) and a math mode (the backend's
 * precision setting). Writes DC_MAX_KEY words at most;
 * returns the number written. */
enum { DC_CONV_FWD = 0, DC_CONV_BWD_DATA = 1, DC_CONV_BWD_FILTER = 2 };
int dc_conv_key(const ConvShape *s, int direction, int math_mode, int32_t key[DC_MAX_KEY]);

#endif
