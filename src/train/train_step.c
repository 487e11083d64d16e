/* train_step.c — see train_step.h. */
#include "src/train/train_step.h"

void herd_step_all_reduce_grads(herd_comm *dp, herd_model *m)
{
    /* in pieces: MPI counts are int */
    const int64_t piece = (int64_t)1 << 28;
    for (int64_t off = 0; off < m->n_params; off += piece) {
        int64_t n = m->n_params - off < piece ? m->n_params - off : piece;
        if (herd_comm_all_reduce(dp, m->grads + off, (size_t)n, HERD_F32, HERD_SUM))
            herd_comm_abort(1);
    }
}

/* The gradients of every rank reduced; the global norm. */
static void reduce_grads(const herd_step_engine *e, double *grad_norm)
{
    herd_model *m = e->m;
    if (!e->fsdp) {
        if (e->dp) herd_step_all_reduce_grads(e->dp, m);
        *grad_norm = herd_grad_norm(m);
        return;
    }
    if (e->overlap ? herd_fsdp_overlap_finish(e->fsdp, m)
                   : herd_model_sync_grads(m) || herd_fsdp_reduce_grads(e->fsdp, m))
        herd_comm_abort(1);
    if (herd_fsdp_grad_norm(e->fsdp, m, e->world, grad_norm)) herd_comm_abort(1);
}

int herd_step_backward(const herd_step_engine *e, herd_loss_fn loss, void *ctx, double *stats,
                       int n_stats, double *grad_norm)
{
    herd_model *m = e->m;
    herd_model_zero_grad(m);
    if (e->fsdp && e->overlap && herd_fsdp_overlap_begin(e->fsdp, m)) herd_comm_abort(1);
    int rc = loss(ctx, m, stats);
    if (rc) return rc;
    if (n_stats && e->dp && herd_comm_all_reduce(e->dp, stats, (size_t)n_stats, HERD_F64, HERD_SUM))
        herd_comm_abort(1);
    reduce_grads(e, grad_norm);
    return 0;
}

void herd_step_update(const herd_step_engine *e, double lr, double grad_norm)
{
    if (!e->fsdp) {
        herd_adamw_step(e->adamw, e->m, &e->c->optim, lr, grad_norm);
        return;
    }
    herd_fsdp_step(e->fsdp, e->m, &e->c->optim, lr, grad_norm);
    if (herd_fsdp_gather_params(e->fsdp, e->m)) herd_comm_abort(1);
    e->m->be->synchronize(e->m->be);
}

int herd_step_run(const herd_step_engine *e, herd_loss_fn loss, void *ctx, double *stats,
                  int n_stats, double lr)
{
    double norm;
    int rc = herd_step_backward(e, loss, ctx, stats, n_stats, &norm);
    if (rc == 0) herd_step_update(e, lr, norm);
    return rc;
}
