/* desc_cache.c: the LRU map of desc_cache.h (hash, scan, least-recently-used eviction). */
#include "ops/desc_cache.h"

#include <stdlib.h>
#include <string.h>

int dc_init(DescCache *c, int capacity) {
    memset(c, 0, sizeof *c);
    if (capacity < 1) capacity = 1;
    c->e = calloc((size_t)capacity, sizeof *c->e);
    if (!c->e) return -1;
    c->capacity = capacity;
    return 0;
}

void dc_free(DescCache *c) {
    free(c->e);
    memset(c, 0, sizeof *c);
}

static uint64_t fnv_bytes(uint64_t h, uint32_t w) {
    for (int i = 0; i < 4; i++) {
        h ^= (w >> (8 * i)) & 0xFFu;
        h *= 0x100000001B3ull;
    }
    return h;
}

uint64_t dc_hash(const int32_t *key, int n) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (int i = 0; i < n; i++) h = fnv_bytes(h, (uint32_t)key[i]);
    return fnv_bytes(h, (uint32_t)n);
}

static DescCacheEntry *find(DescCache *c, const int32_t *key, int n, uint64_t h) {
    for (int i = 0; i < c->capacity; i++) {
        DescCacheEntry *e = &c->e[i];
        if (e->stamp && e->hash == h && e->nkey == n && memcmp(e->key, key, (size_t)n * sizeof *key) == 0)
            return e;
    }
    return NULL;
}

void *dc_get(DescCache *c, const int32_t *key, int n) {
    if (n < 0 || n > DC_MAX_KEY) return NULL;
    DescCacheEntry *e = find(c, key, n, dc_hash(key, n));
    if (!e) {
        c->misses++;
        return NULL;
    }
    c->hits++;
    e->stamp = ++c->clock;
    return e->val;
}

void *dc_put(DescCache *c, const int32_t *key, int n, const void *val, size_t val_size) {
    if (n < 0 || n > DC_MAX_KEY || val_size > DC_MAX_VAL) return NULL;
    const uint64_t h = dc_hash(key, n);
    DescCacheEntry *e = find(c, key, n, h);
    if (!e) {
        /* an empty slot, else the oldest stamp */
        DescCacheEntry *victim = &c->e[0];
        for (int i = 0; i < c->capacity; i++) {
            if (!c->e[i].stamp) {
                victim = &c->e[i];
                break;
            }
            if (c->e[i].stamp < victim->stamp) victim = &c->e[i];
        }
        if (victim->stamp) c->evictions++;
        else c->count++;
        e = victim;
        memset(e, 0, sizeof *e);
        e->hash = h;
        e->nkey = n;
        memcpy(e->key, key, (size_t)n * sizeof *key);
    }
    memcpy(e->val, val, val_size);
    e->stamp = ++c->clock;
    return e->val;
}

int dc_conv_key(const ConvShape *s, int direction, int math_mode, int32_t key[DC_MAX_KEY]) {
    int n = 0;
    key[n++] = s->N, key[n++] = s->C, key[n++] = s->H, key[n++] = s->W;
    key[n++] = s->K, key[n++] = s->R, key[n++] = s->S;
    key[n++] = s->stride, key[n++] = s->pad;
    /* the activation format: the same shape in NHWC or bf16 is another cuDNN problem (other
     * descriptors, other algorithms and workspace sizes) */
    key[n++] = s->f.nhwc ? 1 : 0, key[n++] = (int32_t)s->f.dt;
    key[n++] = direction, key[n++] = math_mode;
    return n;
}
