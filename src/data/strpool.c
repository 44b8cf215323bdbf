/* strpool.c: chunked string arena with an open-addressing intern table (see strpool.h). */
#include "data/strpool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SP_CHUNK ((size_t)1 << 20)

typedef struct Chunk {
    struct Chunk *next;
    size_t used, cap;
    char data[];
} Chunk;

typedef struct Slot {
    const char *s;  /* NULL: empty */
    size_t n;
    uint64_t h;
} Slot;

struct StrPool {
    Chunk *head;
    size_t bytes;
    Slot *slots;
    size_t n_slots, n_used;  /* n_slots is a power of two (or 0) */
};

StrPool *sp_new(void) { return calloc(1, sizeof(StrPool)); }

void sp_free(StrPool *p) {
    if (!p) return;
    for (Chunk *c = p->head; c;) {
        Chunk *n = c->next;
        free(c);
        c = n;
    }
    free(p->slots);
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

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;  /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int grow(StrPool *p) {
    size_t ns = p->n_slots ? p->n_slots * 2 : 1024;
    Slot *t = calloc(ns, sizeof *t);
    if (!t) return -1;
    for (size_t i = 0; i < p->n_slots; i++) {
        if (!p->slots[i].s) continue;
        size_t j = p->slots[i].h & (ns - 1);
        while (t[j].s) j = (j + 1) & (ns - 1);
        t[j] = p->slots[i];
    }
    p->bytes += (ns - p->n_slots) * sizeof *t;
    free(p->slots);
    p->slots = t;
    p->n_slots = ns;
    return 0;
}

const char *sp_intern(StrPool *p, const char *s, size_t n) {
    if (2 * (p->n_used + 1) > p->n_slots && grow(p)) return NULL;
    uint64_t h = hash_bytes(s, n);
    size_t j = h & (p->n_slots - 1);
    while (p->slots[j].s) {
        if (p->slots[j].h == h && p->slots[j].n == n && memcmp(p->slots[j].s, s, n) == 0)
            return p->slots[j].s;
        j = (j + 1) & (p->n_slots - 1);
    }
    const char *d = sp_add(p, s, n);
    if (!d) return NULL;
    p->slots[j] = (Slot){d, n, h};
    p->n_used++;
    return d;
}

size_t sp_bytes(const StrPool *p) { return p->bytes; }
