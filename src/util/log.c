/* log.c: time- and rank-prefixed log lines (see log.h). */
#include "util/log.h"

#include <stdarg.h>
#include <time.h>

void log_init(Log *l, int rank, int all_ranks) {
    l->rank = rank;
    l->all_ranks = all_ranks;
    l->quiet = 0;
    l->out = stderr;
    l->file = NULL;
}

static void log_emit(const Log *l, const char *level, const char *fmt, va_list ap) {
    char stamp[32];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    FILE *outs[2] = {l->out ? l->out : stderr, l->file};
    for (int i = 0; i < 2; i++) {
        if (!outs[i]) continue;
        va_list cp;
        va_copy(cp, ap);
        fprintf(outs[i], "[%s r%d] %s", stamp, l->rank, level);
        vfprintf(outs[i], fmt, cp);
        fputc('\n', outs[i]);
        fflush(outs[i]);
        va_end(cp);
    }
}

void log_info(const Log *l, const char *fmt, ...) {
    if (l->quiet || (l->rank != 0 && !l->all_ranks)) return;
    va_list ap;
    va_start(ap, fmt);
    log_emit(l, "", fmt, ap);
    va_end(ap);
}

void log_warn(const Log *l, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_emit(l, "warning: ", fmt, ap);
    va_end(ap);
}

void log_error(const Log *l, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_emit(l, "error: ", fmt, ap);
    va_end(ap);
}

double time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
