/* generate.h — sampling from a model with a KV cache: temperature, top-p
 * (nucleus), batched; and the same without the cache (every token recomputes
 * the whole prefix through herd_model_forward), the reference the cache is
 * tested against.
 *
 * The cached path runs on the CPU backend: the prompts are prefilled
 * together, then each step feeds one new token per unfinished sequence, each
 * at its own position. A model created with a TP group (m->tp) generates
 * tensor-parallel: every rank of the group calls herd_generate with the same
 * prompts; each holds the KV cache of its own KV heads ([L, B, S, KVl*hd]),
 * the row-parallel projections are all-reduced, and the vocabulary slices of
 * the logits are all-gathered, so every rank samples the same tokens. Pipeline
 * and context parallelism are refused (a message, -1).
 */
#ifndef HERD_GENERATE_H
#define HERD_GENERATE_H

#include <stdint.h>
#include "src/model/model.h"

typedef struct {
    int      max_new;      /* tokens to generate per sequence (>= 1) */
    double   temperature;  /* <= 0: greedy (argmax) */
    double   top_p;        /* keep the smallest set of tokens with probability >= top_p; 1: all */
    uint64_t seed;         /* sample i of sequence b uses the counter (seed, index0 + b, i) */
    int      stop_id;      /* a sequence ends after emitting it; -1: none */
    int      use_cache;    /* 1: KV cache; 0: recompute the prefix (reference) */
    uint64_t index0;       /* sequence b samples with the counter (seed, index0 + b, i): a
                              data-parallel share of a prompt list keeps the counters of
                              the whole list's run */
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
