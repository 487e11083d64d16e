/* test_backend.c — backends as instances (kernels/backend.h): two CPU
 * backends in one process, one fp32 and one bf16, each with its own matmul
 * precision, bf16 weight copy and memory ledger, so that neither sees the
 * other's state, and freeing one leaves the other working.
 *
 * The fp32 reference is a plain triple loop summed in double: the fp32
 * backend's sgemm must stay within fp32 rounding of it, and must give the
 * same bits as the process's default CPU backend (the instance the trainer
 * used before there were instances). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/backend.h"
#include "kernels/cpu/cpu_ops.h"
#include "src/base/rng.h"
#include "tests/unit/test.h"

enum { M = 37, N = 29, K = 41 };

static float *randn(size_t n, uint64_t stream)
{
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)herd_rng_normal(11, stream, i);
    return x;
}

static int same(const float *a, const float *b, size_t n)
{
    return !memcmp(a, b, n * sizeof(float));
}

/* out[M,N] = a[M,K] @ w[N,K]^T in double, inputs first rounded to bf16 when asked */
static void reference(double *out, const float *a, const float *w, int bf16)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                float x = a[i * K + k], y = w[j * K + k];
                if (bf16) x = cpu_round_bf16(x), y = cpu_round_bf16(y);
                s += (double)x * y;
            }
            out[i * N + j] = s;
        }
}

/* the largest |out - ref| relative to the largest |ref| */
static double rel_err(const float *out, const double *ref, size_t n)
{
    double d = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs(out[i] - ref[i]));
        mx = fmax(mx, fabs(ref[i]));
    }
    return d / mx;
}

/* out = a @ w^T on be, through backend memory */
static void matmul(const herd_backend *be, float *out, const float *a, const float *w)
{
    float *da = be->alloc(be, sizeof(float) * M * K), *dw = be->alloc(be, sizeof(float) * N * K),
          *dout = be->alloc(be, sizeof(float) * M * N);
    be->copy_h2d(be, da, a, sizeof(float) * M * K);
    be->copy_h2d(be, dw, w, sizeof(float) * N * K);
    be->matmul_fwd(be, dout, da, dw, M, N, K, 0);
    be->copy_d2h(be, out, dout, sizeof(float) * M * N);
    be->free(be, da);
    be->free(be, dw);
    be->free(be, dout);
}

TEST(backend_create_by_name)
{
    herd_backend *be = herd_backend_create("cpu", NULL);
    CHECK(be && !strcmp(be->name, "cpu") && be->get_matmul_bf16(be) == 0);
    herd_backend_free(be);
    CHECK(herd_backend_create("no-such-backend", NULL) == NULL); /* with a message */
    herd_backend_free(NULL);
    CHECK(herd_backend_get("cpu") == herd_backend_cpu()); /* one default instance */
    CHECK(herd_backend_get("no-such-backend") == NULL);
}

TEST(backend_fp32_and_bf16_in_one_process)
{
    herd_backend *f32 = herd_backend_create("cpu", &(herd_backend_options){.matmul_bf16 = 0});
    herd_backend *b16 = herd_backend_create("cpu", &(herd_backend_options){.matmul_bf16 = 1});
    CHECK(f32 && b16 && f32 != b16);
    if (!f32 || !b16) return;
    CHECK(f32->get_matmul_bf16(f32) == 0 && b16->get_matmul_bf16(b16) == 1);
    float *a = randn((size_t)M * K, 1), *w = randn((size_t)N * K, 2);
    float *o32 = malloc(sizeof(float) * M * N), *o16 = malloc(sizeof(float) * M * N),
          *odef = malloc(sizeof(float) * M * N);
    double *ref = malloc(sizeof(double) * M * N), *ref16 = malloc(sizeof(double) * M * N);
    reference(ref, a, w, 0);
    reference(ref16, a, w, 1);

    /* interleaved, so that a precision kept in one shared place would show */
    matmul(b16, o16, a, w);
    matmul(f32, o32, a, w);
    const herd_backend *def = herd_backend_cpu();
    matmul(def, odef, a, w);
    CHECK(same(o32, odef, (size_t)M * N)); /* fp32 exactly as before */
    CHECK(rel_err(o32, ref, (size_t)M * N) < 1e-6);
    /* bf16: the sums of the rounded inputs; from the fp32 product it differs by
     * the rounding of K terms (order sqrt(K) * 2^-8 relative) */
    CHECK(rel_err(o16, ref16, (size_t)M * N) < 1e-6);
    double d = rel_err(o16, ref, (size_t)M * N);
    CHECK(d > 1e-4 && d < 5e-2);

    /* each instance has its own ledger */
    float *x = b16->alloc(b16, 1000);
    CHECK(b16->mem_allocated(b16) == 1000 && f32->mem_allocated(f32) == 0);
    b16->free(b16, x);
    CHECK(b16->mem_allocated(b16) == 0 && b16->mem_peak(b16, 1) >= 1000);

    /* the bf16 weight copy of one instance is not the other's: w's rows
     * changed behind the bf16 copy show only in the bf16 instance */
    CHECK(b16->weights_bf16_begin(b16, w, (size_t)N * K) == 0);
    w[0] += 1.0f;
    float *o = malloc(sizeof(float) * M * N);
    b16->matmul_fwd(b16, o, a, w, M, N, K, 0);
    CHECK(same(o, o16, (size_t)M * N));
    f32->matmul_fwd(f32, o, a, w, M, N, K, 0);
    CHECK(!same(o, o32, (size_t)M * N));
    b16->weights_bf16_end(b16);
    w[0] -= 1.0f;

    /* freeing the bf16 one leaves the fp32 one as it was */
    herd_backend_free(b16);
    matmul(f32, o, a, w);
    CHECK(same(o, o32, (size_t)M * N));
    CHECK(f32->mem_allocated(f32) == 0);
    herd_backend_free(f32);
    matmul(def, o, a, w); /* and the default instance is untouched by both */
    CHECK(same(o, odef, (size_t)M * N));
    free(a); free(w); free(o32); free(o16); free(odef); free(ref); free(ref16); free(o);
}

int main(void)
{
    RUN(backend_create_by_name);
    RUN(backend_fp32_and_bf16_in_one_process);
    return test_summary();
}
