/* test_cuda_ops.c — every op of the CUDA backend against the CPU op of the
 * same name (kernels/cpu, the oracle), on the same random inputs (fixed seed),
 * plus a whole training step of the model on both backends.
 *
 * Shapes are small and odd on purpose: rows longer than a thread block, GQA
 * (H = 4, KV = 2), two or three documents per sequence, ignored targets.
 * Every case skips with "no CUDA device" where herd_backend_cuda() is NULL
 * (no device, or built without nvcc). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/backend.h"
#include "kernels/cpu/attention_flash_bf16.h"
#include "kernels/cpu/cpu_ops.h"
#include "src/model/model.h"
#include "src/base/rng.h"
#include "tests/unit/test.h"
#ifdef HERD_HAVE_CUDA
/* from kernels/cuda/cuda_ops.h (not included whole: its names are this file's test names) */
void cuda_matmul_bf16_fwd(const herd_backend *be, float *out, const void *a, const void *w, int M,
                          int N, int K, int accumulate);
void cuda_f32_to_bf16(void *dst, const float *src, size_t n);
void cuda_bf16_to_f32(float *dst, const void *src, size_t n);
#endif

static const herd_backend *cpu, *gpu;

#define ATOL 1e-4
#define RTOL 1e-4

#define NEED_GPU() do { if (!gpu) SKIP("no CUDA device"); } while (0)

static float *randn(size_t n, uint64_t stream, float std)
{
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)(std * herd_rng_normal(3, stream, i));
    return x;
}

static int32_t *randint(size_t n, uint64_t stream, int hi)
{
    int32_t *x = malloc((n ? n : 1) * sizeof(int32_t));
    for (size_t i = 0; i < n; i++) x[i] = (int32_t)(herd_splitmix64(stream * 1000003u + i) % (uint64_t)hi);
    return x;
}

static void gfree(void *p) { gpu->free(gpu, p); }

/* a device copy of host data */
static void *up(const void *h, size_t bytes)
{
    void *d = gpu->alloc(gpu, bytes);
    if (d) gpu->copy_h2d(gpu, d, h, bytes);
    return d;
}

/* |gpu - cpu| <= atol + rtol * |cpu| elementwise; reports the worst element */
static int close_to(const char *what, const float *dev, const float *ref, size_t n, double atol,
                    double rtol)
{
    float *h = malloc((n ? n : 1) * sizeof(float));
    gpu->copy_d2h(gpu, h, dev, n * sizeof(float));
    size_t bad = 0, worst = 0;
    double worst_excess = -1;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)h[i] - ref[i]), lim = atol + rtol * fabs(ref[i]);
        if (!(diff <= lim)) bad++;
        if (!(diff - lim <= worst_excess)) { worst_excess = diff - lim; worst = i; }
    }
    if (bad)
        fprintf(stderr, "  %s: %zu of %zu elements off; worst [%zu] gpu %.9g cpu %.9g\n", what,
                bad, n, worst, h[worst], ref[worst]);
    free(h);
    return bad == 0;
}

static int close_def(const char *what, const float *dev, const float *ref, size_t n)
{
    return close_to(what, dev, ref, n, ATOL, RTOL);
}

/* the bits of a device buffer equal to a host one */
static int same_bits(const char *what, const float *dev, const float *host, size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof(float));
    gpu->copy_d2h(gpu, h, dev, n * sizeof(float));
    int ok = memcmp(h, host, n * sizeof(float)) == 0;
    if (!ok) fprintf(stderr, "  %s: results differ bitwise\n", what);
    free(h);
    return ok;
}

/* ---- memory ---------------------------------------------------------------- */

TEST(cuda_memory)
{
    NEED_GPU();
    size_t n = 1000;
    float *z = calloc(n, sizeof(float)), *x = randn(n, 1, 1), *h = malloc(n * sizeof(float));
    float *d1 = gpu->alloc(gpu, n * sizeof(float)), *d2 = gpu->alloc(gpu, n * sizeof(float));
    CHECK(d1 && d2);
    CHECK(same_bits("alloc is zero-filled", d1, z, n));
    gpu->copy_h2d(gpu, d1, x, n * sizeof(float));
    gpu->copy_d2d(gpu, d2, d1, n * sizeof(float));
    gpu->synchronize(gpu);
    gpu->copy_d2h(gpu, h, d2, n * sizeof(float));
    CHECK(memcmp(h, x, n * sizeof(float)) == 0);
    gpu->zero(gpu, d2 + 10, n - 20);
    gpu->copy_d2h(gpu, h, d2, n * sizeof(float));
    CHECK(memcmp(h, x, 10 * sizeof(float)) == 0);
    CHECK(memcmp(h + 10, z, (n - 20) * sizeof(float)) == 0);
    CHECK(memcmp(h + n - 10, x + n - 10, 10 * sizeof(float)) == 0);
    void *d0 = gpu->alloc(gpu, 0);  /* a zero-byte allocation is still a pointer */
    CHECK(d0 != NULL);
    gfree(d0);
    gfree(NULL);
    gfree(d1); gfree(d2);
    free(z); free(x); free(h);
}

/* ---- matmul ----------------------------------------------------------------- */

TEST(cuda_matmul_fwd)
{
    NEED_GPU();
    int M = 37, N = 29, K = 41;
    float *a = randn((size_t)M * K, 1, 1), *w = randn((size_t)N * K, 2, 1), *o = randn((size_t)M * N, 3, 1);
    float *ga = up(a, sizeof(float) * M * K), *gw = up(w, sizeof(float) * N * K),
          *go = up(o, sizeof(float) * M * N);
    cpu->matmul_fwd(cpu, o, a, w, M, N, K, 1);  /* accumulate onto o */
    gpu->matmul_fwd(gpu, go, ga, gw, M, N, K, 1);
    CHECK(close_def("matmul_fwd accumulate", go, o, (size_t)M * N));
    cpu->matmul_fwd(cpu, o, a, w, M, N, K, 0);  /* overwrite */
    gpu->matmul_fwd(gpu, go, ga, gw, M, N, K, 0);
    CHECK(close_def("matmul_fwd", go, o, (size_t)M * N));
    free(a); free(w); free(o);
    gfree(ga); gfree(gw); gfree(go);
}

/* BF16 GEMM through cuBLASLt (kernels/cuda/matmul_lt.cu) against the CPU fp32
 * matmul: bf16 tolerance, 2e-2 relative plus 2e-2 of the largest |out| (the
 * inputs are rounded to 8 bits of mantissa; the sum is fp32). */
TEST(cuda_matmul_bf16)
{
    NEED_GPU();
#ifdef HERD_HAVE_CUDA
    int shapes[][3] = {{37, 29, 41}, {256, 384, 512}, {8, 4096, 64}};
    for (int c = 0; c < 3; c++) {
        int M = shapes[c][0], N = shapes[c][1], K = shapes[c][2];
        float *a = randn((size_t)M * K, 1, 1), *w = randn((size_t)N * K, 2, 1),
              *o = randn((size_t)M * N, 3, 1);
        float *ga = up(a, sizeof(float) * M * K), *gw = up(w, sizeof(float) * N * K),
              *go = up(o, sizeof(float) * M * N);
        void *ga16 = gpu->alloc(gpu, 2 * (size_t)M * K), *gw16 = gpu->alloc(gpu, 2 * (size_t)N * K);
        cuda_f32_to_bf16(ga16, ga, (size_t)M * K);
        cuda_f32_to_bf16(gw16, gw, (size_t)N * K);
        /* the round trip loses at most half a bf16 ulp: 8 significant bits, so
         * 2^-8 of the binade's lower end, at most 2^-8 relative (not 2^-9) */
        float *back = gpu->alloc(gpu, sizeof(float) * (size_t)M * K);
        cuda_bf16_to_f32(back, ga16, (size_t)M * K);
        CHECK(close_to("bf16 round trip", back, a, (size_t)M * K, 0, 1.0 / 256));
        cpu->matmul_fwd(cpu, o, a, w, M, N, K, 1);  /* accumulate onto o */
        cuda_matmul_bf16_fwd(gpu, go, ga16, gw16, M, N, K, 1);
        double mx = 0;
        for (size_t i = 0; i < (size_t)M * N; i++) mx = fmax(mx, fabs(o[i]));
        CHECK(close_to("matmul_bf16 accumulate", go, o, (size_t)M * N, 2e-2 * mx, 2e-2));
        cpu->matmul_fwd(cpu, o, a, w, M, N, K, 0);
        cuda_matmul_bf16_fwd(gpu, go, ga16, gw16, M, N, K, 0);
        CHECK(close_to("matmul_bf16", go, o, (size_t)M * N, 2e-2 * mx, 2e-2));
        free(a); free(w); free(o);
        gfree(ga); gfree(gw); gfree(go); gfree(ga16); gfree(gw16);
        gfree(back);
    }
#endif
}

TEST(cuda_matmul_bwd)
{
    NEED_GPU();
    int M = 37, N = 29, K = 41;
    float *a = randn((size_t)M * K, 1, 1), *w = randn((size_t)N * K, 2, 1),
          *dout = randn((size_t)M * N, 3, 1), *da = randn((size_t)M * K, 4, 1),
          *dw = randn((size_t)N * K, 5, 1);
    float *ga = up(a, sizeof(float) * M * K), *gw = up(w, sizeof(float) * N * K),
          *gdo = up(dout, sizeof(float) * M * N), *gda = up(da, sizeof(float) * M * K),
          *gdw = up(dw, sizeof(float) * N * K);
    /* da accumulates, dw always accumulates */
    cpu->matmul_bwd(cpu, da, dw, dout, a, w, M, N, K, 1);
    gpu->matmul_bwd(gpu, gda, gdw, gdo, ga, gw, M, N, K, 1);
    CHECK(close_def("matmul_bwd da accumulate", gda, da, (size_t)M * K));
    CHECK(close_def("matmul_bwd dw", gdw, dw, (size_t)N * K));
    /* da overwritten; dw skipped */
    cpu->matmul_bwd(cpu, da, NULL, dout, a, w, M, N, K, 0);
    gpu->matmul_bwd(gpu, gda, NULL, gdo, ga, gw, M, N, K, 0);
    CHECK(close_def("matmul_bwd da", gda, da, (size_t)M * K));
    CHECK(close_def("matmul_bwd dw untouched", gdw, dw, (size_t)N * K));
    /* da skipped */
    cpu->matmul_bwd(cpu, NULL, dw, dout, a, w, M, N, K, 0);
    gpu->matmul_bwd(gpu, NULL, gdw, gdo, ga, gw, M, N, K, 0);
    CHECK(close_def("matmul_bwd dw again", gdw, dw, (size_t)N * K));
    CHECK(close_def("matmul_bwd da untouched", gda, da, (size_t)M * K));
    free(a); free(w); free(dout); free(da); free(dw);
    gfree(ga); gfree(gw); gfree(gdo); gfree(gda); gfree(gdw);
}

/* ---- embedding -------------------------------------------------------------- */

TEST(cuda_embedding)
{
    NEED_GPU();
    int n = 150, d = 300, V = 23;  /* many repeated tokens; d > one block */
    int32_t *tok = randint(n, 7, V);
    for (int i = 0; i < n; i += 5) tok[i] = -1; /* another rank's vocabulary: zero row, no gradient */
    float *wte = randn((size_t)V * d, 1, 1), *out = calloc((size_t)n * d, 4),
          *dout = randn((size_t)n * d, 2, 1), *dwte = randn((size_t)V * d, 3, 1);
    float *gwte = up(wte, sizeof(float) * V * d), *gout = up(out, sizeof(float) * n * d),
          *gdo = up(dout, sizeof(float) * n * d), *gdw = up(dwte, sizeof(float) * V * d);
    int32_t *gtok = up(tok, sizeof(int32_t) * n);
    cpu->embedding_fwd(cpu, out, tok, wte, n, d);
    gpu->embedding_fwd(gpu, gout, gtok, gwte, n, d);
    CHECK(close_to("embedding_fwd", gout, out, (size_t)n * d, 0, 0));
    cpu->embedding_bwd(cpu, dwte, dout, tok, n, d);
    gpu->embedding_bwd(gpu, gdw, gdo, gtok, n, d);
    /* the same additions in the same (token) order: the same bits */
    CHECK(same_bits("embedding_bwd", gdw, dwte, (size_t)V * d));
    free(tok); free(wte); free(out); free(dout); free(dwte);
    gfree(gwte); gfree(gout); gfree(gdo); gfree(gdw); gfree(gtok);
}

/* ---- RMSNorm ------------------------------------------------------------------ */

static void rmsnorm_case(int n, int d, int *ok)
{
    float *x = randn((size_t)n * d, 1, 2), *w = randn(d, 2, 1), *out = calloc((size_t)n * d, 4),
          *rstd = calloc(n, 4), *dout = randn((size_t)n * d, 3, 1),
          *dx = randn((size_t)n * d, 4, 1), *dw = randn(d, 5, 1);
    float *gx = up(x, sizeof(float) * n * d), *gw = up(w, sizeof(float) * d),
          *gout = up(out, sizeof(float) * n * d), *grstd = up(rstd, sizeof(float) * n),
          *gdo = up(dout, sizeof(float) * n * d), *gdx = up(dx, sizeof(float) * n * d),
          *gdw = up(dw, sizeof(float) * d);
    cpu->rmsnorm_fwd(cpu, out, rstd, x, w, n, d, 1e-5f);
    gpu->rmsnorm_fwd(gpu, gout, grstd, gx, gw, n, d, 1e-5f);
    *ok &= close_def("rmsnorm_fwd out", gout, out, (size_t)n * d);
    *ok &= close_def("rmsnorm_fwd rstd", grstd, rstd, n);
    /* dx and dw accumulate onto what is there */
    float *dx0 = malloc(sizeof(float) * n * d), *dw0 = malloc(sizeof(float) * d),
          *dw1 = malloc(sizeof(float) * d);
    memcpy(dx0, dx, sizeof(float) * n * d);
    memcpy(dw0, dw, sizeof(float) * d);
    cpu->rmsnorm_bwd(cpu, dx, dw, dout, x, w, rstd, n, d);
    gpu->rmsnorm_bwd(gpu, gdx, gdw, gdo, gx, gw, grstd, n, d);
    *ok &= close_def("rmsnorm_bwd dx", gdx, dx, (size_t)n * d);
    *ok &= close_def("rmsnorm_bwd dw", gdw, dw, d);
    /* deterministic: the same inputs give the same bits */
    gpu->copy_d2h(gpu, dw1, gdw, sizeof(float) * d);
    gpu->copy_h2d(gpu, gdx, dx0, sizeof(float) * n * d);
    gpu->copy_h2d(gpu, gdw, dw0, sizeof(float) * d);
    gpu->rmsnorm_bwd(gpu, gdx, gdw, gdo, gx, gw, grstd, n, d);
    *ok &= same_bits("rmsnorm_bwd dw rerun", gdw, dw1, d);
    free(dx0); free(dw0); free(dw1);
    free(x); free(w); free(out); free(rstd); free(dout); free(dx); free(dw);
    gfree(gx); gfree(gw); gfree(gout); gfree(grstd); gfree(gdo);
    gfree(gdx); gfree(gdw);
}

TEST(cuda_rmsnorm)
{
    NEED_GPU();
    int ok = 1;
    rmsnorm_case(13, 40, &ok);    /* d below one block */
    rmsnorm_case(150, 300, &ok);  /* d above one block, three 64-row chunks for dw */
    CHECK(ok);
}

/* ---- RoPE --------------------------------------------------------------------- */

TEST(cuda_rope)
{
    NEED_GPU();
    int n = 40, nh = 5, hd = 16, maxpos = 32, half = hd / 2;
    float *cs = malloc(sizeof(float) * maxpos * hd);
    for (int p = 0; p < maxpos; p++)
        for (int j = 0; j < half; j++) {
            double ang = p * pow(500000.0, -2.0 * j / hd);
            cs[(p * half + j) * 2] = (float)cos(ang);
            cs[(p * half + j) * 2 + 1] = (float)sin(ang);
        }
    int32_t *pos = malloc(sizeof(int32_t) * n);
    for (int i = 0; i < n; i++) pos[i] = i % 20;  /* two sequences of 20 */
    size_t m = (size_t)n * nh * hd;
    float *x = randn(m, 1, 1), *x0 = malloc(m * sizeof(float));
    memcpy(x0, x, m * sizeof(float));
    float *gx = up(x, m * sizeof(float)), *gcs = up(cs, sizeof(float) * maxpos * hd);
    int32_t *gpos = up(pos, sizeof(int32_t) * n);
    cpu->rope_fwd(cpu, x, cs, pos, n, nh, hd);
    gpu->rope_fwd(gpu, gx, gcs, gpos, n, nh, hd);
    CHECK(close_def("rope_fwd", gx, x, m));
    cpu->rope_bwd(cpu, x, cs, pos, n, nh, hd);
    gpu->rope_bwd(gpu, gx, gcs, gpos, n, nh, hd);
    CHECK(close_def("rope_bwd", gx, x, m));
    CHECK(close_def("rope_bwd undoes rope_fwd", gx, x0, m));
    free(cs); free(pos); free(x); free(x0);
    gfree(gx); gfree(gcs); gfree(gpos);
}

/* ---- attention ------------------------------------------------------------------ */

/* doc[B,T]: sequence 0 has three documents, sequence 1 two (ids need only
 * differ between neighbours) */
static void make_docs(int32_t *doc, int B, int T)
{
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T; i++)
            doc[b * T + i] = b % 2 == 0 ? (i < T / 3 ? 4 : i < T / 3 + T / 4 ? 5 : 9)
                                        : (i < T / 2 + 1 ? 0 : 1);
}

static void attention_case(int B, int T, int H, int KV, int hd, int *ok)
{
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd, na = (size_t)B * H * T * T;
    int32_t *doc = malloc(sizeof(int32_t) * B * T);
    make_docs(doc, B, T);
    float *q = randn(nq, 1, 1), *k = randn(nk, 2, 1), *v = randn(nk, 3, 1), *dout = randn(nq, 4, 1);
    float *o = calloc(nq, 4), *att = calloc(na, 4), *dq = calloc(nq, 4), *dk = calloc(nk, 4),
          *dv = calloc(nk, 4), *scr = calloc((size_t)T * T, 4);
    /* dq, dk, dv start as garbage on the GPU: the op overwrites them */
    float *gq = up(q, nq * 4), *gk = up(k, nk * 4), *gv = up(v, nk * 4), *gdo = up(dout, nq * 4),
          *go = up(dout, nq * 4), *gatt = up(att, na * 4), *gdq = up(dout, nq * 4),
          *gdk = up(k, nk * 4), *gdv = up(v, nk * 4), *gscr = up(scr, (size_t)T * T * 4);
    int32_t *gdoc = up(doc, sizeof(int32_t) * B * T);
    cpu->attention_fwd(cpu, o, att, q, k, v, doc, B, T, H, KV, hd);
    gpu->attention_fwd(gpu, go, gatt, gq, gk, gv, gdoc, B, T, H, KV, hd);
    *ok &= close_def("attention_fwd out", go, o, nq);
    *ok &= close_def("attention_fwd att", gatt, att, na);
    /* the mask: every disallowed probability exactly 0 */
    float *hatt = malloc(na * 4);
    gpu->copy_d2h(gpu, hatt, gatt, na * 4);
    size_t leaks = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++)
                    if ((j > i || doc[b * T + j] != doc[b * T + i]) &&
                        hatt[(((size_t)b * H + h) * T + i) * T + j] != 0.0f)
                        leaks++;
    if (leaks) fprintf(stderr, "  attention_fwd: %zu masked probabilities not 0\n", leaks);
    *ok &= leaks == 0;
    cpu->attention_bwd(cpu, dq, dk, dv, scr, dout, att, q, k, v, doc, B, T, H, KV, hd);
    gpu->attention_bwd(gpu, gdq, gdk, gdv, gscr, gdo, gatt, gq, gk, gv, gdoc, B, T, H, KV, hd);
    *ok &= close_def("attention_bwd dq", gdq, dq, nq);
    *ok &= close_def("attention_bwd dk", gdk, dk, nk);
    *ok &= close_def("attention_bwd dv", gdv, dv, nk);
    free(doc); free(q); free(k); free(v); free(dout); free(o); free(att); free(dq); free(dk);
    free(dv); free(scr); free(hatt);
    gfree(gq); gfree(gk); gfree(gv); gfree(gdo); gfree(go); gfree(gatt);
    gfree(gdq); gfree(gdk); gfree(gdv); gfree(gscr); gfree(gdoc);
}

TEST(cuda_attention)
{
    NEED_GPU();
    int ok = 1;
    attention_case(2, 19, 4, 2, 8, &ok);    /* GQA, group 2 */
    attention_case(2, 150, 4, 2, 16, &ok);  /* rows longer than a thread block */
    attention_case(1, 33, 6, 1, 8, &ok);    /* one kv head (MQA) */
    attention_case(3, 17, 2, 2, 4, &ok);    /* plain multi-head */
    CHECK(ok);
}

/* The flash pair (kernels/cuda/flash_attention.cu) against the CPU flash pair
 * and the CPU materialized attention, fp32 path: 1e-4 relative + 1e-4 absolute.
 * hd 128 is the Llama 3 head; 40 leaves lanes idle; 256 needs more than 48 KiB
 * of shared memory. */
static void flash_case(int B, int T, int H, int KV, int hd, int *ok)
{
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd, nl = (size_t)B * H * T;
    int32_t *doc = malloc(sizeof(int32_t) * B * T);
    make_docs(doc, B, T);
    float *q = randn(nq, 1, 1), *k = randn(nk, 2, 1), *v = randn(nk, 3, 1), *dout = randn(nq, 4, 1);
    float *o = calloc(nq, 4), *lse = calloc(nl, 4), *dq = calloc(nq, 4), *dk = calloc(nk, 4),
          *dv = calloc(nk, 4), *mo = calloc(nq, 4), *att = calloc((size_t)B * H * T * T, 4),
          *scr = calloc((size_t)T * T, 4), *mdq = calloc(nq, 4), *mdk = calloc(nk, 4),
          *mdv = calloc(nk, 4);
    /* outputs start as garbage on the GPU: the ops overwrite them */
    float *gq = up(q, nq * 4), *gk = up(k, nk * 4), *gv = up(v, nk * 4), *gdo = up(dout, nq * 4),
          *go = up(dout, nq * 4), *glse = up(q, nl * 4), *gdq = up(dout, nq * 4),
          *gdk = up(k, nk * 4), *gdv = up(v, nk * 4);
    int32_t *gdoc = up(doc, sizeof(int32_t) * B * T);
    cpu->attention_flash_fwd(cpu, o, lse, q, k, v, doc, B, T, H, KV, hd);
    gpu->attention_flash_fwd(gpu, go, glse, gq, gk, gv, gdoc, B, T, H, KV, hd);
    *ok &= close_def("attention_flash_fwd out", go, o, nq);
    *ok &= close_def("attention_flash_fwd lse", glse, lse, nl);
    cpu->attention_fwd(cpu, mo, att, q, k, v, doc, B, T, H, KV, hd);
    *ok &= close_def("attention_flash_fwd out vs materialized", go, mo, nq);
    cpu->attention_flash_bwd(cpu, dq, dk, dv, dout, o, lse, q, k, v, doc, B, T, H, KV, hd);
    gpu->attention_flash_bwd(gpu, gdq, gdk, gdv, gdo, go, glse, gq, gk, gv, gdoc, B, T, H, KV, hd);
    *ok &= close_def("attention_flash_bwd dq", gdq, dq, nq);
    *ok &= close_def("attention_flash_bwd dk", gdk, dk, nk);
    *ok &= close_def("attention_flash_bwd dv", gdv, dv, nk);
    cpu->attention_bwd(cpu, mdq, mdk, mdv, scr, dout, att, q, k, v, doc, B, T, H, KV, hd);
    *ok &= close_def("attention_flash_bwd dk vs materialized", gdk, mdk, nk);
    /* deterministic: a second run gives the same bits */
    float *h1 = malloc(nk * 4);
    gpu->copy_d2h(gpu, h1, gdk, nk * 4);
    gpu->attention_flash_bwd(gpu, gdq, gdk, gdv, gdo, go, glse, gq, gk, gv, gdoc, B, T, H, KV, hd);
    *ok &= same_bits("attention_flash_bwd dk rerun", gdk, h1, nk);
    free(h1);
    free(doc); free(q); free(k); free(v); free(dout); free(o); free(lse); free(dq); free(dk);
    free(dv); free(mo); free(att); free(scr); free(mdq); free(mdk); free(mdv);
    gfree(gq); gfree(gk); gfree(gv); gfree(gdo); gfree(go); gfree(glse);
    gfree(gdq); gfree(gdk); gfree(gdv); gfree(gdoc);
}

TEST(cuda_attention_flash)
{
    NEED_GPU();
    CHECK(gpu->attention_flash_fwd && gpu->attention_flash_bwd && gpu->prefer_flash);
    if (!gpu->attention_flash_fwd) return;
    int ok = 1;
    flash_case(2, 19, 4, 2, 8, &ok);     /* shorter than a tile */
    flash_case(2, 150, 4, 2, 16, &ok);   /* several tiles, documents change inside tiles */
    flash_case(1, 33, 6, 1, 8, &ok);     /* MQA */
    flash_case(1, 200, 4, 2, 128, &ok);  /* Llama 3 head_dim */
    flash_case(2, 70, 2, 1, 40, &ok);    /* head_dim not a multiple of 32 */
    flash_case(1, 64, 2, 2, 256, &ok);   /* shared memory above 48 KiB */
    CHECK(ok);
}

/* The tensor-core flash pair (kernels/cuda/flash_attention_wmma.cu), reached
 * through the fp32 entry points in bf16 mode, against its CPU oracle
 * (kernels/cpu/attention_flash_bf16.c: the same bf16 roundings, the same key
 * tiles). Only the order of the fp32 sums inside a tensor-core GEMM differs; that
 * moves a score by fp32 ulps, which now and then flips the bf16 rounding of one p
 * or dS by a bf16 ulp (2^-8 relative): a rare error of up to ~4e-3 of |v| in a
 * row. So two bounds:
 *   - every element within 1e-2 of the largest |element| + 1e-2 relative (a
 *     wrong tile, mask or index is off by O(1));
 *   - the mean |gpu - oracle| below a tenth of the mean |oracle - fp32| (the
 *     distance that the bf16 roundings make, 2.4e-3..6.7e-3 of the largest in
 *     test_attention_flash_bf16): the kernel does those roundings, not fp32 math.
 * lse is fp32 on both sides: 1e-4 + 1e-4 relative. The backward is
 * deterministic (no atomics): a rerun gives the same bits. With bf16 mode off
 * again the entry points are the fp32 kernels (1e-4 of the fp32 CPU pair). */
static double mean_diff(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += fabs((double)a[i] - b[i]);
    return s / (double)(n ? n : 1);
}

static int bf16_close(const char *what, const float *dev, const float *ref, const float *f32,
                      size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof(float));
    gpu->copy_d2h(gpu, h, dev, n * sizeof(float));
    double mx = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs((double)ref[i]));
    double dg = mean_diff(h, ref, n), df = mean_diff(ref, f32, n);
    int ok = close_to(what, dev, ref, n, 1e-2 * mx, 1e-2) && dg <= 0.1 * df;
    fprintf(stderr, "  %s: mean |gpu - oracle| %.3g, mean |oracle - fp32| %.3g%s\n", what, dg, df,
            dg <= 0.1 * df ? "" : "  (too far from the bf16 oracle)");
    free(h);
    return ok;
}

static void flash_bf16_case(int B, int T, int H, int KV, int hd, int *ok)
{
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd, nl = (size_t)B * H * T;
    int32_t *doc = malloc(sizeof(int32_t) * B * T);
    make_docs(doc, B, T);
    float *q = randn(nq, 1, 1), *k = randn(nk, 2, 1), *v = randn(nk, 3, 1), *dout = randn(nq, 4, 1);
    float *o = calloc(nq, 4), *lse = calloc(nl, 4), *dq = calloc(nq, 4), *dk = calloc(nk, 4),
          *dv = calloc(nk, 4), *fo = calloc(nq, 4), *flse = calloc(nl, 4), *fdq = calloc(nq, 4),
          *fdk = calloc(nk, 4), *fdv = calloc(nk, 4);
    float *gq = up(q, nq * 4), *gk = up(k, nk * 4), *gv = up(v, nk * 4), *gdo = up(dout, nq * 4),
          *go = up(dout, nq * 4), *glse = up(q, nl * 4), *gdq = up(dout, nq * 4),
          *gdk = up(k, nk * 4), *gdv = up(v, nk * 4);
    int32_t *gdoc = up(doc, sizeof(int32_t) * B * T);
    cpu_attention_flash_bf16_fwd(o, lse, q, k, v, doc, B, T, H, KV, hd);
    cpu_attention_flash_bf16_bwd(dq, dk, dv, dout, o, lse, q, k, v, doc, B, T, H, KV, hd);
    cpu_attention_flash_fwd(fo, flse, q, k, v, doc, B, T, H, KV, hd);
    cpu_attention_flash_bwd(fdq, fdk, fdv, dout, fo, flse, q, k, v, doc, B, T, H, KV, hd);
    gpu->set_matmul_bf16(gpu, 1);
    gpu->attention_flash_fwd(gpu, go, glse, gq, gk, gv, gdoc, B, T, H, KV, hd);
    gpu->attention_flash_bwd(gpu, gdq, gdk, gdv, gdo, go, glse, gq, gk, gv, gdoc, B, T, H, KV, hd);
    *ok &= bf16_close("wmma flash out", go, o, fo, nq);
    *ok &= close_def("wmma flash lse", glse, lse, nl);
    *ok &= bf16_close("wmma flash dq", gdq, dq, fdq, nq);
    *ok &= bf16_close("wmma flash dk", gdk, dk, fdk, nk);
    *ok &= bf16_close("wmma flash dv", gdv, dv, fdv, nk);
    float *h1 = malloc(nq * 4), *h2 = malloc(nk * 4);
    gpu->copy_d2h(gpu, h1, gdq, nq * 4);
    gpu->copy_d2h(gpu, h2, gdk, nk * 4);
    gpu->attention_flash_bwd(gpu, gdq, gdk, gdv, gdo, go, glse, gq, gk, gv, gdoc, B, T, H, KV, hd);
    *ok &= same_bits("wmma flash dq rerun", gdq, h1, nq);
    *ok &= same_bits("wmma flash dk rerun", gdk, h2, nk);
    gpu->set_matmul_bf16(gpu, 0);
    gpu->attention_flash_fwd(gpu, go, glse, gq, gk, gv, gdoc, B, T, H, KV, hd);
    *ok &= close_def("flash out with bf16 mode off again", go, fo, nq);
    free(h1); free(h2);
    free(doc); free(q); free(k); free(v); free(dout); free(o); free(lse); free(dq); free(dk);
    free(dv); free(fo); free(flse); free(fdq); free(fdk); free(fdv);
    gfree(gq); gfree(gk); gfree(gv); gfree(gdo); gfree(go); gfree(glse);
    gfree(gdq); gfree(gdk); gfree(gdv); gfree(gdoc);
}

TEST(cuda_attention_flash_wmma)
{
    NEED_GPU();
    if (!gpu->set_matmul_bf16) SKIP("a backend without bf16 mode");
    int ok = 1;
    flash_bf16_case(2, 150, 4, 2, 64, &ok);   /* GQA, documents change inside tiles */
    flash_bf16_case(1, 200, 4, 2, 128, &ok);  /* Llama 3 head_dim, T not a multiple of 64 */
    flash_bf16_case(2, 19, 4, 2, 64, &ok);    /* shorter than one tile */
    flash_bf16_case(1, 70, 4, 1, 48, &ok);    /* MQA, a head_dim with a partial 64-column chunk */
    CHECK(ok);
}

/* Attention with positions (context parallel): rank r of CP holds chunks r and
 * 2CP-1-r of each sequence (Tq = T/CP queries); the keys are the whole
 * sequence in the gathered order (rank after rank), documents as make_docs. */
static void attention_pos_case(int B, int T, int CP, int r, int H, int KV, int hd, int *ok)
{
    int Tq = T / CP, C = T / (2 * CP);
    size_t nq = (size_t)B * Tq * H * hd, nk = (size_t)B * T * KV * hd, na = (size_t)B * H * Tq * T;
    int32_t *doc = malloc(sizeof(int32_t) * B * T), *qpos = malloc(sizeof(int32_t) * B * Tq),
            *qdoc = malloc(sizeof(int32_t) * B * Tq), *kpos = malloc(sizeof(int32_t) * B * T),
            *kdoc = malloc(sizeof(int32_t) * B * T);
    make_docs(doc, B, T);
    for (int b = 0; b < B; b++)
        for (int rr = 0; rr < CP; rr++)
            for (int j = 0; j < Tq; j++) {
                int p = j < C ? rr * C + j : (2 * CP - 1 - rr) * C + (j - C);
                kpos[b * T + rr * Tq + j] = p;
                kdoc[b * T + rr * Tq + j] = doc[b * T + p];
                if (rr == r) qpos[b * Tq + j] = p, qdoc[b * Tq + j] = doc[b * T + p];
            }
    float *q = randn(nq, 5, 1), *k = randn(nk, 6, 1), *v = randn(nk, 7, 1), *dout = randn(nq, 8, 1);
    float *o = calloc(nq, 4), *att = calloc(na, 4), *dq = calloc(nq, 4), *dk = calloc(nk, 4),
          *dv = calloc(nk, 4), *scr = calloc((size_t)Tq * T, 4);
    float *gq = up(q, nq * 4), *gk = up(k, nk * 4), *gv = up(v, nk * 4), *gdo = up(dout, nq * 4),
          *go = up(dout, nq * 4), *gatt = up(att, na * 4), *gdq = up(dout, nq * 4),
          *gdk = up(k, nk * 4), *gdv = up(v, nk * 4), *gscr = up(scr, (size_t)Tq * T * 4);
    int32_t *gqp = up(qpos, 4 * (size_t)B * Tq), *gqd = up(qdoc, 4 * (size_t)B * Tq),
            *gkp = up(kpos, 4 * (size_t)B * T), *gkd = up(kdoc, 4 * (size_t)B * T);
    cpu->attention_fwd_pos(cpu, o, att, q, k, v, qpos, qdoc, kpos, kdoc, B, Tq, T, H, KV, hd);
    gpu->attention_fwd_pos(gpu, go, gatt, gq, gk, gv, gqp, gqd, gkp, gkd, B, Tq, T, H, KV, hd);
    *ok &= close_def("attention_fwd_pos out", go, o, nq);
    *ok &= close_def("attention_fwd_pos att", gatt, att, na);
    cpu->attention_bwd_pos(cpu, dq, dk, dv, scr, dout, att, q, k, v, B, Tq, T, H, KV, hd);
    gpu->attention_bwd_pos(gpu, gdq, gdk, gdv, gscr, gdo, gatt, gq, gk, gv, B, Tq, T, H, KV, hd);
    *ok &= close_def("attention_bwd_pos dq", gdq, dq, nq);
    *ok &= close_def("attention_bwd_pos dk", gdk, dk, nk);
    *ok &= close_def("attention_bwd_pos dv", gdv, dv, nk);
    free(doc); free(qpos); free(qdoc); free(kpos); free(kdoc); free(q); free(k); free(v);
    free(dout); free(o); free(att); free(dq); free(dk); free(dv); free(scr);
    gfree(gq); gfree(gk); gfree(gv); gfree(gdo); gfree(go); gfree(gatt);
    gfree(gdq); gfree(gdk); gfree(gdv); gfree(gscr);
    gfree(gqp); gfree(gqd); gfree(gkp); gfree(gkd);
}

TEST(cuda_attention_pos)
{
    NEED_GPU();
    int ok = 1;
    attention_pos_case(2, 24, 2, 0, 4, 2, 8, &ok);   /* CP2, rank 0: chunks 0 and 3 */
    attention_pos_case(2, 24, 2, 1, 4, 2, 8, &ok);   /* CP2, rank 1: chunks 1 and 2 */
    attention_pos_case(1, 160, 4, 2, 6, 1, 16, &ok); /* CP4, rows longer than a block, MQA */
    CHECK(ok);
}

/* ---- SwiGLU and the residual add -------------------------------------------------- */

TEST(cuda_swiglu)
{
    NEED_GPU();
    size_t m = 5003;
    float *gate = randn(m, 1, 3), *upv = randn(m, 2, 1), *dout = randn(m, 3, 1);
    float *out = calloc(m, 4), *dg = calloc(m, 4), *du = calloc(m, 4);
    float *ggate = up(gate, m * 4), *gup = up(upv, m * 4), *gdo = up(dout, m * 4),
          *gout = up(dout, m * 4), *gdg = up(dout, m * 4), *gdu = up(gate, m * 4);
    cpu->swiglu_fwd(cpu, out, gate, upv, m);
    gpu->swiglu_fwd(gpu, gout, ggate, gup, m);
    CHECK(close_def("swiglu_fwd", gout, out, m));
    cpu->swiglu_bwd(cpu, dg, du, dout, gate, upv, m);
    gpu->swiglu_bwd(gpu, gdg, gdu, gdo, ggate, gup, m);
    CHECK(close_def("swiglu_bwd dgate", gdg, dg, m));
    CHECK(close_def("swiglu_bwd dup", gdu, du, m));
    free(gate); free(upv); free(dout); free(out); free(dg); free(du);
    gfree(ggate); gfree(gup); gfree(gdo); gfree(gout); gfree(gdg); gfree(gdu);
}

TEST(cuda_add_inplace)
{
    NEED_GPU();
    size_t m = 4099;
    float *y = randn(m, 1, 1), *x = randn(m, 2, 1);
    float *gy = up(y, m * 4), *gx = up(x, m * 4);
    cpu->add_inplace(cpu, y, x, m);
    gpu->add_inplace(gpu, gy, gx, m);
    CHECK(close_to("add_inplace", gy, y, m, 0, 0));
    free(y); free(x);
    gfree(gy); gfree(gx);
}

/* ---- cross-entropy -------------------------------------------------------------- */

TEST(cuda_xent)
{
    NEED_GPU();
    int n = 13, V = 1000;  /* rows longer than a thread block */
    float *logits = randn((size_t)n * V, 1, 3), *losses = calloc(n, 4), *lse = calloc(n, 4);
    int32_t *tg = randint(n, 5, V);
    for (int i = 0; i < n; i++)
        if (i % 4 == 3) tg[i] = -1;  /* ignored */
    tg[0] = 0; tg[1] = V - 1;         /* the ends of the row */
    float *gl = up(logits, sizeof(float) * n * V), *gloss = up(losses, n * 4), *glse = up(lse, n * 4);
    int32_t *gtg = up(tg, sizeof(int32_t) * n);
    cpu->xent_fwd(cpu, losses, lse, logits, tg, n, V);
    gpu->xent_fwd(gpu, gloss, glse, gl, gtg, n, V);
    CHECK(close_def("xent_fwd losses", gloss, losses, n));
    CHECK(close_def("xent_fwd lse", glse, lse, n));
    cpu->xent_bwd(cpu, logits, lse, tg, n, V, 0.25f);
    gpu->xent_bwd(gpu, gl, glse, gtg, n, V, 0.25f);
    CHECK(close_def("xent_bwd", gl, logits, (size_t)n * V));
    float *h = malloc(sizeof(float) * n * V);
    gpu->copy_d2h(gpu, h, gl, sizeof(float) * n * V);
    for (int i = 3; i < n; i += 4)
        for (int j = 0; j < V; j++) CHECK(h[(size_t)i * V + j] == 0.0f);
    free(h); free(logits); free(losses); free(lse); free(tg);
    gfree(gl); gfree(gloss); gfree(glse); gfree(gtg);
}

/* The vocabulary-parallel pieces: this "rank" holds ids [v0, v0 + V), targets
 * below, inside and above that range, and ignored ones. */
TEST(cuda_xent_vocab_parallel)
{
    NEED_GPU();
    int n = 13, V = 700, v0 = 300;
    float *logits = randn((size_t)n * V, 7, 3), *mx = calloc(n, 4), *se = calloc(n, 4),
          *pk = calloc(n, 4), *lse = calloc(n, 4);
    int32_t *tg = randint(n, 8, 1400);
    tg[0] = -1; tg[1] = v0; tg[2] = v0 + V - 1; tg[3] = v0 - 1; tg[4] = v0 + V;
    float *gl = up(logits, sizeof(float) * n * V), *gmx = up(mx, n * 4), *gse = up(se, n * 4),
          *gpk = up(pk, n * 4);
    int32_t *gtg = up(tg, sizeof(int32_t) * n);
    cpu->xent_row_max(cpu, mx, logits, n, V);
    gpu->xent_row_max(gpu, gmx, gl, n, V);
    CHECK(close_def("xent_row_max", gmx, mx, n));
    cpu->xent_sumexp_pick(cpu, se, pk, logits, mx, tg, v0, n, V);
    gpu->xent_sumexp_pick(gpu, gse, gpk, gl, gmx, gtg, v0, n, V);
    CHECK(close_def("xent_sumexp", gse, se, n));
    CHECK(close_def("xent_pick", gpk, pk, n));
    for (int i = 0; i < n; i++) lse[i] = mx[i] + logf(se[i]);
    float *glse = up(lse, n * 4);
    cpu->xent_bwd_range(cpu, logits, lse, tg, v0, n, V, 0.5f);
    gpu->xent_bwd_range(gpu, gl, glse, gtg, v0, n, V, 0.5f);
    CHECK(close_def("xent_bwd_range", gl, logits, (size_t)n * V));
    free(logits); free(mx); free(se); free(pk); free(lse); free(tg);
    gfree(gl); gfree(gmx); gfree(gse); gfree(gpk); gfree(glse); gfree(gtg);
}

/* The online-softmax chunk update (train.xent_chunk): three chunks of 300,
 * 300 and 100 columns folded in turn on both backends, targets inside, before
 * and after each chunk, ignored ones; rows longer than a block. */
TEST(cuda_xent_chunk_update)
{
    NEED_GPU();
    int n = 13, V = 700, v0 = 300, Vc = 300;
    float *logits = randn((size_t)n * V, 9, 3), *chunk = malloc(sizeof(float) * n * Vc);
    float *mx = malloc(n * 4), *se = calloc(n, 4), *pk = calloc(n, 4);
    for (int i = 0; i < n; i++) mx[i] = -INFINITY;
    for (int j = 0; j < V; j++) logits[j] = 0.01f * j; /* row 0: the max moves every chunk */
    int32_t *tg = randint(n, 10, 1400);
    tg[0] = -1; tg[1] = v0; tg[2] = v0 + V - 1; tg[3] = v0 - 1; tg[4] = v0 + V; tg[5] = v0 + 300;
    float *gmx = up(mx, n * 4), *gse = up(se, n * 4), *gpk = up(pk, n * 4),
          *gc = gpu->alloc(gpu, sizeof(float) * n * Vc);
    int32_t *gtg = up(tg, sizeof(int32_t) * n);
    for (int v = 0; v < V; v += Vc) {
        int w = V - v < Vc ? V - v : Vc;
        for (int i = 0; i < n; i++)
            memcpy(chunk + (size_t)i * w, logits + (size_t)i * V + v, sizeof(float) * w);
        gpu->copy_h2d(gpu, gc, chunk, sizeof(float) * n * w);
        cpu->xent_chunk_update(cpu, mx, se, pk, chunk, tg, v0 + v, n, w);
        gpu->xent_chunk_update(gpu, gmx, gse, gpk, gc, gtg, v0 + v, n, w);
    }
    CHECK(close_def("xent_chunk_update max", gmx, mx, n));
    CHECK(close_def("xent_chunk_update sumexp", gse, se, n));
    CHECK(close_def("xent_chunk_update pick", gpk, pk, n));
    free(logits); free(chunk); free(mx); free(se); free(pk); free(tg);
    gfree(gmx); gfree(gse); gfree(gpk); gfree(gc); gfree(gtg);
}

/* ---- AdamW and the square sum ---------------------------------------------------- */

TEST(cuda_adamw)
{
    NEED_GPU();
    size_t m = 3001;
    float *p = randn(m, 1, 1), *g = randn(m, 2, 1), *mo = randn(m, 3, 0.1f), *vo = randn(m, 4, 0.1f);
    for (size_t i = 0; i < m; i++) vo[i] = fabsf(vo[i]);
    float *gp = up(p, m * 4), *gg = up(g, m * 4), *gm = up(mo, m * 4), *gv = up(vo, m * 4);
    for (int t = 1; t <= 3; t++) {
        float bc1 = 1.0f - powf(0.9f, (float)t), bc2 = 1.0f - powf(0.95f, (float)t);
        cpu->adamw(cpu, p, g, mo, vo, m, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, bc1, bc2, 0.5f);
        gpu->adamw(gpu, gp, gg, gm, gv, m, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, bc1, bc2, 0.5f);
    }
    CHECK(close_def("adamw p", gp, p, m));
    CHECK(close_def("adamw m", gm, mo, m));
    CHECK(close_def("adamw v", gv, vo, m));
    free(p); free(g); free(mo); free(vo);
    gfree(gp); gfree(gg); gfree(gm); gfree(gv);
}

TEST(cuda_sumsq)
{
    NEED_GPU();
    size_t sizes[] = {1, 1000, (1u << 20) + 7};
    for (int s = 0; s < 3; s++) {
        size_t m = sizes[s];
        float *x = randn(m, 9 + s, 2);
        float *gx = up(x, m * 4);
        double c = cpu->sumsq(cpu, x, m), g1 = gpu->sumsq(gpu, gx, m), g2 = gpu->sumsq(gpu, gx, m);
        CHECK_NEAR(g1, c, 1e-9 * c);
        CHECK(g1 == g2);  /* deterministic */
        free(x);
        gfree(gx);
    }
    CHECK(gpu->sumsq(gpu, NULL, 0) == 0.0);
}

/* ---- one forward + backward of the whole model on both backends ------------------- */

TEST(cuda_model_step)
{
    NEED_GPU();
    herd_model_dims d = {.n_layers = 2, .d_model = 64, .n_heads = 8, .n_kv_heads = 2,
                         .head_dim = 8, .ffn_dim = 96, .vocab_size = 101, .max_seq_len = 64,
                         .rope_theta = 500000, .norm_eps = 1e-5, .init_std = 0.05};
    herd_model mc, mg, mx;
    herd_model_parallel chunked = {0};
    chunked.xent_chunk = 30; /* the GPU's fused head: chunks of 30, 30, 30, 11 vocabulary rows */
    CHECK(herd_model_create(&mc, &d, cpu, 9) == 0);
    CHECK(herd_model_create(&mg, &d, gpu, 9) == 0);
    CHECK(herd_model_create_parallel(&mx, &d, gpu, 9, &chunked) == 0);
    int B = 2, T = 32;
    int32_t tok[64], tgt[64], doc[64];
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)(herd_splitmix64(i) % 101);
        tgt[i] = i % 9 == 4 ? -1 : (int32_t)(herd_splitmix64(i + 99) % 101);
        doc[i] = (i % T) / 11;
    }
    int64_t n1, n2;
    double l1 = herd_model_forward(&mc, tok, tgt, doc, B, T, &n1);
    double l2 = herd_model_forward(&mg, tok, tgt, doc, B, T, &n2);
    double l3 = herd_model_forward(&mx, tok, tgt, doc, B, T, NULL);
    CHECK(n1 == n2);
    CHECK_NEAR(l2, l1, 1e-5 * fabs(l1));
    CHECK_NEAR(l3, l1, 1e-5 * fabs(l1));
    CHECK(mx.logits == NULL);
    herd_model_backward(&mc, 1.0f / n1);
    herd_model_backward(&mg, 1.0f / n2);
    herd_model_backward(&mx, 1.0f / n2);
    float *gref = malloc(sizeof(float) * mc.n_params);
    cpu->copy_d2h(cpu, gref, mc.grads, sizeof(float) * mc.n_params);
    double gmax = 0;
    for (int64_t i = 0; i < mc.n_params; i++) gmax = fmax(gmax, fabs(gref[i]));
    CHECK(gmax > 0);
    /* fp32 through two layers: elementwise 1e-3 relative, absolute 1e-3 of the largest */
    CHECK(close_to("model grads", mg.grads, gref, (size_t)mc.n_params, 1e-3 * gmax, 1e-3));
    CHECK(close_to("model grads (xent_chunk 30)", mx.grads, gref, (size_t)mc.n_params,
                   1e-3 * gmax, 1e-3));
    free(gref);
    herd_model_destroy(&mc);
    herd_model_destroy(&mg);
    herd_model_destroy(&mx);
}

/* ---- BF16 compute (train.precision bf16) ------------------------------------------ */

/* The backends' bf16 mode: the GPU's cuBLASLt bf16 GEMM against the CPU's fp32
 * sums of the same rounded inputs. Both sum exact products of bf16 values in
 * fp32, in different orders: 1e-5 of sum |a_k w_k| per element would do; the
 * bound below is 1e-4 of the largest output plus 1e-4 relative. */
TEST(cuda_matmul_bf16_mode)
{
    NEED_GPU();
    if (!gpu->set_matmul_bf16 || !cpu->set_matmul_bf16) SKIP("a backend without bf16 matmul");
    int shapes[][3] = {{37, 29, 41}, {256, 384, 512}};
    for (int c = 0; c < 2; c++) {
        int M = shapes[c][0], N = shapes[c][1], K = shapes[c][2];
        size_t mk = (size_t)M * K, nk = (size_t)N * K, mn = (size_t)M * N;
        float *a = randn(mk, 1, 1), *w = randn(nk, 2, 1), *o = randn(mn, 3, 1),
              *dout = randn(mn, 4, 1), *da = randn(mk, 5, 1), *dw = randn(nk, 6, 1);
        float *ga = up(a, 4 * mk), *gw = up(w, 4 * nk), *go = up(o, 4 * mn), *gdo = up(dout, 4 * mn),
              *gda = up(da, 4 * mk), *gdw = up(dw, 4 * nk);
        cpu->set_matmul_bf16(cpu, 1);
        gpu->set_matmul_bf16(gpu, 1);
        cpu->matmul_fwd(cpu, o, a, w, M, N, K, 1);
        gpu->matmul_fwd(gpu, go, ga, gw, M, N, K, 1);
        cpu->matmul_bwd(cpu, da, dw, dout, a, w, M, N, K, 1);
        gpu->matmul_bwd(gpu, gda, gdw, gdo, ga, gw, M, N, K, 1);
        cpu->set_matmul_bf16(cpu, 0);
        gpu->set_matmul_bf16(gpu, 0);
        double mo = 0, mda = 0, mdw = 0;
        for (size_t i = 0; i < mn; i++) mo = fmax(mo, fabs(o[i]));
        for (size_t i = 0; i < mk; i++) mda = fmax(mda, fabs(da[i]));
        for (size_t i = 0; i < nk; i++) mdw = fmax(mdw, fabs(dw[i]));
        CHECK(close_to("bf16 mode matmul_fwd", go, o, mn, 1e-4 * mo, 1e-4));
        CHECK(close_to("bf16 mode matmul_bwd da", gda, da, mk, 1e-4 * mda, 1e-4));
        CHECK(close_to("bf16 mode matmul_bwd dw", gdw, dw, nk, 1e-4 * mdw, 1e-4));
        free(a); free(w); free(o); free(dout); free(da); free(dw);
        gfree(ga); gfree(gw); gfree(go); gfree(gdo); gfree(gda); gfree(gdw);
    }
}

/* A forward and backward of the model in bf16 mode on both backends: the GPU
 * (flash attention, cuBLASLt) against the CPU oracle in the same mode. */
TEST(cuda_model_step_bf16)
{
    NEED_GPU();
    if (!gpu->set_matmul_bf16 || !cpu->set_matmul_bf16) SKIP("a backend without bf16 matmul");
    herd_model_dims d = {.n_layers = 2, .d_model = 64, .n_heads = 8, .n_kv_heads = 2,
                         .head_dim = 8, .ffn_dim = 96, .vocab_size = 101, .max_seq_len = 64,
                         .rope_theta = 500000, .norm_eps = 1e-5, .init_std = 0.05};
    herd_model mc, mg;
    CHECK(herd_model_create(&mc, &d, cpu, 9) == 0);
    CHECK(herd_model_create(&mg, &d, gpu, 9) == 0);
    int B = 2, T = 32;
    int32_t tok[64], tgt[64], doc[64];
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)(herd_splitmix64(i) % 101);
        tgt[i] = (int32_t)(herd_splitmix64(i + 99) % 101);
        doc[i] = (i % T) / 11;
    }
    cpu->set_matmul_bf16(cpu, 1);
    gpu->set_matmul_bf16(gpu, 1);
    int64_t n1, n2;
    double l1 = herd_model_forward(&mc, tok, tgt, doc, B, T, &n1);
    double l2 = herd_model_forward(&mg, tok, tgt, doc, B, T, &n2);
    herd_model_backward(&mc, 1.0f / n1);
    herd_model_backward(&mg, 1.0f / n2);
    cpu->set_matmul_bf16(cpu, 0);
    gpu->set_matmul_bf16(gpu, 0);
    /* an fp32 difference before a rounding can move a bf16 input by one ulp
     * (2^-8 relative): the loss within 1e-3, the gradients within 2e-2 of the
     * largest (bf16's own tolerance, as for cuda_matmul_bf16) */
    CHECK_NEAR(l2, l1, 1e-3 * fabs(l1));
    float *gref = malloc(sizeof(float) * mc.n_params);
    cpu->copy_d2h(cpu, gref, mc.grads, sizeof(float) * mc.n_params);
    double gmax = 0;
    for (int64_t i = 0; i < mc.n_params; i++) gmax = fmax(gmax, fabs(gref[i]));
    CHECK(close_to("bf16 model grads", mg.grads, gref, (size_t)mc.n_params, 2e-2 * gmax, 2e-2));
    free(gref);
    herd_model_destroy(&mc);
    herd_model_destroy(&mg);
}

/* Two CUDA instances in one process, fp32 and bf16 (herd_backend_create):
 * each has its own precision, scratch and ledger; each matches the CPU
 * instance of its precision, and freeing one leaves the other working. */
TEST(cuda_two_instances)
{
    NEED_GPU();
    herd_backend *g32 = herd_backend_create("cuda", &(herd_backend_options){.matmul_bf16 = 0});
    herd_backend *g16 = herd_backend_create("cuda", &(herd_backend_options){.matmul_bf16 = 1});
    herd_backend *c16 = herd_backend_create("cpu", &(herd_backend_options){.matmul_bf16 = 1});
    CHECK(g32 && g16 && c16);
    if (!g32 || !g16 || !c16) {
        herd_backend_free(g32), herd_backend_free(g16), herd_backend_free(c16);
        return;
    }
    int M = 37, N = 29, K = 41;
    size_t mk = (size_t)M * K, nk = (size_t)N * K, mn = (size_t)M * N;
    float *a = randn(mk, 1, 1), *w = randn(nk, 2, 1), *o32 = malloc(4 * mn), *o16 = malloc(4 * mn);
    cpu->matmul_fwd(cpu, o32, a, w, M, N, K, 0);
    c16->matmul_fwd(c16, o16, a, w, M, N, K, 0);
    double mx = 0;
    for (size_t i = 0; i < mn; i++) mx = fmax(mx, fabs(o32[i]));
    size_t base32 = g32->mem_allocated(g32);
    float *a16 = g16->alloc(g16, 4 * mk), *w16 = g16->alloc(g16, 4 * nk),
          *r16 = g16->alloc(g16, 4 * mn);
    CHECK(g32->mem_allocated(g32) == base32 && g16->mem_allocated(g16) >= 4 * (mk + nk + mn));
    g16->copy_h2d(g16, a16, a, 4 * mk);
    g16->copy_h2d(g16, w16, w, 4 * nk);
    float *a32 = g32->alloc(g32, 4 * mk), *w32 = g32->alloc(g32, 4 * nk),
          *r32 = g32->alloc(g32, 4 * mn);
    g32->copy_h2d(g32, a32, a, 4 * mk);
    g32->copy_h2d(g32, w32, w, 4 * nk);
    g16->matmul_fwd(g16, r16, a16, w16, M, N, K, 0);
    g32->matmul_fwd(g32, r32, a32, w32, M, N, K, 0);
    CHECK(close_def("fp32 instance", r32, o32, mn));
    CHECK(close_to("bf16 instance", r16, o16, mn, 1e-4 * mx, 1e-4));
    g16->free(g16, a16), g16->free(g16, w16), g16->free(g16, r16);
    herd_backend_free(g16);
    g32->matmul_fwd(g32, r32, a32, w32, M, N, K, 0);
    CHECK(close_def("fp32 instance after the bf16 one is freed", r32, o32, mn));
    g32->free(g32, a32), g32->free(g32, w32), g32->free(g32, r32);
    herd_backend_free(g32);
    herd_backend_free(c16);
    free(a); free(w); free(o32); free(o16);
}

int main(void)
{
    cpu = herd_backend_cpu();
    gpu = herd_backend_cuda();
    RUN(cuda_memory);
    RUN(cuda_matmul_fwd);
    RUN(cuda_matmul_bwd);
    RUN(cuda_matmul_bf16);
    RUN(cuda_embedding);
    RUN(cuda_rmsnorm);
    RUN(cuda_rope);
    RUN(cuda_attention);
    RUN(cuda_attention_pos);
    RUN(cuda_attention_flash);
    RUN(cuda_attention_flash_wmma);
    RUN(cuda_swiglu);
    RUN(cuda_add_inplace);
    RUN(cuda_xent);
    RUN(cuda_xent_vocab_parallel);
    RUN(cuda_xent_chunk_update);
    RUN(cuda_adamw);
    RUN(cuda_sumsq);
    RUN(cuda_model_step);
    RUN(cuda_matmul_bf16_mode);
    RUN(cuda_model_step_bf16);
    RUN(cuda_two_instances);
    return test_summary();
}
