/* memmodel.c — peak memory per GPU of a layout: the memory half of
 * herd_plan_estimate (topology/costmodel.c), per pipeline rank, the most
 * loaded one reported. The terms follow Megatron-LM's
 * megatron/training/theoretical_memory_usage.py
 * (compute_weight_and_optimizer_memory, compute_activation_memory) and
 * Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
 * Transformer Models" (Table 2), re-derived for herd's model (RMSNorm, GQA,
 * SwiGLU, FlashAttention, no dropout), herd's FSDP (src/parallel/fsdp.c) and herd's
 * pipeline schedule (src/parallel/pipeline.c). docs/topology.md writes them out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "topology/pipe_schedule.h"
#include "topology/topo.h"

static const char *recompute_names[] = {"none", "selective", "full"};

int herd_plan_recompute_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, recompute_names[i])) return i;
    return -1;
}

const char *herd_plan_recompute_name(int mode)
{
    return mode >= 0 && mode < 3 ? recompute_names[mode] : "?";
}

/* Per token of the rank's b*s/cp, bytes kept for the backward of one layer
 * (bf16 = 2 bytes). With sequence parallelism (SP) the tensors outside the
 * TP regions are split along tokens, so every term is /tp; without it the
 * four d-wide ones (norm inputs, GEMM inputs) are whole on every TP rank
 * (Korthikanti: 10 sbh + 24 sbh/t). Per layer, d = d_model, f = ffn_dim:
 *   attention RMSNorm input            2d     (RMSNorm backward reads x)
 *   q/k/v GEMM input (the norm output) 2d     (weight gradient)  [selective: recomputed]
 *   Q after RoPE                       2d/tp  (FlashAttention backward)
 *   K, V after RoPE                    4 kvh hd, all-gathered over CP: x cp
 *   O (FlashAttention out = o_proj in) 2d/tp  (read by both backwards: kept once)
 *   MLP RMSNorm input                  2d
 *   gate/up GEMM input (norm output)   2d                        [selective: recomputed]
 *   G and U (gate, up outputs)         4f/tp  (SwiGLU backward)
 *   silu(G)*U (down_proj input)        2f/tp                     [selective: recomputed]
 * No s x s scores (FlashAttention keeps a per-row log-sum-exp: 4 bytes per
 * head and token, negligible), no dropout masks (Llama has none). For the
 * 405B (d 16384, f 53248, 8 KV heads of 128, tp 8) that is, in units of
 * d/tp: none 8 + 4 + 0.25 + 19.5 = 31.75, selective 21.25; Megatron's
 * 18 + 4 f/d (written for a non-gated MLP with dropout) gives 31. FULL keeps
 * only the layer input (2d, /tp with SP) and reruns the forward. */
double herd_plan_layer_act_bytes(const herd_plan_inputs *in, int tp, int cp)
{
    double d = in->d_model, f = in->ffn_dim, hd = d / in->n_heads;
    double sp = in->sequence_parallel ? tp : 1;
    double kvh = in->n_kv_heads >= tp ? (double)in->n_kv_heads / tp : 1; /* replicated below */
    double tok = (double)in->micro_batch * in->seq_len / cp;
    double per;
    if (in->recompute == HERD_RECOMPUTE_FULL) {
        per = 2 * d / sp;
    } else {
        double gemm_in = in->recompute == HERD_RECOMPUTE_SELECTIVE ? 0 : 2 * (2 * d) / sp;
        double swiglu = in->recompute == HERD_RECOMPUTE_SELECTIVE ? 0 : 2 * f / tp;
        double mlp = in->gated_mlp ? 4 * f / tp : 2 * f / tp; /* G and U; GELU: fc1's output */
        per = 2 * (2 * d) / sp + gemm_in                /* norm inputs, GEMM inputs */
              + 2 * d / tp + 4 * kvh * hd * cp + 2 * d / tp /* Q, K and V (gathered), O */
              + mlp + swiglu;                             /* G, U, silu(G)*U (GELU(fc1) for GPT) */
    }
    return tok * per;
}

/* layers of virtual stage s of S: total = L (+2 if the first and last hold one
 * fewer) spread evenly, as src/config/config.c requires (it checks divisibility) */
static int vstage_layers(const herd_plan_inputs *in, int S, int s)
{
    int fewer = in->pp_first_last_fewer && S > 1;
    long long total = in->n_layers + (fewer ? 2 : 0);
    int n = (int)((s + 1) * total / S - s * total / S);
    if (fewer && (s == 0 || s == S - 1)) n--;
    return n < 0 ? 0 : n;
}

int herd_plan_stage_layers(const herd_plan_inputs *in, int pp, int V, int M, int p, int *layers,
                           double *inflight)
{
    int S = pp * V, total = M * V;
    *layers = 0;
    for (int c = 0; c < V; c++) *layers += vstage_layers(in, S, c * pp + p);
    if (pp == 1) { /* no pipeline: one micro-batch's forward, then its backward */
        *inflight = *layers;
        return 0;
    }
    /* herd's schedule (src/parallel/pipeline.c herd_pipe_plan): Megatron's warm-up of
     * (pp-p-1)*2 + (V-1)*pp forwards (pp-p-1 without interleaving), then one
     * forward, one backward. Walk the rank's op list and keep the largest sum
     * of the layers of the chunks forwarded and not yet backwarded. For rank 0
     * with V | L/pp this is Megatron's L (1 + (pp-1)/(pp V)) (interleaved) and
     * L min(1, M/pp) (1F1B). */
    int w = V > 1 ? (pp - p - 1) * 2 + (V - 1) * pp : pp - p - 1;
    if (w > total) w = total;
    herd_pipe_op *ops = malloc((size_t)2 * total * sizeof *ops);
    if (!ops) {
        fprintf(stderr, "herd plan: out of memory for the pipeline schedule (%d ops)\n", 2 * total);
        return -1;
    }
    herd_pipe_order(pp, V, M, p, w, ops);
    double live = 0, peak = 0;
    for (int i = 0; i < 2 * total; i++) {
        int n = vstage_layers(in, S, ops[i].chunk * pp + p);
        live += ops[i].kind ? -n : n;
        if (live > peak) peak = live;
    }
    free(ops);
    *inflight = peak;
    return 0;
}

/* Fill r->mem_* for the layout: the maximum over pipeline ranks of
 *   P_p (2 + g + (12 + g')/DP)      bf16 weights, fp32 gradient accumulator
 *                                   (reduce-scattered once per step), FSDP
 *                                   shards of fp32 master, Adam m, v and the
 *                                   reduced gradient (g' = g; 0 when DP = 1:
 *                                   src/parallel/fsdp.c uses the working buffers)
 * + A_layer * inflight_p            the activations the schedule keeps
 * + A_layer(none)                   the backward's workspace of one layer
 *                                   (its input gradients mirror its saved
 *                                   tensors; FULL: the recomputed layer)
 * + last rank: fp32 vocab-parallel logits of one micro-batch, 4 V/tp per token
 *   (the cross-entropy keeps them for its backward), or with xent_chunk (the
 *   output projection fused with the cross-entropy, src/model/model.c) one chunk's
 *   4 xent_chunk per token, and the final norm input.
 * Sharding is over DP only: herd all-reduces gradients over CP and keeps full
 * state on every CP rank (docs/parallelism.md), where Megatron's distributed
 * optimizer bytes are 6 + 12/DP (its gradient shard is a view of the buffer).
 * P_p: its layers x (the layer's matrices / tp + 2 RMSNorm vectors), the
 * embedding (vocab/tp rows) on rank 0, the output projection and final norm on
 * the last. Left out as negligible: the first rank's token ids (4 bytes a token,
 * 1 MB for 32 micro-batches of 8K). Not modelled: the CUDA context, NCCL buffers, allocator
 * fragmentation (a few GB in practice: docs/topology.md). */
int herd_plan_memory(const herd_plan_inputs *in, int tp, int cp, int pp, int dp, int V, int M,
                     herd_plan_result *r)
{
    double d = in->d_model, hd = d / in->n_heads, kv_dim = in->n_kv_heads * hd;
    double p_layer = (2 * d * d + 2 * d * kv_dim + (in->gated_mlp ? 3 : 2) * d * in->ffn_dim) / tp + 2 * d;
    double emb = d * in->vocab_size / tp;
    double g = in->grad_bytes, per_param = 2 + g + (12 + (dp > 1 ? g : 0)) / dp;
    /* fully sharded (FSDP2 / ZeRO-3): the fp32 parameter (the master), its
     * gradient and Adam's m, v live as 1/DP shards; the bf16 weights of a
     * unit (a layer, or the embedding / output projection) are gathered for
     * its forward and backward and freed after, the next one prefetched: two
     * units of bf16 weights and one of unsharded gradients at a time */
    double unit = p_layer > emb ? p_layer : emb;
    double gathered = 0;
    if (in->sharding == HERD_SHARD_FULL) {
        per_param = (4 + g + 8) / dp;
        gathered = unit * (2 * 2 + g);
    }
    double tok = (double)in->micro_batch * in->seq_len / cp;
    double a_layer = herd_plan_layer_act_bytes(in, tp, cp);
    herd_plan_inputs none = *in;
    none.recompute = HERD_RECOMPUTE_NONE;
    double workspace = herd_plan_layer_act_bytes(&none, tp, cp);
    double sp = in->sequence_parallel ? tp : 1;
    double logit_cols = (double)in->vocab_size / tp; /* a chunk smaller than the slice: the chunk */
    if (in->xent_chunk > 0 && in->xent_chunk < logit_cols) logit_cols = in->xent_chunk;
    r->mem_GB = -1;
    for (int p = 0; p < pp; p++) {
        int layers;
        double inflight;
        if (herd_plan_stage_layers(in, pp, V, M, p, &layers, &inflight)) return -1;
        double params = layers * p_layer + (p == 0 ? emb : 0) + (p == pp - 1 ? emb + d : 0);
        double stat = params * per_param + gathered;
        double act = a_layer * inflight + workspace;
        if (p == pp - 1) act += tok * (4.0 * logit_cols + 2 * d / sp);
        double total = (stat + act) / 1e9;
        if (total > r->mem_GB) {
            r->mem_GB = total;
            r->mem_static_GB = stat / 1e9;
            r->mem_act_GB = act / 1e9;
            r->mem_stage = p;
            r->mem_inflight = inflight;
        }
    }
    r->fits = r->mem_GB <= in->hbm_GB;
    return 0;
}
