/* test_json_stream.c: the element-at-a-time JSON reader: boundaries found through
 * strings with escapes, nesting and all JSON whitespace; members before and after the
 * array; every malformation reported with file, line:col and byte offset; resident
 * memory stays bounded on a file much larger than the pages it keeps. */
// TEST_LIBS: vqa_io
// TEST_LABELS: unit
#include <sys/resource.h>
#include <unistd.h>

#include "testlib.h"
#include "io/json_stream.h"

static char g_dir[64];

static const char *tmp_file(const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/s.json", g_dir);
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
    return path;
}

/* Iterates member (or the top list) and returns the count, or -1 with err. */
static int count(const char *text, const char *member, Err *err, json_t **last) {
    JsonStream *s;
    if (js_open(&s, tmp_file(text), member, err)) return -1;
    json_t *el;
    int n = 0, rc;
    while ((rc = js_next(s, &el, err)) == 1) {
        n++;
        if (last) {
            json_decref(*last);
            *last = el;
        } else {
            json_decref(el);
        }
    }
    js_close(s);
    return rc < 0 ? -1 : n;
}

static void element_boundaries_survive_escapes_nesting_and_whitespace(void) {
    Err err;
    json_t *last = NULL;
    const char *text =
        " \r\n\t{\"info\": {\"a\": [1, {\"b\": \"]}\\\"[{\"}], \"c\": -1.5e+3, \"d\": null},\n"
        "  \"anno\\u0074ations\": [ {\"s\": \"x\\\\\"} ,\r\n {\"s\": \"}]\\\"\", \"n\": [[[]]]}\t,\n\"plain\", 7, true ],\n"
        "  \"after\": [\"]\"]}\n\n";
    CHECK_MSG(count(text, "annotations", &err, &last) == 5, "%s", err.msg);
    CHECK(json_is_true(last));
    json_decref(last);
    last = NULL;
    CHECK(count("[]", NULL, &err, NULL) == 0);
    CHECK(count(" [ ] ", NULL, &err, NULL) == 0);
    CHECK(count("{\"x\": []}", "x", &err, NULL) == 0);
    CHECK(count("[{\"s\": \"\\\\\"}, 2]", NULL, &err, &last) == 2);
    CHECK(json_integer_value(last) == 2);
    json_decref(last);
}

static void element_offsets_and_where(void) {
    Err err;
    JsonStream *s;
    CHECK(js_open(&s, tmp_file("{\"q\": [1,\n  {\"a\": 2}]}"), "q", &err) == 0);
    json_t *el;
    CHECK(js_next(s, &el, &err) == 1);
    CHECK(js_index(s) == 0 && js_offset(s) == 7);
    json_decref(el);
    CHECK(js_next(s, &el, &err) == 1);
    CHECK(js_index(s) == 1 && js_offset(s) == 12);
    char w[512];
    js_where(s, js_offset(s), w, sizeof w);
    CHECK_STR_CONTAINS(w, "s.json:2:3 (byte 12)");
    json_decref(el);
    CHECK(js_next(s, &el, &err) == 0);
    CHECK(js_next(s, &el, &err) == 0);  /* stays at the end */
    js_close(s);
}

typedef struct Bad {
    const char *text, *member, *want1, *want2;
} Bad;

static void malformed_input_reports_line_col_and_byte(void) {
    static const Bad bad[] = {
        {"[1,\n 2,\n x]", NULL, "s.json:3:2 (byte 9)", "in element 2: invalid token near 'x'"},
        {"[1,\n 2,\n #]", NULL, "s.json:3:2 (byte 9)", "unexpected character '#'"},
        {"[1, {\"a\": 1 \"b\": 2}]", NULL, "s.json:1:13 (byte 12)", "'}' expected near '\"b\"'"},
        {"[1 2]", NULL, "s.json:1:4 (byte 3)", "expected ',' or ']'"},
        {"[1,]", NULL, "s.json:1:4 (byte 3)", "trailing comma"},
        {"[{\"a\": 1", NULL, "'{' opened at byte 1 is never closed", "s.json:1:9 (byte 8)"},
        {"[{\"a\": 1]}", NULL, "']' closes the '{' opened at byte 1", "s.json:1:9 (byte 8)"},
        {"[\"abc", NULL, "unterminated string", "s.json:1:2 (byte 1)"},
        {"[{\"a\" 1}]", NULL, "in element 0", "s.json:1:"},
        {"[{\"a\": tru}]", NULL, "in element 0", "byte"},
        {"[1] [", NULL, "unexpected data after the top-level value", "s.json:1:5 (byte 4)"},
        {"{\"a\": [1]} x", "a", "unexpected data", "byte 11"},
        {"{\"a\": [1], \"b\" 2}", "a", "expected ':'", "s.json:1:16 (byte 15)"},
        {"{\"a\": [1], 3: 2}", "a", "expected a member name", "byte 11"},
        {"{\"b\": 1}", "a", "no member \"a\"", "s.json"},
        {"{\"a\": {}}", "a", "member \"a\" must be a list", "s.json:1:7 (byte 6)"},
        {"[1]", "a", "top level to be an object holding \"a\"", "a list"},
        {"{\"a\": 1}", NULL, "expected the top level to be a list", "s.json:1:1 (byte 0)"},
        {"  ", NULL, "expected the top level to be a list", "byte 2"},
        {"[\"a\tb\"]", NULL, "control character", "s.json:1:4 (byte 3)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Err err = {{0}};
        CHECK_MSG(count(bad[i].text, bad[i].member, &err, NULL) == -1, "case %zu", i);
        CHECK_STR_CONTAINS(err.msg, bad[i].want1);
        CHECK_STR_CONTAINS(err.msg, bad[i].want2);
    }
    Err err;
    CHECK(count("", NULL, &err, NULL) == -1);
    CHECK_STR_CONTAINS(err.msg, "empty file");
}

static void get_member_and_peek_top(void) {
    Err err;
    json_t *v;
    const char *p = tmp_file("{\"questions\": [{\"x\": \"}\"}], \"data_subtype\": \"val2014\"}");
    CHECK(js_get_member(p, "data_subtype", &v, &err) == 1);
    CHECK(json_is_string(v) && strcmp(json_string_value(v), "val2014") == 0);
    json_decref(v);
    CHECK(js_get_member(p, "nothing", &v, &err) == 0 && v == NULL);
    CHECK(js_peek_top(p, &err) == '{');
    p = tmp_file("\n [1]");
    CHECK(js_peek_top(p, &err) == '[');
    CHECK(js_get_member(p, "x", &v, &err) == -1);
    CHECK(js_load_file(&v, tmp_file("{\"a\":\n [1,]}"), &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "s.json:2:");
}

static void line_col_of_offsets(void) {
    int64_t l, c;
    js_line_col("ab\ncd\n", 6, 0, &l, &c);
    CHECK(l == 1 && c == 1);
    js_line_col("ab\ncd\n", 6, 3, &l, &c);
    CHECK(l == 2 && c == 1);
    js_line_col("ab\ncd\n", 6, 4, &l, &c);
    CHECK(l == 2 && c == 2);
    js_line_col("ab\ncd\n", 6, 6, &l, &c);
    CHECK(l == 3 && c == 1);
}

static long max_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* A 63 MB file (list of 150k objects, with a skipped 15 MB member before it): the peak
 * resident size must grow by far less than the file, since consumed pages are dropped. */
static void resident_memory_stays_bounded_on_a_large_file(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/big.json", g_dir);
    FILE *f = fopen(path, "wb");
    fputs("{\"info\": [", f);
    for (int i = 0; i < 100000; i++) fprintf(f, "%s\"%0150d\"", i ? "," : "", i);
    fputs("], \"annotations\": [", f);
    const int n = 150000;
    for (int i = 0; i < n; i++)
        fprintf(f, "%s{\"question_id\": %d, \"answers\": [\"%0100d\", \"%0100d\"], \"pad\": \"%060d\"}\n",
                i ? "," : "", i, i, i, i);
    fputs("]}", f);
    long size = ftell(f);
    fclose(f);
    long before = max_rss_kb();
    JsonStream *s;
    Err err;
    CHECK(js_open(&s, path, "annotations", &err) == 0);
    json_t *el;
    int k = 0, rc, ok = 1;
    while ((rc = js_next(s, &el, &err)) == 1) {
        ok &= json_integer_value(json_object_get(el, "question_id")) == k++;
        json_decref(el);
    }
    js_close(s);
    CHECK(rc == 0 && k == n && ok);
    long grew_kb = max_rss_kb() - before;
    fprintf(stderr, "  file %.1f MB, peak RSS grew by %.1f MB\n", size / 1e6, grew_kb / 1e3);
    CHECK(grew_kb * 1024 < size / 4);
    unlink(path);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/test_json_stream_XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    RUN(element_boundaries_survive_escapes_nesting_and_whitespace);
    RUN(element_offsets_and_where);
    RUN(malformed_input_reports_line_col_and_byte);
    RUN(get_member_and_peek_top);
    RUN(line_col_of_offsets);
    RUN(resident_memory_stays_bounded_on_a_large_file);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd)) return 1;
    return test_summary();
}
