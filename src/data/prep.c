/* prep.c: writing and memory-mapping the prepared dataset file (format in prep.h). */
#include "data/prep.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image_write.h>

#include "util/file.h"
#include "util/idmap.h"
#include "util/log.h"

_Static_assert(sizeof(PrepHeader) == PREP_HEADER_BYTES, "PrepHeader must be 256 bytes");
_Static_assert(sizeof(PrepPair) == 8, "PrepPair must be 8 bytes");

static const char *const sec_names[PREP_NSEC] = {
    "images", "jpeg_index", "image_ids", "image_flags", "sample_image",
    "tokens", "lengths", "targets", "question_ids", "answer_vocab"};

static uint64_t align64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }

/* ================================================================ writing */

/* Image path -> image index (util/idmap.h): image k's path is that of its first sample. */
typedef struct PathKey {
    const VqaDataset *ds;
    const int64_t *first_sample;
    const char *path;
} PathKey;

static int same_path(const void *ctx, int64_t k) {
    const PathKey *p = ctx;
    return strcmp(p->ds->samples[p->first_sample[k]].image_path, p->path) == 0;
}

typedef struct MemBuf { uint8_t *p; size_t n, cap; int oom; } MemBuf;
static void membuf_write(void *ctx, void *data, int size) {
    MemBuf *m = ctx;
    if (m->oom) return;
    if (m->n + (size_t)size > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 16384;
        while (nc < m->n + (size_t)size) nc *= 2;
        uint8_t *np = realloc(m->p, nc);
        if (!np) { m->oom = 1; return; }
        m->p = np;
        m->cap = nc;
    }
    memcpy(m->p + m->n, data, (size_t)size);
    m->n += (size_t)size;
}

/* One chunk of images processed by the threads, then written in order. */
typedef struct PrepChunk {
    const VqaDataset *ds;
    const int64_t *first_sample; /* [n_images] a sample using the image (for its path) */
    const PrepOpts *o;
    int64_t begin, end;          /* image range of this chunk */
    uint8_t *pixels;             /* [end - begin, S, S, 3] */
    MemBuf *jpeg;                /* [end - begin] */
    uint8_t *bad;                /* [end - begin] */
    char (*msg)[512];            /* [end - begin] reasons */
    int64_t next;                /* next image to claim */
    pthread_mutex_t mu;
} PrepChunk;

static void *prep_worker(void *arg) {
    PrepChunk *c = arg;
    const int S = c->o->image_size;
    void *scratch = NULL;
    size_t scratch_cap = 0;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        int64_t i = c->next++;
        pthread_mutex_unlock(&c->mu);
        if (i >= c->end) break;
        int64_t k = i - c->begin;
        uint8_t *dst = c->pixels + (size_t)k * S * S * 3;
        const char *path = c->ds->samples[c->first_sample[i]].image_path;
        Image im;
        Err e;
        c->bad[k] = 0;
        if (img_decode_file(&im, path, &e) != 0) {
            c->bad[k] = 1;
            snprintf(c->msg[k], sizeof c->msg[k], "%s", e.msg);
            memset(dst, 0, (size_t)S * S * 3);
        } else {
            size_t need = img_resample_scratch_size(im.w, im.h, S, S);
            if (need > scratch_cap) {
                free(scratch);
                scratch = malloc(need);
                scratch_cap = scratch ? need : 0;
            }
            double box[4];
            img_resize_box(im.w, im.h, S, c->o->resize, box);
            if (!scratch || img_resample(im.px, im.w, im.h, box[0], box[1], box[2], box[3], dst, S, S,
                                         scratch) != 0) {
                c->bad[k] = 1;
                snprintf(c->msg[k], sizeof c->msg[k], "%s: out of memory resizing %d x %d", path,
                         im.w, im.h);
                memset(dst, 0, (size_t)S * S * 3);
            }
            img_free(&im);
        }
        if (c->o->jpeg_quality > 0) {
            MemBuf *m = &c->jpeg[k];
            m->n = 0;
            if (!stbi_write_jpg_to_func(membuf_write, m, S, S, 3, dst, c->o->jpeg_quality) || m->oom) {
                c->bad[k] = 2; /* fatal: the writer reports it */
                snprintf(c->msg[k], sizeof c->msg[k], "%s: JPEG encoding failed", path);
            }
        }
    }
    free(scratch);
    return NULL;
}

static int write_at(FILE *f, uint64_t off, const void *p, size_t n, const char *path, Err *err) {
    if (fseeko(f, (off_t)off, SEEK_SET) != 0 || (n && fwrite(p, 1, n, f) != n))
        return err_errno(err, "%s: write of %zu bytes at offset %llu failed", path, n,
                         (unsigned long long)off);
    return 0;
}

/* Everything prep_write builds on the way; writer_free releases what it owns. */
typedef struct PrepWriter {
    const char *path;        /* final name */
    char tmp[4096];          /* path.tmp: written, then renamed to path */
    const VqaDataset *ds;
    const Tokenizer *tok;    /* NULL: no tokens */
    const AnswerVocab *vocab; /* NULL: no targets */
    const PrepOpts *o;
    int S, L, threads;
    int64_t n, n_img, bad_count, chunk;
    FILE *f;
    IdMap map;
    int32_t *sample_img;     /* [n] */
    int64_t *first_sample;   /* [n] (first n_img used) */
    int64_t *image_ids;      /* [n_img] */
    uint8_t *flags;          /* [n_img] */
    uint64_t *jindex;        /* [n_img + 1], jpeg only */
    PrepChunk ch;
    void *buf;               /* tokens, then targets, then question ids; + dense floats at buf + need */
    size_t need;
    PrepHeader h;
    uint64_t off;            /* where the next section starts */
} PrepWriter;

static void writer_free(PrepWriter *w) {
    if (w->f) {
        fclose(w->f);
        remove(w->tmp);
    }
    idmap_free(&w->map);
    free(w->sample_img);
    free(w->first_sample);
    free(w->image_ids);
    free(w->flags);
    free(w->jindex);
    free(w->ch.pixels);
    if (w->ch.jpeg)
        for (int64_t k = 0; k < w->chunk; k++) free(w->ch.jpeg[k].p);
    free(w->ch.jpeg);
    free(w->ch.bad);
    free(w->ch.msg);
    pthread_mutex_destroy(&w->ch.mu);
    free(w->buf);
}

/* Unique images in order of first use: sample -> image index, and each image's id. */
static int collect_images(PrepWriter *w, Err *err) {
    const int64_t n = w->n;
    int map_ok = idmap_reserve(&w->map, (size_t)n) == 0;
    w->sample_img = malloc(sizeof(int32_t) * (size_t)n);
    w->first_sample = malloc(sizeof(int64_t) * (size_t)n);
    if (!map_ok || !w->sample_img || !w->first_sample)
        return err_set(err, "%s: out of memory indexing %lld samples", w->path, (long long)n);
    int64_t n_img = 0;
    for (int64_t i = 0; i < n; i++) {
        PathKey key = {w->ds, w->first_sample, w->ds->samples[i].image_path};
        int64_t k = n_img; /* reserved above: the insert cannot run out of memory */
        if (idmap_insert(&w->map, idmap_hash_str(key.path), n_img, same_path, &key, &k) == 0)
            w->first_sample[n_img++] = i;
        w->sample_img[i] = (int32_t)k;
    }
    w->n_img = n_img;
    w->image_ids = malloc(sizeof(int64_t) * (size_t)n_img);
    w->flags = calloc((size_t)n_img, 1);
    if (w->o->jpeg_quality > 0) w->jindex = malloc(sizeof(uint64_t) * (size_t)(n_img + 1));
    if (!w->image_ids || !w->flags || (w->o->jpeg_quality > 0 && !w->jindex))
        return err_set(err, "%s: out of memory", w->path);
    for (int64_t k = 0; k < n_img; k++) w->image_ids[k] = w->ds->samples[w->first_sample[k]].image_id;
    return 0;
}

/* The header's counts and flags; the section table is filled as the sections are written. */
static void header_init(PrepWriter *w) {
    PrepHeader *h = &w->h;
    memcpy(h->magic, PREP_MAGIC, 8);
    h->version = PREP_VERSION;
    h->header_bytes = PREP_HEADER_BYTES;
    h->flags = (w->o->jpeg_quality > 0 ? PREP_FLAG_JPEG : 0) | (w->vocab ? PREP_FLAG_TARGETS : 0);
    h->image_size = (uint32_t)w->S;
    h->max_len = (uint32_t)w->L;
    h->n_answers = w->vocab ? (uint32_t)ans_vocab_size(w->vocab) : 0;
    h->tok_vocab = w->tok ? (uint32_t)tok_vocab_size(w->tok) : 0;
    h->max_pairs = PREP_MAX_PAIRS;
    h->n_samples = (uint64_t)w->n;
    h->n_images = (uint64_t)w->n_img;
}

/* Decodes + resizes (+ encodes) images [begin, end) on up to 64 threads, this one included. */
static void chunk_run(PrepChunk *ch, int threads, int64_t begin, int64_t end) {
    ch->begin = ch->next = begin;
    ch->end = end;
    pthread_t th[64];
    int nt = threads > 64 ? 64 : threads, started = 0;
    for (int t = 1; t < nt; t++)
        if (pthread_create(&th[started], NULL, prep_worker, ch) == 0) started++;
    prep_worker(ch);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
}

/* Appends the chunk's images in order, reporting bad ones; a failed JPEG encode is fatal. */
static int chunk_flush(PrepWriter *w, PrepBadFn on_bad, void *bad_ctx, uint64_t *img_bytes, Err *err) {
    PrepChunk *ch = &w->ch;
    const size_t bytes = (size_t)w->S * w->S * 3;
    for (int64_t i = ch->begin; i < ch->end; i++) {
        int64_t k = i - ch->begin;
        if (ch->bad[k] == 2) return err_set(err, "%s", ch->msg[k]);
        if (ch->bad[k]) {
            w->flags[i] = 1;
            w->bad_count++;
            if (on_bad) on_bad(bad_ctx, ch->msg[k]);
        }
        const void *p;
        size_t len;
        if (w->jindex) {
            w->jindex[i] = *img_bytes;
            p = ch->jpeg[k].p;
            len = ch->jpeg[k].n;
        } else {
            p = ch->pixels + (size_t)k * bytes;
            len = bytes;
        }
        if (fwrite(p, 1, len, w->f) != len) return err_errno(err, "%s: write failed", w->tmp);
        *img_bytes += len;
    }
    return 0;
}

/* The IMAGES section, chunk by chunk so that memory stays bounded by the chunk. */
static int write_images(PrepWriter *w, PrepBadFn on_bad, void *bad_ctx, Err *err) {
    const int S = w->S;
    PrepChunk *ch = &w->ch;
    w->chunk = 64 * w->threads;
    ch->ds = w->ds;
    ch->first_sample = w->first_sample;
    ch->o = w->o;
    ch->pixels = malloc((size_t)w->chunk * S * S * 3);
    ch->jpeg = calloc((size_t)w->chunk, sizeof *ch->jpeg);
    ch->bad = malloc((size_t)w->chunk);
    ch->msg = malloc(sizeof *ch->msg * (size_t)w->chunk);
    if (!ch->pixels || !ch->jpeg || !ch->bad || !ch->msg)
        return err_set(err, "%s: out of memory for the image chunk", w->path);
    uint64_t img_bytes = 0;
    w->off = PREP_HEADER_BYTES;
    w->h.sec[PREP_SEC_IMAGES][0] = w->off;
    if (fseeko(w->f, (off_t)w->off, SEEK_SET) != 0) return err_errno(err, "%s: seek", w->tmp);
    for (int64_t b = 0; b < w->n_img; b += w->chunk) {
        chunk_run(ch, w->threads, b, b + w->chunk < w->n_img ? b + w->chunk : w->n_img);
        if (chunk_flush(w, on_bad, bad_ctx, &img_bytes, err) != 0) return -1;
    }
    if (w->jindex) w->jindex[w->n_img] = img_bytes;
    w->h.sec[PREP_SEC_IMAGES][1] = img_bytes;
    w->off = align64(w->off + img_bytes);
    return 0;
}

/* Writes one section at the current offset and records it in the header. */
static int put_section(PrepWriter *w, int id, const void *p, uint64_t bytes, Err *err) {
    w->h.sec[id][0] = w->off;
    w->h.sec[id][1] = bytes;
    if (write_at(w->f, w->off, p, (size_t)bytes, w->tmp, err) != 0) return -1;
    w->off = align64(w->off + bytes);
    return 0;
}

/* JPEG_INDEX (jpeg only), IMAGE_IDS, IMAGE_FLAGS, SAMPLE_IMG: all known once the images are. */
static int write_image_tables(PrepWriter *w, Err *err) {
    const uint64_t n_img = (uint64_t)w->n_img;
    if (w->jindex && put_section(w, PREP_SEC_JPEG_INDEX, w->jindex, sizeof(uint64_t) * (n_img + 1), err) != 0)
        return -1;
    if (put_section(w, PREP_SEC_IMAGE_IDS, w->image_ids, sizeof(int64_t) * n_img, err) != 0 ||
        put_section(w, PREP_SEC_IMAGE_FLAGS, w->flags, n_img, err) != 0 ||
        put_section(w, PREP_SEC_SAMPLE_IMG, w->sample_img, sizeof(int32_t) * (uint64_t)w->n, err) != 0)
        return -1;
    return 0;
}

/* TOKENS and LENGTHS. Allocates w->buf, sized for the largest of the per-sample sections
 * (tokens or targets) plus the dense floats (a token mask or one sample's soft targets). */
static int write_tokens(PrepWriter *w, Err *err) {
    const int64_t n = w->n;
    const int L = w->L;
    size_t big = sizeof(int32_t) * (size_t)n * L;
    size_t pairs = sizeof(PrepPair) * (size_t)n * PREP_MAX_PAIRS;
    w->need = big > pairs ? big : pairs;
    w->buf = malloc(w->need + sizeof(float) * (size_t)(w->vocab ? ans_vocab_size(w->vocab) : 1) +
                    sizeof(float) * (size_t)L);
    if (!w->buf) return err_set(err, "%s: out of memory for %zu bytes of tokens", w->path, w->need);
    int32_t *tokens = w->buf;
    int32_t *lengths = malloc(sizeof(int32_t) * (size_t)n);
    if (!lengths) return err_set(err, "%s: out of memory", w->path);
    float *mask = (float *)((char *)w->buf + w->need);
    for (int64_t i = 0; i < n; i++) {
        int32_t *row = tokens + (size_t)i * L;
        if (w->tok) {
            lengths[i] = tok_encode(w->tok, w->ds->samples[i].question, L, row, mask);
        } else {
            memset(row, 0, sizeof(int32_t) * (size_t)L);
            lengths[i] = 0;
        }
    }
    int wrc = put_section(w, PREP_SEC_TOKENS, tokens, big, err);
    if (wrc == 0) wrc = put_section(w, PREP_SEC_LENGTHS, lengths, sizeof(int32_t) * (uint64_t)n, err);
    free(lengths);
    return wrc;
}

/* TARGETS: each sample's nonzero soft targets as up to PREP_MAX_PAIRS (class, score) pairs. */
static int write_targets(PrepWriter *w, Err *err) {
    int A = ans_vocab_size(w->vocab);
    PrepPair *pairs = w->buf;
    float *dense = (float *)((char *)w->buf + w->need);
    for (int64_t i = 0; i < w->n; i++) {
        PrepPair *pp = pairs + (size_t)i * PREP_MAX_PAIRS;
        for (int j = 0; j < PREP_MAX_PAIRS; j++) { pp[j].cls = -1; pp[j].score = 0; }
        ans_soft_targets(w->vocab, &w->ds->samples[i], dense);
        int np = 0;
        for (int a = 0; a < A && np < PREP_MAX_PAIRS; a++)
            if (dense[a] != 0.0f) { pp[np].cls = a; pp[np].score = dense[a]; np++; }
    }
    return put_section(w, PREP_SEC_TARGETS, pairs, sizeof(PrepPair) * (uint64_t)w->n * PREP_MAX_PAIRS, err);
}

/* QIDS (reusing w->buf). */
static int write_question_ids(PrepWriter *w, Err *err) {
    int64_t *qids = w->buf;
    for (int64_t i = 0; i < w->n; i++) qids[i] = w->ds->samples[i].question_id;
    return put_section(w, PREP_SEC_QIDS, qids, sizeof(int64_t) * (uint64_t)w->n, err);
}

/* VOCAB: the answers as NUL-terminated strings, streamed (their total size is not known). */
static int write_answer_vocab(PrepWriter *w, Err *err) {
    uint64_t vbytes = 0;
    int A = ans_vocab_size(w->vocab);
    w->h.sec[PREP_SEC_VOCAB][0] = w->off;
    if (fseeko(w->f, (off_t)w->off, SEEK_SET) != 0) return err_errno(err, "%s: seek", w->tmp);
    for (int a = 0; a < A; a++) {
        const char *s = ans_vocab_answer(w->vocab, a);
        size_t len = strlen(s) + 1;
        if (fwrite(s, 1, len, w->f) != len) return err_errno(err, "%s: write failed", w->tmp);
        vbytes += len;
    }
    w->h.sec[PREP_SEC_VOCAB][1] = vbytes;
    w->off = align64(w->off + vbytes);
    return 0;
}

/* Header last (its section table is complete now), fsync, close, rename into place:
 * a crash leaves path.tmp, never a half-written file under path. */
static int finalize(PrepWriter *w, double t0, PrepStats *stats, Err *err) {
    if (write_at(w->f, 0, &w->h, sizeof w->h, w->tmp, err) != 0) return -1;
    if (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0) return err_errno(err, "%s: flush", w->tmp);
    uint64_t file_bytes = (uint64_t)ftello(w->f);
    int crc = fclose(w->f);
    w->f = NULL; /* closed either way: a failed close leaves path.tmp in place */
    if (crc != 0) return err_errno(err, "%s: close", w->tmp);
    if (rename(w->tmp, w->path) != 0) return err_errno(err, "cannot rename %s to %s", w->tmp, w->path);
    struct stat st;
    if (stat(w->path, &st) == 0) file_bytes = (uint64_t)st.st_size;
    if (stats) {
        stats->n_samples = w->n;
        stats->n_images = w->n_img;
        stats->bad_images = w->bad_count;
        stats->file_bytes = file_bytes;
        stats->seconds = time_now() - t0;
    }
    return 0;
}

int prep_write(const char *path, const VqaDataset *ds, const Tokenizer *tok,
               const AnswerVocab *vocab, const PrepOpts *o, PrepBadFn on_bad, void *bad_ctx,
               PrepStats *stats, Err *err) {
    double t0 = time_now();
    const int S = o->image_size, L = o->max_len;
    const int64_t n = ds->n;
    if (S < 1 || S > 4096 || L < 2 || L > 4096 || n < 1 || n > INT32_MAX)
        return err_set(err, "%s: bad prepare settings (image_size %d, max_len %d, %lld samples)",
                       path, S, L, (long long)n);
    PrepWriter w;
    memset(&w, 0, sizeof w);
    w.path = path;
    snprintf(w.tmp, sizeof w.tmp, "%s.tmp", path);
    w.ds = ds;
    w.tok = tok;
    w.vocab = vocab;
    w.o = o;
    w.S = S;
    w.L = L;
    w.n = n;
    w.threads = o->threads < 1 ? 1 : o->threads;
    pthread_mutex_init(&w.ch.mu, NULL);
    int rc = -1;
    if (collect_images(&w, err) != 0) goto done;
    w.f = fopen(w.tmp, "wb");
    if (!w.f) {
        err_errno(err, "%s: cannot create", w.tmp);
        goto done;
    }
    header_init(&w);
    if (write_images(&w, on_bad, bad_ctx, err) != 0 || write_image_tables(&w, err) != 0 ||
        write_tokens(&w, err) != 0 || (vocab && write_targets(&w, err) != 0) ||
        write_question_ids(&w, err) != 0 || (vocab && write_answer_vocab(&w, err) != 0) ||
        finalize(&w, t0, stats, err) != 0)
        goto done;
    rc = 0;
done:
    writer_free(&w);
    return rc;
}

void prep_split_path(const char *prepared, const char *split, char *out, size_t cap) {
    const char *tag = strstr(prepared, "{split}");
    if (tag) {
        snprintf(out, cap, "%.*s%s%s", (int)(tag - prepared), prepared, split, tag + 7);
        return;
    }
    const char *slash = strrchr(prepared, '/');
    const char *dot = strrchr(prepared, '.');
    if (dot && (!slash || dot > slash + 1))
        snprintf(out, cap, "%.*s.%s%s", (int)(dot - prepared), prepared, split, dot);
    else
        snprintf(out, cap, "%s.%s", prepared, split);
}

/* ================================================================ reading */

struct PrepFile {
    char *path;
    FileMap fm;           /* the whole file */
    const uint8_t *map;   /* fm.data, when the file holds at least a header */
    size_t size;
    PrepHeader h;
    const char **answers; /* [n_answers] into the map */
};

const PrepHeader *prep_header(const PrepFile *p) { return &p->h; }
const char *prep_path(const PrepFile *p) { return p->path; }

static int check_section(const PrepFile *p, int id, uint64_t expect, int required, Err *err) {
    uint64_t off = p->h.sec[id][0], len = p->h.sec[id][1];
    if (!required) {
        if (off || len)
            return err_set(err, "%s: header: section %s present (offset %llu) but its flag is off",
                           p->path, sec_names[id], (unsigned long long)off);
        return 0;
    }
    if (off < PREP_HEADER_BYTES || off % 64 || off > p->size || len > p->size - off)
        return err_set(err, "%s: header: section %s at offset %llu with %llu bytes does not fit "
                       "the file (%zu bytes)", p->path, sec_names[id], (unsigned long long)off,
                       (unsigned long long)len, p->size);
    if (expect != UINT64_MAX && len != expect)
        return err_set(err, "%s: header: section %s has %llu bytes, expected %llu from the counts",
                       p->path, sec_names[id], (unsigned long long)len, (unsigned long long)expect);
    return 0;
}

static int prep_validate(PrepFile *p, Err *err) {
    const PrepHeader *h = &p->h;
    if (p->size < PREP_HEADER_BYTES)
        return err_set(err, "%s: %zu bytes, too small for the %u-byte header of a prepared dataset",
                       p->path, p->size, PREP_HEADER_BYTES);
    if (memcmp(h->magic, PREP_MAGIC, 8) != 0)
        return err_set(err, "%s: not a prepared dataset (bad magic at byte 0, expected \"VQAPREP\")", p->path);
    if (h->version != PREP_VERSION)
        return err_set(err, "%s: prepared dataset version %u, this build reads version %u (re-run vqa_prep)",
                       p->path, h->version, PREP_VERSION);
    if (h->header_bytes != PREP_HEADER_BYTES || h->max_pairs != PREP_MAX_PAIRS)
        return err_set(err, "%s: header: header_bytes %u / max_pairs %u, expected %u / %d", p->path,
                       h->header_bytes, h->max_pairs, PREP_HEADER_BYTES, PREP_MAX_PAIRS);
    if (h->flags & ~(PREP_FLAG_JPEG | PREP_FLAG_TARGETS))
        return err_set(err, "%s: header: unknown flags 0x%x", p->path, h->flags);
    if (h->image_size < 1 || h->image_size > 4096 || h->max_len < 1 || h->max_len > 4096 ||
        h->n_samples < 1 || h->n_samples > INT32_MAX || h->n_images < 1 ||
        h->n_images > h->n_samples || h->n_answers > (1u << 24) ||
        ((h->flags & PREP_FLAG_TARGETS) && h->n_answers == 0))
        return err_set(err, "%s: header: implausible counts (image_size %u, max_len %u, %llu samples, "
                       "%llu images, %u answers)", p->path, h->image_size, h->max_len,
                       (unsigned long long)h->n_samples, (unsigned long long)h->n_images, h->n_answers);
    uint64_t n = h->n_samples, ni = h->n_images, S = h->image_size, L = h->max_len;
    int jpeg = (h->flags & PREP_FLAG_JPEG) != 0, tg = (h->flags & PREP_FLAG_TARGETS) != 0;
    if (check_section(p, PREP_SEC_IMAGES, jpeg ? UINT64_MAX : ni * S * S * 3, 1, err) ||
        check_section(p, PREP_SEC_JPEG_INDEX, (ni + 1) * 8, jpeg, err) ||
        check_section(p, PREP_SEC_IMAGE_IDS, ni * 8, 1, err) ||
        check_section(p, PREP_SEC_IMAGE_FLAGS, ni, 1, err) ||
        check_section(p, PREP_SEC_SAMPLE_IMG, n * 4, 1, err) ||
        check_section(p, PREP_SEC_TOKENS, n * L * 4, 1, err) ||
        check_section(p, PREP_SEC_LENGTHS, n * 4, 1, err) ||
        check_section(p, PREP_SEC_TARGETS, n * PREP_MAX_PAIRS * 8, tg, err) ||
        check_section(p, PREP_SEC_QIDS, n * 8, 1, err) ||
        check_section(p, PREP_SEC_VOCAB, UINT64_MAX, tg, err))
        return -1;
    if (jpeg) {
        const uint64_t *ix = (const uint64_t *)(p->map + h->sec[PREP_SEC_JPEG_INDEX][0]);
        if (ix[0] != 0 || ix[ni] != h->sec[PREP_SEC_IMAGES][1])
            return err_set(err, "%s: jpeg_index: starts at %llu / ends at %llu, expected 0 / %llu",
                           p->path, (unsigned long long)ix[0], (unsigned long long)ix[ni],
                           (unsigned long long)h->sec[PREP_SEC_IMAGES][1]);
        for (uint64_t k = 0; k < ni; k++)
            if (ix[k + 1] < ix[k])
                return err_set(err, "%s: jpeg_index: entry %llu (%llu) is before entry %llu (%llu)",
                               p->path, (unsigned long long)(k + 1), (unsigned long long)ix[k + 1],
                               (unsigned long long)k, (unsigned long long)ix[k]);
    }
    const int32_t *si = (const int32_t *)(p->map + h->sec[PREP_SEC_SAMPLE_IMG][0]);
    const int32_t *len = (const int32_t *)(p->map + h->sec[PREP_SEC_LENGTHS][0]);
    const int32_t *tok = (const int32_t *)(p->map + h->sec[PREP_SEC_TOKENS][0]);
    for (uint64_t i = 0; i < n; i++) {
        if (si[i] < 0 || (uint64_t)si[i] >= ni)
            return err_set(err, "%s: sample_image[%llu] = %d, expected 0..%llu", p->path,
                           (unsigned long long)i, si[i], (unsigned long long)(ni - 1));
        if (len[i] < 0 || (uint64_t)len[i] > L)
            return err_set(err, "%s: lengths[%llu] = %d, expected 0..%llu", p->path,
                           (unsigned long long)i, len[i], (unsigned long long)L);
    }
    if (h->tok_vocab)
        for (uint64_t i = 0; i < n * L; i++)
            if (tok[i] < 0 || (uint32_t)tok[i] >= h->tok_vocab)
                return err_set(err, "%s: tokens[%llu][%llu] = %d, outside the vocabulary of %u",
                               p->path, (unsigned long long)(i / L), (unsigned long long)(i % L),
                               tok[i], h->tok_vocab);
    if (tg) {
        const PrepPair *pp = (const PrepPair *)(p->map + h->sec[PREP_SEC_TARGETS][0]);
        for (uint64_t i = 0; i < n * PREP_MAX_PAIRS; i++)
            if (pp[i].cls < -1 || pp[i].cls >= (int32_t)h->n_answers || !(pp[i].score >= 0.f && pp[i].score <= 1.f))
                return err_set(err, "%s: targets[%llu] pair %llu = (%d, %g), expected a class < %u and "
                               "a score in [0, 1]", p->path, (unsigned long long)(i / PREP_MAX_PAIRS),
                               (unsigned long long)(i % PREP_MAX_PAIRS), pp[i].cls, pp[i].score, h->n_answers);
        p->answers = malloc(sizeof(char *) * h->n_answers);
        if (!p->answers) return err_set(err, "%s: out of memory", p->path);
        const char *v = (const char *)(p->map + h->sec[PREP_SEC_VOCAB][0]);
        uint64_t vl = h->sec[PREP_SEC_VOCAB][1], pos = 0;
        for (uint32_t a = 0; a < h->n_answers; a++) {
            const char *z = pos < vl ? memchr(v + pos, 0, vl - pos) : NULL;
            if (!z)
                return err_set(err, "%s: answer_vocab: answer %u of %u runs past the section end",
                               p->path, a, h->n_answers);
            p->answers[a] = v + pos;
            pos = (uint64_t)(z - v) + 1;
        }
    }
    return 0;
}

int prep_open(PrepFile **out, const char *path, Err *err) {
    *out = NULL;
    PrepFile *p = calloc(1, sizeof *p);
    if (!p) return err_set(err, "%s: out of memory", path);
    p->path = strdup(path);
    if (file_map(&p->fm, path, "prepared dataset", 0, err) != 0) {
        prep_close(p);
        return -1;
    }
    p->size = p->fm.size;
    if (p->size >= PREP_HEADER_BYTES) {
        p->map = p->fm.data;
        memcpy(&p->h, p->map, sizeof p->h);
    }
    if (prep_validate(p, err) != 0) {
        prep_close(p);
        return -1;
    }
    *out = p;
    return 0;
}

void prep_close(PrepFile *p) {
    if (!p) return;
    file_unmap(&p->fm);
    free(p->answers);
    free(p->path);
    free(p);
}

static int32_t sample_image(const PrepFile *p, int64_t i) {
    return ((const int32_t *)(p->map + p->h.sec[PREP_SEC_SAMPLE_IMG][0]))[i];
}

int64_t prep_image_id(const PrepFile *p, int64_t i) {
    return ((const int64_t *)(p->map + p->h.sec[PREP_SEC_IMAGE_IDS][0]))[sample_image(p, i)];
}

int prep_image(const PrepFile *p, int64_t i, uint8_t *dst, Err *err) {
    const size_t S = p->h.image_size, bytes = S * S * 3;
    int32_t k = sample_image(p, i);
    const uint8_t *base = p->map + p->h.sec[PREP_SEC_IMAGES][0];
    if (p->map[p->h.sec[PREP_SEC_IMAGE_FLAGS][0] + (size_t)k]) {
        memset(dst, 0, bytes);
        return err_set(err, "%s: sample %lld (image id %lld) was bad when the file was prepared",
                       p->path, (long long)i, (long long)prep_image_id(p, i));
    }
    if (!(p->h.flags & PREP_FLAG_JPEG)) {
        memcpy(dst, base + (size_t)k * bytes, bytes);
        return 0;
    }
    const uint64_t *ix = (const uint64_t *)(p->map + p->h.sec[PREP_SEC_JPEG_INDEX][0]);
    char name[4200];
    snprintf(name, sizeof name, "%s: image %d (id %lld)", p->path, k, (long long)prep_image_id(p, i));
    Image im;
    if (img_decode_memory(&im, base + ix[k], (size_t)(ix[k + 1] - ix[k]), name, err) != 0) {
        memset(dst, 0, bytes);
        return -1;
    }
    if ((size_t)im.w != S || (size_t)im.h != S) {
        memset(dst, 0, bytes);
        err_set(err, "%s: decoded %d x %d, expected %zu x %zu", name, im.w, im.h, S, S);
        img_free(&im);
        return -1;
    }
    memcpy(dst, im.px, bytes);
    img_free(&im);
    return 0;
}

const int32_t *prep_tokens(const PrepFile *p, int64_t i) {
    return (const int32_t *)(p->map + p->h.sec[PREP_SEC_TOKENS][0]) + (size_t)i * p->h.max_len;
}

int prep_length(const PrepFile *p, int64_t i) {
    return ((const int32_t *)(p->map + p->h.sec[PREP_SEC_LENGTHS][0]))[i];
}

int64_t prep_question_id(const PrepFile *p, int64_t i) {
    return ((const int64_t *)(p->map + p->h.sec[PREP_SEC_QIDS][0]))[i];
}

void prep_targets(const PrepFile *p, int64_t i, float *target) {
    memset(target, 0, sizeof(float) * p->h.n_answers);
    if (!(p->h.flags & PREP_FLAG_TARGETS)) return;
    const PrepPair *pp = (const PrepPair *)(p->map + p->h.sec[PREP_SEC_TARGETS][0]) + (size_t)i * PREP_MAX_PAIRS;
    for (int j = 0; j < PREP_MAX_PAIRS; j++)
        if (pp[j].cls >= 0) target[pp[j].cls] = pp[j].score;
}

const char *prep_answer(const PrepFile *p, int k) {
    return p->answers && k >= 0 && (uint32_t)k < p->h.n_answers ? p->answers[k] : NULL;
}
