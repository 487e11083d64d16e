/* dpo.h — Direct Preference Optimization (Rafailov et al. 2023) as Llama 3
 * uses it: policy against a frozen reference, beta 0.1, formatting tokens
 * (headers, <|eot_id|>) out of the loss (the targets of a row mark the
 * response's content tokens only, herd_chat_row with HERD_MASK_CONTENT), plus
 * an NLL term on the chosen response with coefficient 0.2.
 *
 * A batch of P pairs is 2P rows of T tokens: chosen 0..P-1, then rejected
 * 0..P-1. With pi / rho the summed log-probabilities of a response's target
 * tokens under the policy / the reference and n_c the chosen's count:
 *
 *   loss = (1/P) sum_p [ -log sigmoid(beta ((pi_c - rho_c) - (pi_r - rho_r)))
 *                        + nll_coef * (-pi_c / n_c) ]
 *
 * With policy == reference the first term is log 2.
 */
#ifndef HERD_DPO_H
#define HERD_DPO_H

#include <stdint.h>
#include "src/model/model.h"

typedef struct {
    double beta;      /* 0.1 */
    double nll_coef;  /* 0.2 */
} herd_dpo_opts;

typedef struct {
    double loss;      /* the whole loss */
    double dpo;       /* mean of the -log sigmoid term */
    double nll;       /* mean per-token NLL of the chosen responses */
    double margin;    /* mean beta * ((pi_c - rho_c) - (pi_r - rho_r)) */
    double accuracy;  /* fraction of pairs with a positive margin */
} herd_dpo_stats;

/* Log-probabilities of the 2P rows under the reference (forward only). */
int herd_dpo_reference(herd_model *ref, const int32_t *tokens, const int32_t *targets,
                       const int32_t *doc, int P, int T, double *ref_logp);

/* Forward of the policy, the loss, and (backward != 0) its gradient
 * accumulated into policy->grads. -1 on a bad batch (a chosen row with no
 * target). */
int herd_dpo_step(herd_model *policy, const int32_t *tokens, const int32_t *targets,
                  const int32_t *doc, int P, int T, const double *ref_logp,
                  const herd_dpo_opts *o, int backward, herd_dpo_stats *st);

/* The same with the sums over the P pairs divided by `norm` instead of P
 * (loss, stats and gradient): a data-parallel rank holding P of the norm
 * pairs of a global batch gets its exact share of the global mean, so that
 * the gradients and stats summed over the ranks are those of one process. */
int herd_dpo_step_norm(herd_model *policy, const int32_t *tokens, const int32_t *targets,
                       const int32_t *doc, int P, int T, const double *ref_logp,
                       const herd_dpo_opts *o, int backward, int norm, herd_dpo_stats *st);

#endif
