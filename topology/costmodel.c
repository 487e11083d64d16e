/* costmodel.c — time of one training step for a model, a job and a layout.
 *
 * Alpha-beta per collective on the bandwidth each group gets from its links
 * (herd_topo_group_stats: slowest ring edge, uplink contention included), an
 * interleaved 1F1B pipeline bubble, and an overlap fraction per kind of
 * traffic. The equations and the inputs are in docs/topology.md; every name
 * here is the one used there.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "monitoring/mfu.h"
#include "topology/computemodel.h"
#include "topology/topo_internal.h"

void herd_plan_inputs_default(herd_plan_inputs *in)
{
    memset(in, 0, sizeof *in);
    in->micro_batch = 1;
    in->virtual_stages = 0;   /* one layer per virtual stage, the paper's 126 = 16 x 8 - 2 */
    in->peak_tflops = HERD_PEAK_TFLOPS_H100_BF16;
    in->hbm_GB = 80.0;
    in->compute_eff = 0.50;   /* GEMMs of the 405B shapes in BF16, fraction of dense peak */
    in->attn_eff = 0.45;      /* FlashAttention with document masks: below the GEMMs */
    in->sequence_parallel = 1;
    in->tp_overlap = 0.5;
    in->cp_overlap = 0.0;     /* the K/V all-gather precedes attention: exposed */
    in->pp_overlap = 0.5;
    in->dp_overlap = 0.5;
    in->grad_bytes = 4.0;     /* FP32 reduce-scatter of gradients */
    in->recompute = HERD_RECOMPUTE_NONE;
    in->pp_first_last_fewer = 0;
    in->xent_chunk = 0;
    in->gpu = herd_gpu_profile_h100();
    in->gated_mlp = 1;
    in->attn_full = 0;
    in->doc_len = 0;
    in->other_frac = 0.46;    /* fitted once, on Table 4 row 1 (docs/topology.md) */
    in->optimizer_bytes = 30; /* Adam: read/write fp32 master, m, v; read the gradient; write bf16 weights */
    in->sharding = HERD_SHARD_ZERO2;
}

/* One forward GEMM (m,n,k) and its two backward ones: dX (m,k,n), dW (k,n,m). */
static double gemm3(const herd_gpu_profile *g, double m, double n, double k, double *fwd)
{
    double f = herd_gemm_seconds(g, m, n, k);
    *fwd += f;
    return f + herd_gemm_seconds(g, m, k, n) + herd_gemm_seconds(g, k, n, m);
}

/* Seconds of compute on one rank per step from the shapes of its kernels:
 * per micro-batch, L/PP layers (TP-split weights, CP-split tokens, the
 * all-gathered sequence-parallel input) and 1/PP of the output layer (spread
 * as the FLOPs are), forward + backward (+ the forward again with full
 * recompute); the non-GEMM kernels (norms, RoPE, SwiGLU, the loss) add
 * other_frac of the GEMM time. */
static double shape_compute(const herd_plan_inputs *in, int tp, int cp, int pp, int M)
{
    const herd_gpu_profile *g = in->gpu;
    double d = in->d_model, f = in->ffn_dim, hd = d / in->n_heads;
    double m = (double)in->micro_batch * in->seq_len / cp;
    double qw = d / tp, kvw = (in->n_kv_heads >= tp ? (double)in->n_kv_heads / tp : 1) * hd;
    double fwd = 0, t = 0;
    t += gemm3(g, m, qw + 2 * kvw, d, &fwd);  /* q, k, v */
    t += gemm3(g, m, d, qw, &fwd);            /* o */
    if (in->gated_mlp) {
        t += 2 * gemm3(g, m, f / tp, d, &fwd); /* gate, up */
        fwd += herd_gemm_seconds(g, m, f / tp, d);
    } else {
        t += gemm3(g, m, f / tp, d, &fwd);     /* fc1 */
    }
    t += gemm3(g, m, d, f / tp, &fwd);         /* down (fc2) */
    double o = 1 + in->other_frac; /* elementwise work scales with the tokens, as the GEMMs do */
    t *= o;
    fwd *= o;
    /* attention: each query sees the keys of its document (causal) or all s */
    double kv = in->doc_len > 0 && in->doc_len < in->seq_len ? in->doc_len : in->seq_len;
    double att = herd_attn_seconds(g, m, kv, qw, !in->attn_full);
    t += att;
    fwd += att / (1 + 2.5 / g->attn_bwd_ratio);
    if (in->recompute == HERD_RECOMPUTE_FULL) t += fwd;
    double out_fwd = 0, out = gemm3(g, m, (double)in->vocab_size / tp, d, &out_fwd) * o;
    double layers = (double)in->n_layers / pp;
    return M * (layers * t + out / pp);
}

/* ring all-gather or reduce-scatter of `bytes` (the full gathered size) over p ranks */
static double ring(double bytes, int p, double bw_GBps, double lat_us)
{
    if (p <= 1) return 0;
    return (p - 1) * lat_us * 1e-6 + (double)(p - 1) / p * bytes / (bw_GBps * 1e9);
}

/* all-reduce: the faster of ring (2(p-1) steps) and pipelined tree (2 log2 p) */
static double allreduce(double bytes, int p, double bw_GBps, double lat_us)
{
    if (p <= 1) return 0;
    double r = 2 * ring(bytes, p, bw_GBps, lat_us);
    double tr = 2 * ceil(log2(p)) * lat_us * 1e-6 + 2 * bytes / (bw_GBps * 1e9);
    return r < tr ? r : tr;
}

/* FSDP traffic of a step over dp x cp (CP ranks hold the same weights), in
 * two levels as NCCL's hierarchical collectives and HSDP do: the full size
 * inside the CP group (close), then 1/cp of it across DP (far).
 * ZeRO-2 (herd): bf16 weights all-gathered once per step, gradients
 * reduce-scattered once. Fully sharded: every micro-batch gathers the bf16
 * weights for its forward and again for its backward and reduce-scatters its
 * gradients (FSDP without no_sync). */
static double dp_traffic(const herd_plan_inputs *in, double p_total, int tp, int cp, int pp, int dp, int M,
                         const herd_topo_groupstat *st)
{
    double p_local = p_total / ((double)tp * pp);
    const herd_topo_groupstat *sd = &st[HERD_DIM_DP], *sc = &st[HERD_DIM_CP];
    double bytes = in->sharding == HERD_SHARD_FULL ? M * (2 * 2 + in->grad_bytes) * p_local
                                                   : (2 + in->grad_bytes) * p_local;
    return ring(bytes, cp, sc->bw_GBps, sc->latency_us) + ring(bytes / cp, dp, sd->bw_GBps, sd->latency_us);
}

/* Ranks that share cores (more ranks than cores: a CPU cluster, make
 * bench-layouts) wait at every message for a peer the scheduler has
 * descheduled; that wait, not the bytes, dominates their communication. The
 * messages of a step on one rank: every ring step of every TP and CP
 * collective, every pipeline send, the two FSDP rings. */
static double oversub_hops(const herd_plan_inputs *in, int tp, int cp, int pp, int dp, int M, int V)
{
    double layers = (double)in->n_layers / pp;
    double tp_calls = in->sequence_parallel ? 8 : 4 * 2; /* ring all-reduce: 2 passes */
    return M * layers * (tp_calls * (tp - 1) + 2.0 * (cp - 1)) + (pp > 1 ? M * 2.0 * V : 0) +
           2.0 * ((cp - 1) + (dp - 1));
}

/* the layout against the model, job and batch; -1 with a message naming the field */
static int estimate_check(const herd_plan_inputs *in, int N, int tp, int cp, int pp, int dp)
{
    const char *who = "herd plan";
    if ((long long)tp * cp * pp * dp != N) {
        fprintf(stderr, "%s: layout tp=%d cp=%d pp=%d dp=%d needs %lld GPUs, the cluster job has %d\n", who, tp, cp,
                pp, dp, (long long)tp * cp * pp * dp, N);
        return -1;
    }
    if (in->n_heads % tp || in->ffn_dim % tp) {
        fprintf(stderr, "%s: tp=%d must divide model.n_heads=%d and model.ffn_dim=%d\n", who, tp, in->n_heads,
                in->ffn_dim);
        return -1;
    }
    if (in->seq_len % (2 * cp)) {
        fprintf(stderr, "%s: cp=%d: seq_len %d must split into 2*cp chunks\n", who, cp, in->seq_len);
        return -1;
    }
    if (in->recompute < HERD_RECOMPUTE_NONE || in->recompute > HERD_RECOMPUTE_FULL) {
        fprintf(stderr, "%s: recompute %d: expected none (0), selective (1) or full (2)\n", who, in->recompute);
        return -1;
    }
    if (pp > in->n_layers) {
        fprintf(stderr, "%s: pp=%d exceeds model.n_layers=%d\n", who, pp, in->n_layers);
        return -1;
    }
    long long seqs = in->batch_tokens / in->seq_len;
    if (seqs * in->seq_len != in->batch_tokens || seqs % ((long long)dp * in->micro_batch)) {
        fprintf(stderr, "%s: dp=%d: the batch of %lld tokens (%lld sequences of %d) does not split into dp x micro_batch=%d\n",
                who, dp, in->batch_tokens, seqs, in->seq_len, in->micro_batch);
        return -1;
    }
    return 0;
}

int herd_plan_estimate(const herd_plan_inputs *in, const herd_topo *t, int tp, int cp, int pp, int dp,
                       const int *perm, herd_plan_result *r)
{
    memset(r, 0, sizeof *r);
    r->tp = tp; r->cp = cp; r->pp = pp; r->dp = dp;
    const double L = in->n_layers, d = in->d_model, s = in->seq_len;
    const int N = t->n_ranks;
    if (estimate_check(in, N, tp, cp, pp, dp)) return -1;
    long long seqs = in->batch_tokens / in->seq_len;
    int M = (int)(seqs / dp / in->micro_batch);
    int V = in->virtual_stages > 0 ? in->virtual_stages : (int)ceil(L / pp);
    if (pp == 1 || M < pp) V = 1; /* interleaving needs a micro-batch per stage in flight */
    r->micro_batches = M;
    r->virtual_stages = V;

    int dims[HERD_NDIM] = {tp, cp, pp, dp};
    if (herd_topo_group_stats(t, dims, perm, r->stat)) return -1;

    /* FLOPs (DESIGN.md): 6 P_matmul per token + attention 6 L s d (causal half) */
    double hd = d / in->n_heads, kv_dim = in->n_kv_heads * hd;
    double p_layer = 2 * d * d + 2 * d * kv_dim + (in->gated_mlp ? 3 : 2) * d * in->ffn_dim;
    double p_matmul = L * p_layer + d * in->vocab_size;
    double p_total = p_matmul + d * in->vocab_size; /* + the embedding table */
    double f_mm = 6 * p_matmul, f_attn = 6 * L * s * d;
    r->flops_per_token = herd_mfu_flops_per_token((int64_t)p_matmul, in->n_layers, in->seq_len, in->d_model);
    double B = (double)in->batch_tokens, peak = in->peak_tflops * 1e12;
    if (in->gpu) {
        r->t_compute = shape_compute(in, tp, cp, pp, M);
    } else {
        r->t_compute = B * (f_mm / in->compute_eff + f_attn / in->attn_eff) / (N * peak);
        /* full recompute reruns each layer's forward (a third of 6P and of the
         * attention): 4/3 the time; selective reruns elementwise ops only, which
         * compute_eff already covers. MFU still counts model FLOPs (DESIGN.md). */
        if (in->recompute == HERD_RECOMPUTE_FULL) r->t_compute *= 4.0 / 3.0;
    }

    /* per layer and micro-batch: the activation X [mb, s/cp, d] in bf16 */
    double tok = (double)in->micro_batch * s / cp, X = tok * d * 2, layers = L / pp;
    const herd_topo_groupstat *st = r->stat;
    /* TP with sequence parallelism: 2 all-gathers + 2 reduce-scatters forward, the same backward */
    double t_tp = in->sequence_parallel
                      ? M * layers * 8 * ring(X, tp, st[HERD_DIM_TP].bw_GBps, st[HERD_DIM_TP].latency_us)
                      : M * layers * 4 * allreduce(X, tp, st[HERD_DIM_TP].bw_GBps, st[HERD_DIM_TP].latency_us);
    /* CP: all-gather K and V forward, reduce-scatter dK, dV backward; each rank holds its kv heads */
    double kv_heads = in->n_kv_heads >= tp ? (double)in->n_kv_heads / tp : 1;
    double kv_all = (double)in->micro_batch * s * 2 * kv_heads * hd * 2;
    double t_cp = M * layers * 2 * ring(kv_all, cp, st[HERD_DIM_CP].bw_GBps, st[HERD_DIM_CP].latency_us);
    /* PP: per micro-batch V sends forward and V backward of X/tp (sequence-parallel shard) */
    double t_pp = pp > 1 ? M * 2.0 * V * (X / tp / (st[HERD_DIM_PP].bw_GBps * 1e9) + st[HERD_DIM_PP].latency_us * 1e-6)
                         : 0;
    r->t_tp = (1 - in->tp_overlap) * t_tp;
    r->t_cp = (1 - in->cp_overlap) * t_cp;
    r->t_pp = (1 - in->pp_overlap) * t_pp;
    /* every virtual-stage hop of every micro-batch, forward and backward,
     * waits for its send/recv pair: two kernel launches and a stream sync
     * that no compute hides (shape-aware mode; the flat mode has none) */
    double hop = in->gpu ? 3 * in->gpu->launch_us * 1e-6 : 0;
    r->t_sched = pp > 1 ? M * 2.0 * V * hop : 0;
    if (in->oversub_hop_us > 0) r->t_sched += oversub_hops(in, tp, cp, pp, dp, M, V) * in->oversub_hop_us * 1e-6;
    /* pipeline: (M + (pp-1)/V) micro-batch slots, each the rank's work per micro-batch */
    double t_mb = (r->t_compute + r->t_tp + r->t_cp + r->t_pp + r->t_sched) / M;
    r->t_bubble = (pp - 1) / (double)V * t_mb;
    double t_dp = dp_traffic(in, p_total, tp, cp, pp, dp, M, st);
    if (in->sharding == HERD_SHARD_FULL) {
        /* per-layer gathers prefetched one layer ahead run beside the compute:
         * exposed is what exceeds the compute, plus the first gather and the
         * last reduce-scatter (one layer's share of each pass: 3 per micro-batch) */
        double units = 3.0 * M * (L / pp + 1);
        double over = t_dp - r->t_compute;
        r->t_dp = (over > 0 ? over : 0) + 3.0 * M * t_dp / units;
    } else {
        r->t_dp = (1 - in->dp_overlap) * t_dp;
    }
    /* the optimizer step reads and writes the rank's shard once, after the
     * last reduce-scatter: exposed */
    double hbm = in->gpu ? in->gpu->hbm_GBps : 0;
    r->t_opt = hbm > 0 ? in->optimizer_bytes * p_total / ((double)tp * pp * dp) / (hbm * 1e9) : 0;
    r->t_step = r->t_compute + r->t_tp + r->t_cp + r->t_pp + r->t_sched + r->t_bubble + r->t_dp + r->t_opt;
    r->tokens_per_s = B / r->t_step;
    r->mfu = B * r->flops_per_token / (r->t_step * N * peak);
    r->tflops_per_gpu = r->mfu * in->peak_tflops;

    /* memory per pipeline rank, the most loaded one (memmodel.c) */
    if (herd_plan_memory(in, tp, cp, pp, dp, V, M, r)) return -1;
    return 0;
}

static int cmp_mfu(const void *a, const void *b)
{
    const herd_plan_result *x = a, *y = b;
    if (x->fits != y->fits) return y->fits - x->fits; /* layouts that fit in memory first */
    return (x->mfu < y->mfu) - (x->mfu > y->mfu);
}

int herd_plan_rank_layouts(const herd_plan_inputs *in, const herd_topo *t, int max_tp, herd_plan_result **out,
                           int *n_out)
{
    int N = t->n_ranks, n = 0, cap = 64;
    herd_plan_result *res = malloc((size_t)cap * sizeof *res);
    int *perm = malloc((size_t)N * sizeof *perm);
    if (!res || !perm) { free(res); free(perm); return -1; }
    /* invalid layouts are skipped quietly: silence the per-layout messages */
    for (int tp = 1; tp <= max_tp && tp <= N; tp++) {
        if (N % tp || in->n_heads % tp || in->ffn_dim % tp) continue;
        for (int cp = 1; cp <= N / tp; cp++) {
            if ((N / tp) % cp || in->seq_len % (2 * cp)) continue;
            for (int pp = 1; pp <= N / tp / cp && pp <= in->n_layers; pp++) {
                if ((N / tp / cp) % pp) continue;
                int dp = N / tp / cp / pp;
                long long seqs = in->batch_tokens / in->seq_len;
                if (seqs % ((long long)dp * in->micro_batch)) continue;
                if (herd_topo_place(t, tp, cp, pp, dp, perm)) continue;
                herd_plan_result r;
                if (herd_plan_estimate(in, t, tp, cp, pp, dp, perm, &r)) continue;
                if (r.mem_static_GB > in->hbm_GB) continue; /* weights + optimizer alone do not fit */
                if (n == cap) {
                    cap *= 2;
                    herd_plan_result *x = realloc(res, (size_t)cap * sizeof *x);
                    if (!x) { free(res); free(perm); return -1; }
                    res = x;
                }
                res[n++] = r;
            }
        }
    }
    free(perm);
    qsort(res, (size_t)n, sizeof *res, cmp_mfu);
    *out = res;
    *n_out = n;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int herd_plan_eff_from_metrics(const char *path, double *eff)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open metrics file\n", path);
        return -1;
    }
    double *v = NULL;
    int n = 0, cap = 0, lineno = 0, rc = 0;
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) > 0) {
        lineno++;
        const char *p = strstr(line, "\"mfu\":");
        if (!p) continue;
        char *end;
        double x = strtod(p + 6, &end);
        if (end == p + 6 || !(x > 0 && x <= 1)) {
            fprintf(stderr, "%s:%d: mfu: '%.20s' is not a fraction in (0, 1]\n", path, lineno, p + 6);
            rc = -1;
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            double *w = realloc(v, (size_t)cap * sizeof *w);
            if (!w) { rc = -1; break; }
            v = w;
        }
        v[n++] = x;
    }
    free(line);
    fclose(f);
    if (!rc && n < 2) {
        fprintf(stderr, "%s: mfu: fewer than 2 steps with an \"mfu\" field (herd train's metrics.jsonl)\n", path);
        rc = -1;
    }
    if (!rc) {
        /* the first step pays for warm-up: the median of the others */
        qsort(v + 1, (size_t)(n - 1), sizeof *v, cmp_double);
        int m = n - 1;
        *eff = m % 2 ? v[1 + m / 2] : 0.5 * (v[m / 2] + v[1 + m / 2]);
    }
    free(v);
    return rc;
}
