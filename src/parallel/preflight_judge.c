/* preflight_judge.c — what herd check's numbers say (see preflight.h): slow
 * nodes, slow groups and slow links against the median of their peers, and
 * each height's link numbers. Pure: rank 0's gathered result in, no MPI. */
#include <stdlib.h>
#include <string.h>
#include "src/parallel/preflight.h"
#include "topology/topo.h"

void herd_preflight_verdict_free(herd_preflight_verdict *v)
{
    free(v->node);
    free(v->node_compute_s);
    free(v->node_link_ratio);
    free(v->node_slow);
    free(v->node_of);
    free(v->edge_ratio);
    for (int k = 0; k < 8; k++) {
        free(v->group_s[k]);
        free(v->group_ratio[k]);
        free(v->group_of[k]);
    }
    memset(v, 0, sizeof *v);
}

/* the hosts in first-rank order, node_of[rank]; each node's arithmetic time */
static int judge_nodes(const herd_preflight_result *r, double factor, herd_preflight_verdict *v)
{
    int W = r->world_size;
    v->node = calloc((size_t)W, sizeof *v->node);
    v->node_of = calloc((size_t)W, sizeof *v->node_of);
    v->node_compute_s = calloc((size_t)W, sizeof *v->node_compute_s);
    v->node_link_ratio = calloc((size_t)W, sizeof *v->node_link_ratio);
    v->node_slow = calloc((size_t)W, sizeof *v->node_slow);
    double *t = calloc((size_t)W, sizeof *t);
    if (!v->node || !v->node_of || !v->node_compute_s || !v->node_link_ratio || !v->node_slow || !t) {
        free(t);
        return -1;
    }
    for (int w = 0; w < W; w++) {
        int n = 0;
        while (n < v->n_nodes && strcmp(v->node[n], r->rank[w].host)) n++;
        if (n == v->n_nodes) memcpy(v->node[v->n_nodes++], r->rank[w].host, HERD_PF_HOST);
        v->node_of[w] = n;
    }
    for (int n = 0; n < v->n_nodes; n++) {
        int k = 0;
        for (int w = 0; w < W; w++)
            if (v->node_of[w] == n) t[k++] = r->compute_s[w];
        v->node_compute_s[n] = herd_stat_median(t, k);
        v->node_link_ratio[n] = 1;
    }
    int *slow = calloc((size_t)v->n_nodes, sizeof *slow);
    int rc = slow ? herd_stat_slow_vs_peers(v->node_compute_s, v->n_nodes, factor, slow) : -1;
    for (int n = 0; rc >= 0 && n < v->n_nodes; n++) v->node_slow[n] = slow[n];
    free(slow);
    free(t);
    return rc < 0 ? -1 : 0;
}

static double edge_cost(const herd_preflight_edge *e) { return e->small_s + e->large_s; }

/* each edge against the other edges of its height that touch no node found
 * slow by its arithmetic: a slow node's pairs are no yardstick for the others
 * (with few nodes, one lucky pair of a slow node would make a healthy pair
 * look slow) */
static int judge_edges(const herd_preflight_result *r, double factor, herd_preflight_verdict *v)
{
    int E = r->n_edges;
    v->edge_ratio = calloc((size_t)(E ? E : 1), sizeof *v->edge_ratio);
    double *c = calloc((size_t)(E ? E : 1) + 1, sizeof *c);
    if (!v->edge_ratio || !c) {
        free(c);
        return -1;
    }
    for (int e = 0; e < E; e++) {
        int k = 0;
        c[k++] = edge_cost(&r->edge[e]);
        for (int f = 0; f < E; f++) {
            const herd_preflight_edge *x = &r->edge[f];
            if (f == e || x->height != r->edge[e].height) continue;
            if (v->node_slow[v->node_of[x->a]] || v->node_slow[v->node_of[x->b]]) continue;
            c[k++] = edge_cost(x);
        }
        v->edge_ratio[e] = k < 2 ? 1 : c[0] / herd_stat_peer_median(c, k, 0);
    }
    /* a node's network is its pairs with other nodes: slow when even the best
     * of them is (a bad NIC), while a healthy node beside a slow one keeps a
     * good pair; its pairs inside the node (NVLink, shared memory) count
     * only when it has no other, since they do not show its NIC (a slow
     * pair inside a node is reported as a slow link and in its TP group) */
    for (int n = 0; n < v->n_nodes; n++) {
        double best[2] = {-1, -1};
        for (int e = 0; e < E; e++) {
            const herd_preflight_edge *x = &r->edge[e];
            if (v->node_of[x->a] != n && v->node_of[x->b] != n) continue;
            int out = v->node_of[x->a] != v->node_of[x->b];
            if (best[out] < 0 || v->edge_ratio[e] < best[out]) best[out] = v->edge_ratio[e];
        }
        double b = best[1] >= 0 ? best[1] : best[0];
        v->node_link_ratio[n] = b < 0 ? 1 : b;
        if (v->node_link_ratio[n] > factor) v->node_slow[n] |= 2;
    }
    free(c);
    return 0;
}

/* each op's groups: the slowest member's time, against the other groups */
static int judge_groups(const herd_preflight_result *r, herd_preflight_verdict *v, int k)
{
    const herd_preflight_op *op = &r->op[k];
    int W = r->world_size, d = op->dim, *L = (int *)r->layout;
    int stride[4] = {1, L[0], L[0] * L[1], L[0] * L[1] * L[2]};
    int *key = malloc(sizeof *key * (size_t)W);
    v->group_of[k] = malloc(sizeof(int) * (size_t)W);
    v->group_s[k] = calloc((size_t)W, sizeof(double));
    v->group_ratio[k] = calloc((size_t)W, sizeof(double));
    if (!key || !v->group_of[k] || !v->group_s[k] || !v->group_ratio[k]) {
        free(key);
        return -1;
    }
    int G = 0;
    for (int w = 0; w < W; w++) {
        const int *x = r->rank[w].coord;
        key[w] = x[0] + L[0] * (x[1] + L[1] * (x[2] + L[2] * x[3])) - x[d] * stride[d];
        int g = 0;
        while (g < w && key[g] != key[w]) g++;
        v->group_of[k][w] = g < w ? v->group_of[k][g] : G++;
        int gi = v->group_of[k][w];
        if (op->rank_s[w] > v->group_s[k][gi]) v->group_s[k][gi] = op->rank_s[w];
    }
    v->n_groups[k] = G;
    for (int g = 0; g < G; g++)
        v->group_ratio[k][g] = G < 2 ? 1 : v->group_s[k][g] / herd_stat_peer_median(v->group_s[k], G, g);
    free(key);
    return 0;
}

/* per height: the medians over the edges that touch no slow node (all of
 * them when every edge of that height does) */
static void judge_links(const herd_preflight_result *r, herd_preflight_verdict *v)
{
    double *bw = malloc(sizeof *bw * (size_t)(r->n_edges + 1)), *lat = malloc(sizeof *lat * (size_t)(r->n_edges + 1));
    v->n_links = 0;
    for (int h = 1; bw && lat && h <= HERD_TOPO_MAX_HEIGHT && v->n_links < 8; h++) {
        int n = 0;
        for (int pass = 0; pass < 2 && n == 0; pass++)
            for (int e = 0; e < r->n_edges; e++) {
                const herd_preflight_edge *x = &r->edge[e];
                if (x->height != h) continue;
                if (!pass && (v->node_slow[v->node_of[x->a]] || v->node_slow[v->node_of[x->b]])) continue;
                bw[n] = (double)r->large_bytes / (x->large_s / 2) / 1e9;
                lat[n++] = x->small_s / 2 * 1e6;
            }
        if (n == 0) continue;
        herd_link_measure *m = &v->links[v->n_links++];
        m->height = h;
        m->n_pairs = n;
        m->bw_GBps = herd_stat_median(bw, n);
        m->latency_us = herd_stat_median(lat, n);
    }
    free(bw);
    free(lat);
}

int herd_preflight_judge(const herd_preflight_result *r, double factor, herd_preflight_verdict *v)
{
    memset(v, 0, sizeof *v);
    if (judge_nodes(r, factor, v) || judge_edges(r, factor, v)) return -1;
    for (int k = 0; k < r->n_ops; k++)
        if (judge_groups(r, v, k)) return -1;
    judge_links(r, v);
    return 0;
}
