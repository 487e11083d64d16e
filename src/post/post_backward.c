/* post_backward.c — see post_backward.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/post/post_backward.h"

static struct {
    const herd_backend *base;
    const float *row_scale;              /* rows mode */
    const int *row, *col;                /* entries mode */
    const float *value;
    int n;
} pending;

/* Stands in for xent_bwd_range inside herd_model_backward. */
static void logits_grad(const herd_backend *wrapped, float *logits, const float *lse,
                        const int32_t *targets, int v0, int n, int V, float scale)
{
    const herd_backend *be = pending.base;
    (void)wrapped;
    if (pending.row_scale) {
        be->xent_bwd_range(be, logits, lse, targets, v0, n, V, 1.0f);
        float *h = malloc(sizeof(float) * (size_t)n * V);
        be->copy_d2h(be, h, logits, sizeof(float) * (size_t)n * V);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < V; j++) h[(size_t)i * V + j] *= pending.row_scale[i] * scale;
        be->copy_h2d(be, logits, h, sizeof(float) * (size_t)n * V);
        free(h);
        return;
    }
    be->zero(be, logits, (size_t)n * V);
    for (int k = 0; k < pending.n; k++) { /* entries may repeat: add */
        size_t at = (size_t)pending.row[k] * V + (size_t)(pending.col[k] - v0);
        if (pending.col[k] < v0 || pending.col[k] >= v0 + V) continue;
        float g;
        be->copy_d2h(be, &g, logits + at, sizeof g);
        g += pending.value[k] * scale;
        be->copy_h2d(be, logits + at, &g, sizeof g);
    }
}

static void run_backward(herd_model *m)
{
    herd_backend wrapped = *m->be;
    const herd_backend *saved = m->be;
    pending.base = saved;
    wrapped.xent_bwd_range = logits_grad;
    m->be = &wrapped;
    herd_model_backward(m, 1.0f);
    m->be = saved;
    memset(&pending, 0, sizeof pending);
}

void herd_model_backward_rows(herd_model *m, const float *row_scale)
{
    pending.row_scale = row_scale;
    run_backward(m);
}

void herd_model_backward_logits(herd_model *m, const int *row, const int *col, const float *value,
                                int n)
{
    pending.row = row;
    pending.col = col;
    pending.value = value;
    pending.n = n;
    run_backward(m);
}

void herd_model_seq_logprobs(const herd_model *m, const int32_t *targets, int B, int T,
                             double *logp, int64_t *n_tok)
{
    size_t N = (size_t)B * T;
    float *loss = malloc(sizeof(float) * N);
    /* the per-token losses of the last herd_model_forward live in the slot of
     * its last chunk (one process: the only chunk) */
    const herd_act_slot *sl = &m->slots[m->simple_slot[m->n_chunks - 1]];
    m->be->copy_d2h(m->be, loss, sl->losses, sizeof(float) * N);
    for (int b = 0; b < B; b++) {
        double s = 0.0;
        int64_t c = 0;
        for (int t = 0; t < T; t++)
            if (targets[(size_t)b * T + t] >= 0) s -= loss[(size_t)b * T + t], c++;
        logp[b] = s;
        if (n_tok) n_tok[b] = c;
    }
    free(loss);
}
