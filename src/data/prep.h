/* prep.h: the prepared dataset file: one split, images already resized to S x S and
 * questions already tokenized, memory-mapped at train time so no JPEG is decoded per epoch.
 *
 * Layout (little-endian; every section starts on a 64-byte boundary):
 *   PrepHeader (256 bytes: magic "VQAPREP\0", version, counts, sizes, flags, and
 *               offset + byte length of every section below)
 *   IMAGES      raw:  uint8 [n_images, S, S, 3] (RGB, HWC)
 *               jpeg: the JPEG files one after another (stb_image_write at size S)
 *   JPEG_INDEX  jpeg only: uint64 [n_images + 1] offsets into IMAGES (last = its length)
 *   IMAGE_IDS   int64 [n_images] dataset image ids (for messages)
 *   IMAGE_FLAGS uint8 [n_images] 1 = the image was bad when prepared (stored as zeros)
 *   SAMPLE_IMG  int32 [n] image index of each sample (questions share images: VQA v2 has
 *               ~5 questions per image, so images are stored once)
 *   TOKENS      int32 [n, L] [CLS] q [SEP] [PAD]..., as tok_encode makes them
 *   LENGTHS     int32 [n] real tokens per row (mask = position < length)
 *   TARGETS     targets only: [n, 10] of {int32 class (-1 = none), float score}
 *   QIDS        int64 [n] question ids
 *   VOCAB       targets only: the answer vocabulary, n_answers NUL-terminated strings
 * Readers check the magic, version, header size, every count against a sane bound, every
 * section's offset and length against the file size and against the counts, the JPEG
 * index, every image index, class and length, before handing anything out. */
#ifndef VQA_PREP_H
#define VQA_PREP_H

#include <stddef.h>
#include <stdint.h>

#include "data/answers.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/tokenizer.h"
#include "util/err.h"

#define PREP_MAGIC "VQAPREP"
#define PREP_VERSION 1u
#define PREP_HEADER_BYTES 256u
#define PREP_MAX_PAIRS 10
#define PREP_FLAG_JPEG 1u
#define PREP_FLAG_TARGETS 2u

enum {
    PREP_SEC_IMAGES = 0, PREP_SEC_JPEG_INDEX, PREP_SEC_IMAGE_IDS, PREP_SEC_IMAGE_FLAGS,
    PREP_SEC_SAMPLE_IMG, PREP_SEC_TOKENS, PREP_SEC_LENGTHS, PREP_SEC_TARGETS, PREP_SEC_QIDS,
    PREP_SEC_VOCAB, PREP_NSEC
};

typedef struct PrepHeader {
    char magic[8];          /* "VQAPREP\0" */
    uint32_t version;
    uint32_t header_bytes;  /* 256 */
    uint32_t flags;         /* PREP_FLAG_* */
    uint32_t image_size;    /* S */
    uint32_t max_len;       /* L */
    uint32_t n_answers;     /* A (0 without targets) */
    uint32_t tok_vocab;     /* tokenizer vocabulary size the ids were made with (0: none) */
    uint32_t max_pairs;     /* 10 */
    uint64_t n_samples;
    uint64_t n_images;
    uint64_t sec[PREP_NSEC][2]; /* offset, bytes */
    uint8_t reserved[PREP_HEADER_BYTES - 56 - PREP_NSEC * 16];
} PrepHeader;

typedef struct PrepPair { int32_t cls; float score; } PrepPair;

/* ---- writing (vqa_prep) ---- */
typedef struct PrepOpts {
    int image_size;
    int max_len;
    ImgResizeMode resize;
    int jpeg_quality;   /* 0: raw uint8 pixels; 1..100: JPEG at that quality */
    int threads;        /* decode threads (>= 1) */
} PrepOpts;

typedef struct PrepStats {
    int64_t n_samples, n_images, bad_images;
    uint64_t file_bytes;
    double seconds;
} PrepStats;

/* Called (from the writing thread, in image order) for each bad image. */
typedef void (*PrepBadFn)(void *ctx, const char *message);

/* Writes path (via path.tmp, fsync, rename: never a half-written file under the name).
 * tok NULL: no tokens (all [PAD]); vocab NULL: no targets. */
int prep_write(const char *path, const VqaDataset *ds, const Tokenizer *tok,
               const AnswerVocab *vocab, const PrepOpts *o, PrepBadFn on_bad, void *bad_ctx,
               PrepStats *stats, Err *err);

/* The file of one split for the config's data.prepared: "{split}" in it is replaced by
 * the split name; otherwise the name goes before the last extension
 * ("prep/vqa.bin" -> "prep/vqa.train.bin", "prep/vqa" -> "prep/vqa.train"). */
void prep_split_path(const char *prepared, const char *split, char *out, size_t cap);

/* ---- reading (memory-mapped) ---- */
typedef struct PrepFile PrepFile;

int prep_open(PrepFile **out, const char *path, Err *err);
void prep_close(PrepFile *p);
const PrepHeader *prep_header(const PrepFile *p);
const char *prep_path(const PrepFile *p);
/* Sample i's image as RGB [S, S, 3] into dst. -1 with err if it was bad when prepared or
 * its JPEG does not decode (dst is then zeroed). Thread-safe. */
int prep_image(const PrepFile *p, int64_t i, uint8_t *dst, Err *err);
int64_t prep_image_id(const PrepFile *p, int64_t i);
const int32_t *prep_tokens(const PrepFile *p, int64_t i); /* [L] */
int prep_length(const PrepFile *p, int64_t i);
int64_t prep_question_id(const PrepFile *p, int64_t i);
/* Dense soft targets [A] from the sparse pairs (all zero without targets). */
void prep_targets(const PrepFile *p, int64_t i, float *target);
const char *prep_answer(const PrepFile *p, int k); /* k < n_answers */

#endif
