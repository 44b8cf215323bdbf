/* test_vqa_metric.c: the official VQA accuracy: hand-computed leave-one-out values,
 * unanimous vs disagreeing humans, aggregation per answer / question type on the crafted
 * set (tests/ref/data/metric_*.json; per-question values also from the Python port of the
 * official tool, tools/gen_metric_refs.py), results file reading errors and writing. */
// TEST_LIBS: vqa_data
// TEST_LABELS: unit
#include <jansson.h>
#include <unistd.h>

#include "testlib.h"
#include "data/vqa_metric.h"

static double q10(const char *a, int k, const char *b, const char *pred) {
    const char *ans[10];
    for (int i = 0; i < 10; i++) ans[i] = i < k ? a : b;
    return vqa_metric_question(ans, 10, pred);
}

static void k_agreeing_humans_give_0_03_06_09_1(void) {
    /* k of 10 match: k records see k-1 matches, 10-k see k; mean of min(1, m/3) */
    CHECK_NEAR(q10("red", 0, "blue", "red"), 0.0, 1e-12);
    CHECK_NEAR(q10("red", 1, "blue", "red"), (9 * (1 / 3.0)) / 10, 1e-12);
    CHECK_NEAR(q10("red", 2, "blue", "red"), (2 * (1 / 3.0) + 8 * (2 / 3.0)) / 10, 1e-12);
    CHECK_NEAR(q10("red", 3, "blue", "red"), (3 * (2 / 3.0) + 7 * 1.0) / 10, 1e-12);
    CHECK_NEAR(q10("red", 4, "blue", "red"), 1.0, 1e-12);
    CHECK_NEAR(q10("red", 10, "blue", "red"), 1.0, 1e-12);
    CHECK_NEAR(q10("red", 2, "blue", "red"), 0.6, 1e-12);
    CHECK_NEAR(q10("red", 3, "blue", "red"), 0.9, 1e-12);
}

static void unanimous_answers_compare_exactly_and_case_sensitively(void) {
    CHECK_NEAR(q10("yes", 10, "yes", "Yes"), 0.0, 1e-12);
    CHECK_NEAR(q10("Red.", 10, "Red.", "red"), 0.0, 1e-12);
    CHECK_NEAR(q10("two", 10, "two", "2"), 0.0, 1e-12);
    /* cleaning still applies to both sides */
    CHECK_NEAR(q10("yes", 10, "yes", " yes\n"), 1.0, 1e-12);
    CHECK_NEAR(q10("ye s", 10, "ye s", "ye\ts"), 1.0, 1e-12);
    /* one differing answer switches normalization on for all, prediction included */
    CHECK_NEAR(q10("Red.", 9, "blue", "red"), 1.0, 1e-12);
    CHECK_NEAR(q10("two", 9, "3", "2"), 1.0, 1e-12);
    CHECK_NEAR(q10("yes", 9, "no", "Yes"), 1.0, 1e-12);
}

static void leave_one_out_drops_one_record_not_all_equal_ones(void) {
    /* 3 equal records: each, when left out, leaves 2 matches (2/3), not 0 */
    CHECK_NEAR(q10("cat", 3, "dog", "cat"), 0.9, 1e-12);
    const char *five[5] = {"a1", "a1", "b", "b", "b"};  /* n != 10 averages over n */
    CHECK_NEAR(vqa_metric_question(five, 5, "b"), (3 * (2 / 3.0) + 2 * 1.0) / 5, 1e-12);
}

typedef struct Loaded {
    VqaDataset ds;
    VqaResults res;
} Loaded;

static int load_crafted(Loaded *L, const char *results, Err *err) {
    if (ds_load(&L->ds, DS_VQA2, "ref/data/metric_questions.json", "ref/data/metric_annotations.json", NULL, err))
        return -1;
    if (vqa_metric_read_results(&L->res, results, &L->ds, err)) {
        ds_free(&L->ds);
        return -1;
    }
    return 0;
}

static void crafted_set_overall_and_per_type_accuracies(void) {
    Loaded L;
    Err err;
    CHECK_MSG(load_crafted(&L, "ref/data/metric_results.json", &err) == 0, "%s", err.msg);
    VqaAccuracy acc;
    CHECK(vqa_metric_eval(&acc, &L.ds, L.res.answers, &err) == 0);
    /* hand sums: yes/no 1+0+.3+.6+.9+1 = 3.8 of 6; number 1+0+1+1 = 3 of 4;
     * other 1+0+1+1+.9+.9+.6+0+.6+1 = 7 of 10; overall 13.8 of 20 */
    CHECK(acc.n == 20);
    CHECK_NEAR(acc.overall, 69.0, 1e-9);
    CHECK(acc.n_answer_types == 3);
    CHECK(strcmp(acc.answer_types[0].name, "number") == 0);
    CHECK_NEAR(acc.answer_types[0].accuracy, 75.0, 1e-9);
    CHECK(strcmp(acc.answer_types[1].name, "other") == 0);
    CHECK_NEAR(acc.answer_types[1].accuracy, 70.0, 1e-9);
    CHECK(strcmp(acc.answer_types[2].name, "yes/no") == 0);
    CHECK_NEAR(acc.answer_types[2].accuracy, 380.0 / 6, 1e-9);
    CHECK(acc.n_question_types == 4);
    CHECK(strcmp(acc.question_types[3].name, "what is the") == 0);
    CHECK_NEAR(acc.question_types[3].accuracy, 400.0 / 6, 1e-9);
    CHECK_NEAR(vqa_metric_round2(acc.answer_types[2].accuracy), 63.33, 1e-12);
    CHECK_NEAR(vqa_metric_round2(acc.question_types[3].accuracy), 66.67, 1e-12);

    /* every question as the Python port of the official tool computed it */
    json_t *exp = json_load_file("ref/data/metric_expected.json", 0, NULL);
    CHECK(exp != NULL);
    json_t *pq = json_object_get(exp, "per_question");
    CHECK(json_array_size(pq) == 20);
    for (size_t i = 0; i < json_array_size(pq) && i < (size_t)L.ds.n; i++) {
        json_t *e = json_array_get(pq, i);
        CHECK(json_integer_value(json_object_get(e, "question_id")) == L.ds.samples[i].question_id);
        CHECK_NEAR(acc.per_question[i], json_real_value(json_object_get(e, "accuracy")), 1e-12);
    }
    CHECK_NEAR(acc.overall, json_real_value(json_object_get(exp, "overall")), 1e-9);
    json_decref(exp);

    /* the report, as the official tool prints it */
    char buf[2048] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    vqa_metric_print(&acc, f, 0);
    fclose(f);
    CHECK_STR_CONTAINS(buf, "Overall Accuracy is: 69.00\n");
    CHECK_STR_CONTAINS(buf, "Per Answer Type Accuracy is the following:\nnumber : 75.00\nother : 70.00\nyes/no : 63.33\n");
    vqa_metric_free(&acc);
    vqa_metric_results_free(&L.res);
    ds_free(&L.ds);
}

static void missing_prediction_and_unscored_split_are_errors(void) {
    Loaded L;
    Err err;
    CHECK(load_crafted(&L, "ref/data/metric_results.json", &err) == 0);
    L.res.answers[4] = NULL;
    VqaAccuracy acc;
    CHECK(vqa_metric_eval(&acc, &L.ds, L.res.answers, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "question_id 1004");
    L.ds.has_answers = 0;
    CHECK(vqa_metric_eval(&acc, &L.ds, L.res.answers, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "no human answers");
    vqa_metric_results_free(&L.res);
    ds_free(&L.ds);
}

static char g_dir[64];

static const char *write_tmp(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void bad_results_files_are_located(void) {
    VqaDataset ds;
    Err err;
    CHECK(ds_load(&ds, DS_VQA2, "ref/data/metric_questions.json", "ref/data/metric_annotations.json", NULL, &err) == 0);
    VqaResults r;
    struct {
        const char *text, *want1, *want2;
    } bad[] = {
        {"[{\"question_id\": 1000, \"answer\": \"yes\"},\n {\"question_id\": 1001 \"answer\": \"no\"}]", ":2:",
         "byte"},
        {"{\"question_id\": 1000}", "expected the top level to be a list", ":1:1 (byte 0)"},
        {"[{\"question_id\": 1000, \"answer\": \"yes\"},\n  {\"answer\": \"no\"}]", "result 1 has no key \"question_id\"",
         ":2:3 (byte 43)"},
        {"[{\"question_id\": \"1000\", \"answer\": \"yes\"}]", "\"question_id\" must be an integer", "result 0"},
        {"[{\"question_id\": 1000, \"answer\": 7}]", "\"answer\" must be a string", "result 0"},
        {"[{\"question_id\": 1000}]", "no key \"answer\"", "result 0"},
        {"[{\"question_id\": 9, \"answer\": \"x\"}]", "question_id 9 is not among", "result 0"},
        {"[{\"question_id\": 1000, \"answer\": \"x\"}, {\"question_id\": 1000, \"answer\": \"y\"}]",
         "question_id 1000 given twice", "first at"},
        {"[{\"question_id\": 1000, \"answer\": \"x\"}]", "no result for 19 of the 20 questions", "question_id 1001"},
        {"[{\"question_id\": 1000, \"answer\": \"\xff\"}]", "byte", "element 0"},
        {"[{\"question_id\": 1000, \"answer\": \"x\"}", "end of file", ":1:38 (byte 37)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = write_tmp("r.json", bad[i].text);
        CHECK_MSG(vqa_metric_read_results(&r, p, &ds, &err) == -1, "case %zu", i);
        CHECK_STR_CONTAINS(err.msg, p);
        CHECK_STR_CONTAINS(err.msg, bad[i].want1);
        CHECK_STR_CONTAINS(err.msg, bad[i].want2);
    }
    ds_free(&ds);
}

static void written_results_read_back_and_json_report(void) {
    VqaDataset ds;
    Err err;
    CHECK(ds_load(&ds, DS_VQA2, "ref/data/metric_questions.json", "ref/data/metric_annotations.json", NULL, &err) == 0);
    const char **preds = calloc((size_t)ds.n, sizeof *preds);
    for (int64_t i = 0; i < ds.n; i++) preds[i] = i % 2 ? "yes" : "caf\xc3\xa9 \"q\"";
    char path[256];
    snprintf(path, sizeof path, "%s/out.json", g_dir);
    CHECK(vqa_metric_write_results(path, &ds, preds, &err) == 0);
    VqaResults r;
    CHECK_MSG(vqa_metric_read_results(&r, path, &ds, &err) == 0, "%s", err.msg);
    for (int64_t i = 0; i < ds.n; i++) CHECK(strcmp(r.answers[i], preds[i]) == 0);
    VqaAccuracy acc;
    CHECK(vqa_metric_eval(&acc, &ds, r.answers, &err) == 0);
    snprintf(path, sizeof path, "%s/acc.json", g_dir);
    CHECK(vqa_metric_write_json(&acc, path, &err) == 0);
    json_t *j = json_load_file(path, 0, NULL);
    CHECK(j && json_is_real(json_object_get(j, "overall")));
    CHECK(json_integer_value(json_object_get(j, "n_questions")) == 20);
    CHECK(json_object_get(json_object_get(j, "perAnswerType"), "yes/no") != NULL);
    json_decref(j);
    vqa_metric_free(&acc);
    vqa_metric_results_free(&r);
    free(preds);
    ds_free(&ds);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/test_vqa_metric_XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    RUN(k_agreeing_humans_give_0_03_06_09_1);
    RUN(unanimous_answers_compare_exactly_and_case_sensitively);
    RUN(leave_one_out_drops_one_record_not_all_equal_ones);
    RUN(crafted_set_overall_and_per_type_accuracies);
    RUN(missing_prediction_and_unscored_split_are_errors);
    RUN(bad_results_files_are_located);
    RUN(written_results_read_back_and_json_report);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd)) return 1;
    return test_summary();
}
