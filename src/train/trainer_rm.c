/* trainer_rm.c — see trainer_rm.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "src/train/trainer_rm.h"

struct herd_trainer_rm {
    int     score_col;
    int64_t n_global;   /* rows of the batch in flight */
};

/* herd_seq_loss_fn: x[b] is row b's reward */
static double rm_seq_loss(void *ctx, int row0, const double *x, const int64_t *n, int B, float *w)
{
    herd_trainer_rm *r = ctx;
    double P = (double)(r->n_global / 2), loss = 0.0;
    (void)row0;
    for (int b = 0; b + 1 < B; b += 2) {
        double z = x[b] - x[b + 1]; /* row b is the better response */
        if (!n[b] || !n[b + 1]) z = 0.0; /* no scored token: cannot happen with chat_batch rows */
        loss += (z >= 0 ? log1p(exp(-z)) : -z + log1p(exp(z))) / P;
        double sg = z >= 0 ? exp(-z) / (1.0 + exp(-z)) : 1.0 / (1.0 + exp(z)); /* sigmoid(-z) */
        w[b] = (float)(-sg / P), w[b + 1] = (float)(sg / P);
    }
    return loss;
}

int herd_trainer_rm_open(herd_trainer_rm **out, herd_trainer *t)
{
    herd_trainer_rm *r = *out = calloc(1, sizeof *r);
    int rc = r ? 0 : -1;
    if (r) r->score_col = herd_chat_batch_score_col(t->chat);
    if (rc == 0 && r->score_col >= t->c->model.vocab_size) {
        if (t->root)
            fprintf(stderr, "herd: key 'post.tokenizer': the reward head's id %d is outside "
                    "model.vocab_size %d\n", r->score_col, t->c->model.vocab_size);
        rc = -1;
    }
    if (rc == 0 && t->c->train.xent_chunk > 0 && t->c->train.xent_chunk < t->model.vocab_local) {
        if (t->root)
            fprintf(stderr, "herd: key 'train.xent_chunk': objective rm scores the stored logits; "
                    "set it to 0\n");
        rc = -1;
    }
    if (rc == 0 && t->root)
        printf("rm: reward head: row %d of the output projection (<|reserved_special_token_0|>)\n",
               r->score_col), fflush(stdout);
    return herd_trainer_agree(t, rc);
}

void herd_trainer_rm_close(herd_trainer_rm *r) { free(r); }

void herd_trainer_rm_begin(herd_trainer_rm *r, herd_trainer *t, int64_t n_global)
{
    r->n_global = n_global;
    t->model.seq_loss = rm_seq_loss;
    t->model.seq_loss_ctx = r;
    t->model.score_col = r->score_col;
}

void herd_trainer_rm_end(herd_trainer_rm *r, herd_trainer *t)
{
    (void)r;
    t->model.seq_loss = NULL;
    t->model.seq_loss_ctx = NULL;
    t->model.score_col = 0;
}
