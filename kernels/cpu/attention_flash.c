/* attention_flash.c — the CPU oracle of the flash-attention pair
 * (kernels/cuda/flash_attention.cu): attention_fwd's result without the
 * [B,H,T,T] probabilities.
 *
 * The same algorithm as the GPU kernel, written plainly: for each query row,
 * keys in tiles of FLASH_BK; a tile whose documents cannot match the query
 * tile's, or that starts after the query tile's last row (causal), is skipped
 * whole; inside a tile the online softmax rescales the running sum and output
 * by exp(m_old - m_new). Only lse[b,h,i] = m + log(l) is kept; the backward
 * recomputes p_ij = exp(s_ij - lse_i) and uses D_i = dO_i . O_i
 * (dS = P (dP - D), FlashAttention-2). Shapes: q,out [B,T,H,hd]; k,v [B,T,KV,hd];
 * doc [B,T]; lse [B,H,T]. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/cpu/cpu_ops.h"

#define FLASH_BQ 16 /* query rows per tile (the GPU kernel's block) */
#define FLASH_BK 32 /* keys per tile (a warp's lanes on the GPU) */

/* min and max document of positions [lo, hi) */
static void doc_range(const int32_t *doc, int lo, int hi, int32_t *mn, int32_t *mx)
{
    *mn = doc[lo];
    *mx = doc[lo];
    for (int i = lo + 1; i < hi; i++) {
        if (doc[i] < *mn) *mn = doc[i];
        if (doc[i] > *mx) *mx = doc[i];
    }
}

/* Key tile [k0, k0+BK) is empty for every query of tile [q0, q1): it starts after
 * the last query (causal) or its documents and the queries' do not overlap. */
static int tile_empty(const int32_t *doc, int q0, int q1, int k0, int T)
{
    if (k0 > q1 - 1) return 1;
    int k1 = k0 + FLASH_BK < T ? k0 + FLASH_BK : T;
    int32_t qmn, qmx, kmn, kmx;
    doc_range(doc, q0, q1, &qmn, &qmx);
    doc_range(doc, k0, k1, &kmn, &kmx);
    return kmx < qmn || kmn > qmx;
}

static float dot(const float *a, const float *b, int n)
{
    float s = 0.0f;
    for (int d = 0; d < n; d++) s += a[d] * b[d];
    return s;
}

void cpu_attention_flash_fwd(float *out, float *lse, const float *q, const float *k,
                             const float *v, const int32_t *doc, int B, int T, int H, int KV,
                             int hd)
{
    float scale = 1.0f / sqrtf((float)hd);
    int group = H / KV;
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / group;
            const int32_t *db = doc + (size_t)b * T;
            float *o = malloc(sizeof(float) * (size_t)hd);
            for (int q0 = 0; q0 < T; q0 += FLASH_BQ) {
                int q1 = q0 + FLASH_BQ < T ? q0 + FLASH_BQ : T;
                for (int i = q0; i < q1; i++) {
                    const float *qi = q + (((size_t)b * T + i) * H + h) * hd;
                    float m = -INFINITY, l = 0.0f;
                    memset(o, 0, sizeof(float) * (size_t)hd);
                    for (int k0 = 0; k0 < q1; k0 += FLASH_BK) {
                        if (tile_empty(db, q0, q1, k0, T)) continue;
                        int k1 = k0 + FLASH_BK < T ? k0 + FLASH_BK : T;
                        for (int j = k0; j < k1; j++) {
                            if (j > i || db[j] != db[i]) continue;
                            const float *kj = k + (((size_t)b * T + j) * KV + g) * hd;
                            const float *vj = v + (((size_t)b * T + j) * KV + g) * hd;
                            float s = dot(qi, kj, hd) * scale;
                            if (s > m) { /* rescale what was summed under the old max */
                                float a = expf(m - s);
                                l *= a;
                                for (int d = 0; d < hd; d++) o[d] *= a;
                                m = s;
                            }
                            float p = expf(s - m);
                            l += p;
                            for (int d = 0; d < hd; d++) o[d] += p * vj[d];
                        }
                    }
                    float *oi = out + (((size_t)b * T + i) * H + h) * hd;
                    for (int d = 0; d < hd; d++) oi[d] = o[d] / l; /* j = i is always allowed */
                    lse[((size_t)b * H + h) * T + i] = m + logf(l);
                }
            }
            free(o);
        }
}

void cpu_attention_flash_bwd(float *dq, float *dk, float *dv, const float *dout,
                             const float *out, const float *lse, const float *q, const float *k,
                             const float *v, const int32_t *doc, int B, int T, int H, int KV,
                             int hd)
{
    float scale = 1.0f / sqrtf((float)hd);
    int group = H / KV;
    /* one task per (b, kv head): it owns dk, dv of that head and dq of the
     * group's query heads, so no two tasks write the same element */
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++)
        for (int g = 0; g < KV; g++) {
            const int32_t *db = doc + (size_t)b * T;
            for (int j = 0; j < T; j++) {
                memset(dk + (((size_t)b * T + j) * KV + g) * hd, 0, sizeof(float) * (size_t)hd);
                memset(dv + (((size_t)b * T + j) * KV + g) * hd, 0, sizeof(float) * (size_t)hd);
            }
            for (int h = g * group; h < (g + 1) * group; h++)
                for (int q0 = 0; q0 < T; q0 += FLASH_BQ) {
                    int q1 = q0 + FLASH_BQ < T ? q0 + FLASH_BQ : T;
                    for (int i = q0; i < q1; i++) {
                        size_t qo = (((size_t)b * T + i) * H + h) * hd;
                        const float *qi = q + qo, *doi = dout + qo;
                        float *dqi = dq + qo;
                        float Di = dot(doi, out + qo, hd), L = lse[((size_t)b * H + h) * T + i];
                        memset(dqi, 0, sizeof(float) * (size_t)hd);
                        for (int k0 = 0; k0 < q1; k0 += FLASH_BK) {
                            if (tile_empty(db, q0, q1, k0, T)) continue;
                            int k1 = k0 + FLASH_BK < T ? k0 + FLASH_BK : T;
                            for (int j = k0; j < k1; j++) {
                                if (j > i || db[j] != db[i]) continue;
                                size_t ko = (((size_t)b * T + j) * KV + g) * hd;
                                float p = expf(dot(qi, k + ko, hd) * scale - L);
                                float ds = p * (dot(doi, v + ko, hd) - Di) * scale;
                                for (int d = 0; d < hd; d++) {
                                    dv[ko + d] += p * doi[d];
                                    dk[ko + d] += ds * qi[d];
                                    dqi[d] += ds * k[ko + d];
                                }
                            }
                        }
                    }
                }
        }
}
