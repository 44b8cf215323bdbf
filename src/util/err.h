/* err.h: the error convention of the whole tree.
 *
 * A function that can fail returns 0 on success and -1 on failure, after filling the
 * caller's Err with a message that carries its context (file:line:col, key path,
 * tensor name, shapes...). The message is written where the facts are known; callers
 * may prefix it with err_prefix() as it travels up, and mains print it and exit 1. */
#ifndef VQA_ERR_H
#define VQA_ERR_H

#include <stddef.h>

#define ERR_MSG_MAX 2048

typedef struct Err {
    char msg[ERR_MSG_MAX];
} Err;

/* Fills e (if non-NULL) with the printf-style message; always returns -1. */
int err_set(Err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends "prefix: " to the message already in e; returns -1. */
int err_prefix(Err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* err_set with strerror(errno) appended. */
int err_errno(Err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(Err *e);

#endif
