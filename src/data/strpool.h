/* strpool.h: owned string storage for the dataset index: big chunks, bump allocation,
 * and optional interning (answers such as "yes" or an image path shared by several
 * questions are stored once). One pool per dataset; freed at once with sp_free. */
#ifndef VQA_STRPOOL_H
#define VQA_STRPOOL_H

#include <stddef.h>

typedef struct StrPool StrPool;

StrPool *sp_new(void);                      /* NULL when out of memory */
void sp_free(StrPool *p);
/* Copies s[0..n) plus a NUL into the pool; NULL when out of memory. */
const char *sp_add(StrPool *p, const char *s, size_t n);
/* Like sp_add, but returns the stored copy when the same bytes were interned before. */
const char *sp_intern(StrPool *p, const char *s, size_t n);
/* Bytes held by the pool (chunks + intern table), for memory reports. */
size_t sp_bytes(const StrPool *p);

#endif
