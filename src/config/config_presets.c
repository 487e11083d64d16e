/* config_presets.c — the built-in defaults and the named presets.
 *
 * The large presets are the Llama 3 models of the paper (Table 3 for shapes,
 * section 3.4 for the 405B recipe: AdamW, 8,000 warm-up steps to 8e-5, cosine
 * to 8e-7 over 1.2M steps, batch 4M tokens at sequence 4,096 -> 8M at 8,192
 * after 252M tokens -> 16M after 2.87T tokens). The paper gives the full
 * recipe for 405B only; 8B and 70B take the same schedule and ramp with their
 * own peak rate and min_lr = lr / 100 (405B's ratio). tiny, small and 100m are
 * the same architecture (GQA, RoPE theta 500,000) at sizes a CPU can train.
 */
#include <string.h>
#include "src/config/config.h"

typedef struct {
    const char *name;
    int         n_layers, d_model, n_heads, n_kv_heads, ffn_dim, vocab_size, max_seq_len;
    double      lr, min_lr;
    int64_t     warmup_steps, decay_steps;
    int             n_ramp;
    herd_ramp_stage ramp[3];
} preset_spec;

#define PAPER_RAMP 3, {{0, 4194304, 4096}, {252000000LL, 8388608, 8192}, {2870000000000LL, 16777216, 8192}}

static const preset_spec presets[] = {
    /* name    layers  d_model heads kv  ffn    vocab   seq   lr      min_lr  warmup decay */
    {"tiny",   2,      64,     4,    2,  192,   512,    128,  1e-3,   1e-4,   20,   1000,    1, {{0, 4096, 128}}},
    {"small",  4,      128,    8,    2,  384,   512,    256,  1e-3,   1e-4,   50,   2000,    1, {{0, 8192, 256}}},
    {"100m",   8,      768,    12,   4,  2048,  32768,  512,  6e-4,   6e-5,   200,  10000,   1, {{0, 65536, 512}}},
    {"8b",     32,     4096,   32,   8,  14336, 128256, 8192, 3e-4,   3e-6,   8000, 1200000, PAPER_RAMP},
    {"70b",    80,     8192,   64,   8,  28672, 128256, 8192, 1.5e-4, 1.5e-6, 8000, 1200000, PAPER_RAMP},
    {"405b",   126,    16384,  128,  8,  53248, 128256, 8192, 8e-5,   8e-7,   8000, 1200000, PAPER_RAMP},
};
#define N_PRESETS (sizeof presets / sizeof presets[0])

static const preset_spec *find_preset(const char *name)
{
    for (size_t i = 0; i < N_PRESETS; i++)
        if (!strcmp(presets[i].name, name)) return &presets[i];
    return NULL;
}

int herd_config_preset_exists(const char *name) { return find_preset(name) != NULL; }

const char *herd_config_preset_names(void) { return "tiny, small, 100m, 8b, 70b, 405b"; }

int herd_config_apply_preset(herd_config *c, const char *name)
{
    const preset_spec *p = find_preset(name);
    if (!p) {
        fprintf(stderr, "herd: unknown preset '%s' (presets: %s)\n", name, herd_config_preset_names());
        return -1;
    }
    snprintf(c->model.preset, sizeof c->model.preset, "%s", p->name);
    c->model.n_layers = p->n_layers;
    c->model.d_model = p->d_model;
    c->model.n_heads = p->n_heads;
    c->model.n_kv_heads = p->n_kv_heads;
    c->model.ffn_dim = p->ffn_dim;
    c->model.vocab_size = p->vocab_size;
    c->model.max_seq_len = p->max_seq_len;
    c->model.rope_theta = 500000.0; /* Llama 3 raised RoPE's base from 10,000 for long context */
    c->model.norm_eps = 1e-5;
    c->model.init_std = 0.02;
    c->optim.lr = p->lr;
    c->optim.min_lr = p->min_lr;
    c->schedule.warmup_steps = p->warmup_steps;
    c->schedule.decay_steps = p->decay_steps;
    c->batch.n_ramp = p->n_ramp;
    memset(c->batch.ramp, 0, sizeof c->batch.ramp);
    memcpy(c->batch.ramp, p->ramp, (size_t)p->n_ramp * sizeof p->ramp[0]);
    return 0;
}

void herd_config_defaults(herd_config *c)
{
    memset(c, 0, sizeof *c); /* also zeroes string tails: configs compare bytewise */
    herd_config_apply_preset(c, "tiny");
    c->optim.beta1 = 0.9;
    c->optim.beta2 = 0.95;
    c->optim.eps = 1e-8;
    c->optim.weight_decay = 0.1;
    c->optim.grad_clip = 1.0;
    c->schedule.anneal_tokens = 0;
    c->batch.micro_batch = 8;
    c->train.seed = 1234;
    c->train.max_steps = 100;
    c->train.max_tokens = 0;
    c->train.log_every = 10;
    snprintf(c->train.out_dir, sizeof c->train.out_dir, "runs/default");
    c->train.backend = HERD_BACKEND_CPU;
    c->train.recompute = HERD_RECOMPUTE_NONE;
    c->train.precision = HERD_PRECISION_FP32;
    c->train.xent_chunk = 0;
    c->train.overlap_grad_reduce = 0;
    c->train.threads = 0;
    c->data.path[0] = '\0';
    c->data.val_path[0] = '\0';
    c->train.eval_every = 0;
    c->train.eval_batches = 8;
    c->monitor.peak_tflops = 0;
    c->monitor.straggler_every = 10;
    c->monitor.watchdog_step_s = 600;
    c->monitor.watchdog_commit_s = 1800;
    c->checkpoint.every = 0;
    c->checkpoint.keep_last = 3;
    c->checkpoint.keep_every = 0;
    c->checkpoint.resume = 1;
    c->checkpoint.dir[0] = '\0';
    c->monitor.prom_file[0] = '\0';
    c->post.dpo_beta = 0.1;
    c->post.dpo_nll_coef = 0.2;
    c->post.rs_k = 4;
    c->post.rs_temperature = 0.8;
    c->post.rs_top_p = 0.95;
    c->parallel.tp = c->parallel.cp = c->parallel.pp = 1;
    c->parallel.virtual_stages = 1;
    c->parallel.dp = 0;
    c->parallel.sequence_parallel = 0;
    c->parallel.placement = 1;
    c->parallel.bind_cores = 0;
    c->parallel.share_gpu = 0;
    herd_curate_defaults(&c->curate);
}

void herd_curate_defaults(herd_curate_params *p)
{
    *p = (herd_curate_params){1, 5, 128, 16, 0.7, 1000, 6, 32, 1 << 20, 5, 0.3, 0.1, 1234};
}
