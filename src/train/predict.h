/* predict.h: `vqa_train CONFIG --predict CKPT`: loads the checkpoint's model and answer
 * vocabulary, runs it over predict.split (answers not needed) and writes
 *   predict.out (default out_dir/predictions_<split>.json)  [{"question_id": N, "answer": "..."}]
 *   submission.npy next to it                               '<U{maxlen}' answers, question order
 * and, when the split has answers, logs the official VQA accuracy (the number vqa_eval
 * gives on the written file). */
#ifndef VQA_TRAIN_PREDICT_H
#define VQA_TRAIN_PREDICT_H

#include "comm/comm.h"
#include "config/config.h"
#include "ops/backend.h"
#include "data/dataset.h"
#include "train/train_main.h"
#include "util/err.h"
#include "util/log.h"

/* Writes both files for ds with preds[i] the answer of ds->samples[i] (NULL: ""). */
int predict_write(const char *json_path, const char *npy_path, const VqaDataset *ds, const char *const *preds, Err *e);

/* The whole --predict run. comm (may be NULL = a world of one): several ranks each predict
 * their shard of the split (evaluate()), rank 0 writes the files and logs. Collective. */
int predict_run(const Config *cfg, const CliArgs *cli, Log *log, Comm *comm, Err *e);
/* A world of one on a given backend instead of the one cli->device names (NULL: that one). */
int predict_run_on(const Config *cfg, const CliArgs *cli, Log *log, const Backend *be, Err *e);

#endif
