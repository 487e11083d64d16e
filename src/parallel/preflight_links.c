/* preflight_links.c — the links of the job, measured: ranks in host order
 * (node by node), each with the next one (the last with the first) times a
 * ping-pong of a small and a large message. Neighbours inside a node measure
 * height 1, the last rank of a node and the first of the next measure the
 * height between those nodes (2 under one leaf switch, ...). Pairs run in
 * three rounds of disjoint pairs (even starts, odd starts, the wrap-around),
 * each pair once, so that the cost does not grow with the ranks. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "monitoring/clock.h"
#include "src/parallel/preflight_internal.h"
#include "topology/linkstat.h"
#include "topology/topo.h"

enum { SMALL_BYTES = 8, LARGE_BYTES = 1 << 20, PING_TAG = 72, TRIPS_TAG = 73, PAIR_MAX_TRIPS = 1000 };
#define PAIR_WINDOW_S 0.01

void herd_preflight_host(char *buf, size_t n)
{
    const char *node = getenv("SLURMD_NODENAME");
    if (node && *node) snprintf(buf, n, "%s", node);
    else if (gethostname(buf, n - 1)) snprintf(buf, n, "localhost");
    buf[n - 1] = '\0';
}

int herd_preflight_agree(int rc)
{
    int bad = rc != 0, any = 1;
    if (MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) herd_comm_abort(1);
    return any ? -1 : 0;
}

static const char (*sort_hosts)[HERD_PF_HOST];
static int by_host(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y, c = strcmp(sort_hosts[a], sort_hosts[b]);
    return c ? c : (a > b) - (a < b);
}

/* n round trips of `bytes` with peer (first: this rank sends first); the
 * mean seconds of one */
static double pingpong(herd_comm *c, void *buf, size_t bytes, int peer, int first, int n)
{
    size_t count = bytes / sizeof(float);
    double t0 = herd_now_s();
    for (int i = 0; i < n; i++) {
        int rc = first ? herd_comm_send(c, buf, count, HERD_F32, peer, PING_TAG) ||
                             herd_comm_recv(c, buf, count, HERD_F32, peer, PING_TAG)
                       : herd_comm_recv(c, buf, count, HERD_F32, peer, PING_TAG) ||
                             herd_comm_send(c, buf, count, HERD_F32, peer, PING_TAG);
        if (rc) herd_comm_abort(1); /* the partner would wait for ever */
    }
    return (herd_now_s() - t0) / n;
}

/* round trips per sample: as many as fill PAIR_WINDOW_S at the speed of the
 * warm-up, decided by the rank that starts and sent to its partner over MPI
 * (host memory whatever the backend); a sample is their mean, so that a
 * moment of scheduling does not decide it */
static int trips_for(double rtt)
{
    double n = rtt > 0 ? PAIR_WINDOW_S / rtt : PAIR_MAX_TRIPS;
    return n < 1 ? 1 : n > PAIR_MAX_TRIPS ? PAIR_MAX_TRIPS : (int)n;
}

static int agree_trips(int first, int peer, double s, double l, int trips[2])
{
    if (first) {
        trips[0] = trips_for(s);
        trips[1] = trips_for(l);
        return MPI_Send(trips, 2, MPI_INT, peer, TRIPS_TAG, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
    }
    return MPI_Recv(trips, 2, MPI_INT, peer, TRIPS_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE) == MPI_SUCCESS ? 0 : -1;
}

/* Pair i (0 <= i < W) is host-order positions i and i + 1 (the last: W - 1
 * and 0). Each rank is in two pairs, so they run in rounds of disjoint
 * pairs: even i in round 0, odd i in round 1, and with an odd W the last
 * pair alone in round 2. With an even W (the usual: ranks per node times
 * nodes) every pair between two nodes runs in round 1 at once, as links are
 * loaded in training, and alike pairs are compared under alike load. */
static int pair_round(int i, int W) { return i == W - 1 && W % 2 ? 2 : i % 2; }

/* the partner of position pos in `round`, -1 if none; *first: pos starts the pair */
static int partner(const int *order, int W, int pos, int round, int *first)
{
    int n_pairs = W > 2 ? W : W - 1;
    if (pos < n_pairs && pair_round(pos, W) == round) {
        *first = 1;
        return order[(pos + 1) % W];
    }
    int prev = pos > 0 ? pos - 1 : n_pairs == W ? W - 1 : -1;
    if (prev >= 0 && pair_round(prev, W) == round) {
        *first = 0;
        return order[prev];
    }
    return -1;
}

int herd_preflight_link_probe(herd_grid *g, const herd_backend *be, int reps, const char *host,
                              herd_preflight_result *r, herd_preflight_edge *mine)
{
    int W = g->world_size, me = g->world_rank;
    r->small_bytes = SMALL_BYTES;
    r->large_bytes = LARGE_BYTES;
    memset(mine, 0, sizeof *mine);
    mine->a = -1;
    char(*hosts)[HERD_PF_HOST] = calloc((size_t)W, HERD_PF_HOST);
    int *order = malloc(sizeof *order * (size_t)W);
    char name[HERD_PF_HOST] = {0};
    snprintf(name, sizeof name, "%s", host);
    if (!hosts || !order ||
        MPI_Allgather(name, HERD_PF_HOST, MPI_CHAR, hosts, HERD_PF_HOST, MPI_CHAR, MPI_COMM_WORLD) != MPI_SUCCESS)
        herd_comm_abort(1);
    for (int i = 0; i < W; i++) order[i] = i;
    sort_hosts = (const char(*)[HERD_PF_HOST])hosts;
    qsort(order, (size_t)W, sizeof *order, by_host);
    int pos = 0;
    while (order[pos] != me) pos++;
    /* the links are the world's: MPI on host memory, NCCL on the device's */
    herd_comm *link = g->world, *twin = NULL;
    if (g->tp_dev != g->tp_group || g->dp_dev != g->dp_group || g->pp_dev != g->pp_group || g->cp_dev != g->cp_group)
        link = twin = herd_comm_nccl_from_mpi(g->world, "links");
    void *buf = be->alloc(be, LARGE_BYTES);
    double *ts = calloc((size_t)reps + 1, sizeof *ts), *tl = calloc((size_t)reps + 1, sizeof *tl);
    int rc = link && buf && ts && tl ? 0 : -1, peer_w = -1, trips[3][2];
    /* repetitions outermost: a pair's samples spread over the whole probe;
     * k = 0 is the warm-up (connections), which sizes the samples */
    for (int k = 0; k <= reps && !herd_preflight_agree(rc); k++)
        for (int round = 0; round < 3 && !rc; round++) {
            int first = 0, peer = partner(order, W, pos, round, &first), *n = trips[round];
            if (peer < 0) continue;
            double s = pingpong(link, buf, SMALL_BYTES, peer, first, k ? n[0] : 2);
            double l = pingpong(link, buf, LARGE_BYTES, peer, first, k ? n[1] : 2);
            if (k == 0 && agree_trips(first, peer, s, l, n)) herd_comm_abort(1);
            if (first) {
                ts[k] = s;
                tl[k] = l;
                peer_w = peer;
            }
        }
    if (!rc && peer_w >= 0)
        *mine = (herd_preflight_edge){.a = me, .b = peer_w, .small_s = herd_stat_median(ts + 1, reps),
                                      .large_s = herd_stat_median(tl + 1, reps)};
    free(ts);
    free(tl);
    rc = herd_preflight_agree(rc);
    if (buf) be->free(be, buf);
    if (twin) herd_comm_destroy(twin);
    free(hosts);
    free(order);
    return rc;
}

/* heights of r's edges from the job's tree (topology.conf when there is one,
 * as placement builds it); without a tree: 1 on one host, 2 across hosts */
static void edge_heights(herd_preflight_result *r)
{
    int W = r->world_size;
    const char **names = malloc(sizeof *names * (size_t)W);
    herd_topo *t = NULL;
    char conf[1024];
    int have_conf = herd_topo_conf_default(conf, sizeof conf) == 0;
    if (names) {
        for (int w = 0; w < W; w++) names[w] = r->rank[w].host;
        if (herd_topo_from_hosts(&t, W, names, have_conf ? conf : NULL)) t = NULL;
    }
    for (int e = 0; e < r->n_edges; e++) {
        herd_preflight_edge *x = &r->edge[e];
        if (t) x->height = herd_topo_rank_distance(t, x->a, x->b);
        else x->height = strcmp(r->rank[x->a].host, r->rank[x->b].host) ? 2 : 1;
    }
    herd_topo_free(t);
    free(names);
}

int herd_preflight_gather_edges(const herd_preflight_edge *mine, herd_preflight_result *r, int rank)
{
    int W = r->world_size;
    herd_preflight_edge *all = rank == 0 ? calloc((size_t)W, sizeof *all) : NULL;
    if (rank == 0 && !all) herd_comm_abort(1);
    if (MPI_Gather(mine, (int)sizeof *mine, MPI_BYTE, all, (int)sizeof *mine, MPI_BYTE, 0, MPI_COMM_WORLD) !=
        MPI_SUCCESS) {
        free(all);
        return -1;
    }
    if (rank != 0) return 0;
    r->edge = all;
    r->n_edges = 0;
    for (int w = 0; w < W; w++)
        if (all[w].a >= 0) all[r->n_edges++] = all[w];
    edge_heights(r);
    return 0;
}
