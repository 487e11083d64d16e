/* generate.h — sampling from a model with a KV cache: temperature, top-p
 * (nucleus), batched; and the same without the cache (every token recomputes
 * the whole prefix through herd_model_forward), the reference the cache is
 * tested against.
 *
 * The cached path runs on the CPU backend, one model replica (tp 1): the
 * prompts are prefilled together, then each step feeds one new token per
 * unfinished sequence, each at its own position.
 */
#ifndef HERD_GENERATE_H
#define HERD_GENERATE_H

#include <stdint.h>
#include "src/model/model.h"

typedef struct {
    int      max_new;      /* tokens to generate per sequence (>= 1) */
    double   temperature;  /* <= 0: greedy (argmax) */
    double   top_p;        /* keep the smallest set of tokens with probability >= top_p; 1: all */
    uint64_t seed;         /* sample i of sequence b uses the counter (seed, b, i) */
    int      stop_id;      /* a sequence ends after emitting it; -1: none */
    int      use_cache;    /* 1: KV cache; 0: recompute the prefix (reference) */
} herd_gen_opts;

/* Continue B prompts (prompt_len[b] >= 1 tokens each). out[b] (malloc'ed)
 * gets the generated ids, out_len[b] their count (the stop token included).
 * -1 with a message when prompt + max_new exceeds model.max_seq_len or a
 * token is outside the vocabulary. */
int herd_generate(herd_model *m, const uint32_t *const *prompts, const int *prompt_len, int B,
                  const herd_gen_opts *o, uint32_t **out, int *out_len);

/* Pick the next token from logits[V] (see herd_gen_opts); exposed for tests. */
int herd_sample(const float *logits, int V, double temperature, double top_p, double u);

#endif
