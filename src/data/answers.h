/* answers.h: answers as the official VQA evaluation sees them, and the answer vocabulary.
 *
 * Normalization follows the official tool (March 2021 fix) exactly: see
 * shared/VQA_FORMATS.md §1. The vocabulary and soft targets follow §3. */
#ifndef VQA_ANSWERS_H
#define VQA_ANSWERS_H

#include <stddef.h>

#include "data/dataset.h"
#include "util/err.h"

/* Step 1 of the official tool: '\n' and '\t' -> ' ', then strip both ends (Python
 * whitespace semantics). Writes a NUL-terminated string into out (cap bytes). */
void ans_clean(const char *in, char *out, size_t cap);
/* Steps 3 + 4 (punctuation, then digits/articles/contractions), applied to an already
 * cleaned string. This is what both the metric (when humans disagree) and the answer
 * vocabulary use. */
void ans_normalize(const char *in, char *out, size_t cap);
/* ans_clean then ans_normalize: the form the vocabulary and the soft targets use. */
void ans_canonical(const char *in, char *out, size_t cap);
/* Number of keys of the official contraction map (120). */
int ans_contraction_count(void);
/* Longest answer the vocabulary functions handle (longer ones are truncated). */
#define ANS_MAX_LEN 512

/* The sample's vocabulary candidate, canonical form, into out: multiple_choice_answer
 * when present, else the most common canonical human answer (ties: the one given
 * first). Returns 0, or -1 when the sample has neither (out = ""). */
int ans_candidate(const VqaSample *s, char *out, size_t cap);

/* Soft score of an answer given by k of the 10 humans: 0, .3, .6, .9, 1 for k = 0..>=4. */
float ans_soft_score(int k);

typedef struct AnswerVocab AnswerVocab;

/* Candidates: normalized multiple_choice_answer (VizWiz: most common normalized human
 * answer) of every sample of the given splits; keep those with count >= min_count,
 * at most max_size (most frequent first, ties broken by the answer string; max_size <= 0:
 * no limit). An empty candidate (e.g. "the", which normalizes to "") is never a class. */
int ans_vocab_build(AnswerVocab **out, const VqaDataset *const *splits, int n_splits,
                    int min_count, int max_size, Err *err);
/* One answer per line, index = line number. Written atomically (temp + rename). Loading
 * rejects empty lines and duplicates (with their line numbers); a trailing '\r' is
 * dropped. */
int ans_vocab_save(const AnswerVocab *v, const char *path, Err *err);
int ans_vocab_load(AnswerVocab **out, const char *path, Err *err);
/* From an in-memory list (e.g. a checkpoint's stored vocabulary). */
int ans_vocab_from_list(AnswerVocab **out, const char *const *answers, int n, Err *err);
void ans_vocab_free(AnswerVocab *v);
int ans_vocab_size(const AnswerVocab *v);
const char *ans_vocab_answer(const AnswerVocab *v, int index);
int ans_vocab_find(const AnswerVocab *v, const char *normalized); /* -1 if absent */

/* target[A] = soft score of each class from the normalized human answers of s
 * (out-of-vocabulary answers dropped; no answers -> all zero). */
void ans_soft_targets(const AnswerVocab *v, const VqaSample *s, float *target);

#endif
