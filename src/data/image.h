/* image.h: one image from file bytes to the network's input tensor.
 *
 *   decode (stb_image, JPEG/PNG, any channel count -> RGB, header checked first)
 *   -> resize to S x S (PIL-exact antialiased bilinear; "shorter_crop" or "direct")
 *      or, when augmenting, a random resized crop to S x S
 *   -> optional horizontal flip and colour jitter
 *   -> ImageNet normalization into one NCHW float image [3, S, S].
 *
 * Pixels between the steps are interleaved RGB uint8 [H, W, 3] (HWC); the layout changes
 * to planar CHW float only in img_normalize. Everything here is reentrant: no global state,
 * safe to call from many loader threads at once. */
#ifndef VQA_IMAGE_H
#define VQA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Largest image we agree to decode: 64 Mpixel (192 MiB of RGB). Checked on the header
 * before any pixel buffer is allocated, so a crafted 20000x20000 header costs nothing. */
#define IMG_MAX_PIXELS (64ll * 1024 * 1024)

/* ImageNet statistics (torchvision), for input in [0, 1]. */
#define IMG_MEAN_R 0.485f
#define IMG_MEAN_G 0.456f
#define IMG_MEAN_B 0.406f
#define IMG_STD_R 0.229f
#define IMG_STD_G 0.224f
#define IMG_STD_B 0.225f

typedef struct Image {
    int w, h;
    uint8_t *px; /* [h, w, 3] RGB, owned (malloc) */
} Image;

/* Decodes a JPEG or PNG (grayscale / gray+alpha / RGBA are converted to RGB; alpha is
 * dropped). Errors name the path (or `name` for memory) and what stb_image said:
 * missing/unreadable file, zero bytes, unknown/corrupt/truncated data, too many pixels. */
int img_decode_file(Image *out, const char *path, Err *err);
int img_decode_memory(Image *out, const uint8_t *data, size_t n, const char *name, Err *err);
void img_free(Image *im);

typedef enum ImgResizeMode {
    IMG_RESIZE_SHORTER_CROP = 0, /* torchvision Resize(S) + CenterCrop(S) */
    IMG_RESIZE_DIRECT = 1,       /* Resize((S, S)): aspect ratio not kept */
} ImgResizeMode;

/* "shorter_crop" | "direct" -> mode; -1 if unknown. */
int img_resize_mode_parse(const char *s);

/* PIL's Image.resize((dw, dh), BILINEAR, box=(x0, y0, x1, y1)) on an RGB image, bit for
 * bit (same coefficients, same 22-bit fixed point, same uint8 intermediate):
 * src [sh, sw, 3] -> dst [dh, dw, 3]. The box is in source pixel coordinates (floats).
 * scratch must hold img_resample_scratch_size(...) bytes (or be NULL: then it is malloc'd;
 * returns -1 only when that allocation fails). */
size_t img_resample_scratch_size(int sw, int sh, int dw, int dh);
int img_resample(const uint8_t *src, int sw, int sh, double x0, double y0, double x1, double y1,
                 uint8_t *dst, int dw, int dh, void *scratch);

/* The source box that `mode` resizes to S x S (for shorter_crop: the box of the centre
 * crop in source coordinates, as torchvision computes the resized size and crop offsets). */
void img_resize_box(int sw, int sh, int S, ImgResizeMode mode, double box[4]);

/* Augmentation of one sample; all randomness comes from (seed, epoch, sample index),
 * so the result does not depend on which thread processes it or in what order. */
typedef struct ImgAugment {
    int random_crop;   /* RandomResizedCrop: scale [0.6, 1], ratio [3/4, 4/3] */
    int hflip;         /* p = 0.5; the question's "left"/"right" are swapped with it */
    float color_jitter; /* s > 0: brightness, contrast, saturation factors in [1-s, 1+s]
                         * (0.2 = torchvision ColorJitter(0.2, 0.2, 0.2)); 0 = off */
} ImgAugment;

/* What the RNG decided for one sample (so the text side can follow the flip). */
typedef struct ImgAugDraw {
    int has_box;       /* 1: resize box[] instead of the mode's box (random_crop) */
    double box[4];     /* crop box x0, y0, x1, y1 in source pixels */
    int flip;          /* 1 = mirror left-right */
    float brightness, contrast, saturation; /* 1 = unchanged */
} ImgAugDraw;

uint64_t img_sample_seed(uint64_t seed, int64_t epoch, int64_t sample_index);
/* Draws the augmentation of one sample for a source of sw x sh pixels. Fields of
 * switched-off augmentations are left at identity (full-image box / no flip / 1). */
void img_aug_draw(const ImgAugment *a, uint64_t sample_seed, int sw, int sh, ImgAugDraw *d);

/* In place on an S x S image [S, S, 3]. */
void img_hflip(uint8_t *px, int w, int h);

/* RGB uint8 [S, S, 3] -> out [3, S, S] float: ((v / 255) * jitter - mean[c]) / std[c].
 * Colour jitter (torchvision order brightness, contrast, saturation, each clamped to
 * [0, 1]) is applied when d != NULL and d's factors differ from 1. */
void img_normalize(const uint8_t *px, int w, int h, const ImgAugDraw *d, float *out);

/* Copies `in` to out with every whole word "left" and "right" swapped, case kept per
 * letter position ("Left" -> "Right", "LEFT" -> "RIGHT"); word = maximal run of ASCII
 * letters/digits/bytes >= 0x80, so "leftover" and "left2" stay. Writes at most cap bytes
 * (NUL-terminated); returns the full length needed (excluding NUL). */
size_t img_swap_left_right(const char *in, char *out, size_t cap);

/* Full pipeline for one sample: decoded RGB -> [3, S, S]. scratch: at least
 * img_pipeline_scratch_size(sw, sh, S) bytes. aug may be NULL. */
size_t img_pipeline_scratch_size(int sw, int sh, int S);
int img_pipeline(const uint8_t *src, int sw, int sh, int S, ImgResizeMode mode,
                 const ImgAugDraw *aug, void *scratch, uint8_t *resized, float *out);

#endif
