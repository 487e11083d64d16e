/* fsdp.c — see fsdp.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/parallel/fsdp.h"

static int64_t row_elems(const herd_tensor *t) { return t->ndim == 2 ? t->shape[1] : 1; }

int herd_fsdp_create(herd_fsdp *f, herd_model *m, herd_comm *dp)
{
    memset(f, 0, sizeof *f);
    f->dp = dp;
    int D = dp->size, r = dp->rank;
    f->n_tensors = m->n_tensors;
    f->off = calloc(m->n_tensors, sizeof(int64_t));
    f->row0 = calloc(m->n_tensors, sizeof(int64_t));
    f->rows = calloc(m->n_tensors, sizeof(int64_t));
    f->counts = calloc((size_t)m->n_tensors * D, sizeof(size_t));
    if (!f->off || !f->row0 || !f->rows || !f->counts) goto oom;
    for (int i = 0; i < m->n_tensors; i++) {
        const herd_tensor *t = &m->tensors[i];
        size_t *c = f->counts + (size_t)i * D;
        f->row0[i] = (int64_t)herd_split_counts((size_t)t->shape[0], D, c, r);
        f->rows[i] = (int64_t)c[r];
        for (int k = 0; k < D; k++) c[k] *= (size_t)row_elems(t);
        f->off[i] = f->n_shard;
        f->n_shard += (int64_t)c[r];
    }
    const herd_backend *be = m->be;
    size_t bytes = sizeof(float) * (size_t)(f->n_shard ? f->n_shard : 1);
    if (D == 1) { /* the shard is the whole piece: share the working buffers */
        f->master = m->params;
        f->grad = m->grads;
    } else {
        f->owns = 1;
        f->master = be->alloc(be, bytes);
        f->grad = be->alloc(be, bytes);
        if (!f->master || !f->grad) goto oom;
        for (int i = 0; i < m->n_tensors; i++) {
            const herd_tensor *t = &m->tensors[i];
            be->copy_d2d(be, f->master + f->off[i],
                         m->params + t->offset + f->row0[i] * row_elems(t),
                         sizeof(float) * (size_t)(f->rows[i] * row_elems(t)));
        }
    }
    f->m = be->alloc(be, bytes);
    f->v = be->alloc(be, bytes);
    if (!f->m || !f->v) goto oom;
    if (D > 1) {
        f->rank_counts = calloc((size_t)D, sizeof(size_t));
        f->bucket = be->alloc(be, sizeof(float) * (size_t)m->n_params);
        if (!f->rank_counts || !f->bucket) goto oom;
        for (int i = 0; i < m->n_tensors; i++)
            for (int k = 0; k < D; k++) f->rank_counts[k] += f->counts[(size_t)i * D + k];
    }
    return 0;
oom:
    fprintf(stderr, "herd: fsdp: out of memory for the sharded state (%lld elements)\n",
            (long long)f->n_shard);
    herd_fsdp_destroy(f, m);
    return -1;
}

void herd_fsdp_destroy(herd_fsdp *f, const herd_model *m)
{
    const herd_backend *be = m->be;
    if (f->owns) {
        be->free(be, f->master);
        be->free(be, f->grad);
    }
    be->free(be, f->m);
    be->free(be, f->v);
    be->free(be, f->bucket);
    free(f->req);
    free(f->rank_counts);
    free(f->off);
    free(f->row0);
    free(f->rows);
    free(f->counts);
    memset(f, 0, sizeof *f);
}

/* Move the rank-k rows of tensors [t0, t1) between the working buffer `full`
 * (tensor after tensor) and `bucket` (rank after rank): to_bucket 1 packs, 0
 * unpacks. rank_counts[k] (if given) gets the elements of rank k's block. */
static void bucket_copy(const herd_fsdp *f, const herd_model *m, float *full, float *bucket,
                        int t0, int t1, int to_bucket, size_t *rank_counts)
{
    int D = f->dp->size;
    size_t pos = 0;
    for (int k = 0; k < D; k++) {
        size_t start = pos;
        for (int i = t0; i < t1; i++) {
            const size_t *c = f->counts + (size_t)i * D;
            size_t within = 0; /* elements of the ranks before k in this tensor */
            for (int j = 0; j < k; j++) within += c[j];
            float *t = full + m->tensors[i].offset + within;
            if (c[k]) {
                if (to_bucket) m->be->copy_d2d(m->be, bucket + pos, t, sizeof(float) * c[k]);
                else m->be->copy_d2d(m->be, t, bucket + pos, sizeof(float) * c[k]);
            }
            pos += c[k];
        }
        if (rank_counts) rank_counts[k] = pos - start;
    }
}

int herd_fsdp_gather_params(herd_fsdp *f, herd_model *m)
{
    if (f->dp->size == 1) return 0;
    size_t mine = 0;
    for (int k = 0; k < f->dp->rank; k++) mine += f->rank_counts[k];
    /* this rank's block is its master shard buffer as it is */
    m->be->copy_d2d(m->be, f->bucket + mine, f->master, sizeof(float) * (size_t)f->n_shard);
    if (herd_comm_all_gather(f->dp, f->bucket + mine, f->bucket, f->rank_counts, HERD_F32))
        return -1;
    bucket_copy(f, m, m->params, f->bucket, 0, m->n_tensors, 0, NULL);
    return 0;
}

int herd_fsdp_reduce_grads(herd_fsdp *f, herd_model *m)
{
    if (f->dp->size == 1) return 0;
    bucket_copy(f, m, m->grads, f->bucket, 0, m->n_tensors, 1, NULL);
    return herd_comm_reduce_scatter(f->dp, f->bucket, f->grad, f->rank_counts, HERD_F32);
}

/* The model's gradient-ready hook: tensors [t0, t1) are final on this rank. */
static void on_grads_ready(void *ctx, herd_model *m, int t0, int t1)
{
    herd_fsdp *f = ctx;
    if (f->overlap_rc) return; /* finish reports it; the other ranks abort with us */
    if (herd_model_sync_grads_range(m, t0, t1)) {
        f->overlap_rc = -1;
        return;
    }
    f->n_ready += t1 - t0;
    int D = f->dp->size;
    if (D == 1) return; /* the gradient shard is m->grads itself */
    size_t *counts = malloc(sizeof(size_t) * (size_t)D);
    if (!counts) {
        fprintf(stderr, "herd: fsdp: out of memory for a bucket's counts\n");
        f->overlap_rc = -1;
        return;
    }
    /* the bucket's part of f->bucket: where these tensors sit in m->grads */
    float *region = f->bucket + m->tensors[t0].offset;
    bucket_copy(f, m, m->grads, region, t0, t1, 1, counts);
    /* this rank's rows of [t0, t1) are contiguous in the shard buffers */
    if (herd_comm_ireduce_scatter(f->dp, region, f->grad + f->off[t0], counts, HERD_F32,
                                  &f->req[f->n_req]))
        f->overlap_rc = -1;
    else
        f->n_req++;
    free(counts);
}

int herd_fsdp_overlap_begin(herd_fsdp *f, herd_model *m)
{
    if (!f->req) f->req = calloc((size_t)(m->n_tensors ? m->n_tensors : 1), sizeof(*f->req));
    if (!f->req) {
        fprintf(stderr, "herd: fsdp: out of memory for the overlapped reduction\n");
        return -1;
    }
    f->n_req = f->n_ready = f->overlap_rc = 0;
    m->grad_ready = on_grads_ready;
    m->grad_ready_ctx = f;
    return 0;
}

int herd_fsdp_overlap_finish(herd_fsdp *f, herd_model *m)
{
    int rc = f->overlap_rc;
    for (int i = 0; i < f->n_req; i++)
        if (herd_comm_wait(f->dp, f->req[i])) rc = -1;
    f->n_req = 0;
    m->grad_ready = NULL;
    m->grad_ready_ctx = NULL;
    if (rc == 0 && f->n_ready != m->n_tensors) {
        fprintf(stderr, "herd: fsdp: %d of %d tensors got their final gradient through the "
                "gradient-ready hook this step\n", f->n_ready, m->n_tensors);
        rc = -1;
    }
    return rc;
}

int herd_fsdp_grad_norm(herd_fsdp *f, const herd_model *m, herd_comm *world, double *norm)
{
    double ss = 0.0;
    for (int i = 0; i < m->n_tensors; i++) {
        const herd_tensor *t = &m->tensors[i];
        if (!t->tp_primary) continue; /* another TP rank holds the same numbers */
        ss += m->be->sumsq(m->be, f->grad + f->off[i], (size_t)(f->rows[i] * row_elems(t)));
    }
    if (herd_comm_all_reduce(world, &ss, 1, HERD_F64, HERD_SUM)) return -1;
    *norm = sqrt(ss);
    return 0;
}

void herd_fsdp_step(herd_fsdp *f, const herd_model *m, const herd_config_optim *c, double lr,
                    double grad_norm)
{
    double clip = 1.0;
    if (c->grad_clip > 0 && grad_norm > c->grad_clip) clip = c->grad_clip / (grad_norm + 1e-6);
    f->t++;
    float bc1 = (float)(1.0 - pow(c->beta1, (double)f->t));
    float bc2 = (float)(1.0 - pow(c->beta2, (double)f->t));
    for (int i = 0; i < m->n_tensors; i++) {
        const herd_tensor *t = &m->tensors[i];
        size_t n = (size_t)(f->rows[i] * row_elems(t));
        if (!n) continue;
        m->be->adamw(m->be, f->master + f->off[i], f->grad + f->off[i], f->m + f->off[i],
                     f->v + f->off[i], n, (float)lr, (float)c->beta1, (float)c->beta2,
                     (float)c->eps, t->decay ? (float)c->weight_decay : 0.0f, bc1, bc2,
                     (float)clip);
    }
}

void herd_fsdp_memory(const herd_fsdp *f, const herd_model *m, size_t *sharded, size_t *working)
{
    *sharded = 4 * sizeof(float) * (size_t)f->n_shard;
    *working = f->owns ? 2 * sizeof(float) * (size_t)m->n_params : 0;
}
