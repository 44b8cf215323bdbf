/* idmap.c: growing and inserting into the open-addressing map of idmap.h. */
#include "util/idmap.h"

#include <stdlib.h>
#include <string.h>

void idmap_init(IdMap *m) { memset(m, 0, sizeof *m); }

void idmap_free(IdMap *m) {
    free(m->hash);
    free(m->id);
    memset(m, 0, sizeof *m);
}

size_t idmap_bytes(const IdMap *m) { return m->cap * (sizeof *m->hash + sizeof *m->id); }

/* The first empty slot on hash's probe path (the table has one: it is at most half full). */
static size_t empty_slot(const IdMap *m, uint64_t hash) {
    size_t j = hash & (m->cap - 1);
    while (m->id[j] >= 0) j = (j + 1) & (m->cap - 1);
    return j;
}

int idmap_reserve(IdMap *m, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    if (cap <= m->cap) return 0;
    IdMap g = {malloc(cap * sizeof *g.hash), malloc(cap * sizeof *g.id), cap, m->n};
    if (!g.hash || !g.id) {
        free(g.hash);
        free(g.id);
        return -1;
    }
    for (size_t j = 0; j < cap; j++) g.id[j] = -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->id[i] < 0) continue;
        size_t j = empty_slot(&g, m->hash[i]);
        g.hash[j] = m->hash[i];
        g.id[j] = m->id[i];
    }
    free(m->hash);
    free(m->id);
    *m = g;
    return 0;
}

int idmap_insert(IdMap *m, uint64_t hash, int64_t id, IdMapSame same, const void *ctx, int64_t *found) {
    if (2 * (m->n + 1) > m->cap && idmap_reserve(m, m->cap ? m->cap : 8) != 0) return -1;
    size_t j = hash & (m->cap - 1);
    for (; m->id[j] >= 0; j = (j + 1) & (m->cap - 1)) {
        if (m->hash[j] == hash && same(ctx, m->id[j])) {
            if (found) *found = m->id[j];
            return 1;
        }
    }
    m->hash[j] = hash;
    m->id[j] = id;
    m->n++;
    return 0;
}
