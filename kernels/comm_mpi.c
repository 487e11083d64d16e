/* comm_mpi.c — comm.h over MPI on host buffers (the CPU backend). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/comm.h"

/* counts: the int counts a nonblocking reduce-scatter reads until it completes */
struct herd_comm_request { MPI_Request r; int *counts; };

static MPI_Datatype mpi_type(herd_dtype t)
{
    switch (t) {
    case HERD_F32: return MPI_FLOAT;
    case HERD_F64: return MPI_DOUBLE;
    case HERD_I32: return MPI_INT32_T;
    default:       return MPI_INT64_T;
    }
}

static MPI_Comm comm_of(herd_comm *c) { return *(MPI_Comm *)c->impl; }

/* Check an MPI call: print the MPI error string with the group and rank. */
static int check(herd_comm *c, int rc, const char *what)
{
    if (rc == MPI_SUCCESS) return 0;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fprintf(stderr, "herd: rank %d of group '%s': %s: %s\n", c->rank, c->name, what, msg);
    return -1;
}

static int mpi_all_reduce(herd_comm *c, void *buf, size_t n, herd_dtype t, herd_redop op)
{
    return check(c, MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, mpi_type(t),
                                  op == HERD_SUM ? MPI_SUM : MPI_MAX, comm_of(c)),
                 "MPI_Allreduce");
}

static int *int_counts(const size_t *counts, int size, int **displs)
{
    int *ic = malloc(sizeof(int) * size), *id = malloc(sizeof(int) * size);
    size_t off = 0;
    for (int r = 0; ic && id && r < size; r++) {
        ic[r] = (int)counts[r];
        id[r] = (int)off;
        off += counts[r];
    }
    *displs = id;
    return ic;
}

static int mpi_reduce_scatter(herd_comm *c, const void *send, void *recv, const size_t *counts,
                              herd_dtype t)
{
    int *displs, *ic = int_counts(counts, c->size, &displs);
    int rc = MPI_Reduce_scatter(send, recv, ic, mpi_type(t), MPI_SUM, comm_of(c));
    free(ic);
    free(displs);
    return check(c, rc, "MPI_Reduce_scatter");
}

static int mpi_all_gather(herd_comm *c, const void *send, void *recv, const size_t *counts,
                          herd_dtype t)
{
    int *displs, *ic = int_counts(counts, c->size, &displs);
    /* in place when send already sits at this rank's place in recv */
    const void *sb = (const char *)recv + (size_t)displs[c->rank] * herd_dtype_size(t) == send
                         ? MPI_IN_PLACE : send;
    int rc = MPI_Allgatherv(sb, ic[c->rank], mpi_type(t), recv, ic, displs, mpi_type(t),
                            comm_of(c));
    free(ic);
    free(displs);
    return check(c, rc, "MPI_Allgatherv");
}

static int mpi_broadcast(herd_comm *c, void *buf, size_t n, herd_dtype t, int root)
{
    return check(c, MPI_Bcast(buf, (int)n, mpi_type(t), root, comm_of(c)), "MPI_Bcast");
}

static int mpi_send(herd_comm *c, const void *buf, size_t n, herd_dtype t, int peer, int tag)
{
    return check(c, MPI_Send(buf, (int)n, mpi_type(t), peer, tag, comm_of(c)), "MPI_Send");
}

static int mpi_recv(herd_comm *c, void *buf, size_t n, herd_dtype t, int peer, int tag)
{
    return check(c, MPI_Recv(buf, (int)n, mpi_type(t), peer, tag, comm_of(c), MPI_STATUS_IGNORE),
                 "MPI_Recv");
}

static int mpi_isend(herd_comm *c, const void *buf, size_t n, herd_dtype t, int peer, int tag,
                     herd_comm_request **req)
{
    *req = calloc(1, sizeof **req);
    return check(c, MPI_Isend(buf, (int)n, mpi_type(t), peer, tag, comm_of(c), &(*req)->r),
                 "MPI_Isend");
}

static int mpi_irecv(herd_comm *c, void *buf, size_t n, herd_dtype t, int peer, int tag,
                     herd_comm_request **req)
{
    *req = calloc(1, sizeof **req);
    return check(c, MPI_Irecv(buf, (int)n, mpi_type(t), peer, tag, comm_of(c), &(*req)->r),
                 "MPI_Irecv");
}

static int mpi_iall_reduce(herd_comm *c, void *buf, size_t n, herd_dtype t, herd_redop op,
                           herd_comm_request **req)
{
    *req = calloc(1, sizeof **req);
    return check(c, MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, mpi_type(t),
                                   op == HERD_SUM ? MPI_SUM : MPI_MAX, comm_of(c), &(*req)->r),
                 "MPI_Iallreduce");
}

static int mpi_ireduce_scatter(herd_comm *c, const void *send, void *recv, const size_t *counts,
                               herd_dtype t, herd_comm_request **req)
{
    int *displs;
    *req = calloc(1, sizeof **req);
    (*req)->counts = int_counts(counts, c->size, &displs);
    free(displs);
    return check(c, MPI_Ireduce_scatter(send, recv, (*req)->counts, mpi_type(t), MPI_SUM,
                                        comm_of(c), &(*req)->r),
                 "MPI_Ireduce_scatter");
}

static int mpi_wait(herd_comm *c, herd_comm_request *req)
{
    int rc = MPI_Wait(&req->r, MPI_STATUS_IGNORE);
    free(req->counts);
    free(req);
    return check(c, rc, "MPI_Wait");
}

static int mpi_barrier(herd_comm *c) { return check(c, MPI_Barrier(comm_of(c)), "MPI_Barrier"); }

static void mpi_destroy(herd_comm *c)
{
    MPI_Comm *mc = c->impl;
    if (*mc != MPI_COMM_WORLD) MPI_Comm_free(mc);
    free(mc);
    free(c);
}

static const herd_comm_ops mpi_ops = {
    "mpi", mpi_all_reduce, mpi_reduce_scatter, mpi_all_gather, mpi_broadcast, mpi_send,
    mpi_recv, mpi_isend, mpi_irecv, mpi_iall_reduce, mpi_ireduce_scatter, mpi_wait, mpi_barrier,
    mpi_destroy,
};

int herd_mpi_init(int *argc, char ***argv)
{
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (inited) return 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "herd: MPI_Init_thread failed\n");
        return -1;
    }
    /* errors come back as codes, so that messages name the call and the rank */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    return 0;
}

int herd_mpi_finalize(void)
{
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (inited && !finalized) MPI_Finalize();
    return 0;
}

int herd_mpi_world_rank(void)
{
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int herd_mpi_world_size(void)
{
    int s = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &s);
    return s;
}

static herd_comm *wrap(MPI_Comm mc, const char *name)
{
    herd_comm *c = calloc(1, sizeof *c);
    MPI_Comm *p = malloc(sizeof *p);
    if (!c || !p) {
        free(c);
        free(p);
        return NULL;
    }
    *p = mc;
    c->ops = &mpi_ops;
    c->impl = p;
    snprintf(c->name, sizeof c->name, "%s", name);
    MPI_Comm_rank(mc, &c->rank);
    MPI_Comm_size(mc, &c->size);
    return c;
}

herd_comm *herd_comm_mpi_world(void) { return wrap(MPI_COMM_WORLD, "world"); }

herd_comm *herd_comm_mpi_split(herd_comm *parent, int color, int key, const char *name)
{
    if (parent->host) { /* a device (NCCL) group: split its MPI twin, then twin the child */
        herd_comm *h = herd_comm_mpi_split(parent->host, color, key, name);
        if (!h) return NULL;
        herd_comm *d = herd_comm_nccl_from_mpi(h, name);
        if (!d) {
            herd_comm_destroy(h);
            return NULL;
        }
        d->owns_host = 1;
        return d;
    }
    MPI_Comm mc;
    if (check(parent, MPI_Comm_split(comm_of(parent), color, key, &mc), "MPI_Comm_split"))
        return NULL;
    MPI_Comm_set_errhandler(mc, MPI_ERRORS_RETURN);
    return wrap(mc, name);
}

void herd_comm_abort(int code)
{
    int inited = 0;
    MPI_Initialized(&inited);
    fflush(stdout);
    fflush(stderr);
    if (inited) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}
