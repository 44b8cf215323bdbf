/* checkpoint.h: training checkpoints = one safetensors file per save.
 *
 * A checkpoint holds named tensors (model parameters as F32, optimizer moments, BN
 * buffers — whatever the trainer adds to the StWriter) and string metadata: step, epoch,
 * sampler position, RNG state, the answer vocabulary (a JSON list string), the config
 * hash and the format version. Files live in one directory:
 *
 *   <dir>/step_00001000.safetensors   written atomically (io/atomic.h)
 *   <dir>/best.safetensors            hard link (or atomic copy) of the best one
 *   <dir>/step_...safetensors.tmp.<pid>  left only by a crash mid-write; ignored, cleaned
 *
 * Saving:   w = st_writer_new(); st_writer_add(w, ...) for each tensor;
 *           ckpt_meta_set_i64(w, CKPT_KEY_EPOCH, epoch); ...;
 *           ckpt_save(w, dir, step, path, sizeof path, &err);
 *           ckpt_rotate(dir, keep_last, &err);  [ckpt_mark_best(dir, path, &err);]
 * Resuming: ckpt_find_latest(dir, path, sizeof path, warn, sizeof warn, &err);
 *           if (path[0]) { ckpt_open(&f, path, &err); ckpt_meta_i64(f, CKPT_KEY_STEP, ...);
 *                          ckpt_load_f32(f, "name", dst, ndim, shape, &err); ... st_close(f); }
 */
#ifndef VQA_IO_CHECKPOINT_H
#define VQA_IO_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"
#include "util/err.h"

#define CKPT_FORMAT_VERSION 1
#define CKPT_PATH_MAX 4096
#define CKPT_BEST_NAME "best.safetensors"

/* Metadata keys (values are strings; integers in decimal). */
#define CKPT_KEY_VERSION "format_version"   /* set by ckpt_save */
#define CKPT_KEY_STEP "step"                /* set by ckpt_save */
#define CKPT_KEY_EPOCH "epoch"
#define CKPT_KEY_SAMPLER "sampler_pos"
#define CKPT_KEY_RNG "rng_state"            /* ckpt_meta_set_u64s */
#define CKPT_KEY_ANSWERS "answers"          /* JSON list of strings */
#define CKPT_KEY_CONFIG_HASH "config_hash"

/* ---- saving ---- */
/* Sets format_version and step in w, creates dir (and parents) if needed and writes
 * <dir>/step_<%08d>.safetensors atomically. path_out (may be NULL) gets the path. */
int ckpt_save(StWriter *w, const char *dir, int64_t step, char *path_out, size_t path_cap, Err *e);
/* Keeps the keep_last newest step_* checkpoints (keep_last <= 0: keep all) and deletes the
 * older ones, except the one best.safetensors was made from. Also removes *.tmp.<pid>
 * files whose process is gone. */
int ckpt_rotate(const char *dir, int keep_last, Err *e);
/* Makes <dir>/best.safetensors the checkpoint at ckpt_path (hard link, or an atomic copy
 * where links are not possible), replacing the previous best atomically. */
int ckpt_mark_best(const char *dir, const char *ckpt_path, Err *e);

/* ---- finding and loading ---- */
/* path_out = the newest step_* checkpoint in dir that opens and validates, or "" when
 * there is none (or dir does not exist). Newer files that fail validation (truncated,
 * corrupt) are skipped, and each is described in warn (one line per file; may be NULL)
 * for the caller to log. Temp files are never considered. -1 only on a real error
 * (directory unreadable, path too long). */
int ckpt_find_latest(const char *dir, char *path_out, size_t path_cap, char *warn, size_t warn_cap,
                     Err *e);
/* st_open plus the checkpoint checks: format_version present and supported, step present;
 * when the file is named step_<N>.safetensors, its step metadata must be N. */
int ckpt_open(StFile **out, const char *path, Err *e);
/* Copies tensor name into dst as fp32 after checking that its shape is exactly shape[ndim];
 * errors name the file, the tensor and both shapes. */
int ckpt_load_f32(const StFile *f, const char *name, float *dst, int ndim, const int64_t *shape, Err *e);
/* Copies tensor name (any dtype) into dst[nbytes] after checking dtype and byte size. */
int ckpt_load_raw(const StFile *f, const char *name, DType dtype, void *dst, size_t nbytes, Err *e);

/* ---- metadata helpers ---- */
int ckpt_meta_set_i64(StWriter *w, const char *key, int64_t v);
int ckpt_meta_i64(const StFile *f, const char *key, int64_t *out, Err *e);
/* n values as space-separated hex (e.g. RNG state words). */
int ckpt_meta_set_u64s(StWriter *w, const char *key, const uint64_t *v, int n);
int ckpt_meta_u64s(const StFile *f, const char *key, uint64_t *out, int n, Err *e);
/* Answer vocabulary <-> JSON list string under CKPT_KEY_ANSWERS. */
int ckpt_meta_set_answers(StWriter *w, const char *const *answers, int n, Err *e);
/* *answers_out is an owned array of n owned strings: free with ckpt_answers_free. */
int ckpt_meta_answers(const StFile *f, char ***answers_out, int *n_out, Err *e);
void ckpt_answers_free(char **answers, int n);

/* 64-bit FNV-1a of bytes as 16 lowercase hex digits + NUL (e.g. the resolved config text). */
void ckpt_hash_hex(const void *data, size_t n, char out[17]);

/* The step encoded in a file name "step_<digits>.safetensors" (path may include folders);
 * returns 0 and sets *step, or -1 if the name does not have that form. */
int ckpt_parse_name(const char *path, int64_t *step);

#endif
