// attention.cu — causal, document-masked GQA attention, the fp32 reference
// algorithm of kernels/cpu/attention.c on the GPU: per (sequence, head) cuBLAS
// products around a masked-softmax kernel; probabilities kept for the backward.
// (A fused flash-attention kernel is the CUDA issue's work.)
#include <math.h>
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

// one block per row i of S[T,T]: probabilities over j <= i with doc[j] == doc[i]
__global__ void masked_softmax_kernel(float *S, const int32_t *doc, int T)
{
    int i = blockIdx.x;
    float *row = S + (size_t)i * T;
    int32_t di = doc[i];
    __shared__ float red[32];
    float mx = -INFINITY;
    for (int j = threadIdx.x; j <= i; j += blockDim.x)
        if (doc[j] == di) mx = fmaxf(mx, row[j]);
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = mx;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : -INFINITY;
        for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
        if (threadIdx.x == 0) red[0] = v;
    }
    __syncthreads();
    mx = red[0];
    __syncthreads();
    float sum = 0.0f;
    for (int j = threadIdx.x; j < T; j += blockDim.x) {
        float e = (j <= i && doc[j] == di) ? expf(row[j] - mx) : 0.0f;
        row[j] = e;
        sum += e;
    }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = sum;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (threadIdx.x == 0) red[0] = v;
    }
    __syncthreads();
    float inv = 1.0f / red[0];
    for (int j = threadIdx.x; j <= i; j += blockDim.x) row[j] *= inv;
}

// dS = P * (dP - rowsum(P * dP)), one block per row
__global__ void softmax_bwd_kernel(float *dP, const float *P, int T)
{
    int i = blockIdx.x;
    float *d = dP + (size_t)i * T;
    const float *p = P + (size_t)i * T;
    __shared__ float red[32];
    float dot = 0.0f;
    for (int j = threadIdx.x; j <= i; j += blockDim.x) dot += p[j] * d[j];
    for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = dot;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (threadIdx.x == 0) red[0] = v;
    }
    __syncthreads();
    dot = red[0];
    for (int j = threadIdx.x; j < T; j += blockDim.x) d[j] = j <= i ? p[j] * (d[j] - dot) : 0.0f;
}

extern "C" void cuda_attention_fwd(float *out, float *att, const float *q, const float *k,
                                   const float *v, const int32_t *doc, int B, int T, int H, int KV,
                                   int hd)
{
    cublasHandle_t h_ = herd_cuda_blas();
    const float scale = 1.0f / sqrtf((float)hd), one = 1.0f, zero = 0.0f;
    int group = H / KV;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / group;
            const float *Q = q + ((size_t)b * T * H + h) * hd;
            const float *K = k + ((size_t)b * T * KV + g) * hd;
            const float *V = v + ((size_t)b * T * KV + g) * hd;
            float *S = att + ((size_t)b * H + h) * T * T;
            float *O = out + ((size_t)b * T * H + h) * hd;
            // S[T,T] = scale Q K^T
            CUBLAS_CHECK(cublasSgemm(h_, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hd, &scale, K, KV * hd, Q,
                                     H * hd, &zero, S, T));
            masked_softmax_kernel<<<T, 128>>>(S, doc + (size_t)b * T, T);
            CUDA_LAUNCH_CHECK();
            // O[T,hd] = P V
            CUBLAS_CHECK(cublasSgemm(h_, CUBLAS_OP_N, CUBLAS_OP_N, hd, T, T, &one, V, KV * hd, S, T,
                                     &zero, O, H * hd));
        }
}

extern "C" void cuda_attention_bwd(float *dq, float *dk, float *dv, float *scratch,
                                   const float *dout, const float *att, const float *q,
                                   const float *k, const float *v, const int32_t *doc, int B,
                                   int T, int H, int KV, int hd)
{
    cublasHandle_t h_ = herd_cuda_blas();
    const float scale = 1.0f / sqrtf((float)hd), one = 1.0f, zero = 0.0f;
    int group = H / KV;
    CUDA_CHECK(cudaMemset(dk, 0, sizeof(float) * (size_t)B * T * KV * hd));
    CUDA_CHECK(cudaMemset(dv, 0, sizeof(float) * (size_t)B * T * KV * hd));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / group;
            size_t qo = ((size_t)b * T * H + h) * hd, ko = ((size_t)b * T * KV + g) * hd;
            const float *P = att + ((size_t)b * H + h) * T * T;
            const float *dO = dout + qo;
            // dP = dO V^T
            CUBLAS_CHECK(cublasSgemm(h_, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hd, &one, v + ko, KV * hd,
                                     dO, H * hd, &zero, scratch, T));
            // dV += P^T dO
            CUBLAS_CHECK(cublasSgemm(h_, CUBLAS_OP_N, CUBLAS_OP_T, hd, T, T, &one, dO, H * hd, P, T,
                                     &one, dv + ko, KV * hd));
            softmax_bwd_kernel<<<T, 128>>>(scratch, P, T);
            CUDA_LAUNCH_CHECK();
            // dQ = scale dS K;  dK += scale dS^T Q
            CUBLAS_CHECK(cublasSgemm(h_, CUBLAS_OP_N, CUBLAS_OP_N, hd, T, T, &scale, k + ko,
                                     KV * hd, scratch, T, &zero, dq + qo, H * hd));
            CUBLAS_CHECK(cublasSgemm(h_, CUBLAS_OP_N, CUBLAS_OP_T, hd, T, T, &scale, q + qo, H * hd,
                                     scratch, T, &one, dk + ko, KV * hd));
        }
    (void)doc; // the mask lives in P
}
