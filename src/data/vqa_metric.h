/* vqa_metric.h: the official VQA accuracy (shared/VQA_FORMATS.md §1), aggregated overall,
 * per answer type and per question type, and the results file
 * [{"question_id": N, "answer": "..."}] that vqa_eval reads and the trainer writes.
 *
 * Per question (official vqaEval.py, March 2021): clean the prediction and the human
 * answers (ans_clean); when the cleaned human answers are not all the same string,
 * normalize (ans_normalize) them and the prediction, otherwise compare exactly; for each
 * answer record i, acc_i = min(1, #{j != i : answer_j == prediction} / 3); the question's
 * accuracy is the mean of the acc_i. Aggregates are means x 100, printed with two
 * decimals. Leave-one-out drops one record by position (VQA v2 records are distinct by
 * answer_id; VizWiz records, which have no id, are treated the same way). */
#ifndef VQA_METRIC_H
#define VQA_METRIC_H

#include <stdint.h>
#include <stdio.h>

#include "data/dataset.h"
#include "util/err.h"

/* Accuracy in [0, 1] of one prediction against n human answers (raw, as in the file). */
double vqa_metric_question(const char *const *answers, int n, const char *prediction);

typedef struct VqaAccGroup {
    const char *name;   /* answer type / question type as in the annotations ("" -> "(none)") */
    int64_t n;          /* questions in the group */
    double accuracy;    /* mean x 100 (not rounded) */
} VqaAccGroup;

typedef struct VqaAccuracy {
    int64_t n;                  /* questions scored (those with human answers) */
    double overall;             /* mean x 100 (not rounded) */
    int n_answer_types, n_question_types;
    VqaAccGroup *answer_types;  /* sorted by name */
    VqaAccGroup *question_types;
    double *per_question;       /* [ds->n]: accuracy in [0, 1], NAN where not scored */
    char *names;                /* storage of the group names */
} VqaAccuracy;

/* preds[i] is the predicted answer for ds->samples[i]. Every sample with human answers
 * is scored and needs a prediction (error naming the first question_id without one);
 * a split without answers is an error. The trainer's evaluation calls this. */
int vqa_metric_eval(VqaAccuracy *acc, const VqaDataset *ds, const char *const *preds, Err *err);
void vqa_metric_free(VqaAccuracy *acc);

/* Python's round(x, 2) for a printed accuracy: the nearest of the two-decimal values. */
double vqa_metric_round2(double x);

/* The official tool's report: "Overall Accuracy is: 63.21", then per answer type
 * ("yes/no : 80.55"), and with question_types also per question type. */
void vqa_metric_print(const VqaAccuracy *acc, FILE *f, int question_types);
/* {"overall": 63.21, "perAnswerType": {...}, "perQuestionType": {...}, "n_questions": N}
 * with values rounded to two decimals like the official accuracy file; atomic write. */
int vqa_metric_write_json(const VqaAccuracy *acc, const char *path, Err *err);

/* Predictions read from a results file, indexed like the dataset. */
typedef struct VqaResults {
    const char **answers;   /* [n]: answer for sample i, NULL where the file has none */
    int64_t n;
    StrPool *pool;
} VqaResults;

/* Reads a results file for ds. Errors (file, byte offset, line:col, element index):
 * malformed JSON, not a list, an element not an object, missing question_id/answer,
 * wrong types, a question_id not among ds's questions, a question_id given twice, and
 * (like the official tool) a question of ds with no result. */
int vqa_metric_read_results(VqaResults *r, const char *path, const VqaDataset *ds, Err *err);
void vqa_metric_results_free(VqaResults *r);
/* Writes [{"question_id": N, "answer": "..."}] for every sample with a non-NULL
 * prediction, in dataset order, atomically (temp file + rename). */
int vqa_metric_write_results(const char *path, const VqaDataset *ds, const char *const *preds, Err *err);

#endif
