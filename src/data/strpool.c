/* strpool.c: chunked string arena with an intern table (util/idmap.h; see strpool.h). */
#include "data/strpool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/idmap.h"

#define SP_CHUNK ((size_t)1 << 20)

typedef struct Chunk {
    struct Chunk *next;
    size_t used, cap;
    char data[];
} Chunk;

struct StrPool {
    Chunk *head;
    size_t bytes;      /* in chunks */
    IdMap index;       /* interned bytes -> their index in str */
    struct Interned {
        const char *s; /* in the chunks */
        size_t n;
    } *str;            /* [n_str] the interned strings */
    size_t n_str, cap_str;
};

StrPool *sp_new(void) { return calloc(1, sizeof(StrPool)); }

void sp_free(StrPool *p) {
    if (!p) return;
    for (Chunk *c = p->head; c;) {
        Chunk *n = c->next;
        free(c);
        c = n;
    }
    idmap_free(&p->index);
    free(p->str);
    free(p);
}

const char *sp_add(StrPool *p, const char *s, size_t n) {
    Chunk *c = p->head;
    if (!c || c->cap - c->used < n + 1) {
        /* A string longer than a chunk gets a chunk of its own, placed behind the head
         * so that the head's free space is not wasted. */
        size_t cap = n + 1 > SP_CHUNK / 4 ? n + 1 : SP_CHUNK;
        Chunk *nc = malloc(sizeof(Chunk) + cap);
        if (!nc) return NULL;
        nc->used = 0;
        nc->cap = cap;
        p->bytes += sizeof(Chunk) + cap;
        if (cap != SP_CHUNK && c) {
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            p->head = nc;
        }
        c = nc;
    }
    char *d = c->data + c->used;
    memcpy(d, s, n);
    d[n] = '\0';
    c->used += n + 1;
    return d;
}

typedef struct SpKey {
    const StrPool *p;
    const char *s;
    size_t n;
} SpKey;

static int same_bytes(const void *ctx, int64_t id) {
    const SpKey *k = ctx;
    return k->p->str[id].n == k->n && memcmp(k->p->str[id].s, k->s, k->n) == 0;
}

const char *sp_intern(StrPool *p, const char *s, size_t n) {
    uint64_t h = idmap_hash_bytes(s, n);
    SpKey k = {p, s, n};
    int64_t id = idmap_find(&p->index, h, same_bytes, &k);
    if (id >= 0) return p->str[id].s;
    if (p->n_str == p->cap_str) {
        size_t nc = p->cap_str ? 2 * p->cap_str : 1024;
        struct Interned *ns = realloc(p->str, nc * sizeof *ns);
        if (!ns) return NULL;
        p->str = ns;
        p->cap_str = nc;
    }
    const char *d = sp_add(p, s, n);
    if (!d || idmap_insert(&p->index, h, (int64_t)p->n_str, same_bytes, &k, NULL) < 0) return NULL;
    p->str[p->n_str++] = (struct Interned){d, n};
    return d;
}

size_t sp_bytes(const StrPool *p) {
    return p->bytes + idmap_bytes(&p->index) + p->cap_str * sizeof *p->str;
}
