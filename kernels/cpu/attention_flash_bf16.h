/* attention_flash_bf16.h — the CPU oracle of the tensor-core flash attention
 * (kernels/cuda/flash_attention_wmma.cu): the flash pair of cpu_ops.h with
 * bf16 GEMM operands and fp32 sums. Shapes: q,out,dq [B,T,H,hd];
 * k,v,dk,dv [B,T,KV,hd]; doc [B,T]; lse [B,H,T]. */
#ifndef HERD_CPU_ATTENTION_FLASH_BF16_H
#define HERD_CPU_ATTENTION_FLASH_BF16_H

#include <stdint.h>

/* the head sizes the tensor-core kernels take (cuda_attention_flash_wmma_ok) */
#define HERD_FLASH_BF16_OK(hd) ((hd) % 16 == 0 && (hd) >= 16 && (hd) <= 128)

/* key tile of the forward (its online-softmax rescale points) */
#define HERD_FLASH_BF16_KTILE 64

void cpu_attention_flash_bf16_fwd(float *out, float *lse, const float *q, const float *k,
                                  const float *v, const int32_t *doc, int B, int T, int H,
                                  int KV, int hd);
void cpu_attention_flash_bf16_bwd(float *dq, float *dk, float *dv, const float *dout,
                                  const float *out, const float *lse, const float *q,
                                  const float *k, const float *v, const int32_t *doc, int B,
                                  int T, int H, int KV, int hd);

#endif
