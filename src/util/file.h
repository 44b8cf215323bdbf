/* file.h: reading a whole file, and mapping one read-only.
 *
 * Every loader of the tree (config, vocabularies, answer lists, images, the JSON streams,
 * safetensors, prepared datasets) reads files through these two, so a failure reads the
 * same everywhere: the path, what the file is to the caller ("the config file",
 * "prepared dataset"; NULL for none) and what went wrong, with the system's reason:
 *
 *   configs/x.yaml: cannot open the config file: No such file or directory
 *
 * file_read_all copies the bytes into the heap (for files parsed in place and then freed);
 * file_map maps them (for large files read by offset, shared with the page cache). */
#ifndef VQA_FILE_H
#define VQA_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* The whole file (regular or not: a pipe works too) in a new buffer with a NUL after the
 * last byte (not counted in *n); free() it. max_bytes > 0 refuses a longer file. */
int file_read_all(const char *path, const char *what, size_t max_bytes, char **out, size_t *n, Err *e);

typedef struct FileMap {
    const uint8_t *data; /* size bytes, read-only; NULL when size is 0 (nothing mapped) */
    size_t size;
} FileMap;

enum { FILE_MAP_SEQUENTIAL = 1 }; /* tell the kernel it will be read front to back */

/* Maps the whole regular file path read-only (flags: FILE_MAP_*). A 0-byte file is not an
 * error here (data NULL, size 0): the caller says what it expected. On failure *m is
 * {NULL, 0}. */
int file_map(FileMap *m, const char *path, const char *what, int flags, Err *e);
/* Unmaps (a zeroed or already unmapped FileMap is fine) and zeroes *m. */
void file_unmap(FileMap *m);

#endif
