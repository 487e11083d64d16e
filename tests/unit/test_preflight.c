/* test_preflight.c — herd check's statistics and verdict (topology/linkstat.c,
 * src/parallel/preflight_judge.c, preflight_sizes.c) on made-up
 * measurements: no MPI, no timing. The end-to-end check on the local Slurm
 * cluster is tests/cli/check.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "src/parallel/preflight.h"
#include "test.h"
#include "topology/linkstat.h"

TEST(median_odd_even_and_peers)
{
    double v[] = {5, 1, 3, 2};
    CHECK_NEAR(herd_stat_median(v, 4), 2.5, 0);
    CHECK_NEAR(herd_stat_median(v, 3), 3, 0);
    CHECK_NEAR(herd_stat_peer_median(v, 4, 0), 2, 0);  /* {1, 3, 2} */
    CHECK_NEAR(herd_stat_peer_median(v, 4, 1), 3, 0);  /* {5, 3, 2} */
    CHECK(v[0] == 5 && v[1] == 1);                     /* not sorted in place */
}

TEST(slow_against_the_peers)
{
    int slow[4];
    double v[] = {1.0, 1.1, 0.9, 5.0};
    CHECK(herd_stat_slow_vs_peers(v, 4, 3, slow) == 1);
    CHECK(!slow[0] && !slow[1] && !slow[2] && slow[3]);
    /* two: the slow one against the other, never the fast one against the slow */
    double two[] = {1.0, 10.0};
    CHECK(herd_stat_slow_vs_peers(two, 2, 3, slow) == 1 && !slow[0] && slow[1]);
    double same[] = {2, 2, 2};
    CHECK(herd_stat_slow_vs_peers(same, 3, 1.5, slow) == 0);
    CHECK(herd_stat_slow_vs_peers(v, 1, 3, slow) == 0 && !slow[0]);
    /* just under the factor is not slow */
    double edge[] = {1, 1, 1, 2.9};
    CHECK(herd_stat_slow_vs_peers(edge, 4, 3, slow) == 0);
}

TEST(sizes_follow_the_model)
{
    herd_config c;
    herd_config_defaults(&c);
    CHECK(herd_config_apply_preset(&c, "tiny") == 0);
    c.batch.micro_batch = 2;
    c.batch.n_ramp = 1;
    c.batch.ramp[0].seq_len = 64;
    c.parallel.tp = 2;
    c.parallel.pp = 2;
    herd_preflight_sizes s;
    herd_preflight_sizes_from_config(&c, 2, &s);
    int d = c.model.d_model;
    CHECK(s.tp == (size_t)2 * 64 * d);            /* all-reduce of B x T x d */
    CHECK(s.pp == (size_t)2 * 64 * d);
    CHECK(s.cp == 0);
    c.parallel.sequence_parallel = 1;
    c.parallel.cp = 2;
    herd_preflight_sizes_from_config(&c, 2, &s);
    CHECK(s.tp == (size_t)2 * 32 * d / 2);        /* SP: 1/tp of B x T/cp x d */
    CHECK(s.cp == (size_t)2 * 32 * (c.model.n_kv_heads / 2) * (d / c.model.n_heads));
    CHECK(s.dp > 0);
}

/* 4 nodes x 2 ranks, TP2 x DP4; node3 (ranks 4, 5) `slow` times slower in
 * arithmetic and in every pair it takes part in */
static void fake(herd_preflight_result *r, double slow_compute, double slow_link)
{
    memset(r, 0, sizeof *r);
    r->world_size = 8;
    r->reps = 5;
    int L[4] = {2, 1, 1, 4};
    memcpy(r->layout, L, sizeof L);
    r->rank = calloc(8, sizeof *r->rank);
    r->compute_s = calloc(8, sizeof(double));
    r->edge = calloc(8, sizeof *r->edge);
    r->large_bytes = 1 << 20;
    r->small_bytes = 8;
    for (int w = 0; w < 8; w++) {
        snprintf(r->rank[w].host, sizeof r->rank[w].host, "node%d", w / 2 + 1);
        r->rank[w].coord[0] = w % 2;
        r->rank[w].coord[3] = w / 2;
        r->compute_s[w] = (w / 2 == 2 ? slow_compute : 1) * (0.010 + 0.001 * (w % 3));
    }
    /* the ring in host order: inside a node height 1, node1-2 and 3-4 height 2, else 3 */
    for (int e = 0; e < 8; e++) {
        herd_preflight_edge *x = &r->edge[e];
        x->a = e;
        x->b = (e + 1) % 8;
        x->height = x->a / 2 == x->b / 2 ? 1 : (x->a / 4 == x->b / 4 ? 2 : 3);
        double f = (x->a / 2 == 2 || x->b / 2 == 2) ? slow_link : 1;
        x->small_s = f * (x->height == 1 ? 2e-6 : 20e-6);
        x->large_s = f * (x->height == 1 ? 2e-4 : 2e-3);
    }
    r->n_edges = 8;
    r->n_ops = 1;
    herd_preflight_op *op = &r->op[0];
    snprintf(op->name, sizeof op->name, "tp all_reduce");
    op->dim = 0;
    op->measured = op->elems = 1000;
    op->rank_s = calloc(8, sizeof(double));
    for (int w = 0; w < 8; w++) op->rank_s[w] = w / 2 == 2 ? 1e-3 * slow_link : 1e-4;
}

TEST(judge_names_the_slow_node)
{
    herd_preflight_result r;
    herd_preflight_verdict v;
    fake(&r, 6, 20);
    CHECK(herd_preflight_judge(&r, 3, &v) == 0);
    CHECK(v.n_nodes == 4 && !strcmp(v.node[2], "node3"));
    CHECK(v.node_slow[2] == 3 && !v.node_slow[0] && !v.node_slow[1] && !v.node_slow[3]);
    /* the links: medians over the pairs that do not touch node3 */
    CHECK(v.n_links == 3 && v.links[0].height == 1 && v.links[0].n_pairs == 3);
    CHECK_NEAR(v.links[0].latency_us, 1.0, 1e-9);
    CHECK_NEAR(v.links[0].bw_GBps, (1 << 20) / 1e-4 / 1e9, 1e-9);
    CHECK(v.links[1].height == 2 && v.links[1].n_pairs == 1);
    /* the TP group of node3 is the slow group */
    CHECK(v.n_groups[0] == 4 && v.group_ratio[0][2] > 3 && v.group_ratio[0][0] < 3);
    herd_preflight_verdict_free(&v);
    herd_preflight_free(&r);
}

/* the slow node's one pair at its height measured fast (it ran in one of its
 * bursts) and the healthy pair beside it slowed by the load: the slow node's
 * pair is no yardstick, so no healthy node is named */
TEST(judge_slow_node_pairs_are_no_yardstick)
{
    herd_preflight_result r;
    herd_preflight_verdict v;
    fake(&r, 6, 20);
    r.edge[5].small_s /= 200; /* node3-node4, height 2: a tenth of a healthy pair */
    r.edge[5].large_s /= 200;
    r.edge[1].small_s *= 8;  /* node1-node2, height 2 */
    r.edge[1].large_s *= 8;
    CHECK(herd_preflight_judge(&r, 3, &v) == 0);
    CHECK(v.node_slow[2] && !v.node_slow[0] && !v.node_slow[1] && !v.node_slow[3]);
    herd_preflight_verdict_free(&v);
    herd_preflight_free(&r);
}

TEST(judge_healthy_and_one_slow_link)
{
    herd_preflight_result r;
    herd_preflight_verdict v;
    fake(&r, 1, 1);
    CHECK(herd_preflight_judge(&r, 3, &v) == 0);
    for (int n = 0; n < 4; n++) CHECK(!v.node_slow[n]);
    herd_preflight_verdict_free(&v);
    /* one bad cable (node1-node2): the link is slow, neither node is (each has a good link) */
    r.edge[1].large_s *= 50;
    CHECK(herd_preflight_judge(&r, 3, &v) == 0);
    for (int n = 0; n < 4; n++) CHECK(!v.node_slow[n]);
    CHECK(v.edge_ratio[1] > 3 && v.edge_ratio[3] < 3);
    herd_preflight_verdict_free(&v);
    /* a bad NIC on node2: both its pairs out of the node slow, the one inside fast */
    r.edge[3].large_s *= 50;
    CHECK(herd_preflight_judge(&r, 3, &v) == 0);
    CHECK(v.node_slow[1] == 2 && !v.node_slow[0] && !v.node_slow[2] && !v.node_slow[3]);
    herd_preflight_verdict_free(&v);
    herd_preflight_free(&r);
}

TEST(links_file_reads_back)
{
    char dir[] = "/tmp/herd-test-preflight.XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/links", dir);
    herd_link_measure m[2] = {{1, 4, 4.5, 30.0}, {2, 2, 0.75, 1200.0}};
    CHECK(herd_topo_links_write(path, m, 2, "a test") == 0);
    const char *hosts[] = {"a", "a", "b", "b"};
    herd_topo *t = NULL;
    CHECK(herd_topo_from_hosts(&t, 4, hosts, NULL) == 0);
    herd_topo_links_default(t, 1);
    CHECK(herd_topo_links_load(t, path) == 0);
    CHECK_NEAR(t->link[1].bw_GBps, 4.5, 1e-9);
    CHECK_NEAR(t->link[2].latency_us, 1200.0, 1e-9);
    herd_topo_free(t);
    /* a link planted in the file's place is replaced, its target untouched */
    char target[80];
    snprintf(target, sizeof target, "%s/target", dir);
    FILE *f = fopen(target, "w");
    fputs("keep\n", f);
    fclose(f);
    unlink(path);
    CHECK(symlink(target, path) == 0);
    CHECK(herd_topo_links_write(path, m, 1, NULL) == 0);
    char buf[16] = {0};
    f = fopen(target, "r");
    CHECK(f && fgets(buf, sizeof buf, f) && !strcmp(buf, "keep\n"));
    if (f) fclose(f);
    unlink(path);
    unlink(target);
    rmdir(dir);
}

/* placement (topology/place.c) follows the tree's shape: measured links,
 * however far from the defaults, leave its permutation as it was */
TEST(placement_does_not_read_link_numbers)
{
    const char *hosts[] = {"a", "a", "b", "b", "c", "c", "d", "d"};
    herd_topo *t = NULL;
    CHECK(herd_topo_from_hosts(&t, 8, hosts, NULL) == 0);
    if (!t) return;
    int p0[8], p1[8];
    herd_topo_links_default(t, 1);
    CHECK(herd_topo_place(t, 2, 1, 2, 2, p0) == 0);
    for (int h = 1; h <= HERD_TOPO_MAX_HEIGHT; h++) {
        t->link[h].bw_GBps = h == 1 ? 0.1 : 1000; /* inside a node slower than across */
        t->link[h].latency_us = h == 1 ? 1000 : 1;
    }
    CHECK(herd_topo_place(t, 2, 1, 2, 2, p1) == 0);
    CHECK(!memcmp(p0, p1, sizeof p0));
    herd_topo_free(t);
}

int main(void)
{
    RUN(median_odd_even_and_peers);
    RUN(slow_against_the_peers);
    RUN(sizes_follow_the_model);
    RUN(judge_names_the_slow_node);
    RUN(judge_slow_node_pairs_are_no_yardstick);
    RUN(judge_healthy_and_one_slow_link);
    RUN(links_file_reads_back);
    RUN(placement_does_not_read_link_numbers);
    return test_summary();
}
