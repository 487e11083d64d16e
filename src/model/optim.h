/* optim.h — AdamW over a model's parameter table, with global-norm clipping.
 *
 * Weight decay applies to weight matrices only (herd_tensor.decay); the
 * gradient is multiplied by min(1, grad_clip / norm) before the moments.
 */
#ifndef HERD_OPTIM_H
#define HERD_OPTIM_H

#include <stdint.h>
#include "src/model/model.h"

typedef struct {
    float  *m, *v;       /* backend memory [n_params]: first and second moments */
    int64_t t;           /* number of updates applied */
} herd_adamw;

int  herd_adamw_create(herd_adamw *o, const herd_model *m);
void herd_adamw_destroy(herd_adamw *o, const herd_model *m);

/* Global L2 norm of the gradients (deterministic order). */
double herd_grad_norm(const herd_model *m);

/* One update with learning rate lr; returns the clip factor applied. */
double herd_adamw_step(herd_adamw *o, herd_model *m, const herd_config_optim *c, double lr,
                       double grad_norm);

#endif
