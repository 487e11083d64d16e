/* dpo.c — see dpo.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "src/post/dpo.h"
#include "src/post/post_backward.h"

int herd_dpo_reference(herd_model *ref, const int32_t *tokens, const int32_t *targets,
                       const int32_t *doc, int P, int T, double *ref_logp)
{
    if (isnan(herd_model_forward(ref, tokens, targets, doc, 2 * P, T, NULL))) return -1;
    herd_model_seq_logprobs(ref, targets, 2 * P, T, ref_logp, NULL);
    return 0;
}

/* log sigmoid(z) without overflow */
static double log_sigmoid(double z) { return z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z)); }
static double sigmoid(double z) { return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z)); }

int herd_dpo_step(herd_model *policy, const int32_t *tokens, const int32_t *targets,
                  const int32_t *doc, int P, int T, const double *ref_logp,
                  const herd_dpo_opts *o, int backward, herd_dpo_stats *st)
{
    return herd_dpo_step_norm(policy, tokens, targets, doc, P, T, ref_logp, o, backward, P, st);
}

int herd_dpo_step_norm(herd_model *policy, const int32_t *tokens, const int32_t *targets,
                       const int32_t *doc, int P, int T, const double *ref_logp,
                       const herd_dpo_opts *o, int backward, int norm, herd_dpo_stats *st)
{
    int R = 2 * P, N = norm; /* the sums over the P pairs are divided by N */
    if (isnan(herd_model_forward(policy, tokens, targets, doc, R, T, NULL))) return -1;
    double *lp = malloc(sizeof(double) * R);
    int64_t *n = malloc(sizeof(int64_t) * R);
    float *scale = calloc((size_t)R * T, sizeof(float));
    herd_model_seq_logprobs(policy, targets, R, T, lp, n);
    herd_dpo_stats s = {0};
    int rc = 0;
    for (int p = 0; p < P && rc == 0; p++) {
        if (n[p] == 0 || n[P + p] == 0) {
            fprintf(stderr, "herd: dpo: pair %d has a response without a target token\n", p);
            rc = -1;
            break;
        }
        double z = o->beta * ((lp[p] - ref_logp[p]) - (lp[P + p] - ref_logp[P + p]));
        double nll = -lp[p] / (double)n[p];
        s.dpo += -log_sigmoid(z) / N;
        s.nll += nll / N;
        s.margin += z / N;
        s.accuracy += (z > 0) / (double)N;
        /* d loss / d (summed token loss S = -pi) of each row */
        float gc = (float)((o->beta * sigmoid(-z) + o->nll_coef / (double)n[p]) / N);
        float gr = (float)(-o->beta * sigmoid(-z) / N);
        for (int t = 0; t < T; t++) {
            scale[(size_t)p * T + t] = gc;
            scale[(size_t)(P + p) * T + t] = gr;
        }
    }
    s.loss = s.dpo + o->nll_coef * s.nll;
    if (rc == 0 && backward) herd_model_backward_rows(policy, scale);
    if (st) *st = s;
    free(lp);
    free(n);
    free(scale);
    return rc;
}
