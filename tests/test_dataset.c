/* test_dataset.c: VQA v2 and VizWiz readers on the hand-made fixtures in tests/ref/data/
 * (vqa2_*.json, vizwiz_list.json, the same rows as pandas column-JSON in
 * vizwiz_columns.json, vizwiz_test.json), and every kind of bad input: the message must
 * name the file and the place (byte offset and line:col, element, key). */
// TEST_LIBS: vqa_data
// TEST_LABELS: unit
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"
#include "data/dataset.h"

static char g_dir[64];

static const char *tmp_file(const char *name, const char *text) {
    static char path[4][256];
    static int k = 0;
    char *p = path[k++ % 4];
    snprintf(p, 256, "%s/%s", g_dir, name);
    FILE *f = fopen(p, "wb");
    fputs(text, f);
    fclose(f);
    return p;
}

static void vqa2_loads_questions_answers_and_coco_paths(void) {
    VqaDataset ds;
    Err err;
    int rc = ds_load(&ds, DS_VQA2, "ref/data/vqa2_questions.json", "ref/data/vqa2_annotations.json", "imgs", &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) return;
    CHECK(ds.n == 3 && ds.has_answers == 1 && ds.n_warnings == 0);
    const VqaSample *s = ds.samples;
    CHECK(s[0].question_id == 458752000 && s[0].image_id == 458752);
    CHECK(strcmp(s[0].image_path, "imgs/COCO_train2014_000000458752.jpg") == 0);
    CHECK(s[0].image_path == s[1].image_path);  /* shared image: stored once */
    CHECK(strcmp(s[2].image_path, "imgs/COCO_train2014_000000262146.jpg") == 0);
    CHECK(strcmp(s[0].question, "What is this photo taken looking through?") == 0);
    CHECK(strcmp(s[2].question, "Is the \"dog\" \xc3\xa9t\xc3\xa9 \\ sleeping?") == 0);
    CHECK(strcmp(s[0].question_type, "what is this") == 0);
    CHECK(s[0].answer_type == AT_OTHER && strcmp(s[0].answer_type_name, "other") == 0);
    CHECK(s[2].answer_type == AT_YES_NO);
    CHECK(s[0].n_answers == 10);
    CHECK(strcmp(s[0].answers[9], "netting") == 0 && strcmp(s[0].answers[0], "net") == 0);
    CHECK(strcmp(s[1].answers[9], "Pitcher") == 0 && strcmp(s[1].answers[1], "catcher") == 0);
    CHECK(strcmp(s[1].mc_answer, "pitcher") == 0);
    ds_free(&ds);
}

static void vqa2_test_split_has_no_answers(void) {
    VqaDataset ds;
    Err err;
    CHECK(ds_load(&ds, DS_VQA2, "ref/data/vqa2_questions.json", NULL, "", &err) == 0);
    CHECK(ds.n == 3 && ds.has_answers == 0 && ds.samples[0].n_answers == 0);
    CHECK(ds.samples[0].answer_type == AT_UNKNOWN && ds.samples[0].mc_answer == NULL);
    CHECK(strcmp(ds.samples[0].image_path, "COCO_train2014_000000458752.jpg") == 0);
    ds_free(&ds);
}

static void vqa2_split_name_from_image_folder_when_data_subtype_absent(void) {
    const char *q = tmp_file("q_nosub.json", "{\"questions\": [{\"image_id\": 7, \"question\": \"Why?\", \"question_id\": 70}]}");
    char imgs[256], f[300];
    snprintf(imgs, sizeof imgs, "%s/imgs", g_dir);
    mkdir(imgs, 0755);
    VqaDataset ds;
    Err err;
    CHECK(ds_load(&ds, DS_VQA2, q, NULL, imgs, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "data_subtype");
    snprintf(f, sizeof f, "%s/notes.txt", imgs);
    fclose(fopen(f, "w"));
    snprintf(f, sizeof f, "%s/COCO_val2014_000000000001.jpg", imgs);
    fclose(fopen(f, "w"));
    CHECK_MSG(ds_load(&ds, DS_VQA2, q, NULL, imgs, &err) == 0, "%s", err.msg);
    char want[300];
    snprintf(want, sizeof want, "%s/COCO_val2014_000000000007.jpg", imgs);
    CHECK(ds.n == 1 && strcmp(ds.samples[0].image_path, want) == 0);
    ds_free(&ds);
}

static void check_same_vizwiz(const VqaDataset *ds) {
    CHECK(ds->n == 3 && ds->has_answers == 1);
    const VqaSample *s = ds->samples;
    for (int i = 0; i < 3; i++) CHECK(s[i].question_id == i && s[i].image_id == i);
    CHECK(strcmp(s[0].image_path, "vz/VizWiz_train_00000000.jpg") == 0);
    CHECK(strcmp(s[2].image_path, "vz/VizWiz_train_00000002.jpg") == 0);
    CHECK(strcmp(s[0].question, "What's the name of this product?") == 0);
    CHECK(s[0].n_answers == 10 && strcmp(s[0].answers[5], "basil") == 0);
    CHECK(s[1].answer_type == AT_UNANSWERABLE && strcmp(s[1].answer_type_name, "unanswerable") == 0);
    CHECK(s[2].answer_type == AT_YES_NO && strcmp(s[2].answers[9], "no") == 0);
    CHECK(s[0].mc_answer == NULL && strcmp(s[0].question_type, "") == 0);
}

static void vizwiz_list_and_column_json_give_the_same_samples(void) {
    VqaDataset a, b;
    Err err;
    CHECK_MSG(ds_load(&a, DS_VIZWIZ, "ref/data/vizwiz_list.json", NULL, "vz", &err) == 0, "%s", err.msg);
    CHECK_MSG(ds_load(&b, DS_VIZWIZ, "ref/data/vizwiz_columns.json", NULL, "vz", &err) == 0, "%s", err.msg);
    check_same_vizwiz(&a);
    check_same_vizwiz(&b);  /* rows in numeric key order though the file has 2, 0, 1 */
    ds_free(&a);
    ds_free(&b);
}

static void vizwiz_test_entries_have_only_image_and_question(void) {
    VqaDataset ds;
    Err err;
    CHECK(ds_load(&ds, DS_VIZWIZ, "ref/data/vizwiz_test.json", NULL, NULL, &err) == 0);
    CHECK(ds.n == 2 && ds.has_answers == 0 && ds.samples[1].n_answers == 0);
    CHECK(strcmp(ds.samples[1].image_path, "VizWiz_test_00000001.jpg") == 0);
    ds_free(&ds);
}

static void answer_count_other_than_10_is_a_warning(void) {
    const char *q = tmp_file("q.json", "{\"data_subtype\": \"val2014\", \"questions\": ["
                                       "{\"image_id\": 1, \"question\": \"A?\", \"question_id\": 10},"
                                       "{\"image_id\": 2, \"question\": \"B?\", \"question_id\": 20}]}");
    char ans[2048] = "{\"annotations\": [{\"question_id\": 10, \"answers\": [";
    for (int i = 0; i < 12; i++) strcat(ans, i ? ", {\"answer\": \"x\"}" : "{\"answer\": \"y\"}");
    strcat(ans, "]}, {\"question_id\": 20, \"answers\": [{\"answer\": \"z\"}]}]}");
    const char *a = tmp_file("a.json", ans);
    VqaDataset ds;
    Err err;
    CHECK_MSG(ds_load(&ds, DS_VQA2, q, a, NULL, &err) == 0, "%s", err.msg);
    CHECK(ds.n_warnings == 2);
    CHECK_STR_CONTAINS(ds.warning, "12 answers instead of 10");
    CHECK_STR_CONTAINS(ds.warning, "a.json:1:18 (byte 17)");
    CHECK(ds.samples[0].n_answers == 10 && ds.samples[1].n_answers == 1);
    CHECK(strcmp(ds.samples[0].answers[0], "y") == 0);
    ds_free(&ds);
}

typedef struct Bad {
    const char *questions, *annotations;  /* file texts; annotations NULL: none */
    const char *want[3];                  /* substrings of the message */
} Bad;

#define QS(x) "{\"data_subtype\": \"val2014\", \"questions\": [" x "]}"
#define AS(x) "{\"annotations\": [" x "]}"
#define Q1 "{\"image_id\": 1, \"question\": \"A?\", \"question_id\": 10}"
#define A10 "\"answers\": [{\"answer\": \"y\"}, {\"answer\": \"y\"}, {\"answer\": \"y\"}, {\"answer\": \"y\"}, " \
            "{\"answer\": \"y\"}, {\"answer\": \"y\"}, {\"answer\": \"y\"}, {\"answer\": \"y\"}, {\"answer\": \"y\"}, " \
            "{\"answer\": \"y\"}]"

static const Bad BAD_VQA2[] = {
    /* malformed JSON: the place is the byte where jansson or the scanner stopped */
    {QS(Q1 ",\n {\"image_id\": 2 \"question\": \"B?\", \"question_id\": 20}"), NULL,
     {"q.json:2:", "(byte ", "in element 1"}},
    {"{\"questions\": [" Q1, NULL, {"q.json:", "end of file", "byte"}},
    {QS(Q1 ",]"), NULL, {"trailing comma", "q.json:1:", "byte"}},
    {QS(Q1) " x", NULL, {"unexpected data after the top-level value", "q.json:1:", "byte"}},
    {"[" Q1 "]", NULL, {"q.json:1:1 (byte 0)", "top level to be an object holding", "a list"}},
    {"{\"data_subtype\": \"val2014\", \"info\": {\"a\": [1, 2}}, \"questions\": []}", NULL,
     {"q.json:1:", "closes the '['", "byte"}},
    {"{\"data_subtype\": \"val2014\"}", NULL, {"q.json", "no member \"questions\"", ""}},
    {"{\"data_subtype\": \"val2014\", \"questions\": {}}", NULL, {"q.json:1:", "\"questions\" must be a list", ""}},
    /* keys and types */
    {QS("{\"image_id\": 1, \"question\": \"A?\"}"), NULL, {"q.json:1:", "question 0", "missing key \"question_id\""}},
    {QS(Q1 ", {\"image_id\": \"2\", \"question\": \"B?\", \"question_id\": 20}"), NULL,
     {"question 1", "key \"image_id\" must be an integer, found a string", "q.json:1:"}},
    {QS("{\"image_id\": 1, \"question\": 5, \"question_id\": 10}"), NULL,
     {"key \"question\" must be a string, found an integer", "question 0", ""}},
    {QS("7"), NULL, {"each question must be an object, found an integer", "", ""}},
    {QS(Q1 ", " Q1), NULL, {"question_id 10 repeats question 0", "question 1", ""}},
    {"{\"data_subtype\": 2014, \"questions\": []}", NULL, {"\"data_subtype\" must be a string", "q.json", ""}},
    /* text that is not UTF-8 is rejected with its place */
    {QS("{\"image_id\": 1, \"question\": \"caf\xe9?\", \"question_id\": 10}"), NULL,
     {"q.json:1:", "in element 0", "0xe9"}},
    /* annotations */
    {QS(Q1), AS("{\"question_id\": 11, " A10 "}"), {"a.json:1:", "question_id 11 has no question in", "q.json"}},
    {QS(Q1 ", {\"image_id\": 2, \"question\": \"B?\", \"question_id\": 20}"), AS("{\"question_id\": 10, " A10 "}"),
     {"a.json", "1 question(s) of", "the first question_id 20"}},
    {QS(Q1), AS("{\"question_id\": 10, " A10 "}, {\"question_id\": 10, " A10 "}"),
     {"a second annotation for question_id 10", "annotation 1", ""}},
    {QS(Q1), AS("{\"question_id\": 10, \"image_id\": 3, " A10 "}"), {"has image_id 3 here but 1 in", "", ""}},
    {QS(Q1), AS("{\"question_id\": 10}"), {"missing key \"answers\"", "annotation 0", "a.json:1:18 (byte 17)"}},
    {QS(Q1), AS("{\"question_id\": 10, \"answers\": [\"y\"]}"), {"answers[0] must be an object, found a string", "", ""}},
    {QS(Q1), AS("{\"question_id\": 10, \"answers\": [{\"answer\": 1}]}"), {"answers[0]: key \"answer\" must be a string", "", ""}},
    {QS(Q1), AS("{\"question_id\": 10, \"answer_type\": 1, " A10 "}"), {"key \"answer_type\" must be a string", "", ""}},
    {QS(Q1), AS("{\"question_id\": 10, \"multiple_choice_answer\": null, " A10 "}"),
     {"key \"multiple_choice_answer\" must be a string, found null", "", ""}},
    {QS(Q1), "{\"annotations\": [{\"question_id\": 10, " A10 "}], \"license\": {\"x\": \"ab", {"a.json:1:", "unterminated string", ""}},
    {QS(Q1), "{\"annotations\": [{\"question_id\": 10, " A10 "}], \"license\": \"a\nb\"}",
     {"a.json:1:", "control character inside a string", ""}},
};

static void bad_vqa2_files_name_the_file_and_place(void) {
    for (size_t i = 0; i < sizeof BAD_VQA2 / sizeof BAD_VQA2[0]; i++) {
        const Bad *b = &BAD_VQA2[i];
        const char *q = tmp_file("q.json", b->questions);
        const char *a = b->annotations ? tmp_file("a.json", b->annotations) : NULL;
        VqaDataset ds;
        Err err = {{0}};
        CHECK_MSG(ds_load(&ds, DS_VQA2, q, a, NULL, &err) == -1, "case %zu loaded", i);
        for (int k = 0; k < 3; k++) CHECK_STR_CONTAINS(err.msg, b->want[k]);
        CHECK(ds.samples == NULL && ds.pool == NULL);
    }
    VqaDataset ds;
    Err err;
    CHECK(ds_load(&ds, DS_VQA2, "/nonexistent/q.json", NULL, NULL, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "/nonexistent/q.json: cannot open");
}

static const Bad BAD_VIZWIZ[] = {
    {"[{\"image\": \"a.jpg\", \"question\": \"Q?\", \"answers\": [{\"answer\": \"x\"}]}, {\"image\": \"b.jpg\", "
     "\"question\": \"R?\"}]", NULL, {"entry 1", "has no \"answers\" while the first entry has them", "v.json:1:"}},
    {"[{\"question\": \"Q?\"}]", NULL, {"missing key \"image\"", "entry 0", "v.json:1:2 (byte 1)"}},
    {"[{\"image\": \"a.jpg\", \"question\": \"Q?\", \"answers\": {}}]", NULL, {"\"answers\" must be a list", "", ""}},
    {"{\"image\": {\"0\": \"a.jpg\", \"1\": \"b.jpg\"}, \"question\": {\"0\": \"Q?\"}}", NULL,
     {"column \"question\" has 1 rows but column \"image\" has 2", "v.json", "column-JSON"}},
    {"{\"image\": {\"x\": \"a.jpg\"}, \"question\": {\"x\": \"Q?\"}}", NULL, {"row key \"x\"", "not a row number", ""}},
    {"{\"image\": {\"0\": \"a.jpg\"}, \"question\": {\"1\": \"Q?\"}}", NULL, {"column \"question\" has no row \"0\"", "", ""}},
    {"{\"question\": {\"0\": \"Q?\"}}", NULL, {"no column \"image\"", "", ""}},
    {"{\"image\": {\"0\": \"a.jpg\"}, \"question\": {\"0\": 3}}", NULL, {"row \"0\"", "key \"question\" must be a string", ""}},
    {"{\"image\": {\"0\": \"a.jpg\",}}", NULL, {"v.json:1:", "byte", ""}},
    {"\"text\"", NULL, {"v.json", "expected a JSON list of entries or a column-JSON object", ""}},
};

static void bad_vizwiz_files_name_the_file_and_place(void) {
    for (size_t i = 0; i < sizeof BAD_VIZWIZ / sizeof BAD_VIZWIZ[0]; i++) {
        const char *v = tmp_file("v.json", BAD_VIZWIZ[i].questions);
        VqaDataset ds;
        Err err = {{0}};
        CHECK_MSG(ds_load(&ds, DS_VIZWIZ, v, NULL, NULL, &err) == -1, "case %zu loaded", i);
        for (int k = 0; k < 3; k++) CHECK_STR_CONTAINS(err.msg, BAD_VIZWIZ[i].want[k]);
    }
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/test_dataset_XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    RUN(vqa2_loads_questions_answers_and_coco_paths);
    RUN(vqa2_test_split_has_no_answers);
    RUN(vqa2_split_name_from_image_folder_when_data_subtype_absent);
    RUN(vizwiz_list_and_column_json_give_the_same_samples);
    RUN(vizwiz_test_entries_have_only_image_and_question);
    RUN(answer_count_other_than_10_is_a_warning);
    RUN(bad_vqa2_files_name_the_file_and_place);
    RUN(bad_vizwiz_files_name_the_file_and_place);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd)) return 1;
    return test_summary();
}
