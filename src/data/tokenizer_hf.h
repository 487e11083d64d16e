/* tokenizer_hf.h — a tiktoken-format vocabulary as Hugging Face tokenizer files
 * (tokenizer.json, tokenizer_config.json), the way transformers converts Llama 3's
 * tokenizer.model (TikTokenConverter): byte-level BPE whose vocabulary is the ranks
 * (bytes spelled through GPT-2's byte-to-unicode map), whose merges are every split
 * (left, right) of a token into two tokens, in the order of the token's rank then
 * (rank left, rank right), with "ignore_merges" (a piece that is one token is taken
 * whole, as tiktoken does), the Llama 3 pre-split pattern (HERD_TOK_PATTERN), the
 * special tokens as added tokens and <|begin_of_text|> prepended on encode. */
#ifndef HERD_TOKENIZER_HF_H
#define HERD_TOKENIZER_HF_H

#include "src/data/tokenizer.h"

/* Write dir/tokenizer.json and dir/tokenizer_config.json (crash-safe each).
 * 0 or -1 with a message naming the file. */
int herd_tokenizer_write_hf(const herd_tokenizer *t, const char *dir);

#endif
