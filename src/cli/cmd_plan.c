/* cmd_plan.c — `herd plan`: predicted step time and MFU of a layout on a
 * cluster (topology/costmodel.c), the ranking of every valid layout, the
 * paper's Table 4 rows, and the naive (DP innermost) placement beside the
 * network-aware one. docs/topology.md has the equations and the inputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/cli/cmd_plan_goodput.h"
#include "src/cli/commands.h"
#include "src/config/config.h"
#include "topology/computemodel.h"
#include "topology/topo.h"

static int usage(FILE *f)
{
    fprintf(f,
            "usage: herd plan --conf TOPOLOGY.conf [--links FILE] [--gpus-per-node 8] [--gpus N]\n"
            "                 [--model 405b] [--seq 8192] [--batch-tokens 16777216]\n"
            "                 [--layout TP,CP,PP,DP]... [--naive] [--rank [--top K]] [--table4]\n"
            "                 [--compute-eff X] [--attn-eff X] [--tp-overlap X] [--cp-overlap X]\n"
            "                 [--pp-overlap X] [--dp-overlap X] [--micro-batch N] [--virtual-stages N]\n"
            "                 [--peak-tflops X] [--hbm GB] [--measured METRICS.jsonl]\n"
            "                 [--sequence-parallel 0|1] [--recompute none|selective|full]\n"
            "                 [--first-last-fewer 0|1] [--xent-chunk N] [--spread] [--json]\n"
            "                 [--gpu h100|a100] [--calibrate TABLE] [--other-frac X]\n"
            "                 [--schedule 1f1b|interleaved[:V]] [--sharding zero2|full] [--doc-len N]\n"
            "                 [--shape L,D,HEADS,KV,FFN,VOCAB] [--mlp swiglu|gelu] [--attn-full 0|1]\n"
            "                 [--oversub-hop-us X]\n"
            "  --gpu       the GPU whose kernel rates time the step's GEMMs and attention by shape\n"
            "              (default h100; docs/topology.md, \"Shape-aware compute\")\n"
            "  --calibrate a measured table of GEMM and attention times (benchmarks/bench_shapes)\n"
            "              that scales the roofline of the nearest shape\n"
            "  --compute-eff, --measured  one flat efficiency for every GEMM instead of the shapes\n"
            "  --schedule  1f1b (V = 1) or interleaved with V virtual stages per rank\n"
            "  --sharding  zero2: herd's FSDP (full weights and gradients during the step);\n"
            "              full: parameters, gradients, optimizer state sharded, gathered per layer\n"
            "  --shape     a model by its shape instead of --model (layers, width, heads, KV heads,\n"
            "              ffn, vocabulary); --mlp gelu: two MLP GEMMs (GPT) instead of SwiGLU's three\n"
            "  --attn-full attention computes the whole s x s (unfused kernels) instead of skipping\n"
            "              the causal half\n"
            "  --oversub-hop-us X  more ranks than cores: every ring step and pipeline message waits\n"
            "              X us for a descheduled peer (make bench-layouts)\n"
            "  --spread    the job's GPUs shared evenly among the pods (default: packed in tree order)\n"
            "  --measured  compute_eff = the median MFU of a herd train run's metrics.jsonl\n"
            "  --recompute activations recomputed in the backward (train.recompute; memory estimate)\n"
            "  --xent-chunk vocabulary columns of fp32 logits kept on the last stage (train.xent_chunk;\n"
            "              memory estimate; 0: all of vocab/tp)\n"
            "  --first-last-fewer  the first and last pipeline stage hold one layer fewer\n"
            "              (parallel.pp_first_last_fewer)\n"
            "  --layout    estimate one layout (network-aware placement; --naive adds DP innermost)\n"
            "  --rank      rank every valid layout of N GPUs for the global batch, best MFU first\n"
            "  --table4    the Llama 3 paper's Table 4 rows (405B), predicted vs the paper's MFU\n"
            "  --goodput   the goodput of a checkpointed run (herd plan --goodput --help)\n");
    return f == stdout ? 0 : 2;
}

static int parse_num(const char *flag, const char *v, double lo, double hi, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "herd plan: %s '%s': expected a number in [%g, %g]\n", flag, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

static const char *dim_name[HERD_NDIM] = {"TP", "CP", "PP", "DP"};

static void print_inputs(const herd_plan_inputs *in, const herd_topo *t, const char *model, int spread)
{
    printf("model %s: layers %d, d_model %d, ffn %d, heads %d/%d kv, vocab %d\n", model, in->n_layers, in->d_model,
           in->ffn_dim, in->n_heads, in->n_kv_heads, in->vocab_size);
    printf("cluster %s: %d nodes, tree height %d; the job's GPUs %s\n", t->conf_path, t->n_nodes, t->height,
           spread ? "spread evenly over the top-level switches (--spread)" : "packed onto the first nodes in tree order");
    for (int h = 1; h <= t->height; h++)
        printf("  link height %d (%s): %.0f GB/s, %.0f us, oversubscription 1:%g\n", h, t->link[h].name,
               t->link[h].bw_GBps, t->link[h].latency_us, t->link[h].oversub);
    if (in->gpu)
        printf("compute: by shape on %s (peak %.1f TFLOP/s, HBM %.0f GB/s, large GEMMs %.2f of peak, %d measured "
               "kernels), non-GEMM kernels %.2f of GEMM time\n", in->gpu->name, in->gpu->peak_tflops,
               in->gpu->hbm_GBps, in->gpu->gemm_eff, in->gpu->n_points, in->other_frac);
    else
        printf("compute: flat, compute_eff %.2f, attn_eff %.2f\n", in->compute_eff, in->attn_eff);
    printf("inputs: peak %.1f TFLOP/s, HBM %.0f GB, compute_eff %.2f, attn_eff %.2f, tp_overlap %.2f, "
           "cp_overlap %.2f, pp_overlap %.2f, dp_overlap %.2f, grad bytes %.0f, micro_batch %d, "
           "virtual stages %s, sequence parallel %s, recompute %s, first/last stage one layer fewer %s, "
           "xent_chunk %d, sharding %s\n",
           in->peak_tflops, in->hbm_GB, in->compute_eff, in->attn_eff, in->tp_overlap, in->cp_overlap, in->pp_overlap,
           in->dp_overlap, in->grad_bytes, in->micro_batch, in->virtual_stages ? "set" : "1 layer each",
           in->sequence_parallel ? "yes" : "no", herd_plan_recompute_name(in->recompute),
           in->pp_first_last_fewer ? "yes" : "no", in->xent_chunk,
           in->sharding == HERD_SHARD_FULL ? "full (per-layer gather)" : "zero2 (herd)");
}

static void print_header(void)
{
    printf("%-16s %-6s %6s %4s %3s %6s %7s %7s | %7s %6s %6s %6s %6s %6s | %6s | %s\n", "layout", "place", "seq", "M",
           "V", "MFU%", "TFLOP/s", "step_s", "compute", "bubble", "tp", "cp", "pp", "dp", "mem_GB",
           "group GB/s (highest link)");
    printf("  (seconds per step; tp/cp/pp/dp = exposed communication; ! = over HBM: needs activation recompute)\n");
}

static void print_result(const herd_plan_result *r, const herd_topo *t, const char *place, int seq)
{
    char lay[32];
    snprintf(lay, sizeof lay, "%d,%d,%d,%d", r->tp, r->cp, r->pp, r->dp);
    printf("%-16s %-6s %6d %4d %3d %6.1f %7.0f %7.2f | %7.2f %6.2f %6.2f %6.2f %6.2f %6.2f | %5.1f%c |", lay, place,
           seq, r->micro_batches, r->virtual_stages, 100 * r->mfu, r->tflops_per_gpu, r->t_step, r->t_compute,
           r->t_bubble, r->t_tp, r->t_cp, r->t_pp, r->t_dp, r->mem_GB, r->fits ? ' ' : '!');
    for (int d = 0; d < HERD_NDIM; d++) {
        if (r->stat[d].size == 1) continue;
        printf(" %s %.0f (%s)", dim_name[d], r->stat[d].bw_GBps, t->link[r->stat[d].max_height].name);
    }
    printf("\n");
}

/* the parts a --layout line has no room for: memory against the H100 / H200
 * sizes, and the schedule's and optimizer's exposed costs */
static void print_detail(const herd_plan_result *r)
{
    static const double parts[] = {80, 96, 141};
    printf("  memory %.1f GB (weights/optimizer %.1f, activations %.1f; rank %d):", r->mem_GB, r->mem_static_GB,
           r->mem_act_GB, r->mem_stage);
    for (int i = 0; i < 3; i++) printf("%s %.0f GB %s", i ? "," : " fits", parts[i], r->mem_GB <= parts[i] ? "yes" : "no");
    printf("; pipeline hops %.2f s, optimizer step %.2f s\n", r->t_sched, r->t_opt);
}

static void json_result(const herd_plan_result *r, const char *place, int seq, double paper, int last)
{
    printf("    {\"tp\": %d, \"cp\": %d, \"pp\": %d, \"dp\": %d, \"placement\": \"%s\", \"seq\": %d, "
           "\"micro_batches\": %d, \"virtual_stages\": %d, \"mfu\": %.4f, \"tflops_per_gpu\": %.1f, "
           "\"step_s\": %.4f, \"compute_s\": %.4f, \"bubble_s\": %.4f, \"tp_s\": %.4f, \"cp_s\": %.4f, "
           "\"pp_s\": %.4f, \"dp_s\": %.4f, \"mem_GB\": %.2f, \"mem_static_GB\": %.2f, \"mem_act_GB\": %.2f, "
           "\"mem_stage\": %d, \"mem_inflight\": %.1f, \"fits\": %s",
           r->tp, r->cp, r->pp, r->dp, place, seq, r->micro_batches, r->virtual_stages, r->mfu, r->tflops_per_gpu,
           r->t_step, r->t_compute, r->t_bubble, r->t_tp, r->t_cp, r->t_pp, r->t_dp, r->mem_GB,
           r->mem_static_GB, r->mem_act_GB, r->mem_stage, r->mem_inflight, r->fits ? "true" : "false");
    if (paper > 0) printf(", \"paper_mfu\": %.2f", paper);
    printf(", \"sched_s\": %.4f, \"opt_s\": %.4f, \"fits_80\": %s, \"fits_96\": %s, \"fits_141\": %s", r->t_sched,
           r->t_opt, r->mem_GB <= 80 ? "true" : "false", r->mem_GB <= 96 ? "true" : "false",
           r->mem_GB <= 141 ? "true" : "false");
    printf(", \"groups\": {");
    for (int d = 0; d < HERD_NDIM; d++)
        printf("%s\"%s\": {\"size\": %d, \"bw_GBps\": %.2f, \"max_height\": %d, \"oversubscribed_groups\": %d}",
               d ? ", " : "", dim_name[d], r->stat[d].size, r->stat[d].size > 1 ? r->stat[d].bw_GBps : 0,
               r->stat[d].max_height, r->stat[d].n_oversub);
    printf("}}%s\n", last ? "" : ",");
}

/* estimate one layout with both placements as asked; 0/-1 */
static int run_layout(herd_plan_inputs *in, const char *conf, const char *links, int gpn, int spread, const int l[4],
                      int naive, int json, double paper, int *first_json, int last)
{
    herd_topo *t;
    int n = l[0] * l[1] * l[2] * l[3];
    if (herd_topo_from_conf_alloc(&t, conf, gpn, n, spread)) return -1;
    if (herd_topo_links_load(t, links)) { herd_topo_free(t); return -1; }
    int *perm = malloc((size_t)n * sizeof *perm);
    herd_plan_result r, rn;
    int rc = -1;
    if (!perm || herd_topo_place(t, l[0], l[1], l[2], l[3], perm) ||
        herd_plan_estimate(in, t, l[0], l[1], l[2], l[3], perm, &r))
        goto out;
    if (naive && (herd_topo_place_naive(t, l[0], l[1], l[2], l[3], perm) ||
                  herd_plan_estimate(in, t, l[0], l[1], l[2], l[3], perm, &rn)))
        goto out;
    if (json) {
        if (*first_json) *first_json = 0;
        json_result(&r, "topo", in->seq_len, paper, last && !naive);
        if (naive) json_result(&rn, "naive", in->seq_len, 0, last);
    } else {
        print_result(&r, t, "topo", in->seq_len);
        print_detail(&r);
        if (paper > 0)
            printf("  paper: %.0f%% MFU; predicted %.1f%% (%+.1f points)\n", paper, 100 * r.mfu, 100 * r.mfu - paper);
        if (naive) {
            print_result(&rn, t, "naive", in->seq_len);
            printf("  naive placement (DP innermost): step %.2f s vs %.2f s, %.1fx slower\n", rn.t_step, r.t_step,
                   rn.t_step / r.t_step);
        }
    }
    rc = 0;
out:
    free(perm);
    herd_topo_free(t);
    return rc;
}

typedef struct {
    const char *conf, *links, *model, *calibrate;
    int gpn, gpus, naive, rank, top, table4, json, n_layouts, spread;
    int layouts[16][4];
    int flat, peak_set, shape[6];
    herd_gpu_profile gpu;
    herd_plan_inputs in;
} plan_args;

/* the shape-aware flags that take a word; 1 taken (status set), 0 not ours */
static int plan_parse_shape_word(plan_args *p, const char *a, const char *v, int *status)
{
    herd_plan_inputs *in = &p->in;
    if (!strcmp(a, "--gpu")) {
        if (herd_gpu_profile_get(v, &p->gpu)) *status = 2;
    } else if (!strcmp(a, "--calibrate")) {
        p->calibrate = v;
    } else if (!strcmp(a, "--schedule")) {
        char *end = NULL;
        if (!strcmp(v, "1f1b")) in->virtual_stages = 1;
        else if (!strcmp(v, "interleaved")) in->virtual_stages = 0;
        else if (!strncmp(v, "interleaved:", 12) && (in->virtual_stages = (int)strtol(v + 12, &end, 10)) > 0 && !*end)
            ;
        else {
            fprintf(stderr, "herd plan: --schedule '%s': expected 1f1b, interleaved or interleaved:V (V >= 1)\n", v);
            *status = 2;
        }
    } else if (!strcmp(a, "--sharding")) {
        if (!strcmp(v, "zero2")) in->sharding = HERD_SHARD_ZERO2;
        else if (!strcmp(v, "full")) in->sharding = HERD_SHARD_FULL;
        else fprintf(stderr, "herd plan: --sharding '%s': expected zero2 or full\n", v), *status = 2;
    } else if (!strcmp(a, "--mlp")) {
        if (strcmp(v, "swiglu") && strcmp(v, "gelu"))
            fprintf(stderr, "herd plan: --mlp '%s': expected swiglu or gelu\n", v), *status = 2;
        in->gated_mlp = v[0] == 's';
    } else if (!strcmp(a, "--attn-full")) {
        if (strcmp(v, "0") && strcmp(v, "1"))
            fprintf(stderr, "herd plan: --attn-full '%s': expected 0 or 1\n", v), *status = 2;
        in->attn_full = v[0] == '1';
    } else if (!strcmp(a, "--shape")) {
        int *x = p->shape, n = 0;
        if (sscanf(v, "%d,%d,%d,%d,%d,%d%n", &x[0], &x[1], &x[2], &x[3], &x[4], &x[5], &n) != 6 || v[n] ||
            x[0] < 1 || x[1] < 1 || x[2] < 1 || x[3] < 1 || x[4] < 1 || x[5] < 1 || x[1] % x[2] || x[2] % x[3]) {
            fprintf(stderr, "herd plan: --shape '%s': expected LAYERS,D_MODEL,HEADS,KV_HEADS,FFN,VOCAB, positive, "
                    "heads dividing d_model, kv heads dividing heads\n", v);
            *status = 2;
        }
    } else {
        return 0;
    }
    return 1;
}

/* the flags that take a word rather than a number; 1: taken, else -1 (go
 * on) or the exit status */
static int plan_parse_word(plan_args *p, const char *a, const char *v, int *status)
{
    herd_plan_inputs *in = &p->in;
    *status = -1;
    if (plan_parse_shape_word(p, a, v, status)) return 1;
    if (!strcmp(a, "--measured")) {
        p->flat = 1;
        if (herd_plan_eff_from_metrics(v, &in->compute_eff)) *status = 1;
        else printf("compute_eff %.3f: median MFU of %s\n", in->compute_eff, v);
    } else if (!strcmp(a, "--sequence-parallel")) {
        if (strcmp(v, "0") && strcmp(v, "1")) {
            fprintf(stderr, "herd plan: --sequence-parallel '%s': expected 0 or 1\n", v);
            *status = 2;
        }
        in->sequence_parallel = v[0] == '1';
    } else if (!strcmp(a, "--recompute")) {
        if ((in->recompute = herd_plan_recompute_parse(v)) < 0) {
            fprintf(stderr, "herd plan: --recompute '%s': expected none, selective or full\n", v);
            *status = 2;
        }
    } else if (!strcmp(a, "--xent-chunk")) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || end == v || n < 0 || n > 1 << 24) {
            fprintf(stderr, "herd plan: --xent-chunk '%s': expected an integer in [0, 16777216] "
                    "(train.xent_chunk)\n", v);
            *status = 2;
        }
        in->xent_chunk = (int)n;
    } else if (!strcmp(a, "--first-last-fewer")) {
        if (strcmp(v, "0") && strcmp(v, "1")) {
            fprintf(stderr, "herd plan: --first-last-fewer '%s': expected 0 or 1\n", v);
            *status = 2;
        }
        in->pp_first_last_fewer = v[0] == '1';
    } else if (!strcmp(a, "--layout")) {
        if (p->n_layouts == 16 || herd_topo_layout_parse("herd plan", v, p->layouts[p->n_layouts])) *status = 2;
        else p->n_layouts++;
    } else if (!strcmp(a, "--conf")) p->conf = v;
    else if (!strcmp(a, "--links")) p->links = v;
    else if (!strcmp(a, "--model")) p->model = v;
    else return 0;
    return 1;
}

/* -1: go on; else the exit status (help, usage error) */
static int plan_parse_args(int argc, char **argv, plan_args *p)
{
    herd_plan_inputs *in = &p->in;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        int status;
#define NUM(flag, lo, hi, dst) else if (!strcmp(a, flag) && v) { if (parse_num(flag, v, lo, hi, &x)) return 2; dst; i++; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout);
        else if (v && plan_parse_word(p, a, v, &status)) {
            if (status >= 0) return status;
            i++;
        }
        NUM("--gpus-per-node", 1, HERD_TOPO_MAX_DEV, p->gpn = (int)x)
        NUM("--gpus", 1, 1e7, p->gpus = (int)x)
        NUM("--seq", 1, 1e8, in->seq_len = (int)x)
        NUM("--batch-tokens", 1, 1e12, in->batch_tokens = (long long)x)
        NUM("--top", 1, 1e6, p->top = (int)x)
        NUM("--compute-eff", 0.01, 1, (in->compute_eff = x, p->flat = 1))
        NUM("--other-frac", 0, 100, in->other_frac = x)
        NUM("--doc-len", 0, 1e8, in->doc_len = (int)x)
        NUM("--oversub-hop-us", 0, 1e7, in->oversub_hop_us = x)
        NUM("--attn-eff", 0.01, 1, in->attn_eff = x)
        NUM("--tp-overlap", 0, 1, in->tp_overlap = x)
        NUM("--cp-overlap", 0, 1, in->cp_overlap = x)
        NUM("--pp-overlap", 0, 1, in->pp_overlap = x)
        NUM("--dp-overlap", 0, 1, in->dp_overlap = x)
        NUM("--micro-batch", 1, 1e6, in->micro_batch = (int)x)
        NUM("--virtual-stages", 0, 1e4, in->virtual_stages = (int)x)
        NUM("--peak-tflops", 1e-6, 1e6, (in->peak_tflops = x, p->peak_set = 1))
        NUM("--hbm", 1, 1e6, in->hbm_GB = x)
        else if (!strcmp(a, "--naive")) p->naive = 1;
        else if (!strcmp(a, "--spread")) p->spread = 1;
        else if (!strcmp(a, "--rank")) p->rank = 1;
        else if (!strcmp(a, "--table4")) p->table4 = 1;
        else if (!strcmp(a, "--json")) p->json = 1;
        else {
            fprintf(stderr, "herd plan: unexpected argument '%s'\n", a);
            return usage(stderr);
        }
#undef NUM
    }
    return -1;
}

/* the model's shape from its preset; the inputs printed once, against the
 * job the first request builds. -1: go on; else the exit status */
static int plan_setup(plan_args *p)
{
    herd_plan_inputs *in = &p->in;
    herd_config c;
    herd_config_defaults(&c);
    if (herd_config_apply_preset(&c, p->model)) return 2;
    in->n_layers = c.model.n_layers;
    in->d_model = c.model.d_model;
    in->n_heads = c.model.n_heads;
    in->n_kv_heads = c.model.n_kv_heads;
    in->ffn_dim = c.model.ffn_dim;
    in->vocab_size = c.model.vocab_size;
    if (p->shape[0]) {
        in->n_layers = p->shape[0], in->d_model = p->shape[1], in->n_heads = p->shape[2];
        in->n_kv_heads = p->shape[3], in->ffn_dim = p->shape[4], in->vocab_size = p->shape[5];
    }
    if (p->calibrate && herd_gpu_profile_calibrate(&p->gpu, p->calibrate)) return 1;
    if (p->flat) {
        in->gpu = NULL;
    } else {
        in->gpu = &p->gpu;
        if (!p->peak_set) in->peak_tflops = p->gpu.peak_tflops;
    }

    herd_topo *t;
    const int *l0 = p->layouts[0];
    int n = p->gpus ? p->gpus : p->n_layouts ? l0[0] * l0[1] * l0[2] * l0[3] : 0;
    if (herd_topo_from_conf_alloc(&t, p->conf, p->gpn, p->table4 && !n ? 8192 : n, p->spread)) return 1;
    if (herd_topo_links_load(t, p->links)) { herd_topo_free(t); return 1; }
    if (!p->json) print_inputs(in, t, p->model, p->spread);
    herd_topo_free(t);
    return -1;
}

/* every --layout, then the paper's Table 4 rows; 0/-1 */
static int plan_layouts(plan_args *p, int *first)
{
    int rc = 0;
    for (int k = 0; k < p->n_layouts && !rc; k++) {
        const int *l = p->layouts[k];
        if (p->gpus && l[0] * l[1] * l[2] * l[3] != p->gpus) {
            fprintf(stderr, "herd plan: --layout %d,%d,%d,%d = %d GPUs, but --gpus %d\n", l[0], l[1], l[2], l[3],
                    l[0] * l[1] * l[2] * l[3], p->gpus);
            return -1;
        }
        rc = run_layout(&p->in, p->conf, p->links, p->gpn, p->spread, l, p->naive, p->json, 0, first,
                        k == p->n_layouts - 1 && !p->table4 && !p->rank);
    }
    if (p->table4 && !rc) {
        /* Llama 3 paper, Table 4: 405B, 16M tokens per batch */
        static const struct { int l[4], seq; double mfu; } rows[] = {
            {{8, 1, 16, 64}, 8192, 43}, {{8, 1, 16, 128}, 8192, 41}, {{8, 16, 16, 8}, 131072, 38}};
        herd_plan_inputs row = p->in;
        for (int k = 0; k < 3 && !rc; k++) {
            row.seq_len = rows[k].seq;
            row.batch_tokens = 16777216;
            rc = run_layout(&row, p->conf, p->links, p->gpn, p->spread, rows[k].l, p->naive, p->json, rows[k].mfu,
                            first, k == 2 && !p->rank);
        }
    }
    return rc;
}

/* --rank: every valid layout of --gpus N, best MFU first; 0/-1 */
static int plan_rank(const plan_args *p)
{
    const herd_plan_inputs *in = &p->in;
    herd_topo *t;
    if (!p->gpus) {
        fprintf(stderr, "herd plan: --rank needs --gpus N\n");
        return -1;
    }
    if (herd_topo_from_conf_alloc(&t, p->conf, p->gpn, p->gpus, p->spread)) return -1;
    if (herd_topo_links_load(t, p->links)) {
        herd_topo_free(t);
        return -1;
    }
    herd_plan_result *res;
    int n, rc = 0;
    if (herd_plan_rank_layouts(in, t, p->gpn, &res, &n)) {
        herd_topo_free(t);
        return -1;
    }
    if (!p->json) {
        printf("\n%d valid layouts of %d GPUs for %lld tokens per batch at sequence %d; best %d:\n", n, p->gpus,
               in->batch_tokens, in->seq_len, n < p->top ? n : p->top);
        print_header();
    }
    if (n == 0) fprintf(stderr, "herd plan: no valid layout of %d GPUs for this model and batch\n", p->gpus);
    for (int k = 0; k < n && k < p->top; k++) {
        if (p->json) json_result(&res[k], "topo", in->seq_len, 0, k == n - 1 || k == p->top - 1);
        else print_result(&res[k], t, "topo", in->seq_len);
    }
    free(res);
    if (n == 0) rc = -1;
    herd_topo_free(t);
    return rc;
}

int herd_cmd_plan(int argc, char **argv)
{
    if (herd_plan_wants_goodput(argc, argv)) return herd_cmd_plan_goodput(argc, argv);
    plan_args p = {.model = "405b", .gpn = 8, .top = 10};
    herd_plan_inputs_default(&p.in);
    herd_gpu_profile_get("h100", &p.gpu);
    p.in.seq_len = 8192;
    p.in.batch_tokens = 16777216; /* 16M tokens, Table 4 */
    int status = plan_parse_args(argc, argv, &p);
    if (status >= 0) return status;
    if (!p.conf) {
        static char def[512];
        if (herd_topo_conf_default(def, sizeof def)) {
            fprintf(stderr, "herd plan: no --conf and no %s: give the cluster's topology.conf\n", def);
            return 2;
        }
        p.conf = def;
    }
    if (!p.table4 && !p.rank && p.n_layouts == 0) {
        fprintf(stderr, "herd plan: nothing to do: give --layout, --rank or --table4\n");
        return usage(stderr);
    }
    if ((status = plan_setup(&p)) >= 0) return status;
    int first = 1;
    if (p.json) printf("{\"model\": \"%s\", \"results\": [\n", p.model);
    else if (p.n_layouts || p.table4) print_header();
    int rc = plan_layouts(&p, &first);
    if (p.rank && !rc) rc = plan_rank(&p);
    if (p.json) printf("]}\n");
    return rc ? 1 : 0;
}
