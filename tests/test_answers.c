/* test_answers.c: answer cleaning and normalization exactly as the official VQA tool
 * (hand-derived table covering every rule of shared/VQA_FORMATS.md §1, plus 3,002 random
 * answers normalized by the Python port in tools/gen_metric_refs.py), soft scores, the
 * answer vocabulary (build, ordering, save/load, errors) and soft targets. */
// TEST_LIBS: vqa_data
// TEST_LABELS: unit
#include <jansson.h>
#include <unistd.h>

#include "testlib.h"
#include "data/answers.h"

typedef struct Case {
    const char *in, *want;
} Case;

/* ans_normalize on already-cleaned text; expected values derived by hand from the rules. */
static const Case NORM[] = {
    /* lower-casing and periods not followed by a digit */
    {"Yes", "yes"}, {"yes.", "yes"}, {"3.5", "3.5"}, {"3.", "3"}, {".5", ".5"}, {"10.", "10"},
    {"3.14.", "3.14"}, {"a.b.c", "abc"}, {"mr. smith", "mr smith"}, {"Mr.ed", "mred"}, {"....", ""},
    {"hi . there", "hi there"}, {"two.5", "two.5"},
    /* punctuation: replaced by a space ... */
    {"red,blue", "red blue"}, {"t-shirt", "t shirt"}, {"x!y", "x y"}, {"red/blue", "red blue"},
    {"1/2", "1 2"}, {"\"quoted\"", "quoted"}, {"back\\slash", "back slash"}, {"snake_case", "snake case"},
    {"x+y", "x y"}, {"<3", "3"}, {"`tick`", "tick"}, {"semi;colon", "semi colon"}, {"[1]", "1"},
    {"{x}", "x"}, {"what?", "what"}, {"@home", "home"}, {"wow!!", "wow"}, {"a=b", "b"},
    /* ... or deleted when "p " or " p" occurs (for that p only) ... */
    {"x-y -", "xy"}, {"x!y! z", "xy z"}, {"x!y !z", "xy z"}, {"x!y-z !", "xy z"},
    {"email @ x", "email x"}, {"red / blue", "red blue"}, {"a/b /c", "ab c"},
    /* ... or deleted (all 21) when digit,digit occurs anywhere */
    {"1,000", "1000"}, {"2,3", "23"}, {"1,2-3", "123"}, {"1,5/2", "152"}, {"a,b 1,2", "ab 12"},
    {"no,2", "no 2"}, {"no, 2", "no 2"},
    {"\xd9\xa3,\xd9\xa3", "\xd9\xa3 \xd9\xa3"},  /* Arabic-Indic digits are not digits here */
    /* characters outside the list stay */
    {"don't", "don't"}, {"50%", "50%"}, {"$5", "$5"}, {"#1", "#1"}, {":)", ":"}, {"a:b", "a:b"},
    /* number words, whole words only, after lower-casing */
    {"none", "0"}, {"None", "0"}, {"zero", "0"}, {"ten", "10"}, {"eleven", "eleven"},
    {"one two three", "1 2 3"}, {"Four five six seven eight nine", "4 5 6 7 8 9"}, {"someone", "someone"},
    /* articles dropped */
    {"the dog", "dog"}, {"a an the", ""}, {"An apple", "apple"}, {"theater", "theater"}, {"(a)", ""},
    /* contractions: keys looked up after lower-casing */
    {"dont", "don't"}, {"Dont", "don't"}, {"whats that", "what's that"}, {"thats", "that's"},
    {"twas", "'twas"}, {"yall'll", "y'all'll"}, {"oclock", "o'clock"}, {"let's", "let's"},
    {"somebody'd", "somebodyd"}, {"Im", "im"}, {"ive", "ive"}, {"id've", "id've"}, {"isnt", "isn't"},
    {"wont", "won't"},
    /* whitespace: split on Python's set, joined with one space */
    {"red   car", "red car"}, {"red\rblue", "red blue"}, {"red\xc2\xa0" "car", "red car"},
    {"red\xe3\x80\x80" "car", "red car"}, {"red\xe2\x80\x8b" "car", "red\xe2\x80\x8b" "car"},
    /* Unicode lower-casing */
    {"\xc3\x89" "COLE", "\xc3\xa9" "cole"}, {"\xc5\xb8", "\xc3\xbf"}, {"\xd0\x94\xd0\x9e\xd0\x9c", "\xd0\xb4\xd0\xbe\xd0\xbc"},
    {"\xc4\xb0", "i\xcc\x87"},
    /* the 32-period cap: of 40 periods not followed by a digit, 8 stay */
    {"........................................x", "........x"},
};

static void normalization_table_matches_the_official_rules(void) {
    char out[512];
    int n = (int)(sizeof NORM / sizeof NORM[0]);
    CHECK(n >= 60);
    for (int i = 0; i < n; i++) {
        ans_normalize(NORM[i].in, out, sizeof out);
        CHECK_MSG(strcmp(out, NORM[i].want) == 0, "case %d: \"%s\" -> \"%s\", want \"%s\"", i, NORM[i].in, out,
                  NORM[i].want);
    }
}

static const Case CLEAN[] = {
    {"  yes  ", "yes"}, {"\tyes\n", "yes"}, {"ye\ts", "ye s"}, {"ye\ns", "ye s"}, {"ye\rs", "ye\rs"},
    {"\r yes \r", "yes"}, {"\x0b\x0c\x1cyes\x1f", "yes"}, {"\xc2\xa0yes\xe3\x80\x80", "yes"},
    {"\xc2\x85yes", "yes"}, {"\xe2\x80\x8byes", "\xe2\x80\x8byes"}, {"", ""}, {"   ", ""},
    {"\xff yes ", "\xff yes"}, {"Yes.", "Yes."}, {"a  b", "a  b"},
};

static void clean_replaces_newline_tab_and_strips_python_whitespace(void) {
    char out[256];
    for (size_t i = 0; i < sizeof CLEAN / sizeof CLEAN[0]; i++) {
        ans_clean(CLEAN[i].in, out, sizeof out);
        CHECK_MSG(strcmp(out, CLEAN[i].want) == 0, "case %zu: \"%s\" -> \"%s\"", i, CLEAN[i].in, out);
    }
}

static void random_answers_match_the_python_port(void) {
    json_error_t je;
    json_t *cases = json_load_file("ref/data/answer_norm_cases.json", 0, &je);
    CHECK_MSG(cases != NULL, "ref/data/answer_norm_cases.json: %s (run tools/gen_metric_refs.py)", je.text);
    if (!cases) return;
    CHECK(json_array_size(cases) >= 3000);
    size_t i, bad = 0;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *raw = json_string_value(json_array_get(c, 0));
        const char *cl = json_string_value(json_array_get(c, 1));
        const char *norm = json_string_value(json_array_get(c, 2));
        char a[1024], b[1024];
        ans_clean(raw, a, sizeof a);
        ans_normalize(a, b, sizeof b);
        if ((strcmp(a, cl) || strcmp(b, norm)) && bad++ < 5)
            CHECK_MSG(0, "case %zu: \"%s\": clean \"%s\" (want \"%s\"), normalize \"%s\" (want \"%s\")", i, raw, a,
                      cl, b, norm);
    }
    CHECK(bad == 0);
    json_decref(cases);
}

static void contraction_map_has_all_120_official_keys(void) { CHECK(ans_contraction_count() == 120); }

static void output_is_truncated_to_capacity(void) {
    char out[4];
    ans_normalize("abcdefgh", out, sizeof out);
    CHECK(strcmp(out, "abc") == 0);
    ans_clean("  abcdefgh", out, sizeof out);
    CHECK(strcmp(out, "abc") == 0);
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char o2[3000];
    ans_normalize(big, o2, sizeof o2);  /* longer than the internal stack buffers */
    CHECK(strlen(o2) == sizeof big - 1);
}

static void soft_scores_are_0_03_06_09_1(void) {
    CHECK(ans_soft_score(0) == 0.0f);
    CHECK(ans_soft_score(1) == 0.3f);
    CHECK(ans_soft_score(2) == 0.6f);
    CHECK(ans_soft_score(3) == 0.9f);
    CHECK(ans_soft_score(4) == 1.0f);
    CHECK(ans_soft_score(10) == 1.0f);
}

/* A tiny split: mc answers (with counts) chosen to test min_count, ordering and ties. */
static VqaSample mk(const char *mc, const char *a0, int k0, const char *a1) {
    VqaSample s = {0};
    s.mc_answer = mc;
    s.n_answers = 10;
    for (int i = 0; i < 10; i++) s.answers[i] = i < k0 ? a0 : a1;
    return s;
}

static void vocab_counts_normalized_candidates_orders_by_count_then_string(void) {
    VqaSample s[12];
    int n = 0;
    s[n++] = mk("Yes", "yes", 10, "no");   /* "Yes" and "yes." normalize to "yes" */
    s[n++] = mk("yes.", "yes", 10, "no");
    s[n++] = mk("yes", "yes", 10, "no");
    s[n++] = mk("two", "2", 6, "3");       /* "two" -> "2" */
    s[n++] = mk("2", "2", 6, "3");
    s[n++] = mk("blue", "blue", 6, "red");
    s[n++] = mk("blue", "blue", 6, "red");
    s[n++] = mk("red", "red", 6, "blue");
    s[n++] = mk("the", "the", 6, "a");     /* normalizes to "": never a class */
    s[n++] = mk("the", "the", 6, "a");
    VqaDataset ds = {.samples = s, .n = n, .has_answers = 1};
    const VqaDataset *splits[1] = {&ds};
    AnswerVocab *v;
    Err err;
    CHECK(ans_vocab_build(&v, splits, 1, 2, 0, &err) == 0);
    /* counts: yes 3, 2 2, blue 2, red 1 -> min_count 2 keeps yes, then the tie 2/blue by string */
    CHECK(ans_vocab_size(v) == 3);
    CHECK(strcmp(ans_vocab_answer(v, 0), "yes") == 0);
    CHECK(strcmp(ans_vocab_answer(v, 1), "2") == 0);
    CHECK(strcmp(ans_vocab_answer(v, 2), "blue") == 0);
    CHECK(ans_vocab_find(v, "blue") == 2);
    CHECK(ans_vocab_find(v, "red") == -1);
    CHECK(ans_vocab_answer(v, 3) == NULL);

    /* soft targets of sample 3: 6 x "2" -> 1.0, 4 x "3" out of vocabulary */
    float t[3];
    ans_soft_targets(v, &s[3], t);
    CHECK(t[0] == 0.0f && t[1] == 1.0f && t[2] == 0.0f);
    VqaSample u = mk("blue", "blue", 2, "yes");  /* 2 x blue -> .6; 8 x yes -> 1 */
    u.answers[9] = "Blue.";                       /* normalizes to blue: 3 -> .9 */
    ans_soft_targets(v, &u, t);
    CHECK(t[0] == 1.0f && t[1] == 0.0f && t[2] == 0.9f);
    VqaSample none = {0};
    t[0] = 5;
    ans_soft_targets(v, &none, t);
    CHECK(t[0] == 0.0f);
    ans_vocab_free(v);

    CHECK(ans_vocab_build(&v, splits, 1, 1, 2, &err) == 0);  /* max_size cuts the tail */
    CHECK(ans_vocab_size(v) == 2);
    ans_vocab_free(v);
}

static void vizwiz_candidate_is_the_most_common_normalized_answer(void) {
    VqaSample s = {0};
    const char *a[10] = {"Unanswerable", "cup", "a cup", "Cup.", "mug", "mug", "mug", "unanswerable",
                         "unanswerable", "x"};
    s.n_answers = 10;
    for (int i = 0; i < 10; i++) s.answers[i] = a[i];
    char out[64];
    CHECK(ans_candidate(&s, out, sizeof out) == 0);
    /* cup x3, mug x3, unanswerable x3: tie -> the first given */
    CHECK(strcmp(out, "unanswerable") == 0);
    s.answers[9] = "MUG";
    CHECK(ans_candidate(&s, out, sizeof out) == 0);
    CHECK(strcmp(out, "mug") == 0);
    VqaSample t = {0};
    CHECK(ans_candidate(&t, out, sizeof out) == -1);
}

static void vocab_save_load_round_trip_and_bad_files(void) {
    const char *list[3] = {"yes", "don't know", "\xc3\xa9t\xc3\xa9"};
    AnswerVocab *v, *w;
    Err err;
    CHECK(ans_vocab_from_list(&v, list, 3, &err) == 0);
    char dir[] = "/tmp/test_answers_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/answers.txt", dir);
    CHECK(ans_vocab_save(v, path, &err) == 0);
    CHECK(ans_vocab_load(&w, path, &err) == 0);
    CHECK(ans_vocab_size(w) == 3);
    for (int i = 0; i < 3; i++) CHECK(strcmp(ans_vocab_answer(w, i), list[i]) == 0);
    ans_vocab_free(w);
    ans_vocab_free(v);

    FILE *f = fopen(path, "w");
    fputs("yes\r\nno\nmaybe\nno\n", f);  /* CRLF tolerated; duplicate rejected */
    fclose(f);
    CHECK(ans_vocab_load(&w, path, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, path);
    CHECK_STR_CONTAINS(err.msg, "\"no\" on line 4 repeats line 2");
    f = fopen(path, "w");
    fputs("yes\n\nno\n", f);
    fclose(f);
    CHECK(ans_vocab_load(&w, path, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "line 2");
    CHECK(ans_vocab_load(&w, "/nonexistent/answers.txt", &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "/nonexistent/answers.txt");
    const char *dup[2] = {"a", "a"};
    CHECK(ans_vocab_from_list(&w, dup, 2, &err) == -1);
    unlink(path);
    rmdir(dir);
}

int main(void) {
    RUN(normalization_table_matches_the_official_rules);
    RUN(clean_replaces_newline_tab_and_strips_python_whitespace);
    RUN(random_answers_match_the_python_port);
    RUN(contraction_map_has_all_120_official_keys);
    RUN(output_is_truncated_to_capacity);
    RUN(soft_scores_are_0_03_06_09_1);
    RUN(vocab_counts_normalized_candidates_orders_by_count_then_string);
    RUN(vizwiz_candidate_is_the_most_common_normalized_answer);
    RUN(vocab_save_load_round_trip_and_bad_files);
    return test_summary();
}
