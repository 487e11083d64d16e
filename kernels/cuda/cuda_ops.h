/* cuda_ops.h — the fp32 CUDA ops; semantics and shapes: kernels/backend.h.
 * Each takes its backend instance first (the state: kernels/cuda/cuda_common.h). */
#ifndef HERD_CUDA_OPS_H
#define HERD_CUDA_OPS_H

#include <stddef.h>
#include <stdint.h>
#include "kernels/backend.h"

void cuda_matmul_fwd(const herd_backend *be, float *out, const float *a, const float *w, int M,
                     int N, int K, int accumulate);
void cuda_matmul_bwd(const herd_backend *be, float *da, float *dw, const float *dout,
                     const float *a, const float *w, int M, int N, int K, int accumulate_da);
void cuda_embedding_fwd(const herd_backend *be, float *out, const int32_t *tokens, const float *wte,
                        int n, int d);
void cuda_embedding_bwd(const herd_backend *be, float *dwte, const float *dout,
                        const int32_t *tokens, int n, int d);
void cuda_rmsnorm_fwd(const herd_backend *be, float *out, float *rstd, const float *x,
                      const float *w, int n, int d, float eps);
void cuda_rmsnorm_bwd(const herd_backend *be, float *dx, float *dw, const float *dout,
                      const float *x, const float *w, const float *rstd, int n, int d);
void cuda_rope_fwd(const herd_backend *be, float *x, const float *cos_sin, const int32_t *pos,
                   int n, int n_heads, int head_dim);
void cuda_rope_bwd(const herd_backend *be, float *dx, const float *cos_sin, const int32_t *pos,
                   int n, int n_heads, int head_dim);
void cuda_attention_fwd(const herd_backend *be, float *out, float *att, const float *q,
                        const float *k, const float *v, const int32_t *doc, int B, int T, int H,
                        int KV, int hd);
void cuda_attention_fwd_pos(const herd_backend *be, float *out, float *att, const float *q,
                            const float *k, const float *v, const int32_t *qpos,
                            const int32_t *qdoc, const int32_t *kpos, const int32_t *kdoc, int B,
                            int Tq, int Tk, int H, int KV, int hd);
void cuda_attention_bwd_pos(const herd_backend *be, float *dq, float *dk, float *dv, float *scratch,
                            const float *dout, const float *att, const float *q, const float *k,
                            const float *v, int B, int Tq, int Tk, int H, int KV, int hd);
void cuda_attention_bwd(const herd_backend *be, float *dq, float *dk, float *dv, float *scratch,
                        const float *dout, const float *att, const float *q, const float *k,
                        const float *v, const int32_t *doc, int B, int T, int H, int KV, int hd);
void cuda_swiglu_fwd(const herd_backend *be, float *out, const float *gate, const float *up,
                     size_t n);
void cuda_swiglu_bwd(const herd_backend *be, float *dgate, float *dup, const float *dout,
                     const float *gate, const float *up, size_t n);
void cuda_add_inplace(const herd_backend *be, float *y, const float *x, size_t n);
void cuda_xent_fwd(const herd_backend *be, float *losses, float *lse, const float *logits,
                   const int32_t *targets, int n, int V);
void cuda_xent_row_max(const herd_backend *be, float *row_max, const float *logits, int n, int V);
void cuda_xent_sumexp_pick(const herd_backend *be, float *sumexp, float *picked,
                           const float *logits, const float *m, const int32_t *targets, int v0,
                           int n, int V);
void cuda_xent_bwd_range(const herd_backend *be, float *logits, const float *lse,
                         const int32_t *targets, int v0, int n, int V, float scale);
void cuda_xent_chunk_update(const herd_backend *be, float *row_max, float *sumexp, float *picked,
                            const float *logits, const int32_t *targets, int v0, int n, int Vc);
void cuda_xent_bwd(const herd_backend *be, float *logits, const float *lse, const int32_t *targets,
                   int n, int V, float scale);
void cuda_adamw(const herd_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                float lr, float beta1, float beta2, float eps, float wd, float bc1, float bc2,
                float grad_scale);
double cuda_sumsq(const herd_backend *be, const float *x, size_t n);
/* flash pair (kernels/cuda/flash_attention.cu): lse[B,H,T] instead of att */
void cuda_attention_flash_fwd(const herd_backend *be, float *out, float *lse, const float *q,
                              const float *k, const float *v, const int32_t *doc, int B, int T,
                              int H, int KV, int hd);
void cuda_attention_flash_bwd(const herd_backend *be, float *dq, float *dk, float *dv,
                              const float *dout, const float *out, const float *lse, const float *q,
                              const float *k, const float *v, const int32_t *doc, int B, int T,
                              int H, int KV, int hd);

/* BF16 (kernels/cuda/matmul_lt.cu, cuBLASLt): bf16 inputs, fp32 accumulate and output.
 * out[M,N] (+)= a[M,K] @ w[N,K]^T; a, w hold __nv_bfloat16 (2 bytes each). */
void cuda_matmul_bf16_fwd(const herd_backend *be, float *out, const void *a, const void *w, int M,
                          int N, int K, int accumulate);
/* column-major C[m,n] = op(A) op(B) + beta C, A/B bf16, C fp32 (as cublasSgemm) */
void cuda_lt_gemm_bf16(const herd_backend *be, int transa, int transb, int m, int n, int k,
                       const void *A, int lda, const void *B, int ldb, float beta, float *C,
                       int ldc);
/* matmul_fwd/bwd precision: 0 fp32 sgemm, 1 bf16 inputs through cuBLASLt */
void cuda_set_matmul_bf16(const herd_backend *be, int on);
/* the precision set last (flash attention follows it) */
int cuda_get_matmul_bf16(const herd_backend *be);
/* the step's bf16 weights (weights_bf16.cu; backend.h weights_bf16_begin/end);
 * find: the copy of x[n] when it lies inside them, NULL otherwise */
int  cuda_weights_bf16_begin(const herd_backend *be, const float *params, size_t n);
void cuda_weights_bf16_end(const herd_backend *be);
const void *cuda_weights_bf16_find(const herd_backend *be, const float *x, size_t n);
void cuda_f32_to_bf16(void *dst, const float *src, size_t n); /* round to nearest even */
void cuda_bf16_to_f32(float *dst, const void *src, size_t n);

/* The flash pair on tensor cores (kernels/cuda/flash_attention_wmma.cu): bf16
 * operands, fp32 sums, softmax and lse in fp32; cuda_attention_flash_fwd/bwd call
 * it in bf16 mode when ..._ok(hd) (hd a multiple of 16, <= 128).
 * D[B,H,T] = rowsum(dout * out), as flash_attention.cu computes it. */
int cuda_attention_flash_wmma_ok(int hd);
void cuda_attention_flash_wmma_fwd(float *out, float *lse, const float *q, const float *k,
                                   const float *v, const int32_t *doc, int B, int T, int H,
                                   int KV, int hd);
void cuda_attention_flash_wmma_bwd(float *dq, float *dk, float *dv, const float *dout,
                                   const float *lse, const float *D, const float *q,
                                   const float *k, const float *v, const int32_t *doc, int B,
                                   int T, int H, int KV, int hd);

#endif
