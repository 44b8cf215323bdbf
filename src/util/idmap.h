/* idmap.h: the one hash table of the tree: an open-addressing map from a key to an id (a
 * non-negative int64, in practice an index into the caller's own array), with linear
 * probing in a power-of-two table kept at most half full.
 *
 * The table holds only (hash, id) pairs; the keys stay where the caller already keeps them
 * (a dataset's samples, a string pool, a vocabulary file), and the caller's `same`
 * function says whether the key of a stored id is the key looked up. So one table serves
 * integer keys and string keys alike, with no key copied twice:
 *
 *   question_id -> sample (data/dataset.c)      image path -> image (data/prep.c)
 *   answer -> class, answer -> count (answers.c) interned strings (data/strpool.c)
 *   bad-sample keys (data/loader.c)              token -> id (data/tokenizer.c)
 *
 * The hash helpers below are the ones those callers use (FNV-1a 64 for bytes, splitmix64's
 * mixer for integers). The FNV offset basis is the tree's 1469598103934665603, one digit
 * short of the published 14695981039346656037; it is kept because model/params.c seeds
 * every weight initialization with this hash of the parameter's name (any start value
 * hashes these tables as well). idmap_find is inline: with a static `same` the compiler inlines the
 * whole probe (the tokenizer looks up every word piece). Not thread-safe for writers. */
#ifndef VQA_IDMAP_H
#define VQA_IDMAP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/rng.h"

typedef struct IdMap {
    uint64_t *hash; /* [cap] the key's hash in each slot */
    int64_t *id;    /* [cap] the id in each slot; -1: empty */
    size_t cap, n;  /* cap: 0 or a power of two >= 2n */
} IdMap;

/* 1 if the key of id is the key being looked up (ctx points at that key). */
typedef int (*IdMapSame)(const void *ctx, int64_t id);

/* FNV-1a, 64-bit (the tree's offset basis, see above), of s[0..n). */
static inline uint64_t idmap_hash_bytes(const void *s, size_t n) {
    const unsigned char *p = s;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}
/* idmap_hash_bytes of a NUL-terminated string (without the NUL). */
static inline uint64_t idmap_hash_str(const char *s) { return idmap_hash_bytes(s, strlen(s)); }
/* An integer key: splitmix64's mixer (consecutive ids land far apart). */
static inline uint64_t idmap_hash_int(int64_t k) { return rng_mix64((uint64_t)k); }

/* An empty map ({0} is one too); it allocates on the first insert. */
void idmap_init(IdMap *m);
void idmap_free(IdMap *m);
/* Room for n ids in all without growing. -1 when out of memory (the map is unchanged). */
int idmap_reserve(IdMap *m, size_t n);
/* Adds id under the key with this hash, unless an equal key is there: 0 added; 1 already
 * there (*found = its id, nothing changed; found may be NULL); -1 out of memory. */
int idmap_insert(IdMap *m, uint64_t hash, int64_t id, IdMapSame same, const void *ctx, int64_t *found);
/* Bytes allocated by the map (for memory reports). */
size_t idmap_bytes(const IdMap *m);

/* The id stored under the key with this hash, or -1. */
static inline int64_t idmap_find(const IdMap *m, uint64_t hash, IdMapSame same, const void *ctx) {
    if (!m->cap) return -1;
    for (size_t j = hash & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        int64_t id = m->id[j];
        if (id < 0) return -1;
        if (m->hash[j] == hash && same(ctx, id)) return id;
    }
}

#endif
