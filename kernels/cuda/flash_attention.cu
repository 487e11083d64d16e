// flash_attention.cu — causal, document-masked GQA attention in the manner of
// FlashAttention-2, fp32 (inputs, outputs and accumulation): no [T,T] matrix in
// memory; the forward keeps lse[B,H,T], the backward recomputes the
// probabilities from it. Oracle: kernels/cpu/attention_flash.c (same tiles).
//
// Shapes: q,out,dq [B,T,H,hd]; k,v,dk,dv [B,T,KV,hd]; doc [B,T]; lse [B,H,T].
// Query head h reads kv head h / (H/KV). hd <= 256.
//
// Work split (one thread block of 4 warps):
//   forward, dq:  block = (16 query rows, h, b); a warp owns 4 rows; key tiles of
//                 32 keys, one key per lane (score = a dot over hd from shared
//                 memory, rows padded to hd+1 so that lanes hit distinct banks);
//                 the lane that owns output dims d = lane + 32t accumulates them,
//                 the 32 probabilities broadcast by shuffles.
//   dk, dv:       block = (16 keys, kv head g, b); a warp owns 4 keys; query tiles
//                 of 32 (one query per lane), looping over the group's query heads,
//                 so dk and dv are summed over the group without atomics.
// Every output element has one owner: the results are deterministic.
// Skipping: a key tile after the query tile's last row (causal), or whose
// document range does not meet the query tile's, is never loaded.
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
}

#define FA_WARPS 4
#define FA_ROWS 16  // rows (queries in fwd/dq, keys in dkdv) per block
#define FA_RPW (FA_ROWS / FA_WARPS)
#define FA_TILE 32  // the other side's tile: one element per lane
#define FA_MAX_HD 256

__device__ __forceinline__ int fa_warp_min(int v)
{
    for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ int fa_warp_max(int v)
{
    for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// rows [r0, r0+n) of x[B,T,heads,hd] for (b, head) into s[n][ld], zero past T
__device__ void fa_load_rows(float *s, int ld, const float *x, int b, int r0, int n, int T,
                             int heads, int head, int hd)
{
    for (int idx = threadIdx.x; idx < n * hd; idx += blockDim.x) {
        int r = idx / hd, d = idx - r * hd, t = r0 + r;
        s[r * ld + d] = t < T ? x[(((size_t)b * T + t) * heads + head) * hd + d] : 0.0f;
    }
}

// min / max document of the 32 positions [t0, t0+32) (clamped to T), computed
// by each warp alike, so a decision on it is uniform over the block
__device__ __forceinline__ void fa_doc_range(const int32_t *db, int t0, int T, int *mn, int *mx)
{
    int t = t0 + (threadIdx.x & 31);
    int d = db[t < T ? t : T - 1];
    *mn = fa_warp_min(d);
    *mx = fa_warp_max(d);
}

template <int NT>
__global__ void __launch_bounds__(FA_WARPS * 32)
flash_fwd_kernel(float *out, float *lse, const float *q, const float *k, const float *v,
                 const int32_t *doc, int T, int H, int KV, int hd, float scale)
{
    extern __shared__ float sm[];
    const int ld = hd + 1;
    float *Qs = sm, *Ks = Qs + FA_ROWS * ld, *Vs = Ks + FA_TILE * ld;
    __shared__ int32_t qdoc[FA_ROWS], kdoc[FA_TILE];
    const int q0 = blockIdx.x * FA_ROWS, h = blockIdx.y, b = blockIdx.z, g = h / (H / KV);
    const int q1 = min(q0 + FA_ROWS, T), lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int32_t *db = doc + (size_t)b * T;

    fa_load_rows(Qs, ld, q, b, q0, FA_ROWS, T, H, h, hd);
    if (threadIdx.x < FA_ROWS) qdoc[threadIdx.x] = db[min(q0 + (int)threadIdx.x, T - 1)];
    __syncthreads();
    int qmn = qdoc[0], qmx = qdoc[0];
    for (int r = 1; r < FA_ROWS; r++) { qmn = min(qmn, qdoc[r]); qmx = max(qmx, qdoc[r]); }

    float m[FA_RPW], l[FA_RPW], o[FA_RPW][NT];
    #pragma unroll
    for (int t = 0; t < FA_RPW; t++) {
        m[t] = -INFINITY; l[t] = 0.0f;
        #pragma unroll
        for (int u = 0; u < NT; u++) o[t][u] = 0.0f;
    }
    for (int k0 = 0; k0 < q1; k0 += FA_TILE) {  // causal: no key after the last query
        int kmn, kmx;
        fa_doc_range(db, k0, T, &kmn, &kmx);
        if (kmx < qmn || kmn > qmx) continue;   // no document in common: the tile is empty
        __syncthreads();                        // the previous tile is no longer read
        fa_load_rows(Ks, ld, k, b, k0, FA_TILE, T, KV, g, hd);
        fa_load_rows(Vs, ld, v, b, k0, FA_TILE, T, KV, g, hd);
        if (threadIdx.x < FA_TILE) kdoc[threadIdx.x] = db[min(k0 + (int)threadIdx.x, T - 1)];
        __syncthreads();
        #pragma unroll
        for (int t = 0; t < FA_RPW; t++) {
            int r = warp + FA_WARPS * t, i = q0 + r, j = k0 + lane;
            if (i >= T) continue;  // warp-uniform
            bool ok = j <= i && j < T && kdoc[lane] == qdoc[r];
            float s = -INFINITY;
            if (ok) {
                float acc = 0.0f;
                #pragma unroll 4
                for (int d = 0; d < hd; d++) acc += Qs[r * ld + d] * Ks[lane * ld + d];
                s = acc * scale;
            }
            float mnew = fmaxf(m[t], herd_warp_max(s));
            if (mnew == -INFINITY) continue;    // nothing allowed so far (warp-uniform)
            float p = ok ? expf(s - mnew) : 0.0f, alpha = expf(m[t] - mnew);
            l[t] = l[t] * alpha + herd_warp_sum(p);
            #pragma unroll
            for (int u = 0; u < NT; u++) o[t][u] *= alpha;
            #pragma unroll 1
            for (int jj = 0; jj < FA_TILE; jj++) {
                float pj = __shfl_sync(0xffffffffu, p, jj);
                if (pj == 0.0f) continue;       // uniform: pj is the same in every lane
                #pragma unroll
                for (int u = 0; u < NT; u++) {
                    int d = lane + 32 * u;
                    if (d < hd) o[t][u] += pj * Vs[jj * ld + d];
                }
            }
            m[t] = mnew;
        }
    }
    #pragma unroll
    for (int t = 0; t < FA_RPW; t++) {
        int r = warp + FA_WARPS * t, i = q0 + r;
        if (i >= T) continue;
        float inv = 1.0f / l[t];  // key i itself is always allowed: l >= 1
        float *oi = out + (((size_t)b * T + i) * H + h) * hd;
        #pragma unroll
        for (int u = 0; u < NT; u++) {
            int d = lane + 32 * u;
            if (d < hd) oi[d] = o[t][u] * inv;
        }
        if (lane == 0) lse[((size_t)b * H + h) * T + i] = m[t] + logf(l[t]);
    }
}

// D[b,h,i] = dout_i . out_i, one warp per row
__global__ void flash_bwd_dot_kernel(float *D, const float *dout, const float *out, int B, int T,
                                     int H, int hd)
{
    size_t row = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= (size_t)B * T * H) return;
    int lane = threadIdx.x & 31;
    const float *a = dout + row * hd, *c = out + row * hd;
    float s = 0.0f;
    for (int d = lane; d < hd; d += 32) s += a[d] * c[d];
    s = herd_warp_sum(s);
    // row = (b*T + i)*H + h  ->  D[(b*H + h)*T + i]
    size_t h = row % H, bi = row / H, i = bi % T, b = bi / T;
    if (lane == 0) D[(b * H + h) * T + i] = s;
}

// dq_i = scale * sum_j p_ij (dO_i . v_j - D_i) k_j
template <int NT>
__global__ void __launch_bounds__(FA_WARPS * 32)
flash_bwd_dq_kernel(float *dq, const float *dout, const float *lse, const float *D, const float *q,
                    const float *k, const float *v, const int32_t *doc, int T, int H, int KV,
                    int hd, float scale)
{
    extern __shared__ float sm[];
    const int ld = hd + 1;
    float *Qs = sm, *dOs = Qs + FA_ROWS * ld, *Ks = dOs + FA_ROWS * ld, *Vs = Ks + FA_TILE * ld;
    __shared__ int32_t qdoc[FA_ROWS], kdoc[FA_TILE];
    __shared__ float Ls[FA_ROWS], Ds[FA_ROWS];
    const int q0 = blockIdx.x * FA_ROWS, h = blockIdx.y, b = blockIdx.z, g = h / (H / KV);
    const int q1 = min(q0 + FA_ROWS, T), lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int32_t *db = doc + (size_t)b * T;

    fa_load_rows(Qs, ld, q, b, q0, FA_ROWS, T, H, h, hd);
    fa_load_rows(dOs, ld, dout, b, q0, FA_ROWS, T, H, h, hd);
    if (threadIdx.x < FA_ROWS) {
        int i = min(q0 + (int)threadIdx.x, T - 1);
        qdoc[threadIdx.x] = db[i];
        Ls[threadIdx.x] = lse[((size_t)b * H + h) * T + i];
        Ds[threadIdx.x] = D[((size_t)b * H + h) * T + i];
    }
    __syncthreads();
    int qmn = qdoc[0], qmx = qdoc[0];
    for (int r = 1; r < FA_ROWS; r++) { qmn = min(qmn, qdoc[r]); qmx = max(qmx, qdoc[r]); }

    float acc[FA_RPW][NT];
    #pragma unroll
    for (int t = 0; t < FA_RPW; t++)
        #pragma unroll
        for (int u = 0; u < NT; u++) acc[t][u] = 0.0f;
    for (int k0 = 0; k0 < q1; k0 += FA_TILE) {
        int kmn, kmx;
        fa_doc_range(db, k0, T, &kmn, &kmx);
        if (kmx < qmn || kmn > qmx) continue;
        __syncthreads();
        fa_load_rows(Ks, ld, k, b, k0, FA_TILE, T, KV, g, hd);
        fa_load_rows(Vs, ld, v, b, k0, FA_TILE, T, KV, g, hd);
        if (threadIdx.x < FA_TILE) kdoc[threadIdx.x] = db[min(k0 + (int)threadIdx.x, T - 1)];
        __syncthreads();
        #pragma unroll
        for (int t = 0; t < FA_RPW; t++) {
            int r = warp + FA_WARPS * t, i = q0 + r, j = k0 + lane;
            if (i >= T) continue;
            bool ok = j <= i && j < T && kdoc[lane] == qdoc[r];
            float ds = 0.0f;
            if (ok) {
                float s = 0.0f, dp = 0.0f;
                #pragma unroll 4
                for (int d = 0; d < hd; d++) {
                    s += Qs[r * ld + d] * Ks[lane * ld + d];
                    dp += dOs[r * ld + d] * Vs[lane * ld + d];
                }
                float p = expf(s * scale - Ls[r]);
                ds = p * (dp - Ds[r]) * scale;
            }
            #pragma unroll 1
            for (int jj = 0; jj < FA_TILE; jj++) {
                float dsj = __shfl_sync(0xffffffffu, ds, jj);
                if (dsj == 0.0f) continue;
                #pragma unroll
                for (int u = 0; u < NT; u++) {
                    int d = lane + 32 * u;
                    if (d < hd) acc[t][u] += dsj * Ks[jj * ld + d];
                }
            }
        }
    }
    #pragma unroll
    for (int t = 0; t < FA_RPW; t++) {
        int r = warp + FA_WARPS * t, i = q0 + r;
        if (i >= T) continue;
        float *dqi = dq + (((size_t)b * T + i) * H + h) * hd;
        #pragma unroll
        for (int u = 0; u < NT; u++) {
            int d = lane + 32 * u;
            if (d < hd) dqi[d] = acc[t][u];
        }
    }
}

// dv_j = sum_{h in group, i} p_ij dO_i;  dk_j = scale * sum p_ij (dO_i . v_j - D_i) q_i
template <int NT>
__global__ void __launch_bounds__(FA_WARPS * 32)
flash_bwd_dkdv_kernel(float *dk, float *dv, const float *dout, const float *lse, const float *D,
                      const float *q, const float *k, const float *v, const int32_t *doc, int T,
                      int H, int KV, int hd, float scale)
{
    extern __shared__ float sm[];
    const int ld = hd + 1;
    float *Ks = sm, *Vs = Ks + FA_ROWS * ld, *Qs = Vs + FA_ROWS * ld, *dOs = Qs + FA_TILE * ld;
    __shared__ int32_t kdoc[FA_ROWS], qdoc[FA_TILE];
    __shared__ float Ls[FA_TILE], Ds[FA_TILE];
    const int k0 = blockIdx.x * FA_ROWS, g = blockIdx.y, b = blockIdx.z, group = H / KV;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int32_t *db = doc + (size_t)b * T;

    fa_load_rows(Ks, ld, k, b, k0, FA_ROWS, T, KV, g, hd);
    fa_load_rows(Vs, ld, v, b, k0, FA_ROWS, T, KV, g, hd);
    if (threadIdx.x < FA_ROWS) kdoc[threadIdx.x] = db[min(k0 + (int)threadIdx.x, T - 1)];
    __syncthreads();
    int kmn = kdoc[0], kmx = kdoc[0];
    for (int r = 1; r < FA_ROWS; r++) { kmn = min(kmn, kdoc[r]); kmx = max(kmx, kdoc[r]); }

    float adk[FA_RPW][NT], adv[FA_RPW][NT];
    #pragma unroll
    for (int t = 0; t < FA_RPW; t++)
        #pragma unroll
        for (int u = 0; u < NT; u++) adk[t][u] = adv[t][u] = 0.0f;
    // causal: the first query tile that can see key k0 holds row k0
    for (int h = g * group; h < (g + 1) * group; h++)
        for (int q0 = (k0 / FA_TILE) * FA_TILE; q0 < T; q0 += FA_TILE) {
            int qmn, qmx;
            fa_doc_range(db, q0, T, &qmn, &qmx);
            if (qmx < kmn || qmn > kmx) continue;
            __syncthreads();
            fa_load_rows(Qs, ld, q, b, q0, FA_TILE, T, H, h, hd);
            fa_load_rows(dOs, ld, dout, b, q0, FA_TILE, T, H, h, hd);
            if (threadIdx.x < FA_TILE) {
                int i = min(q0 + (int)threadIdx.x, T - 1);
                qdoc[threadIdx.x] = db[i];
                Ls[threadIdx.x] = lse[((size_t)b * H + h) * T + i];
                Ds[threadIdx.x] = D[((size_t)b * H + h) * T + i];
            }
            __syncthreads();
            #pragma unroll
            for (int t = 0; t < FA_RPW; t++) {
                int r = warp + FA_WARPS * t, j = k0 + r, i = q0 + lane;
                if (j >= T) continue;
                bool ok = i < T && i >= j && qdoc[lane] == kdoc[r];
                float p = 0.0f, ds = 0.0f;
                if (ok) {
                    float s = 0.0f, dp = 0.0f;
                    #pragma unroll 4
                    for (int d = 0; d < hd; d++) {
                        s += Qs[lane * ld + d] * Ks[r * ld + d];
                        dp += dOs[lane * ld + d] * Vs[r * ld + d];
                    }
                    p = expf(s * scale - Ls[lane]);
                    ds = p * (dp - Ds[lane]) * scale;
                }
                #pragma unroll 1
                for (int ii = 0; ii < FA_TILE; ii++) {
                    float pi = __shfl_sync(0xffffffffu, p,
                                           ii), dsi = __shfl_sync(0xffffffffu, ds, ii);
                    if (pi == 0.0f && dsi == 0.0f) continue;
                    #pragma unroll
                    for (int u = 0; u < NT; u++) {
                        int d = lane + 32 * u;
                        if (d < hd) {
                            adv[t][u] += pi * dOs[ii * ld + d];
                            adk[t][u] += dsi * Qs[ii * ld + d];
                        }
                    }
                }
            }
        }
    #pragma unroll
    for (int t = 0; t < FA_RPW; t++) {
        int r = warp + FA_WARPS * t, j = k0 + r;
        if (j >= T) continue;
        size_t base = (((size_t)b * T + j) * KV + g) * hd;
        #pragma unroll
        for (int u = 0; u < NT; u++) {
            int d = lane + 32 * u;
            if (d < hd) { dk[base + d] = adk[t][u]; dv[base + d] = adv[t][u]; }
        }
    }
}

// ---- launchers ------------------------------------------------------------------

static void fa_check_shape(const char *op, int H, int KV, int hd)
{
    if (hd < 1 || hd > FA_MAX_HD || KV < 1 || H % KV) {
        fprintf(stderr, "herd: kernels/cuda/flash_attention.cu: %s: head_dim %d (1..%d), "
                "heads %d / kv heads %d (must divide)\n", op, hd, FA_MAX_HD, H, KV);
        exit(1);
    }
}

// shared memory of a kernel: `rows` rows of hd+1 floats; above 48 KiB it must be opted into
template <typename K> static void fa_smem(K kernel, size_t bytes)
{
    if (bytes > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        (int)bytes));
}

template <int NT>
static void fa_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                   const int32_t *doc, int B, int T, int H, int KV, int hd)
{
    size_t smem = sizeof(float) * (FA_ROWS + 2 * FA_TILE) * (hd + 1);
    fa_smem(flash_fwd_kernel<NT>, smem);
    dim3 grid((T + FA_ROWS - 1) / FA_ROWS, H, B);
    flash_fwd_kernel<NT><<<grid, FA_WARPS * 32, smem>>>(out, lse, q, k, v, doc, T, H, KV, hd,
                                                        1.0f / sqrtf((float)hd));
    CUDA_LAUNCH_CHECK();
}

template <int NT>
static void fa_bwd(float *dq, float *dk, float *dv, const float *dout, const float *lse,
                   const float *D, const float *q, const float *k, const float *v,
                   const int32_t *doc, int B, int T, int H, int KV, int hd)
{
    float scale = 1.0f / sqrtf((float)hd);
    size_t smem = sizeof(float) * (2 * FA_ROWS + 2 * FA_TILE) * (hd + 1);
    fa_smem(flash_bwd_dq_kernel<NT>, smem);
    fa_smem(flash_bwd_dkdv_kernel<NT>, smem);
    dim3 gq((T + FA_ROWS - 1) / FA_ROWS, H, B), gk((T + FA_ROWS - 1) / FA_ROWS, KV, B);
    flash_bwd_dq_kernel<NT><<<gq, FA_WARPS * 32, smem>>>(dq, dout, lse, D, q, k, v, doc, T, H, KV,
                                                         hd, scale);
    CUDA_LAUNCH_CHECK();
    flash_bwd_dkdv_kernel<NT><<<gk, FA_WARPS * 32, smem>>>(dk, dv, dout, lse, D, q, k, v, doc, T,
                                                           H, KV, hd, scale);
    CUDA_LAUNCH_CHECK();
}

#define FA_DISPATCH(fn, hd, ...) do { switch (((hd) + 31) / 32) { \
    case 1: fn<1>(__VA_ARGS__); break; case 2: fn<2>(__VA_ARGS__); break; \
    case 3: fn<3>(__VA_ARGS__); break; case 4: fn<4>(__VA_ARGS__); break; \
    case 5: fn<5>(__VA_ARGS__); break; case 6: fn<6>(__VA_ARGS__); break; \
    case 7: fn<7>(__VA_ARGS__); break; default: fn<8>(__VA_ARGS__); break; } } while (0)

extern "C" void cuda_attention_flash_fwd(const herd_backend *be, float *out, float *lse,
                                         const float *q, const float *k, const float *v,
                                         const int32_t *doc, int B, int T, int H, int KV, int hd)
{
    if (B <= 0 || T <= 0 || H <= 0) return;
    fa_check_shape("attention_flash_fwd", H, KV, hd);
    if (cuda_get_matmul_bf16(be) && cuda_attention_flash_wmma_ok(hd)) {  // bf16 tensor cores
        cuda_attention_flash_wmma_fwd(out, lse, q, k, v, doc, B, T, H, KV, hd);
        return;
    }
    FA_DISPATCH(fa_fwd, hd, out, lse, q, k, v, doc, B, T, H, KV, hd);
}

extern "C" void cuda_attention_flash_bwd(const herd_backend *be, float *dq, float *dk, float *dv,
                                         const float *dout, const float *out, const float *lse,
                                         const float *q, const float *k, const float *v,
                                         const int32_t *doc, int B, int T, int H, int KV, int hd)
{
    if (B <= 0 || T <= 0 || H <= 0) return;
    fa_check_shape("attention_flash_bwd", H, KV, hd);
    size_t rows = (size_t)B * T * H;
    float *D = (float *)herd_cuda_scratch(be, HERD_SCRATCH_FLASH_D, rows * sizeof(float));
    flash_bwd_dot_kernel<<<(unsigned)((rows + 7) / 8), 256>>>(D, dout, out, B, T, H, hd);
    CUDA_LAUNCH_CHECK();
    if (cuda_get_matmul_bf16(be) && cuda_attention_flash_wmma_ok(hd)) {  // bf16 tensor cores
        cuda_attention_flash_wmma_bwd(dq, dk, dv, dout, lse, D, q, k, v, doc, B, T, H, KV, hd);
        return;
    }
    FA_DISPATCH(fa_bwd, hd, dq, dk, dv, dout, lse, D, q, k, v, doc, B, T, H, KV, hd);
}
