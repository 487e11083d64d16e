/* comm_nccl.cu — comm.h over NCCL on device buffers (the CUDA backend).
 *
 * One NCCL communicator per group, created from the MPI group of the same
 * ranks (ncclUniqueId broadcast over MPI; that group is kept as c->host for
 * splits). Collectives run on the group's own non-blocking stream, which first
 * waits for the compute already queued on the default stream (an event): the
 * kernels that wrote a buffer finish before NCCL reads it. The blocking calls
 * then synchronise the group's stream; the asynchronous ones (isend, irecv,
 * iall_reduce) record an event that herd_comm_wait waits on, so communication
 * overlaps with the compute queued after them.
 *
 * Host buffers (the trainer's loss sums and norms, when a group is NCCL) go
 * through a device staging buffer: copied in, reduced, copied out. The
 * asynchronous calls on host buffers complete before they return.
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
#include "kernels/comm.h"
}

struct herd_comm_request { cudaEvent_t ev; };

typedef struct {
    ncclComm_t   nc;
    cudaStream_t stream;
    cudaEvent_t  compute_done;  // recorded on the default stream before each call
    void        *stage[2];      // device copies of host buffers (send, recv)
    size_t       stage_cap[2];
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

// the group's stream waits for the work queued on the legacy default stream
static int after_compute(herd_comm *c)
{
    nccl_impl *p = impl(c);
    CUDA_OK(c, cudaEventRecord(p->compute_done, 0), "cudaEventRecord");
    CUDA_OK(c, cudaStreamWaitEvent(p->stream, p->compute_done, 0), "cudaStreamWaitEvent");
    return 0;
}

static int is_host(const void *ptr)
{
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, ptr) != cudaSuccess) {
        (void)cudaGetLastError();
        return 1;
    }
    return a.type == cudaMemoryTypeHost || a.type == cudaMemoryTypeUnregistered;
}

// the device address NCCL uses for buf: buf itself, or staging slot `slot`
// (filled from buf when copy_in); NULL on failure
static void *on_device(herd_comm *c, int slot, const void *buf, size_t bytes, int copy_in)
{
    nccl_impl *p = impl(c);
    if (!bytes || !is_host(buf)) return (void *)buf;
    if (bytes > p->stage_cap[slot]) {
        cudaFree(p->stage[slot]);
        p->stage[slot] = NULL;
        p->stage_cap[slot] = 0;
        if (cudaMalloc(&p->stage[slot], bytes) != cudaSuccess) {
            fprintf(stderr, "herd: rank %d of group '%s': no device memory to stage %zu bytes\n",
                    c->rank, c->name, bytes);
            return NULL;
        }
        p->stage_cap[slot] = bytes;
    }
    if (copy_in && cudaMemcpy(p->stage[slot], buf, bytes, cudaMemcpyHostToDevice) != cudaSuccess)
        return NULL;
    return p->stage[slot];
}

// after a staged call: the result back to the host buffer (the stream is synchronised)
static int off_device(herd_comm *c, void *buf, const void *dev, size_t bytes)
{
    if (dev == buf || !bytes) return 0;
    CUDA_OK(c, cudaStreamSynchronize(impl(c)->stream), "cudaStreamSynchronize");
    CUDA_OK(c, cudaMemcpy(buf, dev, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
    return 0;
}

static size_t total(const size_t *counts, int size)
{
    size_t n = 0;
    for (int r = 0; r < size; r++) n += counts[r];
    return n;
}

static int sync(herd_comm *c)
{
    CUDA_OK(c, cudaStreamSynchronize(impl(c)->stream), "cudaStreamSynchronize");
    return 0;
}

static int n_all_reduce(herd_comm *c, void *buf, size_t n, herd_dtype t, herd_redop op)
{
    size_t bytes = n * herd_dtype_size(t);
    void *d = on_device(c, 0, buf, bytes, 1);
    if (!d || after_compute(c)) return -1;
    NCCL_OK(c, ncclAllReduce(d, d, n, nccl_type(t), op == HERD_SUM ? ncclSum : ncclMax,
                             impl(c)->nc, impl(c)->stream), "ncclAllReduce");
    if (off_device(c, buf, d, bytes)) return -1;
    return sync(c);
}

static int equal_counts(const size_t *counts, int size)
{
    for (int r = 1; r < size; r++)
        if (counts[r] != counts[0]) return 0;
    return 1;
}

// queued on the group's stream; wait: 1 returns once done, 0 at once (ireduce_scatter)
static int reduce_scatter_dev(herd_comm *c, const void *send, void *recv, const size_t *counts,
                              herd_dtype t, int wait)
{
    nccl_impl *p = impl(c);
    if (equal_counts(counts, c->size)) {
        NCCL_OK(c, ncclReduceScatter(send, recv, counts[0], nccl_type(t), ncclSum, p->nc,
                                     p->stream), "ncclReduceScatter");
        return wait ? sync(c) : 0;
    }
    size_t off = 0, es = herd_dtype_size(t);
    NCCL_OK(c, ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < c->size; r++) {
        NCCL_OK(c, ncclReduce((const char *)send + off * es, recv, counts[r], nccl_type(t), ncclSum,
                              r, p->nc, p->stream), "ncclReduce");
        off += counts[r];
    }
    NCCL_OK(c, ncclGroupEnd(), "ncclGroupEnd");
    return wait ? sync(c) : 0;
}

static int n_reduce_scatter(herd_comm *c, const void *send, void *recv, const size_t *counts,
                            herd_dtype t)
{
    size_t es = herd_dtype_size(t), in = total(counts, c->size) * es, out = counts[c->rank] * es;
    const void *s = on_device(c, 0, send, in, 1);
    void *r = on_device(c, 1, recv, out, 0);
    if (!s || !r || after_compute(c) || reduce_scatter_dev(c, s, r, counts, t, 1)) return -1;
    return off_device(c, recv, r, out);
}

static int all_gather_dev(herd_comm *c, const void *send, void *recv, const size_t *counts,
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

static int n_all_gather(herd_comm *c, const void *send, void *recv, const size_t *counts,
                        herd_dtype t)
{
    size_t es = herd_dtype_size(t), in = counts[c->rank] * es, out = total(counts, c->size) * es;
    const void *s = on_device(c, 0, send, in, 1);
    void *r = on_device(c, 1, recv, out, 0);
    if (!s || !r || after_compute(c) || all_gather_dev(c, s, r, counts, t)) return -1;
    return off_device(c, recv, r, out);
}

static int n_broadcast(herd_comm *c, void *buf, size_t n, herd_dtype t, int root)
{
    size_t bytes = n * herd_dtype_size(t);
    void *d = on_device(c, 0, buf, bytes, 1);
    if (!d || after_compute(c)) return -1;
    NCCL_OK(c, ncclBroadcast(d, d, n, nccl_type(t), root, impl(c)->nc, impl(c)->stream),
            "ncclBroadcast");
    if (off_device(c, buf, d, bytes)) return -1;
    return sync(c);
}

static int n_send(herd_comm *c, const void *buf, size_t n, herd_dtype t, int peer, int tag)
{
    const void *d = on_device(c, 0, buf, n * herd_dtype_size(t), 1);
    if (!d || after_compute(c)) return -1;
    NCCL_OK(c, ncclSend(d, n, nccl_type(t), peer, impl(c)->nc, impl(c)->stream), "ncclSend");
    return sync(c);
}

static int n_recv(herd_comm *c, void *buf, size_t n, herd_dtype t, int peer, int tag)
{
    size_t bytes = n * herd_dtype_size(t);
    void *d = on_device(c, 1, buf, bytes, 0);
    if (!d || after_compute(c)) return -1;
    NCCL_OK(c, ncclRecv(d, n, nccl_type(t), peer, impl(c)->nc, impl(c)->stream), "ncclRecv");
    if (off_device(c, buf, d, bytes)) return -1;
    return sync(c);
}

static int record(herd_comm *c, herd_comm_request **req)
{
    *req = (herd_comm_request *)malloc(sizeof **req);
    CUDA_OK(c, cudaEventCreateWithFlags(&(*req)->ev, cudaEventDisableTiming), "cudaEventCreate");
    CUDA_OK(c, cudaEventRecord((*req)->ev, impl(c)->stream), "cudaEventRecord");
    return 0;
}

// the asynchronous calls: device buffers stay in flight until herd_comm_wait;
// a host buffer takes the blocking call (its staging is reused), then an event
static int n_isend(herd_comm *c, const void *buf, size_t n, herd_dtype t, int peer, int tag,
                   herd_comm_request **req)
{
    if (n && is_host(buf)) return n_send(c, buf, n, t, peer, tag) ? -1 : record(c, req);
    if (after_compute(c)) return -1;
    NCCL_OK(c, ncclSend(buf, n, nccl_type(t), peer, impl(c)->nc, impl(c)->stream), "ncclSend");
    return record(c, req);
}

static int n_irecv(herd_comm *c, void *buf, size_t n, herd_dtype t, int peer, int tag,
                   herd_comm_request **req)
{
    if (n && is_host(buf)) return n_recv(c, buf, n, t, peer, tag) ? -1 : record(c, req);
    if (after_compute(c)) return -1;
    NCCL_OK(c, ncclRecv(buf, n, nccl_type(t), peer, impl(c)->nc, impl(c)->stream), "ncclRecv");
    return record(c, req);
}

static int n_iall_reduce(herd_comm *c, void *buf, size_t n, herd_dtype t, herd_redop op,
                         herd_comm_request **req)
{
    if (n && is_host(buf)) return n_all_reduce(c, buf, n, t, op) ? -1 : record(c, req);
    if (after_compute(c)) return -1;
    NCCL_OK(c, ncclAllReduce(buf, buf, n, nccl_type(t), op == HERD_SUM ? ncclSum : ncclMax,
                             impl(c)->nc, impl(c)->stream), "ncclAllReduce");
    return record(c, req);
}

// device buffers: queued behind the compute so far and left running (the
// overlapped gradient reduce-scatter); host buffers: done before returning
static int n_ireduce_scatter(herd_comm *c, const void *send, void *recv, const size_t *counts,
                             herd_dtype t, herd_comm_request **req)
{
    if (is_host(send) || is_host(recv))
        return n_reduce_scatter(c, send, recv, counts, t) ? -1 : record(c, req);
    if (after_compute(c) || reduce_scatter_dev(c, send, recv, counts, t, 0)) return -1;
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
    nccl_impl *p = impl(c);
    ncclCommDestroy(p->nc);
    cudaStreamDestroy(p->stream);
    cudaEventDestroy(p->compute_done);
    cudaFree(p->stage[0]);
    cudaFree(p->stage[1]);
    if (c->owns_host) herd_comm_destroy(c->host);
    free(c->impl);
    free(c);
}

static const herd_comm_ops nccl_ops = {
    "nccl", n_all_reduce, n_reduce_scatter, n_all_gather, n_broadcast, n_send, n_recv,
    n_isend, n_irecv, n_iall_reduce, n_ireduce_scatter, n_wait, n_barrier, n_destroy,
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
    c->host = g;
    if (cudaStreamCreateWithFlags(&p->stream, cudaStreamNonBlocking) != cudaSuccess ||
        cudaEventCreateWithFlags(&p->compute_done, cudaEventDisableTiming) != cudaSuccess ||
        ncclCommInitRank(&p->nc, g->size, id, g->rank) != ncclSuccess) {
        fprintf(stderr, "herd: rank %d of group '%s': NCCL communicator creation failed\n",
                g->rank, name);
        free(p);
        free(c);
        return NULL;
    }
    return c;
}
