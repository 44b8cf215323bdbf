/* image.c: decode, PIL-exact antialiased resize, augmentation and normalization of one
 * image (see image.h for the pipeline and layouts). */
#include "data/image.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* stb_image is compiled here, privately (static functions), rather than taken from
 * libstb.so: this build defines STBI_THREAD_LOCAL, so stbi_failure_reason() is per
 * thread and loader threads never read each other's messages. Only JPEG and PNG. */
/* stb declares functions (gif, unpremultiply) that STBI_ONLY_* leaves undefined; that
 * warning fires at the end of the file, so it stays off for the whole file. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#include <stb_image.h>
#pragma GCC diagnostic pop

#include "util/file.h"
#include "util/rng.h"

/* ------------------------------------------------------------------ decode */

/* stb_image decodes a JPEG cut short without complaint (missing data reads as zeros), so
 * we require the end-of-image marker FF D9 after the first start-of-scan FF DA. Markers
 * before the scan are walked by their lengths, so an EXIF thumbnail (with its own FF D9)
 * inside APP1 is skipped; inside scan data every FF is stuffed (FF 00) or a restart
 * marker, so an FF D9 there is the real end. */
static int jpeg_is_complete(const uint8_t *d, size_t n) {
    size_t p = 2;
    while (p + 4 <= n) {
        if (d[p] != 0xFF) return 0;
        uint8_t m = d[p + 1];
        if (m == 0xFF) { p++; continue; } /* fill byte */
        if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) { p += 2; continue; }
        size_t len = ((size_t)d[p + 2] << 8) | d[p + 3];
        if (m == 0xDA) {
            for (size_t q = n - 1; q > p + 2 + len; q--)
                if (d[q] == 0xD9 && d[q - 1] == 0xFF) return 1;
            return 0;
        }
        p += 2 + len;
    }
    return 0;
}

/* Width and height from the header, read here rather than by stbi_info because stb
 * rejects some huge headers itself with only "unknown image type"; we want the size in
 * the message. PNG: IHDR right after the signature. JPEG: the first SOFn segment. */
static int peek_dims(const uint8_t *d, size_t n, long long *w, long long *h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (n >= 24 && !memcmp(d, sig, 8) && !memcmp(d + 12, "IHDR", 4)) {
        *w = ((long long)d[16] << 24) | (d[17] << 16) | (d[18] << 8) | d[19];
        *h = ((long long)d[20] << 24) | (d[21] << 16) | (d[22] << 8) | d[23];
        return 1;
    }
    if (n >= 4 && d[0] == 0xFF && d[1] == 0xD8) {
        size_t p = 2;
        while (p + 9 <= n && d[p] == 0xFF) {
            uint8_t m = d[p + 1];
            if (m == 0xFF) { p++; continue; }
            if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
                *h = (d[p + 5] << 8) | d[p + 6];
                *w = (d[p + 7] << 8) | d[p + 8];
                return 1;
            }
            if (m == 0xDA) return 0;
            p += 2 + (((size_t)d[p + 2] << 8) | d[p + 3]);
        }
    }
    return 0;
}

int img_decode_memory(Image *out, const uint8_t *data, size_t n, const char *name, Err *err) {
    memset(out, 0, sizeof *out);
    if (n == 0) return err_set(err, "%s: empty image file (0 bytes)", name);
    if (n > INT_MAX) return err_set(err, "%s: image file too large (%zu bytes)", name, n);
    long long pw, ph;
    if (peek_dims(data, n, &pw, &ph) && pw * ph > IMG_MAX_PIXELS)
        return err_set(err,
                       "%s: header says %lld x %lld pixels (%.1f Mpixel), over the limit of %lld "
                       "Mpixel; refused before decoding",
                       name, pw, ph, (double)pw * ph / 1048576.0, IMG_MAX_PIXELS / 1048576);
    int w = 0, h = 0, comp = 0;
    if (!stbi_info_from_memory(data, (int)n, &w, &h, &comp))
        return err_set(err, "%s: not a readable JPEG or PNG (%zu bytes): stb_image says: %s",
                       name, n, stbi_failure_reason());
    if (w <= 0 || h <= 0 || (long long)w * h > IMG_MAX_PIXELS)
        return err_set(err,
                       "%s: header says %d x %d pixels (%.1f Mpixel), over the limit of %lld "
                       "Mpixel; refused before decoding",
                       name, w, h, (double)w * h / 1048576.0, IMG_MAX_PIXELS / 1048576);
    int is_jpeg = n >= 2 && data[0] == 0xFF && data[1] == 0xD8;
    if (is_jpeg && !jpeg_is_complete(data, n))
        return err_set(err, "%s: truncated JPEG (%zu bytes, %d x %d): no end-of-image marker "
                       "after the scan data", name, n, w, h);
    int w2, h2, c2;
    uint8_t *px = stbi_load_from_memory(data, (int)n, &w2, &h2, &c2, 3);
    if (!px)
        return err_set(err, "%s: corrupt or truncated %s (%zu bytes, %d x %d): stb_image says: %s",
                       name, is_jpeg ? "JPEG" : "PNG", n, w, h, stbi_failure_reason());
    out->w = w2;
    out->h = h2;
    out->px = px;
    return 0;
}

int img_decode_file(Image *out, const char *path, Err *err) {
    memset(out, 0, sizeof *out);
    char *buf;
    size_t n;
    if (file_read_all(path, "image", 0, &buf, &n, err) != 0) return -1;
    int rc = img_decode_memory(out, (const uint8_t *)buf, n, path, err);
    free(buf);
    return rc;
}

void img_free(Image *im) {
    if (!im) return;
    stbi_image_free(im->px);
    im->px = NULL;
    im->w = im->h = 0;
}

int img_resize_mode_parse(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "shorter_crop")) return IMG_RESIZE_SHORTER_CROP;
    if (!strcmp(s, "direct")) return IMG_RESIZE_DIRECT;
    return -1;
}

/* ------------------------------------------------------------------ resample */

/* Separable resampling with a triangle filter, exactly as Pillow's ImagingResample
 * (libImaging/Resample.c) for BILINEAR. Along one axis, input range [in0, in1) of a line
 * of in_size pixels to out_size pixels:
 *   scale   = (in1 - in0) / out_size          (> 1 when downscaling)
 *   fs      = max(scale, 1)                   (the filter widens with the downscale:
 *                                              antialiasing, every input pixel counts)
 *   support = 1 * fs                          (triangle tri(t) = max(0, 1 - |t|))
 *   for output pixel i: centre c = in0 + (i + 0.5) * scale,
 *     taps x in [xmin, xmax) = [int(c - support + 0.5), int(c + support + 0.5)) ∩ [0, in_size)
 *     w_x = tri((x - c + 0.5) / fs) / Σ w
 *   out[i] = Σ_x w_x in[x]
 * The weights become 22-bit fixed point (round half away from zero), accumulation starts
 * at 0.5 (1 << 21) and the result is clipped to [0, 255] after >> 22. Horizontal pass first
 * (only over the rows the vertical pass needs), into uint8, then the vertical pass. */
#define RS_PREC 22

static int rs_ksize(double scale) {
    double fs = scale < 1.0 ? 1.0 : scale;
    return (int)ceil(fs) * 2 + 1;
}

static void rs_coeffs(int in_size, double in0, double in1, int out_size, int ksize, int *bounds,
                      int32_t *kk, double *tmp) {
    double scale = (in1 - in0) / out_size;
    double fs = scale < 1.0 ? 1.0 : scale;
    double support = fs;
    double ss = 1.0 / fs;
    for (int xx = 0; xx < out_size; xx++) {
        double center = in0 + (xx + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        if (xmax > ksize) xmax = ksize; /* cannot happen for boxes inside the image */
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            double t = fabs((x + xmin - center + 0.5) * ss);
            double w = t < 1.0 ? 1.0 - t : 0.0;
            tmp[x] = w;
            ww += w;
        }
        int32_t *k = kk + (size_t)xx * ksize;
        for (int x = 0; x < ksize; x++) {
            double v = x < xmax ? (ww != 0.0 ? tmp[x] / ww : tmp[x]) : 0.0;
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << RS_PREC)) : (int32_t)(0.5 + v * (1 << RS_PREC));
        }
        bounds[2 * xx] = xmin;
        bounds[2 * xx + 1] = xmax;
    }
}

static inline uint8_t rs_clip8(int32_t v) {
    v >>= RS_PREC;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

static size_t align16(size_t x) { return (x + 15) & ~(size_t)15; }

size_t img_resample_scratch_size(int sw, int sh, int dw, int dh) {
    int kh = rs_ksize((double)sw / dw), kv = rs_ksize((double)sh / dh);
    int kmax = kh > kv ? kh : kv;
    return align16(sizeof(int) * 2 * (size_t)dw) + align16(sizeof(int32_t) * (size_t)dw * kh) +
           align16(sizeof(int) * 2 * (size_t)dh) + align16(sizeof(int32_t) * (size_t)dh * kv) +
           align16(sizeof(double) * (size_t)kmax) + align16((size_t)dw * sh * 3);
}

int img_resample(const uint8_t *src, int sw, int sh, double x0, double y0, double x1, double y1,
                 uint8_t *dst, int dw, int dh, void *scratch) {
    if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0) return -1;
    /* Boxes outside the image would need wider kernels than the scratch holds. */
    if (x0 < 0 || y0 < 0 || x1 > sw || y1 > sh || x1 <= x0 || y1 <= y0) return -1;
    void *owned = NULL;
    if (!scratch) {
        owned = scratch = malloc(img_resample_scratch_size(sw, sh, dw, dh));
        if (!owned) return -1;
    }
    int kh = rs_ksize((double)sw / dw), kv = rs_ksize((double)sh / dh);
    /* Kernels for this box are never wider than for the whole image (box scale <= whole). */
    int kh_box = rs_ksize((x1 - x0) / dw), kv_box = rs_ksize((y1 - y0) / dh);
    char *p = scratch;
    int *bh = (int *)p;        p += align16(sizeof(int) * 2 * (size_t)dw);
    int32_t *kkh = (int32_t *)p; p += align16(sizeof(int32_t) * (size_t)dw * kh);
    int *bv = (int *)p;        p += align16(sizeof(int) * 2 * (size_t)dh);
    int32_t *kkv = (int32_t *)p; p += align16(sizeof(int32_t) * (size_t)dh * kv);
    double *tmp = (double *)p;   p += align16(sizeof(double) * (size_t)(kh > kv ? kh : kv));
    uint8_t *mid = (uint8_t *)p;

    int need_h = dw != sw || x0 != 0 || x1 != sw;
    int need_v = dh != sh || y0 != 0 || y1 != sh;
    rs_coeffs(sh, y0, y1, dh, kv_box, bv, kkv, tmp);
    int yfirst = bv[0], ylast = bv[2 * (dh - 1)] + bv[2 * (dh - 1) + 1];

    const uint8_t *vin = src; /* input of the vertical pass, rows from yfirst */
    int vin_w = sw, vin_row0 = 0;
    if (need_h) {
        rs_coeffs(sw, x0, x1, dw, kh_box, bh, kkh, tmp);
        uint8_t *outp = need_v ? mid : dst;
        int r0 = need_v ? yfirst : 0, r1 = need_v ? ylast : sh;
        for (int y = r0; y < r1; y++) {
            const uint8_t *row = src + (size_t)y * sw * 3;
            uint8_t *o = outp + (size_t)(y - r0) * dw * 3;
            for (int xx = 0; xx < dw; xx++) {
                const int32_t *k = kkh + (size_t)xx * kh_box;
                const uint8_t *s = row + (size_t)bh[2 * xx] * 3;
                int n = bh[2 * xx + 1];
                int32_t a0 = 1 << (RS_PREC - 1), a1 = a0, a2 = a0;
                for (int x = 0; x < n; x++) {
                    a0 += s[3 * x] * k[x];
                    a1 += s[3 * x + 1] * k[x];
                    a2 += s[3 * x + 2] * k[x];
                }
                o[3 * xx] = rs_clip8(a0);
                o[3 * xx + 1] = rs_clip8(a1);
                o[3 * xx + 2] = rs_clip8(a2);
            }
        }
        vin = mid;
        vin_w = dw;
        vin_row0 = yfirst;
    }
    if (need_v) {
        for (int yy = 0; yy < dh; yy++) {
            const int32_t *k = kkv + (size_t)yy * kv_box;
            int ymin = bv[2 * yy] - vin_row0, n = bv[2 * yy + 1];
            uint8_t *o = dst + (size_t)yy * dw * 3;
            for (int xx = 0; xx < dw * 3; xx++) {
                int32_t a = 1 << (RS_PREC - 1);
                const uint8_t *s = vin + (size_t)ymin * vin_w * 3 + xx;
                for (int y = 0; y < n; y++) a += s[(size_t)y * vin_w * 3] * k[y];
                o[xx] = rs_clip8(a);
            }
        }
    } else if (!need_h) {
        memcpy(dst, src, (size_t)sw * sh * 3);
    }
    free(owned);
    return 0;
}

/* Python's round() on k / 2 (k integer): half to even, as torchvision's CenterCrop uses. */
static int round_half_even_div2(int k) {
    if (k % 2 == 0) return k / 2;
    int lo = k / 2; /* k > 0 here */
    return lo % 2 == 0 ? lo : lo + 1;
}

void img_resize_box(int sw, int sh, int S, ImgResizeMode mode, double box[4]) {
    if (mode == IMG_RESIZE_DIRECT) {
        box[0] = 0; box[1] = 0; box[2] = sw; box[3] = sh;
        return;
    }
    /* torchvision Resize(S): shorter side -> S, longer -> int(S * long / short);
     * then CenterCrop(S): offset int(round((len - S) / 2.0)). */
    int nw, nh;
    if (sw <= sh) {
        nw = S;
        nh = (int)((long long)S * sh / sw);
    } else {
        nh = S;
        nw = (int)((long long)S * sw / sh);
    }
    int left = nw > S ? round_half_even_div2(nw - S) : 0;
    int top = nh > S ? round_half_even_div2(nh - S) : 0;
    double sx = (double)sw / nw, sy = (double)sh / nh;
    box[0] = left * sx;
    box[1] = top * sy;
    box[2] = (left + S) * sx;
    box[3] = (top + S) * sy;
    if (box[2] > sw) box[2] = sw;
    if (box[3] > sh) box[3] = sh;
}

/* ------------------------------------------------------------------ augmentation */

uint64_t img_sample_seed(uint64_t seed, int64_t epoch, int64_t sample_index) {
    uint64_t h = rng_mix64(seed + RNG_GAMMA);
    h = rng_mix64(h ^ ((uint64_t)epoch * 0xD1B54A32D192ED03ull + 1));
    h = rng_mix64(h ^ ((uint64_t)sample_index * 0x8CB92BA72F3D8DD7ull + 2));
    return h;
}

/* torchvision RandomResizedCrop.get_params: up to 10 tries of area fraction in scale and
 * log-uniform aspect ratio; fallback = centre crop clamped to the ratio range. */
static void random_resized_crop(Rng *r, int W, int H, double box[4]) {
    const double smin = 0.6, smax = 1.0, rmin = 3.0 / 4.0, rmax = 4.0 / 3.0;
    double area = (double)W * H;
    for (int t = 0; t < 10; t++) {
        double ta = area * rng_uniform(r, smin, smax);
        double ar = exp(rng_uniform(r, log(rmin), log(rmax)));
        int w = (int)lround(sqrt(ta * ar)), h = (int)lround(sqrt(ta / ar));
        if (w > 0 && w <= W && h > 0 && h <= H) {
            int i = rng_range(r, 0, H - h), j = rng_range(r, 0, W - w);
            box[0] = j; box[1] = i; box[2] = j + w; box[3] = i + h;
            return;
        }
    }
    double in_ratio = (double)W / H;
    int w = W, h = H;
    if (in_ratio < rmin) h = (int)lround(w / rmin);
    else if (in_ratio > rmax) w = (int)lround(h * rmax);
    if (h > H) h = H;
    if (w > W) w = W;
    int i = (H - h) / 2, j = (W - w) / 2;
    box[0] = j; box[1] = i; box[2] = j + w; box[3] = i + h;
}

void img_aug_draw(const ImgAugment *a, uint64_t sample_seed, int sw, int sh, ImgAugDraw *d) {
    memset(d, 0, sizeof *d);
    d->brightness = d->contrast = d->saturation = 1.0f;
    d->box[2] = sw;
    d->box[3] = sh;
    if (!a) return;
    /* Separate streams per augmentation, so switching one on does not change the others. */
    Rng r1 = {sample_seed ^ 0x1111}, r2 = {sample_seed ^ 0x2222}, r3 = {sample_seed ^ 0x3333};
    if (a->random_crop) {
        random_resized_crop(&r1, sw, sh, d->box);
        d->has_box = 1;
    }
    if (a->hflip) d->flip = rng_uniform(&r2, 0, 1) < 0.5;
    if (a->color_jitter > 0) {
        double s = a->color_jitter > 1 ? 1 : a->color_jitter;
        d->brightness = (float)rng_uniform(&r3, 1 - s, 1 + s);
        d->contrast = (float)rng_uniform(&r3, 1 - s, 1 + s);
        d->saturation = (float)rng_uniform(&r3, 1 - s, 1 + s);
    }
}

void img_hflip(uint8_t *px, int w, int h) {
    for (int y = 0; y < h; y++) {
        uint8_t *row = px + (size_t)y * w * 3;
        for (int a = 0, b = w - 1; a < b; a++, b--)
            for (int c = 0; c < 3; c++) {
                uint8_t t = row[3 * a + c];
                row[3 * a + c] = row[3 * b + c];
                row[3 * b + c] = t;
            }
    }
}

static inline float clamp01(float v) { return v < 0.f ? 0.f : v > 1.f ? 1.f : v; }

/* out[c, y, x] = (v[y, x, c] - mean[c]) / std[c], v = jitter(px / 255) in [0, 1].
 * Jitter, as torchvision's functional ops on float tensors:
 *   brightness b: v = clamp(b v)
 *   contrast  c: v = clamp(c v + (1 - c) m), m = mean over the image of gray(v)
 *   saturation s: v = clamp(s v + (1 - s) gray(v)),  gray = .299 R + .587 G + .114 B
 * in that fixed order (torchvision draws a random order; a fixed one is simpler to test). */
void img_normalize(const uint8_t *px, int w, int h, const ImgAugDraw *d, float *out) {
    static const float mean[3] = {IMG_MEAN_R, IMG_MEAN_G, IMG_MEAN_B};
    static const float stdv[3] = {IMG_STD_R, IMG_STD_G, IMG_STD_B};
    size_t n = (size_t)w * h;
    float *o[3] = {out, out + n, out + 2 * n};
    int jitter = d && (d->brightness != 1.0f || d->contrast != 1.0f || d->saturation != 1.0f);
    if (!jitter) {
        float lut[3][256];
        for (int c = 0; c < 3; c++)
            for (int v = 0; v < 256; v++) lut[c][v] = ((float)v / 255.0f - mean[c]) / stdv[c];
        for (size_t i = 0; i < n; i++) {
            o[0][i] = lut[0][px[3 * i]];
            o[1][i] = lut[1][px[3 * i + 1]];
            o[2][i] = lut[2][px[3 * i + 2]];
        }
        return;
    }
    float b = d->brightness, ct = d->contrast, s = d->saturation;
    double gsum = 0;
    for (size_t i = 0; i < n; i++) {
        float r = clamp01(px[3 * i] / 255.0f * b), g = clamp01(px[3 * i + 1] / 255.0f * b),
              bl = clamp01(px[3 * i + 2] / 255.0f * b);
        gsum += 0.299f * r + 0.587f * g + 0.114f * bl;
    }
    float m = (float)(gsum / (double)n);
    for (size_t i = 0; i < n; i++) {
        float v[3];
        for (int c = 0; c < 3; c++) {
            float x = clamp01(px[3 * i + c] / 255.0f * b);
            v[c] = clamp01(ct * x + (1.0f - ct) * m);
        }
        float gray = 0.299f * v[0] + 0.587f * v[1] + 0.114f * v[2];
        for (int c = 0; c < 3; c++) o[c][i] = (clamp01(s * v[c] + (1.0f - s) * gray) - mean[c]) / stdv[c];
    }
}

/* ------------------------------------------------------------------ text side of the flip */

static int is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static int ieq_word(const char *w, size_t n, const char *lower) {
    if (strlen(lower) != n) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = w[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != lower[i]) return 0;
    }
    return 1;
}

size_t img_swap_left_right(const char *in, char *out, size_t cap) {
    size_t o = 0;
#define PUT(ch)                                  \
    do {                                         \
        if (o + 1 < cap) out[o] = (char)(ch);    \
        o++;                                     \
    } while (0)
    size_t i = 0, n = strlen(in);
    while (i < n) {
        if (!is_word_byte((unsigned char)in[i])) {
            PUT(in[i]);
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && is_word_byte((unsigned char)in[j])) j++;
        const char *rep = ieq_word(in + i, j - i, "left") ? "right"
                          : ieq_word(in + i, j - i, "right") ? "left" : NULL;
        if (!rep) {
            for (size_t k = i; k < j; k++) PUT(in[k]);
        } else {
            size_t wl = j - i;
            for (size_t k = 0; rep[k]; k++) {
                char src = in[i + (k < wl ? k : wl - 1)];
                int upper = src >= 'A' && src <= 'Z';
                PUT(upper ? rep[k] - 'a' + 'A' : rep[k]);
            }
        }
        i = j;
    }
    if (cap) out[o < cap ? o : cap - 1] = '\0';
#undef PUT
    return o;
}

/* ------------------------------------------------------------------ pipeline */

size_t img_pipeline_scratch_size(int sw, int sh, int S) { return img_resample_scratch_size(sw, sh, S, S); }

int img_pipeline(const uint8_t *src, int sw, int sh, int S, ImgResizeMode mode,
                 const ImgAugDraw *aug, void *scratch, uint8_t *resized, float *out) {
    double box[4];
    if (aug && aug->has_box) memcpy(box, aug->box, sizeof box);
    else img_resize_box(sw, sh, S, mode, box);
    if (img_resample(src, sw, sh, box[0], box[1], box[2], box[3], resized, S, S, scratch) != 0)
        return -1;
    if (aug && aug->flip) img_hflip(resized, S, S);
    img_normalize(resized, S, S, aug, out);
    return 0;
}
