/* vqa_eval.c: the official VQA accuracy of a results file, as a command.
 *
 *   vqa_eval --questions Q.json --annotations A.json --results R.json [--json OUT.json]
 *            [--question-types]
 *
 * Prints "Overall Accuracy is: XX.XX" and the per answer type accuracies with two
 * decimals like the official tool (per question type too with --question-types); with
 * --json writes them as JSON. Bad input: a message naming file and place, exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/vqa_metric.h"
#include "util/err.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: vqa_eval --questions Q.json --annotations A.json --results R.json [--json OUT.json]\n"
            "                [--question-types]\n"
            "\n"
            "Scores a results file [{\"question_id\": N, \"answer\": \"...\"}, ...] with the official\n"
            "VQA accuracy (answers normalized as the official tool does; each question scores\n"
            "the mean over 10 leave-one-out subsets of min(1, matches / 3)).\n"
            "\n"
            "  --questions F       VQA v2 questions JSON (v2_OpenEnded_mscoco_<split>_questions.json)\n"
            "  --annotations F     VQA v2 annotations JSON (v2_mscoco_<split>_annotations.json)\n"
            "  --results F         results to score; must cover every question, once\n"
            "  --json F            also write {overall, perAnswerType, perQuestionType} to F\n"
            "  --question-types    also print the per question type accuracies\n"
            "  -h, --help          this text\n");
}

int main(int argc, char **argv) {
    const char *qpath = NULL, *apath = NULL, *rpath = NULL, *jpath = NULL;
    int qtypes = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--question-types")) {
            qtypes = 1;
            continue;
        } else if (!strcmp(a, "--questions")) {
            dst = &qpath;
        } else if (!strcmp(a, "--annotations")) {
            dst = &apath;
        } else if (!strcmp(a, "--results")) {
            dst = &rpath;
        } else if (!strcmp(a, "--json")) {
            dst = &jpath;
        } else {
            fprintf(stderr, "vqa_eval: unknown argument '%s' (see --help)\n", a);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "vqa_eval: %s needs a file name\n", a);
            return 1;
        }
        *dst = argv[++i];
    }
    if (!qpath || !apath || !rpath) {
        fprintf(stderr, "vqa_eval: --questions, --annotations and --results are required (see --help)\n");
        return 1;
    }
    Err err = {{0}};
    VqaDataset ds;
    VqaResults res;
    VqaAccuracy acc;
    if (ds_load(&ds, DS_VQA2, qpath, apath, NULL, &err)) {
        fprintf(stderr, "vqa_eval: %s\n", err.msg);
        return 1;
    }
    if (ds.n_warnings)
        fprintf(stderr, "vqa_eval: warning: %lld question(s) with an unusual answer count; first: %s\n",
                (long long)ds.n_warnings, ds.warning);
    if (vqa_metric_read_results(&res, rpath, &ds, &err)) {
        fprintf(stderr, "vqa_eval: %s\n", err.msg);
        ds_free(&ds);
        return 1;
    }
    int rc = 0;
    if (vqa_metric_eval(&acc, &ds, res.answers, &err)) {
        fprintf(stderr, "vqa_eval: %s\n", err.msg);
        rc = 1;
    } else {
        vqa_metric_print(&acc, stdout, qtypes);
        if (jpath && vqa_metric_write_json(&acc, jpath, &err)) {
            fprintf(stderr, "vqa_eval: %s\n", err.msg);
            rc = 1;
        }
        vqa_metric_free(&acc);
    }
    vqa_metric_results_free(&res);
    ds_free(&ds);
    return rc;
}
