/* attention.c — causal, document-masked grouped-query attention.
 *
 * For each (sequence b, query head h) with kv head g = h / (H/KV):
 *   S = Q_bh K_bg^T / sqrt(hd)          [T,T]   (CBLAS, strided views, no copies)
 *   P = softmax over allowed j          [T,T]   j <= i and doc[j] == doc[i]
 *   O_bh = P V_bg                        [T,hd]
 * The full T x T product is computed and the masked half discarded; the
 * probabilities are kept for the backward (llm.c style), which is the memory
 * price of the simple reference.
 */
#include <cblas.h>
#include <math.h>
#include <string.h>
#include "kernels/cpu/cpu_ops.h"

/* Row i of S -> probabilities over the allowed j; masked entries 0. */
static void masked_softmax_rows(float *S, const int32_t *doc, int T)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < T; i++) {
        float *row = S + (size_t)i * T;
        int32_t di = doc[i];
        float mx = -INFINITY;
        for (int j = 0; j <= i; j++)
            if (doc[j] == di && row[j] > mx) mx = row[j];
        float sum = 0.0f;
        for (int j = 0; j <= i; j++) {
            float e = doc[j] == di ? expf(row[j] - mx) : 0.0f;
            row[j] = e;
            sum += e;
        }
        float inv = 1.0f / sum;  /* j = i is always allowed: sum >= 1 */
        for (int j = 0; j <= i; j++) row[j] *= inv;
        for (int j = i + 1; j < T; j++) row[j] = 0.0f;
    }
}

void cpu_attention_fwd(float *out, float *att, const float *q, const float *k, const float *v,
                       const int32_t *doc, int B, int T, int H, int KV, int hd)
{
    float scale = 1.0f / sqrtf((float)hd);
    int group = H / KV;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / group;
            const float *Q = q + ((size_t)b * T * H + h) * hd;
            const float *K = k + ((size_t)b * T * KV + g) * hd;
            const float *V = v + ((size_t)b * T * KV + g) * hd;
            float *S = att + ((size_t)b * H + h) * T * T;
            float *O = out + ((size_t)b * T * H + h) * hd;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd,
                        scale, Q, H * hd, K, KV * hd, 0.0f, S, T);
            masked_softmax_rows(S, doc + (size_t)b * T, T);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T,
                        1.0f, S, T, V, KV * hd, 0.0f, O, H * hd);
        }
}

/* dS = P * (dP - rowsum(P * dP)), in place over dP */
static void softmax_bwd_rows(float *dP, const float *P, int T)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < T; i++) {
        float *d = dP + (size_t)i * T;
        const float *p = P + (size_t)i * T;
        float dot = 0.0f;
        for (int j = 0; j <= i; j++) dot += p[j] * d[j];
        for (int j = 0; j <= i; j++) d[j] = p[j] * (d[j] - dot);
        for (int j = i + 1; j < T; j++) d[j] = 0.0f;
    }
}

void cpu_attention_bwd(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                       const float *att, const float *q, const float *k, const float *v,
                       const int32_t *doc, int B, int T, int H, int KV, int hd)
{
    float scale = 1.0f / sqrtf((float)hd);
    int group = H / KV;
    memset(dk, 0, sizeof(float) * (size_t)B * T * KV * hd);
    memset(dv, 0, sizeof(float) * (size_t)B * T * KV * hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / group;
            size_t qo = ((size_t)b * T * H + h) * hd, ko = ((size_t)b * T * KV + g) * hd;
            const float *P = att + ((size_t)b * H + h) * T * T;
            const float *dO = dout + qo;
            /* dP = dO V^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd,
                        1.0f, dO, H * hd, v + ko, KV * hd, 0.0f, scratch, T);
            /* dV += P^T dO (query heads of a group share dV) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T,
                        1.0f, P, T, dO, H * hd, 1.0f, dv + ko, KV * hd);
            softmax_bwd_rows(scratch, P, T);
            /* dQ = scale dS K;  dK += scale dS^T Q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T,
                        scale, scratch, T, k + ko, KV * hd, 0.0f, dq + qo, H * hd);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T,
                        scale, scratch, T, q + qo, H * hd, 1.0f, dk + ko, KV * hd);
        }
    (void)doc; /* the mask lives in P: masked entries are exactly 0 */
}
