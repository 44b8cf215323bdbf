/* synth_sets.h: for tests only — the --set overrides that point configs/demo.yaml at a
 * synthetic dataset under a test's temporary folder (generated there on first use). */
#ifndef VQA_TEST_SYNTH_SETS_H
#define VQA_TEST_SYNTH_SETS_H

#include <stdio.h>

#define SYNTH_N_SETS 4

/* Writes the SYNTH_N_SETS settings (data.synth.dir, data.train, data.val, the vocabulary)
 * for the dataset in dir/synth into s[0..3]. */
static void synth_sets(char s[][1024], const char *dir) {
    snprintf(s[0], 1024, "data.synth.dir=%s/synth", dir);
    snprintf(s[1], 1024, "data.train={questions: %s/synth/train_questions.json, annotations: "
             "%s/synth/train_annotations.json, images: %s/synth/images/train}", dir, dir, dir);
    snprintf(s[2], 1024, "data.val={questions: %s/synth/val_questions.json, annotations: "
             "%s/synth/val_annotations.json, images: %s/synth/images/val}", dir, dir, dir);
    snprintf(s[3], 1024, "model.text_encoder.vocab=%s/synth/vocab.txt", dir);
}

#endif
