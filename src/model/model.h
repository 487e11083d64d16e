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
#include "kernels/backend.h"
#include "kernels/comm.h"
#include "topology/recompute.h"
#include "src/config/config.h"

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
    int     tp_primary;    /* 1 on the first of those copies (and CP rank 0): it alone counts it
                              in norms and checkpoints */
} herd_tensor;

typedef struct {
    int n_layers, d_model, n_heads, n_kv_heads, head_dim, ffn_dim, vocab_size;
    int max_seq_len;
    double rope_theta, norm_eps, init_std;
    /* Llama 3.1 RoPE scaling (rope_scale_factor 0: none); see herd_config_model */
    double rope_scale_factor, rope_low_freq_factor, rope_high_freq_factor;
    int    rope_original_max_pos;
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
    float *att;    /* [B, H, T, T] attention probabilities; [B, H, T] log-sum-exp
                      where the backend's flash pair is used (src/model/model.c use_flash) */
    float *o;      /* [N, H*hd] attention output (before wo) */
    float *x_mid;  /* [N, d]    residual after attention */
    float *h2;     /* [N, d]    FFN RMSNorm output */
    float *rstd2;  /* [N] */
    float *gate;   /* [N, F] */
    float *up;     /* [N, F] */
    float *act;    /* [N, F]    silu(gate) * up */
    float *kg, *vg;/* [B, T, KV*hd] keys / values of the whole sequence gathered over CP
                      (CP > 1 only; then att is [B, H, T/CP, T]) */
} herd_layer_acts;

/* One micro-batch's activations for one chunk (a run of contiguous layers;
 * with interleaved pipelining a rank holds V chunks). The pipeline schedule
 * takes a slot per (chunk, micro-batch) in flight and gives it back when its
 * backward is done, so the activation memory of a stage is (slots in use) x
 * (one micro-batch's activations of a chunk); m->peak_slots records the most
 * held at once. Shapes: Nl tokens of the residual stream, N local tokens. */
typedef struct {
    int      chunk, in_use;
    herd_layer_acts *acts;   /* [layers of the chunk] */
    float   *x_out;          /* [Nl, d] output of the chunk's last layer (sent on) */
    float   *d_out;          /* [Nl, d] gradient of x_out (received) */
    float   *d_in;           /* [Nl, d] gradient of the chunk's input (sent back) */
    int32_t *tokens, *targets, *pos, *doc; /* [N] this rank's tokens (CP: two chunks of each
                                              sequence), global positions */
    int32_t *kpos, *kdoc;    /* [B*T] positions / documents of the gathered keys (CP > 1) */
    float   *h_final, *rstd_f, *logits, *losses, *lse; /* head chunk only */
    void    *send_req;       /* a send from d_in / x_out still in flight (src/parallel/pipeline.c) */
    int      row0;           /* the micro-batch's first row in the pipeline's host arrays */
    float   *seq_w;          /* [B] host: each row's weight under a sequence loss (m->seq_loss) */
} herd_act_slot;

/* A loss over whole sequences (post-training objectives): called by the last
 * virtual stage's forward of a micro-batch of B rows starting at row row0.
 *   DPO (m->score_col 0): x[b] is the summed log-probability of row b's
 *     targets (over its CP shards; vocabulary-parallel under TP), n[b] their
 *     count; the backward is that of loss_scale * sum_b weight[b] * (row b's
 *     summed token losses), so weight[b] = d loss / d (-x[b]).
 *   reward model (m->score_col > 0): x[b] is the logit of vocabulary column
 *     score_col at row b's token with target HERD_TARGET_SCORE (a linear head
 *     on its final hidden state), n[b] the count of such tokens (1); the
 *     backward is that of loss_scale * sum_b weight[b] * x[b].
 * Returns the micro-batch's loss and sets weight[]. The same on every TP and
 * CP rank. */
typedef double (*herd_seq_loss_fn)(void *ctx, int row0, const double *x, const int64_t *n,
                                   int B, float *weight);

/* Tensor (and sequence) parallelism of one model replica. */
typedef struct {
    herd_comm *tp;                /* the TP group; NULL: one rank */
    int        sequence_parallel; /* norms and the residual stream split along tokens */
    herd_comm *pp;                /* the pipeline group; NULL: one stage */
    herd_comm *cp;                /* the context-parallel group; NULL: one rank */
    int        virtual_stages;    /* V chunks per pipeline rank (interleaved schedule); 0: 1 */
    int        first_last_fewer;  /* first and last virtual stage hold one layer fewer */
    int        xent_chunk;        /* train.xent_chunk: vocabulary columns per chunk of the
                                     fused output projection + cross-entropy; 0: the whole
                                     [N, Vl] logits are stored (m->logits) */
} herd_model_parallel;

/* The layers of each of n_stages virtual stages, contiguous and in order:
 * first[s], count[s]. Even split, or with first_last_fewer the first and the
 * last stage one layer fewer than the others. -1 with a message naming
 * model.n_layers when it does not split (count 0 or uneven). */
int herd_model_split_layers(int n_layers, int n_stages, int first_last_fewer, int *first,
                            int *count);

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
    herd_layer_params *layer, *g_layer;      /* [n_layers_local] */

    /* pipeline: this rank holds chunks c = 0..n_chunks-1, chunk c being
     * virtual stage c * pp_size + pp_rank (Megatron's interleaving) */
    herd_comm *pp, *cp;        /* NULL when of size 1 */
    int pp_size, pp_rank, cp_size, cp_rank;
    int n_chunks, n_stages, n_layers_local;
    int *chunk_first, *chunk_layers;  /* [n_chunks] local layer index, count */
    int *layer_gid;                   /* [n_layers_local] global layer index */
    int has_embed, has_head;          /* virtual stage 0 / n_stages-1 is here */
    /* gradient-ready hook (the overlapped DP reduction, src/parallel/fsdp.h): when set
     * and grad_final is 1 (the caller's last backward of this chunk in the
     * step), chunk_backward calls it for each group of tensors [t0, t1) whose
     * gradient has just become final: the head, each layer, the embedding */
    void (*grad_ready)(void *ctx, struct herd_model *m, int t0, int t1);
    void *grad_ready_ctx;
    int   grad_final;
    herd_seq_loss_fn seq_loss;        /* NULL: the mean token cross-entropy */
    void *seq_loss_ctx;
    int   score_col;                  /* > 0: seq_loss scores this column (needs stored logits) */
    herd_act_slot *slots;
    int n_slots, slots_in_use, peak_slots;
    int *simple_slot;                 /* [n_chunks] slots of herd_model_forward */

    float *rope_cs;            /* [max_seq_len, hd/2, 2] backend memory */

    /* activations, sized for B x T by herd_model_reserve */
    int B, T, cap_tokens, cap_T, cap_B;
    int N_local;               /* rows of the residual stream here: N / tp with SP, else N */
    int32_t *tokens, *targets, *pos, *doc;     /* [N] backend memory; tokens are local
                                                  vocabulary ids (-1: another rank's) */
    int T_local;               /* tokens of a sequence here: T / CP */
    float *logits;             /* [N, V] of the last herd_model_forward; dlogits after the
                                  backward (a view of its slot); NULL with xent_chunk */
    /* backward scratch */
    float *d_res, *d_h, *d_q, *d_k, *d_v, *d_o, *d_gate, *d_up, *d_act, *d_att;
    float *part;               /* [N, d] partial sums of row-parallel outputs */
    float *d_full;             /* [N, d] gathered d_res (SP); NULL without SP */
    float *d_loc;              /* [N_local, d] reduced d_h (SP); NULL without SP */
    float *xent_tmp;           /* [3N] row max, sum of exp, picked logit */
    int    xent_chunk;         /* > 0 and < vocab_local: the head runs in chunks of this many
                                  vocabulary columns; no slot stores logits and m->logits
                                  stays NULL (generation and reward scoring need 0) */
    float *xent_scratch;       /* [N, xent_chunk] one chunk's logits / dlogits (chunked only) */
    float *d_kg, *d_vg, *cp_tmp; /* [B*T, KVl*hd] CP > 1 only */
    int    have_forward;       /* the activations belong to the last forward */
    /* activation recomputation (HERD_RECOMPUTE_*, herd_model_set_recompute):
     * the dropped tensors of every layer of every slot are views of this one
     * layer's scratch, refilled by the backward before it reads them */
    int    recompute;
    herd_layer_acts rc;        /* SELECTIVE: h1, h2, act; FULL: all but x_in */
    float *rc_out;             /* [Nl, d] FULL: the rerun layer's output (discarded) */
} herd_model;

/* Activation recomputation mode HERD_RECOMPUTE_* (topology/recompute.h) for the
 * activations allocated from now on: call before the first forward (it drops
 * the current activations; -1 while slots are in use or for an unknown mode).
 * The gradients are the same as without recomputation, bit for bit: the
 * backward reruns the same ops on the same inputs. */
int herd_model_set_recompute(herd_model *m, int mode);

/* Derive the dims from a config (head_dim = d_model / n_heads). */
void herd_model_dims_from_config(herd_model_dims *d, const herd_config_model *c);

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

/* ---- the pipeline's pieces (src/parallel/pipeline.c drives them) ----------------
 * A slot holds one micro-batch of one chunk. acquire: -1 when out of memory.
 * set_batch selects this rank's tokens of the host arrays [B*T] (CP: chunks
 * r and 2CP-1-r of every sequence). chunk_forward runs the chunk's layers on
 * the slot's input (the embedding on virtual stage 0, else
 * slot->acts[0].x_in, filled by the caller) into slot->x_out, and on the last
 * virtual stage the loss: it returns the sum of the losses of the micro-batch
 * (summed over CP), 0 elsewhere. chunk_backward takes slot->d_out (ignored on
 * the last virtual stage) and leaves the input's gradient in slot->d_in (not
 * on virtual stage 0); weight gradients accumulate into m->grads. */
int    herd_model_slot_acquire(herd_model *m, int chunk);
void   herd_model_slot_release(herd_model *m, int slot);
int    herd_model_slot_set_batch(herd_model *m, int slot, const int32_t *tokens,
                                 const int32_t *targets, const int32_t *doc, int B, int T);
double herd_model_chunk_forward(herd_model *m, int slot);
void   herd_model_chunk_backward(herd_model *m, int slot, float loss_scale);
/* Elements of a chunk's input / output: [Nl, d] */
size_t herd_model_io_numel(const herd_model *m);
/* The virtual stage of chunk c and the pipeline rank of a virtual stage. */
int herd_model_chunk_stage(const herd_model *m, int chunk);

/* Forward pass on host arrays tokens/targets/doc [B*T] (targets < 0 ignored;
 * positions are 0..T-1 in each sequence). Returns the sum of the per-token
 * losses over non-ignored targets (host float); *n_valid gets their count. */
double herd_model_forward(herd_model *m, const int32_t *tokens,
                          const int32_t *targets, const int32_t *doc,
                          int B, int T, int64_t *n_valid);

/* Give back the slots a herd_model_forward holds for its backward (an
 * evaluation forward has none coming); the pipeline calls it first. */
void herd_model_drop_forward(herd_model *m);

/* With pp > 1 these two run the stages one after the other (blocking
 * point-to-point, no overlap; evaluation and reference use): every rank of the
 * pipeline group calls them and gets the loss.
 * Backward of the last forward; gradients of (loss_scale * summed loss)
 * accumulate into m->grads. */
void herd_model_backward(herd_model *m, float loss_scale);

/* Once per optimizer step, after the last backward: sum the gradients that
 * tensor parallelism leaves partial (norm weights under SP; replicated KV
 * projections) and, with CP, every gradient over the CP group (each CP rank
 * saw a part of every sequence). -1 if a collective failed. */
int herd_model_sync_grads(herd_model *m);
/* The same for tensors [t0, t1) of m->tensors only (the gradient-ready hook). */
int herd_model_sync_grads_range(herd_model *m, int t0, int t1);

/* Zero m->grads. */
void herd_model_zero_grad(herd_model *m);

/* Find a tensor by name; NULL if absent. */
const herd_tensor *herd_model_find(const herd_model *m, const char *name);

/* Inference only (generation, reward scoring): free the gradient buffer, as
 * large as the weights, which a model that never runs a backward does not
 * need. A backward, zero_grad or sync_grads afterwards is an error. */
void herd_model_drop_grads(herd_model *m);

#endif
