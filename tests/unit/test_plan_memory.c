/* test_plan_memory.c — herd plan's memory estimate (topology/memmodel.c):
 * the bytes a layer keeps per recompute mode against a hand computation, the
 * layers in flight of herd's pipeline schedule against Megatron-LM's
 * theoretical_memory_usage.py, the weights and optimizer state against its
 * compute_weight_and_optimizer_memory, and the 405B recipe stage's total
 * written out by hand. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "src/config/config.h"
#include "tests/unit/test.h"
#include "topology/topo.h"

#define FIX "tests/fixtures/topology/"

static void inputs(herd_plan_inputs *in, const char *preset, int seq)
{
    herd_config c;
    herd_config_defaults(&c);
    herd_config_apply_preset(&c, preset);
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

/* 405B, TP 8, b 1, s 8192, SP. Per token, in units of d/tp = 2048 elements:
 *   none:      norm inputs 2+2, GEMM inputs 2+2, Q 2, O 2, K+V 4*1*128/2048 = 0.25,
 *              G+U 4*53248/16384 = 13, silu(G)*U 6.5         = 31.75 -> 65024 bytes
 *   selective: less the GEMM inputs (4) and silu(G)*U (6.5) = 21.25 -> 43520 bytes
 *   full:      the layer input 2                             =  2    ->  4096 bytes
 * x 8192 tokens: 532,676,608 / 356,515,840 / 33,554,432 bytes.
 * CP 16 at 131072 (8192 tokens a rank): K, V gathered over the 16: 512 -> 8192
 * bytes a token: (65024 - 512 + 8192) x 8192 = 595,591,168.
 * Without SP the four d-wide tensors are whole: 8 x 16384 + 2 x 2 x 2048 + 512
 * + 6 x 6656 = 179,712 bytes a token (Korthikanti's 10 sbh + 24 sbh/t shape). */
TEST(layer_bytes_by_hand_405b)
{
    herd_plan_inputs in;
    inputs(&in, "405b", 8192);
    in.recompute = HERD_RECOMPUTE_NONE;
    CHECK(herd_plan_layer_act_bytes(&in, 8, 1) == 532676608.0);
    in.recompute = HERD_RECOMPUTE_SELECTIVE;
    CHECK(herd_plan_layer_act_bytes(&in, 8, 1) == 356515840.0);
    in.recompute = HERD_RECOMPUTE_FULL;
    CHECK(herd_plan_layer_act_bytes(&in, 8, 1) == 33554432.0);
    in.recompute = HERD_RECOMPUTE_NONE;
    in.seq_len = 131072;
    CHECK(herd_plan_layer_act_bytes(&in, 8, 16) == 595591168.0);
    in.seq_len = 8192;
    in.sequence_parallel = 0;
    CHECK(herd_plan_layer_act_bytes(&in, 8, 1) == 179712.0 * 8192);
    /* micro-batch 2 doubles it */
    in.sequence_parallel = 1;
    in.micro_batch = 2;
    CHECK(herd_plan_layer_act_bytes(&in, 8, 1) == 2 * 532676608.0);
}

/* Megatron-LM compute_activation_memory: rank 0 holds L layers' worth times
 * min(1, M/pp) with 1F1B and times 1 + (pp-1)/(pp V) interleaved. herd's
 * schedule (src/parallel/pipeline.c) with L = 128, pp 16: */
TEST(inflight_matches_megatron)
{
    herd_plan_inputs in;
    inputs(&in, "405b", 8192);
    in.n_layers = 128;
    int layers;
    double fl;
    CHECK(herd_plan_stage_layers(&in, 16, 1, 32, 0, &layers, &fl) == 0);
    CHECK(layers == 8 && fl == 128 * 1.0);                   /* 16 micro-batches x 8 layers */
    CHECK(herd_plan_stage_layers(&in, 16, 1, 8, 0, &layers, &fl) == 0);
    CHECK(fl == 128 * 8 / 16.0);                              /* min(1, M/pp) = 1/2 */
    CHECK(herd_plan_stage_layers(&in, 16, 4, 32, 0, &layers, &fl) == 0);
    CHECK(fl == 128 * (1 + 15 / 64.0));                       /* 158: 79 chunks of 2 */
    CHECK(herd_plan_stage_layers(&in, 16, 2, 32, 0, &layers, &fl) == 0);
    CHECK(fl == 128 * (1 + 15 / 32.0));                       /* 188 */
    CHECK(herd_plan_stage_layers(&in, 1, 1, 32, 0, &layers, &fl) == 0);
    CHECK(layers == 128 && fl == 128);                        /* no pipeline: one micro-batch */
    /* later ranks hold fewer: rank 15 of 1F1B one micro-batch */
    CHECK(herd_plan_stage_layers(&in, 16, 1, 32, 15, &layers, &fl) == 0);
    CHECK(fl == 8);
}

/* The 405B with the first and last stage one layer fewer (126 + 2 = 128 over
 * 16): ranks 0 and 15 hold 7, the others 8; 1F1B rank 1 holds 15 x 8 = 120,
 * more than rank 0's 16 x 7 = 112, so the peak is not always rank 0. */
TEST(first_last_fewer_shifts_the_peak)
{
    herd_plan_inputs in;
    inputs(&in, "405b", 8192);
    in.pp_first_last_fewer = 1;
    int layers, sum = 0;
    double fl0, fl1;
    for (int p = 0; p < 16; p++) {
        CHECK(herd_plan_stage_layers(&in, 16, 1, 32, p, &layers, &fl0) == 0);
        CHECK(layers == (p == 0 || p == 15 ? 7 : 8));
        sum += layers;
    }
    CHECK(sum == 126);
    CHECK(herd_plan_stage_layers(&in, 16, 1, 32, 0, &layers, &fl0) == 0);
    CHECK(herd_plan_stage_layers(&in, 16, 1, 32, 1, &layers, &fl1) == 0);
    CHECK(fl0 == 112 && fl1 == 120);
    /* V 4: rank 0's first chunk holds 1 layer (2 - 1), rank 1's every chunk 2 */
    CHECK(herd_plan_stage_layers(&in, 16, 4, 32, 1, &layers, &fl1) == 0);
    CHECK(layers == 8 && fl1 == 77 * 2); /* (16-1-1)*2 + 3*16 + 1 = 77 chunks */
}

static herd_topo *cluster(int n)
{
    herd_topo *t;
    if (herd_topo_from_conf(&t, FIX "llama3.conf", 8, n)) return NULL;
    if (herd_topo_links_load(t, FIX "llama3.links")) { herd_topo_free(t); return NULL; }
    return t;
}

static int estimate(const herd_plan_inputs *in, int tp, int cp, int pp, int dp, herd_plan_result *r)
{
    herd_topo *t = cluster(tp * cp * pp * dp);
    if (!t) return -1;
    int *perm = malloc((size_t)t->n_ranks * sizeof *perm);
    int rc = herd_topo_place(t, tp, cp, pp, dp, perm);
    if (!rc) rc = herd_plan_estimate(in, t, tp, cp, pp, dp, perm, r);
    free(perm);
    herd_topo_free(t);
    return rc;
}

/* Megatron-LM compute_weight_and_optimizer_memory, a GPT-175B shape with
 * SwiGLU (L 96, h 12288, 96 heads, ffn 32768, vocab 51200; TP 8, PP 8, DP 16):
 *   layer = 2h (ffn * 3/2 + 1) + 2 h h (1 + groups/heads)      (RMSNorm, swiglu)
 *   shard = (L layer / pp + final norm h / pp + h vocab) / tp   (first stage)
 *   bytes = shard (6 + 12/DP)                                  (distributed optimizer)
 * herd keeps a separate fp32 shard of the reduced gradient (src/parallel/fsdp.c): +4/DP
 * per parameter; its norm vectors are whole on every TP rank where Megatron
 * divides them by tp (2h (1 - 1/8) = 21,504 of a rank's 2.3e8 a layer), and
 * the final norm is on the last rank, not 1/pp of it on each. So herd's static
 * bytes on rank 0 = Megatron's x (6 + 16/DP)/(6 + 12/DP) within 2e-4. */
TEST(weights_match_megatron_gpt175b)
{
    herd_plan_inputs in;
    inputs(&in, "405b", 2048);
    in.n_layers = 96; in.d_model = 12288; in.n_heads = 96; in.n_kv_heads = 96;
    in.ffn_dim = 32768; in.vocab_size = 51200;
    in.batch_tokens = 2048LL * 16 * 8; /* M = 8 = pp */
    in.virtual_stages = 1;
    herd_plan_result r;
    CHECK(estimate(&in, 8, 1, 8, 16, &r) == 0);
    double h = 12288, L = 96, layer = 2 * h * (32768 * 1.5 + 1) + 2 * h * h * 2;
    double shard = (L * layer / 8 + h / 8 + h * 51200) / 8;
    double megatron = shard * (6 + 12.0 / 16);
    /* the peak rank of this layout is rank 0 (embedding + most in flight) */
    CHECK(r.mem_stage == 0);
    double herd = r.mem_static_GB * 1e9;
    printf("# GPT-175B shape: megatron %.4f GB, x (6+16/DP)/(6+12/DP) %.4f GB, herd %.4f GB\n", megatron / 1e9,
           megatron * (6 + 1.0) / (6 + 0.75) / 1e9, herd / 1e9);
    CHECK(fabs(herd / (megatron * 7.0 / 6.75) - 1) < 2e-4);
    /* and the activations: 8 micro-batches x 12 layers in flight on rank 0 */
    CHECK(r.mem_inflight == 96);
}

/* The 405B recipe pre-training stage (configs/recipe/405b/01_pretrain.yaml):
 * TP 8, PP 16, DP 64, V 4, one layer fewer first and last, selective, 8K.
 * Rank 1 peaks: 8 layers x (3,187,671,040 / 8 + 2 x 16384) = 3,187,933,184
 * parameters x (2 + 4 + 16/64) bytes = 19,924,582,400; activations 154 x
 * 356,515,840 + one layer's workspace 532,676,608 = 55,436,115,968; total
 * 75,360,698,368 bytes = 75.36 GB <= 80. Without recompute: 154 x
 * 532,676,608 + 532,676,608 + 19,924,582,400 = 102.49 GB > 80. Full recompute
 * reruns the layers' forward: a third more of their time, the output layer
 * not rerun (the flat model charges 4/3 of everything). */
TEST(recipe_405b_8k_by_hand)
{
    herd_plan_inputs in;
    inputs(&in, "405b", 8192);
    in.virtual_stages = 4;
    in.pp_first_last_fewer = 1;
    in.recompute = HERD_RECOMPUTE_SELECTIVE;
    herd_plan_result sel, none, full;
    CHECK(estimate(&in, 8, 1, 16, 64, &sel) == 0);
    CHECK(sel.mem_stage == 1 && sel.mem_inflight == 154);
    CHECK_NEAR(sel.mem_static_GB * 1e9, 19924582400.0, 1);
    CHECK_NEAR(sel.mem_GB * 1e9, 75360698368.0, 1);
    CHECK(sel.fits);
    in.recompute = HERD_RECOMPUTE_NONE;
    CHECK(estimate(&in, 8, 1, 16, 64, &none) == 0);
    CHECK_NEAR(none.mem_GB * 1e9, 155 * 532676608.0 + 19924582400.0, 1);
    CHECK(!none.fits);
    in.recompute = HERD_RECOMPUTE_FULL;
    CHECK(estimate(&in, 8, 1, 16, 64, &full) == 0);
    CHECK(full.mem_GB < sel.mem_GB && full.fits);
    CHECK(full.t_compute > sel.t_compute * 1.3 && full.t_compute < sel.t_compute * 4 / 3);
    in.gpu = NULL; /* the flat model */
    CHECK(estimate(&in, 8, 1, 16, 64, &full) == 0);
    in.recompute = HERD_RECOMPUTE_SELECTIVE;
    CHECK(estimate(&in, 8, 1, 16, 64, &sel) == 0);
    CHECK_NEAR(full.t_compute, sel.t_compute * 4 / 3, 1e-9);
}

/* train.xent_chunk: the last rank keeps one chunk of fp32 logits. 8B, TP 8,
 * PP 1 (the only rank is the last), 8192 tokens: 4 x (128256/8 - 4096) bytes
 * a token less = 8192 x 4 x 11936 = 391,118,848 bytes; a chunk not smaller
 * than the slice changes nothing. */
TEST(xent_chunk_drops_the_logits)
{
    herd_plan_inputs in;
    inputs(&in, "8b", 8192);
    herd_plan_result whole, chunked, big;
    CHECK(estimate(&in, 8, 1, 1, 4, &whole) == 0);
    in.xent_chunk = 4096;
    CHECK(estimate(&in, 8, 1, 1, 4, &chunked) == 0);
    CHECK_NEAR((whole.mem_GB - chunked.mem_GB) * 1e9, 391118848.0, 1);
    in.xent_chunk = 16032;
    CHECK(estimate(&in, 8, 1, 1, 4, &big) == 0);
    CHECK_NEAR(big.mem_GB, whole.mem_GB, 1e-12);
}

TEST(recompute_names)
{
    CHECK(herd_plan_recompute_parse("none") == HERD_RECOMPUTE_NONE);
    CHECK(herd_plan_recompute_parse("selective") == HERD_RECOMPUTE_SELECTIVE);
    CHECK(herd_plan_recompute_parse("full") == HERD_RECOMPUTE_FULL);
    CHECK(herd_plan_recompute_parse("some") == -1);
}

int main(void)
{
    if (access(FIX "llama3.conf", R_OK) && (chdir("../..") || access(FIX "llama3.conf", R_OK))) {
        printf("FAIL fixtures: %s not found (run from the repository root)\n", FIX);
        return 1;
    }
    RUN(layer_bytes_by_hand_405b);
    RUN(inflight_matches_megatron);
    RUN(first_last_fewer_shifts_the_peak);
    RUN(weights_match_megatron_gpt175b);
    RUN(recipe_405b_8k_by_hand);
    RUN(xent_chunk_drops_the_logits);
    RUN(recompute_names);
    return test_summary();
}
