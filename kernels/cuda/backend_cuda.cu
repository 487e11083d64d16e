// backend_cuda.cu — the CUDA backend table (fp32, cuBLAS), its memory ops, the
// cuBLAS handle and the device scratch. Memory is device memory; copies are
// synchronous; every op runs on the default stream. herd_backend_cuda() is
// NULL when no device is present, so callers get a clean "no CUDA device" path
// on machines without a GPU.
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/backend.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/memstat.h"
}

cublasHandle_t herd_cuda_blas(void)
{
    static cublasHandle_t h;
    if (!h) {
        CUBLAS_CHECK(cublasCreate(&h));
        // plain fp32 products (no TF32): this backend is checked against the CPU oracle
        CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
    }
    return h;
}

// every cudaMalloc of this backend, the scratch included, is in the ledger
// (the peak memory of a step, like torch.cuda.max_memory_allocated)
static herd_memstat *ledger(void)
{
    static herd_memstat *s;
    if (!s) s = herd_memstat_create();  // first use is on the trainer's thread
    return s;
}

void *herd_cuda_scratch(int slot, size_t bytes)
{
    static void *buf[HERD_SCRATCH_N];
    static size_t cap[HERD_SCRATCH_N];
    if (bytes > cap[slot]) {
        if (buf[slot]) {
            if (ledger()) herd_memstat_remove(ledger(), buf[slot]);
            CUDA_CHECK(cudaFree(buf[slot]));  // cudaFree waits for the device
        }
        buf[slot] = NULL;
        cap[slot] = 0;
        CUDA_CHECK(cudaMalloc(&buf[slot], bytes));
        cap[slot] = bytes;
        if (ledger()) herd_memstat_add(ledger(), buf[slot], bytes);
    }
    return buf[slot];
}

// ---- memory -----------------------------------------------------------------

static void *cu_alloc(size_t bytes)
{
    void *p = NULL;
    size_t nb = bytes ? bytes : 1;
    if (cudaMalloc(&p, nb) != cudaSuccess) {
        (void)cudaGetLastError();  // clear it: the caller handles NULL
        return NULL;
    }
    CUDA_CHECK(cudaMemset(p, 0, nb));
    if (ledger()) herd_memstat_add(ledger(), p, nb);
    return p;
}

static void cu_free(void *p)
{
    if (!p) return;
    if (ledger()) herd_memstat_remove(ledger(), p);
    CUDA_CHECK(cudaFree(p));
}

static size_t cu_mem_allocated(void) { return ledger() ? herd_memstat_current(ledger()) : 0; }
static size_t cu_mem_peak(int reset) { return ledger() ? herd_memstat_peak(ledger(), reset) : 0; }

static void cu_h2d(void *d, const void *s, size_t n)
{
    if (n) CUDA_CHECK(cudaMemcpy(d, s, n, cudaMemcpyHostToDevice));
}

static void cu_d2h(void *d, const void *s, size_t n)
{
    if (n) CUDA_CHECK(cudaMemcpy(d, s, n, cudaMemcpyDeviceToHost));
}

static void cu_d2d(void *d, const void *s, size_t n)
{
    if (n) CUDA_CHECK(cudaMemcpy(d, s, n, cudaMemcpyDeviceToDevice));
}

static void cu_zero(float *x, size_t n)
{
    if (n) CUDA_CHECK(cudaMemset(x, 0, n * sizeof(float)));
}

static void cu_sync(void) { CUDA_CHECK(cudaDeviceSynchronize()); }

// the whole device's memory in use (this process and any other), bytes
static size_t cu_mem_in_use(void)
{
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    return total_b - free_b;
}

// ---- the table ----------------------------------------------------------------

static herd_backend make_table(void)
{
    herd_backend b = {};
    b.name = "cuda";
    b.alloc = cu_alloc;
    b.free = cu_free;
    b.copy_h2d = cu_h2d;
    b.copy_d2h = cu_d2h;
    b.copy_d2d = cu_d2d;
    b.zero = cu_zero;
    b.synchronize = cu_sync;
    b.matmul_fwd = cuda_matmul_fwd;
    b.matmul_bwd = cuda_matmul_bwd;
    b.embedding_fwd = cuda_embedding_fwd;
    b.embedding_bwd = cuda_embedding_bwd;
    b.rmsnorm_fwd = cuda_rmsnorm_fwd;
    b.rmsnorm_bwd = cuda_rmsnorm_bwd;
    b.rope_fwd = cuda_rope_fwd;
    b.rope_bwd = cuda_rope_bwd;
    b.attention_fwd = cuda_attention_fwd;
    b.attention_bwd = cuda_attention_bwd;
    b.attention_fwd_pos = cuda_attention_fwd_pos;
    b.attention_bwd_pos = cuda_attention_bwd_pos;
    b.swiglu_fwd = cuda_swiglu_fwd;
    b.swiglu_bwd = cuda_swiglu_bwd;
    b.add_inplace = cuda_add_inplace;
    b.xent_fwd = cuda_xent_fwd;
    b.xent_bwd = cuda_xent_bwd;
    b.xent_row_max = cuda_xent_row_max;
    b.xent_sumexp_pick = cuda_xent_sumexp_pick;
    b.xent_bwd_range = cuda_xent_bwd_range;
    b.xent_chunk_update = cuda_xent_chunk_update;
    b.adamw = cuda_adamw;
    b.sumsq = cuda_sumsq;
    b.attention_flash_fwd = cuda_attention_flash_fwd;
    b.attention_flash_bwd = cuda_attention_flash_bwd;
    b.prefer_flash = 1;
    b.mem_in_use = cu_mem_in_use;
    b.mem_allocated = cu_mem_allocated;
    b.mem_peak = cu_mem_peak;
    b.set_matmul_bf16 = cuda_set_matmul_bf16;
    b.get_matmul_bf16 = cuda_get_matmul_bf16;
    b.weights_bf16_begin = cuda_weights_bf16_begin;
    b.weights_bf16_end = cuda_weights_bf16_end;
    return b;
}

extern "C" const herd_backend *herd_backend_cuda(void)
{
    static herd_backend table;
    static int probed, present;
    if (!probed) {
        int n = 0;
        cudaError_t e = cudaGetDeviceCount(&n);
        if (e != cudaSuccess) (void)cudaGetLastError();  // no driver / no device: not sticky
        present = e == cudaSuccess && n > 0;
        if (present) table = make_table();
        probed = 1;
    }
    return present ? &table : NULL;
}
