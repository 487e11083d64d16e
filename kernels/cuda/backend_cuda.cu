// backend_cuda.cu — the CUDA backend (fp32, cuBLAS): an instance's memory ops,
// its device scratch and ledger, and the shared cuBLAS handle. Memory is device
// memory; copies are synchronous; every op runs on the default stream.
// herd_backend_cuda_create is NULL when no device is present, so callers get a
// clean "no CUDA device" path on machines without a GPU.
#include "kernels/cuda/cuda_common.h"
extern "C" {
#include "kernels/cuda/cuda_ops.h"
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

void *herd_cuda_scratch(const herd_backend *be, int slot, size_t bytes)
{
    herd_cuda_state *s = herd_cuda_state_of(be);
    if (bytes > s->scratch_cap[slot]) {
        if (s->scratch[slot]) {
            herd_memstat_remove(s->ledger, s->scratch[slot]);
            CUDA_CHECK(cudaFree(s->scratch[slot]));  // cudaFree waits for the device
        }
        s->scratch[slot] = NULL;
        s->scratch_cap[slot] = 0;
        CUDA_CHECK(cudaMalloc(&s->scratch[slot], bytes));
        s->scratch_cap[slot] = bytes;
        herd_memstat_add(s->ledger, s->scratch[slot], bytes);
    }
    return s->scratch[slot];
}

// ---- memory -----------------------------------------------------------------

static void *cu_alloc(const herd_backend *be, size_t bytes)
{
    void *p = NULL;
    size_t nb = bytes ? bytes : 1;
    if (cudaMalloc(&p, nb) != cudaSuccess) {
        (void)cudaGetLastError();  // clear it: the caller handles NULL
        return NULL;
    }
    CUDA_CHECK(cudaMemset(p, 0, nb));
    herd_memstat_add(herd_cuda_state_of(be)->ledger, p, nb);
    return p;
}

static void cu_free(const herd_backend *be, void *p)
{
    if (!p) return;
    herd_memstat_remove(herd_cuda_state_of(be)->ledger, p);
    CUDA_CHECK(cudaFree(p));
}

static size_t cu_mem_allocated(const herd_backend *be)
{
    return herd_memstat_current(herd_cuda_state_of(be)->ledger);
}

static size_t cu_mem_peak(const herd_backend *be, int reset)
{
    return herd_memstat_peak(herd_cuda_state_of(be)->ledger, reset);
}

static void cu_h2d(const herd_backend *be, void *d, const void *s, size_t n)
{
    if (n) CUDA_CHECK(cudaMemcpy(d, s, n, cudaMemcpyHostToDevice));
}

static void cu_d2h(const herd_backend *be, void *d, const void *s, size_t n)
{
    if (n) CUDA_CHECK(cudaMemcpy(d, s, n, cudaMemcpyDeviceToHost));
}

static void cu_d2d(const herd_backend *be, void *d, const void *s, size_t n)
{
    if (n) CUDA_CHECK(cudaMemcpy(d, s, n, cudaMemcpyDeviceToDevice));
}

static void cu_zero(const herd_backend *be, float *x, size_t n)
{
    if (n) CUDA_CHECK(cudaMemset(x, 0, n * sizeof(float)));
}

static void cu_sync(const herd_backend *be) { CUDA_CHECK(cudaDeviceSynchronize()); }

// the whole device's memory in use (this process and any other), bytes
static size_t cu_mem_in_use(const herd_backend *be)
{
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    return total_b - free_b;
}

// ---- the instance -------------------------------------------------------------

static void cu_destroy(herd_backend *be)
{
    herd_cuda_state *s = herd_cuda_state_of(be);
    for (int i = 0; i < HERD_SCRATCH_N; i++) {
        if (!s->scratch[i]) continue;
        herd_memstat_remove(s->ledger, s->scratch[i]);
        CUDA_CHECK(cudaFree(s->scratch[i]));
    }
    herd_memstat_free(s->ledger);
    free(s);
    free(be);
}

static void set_ops(herd_backend &b)
{
    b.name = "cuda";
    b.destroy = cu_destroy;
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
}

// 1 when a CUDA device is present (no driver or no device: 0, and no error is left behind)
extern "C" int herd_cuda_device_present(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) (void)cudaGetLastError();  // not sticky
    return e == cudaSuccess && n > 0;
}

extern "C" int herd_backend_cuda_devices(char (*busid)[16], int max)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    for (int d = 0; d < n && d < max; d++)
        if (cudaDeviceGetPCIBusId(busid[d], 16, d) != cudaSuccess) {
            (void)cudaGetLastError();
            snprintf(busid[d], 16, "?");
        }
    return n < max ? n : max;
}

extern "C" herd_backend *herd_backend_cuda_create(const herd_backend_options *opt)
{
    if (!herd_cuda_device_present()) {
        fprintf(stderr, "herd: backend cuda: no CUDA device\n");
        return NULL;
    }
    // the device first: the instance's memory, the cuBLAS handle and NCCL's
    // communicators belong to the device current when they are made
    int device = opt ? opt->device : 0, n = 0;
    (void)cudaGetDeviceCount(&n);
    if (device < 0 || device >= n || cudaSetDevice(device) != cudaSuccess) {
        (void)cudaGetLastError();
        fprintf(stderr, "herd: backend cuda: device %d: not one of the %d visible devices "
                "(CUDA_VISIBLE_DEVICES='%s')\n", device, n,
                getenv("CUDA_VISIBLE_DEVICES") ? getenv("CUDA_VISIBLE_DEVICES") : "(unset)");
        return NULL;
    }
    herd_backend *be = (herd_backend *)calloc(1, sizeof *be);
    herd_cuda_state *s = (herd_cuda_state *)calloc(1, sizeof *s);
    herd_memstat *ledger = herd_memstat_create();
    if (!be || !s || !ledger) {
        fprintf(stderr, "herd: backend cuda: out of memory\n");
        free(be);
        free(s);
        herd_memstat_free(ledger);
        return NULL;
    }
    s->ledger = ledger;
    s->bf16 = opt && opt->matmul_bf16;
    s->device = device;
    set_ops(*be);
    be->state = s;
    return be;
}
