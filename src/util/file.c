/* file.c: whole-file read and read-only mapping (see file.h). */
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* " the config file" for messages, or "" */
static const char *sp(const char *what) { return what && *what ? " " : ""; }
static const char *nm(const char *what) { return what ? what : ""; }

/* read(2) that retries an interrupted call */
static ssize_t read_some(int fd, char *p, size_t n) {
    ssize_t r;
    while ((r = read(fd, p, n)) < 0 && errno == EINTR) {}
    return r;
}

int file_read_all(const char *path, const char *what, size_t max_bytes, char **out, size_t *n, Err *e) {
    *out = NULL;
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_errno(e, "%s: cannot open%s%s", path, sp(what), nm(what));
    struct stat st;
    /* a regular file's size is the right capacity; a pipe grows from 64 KiB */
    size_t cap = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size : (size_t)1 << 16;
    if (max_bytes && cap > max_bytes) cap = max_bytes;
    char *buf = malloc(cap + 1); /* + 1: the NUL, or the byte that shows the file goes on */
    size_t len = 0;
    const char *fail = NULL;
    while (buf) {
        ssize_t r = read_some(fd, buf + len, cap - len + (len == cap)); /* full: probe one byte */
        if (r < 0) {
            fail = "read";
            break;
        }
        if (r == 0) break;
        len += (size_t)r;
        if (len <= cap) continue;
        if (max_bytes && len > max_bytes) {
            fail = "size";
            break;
        }
        size_t nc = max_bytes && cap * 2 > max_bytes ? max_bytes : cap * 2;
        char *nb = realloc(buf, nc + 1);
        if (!nb) free(buf);
        buf = nb;
        cap = nc;
    }
    int saved = errno;
    close(fd);
    if (!buf) return err_set(e, "%s: out of memory for %zu bytes%s%s", path, cap + 1, *nm(what) ? " of " : "", nm(what));
    if (fail) {
        free(buf);
        errno = saved;
        if (fail[0] == 'r') return err_errno(e, "%s: cannot read%s%s", path, sp(what), nm(what));
        if (max_bytes >= ((size_t)1 << 20))
            return err_set(e, "%s: larger than %zu MiB: too large for %s", path, max_bytes >> 20,
                           *nm(what) ? nm(what) : "reading whole");
        return err_set(e, "%s: larger than %zu bytes: too large for %s", path, max_bytes,
                       *nm(what) ? nm(what) : "reading whole");
    }
    buf[len] = '\0';
    *out = buf;
    *n = len;
    return 0;
}

int file_map(FileMap *m, const char *path, const char *what, int flags, Err *e) {
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_errno(e, "%s: cannot open%s%s", path, sp(what), nm(what));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return err_errno(e, "%s: cannot stat%s%s", path, sp(what), nm(what));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(e, "%s: not a regular file%s%s", path, *nm(what) ? ", expected " : "", nm(what));
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        close(fd);
        return 0;
    }
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int saved = errno;
    close(fd);
    if (p == MAP_FAILED) {
        errno = saved;
        return err_errno(e, "%s: mmap of %zu bytes%s%s", path, size, *nm(what) ? " of " : "", nm(what));
    }
    if (flags & FILE_MAP_SEQUENTIAL) madvise(p, size, MADV_SEQUENTIAL);
    m->data = p;
    m->size = size;
    return 0;
}

void file_unmap(FileMap *m) {
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}
