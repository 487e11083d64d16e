/* test_topo_plan.c — the step cost model (topology/costmodel.c) on the Llama 3
 * cluster fixture: Table 4 within 3 points with one set of inputs, the naive
 * placement slower, the ranking, the FLOPs definition, invalid layouts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "monitoring/mfu.h"
#include "src/config/config.h"
#include "tests/unit/test.h"
#include "topology/topo.h"

#define FIX "tests/fixtures/topology/"

static void inputs_405b(herd_plan_inputs *in, int seq)
{
    herd_config c;
    herd_config_defaults(&c);
    herd_config_apply_preset(&c, "405b");
    herd_plan_inputs_default(in);
    in->n_layers = c.model.n_layers;
    in->d_model = c.model.d_model;
    in->n_heads = c.model.n_heads;
    in->n_kv_heads = c.model.n_kv_heads;
    in->ffn_dim = c.model.ffn_dim;
    in->vocab_size = c.model.vocab_size;
    in->seq_len = seq;
    in->batch_tokens = 16777216;
}

static herd_topo *cluster(int n)
{
    herd_topo *t;
    if (herd_topo_from_conf(&t, FIX "llama3.conf", 8, n)) return NULL;
    if (herd_topo_links_load(t, FIX "llama3.links")) { herd_topo_free(t); return NULL; }
    return t;
}

static int estimate(const herd_plan_inputs *in, herd_topo *t, const int l[4], int naive, herd_plan_result *r)
{
    int *perm = malloc((size_t)t->n_ranks * sizeof *perm);
    int rc = (naive ? herd_topo_place_naive : herd_topo_place)(t, l[0], l[1], l[2], l[3], perm);
    if (!rc) rc = herd_plan_estimate(in, t, l[0], l[1], l[2], l[3], perm, r);
    free(perm);
    return rc;
}

TEST(table4_within_3_points_and_naive_slower)
{
    static const struct { int l[4], seq; double mfu; } rows[] = {
        {{8, 1, 16, 64}, 8192, 43}, {{8, 1, 16, 128}, 8192, 41}, {{8, 16, 16, 8}, 131072, 38}};
    for (int k = 0; k < 3; k++) {
        herd_plan_inputs in;
        inputs_405b(&in, rows[k].seq);
        herd_topo *t = cluster(rows[k].l[0] * rows[k].l[1] * rows[k].l[2] * rows[k].l[3]);
        CHECK(t != NULL);
        if (!t) return;
        herd_plan_result r, rn;
        CHECK(estimate(&in, t, rows[k].l, 0, &r) == 0);
        CHECK(estimate(&in, t, rows[k].l, 1, &rn) == 0);
        printf("# row %d: paper %.0f%%, predicted %.1f%%, naive %.1f%%\n", k + 1, rows[k].mfu, 100 * r.mfu,
               100 * rn.mfu);
        CHECK_NEAR(100 * r.mfu, rows[k].mfu, 3.0);
        CHECK(rn.t_step > 1.2 * r.t_step);
        CHECK(r.micro_batches == (k == 0 ? 32 : 16) && r.virtual_stages == 8);
        /* the parts add up to the step */
        CHECK_NEAR(r.t_compute + r.t_bubble + r.t_tp + r.t_cp + r.t_pp + r.t_dp + r.t_sched + r.t_opt, r.t_step, 1e-9);
        herd_topo_free(t);
    }
}

TEST(flops_match_the_mfu_definition)
{
    herd_plan_inputs in;
    inputs_405b(&in, 8192);
    herd_topo *t = cluster(8192);
    if (!t) { CHECK(0); return; }
    herd_plan_result r;
    int l[4] = {8, 1, 16, 64};
    CHECK(estimate(&in, t, l, 0, &r) == 0);
    /* P_matmul of 405B by hand: per layer 2 d^2 + 2 d (8 x 128) + 3 d ffn, plus the output projection */
    double d = 16384, p = 126 * (2 * d * d + 2 * d * 1024 + 3 * d * 53248) + d * 128256;
    CHECK_NEAR(r.flops_per_token, 6 * p + 6 * 126 * 8192 * d, 1.0);
    CHECK_NEAR(r.flops_per_token, herd_mfu_flops_per_token((int64_t)p, 126, 8192, 16384), 1.0);
    CHECK(r.mem_static_GB > 0 && r.mem_GB > r.mem_static_GB);
    herd_topo_free(t);
}

TEST(rank_layouts_16k)
{
    herd_plan_inputs in;
    inputs_405b(&in, 8192);
    herd_topo *t = cluster(16384);
    if (!t) { CHECK(0); return; }
    herd_plan_result *res;
    int n;
    CHECK(herd_plan_rank_layouts(&in, t, 8, &res, &n) == 0);
    CHECK(n > 10);
    int found = 0;
    for (int k = 0; k < n; k++) {
        CHECK(res[k].tp * res[k].cp * res[k].pp * res[k].dp == 16384);
        CHECK(res[k].tp <= 8);
        if (k) CHECK(res[k - 1].fits > res[k].fits || (res[k - 1].fits == res[k].fits && res[k - 1].mfu >= res[k].mfu));
        found |= res[k].tp == 8 && res[k].cp == 1 && res[k].pp == 16 && res[k].dp == 128;
    }
    CHECK(found);
    printf("# %d layouts; best %d,%d,%d,%d at %.1f%%\n", n, res[0].tp, res[0].cp, res[0].pp, res[0].dp,
           100 * res[0].mfu);
    free(res);
    herd_topo_free(t);
}

TEST(more_oversubscription_is_slower_for_dp_across_pods)
{
    herd_plan_inputs in;
    inputs_405b(&in, 131072);
    herd_topo *t = cluster(16384);
    if (!t) { CHECK(0); return; }
    int l[4] = {8, 16, 16, 8};
    herd_plan_result a, b;
    CHECK(estimate(&in, t, l, 0, &a) == 0);
    t->link[4].oversub = 1; /* a full-bisection core */
    CHECK(estimate(&in, t, l, 0, &b) == 0);
    CHECK(b.stat[HERD_DIM_DP].bw_GBps > a.stat[HERD_DIM_DP].bw_GBps);
    CHECK(b.t_dp < a.t_dp);
    herd_topo_free(t);
}

static void tp_times(const char *preset, int tp, int seq, long long batch, double *sp, double *nosp)
{
    herd_config c;
    herd_config_defaults(&c);
    herd_config_apply_preset(&c, preset);
    herd_plan_inputs in;
    herd_plan_inputs_default(&in);
    in.n_layers = c.model.n_layers; in.d_model = c.model.d_model; in.n_heads = c.model.n_heads;
    in.n_kv_heads = c.model.n_kv_heads; in.ffn_dim = c.model.ffn_dim; in.vocab_size = c.model.vocab_size;
    in.seq_len = seq;
    in.batch_tokens = batch;
    herd_topo *t;
    *sp = *nosp = -1;
    if (herd_topo_from_conf(&t, FIX "small.conf", tp, tp)) return;
    int l[4] = {tp, 1, 1, 1};
    herd_plan_result r;
    if (!estimate(&in, t, l, 0, &r)) *sp = r.t_tp;
    in.sequence_parallel = 0;
    if (!estimate(&in, t, l, 0, &r)) *nosp = r.t_tp;
    herd_topo_free(t);
}

TEST(allreduce_ring_for_large_tree_for_small_messages)
{
    double sp, nosp;
    /* 405B activations (268 MB): the ring all-reduce (= RS + AG) wins, so
     * 4 all-reduces cost what sequence parallelism's 4 AG + 4 RS cost */
    tp_times("405b", 8, 8192, 8192LL * 8, &sp, &nosp);
    CHECK(sp > 0 && nosp > 0);
    CHECK_NEAR(nosp / sp, 1.0, 1e-9);
    /* tiny activations (16 KB over TP 4): latency-bound, the tree's 2 log2(4)
     * hops beat the ring's 2 x 3 */
    tp_times("tiny", 4, 128, 128LL * 8, &sp, &nosp);
    CHECK(sp > 0 && nosp > 0);
    CHECK(nosp < 0.8 * sp);
}

TEST(invalid_layouts)
{
    herd_plan_inputs in;
    inputs_405b(&in, 8192);
    herd_topo *t = cluster(1024);
    if (!t) { CHECK(0); return; }
    herd_plan_result r;
    fprintf(stderr, "  (layout errors are expected here)\n");
    int *perm = malloc(1024 * sizeof *perm);
    for (int i = 0; i < 1024; i++) perm[i] = i;
    CHECK(herd_plan_estimate(&in, t, 8, 1, 16, 4, perm, &r) == -1);  /* 512 != 1024 */
    CHECK(herd_plan_estimate(&in, t, 16, 1, 16, 4, perm, &r) == 0);  /* 16 divides 128 heads */
    CHECK(herd_plan_estimate(&in, t, 256, 1, 1, 4, perm, &r) == -1); /* tp 256 does not divide 128 heads */
    CHECK(herd_plan_estimate(&in, t, 1, 1, 1, 1024, perm, &r) == 0);  /* 2,048 sequences over dp 1,024 */
    in.batch_tokens = 1000LL * 8192;
    CHECK(herd_plan_estimate(&in, t, 1, 1, 1, 1024, perm, &r) == -1); /* 1,000 sequences over dp 1,024 */
    in.batch_tokens = 16777216;
    CHECK(herd_plan_estimate(&in, t, 8, 1, 128, 1, perm, &r) == -1); /* pp 128 > 126 layers */
    in.seq_len = 8190;
    CHECK(herd_plan_estimate(&in, t, 8, 4, 16, 2, perm, &r) == -1);  /* 8190 not in 2*cp chunks */
    free(perm);
    herd_topo_free(t);
}

int main(void)
{
    if (access(FIX "llama3.conf", R_OK) && (chdir("../..") || access(FIX "llama3.conf", R_OK))) {
        printf("FAIL fixtures: %s not found (run from the repository root)\n", FIX);
        return 1;
    }
    RUN(table4_within_3_points_and_naive_slower);
    RUN(flops_match_the_mfu_definition);
    RUN(rank_layouts_16k);
    RUN(more_oversubscription_is_slower_for_dp_across_pods);
    RUN(allreduce_ring_for_large_tree_for_small_messages);
    RUN(invalid_layouts);
    return test_summary();
}
