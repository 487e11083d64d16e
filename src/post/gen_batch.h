/* gen_batch.h — herd generate's batch mode on the generation layout
 * (src/post/gen_layout.h): every prompt (user messages given as text, and
 * the prompts of a conversations file) is encoded on every rank; the replicas
 * take contiguous shares, decode them in batches through the KV cache
 * (tensor-parallel within a replica), and world rank 0 prints the responses
 * in prompt order. Sequence i samples with the counter (seed, i, step)
 * whatever its replica or batch, so any layout prints what one process does.
 */
#ifndef HERD_GEN_BATCH_H
#define HERD_GEN_BATCH_H

#include <stdio.h>
#include "src/model/generate.h"
#include "src/post/gen_layout.h"

typedef struct {
    char *const *texts;        /* user messages (printed as plain lines) */
    int          n_texts;
    int          raw;          /* texts as they are after <|begin_of_text|>, no chat format */
    const char  *prompts_file; /* conversations (SFT format; printed as {"index", "response"}) */
    int          batch;        /* sequences decoded together; 0: a replica's whole share */
    int          timing;       /* 1: rank 0 prints the decoding rate to stderr */
} herd_gen_batch_args;

/* Generate and print to out (on world rank 0). 0, or -1 with a message. */
int herd_post_generate_batch(const herd_post_env *e, const herd_gen_layout *g, herd_model *m,
                             const herd_gen_batch_args *a, const herd_gen_opts *o, FILE *out);

/* One user message as a prompt: the chat format around it, or (raw) the
 * text as is after <|begin_of_text|>. */
int herd_post_encode_user(const herd_post_env *e, const char *text, int raw, herd_chat_tokens *out);

#endif
