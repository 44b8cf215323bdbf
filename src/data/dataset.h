/* dataset.h: a VQA split in memory: questions, their image files, and (when the split
 * has them) the 10 human answers, already stripped of everything the trainer does not use.
 *
 * Readers: VQA v2 (questions JSON + annotations JSON + COCO image folder) and VizWiz /
 * course format (JSON list or pandas column-JSON). Large files are streamed element by
 * element (src/io/json_stream.c) so memory stays a small multiple of the kept data.
 * Strings are stored in one owned pool; samples point into it. */
#ifndef VQA_DATASET_H
#define VQA_DATASET_H

#include <stdint.h>

#include "util/err.h"

#define VQA_N_HUMAN_ANSWERS 10

typedef enum AnswerType { AT_YES_NO = 0, AT_NUMBER = 1, AT_OTHER = 2, AT_UNANSWERABLE = 3, AT_UNKNOWN = 4 } AnswerType;

typedef struct VqaSample {
    int64_t question_id;
    int64_t image_id;               /* VQA v2; VizWiz: index of the image name */
    const char *question;           /* UTF-8, as in the file */
    const char *image_path;         /* full path (images dir + file name) */
    const char *question_type;      /* VQA v2 annotations' question_type, or "" */
    AnswerType answer_type;
    int n_answers;                  /* 0 for a split without answers, else usually 10 */
    const char *answers[VQA_N_HUMAN_ANSWERS];   /* raw human answers, as in the file */
    const char *mc_answer;          /* multiple_choice_answer (VQA v2), or NULL */
} VqaSample;

typedef struct StrPool StrPool;     /* owned string storage (dataset.c) */

typedef struct VqaDataset {
    VqaSample *samples;
    int64_t n;
    int has_answers;
    StrPool *pool;
} VqaDataset;

typedef enum DatasetFormat { DS_VQA2 = 0, DS_VIZWIZ = 1 } DatasetFormat;

/* questions: VQA v2 questions JSON, or the VizWiz JSON (which holds answers too);
 * annotations: VQA v2 annotations JSON or NULL (test split; ignored for VizWiz);
 * images: the folder holding the image files. */
int ds_load(VqaDataset *ds, DatasetFormat fmt, const char *questions, const char *annotations,
            const char *images, Err *err);
void ds_free(VqaDataset *ds);

#endif
