/* preflight_report.c — herd check's files and summary (see preflight.h):
 * DIR/slow_nodes for slurm/run_stage.sh, DIR/links for herd plan and
 * placement, DIR/check.json with every number. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint/safe_file.h"
#include "src/parallel/preflight.h"
#include "topology/topo.h"

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

/* bus bandwidth (NCCL's convention: what each rank's link carries) of a group's op */
static double bus_GBps(const herd_preflight_op *op, int n, double s)
{
    double bytes = 4.0 * (double)op->measured;
    if (s <= 0) return 0;
    if (op->kind == HERD_PF_ALL_REDUCE) return bytes / s * 2.0 * (n - 1) / n / 1e9;
    if (op->kind == HERD_PF_SENDRECV) return bytes / s / 1e9;
    return bytes * n / s * (n - 1) / n / 1e9;
}

static int group_size(const herd_preflight_result *r, const herd_preflight_op *op) { return r->layout[op->dim]; }

/* the hosts of group g of op k, "node1,node2" */
static void group_hosts(const herd_preflight_result *r, const herd_preflight_verdict *v, int k, int g, char *buf,
                        size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int w = 0; w < r->world_size && len + 2 < n; w++) {
        if (v->group_of[k][w] != g) continue;
        const char *h = r->rank[w].host;
        int seen = 0;
        for (int u = 0; u < w; u++) seen |= v->group_of[k][u] == g && !strcmp(r->rank[u].host, h);
        if (!seen) len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? "," : "", h);
    }
}

static void json_ranks(FILE *f, const herd_preflight_result *r, const herd_preflight_verdict *v)
{
    fprintf(f, "  \"ranks\": [\n");
    for (int w = 0; w < r->world_size; w++) {
        const herd_preflight_rank *x = &r->rank[w];
        fprintf(f, "    {\"rank\": %d, \"host\": ", w);
        json_str(f, x->host);
        fprintf(f, ", \"local_rank\": %d, \"tp\": %d, \"cp\": %d, \"pp\": %d, \"dp\": %d, \"cores\": ", x->local_rank,
                x->coord[0], x->coord[1], x->coord[2], x->coord[3]);
        json_str(f, x->cores);
        fprintf(f, ", \"gpu\": ");
        json_str(f, x->gpu);
        fprintf(f, ", \"compute_s_per_unit\": %.6g, \"node\": %d}%s\n", r->compute_s[w], v->node_of[w],
                w + 1 < r->world_size ? "," : "");
    }
    fprintf(f, "  ],\n  \"nodes\": [\n");
    for (int n = 0; n < v->n_nodes; n++) {
        fprintf(f, "    {\"host\": ");
        json_str(f, v->node[n]);
        fprintf(f, ", \"compute_s_per_unit\": %.6g, \"best_link_ratio\": %.4g, \"slow\": %s, \"slow_by\": \"%s\"}%s\n",
                v->node_compute_s[n], v->node_link_ratio[n], v->node_slow[n] ? "true" : "false",
                (const char *[]){"", "compute", "links", "compute,links"}[v->node_slow[n] & 3],
                n + 1 < v->n_nodes ? "," : "");
    }
    fprintf(f, "  ],\n");
}

static void json_groups(FILE *f, const herd_preflight_result *r, const herd_preflight_verdict *v, double factor)
{
    fprintf(f, "  \"collectives\": [\n");
    for (int k = 0; k < r->n_ops; k++) {
        const herd_preflight_op *op = &r->op[k];
        fprintf(f, "    {\"op\": \"%s\", \"group_size\": %d, \"elements\": %zu, \"measured_elements\": %zu, "
                "\"groups\": [\n", op->name, group_size(r, op), op->elems, op->measured);
        for (int g = 0; g < v->n_groups[k]; g++) {
            char hosts[1024];
            group_hosts(r, v, k, g, hosts, sizeof hosts);
            fprintf(f, "      {\"hosts\": ");
            json_str(f, hosts);
            fprintf(f, ", \"seconds\": %.6g, \"bus_GBps\": %.6g, \"ratio\": %.4g, \"slow\": %s}%s\n", v->group_s[k][g],
                    bus_GBps(op, group_size(r, op), v->group_s[k][g]), v->group_ratio[k][g],
                    v->group_ratio[k][g] > factor ? "true" : "false", g + 1 < v->n_groups[k] ? "," : "");
        }
        fprintf(f, "    ]}%s\n", k + 1 < r->n_ops ? "," : "");
    }
    fprintf(f, "  ],\n");
}

static void json_edges(FILE *f, const herd_preflight_result *r, const herd_preflight_verdict *v, double factor)
{
    fprintf(f, "  \"pairs\": [\n");
    for (int e = 0; e < r->n_edges; e++) {
        const herd_preflight_edge *x = &r->edge[e];
        int healthy = !v->node_slow[v->node_of[x->a]] && !v->node_slow[v->node_of[x->b]];
        fprintf(f, "    {\"a\": %d, \"b\": %d, \"hosts\": [", x->a, x->b);
        json_str(f, r->rank[x->a].host);
        fprintf(f, ", ");
        json_str(f, r->rank[x->b].host);
        fprintf(f, "], \"height\": %d, \"small_rtt_s\": %.6g, \"large_rtt_s\": %.6g, \"bw_GBps\": %.6g, "
                "\"ratio\": %.4g, \"slow_link\": %s}%s\n", x->height, x->small_s, x->large_s,
                (double)r->large_bytes / (x->large_s / 2) / 1e9, v->edge_ratio[e],
                healthy && v->edge_ratio[e] > factor ? "true" : "false", e + 1 < r->n_edges ? "," : "");
    }
    fprintf(f, "  ],\n  \"links\": [");
    for (int i = 0; i < v->n_links; i++)
        fprintf(f, "%s{\"height\": %d, \"bandwidth_GBps\": %.6g, \"latency_us\": %.6g, \"pairs\": %d}", i ? ", " : "",
                v->links[i].height, v->links[i].bw_GBps, v->links[i].latency_us, v->links[i].n_pairs);
    fprintf(f, "],\n");
}

static int write_json(const char *path, const herd_preflight_result *r, const herd_preflight_verdict *v, double factor)
{
    herd_safe_file sf;
    FILE *f = herd_safe_file_begin_stream(&sf, path, HERD_FILE_MODE);
    if (!f) return -1;
    const herd_preflight_sizes *s = &r->sizes;
    fprintf(f, "{\n  \"layout\": {\"tp\": %d, \"cp\": %d, \"pp\": %d, \"dp\": %d},\n  \"world_size\": %d,\n"
            "  \"backend\": \"%s\",\n  \"placement\": ", r->layout[0], r->layout[1], r->layout[2], r->layout[3],
            r->world_size, r->backend);
    json_str(f, r->placement);
    fprintf(f, ",\n  \"repetitions\": %d,\n  \"rule\": {\"factor\": %g, \"against\": \"median of the peers\"},\n"
            "  \"step\": {\"seq_len\": %d, \"micro_batch\": %d, \"sequence_parallel\": %d, \"tp_elements\": %zu, "
            "\"cp_elements\": %zu, \"pp_elements\": %zu, \"dp_elements\": %zu},\n  \"slow_nodes\": [",
            r->reps, factor, s->seq_len, s->micro_batch, s->sp, s->tp, s->cp, s->pp, s->dp);
    for (int n = 0, first = 1; n < v->n_nodes; n++)
        if (v->node_slow[n]) {
            fprintf(f, "%s", first ? "" : ", ");
            json_str(f, v->node[n]);
            first = 0;
        }
    fprintf(f, "],\n");
    json_ranks(f, r, v);
    json_groups(f, r, v, factor);
    json_edges(f, r, v, factor);
    fprintf(f, "  \"pair_bytes\": {\"small\": %zu, \"large\": %zu}\n}\n", r->small_bytes, r->large_bytes);
    return herd_safe_file_stream_commit(&sf, f);
}

static int write_slow_nodes(const char *path, const herd_preflight_verdict *v)
{
    herd_safe_file sf;
    FILE *f = herd_safe_file_begin_stream(&sf, path, HERD_FILE_MODE);
    if (!f) return -1;
    for (int n = 0; n < v->n_nodes; n++)
        if (v->node_slow[n]) fprintf(f, "%s\n", v->node[n]);
    return herd_safe_file_stream_commit(&sf, f);
}

static void print_ranks(const herd_preflight_result *r)
{
    printf("herd check: %s, backend %s, placement: %s; medians of %d repetitions\n", r->layout_desc, r->backend,
           r->placement, r->reps);
    printf("  %-5s %-16s %5s %3s %3s %3s %3s  %-24s %-8s %s\n", "rank", "host", "local", "tp", "cp", "pp", "dp", "cores",
           "gpu", "arithmetic (per 2^20 multiply-adds)");
    for (int w = 0; w < r->world_size; w++) {
        const herd_preflight_rank *x = &r->rank[w];
        printf("  %-5d %-16s %5d %3d %3d %3d %3d  %-24s %-8s %.1f us\n", w, x->host, x->local_rank, x->coord[0],
               x->coord[1], x->coord[2], x->coord[3], x->cores, x->gpu, 1e6 * r->compute_s[w]);
    }
}

static void print_groups(const herd_preflight_result *r, const herd_preflight_verdict *v, double factor)
{
    if (r->n_ops) printf("collectives at the step's sizes (a group's time is its slowest member's; x = against the "
                         "median of the other groups):\n");
    for (int k = 0; k < r->n_ops; k++) {
        const herd_preflight_op *op = &r->op[k];
        printf("  %-18s %zu elements/rank%s, %d ranks a group:\n", op->name, op->measured,
               op->measured < op->elems ? " (capped)" : "", group_size(r, op));
        for (int g = 0; g < v->n_groups[k]; g++) {
            char hosts[256];
            group_hosts(r, v, k, g, hosts, sizeof hosts);
            printf("    %-32s %9.3f ms %8.3f GB/s  x%.2f%s\n", hosts, 1e3 * v->group_s[k][g],
                   bus_GBps(op, group_size(r, op), v->group_s[k][g]), v->group_ratio[k][g],
                   v->group_ratio[k][g] > factor ? "  SLOW" : "");
        }
    }
}

static void print_links(const herd_preflight_result *r, const herd_preflight_verdict *v, double factor)
{
    printf("pairs in host order (round trip of %zu B and %zu B; x = against the other pairs of the height):\n",
           r->small_bytes, r->large_bytes);
    for (int e = 0; e < r->n_edges; e++) {
        const herd_preflight_edge *x = &r->edge[e];
        printf("  %s:%d - %s:%d  height %d  %8.1f us %9.3f ms  x%.2f%s\n", r->rank[x->a].host, x->a,
               r->rank[x->b].host, x->b, x->height, 1e6 * x->small_s, 1e3 * x->large_s, v->edge_ratio[e],
               v->edge_ratio[e] > factor ? "  SLOW" : "");
    }
    for (int i = 0; i < v->n_links; i++)
        printf("link height %d: %.3f GB/s, %.1f us (median of %d pairs)\n", v->links[i].height, v->links[i].bw_GBps,
               v->links[i].latency_us, v->links[i].n_pairs);
    int any = 0;
    for (int n = 0; n < v->n_nodes; n++) any |= v->node_slow[n];
    printf("slow nodes (> %gx the median of the other nodes):%s\n", factor, any ? "" : " none");
    for (int n = 0; n < v->n_nodes; n++)
        if (v->node_slow[n])
            printf("  %s: arithmetic x%.2f, best link x%.2f\n", v->node[n],
                   v->node_compute_s[n] / herd_stat_peer_median(v->node_compute_s, v->n_nodes, n),
                   v->node_link_ratio[n]);
}

int herd_preflight_write(const herd_preflight_result *r, const herd_preflight_verdict *v, double factor,
                         const char *dir)
{
    print_ranks(r);
    print_groups(r, v, factor);
    print_links(r, v, factor);
    char path[4096], comment[512];
    if (herd_safe_mkdirs(dir)) return -1;
    snprintf(comment, sizeof comment, "measured by herd check: %s, %d pairs of ranks in host order",
             r->layout_desc, r->n_edges);
    snprintf(path, sizeof path, "%s/links", dir);
    if (herd_topo_links_write(path, v->links, v->n_links, comment)) return -1;
    snprintf(path, sizeof path, "%s/slow_nodes", dir);
    if (write_slow_nodes(path, v)) return -1;
    snprintf(path, sizeof path, "%s/check.json", dir);
    if (write_json(path, r, v, factor)) return -1;
    printf("wrote %s/slow_nodes, %s/links, %s/check.json\n", dir, dir, dir);
    return 0;
}
