/* config.h — the resolved run configuration of herd.
 *
 * A run is described by a human-edited YAML file (see docs/config.md) layered
 * over a preset, with `--set section.key=value` overrides on the command line:
 *
 *     defaults  <  preset (model.preset or --set model.preset=...)  <  YAML  <  --set
 *
 * Every key lives in one table in config.c (name, type, offset, bounds), so
 * parsing, validation, printing and saving are written once.
 *
 * Status convention (the whole project): 0 on success, -1 on failure with a
 * message already printed to stderr that names the file, the line and the key.
 */
#ifndef HERD_CONFIG_H
#define HERD_CONFIG_H

#include <stdint.h>
#include <stdio.h>
#include "topology/recompute.h"

#define HERD_MAX_RAMP 8       /* batch-ramp stages */
#define HERD_PATH_MAX 1024
#define HERD_MAX_SOURCES 16   /* data.sources entries */
#define HERD_CONFIG_MAX_BYTES (1 << 20) /* a config file: 1 MiB */
#define HERD_CONFIG_MAX_DEPTH 64        /* YAML nesting of a config (it needs 3) */

/* curate: herd data clean (src/data/curate.h). */
typedef struct {
    int    normalize;          /* 1: step 1 */
    int    shingle;            /* words per MinHash shingle */
    int    minhash_perms;      /* signature length = bands * rows */
    int    minhash_bands;      /* LSH bands; divides minhash_perms */
    double minhash_threshold;  /* estimated Jaccard at or above: near-duplicate */
    int    line_bucket;        /* documents per line-dedup bucket */
    int    line_max_repeat;    /* a line seen more often than this in a bucket goes */
    int64_t min_bytes, max_bytes;
    int    dup_ngram;          /* n of the duplicated n-gram coverage */
    double max_dup_ngram_frac; /* above: the document goes */
    double max_symbol_ratio;   /* above: the document goes */
    uint64_t seed;             /* of the MinHash functions */
} herd_curate_params;
/* Defaults: 5-word shingles, 128 perms in 16 bands of 8, threshold 0.7,
 * buckets of 1000 documents with lines kept up to 6 times, 32 B..1 MB, 5-gram
 * coverage 0.3, symbol ratio 0.1 (the Gopher rules' values). */
void herd_curate_defaults(herd_curate_params *p);

/* One source of the training mix (data.sources). */
typedef struct {
    char   name[64];                 /* e.g. "general", "math", "code" */
    char   path[HERD_PATH_MAX];      /* token shard */
    char   val_path[HERD_PATH_MAX];  /* held-out shard ("": none) */
    double weight;                   /* share of sequences, relative to the others */
} herd_data_source;

typedef struct {
    int64_t after_tokens;  /* this stage applies once tokens_seen >= after_tokens */
    int64_t batch_tokens;  /* global batch size in tokens */
    int     seq_len;       /* sequence length in tokens */
} herd_ramp_stage;

/* Enum keys are ints after loading; each has a table of its choices (as
 * redis's configEnum), which parsing, messages and writing share. */
typedef struct {
    const char *name;
    int         value;
} herd_config_enum;

typedef enum { HERD_BACKEND_CPU = 0, HERD_BACKEND_CUDA = 1 } herd_backend_kind;
typedef enum { HERD_PRECISION_FP32 = 0, HERD_PRECISION_BF16 = 1 } herd_precision;
/* post.objective: the loss of herd train's step */
typedef enum { HERD_OBJECTIVE_PRETRAIN = 0, HERD_OBJECTIVE_SFT = 1, HERD_OBJECTIVE_DPO = 2,
               HERD_OBJECTIVE_RM = 3 } herd_objective;
/* train.recompute takes HERD_RECOMPUTE_* of topology/recompute.h */

extern const herd_config_enum herd_backend_choices[];   /* cpu, cuda */
extern const herd_config_enum herd_recompute_choices[]; /* none, selective, full */
extern const herd_config_enum herd_precision_choices[]; /* fp32, bf16 */
extern const herd_config_enum herd_objective_choices[]; /* pretrain, sft, dpo, rm */

/* The name of `value` in `choices` (ended by a NULL name), or "?". */
const char *herd_config_enum_name(const herd_config_enum *choices, int value);

/* model: the Llama 3 architecture */
typedef struct {
    char    preset[32];      /* "", "tiny", "small", "100m", "8b", "70b", "405b" */
    int     n_layers;
    int     d_model;
    int     n_heads;
    int     n_kv_heads;      /* GQA: divides n_heads */
    int     ffn_dim;         /* SwiGLU hidden size */
    int     vocab_size;
    int     max_seq_len;     /* longest sequence the run may use */
    double  rope_theta;      /* 500000 for Llama 3 */
    /* Llama 3.1 RoPE frequency scaling (config.json rope_scaling, rope_type
     * "llama3"); rope_scale_factor 0: none */
    double  rope_scale_factor;     /* 8 for Llama 3.1 */
    double  rope_low_freq_factor;  /* 1 */
    double  rope_high_freq_factor; /* 4 */
    int     rope_original_max_pos; /* 8192: the context the frequencies were trained for */
    double  norm_eps;        /* RMSNorm epsilon */
    double  init_std;        /* std of the normal init of weight matrices */
} herd_config_model;

/* optim: AdamW + clipping */
typedef struct {
    double  lr;              /* peak learning rate */
    double  min_lr;          /* floor of the cosine decay */
    double  beta1, beta2, eps;
    double  weight_decay;    /* applied to weight matrices only */
    double  grad_clip;       /* global L2 norm; 0 disables */
} herd_config_optim;

/* schedule: warm-up, cosine, optional final linear decay to 0 */
typedef struct {
    int64_t warmup_steps;
    int64_t decay_steps;     /* step at which the cosine reaches min_lr */
    int64_t anneal_tokens;   /* last N tokens of train.max_tokens: lr -> 0 linearly */
} herd_config_schedule;

/* batch: ramp keyed on tokens seen (sorted by after_tokens, first at 0) */
typedef struct {
    int             n_ramp;
    herd_ramp_stage ramp[HERD_MAX_RAMP];
    int             micro_batch;  /* sequences per micro-batch (gradient accumulation) */
} herd_config_batch;

/* train */
typedef struct {
    uint64_t seed;
    int64_t  max_steps;      /* stop after this many optimizer steps (0: no limit) */
    int64_t  max_tokens;     /* stop after this many tokens (0: no limit) */
    int      log_every;      /* print a human line every N steps (JSONL every step) */
    char     out_dir[HERD_PATH_MAX];  /* metrics.jsonl and config.yaml go here */
    int      backend;        /* herd_backend_kind */
    int      recompute;      /* HERD_RECOMPUTE_*: activation recompute (topology/recompute.h) */
    int      precision;      /* herd_precision: the GEMMs' inputs (kernels/backend.h set_matmul_bf16) */
    int      overlap_grad_reduce; /* 1: per-layer gradient reduction overlapped with the backward (src/parallel/fsdp.h) */
    int      xent_chunk;     /* vocabulary columns per chunk of the fused output projection and
                                cross-entropy (src/model/model.c); 0: the whole logits are stored */
    int      threads;        /* OpenMP/BLAS threads; 0: all cores */
    int      eval_every;     /* validation loss every N steps and at the end (0: never) */
    int      eval_batches;   /* micro-batches per validation (the same windows each time) */
    char     init_from[HERD_PATH_MAX]; /* a Hugging Face Llama directory the weights start from ("": random init) */
} herd_config_train;

/* data */
typedef struct {
    char     path[HERD_PATH_MAX];      /* token shard (docs/data-format.md) */
    char     val_path[HERD_PATH_MAX];  /* held-out shard for the validation loss ("": none) */
    int      n_sources;      /* data.sources: the mix (0: data.path alone) */
    herd_data_source sources[HERD_MAX_SOURCES];
} herd_config_data;

/* parallel: the 4D layout, ranks ordered TP innermost, then CP, PP, DP */
typedef struct {
    int      tp;             /* tensor parallel (Megatron: heads, ffn, vocabulary) */
    int      cp;             /* context parallel */
    int      pp;             /* pipeline parallel */
    int      dp;             /* FSDP data parallel; 0: world size / (tp*cp*pp) */
    int      sequence_parallel; /* 1: norms and residual stream split along tokens across TP */
    int      virtual_stages; /* V model chunks per pipeline rank (1: 1F1B, > 1: interleaved) */
    int      pp_first_last_fewer; /* 1: the first and last pipeline stage hold one layer fewer */
    int      placement;      /* 1: network-aware rank placement (topology/), 0: rank order */
    int      bind_cores;     /* 1: bind each rank to its share of the node's cores (hwloc) */
    int      share_gpu;      /* 1: two ranks of a node may use one GPU (else an error) */
    char     links[HERD_PATH_MAX]; /* measured links (herd check's DIR/links) for placement; "": defaults */
} herd_config_parallel;

/* checkpoint (checkpoint/ckpt.h, src/train/train_ckpt.h) */
typedef struct {
    int      every;          /* steps between checkpoints, and one at the end (0: none;
                                HERD_CKPT_EVERY_AUTO: chosen by src/train/ckpt_interval.c) */
    int      keep_last;      /* keep the newest K complete checkpoints (0: all) */
    int      keep_every;     /* and every checkpoint whose step is a multiple of M (0: none) */
    int      resume;         /* 1: resume from the newest good checkpoint of dir */
    char     dir[HERD_PATH_MAX]; /* "": OUT_DIR/checkpoints */
    /* every: auto (docs/goodput.md): the job's interruption rate, one of */
    double   mtbf_s;               /* mean time between the job's interruptions */
    double   failures_per_gpu_day; /* or a rate per GPU, times the job's ranks */
    double   restart_s;            /* interruption to training again (0: OUT_DIR/recovery.log) */
} herd_config_checkpoint;

#define HERD_CKPT_EVERY_AUTO (-1) /* checkpoint.every: auto */

/* monitor */
typedef struct {
    double   peak_tflops;
    double   watchdog_step_s;   /* a step (or collective) longer than this aborts the job (0: off) */
    double   watchdog_commit_s; /* the limit while a checkpoint commits */
    int      straggler_every;   /* gather per-rank compute time every N steps (0: never) */
    char     prom_file[HERD_PATH_MAX]; /* Prometheus textfile ("": OUT_DIR/herd.prom) */
} herd_config_monitor;

/* post: post-training (herd post dpo, herd post rs); the paper's values by default */
typedef struct {
    int      objective;         /* HERD_OBJECTIVE_*: the loss of herd train's step */
    char     data[HERD_PATH_MAX];      /* chat JSON lines of the sft / dpo / rm objective */
    char     tokenizer[HERD_PATH_MAX]; /* the tokenizer that encodes post.data */
    double   dpo_beta;          /* DPO's beta: scale of the log-ratio margin */
    double   dpo_nll_coef;      /* weight of the NLL term on the chosen response */
    int      rs_k;              /* rejection sampling: samples per prompt */
    double   rs_temperature;    /* rejection sampling: sampling temperature */
    double   rs_top_p;          /* rejection sampling: nucleus */
    char     specials[HERD_PATH_MAX]; /* the tokenizer's special tokens and chat template: a family
                                         ("llama3", "llama3.1", ...) or a tokenizer(_config).json; "": llama3 */
} herd_config_post;

/* The whole run: one struct per YAML section, so that a module takes only the
 * sections it reads. */
typedef struct {
    herd_config_model      model;
    herd_config_optim      optim;
    herd_config_schedule   schedule;
    herd_config_batch      batch;
    herd_config_train      train;
    herd_config_data       data;
    herd_curate_params     curate;
    herd_config_parallel   parallel;
    herd_config_checkpoint checkpoint;
    herd_config_monitor    monitor;
    herd_config_post       post;
} herd_config;

/* Fill `c` with the built-in defaults (the "tiny" preset). */
void herd_config_defaults(herd_config *c);

/* Apply a named preset: model.*, optim.lr and min_lr, schedule.warmup_steps
 * and decay_steps, batch.ramp; records the name in c->preset. Other keys are
 * left alone. -1 (with the valid names printed) if unknown. */
int herd_config_apply_preset(herd_config *c, const char *name);

/* 1 if `name` is a preset, else 0. */
int herd_config_preset_exists(const char *name);

/* The preset names for messages: "tiny, small, 100m, 8b, 70b, 405b". */
const char *herd_config_preset_names(void);

/* Load `path` (YAML) over the current values of `c`. */
int herd_config_load_file(herd_config *c, const char *path);
/* The same from text in memory; `origin` names it in messages. */
int herd_config_load_text(herd_config *c, const char *origin, const char *text, size_t len);

/* Apply one "section.key=value" override; `origin` names it in messages. */
int herd_config_set(herd_config *c, const char *assignment, const char *origin);

/* Check cross-field rules (divisibility, ramp order, ...); `origin` names the
 * source in messages. */
int herd_config_validate(const herd_config *c, const char *origin);

/* defaults < preset (--set model.preset, else the file's model.preset) < file
 * (path may be NULL) < the --set list in order; then validate. */
int herd_config_resolve(herd_config *c, const char *path, int n_sets, char *const *sets);

/* Write the resolved config as YAML that herd_config_load_file reads back. */
int herd_config_write(const herd_config *c, FILE *f);

/* Every key with its type, default and help (herd config --keys). */
void herd_config_print_keys(FILE *f);

#endif
