/* test_gradcheck.c — finite-difference gradient checks of every CPU op and of
 * the whole model.
 *
 * For an op y = f(x) the scalar probe is L = sum(r * y) with fixed random r;
 * the analytic gradient comes from the op's backward fed with dL/dy = r.
 * Two checks per input: the central difference of L along a random direction
 * u (aligned with the analytic gradient) against <grad, u>, and the central difference at the elements with the
 * largest analytic gradient. fp32 throughout, hence eps ~ 1e-2..1e-3 and a
 * relative tolerance of a few 1e-3.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/backend.h"
#include "src/model/model.h"
#include "src/base/rng.h"
#include "tests/unit/test.h"

static const herd_backend *be;

static float *randn(size_t n, uint64_t stream, float std)
{
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)(std * herd_rng_normal(42, stream, i));
    return x;
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* A probe: evaluates L(x) for the current contents of the inputs. */
typedef double (*probe_fn)(void *ctx);

/* Check grad (analytic dL/dx) against central differences on x[n]. */
static int check_input(const char *what, probe_fn L, void *ctx, float *x, const float *grad,
                       size_t n, float eps, double rtol)
{
    int ok = 1;
    /* directional derivative along u_i = grad_i * |z_i| (z random): every term
     * of <grad, u> is positive, so fp32 noise cannot hide behind cancellation,
     * and a wrong component still shows because fd measures the true slope */
    float *u = randn(n, 7, 1.0f);
    double gmax = 0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabsf(grad[i]));
    for (size_t i = 0; i < n; i++) u[i] = gmax > 0 ? (float)(grad[i] / gmax) * fabsf(u[i]) : u[i];
    float *x0 = malloc(n * sizeof(float));
    memcpy(x0, x, n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = x0[i] + eps * u[i];
    double lp = L(ctx);
    for (size_t i = 0; i < n; i++) x[i] = x0[i] - eps * u[i];
    double lm = L(ctx);
    memcpy(x, x0, n * sizeof(float));
    double fd = (lp - lm) / (2 * eps), an = dot(grad, u, n);
    double err = fabs(fd - an) / fmax(fabs(an), 1e-3);
    if (err > rtol) {
        fprintf(stderr, "  %s: directional fd %.6g analytic %.6g rel err %.3g\n", what, fd, an, err);
        ok = 0;
    }
    /* the three largest analytic components, one at a time */
    for (int k = 0; k < 3; k++) {
        size_t best = 0;
        for (size_t i = 0; i < n; i++)
            if (fabsf(grad[i]) > fabsf(grad[best]) && u[i] != 1e30f) best = i;
        float saved = x[best];
        x[best] = saved + eps;
        lp = L(ctx);
        x[best] = saved - eps;
        lm = L(ctx);
        x[best] = saved;
        fd = (lp - lm) / (2 * eps);
        err = fabs(fd - grad[best]) / fmax(fabs(grad[best]), 1e-3);
        if (err > 5 * rtol) {
            fprintf(stderr, "  %s[%zu]: fd %.6g analytic %.6g rel err %.3g\n", what, best, fd,
                    grad[best], err);
            ok = 0;
        }
        u[best] = 1e30f; /* exclude from the next pick */
    }
    free(u);
    free(x0);
    return ok;
}

/* ---- matmul -------------------------------------------------------------- */
enum { M = 6, NN = 5, K = 7 };
static float *mm_a, *mm_w, *mm_out, *mm_r;
static double mm_probe(void *c)
{
    be->matmul_fwd(be, mm_out, mm_a, mm_w, M, NN, K, 0);
    return dot(mm_out, mm_r, M * NN);
}
TEST(grad_matmul)
{
    mm_a = randn(M * K, 1, 1); mm_w = randn(NN * K, 2, 1); mm_r = randn(M * NN, 3, 1);
    mm_out = calloc(M * NN, 4);
    float *da = calloc(M * K, 4), *dw = calloc(NN * K, 4);
    be->matmul_bwd(be, da, dw, mm_r, mm_a, mm_w, M, NN, K, 0);
    CHECK(check_input("matmul.a", mm_probe, NULL, mm_a, da, M * K, 1e-2f, 2e-3));
    CHECK(check_input("matmul.w", mm_probe, NULL, mm_w, dw, NN * K, 1e-2f, 2e-3));
    /* accumulate flags: out += and da += */
    float *da2 = malloc(M * K * 4);
    for (int i = 0; i < M * K; i++) da2[i] = 1.0f;
    be->matmul_bwd(be, da2, NULL, mm_r, mm_a, mm_w, M, NN, K, 1);
    for (int i = 0; i < M * K; i++) CHECK_NEAR(da2[i], da[i] + 1.0f, 1e-5);
    free(mm_a); free(mm_w); free(mm_r); free(mm_out); free(da); free(dw); free(da2);
}

/* ---- embedding ------------------------------------------------------------ */
static float *em_w, *em_out, *em_r;
static int32_t em_tok[6] = {3, 1, 3, 0, 4, 3};
static double em_probe(void *c)
{
    be->embedding_fwd(be, em_out, em_tok, em_w, 6, 4);
    return dot(em_out, em_r, 24);
}
TEST(grad_embedding)
{
    em_w = randn(5 * 4, 1, 1); em_r = randn(24, 2, 1); em_out = calloc(24, 4);
    float *dw = calloc(20, 4);
    be->embedding_bwd(be, dw, em_r, em_tok, 6, 4);
    CHECK(check_input("embedding.w", em_probe, NULL, em_w, dw, 20, 1e-2f, 2e-3));
    free(em_w); free(em_r); free(em_out); free(dw);
}

/* ---- rmsnorm -------------------------------------------------------------- */
static float *rn_x, *rn_w, *rn_out, *rn_r, rn_rstd[4];
static double rn_probe(void *c)
{
    be->rmsnorm_fwd(be, rn_out, rn_rstd, rn_x, rn_w, 4, 8, 1e-5f);
    return dot(rn_out, rn_r, 32);
}
TEST(grad_rmsnorm)
{
    rn_x = randn(32, 1, 1); rn_w = randn(8, 2, 1); rn_r = randn(32, 3, 1); rn_out = calloc(32, 4);
    rn_probe(NULL);
    float *dx = calloc(32, 4), *dw = calloc(8, 4);
    be->rmsnorm_bwd(be, dx, dw, rn_r, rn_x, rn_w, rn_rstd, 4, 8);
    CHECK(check_input("rmsnorm.x", rn_probe, NULL, rn_x, dx, 32, 1e-2f, 3e-3));
    CHECK(check_input("rmsnorm.w", rn_probe, NULL, rn_w, dw, 8, 1e-2f, 3e-3));
    free(rn_x); free(rn_w); free(rn_r); free(rn_out); free(dx); free(dw);
}

/* ---- rope ----------------------------------------------------------------- */
enum { RN = 5, RH = 2, RD = 8 };
static float *ro_x, *ro_y, *ro_r, ro_cs[16 * RD];
static int32_t ro_pos[RN] = {0, 1, 2, 7, 15};
static double ro_probe(void *c)
{
    memcpy(ro_y, ro_x, sizeof(float) * RN * RH * RD);
    be->rope_fwd(be, ro_y, ro_cs, ro_pos, RN, RH, RD);
    return dot(ro_y, ro_r, RN * RH * RD);
}
TEST(grad_rope)
{
    for (int p = 0; p < 16; p++)
        for (int j = 0; j < RD / 2; j++) {
            double ang = p * pow(10000.0, -2.0 * j / RD);
            ro_cs[(p * RD / 2 + j) * 2] = (float)cos(ang);
            ro_cs[(p * RD / 2 + j) * 2 + 1] = (float)sin(ang);
        }
    size_t n = RN * RH * RD;
    ro_x = randn(n, 1, 1); ro_r = randn(n, 2, 1); ro_y = calloc(n, 4);
    float *dx = malloc(n * 4);
    memcpy(dx, ro_r, n * 4);
    be->rope_bwd(be, dx, ro_cs, ro_pos, RN, RH, RD);
    CHECK(check_input("rope.x", ro_probe, NULL, ro_x, dx, n, 1e-2f, 2e-3));
    /* position 0 is the identity */
    memcpy(ro_y, ro_x, n * 4);
    be->rope_fwd(be, ro_y, ro_cs, ro_pos, RN, RH, RD);
    for (int i = 0; i < RH * RD; i++) CHECK_NEAR(ro_y[i], ro_x[i], 0);
    free(ro_x); free(ro_r); free(ro_y); free(dx);
}

/* ---- attention (GQA + document mask) -------------------------------------- */
enum { AB = 2, AT = 7, AH = 4, AKV = 2, AD = 4 };
static float *at_q, *at_k, *at_v, *at_out, *at_att, *at_r;
static int32_t at_doc[AB * AT] = {0, 0, 0, 1, 1, 2, 2, 0, 0, 0, 0, 0, 1, 1};
static double at_probe(void *c)
{
    be->attention_fwd(be, at_out, at_att, at_q, at_k, at_v, at_doc, AB, AT, AH, AKV, AD);
    return dot(at_out, at_r, AB * AT * AH * AD);
}
TEST(grad_attention)
{
    size_t nq = AB * AT * AH * AD, nk = AB * AT * AKV * AD;
    at_q = randn(nq, 1, 1); at_k = randn(nk, 2, 1); at_v = randn(nk, 3, 1); at_r = randn(nq, 4, 1);
    at_out = calloc(nq, 4); at_att = calloc(AB * AH * AT * AT, 4);
    at_probe(NULL);
    /* the mask: no probability across documents or into the future */
    for (int b = 0; b < AB; b++)
        for (int h = 0; h < AH; h++)
            for (int i = 0; i < AT; i++)
                for (int j = 0; j < AT; j++) {
                    float p = at_att[((b * AH + h) * AT + i) * AT + j];
                    if (j > i || at_doc[b * AT + j] != at_doc[b * AT + i]) CHECK(p == 0.0f);
                    else CHECK(p > 0.0f);
                }
    float *dq = calloc(nq, 4), *dk = calloc(nk, 4), *dv = calloc(nk, 4), *scr = calloc(AT * AT, 4);
    be->attention_bwd(be, dq, dk, dv, scr, at_r, at_att, at_q, at_k, at_v, at_doc, AB, AT, AH, AKV,
                      AD);
    CHECK(check_input("attention.q", at_probe, NULL, at_q, dq, nq, 1e-2f, 3e-3));
    CHECK(check_input("attention.k", at_probe, NULL, at_k, dk, nk, 1e-2f, 3e-3));
    CHECK(check_input("attention.v", at_probe, NULL, at_v, dv, nk, 1e-2f, 3e-3));
    free(at_q); free(at_k); free(at_v); free(at_r); free(at_out); free(at_att);
    free(dq); free(dk); free(dv); free(scr);
}

/* ---- attention with positions (context parallel) ---------------------------
 * CP 2, T 8: rank 0 holds chunks 0 and 3 (positions 0 1 6 7); the keys are the
 * whole sequence in gathered order (rank 0's tokens, then rank 1's: 2 3 4 5);
 * documents cross the chunk boundaries. */
enum { PB = 2, PTQ = 4, PTK = 8 };
static float *ap_q, *ap_k, *ap_v, *ap_out, *ap_att, *ap_r;
static int32_t ap_qpos[PB * PTQ] = {0, 1, 6, 7, 0, 1, 6, 7};
static int32_t ap_kpos[PB * PTK] = {0, 1, 6, 7, 2, 3, 4, 5, 0, 1, 6, 7, 2, 3, 4, 5};
/* documents by position: b0 0 0 0 1 1 1 2 2, b1 0 1 1 1 1 1 1 1 */
static const int32_t ap_docpos[PB][PTK] = {{0, 0, 0, 1, 1, 1, 2, 2}, {0, 1, 1, 1, 1, 1, 1, 1}};
static int32_t ap_qdoc[PB * PTQ], ap_kdoc[PB * PTK];
static double ap_probe(void *c)
{
    be->attention_fwd_pos(be, ap_out, ap_att, ap_q, ap_k, ap_v, ap_qpos, ap_qdoc, ap_kpos, ap_kdoc,
                          PB, PTQ, PTK, AH, AKV, AD);
    return dot(ap_out, ap_r, PB * PTQ * AH * AD);
}
TEST(grad_attention_pos)
{
    for (int b = 0; b < PB; b++) {
        for (int i = 0; i < PTQ; i++) ap_qdoc[b * PTQ + i] = ap_docpos[b][ap_qpos[b * PTQ + i]];
        for (int j = 0; j < PTK; j++) ap_kdoc[b * PTK + j] = ap_docpos[b][ap_kpos[b * PTK + j]];
    }
    size_t nq = PB * PTQ * AH * AD, nk = PB * PTK * AKV * AD;
    ap_q = randn(nq, 11, 1); ap_k = randn(nk, 12, 1); ap_v = randn(nk, 13, 1); ap_r = randn(nq, 14, 1);
    ap_out = calloc(nq, 4); ap_att = calloc(PB * AH * PTQ * PTK, 4);
    ap_probe(NULL);
    /* the mask on global positions and documents, across chunk boundaries */
    for (int b = 0; b < PB; b++)
        for (int h = 0; h < AH; h++)
            for (int i = 0; i < PTQ; i++)
                for (int j = 0; j < PTK; j++) {
                    float p = ap_att[((b * AH + h) * PTQ + i) * PTK + j];
                    int allowed = ap_kpos[b * PTK + j] <= ap_qpos[b * PTQ + i] &&
                                  ap_kdoc[b * PTK + j] == ap_qdoc[b * PTQ + i];
                    CHECK(allowed ? p > 0.0f : p == 0.0f);
                }
    float *dq = calloc(nq, 4), *dk = calloc(nk, 4), *dv = calloc(nk, 4), *scr = calloc(PTQ * PTK, 4);
    be->attention_bwd_pos(be, dq, dk, dv, scr, ap_r, ap_att, ap_q, ap_k, ap_v, PB, PTQ, PTK, AH,
                          AKV, AD);
    CHECK(check_input("attention_pos.q", ap_probe, NULL, ap_q, dq, nq, 1e-2f, 3e-3));
    CHECK(check_input("attention_pos.k", ap_probe, NULL, ap_k, dk, nk, 1e-2f, 3e-3));
    CHECK(check_input("attention_pos.v", ap_probe, NULL, ap_v, dv, nk, 1e-2f, 3e-3));
    free(ap_q); free(ap_k); free(ap_v); free(ap_r); free(ap_out); free(ap_att);
    free(dq); free(dk); free(dv); free(scr);
}

/* With positions 0..T-1 for queries and keys it is the plain attention. */
TEST(attention_pos_matches_plain)
{
    size_t nq = AB * AT * AH * AD, nk = AB * AT * AKV * AD;
    float *q = randn(nq, 21, 1), *k = randn(nk, 22, 1), *v = randn(nk, 23, 1);
    float *o1 = calloc(nq, 4), *o2 = calloc(nq, 4), *a1 = calloc(AB * AH * AT * AT, 4),
          *a2 = calloc(AB * AH * AT * AT, 4);
    int32_t pos[AB * AT];
    for (int i = 0; i < AB * AT; i++) pos[i] = i % AT;
    be->attention_fwd(be, o1, a1, q, k, v, at_doc, AB, AT, AH, AKV, AD);
    be->attention_fwd_pos(be, o2, a2, q, k, v, pos, at_doc, pos, at_doc, AB, AT, AT, AH, AKV, AD);
    double err = 0;
    for (size_t i = 0; i < nq; i++) err = fmax(err, fabsf(o1[i] - o2[i]));
    CHECK(err < 1e-6);
    free(q); free(k); free(v); free(o1); free(o2); free(a1); free(a2);
}

/* ---- swiglu --------------------------------------------------------------- */
static float *sw_g, *sw_u, *sw_out, *sw_r;
static double sw_probe(void *c)
{
    be->swiglu_fwd(be, sw_out, sw_g, sw_u, 40);
    return dot(sw_out, sw_r, 40);
}
TEST(grad_swiglu)
{
    sw_g = randn(40, 1, 2); sw_u = randn(40, 2, 1); sw_r = randn(40, 3, 1); sw_out = calloc(40, 4);
    float *dg = calloc(40, 4), *du = calloc(40, 4);
    be->swiglu_bwd(be, dg, du, sw_r, sw_g, sw_u, 40);
    CHECK(check_input("swiglu.gate", sw_probe, NULL, sw_g, dg, 40, 1e-2f, 2e-3));
    CHECK(check_input("swiglu.up", sw_probe, NULL, sw_u, du, 40, 1e-2f, 2e-3));
    free(sw_g); free(sw_u); free(sw_r); free(sw_out); free(dg); free(du);
}

/* ---- cross-entropy -------------------------------------------------------- */
enum { XN = 5, XV = 11 };
static float *xe_logits, xe_losses[XN], xe_lse[XN];
static int32_t xe_t[XN] = {3, -1, 0, 10, 3};
static double xe_probe(void *c)
{
    be->xent_fwd(be, xe_losses, xe_lse, xe_logits, xe_t, XN, XV);
    double s = 0;
    for (int i = 0; i < XN; i++) s += xe_losses[i];
    return s;
}
TEST(grad_xent)
{
    xe_logits = randn(XN * XV, 1, 2);
    xe_probe(NULL);
    CHECK(xe_losses[1] == 0.0f);
    float *g = malloc(XN * XV * 4);
    memcpy(g, xe_logits, XN * XV * 4);
    be->xent_bwd(be, g, xe_lse, xe_t, XN, XV, 1.0f);
    for (int j = 0; j < XV; j++) CHECK(g[1 * XV + j] == 0.0f);
    CHECK(check_input("xent.logits", xe_probe, NULL, xe_logits, g, XN * XV, 1e-2f, 2e-3));
    free(xe_logits); free(g);
}

/* ---- the whole model -------------------------------------------------------- */
static herd_model model;
static int32_t md_tok[2 * 12], md_tgt[2 * 12], md_doc[2 * 12];
static double model_probe(void *c)
{
    int64_t nv;
    return herd_model_forward(&model, md_tok, md_tgt, md_doc, 2, 12, &nv) / nv;
}
TEST(grad_model)
{
    herd_model_dims d = {.n_layers = 2, .d_model = 16, .n_heads = 4, .n_kv_heads = 2,
                         .head_dim = 4, .ffn_dim = 24, .vocab_size = 19, .max_seq_len = 16,
                         .rope_theta = 500000.0, .norm_eps = 1e-5, .init_std = 0.3};
    CHECK(herd_model_create(&model, &d, be, 99) == 0);
    for (int i = 0; i < 24; i++) {
        md_tok[i] = (int32_t)(herd_splitmix64(i) % 19);
        md_tgt[i] = i % 12 == 11 ? -1 : (int32_t)(herd_splitmix64(i + 1) % 19);
        md_doc[i] = (i % 12) / 5; /* three documents per sequence */
    }
    int64_t nv;
    herd_model_zero_grad(&model);
    herd_model_forward(&model, md_tok, md_tgt, md_doc, 2, 12, &nv);
    CHECK(nv == 22);
    herd_model_backward(&model, 1.0f / nv);
    float *grads = malloc(sizeof(float) * model.n_params);
    memcpy(grads, model.grads, sizeof(float) * model.n_params);
    for (int i = 0; i < model.n_tensors; i++) {
        const herd_tensor *t = &model.tensors[i];
        CHECK(check_input(t->name, model_probe, NULL, model.params + t->offset,
                          grads + t->offset, t->numel, 2e-3f, 1e-2));
    }
    free(grads);
    herd_model_destroy(&model);
}

int main(void)
{
    be = herd_backend_cpu();
    RUN(grad_matmul);
    RUN(grad_embedding);
    RUN(grad_rmsnorm);
    RUN(grad_rope);
    RUN(grad_attention);
    RUN(grad_attention_pos);
    RUN(attention_pos_matches_plain);
    RUN(grad_swiglu);
    RUN(grad_xent);
    RUN(grad_model);
    return test_summary();
}
