// TEST_LIBS: vqa_data
// TEST_LABELS: unit
/* test_image.c: decoding (formats, channel counts, broken files, the pixel limit),
 * PIL-exact resizing against references made by tools/gen_image_refs.py (Pillow),
 * normalization values, augmentation determinism and the left/right swap of the flip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

#include "data/image.h"
#include "testlib.h"

static int write_all(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fwrite(d, 1, n, f);
    fclose(f);
    return 0;
}

static int load_ref(const char *name, Image *im) {
    char p[256];
    snprintf(p, sizeof p, "ref/%s", name);
    Err e;
    if (img_decode_file(im, p, &e) != 0) {
        fprintf(stderr, "cannot load %s: %s\n", p, e.msg);
        return -1;
    }
    return 0;
}

/* Max |a - b| over n bytes, and how many bytes differ at all. */
static int max_diff(const uint8_t *a, const uint8_t *b, size_t n, size_t *ndiff) {
    int m = 0;
    *ndiff = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d) (*ndiff)++;
        if (d > m) m = d;
    }
    return m;
}

static void decode_png_rgb_gives_size_and_pixels(void) {
    Image im;
    CHECK(load_ref("img_src_a.png", &im) == 0);
    CHECK(im.w == 97 && im.h == 61);
    /* The generator's green channel is a 7x5 checkerboard of 230 / 20 plus noise. */
    CHECK(im.px[1] > 150);
    img_free(&im);
}

static void decode_gray_png_expands_to_rgb(void) {
    Image im;
    CHECK(load_ref("img_src_c_gray.png", &im) == 0);
    CHECK(im.w == 150 && im.h == 200);
    int same = 1;
    for (int i = 0; i < im.w * im.h; i++)
        if (im.px[3 * i] != im.px[3 * i + 1] || im.px[3 * i] != im.px[3 * i + 2]) same = 0;
    CHECK(same);
    img_free(&im);
}

static void decode_rgba_and_gray_alpha_drop_alpha(void) {
    Image a, ar, l, lr;
    CHECK(load_ref("img_src_rgba.png", &a) == 0 && load_ref("img_rgba_as_rgb.png", &ar) == 0);
    CHECK(a.w == 17 && a.h == 11 && ar.w == 17);
    CHECK(memcmp(a.px, ar.px, 17 * 11 * 3) == 0);
    CHECK(load_ref("img_src_la.png", &l) == 0 && load_ref("img_la_as_rgb.png", &lr) == 0);
    CHECK(l.w == 9 && l.h == 7);
    CHECK(memcmp(l.px, lr.px, 9 * 7 * 3) == 0);
    img_free(&a); img_free(&ar); img_free(&l); img_free(&lr);
}

static void decode_jpeg_close_to_pil(void) {
    Image j, ref;
    CHECK(load_ref("img_src_e.jpg", &j) == 0 && load_ref("img_e_decoded.png", &ref) == 0);
    CHECK(j.w == 48 && j.h == 40);
    size_t nd;
    int m = max_diff(j.px, ref.px, 48 * 40 * 3, &nd);
    /* Two different IDCTs (stb vs libjpeg-turbo) on a 4:4:4 file: a few levels at most. */
    CHECK_MSG(m <= 4, "max diff %d", m);
    img_free(&j); img_free(&ref);
}

static void zero_byte_and_missing_files_name_the_path(void) {
    const char *p = "/tmp/vqa_test_image_empty.jpg";
    write_all(p, "", 0);
    Image im;
    Err e;
    CHECK(img_decode_file(&im, p, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, p);
    CHECK_STR_CONTAINS(e.msg, "0 bytes");
    CHECK(im.px == NULL);
    remove(p);
    CHECK(img_decode_file(&im, "/tmp/vqa_no_such_dir/x.png", &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "/tmp/vqa_no_such_dir/x.png");
    CHECK_STR_CONTAINS(e.msg, "No such file");
}

static void truncated_and_corrupt_png_are_errors(void) {
    size_t n;
    unsigned char *b = (unsigned char *)test_read_file("ref/img_src_a.png", &n);
    CHECK(b != NULL);
    Image im;
    Err e;
    CHECK(img_decode_memory(&im, b, n / 2, "half.png", &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "half.png");
    CHECK_STR_CONTAINS(e.msg, "stb_image says");
    /* Garbage in the compressed stream (after the 8-byte signature + 25-byte IHDR + the
     * IDAT length/type): zlib must reject it. */
    for (size_t i = 60; i < 400 && i < n; i++) b[i] ^= 0x5A;
    CHECK(img_decode_memory(&im, b, n, "garbled.png", &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "garbled.png");
    /* Not an image at all. */
    CHECK(img_decode_memory(&im, (const uint8_t *)"hello, world", 12, "text.jpg", &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "not a readable JPEG or PNG");
    free(b);
}

static void truncated_and_corrupt_jpeg_are_errors(void) {
    size_t n;
    unsigned char *b = (unsigned char *)test_read_file("ref/img_src_e.jpg", &n);
    CHECK(b != NULL);
    Image im;
    Err e;
    CHECK(img_decode_memory(&im, b, n, "whole.jpg", &e) == 0);
    img_free(&im);
    CHECK(img_decode_memory(&im, b, n * 2 / 3, "cut.jpg", &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "cut.jpg");
    CHECK_STR_CONTAINS(e.msg, "truncated JPEG");
    /* Only the header: SOI + a few segments. */
    CHECK(img_decode_memory(&im, b, 200, "head.jpg", &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "head.jpg");
    /* Destroy the quantization / Huffman tables: stb must refuse. */
    unsigned char *c = malloc(n);
    memcpy(c, b, n);
    for (size_t i = 2; i < 180; i++) c[i] = 0xFF;
    CHECK(img_decode_memory(&im, c, n, "corrupt.jpg", &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "corrupt.jpg");
    free(c);
    free(b);
}

typedef struct MemBuf { unsigned char *p; int n; } MemBuf;
static void membuf_write(void *ctx, void *data, int size) {
    MemBuf *m = ctx;
    m->p = realloc(m->p, (size_t)(m->n + size));
    memcpy(m->p + m->n, data, (size_t)size);
    m->n += size;
}

static void one_by_one_image_resizes_to_its_colour(void) {
    uint8_t px[3] = {200, 100, 50};
    MemBuf mb = {NULL, 0};
    CHECK(stbi_write_png_to_func(membuf_write, &mb, 1, 1, 3, px, 3) != 0);
    unsigned char *png = mb.p;
    int len = mb.n;
    CHECK(png != NULL && len > 0);
    Image im;
    Err e;
    CHECK(img_decode_memory(&im, png, (size_t)len, "1x1.png", &e) == 0);
    CHECK(im.w == 1 && im.h == 1);
    uint8_t out[8 * 8 * 3];
    for (int mode = 0; mode < 2; mode++) {
        double box[4];
        img_resize_box(1, 1, 8, (ImgResizeMode)mode, box);
        CHECK(img_resample(im.px, 1, 1, box[0], box[1], box[2], box[3], out, 8, 8, NULL) == 0);
        int ok = 1;
        for (int i = 0; i < 64; i++)
            if (out[3 * i] != 200 || out[3 * i + 1] != 100 || out[3 * i + 2] != 50) ok = 0;
        CHECK(ok);
    }
    img_free(&im);
    free(png);
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static void huge_header_is_refused_before_decoding(void) {
    /* PNG: signature + IHDR(20000 x 20000, 8-bit RGB) + nothing else. 400 Mpixel > 64. */
    uint8_t png[8 + 25];
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    memcpy(png, sig, 8);
    put_be32(png + 8, 13);
    memcpy(png + 12, "IHDR", 4);
    put_be32(png + 16, 20000);
    put_be32(png + 20, 20000);
    png[24] = 8; png[25] = 2; png[26] = 0; png[27] = 0; png[28] = 0;
    put_be32(png + 29, 0); /* CRC: stb does not check it */
    Image im;
    Err e;
    CHECK(img_decode_memory(&im, png, sizeof png, "bomb.png", &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "bomb.png");
    CHECK_STR_CONTAINS(e.msg, "20000 x 20000");
    CHECK_STR_CONTAINS(e.msg, "refused before decoding");
    /* JPEG: SOI + SOF0 (8-bit, 20000 x 20000, 3 components). */
    uint8_t jpg[] = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x4E, 0x20, 0x4E, 0x20, 0x03,
                     0x01, 0x11, 0x00, 0x02, 0x11, 0x00, 0x03, 0x11, 0x00};
    CHECK(img_decode_memory(&im, jpg, sizeof jpg, "bomb.jpg", &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "refused before decoding");
    /* 8000 x 8000 = 61 Mpixel is under the limit: it gets past the header check (and then
     * fails on the missing data, which proves the limit is where the docs say). */
    put_be32(png + 16, 8000);
    put_be32(png + 20, 8000);
    CHECK(img_decode_memory(&im, png, sizeof png, "big.png", &e) == -1);
    CHECK(strstr(e.msg, "refused before decoding") == NULL);
}

static void check_resize(const char *src, const char *ref, double x0, double y0, double x1,
                         double y1, int use_box, int S, ImgResizeMode mode) {
    Image s, r;
    CHECK(load_ref(src, &s) == 0 && load_ref(ref, &r) == 0);
    if (!s.px || !r.px) return;
    double box[4] = {x0, y0, x1, y1};
    if (!use_box) img_resize_box(s.w, s.h, S, mode, box);
    uint8_t *out = malloc((size_t)r.w * r.h * 3);
    CHECK(img_resample(s.px, s.w, s.h, box[0], box[1], box[2], box[3], out, r.w, r.h, NULL) == 0);
    size_t nd;
    int m = max_diff(out, r.px, (size_t)r.w * r.h * 3, &nd);
    /* Same coefficients and fixed point as Pillow: expected bit-exact; allow 1 level. */
    CHECK_MSG(m <= 1, "%s -> %s: max diff %d, %zu bytes differ", src, ref, m, nd);
    if (m || nd) fprintf(stderr, "  %s: max diff %d over %zu bytes\n", ref, m, nd);
    free(out);
    img_free(&s);
    img_free(&r);
}

static void resize_matches_pil_bilinear_antialias(void) {
    check_resize("img_src_a.png", "img_a_direct32.png", 0, 0, 0, 0, 0, 32, IMG_RESIZE_DIRECT);
    check_resize("img_src_a.png", "img_a_crop24.png", 0, 0, 0, 0, 0, 24, IMG_RESIZE_SHORTER_CROP);
    check_resize("img_src_a.png", "img_a_box20x16.png", 10.5, 5.25, 70.0, 50.0, 1, 0, 0);
    check_resize("img_src_b.png", "img_b_direct40.png", 0, 0, 0, 0, 0, 40, IMG_RESIZE_DIRECT);
    check_resize("img_src_c_gray.png", "img_c_crop56.png", 0, 0, 0, 0, 0, 56, IMG_RESIZE_SHORTER_CROP);
    check_resize("img_src_d.png", "img_d_direct7x5.png", 0, 0, 7, 5, 0, 0, IMG_RESIZE_DIRECT);
}

static void shorter_crop_box_follows_torchvision(void) {
    /* 97 x 61 -> Resize(24): 38 x 24 (int(24*97/61) = 38), CenterCrop: left round(7.0) = 7. */
    double b[4];
    img_resize_box(97, 61, 24, IMG_RESIZE_SHORTER_CROP, b);
    CHECK_NEAR(b[0], 7 * 97.0 / 38, 1e-9);
    CHECK_NEAR(b[2], 31 * 97.0 / 38, 1e-9);
    CHECK_NEAR(b[1], 0, 1e-12);
    CHECK_NEAR(b[3], 61, 1e-9);
    /* 640 x 480 -> 298 x 224 -> left = round(37.0) = 37. 641 x 480 -> 298 too. */
    img_resize_box(640, 480, 224, IMG_RESIZE_SHORTER_CROP, b);
    CHECK_NEAR(b[0], 37 * 640.0 / 298, 1e-9);
    /* 100 x 105 -> 20 x 21 at S=20: top = round(0.5) = 0 (Python rounds half to even). */
    img_resize_box(100, 105, 20, IMG_RESIZE_SHORTER_CROP, b);
    CHECK_NEAR(b[1], 0, 1e-12);
    /* 100 x 115 -> 20 x 23: top = round(1.5) = 2. */
    img_resize_box(100, 115, 20, IMG_RESIZE_SHORTER_CROP, b);
    CHECK_NEAR(b[1], 2 * 115.0 / 23, 1e-9);
}

static void normalization_is_imagenet_mean_std_nchw(void) {
    uint8_t px[2 * 3] = {255, 0, 128, 0, 255, 64}; /* 2 x 1 image */
    float out[6];
    img_normalize(px, 2, 1, NULL, out);
    CHECK_NEAR(out[0], (1.0 - 0.485) / 0.229, 1e-5);        /* R, x=0 */
    CHECK_NEAR(out[1], (0.0 - 0.485) / 0.229, 1e-5);        /* R, x=1 */
    CHECK_NEAR(out[2], (0.0 - 0.456) / 0.224, 1e-5);        /* G, x=0 */
    CHECK_NEAR(out[3], (1.0 - 0.456) / 0.224, 1e-5);        /* G, x=1 */
    CHECK_NEAR(out[4], (128 / 255.0 - 0.406) / 0.225, 1e-5); /* B, x=0 */
    CHECK_NEAR(out[5], (64 / 255.0 - 0.406) / 0.225, 1e-5);  /* B, x=1 */
}

static void colour_jitter_matches_hand_computation(void) {
    /* One pixel (102, 153, 204) = (.4, .6, .8). Brightness 1.2 -> (.48, .72, .96);
     * contrast .8 with m = gray = .299*.48 + .587*.72 + .114*.96 = .6756
     *   -> .8 v + .2 m = (.51912, .71112, .90312);
     * saturation 1.1: gray' = .6756 again (one pixel: its gray is the mean)
     *   -> 1.1 v - .1 gray' = (.503472, .714672, .925872). */
    uint8_t px[3] = {102, 153, 204};
    ImgAugDraw d = {0};
    d.brightness = 1.2f; d.contrast = 0.8f; d.saturation = 1.1f;
    float out[3];
    img_normalize(px, 1, 1, &d, out);
    CHECK_NEAR(out[0], (0.503472 - 0.485) / 0.229, 1e-5);
    CHECK_NEAR(out[1], (0.714672 - 0.456) / 0.224, 1e-5);
    CHECK_NEAR(out[2], (0.925872 - 0.406) / 0.225, 1e-5);
}

static void hflip_swaps_left_and_right_in_the_question(void) {
    char out[256];
    size_t n = img_swap_left_right("Is the cup LEFT of the Right plate? leftover left-hand, left2, RiGhT.",
                                   out, sizeof out);
    CHECK(!strcmp(out, "Is the cup RIGHT of the Left plate? leftover right-hand, left2, LeFt."));
    CHECK(n == strlen(out));
    /* Growing "left" -> "right" with a short buffer: truncated, NUL-terminated, full length returned. */
    char small[6];
    n = img_swap_left_right("left left", small, sizeof small);
    CHECK(n == strlen("right right"));
    CHECK(!strcmp(small, "right"));
    CHECK(img_swap_left_right("what is on the left?", out, sizeof out) == 21);
    CHECK(!strcmp(out, "what is on the right?"));
}

static void flip_mirrors_the_image_and_aug_is_seeded_per_sample(void) {
    Image s;
    CHECK(load_ref("img_src_a.png", &s) == 0);
    const int S = 16;
    void *scratch = malloc(img_pipeline_scratch_size(s.w, s.h, S));
    uint8_t r0[S * S * 3], r1[S * S * 3];
    float o0[3 * S * S], o1[3 * S * S];
    ImgAugDraw none = {0}, fl = {0};
    none.brightness = none.contrast = none.saturation = 1;
    fl = none;
    fl.flip = 1;
    CHECK(img_pipeline(s.px, s.w, s.h, S, IMG_RESIZE_SHORTER_CROP, &none, scratch, r0, o0) == 0);
    CHECK(img_pipeline(s.px, s.w, s.h, S, IMG_RESIZE_SHORTER_CROP, &fl, scratch, r1, o1) == 0);
    int mirrored = 1;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                if (o0[(c * S + y) * S + x] != o1[(c * S + y) * S + (S - 1 - x)]) mirrored = 0;
    CHECK(mirrored);

    ImgAugment a = {1, 1, 0.2f};
    ImgAugDraw d1, d2, d3;
    img_aug_draw(&a, img_sample_seed(42, 3, 17), 640, 480, &d1);
    img_aug_draw(&a, img_sample_seed(42, 3, 17), 640, 480, &d2);
    img_aug_draw(&a, img_sample_seed(42, 4, 17), 640, 480, &d3);
    CHECK(memcmp(&d1, &d2, sizeof d1) == 0);
    CHECK(memcmp(&d1, &d3, sizeof d1) != 0);
    /* Over many samples: boxes inside the image with area fraction in [0.6, 1] (up to
     * rounding) and ratio in [3/4, 4/3]; flips about half; jitter factors in [0.8, 1.2]. */
    int flips = 0, ok = 1;
    for (int i = 0; i < 2000; i++) {
        ImgAugDraw d;
        img_aug_draw(&a, img_sample_seed(7, 0, i), 640, 480, &d);
        double w = d.box[2] - d.box[0], h = d.box[3] - d.box[1];
        double frac = w * h / (640.0 * 480.0), ratio = w / h;
        if (!d.has_box || d.box[0] < 0 || d.box[1] < 0 || d.box[2] > 640 || d.box[3] > 480) ok = 0;
        if (frac < 0.59 || frac > 1.0 || ratio < 0.74 || ratio > 1.34) ok = 0;
        if (d.brightness < 0.8f || d.brightness > 1.2f || d.saturation < 0.8f || d.contrast > 1.2f) ok = 0;
        flips += d.flip;
    }
    CHECK(ok);
    CHECK_MSG(flips > 900 && flips < 1100, "flips %d of 2000", flips);
    free(scratch);
    img_free(&s);
}

int main(void) {
    RUN(decode_png_rgb_gives_size_and_pixels);
    RUN(decode_gray_png_expands_to_rgb);
    RUN(decode_rgba_and_gray_alpha_drop_alpha);
    RUN(decode_jpeg_close_to_pil);
    RUN(zero_byte_and_missing_files_name_the_path);
    RUN(truncated_and_corrupt_png_are_errors);
    RUN(truncated_and_corrupt_jpeg_are_errors);
    RUN(one_by_one_image_resizes_to_its_colour);
    RUN(huge_header_is_refused_before_decoding);
    RUN(resize_matches_pil_bilinear_antialias);
    RUN(shorter_crop_box_follows_torchvision);
    RUN(normalization_is_imagenet_mean_std_nchw);
    RUN(colour_jitter_matches_hand_computation);
    RUN(hflip_swaps_left_and_right_in_the_question);
    RUN(flip_mirrors_the_image_and_aug_is_seeded_per_sample);
    return test_summary();
}
