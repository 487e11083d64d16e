/* optim.c — see optim.h. */
#include <math.h>
#include <stdio.h>
#include "src/model/optim.h"

int herd_adamw_create(herd_adamw *o, const herd_model *m)
{
    size_t bytes = sizeof(float) * (size_t)m->n_params;
    o->m = m->be->alloc(m->be, bytes);
    o->v = m->be->alloc(m->be, bytes);
    o->t = 0;
    if (!o->m || !o->v) {
        fprintf(stderr, "herd: optimizer: out of memory for the AdamW moments\n");
        herd_adamw_destroy(o, m);
        return -1;
    }
    return 0;
}

void herd_adamw_destroy(herd_adamw *o, const herd_model *m)
{
    m->be->free(m->be, o->m);
    m->be->free(m->be, o->v);
    o->m = o->v = NULL;
}

double herd_grad_norm(const herd_model *m)
{
    return sqrt(m->be->sumsq(m->be, m->grads, (size_t)m->n_params));
}

double herd_adamw_step(herd_adamw *o, herd_model *m, const herd_config_optim *c, double lr,
                       double grad_norm)
{
    double clip = 1.0;
    if (c->grad_clip > 0 && grad_norm > c->grad_clip) clip = c->grad_clip / (grad_norm + 1e-6);
    o->t++;
    float bc1 = (float)(1.0 - pow(c->beta1, (double)o->t));
    float bc2 = (float)(1.0 - pow(c->beta2, (double)o->t));
    for (int i = 0; i < m->n_tensors; i++) {
        const herd_tensor *t = &m->tensors[i];
        m->be->adamw(m->be, m->params + t->offset, m->grads + t->offset, o->m + t->offset,
                     o->v + t->offset, (size_t)t->numel, (float)lr, (float)c->beta1,
                     (float)c->beta2, (float)c->eps, t->decay ? (float)c->weight_decay : 0.0f,
                     bc1, bc2, (float)clip);
    }
    return clip;
}
