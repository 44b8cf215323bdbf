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
    const char *answer_type_name;   /* answer_type as in the file ("yes/no", ...), or "" */
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
    /* Not fatal, for the caller to log: samples whose answer count is not 10 (more
     * than 10 are cut to the first 10), and the first such message. */
    int64_t n_warnings;
    char warning[512];
} VqaDataset;

typedef enum DatasetFormat { DS_VQA2 = 0, DS_VIZWIZ = 1 } DatasetFormat;

/* questions: VQA v2 questions JSON, or the VizWiz JSON (which holds answers too);
 * annotations: VQA v2 annotations JSON or NULL (test split; ignored for VizWiz);
 * images: the folder holding the image files (NULL or "": paths are bare file names).
 *
 * VQA v2: image path = images/COCO_<data_subtype>_<image_id %012d>.jpg, data_subtype
 * from the questions file, or when absent from the first COCO_<x>_<12 digits>.jpg found
 * in the images folder. Errors (file, byte offset and line:col, element index, key):
 * malformed JSON, missing keys, wrong types, duplicate question ids, annotations whose
 * question_id has no question (or another image_id), questions without annotation
 * when annotations are given. Text that is not valid UTF-8 is rejected with its
 * position (jansson refuses it), never replaced.
 * VizWiz: a JSON list or pandas column-JSON ({"image": {"0": ...}, ...}, rows in
 * numeric key order); question_id = image_id = row index; image path = images/<image>;
 * answer_type may be "unanswerable"; test entries have only image and question (then
 * every row must lack answers). Multi-hundred-MB files are streamed. */
int ds_load(VqaDataset *ds, DatasetFormat fmt, const char *questions, const char *annotations,
            const char *images, Err *err);
void ds_free(VqaDataset *ds);

#endif
