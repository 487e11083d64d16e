// attention_pos.cu — grouped-query attention with explicit query / key
// positions and documents (context parallelism), the algorithm of
// kernels/cpu/attention_pos.c on the GPU: per (b, h) cuBLAS products on
// strided views, a masked softmax kernel over rows of att[B,H,Tq,Tk].
// Row-major X[r,c] (ld L) is cuBLAS's column-major X^T, so C = A B is issued as
// C^T = B^T A^T (see matmul.cu).
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

enum { ATTP_THREADS = 128 };

// One block per row (b, h, i) of att; allowed j: kpos[j] <= qpos[i] and
// kdoc[j] == qdoc[i]; masked entries exactly 0.
__global__ void masked_softmax_pos_kernel(float *att, const int32_t *qpos, const int32_t *qdoc,
                                          const int32_t *kpos, const int32_t *kdoc, int Tq,
                                          int Tk, int H)
{
    size_t r = blockIdx.x;
    int i = (int)(r % Tq), b = (int)(r / Tq / H);
    float *row = att + r * Tk;
    int32_t pi = qpos[(size_t)b * Tq + i], di = qdoc[(size_t)b * Tq + i];
    const int32_t *kp = kpos + (size_t)b * Tk, *kd = kdoc + (size_t)b * Tk;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < Tk; j += blockDim.x)
        if (kp[j] <= pi && kd[j] == di) mx = fmaxf(mx, row[j]);
    mx = herd_block_max(mx);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < Tk; j += blockDim.x) {
        float e = (kp[j] <= pi && kd[j] == di) ? expf(row[j] - mx) : 0.0f;
        row[j] = e;
        sum += e;
    }
    sum = herd_block_sum(sum);
    float inv = 1.0f / sum;
    for (int j = threadIdx.x; j < Tk; j += blockDim.x) row[j] *= inv;
}

// dS = P * (dP - rowsum(P * dP)) in place over dP[Tq,Tk], one block per row.
__global__ void softmax_bwd_pos_kernel(float *dP, const float *P, int Tk)
{
    float *d = dP + (size_t)blockIdx.x * Tk;
    const float *p = P + (size_t)blockIdx.x * Tk;
    float dot = 0.0f;
    for (int j = threadIdx.x; j < Tk; j += blockDim.x) dot += p[j] * d[j];
    dot = herd_block_sum(dot);
    for (int j = threadIdx.x; j < Tk; j += blockDim.x) d[j] = p[j] * (d[j] - dot);
}

extern "C" void cuda_attention_fwd_pos(const herd_backend *be, float *out, float *att,
                                       const float *q, const float *k, const float *v,
                                       const int32_t *qpos, const int32_t *qdoc,
                                       const int32_t *kpos, const int32_t *kdoc, int B, int Tq,
                                       int Tk, int H, int KV, int hd)
{
    if (B <= 0 || Tq <= 0 || Tk <= 0 || H <= 0 || KV <= 0 || hd <= 0) return;
    cublasHandle_t hb = herd_cuda_blas();
    const float scale = 1.0f / sqrtf((float)hd), one = 1.0f, zero = 0.0f;
    const int group = H / KV;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / group;
            const float *Q = q + ((size_t)b * Tq * H + h) * hd;
            const float *K = k + ((size_t)b * Tk * KV + g) * hd;
            float *S = att + ((size_t)b * H + h) * Tq * Tk;
            // S[Tq,Tk] = scale Q K^T   <=>   S^T = scale K Q^T
            CUBLAS_CHECK(cublasSgemm(hb, CUBLAS_OP_T, CUBLAS_OP_N, Tk, Tq, hd, &scale, K, KV * hd,
                                     Q, H * hd, &zero, S, Tk));
        }
    masked_softmax_pos_kernel<<<(unsigned)((size_t)B * H * Tq), ATTP_THREADS>>>(
        att, qpos, qdoc, kpos, kdoc, Tq, Tk, H);
    CUDA_LAUNCH_CHECK();
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / group;
            const float *P = att + ((size_t)b * H + h) * Tq * Tk;
            const float *V = v + ((size_t)b * Tk * KV + g) * hd;
            float *O = out + ((size_t)b * Tq * H + h) * hd;
            // O[Tq,hd] = P V   <=>   O^T = V^T P^T
            CUBLAS_CHECK(cublasSgemm(hb, CUBLAS_OP_N, CUBLAS_OP_N, hd, Tq, Tk, &one, V, KV * hd, P,
                                     Tk, &zero, O, H * hd));
        }
}

extern "C" void cuda_attention_bwd_pos(const herd_backend *be, float *dq, float *dk, float *dv,
                                       float *scratch, const float *dout, const float *att,
                                       const float *q, const float *k, const float *v, int B,
                                       int Tq, int Tk, int H, int KV, int hd)
{
    if (B <= 0 || Tq <= 0 || Tk <= 0 || H <= 0 || KV <= 0 || hd <= 0) return;
    cublasHandle_t hb = herd_cuda_blas();
    const float scale = 1.0f / sqrtf((float)hd), one = 1.0f, zero = 0.0f;
    const int group = H / KV;
    CUDA_CHECK(cudaMemset(dk, 0, sizeof(float) * (size_t)B * Tk * KV * hd));
    CUDA_CHECK(cudaMemset(dv, 0, sizeof(float) * (size_t)B * Tk * KV * hd));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / group;
            size_t qo = ((size_t)b * Tq * H + h) * hd, ko = ((size_t)b * Tk * KV + g) * hd;
            const float *P = att + ((size_t)b * H + h) * Tq * Tk;
            const float *dO = dout + qo;
            // dP[Tq,Tk] = dO V^T   <=>   dP^T = V dO^T
            CUBLAS_CHECK(cublasSgemm(hb, CUBLAS_OP_T, CUBLAS_OP_N, Tk, Tq, hd, &one, v + ko,
                                     KV * hd, dO, H * hd, &zero, scratch, Tk));
            // dV[Tk,hd] += P^T dO   <=>   dV^T += dO^T P
            CUBLAS_CHECK(cublasSgemm(hb, CUBLAS_OP_N, CUBLAS_OP_T, hd, Tk, Tq, &one, dO, H * hd, P,
                                     Tk, &one, dv + ko, KV * hd));
            softmax_bwd_pos_kernel<<<Tq, ATTP_THREADS>>>(scratch, P, Tk);
            CUDA_LAUNCH_CHECK();
            // dQ[Tq,hd] = scale dS K   <=>   dQ^T = scale K^T dS^T
            CUBLAS_CHECK(cublasSgemm(hb, CUBLAS_OP_N, CUBLAS_OP_N, hd, Tq, Tk, &scale, k + ko,
                                     KV * hd, scratch, Tk, &zero, dq + qo, H * hd));
            // dK[Tk,hd] += scale dS^T Q   <=>   dK^T += scale Q^T dS
            CUBLAS_CHECK(cublasSgemm(hb, CUBLAS_OP_N, CUBLAS_OP_T, hd, Tk, Tq, &scale, q + qo,
                                     H * hd, scratch, Tk, &one, dk + ko, KV * hd));
        }
}
