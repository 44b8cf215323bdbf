/* npy.h: writes a NumPy .npy file (format version 1.0) of unicode strings by hand, the
 * `submission.npy` that course leaderboards read with numpy.load(path).
 *
 * Layout: "\x93NUMPY" 0x01 0x00, u16 LE header length H, then H bytes of a Python dict
 *   {'descr': '<U{maxlen}', 'fortran_order': False, 'shape': (n,), }
 * padded with spaces and ended by '\n' so that the data starts on a 64-byte boundary;
 * then n fixed-width elements of maxlen UTF-32LE code points, zero-padded. maxlen is the
 * longest string in code points (at least 1, as numpy makes '<U1' for empty strings). */
#ifndef VQA_TRAIN_NPY_H
#define VQA_TRAIN_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Decodes UTF-8 into code points (invalid bytes become U+FFFD); returns the count and
 * writes at most cap of them into out (out may be NULL to count). */
size_t npy_utf8_decode(const char *s, uint32_t *out, size_t cap);

/* The full preamble (magic, version, length, dict, padding, '\n') for a 1-D '<U{maxlen}'
 * array of n elements into buf; returns its size (a multiple of 64), or 0 if cap is too small. */
size_t npy_unicode_header(char *buf, size_t cap, int64_t n, size_t maxlen);

/* Writes strs[0..n) (UTF-8, NULL treated as "") as a '<U{maxlen}' array, atomically. */
int npy_write_unicode(const char *path, const char *const *strs, int64_t n, Err *e);

#endif
