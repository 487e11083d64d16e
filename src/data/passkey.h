/* passkey.h — synthetic retrieval documents: a pass key early in a haystack of
 * filler sentences and the question for it at the end (needle in a haystack),
 * the data that teaches a model to retrieve over a context length.
 *
 * Every document is exactly len tokens:
 *   BOS, filler sentences with " The pass key is NNNNN. Remember it." (NNNNN: five
 *   different digits, herd_passkey_key) between
 *   two of them (at a uniformly drawn depth), " What is the pass key? The pass
 *   key is", " NNNNN.", EOT
 * so that a shard of them, read by the loader in windows of len tokens from an
 * offset that is a multiple of len, gives one whole document per sequence
 * (len must divide the loader's block, or be a multiple of it). The texts are
 * those of slurm/recipe_passkey.sh, which evaluates retrieval on prompts made
 * the same way; the filler is cut at its start to make the length exact.
 * Keys and depths are a function of (seed, document index).
 */
#ifndef HERD_PASSKEY_H
#define HERD_PASSKEY_H

#include <stdint.h>
#include "src/data/tokenizer.h"

/* The shortest document length: the question, the fact and a filler sentence. */
#define HERD_PASSKEY_MIN_LEN 64

/* The i-th five-digit key of distinct digits (i mod 27216), first digit 1-9. */
unsigned herd_passkey_key(uint64_t i);

/* Append n_docs documents of len tokens to out. -1 with a message if len is
 * out of range [HERD_PASSKEY_MIN_LEN, 1 << 20] or memory runs out. */
int herd_passkey_docs(const herd_tokenizer *t, int len, int64_t n_docs, uint64_t seed, herd_ids *out);

#endif
