/* metrics.h: the run's metrics.jsonl — one JSON object per logged step or evaluation:
 *
 *   {"step": 120, "epoch": 0, "split": "train", "loss": 0.6931471805599453, "lr": 0.0001}
 *
 * Keys in the order added, after step and epoch. Numbers are written with the fewest
 * digits that read back to the same double; NaN and ±inf (which JSON cannot hold) are
 * written as null. Each line is flushed when it is complete, so a crash loses at most
 * the line being written, and `tail -f` / pandas.read_json(lines=True) see every step.
 *
 *   MetricsWriter *m; metrics_open(&m, "runs/x/metrics.jsonl", -1, &err);
 *   metrics_begin(m, step, epoch); metrics_add_str(m, "split", "train");
 *   metrics_add(m, "loss", loss); metrics_end(m, &err);
 *   metrics_close(m);
 */
#ifndef VQA_IO_METRICS_H
#define VQA_IO_METRICS_H

#include <stdint.h>

#include "util/err.h"

typedef struct MetricsWriter MetricsWriter;

/* resume_step < 0: start a new file (truncating an old one).
 * resume_step >= 0: continue an existing file after a resume from that step: lines with
 * "step" > resume_step (logged after the checkpoint, about to be redone) and a torn last
 * line are dropped (the file is rewritten atomically), then new lines are appended. */
int metrics_open(MetricsWriter **out, const char *path, int64_t resume_step, Err *e);
void metrics_close(MetricsWriter *m); /* NULL is fine */

/* One line, built in pieces. Errors (out of memory) are reported by metrics_end. */
void metrics_begin(MetricsWriter *m, int64_t step, int64_t epoch);
void metrics_add(MetricsWriter *m, const char *name, double value);
void metrics_add_int(MetricsWriter *m, const char *name, int64_t value);
void metrics_add_str(MetricsWriter *m, const char *name, const char *value);
int metrics_end(MetricsWriter *m, Err *e); /* writes the line and flushes */

/* One line in one call: n named scalars. */
int metrics_write(MetricsWriter *m, int64_t step, int64_t epoch, int n, const char *const *names,
                  const double *values, Err *e);

/* Shortest "%.Ng" (N = 1..17) that reads back as exactly v; "null" for nan/inf. */
void metrics_format_double(double v, char *buf, size_t cap);

#endif
