/* sampling.h — the sampling commands of a post-training round, on the
 * generation layout of src/post/gen_layout.h (data-parallel replicas of a
 * tensor-parallel model):
 *
 *   rejection sampling  K samples per prompt, scored by the reward model on
 *                       the same ranks; the best kept as SFT data, best vs
 *                       worst as a preference pair (rejection.c)
 *   annotation          K samples per question, pairs (reference vs a wrong
 *                       sample) on the model's own samples (annotate.c)
 *   evaluation          greedy exact-answer accuracy (answer_eval.c)
 *
 * The prompts go in chunks of the single-process run (the chunk a prompt falls
 * in, and so its sampling counters, depend on its index alone); each replica
 * takes a contiguous run of chunks and world rank 0 writes the outputs in
 * prompt order: any layout writes the same bytes as one process.
 */
#ifndef HERD_SAMPLING_H
#define HERD_SAMPLING_H

#include <stdint.h>
#include "src/data/chat.h"
#include "src/post/gen_layout.h"
#include "src/post/post_common.h"
#include "src/post/post_dp.h"

typedef struct {
    const char *config, *tokenizer, *weights, *rm, *prompts, *out, *pairs, *data;
    char      **sets;
    int         n_sets;
    int         k;            /* samples per prompt; 0: the config's post.rs_k */
    int         max_new, batch; /* batch: rows per generation batch (chunk = batch / k prompts) */
    double      temperature, top_p; /* 0: the config's post.rs_temperature, post.rs_top_p */
    uint64_t    seed;
} herd_sampling_args;

/* What every sampling command opens: config and tokenizer, the layout, the
 * conversations of `data`. */
typedef struct {
    herd_post_env   e;
    herd_gen_layout g;
    herd_chat      *chats;
    int             n;
    int             env_open, layout_open;
} herd_sampling_job;

/* Open the job; K, temperature and top-p not given take the config's post.rs_*. */
int  herd_sampling_open(herd_sampling_job *j, herd_sampling_args *a, const char *data,
                        const herd_post_dp *dp);
void herd_sampling_close(herd_sampling_job *j);

int herd_post_rejection_sample(herd_sampling_args *a, const herd_post_dp *dp);
int herd_post_annotate_pairs(herd_sampling_args *a, const herd_post_dp *dp);
int herd_post_answer_eval(herd_sampling_args *a, const herd_post_dp *dp);

#endif
