/* safetensors.h: read (mmap + full validation) and write (atomic) safetensors files.
 *
 * Format (VQA_FORMATS.md §6): u64 little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * padded with spaces, then the data section: little-endian, row-major, offsets relative
 * to its start, contiguous with no gaps, end - begin = numel * dtype size, and the file
 * ends exactly at the last end. Every violation is an error naming the file, the tensor
 * (or byte offset) and what was expected.
 *
 * Reading: st_open maps the file read-only; StTensor.data points into the map and stays
 * valid until st_close. Data may be unaligned: use st_read_f32 or memcpy.
 * Writing: an StWriter collects (name, dtype, shape, data pointer) — the data is only
 * referenced until st_writer_save — plus metadata, and saves atomically (io/atomic.h).
 */
#ifndef VQA_IO_SAFETENSORS_H
#define VQA_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "ops/tensor.h"
#include "util/err.h"

/* A header larger than this is refused before anything is allocated. */
#define ST_MAX_HEADER_BYTES (100u * 1024u * 1024u)

typedef struct StTensor {
    const char *name;     /* owned by the StFile */
    DType dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    int64_t numel;
    const void *data;     /* into the read-only map; possibly unaligned */
    size_t nbytes;
    const char *file;     /* path of the file it came from (for messages) */
} StTensor;

typedef struct StFile StFile;

int st_open(StFile **out, const char *path, Err *e);
void st_close(StFile *f);                       /* NULL is fine */
const char *st_path(const StFile *f);
int st_count(const StFile *f);                  /* tensors, sorted by name */
const StTensor *st_at(const StFile *f, int i);
const StTensor *st_find(const StFile *f, const char *name); /* NULL if absent */
/* Like st_find, but a missing tensor is an error naming the file and the tensor. */
int st_get(const StFile *f, const char *name, const StTensor **out, Err *e);
const char *st_metadata(const StFile *f, const char *key);  /* NULL if absent */
int st_metadata_count(const StFile *f);
/* i-th metadata pair (sorted by key); returns 0, or -1 if i is out of range. */
int st_metadata_at(const StFile *f, int i, const char **key, const char **value);

/* Copies the tensor into dst[n] as fp32: F32 bitwise, F16 exactly (subnormals, inf, nan),
 * BF16 by shift. n must equal t->numel; other dtypes are an error. */
int st_read_f32(const StTensor *t, float *dst, size_t n, Err *e);

/* Parses "F32", "BF16", ... ; returns 0 or -1 if unknown. */
int st_dtype_parse(const char *s, DType *out);
const char *st_dtype_str(DType t);
size_t st_dtype_size(DType t);

/* ---- scalar conversions ---- */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t b);
uint16_t st_f32_to_f16(float f);   /* round to nearest even; overflow -> inf; nan stays nan */
uint16_t st_f32_to_bf16(float f);  /* round to nearest even; nan stays nan */
void st_f32_to_bf16_n(const float *src, uint16_t *dst, size_t n);
void st_f32_to_f16_n(const float *src, uint16_t *dst, size_t n);

/* ---- writer ---- */
typedef struct StWriter StWriter;

StWriter *st_writer_new(void);                  /* NULL if out of memory */
void st_writer_free(StWriter *w);               /* NULL is fine */
/* Adds a tensor; name and shape are copied, data is referenced until st_writer_save.
 * Returns -1 on a bad argument or out of memory; the first such problem is also
 * remembered and reported by st_writer_save (so callers may check only there). */
int st_writer_add(StWriter *w, const char *name, DType dtype, int ndim, const int64_t *shape,
                  const void *data);
/* Sets (or replaces) a metadata pair; key and value are copied. */
int st_writer_set_meta(StWriter *w, const char *key, const char *value);
/* Writes atomically. Tensors are laid out by decreasing dtype size, then by name (as the
 * Python writer does, so every tensor is aligned to its element size); the header is
 * padded with spaces to a multiple of 8. Duplicate names are an error. */
int st_writer_save(StWriter *w, const char *path, Err *e);

#endif
