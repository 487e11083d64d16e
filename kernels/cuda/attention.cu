// attention.cu — causal, document-masked grouped-query attention, the fp32
// reference algorithm of kernels/cpu/attention.c on the GPU (naive: the full
// T x T scores are formed and the probabilities kept for the backward; a fused
// flash-attention kernel comes later).
//
// Layouts (row-major): q[B,T,H,hd], k,v[B,T,KV,hd], doc[B,T], att[B,H,T,T],
// out[B,T,H,hd]; query head h uses kv head g = h / (H/KV). Token i attends to j
// iff j <= i and doc[j] == doc[i].
//
// The per-head matrices are strided views: Q_bh[T,hd] = q + (b*T*H + h)*hd with
// leading dimension H*hd, K_bg[T,hd] = k + (b*T*KV + g)*hd with leading
// dimension KV*hd. cuBLAS sees each row-major X[r,c] (ld L) as the column-major
// X^T, so a row-major C = A B is issued as C^T = B^T A^T (see matmul.cu).
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

enum { ATT_THREADS = 128 };

// One block per row of the scores att[B,H,T,T] (B*H*T blocks): the row becomes
// probabilities over the allowed j, every masked entry exactly 0.
__global__ void masked_softmax_kernel(float *att, const int32_t *doc, int T, int H)
{
    size_t r = blockIdx.x;
    int i = (int)(r % T), b = (int)(r / T / H);
    float *row = att + r * T;
    const int32_t *dc = doc + (size_t)b * T;
    int32_t di = dc[i];
    float mx = -INFINITY;
    for (int j = threadIdx.x; j <= i; j += blockDim.x)
        if (dc[j] == di) mx = fmaxf(mx, row[j]);
    mx = herd_block_max(mx);  // finite: j = i is always allowed
    float sum = 0.0f;
    for (int j = threadIdx.x; j < T; j += blockDim.x) {
        float e = (j <= i && dc[j] == di) ? expf(row[j] - mx) : 0.0f;
        row[j] = e;
        sum += e;
    }
    sum = herd_block_sum(sum);
    float inv = 1.0f / sum;
    for (int j = threadIdx.x; j <= i; j += blockDim.x) row[j] *= inv;
}

// dS = P * (dP - rowsum(P * dP)) in place over dP[T,T], one block per row;
// masked entries (P = 0) and j > i become 0.
__global__ void softmax_bwd_kernel(float *dP, const float *P, int T)
{
    int i = blockIdx.x;
    float *d = dP + (size_t)i * T;
    const float *p = P + (size_t)i * T;
    float dot = 0.0f;
    for (int j = threadIdx.x; j <= i; j += blockDim.x) dot += p[j] * d[j];
    dot = herd_block_sum(dot);
    for (int j = threadIdx.x; j < T; j += blockDim.x) d[j] = j <= i ? p[j] * (d[j] - dot) : 0.0f;
}

extern "C" void cuda_attention_fwd(const herd_backend *be, float *out, float *att, const float *q,
                                   const float *k, const float *v, const int32_t *doc, int B, int T,
                                   int H, int KV, int hd)
{
    if (B <= 0 || T <= 0 || H <= 0 || KV <= 0 || hd <= 0) return;
    cublasHandle_t hb = herd_cuda_blas();
    const float scale = 1.0f / sqrtf((float)hd), one = 1.0f, zero = 0.0f;
    const int group = H / KV;
    const long long sQ = (long long)group * hd, sK = hd, sS = (long long)group * T * T;
    // For a sequence b and a position r inside a group, the query heads
    // h = g*group + r (g = 0..KV-1) are one strided batch: Q and S advance by
    // `group` heads, K and V by one head.
    for (int b = 0; b < B; b++)
        for (int r = 0; r < group; r++) {
            const float *Q = q + ((size_t)b * T * H + r) * hd;
            const float *K = k + (size_t)b * T * KV * hd;
            float *S = att + ((size_t)b * H + r) * T * T;
            // S[T,T] = scale Q K^T   <=>   S^T = scale K Q^T
            CUBLAS_CHECK(cublasSgemmStridedBatched(hb, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hd, &scale,
                                                   K, KV * hd, sK, Q, H * hd, sQ, &zero, S, T, sS,
                                                   KV));
        }
    masked_softmax_kernel<<<(unsigned)((size_t)B * H * T), ATT_THREADS>>>(att, doc, T, H);
    CUDA_LAUNCH_CHECK();
    for (int b = 0; b < B; b++)
        for (int r = 0; r < group; r++) {
            const float *P = att + ((size_t)b * H + r) * T * T;
            const float *V = v + (size_t)b * T * KV * hd;
            float *O = out + ((size_t)b * T * H + r) * hd;
            // O[T,hd] = P V   <=>   O^T = V^T P^T
            CUBLAS_CHECK(cublasSgemmStridedBatched(hb, CUBLAS_OP_N, CUBLAS_OP_N, hd, T, T, &one, V,
                                                   KV * hd, sK, P, T, sS, &zero, O, H * hd, sQ,
                                                   KV));
        }
}

// Per (b, h) with the caller's scratch[T,T]; the query heads of a group add
// into the same dK, dV in head order (deterministic).
extern "C" void cuda_attention_bwd(const herd_backend *be, float *dq, float *dk, float *dv,
                                   float *scratch, const float *dout, const float *att,
                                   const float *q, const float *k, const float *v,
                                   const int32_t *doc, int B, int T, int H, int KV, int hd)
{
    if (B <= 0 || T <= 0 || H <= 0 || KV <= 0 || hd <= 0) return;
    cublasHandle_t hb = herd_cuda_blas();
    const float scale = 1.0f / sqrtf((float)hd), one = 1.0f, zero = 0.0f;
    const int group = H / KV;
    CUDA_CHECK(cudaMemset(dk, 0, sizeof(float) * (size_t)B * T * KV * hd));
    CUDA_CHECK(cudaMemset(dv, 0, sizeof(float) * (size_t)B * T * KV * hd));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / group;
            size_t qo = ((size_t)b * T * H + h) * hd, ko = ((size_t)b * T * KV + g) * hd;
            const float *P = att + ((size_t)b * H + h) * T * T;
            const float *dO = dout + qo;
            // dP[T,T] = dO V^T   <=>   dP^T = V dO^T
            CUBLAS_CHECK(cublasSgemm(hb, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hd, &one, v + ko, KV * hd,
                                     dO, H * hd, &zero, scratch, T));
            // dV[T,hd] += P^T dO   <=>   dV^T += dO^T P
            CUBLAS_CHECK(cublasSgemm(hb, CUBLAS_OP_N, CUBLAS_OP_T, hd, T, T, &one, dO, H * hd, P, T,
                                     &one, dv + ko, KV * hd));
            softmax_bwd_kernel<<<T, ATT_THREADS>>>(scratch, P, T);
            CUDA_LAUNCH_CHECK();
            // dQ[T,hd] = scale dS K   <=>   dQ^T = scale K^T dS^T
            CUBLAS_CHECK(cublasSgemm(hb, CUBLAS_OP_N, CUBLAS_OP_N, hd, T, T, &scale, k + ko,
                                     KV * hd, scratch, T, &zero, dq + qo, H * hd));
            // dK[T,hd] += scale dS^T Q   <=>   dK^T += scale Q^T dS
            CUBLAS_CHECK(cublasSgemm(hb, CUBLAS_OP_N, CUBLAS_OP_T, hd, T, T, &scale, q + qo, H * hd,
                                     scratch, T, &one, dk + ko, KV * hd));
        }
    (void)doc;  // the mask lives in P: its masked entries are exactly 0
}
