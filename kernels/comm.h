/* comm.h — collectives on a process group, with two implementations:
 *
 *   MPI  (kernels/comm_mpi.c)          host buffers, the CPU backend, every test here;
 *   NCCL (kernels/cuda/comm_nccl.cu) device buffers, the CUDA backend.
 *
 * A herd_comm is one group (the TP group, the DP group, the world, ...); the
 * model and the trainer call the functions below and never MPI or NCCL
 * directly, so the same model code runs over either. Counts are in elements.
 * Every call returns 0, or -1 after printing the failing call, the group, the
 * rank, the file and the line (the project's status convention); the caller
 * aborts the job (herd_comm_abort) because a failed collective leaves the
 * other ranks waiting.
 *
 * Each group keeps the seconds spent in its calls (`seconds`), so that the
 * trainer can split a step into compute and communication per group.
 */
#ifndef HERD_COMM_H
#define HERD_COMM_H

#include <stddef.h>
#include <stdint.h>

typedef enum { HERD_F32, HERD_F64, HERD_I32, HERD_I64 } herd_dtype;
typedef enum { HERD_SUM, HERD_MAX } herd_redop;

typedef struct herd_comm herd_comm;
typedef struct herd_comm_request herd_comm_request;

typedef struct {
    const char *name; /* "mpi", "nccl" */
    int (*all_reduce)(herd_comm *c, void *buf, size_t n, herd_dtype t, herd_redop op);
    /* recv[counts[rank]] = sum over ranks of send[displ(rank) .. + counts[rank]],
     * displ(r) = counts[0] + ... + counts[r-1]; counts may differ per rank */
    int (*reduce_scatter)(herd_comm *c, const void *send, void *recv, const size_t *counts,
                          herd_dtype t);
    /* recv = concatenation over ranks of each rank's send[counts[rank]] */
    int (*all_gather)(herd_comm *c, const void *send, void *recv, const size_t *counts,
                      herd_dtype t);
    int (*broadcast)(herd_comm *c, void *buf, size_t n, herd_dtype t, int root);
    int (*send)(herd_comm *c, const void *buf, size_t n, herd_dtype t, int peer, int tag);
    int (*recv)(herd_comm *c, void *buf, size_t n, herd_dtype t, int peer, int tag);
    /* asynchronous point-to-point and all-reduce: *req is completed by wait */
    int (*isend)(herd_comm *c, const void *buf, size_t n, herd_dtype t, int peer, int tag,
                 herd_comm_request **req);
    int (*irecv)(herd_comm *c, void *buf, size_t n, herd_dtype t, int peer, int tag,
                 herd_comm_request **req);
    int (*iall_reduce)(herd_comm *c, void *buf, size_t n, herd_dtype t, herd_redop op,
                       herd_comm_request **req);
    /* reduce_scatter's semantics, completed by wait; send and recv must stay
     * untouched until then (NCCL: queued on the group's stream after the
     * compute queued so far) */
    int (*ireduce_scatter)(herd_comm *c, const void *send, void *recv, const size_t *counts,
                           herd_dtype t, herd_comm_request **req);
    int (*wait)(herd_comm *c, herd_comm_request *req); /* frees req */
    int (*barrier)(herd_comm *c);
    void (*destroy)(herd_comm *c);
} herd_comm_ops;

struct herd_comm {
    const herd_comm_ops *ops;
    char   name[16];  /* "tp", "dp", "world", ... for messages and timers */
    int    rank, size;
    double seconds;   /* wall time spent in this group's calls */
    void  *impl;      /* MPI_Comm* or the NCCL communicator */
    herd_comm *host;  /* NCCL: the MPI group of the same ranks (splits go through it); NULL for MPI */
    int    owns_host; /* destroy `host` with this group (a split's twin) */
};

/* ---- MPI (always built) ------------------------------------------------- */

/* Initialise MPI once for the process (MPI_THREAD_FUNNELED: only the main
 * thread calls MPI; background threads do file I/O). Idempotent. */
int herd_mpi_init(int *argc, char ***argv);
int herd_mpi_finalize(void);
int herd_mpi_world_rank(void);
int herd_mpi_world_size(void);

/* The whole job as a group. */
herd_comm *herd_comm_mpi_world(void);
/* A sub-group: the world ranks with the same `color`, ordered by `key`. */
herd_comm *herd_comm_mpi_split(herd_comm *parent, int color, int key, const char *name);
/* (a parent with a `host` MPI twin, i.e. an NCCL group, is split through its
 * twin and the child is the NCCL twin of that split, owning it) */

/* ---- NCCL (built with the CUDA backend) --------------------------------- */

/* A NCCL communicator over the ranks of an MPI group (the unique id is
 * broadcast over MPI). NULL, with a message, when not built with CUDA. */
herd_comm *herd_comm_nccl_from_mpi(herd_comm *mpi_group, const char *name);

/* ---- calls (thin wrappers that time the call and check the status) ------ */

int herd_comm_all_reduce(herd_comm *c, void *buf, size_t n, herd_dtype t, herd_redop op);
int herd_comm_reduce_scatter(herd_comm *c, const void *send, void *recv, const size_t *counts,
                             herd_dtype t);
int herd_comm_all_gather(herd_comm *c, const void *send, void *recv, const size_t *counts,
                         herd_dtype t);
int herd_comm_broadcast(herd_comm *c, void *buf, size_t n, herd_dtype t, int root);
int herd_comm_send(herd_comm *c, const void *buf, size_t n, herd_dtype t, int peer, int tag);
int herd_comm_recv(herd_comm *c, void *buf, size_t n, herd_dtype t, int peer, int tag);
int herd_comm_isend(herd_comm *c, const void *buf, size_t n, herd_dtype t, int peer, int tag,
                    herd_comm_request **req);
int herd_comm_irecv(herd_comm *c, void *buf, size_t n, herd_dtype t, int peer, int tag,
                    herd_comm_request **req);
int herd_comm_iall_reduce(herd_comm *c, void *buf, size_t n, herd_dtype t, herd_redop op,
                          herd_comm_request **req);
int herd_comm_ireduce_scatter(herd_comm *c, const void *send, void *recv, const size_t *counts,
                              herd_dtype t, herd_comm_request **req);
int herd_comm_wait(herd_comm *c, herd_comm_request *req);
int herd_comm_barrier(herd_comm *c);
void herd_comm_destroy(herd_comm *c);

/* Equal split of n elements over `parts`: the first n % parts get one more.
 * counts[parts]; returns the offset of part `i`. */
size_t herd_split_counts(size_t n, int parts, size_t *counts, int i);

/* End the whole job now with `code` (MPI_Abort): for errors that leave other
 * ranks blocked in a collective. */
void herd_comm_abort(int code) __attribute__((noreturn));

size_t herd_dtype_size(herd_dtype t);

#endif
