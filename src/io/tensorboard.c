/* tensorboard.c: CRC32C, hand-rolled protobuf for Event/Summary, TFRecord framing, and the
 * event-file writer (see tensorboard.h). */
#include "io/tensorboard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Protobuf fixed32/fixed64 and TFRecord lengths are little-endian: copied as-is. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tensorboard.c assumes a little-endian host"
#endif

/* ---------------------------------------------------------------- CRC32C */

/* Byte-at-a-time table for the reflected Castagnoli polynomial. The writer builds it once
 * and keeps it; the free functions (tests, one-off use) build a local one per call. */
static void crc_table(uint32_t t[256]) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        t[i] = c;
    }
}

static uint32_t crc_run(const uint32_t t[256], uint32_t crc, const void *data, size_t n) {
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = t[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

uint32_t tb_crc32c_extend(uint32_t crc, const void *data, size_t n) {
    uint32_t t[256];
    crc_table(t);
    return crc_run(t, crc, data, n);
}

uint32_t tb_crc32c(const void *data, size_t n) { return tb_crc32c_extend(0, data, n); }

uint32_t tb_masked_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

/* ---------------------------------------------------------------- protobuf */

/* A byte sink that counts when buf is too small, so one function both sizes and encodes. */
typedef struct PbBuf { uint8_t *p; size_t cap, len; } PbBuf;

static void pb_byte(PbBuf *b, uint8_t x) {
    if (b->len < b->cap) b->p[b->len] = x;
    b->len++;
}

static void pb_bytes(PbBuf *b, const void *s, size_t n) {
    for (size_t i = 0; i < n; i++) pb_byte(b, ((const uint8_t *)s)[i]);
}

static void pb_varint(PbBuf *b, uint64_t v) {
    while (v >= 0x80) {
        pb_byte(b, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    pb_byte(b, (uint8_t)v);
}

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* key = field << 3 | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32) */
static void pb_key(PbBuf *b, int field, int wire) { pb_varint(b, (uint64_t)((field << 3) | wire)); }

static void pb_fixed(PbBuf *b, const void *le, size_t n) { pb_bytes(b, le, n); } /* host is LE */

static void pb_string(PbBuf *b, int field, const char *s) {
    size_t n = strlen(s);
    pb_key(b, field, 2);
    pb_varint(b, n);
    pb_bytes(b, s, n);
}

/* Value { string tag = 1; float simple_value = 2; } */
static size_t value_len(const char *tag) {
    size_t t = strlen(tag);
    return 1 + varint_len(t) + t + 1 + 4;
}

size_t tb_encode_event(uint8_t *buf, size_t cap, double wall_time, int64_t step, const char *file_version,
                       int n, const char *const *tags, const float *values) {
    PbBuf b = {buf, buf ? cap : 0, 0};
    pb_key(&b, 1, 1);
    pb_fixed(&b, &wall_time, 8);
    pb_key(&b, 2, 0);
    pb_varint(&b, (uint64_t)step); /* int64: negatives take 10 bytes, as protobuf does */
    if (file_version) pb_string(&b, 3, file_version);
    if (n > 0) {
        size_t sum = 0;
        for (int i = 0; i < n; i++) sum += 1 + varint_len(value_len(tags[i])) + value_len(tags[i]);
        pb_key(&b, 5, 2);
        pb_varint(&b, sum);
        for (int i = 0; i < n; i++) {
            pb_key(&b, 1, 2);
            pb_varint(&b, value_len(tags[i]));
            pb_string(&b, 1, tags[i]);
            pb_key(&b, 2, 5);
            pb_fixed(&b, &values[i], 4);
        }
    }
    return b.len;
}

/* ---------------------------------------------------------------- writer */

struct TbWriter {
    FILE *f;
    char *path;
    uint32_t crc[256];
    uint8_t *buf;
    size_t cap;
};

const char *tb_path(const TbWriter *w) { return w->path; }

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int write_record(TbWriter *w, const uint8_t *data, size_t n, Err *e) {
    uint8_t head[12], tail[4];
    uint64_t len = n;
    memcpy(head, &len, 8);
    uint32_t c = tb_masked_crc(crc_run(w->crc, 0, head, 8));
    memcpy(head + 8, &c, 4);
    c = tb_masked_crc(crc_run(w->crc, 0, data, n));
    memcpy(tail, &c, 4);
    if (fwrite(head, 1, 12, w->f) != 12 || fwrite(data, 1, n, w->f) != n || fwrite(tail, 1, 4, w->f) != 4 ||
        fflush(w->f) != 0)
        return err_errno(e, "%s: cannot write TensorBoard event", w->path);
    return 0;
}

static int write_event(TbWriter *w, double wall, int64_t step, const char *version, int n,
                       const char *const *tags, const float *values, Err *e) {
    size_t need = tb_encode_event(NULL, 0, wall, step, version, n, tags, values);
    if (need > w->cap) {
        uint8_t *nb = realloc(w->buf, need);
        if (!nb) return err_set(e, "%s: out of memory encoding an event", w->path);
        w->buf = nb;
        w->cap = need;
    }
    tb_encode_event(w->buf, w->cap, wall, step, version, n, tags, values);
    return write_record(w, w->buf, need, e);
}

int tb_open(TbWriter **out, const char *dir, Err *e) {
    *out = NULL;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return err_errno(e, "cannot create TensorBoard directory %s", dir);
    char host[256] = "localhost";
    if (gethostname(host, sizeof host - 1) != 0) strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (*p == '/') *p = '_';
    TbWriter *w = calloc(1, sizeof *w);
    size_t cap = strlen(dir) + strlen(host) + 96;
    if (!w || !(w->path = malloc(cap))) {
        free(w);
        return err_set(e, "%s: out of memory", dir);
    }
    crc_table(w->crc);
    long now = (long)time(NULL);
    int fd = -1;
    /* Two writers started in the same second in one directory get distinct files. */
    for (int k = 0; k < 100 && fd < 0; k++) {
        if (k == 0) snprintf(w->path, cap, "%s/events.out.tfevents.%010ld.%s", dir, now, host);
        else snprintf(w->path, cap, "%s/events.out.tfevents.%010ld.%s.%ld.%d", dir, now, host, (long)getpid(), k);
        fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0 || !(w->f = fdopen(fd, "wb"))) {
        err_errno(e, "%s: cannot create TensorBoard event file", w->path);
        if (fd >= 0) close(fd);
        tb_close(w);
        return -1;
    }
    if (write_event(w, wall_now(), 0, "brain.Event:2", 0, NULL, NULL, e)) {
        tb_close(w);
        return -1;
    }
    *out = w;
    return 0;
}

void tb_close(TbWriter *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    free(w->buf);
    free(w->path);
    free(w);
}

int tb_add_scalars(TbWriter *w, int64_t step, int n, const char *const *tags, const float *values, Err *e) {
    return write_event(w, wall_now(), step, NULL, n, tags, values, e);
}

int tb_add_scalar(TbWriter *w, const char *tag, int64_t step, float value, Err *e) {
    return tb_add_scalars(w, step, 1, &tag, &value, e);
}
