// TEST_LIBS: vqa_util
// TEST_LABELS: unit
/* test_idmap.c: util/idmap.h: integer and string keys kept by the caller, an id found for
 * every key inserted and -1 for others, duplicates reported with the first id, keys whose
 * hashes all collide told apart by `same`, growth that keeps every id, and the FNV-1a
 * hash against values worked out by hand. */
#include <stdint.h>

#include "testlib.h"
#include "util/idmap.h"

/* integer keys: ids index keys[] */
typedef struct IntKey {
    const int64_t *keys;
    int64_t k;
} IntKey;
static int same_int(const void *ctx, int64_t id) {
    const IntKey *c = ctx;
    return c->keys[id] == c->k;
}

/* string keys: ids index strs[] */
typedef struct StrKey {
    char (*strs)[16];
    const char *s;
} StrKey;
static int same_str(const void *ctx, int64_t id) {
    const StrKey *c = ctx;
    return strcmp(c->strs[id], c->s) == 0;
}

enum { N = 20000 };
static int64_t keys[N];

static void int_keys_are_found_and_absent_keys_are_not(void) {
    IdMap m;
    idmap_init(&m);
    for (int i = 0; i < N; i++) keys[i] = (int64_t)i * 1000003 - 5000000; /* sparse, some negative */
    for (int i = 0; i < N; i++) {
        IntKey c = {keys, keys[i]};
        CHECK(idmap_insert(&m, idmap_hash_int(keys[i]), i, same_int, &c, NULL) == 0);
    }
    CHECK(m.n == N);
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        IntKey c = {keys, keys[i]};
        wrong += idmap_find(&m, idmap_hash_int(keys[i]), same_int, &c) != i;
        IntKey absent = {keys, keys[i] + 1};
        wrong += idmap_find(&m, idmap_hash_int(keys[i] + 1), same_int, &absent) != -1;
    }
    CHECK(wrong == 0);
    idmap_free(&m);
    CHECK(m.cap == 0 && m.n == 0);
}

static void inserting_a_present_key_reports_its_first_id(void) {
    IdMap m = {0};
    int64_t k[3] = {42, 7, 42};
    for (int i = 0; i < 2; i++) {
        IntKey c = {k, k[i]};
        CHECK(idmap_insert(&m, idmap_hash_int(k[i]), i, same_int, &c, NULL) == 0);
    }
    IntKey c = {k, k[2]};
    int64_t found = -5;
    CHECK(idmap_insert(&m, idmap_hash_int(k[2]), 2, same_int, &c, &found) == 1);
    CHECK(found == 0);
    CHECK(m.n == 2);
    CHECK(idmap_find(&m, idmap_hash_int(42), same_int, &c) == 0);
    idmap_free(&m);
}

/* Every key hashes to 5: one probe chain; `same` alone tells them apart, and a lookup of
 * an absent key with that hash walks the chain to the empty slot after it. */
static void colliding_hashes_are_told_apart_by_same(void) {
    static char strs[100][16];
    IdMap m = {0};
    for (int i = 0; i < 100; i++) {
        snprintf(strs[i], sizeof strs[i], "answer %d", i);
        StrKey c = {strs, strs[i]};
        CHECK(idmap_insert(&m, 5, i, same_str, &c, NULL) == 0);
    }
    int wrong = 0;
    for (int i = 0; i < 100; i++) {
        StrKey c = {strs, strs[i]};
        wrong += idmap_find(&m, 5, same_str, &c) != i;
    }
    CHECK(wrong == 0);
    StrKey absent = {strs, "answer 100"};
    CHECK(idmap_find(&m, 5, same_str, &absent) == -1);
    idmap_free(&m);
}

static void table_stays_at_most_half_full_as_it_grows(void) {
    IdMap m = {0};
    for (int i = 0; i < 1000; i++) {
        keys[i] = i;
        IntKey c = {keys, i};
        CHECK(idmap_insert(&m, idmap_hash_int(i), i, same_int, &c, NULL) == 0);
        CHECK((m.cap & (m.cap - 1)) == 0 && m.cap >= 2 * m.n);
    }
    CHECK(m.cap == 2048);
    CHECK(idmap_bytes(&m) == 2048 * 16);
    idmap_free(&m);
}

static void reserve_makes_room_without_growing_later(void) {
    IdMap m = {0};
    CHECK(idmap_reserve(&m, 100) == 0);
    CHECK(m.cap == 256);
    uint64_t *before = m.hash;
    for (int i = 0; i < 100; i++) {
        keys[i] = i;
        IntKey c = {keys, i};
        CHECK(idmap_insert(&m, idmap_hash_int(i), i, same_int, &c, NULL) == 0);
    }
    CHECK(m.cap == 256 && m.hash == before);
    CHECK(idmap_reserve(&m, 10) == 0 && m.cap == 256); /* never shrinks */
    idmap_free(&m);
}

static void empty_map_finds_nothing(void) {
    IdMap m = {0};
    IntKey c = {keys, 1};
    CHECK(idmap_find(&m, idmap_hash_int(1), same_int, &c) == -1);
    idmap_free(&m);
}

/* Values worked out in Python with the tree's offset basis 1469598103934665603 (see
 * idmap.h: not FNV's published 14695981039346656037, so not its published vectors). */
static void fnv1a_matches_values_worked_out_by_hand(void) {
    CHECK(idmap_hash_str("") == 0x14650FB0739D0383ull);
    CHECK(idmap_hash_str("a") == 0x44BD8AD473CD9906ull);
    CHECK(idmap_hash_str("foobar") == 0x88FAD7C0A8FF07F2ull);
    CHECK(idmap_hash_bytes("foobar", 6) == 0x88FAD7C0A8FF07F2ull);
    CHECK(idmap_hash_bytes("a\0b", 3) != idmap_hash_bytes("a", 1)); /* bytes after a NUL count */
}

int main(void) {
    RUN(int_keys_are_found_and_absent_keys_are_not);
    RUN(inserting_a_present_key_reports_its_first_id);
    RUN(colliding_hashes_are_told_apart_by_same);
    RUN(table_stays_at_most_half_full_as_it_grows);
    RUN(reserve_makes_room_without_growing_later);
    RUN(empty_map_finds_nothing);
    RUN(fnv1a_matches_values_worked_out_by_hand);
    return test_summary();
}
