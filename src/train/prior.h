/* prior.h: the answer prior, a baseline that sees no image: for each question type of the
 * training split, its most frequent answer (canonical multiple-choice answer, as the answer
 * vocabulary counts them); questions of a type never seen in training get the overall most
 * frequent answer. Logged beside the model's accuracy so that what the model learned
 * beyond the language prior is visible. Question type = the annotations' question_type
 * (VQA v2, and vqa_synth); without it ("" everywhere) the prior is the global answer. */
#ifndef VQA_TRAIN_PRIOR_H
#define VQA_TRAIN_PRIOR_H

#include <stdint.h>

#include "data/dataset.h"
#include "util/err.h"

typedef struct AnswerPrior AnswerPrior;

/* Counts the training split. Ties between equally frequent answers go to the smaller
 * string (strcmp), so the prior does not depend on file order. Error if the split has no
 * answers. */
int prior_build(AnswerPrior **out, const VqaDataset *train, Err *err);
void prior_free(AnswerPrior *p);
/* The prior's answer for a question (never NULL; owned by p). */
const char *prior_answer(const AnswerPrior *p, const char *question_type);
int prior_n_types(const AnswerPrior *p);
/* preds[i] = prior_answer for ds->samples[i] (pointers into p). */
void prior_predict(const AnswerPrior *p, const VqaDataset *ds, const char **preds);
/* The prior's official VQA accuracy (x 100) on ds (which must have answers). */
int prior_accuracy(const AnswerPrior *p, const VqaDataset *ds, double *accuracy, Err *err);

#endif
