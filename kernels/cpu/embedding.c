/* embedding.c — token embedding lookup and its scatter-add backward. */
#include <omp.h>
#include <string.h>
#include "kernels/cpu/cpu_ops.h"

/* out[n,d] = wte[tokens[i], :] */
void cpu_embedding_fwd(float *out, const int32_t *tokens, const float *wte, int n, int d)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0) memset(out + (size_t)i * d, 0, sizeof(float) * d);
        else memcpy(out + (size_t)i * d, wte + (size_t)tokens[i] * d, sizeof(float) * d);
    }
}

/* dwte[tokens[i], :] += dout[i, :]. Threads split the columns, so every row of
 * dwte sums its tokens in token order: deterministic for any thread count. */
void cpu_embedding_bwd(float *dwte, const float *dout, const int32_t *tokens, int n, int d)
{
#pragma omp parallel
    {
        int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        int lo = (int)((long)d * tid / nt), hi = (int)((long)d * (tid + 1) / nt);
        for (int i = 0; i < n; i++) {
            if (tokens[i] < 0) continue;
            float *row = dwte + (size_t)tokens[i] * d;
            const float *g = dout + (size_t)i * d;
            for (int j = lo; j < hi; j++) row[j] += g[j];
        }
    }
}
