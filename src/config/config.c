/* config.c — the run configuration of herd.
 *
 * One table of keys (redis style) drives everything: the YAML loader, --set,
 * the bounds checks, herd_config_write and `herd config --keys` all walk
 * `keys[]` below, so a new key is one line of the table plus its field in
 * config.h. Presets and defaults are in config_presets.c.
 *
 * Messages follow one format so that a user can jump to the mistake:
 *     herd: FILE:LINE: key 'section.key': what is wrong
 * with LINE left out when it is not known (a --set, a preset, a default).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "src/config/config.h"

/* ---- the table ---------------------------------------------------------- */

typedef enum { T_INT, T_INT64, T_UINT64, T_DOUBLE, T_STRING, T_ENUM, T_PRESET, T_RAMP, T_SOURCES } key_type;

enum { OPEN_MIN = 1, OPEN_MAX = 2 }; /* bound excluded: eps > 0, beta < 1 */
enum { AUTO_WORD = 4 }; /* an int key that also takes the word "auto", stored as -1 */

typedef struct {
    const char *name;     /* "section.key" (ramp fields: "seq_len", ...) */
    key_type    type;
    size_t      offset;   /* into herd_config (ramp fields: into herd_ramp_stage) */
    size_t      size;     /* of the field; bounds the length of strings */
    double      min, max; /* numbers only; inclusive unless flags say otherwise */
    int         flags;
    const char *help;
    const herd_config_enum *choices; /* T_ENUM only */
} key_spec;

const herd_config_enum herd_backend_choices[] = {
    {"cpu", HERD_BACKEND_CPU}, {"cuda", HERD_BACKEND_CUDA}, {NULL, 0}};
const herd_config_enum herd_recompute_choices[] = {
    {"none", HERD_RECOMPUTE_NONE}, {"selective", HERD_RECOMPUTE_SELECTIVE}, {"full", HERD_RECOMPUTE_FULL}, {NULL, 0}};
const herd_config_enum herd_precision_choices[] = {
    {"fp32", HERD_PRECISION_FP32}, {"bf16", HERD_PRECISION_BF16}, {NULL, 0}};

const herd_config_enum herd_objective_choices[] = {
    {"pretrain", HERD_OBJECTIVE_PRETRAIN}, {"sft", HERD_OBJECTIVE_SFT}, {"dpo", HERD_OBJECTIVE_DPO},
    {"rm", HERD_OBJECTIVE_RM}, {NULL, 0}};

const char *herd_config_enum_name(const herd_config_enum *choices, int value)
{
    for (const herd_config_enum *e = choices; e->name; e++)
        if (e->value == value) return e->name;
    return "?";
}

#define FIELD(type, f) offsetof(type, f), sizeof(((type *)0)->f)
#define KEY(name, type, f, min, max, flags, help) \
    {name, type, FIELD(herd_config, f), min, max, flags, help, NULL}
#define ENUM_KEY(name, f, choices, help) \
    {name, T_ENUM, FIELD(herd_config, f), 0, 0, 0, help, choices}

/* Order is the order of herd_config_write and --keys; keys of one section
 * stay together. */
static const key_spec keys[] = {
    KEY("model.preset", T_PRESET, model.preset, 0, 0, 0,
        "preset applied before every other key: tiny small 100m 8b 70b 405b (\"\": none)"),
    KEY("model.n_layers", T_INT, model.n_layers, 1, 1024, 0, "transformer blocks"),
    KEY("model.d_model", T_INT, model.d_model, 2, 1 << 17, 0, "model width"),
    KEY("model.n_heads", T_INT, model.n_heads, 1, 4096, 0,
        "query heads; divide d_model into an even head_dim"),
    KEY("model.n_kv_heads", T_INT, model.n_kv_heads, 1, 4096, 0, "key/value heads (GQA); divide n_heads"),
    KEY("model.ffn_dim", T_INT, model.ffn_dim, 1, 1 << 20, 0, "SwiGLU hidden size"),
    KEY("model.vocab_size", T_INT, model.vocab_size, 2, 1 << 24, 0, "vocabulary size (Llama 3: 128256)"),
    KEY("model.max_seq_len", T_INT, model.max_seq_len, 2, 1 << 20, 0,
        "longest sequence of the run (size of the RoPE table)"),
    KEY("model.rope_theta", T_DOUBLE, model.rope_theta, 0, 1e12, OPEN_MIN, "RoPE base frequency"),
    KEY("model.rope_scale_factor", T_DOUBLE, model.rope_scale_factor, 0, 1e6, 0,
        "Llama 3.1 RoPE scaling: low frequencies divided by this (0: no scaling)"),
    KEY("model.rope_low_freq_factor", T_DOUBLE, model.rope_low_freq_factor, 0, 1e6, 0,
        "Llama 3.1 RoPE scaling: wavelengths above original_max_pos / this are scaled"),
    KEY("model.rope_high_freq_factor", T_DOUBLE, model.rope_high_freq_factor, 0, 1e6, 0,
        "Llama 3.1 RoPE scaling: wavelengths below original_max_pos / this are kept"),
    KEY("model.rope_original_max_pos", T_INT, model.rope_original_max_pos, 0, 1 << 30, 0,
        "Llama 3.1 RoPE scaling: the context length the unscaled frequencies were trained for"),
    KEY("model.norm_eps", T_DOUBLE, model.norm_eps, 0, 1, OPEN_MIN, "RMSNorm epsilon"),
    KEY("model.init_std", T_DOUBLE, model.init_std, 0, 10, OPEN_MIN,
        "std of the normal init of weight matrices"),
    KEY("optim.lr", T_DOUBLE, optim.lr, 0, 10, 0, "peak learning rate (end of warm-up)"),
    KEY("optim.min_lr", T_DOUBLE, optim.min_lr, 0, 10, 0, "floor of the cosine decay; <= lr"),
    KEY("optim.beta1", T_DOUBLE, optim.beta1, 0, 1, OPEN_MAX, "AdamW beta1"),
    KEY("optim.beta2", T_DOUBLE, optim.beta2, 0, 1, OPEN_MAX, "AdamW beta2"),
    KEY("optim.eps", T_DOUBLE, optim.eps, 0, 1, OPEN_MIN, "AdamW epsilon"),
    KEY("optim.weight_decay", T_DOUBLE, optim.weight_decay, 0, 10, 0,
        "decoupled weight decay, weight matrices only"),
    KEY("optim.grad_clip", T_DOUBLE, optim.grad_clip, 0, 1e12, 0, "clip the global gradient L2 norm (0: off)"),
    KEY("schedule.warmup_steps", T_INT64, schedule.warmup_steps, 0, 1e15, 0, "linear warm-up steps"),
    KEY("schedule.decay_steps", T_INT64, schedule.decay_steps, 0, 1e15, 0, "step at which the cosine reaches min_lr"),
    KEY("schedule.anneal_tokens", T_INT64, schedule.anneal_tokens, 0, 1e18, 0,
        "lr -> 0 linearly over the last N tokens of train.max_tokens (0: off)"),
    KEY("batch.micro_batch", T_INT, batch.micro_batch, 1, 1 << 20, 0,
        "sequences per micro-batch (gradient accumulation)"),
    KEY("batch.ramp", T_RAMP, batch.ramp, 0, 0, 0,
        "batch stages {after_tokens, batch_tokens, seq_len}; first at 0, sorted"),
    KEY("train.seed", T_UINT64, train.seed, 0, 18446744073709551615.0, 0, "seed of the init and the sampler"),
    KEY("train.max_steps", T_INT64, train.max_steps, 0, 1e15, 0, "stop after N optimizer steps (0: no limit)"),
    KEY("train.max_tokens", T_INT64, train.max_tokens, 0, 1e18, 0, "stop after N tokens (0: no limit)"),
    KEY("train.log_every", T_INT, train.log_every, 0, INT_MAX, 0,
        "human log line every N steps (0: none; JSONL gets every step)"),
    KEY("train.out_dir", T_STRING, train.out_dir, 0, 0, 0, "metrics.jsonl and config.yaml go here"),
    ENUM_KEY("train.backend", train.backend, herd_backend_choices, "cpu or cuda"),
    ENUM_KEY("train.recompute", train.recompute, herd_recompute_choices,
        "none, selective (RMSNorm outputs, SwiGLU product) or full (each layer's input only) activation recompute"),
    ENUM_KEY("train.precision", train.precision, herd_precision_choices,
        "fp32, or bf16: GEMM inputs rounded to bfloat16, fp32 accumulation, fp32 master weights, gradients and Adam state"),
    KEY("train.overlap_grad_reduce", T_INT, train.overlap_grad_reduce, 0, 1, 0,
        "1: each layer's gradient reduction (TP/CP sums, DP reduce-scatter) starts as soon as the last backward has made it final, overlapped with the rest of the backward"),
    KEY("train.xent_chunk", T_INT, train.xent_chunk, 0, 1 << 24, 0,
        "vocabulary columns per chunk of the fused output projection + cross-entropy (0: whole logits)"),
    KEY("train.threads", T_INT, train.threads, 0, 4096, 0, "OpenMP/BLAS threads (0: all cores)"),
    KEY("train.eval_every", T_INT, train.eval_every, 0, INT_MAX, 0,
        "validation loss every N steps and at the end (0: never)"),
    KEY("train.eval_batches", T_INT, train.eval_batches, 1, 1 << 20, 0,
        "micro-batches per validation; the same windows every time"),
    KEY("train.init_from", T_STRING, train.init_from, 0, 0, 0,
        "Hugging Face Llama directory (config.json, *.safetensors) or weights file the weights start from "
        "(\"\": random init)"),
    KEY("data.path", T_STRING, data.path, 0, 0, 0, "token shard (docs/data-format.md)"),
    KEY("data.val_path", T_STRING, data.val_path, 0, 0, 0, "held-out shard for the validation loss (empty: none)"),
    KEY("data.sources", T_SOURCES, data.sources, 0, 0, 0,
        "training mix: list of {name, path, val_path, weight}; replaces data.path (docs/data-format.md)"),
    KEY("parallel.tp", T_INT, parallel.tp, 1, 4096, 0, "tensor-parallel size (divides n_heads, ffn_dim, vocab_size)"),
    KEY("parallel.cp", T_INT, parallel.cp, 1, 4096, 0, "context-parallel size"),
    KEY("parallel.pp", T_INT, parallel.pp, 1, 4096, 0, "pipeline-parallel size"),
    KEY("parallel.dp", T_INT, parallel.dp, 0, 1 << 20, 0,
        "FSDP data-parallel size; 0: world size / (tp * cp * pp)"),
    KEY("parallel.sequence_parallel", T_INT, parallel.sequence_parallel, 0, 1, 0,
        "1: RMSNorm and the residual stream split along tokens across the TP group"),
    KEY("parallel.virtual_stages", T_INT, parallel.virtual_stages, 1, 64, 0,
        "model chunks per pipeline rank: 1 the 1F1B schedule, V > 1 the interleaved one"),
    KEY("parallel.pp_first_last_fewer", T_INT, parallel.pp_first_last_fewer, 0, 1, 0,
        "1: the first and the last pipeline stage hold one transformer layer fewer"),
    KEY("parallel.placement", T_INT, parallel.placement, 0, 1, 0,
        "1: place TP inside a node, PP/CP inside a pod from the discovered topology; 0: rank order"),
    KEY("parallel.bind_cores", T_INT, parallel.bind_cores, 0, 1, 0,
        "1: bind each rank to the cores nearest its GPU / its share of the node (hwloc)"),
    KEY("parallel.share_gpu", T_INT, parallel.share_gpu, 0, 1, 0,
        "1: let two ranks of a node use one GPU (backend cuda); 0: that is an error at start-up"),
    KEY("parallel.links", T_STRING, parallel.links, 0, 0, 0,
        "links file (herd check's DIR/links: bandwidth, latency per tree height) that placement reads; empty: defaults"),
    KEY("curate.shingle", T_INT, curate.shingle, 1, 64, 0, "words per MinHash shingle"),
    KEY("curate.minhash_perms", T_INT, curate.minhash_perms, 1, 4096, 0, "MinHash signature length"),
    KEY("curate.minhash_bands", T_INT, curate.minhash_bands, 1, 1024, 0,
        "LSH bands; divide minhash_perms (rows = perms / bands)"),
    KEY("curate.minhash_threshold", T_DOUBLE, curate.minhash_threshold, 0, 1, OPEN_MIN,
        "estimated Jaccard at or above which a document is a near-duplicate"),
    KEY("curate.line_bucket", T_INT, curate.line_bucket, 1, INT_MAX, 0, "documents per line-dedup bucket"),
    KEY("curate.line_max_repeat", T_INT, curate.line_max_repeat, 1, INT_MAX, 0,
        "a line seen more often than this in a bucket is removed"),
    KEY("curate.min_bytes", T_INT64, curate.min_bytes, 0, 1e15, 0, "shorter documents are removed"),
    KEY("curate.max_bytes", T_INT64, curate.max_bytes, 0, 1e15, 0, "longer documents are removed"),
    KEY("curate.dup_ngram", T_INT, curate.dup_ngram, 1, 64, 0, "n of the duplicated n-gram coverage"),
    KEY("curate.max_dup_ngram_frac", T_DOUBLE, curate.max_dup_ngram_frac, 0, 1, 0,
        "remove a document whose repeated n-grams cover more of its words"),
    KEY("curate.max_symbol_ratio", T_DOUBLE, curate.max_symbol_ratio, 0, 1e9, 0,
        "remove a document with more '#' and ellipses per word"),
    KEY("checkpoint.every", T_INT, checkpoint.every, 0, INT_MAX, AUTO_WORD,
        "write a checkpoint every N steps and at the end (0: never; auto: the interval of the highest "
        "predicted goodput from the run's measured costs, docs/goodput.md)"),
    KEY("checkpoint.keep_last", T_INT, checkpoint.keep_last, 0, INT_MAX, 0,
        "keep the newest K complete checkpoints (0: all); the newest is never deleted"),
    KEY("checkpoint.keep_every", T_INT, checkpoint.keep_every, 0, INT_MAX, 0,
        "also keep every checkpoint whose step is a multiple of M (0: none)"),
    KEY("checkpoint.resume", T_INT, checkpoint.resume, 0, 1, 0,
        "1: start from the newest complete checkpoint of checkpoint.dir that verifies"),
    KEY("checkpoint.dir", T_STRING, checkpoint.dir, 0, 0, 0, "where checkpoints go (empty: OUT_DIR/checkpoints)"),
    KEY("checkpoint.mtbf_s", T_DOUBLE, checkpoint.mtbf_s, 0, 1e12, 0,
        "every: auto: the job's mean time between interruptions, seconds (0: not given)"),
    KEY("checkpoint.failures_per_gpu_day", T_DOUBLE, checkpoint.failures_per_gpu_day, 0, 1e6, 0,
        "every: auto: or interruptions per GPU per day, times the job's ranks (0: not given)"),
    KEY("checkpoint.restart_s", T_DOUBLE, checkpoint.restart_s, 0, 1e9, 0,
        "every: auto: an interruption to training again, seconds (0: the mean of OUT_DIR/recovery.log's "
        "restarts, else 60)"),
    KEY("monitor.peak_tflops", T_DOUBLE, monitor.peak_tflops, 0, 1e6, 0,
        "peak TFLOP/s per device for MFU (0: 989.4 on cuda, measured sgemm on cpu)"),
    KEY("monitor.watchdog_step_s", T_DOUBLE, monitor.watchdog_step_s, 0, 1e9, 0,
        "hang watchdog: a step or collective longer than this prints what it waited on and exits 76 (0: off)"),
    KEY("monitor.watchdog_commit_s", T_DOUBLE, monitor.watchdog_commit_s, 0, 1e9, 0,
        "the watchdog's limit while a checkpoint commits (>= watchdog_step_s)"),
    KEY("monitor.straggler_every", T_INT, monitor.straggler_every, 0, INT_MAX, 0,
        "gather every rank's compute time every N steps and warn about slow ranks (0: never)"),
    KEY("monitor.prom_file", T_STRING, monitor.prom_file, 0, 0, 0,
        "Prometheus textfile written by rank 0 every step (empty: OUT_DIR/herd.prom)"),
    ENUM_KEY("post.objective", post.objective, herd_objective_choices,
             "the loss of herd train's step: pretrain (data.*), sft (masked next-token loss over packed "
             "conversations of post.data), dpo (preference pairs of post.data), rm (reward model)"),
    KEY("post.data", T_STRING, post.data, 0, 0, 0,
        "chat JSON lines of the sft / dpo / rm objective (docs/post-training.md)"),
    KEY("post.tokenizer", T_STRING, post.tokenizer, 0, 0, 0,
        "the tokenizer (ranks file or tokenizer.json) that encodes post.data"),
    KEY("post.dpo_beta", T_DOUBLE, post.dpo_beta, 0, 1e3, OPEN_MIN,
        "DPO: beta, the scale of the policy/reference log-ratio margin (Llama 3: 0.1)"),
    KEY("post.dpo_nll_coef", T_DOUBLE, post.dpo_nll_coef, 0, 1e3, 0,
        "DPO: weight of the NLL term on the chosen response (Llama 3: 0.2)"),
    KEY("post.rs_k", T_INT, post.rs_k, 1, 1 << 16, 0, "rejection sampling: samples per prompt"),
    KEY("post.rs_temperature", T_DOUBLE, post.rs_temperature, 0, 100, OPEN_MIN,
        "rejection sampling: sampling temperature"),
    KEY("post.rs_top_p", T_DOUBLE, post.rs_top_p, 0, 1, OPEN_MIN, "rejection sampling: top-p (nucleus)"),
    KEY("post.specials", T_STRING, post.specials, 0, 0, 0,
        "special tokens and chat template of herd post / herd generate: llama3, llama3.1, llama3.2, llama3.3, "
        "or a Hugging Face tokenizer.json / tokenizer_config.json; empty: llama3"),
};
#define N_KEYS (sizeof keys / sizeof keys[0])

/* The fields of one batch.ramp stage: the same machinery, offsets into a stage. */
static const key_spec ramp_fields[] = {
    {"after_tokens", T_INT64, FIELD(herd_ramp_stage, after_tokens), 0, 1e18, 0,
     "the stage applies once this many tokens are seen", NULL},
    {"batch_tokens", T_INT64, FIELD(herd_ramp_stage, batch_tokens), 1, 1e18, 0,
     "global batch in tokens", NULL},
    {"seq_len", T_INT, FIELD(herd_ramp_stage, seq_len), 1, 1 << 20, 0, "sequence length", NULL},
};
#define N_RAMP_FIELDS (sizeof ramp_fields / sizeof ramp_fields[0])

/* The fields of one data.sources entry (val_path may be left out). */
static const key_spec source_fields[] = {
    {"name", T_STRING, FIELD(herd_data_source, name), 0, 0, 0, "source name", NULL},
    {"path", T_STRING, FIELD(herd_data_source, path), 0, 0, 0, "token shard", NULL},
    {"val_path", T_STRING, FIELD(herd_data_source, val_path), 0, 0, 0, "held-out shard", NULL},
    {"weight", T_DOUBLE, FIELD(herd_data_source, weight), 0, 1e12, 0, "relative share", NULL},
};
#define N_SOURCE_FIELDS (sizeof source_fields / sizeof source_fields[0])

static const key_spec *find_key(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (!strcmp(keys[i].name, name)) return &keys[i];
    return NULL;
}

static int key_index(const key_spec *k) { return (int)(k - keys); }

/* Index of the first key of section `name` (len bytes), or -1. */
static int section_index(const char *name, size_t len)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (!strncmp(keys[i].name, name, len) && keys[i].name[len] == '.') return (int)i;
    return -1;
}

static size_t section_len(const key_spec *k) { return (size_t)(strchr(k->name, '.') - k->name); }

static void *field_of(void *base, const key_spec *k) { return (char *)base + k->offset; }
static const void *cfield_of(const void *base, const key_spec *k) { return (const char *)base + k->offset; }

/* ---- provenance and messages ------------------------------------------- */

/* Where each key's value came from, so that validate can point at the line
 * of the file (or at --set) even though the check runs after loading. */
typedef struct {
    int line[N_KEYS]; /* > 0: line in the file; AT_SET: a --set; 0: default or preset */
} provenance;

/* A "line" that says: the value is a command-line assignment, and `origin`
 * ("--set") names it. Such messages read "herd: --set optim.lr: ...". */
#define AT_SET (-1)

static int vkey_error(const char *origin, int line, const char *key, const char *fmt, va_list ap)
{
    char what[512];
    vsnprintf(what, sizeof what, fmt, ap);
    if (line > 0) fprintf(stderr, "herd: %s:%d: key '%s': %s\n", origin, line, key, what);
    else if (line == AT_SET) fprintf(stderr, "herd: %s %s: %s\n", origin, key, what);
    else fprintf(stderr, "herd: %s: key '%s': %s\n", origin, key, what);
    return -1;
}

static int key_error(const char *origin, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int key_error(const char *origin, int line, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vkey_error(origin, line, key, fmt, ap);
    va_end(ap);
    return -1;
}

static int in_section(const key_spec *k, const char *name, size_t len)
{
    return section_len(k) == len && !strncmp(k->name, name, len);
}

/* "section.key" (or "section") is not in the table: list what is, since the
 * likeliest cause is a typo. */
static int unknown_key(const char *origin, int line, const char *name)
{
    const char *dot = strchr(name, '.');
    size_t len = dot ? (size_t)(dot - name) : strlen(name);
    int s = section_index(name, len);
    char list[512] = "";
    size_t used = 0;
    for (size_t i = s < 0 ? 0 : (size_t)s; i < N_KEYS && used < sizeof list; i++) {
        if (s < 0 && section_index(keys[i].name, section_len(&keys[i])) == (int)i)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%.*s", used ? ", " : "",
                                     (int)section_len(&keys[i]), keys[i].name);
        else if (s >= 0 && in_section(&keys[i], name, len))
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "",
                                     keys[i].name + len + 1);
    }
    if (s < 0) return key_error(origin, line, name, "unknown section '%.*s' (sections: %s)", (int)len, name, list);
    return key_error(origin, line, name, "unknown key (%.*s has: %s)", (int)len, name, list);
}

/* Shortest "%.Ng" that reads back to the same double: 0.1 stays "0.1". */
static void format_double(double v, char *buf, size_t n)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static void format_bounds(const key_spec *k, char *buf, size_t n)
{
    char lo[32], hi[32];
    format_double(k->min, lo, sizeof lo);
    format_double(k->max, hi, sizeof hi);
    snprintf(buf, n, "%c%s, %s%c", k->flags & OPEN_MIN ? '(' : '[', lo, hi, k->flags & OPEN_MAX ? ')' : ']');
}

static int in_bounds(const key_spec *k, double v)
{
    if (k->flags & AUTO_WORD && v == -1) return 1;
    if (k->flags & OPEN_MIN ? !(v > k->min) : !(v >= k->min)) return 0;
    if (k->flags & OPEN_MAX ? !(v < k->max) : !(v <= k->max)) return 0;
    return 1;
}

/* ---- scalars: text -> field -------------------------------------------- */

/* A decimal integer with an optional suffix K, M, G or T (powers of 1000, as
 * token counts are quoted: 4M, 252M, 2.87T). A fraction is allowed only when
 * the suffix makes the number whole: "2.87T" is 2870000000000, "1.5" is not an
 * integer. Exact arithmetic, no doubles, so 2.87T is exactly that. */
static int parse_integer(const char *s, int *negative, uint64_t *out)
{
    const char *p = s;
    uint64_t v = 0, frac = 0;
    *negative = 0;
    if (*p == '+' || *p == '-') *negative = *p++ == '-';
    if (!isdigit((unsigned char)*p)) return -1;
    for (; isdigit((unsigned char)*p); p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return -1; /* v * 10 + d would wrap */
        v = v * 10 + d;
    }
    const char *fdig = NULL;
    size_t nfrac = 0;
    if (*p == '.') {
        fdig = ++p;
        while (isdigit((unsigned char)*p)) p++;
        nfrac = (size_t)(p - fdig);
        if (nfrac == 0) return -1;
        while (nfrac > 0 && fdig[nfrac - 1] == '0') nfrac--; /* 4.0M == 4M */
    }
    size_t zeros = 0;
    switch (*p) {
    case 'K': case 'k': zeros = 3; p++; break;
    case 'M': zeros = 6; p++; break;
    case 'G': zeros = 9; p++; break;
    case 'T': zeros = 12; p++; break;
    }
    if (*p || nfrac > zeros) return -1;
    for (size_t i = 0; i < zeros; i++) {
        if (v > UINT64_MAX / 10) return -1;
        v *= 10;
    }
    for (size_t i = 0; i < zeros; i++) /* the fraction's digits, scaled: at most 10^12 */
        frac = frac * 10 + (i < nfrac ? (uint64_t)(fdig[i] - '0') : 0);
    if (v > UINT64_MAX - frac) return -1;
    *out = v + frac;
    return 0;
}

static const char *type_noun(key_type t)
{
    switch (t) {
    case T_INT: case T_INT64: case T_UINT64: return "an integer (suffixes K M G T allowed)";
    case T_DOUBLE: return "a number";
    case T_STRING: return "a string";
    case T_ENUM: return "one of the choices";
    case T_PRESET: return "a preset name";
    case T_RAMP: return "a list of {after_tokens, batch_tokens, seq_len}";
    case T_SOURCES: return "a list of {name, path, val_path, weight}";
    }
    return "?";
}

static int out_of_range(const key_spec *k, const char *text, char *why, size_t n)
{
    char b[80];
    format_bounds(k, b, sizeof b);
    snprintf(why, n, "%s is out of range %s", text, b);
    return -1;
}

static int not_a(const key_spec *k, const char *text, char *why, size_t n)
{
    snprintf(why, n, "expected %s%s, got '%s'", type_noun(k->type), k->flags & AUTO_WORD ? " or auto" : "", text);
    return -1;
}

static int set_string(void *p, const key_spec *k, const char *text, char *why, size_t n)
{
    size_t len = strlen(text);
    if (len >= k->size) {
        snprintf(why, n, "longer than %zu characters", k->size - 1);
        return -1;
    }
    memcpy(p, text, len + 1);
    return 0;
}

static int set_enum(void *p, const key_spec *k, const char *text, char *why, size_t n)
{
    for (const herd_config_enum *e = k->choices; e->name; e++)
        if (!strcmp(text, e->name)) {
            *(int *)p = e->value;
            return 0;
        }
    size_t used = (size_t)snprintf(why, n, "'%s' is not one of", text);
    for (const herd_config_enum *e = k->choices; e->name && used < n; e++)
        used += (size_t)snprintf(why + used, n - used, "%s %s", e == k->choices ? "" : ",", e->name);
    return -1;
}

static int set_integer(void *p, const key_spec *k, const char *text, char *why, size_t n)
{
    int neg;
    uint64_t mag;
    if (k->flags & AUTO_WORD && !strcmp(text, "auto")) {
        *(int *)p = -1;
        return 0;
    }
    if (parse_integer(text, &neg, &mag)) return not_a(k, text, why, n);
    if (k->type == T_UINT64) {
        if (neg && mag) return not_a(k, text, why, n);
        *(uint64_t *)p = mag; /* every uint64 is in range: seeds are bit patterns */
        return 0;
    }
    if (mag > (uint64_t)INT64_MAX) return not_a(k, text, why, n);
    int64_t v = neg ? -(int64_t)mag : (int64_t)mag;
    if (!in_bounds(k, (double)v) || (k->flags & AUTO_WORD && v < 0)) return out_of_range(k, text, why, n);
    if (k->type == T_INT) *(int *)p = (int)v; /* the table's bounds fit an int */
    else *(int64_t *)p = v;
    return 0;
}

static int set_double(void *p, const key_spec *k, const char *text, char *why, size_t n)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || !isfinite(v) || (errno == ERANGE && v != 0)) return not_a(k, text, why, n);
    if (!in_bounds(k, v)) return out_of_range(k, text, why, n);
    *(double *)p = v;
    return 0;
}

/* Store `text` into the field of `k` in `base` after checking its type and
 * bounds. On error, writes the reason into why[] and returns -1. Not for
 * T_PRESET and T_RAMP (they need more than text). */
static int set_scalar(void *base, const key_spec *k, const char *text, char *why, size_t n)
{
    void *p = field_of(base, k);
    switch (k->type) {
    case T_STRING: return set_string(p, k, text, why, n);
    case T_ENUM: return set_enum(p, k, text, why, n);
    case T_INT: case T_INT64: case T_UINT64: return set_integer(p, k, text, why, n);
    case T_DOUBLE: return set_double(p, k, text, why, n);
    default: snprintf(why, n, "internal: %s is not a scalar key", k->name); return -1;
    }
}

/* ---- presets, as a key -------------------------------------------------- */

typedef enum {
    PRESET_APPLY, /* model.preset applies the preset (then later keys override) */
    PRESET_CHECK  /* a --set model.preset already chose: only check the name */
} preset_mode;

static int set_preset(herd_config *c, const char *name, preset_mode mode, const char *origin, int line)
{
    if (name[0] && !herd_config_preset_exists(name))
        return key_error(origin, line, "model.preset", "unknown preset '%s' (presets: %s)", name,
                         herd_config_preset_names());
    if (mode == PRESET_CHECK) return 0;
    if (name[0]) return herd_config_apply_preset(c, name);
    c->model.preset[0] = '\0'; /* "": no preset, the values stay as they are */
    return 0;
}

/* ---- YAML nodes --------------------------------------------------------- */

typedef struct {
    herd_config     *c;
    const char      *origin;    /* the file name, or "--set" */
    int              has_lines; /* node marks are lines of `origin` */
    yaml_document_t *doc;
    provenance      *prov;      /* may be NULL */
} loader;

static int node_line(const loader *L, const yaml_node_t *n)
{
    return L->has_lines ? (int)n->start_mark.line + 1 : AT_SET;
}

static const char *node_kind(const yaml_node_t *n)
{
    return n->type == YAML_MAPPING_NODE ? "a mapping" : n->type == YAML_SEQUENCE_NODE ? "a list" : "a value";
}

/* Text of a scalar; YAML's plain null (empty, ~, null) reads as "". */
static const char *scalar_text(const yaml_node_t *n)
{
    const char *s = (const char *)n->data.scalar.value;
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        (!strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL")))
        return "";
    return s;
}

static int is_null(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && !scalar_text(n)[0] &&
           n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* One stage of batch.ramp: a mapping with exactly the three fields. */
static int ramp_stage_from_node(const loader *L, yaml_node_t *m, int stage, herd_ramp_stage *out)
{
    const char *key = "batch.ramp";
    if (m->type != YAML_MAPPING_NODE)
        return key_error(L->origin, node_line(L, m), key,
                         "stage %d: expected a mapping {after_tokens, batch_tokens, seq_len}, got %s",
                         stage, node_kind(m));
    int seen[N_RAMP_FIELDS] = {0};
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(L->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(L->doc, p->value);
        int line = node_line(L, kn);
        const char *fname = kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "?";
        size_t f = 0;
        while (f < N_RAMP_FIELDS && strcmp(ramp_fields[f].name, fname)) f++;
        if (f == N_RAMP_FIELDS)
            return key_error(L->origin, line, key,
                             "stage %d: unknown field '%s' (fields: after_tokens, batch_tokens, seq_len)",
                             stage, fname);
        if (seen[f]++)
            return key_error(L->origin, line, key, "stage %d: '%s' given twice", stage, fname);
        if (vn->type != YAML_SCALAR_NODE)
            return key_error(L->origin, line, key, "stage %d: %s: expected %s, got %s", stage, fname,
                             type_noun(ramp_fields[f].type), node_kind(vn));
        char why[256];
        if (set_scalar(out, &ramp_fields[f], scalar_text(vn), why, sizeof why))
            return key_error(L->origin, line, key, "stage %d: %s: %s", stage, fname, why);
    }
    for (size_t f = 0; f < N_RAMP_FIELDS; f++)
        if (!seen[f])
            return key_error(L->origin, node_line(L, m), key, "stage %d: '%s' is missing", stage,
                             ramp_fields[f].name);
    return 0;
}

/* batch.ramp replaces the whole ramp: a list of 1..HERD_MAX_RAMP stages. */
static int ramp_from_node(const loader *L, yaml_node_t *seq, int line)
{
    const char *key = "batch.ramp";
    if (seq->type != YAML_SEQUENCE_NODE)
        return key_error(L->origin, line, key, "expected %s, got %s", type_noun(T_RAMP), node_kind(seq));
    int n = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n < 1 || n > HERD_MAX_RAMP)
        return key_error(L->origin, line, key, "has %d stages; give 1 to %d", n, HERD_MAX_RAMP);
    herd_ramp_stage stages[HERD_MAX_RAMP];
    for (int i = 0; i < n; i++) {
        yaml_node_t *m = yaml_document_get_node(L->doc, seq->data.sequence.items.start[i]);
        if (ramp_stage_from_node(L, m, i + 1, &stages[i])) return -1;
    }
    L->c->batch.n_ramp = n;
    memcpy(L->c->batch.ramp, stages, (size_t)n * sizeof stages[0]);
    return 0;
}

/* One entry of data.sources: name, path and weight required, val_path optional. */
static int source_from_node(const loader *L, yaml_node_t *m, int i, herd_data_source *out)
{
    const char *key = "data.sources";
    if (m->type != YAML_MAPPING_NODE)
        return key_error(L->origin, node_line(L, m), key,
                         "source %d: expected a mapping {name, path, val_path, weight}, got %s", i,
                         node_kind(m));
    memset(out, 0, sizeof *out);
    int seen[N_SOURCE_FIELDS] = {0};
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(L->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(L->doc, p->value);
        int line = node_line(L, kn);
        const char *fname = kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "?";
        size_t f = 0;
        while (f < N_SOURCE_FIELDS && strcmp(source_fields[f].name, fname)) f++;
        if (f == N_SOURCE_FIELDS)
            return key_error(L->origin, line, key,
                             "source %d: unknown field '%s' (fields: name, path, val_path, weight)", i, fname);
        if (seen[f]++) return key_error(L->origin, line, key, "source %d: '%s' given twice", i, fname);
        if (vn->type != YAML_SCALAR_NODE)
            return key_error(L->origin, line, key, "source %d: %s: expected %s, got %s", i, fname,
                             type_noun(source_fields[f].type), node_kind(vn));
        char why[256];
        if (set_scalar(out, &source_fields[f], scalar_text(vn), why, sizeof why))
            return key_error(L->origin, line, key, "source %d: %s: %s", i, fname, why);
    }
    for (size_t f = 0; f < N_SOURCE_FIELDS; f++)
        if (!seen[f] && strcmp(source_fields[f].name, "val_path"))
            return key_error(L->origin, node_line(L, m), key, "source %d: '%s' is missing", i,
                             source_fields[f].name);
    if (!out->name[0] || !out->path[0])
        return key_error(L->origin, node_line(L, m), key, "source %d: %s is empty", i,
                         out->name[0] ? "path" : "name");
    return 0;
}

/* data.sources replaces the whole mix: a list of 0..HERD_MAX_SOURCES entries. */
static int sources_from_node(const loader *L, yaml_node_t *seq, int line)
{
    const char *key = "data.sources";
    if (seq->type != YAML_SEQUENCE_NODE)
        return key_error(L->origin, line, key, "expected %s, got %s", type_noun(T_SOURCES), node_kind(seq));
    int n = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n > HERD_MAX_SOURCES)
        return key_error(L->origin, line, key, "has %d sources; give at most %d", n, HERD_MAX_SOURCES);
    herd_data_source *src = calloc(HERD_MAX_SOURCES, sizeof *src);
    if (!src) return key_error(L->origin, line, key, "out of memory");
    for (int i = 0; i < n; i++) {
        yaml_node_t *m = yaml_document_get_node(L->doc, seq->data.sequence.items.start[i]);
        if (source_from_node(L, m, i + 1, &src[i])) {
            free(src);
            return -1;
        }
    }
    L->c->data.n_sources = n;
    memcpy(L->c->data.sources, src, (size_t)n * sizeof src[0]);
    free(src);
    return 0;
}

/* Set key `k` (not the preset) from a value node. */
static int key_from_node(const loader *L, const key_spec *k, yaml_node_t *vn, int line)
{
    if (k->type == T_RAMP) return ramp_from_node(L, vn, line);
    if (k->type == T_SOURCES) return sources_from_node(L, vn, line);
    if (vn->type != YAML_SCALAR_NODE)
        return key_error(L->origin, line, k->name, "expected %s, got %s", type_noun(k->type), node_kind(vn));
    char why[256];
    if (set_scalar(L->c, k, scalar_text(vn), why, sizeof why))
        return key_error(L->origin, line, k->name, "%s", why);
    return 0;
}

static yaml_node_t *mapping_get(yaml_document_t *doc, yaml_node_t *map, const char *name)
{
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        if (kn->type == YAML_SCALAR_NODE && !strcmp((const char *)kn->data.scalar.value, name))
            return yaml_document_get_node(doc, p->value);
    }
    return NULL;
}

/* The preset goes first, wherever model.preset sits in the file, so that
 * every other key of the file overrides it. */
static int preset_from_document(const loader *L, yaml_node_t *root, preset_mode mode)
{
    yaml_node_t *model = mapping_get(L->doc, root, "model");
    yaml_node_t *vn = mapping_get(L->doc, model, "preset");
    if (!vn) return 0;
    int line = node_line(L, vn);
    if (vn->type != YAML_SCALAR_NODE)
        return key_error(L->origin, line, "model.preset", "expected %s, got %s", type_noun(T_PRESET),
                         node_kind(vn));
    if (set_preset(L->c, scalar_text(vn), mode, L->origin, line)) return -1;
    if (L->prov) L->prov->line[key_index(find_key("model.preset"))] = line;
    return 0;
}

/* Every key of one section mapping; `seen` holds the line of each key so far. */
static int section_from_node(const loader *L, const char *section, yaml_node_t *map, int *seen)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(L->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(L->doc, p->value);
        int line = node_line(L, kn);
        char name[160];
        snprintf(name, sizeof name, "%s.%s", section,
                 kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "?");
        const key_spec *k = find_key(name);
        if (!k) return unknown_key(L->origin, line, name);
        int i = key_index(k);
        if (seen[i]) return key_error(L->origin, line, name, "given twice (first on line %d)", seen[i]);
        seen[i] = line;
        if (k->type == T_PRESET) continue; /* done by preset_from_document */
        if (key_from_node(L, k, vn, line)) return -1;
        if (L->prov) L->prov->line[i] = line;
    }
    return 0;
}

/* An unknown section is reported on its first key, as 'section.key', when it
 * has one: that is the line a user looks at. */
static int unknown_section(const loader *L, const char *section, yaml_node_t *vn, int line)
{
    char name[160];
    snprintf(name, sizeof name, "%s", section);
    if (vn->type == YAML_MAPPING_NODE && vn->data.mapping.pairs.top > vn->data.mapping.pairs.start) {
        yaml_node_t *kn = yaml_document_get_node(L->doc, vn->data.mapping.pairs.start->key);
        if (kn->type == YAML_SCALAR_NODE) {
            snprintf(name, sizeof name, "%s.%s", section, (const char *)kn->data.scalar.value);
            line = node_line(L, kn);
        }
    }
    return unknown_key(L->origin, line, name);
}

static int document_apply(const loader *L, preset_mode mode)
{
    yaml_node_t *root = yaml_document_get_root_node(L->doc);
    if (!root || is_null(root)) return 0; /* an empty file changes nothing */
    if (root->type != YAML_MAPPING_NODE) {
        fprintf(stderr, "herd: %s:%d: expected a mapping of sections (model:, optim:, ...), got %s\n",
                L->origin, node_line(L, root), node_kind(root));
        return -1;
    }
    if (preset_from_document(L, root, mode)) return -1;
    int seen_key[N_KEYS] = {0}, seen_section[N_KEYS] = {0};
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(L->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(L->doc, p->value);
        int line = node_line(L, kn);
        const char *section = kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "?";
        int s = section_index(section, strlen(section));
        if (s < 0) return unknown_section(L, section, vn, line);
        if (seen_section[s])
            return key_error(L->origin, line, section, "section given twice (first on line %d)", seen_section[s]);
        seen_section[s] = line;
        if (is_null(vn)) continue; /* "model:" with every key commented out */
        if (vn->type != YAML_MAPPING_NODE)
            return key_error(L->origin, line, section, "expected a mapping of keys, got %s", node_kind(vn));
        if (section_from_node(L, section, vn, seen_key)) return -1;
    }
    return 0;
}

static void syntax_error(const char *path, const yaml_parser_t *parser)
{
    fprintf(stderr, "herd: %s:%d: YAML syntax error: %s%s%s%s\n", path, (int)parser->problem_mark.line + 1,
            parser->problem ? parser->problem : "malformed YAML", parser->context ? " (" : "",
            parser->context ? parser->context : "", parser->context ? ")" : "");
}

/* libyaml's time grows with the square of the nesting (30,000 levels: seconds,
 * 100,000: half a minute) and a config needs three levels: refuse deep text
 * before loading it. Events stop at the first level past the limit, so the
 * check costs little whatever the input. A syntax error is left to the loader,
 * which reports it with its line. `key`: the --set key the text is the value
 * of (NULL for a file). */
static int check_depth(const char *origin, const char *key, const unsigned char *text, size_t len)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        fprintf(stderr, "herd: %s: out of memory for the YAML parser\n", origin);
        return -1;
    }
    yaml_parser_set_input_string(&parser, text, len);
    int depth = 0, rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) break;
        yaml_event_type_t type = ev.type;
        int line = (int)ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        if (type == YAML_STREAM_END_EVENT) break;
        if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) depth++;
        else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT) depth--;
        if (depth > HERD_CONFIG_MAX_DEPTH) {
            if (key)
                key_error(origin, AT_SET, key, "YAML nested deeper than %d levels (the limit of a config)",
                          HERD_CONFIG_MAX_DEPTH);
            else
                fprintf(stderr, "herd: %s:%d: YAML nested deeper than %d levels (the limit of a config)\n",
                        origin, line, HERD_CONFIG_MAX_DEPTH);
            rc = -1;
            break;
        }
    }
    yaml_parser_delete(&parser);
    return rc;
}

static int load_text(herd_config *c, const char *path, const char *text, size_t len, preset_mode mode,
                     provenance *prov)
{
    if (len > HERD_CONFIG_MAX_BYTES) {
        fprintf(stderr, "herd: %s: config larger than %d bytes (the limit of a config)\n", path,
                HERD_CONFIG_MAX_BYTES);
        return -1;
    }
    if (check_depth(path, NULL, (const unsigned char *)text, len)) return -1;
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = -1;
    if (!yaml_parser_initialize(&parser)) {
        fprintf(stderr, "herd: %s: out of memory for the YAML parser\n", path);
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) { /* libyaml frees doc on failure */
        syntax_error(path, &parser);
    } else {
        loader L = {c, path, 1, &doc, prov};
        rc = document_apply(&L, mode);
        yaml_document_delete(&doc);
        /* a second document would be silently ignored: refuse it */
        if (rc == 0 && !yaml_parser_load(&parser, &doc)) {
            syntax_error(path, &parser);
            rc = -1;
        } else if (rc == 0) {
            if (yaml_document_get_root_node(&doc)) {
                fprintf(stderr, "herd: %s:%d: a second YAML document; a config is one document\n", path,
                        (int)doc.start_mark.line + 1);
                rc = -1;
            }
            yaml_document_delete(&doc);
        }
    }
    yaml_parser_delete(&parser);
    return rc;
}

/* The whole file, at most HERD_CONFIG_MAX_BYTES + 1 bytes of it (one more
 * says it is too large); any readable file, a pipe too. */
static char *read_config(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "herd: %s: cannot open config: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *more = cap > HERD_CONFIG_MAX_BYTES ? NULL : realloc(buf, 2 * cap);
            if (!more) break;
            buf = more;
            cap *= 2;
        }
        size_t want = cap - n;
        if (n + want > (size_t)HERD_CONFIG_MAX_BYTES + 1) want = (size_t)HERD_CONFIG_MAX_BYTES + 1 - n;
        size_t got = fread(buf + n, 1, want, f);
        n += got;
        if (got < want || n > HERD_CONFIG_MAX_BYTES) break;
    }
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (!buf || err) {
        fprintf(stderr, "herd: %s: cannot read config: %s\n", path, buf ? strerror(err) : "out of memory");
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static int load_file(herd_config *c, const char *path, preset_mode mode, provenance *prov)
{
    size_t len;
    char *text = read_config(path, &len);
    if (!text) return -1;
    int rc = load_text(c, path, text, len, mode, prov);
    free(text);
    return rc;
}

int herd_config_load_text(herd_config *c, const char *origin, const char *text, size_t len)
{
    return load_text(c, origin, text, len, PRESET_APPLY, NULL);
}

int herd_config_load_file(herd_config *c, const char *path)
{
    return load_file(c, path, PRESET_APPLY, NULL);
}

/* ---- --set -------------------------------------------------------------- */

/* The ramp on the command line is YAML flow text:
 *   --set 'batch.ramp=[{after_tokens: 0, batch_tokens: 8192, seq_len: 128}]' */
static int list_from_text(herd_config *c, const char *text, const char *origin, const key_spec *k)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return key_error(origin, AT_SET, k->name, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    int rc = -1;
    if (check_depth(origin, k->name, (const unsigned char *)text, strlen(text))) {
        /* said */
    } else if (!yaml_parser_load(&parser, &doc)) {
        key_error(origin, AT_SET, k->name, "YAML syntax error: %s",
                  parser.problem ? parser.problem : "malformed YAML");
    } else {
        loader L = {c, origin, 0, &doc, NULL};
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        rc = root ? key_from_node(&L, k, root, AT_SET)
                  : key_error(origin, AT_SET, k->name, "expected %s, got nothing", type_noun(k->type));
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    return rc;
}

static int set_assignment(herd_config *c, const char *assignment, const char *origin, preset_mode mode,
                          provenance *prov)
{
    const char *eq = strchr(assignment, '=');
    char name[160];
    if (!eq || eq == assignment || (size_t)(eq - assignment) >= sizeof name) {
        fprintf(stderr, "herd: %s: expected section.key=value, got '%s'\n", origin, assignment);
        return -1;
    }
    memcpy(name, assignment, (size_t)(eq - assignment));
    name[eq - assignment] = '\0';
    const char *value = eq + 1;
    const key_spec *k = find_key(name);
    if (!k) return unknown_key(origin, AT_SET, name);
    int rc;
    char why[256];
    switch (k->type) {
    case T_PRESET: rc = set_preset(c, value, mode, origin, AT_SET); break;
    case T_RAMP: case T_SOURCES: rc = list_from_text(c, value, origin, k); break;
    default:
        rc = set_scalar(c, k, value, why, sizeof why) ? key_error(origin, AT_SET, k->name, "%s", why) : 0;
        break;
    }
    if (rc == 0 && prov) prov->line[key_index(k)] = AT_SET;
    return rc;
}

int herd_config_set(herd_config *c, const char *assignment, const char *origin)
{
    return set_assignment(c, assignment, origin, PRESET_APPLY, NULL);
}

/* ---- validation --------------------------------------------------------- */

typedef struct {
    const char       *origin;
    const provenance *prov; /* may be NULL */
} checker;

/* Report against `key`, or against `alt` when only `alt` was given by the
 * user (the value the user wrote is the likelier mistake). */
static int rule_error(const checker *C, const char *key, const char *alt, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int rule_error(const checker *C, const char *key, const char *alt, const char *fmt, ...)
{
    int line = C->prov ? C->prov->line[key_index(find_key(key))] : 0;
    if (alt && C->prov && line == 0 && C->prov->line[key_index(find_key(alt))] != 0) {
        key = alt;
        line = C->prov->line[key_index(find_key(alt))];
    }
    const char *origin = line == AT_SET ? "--set" : C->origin;
    va_list ap;
    va_start(ap, fmt);
    vkey_error(origin, line, key, fmt, ap);
    va_end(ap);
    return -1;
}

/* Bounds of every numeric key, again: a config built in code (or edited
 * after loading) gets the same checks as one read from a file. */
static int check_table(const herd_config *c, const checker *C)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_spec *k = &keys[i];
        const void *p = cfield_of(c, k);
        double v;
        switch (k->type) {
        case T_INT: v = *(const int *)p; break;
        case T_INT64: v = (double)*(const int64_t *)p; break;
        case T_DOUBLE: v = *(const double *)p; break;
        case T_STRING: case T_PRESET:
            if (!memchr(p, '\0', k->size)) return rule_error(C, k->name, NULL, "not terminated");
            continue;
        case T_ENUM: /* a config built in code may hold any int */
            if (!strcmp(herd_config_enum_name(k->choices, *(const int *)p), "?"))
                return rule_error(C, k->name, NULL, "%d is not one of its choices", *(const int *)p);
            continue;
        default: continue; /* uint64 takes any value; the ramp is checked below */
        }
        if (!in_bounds(k, v)) {
            char b[80], s[32];
            format_bounds(k, b, sizeof b);
            format_double(v, s, sizeof s);
            return rule_error(C, k->name, NULL, "%s is out of range %s", s, b);
        }
    }
    if (c->batch.n_ramp < 1 || c->batch.n_ramp > HERD_MAX_RAMP)
        return rule_error(C, "batch.ramp", NULL, "has %d stages; give 1 to %d", c->batch.n_ramp, HERD_MAX_RAMP);
    for (int i = 0; i < c->batch.n_ramp; i++)
        for (size_t f = 0; f < N_RAMP_FIELDS; f++) {
            const key_spec *k = &ramp_fields[f];
            const void *p = cfield_of(&c->batch.ramp[i], k);
            double v = k->type == T_INT ? *(const int *)p : (double)*(const int64_t *)p;
            if (!in_bounds(k, v)) {
                char b[80];
                format_bounds(k, b, sizeof b);
                return rule_error(C, "batch.ramp", NULL, "stage %d: %s %.0f is out of range %s", i + 1,
                                  k->name, v, b);
            }
        }
    return 0;
}

static int check_model(const herd_config *c, const checker *C)
{
    if (c->model.n_heads % c->model.n_kv_heads)
        return rule_error(C, "model.n_kv_heads", "model.n_heads",
                          "n_heads (%d) is not divisible by n_kv_heads (%d)", c->model.n_heads, c->model.n_kv_heads);
    if (c->model.d_model % c->model.n_heads)
        return rule_error(C, "model.n_heads", "model.d_model", "d_model (%d) is not divisible by n_heads (%d)",
                          c->model.d_model, c->model.n_heads);
    if (c->model.rope_scale_factor > 0 &&
        (c->model.rope_original_max_pos <= 0 || c->model.rope_high_freq_factor <= c->model.rope_low_freq_factor ||
         c->model.rope_low_freq_factor <= 0))
        return rule_error(C, "model.rope_scale_factor", "model.rope_original_max_pos",
                          "RoPE scaling needs rope_original_max_pos > 0 (%d) and 0 < rope_low_freq_factor (%g) "
                          "< rope_high_freq_factor (%g)", c->model.rope_original_max_pos,
                          c->model.rope_low_freq_factor, c->model.rope_high_freq_factor);
    if ((c->model.d_model / c->model.n_heads) % 2) /* RoPE rotates pairs of dimensions */
        return rule_error(C, "model.n_heads", "model.d_model",
                          "head_dim = d_model / n_heads = %d / %d = %d must be even (RoPE)", c->model.d_model,
                          c->model.n_heads, c->model.d_model / c->model.n_heads);
    return 0;
}

static int check_ramp(const herd_config *c, const checker *C)
{
    for (int i = 0; i < c->batch.n_ramp; i++) {
        const herd_ramp_stage *s = &c->batch.ramp[i];
        if (i == 0 && s->after_tokens != 0)
            return rule_error(C, "batch.ramp", NULL, "stage 1: after_tokens is %lld; the first stage starts at 0",
                              (long long)s->after_tokens);
        if (i > 0 && s->after_tokens <= c->batch.ramp[i - 1].after_tokens)
            return rule_error(C, "batch.ramp", NULL,
                              "stage %d: after_tokens %lld is not after stage %d's %lld (sort the stages)",
                              i + 1, (long long)s->after_tokens, i, (long long)c->batch.ramp[i - 1].after_tokens);
        if (s->seq_len > c->model.max_seq_len)
            return rule_error(C, "batch.ramp", "model.max_seq_len",
                              "stage %d: seq_len %d is longer than model.max_seq_len %d", i + 1, s->seq_len,
                              c->model.max_seq_len);
        if (s->batch_tokens % s->seq_len)
            return rule_error(C, "batch.ramp", NULL, "stage %d: batch_tokens %lld is not a multiple of seq_len %d",
                              i + 1, (long long)s->batch_tokens, s->seq_len);
        long long seqs = (long long)(s->batch_tokens / s->seq_len);
        if (seqs % c->batch.micro_batch)
            return rule_error(C, "batch.micro_batch", "batch.ramp",
                              "stage %d: %lld sequences per batch (batch_tokens / seq_len) are not a "
                              "multiple of micro_batch %d",
                              i + 1, seqs, c->batch.micro_batch);
    }
    return 0;
}

static int check_training(const herd_config *c, const checker *C)
{
    if (c->optim.min_lr > c->optim.lr)
        return rule_error(C, "optim.min_lr", "optim.lr", "min_lr (%g) is larger than lr (%g)", c->optim.min_lr, c->optim.lr);
    if (c->schedule.anneal_tokens > 0 && c->train.max_tokens <= c->schedule.anneal_tokens)
        return rule_error(C, "schedule.anneal_tokens", "train.max_tokens",
                          "annealing over the last %lld tokens needs train.max_tokens larger than that "
                          "(it is %lld)",
                          (long long)c->schedule.anneal_tokens, (long long)c->train.max_tokens);
    const herd_config_checkpoint *k = &c->checkpoint;
    if (k->every == HERD_CKPT_EVERY_AUTO && (k->mtbf_s > 0) == (k->failures_per_gpu_day > 0))
        return rule_error(C, "checkpoint.every", k->mtbf_s > 0 ? "checkpoint.failures_per_gpu_day" : NULL,
                          "auto needs the job's interruption rate: give one of checkpoint.mtbf_s and "
                          "checkpoint.failures_per_gpu_day (%s)", k->mtbf_s > 0 ? "both given" : "neither given");
    return 0;
}

/* A post-training objective names its data and the tokenizer that reads it. */
static int check_post(const herd_config *c, const checker *C)
{
    if (c->post.objective == HERD_OBJECTIVE_PRETRAIN) return 0;
    const char *name = herd_config_enum_name(herd_objective_choices, c->post.objective);
    if (!c->post.data[0])
        return rule_error(C, "post.data", "post.objective", "objective %s needs post.data (chat JSON lines)", name);
    if (!c->post.tokenizer[0])
        return rule_error(C, "post.tokenizer", "post.objective", "objective %s needs post.tokenizer", name);
    /* a pair's two rows meet in one micro-batch: its loss needs both */
    if (c->post.objective != HERD_OBJECTIVE_SFT && c->batch.micro_batch % 2)
        return rule_error(C, "batch.micro_batch", "post.objective",
                          "objective %s needs an even micro_batch (a pair's better and worse rows "
                          "share a micro-batch), not %d", name, c->batch.micro_batch);
    return 0;
}

/* The layout against the model's shapes (the world size is checked at launch,
 * src/parallel/grid.c). Megatron's rules: heads, ffn and vocabulary split evenly; KV
 * heads split when TP <= n_kv_heads, else replicated TP / n_kv_heads times. */
static int check_parallel(const herd_config *c, const checker *C)
{
    int tp = c->parallel.tp;
    if (c->model.n_heads % tp)
        return rule_error(C, "parallel.tp", "model.n_heads", "n_heads (%d) is not divisible by tp (%d)",
                          c->model.n_heads, tp);
    if (tp <= c->model.n_kv_heads ? c->model.n_kv_heads % tp : tp % c->model.n_kv_heads)
        return rule_error(C, "parallel.tp", "model.n_kv_heads",
                          "tp (%d) and n_kv_heads (%d): one must divide the other (KV heads are split "
                          "or replicated)", tp, c->model.n_kv_heads);
    if (c->model.ffn_dim % tp)
        return rule_error(C, "parallel.tp", "model.ffn_dim", "ffn_dim (%d) is not divisible by tp (%d)",
                          c->model.ffn_dim, tp);
    if (c->model.vocab_size % tp)
        return rule_error(C, "parallel.tp", "model.vocab_size",
                          "vocab_size (%d) is not divisible by tp (%d) (vocabulary-parallel embedding)",
                          c->model.vocab_size, tp);
    int stages = c->parallel.pp * c->parallel.virtual_stages, fewer = c->parallel.pp_first_last_fewer && stages > 1;
    int total = c->model.n_layers + (fewer ? 2 : 0);
    if (total % stages || total / stages - fewer < 1)
        return rule_error(C, "parallel.pp", "model.n_layers",
                          "%d layers cannot be split into pp (%d) x virtual_stages (%d) = %d "
                          "pipeline stages%s", c->model.n_layers, c->parallel.pp, c->parallel.virtual_stages, stages,
                          fewer ? " with the first and last one layer fewer (n_layers + 2 must be "
                                  "a multiple of the stages, at least 2 per stage)" : "");
    for (int i = 0; i < c->batch.n_ramp; i++) {
        long long seqs = (long long)(c->batch.ramp[i].batch_tokens / c->batch.ramp[i].seq_len);
        if (c->parallel.cp > 1 && c->batch.ramp[i].seq_len % (2 * c->parallel.cp))
            return rule_error(C, "parallel.cp", "batch.ramp",
                              "stage %d: seq_len %d is not divisible by 2 x cp (%d): context "
                              "parallelism cuts each sequence into 2 x cp chunks", i + 1,
                              c->batch.ramp[i].seq_len, 2 * c->parallel.cp);
        if (c->parallel.pp > 1 && c->parallel.dp > 0 && seqs / ((long long)c->parallel.dp * c->batch.micro_batch) < c->parallel.pp)
            return rule_error(C, "parallel.pp", "batch.ramp",
                              "stage %d: %lld micro-batches per DP rank are fewer than the %d "
                              "pipeline stages (the schedule needs N >= pp)", i + 1,
                              seqs / ((long long)c->parallel.dp * c->batch.micro_batch), c->parallel.pp);
        if (c->parallel.dp > 0 && seqs % ((long long)c->parallel.dp * c->batch.micro_batch))
            return rule_error(C, "parallel.dp", "batch.ramp",
                              "stage %d: %lld sequences per batch are not a multiple of dp (%d) x "
                              "micro_batch (%d)", i + 1, seqs, c->parallel.dp, c->batch.micro_batch);
        /* with CP a rank holds seq_len / cp tokens of each sequence */
        if (c->parallel.sequence_parallel && c->batch.ramp[i].seq_len % c->parallel.cp == 0 &&
            ((long long)c->batch.micro_batch * (c->batch.ramp[i].seq_len / c->parallel.cp)) % tp)
            return rule_error(C, "parallel.sequence_parallel", "parallel.tp",
                              "stage %d: micro_batch x seq_len / cp = %lld tokens are not divisible by tp (%d)",
                              i + 1, (long long)c->batch.micro_batch * (c->batch.ramp[i].seq_len / c->parallel.cp), tp);
    }
    return 0;
}

/* The mix: weights >= 0 and not all 0, distinct names, and not also data.path. */
static int check_sources(const herd_config *c, const checker *C)
{
    if (c->data.n_sources < 0 || c->data.n_sources > HERD_MAX_SOURCES)
        return rule_error(C, "data.sources", NULL, "has %d sources; give at most %d", c->data.n_sources,
                          HERD_MAX_SOURCES);
    double sum = 0;
    for (int i = 0; i < c->data.n_sources; i++) {
        const herd_data_source *s = &c->data.sources[i];
        if (!memchr(s->name, 0, sizeof s->name) || !memchr(s->path, 0, sizeof s->path) ||
            !memchr(s->val_path, 0, sizeof s->val_path))
            return rule_error(C, "data.sources", NULL, "source %d: a string is not terminated", i + 1);
        for (const char *q = s->name; *q; q++)
            if (!isalnum((unsigned char)*q) && *q != '_' && *q != '-' && *q != '.')
                return rule_error(C, "data.sources", NULL, "source %d: name '%s': use letters, digits, "
                                  "'_', '-' and '.' (it becomes a metrics field)", i + 1, s->name);
        if (!(s->weight >= 0) || s->weight > 1e12)
            return rule_error(C, "data.sources", NULL, "source %d (%s): weight %g is negative or out "
                              "of range [0, 1e12]", i + 1, s->name, s->weight);
        sum += s->weight;
        for (int j = 0; j < i; j++)
            if (!strcmp(c->data.sources[j].name, s->name))
                return rule_error(C, "data.sources", NULL, "sources %d and %d are both named '%s'",
                                  j + 1, i + 1, s->name);
    }
    if (c->data.n_sources > 0 && !(sum > 0))
        return rule_error(C, "data.sources", NULL, "every weight is 0: nothing to sample");
    if (c->data.n_sources > 0 && (c->data.path[0] || c->data.val_path[0]))
        return rule_error(C, "data.sources", "data.path",
                          "give data.sources or data.path/data.val_path, not both");
    return 0;
}

static int validate(const herd_config *c, const char *origin, const provenance *prov)
{
    checker C = {origin, prov};
    if (check_table(c, &C) || check_model(c, &C) || check_ramp(c, &C) || check_training(c, &C) ||
        check_parallel(c, &C) || check_sources(c, &C) || check_post(c, &C))
        return -1;
    return 0;
}

int herd_config_validate(const herd_config *c, const char *origin)
{
    return validate(c, origin, NULL);
}

/* ---- resolution --------------------------------------------------------- */

static int is_preset_assignment(const char *s)
{
    return !strncmp(s, "model.preset=", strlen("model.preset="));
}

int herd_config_resolve(herd_config *c, const char *path, int n_sets, char *const *sets)
{
    provenance prov;
    memset(&prov, 0, sizeof prov);
    herd_config_defaults(c);

    /* The preset is the bottom layer: a --set model.preset (the last one)
     * beats the file's, and either is applied before any other key. */
    int set_preset_at = -1;
    for (int i = 0; i < n_sets; i++)
        if (is_preset_assignment(sets[i])) set_preset_at = i;
    if (set_preset_at >= 0 && set_assignment(c, sets[set_preset_at], "--set", PRESET_APPLY, &prov)) return -1;

    if (path && load_file(c, path, set_preset_at >= 0 ? PRESET_CHECK : PRESET_APPLY, &prov)) return -1;

    for (int i = 0; i < n_sets; i++) {
        preset_mode mode = is_preset_assignment(sets[i]) ? PRESET_CHECK : PRESET_APPLY;
        if (set_assignment(c, sets[i], "--set", mode, &prov)) return -1;
    }
    return validate(c, path ? path : "--set", &prov);
}

/* ---- writing ------------------------------------------------------------ */

/* A YAML double-quoted string: any path survives the round trip. */
static void write_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f) fprintf(f, "\\x%02x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static void write_stage(FILE *f, const herd_ramp_stage *s)
{
    fprintf(f, "{after_tokens: %" PRId64 ", batch_tokens: %" PRId64 ", seq_len: %d}", s->after_tokens,
            s->batch_tokens, s->seq_len);
}

static void write_source(FILE *f, const herd_data_source *s)
{
    char w[32];
    format_double(s->weight, w, sizeof w);
    fputs("{name: ", f);
    write_quoted(f, s->name);
    fputs(", path: ", f);
    write_quoted(f, s->path);
    fputs(", val_path: ", f);
    write_quoted(f, s->val_path);
    fprintf(f, ", weight: %s}", w);
}

/* One value as YAML; the ramp as a flow list so that it fits on one line. */
static void write_value(FILE *f, const herd_config *c, const key_spec *k)
{
    const void *p = cfield_of(c, k);
    char buf[32];
    switch (k->type) {
    case T_INT:
        if (k->flags & AUTO_WORD && *(const int *)p == -1) fputs("auto", f);
        else fprintf(f, "%d", *(const int *)p);
        break;
    case T_INT64: fprintf(f, "%" PRId64, *(const int64_t *)p); break;
    case T_UINT64: fprintf(f, "%" PRIu64, *(const uint64_t *)p); break;
    case T_DOUBLE: format_double(*(const double *)p, buf, sizeof buf); fputs(buf, f); break;
    case T_STRING: case T_PRESET: write_quoted(f, (const char *)p); break;
    case T_ENUM: write_quoted(f, herd_config_enum_name(k->choices, *(const int *)p)); break;
    case T_RAMP:
        fputc('[', f);
        for (int i = 0; i < c->batch.n_ramp; i++) {
            if (i) fputs(", ", f);
            write_stage(f, &c->batch.ramp[i]);
        }
        fputc(']', f);
        break;
    case T_SOURCES:
        fputc('[', f);
        for (int i = 0; i < c->data.n_sources; i++) {
            if (i) fputs(", ", f);
            write_source(f, &c->data.sources[i]);
        }
        fputc(']', f);
        break;
    }
}

int herd_config_write(const herd_config *c, FILE *f)
{
    fprintf(f, "# herd config, resolved: every key (`herd config --keys` describes them).\n"
               "# The preset is applied first; the values below override it.\n");
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_spec *k = &keys[i];
        size_t len = section_len(k);
        if (i == 0 || section_index(k->name, len) == (int)i) fprintf(f, "%.*s:\n", (int)len, k->name);
        fprintf(f, "  %s:", k->name + len + 1);
        if (k->type == T_RAMP) { /* block list, one stage a line: easy to diff and edit */
            fputc('\n', f);
            for (int s = 0; s < c->batch.n_ramp; s++) {
                fputs("    - ", f);
                write_stage(f, &c->batch.ramp[s]);
                fputc('\n', f);
            }
            continue;
        }
        if (k->type == T_SOURCES && c->data.n_sources > 0) { /* block list, one source a line */
            fputc('\n', f);
            for (int s = 0; s < c->data.n_sources; s++) {
                fputs("    - ", f);
                write_source(f, &c->data.sources[s]);
                fputc('\n', f);
            }
            continue;
        }
        fputc(' ', f);
        write_value(f, c, k);
        fputc('\n', f);
    }
    fflush(f);
    return ferror(f) ? -1 : 0;
}

static const char *type_name(key_type t)
{
    static const char *const names[] = {"int", "int64", "uint64", "double", "string", "enum", "preset",
                                        "ramp", "sources"};
    return names[t];
}

void herd_config_print_keys(FILE *f)
{
    herd_config d;
    herd_config_defaults(&d);
    fprintf(f, "herd config keys. Defaults are the tiny preset. Integers take decimal suffixes\n"
               "K M G T (4M = 4000000, 2.87T = 2870000000000). Ranges: [ ] inclusive, ( ) exclusive.\n\n");
    fprintf(f, "%-24s %-7s %-14s %s\n", "KEY", "TYPE", "DEFAULT", "DESCRIPTION");
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_spec *k = &keys[i];
        char def[HERD_PATH_MAX + 512] = "", range[80] = "";
        if (k->type == T_RAMP) { /* too long for the column: the stages go below */
            snprintf(def, sizeof def, "(%d stage%s)", d.batch.n_ramp, d.batch.n_ramp == 1 ? "" : "s");
        } else {
            FILE *m = fmemopen(def, sizeof def, "w");
            if (m) {
                write_value(m, &d, k);
                fclose(m);
            }
        }
        if (k->type != T_STRING && k->type != T_ENUM && k->type != T_PRESET && k->type != T_RAMP &&
            k->type != T_UINT64 && k->type != T_SOURCES) {
            range[0] = ' ';
            format_bounds(k, range + 1, sizeof range - 1);
        }
        fprintf(f, "%-24s %-7s %-14s %s%s\n", k->name, type_name(k->type), def, k->help, range);
        for (int s = 0; k->type == T_RAMP && s < d.batch.n_ramp; s++) {
            fprintf(f, "%-33s- ", ""); /* under DEFAULT */
            write_stage(f, &d.batch.ramp[s]);
            fputc('\n', f);
        }
    }
}
