/* comm_nccl.cu — comm.h over NCCL on device buffers (the CUDA backend).
 *
 * One NCCL communicator per group, created from the MPI group of the same
 * ranks (ncclUniqueId broadcast over MPI). Collectives run on the group's own
 * stream; the blocking calls synchronise that stream, the asynchronous ones
 * (isend, irecv, iall_reduce) record an event that herd_comm_wait waits on, so
 * communication overlaps with compute on the default stream.
 *
 * NCCL's ReduceScatter and AllGather take equal counts; comm.h allows unequal
 * ones (FSDP shards of rows that do not divide evenly), so unequal counts go
 * through a group of ncclReduce / ncclBroadcast calls, one per rank. */
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
extern "C" {
#include "src/comm.h"
}

struct herd_comm_request { cudaEvent_t ev; };

typedef struct {
    ncclComm_t   nc;
    cudaStream_t stream;
} nccl_impl;

#define NCCL_OK(c, call, what) do { ncclResult_t r_ = (call); if (r_ != ncclSuccess) { \
    fprintf(stderr, "herd: rank %d of group '%s': %s:%d: %s: %s\n", (c)->rank, (c)->name, \
            __FILE__, __LINE__, what, ncclGetErrorString(r_)); return -1; } } while (0)
#define CUDA_OK(c, call, what) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
    fprintf(stderr, "herd: rank %d of group '%s': %s:%d: %s: %s\n", (c)->rank, (c)->name, \
            __FILE__, __LINE__, what, cudaGetErrorString(e_)); return -1; } } while (0)

static nccl_impl *impl(herd_comm *c) { return (nccl_impl *)c->impl; }

static ncclDataType_t nccl_type(herd_dtype t)
{
    switch (t) {
    case HERD_F32: return ncclFloat32;
    case HERD_F64: return ncclFloat64;
    case HERD_I32: return ncclInt32;
    default:       return ncclInt64;
    }
}

static int sync(herd_comm *c)
{
    CUDA_OK(c, cudaStreamSynchronize(impl(c)->stream), "cudaStreamSynchronize");
    return 0;
}

static int n_all_reduce(herd_comm *c, void *buf, size_t n, herd_dtype t, herd_redop op)
{
    NCCL_OK(c, ncclAllReduce(buf, buf, n, nccl_type(t), op == HERD_SUM ? ncclSum : ncclMax,
                             impl(c)->nc, impl(c)->stream), "ncclAllReduce");
    return sync(c);
}

static int equal_counts(const size_t *counts, int size)
{
    for (int r = 1; r < size; r++)
        if (counts[r] != counts[0]) return 0;
    return 1;
}

static int n_reduce_scatter(herd_comm *c, const void *send, void *recv, const size_t *counts,
                            herd_dtype t)
{
    nccl_impl *p = impl(c);
    if (equal_counts(counts, c->size)) {
        NCCL_OK(c, ncclReduceScatter(send, recv, counts[0], nccl_type(t), ncclSum, p->nc,
                                     p->stream), "ncclReduceScatter");
        return sync(c);
    }
    size_t off = 0, es = herd_dtype_size(t);
    NCCL_OK(c, ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < c->size; r++) {
        NCCL_OK(c, ncclReduce((const char *)send + off * es, recv, counts[r], nccl_type(t), ncclSum,
                              r, p->nc, p->stream), "ncclReduce");
        off += counts[r];
    }
    NCCL_OK(c, ncclGroupEnd(), "ncclGroupEnd");
    return sync(c);
}

static int n_all_gather(herd_comm *c, const void *send, void *recv, const size_t *counts,
                        herd_dtype t)
{
    nccl_impl *p = impl(c);
    size_t es = herd_dtype_size(t);
    if (equal_counts(counts, c->size)) {
        NCCL_OK(c, ncclAllGather(send, recv, counts[0], nccl_type(t), p->nc, p->stream),
                "ncclAllGather");
        return sync(c);
    }
    size_t off = 0;
    NCCL_OK(c, ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < c->size; r++) {
        NCCL_OK(c, ncclBroadcast(send, (char *)recv + off * es, counts[r], nccl_type(t), r, p->nc,
                                 p->stream), "ncclBroadcast");
        off += counts[r];
    }
    NCCL_OK(c, ncclGroupEnd(), "ncclGroupEnd");
    return sync(c);
}

static int n_broadcast(herd_comm *c, void *buf, size_t n, herd_dtype t, int root)
{
    NCCL_OK(c, ncclBroadcast(buf, buf, n, nccl_type(t), root, impl(c)->nc, impl(c)->stream),
            "ncclBroadcast");
    return sync(c);
}

static int n_send(herd_comm *c, const void *buf, size_t n, herd_dtype t, int peer, int tag)
{
    NCCL_OK(c, ncclSend(buf, n, nccl_type(t), peer, impl(c)->nc, impl(c)->stream), "ncclSend");
    return sync(c);
}

static int n_recv(herd_comm *c, void *buf, size_t n, herd_dtype t, int peer, int tag)
{
    NCCL_OK(c, ncclRecv(buf, n, nccl_type(t), peer, impl(c)->nc, impl(c)->stream), "ncclRecv");
    return sync(c);
}

static int record(herd_comm *c, herd_comm_request **req)
{
    *req = (herd_comm_request *)malloc(sizeof **req);
    CUDA_OK(c, cudaEventCreateWithFlags(&(*req)->ev, cudaEventDisableTiming), "cudaEventCreate");
    CUDA_OK(c, cudaEventRecord((*req)->ev, impl(c)->stream), "cudaEventRecord");
    return 0;
}

static int n_isend(herd_comm *c, const void *buf, size_t n, herd_dtype t, int peer, int tag,
                   herd_comm_request **req)
{
    NCCL_OK(c, ncclSend(buf, n, nccl_type(t), peer, impl(c)->nc, impl(c)->stream), "ncclSend");
    return record(c, req);
}

static int n_irecv(herd_comm *c, void *buf, size_t n, herd_dtype t, int peer, int tag,
                   herd_comm_request **req)
{
    NCCL_OK(c, ncclRecv(buf, n, nccl_type(t), peer, impl(c)->nc, impl(c)->stream), "ncclRecv");
    return record(c, req);
}

static int n_iall_reduce(herd_comm *c, void *buf, size_t n, herd_dtype t, herd_redop op,
                         herd_comm_request **req)
{
    NCCL_OK(c, ncclAllReduce(buf, buf, n, nccl_type(t), op == HERD_SUM ? ncclSum : ncclMax,
                             impl(c)->nc, impl(c)->stream), "ncclAllReduce");
    return record(c, req);
}

static int n_wait(herd_comm *c, herd_comm_request *req)
{
    cudaError_t e = cudaEventSynchronize(req->ev);
    cudaEventDestroy(req->ev);
    free(req);
    CUDA_OK(c, e, "cudaEventSynchronize");
    return 0;
}

static int n_barrier(herd_comm *c)
{
    /* a one-element all-reduce is NCCL's barrier */
    float *d;
    CUDA_OK(c, cudaMalloc(&d, sizeof(float)), "cudaMalloc");
    int rc = n_all_reduce(c, d, 1, HERD_F32, HERD_SUM);
    cudaFree(d);
    return rc;
}

static void n_destroy(herd_comm *c)
{
    ncclCommDestroy(impl(c)->nc);
    cudaStreamDestroy(impl(c)->stream);
    free(c->impl);
    free(c);
}

static const herd_comm_ops nccl_ops = {
    "nccl", n_all_reduce, n_reduce_scatter, n_all_gather, n_broadcast, n_send, n_recv,
    n_isend, n_irecv, n_iall_reduce, n_wait, n_barrier, n_destroy,
};

extern "C" herd_comm *herd_comm_nccl_from_mpi(herd_comm *g, const char *name)
{
    ncclUniqueId id;
    if (g->rank == 0 && ncclGetUniqueId(&id) != ncclSuccess) {
        fprintf(stderr, "herd: group '%s': ncclGetUniqueId failed\n", g->name);
        return NULL;
    }
    /* the id is an opaque 128-byte blob: broadcast it as int32 words */
    if (herd_comm_broadcast(g, &id, sizeof id / 4, HERD_I32, 0)) return NULL;
    herd_comm *c = (herd_comm *)calloc(1, sizeof *c);
    nccl_impl *p = (nccl_impl *)calloc(1, sizeof *p);
    if (!c || !p) { free(c); free(p); return NULL; }
    c->ops = &nccl_ops;
    c->impl = p;
    c->rank = g->rank;
    c->size = g->size;
    snprintf(c->name, sizeof c->name, "%s", name);
    if (cudaStreamCreateWithFlags(&p->stream, cudaStreamNonBlocking) != cudaSuccess ||
        ncclCommInitRank(&p->nc, g->size, id, g->rank) != ncclSuccess) {
        fprintf(stderr, "herd: rank %d of group '%s': NCCL communicator creation failed\n",
                g->rank, name);
        free(p);
        free(c);
        return NULL;
    }
    return c;
}
