/* gen_layout.h — the layout of a generation job (herd generate, herd post
 * rs / annotate / eval): data-parallel replicas of a tensor-parallel model.
 *
 * World rank w is TP rank w % tp of replica w / tp (TP innermost, as herd_grid
 * orders ranks); tp is the config's parallel.tp and the replicas are the rest
 * of the job. The prompts are split between the replicas; the ranks of one
 * replica run the same prompts together, each with its slice of the weights
 * (the trainer's TP table: its heads, ffn rows and vocabulary rows) and of
 * the KV cache (its KV heads). TP rank 0 of each replica speaks for it: it
 * alone writes its replica's lines and counts, so the outputs gathered to
 * world rank 0 (in world-rank order = prompt order) are those of one process.
 * parallel.pp and parallel.cp above 1 are refused: weights files hold whole
 * tensors, so a model trained with any layout loads on any TP width.
 */
#ifndef HERD_GEN_LAYOUT_H
#define HERD_GEN_LAYOUT_H

#include "src/model/model.h"
#include "src/post/post_common.h"
#include "src/post/post_dp.h"

typedef struct {
    const herd_post_dp *dp;  /* the whole job */
    int        tp, tp_rank;
    int        replica, n_replicas;
    herd_comm *tp_group;     /* NULL at tp 1 */
    int        speaker;      /* TP rank 0 of its replica */
} herd_gen_layout;

/* The layout of parallel.tp over the job. -1 with a message naming the key
 * when pp or cp is above 1 or tp does not divide the job (the same answer on
 * every rank: the same config). */
int  herd_gen_layout_open(herd_gen_layout *g, const herd_post_dp *dp, const herd_config *c);
void herd_gen_layout_close(herd_gen_layout *g);

/* This replica's share [*first, *first + *count) of n items, contiguous, in
 * replica order. */
void herd_gen_layout_share(const herd_gen_layout *g, int64_t n, int64_t *first, int64_t *count);

/* This rank's TP slice of a model of the config's shape (CPU backend), the
 * weights from a safetensors file or a Hugging Face directory (NULL: the
 * init of train.seed); no gradient buffer (forward only). */
int herd_gen_model_open(herd_model *m, const herd_post_env *e, const herd_gen_layout *g,
                        const char *weights);

#endif
