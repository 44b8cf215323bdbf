/* test_tensorboard.c: CRC32C against published vectors, the hand-rolled Event protobuf
 * against bytes derived by hand (and confirmed with the protobuf library's
 * SerializeToString), and the TFRecord framing of a written file re-checked here.
 * `test_tensorboard --write DIR` writes the fixed run that test_tensorboard_read.sh reads
 * back with the real TensorBoard package. */
// TEST_LIBS: vqa_io
// TEST_LABELS: unit
#include "testlib.h"

#include <dirent.h>
#include <unistd.h>

#include "io/tensorboard.h"

static void crc32c_matches_known_vectors(void) {
    CHECK(tb_crc32c("123456789", 9) == 0xE3069283u);
    CHECK(tb_crc32c("", 0) == 0u);
    uint8_t z[32] = {0}, ff[32], inc[32];
    for (int i = 0; i < 32; i++) {
        ff[i] = 0xff;
        inc[i] = (uint8_t)i;
    }
    /* RFC 3720 (iSCSI) appendix B.4 */
    CHECK(tb_crc32c(z, 32) == 0x8A9136AAu);
    CHECK(tb_crc32c(ff, 32) == 0x62A8AB43u);
    CHECK(tb_crc32c(inc, 32) == 0x46DD794Eu);
    CHECK(tb_crc32c_extend(tb_crc32c("12345", 5), "6789", 4) == 0xE3069283u);
}

static void masked_crc_matches_tensorflow(void) {
    /* values from tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c */
    CHECK(tb_masked_crc(tb_crc32c("", 0)) == 0xa282ead8u);
    CHECK(tb_masked_crc(tb_crc32c("123456789", 9)) == 0xc78ab0e5u);
}

static void event_encoding_matches_hand_derived_bytes(void) {
    /* Event{wall_time: 1.5, step: 3, summary{value{tag: "a", simple_value: 2.0}}}:
     * 09 <1.5 as LE double> | 10 03 | 2a 0a ( 0a 08 ( 0a 01 'a' | 15 <2.0f LE> ) ) */
    static const uint8_t want[] = {0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0x10, 0x03, 0x2a, 0x0a, 0x0a,
                                   0x08, 0x0a, 0x01, 0x61, 0x15, 0, 0, 0, 0x40};
    const char *tags[1] = {"a"};
    float vals[1] = {2.0f};
    uint8_t buf[64];
    size_t n = tb_encode_event(buf, sizeof buf, 1.5, 3, NULL, 1, tags, vals);
    CHECK(n == sizeof want);
    CHECK(n == sizeof want && memcmp(buf, want, n) == 0);
    CHECK(tb_encode_event(NULL, 0, 1.5, 3, NULL, 1, tags, vals) == n); /* sizing pass */

    /* Event{wall_time: 1.5, step: -2, file_version: "brain.Event:2"}: negative int64 = 10-byte varint */
    static const uint8_t want2[] = {0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0x10, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff,
                                    0xff, 0xff, 0xff, 0x01, 0x1a, 0x0d, 'b', 'r', 'a', 'i', 'n', '.', 'E', 'v',
                                    'e', 'n', 't', ':', '2'};
    n = tb_encode_event(buf, sizeof buf, 1.5, -2, "brain.Event:2", 0, NULL, NULL);
    CHECK(n == sizeof want2 && memcmp(buf, want2, n) == 0);
}

static void long_tags_use_multibyte_lengths(void) {
    char tag[201];
    memset(tag, 'x', 200);
    tag[200] = '\0';
    const char *tags[2] = {tag, "b"};
    float vals[2] = {1, 2};
    uint8_t buf[512];
    size_t n = tb_encode_event(buf, sizeof buf, 0.0, 1, NULL, 2, tags, vals);
    /* Value1 = 0a c8 01 <200> 15 <4> = 208 bytes; Value2 = 8; Summary = 0a d0 01 <208> 0a 08 <8> = 221 */
    CHECK(n == 9 + 2 + 1 + 2 + 221);
    CHECK(buf[11] == 0x2a && buf[12] == 0xdd && buf[13] == 0x01); /* 221 = 0xdd 0x01 as varint */
    CHECK(buf[14] == 0x0a && buf[15] == 0xd0 && buf[16] == 0x01); /* 208 */
    CHECK(buf[17] == 0x0a && buf[18] == 0xc8 && buf[19] == 0x01); /* 200 */
}

/* Parses every TFRecord, checking both CRCs; returns the record count (-1 on a bad frame). */
static int check_records(const char *path, int *saw_version) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int n = 0;
    *saw_version = 0;
    uint8_t head[12];
    while (fread(head, 1, 12, f) == 12) {
        uint64_t len;
        uint32_t c1, c2;
        memcpy(&len, head, 8);
        memcpy(&c1, head + 8, 4);
        if (c1 != tb_masked_crc(tb_crc32c(head, 8)) || len > 1 << 20) { fclose(f); return -1; }
        uint8_t *d = malloc(len);
        if (fread(d, 1, len, f) != len || fread(&c2, 1, 4, f) != 4 || c2 != tb_masked_crc(tb_crc32c(d, len))) {
            free(d);
            fclose(f);
            return -1;
        }
        if (n == 0 && len > 13 && memcmp(d + len - 13, "brain.Event:2", 13) == 0) *saw_version = 1;
        free(d);
        n++;
    }
    fclose(f);
    return n;
}

static int write_fixed_run(const char *dir, char *path_out, size_t cap) {
    TbWriter *w = NULL;
    Err e = {{0}};
    if (tb_open(&w, dir, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    const char *tags[2] = {"train/loss", "train/acc"};
    for (int s = 0; s < 10; s++) {
        float v[2] = {1.0f / (float)(s + 1), 0.1f * (float)s};
        if (tb_add_scalars(w, s * 10, 2, tags, v, &e)) { fprintf(stderr, "%s\n", e.msg); return -1; }
    }
    if (tb_add_scalar(w, "val/vqa_acc", 90, 61.25f, &e)) { fprintf(stderr, "%s\n", e.msg); return -1; }
    snprintf(path_out, cap, "%s", tb_path(w));
    tb_close(w);
    return 0;
}

static void written_file_has_valid_frames_and_version_first(void) {
    char dir[128], path[512];
    snprintf(dir, sizeof dir, "/tmp/vqa_test_tb_%ld", (long)getpid());
    CHECK(write_fixed_run(dir, path, sizeof path) == 0);
    CHECK_STR_CONTAINS(path, "/events.out.tfevents.");
    int ver = 0;
    CHECK(check_records(path, &ver) == 12); /* version + 10 steps + 1 */
    CHECK(ver);
    /* a second writer in the same second gets its own file */
    char path2[512];
    CHECK(write_fixed_run(dir, path2, sizeof path2) == 0);
    CHECK(strcmp(path, path2) != 0);
    unlink(path);
    unlink(path2);
    rmdir(dir);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--write") == 0) {
        char path[512];
        if (write_fixed_run(argv[2], path, sizeof path)) return 1;
        printf("%s\n", path);
        return 0;
    }
    RUN(crc32c_matches_known_vectors);
    RUN(masked_crc_matches_tensorflow);
    RUN(event_encoding_matches_hand_derived_bytes);
    RUN(long_tags_use_multibyte_lengths);
    RUN(written_file_has_valid_frames_and_version_first);
    return test_summary();
}
