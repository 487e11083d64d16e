/* attention_flash_bf16.c — the CPU oracle of the tensor-core flash attention
 * (kernels/cuda/flash_attention_wmma.cu): FlashAttention-2 numerics under bf16
 * autocast, written plainly so that the GPU (or an emulator of it) can be
 * compared with it tightly.
 *
 * The same math with the same roundings as the kernels:
 *   - Q, K, V, dO rounded to bf16 (to nearest even: cpu_round_bf16) before any
 *     product, every product summed in fp32;
 *   - forward: key tiles of HERD_FLASH_BF16_KTILE (64), the kernel's; per tile
 *     s = (q . k) * scale, m_new = max(m, tile max), alpha = exp(m - m_new),
 *     p = exp(s - m_new); l = l * alpha + sum p with p in fp32 (the even and the
 *     odd columns summed apart, as the kernel's lane pair does), while the P V
 *     product takes p rounded to bf16: o = alpha * o + sum bf16(p) v;
 *     out = o / l, lse = m + log(l);
 *   - backward: p = exp(s*scale - lse), D = dO . O in fp32 from the fp32 dO
 *     and O, dS = p (dP - D) in fp32; dv += bf16(p) dO, dk += bf16(dS) q,
 *     dq += bf16(dS) k, and dq, dk times scale at the end (dS is rounded
 *     without the scale, as FlashAttention-2).
 * What the kernels do in another order: the fp32 sums inside a GEMM (a tensor
 * core's order is its own). A tile wholly masked out adds exact zeros, so the
 * tile skipping of the kernels cannot change a result; the rescale points of
 * the forward can, and are the kernel's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/cpu/attention_flash_bf16.h"
#include "kernels/cpu/cpu_ops.h"

#define KT HERD_FLASH_BF16_KTILE

/* x[n] rounded to bf16 in a new buffer */
static float *rounded(const float *x, size_t n)
{
    float *r = malloc((n ? n : 1) * sizeof(float));
    if (!r) {
        fprintf(stderr, "herd: cpu attention_flash_bf16: out of memory for %zu elements\n", n);
        abort();
    }
    for (size_t i = 0; i < n; i++) r[i] = cpu_round_bf16(x[i]);
    return r;
}

static float dot(const float *a, const float *b, int n)
{
    float s = 0.0f;
    for (int d = 0; d < n; d++) s += a[d] * b[d];
    return s;
}

void cpu_attention_flash_bf16_fwd(float *out, float *lse, const float *q, const float *k,
                                  const float *v, const int32_t *doc, int B, int T, int H,
                                  int KV, int hd)
{
    float scale = 1.0f / sqrtf((float)hd);
    int group = H / KV;
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd;
    float *qb = rounded(q, nq), *kb = rounded(k, nk), *vb = rounded(v, nk);
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / group;
            const int32_t *db = doc + (size_t)b * T;
            float *o = malloc(sizeof(float) * (size_t)hd), s[KT], pb[KT];
            for (int i = 0; i < T; i++) {
                /* the kernel's block of 64 query rows holding i: keys up to its last row */
                int q1 = (i / 64) * 64 + 64 < T ? (i / 64) * 64 + 64 : T;
                const float *qi = qb + (((size_t)b * T + i) * H + h) * hd;
                float m = -INFINITY, l = 0.0f;
                memset(o, 0, sizeof(float) * (size_t)hd);
                for (int k0 = 0; k0 < q1; k0 += KT) {
                    int n = k0 + KT < T ? KT : T - k0;
                    float mt = -INFINITY;
                    for (int c = 0; c < n; c++) {
                        int j = k0 + c;
                        s[c] = -INFINITY;
                        if (j <= i && db[j] == db[i])
                            s[c] = dot(qi, kb + (((size_t)b * T + j) * KV + g) * hd, hd) * scale;
                        if (s[c] > mt) mt = s[c];
                    }
                    float mnew = m > mt ? m : mt;
                    if (mnew == -INFINITY) continue; /* nothing allowed yet: alpha 1, p 0 */
                    float alpha = expf(m - mnew), se = 0.0f, so = 0.0f;
                    for (int c = 0; c < n; c++) {
                        float p = s[c] == -INFINITY ? 0.0f : expf(s[c] - mnew);
                        if (c & 1) so += p; else se += p;
                        pb[c] = cpu_round_bf16(p);
                    }
                    l = l * alpha + (se + so);
                    for (int d = 0; d < hd; d++) {
                        float acc = 0.0f;
                        for (int c = 0; c < n; c++)
                            acc += pb[c] * vb[(((size_t)b * T + k0 + c) * KV + g) * hd + d];
                        o[d] = o[d] * alpha + acc;
                    }
                    m = mnew;
                }
                float *oi = out + (((size_t)b * T + i) * H + h) * hd;
                for (int d = 0; d < hd; d++) oi[d] = o[d] / l; /* j = i is always allowed */
                lse[((size_t)b * H + h) * T + i] = m + logf(l);
            }
            free(o);
        }
    free(qb);
    free(kb);
    free(vb);
}

void cpu_attention_flash_bf16_bwd(float *dq, float *dk, float *dv, const float *dout,
                                  const float *out, const float *lse, const float *q,
                                  const float *k, const float *v, const int32_t *doc, int B,
                                  int T, int H, int KV, int hd)
{
    float scale = 1.0f / sqrtf((float)hd);
    int group = H / KV;
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd;
    float *qb = rounded(q, nq), *kb = rounded(k, nk), *vb = rounded(v, nk),
          *dob = rounded(dout, nq);
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
                for (int i = 0; i < T; i++) {
                    size_t qo = (((size_t)b * T + i) * H + h) * hd;
                    const float *qi = qb + qo, *doi = dob + qo;
                    float *dqi = dq + qo;
                    float Di = dot(dout + qo, out + qo, hd), L = lse[((size_t)b * H + h) * T + i];
                    memset(dqi, 0, sizeof(float) * (size_t)hd);
                    for (int j = 0; j <= i; j++) {
                        if (db[j] != db[i]) continue;
                        size_t ko = (((size_t)b * T + j) * KV + g) * hd;
                        float p = expf(dot(qi, kb + ko, hd) * scale - L);
                        float ds = p * (dot(doi, vb + ko, hd) - Di);
                        float pb = cpu_round_bf16(p), dsb = cpu_round_bf16(ds);
                        for (int d = 0; d < hd; d++) {
                            dv[ko + d] += pb * doi[d];
                            dk[ko + d] += dsb * qi[d];
                            dqi[d] += dsb * kb[ko + d];
                        }
                    }
                    for (int d = 0; d < hd; d++) dqi[d] *= scale;
                }
            for (int j = 0; j < T; j++) {
                float *dkj = dk + (((size_t)b * T + j) * KV + g) * hd;
                for (int d = 0; d < hd; d++) dkj[d] *= scale;
            }
        }
    free(qb);
    free(kb);
    free(vb);
    free(dob);
}
