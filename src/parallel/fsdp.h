/* fsdp.h — FSDP-style data parallelism (the paper's choice; ZeRO-2-like).
 *
 * Across the DP group each tensor of this rank's model piece is cut by rows
 * (dim 0, as torchtitan's FSDP2), so that every shard is a rectangle of the
 * whole tensor: checkpoints store it with its offsets and any other layout can
 * read it back. Per rank and per tensor:
 *   fp32 master weights, gradient, Adam m and v:  this rank's rows only;
 *   working parameters (m->params):  all-gathered before the forward and kept
 *   through the backward (not re-gathered, not resharded in between);
 *   working gradients (m->grads):  accumulated over the micro-batches, then
 *   reduce-scattered (sum over DP) into the gradient shard.
 * With one DP rank the shards are the working buffers themselves (no copy).
 */
#ifndef HERD_FSDP_H
#define HERD_FSDP_H

#include <stdint.h>
#include "kernels/comm.h"
#include "src/config/config.h"
#include "src/model/model.h"

typedef struct {
    herd_comm *dp;        /* the DP group (size 1: no sharding) */
    int        n_tensors;
    int64_t   *off;       /* [n_tensors] offset of the tensor's shard in the shard buffers */
    int64_t   *row0;      /* [n_tensors] first row of this rank's shard in the tensor piece */
    int64_t   *rows;      /* [n_tensors] rows in the shard */
    size_t    *counts;    /* [n_tensors * dp] elements of each DP rank's shard */
    int64_t    n_shard;   /* elements in the shard buffers */
    float     *master, *grad, *m, *v;  /* backend memory [n_shard] */
    int        owns;      /* master/grad are allocated here (dp > 1) */
    /* one collective per step for all tensors (not one per tensor): the
     * buffer holds every rank's shards rank after rank, each rank's block in
     * the order of its own shard buffers */
    size_t    *rank_counts; /* [dp] elements of each rank's block */
    float     *bucket;      /* backend memory [n_params] */
    int64_t    t;         /* AdamW updates applied */
    /* the overlapped reduction of one step (herd_fsdp_overlap_begin/finish) */
    herd_comm_request **req;  /* [n_tensors] reduce-scatters in flight */
    int        n_req;
    int        n_ready;       /* tensors whose gradient was final and synced this step */
    int        overlap_rc;    /* -1 once a collective inside the hook failed */
} herd_fsdp;

/* Cut every tensor of `m` over `dp` and copy this rank's rows of the
 * (identically initialised) parameters into the master shard. */
int  herd_fsdp_create(herd_fsdp *f, herd_model *m, herd_comm *dp);
void herd_fsdp_destroy(herd_fsdp *f, const herd_model *m);

/* m->params <- the master shards of every DP rank (all-gather). */
int herd_fsdp_gather_params(herd_fsdp *f, herd_model *m);

/* f->grad <- sum over DP of m->grads, this rank's rows (reduce-scatter). */
int herd_fsdp_reduce_grads(herd_fsdp *f, herd_model *m);

/* Overlap the step's gradient reduction with its backward (Megatron's
 * overlap_grad_reduce, FSDP2's default): installs the model's gradient-ready
 * hook, so that as soon as the last micro-batch's backward has made a layer's
 * gradient final (the head first, the embedding last) it is summed over TP
 * and CP (as herd_model_sync_grads) and its reduce-scatter over DP starts,
 * asynchronously, while the backward of the layers below goes on. Each layer
 * is one bucket, packed rank after rank in its own part of f->bucket.
 * herd_fsdp_overlap_finish waits for every bucket, checks that every tensor
 * was reduced once, and removes the hook; together they replace
 * herd_model_sync_grads + herd_fsdp_reduce_grads for that step. */
int herd_fsdp_overlap_begin(herd_fsdp *f, herd_model *m);
int herd_fsdp_overlap_finish(herd_fsdp *f, herd_model *m);

/* Global L2 norm of the gradient over every rank of `world`; each element is
 * counted once (TP copies of whole or replicated tensors only on their
 * primary rank). -1 on a failed collective (*norm untouched). */
int herd_fsdp_grad_norm(herd_fsdp *f, const herd_model *m, herd_comm *world, double *norm);

/* AdamW on the shards with the clip factor of grad_norm (see optim.h). */
void herd_fsdp_step(herd_fsdp *f, const herd_model *m, const herd_config_optim *c, double lr,
                    double grad_norm);

/* Bytes per rank: the sharded state (master, gradient, m, v) and the
 * unsharded working copies (parameters, gradients). */
void herd_fsdp_memory(const herd_fsdp *f, const herd_model *m, size_t *sharded, size_t *working);

#endif
