/* run_dir.c: creating and writing the run directory (run_dir.h). */
#include "train/run_dir.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/atomic.h"

int run_mkdirs(const char *path, Err *e) {
    char p[RUN_PATH_MAX];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) return err_set(e, "%s: path too long", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return err_errno(e, "cannot create folder %s", p);
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST) return err_errno(e, "cannot create folder %s", p);
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) return err_set(e, "%s exists but is not a folder", p);
    return 0;
}

void run_ckpt_dir(const Config *cfg, char *out, size_t cap) {
    if (cfg->checkpoint.dir && cfg->checkpoint.dir[0])
        snprintf(out, cap, "%s", cfg->checkpoint.dir);
    else
        snprintf(out, cap, "%s/checkpoints", cfg->run.out_dir);
}

int run_dir_open(RunDir *rd, const Config *cfg, int64_t resume_step, Log *log, Err *e) {
    memset(rd, 0, sizeof *rd);
    snprintf(rd->out_dir, sizeof rd->out_dir, "%s", cfg->run.out_dir);
    run_ckpt_dir(cfg, rd->ckpt_dir, sizeof rd->ckpt_dir);
    if (run_mkdirs(rd->out_dir, e) != 0) return err_prefix(e, "run.out_dir");
    char path[RUN_PATH_MAX + 64];

    char *yaml = cfg_dump_string(cfg);
    if (!yaml) return err_set(e, "out of memory");
    snprintf(path, sizeof path, "%s/config.yaml", rd->out_dir);
    int rc = atomic_write_file(path, yaml, strlen(yaml), e);
    free(yaml);
    if (rc != 0) return -1;

    snprintf(path, sizeof path, "%s/train.log", rd->out_dir);
    if (!(rd->log_file = fopen(path, resume_step >= 0 ? "a" : "w"))) return err_errno(e, "cannot open %s", path);
    rd->log = log;
    log->file = rd->log_file;

    snprintf(path, sizeof path, "%s/metrics.jsonl", rd->out_dir);
    if (metrics_open(&rd->metrics, path, resume_step, e) != 0) {
        run_dir_close(rd);
        return -1;
    }
    if (cfg->log.tensorboard && tb_open(&rd->tb, rd->out_dir, e) != 0) {
        run_dir_close(rd);
        return -1;
    }
    return 0;
}

void run_dir_close(RunDir *rd) {
    metrics_close(rd->metrics);
    tb_close(rd->tb);
    if (rd->log && rd->log->file == rd->log_file) rd->log->file = NULL;
    if (rd->log_file) fclose(rd->log_file);
    rd->metrics = NULL;
    rd->tb = NULL;
    rd->log_file = NULL;
}

int run_dir_record(RunDir *rd, int64_t step, int64_t epoch, const char *split, int n,
                   const char *const *names, const double *values, Err *e) {
    if (!rd || !rd->metrics) return 0;
    metrics_begin(rd->metrics, step, epoch);
    metrics_add_str(rd->metrics, "split", split);
    for (int i = 0; i < n; i++) metrics_add(rd->metrics, names[i], values[i]);
    if (metrics_end(rd->metrics, e) != 0) return -1;
    if (!rd->tb) return 0;
    enum { MAXN = 32 };
    char tags[MAXN][96];
    const char *tp[MAXN];
    float v[MAXN];
    int m = n < MAXN ? n : MAXN;
    for (int i = 0; i < m; i++) {
        snprintf(tags[i], sizeof tags[i], "%s/%s", split, names[i]);
        tp[i] = tags[i];
        v[i] = (float)values[i];
    }
    return tb_add_scalars(rd->tb, step, m, tp, v, e);
}
