/* test_checkpoint.c: checkpoint save / rotation / best / find-latest / load.
 *
 * The same program is also the writer and the validator of tests/test_ckpt_kill.sh:
 *   test_checkpoint --writer-loop DIR MB   saves MB-sized checkpoints forever (resuming
 *                                          from the newest valid one), until killed
 *   test_checkpoint --validate DIR         every file under a real name must validate and
 *                                          hold exactly the data its step says */
// TEST_LIBS: vqa_io
// TEST_LABELS: unit
#include "testlib.h"

#include <dirent.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/atomic.h"
#include "io/checkpoint.h"

static char g_dir[256];

static const char *sub(const char *name) {
    static char buf[4][1024];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static int exists(const char *p) { return access(p, F_OK) == 0; }

static void rm_rf(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char p[2048];
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) rm_rf(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* A small checkpoint: tensor "w" [2, 3] = step + i, "m" [3] = -i, plus metadata. */
static int save_small(const char *dir, int64_t step, char *path, size_t cap) {
    float w[6], m[3];
    for (int i = 0; i < 6; i++) w[i] = (float)step + (float)i;
    for (int i = 0; i < 3; i++) m[i] = (float)-i;
    int64_t s23[2] = {2, 3}, s3[1] = {3};
    StWriter *wr = st_writer_new();
    st_writer_add(wr, "w", DT_F32, 2, s23, w);
    st_writer_add(wr, "m", DT_F32, 1, s3, m);
    ckpt_meta_set_i64(wr, CKPT_KEY_EPOCH, step / 10);
    Err e = {{0}};
    int rc = ckpt_save(wr, dir, step, path, cap, &e);
    if (rc) fprintf(stderr, "save_small: %s\n", e.msg);
    st_writer_free(wr);
    return rc;
}

static void fnv1a_hash_matches_known_vectors(void) {
    char h[17];
    ckpt_hash_hex("", 0, h);
    CHECK(strcmp(h, "cbf29ce484222325") == 0);
    ckpt_hash_hex("a", 1, h);
    CHECK(strcmp(h, "af63dc4c8601ec8c") == 0);
    ckpt_hash_hex("foobar", 6, h);
    CHECK(strcmp(h, "85944171f73967e8") == 0);
}

static void name_parsing_accepts_only_real_checkpoint_names(void) {
    int64_t s = -1;
    CHECK(ckpt_parse_name("/x/y/step_00001000.safetensors", &s) == 0 && s == 1000);
    CHECK(ckpt_parse_name("step_123456789.safetensors", &s) == 0 && s == 123456789);
    CHECK(ckpt_parse_name("step_00001000.safetensors.tmp.123", &s) == -1);
    CHECK(ckpt_parse_name("step_.safetensors", &s) == -1);
    CHECK(ckpt_parse_name("best.safetensors", &s) == -1);
    CHECK(ckpt_parse_name("step_12a.safetensors", &s) == -1);
}

static void save_and_load_round_trip_with_all_metadata(void) {
    const char *dir = sub("rt/nested"); /* parents are created */
    float w[6] = {1, 2, 3, 4, 5, 6};
    float m1[6] = {0.5f, 0, 0, 0, 0, -0.5f};
    int64_t rm[1] = {7}, s23[2] = {2, 3}, s1[1] = {1};
    uint64_t rng[4] = {1, UINT64_MAX, 0x0123456789abcdefull, 0};
    const char *answers[4] = {"yes", "no", "2", "a \"quoted\" ü"};
    char cfg_hash[17];
    ckpt_hash_hex("run: {seed: 1}", 14, cfg_hash);

    StWriter *wr = st_writer_new();
    st_writer_add(wr, "model.w", DT_F32, 2, s23, w);
    st_writer_add(wr, "optim.m.model.w", DT_F32, 2, s23, m1);
    st_writer_add(wr, "bn.num_batches_tracked", DT_I64, 1, s1, rm);
    ckpt_meta_set_i64(wr, CKPT_KEY_EPOCH, 3);
    ckpt_meta_set_i64(wr, CKPT_KEY_SAMPLER, -1234567890123ll);
    ckpt_meta_set_u64s(wr, CKPT_KEY_RNG, rng, 4);
    Err e = {{0}};
    CHECK(ckpt_meta_set_answers(wr, answers, 4, &e) == 0);
    st_writer_set_meta(wr, CKPT_KEY_CONFIG_HASH, cfg_hash);
    char path[CKPT_PATH_MAX];
    CHECK_MSG(ckpt_save(wr, dir, 1000, path, sizeof path, &e) == 0, "%s", e.msg);
    st_writer_free(wr);
    CHECK_STR_CONTAINS(path, "rt/nested/step_00001000.safetensors");

    StFile *f = NULL;
    CHECK_MSG(ckpt_open(&f, path, &e) == 0, "%s", e.msg);
    if (!f) return;
    int64_t v;
    CHECK(ckpt_meta_i64(f, CKPT_KEY_STEP, &v, &e) == 0 && v == 1000);
    CHECK(ckpt_meta_i64(f, CKPT_KEY_EPOCH, &v, &e) == 0 && v == 3);
    CHECK(ckpt_meta_i64(f, CKPT_KEY_SAMPLER, &v, &e) == 0 && v == -1234567890123ll);
    CHECK(strcmp(st_metadata(f, CKPT_KEY_VERSION), "1") == 0);
    CHECK(strcmp(st_metadata(f, CKPT_KEY_CONFIG_HASH), cfg_hash) == 0);
    uint64_t r2[4] = {0};
    CHECK(ckpt_meta_u64s(f, CKPT_KEY_RNG, r2, 4, &e) == 0);
    CHECK(memcmp(r2, rng, sizeof rng) == 0);
    CHECK(ckpt_meta_u64s(f, CKPT_KEY_RNG, r2, 3, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "more than 3 words");
    char **ans = NULL;
    int na = 0;
    CHECK(ckpt_meta_answers(f, &ans, &na, &e) == 0 && na == 4);
    for (int i = 0; i < na && i < 4; i++) CHECK(strcmp(ans[i], answers[i]) == 0);
    ckpt_answers_free(ans, na);

    float got[6];
    CHECK(ckpt_load_f32(f, "model.w", got, 2, s23, &e) == 0 && memcmp(got, w, sizeof w) == 0);
    CHECK(ckpt_load_f32(f, "optim.m.model.w", got, 2, s23, &e) == 0 && memcmp(got, m1, sizeof m1) == 0);
    int64_t s32[2] = {3, 2};
    CHECK(ckpt_load_f32(f, "model.w", got, 2, s32, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "tensor 'model.w' has shape [2, 3] in the checkpoint, expected [3, 2]");
    CHECK(ckpt_load_f32(f, "model.missing", got, 2, s23, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "tensor 'model.missing' not found");
    int64_t rm2 = 0;
    CHECK(ckpt_load_raw(f, "bn.num_batches_tracked", DT_I64, &rm2, 8, &e) == 0 && rm2 == 7);
    CHECK(ckpt_load_raw(f, "bn.num_batches_tracked", DT_I32, &rm2, 4, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "is I64 in the checkpoint, expected I32");
    CHECK(ckpt_meta_i64(f, "absent", &v, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "__metadata__ has no 'absent'");
    st_close(f);
}

static void plain_safetensors_is_not_a_checkpoint(void) {
    float x = 1;
    int64_t s1[1] = {1};
    StWriter *w = st_writer_new();
    st_writer_add(w, "x", DT_F32, 1, s1, &x);
    Err e = {{0}};
    CHECK(st_writer_save(w, sub("plain.safetensors"), &e) == 0);
    st_writer_set_meta(w, CKPT_KEY_VERSION, "99");
    st_writer_set_meta(w, CKPT_KEY_STEP, "1");
    CHECK(st_writer_save(w, sub("future.safetensors"), &e) == 0);
    st_writer_free(w);
    StFile *f = NULL;
    CHECK(ckpt_open(&f, sub("plain.safetensors"), &e) == -1 && f == NULL);
    CHECK_STR_CONTAINS(e.msg, "not a vqa_train checkpoint");
    CHECK(ckpt_open(&f, sub("future.safetensors"), &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "format_version 99 is not supported");
}

static int count_ckpts(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    int64_t s;
    while (d && (de = readdir(d))) n += ckpt_parse_name(de->d_name, &s) == 0;
    if (d) closedir(d);
    return n;
}

static void rotation_keeps_last_n_and_never_the_best(void) {
    char dir[1024], p[CKPT_PATH_MAX], best_src[CKPT_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", sub("rot"));
    Err e = {{0}};
    for (int s = 1; s <= 6; s++) {
        CHECK(save_small(dir, s * 100, p, sizeof p) == 0);
        if (s == 2) {
            strcpy(best_src, p);
            CHECK_MSG(ckpt_mark_best(dir, p, &e) == 0, "%s", e.msg);
        }
        CHECK_MSG(ckpt_rotate(dir, 2, &e) == 0, "%s", e.msg);
    }
    char q[1200];
    /* newest two + the best one survive */
    CHECK(count_ckpts(dir) == 3);
    snprintf(q, sizeof q, "%s/step_00000600.safetensors", dir); CHECK(exists(q));
    snprintf(q, sizeof q, "%s/step_00000500.safetensors", dir); CHECK(exists(q));
    snprintf(q, sizeof q, "%s/step_00000200.safetensors", dir); CHECK(exists(q));
    snprintf(q, sizeof q, "%s/step_00000100.safetensors", dir); CHECK(!exists(q));
    snprintf(q, sizeof q, "%s/step_00000400.safetensors", dir); CHECK(!exists(q));
    snprintf(q, sizeof q, "%s/" CKPT_BEST_NAME, dir);
    StFile *f = NULL;
    int64_t v = 0;
    CHECK(ckpt_open(&f, q, &e) == 0 && ckpt_meta_i64(f, CKPT_KEY_STEP, &v, &e) == 0 && v == 200);
    st_close(f);

    /* a new best releases the old one to rotation; best.safetensors follows */
    snprintf(p, sizeof p, "%s/step_00000600.safetensors", dir);
    CHECK(ckpt_mark_best(dir, p, &e) == 0);
    CHECK(ckpt_rotate(dir, 2, &e) == 0);
    CHECK(count_ckpts(dir) == 2);
    snprintf(q, sizeof q, "%s/step_00000200.safetensors", dir); CHECK(!exists(q));
    snprintf(q, sizeof q, "%s/" CKPT_BEST_NAME, dir);
    CHECK(ckpt_open(&f, q, &e) == 0 && ckpt_meta_i64(f, CKPT_KEY_STEP, &v, &e) == 0 && v == 600);
    st_close(f);
    /* keep_last <= 0 keeps everything */
    CHECK(save_small(dir, 700, p, sizeof p) == 0);
    CHECK(ckpt_rotate(dir, 0, &e) == 0 && count_ckpts(dir) == 3);
    snprintf(q, sizeof q, "%s/no_such_dir", dir);
    CHECK(ckpt_rotate(q, 2, &e) == 0);
}

static void truncate_file(const char *p, off_t len) {
    CHECK(truncate(p, len) == 0);
}

static void find_latest_skips_truncated_and_ignores_temp_files(void) {
    char dir[1024], p[CKPT_PATH_MAX], warn[4096];
    snprintf(dir, sizeof dir, "%s", sub("find"));
    for (int s = 1; s <= 3; s++) CHECK(save_small(dir, s, p, sizeof p) == 0);
    /* a complete file under a temp name (as if killed just before rename) and a garbage one */
    char q[1200], src[1200];
    snprintf(src, sizeof src, "%s/step_00000003.safetensors", dir);
    snprintf(q, sizeof q, "%s/step_00000009.safetensors.tmp.12345", dir);
    CHECK(link(src, q) == 0);
    snprintf(q, sizeof q, "%s/step_00000010.safetensors.tmp.1", dir);
    FILE *g = fopen(q, "wb");
    fputs("garbage", g);
    fclose(g);
    /* the newest real one is truncated (a copy made without the atomic protocol) */
    struct stat sb;
    stat(src, &sb);
    truncate_file(src, sb.st_size - 10);

    Err e = {{0}};
    CHECK_MSG(ckpt_find_latest(dir, p, sizeof p, warn, sizeof warn, &e) == 0, "%s", e.msg);
    CHECK_STR_CONTAINS(p, "/step_00000002.safetensors");
    CHECK_STR_CONTAINS(warn, "skipped invalid checkpoint");
    CHECK_STR_CONTAINS(warn, "step_00000003.safetensors");
    CHECK_STR_CONTAINS(warn, "past the end");
    CHECK(strstr(warn, ".tmp.") == NULL);

    /* a file whose name and metadata disagree is also skipped */
    snprintf(q, sizeof q, "%s/step_00000002.safetensors", dir);
    snprintf(src, sizeof src, "%s/step_00000007.safetensors", dir);
    CHECK(link(q, src) == 0);
    CHECK(ckpt_find_latest(dir, p, sizeof p, warn, sizeof warn, &e) == 0);
    CHECK_STR_CONTAINS(p, "/step_00000002.safetensors");
    CHECK_STR_CONTAINS(warn, "file name says step 7 but __metadata__ step is 2");

    /* header cut in half */
    truncate_file(q, 20);
    CHECK(ckpt_find_latest(dir, p, sizeof p, warn, sizeof warn, &e) == 0);
    CHECK_STR_CONTAINS(p, "/step_00000001.safetensors");
    CHECK_STR_CONTAINS(warn, "truncated header");
}

static void find_latest_in_missing_or_empty_dir_finds_nothing(void) {
    char p[CKPT_PATH_MAX] = "x", warn[256] = "x";
    Err e = {{0}};
    CHECK(ckpt_find_latest(sub("nothing_here"), p, sizeof p, warn, sizeof warn, &e) == 0);
    CHECK(p[0] == '\0' && warn[0] == '\0');
    mkdir(sub("empty"), 0755);
    CHECK(ckpt_find_latest(sub("empty"), p, sizeof p, NULL, 0, &e) == 0 && p[0] == '\0');
}

static void rotate_removes_temp_files_of_dead_processes_only(void) {
    char dir[1024], p[CKPT_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", sub("stale"));
    CHECK(save_small(dir, 1, p, sizeof p) == 0);
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0); /* its pid now belongs to no process */
    char dead[1200], mine[1200], init[1200], other[1200];
    snprintf(dead, sizeof dead, "%s/step_00000002.safetensors.tmp.%ld", dir, (long)child);
    snprintf(mine, sizeof mine, "%s/step_00000003.safetensors.tmp.%ld", dir, (long)getpid());
    snprintf(init, sizeof init, "%s/step_00000004.safetensors.tmp.1", dir);
    snprintf(other, sizeof other, "%s/metrics.jsonl.tmp.%ld", dir, (long)child);
    const char *all[4] = {dead, mine, init, other};
    for (int i = 0; i < 4; i++) {
        FILE *g = fopen(all[i], "wb");
        fclose(g);
    }
    Err e = {{0}};
    CHECK(ckpt_rotate(dir, 3, &e) == 0);
    CHECK(!exists(dead));
    CHECK(exists(mine));
    CHECK(exists(init));
    CHECK(exists(other)); /* not a checkpoint temp: not ours to delete */
    CHECK(exists(p));
}

/* ---------------------------------------------------------------- kill-test modes */

#define BIG_NAME "big"

static float pattern(int64_t step, size_t j) { return (float)(step % 4096) + (float)(j & 1023) * 0.25f; }

static int writer_loop(const char *dir, int mb) {
    size_t n = (size_t)mb * 262144;
    float *big = malloc(n * sizeof *big);
    if (!big) return 1;
    char p[CKPT_PATH_MAX], warn[8192];
    Err e;
    if (ckpt_find_latest(dir, p, sizeof p, warn, sizeof warn, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    int64_t step = 0;
    if (p[0]) {
        StFile *f = NULL;
        if (ckpt_open(&f, p, &e) || ckpt_meta_i64(f, CKPT_KEY_STEP, &step, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
        st_close(f);
    }
    for (;;) {
        step++;
        for (size_t j = 0; j < n; j++) big[j] = pattern(step, j);
        int64_t shape[2] = {(int64_t)(n / 1024), 1024};
        float small[3] = {(float)step, 1, 2};
        int64_t s3[1] = {3};
        StWriter *w = st_writer_new();
        st_writer_add(w, BIG_NAME, DT_F32, 2, shape, big);
        st_writer_add(w, "small", DT_F32, 1, s3, small);
        ckpt_meta_set_i64(w, CKPT_KEY_EPOCH, step);
        if (ckpt_save(w, dir, step, p, sizeof p, &e) || ckpt_rotate(dir, 2, &e) ||
            (step % 3 == 0 && ckpt_mark_best(dir, p, &e))) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
        st_writer_free(w);
        printf("saved %" PRId64 "\n", step);
        fflush(stdout);
    }
}

static int validate_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return 1;
    }
    int bad = 0, good = 0, temps = 0;
    struct dirent *de;
    char p[2048];
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (atomic_is_temp_name(de->d_name)) {
            temps++;
            continue;
        }
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        StFile *f = NULL;
        Err e;
        int64_t step = 0;
        if (ckpt_open(&f, p, &e) || ckpt_meta_i64(f, CKPT_KEY_STEP, &step, &e)) {
            fprintf(stderr, "INVALID %s\n", e.msg);
            bad++;
            st_close(f);
            continue;
        }
        const StTensor *t = st_find(f, BIG_NAME);
        size_t mism = 0;
        if (!t || t->dtype != DT_F32) {
            mism = 1;
        } else {
            const unsigned char *raw = t->data;
            for (size_t j = 0; j < (size_t)t->numel; j++) {
                float v;
                memcpy(&v, raw + 4 * j, 4);
                mism += v != pattern(step, j);
            }
        }
        if (mism) {
            fprintf(stderr, "INVALID %s: %zu values differ from step %" PRId64 "'s pattern\n", p, mism, step);
            bad++;
        } else {
            good++;
        }
        st_close(f);
    }
    closedir(d);
    char latest[CKPT_PATH_MAX], warn[8192];
    Err e;
    if (ckpt_find_latest(dir, latest, sizeof latest, warn, sizeof warn, &e) || !latest[0] || warn[0]) {
        fprintf(stderr, "INVALID find_latest: '%s' %s\n", latest, warn);
        bad++;
    }
    printf("validated %d files under real names (%d bad), %d temp files ignored, latest %s\n", good, bad,
           temps, latest);
    return bad || !good ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--writer-loop") == 0) return writer_loop(argv[2], atoi(argv[3]));
    if (argc == 3 && strcmp(argv[1], "--validate") == 0) return validate_dir(argv[2]);
    snprintf(g_dir, sizeof g_dir, "/tmp/vqa_test_ckpt_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(fnv1a_hash_matches_known_vectors);
    RUN(name_parsing_accepts_only_real_checkpoint_names);
    RUN(save_and_load_round_trip_with_all_metadata);
    RUN(plain_safetensors_is_not_a_checkpoint);
    RUN(rotation_keeps_last_n_and_never_the_best);
    RUN(find_latest_skips_truncated_and_ignores_temp_files);
    RUN(find_latest_in_missing_or_empty_dir_finds_nothing);
    RUN(rotate_removes_temp_files_of_dead_processes_only);
    rm_rf(g_dir);
    return test_summary();
}
