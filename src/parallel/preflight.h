/* preflight.h — `herd check`: measure the job's ranks, groups and links
 * before training, and name what is slow.
 *
 * Every rank reports its binding (host, local rank, cores; the GPU column is
 * filled by the device selection) and measures its speed at arithmetic; each
 * group of the config's layout (placed and split as the trainer does,
 * src/parallel/placement.h, grid.h) times its collective at the sizes of one
 * step, over the groups that carry the backend's buffers (MPI on the CPU,
 * NCCL with the CUDA backend); neighbouring ranks in host order time a
 * ping-pong of a small and a large message, which gives each height of the
 * tree its latency and bandwidth. Times are medians over `reps` repetitions.
 * Rank 0 gathers everything (herd_preflight_result) and judges it
 * (preflight_report.c): slow nodes, slow groups and slow links against the
 * median of their peers. docs/slurm.md "Preflight: herd check".
 */
#ifndef HERD_PREFLIGHT_H
#define HERD_PREFLIGHT_H

#include <stddef.h>
#include "src/config/config.h"
#include "topology/linkstat.h"

enum { HERD_PF_HOST = 64, HERD_PF_DESC = 160 };

/* Elements per rank (fp32) of one step's messages, as the model and FSDP
 * size them (src/model/model.c, src/parallel/fsdp.c), at the batch ramp's
 * last stage (the sequence length most of the run uses). */
typedef struct {
    int    seq_len, micro_batch, sp;
    size_t tp;   /* TP: all-reduce of micro_batch x seq/cp x d_model; with SP the
                    all-gather and reduce-scatter of 1/tp of it per rank */
    size_t cp;   /* CP: the all-gather of K (and of V): micro_batch x seq/cp x kv heads/tp x head_dim */
    size_t pp;   /* PP: one activation sent to the next stage (1/tp of it with SP) */
    size_t dp;   /* FSDP: this rank's shard, the model's parameters / (tp x pp) / dp */
} herd_preflight_sizes;

void herd_preflight_sizes_from_config(const herd_config *c, int dp, herd_preflight_sizes *s);

/* One rank's place and binding. */
typedef struct {
    char host[HERD_PF_HOST];
    int  local_rank;
    int  coord[4];               /* tp, cp, pp, dp rank */
    char cores[HERD_PF_DESC];    /* the cores it may run on (after parallel.bind_cores) */
    char gpu[HERD_PF_DESC];      /* "-" on the CPU backend */
} herd_preflight_rank;

/* One collective of one dimension, timed on every group of it at once. */
typedef struct {
    char   name[32];   /* "tp all_reduce", "dp reduce_scatter", "pp send/recv", ... */
    int    dim;        /* HERD_DIM_TP .. HERD_DIM_DP (topology/topo.h) */
    int    kind;       /* HERD_PF_ALL_REDUCE ... */
    size_t elems;      /* per rank, at the step's size */
    size_t measured;   /* per rank, as measured (capped: HERD_PF_MAX_ELEMS) */
    double *rank_s;    /* [world] each rank's median seconds */
} herd_preflight_op;

enum { HERD_PF_ALL_REDUCE, HERD_PF_ALL_GATHER, HERD_PF_REDUCE_SCATTER, HERD_PF_SENDRECV };
/* 32 Mi elements (128 MiB) a message at most: a 405B FSDP shard would ask
 * for gigabytes; bandwidth is flat long before this size */
#define HERD_PF_MAX_ELEMS ((size_t)1 << 25)

/* Neighbouring ranks a, b (host order): a ping-pong. */
typedef struct {
    int    a, b, height;
    /* round trip of small_bytes and large_bytes: the median over the
     * repetitions of the mean of a burst of round trips (~10 ms each) */
    double small_s, large_s;
} herd_preflight_edge;

typedef struct {
    int    world_size, reps, layout[4];
    char   backend[16], layout_desc[96], placement[256];
    herd_preflight_sizes sizes;
    herd_preflight_rank *rank;     /* [world] */
    double *compute_s;             /* [world] median seconds per 2^20 multiply-adds of the arithmetic probe */
    int    n_ops;
    herd_preflight_op op[8];
    int    n_edges;
    herd_preflight_edge *edge;     /* [n_edges] */
    size_t small_bytes, large_bytes;
} herd_preflight_result;

typedef struct {
    int reps;   /* repetitions of each measurement (median) */
} herd_preflight_options;

/* Collective over MPI_COMM_WORLD (herd_mpi_init done): every rank measures;
 * rank 0's *r gets everything (other ranks' *r is freed before return).
 * `origin` names the config in messages. 0, or -1 on every rank with a
 * message (rank 0) when the layout does not fit or a measurement failed. */
int herd_preflight_run(const herd_config *c, const char *origin, const herd_preflight_options *o,
                       herd_preflight_result *r);
void herd_preflight_free(herd_preflight_result *r);

/* ---- the verdict (preflight_report.c; pure, on rank 0's result) ---- */

typedef struct {
    int     n_nodes;
    char  (*node)[HERD_PF_HOST];   /* [n_nodes] in first-rank order */
    int    *node_of;               /* [world] each rank's node */
    double *node_compute_s;        /* median over the node's ranks */
    double *node_link_ratio;       /* its best pair with another node (inside it when none), against
                                      the median of the other pairs of that height */
    int    *node_slow;             /* 1 slow by arithmetic, 2 by links, 3 both */
    double *edge_ratio;            /* [n_edges] edge time / the median of the other edges of its height */
    double *group_s[8];            /* [op][group] the slowest member's median seconds */
    double *group_ratio[8];        /* [op][group] against the median of the op's other groups */
    int    *group_of[8];           /* [op][world] each rank's group */
    int     n_groups[8];
    int     n_links;
    herd_link_measure links[8];    /* the links file: per height measured */
} herd_preflight_verdict;

/* Judge r: a node is slow when its arithmetic takes more than `factor` x the
 * median of the other nodes, or when even its best pair with another node
 * does (against the pairs of the same height); the links file's numbers are the medians over
 * the pairs that touch no slow node. -1 out of memory. */
int herd_preflight_judge(const herd_preflight_result *r, double factor, herd_preflight_verdict *v);
void herd_preflight_verdict_free(herd_preflight_verdict *v);

/* DIR/slow_nodes, DIR/links, DIR/check.json (crash-safe, DIR created 0750);
 * a summary on stdout. -1 with a message naming the file. */
int herd_preflight_write(const herd_preflight_result *r, const herd_preflight_verdict *v, double factor,
                         const char *dir);

#endif
