/* attention_pos.c — grouped-query attention with explicit query and key
 * positions and document ids (context parallelism: a rank's queries are two
 * chunks of the sequence, its keys the whole sequence gathered from the CP
 * group in rank order, so position and mask are no longer the row index).
 *
 * For each (sequence b, query head h), kv head g = h / (H/KV):
 *   S = Q_bh K_bg^T / sqrt(hd)     [Tq, Tk]
 *   P = softmax over allowed j     kpos[j] <= qpos[i] and kdoc[j] == qdoc[i]
 *   O_bh = P V_bg                  [Tq, hd]
 * Masked entries of P are exactly 0, so the backward needs no mask.
 */
#include <cblas.h>
#include <math.h>
#include <string.h>
#include "kernels/cpu/cpu_ops.h"

static void masked_softmax_pos(float *S, const int32_t *qpos, const int32_t *qdoc,
                               const int32_t *kpos, const int32_t *kdoc, int Tq, int Tk)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < Tq; i++) {
        float *row = S + (size_t)i * Tk;
        int32_t pi = qpos[i], di = qdoc[i];
        float mx = -INFINITY;
        for (int j = 0; j < Tk; j++)
            if (kpos[j] <= pi && kdoc[j] == di && row[j] > mx) mx = row[j];
        float sum = 0.0f;
        for (int j = 0; j < Tk; j++) {
            float e = kpos[j] <= pi && kdoc[j] == di ? expf(row[j] - mx) : 0.0f;
            row[j] = e;
            sum += e;
        }
        /* the query's own key is among the keys: sum >= 1 */
        float inv = 1.0f / sum;
        for (int j = 0; j < Tk; j++) row[j] *= inv;
    }
}

void cpu_attention_fwd_pos(float *out, float *att, const float *q, const float *k, const float *v,
                           const int32_t *qpos, const int32_t *qdoc, const int32_t *kpos,
                           const int32_t *kdoc, int B, int Tq, int Tk, int H, int KV, int hd)
{
    float scale = 1.0f / sqrtf((float)hd);
    int group = H / KV;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / group;
            const float *Q = q + ((size_t)b * Tq * H + h) * hd;
            const float *K = k + ((size_t)b * Tk * KV + g) * hd;
            const float *V = v + ((size_t)b * Tk * KV + g) * hd;
            float *S = att + ((size_t)b * H + h) * Tq * Tk;
            float *O = out + ((size_t)b * Tq * H + h) * hd;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Tq, Tk, hd, scale, Q, H * hd, K,
                        KV * hd, 0.0f, S, Tk);
            masked_softmax_pos(S, qpos + (size_t)b * Tq, qdoc + (size_t)b * Tq,
                               kpos + (size_t)b * Tk, kdoc + (size_t)b * Tk, Tq, Tk);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tq, hd, Tk, 1.0f, S, Tk, V,
                        KV * hd, 0.0f, O, H * hd);
        }
}

/* dS = P * (dP - rowsum(P * dP)) in place over dP[Tq, Tk] */
static void softmax_bwd_full(float *dP, const float *P, int Tq, int Tk)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < Tq; i++) {
        float *d = dP + (size_t)i * Tk;
        const float *p = P + (size_t)i * Tk;
        float dot = 0.0f;
        for (int j = 0; j < Tk; j++) dot += p[j] * d[j];
        for (int j = 0; j < Tk; j++) d[j] = p[j] * (d[j] - dot);
    }
}

void cpu_attention_bwd_pos(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                           const float *att, const float *q, const float *k, const float *v,
                           int B, int Tq, int Tk, int H, int KV, int hd)
{
    float scale = 1.0f / sqrtf((float)hd);
    int group = H / KV;
    memset(dk, 0, sizeof(float) * (size_t)B * Tk * KV * hd);
    memset(dv, 0, sizeof(float) * (size_t)B * Tk * KV * hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / group;
            size_t qo = ((size_t)b * Tq * H + h) * hd, ko = ((size_t)b * Tk * KV + g) * hd;
            const float *P = att + ((size_t)b * H + h) * Tq * Tk;
            const float *dO = dout + qo;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Tq, Tk, hd, 1.0f, dO, H * hd,
                        v + ko, KV * hd, 0.0f, scratch, Tk);                 /* dP = dO V^T */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tk, hd, Tq, 1.0f, P, Tk, dO,
                        H * hd, 1.0f, dv + ko, KV * hd);                    /* dV += P^T dO */
            softmax_bwd_full(scratch, P, Tq, Tk);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tq, hd, Tk, scale, scratch,
                        Tk, k + ko, KV * hd, 0.0f, dq + qo, H * hd);         /* dQ = s dS K */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tk, hd, Tq, scale, scratch,
                        Tk, q + qo, H * hd, 1.0f, dk + ko, KV * hd);         /* dK += s dS^T Q */
        }
}
