/* preflight_sizes.c — the messages of one training step, per rank (see
 * preflight.h), computed from the config as the model sizes its buffers. */
#include "src/model/model.h"
#include "src/parallel/preflight.h"

void herd_preflight_sizes_from_config(const herd_config *c, int dp, herd_preflight_sizes *s)
{
    const herd_config_model *m = &c->model;
    const herd_config_parallel *p = &c->parallel;
    int tp = p->tp, cp = p->cp;
    /* the ramp's last stage: the sequence length of most of the run */
    s->seq_len = c->batch.n_ramp ? c->batch.ramp[c->batch.n_ramp - 1].seq_len : m->max_seq_len;
    s->micro_batch = c->batch.micro_batch;
    s->sp = p->sequence_parallel && tp > 1;
    size_t tokens = (size_t)s->micro_batch * (size_t)(s->seq_len / cp);   /* N = B x T/cp */
    size_t rows = s->sp ? tokens / (size_t)tp : tokens;                    /* N_local */
    s->tp = tp > 1 ? rows * (size_t)m->d_model : 0;
    s->pp = p->pp > 1 ? rows * (size_t)m->d_model : 0;
    int kv_local = tp <= m->n_kv_heads ? m->n_kv_heads / tp : 1;
    s->cp = cp > 1 ? tokens * (size_t)kv_local * (size_t)(m->d_model / m->n_heads) : 0;
    herd_model_dims d;
    herd_model_dims_from_config(&d, m);
    double piece = (double)herd_model_dims_total_params(&d) / ((double)tp * p->pp);
    s->dp = dp > 1 ? (size_t)(piece / dp) : 0;
}
