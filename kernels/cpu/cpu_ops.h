/* cpu_ops.h — the fp32 CPU reference ops (the oracle for every backend).
 * Semantics and shapes: kernels/backend.h. One file per op family. */
#ifndef HERD_CPU_OPS_H
#define HERD_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

/* The matmul state of one CPU backend instance (zero: fp32, no weight copy). */
typedef struct cpu_matmul {
    int bf16;            /* 0 fp32, 1 bf16 inputs with fp32 accumulation */
    const float *w_base; /* the step's weights (weights_bf16_begin .. end), NULL outside */
    size_t w_n, w_cap;
    float *w_round;      /* their bf16 copy, w_cap elements */
} cpu_matmul;

int  cpu_weights_bf16_begin(cpu_matmul *mm, const float *params, size_t n);
void cpu_weights_bf16_end(cpu_matmul *mm);
/* x rounded to the nearest bfloat16 (ties to even), as an fp32 value */
float cpu_round_bf16(float x);
void cpu_matmul_fwd(const cpu_matmul *mm, float *out, const float *a, const float *w, int M, int N,
                    int K, int accumulate);
void cpu_matmul_bwd(const cpu_matmul *mm, float *da, float *dw, const float *dout, const float *a,
                    const float *w, int M, int N, int K, int accumulate_da);
void cpu_embedding_fwd(float *out, const int32_t *tokens, const float *wte, int n, int d);
void cpu_embedding_bwd(float *dwte, const float *dout, const int32_t *tokens, int n, int d);
void cpu_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int n, int d, float eps);
void cpu_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w,
                     const float *rstd, int n, int d);
void cpu_rope_fwd(float *x, const float *cos_sin, const int32_t *pos, int n, int n_heads, int head_dim);
void cpu_rope_bwd(float *dx, const float *cos_sin, const int32_t *pos, int n, int n_heads, int head_dim);
void cpu_attention_fwd(float *out, float *att, const float *q, const float *k, const float *v,
                       const int32_t *doc, int B, int T, int H, int KV, int hd);
void cpu_attention_bwd(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                       const float *att, const float *q, const float *k, const float *v,
                       const int32_t *doc, int B, int T, int H, int KV, int hd);
/* flash pair (kernels/cpu/attention_flash.c): lse[B,H,T] instead of att */
void cpu_attention_flash_fwd(float *out, float *lse, const float *q, const float *k,
                             const float *v, const int32_t *doc, int B, int T, int H, int KV,
                             int hd);
void cpu_attention_flash_bwd(float *dq, float *dk, float *dv, const float *dout,
                             const float *out, const float *lse, const float *q, const float *k,
                             const float *v, const int32_t *doc, int B, int T, int H, int KV,
                             int hd);
void cpu_attention_fwd_pos(float *out, float *att, const float *q, const float *k, const float *v,
                           const int32_t *qpos, const int32_t *qdoc, const int32_t *kpos,
                           const int32_t *kdoc, int B, int Tq, int Tk, int H, int KV, int hd);
void cpu_attention_bwd_pos(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                           const float *att, const float *q, const float *k, const float *v,
                           int B, int Tq, int Tk, int H, int KV, int hd);
void cpu_swiglu_fwd(float *out, const float *gate, const float *up, size_t n);
void cpu_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate,
                    const float *up, size_t n);
void cpu_add_inplace(float *y, const float *x, size_t n);
void cpu_xent_fwd(float *losses, float *lse, const float *logits, const int32_t *targets, int n, int V);
void cpu_xent_bwd(float *logits, const float *lse, const int32_t *targets, int n, int V, float scale);
void cpu_xent_row_max(float *row_max, const float *logits, int n, int V);
void cpu_xent_sumexp_pick(float *sumexp, float *picked, const float *logits, const float *m,
                          const int32_t *targets, int v0, int n, int V);
void cpu_xent_bwd_range(float *logits, const float *lse, const int32_t *targets, int v0, int n,
                        int V, float scale);
void cpu_xent_chunk_update(float *row_max, float *sumexp, float *picked, const float *logits,
                           const int32_t *targets, int v0, int n, int Vc);
void cpu_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
               float beta2, float eps, float wd, float bc1, float bc2, float grad_scale);
double cpu_sumsq(const float *x, size_t n);

#endif
