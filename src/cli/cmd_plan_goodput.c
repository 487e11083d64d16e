/* cmd_plan_goodput.c — `herd plan --goodput`: the expected fraction of wall
 * time on useful training from the step time, the checkpoint's stall and
 * write, the restart and the interruption rate, as the closed form and the
 * simulation of topology/goodput.h side by side; a sweep over failure rates;
 * and the Llama 3 paper's case (--paper). docs/goodput.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/cli/cmd_plan_goodput.h"
#include "src/config/config.h"
#include "topology/goodput.h"
#include "topology/topo.h"

typedef struct {
    herd_goodput_inputs in;
    double interruptions, days, per_gpu_day, per_node_day, sim_mtbfs;
    int gpus, every, sweep, paper;
    unsigned long long seed;
    /* --paper: the step time from the cost model, and the scaling of herd's costs */
    const char *conf, *links;
    double disk_GBps, launch_s, write_eff, local_restart_s, stall_frac;
} gp_args;

static int usage(FILE *f)
{
    fprintf(f,
            "usage: herd plan --goodput --step-s S [--stall-s S] [--write-s S] [--restart-s S]\n"
            "                 (--mtbf-s S | --interruptions N --days D | --per-gpu-day X --gpus N |\n"
            "                  --per-node-day X --nodes N)\n"
            "                 [--requeue-s S --p-requeue F] [--nodes N --p-node F --repair-s S]\n"
            "                 [--every N] [--sweep] [--sim-mtbfs K] [--seed N]\n"
            "       herd plan --goodput --paper [--conf llama3.conf --links llama3.links] [--disk-GBps X]\n"
            "                 [--launch-s S] [--requeue-s S]\n"
            "  --every    checkpoint interval in steps (default: the closed form's best)\n"
            "  --sweep    the closed form and the simulation over MTBF x 1/10 .. x 10\n"
            "  --sim-mtbfs  simulated wall time in MTBFs (default 2000)\n"
            "  --paper    the Llama 3 paper's case: 16,384 GPUs, 466 interruptions in 54 days, herd's\n"
            "             measured checkpoint and restart costs scaled to 405B (docs/goodput.md)\n");
    return f == stdout ? 0 : 2;
}

int herd_plan_wants_goodput(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--goodput")) return 1;
    return 0;
}

static int num(const char *flag, const char *v, double lo, double hi, double *out)
{
    char *end;
    double x = v ? strtod(v, &end) : NAN;
    if (!v || end == v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "herd plan --goodput: %s '%s': expected a number in [%g, %g]\n", flag, v ? v : "", lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* -1: go on; else the exit status */
static int parse(int argc, char **argv, gp_args *a)
{
    herd_goodput_inputs *in = &a->in;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
#define NUM(flag, lo, hi, dst) else if (!strcmp(f, flag)) { if (num(flag, v, lo, hi, &x)) return 2; dst; i++; }
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) return usage(stdout);
        else if (!strcmp(f, "--goodput")) continue;
        else if (!strcmp(f, "--sweep")) a->sweep = 1;
        else if (!strcmp(f, "--paper")) a->paper = 1;
        else if (!strcmp(f, "--conf") && v) a->conf = v, i++;
        else if (!strcmp(f, "--links") && v) a->links = v, i++;
        NUM("--step-s", 1e-9, 1e9, in->step_s = x)
        NUM("--stall-s", 0, 1e9, in->stall_s = x)
        NUM("--write-s", 0, 1e9, in->write_s = x)
        NUM("--restart-s", 0, 1e9, in->restart_s = x)
        NUM("--requeue-s", 0, 1e9, in->requeue_s = x)
        NUM("--p-requeue", 0, 1, in->p_requeue = x)
        NUM("--mtbf-s", 1e-6, 1e15, in->mtbf_s = x)
        NUM("--interruptions", 1e-9, 1e12, a->interruptions = x)
        NUM("--days", 1e-9, 1e9, a->days = x)
        NUM("--per-gpu-day", 1e-15, 1e6, a->per_gpu_day = x)
        NUM("--per-node-day", 1e-15, 1e6, a->per_node_day = x)
        NUM("--gpus", 1, 1e8, a->gpus = (int)x)
        NUM("--nodes", 1, 1e6, in->nodes = (int)x)
        NUM("--p-node", 0, 1, in->p_node = x)
        NUM("--repair-s", 0, 1e9, in->repair_s = x)
        NUM("--every", 1, 1e9, a->every = (int)x)
        NUM("--sim-mtbfs", 10, 1e6, a->sim_mtbfs = x)
        NUM("--seed", 0, 1e18, a->seed = (unsigned long long)x)
        NUM("--disk-GBps", 1e-6, 1e6, a->disk_GBps = x)
        NUM("--launch-s", 0, 1e9, a->launch_s = x)
        else {
            fprintf(stderr, "herd plan --goodput: unexpected argument '%s'\n", f);
            return usage(stderr);
        }
#undef NUM
    }
    return -1;
}

/* the MTBF from whichever form was given; 0/-1 */
static int resolve_mtbf(gp_args *a)
{
    int forms = (a->in.mtbf_s > 0) + (a->interruptions > 0 || a->days > 0) + (a->per_gpu_day > 0) +
                (a->per_node_day > 0);
    if (forms != 1) {
        fprintf(stderr, "herd plan --goodput: give the interruption rate once: --mtbf-s, --interruptions N "
                "--days D, --per-gpu-day X --gpus N, or --per-node-day X --nodes N\n");
        return -1;
    }
    if (a->interruptions > 0 || a->days > 0) {
        if (!(a->interruptions > 0 && a->days > 0)) {
            fprintf(stderr, "herd plan --goodput: --interruptions and --days go together\n");
            return -1;
        }
        a->in.mtbf_s = herd_goodput_mtbf_from_count(a->interruptions, a->days * 86400);
    } else if (a->per_gpu_day > 0) {
        if (a->gpus < 1) {
            fprintf(stderr, "herd plan --goodput: --per-gpu-day needs --gpus N (the job's GPUs)\n");
            return -1;
        }
        a->in.mtbf_s = herd_goodput_mtbf_from_gpu_rate(a->per_gpu_day, a->gpus);
    } else if (a->per_node_day > 0) {
        if (a->in.nodes < 1) {
            fprintf(stderr, "herd plan --goodput: --per-node-day needs --nodes N (the job's nodes)\n");
            return -1;
        }
        a->in.mtbf_s = herd_goodput_mtbf_from_gpu_rate(a->per_node_day, a->in.nodes); /* the same per unit */
    }
    return 0;
}

static void print_parts(const char *what, const herd_goodput_result *r)
{
    printf("%s %6.2f%%  (checkpoint stalls %.2f%%, restarts %.2f%%, lost work and shrunk steps %.2f%%; "
           "%.3g interruptions/h)\n", what, 100 * r->goodput, 100 * r->ckpt, 100 * r->restart, 100 * r->lost,
           r->n_fail);
}

static void print_inputs(const herd_goodput_inputs *in)
{
    printf("inputs: step %.4g s, checkpoint stall %.4g s, write %.4g s (%s), restart %.4g s, requeue +%.4g s "
           "for %.0f%% of interruptions, MTBF %.4g s (%.3g h)",
           in->step_s, in->stall_s, in->write_s, in->write_s > 0 ? "in the background" : "synchronous",
           in->restart_s, in->requeue_s, 100 * in->p_requeue, in->mtbf_s, in->mtbf_s / 3600);
    if (in->p_node > 0)
        printf(", %.0f%% lose one of %d nodes for %.4g s (DP shrinks, grows back)", 100 * in->p_node, in->nodes,
               in->repair_s);
    printf("\n");
}

/* one interval: closed form and simulation; the two optima */
static void report(const gp_args *a, const herd_goodput_inputs *in)
{
    herd_goodput_result c, s;
    int best = herd_goodput_best_every(in, 1 << 30, &c), every = a->every ? a->every : best;
    double horizon = a->sim_mtbfs * in->mtbf_s;
    herd_goodput_closed(in, every, &c);
    herd_goodput_simulate(in, every, horizon, a->seed, &s);
    printf("checkpoint every %d steps (%.4g s of work; Young/Daly sqrt(2 C M) - C = %.4g s):\n", every,
           every * in->step_s, herd_goodput_young_daly_s(in));
    print_parts("  closed form", &c);
    print_parts("  simulated  ", &s);
    printf("  simulated - closed form: %+.2f points (%.3g h of wall time simulated)\n",
           100 * (s.goodput - c.goodput), horizon / 3600);
    double g;
    int lo = best / 4 > 1 ? best / 4 : 1, sim = herd_goodput_sim_best_every(in, lo, 4 * best + 4, 41, horizon,
                                                                             a->seed, &g);
    herd_goodput_closed(in, best, &c);
    printf("  best interval: closed form %d steps (%.2f%%), simulation %d steps (%.2f%%)\n", best,
           100 * c.goodput, sim, 100 * g);
}

static void sweep(const gp_args *a)
{
    static const double k[] = {0.1, 0.3, 1, 3, 10, 30, 100};
    printf("\n%12s %8s %10s %10s %8s\n", "MTBF_s", "every", "closed_%", "sim_%", "points");
    for (int i = 0; i < 7; i++) {
        herd_goodput_inputs in = a->in;
        in.mtbf_s *= k[i];
        herd_goodput_result c, s;
        int e = herd_goodput_best_every(&in, 1 << 30, &c);
        herd_goodput_simulate(&in, e, a->sim_mtbfs * in.mtbf_s, a->seed, &s);
        printf("%12.4g %8d %10.2f %10.2f %+8.2f\n", in.mtbf_s, e, 100 * c.goodput, 100 * s.goodput,
               100 * (s.goodput - c.goodput));
    }
}

/* The Llama 3 paper's step at 8K on 16,384 GPUs (Table 4: TP 8, PP 16, DP
 * 128, 16M tokens): herd's cost model with --conf, else 6 N tokens at the
 * paper's 400 TFLOP/s per GPU. */
static double paper_step_s(const gp_args *a, char *how, size_t n)
{
    if (!a->conf) {
        snprintf(how, n, "6 x 405e9 x 16M tokens at the paper's 400 TFLOP/s per GPU (no --conf)");
        return 6 * 405e9 * 16777216.0 / (16384 * 400e12);
    }
    herd_config c;
    herd_config_defaults(&c);
    herd_plan_inputs in;
    herd_plan_inputs_default(&in);
    if (herd_config_apply_preset(&c, "405b")) return -1;
    in.n_layers = c.model.n_layers, in.d_model = c.model.d_model, in.n_heads = c.model.n_heads;
    in.n_kv_heads = c.model.n_kv_heads, in.ffn_dim = c.model.ffn_dim, in.vocab_size = c.model.vocab_size;
    in.seq_len = 8192, in.batch_tokens = 16777216;
    herd_topo *t;
    if (herd_topo_from_conf_alloc(&t, a->conf, 8, 16384, 0)) return -1;
    int *perm = malloc(16384 * sizeof *perm);
    herd_plan_result r;
    int rc = !perm || herd_topo_links_load(t, a->links) || herd_topo_place(t, 8, 1, 16, 128, perm) ||
             herd_plan_estimate(&in, t, 8, 1, 16, 128, perm, &r);
    free(perm);
    herd_topo_free(t);
    if (rc) return -1;
    snprintf(how, n, "herd plan's cost model, layout 8,1,16,128 on %s: MFU %.1f%%", a->conf, 100 * r.mfu);
    return r.t_step;
}

/* 405B with herd's checkpoint and restart costs scaled (docs/goodput.md) */
static int paper(gp_args *a)
{
    char how[600];
    double step = paper_step_s(a, how, sizeof how);
    if (!(step > 0)) return 1;
    const double gpus = 16384, nodes = 2048, params = 405e9;
    double per_gpu = params * 12 / gpus, per_node = per_gpu * 8; /* fp32 master, Adam m and v */
    double disk = (a->disk_GBps > 0 ? a->disk_GBps : 2000.0 / nodes) * 1e9;
    double seq_write = per_node / disk, launch = a->launch_s > 0 ? a->launch_s : 60;
    double restart = 11.3 + seq_write + launch, requeue = a->in.requeue_s > 0 ? a->in.requeue_s : 600;
    printf("the Llama 3 paper's case: 16,384 GPUs (2,048 nodes), 466 interruptions in 54 days: MTBF %.0f s\n"
           "step at 8K: %.3f s (%s)\n"
           "checkpoint: 405e9 x 12 bytes (fp32 master, Adam m, v) / 16,384 = %.0f MB per GPU, %.2f GB per node;\n"
           "  disk %.3g GB/s per node (the paper's 2 TB/s over 2,048 nodes unless --disk-GBps): sequential %.2f s;\n"
           "  async: stall 3%% of it (herd's worst measured with defer_copy), write it / 0.70 (herd's background\n"
           "  write at 66-96%% of sequential); sync: all of it stalls\n"
           "restart in the allocation: 11.3 s (herd's measured rank kill to training again, docs/slurm.md) + %.2f s\n"
           "  reading the checkpoint + %.0f s launch and communicators at 16K ranks (--launch-s; not measured) = %.1f s;\n"
           "  requeue: + %.0f s in the queue (--requeue-s; not measured)\n"
           "the paper: more than 90%% effective training time\n\n",
           54 * 86400.0 / 466, step, how, per_gpu / 1e6, per_node / 1e9, disk / 1e9, seq_write, seq_write, launch,
           restart, requeue);
    printf("%-28s %7s %9s %9s %8s\n", "case", "every", "closed_%", "sim_%", "stall_s");
    for (int k = 0; k < 4; k++) {
        herd_goodput_inputs in;
        herd_goodput_inputs_init(&in);
        int async = k % 2 == 0, rq = k >= 2;
        in.step_s = step, in.mtbf_s = 54 * 86400.0 / 466, in.restart_s = restart;
        in.stall_s = async ? 0.03 * seq_write : seq_write;
        in.write_s = async ? seq_write / 0.70 : 0;
        in.p_requeue = rq, in.requeue_s = requeue;
        herd_goodput_result c, s;
        int e = herd_goodput_best_every(&in, 1 << 30, &c);
        herd_goodput_simulate(&in, e, a->sim_mtbfs * in.mtbf_s, a->seed, &s);
        printf("%-28s %7d %9.2f %9.2f %8.3f\n", rq ? (async ? "requeue, async" : "requeue, sync")
                                                  : (async ? "in-allocation, async" : "in-allocation, sync"),
               e, 100 * c.goodput, 100 * s.goodput, in.stall_s);
    }
    return 0;
}

int herd_cmd_plan_goodput(int argc, char **argv)
{
    gp_args a;
    memset(&a, 0, sizeof a);
    herd_goodput_inputs_init(&a.in);
    a.in.nodes = 0;
    a.sim_mtbfs = 2000;
    a.seed = 1;
    int st = parse(argc, argv, &a);
    if (st >= 0) return st;
    if (a.paper) return paper(&a);
    if (!(a.in.step_s > 0)) {
        fprintf(stderr, "herd plan --goodput: --step-s is required (the time of one training step)\n");
        return 2;
    }
    if (resolve_mtbf(&a)) return 2;
    if (a.in.nodes == 0) a.in.nodes = 1;
    char why[160];
    if (herd_goodput_check(&a.in, why, sizeof why)) {
        fprintf(stderr, "herd plan --goodput: %s\n", why);
        return 2;
    }
    print_inputs(&a.in);
    report(&a, &a.in);
    if (a.sweep) sweep(&a);
    return 0;
}
