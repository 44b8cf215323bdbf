/* tokenizer.h: BERT WordPiece (uncased), token for token as Hugging Face BertTokenizer:
 * clean (drop NUL, U+FFFD, control chars; whitespace -> space), spaces around CJK
 * ideographs, whitespace split, lower-case + NFD + strip accents (Mn), split punctuation,
 * greedy longest-match-first WordPiece with "##" continuations, [UNK] for words > 100
 * chars or with no match. */
#ifndef VQA_TOKENIZER_H
#define VQA_TOKENIZER_H

#include <stdint.h>

#include "util/err.h"

typedef struct Tokenizer Tokenizer;

/* Reads vocab.txt (id = 0-based line number). Errors: missing file, empty vocab,
 * duplicate tokens (named with both line numbers), missing [PAD]/[UNK]/[CLS]/[SEP]. */
int tok_load(Tokenizer **out, const char *vocab_path, Err *err);
void tok_free(Tokenizer *t);
int tok_vocab_size(const Tokenizer *t);
int tok_id(const Tokenizer *t, const char *token); /* -1 if absent */
const char *tok_token(const Tokenizer *t, int id);
int tok_pad_id(const Tokenizer *t);
int tok_cls_id(const Tokenizer *t);
int tok_sep_id(const Tokenizer *t);
int tok_unk_id(const Tokenizer *t);

/* WordPiece ids of text without special tokens; writes at most cap ids, returns the
 * total count (may exceed cap). Invalid UTF-8 bytes are treated as U+FFFD (dropped). */
int tok_tokenize(const Tokenizer *t, const char *text, int32_t *ids, int cap);

/* Model input: [CLS] ids... [SEP], truncated so that the whole fits max_len, padded with
 * [PAD]; mask 1 for real tokens. Returns the number of real tokens. */
int tok_encode(const Tokenizer *t, const char *text, int max_len, int32_t *ids, float *mask);

#endif
