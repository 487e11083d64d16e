/* post_common.h — what every post-training command opens: the resolved
 * config (model shape, optimizer), the tokenizer, and a one-rank CPU model
 * with weights from a safetensors file (or the seed's init). */
#ifndef HERD_POST_COMMON_H
#define HERD_POST_COMMON_H

#include <stdio.h>
#include "src/config/config.h"
#include "src/model/model.h"
#include "src/data/tokenizer.h"

typedef struct {
    herd_config     cfg;
    herd_tokenizer *tok;
    int             n_regular;
    int             eot_id;     /* <|eot_id|> */
} herd_post_env;

/* Resolve CONFIG (+ --set list) and load the tokenizer; -1 with a message
 * when model.vocab_size differs from the tokenizer's vocabulary. */
int  herd_post_env_open(herd_post_env *e, const char *config, int n_sets, char *const *sets,
                        const char *tokenizer);
void herd_post_env_close(herd_post_env *e);

/* A CPU model of the config's shape; weights from `weights` (NULL: the init
 * of train.seed). */
int herd_post_model_open(herd_model *m, const herd_post_env *e, const char *weights);

/* Write s[0..n) as a JSON string (quotes and escapes; a byte that is not part of
 * a UTF-8 character is written as U+FFFD, so the file stays JSON). */
void herd_post_json_str(FILE *f, const char *s, size_t n);

/* The text of generated ids up to (not including) the eot; malloc'ed. */
char *herd_post_decode(const herd_post_env *e, const uint32_t *ids, int n);

#endif
