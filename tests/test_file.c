// TEST_LIBS: vqa_util
// TEST_LABELS: unit
/* test_file.c: util/file.h: whole-file read (regular files, a pipe that outgrows the first
 * buffer, the size limit at its edge) and read-only mapping, and that every failure names
 * the path, the file's role and the reason. */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"
#include "util/file.h"

static char tmpdir[] = "/tmp/test_file_XXXXXX";

static const char *tmp_path(const char *name) {
    static char buf[4][256];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(p, 1, n, f) == n);
    fclose(f);
}

static void read_all_returns_the_bytes_and_a_nul_after_them(void) {
    const char want[] = "a\0b\nlast line"; /* an inner NUL is data, not the end */
    const char *p = tmp_path("bytes.txt");
    write_bytes(p, want, sizeof want - 1);
    char *buf = NULL;
    size_t n = 99;
    Err e;
    CHECK(file_read_all(p, "the test file", 0, &buf, &n, &e) == 0);
    CHECK(n == sizeof want - 1);
    CHECK(buf && memcmp(buf, want, sizeof want - 1) == 0);
    CHECK(buf && buf[n] == '\0');
    free(buf);
}

static void read_all_of_an_empty_file_is_an_empty_string(void) {
    const char *p = tmp_path("empty.txt");
    write_bytes(p, "", 0);
    char *buf = NULL;
    size_t n = 99;
    Err e;
    CHECK(file_read_all(p, "the test file", 0, &buf, &n, &e) == 0);
    CHECK(n == 0);
    CHECK(buf && buf[0] == '\0');
    free(buf);
}

/* A FIFO has no size to start from: the buffer grows from 64 KiB, so 200 000 bytes take
 * two doublings; every byte must arrive in order. */
static void read_all_reads_a_pipe_larger_than_its_first_buffer(void) {
    const char *p = tmp_path("fifo");
    CHECK(mkfifo(p, 0600) == 0);
    enum { N = 200000 };
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = fopen(p, "wb");
        for (int i = 0; f && i < N; i++) fputc('a' + i % 26, f);
        if (f) fclose(f);
        _exit(0);
    }
    char *buf = NULL;
    size_t n = 0;
    Err e;
    CHECK(file_read_all(p, "the test pipe", 0, &buf, &n, &e) == 0);
    waitpid(pid, NULL, 0);
    CHECK(n == N);
    int ok = buf != NULL && n == N;
    for (size_t i = 0; ok && i < N; i++) ok = buf[i] == 'a' + (char)(i % 26);
    CHECK(ok);
    CHECK(buf && buf[n] == '\0');
    free(buf);
}

static void read_all_takes_max_bytes_and_refuses_one_more(void) {
    size_t max = (size_t)1 << 20;
    char *big = calloc(max + 1, 1);
    CHECK(big != NULL);
    if (!big) return;
    const char *at = tmp_path("at_limit.bin"), *over = tmp_path("over_limit.bin");
    write_bytes(at, big, max);
    write_bytes(over, big, max + 1);
    free(big);
    char *buf = NULL;
    size_t n = 0;
    Err e;
    CHECK(file_read_all(at, "the test file", max, &buf, &n, &e) == 0);
    CHECK(n == max);
    free(buf);
    buf = NULL;
    CHECK(file_read_all(over, "the test file", max, &buf, &n, &e) == -1);
    CHECK(buf == NULL);
    CHECK_STR_CONTAINS(e.msg, "over_limit.bin: larger than 1 MiB: too large for the test file");
    /* a limit under 1 MiB is said in bytes (not "0 MiB") */
    CHECK(file_read_all(over, "the test file", 1000, &buf, &n, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "over_limit.bin: larger than 1000 bytes: too large for the test file");
}

static void read_all_missing_file_names_path_role_and_reason(void) {
    char *buf = NULL;
    size_t n = 0;
    Err e;
    CHECK(file_read_all("/nonexistent/x.yaml", "the config file", 0, &buf, &n, &e) == -1);
    CHECK(buf == NULL);
    CHECK_STR_CONTAINS(e.msg, "/nonexistent/x.yaml: cannot open the config file: No such file or directory");
    CHECK(file_read_all(tmpdir, "the config file", 0, &buf, &n, &e) == -1); /* a directory */
    CHECK_STR_CONTAINS(e.msg, "cannot read the config file: Is a directory");
}

static void map_gives_the_file_bytes(void) {
    uint8_t want[5000];
    for (int i = 0; i < 5000; i++) want[i] = (uint8_t)(i * 7);
    const char *p = tmp_path("map.bin");
    write_bytes(p, want, sizeof want);
    FileMap m;
    Err e;
    CHECK(file_map(&m, p, "test data", FILE_MAP_SEQUENTIAL, &e) == 0);
    CHECK(m.size == sizeof want);
    CHECK(m.data && memcmp(m.data, want, sizeof want) == 0);
    file_unmap(&m);
    CHECK(m.data == NULL && m.size == 0);
    file_unmap(&m); /* twice is harmless */
}

static void map_of_an_empty_file_maps_nothing_and_is_not_an_error(void) {
    const char *p = tmp_path("empty.bin");
    write_bytes(p, "", 0);
    FileMap m = {(const uint8_t *)"x", 1};
    Err e;
    CHECK(file_map(&m, p, "test data", 0, &e) == 0);
    CHECK(m.data == NULL && m.size == 0);
    file_unmap(&m);
}

static void map_failures_name_path_role_and_reason(void) {
    FileMap m;
    Err e;
    CHECK(file_map(&m, "/nonexistent/a.safetensors", "safetensors file", 0, &e) == -1);
    CHECK(m.data == NULL && m.size == 0);
    CHECK_STR_CONTAINS(e.msg, "/nonexistent/a.safetensors: cannot open safetensors file: No such file or directory");
    CHECK(file_map(&m, "/nonexistent/q.json", NULL, 0, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "/nonexistent/q.json: cannot open: No such file or directory");
    CHECK(file_map(&m, tmpdir, "prepared dataset", 0, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, ": not a regular file, expected prepared dataset");
}

int main(void) {
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(read_all_returns_the_bytes_and_a_nul_after_them);
    RUN(read_all_of_an_empty_file_is_an_empty_string);
    RUN(read_all_reads_a_pipe_larger_than_its_first_buffer);
    RUN(read_all_takes_max_bytes_and_refuses_one_more);
    RUN(read_all_missing_file_names_path_role_and_reason);
    RUN(map_gives_the_file_bytes);
    RUN(map_of_an_empty_file_maps_nothing_and_is_not_an_error);
    RUN(map_failures_name_path_role_and_reason);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
