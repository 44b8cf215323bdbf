/* test_metrics.c: metrics.jsonl lines are valid JSON (read back with jansson), numbers
 * round-trip exactly, lines are flushed as written, and resume trims the file. */
// TEST_LIBS: vqa_io
// TEST_LABELS: unit
#include "testlib.h"

#include <jansson.h>
#include <unistd.h>

#include "io/metrics.h"

static char g_path[256];

/* Reads every line of path as JSON; returns the count, objects in out[]. */
static int read_lines(const char *path, json_t **out, int max) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char buf[4096];
    int n = 0;
    while (n < max && fgets(buf, sizeof buf, f)) {
        json_error_t je;
        out[n] = json_loads(buf, 0, &je);
        if (!out[n]) fprintf(stderr, "line %d not JSON: %s (%s)\n", n + 1, je.text, buf);
        n++;
    }
    fclose(f);
    return n;
}

static void free_lines(json_t **v, int n) {
    for (int i = 0; i < n; i++) json_decref(v[i]);
}

static void double_formatting_is_shortest_exact_and_null_for_nonfinite(void) {
    char b[40];
    metrics_format_double(0.1, b, sizeof b);
    CHECK(strcmp(b, "0.1") == 0);
    metrics_format_double(1.0 / 3.0, b, sizeof b);
    CHECK(strcmp(b, "0.3333333333333333") == 0);
    metrics_format_double(3.0, b, sizeof b);
    CHECK(strcmp(b, "3") == 0);
    metrics_format_double(-2.5e-300, b, sizeof b);
    CHECK(strtod(b, NULL) == -2.5e-300);
    metrics_format_double(NAN, b, sizeof b);
    CHECK(strcmp(b, "null") == 0);
    metrics_format_double(-INFINITY, b, sizeof b);
    CHECK(strcmp(b, "null") == 0);
    TestRng r = {7};
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        uint64_t bits = trng_u64(&r);
        double v;
        memcpy(&v, &bits, 8);
        if (!isfinite(v)) continue;
        metrics_format_double(v, b, sizeof b);
        bad += strtod(b, NULL) != v;
    }
    CHECK(bad == 0);
}

static void lines_are_json_with_step_epoch_and_scalars_in_order(void) {
    MetricsWriter *m = NULL;
    Err e = {{0}};
    CHECK_MSG(metrics_open(&m, g_path, -1, &e) == 0, "%s", e.msg);
    if (!m) return;
    const char *names[2] = {"loss", "lr"};
    double vals[2] = {0.6931471805599453, 1e-4};
    CHECK(metrics_write(m, 20, 0, 2, names, vals, &e) == 0);
    metrics_begin(m, 40, 1);
    metrics_add_str(m, "split", "val \"quoted\"\n\x01");
    metrics_add(m, "vqa_acc", 61.25);
    metrics_add(m, "loss", NAN);
    metrics_add_int(m, "samples", 1234567890123ll);
    CHECK(metrics_end(m, &e) == 0);

    /* already on disk while the writer is still open (flushed per line) */
    json_t *v[8];
    int n = read_lines(g_path, v, 8);
    CHECK(n == 2);
    if (n == 2 && v[0] && v[1]) {
        CHECK(json_integer_value(json_object_get(v[0], "step")) == 20);
        CHECK(json_integer_value(json_object_get(v[0], "epoch")) == 0);
        CHECK(json_real_value(json_object_get(v[0], "loss")) == 0.6931471805599453);
        CHECK(json_real_value(json_object_get(v[0], "lr")) == 1e-4);
        CHECK(strcmp(json_string_value(json_object_get(v[1], "split")), "val \"quoted\"\n\x01") == 0);
        CHECK(json_number_value(json_object_get(v[1], "vqa_acc")) == 61.25);
        CHECK(json_is_null(json_object_get(v[1], "loss")));
        CHECK(json_integer_value(json_object_get(v[1], "samples")) == 1234567890123ll);
    }
    free_lines(v, n);
    /* keys in insertion order: step, epoch first */
    FILE *f = fopen(g_path, "r");
    char buf[512];
    CHECK(fgets(buf, sizeof buf, f) != NULL);
    CHECK(strncmp(buf, "{\"step\": 20, \"epoch\": 0, \"loss\": ", 33) == 0);
    fclose(f);
    CHECK(metrics_end(m, &e) == -1); /* no line begun */
    CHECK_STR_CONTAINS(e.msg, "without metrics_begin");
    metrics_close(m);
}

static void resume_drops_later_steps_and_torn_line(void) {
    FILE *f = fopen(g_path, "w");
    fputs("{\"step\": 10, \"epoch\": 0, \"loss\": 1}\n", f);
    fputs("{\"step\": 20, \"epoch\": 0, \"loss\": 0.9}\n", f);
    fputs("{\"step\": 30, \"epoch\": 0, \"loss\": 0.8}\n", f);
    fputs("{\"step\": 40, \"epoch\": 1, \"lo", f); /* crash mid-line */
    fclose(f);
    MetricsWriter *m = NULL;
    Err e = {{0}};
    CHECK_MSG(metrics_open(&m, g_path, 20, &e) == 0, "%s", e.msg); /* resumed from step 20 */
    const char *names[1] = {"loss"};
    double vals[1] = {0.85};
    CHECK(metrics_write(m, 30, 0, 1, names, vals, &e) == 0);
    metrics_close(m);
    json_t *v[8];
    int n = read_lines(g_path, v, 8);
    CHECK(n == 3);
    if (n == 3 && v[0] && v[1] && v[2]) {
        CHECK(json_integer_value(json_object_get(v[0], "step")) == 10);
        CHECK(json_integer_value(json_object_get(v[1], "step")) == 20);
        CHECK(json_integer_value(json_object_get(v[2], "step")) == 30);
        CHECK(json_real_value(json_object_get(v[2], "loss")) == 0.85);
    }
    free_lines(v, n);

    /* resuming with no file yet simply creates it; a new run truncates */
    unlink(g_path);
    CHECK(metrics_open(&m, g_path, 5, &e) == 0);
    metrics_close(m);
    CHECK(access(g_path, F_OK) == 0);
    CHECK(metrics_open(&m, "/nonexistent_dir/x/metrics.jsonl", -1, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "/nonexistent_dir/x/metrics.jsonl");
}

int main(void) {
    snprintf(g_path, sizeof g_path, "/tmp/vqa_test_metrics_%ld.jsonl", (long)getpid());
    RUN(double_formatting_is_shortest_exact_and_null_for_nonfinite);
    RUN(lines_are_json_with_step_epoch_and_scalars_in_order);
    RUN(resume_drops_later_steps_and_torn_line);
    unlink(g_path);
    return test_summary();
}
