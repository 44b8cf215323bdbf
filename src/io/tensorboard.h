/* tensorboard.h: a TensorBoard event-file writer with no dependency (scalars only).
 *
 * File: <dir>/events.out.tfevents.<unix time>.<host>, a sequence of TFRecords
 *   u64 length (LE) | u32 masked_crc32c(length bytes) | data | u32 masked_crc32c(data)
 *   masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8,  crc32c = Castagnoli, reflected 0x82F63B78
 * Each data block is an `Event` protobuf encoded by hand:
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
 * The first record carries file_version "brain.Event:2"; each later record is one step's
 * scalars. Records are flushed as written so TensorBoard shows a live run.
 */
#ifndef VQA_IO_TENSORBOARD_H
#define VQA_IO_TENSORBOARD_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct TbWriter TbWriter;

/* Creates dir if needed, and a new event file in it (never overwrites one). */
int tb_open(TbWriter **out, const char *dir, Err *e);
void tb_close(TbWriter *w); /* NULL is fine */
const char *tb_path(const TbWriter *w);

/* One Event at the current wall time holding n scalars of one step. */
int tb_add_scalars(TbWriter *w, int64_t step, int n, const char *const *tags, const float *values, Err *e);
int tb_add_scalar(TbWriter *w, const char *tag, int64_t step, float value, Err *e);

/* ---- building blocks (exposed for tests) ---- */
uint32_t tb_crc32c(const void *data, size_t n);
uint32_t tb_crc32c_extend(uint32_t crc, const void *data, size_t n);
uint32_t tb_masked_crc(uint32_t crc);
/* Encodes an Event into buf (if cap suffices) and returns its size in bytes.
 * file_version may be NULL (omitted); n may be 0 (no summary). */
size_t tb_encode_event(uint8_t *buf, size_t cap, double wall_time, int64_t step, const char *file_version,
                       int n, const char *const *tags, const float *values);

#endif
