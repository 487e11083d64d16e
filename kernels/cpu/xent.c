/* xent.c — cross-entropy over the vocabulary, forward and in-place backward. */
#include <math.h>
#include "kernels/cpu/cpu_ops.h"

/* losses[n] = lse - logits[target], lse[n] = log sum exp(logits row) */
void cpu_xent_fwd(float *losses, float *lse, const float *logits, const int32_t *targets, int n, int V)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * V;
        float mx = row[0];
        for (int j = 1; j < V; j++) mx = row[j] > mx ? row[j] : mx;
        double s = 0.0;
        for (int j = 0; j < V; j++) s += expf(row[j] - mx);
        float l = mx + (float)log(s);
        lse[i] = l;
        losses[i] = targets[i] >= 0 ? l - row[targets[i]] : 0.0f;
    }
}

/* logits[n,V] <- (softmax - onehot) * scale; rows with target < 0 become 0:
 * the vocabulary-parallel backward with the whole vocabulary on this rank */
void cpu_xent_bwd(float *logits, const float *lse, const int32_t *targets, int n, int V, float scale)
{
    cpu_xent_bwd_range(logits, lse, targets, 0, n, V, scale);
}

void cpu_xent_row_max(float *row_max, const float *logits, int n, int V)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * V;
        float mx = row[0];
        for (int j = 1; j < V; j++) mx = row[j] > mx ? row[j] : mx;
        row_max[i] = mx;
    }
}

void cpu_xent_sumexp_pick(float *sumexp, float *picked, const float *logits, const float *m,
                          const int32_t *targets, int v0, int n, int V)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * V;
        double s = 0.0;
        for (int j = 0; j < V; j++) s += expf(row[j] - m[i]);
        sumexp[i] = (float)s;
        int t = targets[i] - v0;
        picked[i] = targets[i] >= 0 && t >= 0 && t < V ? row[t] : 0.0f;
    }
}

void cpu_xent_bwd_range(float *logits, const float *lse, const int32_t *targets, int v0, int n,
                        int V, float scale)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *row = logits + (size_t)i * V;
        if (targets[i] < 0) {
            for (int j = 0; j < V; j++) row[j] = 0.0f;
            continue;
        }
        float l = lse[i];
        for (int j = 0; j < V; j++) row[j] = expf(row[j] - l) * scale;
        int t = targets[i] - v0;
        if (t >= 0 && t < V) row[t] -= scale;
    }
}

/* One chunk of the online softmax (kernels/backend.h): the running max moves
 * to the chunk's max when that is larger and the running sum is rescaled to
 * it, so no row of the whole [n, V] logits is ever needed at once. */
void cpu_xent_chunk_update(float *row_max, float *sumexp, float *picked, const float *logits,
                           const int32_t *targets, int v0, int n, int Vc)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * Vc;
        float mc = row[0];
        for (int j = 1; j < Vc; j++) mc = row[j] > mc ? row[j] : mc;
        float m_old = row_max[i], m_new = mc > m_old ? mc : m_old;
        double s = 0.0;
        for (int j = 0; j < Vc; j++) s += expf(row[j] - m_new);
        /* m_old = -inf on the first chunk: exp(-inf) = 0 drops the empty sum */
        sumexp[i] = (float)((double)sumexp[i] * expf(m_old - m_new) + s);
        row_max[i] = m_new;
        int t = targets[i] - v0;
        if (targets[i] >= 0 && t >= 0 && t < Vc) picked[i] = row[t];
    }
}
