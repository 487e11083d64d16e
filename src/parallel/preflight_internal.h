/* preflight_internal.h — the parts of herd check's measurement shared by
 * preflight.c (ranks, arithmetic), preflight_ops.c (the groups' collectives)
 * and preflight_links.c (the ping-pong of neighbouring ranks). */
#ifndef HERD_PREFLIGHT_INTERNAL_H
#define HERD_PREFLIGHT_INTERNAL_H

#include <stddef.h>
#include "kernels/backend.h"
#include "src/parallel/grid.h"
#include "src/parallel/preflight.h"

/* SLURMD_NODENAME (Slurm's node, which names emulated nodes apart), else the host name */
void herd_preflight_host(char *buf, size_t n);

/* 0 when rc is 0 on every rank, else -1 on every rank (MPI_COMM_WORLD). */
int herd_preflight_agree(int rc);

/* Fill r->op[] (names, sizes; every rank the same) and time each on this
 * rank's groups: op_s[k] = this rank's median seconds. */
int herd_preflight_ops(herd_grid *g, const herd_backend *be, int reps, herd_preflight_result *r, double *op_s);

/* The ping-pong of this rank with its neighbour in host order: *mine gets
 * the edge this rank started (a = -1 if none). Sets r->small_bytes, large_bytes. */
int herd_preflight_link_probe(herd_grid *g, const herd_backend *be, int reps, const char *host,
                              herd_preflight_result *r, herd_preflight_edge *mine);

/* Every rank's edge to rank 0 (r->edge, r->n_edges), with the height of each
 * from the job's tree. */
int herd_preflight_gather_edges(const herd_preflight_edge *mine, herd_preflight_result *r, int rank);

#endif
