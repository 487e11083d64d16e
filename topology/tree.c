/* tree.c — the job's tree: ranks -> nodes -> switches, from hostnames plus
 * topology.conf, SLURM_TOPOLOGY_ADDR paths, or a whole cluster's conf.
 *
 * Every builder ends in finish(): one root (a virtual "root" switch is added
 * above several roots, so that any two ranks have a common ancestor), switch
 * heights, GPUs below each switch, and the default links.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "topology/topo_internal.h"

static int add_switch(herd_topo *t, const char *name, int *cap)
{
    if (t->n_switches == *cap) {
        int c = *cap ? 2 * *cap : 64;
        herd_topo_switch *s = realloc(t->sw, (size_t)c * sizeof *s);
        if (!s) return -1;
        t->sw = s;
        *cap = c;
    }
    herd_topo_switch *s = &t->sw[t->n_switches];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->parent = -1;
    return t->n_switches++;
}

static int add_node(herd_topo *t, const char *name, int leaf, int *cap)
{
    if (t->n_nodes == *cap) {
        int c = *cap ? 2 * *cap : 64;
        herd_topo_node *s = realloc(t->node, (size_t)c * sizeof *s);
        if (!s) return -1;
        t->node = s;
        *cap = c;
    }
    herd_topo_node *n = &t->node[t->n_nodes];
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", name);
    n->leaf = leaf;
    return t->n_nodes++;
}

typedef struct {
    const herd_topo *t;
    const char *name;
} name_ctx;

static int is_switch(int idx, const void *ctx)
{
    const name_ctx *c = ctx;
    return !strcmp(c->t->sw[idx].name, c->name);
}

static int is_node(int idx, const void *ctx)
{
    const name_ctx *c = ctx;
    return !strcmp(c->t->node[idx].name, c->name);
}

/* a host matches a node equal to it or equal up to a '.' (herd_topo_host_match) */
static int is_host(int idx, const void *ctx)
{
    const name_ctx *c = ctx;
    return herd_topo_host_match(c->name, c->t->node[idx].name);
}

/* nodes are indexed by their short name (up to the first '.'), so that
 * "node4.cluster" finds "node4" */
static size_t short_len(const char *name)
{
    return strcspn(name, ".");
}

static int find_switch(const herd_topo *t, const herd_names *index, const char *name)
{
    return herd_names_find(index, name, strlen(name), is_switch, &(name_ctx){t, name});
}

static int index_switch(const herd_topo *t, herd_names *index, int s)
{
    if (herd_names_add(index, t->sw[s].name, strlen(t->sw[s].name), s)) {
        fprintf(stderr, "herd topo: out of memory\n");
        return -1;
    }
    return 0;
}

void herd_topo_free(herd_topo *t)
{
    if (!t) return;
    free(t->sw);
    free(t->node);
    free(t->rank);
    free(t);
}

int herd_topo_node_path(const herd_topo *t, int node, int *path, int max)
{
    int n = 0;
    for (int s = t->node[node].leaf; s >= 0 && n < max; s = t->sw[s].parent) path[n++] = s;
    return n;
}

/* Root, heights, GPU counts, links. `origin` names the source in messages. */
static int finish(herd_topo *t, int *sw_cap, const char *origin)
{
    int roots = 0;
    for (int i = 0; i < t->n_switches; i++) roots += t->sw[i].parent < 0;
    if (roots != 1) {
        int r = add_switch(t, "root", sw_cap);
        if (r < 0) return -1;
        for (int i = 0; i < r; i++)
            if (t->sw[i].parent < 0) t->sw[i].parent = r;
    }
    for (int i = 0; i < t->n_nodes; i++)
        if (t->node[i].leaf < 0) t->node[i].leaf = t->n_switches - 1; /* the root */
    /* heights: a switch with nodes below is at least 2; parents 1 + child.
     * Iterate to a fixed point; a cycle in the conf never settles. */
    for (int i = 0; i < t->n_switches; i++) t->sw[i].height = 0;
    for (int i = 0; i < t->n_nodes; i++) t->sw[t->node[i].leaf].height = 2;
    for (int i = 0; i < t->n_switches; i++)
        if (t->sw[i].height < 2) t->sw[i].height = 2;
    for (int iter = 0;; iter++) {
        int changed = 0;
        for (int i = 0; i < t->n_switches; i++) {
            int p = t->sw[i].parent;
            if (p >= 0 && t->sw[p].height < t->sw[i].height + 1) {
                t->sw[p].height = t->sw[i].height + 1;
                changed = 1;
            }
        }
        if (!changed) break;
        if (iter > t->n_switches || t->sw[t->n_switches - 1].height > HERD_TOPO_MAX_HEIGHT) {
            fprintf(stderr, "%s: Switches= form a cycle or a tree deeper than %d levels\n", origin,
                    HERD_TOPO_MAX_HEIGHT);
            return -1;
        }
    }
    for (int i = 0; i < t->n_switches; i++) t->sw[i].n_gpus = 0;
    for (int i = 0; i < t->n_nodes; i++)
        for (int s = t->node[i].leaf; s >= 0; s = t->sw[s].parent) t->sw[s].n_gpus += t->node[i].n_gpus;
    t->height = 0;
    for (int i = 0; i < t->n_switches; i++)
        if (t->sw[i].height > t->height) t->height = t->sw[i].height;
    herd_topo_links_default(t, 1.0);
    return 0;
}

/* Switches and nodes of a topology.conf, nodes in depth-first order (children
 * in the order the conf lists them), so that consecutive nodes share switches. */
static int dfs_nodes(herd_topo *t, const herd_conf_switch *cs, const herd_names *index, int s, int *node_cap,
                     int depth, const char *path)
{
    if (depth > HERD_TOPO_MAX_HEIGHT) {
        fprintf(stderr, "%s:%d: SwitchName=%s: Switches= form a tree deeper than %d levels\n", path, cs[s].line,
                cs[s].name, HERD_TOPO_MAX_HEIGHT);
        return -1;
    }
    for (int k = 0; k < cs[s].n_switches; k++)
        if (dfs_nodes(t, cs, index, find_switch(t, index, cs[s].switches[k]), node_cap, depth + 1, path)) return -1;
    for (int k = 0; k < cs[s].n_nodes; k++)
        if (add_node(t, cs[s].nodes[k], s, node_cap) < 0) return -1;
    return 0;
}

/* Every cycle of parent links among the switches, each printed as the
 * Switches= chain that closes it ("a -> b -> a": a lists b, b lists a).
 * Each switch has one parent at most, so every cycle is found by walking up
 * from each switch once: O(switches). Returns the number of cycles. */
static int report_cycles(const herd_topo *t, const herd_conf_switch *cs, const char *path)
{
    int S = t->n_switches, cycles = 0;
    char *state = calloc((size_t)S, 1); /* 0 not seen, 1 on the current walk, 2 done */
    int *walk = malloc((size_t)S * sizeof *walk);
    if (!state || !walk) {
        free(state);
        free(walk);
        fprintf(stderr, "%s: out of memory\n", path);
        return -1;
    }
    for (int i = 0; i < S; i++) {
        int n = 0, s = i;
        while (s >= 0 && !state[s]) {
            state[s] = 1;
            walk[n++] = s;
            s = t->sw[s].parent;
        }
        if (s >= 0 && state[s] == 1) {
            /* walk[j..n) is the cycle: walk[j] = s, each the child of the next,
             * so the Switches= chain runs backwards through walk */
            int j = 0;
            while (walk[j] != s) j++;
            int len = n - j, shown = len < 8 ? len : 8;
            fprintf(stderr, "%s:%d: Switches= form a cycle: %s", path, cs[s].line, t->sw[s].name);
            for (int k = 0; k < shown; k++) fprintf(stderr, " -> %s", t->sw[walk[n - 1 - k]].name);
            if (shown < len) fprintf(stderr, " -> ... (%d switches in the cycle)", len);
            fprintf(stderr, "\n");
            cycles++;
        }
        for (int k = 0; k < n; k++) state[walk[k]] = 2;
    }
    free(state);
    free(walk);
    return cycles;
}

static int build_conf(herd_topo *t, const char *path, int *sw_cap)
{
    herd_conf_switch *cs;
    herd_names sw_index = {0}, node_index = {0};
    int n, node_cap = 0, rc = -1;
    if (herd_topo_conf_parse(path, &cs, &n)) return -1;
    for (int i = 0; i < n; i++)
        if (add_switch(t, cs[i].name, sw_cap) < 0 || index_switch(t, &sw_index, i)) goto out;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < cs[i].n_switches; k++) {
            int c = find_switch(t, &sw_index, cs[i].switches[k]);
            if (c < 0) {
                fprintf(stderr, "%s:%d: SwitchName=%s: Switches= names unknown switch '%s'\n", path, cs[i].line,
                        cs[i].name, cs[i].switches[k]);
                goto out;
            }
            if (t->sw[c].parent >= 0) {
                fprintf(stderr, "%s:%d: SwitchName=%s: switch '%s' is already below '%s'\n", path, cs[i].line,
                        cs[i].name, cs[i].switches[k], t->sw[t->sw[c].parent].name);
                goto out;
            }
            t->sw[c].parent = i;
        }
    /* a cycle has no root, so the walk from the roots below would never reach
     * its switches or their nodes */
    if (report_cycles(t, cs, path)) goto out;
    for (int i = 0; i < n; i++)
        if (t->sw[i].parent < 0 && dfs_nodes(t, cs, &sw_index, i, &node_cap, 0, path)) goto out;
    /* a node below two leaves is a conf error that Slurm rejects too */
    for (int i = 0; i < t->n_nodes; i++) {
        const char *name = t->node[i].name;
        int j = herd_names_find(&node_index, name, strlen(name), is_node, &(name_ctx){t, name});
        if (j >= 0) {
            fprintf(stderr, "%s: Nodes=: node '%s' is below both '%s' and '%s'\n", path, name,
                    t->sw[t->node[j].leaf].name, t->sw[t->node[i].leaf].name);
            goto out;
        }
        if (herd_names_add(&node_index, name, strlen(name), i)) {
            fprintf(stderr, "%s: out of memory\n", path);
            goto out;
        }
    }
    snprintf(t->conf_path, sizeof t->conf_path, "%s", path);
    rc = 0;
out:
    herd_names_free(&sw_index);
    herd_names_free(&node_index);
    herd_topo_conf_free(cs, n);
    return rc;
}

/* use[i] = ranks on node i: spread evenly over the top-level subtrees (the
 * pods under a core), packed in tree order inside each. */
static int spread_ranks(const herd_topo *t, int gpn, int n_ranks, int *use, const char *path)
{
    int n_roots = 0, root = -1;
    for (int s = 0; s < t->n_switches; s++)
        if (t->sw[s].parent < 0) { n_roots++; root = s; }
    int *unit = malloc((size_t)t->n_nodes * sizeof *unit), k = 0;
    int *cap = calloc((size_t)t->n_switches + 1, sizeof *cap), *quota = calloc((size_t)t->n_switches + 1, sizeof *quota);
    int *idx = malloc((size_t)(t->n_switches + 1) * sizeof *idx), rc = -1;
    if (!unit || !cap || !quota || !idx) goto out;
    for (int s = 0; s <= t->n_switches; s++) idx[s] = -1;
    /* a node's unit: its ancestor just below the single root (or its root) */
    for (int i = 0; i < t->n_nodes; i++) {
        int s = t->node[i].leaf, below = s;
        while (s >= 0 && t->sw[s].parent >= 0) { below = s; s = t->sw[s].parent; }
        int u = n_roots == 1 && below != s ? below : s;
        if (n_roots == 1 && t->node[i].leaf == root) u = root; /* nodes right under the root */
        if (idx[u] < 0) idx[u] = k++;
        unit[i] = idx[u];
        cap[unit[i]] += gpn;
    }
    int left = n_ranks;
    for (int pass = 0; left > 0 && pass < k + 1; pass++) {
        /* equal shares; units that are full pass their share to the others */
        int open = 0;
        for (int u = 0; u < k; u++) open += quota[u] < cap[u];
        if (!open) break;
        int share = left / open, extra = left % open;
        for (int u = 0; u < k && left > 0; u++) {
            if (quota[u] >= cap[u]) continue;
            int want = share + (extra > 0), room = cap[u] - quota[u], got = want < room ? want : room;
            if (extra > 0) extra--;
            quota[u] += got;
            left -= got;
        }
    }
    if (left > 0) {
        fprintf(stderr, "%s: a job of %d GPUs does not fit\n", path, n_ranks);
        goto out;
    }
    for (int i = 0; i < t->n_nodes; i++) {
        int u = unit[i], g = quota[u] < gpn ? quota[u] : gpn;
        use[i] = g;
        quota[u] -= g;
    }
    rc = 0;
out:
    free(unit);
    free(cap);
    free(quota);
    free(idx);
    return rc;
}

int herd_topo_from_conf_alloc(herd_topo **out, const char *topology_conf, int gpus_per_node, int n_ranks, int spread)
{
    if (gpus_per_node < 1 || gpus_per_node > HERD_TOPO_MAX_DEV) {
        fprintf(stderr, "%s: gpus per node %d: must be 1..%d\n", topology_conf, gpus_per_node, HERD_TOPO_MAX_DEV);
        return -1;
    }
    herd_topo *t = calloc(1, sizeof *t);
    int sw_cap = 0, *use = NULL;
    if (!t || build_conf(t, topology_conf, &sw_cap)) goto fail;
    long total = (long)t->n_nodes * gpus_per_node;
    if (n_ranks == 0) n_ranks = (int)total;
    if (n_ranks < 0 || n_ranks > total) {
        fprintf(stderr, "%s: a job of %d GPUs does not fit: the file has %d nodes x %d GPUs = %ld\n",
                topology_conf, n_ranks, t->n_nodes, gpus_per_node, total);
        goto fail;
    }
    t->rank = malloc((size_t)n_ranks * sizeof *t->rank);
    use = calloc((size_t)t->n_nodes, sizeof *use);
    if (!t->rank || !use) goto fail;
    t->n_ranks = n_ranks;
    for (int i = 0; i < t->n_nodes; i++) t->node[i].n_gpus = gpus_per_node;
    if (spread) {
        if (spread_ranks(t, gpus_per_node, n_ranks, use, topology_conf)) goto fail;
    } else {
        /* packed: the first nodes in tree order, as Slurm's topology/tree packs */
        for (int i = 0, left = n_ranks; i < t->n_nodes; i++) {
            use[i] = left < gpus_per_node ? left : gpus_per_node;
            left -= use[i];
        }
    }
    for (int i = 0, r = 0; i < t->n_nodes; i++)
        for (int g = 0; g < use[i]; g++, r++) {
            t->rank[r].node = i;
            t->rank[r].local = g;
        }
    if (finish(t, &sw_cap, topology_conf)) goto fail;
    free(use);
    *out = t;
    return 0;
fail:
    free(use);
    herd_topo_free(t);
    return -1;
}

int herd_topo_from_conf(herd_topo **out, const char *topology_conf, int gpus_per_node, int n_ranks)
{
    return herd_topo_from_conf_alloc(out, topology_conf, gpus_per_node, n_ranks, 0);
}

/* Ranks onto nodes by hostname; nodes not yet in t are added under leaf -1
 * when `add` is set, else an error naming the conf. */
static int map_ranks(herd_topo *t, int n_ranks, const char *const *hostnames, int add, int *node_cap)
{
    herd_names index = {0};
    int rc = -1;
    t->rank = malloc((size_t)n_ranks * sizeof *t->rank);
    if (!t->rank) return -1;
    t->n_ranks = n_ranks;
    for (int i = 0; i < t->n_nodes; i++) {
        t->node[i].n_gpus = 0;
        if (herd_names_add(&index, t->node[i].name, short_len(t->node[i].name), i)) goto out;
    }
    int last = -1;
    for (int r = 0; r < n_ranks; r++) {
        const char *h = hostnames[r];
        if (!h || !*h) {
            fprintf(stderr, "herd topo: rank %d: empty hostname\n", r);
            goto out;
        }
        int nd = -1;
        if (last >= 0 && herd_topo_host_match(h, t->node[last].name)) nd = last;
        if (nd < 0) nd = herd_names_find(&index, h, short_len(h), is_host, &(name_ctx){t, h});
        if (nd < 0) {
            if (!add) {
                fprintf(stderr, "%s: Nodes=: host '%s' (rank %d) is not below any switch\n", t->conf_path, h, r);
                goto out;
            }
            if ((nd = add_node(t, h, -1, node_cap)) < 0 || herd_names_add(&index, h, short_len(h), nd)) goto out;
        }
        t->rank[r].node = nd;
        t->rank[r].local = t->node[nd].n_gpus++;
        last = nd;
    }
    rc = 0;
out:
    herd_names_free(&index);
    return rc;
}

int herd_topo_from_hosts(herd_topo **out, int n_ranks, const char *const *hostnames, const char *topology_conf)
{
    herd_topo *t = calloc(1, sizeof *t);
    int sw_cap = 0, node_cap = 0;
    if (!t || n_ranks < 1) goto fail;
    if (topology_conf) {
        if (build_conf(t, topology_conf, &sw_cap)) goto fail;
        node_cap = t->n_nodes;
        if (map_ranks(t, n_ranks, hostnames, 0, &node_cap)) goto fail;
    } else {
        if (add_switch(t, "(one switch)", &sw_cap) < 0) goto fail;
        if (map_ranks(t, n_ranks, hostnames, 1, &node_cap)) goto fail;
        for (int i = 0; i < t->n_nodes; i++) t->node[i].leaf = 0;
    }
    if (finish(t, &sw_cap, topology_conf ? topology_conf : "hostnames")) goto fail;
    *out = t;
    return 0;
fail:
    herd_topo_free(t);
    return -1;
}

int herd_topo_from_addrs(herd_topo **out, int n_ranks, const char *const *hostnames, const char *const *addrs,
                         const char *pattern)
{
    herd_topo *t = calloc(1, sizeof *t);
    herd_names sw_index = {0};
    int sw_cap = 0, node_cap = 0;
    if (!t || n_ranks < 1) goto fail;
    if (map_ranks(t, n_ranks, hostnames, 1, &node_cap)) goto fail;
    /* the pattern says which components are switches: "switch.switch.node" */
    int n_pat = 1;
    for (const char *p = pattern; *p; p++) n_pat += *p == '.';
    for (int r = 0; r < n_ranks; r++) {
        int nd = t->rank[r].node;
        if (t->node[nd].leaf >= 0) continue;
        const char *a = addrs[r];
        int n_comp = 1;
        for (const char *p = a; *p; p++) n_comp += *p == '.';
        if (n_comp != n_pat) {
            fprintf(stderr, "SLURM_TOPOLOGY_ADDR of rank %d: '%s' has %d parts, SLURM_TOPOLOGY_ADDR_PATTERN '%s' %d\n",
                    r, a, n_comp, pattern, n_pat);
            goto fail;
        }
        int parent = -1;
        const char *p = a, *q = pattern;
        for (int k = 0; k < n_comp - 1; k++) {
            size_t la = strcspn(p, "."), lq = strcspn(q, ".");
            if (lq != 6 || strncmp(q, "switch", 6)) {
                fprintf(stderr, "SLURM_TOPOLOGY_ADDR_PATTERN: '%s': part %d is not 'switch'\n", pattern, k + 1);
                goto fail;
            }
            char name[HERD_TOPO_NAME_MAX];
            snprintf(name, sizeof name, "%.*s", (int)la, p);
            int s = find_switch(t, &sw_index, name);
            if (s < 0 && ((s = add_switch(t, name, &sw_cap)) < 0 || index_switch(t, &sw_index, s))) goto fail;
            if (t->sw[s].parent < 0) t->sw[s].parent = parent;
            else if (t->sw[s].parent != parent) {
                fprintf(stderr, "SLURM_TOPOLOGY_ADDR of rank %d: '%s': switch '%s' has two parents\n", r, a, name);
                goto fail;
            }
            parent = s;
            p += la + 1;
            q += lq + 1;
        }
        t->node[nd].leaf = parent;
    }
    if (finish(t, &sw_cap, "SLURM_TOPOLOGY_ADDR")) goto fail;
    herd_names_free(&sw_index);
    *out = t;
    return 0;
fail:
    herd_names_free(&sw_index);
    herd_topo_free(t);
    return -1;
}

int herd_topo_rank_distance(const herd_topo *t, int a, int b)
{
    if (a == b) return 0;
    int na = t->rank[a].node, nb = t->rank[b].node;
    if (na == nb) return 1;
    int s = t->node[na].leaf, u = t->node[nb].leaf;
    /* climb the lower one until both meet; heights strictly grow upward */
    while (s != u) {
        if (t->sw[s].height <= t->sw[u].height) s = t->sw[s].parent;
        else u = t->sw[u].parent;
        if (s < 0 || u < 0) return t->height + 1; /* unreachable after finish() */
    }
    return t->sw[s].height;
}

const char *herd_topo_rank_switch(const herd_topo *t, int rank, int height)
{
    for (int s = t->node[t->rank[rank].node].leaf; s >= 0; s = t->sw[s].parent)
        if (t->sw[s].height >= height) return t->sw[s].height == height ? t->sw[s].name : "";
    return "";
}
