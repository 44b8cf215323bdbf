/* vqa_synth.c: writes the synthetic shapes dataset in VQA v2 format (see data/synth.h).
 *   vqa_synth --out DIR [--train N] [--val N] [--size PX] [--min-objects K] [--max-objects K]
 *             [--min-radius PX] [--max-radius PX] [--seed S] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/synth.h"

static void usage(FILE *f) {
    fprintf(f, "usage: vqa_synth --out DIR [--train N] [--val N] [--size PX] [--min-objects K] [--max-objects K]\n"
               "                 [--min-radius PX] [--max-radius PX] [--seed S]\n"
               "  writes DIR/{train,val}_{questions,annotations}.json (VQA v2 format),\n"
               "  DIR/images/{train,val}/COCO_synth_<split>_%%012d.png and DIR/vocab.txt\n"
               "  defaults: --train 8000 --val 2000 --size 64 --min-objects 2 --max-objects 6 --seed 42\n"
               "  (N = questions; objects per scene uniform in [min, max], at most 6; object radius\n"
               "  uniform in [min, max] pixels, default size*6/64 .. size*9/64)\n");
}

static int parse_int(const char *flag, const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "vqa_synth: %s expects an integer in [%lld, %lld], got \"%s\"\n", flag, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    SynthOpts o = {NULL, 8000, 2000, 64, 42, 2, SYNTH_MAX_OBJECTS, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "vqa_synth: %s needs a value\n", a);
            usage(stderr);
            return 1;
        }
        const char *v = argv[++i];
        long long x;
        if (!strcmp(a, "--out")) o.out_dir = v;
        else if (!strcmp(a, "--train")) { if (parse_int(a, v, 0, 100000000, &x)) return 1; o.n_train = (int)x; }
        else if (!strcmp(a, "--val")) { if (parse_int(a, v, 0, 100000000, &x)) return 1; o.n_val = (int)x; }
        else if (!strcmp(a, "--size")) { if (parse_int(a, v, 16, 1024, &x)) return 1; o.size = (int)x; }
        else if (!strcmp(a, "--min-objects")) { if (parse_int(a, v, 1, SYNTH_MAX_OBJECTS, &x)) return 1; o.min_objects = (int)x; }
        else if (!strcmp(a, "--max-objects")) { if (parse_int(a, v, 1, SYNTH_MAX_OBJECTS, &x)) return 1; o.max_objects = (int)x; }
        else if (!strcmp(a, "--min-radius")) { if (parse_int(a, v, 2, 256, &x)) return 1; o.min_radius = (int)x; }
        else if (!strcmp(a, "--max-radius")) { if (parse_int(a, v, 2, 256, &x)) return 1; o.max_radius = (int)x; }
        else if (!strcmp(a, "--seed")) { if (parse_int(a, v, 0, 0x7fffffffffffffffll, &x)) return 1; o.seed = (uint64_t)x; }
        else {
            fprintf(stderr, "vqa_synth: unknown option %s\n", a);
            usage(stderr);
            return 1;
        }
    }
    if (!o.out_dir) {
        fprintf(stderr, "vqa_synth: --out DIR is required\n");
        usage(stderr);
        return 1;
    }
    SynthStats st;
    Err err;
    if (synth_write(&o, &st, &err) != 0) {
        fprintf(stderr, "vqa_synth: %s\n", err.msg);
        return 1;
    }
    printf("vqa_synth: %lld questions, %lld images (%dx%d) in %s, %.2f s\n", (long long)st.questions,
           (long long)st.images, o.size, o.size, o.out_dir, st.seconds);
    return 0;
}
