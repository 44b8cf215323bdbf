/* atomic.h: write a file so that its real name only ever holds a complete version.
 *
 * The bytes go to "<path>.tmp.<pid>"; commit flushes, fsyncs, renames over <path> and
 * fsyncs the directory, so after a crash (even SIGKILL or power loss once the commit
 * returned) <path> is either the old complete file or the new complete file, never a
 * prefix of one. A crash mid-write leaves at most a *.tmp.* file, which readers ignore.
 *
 *   AtomicFile af;
 *   if (atomic_open(&af, path, &err)) return -1;
 *   fwrite(..., af.fp); ...                       // any stdio writes
 *   if (atomic_commit(&af, &err)) return -1;      // on failure the temp file is removed
 *   // or atomic_abort(&af) to give up without touching <path>
 */
#ifndef VQA_IO_ATOMIC_H
#define VQA_IO_ATOMIC_H

#include <stddef.h>
#include <stdio.h>

#include "util/err.h"

typedef struct AtomicFile {
    FILE *fp;    /* write here; owned until commit/abort */
    char *path;  /* final name (owned copy) */
    char *tmp;   /* "<path>.tmp.<pid>" (owned) */
} AtomicFile;

/* Creates (truncating a stale one) the temp file next to path. */
int atomic_open(AtomicFile *af, const char *path, Err *e);
/* fflush + fsync + close + rename + fsync(dir). Frees af's memory in all cases;
 * on failure the temp file is unlinked and path is untouched. */
int atomic_commit(AtomicFile *af, Err *e);
/* Closes and unlinks the temp file; path is untouched. Safe on a zeroed AtomicFile. */
void atomic_abort(AtomicFile *af);

/* Writes n bytes to path atomically (open + fwrite + commit). */
int atomic_write_file(const char *path, const void *data, size_t n, Err *e);
/* fsync of the directory that holds path, so a rename/unlink/link in it is durable. */
int atomic_fsync_dir_of(const char *path, Err *e);
/* 1 if the file name (last component of path) contains ".tmp." (a temp of this module). */
int atomic_is_temp_name(const char *path);

#endif
