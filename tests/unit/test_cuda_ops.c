/* test_cuda_ops.c — every CUDA op against the CPU op of the same name (the
 * oracle), and a whole training step of the model on both backends.
 * Skips, with a message, where no CUDA device (or no CUDA build) is present. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/backend.h"
#include "src/model.h"
#include "src/rng.h"
#include "tests/unit/test.h"

static const herd_backend *cpu, *gpu;

static float *randn(size_t n, uint64_t stream, float std)
{
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)(std * herd_rng_normal(3, stream, i));
    return x;
}

static void *up(const void *h, size_t bytes)
{
    void *d = gpu->alloc(bytes);
    gpu->copy_h2d(d, h, bytes);
    return d;
}

/* max|gpu - cpu| <= tol * max(1, max|cpu|) */
static int same(const char *what, const float *dev, const float *ref, size_t n, double tol)
{
    float *h = malloc(n * sizeof(float));
    gpu->copy_d2h(h, dev, n * sizeof(float));
    double err = 0, scale = 1;
    for (size_t i = 0; i < n; i++) {
        err = fmax(err, fabs((double)h[i] - ref[i]));
        scale = fmax(scale, fabs(ref[i]));
    }
    free(h);
    if (err > tol * scale) {
        fprintf(stderr, "  %s: max abs diff %.3g (scale %.3g)\n", what, err, scale);
        return 0;
    }
    return 1;
}

#define NEED_GPU() do { if (!gpu) SKIP("no CUDA device (or built without nvcc)"); } while (0)

TEST(cuda_matmul)
{
    NEED_GPU();
    int M = 37, N = 29, K = 41;
    float *a = randn(M * K, 1, 1), *w = randn(N * K, 2, 1), *o = randn(M * N, 3, 1);
    float *da = calloc(M * K, 4), *dw = randn(N * K, 4, 1);
    float *ga = up(a, M * K * 4), *gw = up(w, N * K * 4), *go = up(o, M * N * 4);
    float *gda = up(da, M * K * 4), *gdw = up(dw, N * K * 4);
    cpu->matmul_fwd(o, a, w, M, N, K, 1);
    gpu->matmul_fwd(go, ga, gw, M, N, K, 1);
    CHECK(same("matmul_fwd", go, o, M * N, 1e-5));
    cpu->matmul_bwd(da, dw, o, a, w, M, N, K, 0);
    gpu->matmul_bwd(gda, gdw, go, ga, gw, M, N, K, 0);
    CHECK(same("matmul_bwd.da", gda, da, M * K, 1e-5));
    CHECK(same("matmul_bwd.dw", gdw, dw, N * K, 1e-5));
    free(a); free(w); free(o); free(da); free(dw);
    gpu->free(ga); gpu->free(gw); gpu->free(go); gpu->free(gda); gpu->free(gdw);
}

TEST(cuda_elementwise)
{
    NEED_GPU();
    int n = 13, d = 40, V = 23;
    int32_t tok[13];
    for (int i = 0; i < n; i++) tok[i] = (int32_t)(herd_splitmix64(i) % V);
    float *wte = randn(V * d, 1, 1), *out = calloc(n * d, 4), *dw = calloc(V * d, 4);
    float *g = randn(n * d, 2, 1);
    float *gwte = up(wte, V * d * 4), *gout = up(out, n * d * 4), *gdw = up(dw, V * d * 4);
    float *gg = up(g, n * d * 4);
    int32_t *gtok = up(tok, sizeof tok);
    cpu->embedding_fwd(out, tok, wte, n, d);
    gpu->embedding_fwd(gout, gtok, gwte, n, d);
    CHECK(same("embedding_fwd", gout, out, n * d, 0));
    cpu->embedding_bwd(dw, g, tok, n, d);
    gpu->embedding_bwd(gdw, gg, gtok, n, d);
    CHECK(same("embedding_bwd", gdw, dw, V * d, 1e-6));

    float *x = randn(n * d, 5, 2), *w = randn(d, 6, 1), rstd[13], *dx = randn(n * d, 7, 1),
          *dnw = calloc(d, 4);
    float *gx = up(x, n * d * 4), *gw = up(w, d * 4), *grstd = up(rstd, sizeof rstd),
          *gdx = up(dx, n * d * 4), *gdnw = up(dnw, d * 4);
    cpu->rmsnorm_fwd(out, rstd, x, w, n, d, 1e-5f);
    gpu->rmsnorm_fwd(gout, grstd, gx, gw, n, d, 1e-5f);
    CHECK(same("rmsnorm_fwd", gout, out, n * d, 1e-5));
    CHECK(same("rmsnorm_fwd.rstd", grstd, rstd, n, 1e-5));
    cpu->rmsnorm_bwd(dx, dnw, g, x, w, rstd, n, d);
    gpu->rmsnorm_bwd(gdx, gdnw, gg, gx, gw, grstd, n, d);
    CHECK(same("rmsnorm_bwd.dx", gdx, dx, n * d, 1e-5));
    CHECK(same("rmsnorm_bwd.dw", gdnw, dnw, d, 1e-5));

    /* rope: n tokens x 5 heads x head_dim 8 */
    int hd = 8, nh = 5;
    float cs[16 * 8];
    int32_t pos[13];
    for (int i = 0; i < n; i++) pos[i] = i % 16;
    for (int p = 0; p < 16; p++)
        for (int j = 0; j < hd / 2; j++) {
            cs[(p * hd / 2 + j) * 2] = (float)cos(p * pow(500000.0, -2.0 * j / hd));
            cs[(p * hd / 2 + j) * 2 + 1] = (float)sin(p * pow(500000.0, -2.0 * j / hd));
        }
    float *r = randn(n * nh * hd, 8, 1);
    float *gr = up(r, n * nh * hd * 4), *gcs = up(cs, sizeof cs);
    int32_t *gpos = up(pos, sizeof pos);
    cpu->rope_fwd(r, cs, pos, n, nh, hd);
    gpu->rope_fwd(gr, gcs, gpos, n, nh, hd);
    CHECK(same("rope_fwd", gr, r, n * nh * hd, 1e-6));
    cpu->rope_bwd(r, cs, pos, n, nh, hd);
    gpu->rope_bwd(gr, gcs, gpos, n, nh, hd);
    CHECK(same("rope_bwd", gr, r, n * nh * hd, 1e-6));

    size_t m = (size_t)n * d;
    float *gate = randn(m, 9, 2), *upv = randn(m, 10, 1), *dg = calloc(m, 4), *du = calloc(m, 4);
    float *ggate = up(gate, m * 4), *gup = up(upv, m * 4), *gdg = up(dg, m * 4), *gdu = up(du, m * 4);
    cpu->swiglu_fwd(out, gate, upv, m);
    gpu->swiglu_fwd(gout, ggate, gup, m);
    CHECK(same("swiglu_fwd", gout, out, m, 1e-6));
    cpu->swiglu_bwd(dg, du, g, gate, upv, m);
    gpu->swiglu_bwd(gdg, gdu, gg, ggate, gup, m);
    CHECK(same("swiglu_bwd.dgate", gdg, dg, m, 1e-6));
    CHECK(same("swiglu_bwd.dup", gdu, du, m, 1e-6));
    cpu->add_inplace(out, g, m);
    gpu->add_inplace(gout, gg, m);
    CHECK(same("add_inplace", gout, out, m, 1e-6));

    /* cross-entropy with ignored targets */
    int32_t tg[13];
    for (int i = 0; i < n; i++) tg[i] = i % 4 == 3 ? -1 : (int32_t)(herd_splitmix64(50 + i) % d);
    float losses[13], lse[13];
    float *glosses = up(losses, sizeof losses), *glse = up(lse, sizeof lse);
    int32_t *gtg = up(tg, sizeof tg);
    cpu->xent_fwd(losses, lse, x, tg, n, d);
    gpu->xent_fwd(glosses, glse, gx, gtg, n, d);
    CHECK(same("xent_fwd.losses", glosses, losses, n, 1e-5));
    cpu->xent_bwd(x, lse, tg, n, d, 0.25f);
    gpu->xent_bwd(gx, glse, gtg, n, d, 0.25f);
    CHECK(same("xent_bwd", gx, x, n * d, 1e-6));

    /* AdamW and the square sum */
    float *p = randn(m, 11, 1), *mo = randn(m, 12, 0.1f), *vo = randn(m, 13, 0.1f);
    for (size_t i = 0; i < m; i++) vo[i] = fabsf(vo[i]);
    float *gp = up(p, m * 4), *gm = up(mo, m * 4), *gv = up(vo, m * 4);
    cpu->adamw(p, g, mo, vo, m, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.19f, 0.0975f, 0.5f);
    gpu->adamw(gp, gg, gm, gv, m, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.19f, 0.0975f, 0.5f);
    CHECK(same("adamw.p", gp, p, m, 1e-6));
    CHECK(same("adamw.v", gv, vo, m, 1e-6));
    double s1 = cpu->sumsq(g, m), s2 = gpu->sumsq(gg, m);
    CHECK_NEAR(s2, s1, 1e-9 * s1);
}

TEST(cuda_attention)
{
    NEED_GPU();
    int B = 2, T = 19, H = 4, KV = 2, hd = 8;
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd, na = (size_t)B * H * T * T;
    int32_t doc[38];
    for (int i = 0; i < B * T; i++) doc[i] = (i % T) / 7; /* three documents per sequence */
    float *q = randn(nq, 1, 1), *k = randn(nk, 2, 1), *v = randn(nk, 3, 1), *dout = randn(nq, 4, 1);
    float *o = calloc(nq, 4), *att = calloc(na, 4), *dq = calloc(nq, 4), *dk = calloc(nk, 4),
          *dv = calloc(nk, 4), *scr = calloc(T * T, 4);
    float *gq = up(q, nq * 4), *gk = up(k, nk * 4), *gv = up(v, nk * 4), *gdo = up(dout, nq * 4);
    float *go = up(o, nq * 4), *gatt = up(att, na * 4), *gdq = up(dq, nq * 4), *gdk = up(dk, nk * 4),
          *gdv = up(dv, nk * 4), *gscr = up(scr, T * T * 4);
    int32_t *gdoc = up(doc, sizeof doc);
    cpu->attention_fwd(o, att, q, k, v, doc, B, T, H, KV, hd);
    gpu->attention_fwd(go, gatt, gq, gk, gv, gdoc, B, T, H, KV, hd);
    CHECK(same("attention_fwd.out", go, o, nq, 1e-5));
    CHECK(same("attention_fwd.att", gatt, att, na, 1e-5));
    cpu->attention_bwd(dq, dk, dv, scr, dout, att, q, k, v, doc, B, T, H, KV, hd);
    gpu->attention_bwd(gdq, gdk, gdv, gscr, gdo, gatt, gq, gk, gv, gdoc, B, T, H, KV, hd);
    CHECK(same("attention_bwd.dq", gdq, dq, nq, 1e-5));
    CHECK(same("attention_bwd.dk", gdk, dk, nk, 1e-5));
    CHECK(same("attention_bwd.dv", gdv, dv, nk, 1e-5));
}

/* One forward + backward of the whole model on both backends. */
TEST(cuda_model_step)
{
    NEED_GPU();
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
    int64_t n1, n2;
    double l1 = herd_model_forward(&mc, tok, tgt, doc, B, T, &n1);
    double l2 = herd_model_forward(&mg, tok, tgt, doc, B, T, &n2);
    CHECK_NEAR(l2, l1, 1e-5 * fabs(l1));
    herd_model_backward(&mc, 1.0f / n1);
    herd_model_backward(&mg, 1.0f / n2);
    CHECK(same("model grads", mg.grads, mc.grads, (size_t)mc.n_params, 1e-4));
    herd_model_destroy(&mc);
    herd_model_destroy(&mg);
}

int main(void)
{
    cpu = herd_backend_cpu();
    gpu = herd_backend_cuda();
    RUN(cuda_matmul);
    RUN(cuda_elementwise);
    RUN(cuda_attention);
    RUN(cuda_model_step);
    return test_summary();
}
