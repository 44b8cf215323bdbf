/* tokenizer.h: BERT WordPiece (uncased), token for token as Hugging Face BertTokenizer:
 * clean (drop NUL, U+FFFD, control chars; whitespace -> space), spaces around CJK
 * ideographs, whitespace split, lower-case + NFD + strip accents (Mn), split punctuation,
 * greedy longest-match-first WordPiece with "##" continuations, [UNK] for words > 100
 * chars or with no match. */
#ifndef VQA_TOKENIZER_H
#define VQA_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct Tokenizer Tokenizer;

/* Reads vocab.txt (id = 0-based line number; lines end at \n, \r\n or \r as in Python).
 * Errors: missing file, empty vocab, duplicate tokens (named with both line numbers),
 * missing [PAD]/[UNK]/[CLS]/[SEP], empty line, line over 1024 bytes, invalid UTF-8 or NUL
 * (line and column), a byte-order mark. */
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
 * total count (may exceed cap), or -1 if scratch memory for a very long text could not be
 * allocated. Invalid UTF-8 bytes are treated as U+FFFD (dropped). The text is plain text:
 * a literal "[SEP]" is tokenized as '[', 'sep', ']' (HF with split_special_tokens=True).
 * Thread-safe: any number of threads may tokenize with one Tokenizer at once. */
int tok_tokenize(const Tokenizer *t, const char *text, int32_t *ids, int cap);

/* Model input: [CLS] ids... [SEP], truncated so that the whole fits max_len, padded with
 * [PAD]; mask 1 for real tokens (mask may be NULL). Returns the number of real tokens
 * (2..max_len), or -1 if max_len < 2 or tok_tokenize failed. */
int tok_encode(const Tokenizer *t, const char *text, int max_len, int32_t *ids, float *mask);

/* The same for text of len bytes that may hold NUL bytes (e.g. a JSON "\u0000"); NUL is
 * dropped by cleaning, so "a\0b" tokenizes as "ab", as in HF. */
int tok_tokenize_n(const Tokenizer *t, const char *text, size_t len, int32_t *ids, int cap);
int tok_encode_n(const Tokenizer *t, const char *text, size_t len, int max_len, int32_t *ids,
                 float *mask);

#endif
