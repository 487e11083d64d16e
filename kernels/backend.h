/* backend.h — the compute backend the model is written against: an instance
 * holding a table of ops and their state.
 *
 * The model (src/model/model.c) is written once over this interface. A backend
 * is an instance made by herd_backend_create: a table of ops and the state the
 * ops share (the matmul precision, the bf16 weight copy, scratch buffers, the
 * memory ledger), so one process may hold several (an fp32 and a bf16 CPU
 * backend side by side, say). Every op takes its instance first:
 * be->matmul_fwd(be, ...). A copy of the struct with one op replaced (a
 * wrapper, as src/post/post_backward.c makes) shares the original's state: the
 * copy is passed to the ops as `be` and is never freed itself.
 *
 * kernels/cpu is the fp32 reference and the oracle for every other backend
 * (kernels/cuda): each GPU op is tested against the CPU op of the same name.
 *
 * Conventions:
 *  - every float / int32 pointer is backend memory (device memory on CUDA),
 *    obtained from `alloc`; host data moves with copy_h2d / copy_d2h;
 *  - matrices are row-major; a weight of a linear layer is W[out, in] and the
 *    layer computes y = x W^T (as torch.nn.Linear, no bias);
 *  - N = B*T tokens; shapes are written [rows, cols] in the comments;
 *  - "accumulate" means out += result, otherwise out = result; weight
 *    gradients always accumulate (gradient accumulation over micro-batches).
 */
#ifndef HERD_BACKEND_H
#define HERD_BACKEND_H

/* A target below 0 is ignored by the cross-entropy; this one also marks the
 * token whose final hidden state a reward model scores (src/model/model.h
 * score_col). */
#define HERD_TARGET_SCORE (-2)

#include <stddef.h>
#include <stdint.h>

typedef struct herd_backend herd_backend;

/* What herd_backend_create takes; zero-initialized means the defaults. */
typedef struct herd_backend_options {
    int matmul_bf16; /* the initial set_matmul_bf16 (0: fp32) */
    int device;      /* CUDA: the device (index among the visible ones) made current
                        (cudaSetDevice) before the instance allocates anything; one
                        device per process (src/parallel/placement.c picks it) */
} herd_backend_options;

struct herd_backend {
    const char *name;
    void *state; /* the instance's own (the backend's type), freed by herd_backend_free */
    void (*destroy)(herd_backend *be); /* herd_backend_free's work */

    /* memory; alloc is zero-filled, NULL on failure */
    void *(*alloc)(const herd_backend *be, size_t bytes);
    void  (*free)(const herd_backend *be, void *p);
    void  (*copy_h2d)(const herd_backend *be, void *dst, const void *src, size_t bytes);
    void  (*copy_d2h)(const herd_backend *be, void *dst, const void *src, size_t bytes);
    void  (*copy_d2d)(const herd_backend *be, void *dst, const void *src, size_t bytes);
    void  (*zero)(const herd_backend *be, float *x, size_t n);
    void  (*synchronize)(const herd_backend *be);

    /* out[M,N] (+)= a[M,K] @ w[N,K]^T */
    void (*matmul_fwd)(const herd_backend *be, float *out, const float *a, const float *w,
                       int M, int N, int K, int accumulate);
    /* da[M,K] (+)= dout[M,N] @ w[N,K]        (skipped when da is NULL)
     * dw[N,K]  += dout[M,N]^T @ a[M,K]       (skipped when dw is NULL) */
    void (*matmul_bwd)(const herd_backend *be, float *da, float *dw, const float *dout,
                       const float *a, const float *w, int M, int N, int K, int accumulate_da);

    /* out[n,d] = wte[tokens[i], :]; a row whose token is < 0 is zero (the
     * token lives in another rank's slice of a vocabulary-parallel table) */
    void (*embedding_fwd)(const herd_backend *be, float *out, const int32_t *tokens,
                          const float *wte, int n, int d);
    /* dwte[tokens[i], :] += dout[i, :]; tokens < 0 are skipped */
    void (*embedding_bwd)(const herd_backend *be, float *dwte, const float *dout,
                          const int32_t *tokens, int n, int d);

    /* out[n,d] = x * rstd * w, rstd[n] = 1/sqrt(mean(x^2) + eps) */
    void (*rmsnorm_fwd)(const herd_backend *be, float *out, float *rstd, const float *x,
                        const float *w, int n, int d, float eps);
    /* dx[n,d] += d/dx, dw[d] += d/dw */
    void (*rmsnorm_bwd)(const herd_backend *be, float *dx, float *dw, const float *dout,
                        const float *x, const float *w, const float *rstd, int n, int d);

    /* In-place rotary embedding of x[n, n_heads, head_dim] (the rotate-half
     * convention of Hugging Face Llama: pairs (i, i + head_dim/2)).
     * cos_sin[max_pos, head_dim/2, 2] holds cos and sin of pos * theta^(-2i/head_dim);
     * pos[n] is each token's position. rope_bwd applies the inverse rotation. */
    void (*rope_fwd)(const herd_backend *be, float *x, const float *cos_sin, const int32_t *pos,
                     int n, int n_heads, int head_dim);
    void (*rope_bwd)(const herd_backend *be, float *dx, const float *cos_sin, const int32_t *pos,
                     int n, int n_heads, int head_dim);

    /* Causal, document-masked grouped-query attention.
     * q[B,T,H,hd], k,v[B,T,KV,hd], doc[B,T]; query head h uses kv head h/(H/KV).
     * Token i attends to token j iff j <= i and doc[j] == doc[i].
     * out[B,T,H,hd]; att[B,H,T,T] keeps the probabilities for the backward. */
    void (*attention_fwd)(const herd_backend *be, float *out, float *att, const float *q,
                          const float *k, const float *v, const int32_t *doc, int B, int T, int H,
                          int KV, int hd);
    /* dq = grad (overwritten); dk, dv overwritten; scratch[T,T] backend memory. */
    void (*attention_bwd)(const herd_backend *be, float *dq, float *dk, float *dv, float *scratch,
                          const float *dout, const float *att, const float *q,
                          const float *k, const float *v, const int32_t *doc,
                          int B, int T, int H, int KV, int hd);

    /* The same with explicit positions and documents (context parallelism:
     * the keys are the whole sequence gathered from the CP group, the queries
     * this rank's chunks). q[B,Tq,H,hd], k,v[B,Tk,KV,hd], qpos,qdoc[B,Tq],
     * kpos,kdoc[B,Tk] (backend memory). Query i attends to key j iff
     * kpos[j] <= qpos[i] and kdoc[j] == qdoc[i]; every query must see at least
     * one key (its own). att[B,H,Tq,Tk]. */
    void (*attention_fwd_pos)(const herd_backend *be, float *out, float *att, const float *q,
                              const float *k, const float *v, const int32_t *qpos,
                              const int32_t *qdoc, const int32_t *kpos, const int32_t *kdoc, int B,
                              int Tq, int Tk, int H, int KV, int hd);
    /* dq, dk, dv overwritten; scratch[Tq,Tk] backend memory; the mask is in att. */
    void (*attention_bwd_pos)(const herd_backend *be, float *dq, float *dk, float *dv,
                              float *scratch, const float *dout, const float *att, const float *q,
                              const float *k, const float *v, int B, int Tq, int Tk, int H, int KV,
                              int hd);

    /* out[n] = silu(gate) * up */
    void (*swiglu_fwd)(const herd_backend *be, float *out, const float *gate, const float *up,
                       size_t n);
    /* dgate, dup overwritten */
    void (*swiglu_bwd)(const herd_backend *be, float *dgate, float *dup, const float *dout,
                       const float *gate, const float *up, size_t n);

    /* y[n] += x[n] */
    void (*add_inplace)(const herd_backend *be, float *y, const float *x, size_t n);

    /* Cross-entropy of logits[n,V] against targets[n] (target < 0: ignored, loss 0).
     * losses[n] = lse - logit[target]; lse[n] = logsumexp of the row. */
    void (*xent_fwd)(const herd_backend *be, float *losses, float *lse, const float *logits,
                     const int32_t *targets, int n, int V);
    /* logits[n,V] <- (softmax - onehot(target)) * scale, in place; ignored rows 0 */
    void (*xent_bwd)(const herd_backend *be, float *logits, const float *lse,
                     const int32_t *targets, int n, int V, float scale);

    /* Vocabulary-parallel cross-entropy, in three pieces around the
     * all-reduces of the tensor-parallel group (with one rank they are the
     * whole thing). This rank holds the logits of ids [v0, v0 + V).
     * row_max[n] = max over the row's V columns. */
    void (*xent_row_max)(const herd_backend *be, float *row_max, const float *logits, int n, int V);
    /* sumexp[n] = sum_j exp(logits[i,j] - m[i]) (summed in double);
     * picked[n] = logits[i, targets[i] - v0] when v0 <= targets[i] < v0 + V, else 0 */
    void (*xent_sumexp_pick)(const herd_backend *be, float *sumexp, float *picked,
                             const float *logits, const float *m, const int32_t *targets, int v0,
                             int n, int V);
    /* logits[n,V] <- (exp(logits - lse) - [j == targets[i] - v0]) * scale in
     * place; rows with targets[i] < 0 (ignored) become 0 */
    void (*xent_bwd_range)(const herd_backend *be, float *logits, const float *lse,
                           const int32_t *targets, int v0, int n, int V, float scale);
    /* Online softmax over vocabulary chunks (cross-entropy fused with the
     * output projection: the [n, V] logits are never stored whole). logits[n,Vc]
     * are the columns of ids [v0, v0 + Vc); per row, with m_c = max of the
     * chunk and m_new = max(row_max, m_c):
     *   sumexp  <- sumexp * exp(row_max - m_new) + sum_j exp(logits[i,j] - m_new)
     *   row_max <- m_new
     *   picked  <- logits[i, targets[i] - v0] when v0 <= targets[i] < v0 + Vc
     *              (untouched otherwise)
     * Start with row_max = -inf, sumexp = 0, picked = 0; after the last chunk
     * they are xent_row_max / xent_sumexp_pick of the whole slice. The chunk's
     * exponentials are summed in double. row_max, sumexp, picked: [n]. */
    void (*xent_chunk_update)(const herd_backend *be, float *row_max, float *sumexp, float *picked,
                              const float *logits, const int32_t *targets, int v0, int n,
                              int Vc);

    /* AdamW on one tensor (torch.optim.AdamW semantics), gradient pre-multiplied
     * by grad_scale (clipping); bc1 = 1 - beta1^t, bc2 = 1 - beta2^t. */
    void (*adamw)(const herd_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                  float lr, float beta1, float beta2, float eps, float wd,
                  float bc1, float bc2, float grad_scale);

    /* sum of squares, accumulated in double in a fixed order (deterministic) */
    double (*sumsq)(const herd_backend *be, const float *x, size_t n);

    /* ---- optional (NULL / 0 where a backend lacks them) --------------------- */

    /* Flash attention: attention_fwd's semantics (causal, document mask, GQA)
     * without the [B,H,T,T] probabilities: tiled over query and key blocks with
     * an online softmax, it keeps only lse[B,H,T] = logsumexp over the allowed
     * keys of the scaled scores q.k/sqrt(hd), and the backward recomputes the
     * probabilities from it. Key tiles that the mask empties are skipped. */
    void (*attention_flash_fwd)(const herd_backend *be, float *out, float *lse, const float *q,
                                const float *k, const float *v, const int32_t *doc, int B, int T,
                                int H, int KV, int hd);
    /* dq, dk, dv overwritten; out and lse are the forward's. */
    void (*attention_flash_bwd)(const herd_backend *be, float *dq, float *dk, float *dv,
                                const float *dout, const float *out, const float *lse,
                                const float *q, const float *k, const float *v, const int32_t *doc,
                                int B, int T, int H, int KV, int hd);
    /* 1: the model should use the flash pair (CUDA); 0: the materialized one
     * (CPU, whose flash pair exists as the oracle of the GPU's) */
    int prefer_flash;
    /* 1: in bf16 mode use the flash pair even so (CPU: its flash pair then runs
     * the bf16 oracle of the GPU's tensor-core attention, so that a bf16 model
     * step on the CPU has the GPU's numerics). The model sizes its buffers for
     * prefer_flash alone, so this may only ever take less memory. */
    int prefer_flash_bf16;
    /* the precision set_matmul_bf16 (or the options) set last (NULL: fp32 only) */
    int (*get_matmul_bf16)(const herd_backend *be);
    /* device memory in use, bytes (the whole device's, cudaMemGetInfo) */
    size_t (*mem_in_use)(const herd_backend *be);
    /* bytes this backend's alloc has handed out and not freed (its scratch
     * included), and the most at once since the last reset; reset != 0 starts
     * the peak again from the current bytes (kernels/memstat.h) */
    size_t (*mem_allocated)(const herd_backend *be);
    size_t (*mem_peak)(const herd_backend *be, int reset);
    /* The precision of this instance's matmul_fwd / matmul_bwd from now on (train.precision):
     * 0 fp32; 1 BF16 compute: every GEMM input (weights, activations and
     * their gradients) is rounded to bfloat16 (to nearest, ties to even), the
     * products are accumulated in fp32 and the outputs, the master weights,
     * the gradients and the optimizer state stay fp32 (the paper's mixed
     * precision; torch.set_float32_matmul_precision("medium") is the same idea).
     * Attention, norms and the rest stay fp32. NULL: fp32 only. */
    void (*set_matmul_bf16)(const herd_backend *be, int on);
    /* BF16 weights rounded once per step instead of at every GEMM (bf16 mode
     * only; NULL: the backend has none). weights_bf16_begin rounds params[n]
     * into a bf16 copy the instance keeps; until weights_bf16_end, a GEMM input
     * that lies inside params[0, n) is read from that copy (the same values it
     * would round itself). The caller must not change params in between: the
     * trainer brackets a step's forwards and backwards, before the optimizer.
     * -1 (with a message) when the copy does not fit. */
    int  (*weights_bf16_begin)(const herd_backend *be, const float *params, size_t n);
    void (*weights_bf16_end)(const herd_backend *be);
};

/* A new backend instance by name ("cpu", "cuda"); opt may be NULL (defaults).
 * NULL with a message on stderr when the name is unknown, the backend is not
 * built or has no device, or memory runs out. */
herd_backend *herd_backend_create(const char *name, const herd_backend_options *opt);
/* Frees the instance and its state (NULL: nothing). The memory its alloc
 * handed out must have been freed with it before. */
void herd_backend_free(herd_backend *be);

/* Each backend's own constructor (herd_backend_create dispatches to them). */
herd_backend *herd_backend_cpu_create(const herd_backend_options *opt);
herd_backend *herd_backend_cuda_create(const herd_backend_options *opt);

/* The CUDA devices this process sees (CUDA_VISIBLE_DEVICES applied), in
 * CUDA's device order: busid[d] is device d's PCI bus id as CUDA gives it
 * ("0000:1B:00.0"). Returns how many (at most max); 0 without CUDA, a driver
 * or a device. */
int herd_backend_cuda_devices(char (*busid)[16], int max);

/* The process's default instance of a backend, created with the default
 * options on first use and never freed: for callers that need one backend
 * (the trainer, tests). NULL if unavailable (the CUDA one without a device). */
const herd_backend *herd_backend_get(const char *name);
const herd_backend *herd_backend_cpu(void);
const herd_backend *herd_backend_cuda(void);

#endif
