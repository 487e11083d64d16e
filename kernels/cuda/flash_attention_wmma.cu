// flash_attention_wmma.cu — the flash-attention pair of flash_attention.cu on
// tensor cores (nvcuda::wmma, bf16 m16n16k16, fp32 accumulators): the numerics of
// FlashAttention-2 under bf16 autocast. Q, K, V, dO and the probabilities P / dS
// are rounded to bf16 where they enter a GEMM (when staged into shared memory);
// every product is summed in fp32; softmax statistics, lse and D in fp32.
// Oracle: kernels/cpu/attention_flash_bf16.c (same roundings, same key tiles).
//
// Shapes: q,out,dq [B,T,H,hd]; k,v,dk,dv [B,T,KV,hd]; doc [B,T]; lse, D [B,H,T].
// Query head h reads kv head h / (H/KV). hd a multiple of 16, <= 128
// (cuda_attention_flash_wmma_ok); flash_attention.cu calls this file when the
// backend's matmul precision is bf16, and keeps its fp32 kernels otherwise.
//
// Device features: only wmma fragments (fill/load/mma/store, never fragment
// elements), __nv_bfloat16 conversions, __syncthreads, __shfl_xor_sync and
// extern __shared__: so that a CPU emulator of the CUDA runtime can run it.
// No __syncwarp either: a warp hands shared memory to its own lanes through
// __syncthreads (every loop below is uniform over the block).
//
// Work split (a block of 4 warps; a warp owns 16 of the block's 64 rows; inside
// a warp, lane l owns row l/2 of the warp's 16 and the columns of parity l&1):
//   forward:  block = (64 query rows, h, b), key tiles of 64. Per tile:
//             S[16x64] = Q K^T per warp (wmma, stored to shared memory); the lane
//             pair of a row takes its max, rescales with alpha = exp(m_old - m_new)
//             and writes P = exp(S - m_new) as bf16; PV goes through wmma in
//             chunks of 64 output columns, stored into the warp's (dead) S rows,
//             and each lane does o = alpha * o + PV on the hd/2 columns it keeps
//             in registers (fragment elements are opaque, so O cannot be rescaled
//             inside its accumulator).
//   dq:       block = (64 query rows, h, b), key tiles of 32: S = Q K^T and
//             dP = dO V^T (wmma), P = exp(S*scale - lse), dS = P (dP - D) as bf16,
//             dq += dS K in accumulator fragments that live across the tiles.
//   dk, dv:   block = (64 keys, kv head g, b), query tiles of 32 looping over the
//             group's query heads: S^T = K Q^T, dP^T = V dO^T, dv += P^T dO,
//             dk += dS^T Q. No atomics; every output element has one owner, so
//             the results are deterministic. dq and dk carry the softmax scale,
//             applied to the fp32 sums at the end (dS is rounded without it).
// Skipping (the rules of flash_attention.cu): a key tile after the query block's
// last row, or whose document range does not meet the block's, is never loaded.
//
// Shared memory per block (bytes, LD = hd + 8 bf16 per staged row):
//   forward: 2*(3*64*LD + 64*72) + 4*64*68 + 4*128     hd 128: 79,360  hd 64: 54,784
//   dq:      2*(192*LD + 64*40) + 2*4*64*36 + 4*224    hd 128: 76,672  hd 64: 52,096
//   dk, dv:  2*(192*LD + 2*64*40) + 2*4*64*36 + 4*160  hd 128: 81,536  hd 64: 56,960
// Registers (ptxas, sm_90, hd 64 / 128): forward 96 / 128, dq 94 / 126, dk+dv 126 / 254,
// no spills. All above 48 KiB are opted into (cudaFuncAttributeMaxDynamicSharedMemorySize);
// all stay under 99 KiB (two blocks per SM on an H100, which has 227 KiB).
// The pads keep each ldm a multiple of 16 bytes and move consecutive rows by 4
// banks. Speed: NOT measured (no GPU was available to this project).
#include <cuda_bf16.h>
#include <mma.h>
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cpu/attention_flash_bf16.h"  // HERD_FLASH_BF16_OK: the CPU oracle takes the same head sizes
#include "kernels/cuda/cuda_ops.h"
}

using namespace nvcuda;
typedef __nv_bfloat16 fw_bf16;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, fw_bf16, wmma::row_major> fw_frag_a;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, fw_bf16, wmma::row_major> fw_frag_brow;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, fw_bf16, wmma::col_major> fw_frag_bcol;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> fw_frag_c;

#define FW_THREADS 128
#define FW_ROWS 64  // rows per block (queries in forward and dq, keys in dk/dv)
#define FW_FT 64    // forward key tile
#define FW_BT 32    // backward: the other side's tile
#define FW_PAD 8    // bf16 elements of pad per staged row
#define FW_LS 68    // fp32 row of a forward S tile (64 + 4)
#define FW_LP 72    // bf16 row of a forward P tile (64 + 8)
#define FW_BLS 36   // fp32 row of a backward S / dP tile (32 + 4)
#define FW_BLP 40   // bf16 row of a backward P / dS tile (32 + 8)

// rows [r0, r0+n) of x[B,T,heads,hd] for (b, head) as bf16 into s[n][ld], zero past T
__device__ void fw_stage(fw_bf16 *s, int ld, const float *x, int b, int r0, int n, int T,
                         int heads, int head, int hd)
{
    for (int idx = threadIdx.x; idx < n * hd; idx += blockDim.x) {
        int r = idx / hd, d = idx - r * hd, t = r0 + r;
        float val = t < T ? x[(((size_t)b * T + t) * heads + head) * hd + d] : 0.0f;
        s[r * ld + d] = __float2bfloat16(val);
    }
}

// min / max document of positions [t0, t0+n) (clamped to T); every warp computes
// the same, so a decision on it is uniform over the block
__device__ void fw_doc_range(const int32_t *db, int t0, int n, int T, int *mn, int *mx)
{
    int lo = 0x7fffffff, hi = -0x7fffffff - 1;
    for (int r = (int)(threadIdx.x & 31); r < n; r += 32) {
        int d = db[min(t0 + r, T - 1)];
        lo = min(lo, d);
        hi = max(hi, d);
    }
    for (int o = 16; o > 0; o >>= 1) {
        lo = min(lo, __shfl_xor_sync(0xffffffffu, lo, o));
        hi = max(hi, __shfl_xor_sync(0xffffffffu, hi, o));
    }
    *mn = lo;
    *mx = hi;
}

// C[16 x 16n..] of a warp: sum over kk of A[16][16kk..] B[16kk..][..]; a row-major A,
// B col-major (a transposed row-major operand: K for Q K^T)
template <int KSTEPS>
__device__ __forceinline__ void fw_mma_abt(fw_frag_c &c, const fw_bf16 *a, int lda,
                                           const fw_bf16 *bt, int ldb)
{
    #pragma unroll
    for (int kk = 0; kk < KSTEPS; kk++) {
        fw_frag_a fa;
        fw_frag_bcol fb;
        wmma::load_matrix_sync(fa, a + kk * 16, lda);
        wmma::load_matrix_sync(fb, bt + kk * 16, ldb);
        wmma::mma_sync(c, fa, fb, c);
    }
}

// the same with B row-major (V for P V, K for dS K, Q and dO for the key side)
template <int KSTEPS>
__device__ __forceinline__ void fw_mma_ab(fw_frag_c &c, const fw_bf16 *a, int lda,
                                          const fw_bf16 *b, int ldb)
{
    #pragma unroll
    for (int kk = 0; kk < KSTEPS; kk++) {
        fw_frag_a fa;
        fw_frag_brow fb;
        wmma::load_matrix_sync(fa, a + kk * 16, lda);
        wmma::load_matrix_sync(fb, b + kk * 16 * ldb, ldb);
        wmma::mma_sync(c, fa, fb, c);
    }
}

template <int HD>
__global__ void __launch_bounds__(FW_THREADS)
fw_fwd_kernel(float *out, float *lse, const float *q, const float *k, const float *v,
              const int32_t *doc, int T, int H, int KV, float scale)
{
    constexpr int LD = HD + FW_PAD;
    extern __shared__ __align__(128) unsigned char fw_smem[];
    fw_bf16 *Qs = (fw_bf16 *)fw_smem, *Ks = Qs + FW_ROWS * LD, *Vs = Ks + FW_FT * LD;
    fw_bf16 *Ps = Vs + FW_FT * LD;                        // [64][FW_LP]
    float *Ss = (float *)(Ps + FW_ROWS * FW_LP);          // [64][FW_LS]
    int32_t *qdoc = (int32_t *)(Ss + FW_ROWS * FW_LS), *kdoc = qdoc + FW_ROWS;
    const int q0 = blockIdx.x * FW_ROWS, h = blockIdx.y, b = blockIdx.z, g = h / (H / KV);
    const int q1 = min(q0 + FW_ROWS, T), lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int r = lane >> 1, par = lane & 1, row = warp * 16 + r, i = q0 + row;
    const int32_t *db = doc + (size_t)b * T;
    float *Sw = Ss + warp * 16 * FW_LS;
    fw_bf16 *Pw = Ps + warp * 16 * FW_LP;

    fw_stage(Qs, LD, q, b, q0, FW_ROWS, T, H, h, HD);
    if (threadIdx.x < FW_ROWS) qdoc[threadIdx.x] = db[min(q0 + (int)threadIdx.x, T - 1)];
    int qmn, qmx;
    fw_doc_range(db, q0, FW_ROWS, T, &qmn, &qmx);

    float m = -INFINITY, l = 0.0f, o[HD / 2];  // o[t]: column par + 2t of row i
    #pragma unroll
    for (int t = 0; t < HD / 2; t++) o[t] = 0.0f;
    for (int k0 = 0; k0 < q1; k0 += FW_FT) {  // causal: no key after the last query
        int kmn, kmx;
        fw_doc_range(db, k0, FW_FT, T, &kmn, &kmx);
        if (kmx < qmn || kmn > qmx) continue;  // no document in common: the tile is empty
        __syncthreads();                       // the previous tile's K, V, P are no longer read
        fw_stage(Ks, LD, k, b, k0, FW_FT, T, KV, g, HD);
        fw_stage(Vs, LD, v, b, k0, FW_FT, T, KV, g, HD);
        if (threadIdx.x < FW_FT) kdoc[threadIdx.x] = db[min(k0 + (int)threadIdx.x, T - 1)];
        __syncthreads();
        // S [16 rows][64 keys] of this warp = Q K^T
        #pragma unroll
        for (int n = 0; n < FW_FT / 16; n++) {
            fw_frag_c c;
            wmma::fill_fragment(c, 0.0f);
            fw_mma_abt<HD / 16>(c, Qs + warp * 16 * LD, LD, Ks + n * 16 * LD, LD);
            wmma::store_matrix_sync(Sw + n * 16, c, FW_LS, wmma::mem_row_major);
        }
        __syncthreads();
        // online softmax of row i over this tile: the lane pair splits the 64 keys
        float sv[FW_FT / 2], mt = -INFINITY;
        #pragma unroll
        for (int t = 0; t < FW_FT / 2; t++) {
            int c = par + 2 * t, j = k0 + c;
            bool ok = i < T && j <= i && kdoc[c] == qdoc[row];
            sv[t] = ok ? Sw[r * FW_LS + c] * scale : -INFINITY;
            mt = fmaxf(mt, sv[t]);
        }
        mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 1));
        float mnew = fmaxf(m, mt);
        float alpha = mnew == -INFINITY ? 1.0f : expf(m - mnew);  // nothing allowed yet: o = 0
        float ps = 0.0f;
        #pragma unroll
        for (int t = 0; t < FW_FT / 2; t++) {
            float p = sv[t] == -INFINITY ? 0.0f : expf(sv[t] - mnew);
            ps += p;  // l sums the fp32 p, the GEMM takes it in bf16 (as FA2)
            Pw[r * FW_LP + par + 2 * t] = __float2bfloat16(p);
        }
        ps += __shfl_xor_sync(0xffffffffu, ps, 1);
        l = l * alpha + ps;
        m = mnew;
        __syncthreads();  // P is complete and S dead: its rows become the PV scratch
        // o = alpha o + P V, 64 output columns at a time
        #pragma unroll
        for (int ch = 0; ch < (HD + 63) / 64; ch++) {
            #pragma unroll
            for (int n = 0; n < 4; n++) {  // fixed bounds and guards: o stays in registers
                if (64 * ch + 16 * n >= HD) break;
                fw_frag_c c;
                wmma::fill_fragment(c, 0.0f);
                fw_mma_ab<FW_FT / 16>(c, Pw, FW_LP, Vs + 64 * ch + n * 16, LD);
                wmma::store_matrix_sync(Sw + n * 16, c, FW_LS, wmma::mem_row_major);
            }
            __syncthreads();
            #pragma unroll
            for (int t = 0; t < 32; t++)
                if (32 * ch + t < HD / 2)
                    o[32 * ch + t] = o[32 * ch + t] * alpha + Sw[r * FW_LS + par + 2 * t];
            __syncthreads();  // before the next chunk (or tile) overwrites the scratch
        }
    }
    if (i < T) {
        float *oi = out + (((size_t)b * T + i) * H + h) * HD;
        #pragma unroll
        for (int t = 0; t < HD / 2; t++) oi[par + 2 * t] = o[t] / l;  // key i is allowed: l >= 1
        if (par == 0) lse[((size_t)b * H + h) * T + i] = m + logf(l);
    }
}

// a warp's 16 x 16 fp32 fragment to rows [row0, row0+16) (those < T) of
// x[B,T,heads,HD] at column c0, times mul, through the warp's scratch sc[16][ldsc]
__device__ __forceinline__ void fw_store_rows(float *x, const fw_frag_c &c, float *sc, int ldsc,
                                              int b, int row0, int T, int heads, int head,
                                              int hd, int c0, float mul)
{
    wmma::store_matrix_sync(sc, c, ldsc, wmma::mem_row_major);
    __syncthreads();
    for (int e = threadIdx.x & 31; e < 256; e += 32) {
        int rr = e >> 4, cc = e & 15, t = row0 + rr;
        if (t < T) x[(((size_t)b * T + t) * heads + head) * hd + c0 + cc] = sc[rr * ldsc + cc] * mul;
    }
    __syncthreads();
}

// dq_i = scale * sum_j bf16(p_ij (dO_i . v_j - D_i)) k_j
template <int HD>
__global__ void __launch_bounds__(FW_THREADS)
fw_dq_kernel(float *dq, const float *dout, const float *lse, const float *D, const float *q,
             const float *k, const float *v, const int32_t *doc, int T, int H, int KV,
             float scale)
{
    constexpr int LD = HD + FW_PAD;
    extern __shared__ __align__(128) unsigned char fw_smem[];
    fw_bf16 *Qs = (fw_bf16 *)fw_smem, *dOs = Qs + FW_ROWS * LD, *Ks = dOs + FW_ROWS * LD;
    fw_bf16 *Vs = Ks + FW_BT * LD, *dSs = Vs + FW_BT * LD;  // dSs [64][FW_BLP]
    float *Ss = (float *)(dSs + FW_ROWS * FW_BLP), *dPs = Ss + FW_ROWS * FW_BLS;
    float *Ls = dPs + FW_ROWS * FW_BLS, *Ds = Ls + FW_ROWS;
    int32_t *qdoc = (int32_t *)(Ds + FW_ROWS), *kdoc = qdoc + FW_ROWS;
    const int q0 = blockIdx.x * FW_ROWS, h = blockIdx.y, b = blockIdx.z, g = h / (H / KV);
    const int q1 = min(q0 + FW_ROWS, T), lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int r = lane >> 1, par = lane & 1, row = warp * 16 + r, i = q0 + row;
    const int32_t *db = doc + (size_t)b * T;
    float *Sw = Ss + warp * 16 * FW_BLS, *dPw = dPs + warp * 16 * FW_BLS;
    fw_bf16 *dSw = dSs + warp * 16 * FW_BLP;

    fw_stage(Qs, LD, q, b, q0, FW_ROWS, T, H, h, HD);
    fw_stage(dOs, LD, dout, b, q0, FW_ROWS, T, H, h, HD);
    if (threadIdx.x < FW_ROWS) {
        int ii = min(q0 + (int)threadIdx.x, T - 1);
        qdoc[threadIdx.x] = db[ii];
        Ls[threadIdx.x] = lse[((size_t)b * H + h) * T + ii];
        Ds[threadIdx.x] = D[((size_t)b * H + h) * T + ii];
    }
    int qmn, qmx;
    fw_doc_range(db, q0, FW_ROWS, T, &qmn, &qmx);

    fw_frag_c acc[HD / 16];
    #pragma unroll
    for (int n = 0; n < HD / 16; n++) wmma::fill_fragment(acc[n], 0.0f);
    for (int k0 = 0; k0 < q1; k0 += FW_BT) {
        int kmn, kmx;
        fw_doc_range(db, k0, FW_BT, T, &kmn, &kmx);
        if (kmx < qmn || kmn > qmx) continue;
        __syncthreads();
        fw_stage(Ks, LD, k, b, k0, FW_BT, T, KV, g, HD);
        fw_stage(Vs, LD, v, b, k0, FW_BT, T, KV, g, HD);
        if (threadIdx.x < FW_BT) kdoc[threadIdx.x] = db[min(k0 + (int)threadIdx.x, T - 1)];
        __syncthreads();
        #pragma unroll
        for (int n = 0; n < FW_BT / 16; n++) {  // S = Q K^T, dP = dO V^T [16][32]
            fw_frag_c cs, cp;
            wmma::fill_fragment(cs, 0.0f);
            wmma::fill_fragment(cp, 0.0f);
            fw_mma_abt<HD / 16>(cs, Qs + warp * 16 * LD, LD, Ks + n * 16 * LD, LD);
            fw_mma_abt<HD / 16>(cp, dOs + warp * 16 * LD, LD, Vs + n * 16 * LD, LD);
            wmma::store_matrix_sync(Sw + n * 16, cs, FW_BLS, wmma::mem_row_major);
            wmma::store_matrix_sync(dPw + n * 16, cp, FW_BLS, wmma::mem_row_major);
        }
        __syncthreads();
        #pragma unroll
        for (int t = 0; t < FW_BT / 2; t++) {
            int c = par + 2 * t, j = k0 + c;
            float ds = 0.0f;
            if (i < T && j <= i && kdoc[c] == qdoc[row]) {
                float p = expf(Sw[r * FW_BLS + c] * scale - Ls[row]);
                ds = p * (dPw[r * FW_BLS + c] - Ds[row]);
            }
            dSw[r * FW_BLP + c] = __float2bfloat16(ds);
        }
        __syncthreads();
        #pragma unroll
        for (int n = 0; n < HD / 16; n++)  // dq += dS K
            fw_mma_ab<FW_BT / 16>(acc[n], dSw, FW_BLP, Ks + n * 16, LD);
    }
    __syncthreads();  // the last tile's S is no longer read: it is the output scratch
    #pragma unroll
    for (int n = 0; n < HD / 16; n++)
        fw_store_rows(dq, acc[n], Sw, FW_BLS, b, q0 + warp * 16, T, H, h, HD, n * 16, scale);
}

// dv_j = sum_{h in group, i} bf16(p_ij) dO_i;  dk_j = scale * sum bf16(dS_ij) q_i
template <int HD>
__global__ void __launch_bounds__(FW_THREADS)
fw_dkdv_kernel(float *dk, float *dv, const float *dout, const float *lse, const float *D,
               const float *q, const float *k, const float *v, const int32_t *doc, int T, int H,
               int KV, float scale)
{
    constexpr int LD = HD + FW_PAD;
    extern __shared__ __align__(128) unsigned char fw_smem[];
    fw_bf16 *Ks = (fw_bf16 *)fw_smem, *Vs = Ks + FW_ROWS * LD, *Qs = Vs + FW_ROWS * LD;
    fw_bf16 *dOs = Qs + FW_BT * LD, *Pts = dOs + FW_BT * LD, *dSts = Pts + FW_ROWS * FW_BLP;
    float *Ss = (float *)(dSts + FW_ROWS * FW_BLP), *dPs = Ss + FW_ROWS * FW_BLS;
    float *Ls = dPs + FW_ROWS * FW_BLS, *Ds = Ls + FW_BT;
    int32_t *kdoc = (int32_t *)(Ds + FW_BT), *qdoc = kdoc + FW_ROWS;
    const int k0 = blockIdx.x * FW_ROWS, g = blockIdx.y, b = blockIdx.z, group = H / KV;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int r = lane >> 1, par = lane & 1, row = warp * 16 + r, j = k0 + row;
    const int32_t *db = doc + (size_t)b * T;
    float *Sw = Ss + warp * 16 * FW_BLS, *dPw = dPs + warp * 16 * FW_BLS;
    fw_bf16 *Ptw = Pts + warp * 16 * FW_BLP, *dStw = dSts + warp * 16 * FW_BLP;

    fw_stage(Ks, LD, k, b, k0, FW_ROWS, T, KV, g, HD);
    fw_stage(Vs, LD, v, b, k0, FW_ROWS, T, KV, g, HD);
    if (threadIdx.x < FW_ROWS) kdoc[threadIdx.x] = db[min(k0 + (int)threadIdx.x, T - 1)];
    int kmn, kmx;
    fw_doc_range(db, k0, FW_ROWS, T, &kmn, &kmx);

    fw_frag_c adk[HD / 16], adv[HD / 16];
    #pragma unroll
    for (int n = 0; n < HD / 16; n++) {
        wmma::fill_fragment(adk[n], 0.0f);
        wmma::fill_fragment(adv[n], 0.0f);
    }
    for (int h = g * group; h < (g + 1) * group; h++)
        for (int q0 = k0; q0 < T; q0 += FW_BT) {  // causal: no query before key k0
            int qmn, qmx;
            fw_doc_range(db, q0, FW_BT, T, &qmn, &qmx);
            if (qmx < kmn || qmn > kmx) continue;
            __syncthreads();
            fw_stage(Qs, LD, q, b, q0, FW_BT, T, H, h, HD);
            fw_stage(dOs, LD, dout, b, q0, FW_BT, T, H, h, HD);
            if (threadIdx.x < FW_BT) {
                int ii = min(q0 + (int)threadIdx.x, T - 1);
                qdoc[threadIdx.x] = db[ii];
                Ls[threadIdx.x] = lse[((size_t)b * H + h) * T + ii];
                Ds[threadIdx.x] = D[((size_t)b * H + h) * T + ii];
            }
            __syncthreads();
            #pragma unroll
            for (int n = 0; n < FW_BT / 16; n++) {  // S^T = K Q^T, dP^T = V dO^T [16][32]
                fw_frag_c cs, cp;
                wmma::fill_fragment(cs, 0.0f);
                wmma::fill_fragment(cp, 0.0f);
                fw_mma_abt<HD / 16>(cs, Ks + warp * 16 * LD, LD, Qs + n * 16 * LD, LD);
                fw_mma_abt<HD / 16>(cp, Vs + warp * 16 * LD, LD, dOs + n * 16 * LD, LD);
                wmma::store_matrix_sync(Sw + n * 16, cs, FW_BLS, wmma::mem_row_major);
                wmma::store_matrix_sync(dPw + n * 16, cp, FW_BLS, wmma::mem_row_major);
            }
            __syncthreads();
            #pragma unroll
            for (int t = 0; t < FW_BT / 2; t++) {
                int c = par + 2 * t, i = q0 + c;
                float p = 0.0f, ds = 0.0f;
                if (i < T && j <= i && qdoc[c] == kdoc[row]) {  // j <= i < T: j < T
                    p = expf(Sw[r * FW_BLS + c] * scale - Ls[c]);
                    ds = p * (dPw[r * FW_BLS + c] - Ds[c]);
                }
                Ptw[r * FW_BLP + c] = __float2bfloat16(p);
                dStw[r * FW_BLP + c] = __float2bfloat16(ds);
            }
            __syncthreads();
            #pragma unroll
            for (int n = 0; n < HD / 16; n++) {  // dv += P^T dO, dk += dS^T Q
                fw_mma_ab<FW_BT / 16>(adv[n], Ptw, FW_BLP, dOs + n * 16, LD);
                fw_mma_ab<FW_BT / 16>(adk[n], dStw, FW_BLP, Qs + n * 16, LD);
            }
        }
    __syncthreads();
    #pragma unroll
    for (int n = 0; n < HD / 16; n++) {
        fw_store_rows(dv, adv[n], Sw, FW_BLS, b, k0 + warp * 16, T, KV, g, HD, n * 16, 1.0f);
        fw_store_rows(dk, adk[n], Sw, FW_BLS, b, k0 + warp * 16, T, KV, g, HD, n * 16, scale);
    }
}

// ---- launchers ------------------------------------------------------------------

template <typename K> static void fw_smem_optin(K kernel, size_t bytes)
{
    if (bytes > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        (int)bytes));
}

static size_t fw_fwd_smem(int hd)
{
    return 2 * (3 * FW_ROWS * (size_t)(hd + FW_PAD) + FW_ROWS * FW_LP) +
           4 * FW_ROWS * FW_LS + 4 * (FW_ROWS + FW_FT);
}
static size_t fw_dq_smem(int hd)
{
    return 2 * ((2 * FW_ROWS + 2 * FW_BT) * (size_t)(hd + FW_PAD) + FW_ROWS * FW_BLP) +
           2 * 4 * FW_ROWS * FW_BLS + 4 * (3 * FW_ROWS + FW_BT);
}
static size_t fw_dkdv_smem(int hd)
{
    return 2 * ((2 * FW_ROWS + 2 * FW_BT) * (size_t)(hd + FW_PAD) + 2 * FW_ROWS * FW_BLP) +
           2 * 4 * FW_ROWS * FW_BLS + 4 * (FW_ROWS + 3 * FW_BT);
}

template <int HD>
static void fw_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                   const int32_t *doc, int B, int T, int H, int KV)
{
    size_t smem = fw_fwd_smem(HD);
    fw_smem_optin(fw_fwd_kernel<HD>, smem);
    dim3 grid((T + FW_ROWS - 1) / FW_ROWS, H, B);
    fw_fwd_kernel<HD><<<grid, FW_THREADS, smem>>>(out, lse, q, k, v, doc, T, H, KV,
                                                  1.0f / sqrtf((float)HD));
    CUDA_LAUNCH_CHECK();
}

template <int HD>
static void fw_bwd(float *dq, float *dk, float *dv, const float *dout, const float *lse,
                   const float *D, const float *q, const float *k, const float *v,
                   const int32_t *doc, int B, int T, int H, int KV)
{
    float scale = 1.0f / sqrtf((float)HD);
    size_t sq = fw_dq_smem(HD), sk = fw_dkdv_smem(HD);
    fw_smem_optin(fw_dq_kernel<HD>, sq);
    fw_smem_optin(fw_dkdv_kernel<HD>, sk);
    dim3 gq((T + FW_ROWS - 1) / FW_ROWS, H, B), gk((T + FW_ROWS - 1) / FW_ROWS, KV, B);
    fw_dq_kernel<HD><<<gq, FW_THREADS, sq>>>(dq, dout, lse, D, q, k, v, doc, T, H, KV, scale);
    CUDA_LAUNCH_CHECK();
    fw_dkdv_kernel<HD><<<gk, FW_THREADS, sk>>>(dk, dv, dout, lse, D, q, k, v, doc, T, H, KV,
                                               scale);
    CUDA_LAUNCH_CHECK();
}

#define FW_DISPATCH(fn, hd, ...) do { switch (hd) { \
    case 16: fn<16>(__VA_ARGS__); break; case 32: fn<32>(__VA_ARGS__); break; \
    case 48: fn<48>(__VA_ARGS__); break; case 64: fn<64>(__VA_ARGS__); break; \
    case 80: fn<80>(__VA_ARGS__); break; case 96: fn<96>(__VA_ARGS__); break; \
    case 112: fn<112>(__VA_ARGS__); break; case 128: fn<128>(__VA_ARGS__); break; \
    default: fprintf(stderr, "herd: kernels/cuda/flash_attention_wmma.cu: head_dim %d " \
                     "(a multiple of 16, 16..128)\n", hd); exit(1); } } while (0)

extern "C" int cuda_attention_flash_wmma_ok(int hd)
{
    return HERD_FLASH_BF16_OK(hd);
}

extern "C" void cuda_attention_flash_wmma_fwd(float *out, float *lse, const float *q,
                                              const float *k, const float *v,
                                              const int32_t *doc, int B, int T, int H, int KV,
                                              int hd)
{
    if (B <= 0 || T <= 0 || H <= 0) return;
    FW_DISPATCH(fw_fwd, hd, out, lse, q, k, v, doc, B, T, H, KV);
}

extern "C" void cuda_attention_flash_wmma_bwd(float *dq, float *dk, float *dv,
                                              const float *dout, const float *lse,
                                              const float *D, const float *q, const float *k,
                                              const float *v, const int32_t *doc, int B, int T,
                                              int H, int KV, int hd)
{
    if (B <= 0 || T <= 0 || H <= 0) return;
    FW_DISPATCH(fw_bwd, hd, dq, dk, dv, dout, lse, D, q, k, v, doc, B, T, H, KV);
}
