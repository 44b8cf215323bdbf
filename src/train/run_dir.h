/* run_dir.h: the run directory (DESIGN.md §8), written by rank 0:
 *
 *   out_dir/config.yaml          the resolved config (what cfg_dump prints), atomically
 *   out_dir/train.log            a copy of every log line (appended across resumes)
 *   out_dir/metrics.jsonl        one JSON object per logged step / evaluation
 *   out_dir/events.out.tfevents.*  TensorBoard scalars (one new file per start)
 *   out_dir/checkpoints/         (or checkpoint.dir) step_*.safetensors, best.safetensors
 *   out_dir/predictions_<split>.json, submission.npy
 *
 * One call records a group of scalars in both metrics.jsonl and TensorBoard, tagged
 * "<split>/<name>" in TensorBoard (e.g. train/loss, val/accuracy). */
#ifndef VQA_TRAIN_RUN_DIR_H
#define VQA_TRAIN_RUN_DIR_H

#include <stdint.h>
#include <stdio.h>

#include "config/config.h"
#include "io/metrics.h"
#include "io/tensorboard.h"
#include "util/err.h"
#include "util/log.h"

#define RUN_PATH_MAX 4096

typedef struct RunDir {
    char out_dir[RUN_PATH_MAX];
    char ckpt_dir[RUN_PATH_MAX];
    FILE *log_file;          /* attached to Log.file while open */
    MetricsWriter *metrics;
    TbWriter *tb;            /* NULL when log.tensorboard is false */
    Log *log;                /* borrowed, to detach log_file on close */
} RunDir;

/* mkdir -p. */
int run_mkdirs(const char *path, Err *e);
/* The checkpoint folder of a config: checkpoint.dir, else out_dir/checkpoints. */
void run_ckpt_dir(const Config *cfg, char *out, size_t cap);

/* Creates out_dir, writes config.yaml, opens train.log (append) and attaches it to log,
 * opens metrics.jsonl (resume_step >= 0: keeps the lines up to that step, see
 * metrics_open) and, when log.tensorboard, a new event file. */
int run_dir_open(RunDir *rd, const Config *cfg, int64_t resume_step, Log *log, Err *e);
void run_dir_close(RunDir *rd);

/* One metrics.jsonl line {"step", "epoch", "split", names...} and one TensorBoard event
 * with tags split/name. rd may be NULL (ranks other than 0): nothing is written. */
int run_dir_record(RunDir *rd, int64_t step, int64_t epoch, const char *split, int n,
                   const char *const *names, const double *values, Err *e);

#endif
