/* sampling.c — the job every sampling command opens (see sampling.h). */
#include <stdlib.h>
#include <string.h>
#include "src/post/sampling.h"

int herd_sampling_open(herd_sampling_job *j, herd_sampling_args *a, const char *data,
                       const herd_post_dp *dp)
{
    memset(j, 0, sizeof *j);
    if (herd_post_env_open(&j->e, a->config, a->n_sets, a->sets, a->tokenizer)) return -1;
    j->env_open = 1;
    if (!a->k) a->k = j->e.cfg.post.rs_k;
    if (!(a->temperature > 0)) a->temperature = j->e.cfg.post.rs_temperature;
    if (!(a->top_p > 0)) a->top_p = j->e.cfg.post.rs_top_p;
    if (herd_gen_layout_open(&j->g, dp, &j->e.cfg)) return -1;
    j->layout_open = 1;
    return herd_chat_load_jsonl(data, &j->chats, &j->n) ? -1 : 0;
}

void herd_sampling_close(herd_sampling_job *j)
{
    for (int i = 0; i < j->n; i++) herd_chat_free(&j->chats[i]);
    free(j->chats);
    j->chats = NULL;
    j->n = 0;
    if (j->layout_open) herd_gen_layout_close(&j->g);
    if (j->env_open) herd_post_env_close(&j->e);
    j->layout_open = j->env_open = 0;
}
