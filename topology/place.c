/* place.c — ranks onto the [TP, CP, PP, DP] grid so that the heaviest
 * traffic stays on the fastest links, and what each group's links give.
 *
 * Best fit, outermost unit first. A model replica (TP*CP*PP ranks, the ranks
 * of one DP index) goes to the smallest subtree that still has room for it
 * (so that no replica crosses a pod when another choice avoids it); inside
 * it each pipeline stage (TP*CP ranks) goes to the smallest subtree with room,
 * and each TP group to one node when one has room. Within the chosen subtree
 * the ranks are taken in tree order. Cost: O(ranks * tree depth * fan-out).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "topology/topo_internal.h"

typedef struct {
    const herd_topo *t;
    int  nv;          /* switches then nodes: vertex v < n_switches is a switch */
    int *child_off, *child;  /* CSR children of every vertex */
    int *free_;       /* unassigned ranks below each vertex */
    int *live;        /* per vertex: its children before child[live[v]] have no free rank left */
    int *node_rank_off, *node_rank, *node_next;  /* ranks of each node in local order */
} placer;

static void placer_free(placer *p)
{
    free(p->child_off);
    free(p->child);
    free(p->free_);
    free(p->live);
    free(p->node_rank_off);
    free(p->node_rank);
    free(p->node_next);
}

static int placer_init(placer *p, const herd_topo *t)
{
    memset(p, 0, sizeof *p);
    p->t = t;
    int S = t->n_switches, N = t->n_nodes;
    p->nv = S + N;
    p->child_off = calloc((size_t)p->nv + 1, sizeof(int));
    p->child = malloc((size_t)p->nv * sizeof(int));
    p->free_ = calloc((size_t)p->nv, sizeof(int));
    p->live = malloc((size_t)p->nv * sizeof(int));
    p->node_rank_off = calloc((size_t)N + 1, sizeof(int));
    p->node_rank = malloc((size_t)t->n_ranks * sizeof(int));
    p->node_next = calloc((size_t)N, sizeof(int));
    if (!p->child_off || !p->child || !p->free_ || !p->live || !p->node_rank_off || !p->node_rank || !p->node_next) {
        placer_free(p);
        return -1;
    }
    /* children: switches (in index order) first, then nodes (in tree order) */
    for (int s = 0; s < S; s++)
        if (t->sw[s].parent >= 0) p->child_off[t->sw[s].parent + 1]++;
    for (int n = 0; n < N; n++) p->child_off[t->node[n].leaf + 1]++;
    for (int v = 0; v < p->nv; v++) p->child_off[v + 1] += p->child_off[v];
    for (int v = 0; v < p->nv; v++) p->live[v] = p->child_off[v];
    int *fill = calloc((size_t)p->nv, sizeof(int));
    if (!fill) { placer_free(p); return -1; }
    for (int s = 0; s < S; s++)
        if (t->sw[s].parent >= 0) {
            int par = t->sw[s].parent;
            p->child[p->child_off[par] + fill[par]++] = s;
        }
    for (int n = 0; n < N; n++) {
        int par = t->node[n].leaf;
        p->child[p->child_off[par] + fill[par]++] = S + n;
    }
    free(fill);
    for (int r = 0; r < t->n_ranks; r++) p->node_rank_off[t->rank[r].node + 1]++;
    for (int n = 0; n < N; n++) p->node_rank_off[n + 1] += p->node_rank_off[n];
    for (int r = 0; r < t->n_ranks; r++) {
        int n = t->rank[r].node;
        /* local ranks are numbered in rank order, so this keeps local order */
        p->node_rank[p->node_rank_off[n] + p->node_next[n]++] = r;
    }
    for (int n = 0; n < N; n++) {
        p->node_next[n] = 0;
        int cnt = p->node_rank_off[n + 1] - p->node_rank_off[n];
        for (int v = S + n; v >= 0; v = v < S ? t->sw[v].parent : t->node[v - S].leaf) p->free_[v] += cnt;
    }
    return 0;
}

static int root_of(const herd_topo *t)
{
    for (int s = 0; s < t->n_switches; s++)
        if (t->sw[s].parent < 0) return s;
    return -1;
}

/* the first child of v that may still have a free rank: children are used up
 * mostly in order, so skipping the used prefix keeps a wide switch (thousands
 * of nodes) from costing a scan of all of them for every unit placed */
static int first_live(placer *p, int v)
{
    int k = p->live[v], end = p->child_off[v + 1];
    while (k < end && p->free_[p->child[k]] == 0) k++;
    return p->live[v] = k;
}

/* the smallest subtree below v (or v) with at least `size` free ranks; the
 * first of equals (an exact fit ends the search: none is smaller) */
static int descend(placer *p, int v, int size)
{
    for (;;) {
        int best = -1;
        for (int k = first_live(p, v); k < p->child_off[v + 1]; k++) {
            int c = p->child[k];
            if (p->free_[c] >= size && (best < 0 || p->free_[c] < p->free_[best])) {
                best = c;
                if (p->free_[c] == size) break;
            }
        }
        if (best < 0) return v;
        v = best;
    }
}

/* take `need` free ranks below v in tree order into out; returns how many */
static int take(placer *p, int v, int need, int *out)
{
    const herd_topo *t = p->t;
    int S = t->n_switches, got = 0;
    if (need <= 0 || p->free_[v] == 0) return 0;
    if (v >= S) {
        int n = v - S;
        while (got < need && p->node_next[n] < p->node_rank_off[n + 1] - p->node_rank_off[n]) {
            out[got++] = p->node_rank[p->node_rank_off[n] + p->node_next[n]++];
        }
        for (int u = v; u >= 0; u = u < S ? t->sw[u].parent : t->node[u - S].leaf) p->free_[u] -= got;
        return got;
    }
    for (int k = first_live(p, v); k < p->child_off[v + 1] && got < need; k++)
        got += take(p, p->child[k], need - got, out + got);
    return got;
}

/* a unit of sizes[k] ranks below scope: recurse into its sub-units */
static void alloc_unit(placer *p, int scope, const int *sizes, int k, int *out)
{
    int u = descend(p, scope, sizes[k]);
    if (k == 0) {
        take(p, u, sizes[0], out);
        return;
    }
    for (int i = 0; i < sizes[k] / sizes[k - 1]; i++) alloc_unit(p, u, sizes, k - 1, out + i * sizes[k - 1]);
}

static int check_dims(const herd_topo *t, int tp, int cp, int pp, int dp)
{
    if (tp < 1 || cp < 1 || pp < 1 || dp < 1) {
        fprintf(stderr, "herd topo: layout tp=%d cp=%d pp=%d dp=%d: every size must be >= 1\n", tp, cp, pp, dp);
        return -1;
    }
    long long n = (long long)tp * cp * pp * dp;
    if (n != t->n_ranks) {
        fprintf(stderr, "%s: layout tp=%d x cp=%d x pp=%d x dp=%d = %lld ranks does not fit the job's %d ranks\n",
                t->conf_path[0] ? t->conf_path : "herd topo", tp, cp, pp, dp, n, t->n_ranks);
        return -1;
    }
    return 0;
}

int herd_topo_place(const herd_topo *t, int tp, int cp, int pp, int dp, int *perm)
{
    if (check_dims(t, tp, cp, pp, dp)) return -1;
    placer p;
    if (placer_init(&p, t)) return -1;
    int sizes[3] = {tp, tp * cp, tp * cp * pp}, root = root_of(t);
    for (int d = 0; d < dp; d++) alloc_unit(&p, root, sizes, 2, perm + (size_t)d * sizes[2]);
    placer_free(&p);
    return 0;
}

int herd_topo_place_naive(const herd_topo *t, int tp, int cp, int pp, int dp, int *perm)
{
    if (check_dims(t, tp, cp, pp, dp)) return -1;
    for (int d = 0; d < dp; d++)
        for (int q = 0; q < pp; q++)
            for (int c = 0; c < cp; c++)
                for (int x = 0; x < tp; x++)
                    perm[x + tp * (c + cp * (q + pp * d))] = d + dp * (q + pp * (c + cp * x));
    return 0;
}

int herd_topo_place_linear(const herd_topo *t, int tp, int cp, int pp, int dp, int *perm)
{
    if (check_dims(t, tp, cp, pp, dp)) return -1;
    for (int g = 0; g < t->n_ranks; g++) perm[g] = g;
    return 0;
}

/* ---- what the links give each group ---- */

/* the uplinks an edge a->b loads: every switch below the LCA on each side */
static void count_edge(const herd_topo *t, int a, int b, int h, int *out, int *in)
{
    for (int s = t->node[t->rank[a].node].leaf; s >= 0 && t->sw[s].height < h; s = t->sw[s].parent) out[s]++;
    for (int s = t->node[t->rank[b].node].leaf; s >= 0 && t->sw[s].height < h; s = t->sw[s].parent) in[s]++;
}

static double uplink_share(const herd_topo *t, int s, const int *out, const int *in)
{
    int par = t->sw[s].parent, flows = out[s] > in[s] ? out[s] : in[s];
    if (par < 0 || flows == 0) return 1e30;
    const herd_topo_link *l = &t->link[t->sw[par].height];
    return t->sw[s].n_gpus * l->bw_GBps / l->oversub / flows;
}

static double edge_bw(const herd_topo *t, int a, int b, int h, const int *out, const int *in)
{
    if (h <= 1) return t->link[1].bw_GBps;
    double bw = 1e30;
    for (int k = 2; k <= h; k++)
        if (t->link[k].bw_GBps < bw) bw = t->link[k].bw_GBps;
    for (int s = t->node[t->rank[a].node].leaf; s >= 0 && t->sw[s].height < h; s = t->sw[s].parent) {
        double x = uplink_share(t, s, out, in);
        if (x < bw) bw = x;
    }
    for (int s = t->node[t->rank[b].node].leaf; s >= 0 && t->sw[s].height < h; s = t->sw[s].parent) {
        double x = uplink_share(t, s, out, in);
        if (x < bw) bw = x;
    }
    return bw;
}

/* grid index of member k of the group of dimension `dim` through base */
static int member(const int dims[HERD_NDIM], const int stride[HERD_NDIM], int base, int dim, int k)
{
    (void)dims;
    return base + k * stride[dim];
}

int herd_topo_group_stats(const herd_topo *t, const int dims[HERD_NDIM], const int *perm,
                          herd_topo_groupstat stat[HERD_NDIM])
{
    if (check_dims(t, dims[0], dims[1], dims[2], dims[3])) return -1;
    int stride[HERD_NDIM] = {1, dims[0], dims[0] * dims[1], dims[0] * dims[1] * dims[2]};
    int *out = calloc((size_t)t->n_switches, sizeof(int)), *in = calloc((size_t)t->n_switches, sizeof(int));
    if (!out || !in) { free(out); free(in); return -1; }
    for (int d = 0; d < HERD_NDIM; d++) {
        herd_topo_groupstat *st = &stat[d];
        memset(st, 0, sizeof *st);
        st->size = dims[d];
        st->n_groups = t->n_ranks / dims[d];
        st->bw_GBps = t->link[1].bw_GBps;
        st->latency_us = 0;
        if (dims[d] == 1) continue;
        memset(out, 0, (size_t)t->n_switches * sizeof(int));
        memset(in, 0, (size_t)t->n_switches * sizeof(int));
        /* pass 1: every ring edge of every group at once loads the uplinks */
        for (int g = 0; g < t->n_ranks; g++) {
            int c = (g / stride[d]) % dims[d];
            int nxt = g + (c + 1 < dims[d] ? stride[d] : -(dims[d] - 1) * stride[d]);
            int a = perm[g], b = perm[nxt];
            count_edge(t, a, b, herd_topo_rank_distance(t, a, b), out, in);
        }
        /* pass 2: each group's slowest edge */
        st->bw_GBps = 1e30;
        for (int g = 0; g < t->n_ranks; g++) {
            if ((g / stride[d]) % dims[d]) continue; /* g is the base of its group */
            int maxh = 0, over = 0;
            double gbw = 1e30;
            for (int k = 0; k < dims[d]; k++) {
                int a = perm[member(dims, stride, g, d, k)], b = perm[member(dims, stride, g, d, (k + 1) % dims[d])];
                int h = herd_topo_rank_distance(t, a, b);
                double bw = edge_bw(t, a, b, h, out, in);
                if (bw < gbw) gbw = bw;
                if (h > maxh) maxh = h;
                for (int x = 2; x <= h; x++) over |= t->link[x].oversub > 1.0;
            }
            if (gbw < st->bw_GBps) st->bw_GBps = gbw;
            if (maxh > st->max_height) st->max_height = maxh;
            st->n_spanning += maxh >= 2;
            st->n_oversub += over;
        }
        st->latency_us = t->link[st->max_height].latency_us;
    }
    free(out);
    free(in);
    return 0;
}

int herd_topo_layout_parse(const char *prog, const char *s, int l[HERD_NDIM])
{
    char extra;
    if (sscanf(s, "%d,%d,%d,%d%c", &l[0], &l[1], &l[2], &l[3], &extra) != 4 || l[0] < 1 || l[1] < 1 || l[2] < 1 ||
        l[3] < 1) {
        fprintf(stderr, "%s: --layout '%s': expected TP,CP,PP,DP (positive integers)\n", prog, s);
        return -1;
    }
    return 0;
}
