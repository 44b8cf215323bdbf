/* synth.h: a synthetic VQA dataset in exact VQA v2 format, so the demo trains and
 * evaluates with nothing downloaded (vqa_synth).
 *
 * Scenes: 2-6 non-overlapping flat shapes (circle, square, triangle) in 6 saturated
 * colours on a dark background, drawn without antialiasing (every pixel is exactly a
 * palette colour, which lets tests read scenes back from the PNGs). Each image gets 3-5
 * template questions whose answer is never ambiguous:
 *   colour    "what color is the circle?"               (only if exactly one circle)
 *   shape     "what shape is the red object?"           (only if exactly one red object)
 *   count     "how many squares are there?" / "how many red shapes are there?"  (0-6)
 *   existence "is there a blue triangle?"               (yes / no, balanced)
 *   position  "is the red circle left of the green square?" (both unique by colour +
 *             shape, centres at least size/6 apart horizontally; "left of" or "right of")
 * Ten annotators per question: each gives the true answer except with a per-question
 * error rate drawn in [0, 0.25], when they give a plausible wrong one (another colour,
 * shape, count +-1, the other yes/no). Everything follows from the seed. */
#ifndef VQA_SYNTH_H
#define VQA_SYNTH_H

#include <stdint.h>

#include "util/err.h"

#define SYNTH_MAX_OBJECTS 6
#define SYNTH_N_COLORS 6
#define SYNTH_N_SHAPES 3

typedef struct SynthObject {
    int shape;   /* 0 circle, 1 square, 2 triangle */
    int color;   /* index into the palette */
    int cx, cy;  /* centre, pixels */
    int r;       /* half-size, pixels */
} SynthObject;

typedef struct SynthScene {
    int size;
    int n;
    SynthObject o[SYNTH_MAX_OBJECTS];
} SynthScene;

typedef struct SynthQA {
    char question[128];
    char answer[16];
    const char *question_type; /* VQA-style prefix: "what color is the", "how many", ... */
    const char *answer_type;   /* "yes/no" | "number" | "other" */
    char answers[10][16];      /* the 10 annotators */
    char mc_answer[16];        /* most common of the 10 (ties: the true answer) */
} SynthQA;

const char *synth_color_name(int c);
const char *synth_shape_name(int s);
void synth_color_rgb(int c, uint8_t rgb[3]);
void synth_background_rgb(uint8_t rgb[3]);

void synth_scene(uint64_t seed, int size, int min_objects, int max_objects, int min_radius, int max_radius,
                 SynthScene *s);
/* px: [size, size, 3] RGB */
void synth_render(const SynthScene *s, uint8_t *px);
/* Up to max questions for the scene (3-5 when max allows); returns how many. */
int synth_questions(const SynthScene *s, uint64_t seed, SynthQA *out, int max);

typedef struct SynthOpts {
    const char *out_dir;
    int n_train, n_val;   /* questions per split */
    int size;             /* image side in pixels (default 64) */
    uint64_t seed;
    int min_objects, max_objects; /* objects per scene, uniform in [min, max] (1..SYNTH_MAX_OBJECTS;
                                   * 0, 0 = the default 2..6). Fewer objects = easier scenes. */
    int min_radius, max_radius;   /* object half-size in pixels, uniform in [min, max]; 0, 0 = the
                                   * default size*6/64 .. size*9/64 (6..9 at 64 px). Larger objects
                                   * keep their shape through a ResNet stem's 4x downsampling. */
} SynthOpts;

typedef struct SynthStats {
    int64_t questions, images;
    double seconds;
} SynthStats;

/* Writes out_dir/{train,val}_{questions,annotations}.json, out_dir/images/{train,val}/
 * COCO_synth_<split>_%012d.png and out_dir/vocab.txt. */
int synth_write(const SynthOpts *o, SynthStats *st, Err *err);

#endif
