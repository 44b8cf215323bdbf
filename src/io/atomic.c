/* atomic.c: temp file + fsync + rename + fsync(dir) (see atomic.h). */
#include "io/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void af_release(AtomicFile *af) {
    free(af->path);
    free(af->tmp);
    af->path = af->tmp = NULL;
    af->fp = NULL;
}

int atomic_open(AtomicFile *af, const char *path, Err *e) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->path = dup_str(path);
    af->tmp = malloc(n);
    if (!af->path || !af->tmp) {
        af_release(af);
        return err_set(e, "%s: out of memory", path);
    }
    snprintf(af->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    /* O_TRUNC, not O_EXCL: a temp left by a killed process with a recycled pid is garbage. */
    int fd = open(af->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        err_errno(e, "%s: cannot create temporary file %s", path, af->tmp);
        af_release(af);
        return -1;
    }
    af->fp = fdopen(fd, "wb");
    if (!af->fp) {
        err_errno(e, "%s: fdopen of %s", path, af->tmp);
        close(fd);
        unlink(af->tmp);
        af_release(af);
        return -1;
    }
    return 0;
}

void atomic_abort(AtomicFile *af) {
    if (af->fp) fclose(af->fp);
    if (af->tmp) unlink(af->tmp);
    af_release(af);
}

int atomic_fsync_dir_of(const char *path, Err *e) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = dup_str(".");
    } else if (slash == path) {
        dir = dup_str("/");
    } else {
        size_t n = (size_t)(slash - path);
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (!dir) return err_set(e, "%s: out of memory", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        err_errno(e, "cannot open directory %s to fsync it", dir);
        free(dir);
        return -1;
    }
    int rc = 0;
    /* Some filesystems refuse fsync on a directory (EINVAL); nothing more can be done there. */
    if (fsync(fd) != 0 && errno != EINVAL) rc = err_errno(e, "fsync of directory %s", dir);
    close(fd);
    free(dir);
    return rc;
}

int atomic_commit(AtomicFile *af, Err *e) {
    if (!af->fp) {
        af_release(af);
        return err_set(e, "atomic_commit: file not open");
    }
    FILE *fp = af->fp;
    af->fp = NULL;
    int bad_stream = ferror(fp);
    if (bad_stream || fflush(fp) != 0) {
        err_errno(e, "%s: write to %s failed", af->path, af->tmp);
        fclose(fp);
        unlink(af->tmp);
        af_release(af);
        return -1;
    }
    if (fsync(fileno(fp)) != 0) {
        err_errno(e, "%s: fsync of %s", af->path, af->tmp);
        fclose(fp);
        unlink(af->tmp);
        af_release(af);
        return -1;
    }
    if (fclose(fp) != 0) {
        err_errno(e, "%s: close of %s", af->path, af->tmp);
        unlink(af->tmp);
        af_release(af);
        return -1;
    }
    if (rename(af->tmp, af->path) != 0) {
        err_errno(e, "%s: rename from %s", af->path, af->tmp);
        unlink(af->tmp);
        af_release(af);
        return -1;
    }
    int rc = atomic_fsync_dir_of(af->path, e);
    af_release(af);
    return rc;
}

int atomic_write_file(const char *path, const void *data, size_t n, Err *e) {
    AtomicFile af;
    if (atomic_open(&af, path, e)) return -1;
    if (n && fwrite(data, 1, n, af.fp) != n) {
        err_errno(e, "%s: write of %zu bytes to %s", path, n, af.tmp);
        atomic_abort(&af);
        return -1;
    }
    return atomic_commit(&af, e);
}

int atomic_is_temp_name(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return strstr(base, ".tmp.") != NULL;
}
