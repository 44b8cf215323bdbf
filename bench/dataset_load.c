/* dataset_load.c: time and peak memory of ds_load on a full-size VQA v2 split, against
 * loading the same annotations file whole with jansson (json_load_file), measured in
 * the same run, each in its own child process so peak RSS (ru_maxrss) is separate.
 *
 *   python3 tools/gen_big_vqa.py /tmp/bigvqa          # ~360 MB annotations, not in git
 *   bench_dataset_load /tmp/bigvqa/questions.json /tmp/bigvqa/annotations.json [--no-baseline] */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/strpool.h"
#include "util/log.h"

/* Runs fn in a child; returns its wall seconds and peak RSS (MB), or -1 on failure. */
static int in_child(int (*fn)(const char *, const char *), const char *q, const char *a, double *sec, double *mb) {
    double t0 = time_now();
    pid_t pid = fork();
    if (pid == 0) _exit(fn(q, a) ? 1 : 0);
    int status;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid) return -1;
    *sec = time_now() - t0;
    *mb = ru.ru_maxrss / 1024.0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int run_ds_load(const char *q, const char *a) {
    VqaDataset ds;
    Err err;
    if (ds_load(&ds, DS_VQA2, q, a, "images", &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    fprintf(stderr, "  ds_load: %lld samples, %zu B/sample index, string pool %.1f MB\n", (long long)ds.n,
            sizeof(VqaSample), sp_bytes(ds.pool) / 1e6);
    ds_free(&ds);
    return 0;
}

static int run_jansson(const char *q, const char *a) {
    json_error_t je;
    json_t *qa = json_load_file(q, 0, &je);
    json_t *an = json_load_file(a, 0, &je);
    int ok = qa && an;
    json_decref(qa);
    json_decref(an);
    return ok ? 0 : -1;
}

static double file_mb(const char *p) {
    struct stat st;
    return stat(p, &st) ? 0 : st.st_size / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_dataset_load QUESTIONS.json ANNOTATIONS.json [--no-baseline]\n");
        return 1;
    }
    int baseline = !(argc > 3 && !strcmp(argv[3], "--no-baseline"));
    struct utsname u;
    uname(&u);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    double qmb = file_mb(argv[1]), amb = file_mb(argv[2]), s1, m1, s2 = 0, m2 = 0;
    if (in_child(run_ds_load, argv[1], argv[2], &s1, &m1)) return 1;
    if (baseline && in_child(run_jansson, argv[1], argv[2], &s2, &m2)) return 1;
    printf("machine: %s %s, %ld cores\n", u.nodename, u.machine, cores);
    printf("input: questions %.1f MB + annotations %.1f MB\n\n", qmb, amb);
    printf("%-38s %10s %14s %16s\n", "what", "seconds", "peak RSS MB", "RSS / ann. size");
    printf("%-38s %10.2f %14.1f %16.2f\n", "ds_load (streamed, interned)", s1, m1, m1 / amb);
    if (baseline) {
        printf("%-38s %10.2f %14.1f %16.2f\n", "baseline: json_load_file of both", s2, m2, m2 / amb);
        printf("\nratio baseline/ours: time %.2fx, peak memory %.1fx\n", s2 / s1, m2 / m1);
    }
    return 0;
}
