/* json_stream.h: bounded-memory reading of huge JSON files (VQA v2 train annotations are
 * ~330 MB), one array element at a time.
 *
 * The file is memory-mapped; a light scanner walks the top level to the array to iterate
 * (a named member of the top-level object, or the top-level list itself) and hands out
 * each element parsed by jansson from its own byte range. Consumed pages are dropped from
 * the mapping as the scan moves on, so resident memory stays a few MB whatever the file
 * size. Errors carry the file name, the byte offset and line:column (1-based).
 *
 *   JsonStream *s;
 *   if (js_open(&s, path, "annotations", &err)) return -1;   // NULL: top-level list
 *   json_t *el;
 *   int rc;
 *   while ((rc = js_next(s, &el, &err)) == 1) { ...; json_decref(el); }
 *   js_close(s);
 *   if (rc < 0) return -1;
 */
#ifndef VQA_IO_JSON_STREAM_H
#define VQA_IO_JSON_STREAM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct JsonStream JsonStream;

/* Opens path and positions the stream on the first element of the array to iterate:
 * member != NULL: the value of that member of the top-level object (must be an array);
 * member == NULL: the top-level value itself (must be an array).
 * Errors: unreadable file, malformed JSON before the array, wrong top-level type,
 * member absent, member not an array. */
int js_open(JsonStream **out, const char *path, const char *member, Err *err);
/* 1: *elem holds the next element (a new reference: json_decref it); 0: end of the array
 * (the rest of the file is checked to be well formed up to the end); -1: error. */
int js_next(JsonStream *s, json_t **elem, Err *err);
/* 0-based index and byte offset of the element last returned by js_next. */
int64_t js_index(const JsonStream *s);
size_t js_offset(const JsonStream *s);
/* "file:line:col (byte N)" for a byte offset of the stream's file, for messages. */
void js_where(const JsonStream *s, size_t offset, char *buf, size_t cap);
const char *js_path(const JsonStream *s);
void js_close(JsonStream *s);

/* First non-whitespace byte of the file ('{', '[', ...), or -1 with err filled
 * (unreadable or empty file). Lets a reader pick list vs object layouts. */
int js_peek_top(const char *path, Err *err);

/* Parses the value of one member of the top-level object without parsing the others
 * (they are skipped by the scanner). 1: found (*value is a new reference), 0: absent,
 * -1: error (malformed file, top level not an object). */
int js_get_member(const char *path, const char *member, json_t **value, Err *err);

/* Loads a whole (small) file with jansson; errors name file, line:col and byte offset. */
int js_load_file(json_t **out, const char *path, Err *err);

/* 1-based line and column (in bytes) of byte offset off in data[0..len). */
void js_line_col(const char *data, size_t len, size_t off, int64_t *line, int64_t *col);

#endif
