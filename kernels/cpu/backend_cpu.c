/* backend_cpu.c — the CPU backend: host memory, the fp32 reference ops, and
 * the state of one instance (its memory ledger and matmul precision). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/backend.h"
#include "kernels/memstat.h"
#include "kernels/cpu/attention_flash_bf16.h"
#include "kernels/cpu/cpu_ops.h"

typedef struct cpu_state {
    herd_memstat *ledger; /* every alloc and free (the peak memory of a step) */
    cpu_matmul mm;        /* the matmul precision and the step's bf16 weights */
} cpu_state;

static cpu_state *state(const herd_backend *be) { return (cpu_state *)be->state; }

static void *cpu_alloc(const herd_backend *be, size_t bytes)
{
    void *p = calloc(1, bytes ? bytes : 1);
    if (p) herd_memstat_add(state(be)->ledger, p, bytes);
    return p;
}

static void cpu_free(const herd_backend *be, void *p)
{
    if (p) herd_memstat_remove(state(be)->ledger, p);
    free(p);
}

static size_t cpu_mem_allocated(const herd_backend *be)
{
    return herd_memstat_current(state(be)->ledger);
}

static size_t cpu_mem_peak(const herd_backend *be, int reset)
{
    return herd_memstat_peak(state(be)->ledger, reset);
}

static void cpu_copy(const herd_backend *be, void *dst, const void *src, size_t bytes)
{
    (void)be;
    memcpy(dst, src, bytes);
}

static void cpu_zero(const herd_backend *be, float *x, size_t n)
{
    (void)be;
    memset(x, 0, n * sizeof(float));
}

static void cpu_synchronize(const herd_backend *be) { (void)be; }

static void cpu_set_matmul_bf16(const herd_backend *be, int on) { state(be)->mm.bf16 = on != 0; }
static int cpu_get_matmul_bf16(const herd_backend *be) { return state(be)->mm.bf16; }

static int cpu_w16_begin(const herd_backend *be, const float *params, size_t n)
{
    return cpu_weights_bf16_begin(&state(be)->mm, params, n);
}

static void cpu_w16_end(const herd_backend *be) { cpu_weights_bf16_end(&state(be)->mm); }

static void be_matmul_fwd(const herd_backend *be, float *out, const float *a, const float *w,
                          int M, int N, int K, int accumulate)
{
    cpu_matmul_fwd(&state(be)->mm, out, a, w, M, N, K, accumulate);
}

static void be_matmul_bwd(const herd_backend *be, float *da, float *dw, const float *dout,
                          const float *a, const float *w, int M, int N, int K, int accumulate_da)
{
    cpu_matmul_bwd(&state(be)->mm, da, dw, dout, a, w, M, N, K, accumulate_da);
}

/* The flash pair of the backend: in bf16 mode with a head size the GPU's
 * tensor-core kernels take, the bf16 oracle of those kernels; the fp32 pair
 * otherwise (kernels/cuda/flash_attention.cu makes the same choice). */
static int flash_bf16(const herd_backend *be, int hd)
{
    return state(be)->mm.bf16 && HERD_FLASH_BF16_OK(hd);
}

static void cpu_flash_fwd(const herd_backend *be, float *out, float *lse, const float *q,
                          const float *k, const float *v, const int32_t *doc, int B, int T, int H,
                          int KV, int hd)
{
    (flash_bf16(be, hd) ? cpu_attention_flash_bf16_fwd
                        : cpu_attention_flash_fwd)(out, lse, q, k, v, doc, B, T, H, KV, hd);
}

static void cpu_flash_bwd(const herd_backend *be, float *dq, float *dk, float *dv,
                          const float *dout, const float *out, const float *lse, const float *q,
                          const float *k, const float *v, const int32_t *doc, int B, int T, int H,
                          int KV, int hd)
{
    (flash_bf16(be, hd) ? cpu_attention_flash_bf16_bwd
                        : cpu_attention_flash_bwd)(dq, dk, dv, dout, out, lse, q, k, v, doc, B, T,
                                                   H, KV, hd);
}

/* ---- the pure ops: the reference functions, which keep no state ---------- */

static void be_embedding_fwd(const herd_backend *be, float *out, const int32_t *tokens,
                             const float *wte, int n, int d)
{
    (void)be;
    cpu_embedding_fwd(out, tokens, wte, n, d);
}

static void be_embedding_bwd(const herd_backend *be, float *dwte, const float *dout,
                             const int32_t *tokens, int n, int d)
{
    (void)be;
    cpu_embedding_bwd(dwte, dout, tokens, n, d);
}

static void be_rmsnorm_fwd(const herd_backend *be, float *out, float *rstd, const float *x,
                           const float *w, int n, int d, float eps)
{
    (void)be;
    cpu_rmsnorm_fwd(out, rstd, x, w, n, d, eps);
}

static void be_rmsnorm_bwd(const herd_backend *be, float *dx, float *dw, const float *dout,
                           const float *x, const float *w, const float *rstd, int n, int d)
{
    (void)be;
    cpu_rmsnorm_bwd(dx, dw, dout, x, w, rstd, n, d);
}

static void be_rope_fwd(const herd_backend *be, float *x, const float *cos_sin, const int32_t *pos,
                        int n, int n_heads, int head_dim)
{
    (void)be;
    cpu_rope_fwd(x, cos_sin, pos, n, n_heads, head_dim);
}

static void be_rope_bwd(const herd_backend *be, float *dx, const float *cos_sin, const int32_t *pos,
                        int n, int n_heads, int head_dim)
{
    (void)be;
    cpu_rope_bwd(dx, cos_sin, pos, n, n_heads, head_dim);
}

static void be_attention_fwd(const herd_backend *be, float *out, float *att, const float *q,
                             const float *k, const float *v, const int32_t *doc, int B, int T,
                             int H, int KV, int hd)
{
    (void)be;
    cpu_attention_fwd(out, att, q, k, v, doc, B, T, H, KV, hd);
}

static void be_attention_bwd(const herd_backend *be, float *dq, float *dk, float *dv,
                             float *scratch, const float *dout, const float *att, const float *q,
                             const float *k, const float *v, const int32_t *doc, int B, int T,
                             int H, int KV, int hd)
{
    (void)be;
    cpu_attention_bwd(dq, dk, dv, scratch, dout, att, q, k, v, doc, B, T, H, KV, hd);
}

static void be_attention_fwd_pos(const herd_backend *be, float *out, float *att, const float *q,
                                 const float *k, const float *v, const int32_t *qpos,
                                 const int32_t *qdoc, const int32_t *kpos, const int32_t *kdoc,
                                 int B, int Tq, int Tk, int H, int KV, int hd)
{
    (void)be;
    cpu_attention_fwd_pos(out, att, q, k, v, qpos, qdoc, kpos, kdoc, B, Tq, Tk, H, KV, hd);
}

static void be_attention_bwd_pos(const herd_backend *be, float *dq, float *dk, float *dv,
                                 float *scratch, const float *dout, const float *att,
                                 const float *q, const float *k, const float *v, int B, int Tq,
                                 int Tk, int H, int KV, int hd)
{
    (void)be;
    cpu_attention_bwd_pos(dq, dk, dv, scratch, dout, att, q, k, v, B, Tq, Tk, H, KV, hd);
}

static void be_swiglu_fwd(const herd_backend *be, float *out, const float *gate, const float *up,
                          size_t n)
{
    (void)be;
    cpu_swiglu_fwd(out, gate, up, n);
}

static void be_swiglu_bwd(const herd_backend *be, float *dgate, float *dup, const float *dout,
                          const float *gate, const float *up, size_t n)
{
    (void)be;
    cpu_swiglu_bwd(dgate, dup, dout, gate, up, n);
}

static void be_add_inplace(const herd_backend *be, float *y, const float *x, size_t n)
{
    (void)be;
    cpu_add_inplace(y, x, n);
}

static void be_xent_fwd(const herd_backend *be, float *losses, float *lse, const float *logits,
                        const int32_t *targets, int n, int V)
{
    (void)be;
    cpu_xent_fwd(losses, lse, logits, targets, n, V);
}

static void be_xent_bwd(const herd_backend *be, float *logits, const float *lse,
                        const int32_t *targets, int n, int V, float scale)
{
    (void)be;
    cpu_xent_bwd(logits, lse, targets, n, V, scale);
}

static void be_xent_row_max(const herd_backend *be, float *row_max, const float *logits, int n,
                            int V)
{
    (void)be;
    cpu_xent_row_max(row_max, logits, n, V);
}

static void be_xent_sumexp_pick(const herd_backend *be, float *sumexp, float *picked,
                                const float *logits, const float *m, const int32_t *targets, int v0,
                                int n, int V)
{
    (void)be;
    cpu_xent_sumexp_pick(sumexp, picked, logits, m, targets, v0, n, V);
}

static void be_xent_bwd_range(const herd_backend *be, float *logits, const float *lse,
                              const int32_t *targets, int v0, int n, int V, float scale)
{
    (void)be;
    cpu_xent_bwd_range(logits, lse, targets, v0, n, V, scale);
}

static void be_xent_chunk_update(const herd_backend *be, float *row_max, float *sumexp,
                                 float *picked, const float *logits, const int32_t *targets, int v0,
                                 int n, int Vc)
{
    (void)be;
    cpu_xent_chunk_update(row_max, sumexp, picked, logits, targets, v0, n, Vc);
}

static void be_adamw(const herd_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                     float lr, float beta1, float beta2, float eps, float wd, float bc1, float bc2,
                     float grad_scale)
{
    (void)be;
    cpu_adamw(p, g, m, v, n, lr, beta1, beta2, eps, wd, bc1, bc2, grad_scale);
}

static double be_sumsq(const herd_backend *be, const float *x, size_t n)
{
    (void)be;
    return cpu_sumsq(x, n);
}

/* ---- the instance ------------------------------------------------------- */

static void cpu_destroy(herd_backend *be)
{
    cpu_state *s = state(be);
    herd_memstat_free(s->ledger);
    free(s->mm.w_round);
    free(s);
    free(be);
}

static const herd_backend cpu_table = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .mem_allocated = cpu_mem_allocated,
    .mem_peak = cpu_mem_peak,
    .set_matmul_bf16 = cpu_set_matmul_bf16,
    .weights_bf16_begin = cpu_w16_begin,
    .weights_bf16_end = cpu_w16_end,
    .copy_h2d = cpu_copy,
    .copy_d2h = cpu_copy,
    .copy_d2d = cpu_copy,
    .zero = cpu_zero,
    .synchronize = cpu_synchronize,
    .matmul_fwd = be_matmul_fwd,
    .matmul_bwd = be_matmul_bwd,
    .embedding_fwd = be_embedding_fwd,
    .embedding_bwd = be_embedding_bwd,
    .rmsnorm_fwd = be_rmsnorm_fwd,
    .rmsnorm_bwd = be_rmsnorm_bwd,
    .rope_fwd = be_rope_fwd,
    .rope_bwd = be_rope_bwd,
    .attention_fwd = be_attention_fwd,
    .attention_bwd = be_attention_bwd,
    .attention_fwd_pos = be_attention_fwd_pos,
    .attention_bwd_pos = be_attention_bwd_pos,
    .swiglu_fwd = be_swiglu_fwd,
    .swiglu_bwd = be_swiglu_bwd,
    .add_inplace = be_add_inplace,
    .xent_fwd = be_xent_fwd,
    .xent_bwd = be_xent_bwd,
    .xent_row_max = be_xent_row_max,
    .xent_sumexp_pick = be_xent_sumexp_pick,
    .xent_bwd_range = be_xent_bwd_range,
    .xent_chunk_update = be_xent_chunk_update,
    .adamw = be_adamw,
    .sumsq = be_sumsq,
    .attention_flash_fwd = cpu_flash_fwd,
    .attention_flash_bwd = cpu_flash_bwd,
    .prefer_flash = 0, /* the materialized pair stays the CPU model's fp32 path */
    .prefer_flash_bf16 = 1,
    .get_matmul_bf16 = cpu_get_matmul_bf16,
};

herd_backend *herd_backend_cpu_create(const herd_backend_options *opt)
{
    herd_backend *be = malloc(sizeof *be);
    cpu_state *s = calloc(1, sizeof *s);
    herd_memstat *ledger = herd_memstat_create();
    if (!be || !s || !ledger) {
        fprintf(stderr, "herd: backend cpu: out of memory\n");
        free(be);
        free(s);
        herd_memstat_free(ledger);
        return NULL;
    }
    s->ledger = ledger;
    s->mm.bf16 = opt && opt->matmul_bf16;
    *be = cpu_table;
    be->state = s;
    return be;
}
