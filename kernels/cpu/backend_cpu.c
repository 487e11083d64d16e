/* backend_cpu.c — the CPU backend table: host memory, the fp32 reference ops. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/backend.h"
#include "kernels/memstat.h"
#include "kernels/cpu/attention_flash_bf16.h"
#include "kernels/cpu/cpu_ops.h"

/* every alloc and free goes through the ledger (the peak memory of a step) */
static herd_memstat *cpu_ledger;
static pthread_once_t cpu_ledger_once = PTHREAD_ONCE_INIT;
static void cpu_ledger_make(void) { cpu_ledger = herd_memstat_create(); }

static void *cpu_alloc(size_t bytes)
{
    void *p = calloc(1, bytes ? bytes : 1);
    pthread_once(&cpu_ledger_once, cpu_ledger_make);
    if (p && cpu_ledger) herd_memstat_add(cpu_ledger, p, bytes);
    return p;
}

static void cpu_free(void *p)
{
    if (p && cpu_ledger) herd_memstat_remove(cpu_ledger, p);
    free(p);
}

static size_t cpu_mem_allocated(void) { return cpu_ledger ? herd_memstat_current(cpu_ledger) : 0; }
static size_t cpu_mem_peak(int reset) { return cpu_ledger ? herd_memstat_peak(cpu_ledger, reset) : 0; }
static void cpu_copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
static void cpu_zero(float *x, size_t n) { memset(x, 0, n * sizeof(float)); }
static void cpu_synchronize(void) {}

/* The flash pair of the backend: in bf16 mode with a head size the GPU's
 * tensor-core kernels take, the bf16 oracle of those kernels; the fp32 pair
 * otherwise (kernels/cuda/flash_attention.cu makes the same choice). */
static int flash_bf16(int hd) { return cpu_get_matmul_bf16() && HERD_FLASH_BF16_OK(hd); }

static void cpu_flash_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                          const int32_t *doc, int B, int T, int H, int KV, int hd)
{
    (flash_bf16(hd) ? cpu_attention_flash_bf16_fwd
                    : cpu_attention_flash_fwd)(out, lse, q, k, v, doc, B, T, H, KV, hd);
}

static void cpu_flash_bwd(float *dq, float *dk, float *dv, const float *dout, const float *out,
                          const float *lse, const float *q, const float *k, const float *v,
                          const int32_t *doc, int B, int T, int H, int KV, int hd)
{
    (flash_bf16(hd) ? cpu_attention_flash_bf16_bwd
                    : cpu_attention_flash_bwd)(dq, dk, dv, dout, out, lse, q, k, v, doc, B, T, H,
                                               KV, hd);
}

static const herd_backend cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .mem_allocated = cpu_mem_allocated,
    .mem_peak = cpu_mem_peak,
    .set_matmul_bf16 = cpu_set_matmul_bf16,
    .weights_bf16_begin = cpu_weights_bf16_begin,
    .weights_bf16_end = cpu_weights_bf16_end,
    .copy_h2d = cpu_copy,
    .copy_d2h = cpu_copy,
    .copy_d2d = cpu_copy,
    .zero = cpu_zero,
    .synchronize = cpu_synchronize,
    .matmul_fwd = cpu_matmul_fwd,
    .matmul_bwd = cpu_matmul_bwd,
    .embedding_fwd = cpu_embedding_fwd,
    .embedding_bwd = cpu_embedding_bwd,
    .rmsnorm_fwd = cpu_rmsnorm_fwd,
    .rmsnorm_bwd = cpu_rmsnorm_bwd,
    .rope_fwd = cpu_rope_fwd,
    .rope_bwd = cpu_rope_bwd,
    .attention_fwd = cpu_attention_fwd,
    .attention_bwd = cpu_attention_bwd,
    .attention_fwd_pos = cpu_attention_fwd_pos,
    .attention_bwd_pos = cpu_attention_bwd_pos,
    .swiglu_fwd = cpu_swiglu_fwd,
    .swiglu_bwd = cpu_swiglu_bwd,
    .add_inplace = cpu_add_inplace,
    .xent_fwd = cpu_xent_fwd,
    .xent_bwd = cpu_xent_bwd,
    .xent_row_max = cpu_xent_row_max,
    .xent_sumexp_pick = cpu_xent_sumexp_pick,
    .xent_bwd_range = cpu_xent_bwd_range,
    .xent_chunk_update = cpu_xent_chunk_update,
    .adamw = cpu_adamw,
    .sumsq = cpu_sumsq,
    .attention_flash_fwd = cpu_flash_fwd,
    .attention_flash_bwd = cpu_flash_bwd,
    .prefer_flash = 0, /* the materialized pair stays the CPU model's fp32 path */
    .prefer_flash_bf16 = 1,
    .get_matmul_bf16 = cpu_get_matmul_bf16,
};

const herd_backend *herd_backend_cpu(void) { return &cpu_backend; }
