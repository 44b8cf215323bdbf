// TEST_LIBS: vqa_data
// TEST_LABELS: unit
/* test_sampler.c: the epoch permutation and its split over ranks: N ranks with batch B
 * equal one rank with batch N*B, padding and drop_last on hand-worked cases, resume by
 * global position across world sizes. */
#include <stdlib.h>
#include <string.h>

#include "data/sampler.h"
#include "testlib.h"

static void permutation_is_seeded_and_complete(void) {
    Sampler a, b;
    Err e;
    CHECK(sampler_init(&a, 1000, 1, 0, 10, 42, 1, 0, &e) == 0);
    CHECK(sampler_init(&b, 1000, 1, 0, 10, 42, 1, 0, &e) == 0);
    CHECK(memcmp(a.perm, b.perm, sizeof(int64_t) * 1000) == 0);
    char seen[1000] = {0};
    int moved = 0;
    for (int i = 0; i < 1000; i++) {
        seen[a.perm[i]]++;
        moved += a.perm[i] != i;
    }
    int all = 1;
    for (int i = 0; i < 1000; i++) all &= seen[i] == 1;
    CHECK(all);
    CHECK(moved > 900);
    sampler_set_epoch(&b, 1);
    CHECK(memcmp(a.perm, b.perm, sizeof(int64_t) * 1000) != 0);
    sampler_set_epoch(&b, 0);
    CHECK(memcmp(a.perm, b.perm, sizeof(int64_t) * 1000) == 0);
    sampler_free(&b);
    CHECK(sampler_init(&b, 1000, 1, 0, 10, 43, 1, 0, &e) == 0);
    CHECK(memcmp(a.perm, b.perm, sizeof(int64_t) * 1000) != 0);
    sampler_free(&b);
    CHECK(sampler_init(&b, 5, 1, 0, 2, 42, 0, 0, &e) == 0); /* shuffle off: identity */
    for (int i = 0; i < 5; i++) CHECK(b.perm[i] == i);
    sampler_free(&a);
    sampler_free(&b);
}

static void n_ranks_with_b_equal_one_rank_with_nb(void) {
    const int64_t n = 103;
    const int N = 4, B = 5;
    Err e;
    Sampler one;
    CHECK(sampler_init(&one, n, 1, 0, N * B, 7, 1, 0, &e) == 0);
    sampler_set_epoch(&one, 3);
    Sampler r[4];
    for (int i = 0; i < N; i++) {
        CHECK(sampler_init(&r[i], n, N, i, B, 7, 1, 0, &e) == 0);
        sampler_set_epoch(&r[i], 3);
        CHECK(sampler_num_batches(&r[i]) == sampler_num_batches(&one));
    }
    CHECK(sampler_num_batches(&one) == 6); /* ceil(103 / 20) */
    int same = 1;
    for (int64_t k = 0; k < sampler_num_batches(&one); k++) {
        int64_t big[20], small[5];
        int real_big, real_small;
        sampler_batch(&one, k, big, &real_big);
        for (int i = 0; i < N; i++) {
            sampler_batch(&r[i], k, small, &real_small);
            for (int j = 0; j < B; j++) {
                int jb = i + j * N; /* rank i's row j is the big batch's row i + jN */
                if (small[j] != big[jb]) same = 0;
                if ((j < real_small) != (jb < real_big)) same = 0;
            }
        }
    }
    CHECK(same);
    for (int i = 0; i < N; i++) sampler_free(&r[i]);
    sampler_free(&one);
}

static void last_batch_is_padded_by_repeating_from_the_start(void) {
    Sampler s;
    Err e;
    CHECK(sampler_init(&s, 10, 1, 0, 4, 1, 0, 0, &e) == 0);
    CHECK(sampler_num_batches(&s) == 3);
    int64_t idx[4];
    int real;
    sampler_batch(&s, 2, idx, &real);
    CHECK(real == 2);
    CHECK(idx[0] == 8 && idx[1] == 9 && idx[2] == 0 && idx[3] == 1);
    sampler_free(&s);
    /* World 3, batch 2: global batch 1 = positions 6..11 -> rank 0: 6, 9; rank 1: 7, 10(->0);
     * rank 2: 8, 11(->1). */
    int64_t want[3][2] = {{6, 9}, {7, 0}, {8, 1}};
    int want_real[3] = {2, 1, 1};
    for (int r = 0; r < 3; r++) {
        CHECK(sampler_init(&s, 10, 3, r, 2, 1, 0, 0, &e) == 0);
        CHECK(sampler_num_batches(&s) == 2);
        sampler_batch(&s, 1, idx, &real);
        CHECK(idx[0] == want[r][0] && idx[1] == want[r][1] && real == want_real[r]);
        sampler_free(&s);
    }
}

static void drop_last_drops_the_partial_global_batch(void) {
    Sampler s;
    Err e;
    CHECK(sampler_init(&s, 10, 1, 0, 4, 1, 1, 1, &e) == 0);
    CHECK(sampler_num_batches(&s) == 2);
    CHECK(sampler_epoch_positions(&s) == 8);
    sampler_free(&s);
    CHECK(sampler_init(&s, 10, 3, 2, 2, 1, 1, 1, &e) == 0);
    CHECK(sampler_num_batches(&s) == 1);
    int64_t idx[2];
    int real;
    sampler_batch(&s, 0, idx, &real);
    CHECK(real == 2);
    sampler_free(&s);
}

static void every_sample_once_per_epoch_over_all_ranks(void) {
    const int64_t n = 57;
    Err e;
    int count[57] = {0}, padding = 0;
    for (int r = 0; r < 3; r++) {
        Sampler s;
        CHECK(sampler_init(&s, n, 3, r, 4, 99, 1, 0, &e) == 0);
        sampler_set_epoch(&s, 5);
        for (int64_t k = 0; k < sampler_num_batches(&s); k++) {
            int64_t idx[4];
            int real;
            sampler_batch(&s, k, idx, &real);
            for (int j = 0; j < 4; j++) {
                if (j < real) count[idx[j]]++;
                else padding++;
            }
        }
        sampler_free(&s);
    }
    int ok = 1;
    for (int i = 0; i < n; i++) ok &= count[i] == 1;
    CHECK(ok);
    CHECK(padding == 60 - 57);
}

static void resume_position_continues_at_another_world_size(void) {
    /* Global batch 12: 2 ranks x 6 before the interruption, 3 ranks x 4 after. */
    const int64_t n = 50;
    Err e;
    Sampler a[2], b[3];
    for (int r = 0; r < 2; r++) { CHECK(sampler_init(&a[r], n, 2, r, 6, 5, 1, 0, &e) == 0); sampler_set_epoch(&a[r], 2); }
    for (int r = 0; r < 3; r++) { CHECK(sampler_init(&b[r], n, 3, r, 4, 5, 1, 0, &e) == 0); sampler_set_epoch(&b[r], 2); }
    int64_t k;
    CHECK(sampler_batch_of_position(&b[0], 24, &k, &e) == 0);
    CHECK(k == 2);
    int same = 1;
    for (; k < sampler_num_batches(&a[0]); k++) {
        /* The same global batch as a set of (dataset index, is padding) per position. */
        int64_t ga[12], gb[12];
        int pa[12], pb[12];
        for (int r = 0; r < 2; r++) {
            int64_t idx[6]; int real;
            sampler_batch(&a[r], k, idx, &real);
            for (int j = 0; j < 6; j++) { ga[r + 2 * j] = idx[j]; pa[r + 2 * j] = j >= real; }
        }
        for (int r = 0; r < 3; r++) {
            int64_t idx[4]; int real;
            sampler_batch(&b[r], k, idx, &real);
            for (int j = 0; j < 4; j++) { gb[r + 3 * j] = idx[j]; pb[r + 3 * j] = j >= real; }
        }
        for (int p = 0; p < 12; p++) same &= ga[p] == gb[p] && pa[p] == pb[p];
    }
    CHECK(same);
    CHECK(sampler_batch_of_position(&b[0], 20, &k, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "20");
    CHECK_STR_CONTAINS(e.msg, "global batch 12");
    for (int r = 0; r < 2; r++) sampler_free(&a[r]);
    for (int r = 0; r < 3; r++) sampler_free(&b[r]);
}

static void bad_arguments_are_errors(void) {
    Sampler s;
    Err e;
    CHECK(sampler_init(&s, 0, 1, 0, 4, 1, 1, 0, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "empty");
    CHECK(sampler_init(&s, 10, 2, 2, 4, 1, 1, 0, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "rank 2");
    CHECK(sampler_init(&s, 10, 1, 0, 0, 1, 1, 0, &e) == -1);
}

int main(void) {
    RUN(permutation_is_seeded_and_complete);
    RUN(n_ranks_with_b_equal_one_rank_with_nb);
    RUN(last_batch_is_padded_by_repeating_from_the_start);
    RUN(drop_last_drops_the_partial_global_batch);
    RUN(every_sample_once_per_epoch_over_all_ranks);
    RUN(resume_position_continues_at_another_world_size);
    RUN(bad_arguments_are_errors);
    return test_summary();
}
