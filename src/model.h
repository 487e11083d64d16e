/* model.h — the Llama 3 architecture, written once over kernels/backend.h.
 *
 *   tokens -> embedding -> L x [ RMSNorm -> GQA attention (RoPE, causal +
 *   document mask) -> residual -> RMSNorm -> SwiGLU -> residual ]
 *   -> RMSNorm -> output projection (untied) -> cross-entropy
 *
 * All parameters live in one contiguous buffer (`params`, same layout for
 * `grads`), described by a table of named tensors with Hugging Face Llama
 * names (model.layers.0.self_attn.q_proj.weight, ...), so that the optimizer,
 * the gradient norm and checkpoints walk one array.
 */
#ifndef HERD_MODEL_H
#define HERD_MODEL_H

#include <stdint.h>
#include "config.h"
#include "comm.h"
#include "../kernels/backend.h"

/* How a tensor is cut across the tensor-parallel group (Megatron):
 * column-parallel weights (q, k, v, gate, up, the vocabulary rows of the
 * embedding and the output projection) split their rows, row-parallel ones
 * (o, down) their columns; norm weights are whole on every rank. */
typedef enum { HERD_TP_WHOLE = 0, HERD_TP_ROWS = 1, HERD_TP_COLS = 2 } herd_tp_split;

typedef struct {
    char    name[64];      /* Hugging Face Llama name */
    int64_t offset;        /* in floats, into params / grads */
    int64_t numel;
    int     ndim;          /* 1 or 2 */
    int64_t shape[2];      /* [out, in] for matrices, [d] for norm weights */
    int     decay;         /* 1: weight decay applies (weight matrices) */
    /* this rank's piece of the whole tensor */
    int64_t global_shape[2]; /* the whole tensor ([d] for norms: [d, 0]) */
    int64_t global_offset[2];/* where shape[] starts inside it */
    herd_tp_split split;
    int     tp_copies;     /* TP ranks holding this same piece (whole: tp; replicated KV: tp/kv) */
    int     tp_primary;    /* 1 on the first of those copies: it alone counts it in norms and checkpoints */
} herd_tensor;

typedef struct {
    int n_layers, d_model, n_heads, n_kv_heads, head_dim, ffn_dim, vocab_size;
    int max_seq_len;
    double rope_theta, norm_eps, init_std;
} herd_model_dims;

/* Per-layer parameter pointers into `params` (and the same into `grads`). */
typedef struct {
    float *attn_norm;   /* [d] */
    float *wq;          /* [H*hd, d] */
    float *wk;          /* [KV*hd, d] */
    float *wv;          /* [KV*hd, d] */
    float *wo;          /* [d, H*hd] */
    float *ffn_norm;    /* [d] */
    float *w_gate;      /* [F, d] */
    float *w_up;        /* [F, d] */
    float *w_down;      /* [d, F] */
} herd_layer_params;

/* Activations of one layer, saved by the forward for the backward. */
typedef struct {
    float *x_in;   /* [N, d]    residual stream entering the layer */
    float *h1;     /* [N, d]    attention RMSNorm output */
    float *rstd1;  /* [N] */
    float *q;      /* [N, H*hd] after RoPE */
    float *k;      /* [N, KV*hd] after RoPE */
    float *v;      /* [N, KV*hd] */
    float *att;    /* [B, H, T, T] attention probabilities */
    float *o;      /* [N, H*hd] attention output (before wo) */
    float *x_mid;  /* [N, d]    residual after attention */
    float *h2;     /* [N, d]    FFN RMSNorm output */
    float *rstd2;  /* [N] */
    float *gate;   /* [N, F] */
    float *up;     /* [N, F] */
    float *act;    /* [N, F]    silu(gate) * up */
} herd_layer_acts;

/* Tensor (and sequence) parallelism of one model replica. */
typedef struct {
    herd_comm *tp;                /* the TP group; NULL: one rank */
    int        sequence_parallel; /* norms and the residual stream split along tokens */
} herd_model_parallel;

typedef struct herd_model {
    herd_model_dims     dims;
    const herd_backend *be;
    /* tensor parallel: this rank's share of heads, ffn and vocabulary */
    herd_comm *tp;              /* NULL when tp_size == 1 */
    herd_comm *kv_group;        /* TP ranks sharing a replicated KV head (tp > n_kv_heads) */
    int   tp_size, tp_rank, sp;
    int   n_heads_local, n_kv_local, ffn_local, vocab_local, vocab_start;

    int          n_tensors;
    herd_tensor *tensors;
    int64_t      n_params;
    float       *params;       /* backend memory [n_params] */
    float       *grads;        /* backend memory [n_params] */

    /* views into params / grads */
    float *wte, *norm_f, *lm_head;             /* [V,d], [d], [V,d] */
    float *g_wte, *g_norm_f, *g_lm_head;
    herd_layer_params *layer, *g_layer;

    float *rope_cs;            /* [max_seq_len, hd/2, 2] backend memory */

    /* activations, sized for B x T by herd_model_reserve */
    int B, T, cap_tokens, cap_T, cap_B;
    int N_local;               /* rows of the residual stream here: N / tp with SP, else N */
    int32_t *tokens, *targets, *pos, *doc;     /* [N] backend memory; tokens are local
                                                  vocabulary ids (-1: another rank's) */
    herd_layer_acts *acts;     /* [n_layers] */
    float *x_final;            /* [N, d] residual after the last layer */
    float *h_final, *rstd_f;   /* [N, d], [N] */
    float *logits;             /* [N, V]; dlogits after the backward */
    float *losses, *lse;       /* [N] */
    /* backward scratch */
    float *d_res, *d_h, *d_q, *d_k, *d_v, *d_o, *d_gate, *d_up, *d_act, *d_att;
    float *part;               /* [N, d] partial sums of row-parallel outputs */
    float *d_full;             /* [N, d] gathered d_res (SP); NULL without SP */
    float *d_loc;              /* [N_local, d] reduced d_h (SP); NULL without SP */
    float *xent_tmp;           /* [3N] row max, sum of exp, picked logit */
    int    have_forward;       /* the activations belong to the last forward */
} herd_model;

/* Derive the dims from a config (head_dim = d_model / n_heads). */
void herd_model_dims_from_config(herd_model_dims *d, const herd_config *c);

/* Number of parameters used in matrix multiplies (DESIGN.md's P_matmul):
 * every weight matrix incl. the output projection, excl. embedding and norms. */
int64_t herd_model_dims_matmul_params(const herd_model_dims *d);

/* Total number of parameters. */
int64_t herd_model_dims_total_params(const herd_model_dims *d);

/* Allocate the parameters on `be` and initialise them from `seed`
 * (normal(0, init_std) for matrices, output-side matrices wo / w_down scaled by
 * 1/sqrt(2 n_layers), norm weights 1). The init of each element depends only
 * on (seed, tensor name, element index), never on the layout. */
int herd_model_create(herd_model *m, const herd_model_dims *d,
                      const herd_backend *be, uint64_t seed);
/* The same with tensor / sequence parallelism: this rank holds and
 * initialises only its slice of every tensor (identical to the same slice of
 * a one-rank model). par may be NULL (one rank). */
int herd_model_create_parallel(herd_model *m, const herd_model_dims *d,
                               const herd_backend *be, uint64_t seed,
                               const herd_model_parallel *par);
void herd_model_destroy(herd_model *m);

/* Make room for micro-batches of B sequences of T tokens. */
int herd_model_reserve(herd_model *m, int B, int T);

/* Forward pass on host arrays tokens/targets/doc [B*T] (targets < 0 ignored;
 * positions are 0..T-1 in each sequence). Returns the sum of the per-token
 * losses over non-ignored targets (host float); *n_valid gets their count. */
double herd_model_forward(herd_model *m, const int32_t *tokens,
                          const int32_t *targets, const int32_t *doc,
                          int B, int T, int64_t *n_valid);

/* Backward of the last forward; gradients of (loss_scale * summed loss)
 * accumulate into m->grads. */
void herd_model_backward(herd_model *m, float loss_scale);

/* Once per optimizer step, after the last backward: sum the gradients that
 * tensor parallelism leaves partial (norm weights under SP; replicated KV
 * projections). -1 if a collective failed. */
int herd_model_sync_grads(herd_model *m);

/* Zero m->grads. */
void herd_model_zero_grad(herd_model *m);

/* Find a tensor by name; NULL if absent. */
const herd_tensor *herd_model_find(const herd_model *m, const char *name);

#endif
