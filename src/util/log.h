/* log.h: the one logging module. Every line is prefixed with the wall time and the
 * rank: "[2026-11-28 04:55:01 r0] message". Progress (log_info) is printed by rank 0
 * only unless all_ranks is set; warnings and errors are printed by every rank.
 * A Log is part of the run context and passed explicitly (no global logger). */
#ifndef VQA_LOG_H
#define VQA_LOG_H

#include <stdio.h>

typedef struct Log {
    int rank;
    int all_ranks;  /* log.all_ranks: progress from every rank */
    int quiet;      /* suppress info (tests) */
    FILE *out;      /* console, default stderr */
    FILE *file;     /* optional copy (run directory's train.log), owned by the caller */
} Log;

void log_init(Log *l, int rank, int all_ranks);
void log_info(const Log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_warn(const Log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_error(const Log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC), for timing. */
double time_now(void);

#endif
