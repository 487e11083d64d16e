/* samples.h — what the sampling commands of a round (rejection sampling,
 * annotation, evaluation) share: the prompt of a conversation, K samples of a
 * chunk of prompts in one batch, the reward of a sample under a reward model
 * of any TP width, and the JSON of their output lines. */
#ifndef HERD_SAMPLES_H
#define HERD_SAMPLES_H

#include <stdio.h>
#include "src/data/chat.h"
#include "src/model/generate.h"
#include "src/post/post_common.h"

/* The number of messages of c before its last assistant turn(s). */
int herd_post_prompt_len(const herd_chat *c);

/* Generate for the prompts [first, first + n) of chats, k samples each, in
 * one batch: texts[(i - first) * k + s] (malloc'ed), prompts[i] the encoded
 * prompt, and (samples != NULL) samples[b] the sampled ids as a response
 * (content, then the eot, added if the sample ran out). */
int herd_post_sample_chunk(const herd_post_env *e, herd_model *m, const herd_chat *chats, int first,
                           int n, int k, const herd_gen_opts *o, char **texts,
                           herd_chat_tokens *prompts, herd_chat_tokens *samples);

/* The first n messages of c as a JSON array; with open_end the ']' is left
 * to the caller. */
void herd_post_write_messages(FILE *f, const herd_chat *c, int n, int open_end);

/* s without white space at both ends: *b, *n. */
void herd_post_trim(const char *s, const char **b, size_t *n);

#endif
